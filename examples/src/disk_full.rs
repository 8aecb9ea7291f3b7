//! The example binaries' `--disk-full-file FILE`: a full disk on demand, for fault tests, without
//! privileges (no small file system to mount).
//!
//! While FILE exists, the SQLite store is capped at the pages it has (SQLite's `max_page_count`,
//! through [`SqliteStore::set_max_page_count`]): every write that needs another page fails as on
//! a full disk, with SQLITE_FULL, which the store reports as retryable
//! ([`StoreError::Unavailable`](nexus_runtime::store::StoreError::Unavailable)) and rolls back.
//! Writes that fit in the pages the file has still succeed, as on a real full disk. Removing FILE
//! lifts the cap: the same store handle works again at once, without a restart. FILE is looked
//! at before the process writes anything, then every 50 ms; each change is logged on stderr
//! (`disk full: ...`, `disk space back: ...`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use nexus_runtime::store::SqliteStore;
use tokio::task::JoinHandle;

/// How often the file is looked at.
pub const POLL: Duration = Duration::from_millis(50);

/// The `--disk-full-file` flag.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct DiskFullArgs {
    /// Fault testing: while FILE exists, the SQLite store is full (capped at the pages it has
    /// with SQLite's max_page_count, so writes needing more room fail as on a full disk: reported
    /// as retryable, rolled back). Remove FILE to give the store room again, without a restart.
    /// Looked at on start-up, then every 50 ms. SQLite stores only.
    #[arg(long, value_name = "FILE")]
    pub disk_full_file: Option<PathBuf>,
}

/// Watches the file while it lives; dropping it stops watching (leaving the store as it is).
#[derive(Debug)]
pub struct DiskFullWatch {
    task: JoinHandle<()>,
}

impl Drop for DiskFullWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DiskFullArgs {
    /// Starts watching the file, if the flag was given: applies what it says now, before
    /// returning, then follows it. An error if the store is not an SQLite file.
    pub async fn watch(
        &self,
        store: Option<&SqliteStore>,
    ) -> Result<Option<DiskFullWatch>, String> {
        let Some(path) = self.disk_full_file.clone() else {
            return Ok(None);
        };
        let Some(store) = store.cloned() else {
            return Err("--disk-full-file needs an SQLite --store".into());
        };
        let mut full = false;
        follow(&store, &path, &mut full).await;
        let task = tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                follow(&store, &path, &mut full).await;
            }
        });
        Ok(Some(DiskFullWatch { task }))
    }
}

/// Caps the store while `path` exists, lifts the cap once it is gone; `full` is what was
/// applied last (unchanged when applying failed: tried again at the next look).
async fn follow(store: &SqliteStore, path: &Path, full: &mut bool) {
    let wanted = path.exists();
    if wanted == *full {
        return;
    }
    let applied = if wanted {
        match store.page_count().await {
            Ok(pages) => store.set_max_page_count(Some(pages)).await.map(|cap| {
                tracing::warn!(
                    file = %path.display(),
                    pages = cap,
                    "disk full: the store is capped at the pages it has"
                );
            }),
            Err(e) => Err(e),
        }
    } else {
        store.set_max_page_count(None).await.map(|_| {
            tracing::warn!(
                file = %path.display(),
                "disk space back: the store's cap is lifted"
            );
        })
    };
    match applied {
        Ok(()) => *full = wanted,
        Err(e) => tracing::warn!(error = %e, "--disk-full-file: cannot change the store's cap"),
    }
}
