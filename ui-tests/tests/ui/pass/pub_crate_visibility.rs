//! Restricted visibilities: the generated items take the trait's visibility (`pub(crate)`,
//! `pub(super)`, private) and are usable wherever the trait is.

mod internal {
    use nexus_runtime::{OperationContext, OperationResult, nexus_service};

    #[nexus_service(name = "internal.v1")]
    pub(crate) trait Audit {
        async fn record(&self, ctx: OperationContext, entry: String) -> OperationResult<usize>;
    }

    pub(crate) struct Log;

    impl Audit for Log {
        async fn record(&self, _ctx: OperationContext, entry: String) -> OperationResult<usize> {
            Ok(entry.len().into())
        }
    }

    pub(crate) mod nested {
        use nexus_runtime::{OperationContext, OperationResult, nexus_service};

        #[nexus_service(name = "nested.v1")]
        pub(super) trait Nested {
            async fn get(&self, ctx: OperationContext) -> OperationResult<u8>;
        }

        #[nexus_service(name = "private.v1")]
        trait Private {
            async fn get(&self, ctx: OperationContext) -> OperationResult<u8>;
        }

        pub(crate) struct Both;

        impl Nested for Both {
            async fn get(&self, _ctx: OperationContext) -> OperationResult<u8> {
                Ok(1.into())
            }
        }

        impl Private for Both {
            async fn get(&self, _ctx: OperationContext) -> OperationResult<u8> {
                Ok(2.into())
            }
        }

        pub(crate) fn private_handler() -> impl nexus_runtime::service::ServiceHandler {
            let _: private::Get = private::Get;
            PrivateService::handler(Both)
        }
    }

    pub(crate) fn nested_handler() -> impl nexus_runtime::service::ServiceHandler {
        let _: nested::nested::Get = nested::nested::Get;
        nested::NestedService::handler(nested::Both)
    }
}

use nexus_runtime::service::{Dispatcher, ServiceHandler};
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, Operation, Service};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(internal::AuditService::NAME, "internal.v1");
    assert_eq!(internal::audit::Record::NAME, "record");
    assert_eq!(internal::nested_handler().name(), "nested.v1");
    assert_eq!(internal::nested::private_handler().name(), "private.v1");
    let dispatcher = Dispatcher::builder()
        .service(internal::AuditService::handler(internal::Log))
        .build();
    let client = Client::builder()
        .endpoint("audit", InProcessTransport::new(dispatcher))
        .build();
    let audit = internal::AuditClient::new(client, "audit");
    assert_eq!(audit.record("login".into()).await.unwrap(), 5);
}
