//! The SQLite store: the embedded default, one file per process.

mod group;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use self::group::{GroupWriter, Write};
use super::StoreError;
use super::sql::db_error;

/// The schema migrations, embedded at compile time from `migrations/sqlite`.
static MIGRATOR: Migrator = sqlx::migrate!("migrations/sqlite");

/// A store in an SQLite database file (feature `sqlite`).
///
/// The file is opened in WAL mode with `synchronous = FULL` by default (a committed transaction
/// survives a power loss: a completion acknowledged is a completion kept; see
/// [`SqliteDurability`] for the faster setting that survives process crashes only), a busy
/// timeout so concurrent
/// handles wait for each other instead of failing, and the schema migrated to the latest version
/// on open. Several handles (and processes) may open the same file; SQLite serializes their
/// writes, which makes every claim atomic.
///
/// A handle writes through **one connection** and reads through a pool of
/// [`READ_CONNECTIONS`](Self::READ_CONNECTIONS) more. SQLite runs one write transaction at a time
/// per file anyway: with several writing connections, the ones that lose the lock wait in SQLite's
/// busy handler, which sleeps (1, 2, 5, 10 ms and more) rather than waking when the lock is free,
/// and each write invalidates the others' page caches. Queued for the one writer instead, writes
/// go out back to back, and the writes of concurrent operations share a transaction and its
/// commit (**group commit**: one `fsync` for many; a write returns once its batch is committed).
/// Reads (looking an operation up, listing) do not wait behind writes; in WAL mode they see every
/// committed write. BENCHMARKS.md has the measurements.
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
    /// The writer's pool: one connection (see above).
    pub(crate) pool: SqlitePool,
    /// Batches writes on that connection.
    writer: GroupWriter,
    /// The readers.
    readers: SqlitePool,
    path: PathBuf,
    durability: SqliteDurability,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
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
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(durability.synchronous())
            .busy_timeout(Self::BUSY_TIMEOUT)
            .foreign_keys(true);
        let open_error = |e: sqlx::Error| StoreError::Open {
            message: format!("cannot open SQLite database `{}`: {e}", path.display()),
            source: Some(Box::new(e)),
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .after_release(|conn, _| {
                // A transaction left open (a commit that failed on a full disk or an I/O error,
                // after which SQLite may have rolled it back itself, so that the rollback failed
                // too) would refuse every later `BEGIN`: close that connection; the pool opens a
                // new one for the next write.
                let clean = !sqlx::Connection::is_in_transaction(conn);
                if !clean {
                    tracing::warn!("closing an SQLite connection left inside a transaction");
                }
                Box::pin(async move { Ok(clean) })
            })
            .connect_with(options.clone())
            .await
            .map_err(open_error)?;
        MIGRATOR.run(&pool).await.map_err(|e| StoreError::Open {
            message: format!("cannot migrate SQLite database `{}`: {e}", path.display()),
            source: Some(Box::new(e)),
        })?;
        // Opened lazily: a handle that only writes (most of the time) opens none.
        let readers = SqlitePoolOptions::new()
            .max_connections(Self::READ_CONNECTIONS)
            .min_connections(0)
            .connect_lazy_with(options);
        Ok(Self {
            writer: GroupWriter::new(pool.clone()),
            pool,
            readers,
            path,
            durability,
        })
    }

    /// What a committed transaction survives.
    pub fn durability(&self) -> SqliteDurability {
        self.durability
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection pool writes go through: one connection, which the store's write batches
    /// hold while they run, so a query of your own on it waits for the batch in progress. For
    /// reads of your own, open another pool on [`path`](Self::path).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The connection pool reads go through.
    pub(crate) fn readers(&self) -> &SqlitePool {
        &self.readers
    }

    /// A write of one statement, batched with concurrent writes (see the type's docs).
    pub(crate) async fn write_one(&self) -> Result<Write, StoreError> {
        self.writer.write(false).await.map_err(db_error)
    }

    /// A write of several statements, undone together unless it commits, batched with
    /// concurrent writes.
    pub(crate) async fn write_tx(&self) -> Result<Write, StoreError> {
        self.writer.write(true).await.map_err(db_error)
    }

    /// The versions of the schema migrations applied to this database, in order.
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, StoreError> {
        super::sql::applied_migrations(&self.pool).await
    }

    /// Closes every connection; later calls fail. Dropping every clone also closes the pool.
    pub async fn close(&self) {
        self.pool.close().await;
        self.readers.close().await;
    }
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
    /// `synchronous = FULL`: every commit is flushed to disk (`fsync`) before it returns, so a
    /// committed transaction survives a power loss or an operating-system crash. The default.
    #[default]
    PowerLoss,
    /// `synchronous = NORMAL`: commits are written to the WAL without an `fsync`; the WAL is
    /// flushed at checkpoints. A committed transaction survives the process crashing or being
    /// killed (the operating system still holds the write), but the last ones may be rolled back
    /// by a power loss or an OS crash. Faster: no `fsync` per commit.
    ProcessCrash,
}

impl SqliteDurability {
    fn synchronous(self) -> SqliteSynchronous {
        match self {
            Self::PowerLoss => SqliteSynchronous::Full,
            Self::ProcessCrash => SqliteSynchronous::Normal,
        }
    }
}

fn create_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
        message: format!("cannot create data directory `{}`: {e}", dir.display()),
        source: Some(Box::new(e)),
    })
}

impl_caller_store!(SqliteStore, sqlx::Sqlite, lock = "");
impl_handler_store!(SqliteStore, sqlx::Sqlite, lock = "");
impl_outbox_store!(SqliteStore, sqlx::Sqlite, lock = "");
