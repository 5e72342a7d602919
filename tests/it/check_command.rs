//! `mesh-ingest check`: the shipped configuration passes in every environment, and a broken
//! configuration fails with exit code 2 and a message naming the file and the field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub(crate) fn shipped_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

fn check(dir: &Path, env: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mesh-ingest"))
        .args(["--config"])
        .arg(dir)
        .args(["--env", env, "check"])
        // The outcome must not depend on the caller's emulator or override variables.
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("BIGQUERY_EMULATOR_HOST")
        .env_remove("BIGQUERY_STORAGE_EMULATOR_HOST")
        .env_remove("APP_ENVIRONMENT")
        .output()
        .expect("run mesh-ingest check")
}

/// A copy of the shipped configuration to break.
pub(crate) fn copy_of_shipped() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&shipped_config(), dir.path());
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no `{from}`", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn shipped_configuration_passes_in_every_environment() {
    for env in ["local", "production"] {
        let out = check(&shipped_config(), env);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{env}: {stderr}");
        assert!(
            stderr.contains("configuration OK: 2 object(s)"),
            "{env}: {stderr}"
        );
        let resolved: serde_json::Value = serde_json::from_str(&stdout).expect("resolved JSON");
        assert_eq!(resolved["environment"], env);
        let names: Vec<&str> = resolved["objects"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["customer", "order"]);
        let order = &resolved["objects"][1];
        assert_eq!(
            order["ingest_table"],
            "mesh-local.order_ingest.order_events"
        );
        assert_eq!(order["streams"], 2);
    }
    let production = check(&shipped_config(), "production");
    let resolved: serde_json::Value = serde_json::from_slice(&production.stdout).unwrap();
    assert_eq!(resolved["application"]["host"], "0.0.0.0");
    assert_eq!(resolved["log"]["format"], "json");
}

/// Each case: which file to edit, the edit, and what the error must name.
#[test]
fn broken_configuration_names_file_and_field() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "objects/order.yaml",
            "max_rows: 1000",
            "max_rows: 0",
            &["order.yaml", "batch.max_rows"],
        ),
        (
            "objects/order.yaml",
            "streams: 2",
            "streamz: 2",
            &["order.yaml", "streamz"],
        ),
        (
            "objects/order.yaml",
            "ingest_table: order_ingest.order_events",
            "ingest_table: not a table",
            &["order.yaml", "ingest_table"],
        ),
        (
            "objects/order.yaml",
            "format: json",
            "format: protobuf",
            &["order.yaml", "envelope.format"],
        ),
        (
            "objects/order.yaml",
            "../schemas/order.schema.json",
            "../schemas/missing.schema.json",
            &["order.yaml", "payload_schema_file", "missing.schema.json"],
        ),
        (
            "objects/customer.yaml",
            "subscription: customer-ingest",
            "subscription: order-ingest",
            // Files load in name order: the second user of the subscription is named.
            &["order.yaml", "subscription", "customer"],
        ),
        (
            "objects/customer.yaml",
            "max_delay_ms: 500",
            "max_delay_ms: soon",
            &["customer.yaml", "max_delay_ms"],
        ),
        (
            // The owner labels every table and view: a value BigQuery cannot hold is refused.
            "objects/order.yaml",
            "owner: team-orders",
            "owner: the-team-that-owns-every-order-of-the-web-shop-and-all-the-stores",
            &["order.yaml", "owner", "at most 63"],
        ),
        (
            "objects/order.yaml",
            "sunset: 2027-06-30",
            "sunset: 2027-02-30",
            &["order.yaml", "semantic.previous[0].sunset"],
        ),
        (
            "base.yaml",
            "port: 8080",
            "port: eighty",
            &["base.yaml", "port"],
        ),
        (
            "local.yaml",
            "format: text",
            "format: xml",
            &["local.yaml", "format"],
        ),
    ];
    for (file, from, to, must_name) in cases {
        let dir = copy_of_shipped();
        edit(&dir.path().join(file), from, to);
        let out = check(dir.path(), "local");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{file} `{to}`: {stderr}");
        for needle in *must_name {
            assert!(
                stderr.contains(needle),
                "{file} `{to}`: the error must name `{needle}`:\n{stderr}"
            );
        }
    }
}

#[test]
fn missing_overlay_and_empty_objects_dir_are_explained() {
    let out = check(&shipped_config(), "staging");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("staging.yaml"), "{stderr}");

    let dir = copy_of_shipped();
    for e in std::fs::read_dir(dir.path().join("objects")).unwrap() {
        std::fs::remove_file(e.unwrap().path()).unwrap();
    }
    let out = check(dir.path(), "local");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr.contains("no object files"), "{stderr}");
}
