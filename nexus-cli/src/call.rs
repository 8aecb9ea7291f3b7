//! `nexus call` and `nexus cancel`.

use std::io::IsTerminal as _;
use std::path::Path;

use nexus_runtime::client::{EndpointConfig, Untyped};
use nexus_runtime::machinery::RetryPolicy;
use nexus_runtime::server::{CallbackListener, ServerHandle};
use nexus_runtime::transport::{CancelRequest, StartRequest, StartResponse, Transport as _};
use nexus_runtime::{CallOptions, Client, OperationHandle};
use tokio::time::Instant;

use crate::connect::{ConnectArgs, read_input, resolve_endpoint};
use crate::fail::Failure;

/// The endpoint name calls use inside the tool's client.
const ENDPOINT: &str = "target";

/// `nexus call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The handler: a base URL (`http://127.0.0.1:7243`) or an endpoint of the registry.
    pub endpoint: String,
    /// The service's wire name, such as `fraud.v1`.
    pub service: String,
    /// The operation's wire name, such as `getQuickScore`.
    pub operation: String,
    /// The input: JSON, `@FILE`, or `-` for stdin; none for an operation that takes no value.
    pub input: Option<String>,
    /// The request id (default: a new UUID); the handler deduplicates starts on it.
    #[arg(long, value_name = "ID")]
    pub request_id: Option<String>,
    /// Print the token of an asynchronous operation instead of waiting for its result.
    #[arg(long)]
    pub no_wait: bool,
    #[command(flatten)]
    pub callback: CallbackArgs,
    /// Start attempts at most (retryable errors are retried within --timeout).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub attempts: u32,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `nexus cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The handler: a base URL or an endpoint of the registry.
    pub endpoint: String,
    /// The service's wire name.
    pub service: String,
    /// The operation's wire name.
    pub operation: String,
    /// The operation token (`nexus call --no-wait` prints it).
    #[arg(value_name = "TOKEN")]
    pub operation_token: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// Where the tool receives completions of asynchronous operations.
#[derive(Debug, Clone, clap::Args)]
pub struct CallbackArgs {
    /// Where the tool receives the completion of an asynchronous operation; the handler must
    /// be allowed to reach it (a handler elsewhere needs an address it can reach).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub callback_listen: String,
    /// Receive completions over HTTPS with this PEM certificate chain (with
    /// --callback-tls-key); the handler must trust its CA.
    #[arg(long, value_name = "FILE", requires = "callback_tls_key")]
    pub callback_tls_cert: Option<std::path::PathBuf>,
    /// The private key of --callback-tls-cert.
    #[arg(long, value_name = "FILE", requires = "callback_tls_cert")]
    pub callback_tls_key: Option<std::path::PathBuf>,
}

/// A client of one handler, with its callback receiver (kept alive with it).
pub struct ToolClient {
    /// The client; its endpoint is [`ENDPOINT`].
    pub client: Client,
    _receiver: ServerHandle,
}

impl ToolClient {
    /// A client of the handler at `url`, receiving completions as `callback` says.
    pub async fn new(
        url: &str,
        connect: &ConnectArgs,
        callback: &CallbackArgs,
        attempts: u32,
    ) -> Result<Self, Failure> {
        let transport = connect.transport(url)?;
        let address = &callback.callback_listen;
        let mut listener = CallbackListener::bind(address.as_str())
            .await
            .map_err(|e| {
                Failure::usage(format!("cannot listen for completions on {address}: {e}"))
            })?;
        if let (Some(cert), Some(key)) = (&callback.callback_tls_cert, &callback.callback_tls_key) {
            let tls = nexus_runtime::tls::TlsServerConfig::from_pem_files(cert, key)
                .build()
                .map_err(|e| Failure::usage(format!("callback TLS: {e}")))?;
            listener = listener.tls(tls);
        }
        let config = EndpointConfig::new(transport)
            .retry(RetryPolicy::default().maximum_attempts(attempts.max(1)))
            .request_timeout(connect.timeout)
            .schedule_to_close_timeout(connect.timeout);
        let client = Client::builder()
            .endpoint(ENDPOINT, config)
            .callback_url(listener.callback_url())
            .build();
        let receiver = listener
            .serve(client.clone())
            .map_err(|e| Failure::usage(format!("cannot serve the callback receiver: {e}")))?;
        Ok(Self {
            client,
            _receiver: receiver,
        })
    }

