//! Differences between two service definitions (nexus-rpc-gen format), each classified as
//! breaking or compatible for the callers of the old one.
//!
//! What is compared:
//! - services and operations: one removed is breaking, one added compatible; a service whose
//!   versioned name changed (`fraud.v1` gone, `fraud.v2` there) is a new version, reported
//!   apart and not breaking (its callers move to the new name on purpose);
//! - inputs, where the handler must still accept what old callers send: a field added as
//!   required, an optional field made required, a type narrowed or changed, an enum value
//!   removed, a tightened bound (`minimum`, `maxLength`...) are breaking; a field added as
//!   optional, a widened type, an enum value added are compatible;
//! - outputs, where old callers must still understand what the handler returns: a field removed
//!   or made optional (no longer required, or `null` allowed), a type changed or widened, an
//!   enum value added are breaking; a field added is compatible;
//! - an operation that took no input and now takes one (or returned a value and no longer
//!   does) is breaking.
//!
//! Whether an operation answers synchronously or asynchronously is not part of the definition
//! format, so it is not compared: callers of nexus-rs and Temporal handle both.

mod schema;

use std::fmt;

use nexus_runtime::definition::Definition;
use serde::Serialize;

/// How a change affects the callers of the old definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Level {
    /// Old callers may fail against the new definition.
    Breaking,
    /// A new version of a service under a new versioned name: its callers move on purpose.
    NewVersion,
    /// Old callers keep working.
    Compatible,
}

impl Level {
    /// `breaking`, `new-version` or `compatible`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Breaking => "breaking",
            Self::NewVersion => "new-version",
            Self::Compatible => "compatible",
        }
    }
}

/// One difference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    /// How it affects old callers.
    pub level: Level,
    /// A stable name of the kind of change, such as `required-field-added`.
    pub kind: &'static str,
    /// The service.
    pub service: String,
    /// The operation, if the change is inside one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// Where in the operation: `input.amount`, `output.reason`, `input` (empty otherwise).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// What changed, for people.
    pub message: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.service)?;
        if let Some(op) = &self.operation {
            write!(f, "/{op}")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Every difference between two definitions.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The changes, breaking ones first.
    pub changes: Vec<Change>,
}

impl Report {
    /// Whether any change is breaking.
    pub fn is_breaking(&self) -> bool {
        self.count(Level::Breaking) > 0
    }

    /// How many changes have this level.
    pub fn count(&self, level: Level) -> usize {
        self.changes.iter().filter(|c| c.level == level).count()
    }
}

/// `fraud.v2` → (`fraud`, 2).
fn versioned(name: &str) -> Option<(&str, u64)> {
    let (base, version) = name.rsplit_once(".v")?;
    Some((base, version.parse().ok()?))
}

/// Compares `old` with `new`.
pub fn diff(old: &Definition, new: &Definition) -> Report {
    let mut changes = Vec::new();
    for (name, old_service) in &old.services {
        let Some(new_service) = new.services.get(name) else {
            let successor = versioned(name).and_then(|(base, version)| {
                new.services.keys().find(|candidate| {
                    versioned(candidate).is_some_and(|(b, v)| b == base && v > version)
                })
            });
            changes.push(match successor {
                Some(successor) => Change {
                    level: Level::NewVersion,
                    kind: "service-new-version",
                    service: name.clone(),
                    operation: None,
                    path: String::new(),
                    message: format!(
                        "replaced by `{successor}`: its callers must move to the new name"
                    ),
                },
                None => Change {
                    level: Level::Breaking,
                    kind: "service-removed",
                    service: name.clone(),
                    operation: None,
                    path: String::new(),
                    message: "service removed".into(),
                },
            });
            continue;
        };
        for (op_name, old_op) in &old_service.operations {
            let mut push = |level, kind, path: String, message: String| {
                changes.push(Change {
                    level,
                    kind,
                    service: name.clone(),
                    operation: Some(op_name.clone()),
                    path,
                    message,
                });
            };
            let Some(new_op) = new_service.operations.get(op_name) else {
                push(
                    Level::Breaking,
                    "operation-removed",
                    String::new(),
                    "operation removed".into(),
                );
                continue;
            };
            let mut compare = schema::Compare::new(old, new);
            match (&old_op.input, &new_op.input) {
                (None, Some(_)) => push(
                    Level::Breaking,
                    "input-added",
                    "input".into(),
                    "the operation now takes an input; old callers send none".into(),
                ),
                (Some(_), None) => push(
                    Level::Breaking,
                    "input-removed",
                    "input".into(),
                    "the operation no longer takes an input; old callers send one".into(),
                ),
                (Some(a), Some(b)) => compare.schemas(schema::Side::Input, "input", a, b),
                (None, None) => {}
            }
            match (&old_op.output, &new_op.output) {
                (Some(_), None) => push(
                    Level::Breaking,
                    "output-removed",
                    "output".into(),
                    "the operation no longer returns a value".into(),
                ),
                (None, Some(_)) => push(
                    Level::Compatible,
                    "output-added",
                    "output".into(),
                    "the operation now returns a value (old callers ignore it)".into(),
                ),
                (Some(a), Some(b)) => compare.schemas(schema::Side::Output, "output", a, b),
                (None, None) => {}
            }
            for found in compare.into_changes() {
                push(found.level, found.kind, found.path, found.message);
            }
        }
        for op_name in new_service.operations.keys() {
            if !old_service.operations.contains_key(op_name) {
                changes.push(Change {
                    level: Level::Compatible,
                    kind: "operation-added",
                    service: name.clone(),
                    operation: Some(op_name.clone()),
                    path: String::new(),
                    message: "operation added".into(),
                });
            }
        }
    }
    for name in new.services.keys() {
        if !old.services.contains_key(name) {
            changes.push(Change {
                level: Level::Compatible,
                kind: "service-added",
                service: name.clone(),
                operation: None,
                path: String::new(),
                message: "service added".into(),
            });
        }
    }
    changes.sort_by_key(|c| c.level);
    Report { changes }
}

#[cfg(test)]
mod tests;
