//! The example binaries' `--store` flag: an SQLite file, a `postgres://` URL, or `none`.

use std::path::Path;
use std::sync::Arc;

use nexus_runtime::store::{PostgresStore, SqliteStore, Store};

/// A store opened from `--store`, and whether replicas share it (PostgreSQL).
pub struct OpenedStore {
    /// The store; `None` for `none`.
    pub store: Option<Arc<dyn Store>>,
    /// Whether it is a PostgreSQL store, shared by replicas.
    pub shared: bool,
    /// The same store when it is an SQLite file (for `--disk-full-file`).
    pub sqlite: Option<SqliteStore>,
}

/// Opens the store `spec` names: `none` (no store), a `postgres://` or `postgresql://` URL, or
/// an SQLite file (created with its missing directories). A path naming an existing directory is
/// refused: the flag names the database file itself.
pub async fn open_store(spec: &str) -> Result<OpenedStore, String> {
    if spec == "none" {
        return Ok(OpenedStore {
            store: None,
            shared: false,
            sqlite: None,
        });
    }
    if spec.starts_with("postgres://") || spec.starts_with("postgresql://") {
        let store = PostgresStore::connect(spec)
            .await
            .map_err(|e| e.to_string())?;
        return Ok(OpenedStore {
            store: Some(Arc::new(store)),
            shared: true,
            sqlite: None,
        });
    }
    if Path::new(spec).is_dir() {
        return Err(format!(
            "--store {spec}: is a directory; name the database file, such as {}",
            Path::new(spec).join(SqliteStore::FILE_NAME).display()
        ));
    }
    let store = SqliteStore::open(spec).await.map_err(|e| e.to_string())?;
    Ok(OpenedStore {
        store: Some(Arc::new(store.clone())),
        shared: false,
        sqlite: Some(store),
    })
}
