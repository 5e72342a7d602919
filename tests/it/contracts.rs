//! `contract export` and `contract diff` as a team runs them: both shipped objects export an
//! ODCS document that validates against the ODCS v3.1.0 JSON Schema (`tests/data/odcs/`), and a
//! document that breaks the standard does not; the shipped configuration diffed against
//! itself is clean (exit 0); a breaking change exits 1 (text and JSON), a compatible one 0,
//! and invalid object files 2. The shipped `order` has two majors: each exports its own
//! document (the older one `deprecated`), `--all` writes one file per object and major, and the
//! gate lets a major go only after its sunset and a new one come only as the next number with
//! the old one kept.

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
    export_major(object, None)
}

fn export_major(object: &str, major: Option<&str>) -> Value {
    let config = shipped_config();
    let mut args = vec![
        "--config",
        config.to_str().unwrap(),
        "--env",
        "local",
        "contract",
        "export",
        "--object",
        object,
    ];
    if let Some(m) = major {
        args.extend(["--major", m]);
    }
    let out = mesh_ingest(&args);
    assert!(out.status.success(), "{}", text(&out));
    let docs = yaml_rust2::YamlLoader::load_from_str(&String::from_utf8_lossy(&out.stdout))
        .expect("export writes YAML");
    assert_eq!(docs.len(), 1);
    yaml_to_json(&docs[0])
}

/// A property of a document's data product (its first schema) by name.
fn product_property(doc: &Value, name: &str) -> Value {
    doc["schema"][0]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {doc:#}"))
        .clone()
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
    let total = product_property(&order, "total");
    // Major 2 is current: `total` is a STRUCT of amount and currency.
    assert_eq!(
        (&order["id"], &order["status"]),
        (&"mesh-ingest.order.v2".into(), &"active".into())
    );
    assert_eq!(order["version"], "2.0.0");
    assert_eq!(total["physicalType"], "STRUCT");
    assert_eq!(total["required"], true);
    assert_eq!(total["quality"][0]["metric"], "nullValues");
    assert_eq!(
        order["schema"][0]["physicalName"],
        "mesh-local.order_semantic.order_v2"
    );

    // Classified data is classified in the contract: the product's column, the raw payload.
    let customer = export("customer");
    assert_eq!(product_property(&customer, "name")["classification"], "pii");
    let payload = customer["schema"][1]["properties"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "payload")
        .unwrap()
        .clone();
    assert_eq!(payload["classification"], "pii", "{payload}");

    // Major 1, still maintained: its own document, deprecated, with its sunset and successor.
    let v1 = export_major("order", Some("1"));
    let errors: Vec<String> = validator.iter_errors(&v1).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "order v1: {errors:#?}\n{v1:#}");
    assert_eq!(
        (&v1["id"], &v1["status"]),
        (&"mesh-ingest.order.v1".into(), &"deprecated".into())
    );
    let v1_total = product_property(&v1, "total");
    assert_eq!(v1_total["physicalType"], "NUMERIC");
    let custom = |doc: &Value, name: &str| {
        doc["customProperties"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["property"] == name)
            .map(|p| p["value"].clone())
    };
    assert_eq!(custom(&v1, "sunset"), Some("2027-06-30".into()));
    assert_eq!(
        custom(&v1, "successor"),
        Some("mesh-local.order_semantic.order_v2".into())
    );
    assert!(
        v1["description"]["limitations"]
            .as_str()
            .unwrap()
            .starts_with("DEPRECATED: major 1"),
        "{v1:#}"
    );
    assert_eq!(custom(&order, "sunset"), None);

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
        "    - name: items\n",
        "    - {name: channel, type: STRING}\n    - name: items\n",
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
            .contains("compatible order v2 semantic.fields.channel (field_added)"),
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

/// The shipped `order.yaml` as it was before major 2: major 1's fields as the current ones.
fn order_v1_only(shipped: &str) -> String {
    let (current, previous) = shipped.split_once("  previous:\n").unwrap();
    let (head, _) = current.split_once("  fields:\n").unwrap();
    let (_, v1_fields) = previous.split_once("      fields:\n").unwrap();
    let fields: String = v1_fields
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("    ").unwrap_or(l)))
        .collect();
    format!("{head}  fields:\n{fields}").replacen("version: 2.0.0", "version: 1.4.0", 1)
}

