//! The SQLite store: the embedded default, one file per process.
//!
//! A handle owns one writer thread (`writer.rs`: the write connection, group commit) and a pool
//! of read-only connections (`readers.rs`); the store traits are implemented in `caller.rs`,
//! `handler.rs` and `outbox.rs`, listings in `listing.rs`, the schema's versions in `migrate.rs`.

mod batch;
mod caller;
mod handler;
mod listing;
mod migrate;
mod outbox;
mod readers;
mod rows;
mod sync;
mod writer;

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OpenFlags};

use self::readers::Readers;
use self::writer::{Writer, db_error};
use super::StoreError;

/// How many prepared statements each connection keeps.
const STATEMENT_CACHE: usize = 64;

/// A store in an SQLite database file (feature `sqlite`).
///
/// The file is opened in WAL mode, by default with every commit flushed to disk before its writes
/// are answered (an answered write survives a power loss: a completion acknowledged is a
/// completion kept; see
/// [`SqliteDurability`] for the faster setting that survives process crashes only), a busy
/// timeout so concurrent handles wait for each other instead of failing, and the schema migrated
/// to the latest version on open. Several handles (and processes) may open the same file; SQLite
/// serializes their writes, which makes every claim atomic.
///
/// A handle writes through **one connection**, owned by a thread of its own, and reads through
/// a pool of [`READ_CONNECTIONS`](Self::READ_CONNECTIONS) read-only ones, used on Tokio's
/// blocking threads. SQLite runs one write transaction at a time per file anyway. Writes are
/// queued for the writer thread, which runs the writes queued meanwhile in one transaction,
/// statement after statement without leaving the thread, and commits them together (**group
/// commit**: one `fsync` for many; a write returns once its batch is committed and flushed, the
/// flush done by a thread of its own while the writer runs the next batch). A batch that
/// fails for a fault of the machine (a full disk, an I/O error) is rolled back, its writes fail
/// with [`StoreError::Unavailable`] (retryable), and the writer goes on with the next batch.
/// Reads (looking an operation up, listing) do not wait behind writes; in WAL mode they see
/// every committed write. BENCHMARKS.md has the measurements.
///
/// ```no_run
/// # async fn demo() -> Result<(), nexus_runtime::store::StoreError> {
/// use nexus_runtime::store::SqliteStore;
///
/// let store = SqliteStore::open_in_dir("/var/lib/payments").await?;
/// assert!(store.path().ends_with("nexus.sqlite3"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    writer: Writer,
    readers: Arc<Readers>,
    path: PathBuf,
    durability: SqliteDurability,
}

impl Drop for Inner {
    /// The last handle gone: the writer stops after the writes queued.
    fn drop(&mut self) {
        self.writer.shut_down();
    }
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// The database file's name inside a data directory.
    pub const FILE_NAME: &'static str = "nexus.sqlite3";

    /// How long a statement waits for another connection's write lock before failing with
    /// [`StoreError::Unavailable`].
    pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

    /// How many connections a handle reads through (it writes through one more).
    pub const READ_CONNECTIONS: u32 = 4;

    /// Opens (creating it if needed) the database at `path`: an existing directory means the file
    /// [`FILE_NAME`](Self::FILE_NAME) inside it; anything else is the database file itself, whose
    /// missing parent directories are created.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteDurability::default()).await
    }

    /// Like [`open`](Self::open), with commits that survive what `durability` says.
    pub async fn open_with(
        path: impl AsRef<Path>,
        durability: SqliteDurability,
    ) -> Result<Self, StoreError> {
        let path = path.as_ref();
        if path.is_dir() {
            return Self::open_dir(path, durability).await;
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            create_dir(parent)?;
        }
        Self::open_file(path.to_path_buf(), durability).await
    }

    /// Opens (creating both if needed) the file [`FILE_NAME`](Self::FILE_NAME) in data directory
    /// `dir`.
    pub async fn open_in_dir(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_dir(dir.as_ref(), SqliteDurability::default()).await
    }

    async fn open_dir(dir: &Path, durability: SqliteDurability) -> Result<Self, StoreError> {
        create_dir(dir)?;
        Self::open_file(dir.join(Self::FILE_NAME), durability).await
    }

    async fn open_file(path: PathBuf, durability: SqliteDurability) -> Result<Self, StoreError> {
        let opened = path.clone();
        let (conn, wal) = tokio::task::spawn_blocking(move || open_writer(&opened, durability))
            .await
            .map_err(|e| StoreError::Open {
                message: format!("cannot open SQLite database `{}`: {e}", path.display()),
                source: None,
            })??;
        let writer = Writer::start(conn, &path, wal)?;
        let readers = Readers::new(&path, Self::READ_CONNECTIONS as usize);
        Ok(Self {
            inner: Arc::new(Inner {
                writer,
                readers,
                path,
                durability,
            }),
        })
    }

    /// What a committed transaction survives.
    pub fn durability(&self) -> SqliteDurability {
        self.inner.durability
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The versions of the schema migrations applied to this database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        self.read(migrate::applied).await
    }

    /// Caps the database file at `pages` pages (SQLite's `max_page_count`; `None` for SQLite's
    /// largest) for this handle's writes, and returns the cap in force: a write that needs more
    /// room fails as on a full disk, with [`StoreError::Unavailable`], and is rolled back with
    /// the writes batched with it. The cap cannot go below the pages in use.
    pub async fn set_max_page_count(&self, pages: Option<u64>) -> Result<u64, StoreError> {
        self.inner
            .writer
            .direct(move |conn| {
                let pages = pages.map_or(i64::from(u32::MAX >> 1), |p| {
                    i64::try_from(p).unwrap_or(i64::MAX)
                });
                conn.pragma_update_and_check(None, "max_page_count", pages, |row| {
                    row.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or_default())
                .map_err(db_error)
            })
            .await
    }

    /// How many pages the database file has.
    pub async fn page_count(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.pragma_query_value(None, "page_count", |row| row.get::<_, i64>(0))
                .map(|n| u64::try_from(n).unwrap_or_default())
                .map_err(db_error)
        })
        .await
    }

    /// Finishes the writes queued so far and closes every connection; later calls fail with
    /// [`StoreError::Unavailable`]. Dropping every clone also closes the store.
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.readers.close();
    }

    /// Runs `write` on the writer thread, in the next batch transaction.
    pub(super) async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.write(write).await
    }

    /// Runs `write` like [`write`](Self::write), answered before its batch commits when `early`
    /// holds for its result (see `Writer::write_early`).
    pub(super) async fn write_early<T, F>(
        &self,
        write: F,
        early: fn(&T) -> bool,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.writer.write_early(write, early).await
    }

    /// Renews an owner's heartbeat with `sql` (`?1` the owner, `?2` its new expiry): one row,
    /// which keeps every lease the owner holds live (the caller's and the handler's).
    pub(super) async fn heartbeat(
        &self,
        sql: &'static str,
        owner: &str,
        now: SystemTime,
        lease: Duration,
    ) -> Result<(), StoreError> {
        let params = vec![
            rows::text(owner),
            rusqlite::types::Value::Integer(crate::store::time::expiry_micros(now, lease)?),
        ];
        self.write(move |conn| rows::execute(conn, sql, &params))
            .await?;
        Ok(())
    }

    /// Runs `read` on a read-only connection.
    pub(super) async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.inner.readers.read(read).await
    }
}

