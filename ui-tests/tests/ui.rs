//! The `#[nexus_service]` UI suite.
//!
//! - `tests/ui/fail/*.rs` must fail to compile, with exactly the errors in the `.stderr` file next
//!   to each case: one mistake, one error, at the offending token, saying what to write instead.
//! - `tests/ui/pass/*.rs` must compile and run (each is a `fn main()` that calls the generated API).
//!
//! After a deliberate change to a message, regenerate the expected output with
//!
//! ```text
//! TRYBUILD=overwrite cargo test -p nexus-ui-tests
//! ```
//!
//! and review every changed `.stderr` by hand before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
