//! `contract export` and `contract diff` as a team runs them: both shipped objects export an
//! ODCS document that validates against the ODCS v3.1.0 JSON Schema (`tests/data/odcs/`), and a
//! document that breaks the standard does not; the shipped configuration diffed against
//! itself is clean (exit 0); a breaking change exits 1 (text and JSON), a compatible one 0,
//! and invalid object files 2.

use crate::check_command::{copy_of_shipped, shipped_config};
use crate::support::yaml_to_json;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn mesh_ingest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-ingest"))
        .args(args)
        .env_remove("APP_ENVIRONMENT")
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("BIGQUERY_EMULATOR_HOST")
        .env_remove("BIGQUERY_STORAGE_EMULATOR_HOST")
        .output()
        .expect("run mesh-ingest")
}

fn text(out: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn odcs_validator() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/odcs/odcs-json-schema-v3.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the ODCS schema compiles")
}

fn export(object: &str) -> Value {
    let config = shipped_config();
    let out = mesh_ingest(&[
        "--config",
        config.to_str().unwrap(),
        "--env",
        "local",
        "contract",
        "export",
        "--object",
        object,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&out.stdout))
        .expect("export writes YAML");
    assert_eq!(docs.len(), 1);
    yaml_to_json(&docs[0])
}

#[test]
fn both_shipped_objects_export_valid_odcs_documents() {
    let validator = odcs_validator();
    for object in ["order", "customer"] {
        let doc = export(object);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{object}: {errors:#?}\n{doc:#}");
        assert_eq!(doc["kind"], "DataContract");
        let product = &doc["schema"][0];
        let key = &product["properties"][0];
        assert_eq!(
            (key["name"].as_str(), key["primaryKey"].as_bool()),
            (Some("object_id"), Some(true))
        );
        assert!(
            doc["schema"][1]["properties"]
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["name"] == "payload")
        );
    }
    let order = export("order");
    assert_eq!(order["team"]["name"], "team-orders");
    assert_eq!(order["domain"], "sales");
    assert_eq!(order["slaProperties"][0]["value"], 15);
    assert_eq!(order["slaProperties"][0]["unit"], "m");
    let total = order["schema"][0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "total")
        .unwrap()
        .clone();
    assert_eq!(total["physicalType"], "NUMERIC");
    assert_eq!(total["required"], true);
    assert_eq!(total["quality"][0]["metric"], "nullValues");

    // The validator is not a rubber stamp: a document that breaks the standard fails.
    for broken in [
        |d: &mut Value| d["apiVersion"] = "v9.9.9".into(),
        |d: &mut Value| d["schema"][0]["properties"][0]["logicalType"] = "bytes".into(),
        |d: &mut Value| d["servers"][0]["location"] = "EU".into(),
        |d: &mut Value| d["schema"][0]["properties"][1]["nullable"] = true.into(),
    ] {
        let mut doc = order.clone();
        broken(&mut doc);
        assert!(!validator.is_valid(&doc), "{doc:#}");
    }
}

fn diff(old: &Path, new: &Path, json: bool) -> Output {
    let mut args = vec![
        "contract",
        "diff",
        old.to_str().unwrap(),
        new.to_str().unwrap(),
    ];
    if json {
        args.extend(["--format", "json"]);
    }
    mesh_ingest(&args)
}

#[test]
fn the_shipped_configuration_diffed_against_itself_is_clean() {
    let config = shipped_config();
    let out = diff(&config, &config, false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "no changes\n");
    let objects = config.join("objects");
    let out = diff(&objects, &objects, true);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["breaking"].as_u64(), report["compatible"].as_u64()),
        (Some(0), Some(0))
    );
}

fn edit(dir: &Path, file: &str, from: &str, to: &str) {
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains(from), "{file} holds `{from}`");
    std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn a_breaking_change_exits_1_and_a_compatible_one_0() {
    let old = shipped_config();
    let new = copy_of_shipped();
    // Compatible: a field added and a description reworded.
    edit(
        new.path(),
        "objects/order.yaml",
        "    - {name: currency,",
        "    - {name: channel, type: STRING}\n    - {name: currency,",
    );
    edit(
        new.path(),
        "objects/order.yaml",
        "Order number.",
        "The order number.",
    );
    let out = diff(&old, new.path(), false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("compatible order semantic.fields.channel (field_added)"),
        "{}",
        text(&out)
    );

    // Breaking: an event type removed.
    edit(new.path(), "objects/order.yaml", "OrderUpdated, ", "");
    let out = diff(&old, new.path(), true);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["breaking"], 1, "{report:#}");
    let removed = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["class"] == "breaking")
        .unwrap();
    assert_eq!(removed["kind"], "event_type_removed");
    assert_eq!(removed["object"], "order");
    assert_eq!(removed["detail"], "OrderUpdated");

    // Invalid object files: exit 2, naming the file and the field.
    edit(
        new.path(),
        "objects/customer.yaml",
        "streams: 1",
        "streams: 0",
    );
    let out = diff(&old, new.path(), false);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("customer.yaml") && text(&out).contains("streams"),
        "{}",
        text(&out)
    );
}
