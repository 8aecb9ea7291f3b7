//! Links: references between the caller's and the handler's records of one operation (for example
//! a Temporal workflow event), carried in `Nexus-Link` headers.

use std::fmt;

/// A link to a resource related to an operation.
///
/// `url` is an absolute URL whose query is already percent-encoded; `link_type` names what the URL
/// points at (for Temporal, the protobuf message name such as
/// `temporal.api.common.v1.Link.WorkflowEvent`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Link {
    /// The URL.
    pub url: String,
    /// What the URL points at; `[A-Za-z0-9_./]+`.
    pub link_type: String,
}

impl Link {
    /// A link.
    pub fn new(url: impl Into<String>, link_type: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            link_type: link_type.into(),
        }
    }
}

impl fmt::Display for Link {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>; type=\"{}\"", self.url, self.link_type)
    }
}