    /// Schedules one untyped call.
    pub fn schedule(
        &self,
        service: &str,
        operation: &str,
        input: Option<serde_json::Value>,
        options: CallOptions,
    ) -> Result<OperationHandle<Untyped>, Failure> {
        self.client
            .schedule_untyped(ENDPOINT, service, operation, input, options)
            .map_err(Failure::from)
    }
}

fn options(connect: &ConnectArgs, request_id: Option<&str>) -> CallOptions {
    let mut options = CallOptions::new();
    if let Some(id) = request_id {
        options = options.request_id(id);
    }
    for (name, value) in &connect.headers {
        options = options.header(name, value.clone());
    }
    options
}

fn print_json(value: &serde_json::Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    anstream::println!("{text}");
}

/// Runs `nexus call`.
pub async fn call(args: CallArgs, registry: &Path) -> Result<(), Failure> {
    let url = resolve_endpoint(&args.endpoint, registry)?;
    let input = read_input(args.input.as_deref())?;
    if args.no_wait {
        return start_without_waiting(&args, &url, input).await;
    }
    let tool = ToolClient::new(&url, &args.connect, &args.callback, args.attempts).await?;
    let handle = tool.schedule(
        &args.service,
        &args.operation,
        input,
        options(&args.connect, args.request_id.as_deref()),
    )?;
    handle.wait_started().await.map_err(Failure::from)?;
    if let Some(token) = handle.token()
        && std::io::stderr().is_terminal()
    {
        let dim = anstyle::Style::new().dimmed();
        anstream::eprintln!(
            "{dim}started asynchronously (token {token}); waiting for the result{dim:#}"
        );
    }
    let result = handle.result().await.map_err(Failure::from)?;
    print_json(&result);
    Ok(())
}

/// `--no-wait`: one start request without a callback; prints the result of a synchronous
/// answer, or `{"token": …}` for an asynchronous one.
async fn start_without_waiting(
    args: &CallArgs,
    url: &str,
    input: Option<serde_json::Value>,
) -> Result<(), Failure> {
    let transport = args.connect.transport(url)?;
    let input = match input {
        Some(value) => nexus_runtime::codec::encode(&value)
            .map_err(|e| Failure::usage(format!("cannot encode the input: {e}")))?,
        None => nexus_runtime::codec::Content::empty(),
    };
    let request = StartRequest {
        service: args.service.clone(),
        operation: args.operation.clone(),
        request_id: args
            .request_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        headers: args.connect.headers.iter().cloned().collect(),
        links: Vec::new(),
        callback: None,
        request_deadline: Some(Instant::now() + args.connect.timeout),
        operation_timeout: None,
        input,
    };
    match transport.start(request).await.map_err(Failure::from)? {
        StartResponse::Sync { output, .. } => {
            let value: serde_json::Value = nexus_runtime::codec::decode(&output)
                .map_err(|e| Failure::no_answer(format!("the result is not JSON: {e}")))?;
            print_json(&value);
        }
        StartResponse::Async { token, .. } => print_json(&serde_json::json!({ "token": token })),
    }
    Ok(())
}

/// Runs `nexus cancel`.
pub async fn cancel(args: CancelArgs, registry: &Path) -> Result<(), Failure> {
    let url = resolve_endpoint(&args.endpoint, registry)?;
    let transport = args.connect.transport(&url)?;
    let request = CancelRequest {
        service: args.service,
        operation: args.operation,
        token: args.operation_token,
        headers: args.connect.headers.iter().cloned().collect(),
        request_deadline: Some(Instant::now() + args.connect.timeout),
    };
    transport.cancel(request).await.map_err(Failure::from)?;
    anstream::eprintln!("cancel requested");
    Ok(())
}
