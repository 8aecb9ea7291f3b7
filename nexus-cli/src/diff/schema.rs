//! Compares two JSON Schemas of one operation's input or output, following `#/types/…`
//! references into each definition's types.

use std::collections::{BTreeSet, HashSet};

use nexus_runtime::definition::Definition;
use serde_json::Value;

use super::Level;

/// Which way values flow: into the handler (old callers' values must still be accepted) or out
/// of it (the new values must still be understood by old callers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Side {
    Input,
    Output,
}

/// A change found inside a schema.
pub(super) struct Found {
    pub level: Level,
    pub kind: &'static str,
    pub path: String,
    pub message: String,
}

/// How deep references are followed and schemas nested before comparison stops.
const MAX_DEPTH: usize = 64;

pub(super) struct Compare<'a> {
    old: &'a Definition,
    new: &'a Definition,
    /// Pairs of referenced types compared already (recursive types end here).
    seen: HashSet<(String, String)>,
    found: Vec<Found>,
    depth: usize,
}

fn ref_name(schema: &Value) -> Option<&str> {
    schema.get("$ref")?.as_str()?.strip_prefix("#/types/")
}

/// The schema `schema` stands for, its `$ref`s followed.
fn resolve<'a>(doc: &'a Definition, mut schema: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        match ref_name(schema).and_then(|name| doc.types.get(name)) {
            Some(target) => schema = target,
            None => break,
        }
    }
    schema
}

