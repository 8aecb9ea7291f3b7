//! Reading a running handler's definition: `GET {base}/definitions`, served by a
//! [`HandlerServer`](crate::http::HandlerServer) built with
//! [`definitions`](crate::http::HandlerServerBuilder::definitions).

use std::time::Duration;

use super::{HttpTransport, transport_error};
use crate::definition::Definition;
use crate::error::{CallError, HandlerError, HandlerErrorType, TransportError, TransportErrorKind};

/// The largest definition document read.
const MAX_DEFINITION_BYTES: usize = 8 << 20;

impl HttpTransport {
    /// The handler's service definition, from `GET {base}/definitions`, with this transport's
    /// TLS and bearer token. A handler that does not serve it answers NOT_FOUND (a
    /// [`CallError::Handler`]); an answer that is not a definition is a protocol error.
    pub async fn fetch_definition(&self, timeout: Duration) -> Result<Definition, CallError> {
        let url = format!("{}{}", self.inner.base, "/definitions");
        let mut request = self.inner.client.get(&url).timeout(timeout);
        if let Some(authorization) = &self.inner.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization.clone());
        }
        let response = request.send().await.map_err(|e| transport_error(&url, e))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(&url, e))?;
        let protocol = |message: String| {
            CallError::Transport(TransportError::new(TransportErrorKind::Protocol, message))
        };
        if body.len() > MAX_DEFINITION_BYTES {
            return Err(protocol(format!(
                "GET {url}: the definition is larger than {MAX_DEFINITION_BYTES} bytes"
            )));
        }
        if !status.is_success() {
            let failure = serde_json::from_slice::<crate::Failure>(&body)
                .map(|f| f.message)
                .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
            let error = HandlerErrorType::from_http_status(status.as_u16())
                .map(|kind| HandlerError::new(kind, format!("GET {url}: {failure}")));
            return Err(match error {
                Some(error) => CallError::Handler(error),
                None => protocol(format!("GET {url}: status {status}: {failure}")),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| protocol(format!("GET {url}: not a service definition: {e}")))
    }
}
