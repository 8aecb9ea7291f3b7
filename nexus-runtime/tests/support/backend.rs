//! Where a test's records live: the memory store, an SQLite file in a temporary directory, or a
//! PostgreSQL schema of the test's own ([`Backend`]); and [`backend_matrix!`], which runs a test
//! body on each of them.

use std::sync::{Arc, Mutex};

use futures::FutureExt as _;
use futures::future::BoxFuture;
use nexus_runtime::store::{MemoryStore, Store};

/// The kinds of backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The memory store.
    Memory,
    /// An SQLite file in a temporary directory.
    #[cfg(feature = "sqlite")]
    Sqlite,
    /// A PostgreSQL schema (skipped without `NEXUS_TEST_POSTGRES_URL`).
    #[cfg(feature = "postgres")]
    Postgres,
}

/// Opens a new handle on a backend's storage, from any task or runtime.
pub type Opener = Arc<dyn Fn() -> BoxFuture<'static, Arc<dyn Store>> + Send + Sync>;

enum Storage {
    Memory(MemoryStore),
    #[cfg(feature = "sqlite")]
    Sqlite(tempfile::TempDir),
    #[cfg(feature = "postgres")]
    Postgres(Arc<super::postgres::Schema>),
}

/// A handle the backend keeps, to close it when asked.
enum Kept {
    Memory(MemoryStore),
    #[cfg(feature = "sqlite")]
    Sqlite(nexus_runtime::store::SqliteStore),
    #[cfg(feature = "postgres")]
    Postgres(nexus_runtime::store::PostgresStore),
}

impl Kept {
    fn store(&self) -> Arc<dyn Store> {
        match self {
            Self::Memory(store) => Arc::new(store.clone()),
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => Arc::new(store.clone()),
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => Arc::new(store.clone()),
        }
    }

    async fn close(self) {
        match self {
            Self::Memory(_) => {}
            #[cfg(feature = "sqlite")]
            Self::Sqlite(store) => store.close().await,
            #[cfg(feature = "postgres")]
            Self::Postgres(store) => store.close().await,
        }
    }
}

/// The storage of one test: its records outlive the handles on it, as a database outlives
/// processes (the memory store lives as long as the backend).
pub struct Backend {
    storage: Storage,
    /// The handles kept by [`Backend::keep_handle`], closed by `reopen` and `cleanup`.
    kept: Mutex<Vec<Kept>>,
}

impl Backend {
    /// The memory store.
    pub fn memory() -> Self {
        Self::with(Storage::Memory(MemoryStore::new()))
    }

    /// An SQLite file in a new temporary directory.
    #[cfg(feature = "sqlite")]
    pub fn sqlite() -> Self {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        Self::with(Storage::Sqlite(dir))
    }

    /// A new schema for `test` in the database of `NEXUS_TEST_POSTGRES_URL`, or `None` (after
    /// saying so) when the variable is unset.
    #[cfg(feature = "postgres")]
    pub async fn postgres(test: &str) -> Option<Self> {
        let schema = super::postgres::Schema::create(test).await?;
        Some(Self::with(Storage::Postgres(Arc::new(schema))))
    }

    /// A backend of `kind` for `test`; `None` when the test is skipped on it.
    pub async fn new(kind: Kind, test: &str) -> Option<Self> {
        let _ = test;
        match kind {
            Kind::Memory => Some(Self::memory()),
            #[cfg(feature = "sqlite")]
            Kind::Sqlite => Some(Self::sqlite()),
            #[cfg(feature = "postgres")]
            Kind::Postgres => Self::postgres(test).await,
        }
    }

    fn with(storage: Storage) -> Self {
        Self {
            storage,
            kept: Mutex::default(),
        }
    }

