//! The contract reads `async fn`; an implementation may write `async fn` bodies or return an
//! `impl Future + Send` explicitly, and may keep state behind a lock. Receivers spelled
//! `self: &Self` and unnamed (`_`) arguments are accepted too.

use std::future::Future;
use std::sync::Mutex;

use nexus_runtime::definition::Definition;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::transport::InProcessTransport;
use nexus_runtime::{Client, OperationContext, OperationResult, nexus_service};

#[nexus_service(name = "notes.v1")]
pub trait Notes {
    async fn add(&self, ctx: OperationContext, note: String) -> OperationResult<usize>;
    async fn count(&self, ctx: OperationContext) -> OperationResult<usize>;
    async fn last(self: &Self, _: OperationContext) -> OperationResult<Option<String>>;
    async fn echo(&self, ctx: OperationContext, _: String) -> OperationResult<()>;
}

#[derive(Default)]
struct Book {
    notes: Mutex<Vec<String>>,
}

impl Notes for Book {
    async fn add(&self, _ctx: OperationContext, note: String) -> OperationResult<usize> {
        let mut notes = self.notes.lock().unwrap();
        notes.push(note);
        Ok(notes.len().into())
    }

    fn count(
        &self,
        _ctx: OperationContext,
    ) -> impl Future<Output = OperationResult<usize>> + Send {
        let count = self.notes.lock().unwrap().len();
        async move { Ok(count.into()) }
    }

    async fn last(&self, _ctx: OperationContext) -> OperationResult<Option<String>> {
        Ok(self.notes.lock().unwrap().last().cloned().into())
    }

    async fn echo(&self, _ctx: OperationContext, _input: String) -> OperationResult<()> {
        Ok(().into())
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(Definition::of::<NotesService>().services["notes.v1"].operations.len(), 4);
    let dispatcher = Dispatcher::builder()
        .service(NotesService::handler(Book::default()))
        .build();
    let client = Client::builder()
        .endpoint("notes", InProcessTransport::new(dispatcher))
        .build();
    let notes = NotesClient::new(client, "notes");
    assert_eq!(notes.add("one".into()).await.unwrap(), 1);
    assert_eq!(notes.add("two".into()).await.unwrap(), 2);
    assert_eq!(notes.count().await.unwrap(), 2);
    assert_eq!(notes.last().await.unwrap().as_deref(), Some("two"));
    notes.echo("ignored".into()).await.unwrap();
}
