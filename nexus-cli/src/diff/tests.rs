use serde_json::{Value, json};

use super::*;

/// A definition of `shop.v1` with one operation `buy` and these input/output schemas, and the
/// types `T` (input object) and `U` (output object) referenced from them.
fn def(input: Value, output: Value) -> Definition {
    serde_json::from_value(json!({
        "nexusrpc": "1.0.0",
        "services": {"shop.v1": {"operations": {"buy": {
            "input": {"$ref": "#/types/T"},
            "output": {"$ref": "#/types/U"}
        }}}},
        "types": {"T": input, "U": output}
    }))
    .unwrap()
}

fn object(props: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": props, "required": required})
}

fn base_in() -> Value {
    object(
        json!({"id": {"type": "string"}, "qty": {"type": "integer"}}),
        &["id"],
    )
}

fn base_out() -> Value {
    object(
        json!({"ok": {"type": "boolean"}, "note": {"type": "string"}}),
        &["ok", "note"],
    )
}

/// The (level, kind, path) of each change.
fn kinds(report: &Report) -> Vec<(Level, &'static str, String)> {
    report
        .changes
        .iter()
        .map(|c| (c.level, c.kind, c.path.clone()))
        .collect()
}

#[test]
fn identical_definitions_have_no_changes() {
    let a = def(base_in(), base_out());
    assert_eq!(diff(&a, &a), Report::default());
}

#[test]
fn removed_service_and_operation_are_breaking_added_ones_compatible() {
    let a = def(base_in(), base_out());
    let mut b = a.clone();
    b.services.clear();
    let report = diff(&a, &b);
    assert_eq!(
        kinds(&report),
        [(Level::Breaking, "service-removed", String::new())]
    );
    assert!(report.is_breaking());
    assert_eq!(
        kinds(&diff(&b, &a)),
        [(Level::Compatible, "service-added", String::new())]
    );

    let mut c = a.clone();
    c.services.get_mut("shop.v1").unwrap().operations.clear();
    assert_eq!(
        kinds(&diff(&a, &c)),
        [(Level::Breaking, "operation-removed", String::new())]
    );
    assert_eq!(
        kinds(&diff(&c, &a)),
        [(Level::Compatible, "operation-added", String::new())]
    );
}

#[test]
fn a_new_versioned_name_is_a_new_version_not_a_break() {
    let a = def(base_in(), base_out());
    let mut b = a.clone();
    let service = b.services.remove("shop.v1").unwrap();
    b.services.insert("shop.v2".into(), service);
    let report = diff(&a, &b);
    assert!(!report.is_breaking(), "{report:?}");
    assert_eq!(report.count(Level::NewVersion), 1);
    assert!(report.changes[0].message.contains("shop.v2"));
}

#[test]
fn input_field_added_as_required_is_breaking_as_optional_compatible() {
    let a = def(base_in(), base_out());
    let required = def(
        object(
            json!({"id": {"type": "string"}, "qty": {"type": "integer"}, "currency": {"type": "string"}}),
            &["id", "currency"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &required)),
        [(
            Level::Breaking,
            "required-field-added",
            "input.currency".into()
        )]
    );
    let optional = def(
        object(
            json!({"id": {"type": "string"}, "qty": {"type": "integer"}, "currency": {"type": "string"}}),
            &["id"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &optional)),
        [(
            Level::Compatible,
            "optional-field-added",
            "input.currency".into()
        )]
    );
}

#[test]
fn input_field_made_required_is_breaking() {
    let a = def(base_in(), base_out());
    let b = def(
        object(
            json!({"id": {"type": "string"}, "qty": {"type": "integer"}}),
            &["id", "qty"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &b)),
        [(Level::Breaking, "field-made-required", "input.qty".into())]
    );
    assert_eq!(
        kinds(&diff(&b, &a)),
        [(Level::Compatible, "field-made-optional", "input.qty".into())]
    );
}

#[test]
fn input_type_narrowed_or_changed_is_breaking_widened_compatible() {
    let a = def(base_in(), base_out());
    let widened = def(
        object(
            json!({"id": {"type": "string"}, "qty": {"type": "number"}}),
            &["id"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &widened)),
        [(Level::Compatible, "type-widened", "input.qty".into())]
    );
    assert_eq!(
        kinds(&diff(&widened, &a)),
        [(Level::Breaking, "type-narrowed", "input.qty".into())]
    );
    let changed = def(
        object(
            json!({"id": {"type": "integer"}, "qty": {"type": "integer"}}),
            &["id"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &changed)),
        [(Level::Breaking, "type-changed", "input.id".into())]
    );
}

