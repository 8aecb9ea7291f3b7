//! The committed definition `fraud.v1.nexusrpc.json` matches the contract and validates against
//! the nexus-rpc-gen schema.

use fraud_contract::FraudService;
use nexus_runtime::definition::Definition;
use serde_json::Value;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fraud.v1.nexusrpc.json");
const SCHEMA: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/nexus-rpc-gen.schema.json"
);

fn read_json(path: &str) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"))
}

#[test]
fn committed_definition_is_up_to_date() {
    if let Err(message) = Definition::of::<FraudService>().check_committed(COMMITTED) {
        panic!("{message}");
    }
}

#[test]
fn definition_validates_against_the_nexus_rpc_gen_schema() {
    let schema = read_json(SCHEMA);
    let validator = jsonschema::validator_for(&schema).expect("the schema compiles");
    let generated = serde_json::to_value(Definition::of::<FraudService>()).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&generated)
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "definition is invalid: {errors:#?}");
    // The validator is not vacuous: an unknown key is rejected, as is a wrong version.
    let mut bad = generated.clone();
    bad["services"]["fraud.v1"]["operations"]["flagUser"]["x-rust"] = Value::Bool(true);
    assert!(!validator.is_valid(&bad));
    let mut bad = generated;
    bad["nexusrpc"] = "2.0.0".into();
    assert!(!validator.is_valid(&bad));
}

#[test]
fn definition_has_wire_names_descriptions_and_schemas() {
    let def = Definition::of::<FraudService>();
    let service = &def.services["fraud.v1"];
    assert!(
        service
            .description
            .as_deref()
            .unwrap()
            .starts_with("Fraud detection for payments.")
    );
    let ops: Vec<&str> = service.operations.keys().map(String::as_str).collect();
    assert_eq!(ops, ["checkTransaction", "flagUser", "getQuickScore"]);
    let check = &service.operations["checkTransaction"];
    assert!(
        check
            .description
            .as_deref()
            .unwrap()
            .contains("asynchronously")
    );
    assert_eq!(
        check.input,
        Some(serde_json::json!({"$ref": "#/types/CheckTransactionInput"}))
    );
    let flag = &service.operations["flagUser"];
    assert!(flag.output.is_none(), "no value has no output schema");
    let input = &def.types["CheckTransactionInput"];
    assert_eq!(
        input["required"],
        serde_json::json!(["transactionId", "amount", "userId"])
    );
    assert_eq!(
        input["properties"]["amount"]["description"],
        "The amount in the account's currency; must not be negative."
    );
    let output = &def.types["CheckTransactionOutput"];
    assert_eq!(
        output["required"],
        serde_json::json!(["approved", "riskScore"])
    );
}

#[test]
fn reference_example_definition_validates_too() {
    // Guards the validator set-up itself with the reference's own known-good example.
    let schema = read_json(SCHEMA);
    let example = read_json(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/example.nexusrpc.json"
    ));
    assert!(
        jsonschema::validator_for(&schema)
            .unwrap()
            .is_valid(&example)
    );
}
