//! Record parts both sides share.

use std::time::SystemTime;

/// Who drives an unfinished operation, and until when.
///
/// An owner is one running process (use a fresh id per process, such as a UUID, not a host name):
/// it renews its leases while it lives; once a lease expires, another owner may claim the
/// operation. Claiming bumps the record's version, so writes of the previous owner based on what it
/// read before fail their compare-and-set instead of overwriting the new owner's.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Lease {
    /// The owner's id.
    pub owner: String,
    /// When the lease ends unless renewed.
    pub expires_at: SystemTime,
}

impl Lease {
    /// A lease for `owner` until `expires_at`.
    pub fn new(owner: impl Into<String>, expires_at: SystemTime) -> Self {
        Self {
            owner: owner.into(),
            expires_at,
        }
    }

    /// Whether the lease has ended at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }
}