/// The JSON types a schema allows (empty: any).
fn types(schema: &Value) -> BTreeSet<String> {
    match schema.get("type") {
        Some(Value::String(t)) => [t.clone()].into(),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(|t| t.as_str().map(str::to_owned))
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Whether a value of JSON type `t` is allowed by `allowed`.
fn accepts(allowed: &BTreeSet<String>, t: &str) -> bool {
    allowed.is_empty() || allowed.contains(t) || (t == "integer" && allowed.contains("number"))
}

fn join(set: &BTreeSet<String>) -> String {
    if set.is_empty() {
        "any".into()
    } else {
        set.iter().cloned().collect::<Vec<_>>().join(" | ")
    }
}

fn required(schema: &Value) -> BTreeSet<String> {
    schema
        .get("required")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(|n| n.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Bounds that a larger value tightens, and those that a smaller value tightens.
const LOWER_BOUNDS: [&str; 4] = ["minimum", "exclusiveMinimum", "minLength", "minItems"];
const UPPER_BOUNDS: [&str; 4] = ["maximum", "exclusiveMaximum", "maxLength", "maxItems"];

impl<'a> Compare<'a> {
    pub(super) fn new(old: &'a Definition, new: &'a Definition) -> Self {
        Self {
            old,
            new,
            seen: HashSet::new(),
            found: Vec::new(),
            depth: 0,
        }
    }

    pub(super) fn into_changes(self) -> Vec<Found> {
        self.found
    }

    fn push(&mut self, level: Level, kind: &'static str, path: &str, message: String) {
        self.found.push(Found {
            level,
            kind,
            path: path.to_owned(),
            message,
        });
    }

    /// Compares the schema `a` (old) with `b` (new) at `path`.
    pub(super) fn schemas(&mut self, side: Side, path: &str, a: &'a Value, b: &'a Value) {
        if let (Some(x), Some(y)) = (ref_name(a), ref_name(b))
            && !self.seen.insert((x.to_owned(), y.to_owned()))
        {
            return;
        }
        if self.depth >= MAX_DEPTH {
            return;
        }
        self.depth += 1;
        let a = resolve(self.old, a);
        let b = resolve(self.new, b);
        self.types(side, path, a, b);
        self.format(side, path, a, b);
        self.enums(side, path, a, b);
        self.bounds(side, path, a, b);
        self.properties(side, path, a, b);
        if let (Some(x), Some(y)) = (a.get("items"), b.get("items")) {
            self.schemas(side, &format!("{path}[]"), x, y);
        }
        if let (Some(x @ Value::Object(_)), Some(y @ Value::Object(_))) =
            (a.get("additionalProperties"), b.get("additionalProperties"))
        {
            self.schemas(side, &format!("{path}.*"), x, y);
        }
        self.variants(side, path, a, b);
        self.depth -= 1;
    }

    fn types(&mut self, side: Side, path: &str, a: &Value, b: &Value) {
        let (ta, tb) = (types(a), types(b));
        let lost: BTreeSet<String> = ta.iter().filter(|t| !accepts(&tb, t)).cloned().collect();
        let gained: BTreeSet<String> = tb.iter().filter(|t| !accepts(&ta, t)).cloned().collect();
        let (was, is) = (join(&ta), join(&tb));
        if !lost.is_empty() && !gained.is_empty() {
            self.push(
                Level::Breaking,
                "type-changed",
                path,
                format!("type changed from {was} to {is}"),
            );
            return;
        }
        match side {
            Side::Input if !lost.is_empty() => self.push(
                Level::Breaking,
                "type-narrowed",
                path,
                format!(
                    "type narrowed from {was} to {is}: old callers may send {}",
                    join(&lost)
                ),
            ),
            Side::Input if !gained.is_empty() => self.push(
                Level::Compatible,
                "type-widened",
                path,
                format!("type widened from {was} to {is}"),
            ),
            Side::Output if gained.len() == 1 && gained.contains("null") => self.push(
                Level::Breaking,
                "output-made-optional",
                path,
                format!("may now be null ({was} → {is})"),
            ),
            Side::Output if !gained.is_empty() => self.push(
                Level::Breaking,
                "type-widened",
                path,
                format!(
                    "type widened from {was} to {is}: old callers may get {}",
                    join(&gained)
                ),
            ),
            Side::Output if !lost.is_empty() => self.push(
                Level::Compatible,
                "type-narrowed",
                path,
                format!("type narrowed from {was} to {is}"),
            ),
            _ => {}
        }
    }

    fn format(&mut self, side: Side, path: &str, a: &Value, b: &Value) {
        let (fa, fb) = (a.get("format"), b.get("format"));
        if fa == fb {
            return;
        }
        let show = |f: Option<&Value>| f.and_then(Value::as_str).unwrap_or("none").to_owned();
        // An input that drops its format accepts more; anything else changes the values.
        let level = if side == Side::Input && fb.is_none() {
            Level::Compatible
        } else {
            Level::Breaking
        };
        self.push(
            level,
            "format-changed",
            path,
            format!("format changed from {} to {}", show(fa), show(fb)),
        );
    }

    fn enums(&mut self, side: Side, path: &str, a: &Value, b: &Value) {
        let values = |s: &Value| s.get("enum").and_then(Value::as_array).cloned();
        let (ea, eb) = (values(a), values(b));
        if ea.is_none() && eb.is_none() {
            return;
        }
        let removed: Vec<String> = match (&ea, &eb) {
            (Some(ea), Some(eb)) => ea
                .iter()
                .filter(|v| !eb.contains(v))
                .map(Value::to_string)
                .collect(),
            (Some(_), None) => Vec::new(),
            (None, Some(_)) => vec!["(any value)".into()],
            (None, None) => Vec::new(),
        };
        let added: Vec<String> = match (&ea, &eb) {
            (Some(ea), Some(eb)) => eb
                .iter()
                .filter(|v| !ea.contains(v))
                .map(Value::to_string)
                .collect(),
            (Some(_), None) => vec!["(any value)".into()],
            _ => Vec::new(),
        };
        if !removed.is_empty() {
            let level = match side {
                Side::Input => Level::Breaking,
                Side::Output => Level::Compatible,
            };
            self.push(
                level,
                "enum-value-removed",
                path,
                format!("enum values removed: {}", removed.join(", ")),
            );
        }
        if !added.is_empty() {
            let level = match side {
                Side::Input => Level::Compatible,
                Side::Output => Level::Breaking,
            };
            self.push(
                level,
                "enum-value-added",
                path,
                format!("enum values added: {}", added.join(", ")),
            );
        }
    }

    fn bounds(&mut self, side: Side, path: &str, a: &Value, b: &Value) {
        let number = |s: &Value, key: &str| s.get(key).and_then(Value::as_f64);
        for (keys, lower) in [(LOWER_BOUNDS, true), (UPPER_BOUNDS, false)] {
            for key in keys {
                let (x, y) = (number(a, key), number(b, key));
                let tightened = match (x, y) {
                    (None, Some(_)) => true,
                    (Some(_), None) => false,
                    (Some(x), Some(y)) if x != y => (y > x) == lower,
                    _ => continue,
                };
                let level = match (side, tightened) {
                    (Side::Input, true) | (Side::Output, false) => Level::Breaking,
                    _ => Level::Compatible,
                };
                let show = |v: Option<f64>| v.map_or("none".to_owned(), |v| v.to_string());
                let (kind, what) = if tightened {
                    ("bound-tightened", "tightened")
                } else {
                    ("bound-loosened", "loosened")
                };
                self.push(
                    level,
                    kind,
                    path,
                    format!("`{key}` {what} from {} to {}", show(x), show(y)),
                );
            }
        }
    }

    fn properties(&mut self, side: Side, path: &str, a: &'a Value, b: &'a Value) {
        static EMPTY: std::sync::LazyLock<serde_json::Map<String, Value>> =
            std::sync::LazyLock::new(serde_json::Map::new);
        let props = |s: &'a Value| s.get("properties").and_then(Value::as_object);
        let (pa, pb) = match (props(a), props(b)) {
            (None, None) => return,
            (pa, pb) => (pa.unwrap_or(&EMPTY), pb.unwrap_or(&EMPTY)),
        };
        let (ra, rb) = (required(a), required(b));
        let field = |name: &str| format!("{path}.{name}");
        for (name, schema_b) in pb {
            let at = field(name);
            match pa.get(name) {
                None => match side {
                    Side::Input if rb.contains(name) => self.push(
                        Level::Breaking,
                        "required-field-added",
                        &at,
                        "field added as required: old callers do not send it".into(),
                    ),
                    Side::Input => self.push(
                        Level::Compatible,
                        "optional-field-added",
                        &at,
                        "optional field added".into(),
                    ),
                    Side::Output => self.push(
                        Level::Compatible,
                        "field-added",
                        &at,
                        "field added (old callers ignore it)".into(),
                    ),
                },
                Some(schema_a) => {
                    match (side, ra.contains(name), rb.contains(name)) {
                        (Side::Input, false, true) => self.push(
                            Level::Breaking,
                            "field-made-required",
                            &at,
                            "optional field made required: old callers may not send it".into(),
                        ),
                        (Side::Input, true, false) => self.push(
                            Level::Compatible,
                            "field-made-optional",
                            &at,
                            "required field made optional".into(),
                        ),
                        (Side::Output, true, false) => self.push(
                            Level::Breaking,
                            "output-made-optional",
                            &at,
                            "field no longer always present: old callers expect it".into(),
                        ),
                        (Side::Output, false, true) => self.push(
                            Level::Compatible,
                            "field-made-required",
                            &at,
                            "field now always present".into(),
                        ),
                        _ => {}
                    }
                    self.schemas(side, &at, schema_a, schema_b);
                }
            }
        }
        for name in pa.keys().filter(|name| !pb.contains_key(*name)) {
            let at = field(name);
            match side {
                Side::Input => self.push(
                    Level::Compatible,
                    "field-removed",
                    &at,
                    "field removed: what old callers send in it is ignored".into(),
                ),
                Side::Output => self.push(
                    Level::Breaking,
                    "field-removed",
                    &at,
                    "field removed: old callers expect it".into(),
                ),
            }
        }
    }

    fn variants(&mut self, side: Side, path: &str, a: &'a Value, b: &'a Value) {
        for key in ["oneOf", "anyOf", "allOf"] {
            let (va, vb) = match (
                a.get(key).and_then(Value::as_array),
                b.get(key).and_then(Value::as_array),
            ) {
                (None, None) => continue,
                (Some(va), Some(vb)) if va.len() == vb.len() => (va, vb),
                (va, vb) => {
                    let count = |v: Option<&Vec<Value>>| v.map_or(0, Vec::len);
                    self.push(
                        Level::Breaking,
                        "variants-changed",
                        path,
                        format!(
                            "`{key}` changed from {} to {} variants",
                            count(va),
                            count(vb)
                        ),
                    );
                    continue;
                }
            };
            for (i, (x, y)) in va.iter().zip(vb).enumerate() {
                self.schemas(side, &format!("{path}#{i}"), x, y);
            }
        }
    }
}
