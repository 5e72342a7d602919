//! Majors of a data product side by side, on bqemulator, as `provision` leaves them: every
//! dataset, table and view carries the contract's labels and description and every column of
//! the data product its description (read back with tables.get and datasets.get; a changed
//! owner is applied without rebuilding anything), the older
//! major says it is deprecated in its descriptions while its state table keeps the definition
//! it records (`materialize` still merges into it); a major past its sunset is warned about by
//! `provision` and exported as a metric by the service; a major the configuration no longer
//! lists is warned about, left in place, and dropped only by `provision --retire`.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

fn object_yaml(dataset: &str, sunset: &str, with_v1: bool) -> String {
    let v1 = format!(
        "  previous:\n    - major: 1\n      sunset: {sunset}\n      fields:\n        \
         - {{name: order_id, type: STRING, required: true, description: Order number.}}\n        \
         - {{name: total, type: NUMERIC, description: Total.}}\n"
    );
    format!(
        "envelope:\n  format: json\n  object_id: payload.order_id\nversion: 2.1.0\n\
         owner: Team Orders\ndomain: sales\nsla: {{freshness: 15m}}\n\
         payload_classification: {{order_id: pii}}\n\
         semantic:\n  dataset: {dataset}\n  view: orders\n  description: Orders.\n  fields:\n    \
         - {{name: order_id, type: STRING, required: true, description: Order number., \
         classification: pii}}\n    \
         - {{name: total, type: STRING, description: Total as sent.}}\n{}",
        if with_v1 { v1 } else { String::new() }
    )
}

/// A configuration of `orders` with majors 2 and 1 (sunset far ahead), and its semantic dataset.
fn two_majors() -> (TestConfig, String) {
    let base = TestObject::new("orders", "");
    let dataset = format!("sem_{}", base.dataset);
    let object = TestObject {
        yaml: object_yaml(&dataset, "2999-12-31", true),
        ..base
    };
    (TestConfig::new(vec![object]), dataset)
}

