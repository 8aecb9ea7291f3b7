//! Calls within one process: the dispatch path, operations completed elsewhere, listing and
//! canceling operations, the endpoint registry (feature `registry`), and the test kit (feature
//! `testing`).

pub mod completed_elsewhere;
pub mod dispatch;
pub mod operations_listing;
pub mod registry;
pub mod testing_kit;
