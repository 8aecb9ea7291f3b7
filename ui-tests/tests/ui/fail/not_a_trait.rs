use nexus_runtime::nexus_service;

#[nexus_service]
pub struct Orders;

impl Orders {
    pub fn new() -> Self {
        Orders
    }
}

fn main() {
    let _ = Orders::new();
}