    /// The kind of store, for messages.
    pub fn name(&self) -> &'static str {
        match &self.storage {
            Storage::Memory(_) => "memory",
            #[cfg(feature = "sqlite")]
            Storage::Sqlite(_) => "sqlite",
            #[cfg(feature = "postgres")]
            Storage::Postgres(_) => "postgres",
        }
    }

    /// A new handle on the storage (a pool of its own for the SQL stores); the caller keeps it.
    pub async fn open(&self) -> Arc<dyn Store> {
        self.opener()().await
    }

    /// What opens new handles on the storage, for tasks and runtimes of their own.
    pub fn opener(&self) -> Opener {
        match &self.storage {
            Storage::Memory(store) => {
                let store = store.clone();
                Arc::new(move || {
                    let store: Arc<dyn Store> = Arc::new(store.clone());
                    async move { store }.boxed()
                })
            }
            #[cfg(feature = "sqlite")]
            Storage::Sqlite(dir) => {
                let dir = dir.path().to_owned();
                Arc::new(move || {
                    let dir = dir.clone();
                    async move {
                        let store: Arc<dyn Store> = Arc::new(open_sqlite(&dir).await);
                        store
                    }
                    .boxed()
                })
            }
            #[cfg(feature = "postgres")]
            Storage::Postgres(schema) => {
                let schema = schema.clone();
                Arc::new(move || {
                    let schema = schema.clone();
                    async move {
                        let store: Arc<dyn Store> = Arc::new(schema.connect().await);
                        store
                    }
                    .boxed()
                })
            }
        }
    }

    /// Opens a handle that the backend keeps (and closes in [`Backend::reopen`] and
    /// [`Backend::cleanup`]).
    pub async fn keep_handle(&self) -> Arc<dyn Store> {
        let kept = match &self.storage {
            Storage::Memory(store) => Kept::Memory(store.clone()),
            #[cfg(feature = "sqlite")]
            Storage::Sqlite(dir) => Kept::Sqlite(open_sqlite(dir.path()).await),
            #[cfg(feature = "postgres")]
            Storage::Postgres(schema) => Kept::Postgres(schema.connect().await),
        };
        let store = kept.store();
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(kept);
        store
    }

    /// The first handle [`Backend::keep_handle`] opened.
    pub fn kept_handle(&self) -> Arc<dyn Store> {
        self.kept
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .first()
            .expect("no handle kept yet")
            .store()
    }

    /// Closes the kept handles and opens the storage again, as a restarted process does; `None`
    /// for the memory store, which does not survive that.
    pub async fn reopen(&self) -> Option<Arc<dyn Store>> {
        if matches!(self.storage, Storage::Memory(_)) {
            return None;
        }
        self.close_kept().await;
        Some(self.keep_handle().await)
    }

    async fn close_kept(&self) {
        let kept = std::mem::take(&mut *self.kept.lock().unwrap_or_else(|e| e.into_inner()));
        for handle in kept {
            handle.close().await;
        }
    }

    /// Closes the kept handles and removes the storage.
    pub async fn cleanup(self) {
        self.close_kept().await;
        match self.storage {
            Storage::Memory(_) => {}
            #[cfg(feature = "sqlite")]
            Storage::Sqlite(dir) => drop(dir),
            #[cfg(feature = "postgres")]
            Storage::Postgres(schema) => {
                schema.remove().await;
            }
        }
    }

    /// [`Backend::new`] outside a runtime, for tests that make runtimes of their own.
    pub fn new_blocking(kind: Kind, test: &str) -> Option<Self> {
        block_on(Self::new(kind, test))
    }

    /// [`Backend::cleanup`] outside a runtime.
    pub fn cleanup_blocking(self) {
        block_on(self.cleanup());
    }
}

/// Runs `future` to completion on a runtime of its own.
fn block_on<T>(future: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("no runtime: {e}"))
        .block_on(future)
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(dir: &std::path::Path) -> nexus_runtime::store::SqliteStore {
    nexus_runtime::store::SqliteStore::open_in_dir(dir)
        .await
        .unwrap_or_else(|e| panic!("cannot open the SQLite store: {e}"))
}

/// One test per case and backend: `mod memory`, `mod sqlite` and `mod postgres` (those built
/// with their feature), each with a test per case that gives the case fresh storage and removes
/// it afterwards. PostgreSQL tests pass after saying so when `NEXUS_TEST_POSTGRES_URL` is unset.
///
/// ```text
/// backend_matrix! {
///     backends: memory #[tokio::test(start_paused = true)], sqlite, postgres;
///     cases: [first_case, second_case];
///     blocking cases: [third_case];
/// }
/// ```
///
/// `cases` are `async fn(&Backend)` of the calling module, run under the backend's test attribute
/// (by default `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]`); `blocking cases`
/// (optional) are `fn(&Backend)` that build runtimes of their own, run by `#[test]`.
#[allow(unused_macros)] // not every binary that includes the support module uses it
macro_rules! backend_matrix {
    (backends: $($backend:ident $(#[$attr:meta])?),+ ; cases: $cases:tt $(;)?) => {
        $crate::support::backend::backend_matrix!(
            backends: $($backend $(#[$attr])?),+ ; cases: $cases; blocking cases: [];
        );
    };
    (
        backends: $($backend:ident $(#[$attr:meta])?),+ ;
        cases: $cases:tt;
        blocking cases: $blocking:tt $(;)?
    ) => {
        $(
            $crate::support::backend::backend_matrix!(
                @backend $backend [$(#[$attr])?], $cases, $blocking
            );
        )+
    };
    (@backend memory $($rest:tt)*) => {
        $crate::support::backend::backend_matrix!(@module memory, Memory, cfg(all()), $($rest)*);
    };
    (@backend sqlite $($rest:tt)*) => {
        $crate::support::backend::backend_matrix!(
            @module sqlite, Sqlite, cfg(feature = "sqlite"), $($rest)*
        );
    };
    (@backend postgres $($rest:tt)*) => {
        $crate::support::backend::backend_matrix!(
            @module postgres, Postgres, cfg(feature = "postgres"), $($rest)*
        );
    };
    (@module $module:ident, $kind:ident, $cfg:meta, [], $($rest:tt)*) => {
        $crate::support::backend::backend_matrix!(
            @module $module, $kind, $cfg,
            [#[tokio::test(flavor = "multi_thread", worker_threads = 2)]], $($rest)*
        );
    };
    (
        @module $module:ident, $kind:ident, $cfg:meta, [#[$attr:meta]],
        [$($case:ident),* $(,)?], [$($blocking:ident),* $(,)?]
    ) => {
        #[$cfg]
        mod $module {
            #[allow(unused_imports)]
            use $crate::support::backend::{Backend, Kind};
            $(
                #[$attr]
                async fn $case() {
                    let Some(backend) = Backend::new(Kind::$kind, stringify!($case)).await else {
                        return;
                    };
                    super::$case(&backend).await;
                    backend.cleanup().await;
                }
            )*
            $(
                #[test]
                fn $blocking() {
                    let Some(backend) = Backend::new_blocking(Kind::$kind, stringify!($blocking))
                    else {
                        return;
                    };
                    super::$blocking(&backend);
                    backend.cleanup_blocking();
                }
            )*
        }
    };
}

#[allow(unused_imports)] // not every binary that includes the support module uses it
pub(crate) use backend_matrix;
