//! Payload codecs: a transformation of encoded payloads (bytes and content headers) between the
//! serde layer and the wire, such as encryption or compression, applied end to end.
//!
//! The caller encodes inputs and decodes outputs (sync results and completions); the handler
//! decodes inputs and encodes outputs (sync results and async results, before they are recorded or
//! sent). Whatever lies between, the HTTP hops, proxies, and both sides' stores, only ever sees the
//! encoded payloads. Configure one with
//! [`ClientBuilder::payload_codec`](crate::client::ClientBuilder::payload_codec) and
//! [`DispatcherBuilder::payload_codec`](crate::service::DispatcherBuilder::payload_codec).
//!
//! The application details of an operation's error ([`OperationError::with_details`]) go through
//! the codec too, as payloads (see [`details`](super::details)); the rest of a Failure (messages,
//! handler errors) is the protocol's and readable by every hop: keep secrets out of it.
//!
//! [`OperationError::with_details`]: crate::OperationError::with_details

use std::fmt;
use std::sync::Arc;

use super::{CodecError, Content};

/// Transforms encoded payloads on their way to and from the wire.
///
/// `encode` is applied to every payload a side sends (the caller's inputs, the handler's results),
/// `decode` to every payload it receives, so `decode(encode(c))` must give back `c`, headers and
/// data. A decode error is answered BAD_REQUEST on the handler side (its message is sent to the
/// caller: name the problem, never a secret) and is a [`CallError::Codec`](crate::CallError::Codec)
/// on the caller side.
///
/// The trait is synchronous: a codec runs on the path of every call (where an async one would
/// cost a boxed future per payload) and on the caller's synchronous
/// [`Call::schedule`](crate::Call::schedule), which refuses an input that does not encode before
/// returning. Work that needs I/O, such as fetching keys from a key management service, belongs
/// beside the codec: load or refresh the keys in the background and hand the codec the result.
///
/// ```
/// use nexus_runtime::codec::{CodecError, Content, PayloadCodec};
///
/// /// Reverses the bytes of every payload and marks them so.
/// struct Reverse;
///
/// impl PayloadCodec for Reverse {
///     fn encode(&self, mut content: Content) -> Result<Content, CodecError> {
///         let mut data = content.data.to_vec();
///         data.reverse();
///         content.headers.insert("x-reversed".into(), "1".into());
///         content.data = data.into();
///         Ok(content)
///     }
///
///     fn decode(&self, mut content: Content) -> Result<Content, CodecError> {
///         if content.headers.remove("x-reversed").is_none() {
///             return Err(CodecError::new("the payload is not reversed"));
///         }
///         let mut data = content.data.to_vec();
///         data.reverse();
///         content.data = data.into();
///         Ok(content)
///     }
/// }
///
/// let plain = Content::new("application/json", "[1,2]");
/// let wire = Reverse.encode(plain.clone()).unwrap();
/// assert_eq!(&wire.data[..], b"]2,1[");
/// assert_eq!(Reverse.decode(wire).unwrap(), plain);
/// ```
pub trait PayloadCodec: Send + Sync + 'static {
    /// Encodes a payload this side sends.
    fn encode(&self, content: Content) -> Result<Content, CodecError>;

    /// Decodes a payload this side received.
    fn decode(&self, content: Content) -> Result<Content, CodecError>;
}

impl<C: PayloadCodec + ?Sized> PayloadCodec for Arc<C> {
    fn encode(&self, content: Content) -> Result<Content, CodecError> {
        (**self).encode(content)
    }

    fn decode(&self, content: Content) -> Result<Content, CodecError> {
        (**self).decode(content)
    }
}

impl<C: PayloadCodec + ?Sized> PayloadCodec for Box<C> {
    fn encode(&self, content: Content) -> Result<Content, CodecError> {
        (**self).encode(content)
    }

    fn decode(&self, content: Content) -> Result<Content, CodecError> {
        (**self).decode(content)
    }
}

/// Several codecs as one: `encode` runs them in the order they were added (the first sees the
/// serialized payload, the last writes what goes on the wire), `decode` in the reverse order.
///
/// Compress before encrypting (ciphertext does not compress):
/// `CodecChain::new().then(compression).then(encryption)`.
///
/// ```
/// use nexus_runtime::codec::{CodecChain, CodecError, Content, PayloadCodec};
///
/// /// Appends a byte on encode and checks and removes it on decode.
/// struct Suffix(u8);
///
/// impl PayloadCodec for Suffix {
///     fn encode(&self, mut content: Content) -> Result<Content, CodecError> {
///         let mut data = content.data.to_vec();
///         data.push(self.0);
///         content.data = data.into();
///         Ok(content)
///     }
///
///     fn decode(&self, mut content: Content) -> Result<Content, CodecError> {
///         match content.data.last() {
///             Some(last) if *last == self.0 => {
///                 content.data.truncate(content.data.len() - 1);
///                 Ok(content)
///             }
///             _ => Err(CodecError::new(format!("no suffix {}", self.0))),
///         }
///     }
/// }
///
/// let chain = CodecChain::new().then(Suffix(b'a')).then(Suffix(b'b'));
/// let wire = chain.encode(Content::new("text/plain", "x")).unwrap();
/// assert_eq!(&wire.data[..], b"xab");
/// assert_eq!(&chain.decode(wire).unwrap().data[..], b"x");
/// ```
#[derive(Clone, Default)]
pub struct CodecChain {
    codecs: Vec<Arc<dyn PayloadCodec>>,
}