#[test]
fn input_enum_value_removed_is_breaking_added_compatible() {
    let with = |values: Value| {
        def(
            object(json!({"id": {"type": "string", "enum": values}}), &["id"]),
            base_out(),
        )
    };
    let a = with(json!(["card", "bank"]));
    let b = with(json!(["card"]));
    let report = diff(&a, &b);
    assert_eq!(
        kinds(&report),
        [(Level::Breaking, "enum-value-removed", "input.id".into())]
    );
    assert!(report.changes[0].message.contains("\"bank\""));
    assert_eq!(
        kinds(&diff(&b, &a)),
        [(Level::Compatible, "enum-value-added", "input.id".into())]
    );
}

#[test]
fn output_field_removed_or_made_optional_is_breaking() {
    let a = def(base_in(), base_out());
    let removed = def(
        base_in(),
        object(json!({"ok": {"type": "boolean"}}), &["ok"]),
    );
    assert_eq!(
        kinds(&diff(&a, &removed)),
        [(Level::Breaking, "field-removed", "output.note".into())]
    );
    let optional = def(
        base_in(),
        object(
            json!({"ok": {"type": "boolean"}, "note": {"type": "string"}}),
            &["ok"],
        ),
    );
    assert_eq!(
        kinds(&diff(&a, &optional)),
        [(
            Level::Breaking,
            "output-made-optional",
            "output.note".into()
        )]
    );
    let nullable = def(
        base_in(),
        object(
            json!({"ok": {"type": "boolean"}, "note": {"type": ["string", "null"]}}),
            &["ok", "note"],
        ),
    );
    assert_eq!(
        kinds(&diff(&a, &nullable)),
        [(
            Level::Breaking,
            "output-made-optional",
            "output.note".into()
        )]
    );
    let added = def(
        base_in(),
        object(
            json!({"ok": {"type": "boolean"}, "note": {"type": "string"}, "extra": {"type": "string"}}),
            &["ok", "note"],
        ),
    );
    assert_eq!(
        kinds(&diff(&a, &added)),
        [(Level::Compatible, "field-added", "output.extra".into())]
    );
}

#[test]
fn input_removed_field_is_compatible_format_and_bounds_are_compared() {
    let a = def(
        object(
            json!({"id": {"type": "string", "maxLength": 10}, "qty": {"type": "integer", "format": "uint32"}}),
            &["id"],
        ),
        base_out(),
    );
    let b = def(
        object(
            json!({"id": {"type": "string", "maxLength": 5}, "qty": {"type": "integer", "format": "uint8"}}),
            &["id"],
        ),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&a, &b)),
        [
            (Level::Breaking, "bound-tightened", "input.id".into()),
            (Level::Breaking, "format-changed", "input.qty".into()),
        ]
    );
    let fewer = def(
        object(json!({"id": {"type": "string"}}), &["id"]),
        base_out(),
    );
    assert_eq!(
        kinds(&diff(&def(base_in(), base_out()), &fewer)),
        [(Level::Compatible, "field-removed", "input.qty".into())]
    );
}

#[test]
fn operation_input_and_output_presence() {
    let a = def(base_in(), base_out());
    let mut b = a.clone();
    let op = b
        .services
        .get_mut("shop.v1")
        .unwrap()
        .operations
        .get_mut("buy")
        .unwrap();
    op.output = None;
    assert_eq!(
        kinds(&diff(&a, &b)),
        [(Level::Breaking, "output-removed", "output".into())]
    );
    assert_eq!(
        kinds(&diff(&b, &a)),
        [(Level::Compatible, "output-added", "output".into())]
    );
}

#[test]
fn recursive_types_terminate() {
    let node =
        json!({"type": "object", "properties": {"next": {"$ref": "#/types/T"}}, "required": []});
    let a = def(node.clone(), base_out());
    assert!(diff(&a, &a).changes.is_empty());
}

#[test]
fn the_committed_fraud_definition_has_no_change_with_itself() {
    let text = include_str!("../../../contracts/fraud/fraud.v1.nexusrpc.json");
    let fraud: Definition = serde_json::from_str(text).unwrap();
    assert_eq!(diff(&fraud, &fraud), Report::default());
}
