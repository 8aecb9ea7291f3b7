//! The link a caller adds to itself on each start, so the handler's records point back at the
//! operation that started them (as a Temporal caller workflow links its `NexusOperationScheduled`
//! event).

use crate::link::Link;
use crate::store::OperationId;

/// The type of the link a caller adds to itself (see
/// [`ClientBuilder::caller_link_base`](super::ClientBuilder::caller_link_base)).
pub const CALLER_LINK_TYPE: &str = "nexus_rs.CallerOperation";

/// How a client links its starts back to itself.
#[derive(Clone, Debug, Default)]
pub(crate) enum CallerLinks {
    /// `nexus-rs://{callback host and port}/operations/{id}` for a client with a callback URL;
    /// none for one without (an in-process caller has no address to link to, and its hot path
    /// stays free of the allocation).
    #[default]
    Auto,
    /// `{base}/{id}`, a URL of the user's choosing (such as the caller's admin API).
    Base(String),
    /// No link.
    Off,
}

/// What a client adds to each start: the prefix of the URL, completed by the operation id.
#[derive(Clone, Debug)]
pub(crate) struct CallerLinker {
    prefix: Option<String>,
}

impl CallerLinker {
    /// The linker of a client configured with `links` and callback base URL `callback_url`.
    pub fn new(links: CallerLinks, callback_url: Option<&str>) -> Self {
        let prefix = match links {
            CallerLinks::Off => None,
            CallerLinks::Base(base) => Some(format!("{}/", base.trim_end_matches('/'))),
            CallerLinks::Auto => callback_url
                .and_then(|url| url::Url::parse(url).ok())
                .and_then(|url| {
                    let host = url.host_str()?.to_owned();
                    Some(match url.port_or_known_default() {
                        Some(port) => format!("{host}:{port}"),
                        None => host,
                    })
                })
                .map(|authority| format!("nexus-rs://{authority}/operations/")),
        };
        Self { prefix }
    }

    /// Appends the link of operation `id` to `links` (unless links are off).
    pub fn add(&self, id: OperationId, links: &mut Vec<Link>) {
        if let Some(prefix) = &self.prefix {
            links.push(Link::new(format!("{prefix}{id}"), CALLER_LINK_TYPE));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_name_the_callback_authority_a_base_or_nothing() {
        let id = uuid::Uuid::nil();
        let mut links = Vec::new();
        CallerLinker::new(CallerLinks::Auto, Some("http://127.0.0.1:9000/callbacks"))
            .add(id, &mut links);
        CallerLinker::new(CallerLinks::Auto, None).add(id, &mut links);
        CallerLinker::new(
            CallerLinks::Base("https://payments.example/api/operations/".into()),
            None,
        )
        .add(id, &mut links);
        CallerLinker::new(CallerLinks::Off, None).add(id, &mut links);
        let urls: Vec<&str> = links.iter().map(|l| l.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "nexus-rs://127.0.0.1:9000/operations/00000000-0000-0000-0000-000000000000",
                "https://payments.example/api/operations/00000000-0000-0000-0000-000000000000",
            ]
        );
        assert!(links.iter().all(|l| l.link_type == CALLER_LINK_TYPE));
    }
}
