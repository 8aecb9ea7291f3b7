//! The store test suite, run against every store: `store_suite!` below expands to one test per
//! case and backend (`memory::…`, `sqlite::…`, `postgres::…`, through `backend_matrix!`). Each
//! test has storage of its own (a memory store, an SQLite file in a temporary directory, a
//! PostgreSQL schema), so tests run in parallel.
#![allow(dead_code)]
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

pub mod caller;
pub mod fixtures;
pub mod handler;
pub mod leases;
pub mod listing;
pub mod outbox;
pub mod retarget;

use std::sync::Arc;

use nexus_runtime::store::Store;

use crate::support::backend::Backend;

/// What the cases need of their storage.
#[allow(async_fn_in_trait)]
pub trait Harness: Sized {
    /// The store handle.
    fn store(&self) -> Arc<dyn Store>;
    /// Another handle on the same storage: its own connection pool for SQL stores.
    async fn another_handle(&self) -> Arc<dyn Store>;
    /// Closes the handles and opens the storage again, as a restarted process does; `None` if the
    /// storage does not survive that (memory).
    async fn reopen(&self) -> Option<Arc<dyn Store>>;
}

impl Harness for Backend {
    fn store(&self) -> Arc<dyn Store> {
        self.kept_handle()
    }

    async fn another_handle(&self) -> Arc<dyn Store> {
        self.keep_handle().await
    }

    async fn reopen(&self) -> Option<Arc<dyn Store>> {
        Backend::reopen(self).await
    }
}

/// One test per suite case and backend.
macro_rules! store_suite {
    () => {
        store_suite!(@cases
            caller::round_trip_of_every_field,
            caller::minimal_record_and_lookups,
            caller::insert_is_idempotent_by_request_id,
            caller::update_is_compare_and_set,
            caller::list_unfinished_oldest_first,
            caller::request_cancel_rules,
            caller::completion_before_token,
            caller::callback_secret_is_fixed_at_insert,
            caller::completion_after_start_and_token_mismatch,
            caller::repeated_completion_is_already_finished,
            caller::completion_and_timeout_never_overwrite_each_other,
            caller::unknown_completion,
            caller::purge_finished_operations,
            leases::claim_expiry_takeover_renew_release,
            leases::concurrent_claims_never_share_an_operation,
            leases::renewal_keeps_every_lease_of_its_owner,
            leases::async_leases,
            leases::async_renewal_keeps_every_lease_of_its_owner,
            leases::concurrent_async_claims_never_share,
            handler::dedup_returns_the_sync_answer,
            handler::dedup_returns_the_async_token,
            handler::dedup_returns_the_recorded_error,
            handler::request_ids_are_scoped_by_principal,
            handler::expired_claims_are_taken_over_and_abandoned_ones_rerun,
            handler::finish_start_checks_its_arguments_and_is_atomic,
            handler::concurrent_begin_start_runs_once,
            handler::request_cancel_async_rules,
            outbox::complete_async_enqueues_in_the_same_step,
            outbox::due_listing_and_retry_bookkeeping,
            outbox::dead_letters,
            outbox::concurrent_delivery_claims_never_share,
            outbox::purge_handled_records,
            outbox::reopening_keeps_everything,
            retarget::retarget_running_operation,
            retarget::retarget_waiting_delivery,
            retarget::retarget_leaves_settled_operations_alone,
            retarget::retarget_racing_completion_never_loses_the_new_callback,
            listing::list_caller_operations_with_filters_and_paging,
            listing::list_recent_operations_newest_first,
            listing::list_async_operations_with_filters_and_paging,
            listing::list_deliveries_and_redeliver_a_dead_one,
        );
    };
    (@cases $($module:ident :: $case:ident),* $(,)?) => {
        $(
            /// The case on a backend, with a first handle opened.
            async fn $case(backend: &Backend) {
                backend.keep_handle().await;
                $module::$case(backend).await;
            }
        )*
        crate::support::backend::backend_matrix! {
            backends: memory, sqlite, postgres;
            cases: [$($case),*];
        }
    };
}

store_suite!();
