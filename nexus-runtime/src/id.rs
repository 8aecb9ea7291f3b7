//! Identifiers the runtime makes up: request ids, operation ids, operation tokens and delivery
//! ids.
//!
//! Their random bits are drawn from `rand`'s thread-local generator (a CSPRNG seeded from the
//! operating system and reseeded periodically), so they stay unguessable — a callback id in a URL
//! is a capability — without a `getrandom` system call per id, which cost about 0.5 µs each on
//! the in-process call path.
//!
//! The ids that key stored records are **time-ordered** UUIDv7s ([`new_v7`]): the creation time
//! in milliseconds, then 74 random bits. A store's B-tree index on them grows at its end, so the
//! records a batch inserts share their last pages, and a commit writes those few pages instead
//! of one page per record scattered over the whole index (a random key's fate); 74 random bits
//! keep them as unguessable as any capability needs.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::{SystemTime, UNIX_EPOCH};

use uuid::Uuid;

/// A new random UUIDv4.
pub(crate) fn new_v4() -> Uuid {
    uuid::Builder::from_random_bytes(rand::random()).into_uuid()
}

/// A new time-ordered UUIDv7: the Unix time in milliseconds (the system clock's), then 74
/// random bits. Ids made in the same millisecond are in no particular order among themselves.
pub(crate) fn new_v7() -> Uuid {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    uuid::Builder::from_unix_timestamp_millis(millis, &rand::random()).into_uuid()
}

/// A new request id: a time-ordered UUIDv7 as hyphenated lower-case text (written directly, not
/// through `Display`'s formatting machinery). The handler keys its deduplication records by it.
pub(crate) fn new_request_id() -> String {
    new_v7()
        .hyphenated()
        .encode_lower(&mut Uuid::encode_buffer())
        .to_owned()
}

/// A map keyed by ids (operation ids), hashed with [`IdHasher`].
pub(crate) type IdMap<V> = HashMap<Uuid, V, BuildHasherDefault<IdHasher>>;

/// The hasher of [`IdMap`]s. The ids are made up here at random (and only looked up with ids
/// from elsewhere), so they need no keyed hash against collisions chosen by an attacker: SipHash
/// cost about 3,000 instructions per in-process call. Each 8 bytes are folded in and spread with
/// a multiply, which keeps structured ids (sequential ones in tests) well spread too.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0.rotate_left(29) ^ u64::from_le_bytes(word))
                .wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_usize(&mut self, _length_prefix: usize) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v4_and_distinct() {
        let a = new_v4();
        let b = new_v4();
        assert_eq!(a.get_version(), Some(uuid::Version::Random));
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert_ne!(a, b);
    }

    #[test]
    fn v7_ids_are_time_ordered_and_distinct() {
        let a = new_v7();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = new_v7();
        assert_eq!(a.get_version(), Some(uuid::Version::SortRand));
        assert_eq!(a.get_variant(), uuid::Variant::RFC4122);
        assert!(a < b, "{a} then {b}");
        assert!(a.to_string() < b.to_string(), "their text sorts as they do");
        let same_millisecond: std::collections::HashSet<Uuid> =
            (0..1000).map(|_| new_v7()).collect();
        assert_eq!(same_millisecond.len(), 1000);
        let request_id = Uuid::parse_str(&new_request_id()).expect("a UUID");
        assert_eq!(request_id.get_version_num(), 7);
    }

    #[test]
    fn id_hashes_spread_sequential_ids() {
        use std::hash::BuildHasher as _;
        let build = BuildHasherDefault::<IdHasher>::default();
        let tags: std::collections::HashSet<u64> = (0..64u128)
            .map(|n| build.hash_one(Uuid::from_u128(n)) >> 57)
            .collect();
        // hashbrown keeps the top 7 bits as a tag: sequential ids must not share one.
        assert!(tags.len() > 32, "{tags:?}");
        let mut map = IdMap::default();
        for n in 0..1000u128 {
            map.insert(Uuid::from_u128(n), n);
        }
        assert_eq!(map.get(&Uuid::from_u128(999)), Some(&999));
    }
}