impl CodecChain {
    /// An empty chain (it leaves payloads as they are).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `codec` after the codecs already in the chain.
    #[must_use]
    pub fn then(mut self, codec: impl PayloadCodec) -> Self {
        self.codecs.push(Arc::new(codec));
        self
    }

    /// Adds a shared codec after the codecs already in the chain.
    #[must_use]
    pub fn then_arc(mut self, codec: Arc<dyn PayloadCodec>) -> Self {
        self.codecs.push(codec);
        self
    }

    /// The number of codecs in the chain.
    pub fn len(&self) -> usize {
        self.codecs.len()
    }

    /// Whether the chain has no codec.
    pub fn is_empty(&self) -> bool {
        self.codecs.is_empty()
    }
}

impl fmt::Debug for CodecChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodecChain")
            .field("len", &self.codecs.len())
            .finish()
    }
}

impl PayloadCodec for CodecChain {
    fn encode(&self, content: Content) -> Result<Content, CodecError> {
        self.codecs
            .iter()
            .try_fold(content, |content, codec| codec.encode(content))
    }

    fn decode(&self, content: Content) -> Result<Content, CodecError> {
        self.codecs
            .iter()
            .rev()
            .try_fold(content, |content, codec| codec.decode(content))
    }
}

/// The codec a builder was given: none, one, or (given several times) a chain of them in order.
#[derive(Clone, Default)]
pub(crate) struct CodecSlot(Option<Arc<dyn PayloadCodec>>);

impl CodecSlot {
    /// Adds `codec` after the one already set, if any.
    pub fn push(&mut self, codec: Arc<dyn PayloadCodec>) {
        self.0 = Some(match self.0.take() {
            None => codec,
            Some(first) => Arc::new(CodecChain::new().then_arc(first).then_arc(codec)),
        });
    }

    /// The configured codec.
    pub fn get(&self) -> Option<&Arc<dyn PayloadCodec>> {
        self.0.as_ref()
    }

    /// Whether a codec is set.
    pub fn is_set(&self) -> bool {
        self.0.is_some()
    }
}

impl fmt::Debug for CodecSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_set() { "Some(..)" } else { "None" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prefixes the data with a tag byte, and refuses data without it.
    struct Tag(u8);

    impl PayloadCodec for Tag {
        fn encode(&self, mut content: Content) -> Result<Content, CodecError> {
            let mut data = vec![self.0];
            data.extend_from_slice(&content.data);
            content.data = data.into();
            Ok(content)
        }

        fn decode(&self, mut content: Content) -> Result<Content, CodecError> {
            if content.data.first() != Some(&self.0) {
                return Err(CodecError::new(format!("missing tag {}", self.0)));
            }
            content.data = content.data.slice(1..);
            Ok(content)
        }
    }

    #[test]
    fn a_chain_encodes_in_order_and_decodes_in_reverse() {
        let chain = CodecChain::new().then(Tag(1)).then(Tag(2));
        let plain = Content::new("application/json", "{}");
        let wire = chain.encode(plain.clone()).unwrap();
        assert_eq!(&wire.data[..], b"\x02\x01{}");
        assert_eq!(chain.decode(wire).unwrap(), plain);
        let err = chain
            .decode(Content::new("application/json", "\x01{}"))
            .unwrap_err();
        assert_eq!(err.to_string(), "missing tag 2");
        assert_eq!(chain.len(), 2);
        assert!(CodecChain::new().is_empty());
        assert_eq!(CodecChain::new().encode(plain.clone()).unwrap(), plain);
    }

    #[test]
    fn a_slot_given_several_codecs_chains_them_in_order() {
        let mut slot = CodecSlot::default();
        assert!(!slot.is_set());
        slot.push(Arc::new(Tag(1)));
        slot.push(Arc::new(Tag(2)));
        slot.push(Arc::new(Tag(3)));
        let codec = slot.get().unwrap();
        let wire = codec.encode(Content::new("text/plain", "x")).unwrap();
        assert_eq!(&wire.data[..], b"\x03\x02\x01x");
        assert_eq!(&codec.decode(wire).unwrap().data[..], b"x");
    }
}
