//! [`ContentHeaders`]: a payload's content headers, a sorted map that holds the content type
//! apart, so that the payloads the runtime makes (JSON, raw bytes) allocate nothing for it.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key of the content type (HTTP `Content-Type`).
const TYPE: &str = "type";

/// A payload's content headers: a map from key to value, sorted by key, whose keys are lower-case
/// and without the `content-` prefix (an HTTP `Content-Type` header is the key `type`,
/// `Content-Encoding` is `encoding`, and so on).
///
/// It reads and writes like a `BTreeMap<String, String>` (and converts from and into one, and
/// serializes as one); the content type is held apart, borrowed when it is a `&'static str`
/// ([`with_type`](Self::with_type)), so that a JSON payload's headers cost no allocation.
///
/// ```
/// use nexus_runtime::codec::ContentHeaders;
/// let mut headers = ContentHeaders::with_type("application/json");
/// headers.insert("encoding".to_owned(), "gzip".to_owned());
/// assert_eq!(headers.get("type"), Some("application/json"));
/// assert_eq!(&headers["encoding"], "gzip");
/// let keys: Vec<_> = headers.iter().map(|(key, _)| key).collect();
/// assert_eq!(keys, ["encoding", "type"]);
/// ```
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct ContentHeaders {
    /// The `type` header.
    content_type: Option<Cow<'static, str>>,
    /// Every other header.
    others: BTreeMap<String, String>,
}

impl ContentHeaders {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Only a content type (`type`); a `&'static str` is borrowed, not copied.
    pub fn with_type(content_type: impl Into<Cow<'static, str>>) -> Self {
        Self {
            content_type: Some(content_type.into()),
            others: BTreeMap::new(),
        }
    }

    /// Sets the content type (`type`); a `&'static str` is borrowed, not copied.
    pub fn set_type(&mut self, content_type: impl Into<Cow<'static, str>>) {
        self.content_type = Some(content_type.into());
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        if key == TYPE {
            self.content_type.as_deref()
        } else {
            self.others.get(key).map(String::as_str)
        }
    }

    /// Whether `key` has a value.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key` to `value`; its previous value, if any.
    pub fn insert(&mut self, key: String, value: String) -> Option<String> {
        if key == TYPE {
            self.content_type
                .replace(Cow::Owned(value))
                .map(Cow::into_owned)
        } else {
            self.others.insert(key, value)
        }
    }

    /// Removes `key`; its value, if it had one.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        if key == TYPE {
            self.content_type.take().map(Cow::into_owned)
        } else {
            self.others.remove(key)
        }
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.others.len() + usize::from(self.content_type.is_some())
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.content_type.is_none() && self.others.is_empty()
    }

    /// The headers, sorted by key.
    pub fn iter(&self) -> Iter<'_> {
        use std::ops::Bound::{Excluded, Unbounded};
        let pair: PairFn<'_> = |(key, value)| (key, value);
        let before = self
            .others
            .range::<str, _>((Unbounded, Excluded(TYPE)))
            .map(pair);
        let after = self
            .others
            .range::<str, _>((Excluded(TYPE), Unbounded))
            .map(pair);
        let content_type = self.content_type.as_deref().map(|value| (TYPE, value));
        Iter(before.chain(content_type).chain(after))
    }
}

type PairFn<'a> = fn((&'a String, &'a String)) -> (&'a str, &'a str);
type Part<'a> = std::iter::Map<std::collections::btree_map::Range<'a, String, String>, PairFn<'a>>;

/// The headers before `type`, then `type`, then the others.
type Parts<'a> = std::iter::Chain<std::iter::Chain<Part<'a>, Single<'a>>, Part<'a>>;
type Single<'a> = std::option::IntoIter<(&'a str, &'a str)>;

/// The headers of a [`ContentHeaders`], sorted by key (see [`ContentHeaders::iter`]).
pub struct Iter<'a>(Parts<'a>);

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next()
    }
}

impl<'a> IntoIterator for &'a ContentHeaders {
    type Item = (&'a str, &'a str);
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl std::ops::Index<&str> for ContentHeaders {
    type Output = str;

    /// The value of `key`; panics if it has none, as a map's index does.
    fn index(&self, key: &str) -> &str {
        self.get(key)
            .unwrap_or_else(|| panic!("no content header `{key}`"))
    }
}

impl FromIterator<(String, String)> for ContentHeaders {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(pairs: I) -> Self {
        let mut headers = Self::new();
        headers.extend(pairs);
        headers
    }
}

impl Extend<(String, String)> for ContentHeaders {
    fn extend<I: IntoIterator<Item = (String, String)>>(&mut self, pairs: I) {
        for (key, value) in pairs {
            self.insert(key, value);
        }
    }
}

impl From<BTreeMap<String, String>> for ContentHeaders {
    fn from(mut others: BTreeMap<String, String>) -> Self {
        let content_type = others.remove(TYPE).map(Cow::Owned);
        Self {
            content_type,
            others,
        }
    }
}

impl<const N: usize> From<[(String, String); N]> for ContentHeaders {
    fn from(pairs: [(String, String); N]) -> Self {
        pairs.into_iter().collect()
    }
}

impl From<ContentHeaders> for BTreeMap<String, String> {
    fn from(headers: ContentHeaders) -> Self {
        let mut map = headers.others;
        if let Some(content_type) = headers.content_type {
            map.insert(TYPE.to_owned(), content_type.into_owned());
        }
        map
    }
}

impl fmt::Debug for ContentHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl Serialize for ContentHeaders {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

impl<'de> Deserialize<'de> for ContentHeaders {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::<String, String>::deserialize(deserializer).map(Self::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn it_reads_writes_and_orders_as_the_map_it_stands_for() {
        let pairs = [
            ("a", "1"),
            ("type", "text/plain"),
            ("u", "2"),
            ("length", "3"),
        ];
        let headers = ContentHeaders::from(map(&pairs));
        assert_eq!(headers.len(), 4);
        let listed: Vec<_> = headers.iter().collect();
        let expected = map(&pairs);
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(listed, expected, "sorted by key, the type among the others");
        assert_eq!(BTreeMap::from(headers.clone()), map(&pairs));
        assert_eq!(
            serde_json::to_string(&headers).ok().as_deref(),
            Some(r#"{"a":"1","length":"3","type":"text/plain","u":"2"}"#)
        );
        let back: ContentHeaders =
            serde_json::from_str(r#"{"u":"2","type":"text/plain","length":"3","a":"1"}"#)
                .unwrap_or_default();
        assert_eq!(back, headers);
        assert_eq!(format!("{headers:?}"), format!("{:?}", map(&pairs)));
    }

    #[test]
    fn the_type_is_a_header_like_the_others() {
        let mut headers = ContentHeaders::with_type("application/json");
        assert_eq!(
            headers,
            ContentHeaders::from(map(&[("type", "application/json")]))
        );
        assert!(headers.contains_key("type") && !headers.contains_key("encoding"));
        assert_eq!(
            headers
                .insert("type".into(), "text/plain".into())
                .as_deref(),
            Some("application/json")
        );
        assert_eq!(headers.insert("encoding".into(), "gzip".into()), None);
        assert_eq!(&headers["type"], "text/plain");
        assert_eq!(headers.remove("type").as_deref(), Some("text/plain"));
        assert_eq!(headers.get("type"), None);
        assert_eq!(headers.len(), 1);
        assert_eq!(headers.remove("encoding").as_deref(), Some("gzip"));
        assert!(headers.is_empty());
        assert_eq!(headers, ContentHeaders::new());
    }
}
