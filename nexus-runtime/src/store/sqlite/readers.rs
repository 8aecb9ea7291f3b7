//! The readers: a small pool of read-only connections, used on Tokio's blocking threads so that
//! no async worker waits for SQLite. In WAL mode a reader sees every committed write and never
//! waits for the writer.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags};
use tokio::sync::Semaphore;

use super::writer::db_error;
use crate::store::StoreError;

/// The read-only connections of one store (shared by its clones).
pub(crate) struct Readers {
    path: PathBuf,
    /// Connections not in use (opened on first need, kept afterwards).
    idle: Mutex<Vec<Connection>>,
    /// One permit per connection the pool may have.
    permits: Semaphore,
    closed: AtomicBool,
}

impl Readers {
    /// A pool of at most `size` connections to `path`, none opened yet.
    pub fn new(path: &Path, size: usize) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Semaphore::new(size),
            closed: AtomicBool::new(false),
        })
    }

    /// Runs `read` on a connection of the pool, on a blocking thread.
    pub async fn read<T, F>(self: &Arc<Self>, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let closed = || StoreError::Unavailable {
            message: "the SQLite store is closed".into(),
            source: None,
        };
        if self.closed.load(Ordering::Acquire) {
            return Err(closed());
        }
        let _permit = self.permits.acquire().await.map_err(|_| closed())?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = match pool.take() {
                Some(conn) => conn,
                None => open_reader(&pool.path)?,
            };
            let result = read(&conn);
            pool.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable {
            message: format!("an SQLite read did not finish: {e}"),
            source: None,
        })?
    }

    fn take(&self) -> Option<Connection> {
        self.idle.lock().ok()?.pop()
    }

    fn give_back(&self, conn: Connection) {
        if self.closed.load(Ordering::Acquire) {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Closes the idle connections; later reads fail.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )
    .map_err(db_error)?;
    conn.busy_timeout(super::SqliteStore::BUSY_TIMEOUT)
        .map_err(db_error)?;
    conn.set_prepared_statement_cache_capacity(super::STATEMENT_CACHE);
    Ok(conn)
}
