//! The generated API works with the runtime renamed to `nexus`.

use nexus::Client;
use nexus::service::Dispatcher;
use nexus::transport::InProcessTransport;
use nexus_ui_renamed::{English, Greet, GreeterClient, GreeterService, greeter};

#[tokio::test]
async fn calls_in_process() {
    let dispatcher = Dispatcher::builder()
        .service(GreeterService::handler(English))
        .build();
    let client = Client::builder()
        .endpoint("greeter", InProcessTransport::new(dispatcher))
        .build();
    let greeter = GreeterClient::new(client, "greeter");
    let answer = greeter
        .hello(Greet { name: "Ada".into() })
        .await
        .expect("the in-process call succeeds");
    assert_eq!(answer, "Hello, Ada!");
}

#[test]
fn definition_names_the_service_and_operation() {
    assert_eq!(<GreeterService as nexus::Service>::NAME, "greeter.v1");
    assert_eq!(<greeter::Hello as nexus::Operation>::NAME, "hello");
    let definition = nexus::definition::Definition::of::<GreeterService>();
    let service = &definition.services["greeter.v1"];
    assert_eq!(service.description.as_deref(), Some("Greets people."));
    assert_eq!(
        service.operations["hello"].description.as_deref(),
        Some("Says hello.")
    );
    assert!(definition.types.contains_key("Greet"));
}
