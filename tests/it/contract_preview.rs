//! `contract preview` on the emulators, against a prepared history of one object: 4 orders
//! created normally, 2 created `cancelled`, 1 created without a status, 3 of a type the
//! contract does not know yet (dead-lettered) and 1 body that is not JSON. The new version of
//! the object file narrows the status enum (no `cancelled`), allows the new type and makes
//! `status` required in the data product. The preview counts exactly: 2 accepted events now
//! rejected (`schema_violation`, with their message ids), 3 dead letters now accepted and 1
//! still refused, and a data product of 6 objects instead of 7 (the one without a status
//! leaves it; no column of the others changes). It prints each query's dry run first, and
//! refuses when `--max-bytes` is lower than what they scan (bqemulator's dry runs say 0 bytes,
//! so that refusal is unit-tested: `preview::tests`). The change is breaking, so exit 0; the
//! same preview against an unchanged copy has nothing to preview.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

const SCHEMA_OLD: &str = r#"{"type": "object", "required": ["order_id"],
 "properties": {"order_id": {"type": "string"},
   "status": {"enum": ["created", "paid", "cancelled"]}, "total": {"type": "number"}}}"#;
const SCHEMA_NEW: &str = r#"{"type": "object", "required": ["order_id"],
 "properties": {"order_id": {"type": "string"},
   "status": {"enum": ["created", "paid"]}, "total": {"type": "number"}}}"#;

const YAML: &str = "
envelope:
  format: json
  object_id: payload.order_id
event_types: [OrderCreated, OrderUpdated]
payload_schema_file: ../schemas/orders.json
semantic:
  dataset: DATASET
  view: orders
  fields:
    - {name: order_id, type: STRING, required: true}
    - {name: status, type: STRING}
    - {name: total, type: NUMERIC}
";

fn created(id: usize, kind: &str, payload: Value) -> Outgoing {
    Outgoing::body(
        json!({"event_id": format!("e-{id}"), "event_type": kind,
            "event_time": rfc3339(1_795_100_000_000_000 + id as i64 * 1_000_000),
            "payload": payload})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_counts_rejects_recoveries_and_changed_rows_exactly() {
    let object = TestObject::new("orders", "");
    let yaml = YAML.replace("DATASET", &format!("{}_sem", object.dataset));
    let config = TestConfig::new(vec![TestObject { yaml, ..object }]);
    let schemas = config.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(schemas.join("orders.json"), SCHEMA_OLD).unwrap();
    config.provision();
    let emu = config.emulators.clone();
    let orders = config.object("orders");

    let mut messages = Vec::new();
    for i in 0..4 {
        messages.push(created(
            i,
            "OrderCreated",
            json!({"order_id": format!("o-{i}"), "status": "created", "total": 10}),
        ));
    }
    for i in 4..6 {
        messages.push(created(
            i,
            "OrderCreated",
            json!({"order_id": format!("o-{i}"), "status": "cancelled", "total": 5}),
        ));
    }
    messages.push(created(
        6,
        "OrderCreated",
        json!({"order_id": "o-6", "total": 1}),
    ));
    for i in 7..10 {
        messages.push(created(
            i,
            "OrderShipped",
            json!({"order_id": format!("o-{i}"), "status": "paid"}),
        ));
    }
    messages.push(Outgoing::body("not json"));
    let app = App::start(&config).await;
    publish(&emu, &orders.topic_path(), messages).await;
    let landed = |table: String| format!("SELECT COUNT(*) AS n FROM `{table}`");
    assert_eq!(
        wait_for_count(
            &emu,
            &landed(orders.ingest_table()),
            7,
            Duration::from_secs(60)
        )
        .await,
        7,
        "{}",
        app.log_text()
    );
    assert_eq!(
        wait_for_count(
            &emu,
            &landed(orders.dead_letter_table()),
            4,
            Duration::from_secs(60)
        )
        .await,
        4
    );
    app.terminate().await;
    // The message ids of the two cancelled orders, which the new schema refuses.
    let rows = query(
        &emu,
        &format!(
            "SELECT message_id FROM `{}` WHERE object_id IN ('o-4', 'o-5') ORDER BY message_id",
            orders.ingest_table()
        ),
    )
    .await;
    let cancelled: Vec<String> = rows
        .iter()
        .map(|r| r["message_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(cancelled.len(), 2);

    // NEW: a copy of the configuration with the contract changed.
    let new = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(new.path().join("objects")).unwrap();
    std::fs::create_dir_all(new.path().join("schemas")).unwrap();
    std::fs::write(new.path().join("schemas/orders.json"), SCHEMA_NEW).unwrap();
    let yaml = std::fs::read_to_string(config.path().join("objects/orders.yaml")).unwrap();
    let changed = yaml
        .replace("OrderUpdated]", "OrderUpdated, OrderShipped]")
        .replace(
            "{name: status, type: STRING}",
            "{name: status, type: STRING, required: true}",
        );
    assert_ne!(changed, yaml);
    std::fs::write(new.path().join("objects/orders.yaml"), changed).unwrap();
    let old = config.path().to_str().unwrap().to_string();
    let new_dir = new.path().to_str().unwrap();

    let out = config
        .command(&[
            "contract", "preview", &old, new_dir, "--since", "1d", "--format", "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "accepted events of {} would scan 0 B",
            orders.ingest_table()
        )),
        "the dry runs are printed before running: {stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &report["objects"][0];
    assert_eq!(p["object"], "orders");
    assert!(p["breaking_in_diff"].as_u64().unwrap() >= 2, "{p:#}");
    assert_eq!(p["accepted"]["examined"], 7, "{p:#}");
    assert_eq!(
        p["accepted"]["changed"],
        json!({"schema_violation": {"count": 2, "examples": cancelled}}),
        "{p:#}"
    );
    assert_eq!(p["dead_letters"]["examined"], 4, "{p:#}");
    assert_eq!(
        p["dead_letters"]["changed"]["unknown_event_type"]["count"], 3,
        "{p:#}"
    );
    assert_eq!(
        p["dead_letters"]["unchanged"],
        json!({"malformed_json": 1}),
        "{p:#}"
    );
    assert_eq!(
        p["products"],
        json!([{"major": 1, "against": 1, "objects_old": 7, "objects_new": 6, "only_old": 1,
            "only_new": 0, "changed": {"order_id": 0, "status": 0, "total": 0}}]),
        "{p:#}"
    );
    assert_eq!(report["missed_by_diff"], json!([]));

    // The text report says the same for people.
    let (code, text) = config.run(&["contract", "preview", &old, new_dir, "--since", "1d"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains("7 examined, 2 would now be rejected: schema_violation 2 (e.g. "),
        "{text}"
    );
    assert!(
        text.contains("4 examined, 3 would now be accepted (stored as unknown_event_type 3"),
        "{text}"
    );
    assert!(
        text.contains("data product v1 (against v1 as it is): 7 objects before, 6 after, 1 only before, 0 only after"),
        "{text}"
    );

    // Nothing changed: nothing to preview, nothing scanned.
    let (code, text) = config.run(&["contract", "preview", &old, &old]);
    assert_eq!((code, text.trim()), (Some(0), "no changes to preview"));
}
