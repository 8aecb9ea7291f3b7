//! The stores: one suite run on the memory store, SQLite and PostgreSQL (`suite`), what is
//! particular to SQLite and PostgreSQL, and SQLite under faults.

#[path = "../support/mod.rs"]
mod support;

pub mod faults;
pub mod postgres;
pub mod sqlite;
mod suite;
