//! The primitives the runtime's files import under `--cfg loom`: loom's, so that loom sees every
//! step of the structures built on them.

pub use loom::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
pub use loom::sync::{Arc, Mutex, MutexGuard};