/// Opens the write connection: WAL, a busy timeout, foreign keys, and the schema migrated. With
/// [`SqliteDurability::PowerLoss`], also the write-ahead log file, which the writer's flusher
/// flushes after each commit (`synchronous = NORMAL` then; `FULL` if the log cannot be opened).
fn open_writer(
    path: &Path,
    durability: SqliteDurability,
) -> Result<(Connection, Option<File>), StoreError> {
    let open_error = |e: rusqlite::Error| StoreError::Open {
        message: format!("cannot open SQLite database `{}`: {e}", path.display()),
        source: Some(Box::new(e)),
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(open_error)?;
    conn.busy_timeout(SqliteStore::BUSY_TIMEOUT)
        .map_err(open_error)?;
    let journal: String = conn
        .pragma_update_and_check(None, "journal_mode", "wal", |row| row.get(0))
        .map_err(open_error)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(open_error)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    migrate::migrate(&mut conn).map_err(|e| StoreError::Open {
        message: format!("cannot migrate SQLite database `{}`: {e}", path.display()),
        source: Some(Box::new(e)),
    })?;
    // The log exists once a transaction ran in WAL mode (the migration's).
    let wal = match durability {
        SqliteDurability::PowerLoss if journal.eq_ignore_ascii_case("wal") => conn
            .path()
            .filter(|p| !p.is_empty())
            .and_then(|p| File::open(format!("{p}-wal")).ok()),
        SqliteDurability::PowerLoss | SqliteDurability::ProcessCrash => None,
    };
    let synchronous = match (durability, &wal) {
        (SqliteDurability::PowerLoss, None) => "FULL",
        _ => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)
        .map_err(open_error)?;
    Ok((conn, wal))
}

/// What a committed transaction of a [`SqliteStore`] survives: SQLite's `synchronous` setting in
/// WAL mode.
///
/// ```no_run
/// # async fn demo() -> Result<(), nexus_runtime::store::StoreError> {
/// use nexus_runtime::store::{SqliteDurability, SqliteStore};
///
/// // A caller that may lose its last transactions on a power loss, never on a crash or kill.
/// let store = SqliteStore::open_with("/var/lib/payments", SqliteDurability::ProcessCrash).await?;
/// assert_eq!(store.durability(), SqliteDurability::ProcessCrash);
/// # Ok(()) }
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqliteDurability {
    /// Every commit is flushed to disk (`fsync`) before the writes it holds are answered, so an
    /// answered write survives a power loss or an operating-system crash. The default. The write
    /// connection runs with `synchronous = NORMAL` and a thread of the store flushes the
    /// write-ahead log after each commit, while the next batch runs (`synchronous = FULL`, which
    /// flushes inside the commit, if the log file cannot be opened).
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL`: commits are written to the WAL without an `fsync`; the WAL is
    /// flushed at checkpoints. A committed transaction survives the process crashing or being
    /// killed (the operating system still holds the write), but the last ones may be rolled back
    /// by a power loss or an OS crash. Faster: no `fsync` per commit.
    ProcessCrash,
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
        message: format!("cannot create data directory `{}`: {e}", dir.display()),
        source: Some(Box::new(e)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn durability_sets_synchronous_on_the_write_connection() {
        let dir = tempfile::tempdir().expect("temporary directory");
        for (durability, expected, flushes) in [
            (SqliteDurability::PowerLoss, 1, true),
            (SqliteDurability::ProcessCrash, 1, false),
        ] {
            let store =
                SqliteStore::open_with(dir.path().join(format!("{durability:?}.db")), durability)
                    .await
                    .expect("open");
            let synchronous = store
                .inner
                .writer
                .direct(|conn| {
                    conn.pragma_query_value(None, "synchronous", |row| row.get::<_, i64>(0))
                        .map_err(db_error)
                })
                .await
                .expect("pragma");
            assert_eq!(synchronous, expected, "{durability:?}");
            assert_eq!(store.inner.writer.flushes(), flushes, "{durability:?}");
        }
    }
}
