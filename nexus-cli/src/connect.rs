//! What every command that talks to a handler shares: the endpoint (a URL or a registry name),
//! headers, timeout, TLS and bearer token, and the input.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nexus_runtime::registry::{RegistryFile, Target};
use nexus_runtime::tls::TlsClientConfig;
use nexus_runtime::transport::HttpTransport;

use crate::fail::Failure;

/// The registry file used when `--registry` and `NEXUS_REGISTRY` are not given.
pub const DEFAULT_REGISTRY: &str = "nexus-endpoints.toml";

/// How to reach a handler.
#[derive(Debug, Clone, clap::Args)]
pub struct ConnectArgs {
    /// Send this header with the request (repeatable), such as `--header x-tenant=acme`.
    #[arg(long = "header", short = 'H', value_name = "K=V", value_parser = parse_header)]
    pub headers: Vec<(String, String)>,
    /// How long to wait for the answer (for `call`: for the result), such as `30s` or `2m`.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// Trust this PEM CA, besides Mozilla's roots, for an https:// endpoint.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// Present this PEM client certificate (mTLS; with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// Send `Authorization: Bearer TOKEN` (or set NEXUS_TOKEN).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "NEXUS_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

fn parse_header(text: &str) -> Result<(String, String), String> {
    let (name, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not K=V"))?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() {
        return Err(format!("`{text}` has an empty header name"));
    }
    Ok((name, value.to_owned()))
}

/// The base URL of `endpoint`: itself if it is a URL, else the first HTTP target of the
/// registry entry with that name.
pub fn resolve_endpoint(endpoint: &str, registry: &Path) -> Result<String, Failure> {
    if endpoint.contains("://") {
        return Ok(endpoint.to_owned());
    }
    let file = RegistryFile::read(registry).map_err(|e| Failure::usage(e.to_string()))?;
    let entry = file.endpoints.get(endpoint).ok_or_else(|| {
        Failure::usage(format!(
            "`{endpoint}` is neither a URL nor an endpoint of the registry {} (known: {})",
            registry.display(),
            if file.endpoints.is_empty() {
                "none".to_owned()
            } else {
                file.endpoints
                    .keys()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        ))
    })?;
    entry
        .targets
        .iter()
        .find_map(|target| match target {
            Target::Url(url) | Target::Temporal(url) => Some(url.clone()),
            Target::InProcess(_) => None,
        })
        .ok_or_else(|| {
            Failure::usage(format!(
                "endpoint `{endpoint}` has no HTTP target (in-process targets are only reachable inside their process)"
            ))
        })
}

impl ConnectArgs {
    /// The TLS configuration of --ca/--cert/--key.
    pub fn tls(&self) -> Result<TlsClientConfig, Failure> {
        let mut builder = TlsClientConfig::builder();
        if let Some(ca) = &self.ca {
            builder = builder.root_ca_file(ca);
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            builder = builder.identity_files(cert, key);
        }
        builder.build().map_err(|e| Failure::usage(e.to_string()))
    }

    /// The transport to `url`.
    pub fn transport(&self, url: &str) -> Result<HttpTransport, Failure> {
        let mut builder = HttpTransport::builder(url).tls(self.tls()?);
        if let Some(token) = &self.token {
            builder = builder.bearer_token(token);
        }
        builder.build().map_err(|e| Failure::usage(e.to_string()))
    }
}

/// The input argument: JSON text, `@FILE`, `-` for stdin; `None` for no value.
pub fn read_input(arg: Option<&str>) -> Result<Option<serde_json::Value>, Failure> {
    let Some(arg) = arg else { return Ok(None) };
    let (text, source) = if arg == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Failure::usage(format!("cannot read the input from stdin: {e}")))?;
        (text, "stdin".to_owned())
    } else if let Some(path) = arg.strip_prefix('@') {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("cannot read the input file {path}: {e}")))?;
        (text, path.to_owned())
    } else {
        (arg.to_owned(), "the input argument".to_owned())
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Failure::usage(format!("{source} is not JSON: {e}")))
}
