use nexus_runtime::nexus_service;

#[nexus_service]
pub trait Orders {}

struct Shop;

impl Orders for Shop {}

fn main() {}
