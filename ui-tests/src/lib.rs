//! Compile-fail and compile-pass tests of `#[nexus_service]`, run with trybuild.
//!
//! This crate has no code of its own: see `tests/ui.rs` and the cases under `tests/ui/`.