#[test]
fn majors_pass_the_gate_only_as_the_next_number_and_leave_only_after_their_sunset() {
    let order = |dir: &Path| dir.join("objects/order.yaml");
    let shipped = std::fs::read_to_string(order(&shipped_config())).unwrap();
    let report = |old: &Path, new: &Path, code: i32| -> Value {
        let out = diff(old, new, true);
        assert_eq!(out.status.code(), Some(code), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let has = |report: &Value, kind: &str, major: u64, class: &str| {
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["kind"] == kind && c["major"] == major && c["class"] == class)
    };

    // Major 2 introduced beside major 1: exit 0, `total`'s new type listed under major 2.
    let before = copy_of_shipped();
    std::fs::write(order(before.path()), order_v1_only(&shipped)).unwrap();
    let r = report(before.path(), &shipped_config(), 0);
    assert!(has(&r, "major_added", 2, "compatible"), "{r:#}");
    assert!(has(&r, "major_deprecated", 1, "compatible"), "{r:#}");
    assert!(has(&r, "field_type_changed", 2, "compatible"), "{r:#}");
    let out = diff(before.path(), &shipped_config(), false);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(
            "compatible order v2 semantic.fields.total.type (field_type_changed): NUMERIC → STRUCT"
        ),
        "{}",
        text(&out)
    );

    // The same change without keeping major 1: exit 1.
    let replaced = copy_of_shipped();
    let (without_v1, _) = shipped.split_once("  previous:\n").unwrap();
    std::fs::write(order(replaced.path()), without_v1).unwrap();
    let r = report(before.path(), replaced.path(), 1);
    assert!(
        has(&r, "major_removed_before_sunset", 1, "breaking"),
        "{r:#}"
    );

    // A major number that skips one: exit 1.
    let skipped = copy_of_shipped();
    std::fs::write(
        order(skipped.path()),
        shipped.replacen("version: 2.0.0", "version: 3.0.0", 1),
    )
    .unwrap();
    let r = report(before.path(), skipped.path(), 1);
    assert!(has(&r, "major_not_following", 3, "breaking"), "{r:#}");

    // Major 1 removed: before its sunset exit 1, after it exit 0.
    for (sunset, code, kind, class) in [
        ("2999-12-31", 1, "major_removed_before_sunset", "breaking"),
        ("2001-01-31", 0, "major_retired", "compatible"),
    ] {
        let old = copy_of_shipped();
        std::fs::write(order(old.path()), shipped.replacen("2027-06-30", sunset, 1)).unwrap();
        let r = report(old.path(), replaced.path(), code);
        assert!(has(&r, kind, 1, class), "{sunset}: {r:#}");
    }
}

#[test]
fn export_all_writes_one_valid_document_per_object_and_major() {
    let out_dir = tempfile::tempdir().unwrap();
    let config = shipped_config();
    let out = mesh_ingest(&[
        "--config",
        config.to_str().unwrap(),
        "contract",
        "export",
        "--all",
        "--out",
        out_dir.path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let mut names: Vec<String> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "customer.v1.odcs.yaml",
            "order.v1.odcs.yaml",
            "order.v2.odcs.yaml"
        ]
    );
    let validator = odcs_validator();
    for name in &names {
        let text = std::fs::read_to_string(out_dir.path().join(name)).unwrap();
        let doc = yaml_to_json(&yaml_rust2::YamlLoader::load_from_str(&text).unwrap()[0]);
        let errors: Vec<String> = validator.iter_errors(&doc).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{name}: {errors:#?}");
        let status = if name == "order.v1.odcs.yaml" {
            "deprecated"
        } else {
            "active"
        };
        assert_eq!(doc["status"], status, "{name}");
    }
}
