//! The endpoint registry: its file loaded, changed by others and reloaded (on demand and by the
//! watcher), changed through the API (written back), a client resolving names through it at
//! every call without being rebuilt, refused callers, and the audit log of all of it.
#![cfg(feature = "registry")]
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use nexus_runtime::registry::{
    AuditEvent, AuditLog, EndpointEntry, EndpointRegistry, RegistryError, RegistryFile, Target,
};
use nexus_runtime::security::Principal;
use nexus_runtime::service::Dispatcher;
use nexus_runtime::{CallError, Client, OperationContext, OperationResult, nexus_service};

/// Echoes its input.
#[nexus_service(name = "echo.v1")]
pub trait Echo {
    /// Echoes `input`.
    async fn echo(&self, ctx: OperationContext, input: String) -> OperationResult<String>;
}

/// Answers its input prefixed with its name, so a test sees which dispatcher answered.
struct Named(&'static str);

impl Echo for Named {
    async fn echo(&self, _: OperationContext, input: String) -> OperationResult<String> {
        Ok(format!("{}: {input}", self.0).into())
    }
}

fn dispatcher(name: &'static str) -> Dispatcher {
    Dispatcher::builder()
        .service(EchoService::handler(Named(name)))
        .build()
}

fn actions(path: &std::path::Path) -> Vec<(String, String, String)> {
    AuditLog::read(path)
        .unwrap()
        .into_iter()
        .map(|e: AuditEvent| (e.who, e.action, e.endpoint))
        .collect()
}

fn triple(who: &str, action: &str, endpoint: &str) -> (String, String, String) {
    (who.into(), action.into(), endpoint.into())
}

const FILE: &str = r#"
[endpoints.echo]
description = "The echo service"
targets = [{ in_process = "blue" }]
allowed_callers = ["payments", "team-*"]
"#;

#[tokio::test]
async fn a_client_follows_the_registry_file_and_api_without_being_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endpoints.toml");
    let audit_path = dir.path().join("audit.jsonl");
    std::fs::write(&path, FILE).unwrap();
    let registry = EndpointRegistry::builder()
        .file(&path)
        .audit_log(AuditLog::open(&audit_path).unwrap())
        .dispatcher("blue", dispatcher("blue"))
        .dispatcher("green", dispatcher("green"))
        .build()
        .unwrap();
    assert_eq!(registry.names(), ["echo"]);
    assert_eq!(
        registry.get("echo").unwrap().description,
        "The echo service"
    );

    let client = Client::builder()
        .registry(registry.clone())
        .caller(Principal::local("payments"))
        .build();
    let echo = EchoClient::new(client.clone(), "echo");
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "blue: hi");

    // Someone edits the file: the next call goes to the new target once it is reloaded.
    std::fs::write(&path, FILE.replace("blue", "green")).unwrap();
    assert!(registry.reload().unwrap());
    assert!(!registry.reload().unwrap(), "nothing changed since");
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "green: hi");

    // A broken file changes nothing and is reported once.
    std::fs::write(&path, "[endpoints.echo]\ntargets = 3\n").unwrap();
    assert!(matches!(registry.reload(), Err(RegistryError::Invalid(_))));
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "green: hi");

    // Changed through the API: written back to the file, used by the next call.
    let entry = EndpointEntry {
        description: "moved back".into(),
        targets: vec![Target::InProcess("blue".into())],
        allowed_callers: vec!["payments".into()],
    };
    registry
        .put(&Principal::local("alice"), "echo", entry.clone())
        .unwrap();
    assert_eq!(echo.echo("hi".into()).await.unwrap(), "blue: hi");
    let written = RegistryFile::read(&path).unwrap();
    assert_eq!(written.endpoints["echo"], entry);
    assert!(!registry.reload().unwrap(), "its own write is not a change");

    // A caller the endpoint does not allow is refused, and audited.
    let other = Client::builder()
        .registry(registry.clone())
        .caller(Principal::local("mallory"))
        .build();
    let refused = EchoClient::new(other, "echo").echo("hi".into()).await;
    match refused {
        Err(CallError::Invalid(message)) => {
            assert!(
                message.contains("`mallory` may not use endpoint `echo`"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // An unknown name is an invalid call naming it.
    let unknown = EchoClient::new(client.clone(), "nope")
        .echo("hi".into())
        .await;
    assert!(matches!(unknown, Err(CallError::Invalid(m)) if m.contains("`nope`")));

    assert!(registry.remove(&Principal::local("bob"), "echo").unwrap());
    assert!(!registry.remove(&Principal::local("bob"), "echo").unwrap());
    assert!(echo.echo("hi".into()).await.is_err());

    assert_eq!(
        actions(&audit_path),
        [
            triple("file", "reload", ""),
            triple("file", "reload-failed", ""),
            triple("alice", "update", "echo"),
            triple("mallory", "refused", "echo"),
            triple("bob", "remove", "echo"),
        ]
    );
    let events = AuditLog::read(&audit_path).unwrap();
    assert_eq!(events[0].detail, "changed echo");
    assert!(
        events[2].detail.contains("in-process:blue"),
        "{}",
        events[2].detail
    );
    assert!(events.iter().all(|e| e.at.ends_with('Z')));
}

#[tokio::test(start_paused = true)]
async fn the_watcher_reloads_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("endpoints.toml");
    std::fs::write(&path, FILE).unwrap();
    let registry = EndpointRegistry::builder().file(&path).build().unwrap();
    let watcher = registry.watch(Duration::from_secs(1));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(registry.names(), ["echo"]);

    let added =
        format!("{FILE}\n[endpoints.other]\ntargets = [{{ url = \"http://127.0.0.1:7243\" }}]\n");
    std::fs::write(&path, added).unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(registry.names(), ["echo", "other"]);
    assert_eq!(
        registry.get("other").unwrap().targets,
        [Target::Url("http://127.0.0.1:7243".into())]
    );
    watcher.abort();
}

#[test]
fn bad_entries_are_refused_with_their_reason() {
    let registry = EndpointRegistry::builder().build().unwrap();
    let who = Principal::local("alice");
    let entry = |targets: Vec<Target>| EndpointEntry {
        targets,
        ..EndpointEntry::default()
    };
    for (name, targets, needle) in [
        ("ok", vec![], "has no targets"),
        (
            "bad name",
            vec![Target::Url("http://h".into())],
            "endpoint name",
        ),
        (
            "ok",
            vec![Target::Url("ftp://h".into())],
            "not an http or https URL",
        ),
        (
            "ok",
            vec![Target::Temporal("nonsense".into())],
            "target `nonsense`",
        ),
    ] {
        let err = registry.put(&who, name, entry(targets)).unwrap_err();
        assert!(err.to_string().contains(needle), "{name}: {err}");
    }
    assert!(registry.names().is_empty());
    assert_eq!(
        Target::parse("temporal:http://h/x").unwrap(),
        Target::Temporal("http://h/x".into())
    );
    assert_eq!(
        Target::parse("in-process:blue").unwrap().to_string(),
        "in-process:blue"
    );
    assert!(Target::parse("h:80").is_err());
}
