//! The examples' admin flags: `--admin-listen ADDR` serves the admin router (Prometheus metrics
//! at `/metrics`, the pending-operations page at `/ops`, the JSON API under `/api`), behind
//! `--admin-token TOKEN` (a bearer token). Without a token the router serves loopback only.

use nexus_runtime::Client;
use nexus_runtime::admin::Admin;
use nexus_runtime::http::ServerHandle;
use nexus_runtime::security::{BearerAuthenticator, StaticTokens};
use nexus_runtime::service::Dispatcher;

/// `--admin-listen` and `--admin-token`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct AdminArgs {
    /// Serve the admin router on ADDR: `/metrics` (Prometheus), `/ops` (the pending-operations
    /// page), `/api/...` (JSON). Without `--admin-token`, a loopback address only.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
    /// The bearer token the admin router requires (the page takes it as `/ops#token=TOKEN`).
    #[arg(long, value_name = "TOKEN", requires = "admin_listen")]
    pub admin_token: Option<String>,
}

impl AdminArgs {
    /// The base URL of the admin API's operations, for the caller's links to itself
    /// (`http://{admin}/api/operations`), when the admin router listens on a fixed address.
    pub fn operations_url(&self) -> Option<String> {
        let addr = self.admin_listen.as_deref()?;
        let port = addr.rsplit(':').next()?;
        (port != "0").then(|| format!("http://{addr}/api/operations"))
    }

    /// Installs the Prometheus recorder and serves the admin router, if `--admin-listen` was
    /// given; prints where on stderr.
    pub async fn serve(
        &self,
        client: Option<Client>,
        dispatcher: Option<Dispatcher>,
    ) -> Result<Option<ServerHandle>, String> {
        let Some(addr) = &self.admin_listen else {
            return Ok(None);
        };
        let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(|e| format!("cannot install the Prometheus recorder: {e}"))?;
        let mut builder = Admin::builder().metrics(metrics);
        if let Some(client) = client {
            builder = builder.client(client);
        }
        if let Some(dispatcher) = dispatcher {
            builder = builder.dispatcher(dispatcher);
        }
        builder = match &self.admin_token {
            Some(token) => builder.authenticator(BearerAuthenticator::new(
                StaticTokens::new().token("admin", token),
            )),
            None => builder.allow_unauthenticated_loopback(),
        };
        let admin = builder.build().map_err(|e| e.to_string())?;
        let running = admin
            .bind(addr.as_str())
            .await
            .map_err(|e| format!("--admin-listen {addr}: {e}"))?;
        eprintln!("admin page: {}/ops", running.url());
        Ok(Some(running))
    }
}
