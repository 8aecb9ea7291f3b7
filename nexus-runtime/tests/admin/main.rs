//! The admin router (feature `admin`, with `auth`): its JSON API and `/metrics`, and the `/ops`
//! page in headless Chromium.

#[path = "../support/mod.rs"]
mod support;

pub mod api;
pub mod page;