async fn get_table(emu: &Emulators, table: &str) -> (u16, Value) {
    let response = reqwest::get(emu.table_url(table))
        .await
        .expect("tables.get");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_majors_are_labelled_warned_about_after_their_sunset_and_retired_on_request() {
    let (config, dataset) = two_majors();
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("warning"), "{text}");
    let emu = config.emulators.clone();
    let at = |name: &str| format!("{PROJECT}.{dataset}.{name}");

    for (name, deprecated) in [
        ("orders_v2", false),
        ("orders_v2_history", false),
        ("orders_v2_rejected", false),
        ("orders_v2_state", false),
        ("orders_v1", true),
        ("orders_v1_history", true),
        ("orders_v1_rejected", true),
        ("orders_v1_state", true),
    ] {
        let (status, table) = get_table(&emu, &at(name)).await;
        assert_eq!(status, 200, "{name}: {table}");
        let labels = &table["labels"];
        let major = if name.starts_with("orders_v2") {
            "2"
        } else {
            "1"
        };
        assert_eq!(labels["contract_version"], major, "{name}: {table}");
        assert_eq!(labels["data_product"], "orders", "{name}");
        assert_eq!(labels["deprecated"], deprecated.to_string(), "{name}");
        for (key, value) in [
            ("managed_by", "mesh-ingest"),
            ("layer", "semantic"),
            ("owner", "team_orders"),
            ("domain", "sales"),
        ] {
            assert_eq!(labels[key], value, "{name}: {key}");
        }
        let description = table["description"].as_str().unwrap_or_default();
        assert!(
            description.contains("Owner: Team Orders. Domain: sales. Contract: ")
                && description.contains(
                    "Freshness: an event is in the data product within 15m of being published."
                ),
            "{name}: {description}"
        );
        // Every column described: the typed fields from the YAML, the layer's own columns.
        let undescribed: Vec<&str> = table["schema"]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["description"].as_str().is_none_or(str::is_empty))
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert!(undescribed.is_empty(), "{name}: {undescribed:?}");
        let description = table["description"].as_str().unwrap_or_default();
        if deprecated {
            assert_eq!(
                (labels["sunset"].as_str(), labels["successor"].as_str()),
                (Some("2999-12-31"), Some("orders_v2")),
                "{name}"
            );
            assert!(
                description.starts_with(
                    "DEPRECATED: major 1 of the data product `orders`, maintained until 2999-12-31 (sunset); move to `orders_v2`."
                ),
                "{name}: {description}"
            );
        } else {
            assert!(labels.get("sunset").is_none(), "{name}: {table}");
            assert!(!description.contains("DEPRECATED"), "{name}: {description}");
        }
        if name.ends_with("_state") {
            assert!(
                description.contains("fingerprint: "),
                "{name}: {description}"
            );
        }
    }
    // The ingest layer and the datasets too.
    let orders = config.object("orders");
    for table in [orders.ingest_table(), orders.dead_letter_table()] {
        let (_, t) = get_table(&emu, &table).await;
        assert_eq!(
            (t["labels"]["layer"].as_str(), t["labels"]["owner"].as_str()),
            (Some("ingest"), Some("team_orders")),
            "{table}: {t}"
        );
        assert!(
            t["description"]
                .as_str()
                .unwrap_or_default()
                .contains("Contract: "),
            "{t}"
        );
    }
    // Classified data says so where it is read: the payload column, the product's column.
    let (_, ingest) = get_table(&emu, &orders.ingest_table()).await;
    let payload = ingest["schema"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "payload")
        .unwrap()
        .clone();
    assert!(
        payload["description"]
            .as_str()
            .unwrap()
            .ends_with("Classified: order_id (pii)."),
        "{payload}"
    );
    let (_, state) = get_table(&emu, &at("orders_v2_state")).await;
    assert_eq!(
        state["schema"]["fields"][1]["description"], "Order number. Classification: pii.",
        "{state}"
    );
    for (dataset, layer) in [
        (orders.dataset.clone(), "ingest"),
        (dataset.clone(), "semantic"),
    ] {
        let url = format!(
            "{}/bigquery/v2/projects/{PROJECT}/datasets/{dataset}",
            emu.bigquery_url()
        );
        let d: Value = reqwest::get(url).await.unwrap().json().await.unwrap();
        assert_eq!(
            (
                d["labels"]["layer"].as_str(),
                d["labels"]["managed_by"].as_str()
            ),
            (Some(layer), Some("mesh-ingest")),
            "{d}"
        );
        assert!(
            d["description"]
                .as_str()
                .unwrap_or_default()
                .contains("mesh-ingest"),
            "{d}"
        );
    }
    assert!(
        get_table(&emu, &at("orders_v2")).await.1["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("Orders.")),
        "the live view's description is the product's"
    );
    // The notice is not stacked, and the recorded definition still agrees: a second provision
    // rebuilds nothing, and materialize merges into both majors.
    // A changed contract (the owner) reaches every label on the next provision, and nothing
    // is rebuilt.
    let file = config.path().join("objects/orders.yaml");
    let yaml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        yaml.replace("owner: Team Orders", "owner: team-checkout"),
    )
    .unwrap();
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("rebuilt"), "{text}");
    for name in ["orders_v2", "orders_v1_state"] {
        let (_, t) = get_table(&emu, &at(name)).await;
        assert_eq!(t["labels"]["owner"], "team-checkout", "{name}");
        assert!(
            t["description"]
                .as_str()
                .unwrap()
                .contains("Owner: team-checkout."),
            "{name}"
        );
    }
    let (_, state) = get_table(&emu, &at("orders_v1_state")).await;
    assert_eq!(
        state["description"]
            .as_str()
            .unwrap()
            .matches("DEPRECATED")
            .count(),
        1,
        "{state}"
    );
    let app = App::start(&config).await;
    let orders = config.object("orders");
    let events = (1..=2)
        .map(|i| {
            Outgoing::body(
                json!({"event_id": format!("e-{i}"), "event_type": "OrderCreated",
                    "event_time": rfc3339(1_795_000_000_000_000),
                    "payload": {"order_id": format!("o-{i}"), "total": "12.50"}})
                .to_string(),
            )
        })
        .collect();
    publish(&emu, &orders.topic_path(), events).await;
    let sql = format!("SELECT COUNT(*) AS n FROM `{}`", orders.ingest_table());
    let landed = wait_for_count(&emu, &sql, 2, Duration::from_secs(60)).await;
    assert_eq!(landed, 2, "{}", app.log_text());
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
    let report = config.materialize();
    for line in &report {
        assert_eq!(line["rows_merged"], 2, "{report:?}");
    }
    let majors: Vec<u64> = report
        .iter()
        .map(|r| r["major"].as_u64().unwrap())
        .collect();
    assert_eq!(majors, [2, 1], "{report:?}");

    // Past its sunset: provision warns and keeps it; the service exports when it passed.
    let yaml = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, yaml.replace("2999-12-31", "2001-01-31")).unwrap();
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(
            "`orders_v1` (major 1) is past its sunset 2001-01-31; it is still maintained"
        ),
        "{text}"
    );
    assert_eq!(get_table(&emu, &at("orders_v1")).await.0, 200);
    let app = App::start(&config).await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "mesh_ingest_semantic_major_sunset_timestamp_seconds",
            &[("object", "orders"), ("major", "1")]
        ),
        Some(980_985_600.0),
        "the start of 2001-02-01, UTC"
    );
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));

    // Major 1 no longer configured: warned about and left in place until --retire drops it.
    let yaml = std::fs::read_to_string(&file).unwrap();
    let (without_v1, _) = yaml.split_once("  previous:\n").unwrap();
    std::fs::write(&file, without_v1).unwrap();
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "`{}` is no longer configured and no longer maintained",
            at("orders_v1")
        )),
        "{text}"
    );
    assert_eq!(get_table(&emu, &at("orders_v1_state")).await.0, 200);
    let (code, text) = config.run(&["provision", "--retire"]);
    assert_eq!(code, Some(0), "{text}");
    for name in [
        "orders_v1",
        "orders_v1_history",
        "orders_v1_rejected",
        "orders_v1_state",
    ] {
        assert!(
            text.contains(&format!(" {}\n", at(name))),
            "{name} retired: {text}"
        );
        assert_eq!(get_table(&emu, &at(name)).await.0, 404, "{name} dropped");
    }
    assert_eq!(get_table(&emu, &at("orders_v2_state")).await.0, 200);
    let watermarks = query(
        &emu,
        &format!(
            "SELECT state_table FROM `{}` ORDER BY state_table",
            at("_mesh_ingest_watermarks")
        ),
    )
    .await;
    let tables: Vec<&str> = watermarks
        .iter()
        .filter_map(|r| r["state_table"].as_str())
        .collect();
    assert_eq!(tables, ["orders_v2_state"]);
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(!text.contains("warning"), "nothing left over: {text}");
    let report = config.materialize();
    assert_eq!(report.len(), 1, "{report:?}");
    assert_eq!(report[0]["major"], 2);
}

/// `consumers` finds the dataset's region and asks BigQuery's job history. bqemulator does not
/// serve INFORMATION_SCHEMA.JOBS (out of its scope), so on it the command can only show that
/// it fails visibly, naming what it read and the permission it needs; the query and the
/// grouping of its answer by major are tested in `semantic::consumers::tests`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_reads_the_job_history_of_the_datasets_region_or_says_why_not() {
    let (config, _) = two_majors();
    config.provision();
    let (code, text) = config.run(&["consumers", "--object", "orders", "--days", "30"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("reading who read orders from `region-us`.INFORMATION_SCHEMA.JOBS (needs bigquery.jobs.listAll on project mesh-local)"),
        "{text}"
    );
    let (code, text) = config.run(&["consumers", "--object", "orders", "--days", "181"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("--days must be between 1 and 180"), "{text}");
}
