//! `dlq replay` on the emulators: events dead-lettered as `unknown_event_type` and
//! `schema_violation` (and some that stay bad) go through the running service; the contract
//! is then fixed (the new event type allowed, the JSON Schema widened). A dry run reports what
//! would pass and appends nothing; a replay stopped after its first append and killed, then
//! run again, lands every recoverable event exactly once (set equality on event ids) with its
//! original message id, publish time and attributes; a third run lands nothing; the semantic
//! layer then shows the recovered state. Some of the recoverable events arrive
//! zstd-compressed: they are dead-lettered compressed and inflated again by the replay.

use crate::destination_faults::patch_schema;
use crate::support::*;
use mesh_ingest::envelope::encoding::{ContentEncoding, compress};
use serde_json::json;
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

const SCHEMA_V1: &str = r#"{"type": "object", "required": ["order_id", "status", "total"],
 "properties": {"order_id": {"type": "string"}, "status": {"type": "string"},
                "total": {"type": "number"}}}"#;
/// The fix: totals published as decimal strings are accepted too.
const SCHEMA_V2: &str = r#"{"type": "object", "required": ["order_id", "status", "total"],
 "properties": {"order_id": {"type": "string"}, "status": {"type": "string"},
                "total": {"type": ["number", "string"]}}}"#;

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
    - {name: status, type: STRING, required: true}
    - {name: total, type: NUMERIC, required: true}
";

const BASE_US: i64 = 1_795_100_000_000_000;

fn event(id: &str, kind: &str, order: usize, second: i64, payload: serde_json::Value) -> Outgoing {
    Outgoing::with_attributes(
        json!({"event_id": id, "event_type": kind,
            "event_time": rfc3339(BASE_US + second * 1_000_000), "payload": payload})
        .to_string(),
        &[
            ("producer", "order-service"),
            ("order", &format!("o{order}")),
        ],
    )
}

/// 20 created orders; 10 shipped (a type the contract does not know yet); 10 updated with
/// the total as a string (the schema wants a number); 2 updates without a status and 3
/// bodies that are not JSON, which no fix recovers.
fn history() -> (Vec<Outgoing>, BTreeSet<String>) {
    let mut messages = Vec::new();
    let mut recoverable = BTreeSet::new();
    for o in 0..20 {
        messages.push(event(
            &format!("c{o}"),
            "OrderCreated",
            o,
            0,
            json!({"order_id": format!("o{o}"), "status": "created", "total": 10}),
        ));
    }
    for (orders, prefix, kind, status, total) in [
        (0..10, "s", "OrderShipped", "shipped", json!(10)),
        (10..20, "u", "OrderUpdated", "paid", json!("12.50")),
    ] {
        for o in orders {
            let id = format!("{prefix}{o}");
            let mut m = event(
                &id,
                kind,
                o,
                60,
                json!({"order_id": format!("o{o}"), "status": status, "total": total}),
            );
            // Some arrive zstd-compressed: dead-lettered compressed, inflated again on replay.
            if o % 3 == 0 {
                m.data = compress(ContentEncoding::Zstd, &m.data).to_vec();
                m.attributes
                    .push(("content-encoding".into(), "zstd".into()));
            }
            messages.push(m);
            recoverable.insert(id);
        }
    }
    for o in 0..2 {
        messages.push(event(
            &format!("bad{o}"),
            "OrderUpdated",
            o,
            90,
            json!({"order_id": format!("o{o}"), "total": 1}),
        ));
    }
    for _ in 0..3 {
        messages.push(Outgoing::body("{not json"));
    }
    (messages, recoverable)
}

struct Replay {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn replay(config: &TestConfig, extra: &[&str]) -> Replay {
    let mut args = vec!["dlq", "replay", "--object", "orders"];
    args.extend_from_slice(extra);
    let out = config.command(&args).output().expect("run dlq replay");
    Replay {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into(),
        stderr: String::from_utf8_lossy(&out.stderr).into(),
    }
}

/// The summary line of one stored reason: examined, passed, failing, truncated.
fn reason_row(stdout: &str, reason: &str) -> Vec<u64> {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(reason))
        .unwrap_or_else(|| panic!("no line for {reason} in\n{stdout}"))
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|n| n.parse().expect("a count"))
        .collect()
}

async fn replayed_ids(emu: &Emulators, table: &str) -> Vec<String> {
    query(
        emu,
        &format!("SELECT event_id FROM `{table}` WHERE replayed_at IS NOT NULL ORDER BY event_id"),
    )
    .await
    .iter()
    .map(|r| r["event_id"].as_str().unwrap().to_string())
    .collect()
}

/// Runs a replay of one row per append, stops it after its first append, and kills it.
async fn killed_replay(config: &TestConfig, emu: &Emulators, table: &str) -> u64 {
    let mut child = config
        .command(&["dlq", "replay", "--object", "orders", "--batch-rows", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dlq replay");
    let stderr = child.stderr.take().unwrap();
    let first = BufReader::new(stderr)
        .lines()
        .map_while(Result::ok)
        .find(|l| l.contains("appended"));
    assert!(first.is_some(), "the replay reported progress");
    // Frozen wherever it is (possibly with an append in flight), then killed.
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-STOP", &pid])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let landed = count(
        emu,
        &format!("SELECT COUNT(*) AS n FROM `{table}` WHERE replayed_at IS NOT NULL"),
    )
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    landed
}

/// The orders object with contract v1, provisioned.
fn provisioned() -> TestConfig {
    let object = TestObject::new("orders", "");
    let yaml = YAML.replace("DATASET", &format!("{}_sem", object.dataset));
    let object = TestObject { yaml, ..object };
    let config = TestConfig::new(vec![object]);
    let schemas = config.path().join("schemas");
    std::fs::create_dir_all(&schemas).unwrap();
    std::fs::write(schemas.join("orders.json"), SCHEMA_V1).unwrap();
    config.provision();
    config
}

/// The contract is fixed: the new event type, and totals as strings.
fn fix_contract(config: &TestConfig) {
    let file = config.path().join("objects/orders.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("OrderUpdated]", "OrderUpdated, OrderShipped]"),
    )
    .unwrap();
    std::fs::write(config.path().join("schemas/orders.json"), SCHEMA_V2).unwrap();
}

/// Runs the service and publishes `messages`; returns it once `n` dead letters are stored.
async fn dead_lettered(config: &TestConfig, messages: Vec<Outgoing>, n: u64) -> App {
    let emu = &config.emulators;
    let object = config.object("orders");
    let app = App::start(config).await;
    app.wait_ready(Duration::from_secs(60)).await;
    publish(emu, &object.topic_path(), messages).await;
    let dead_sql = format!("SELECT COUNT(*) AS n FROM `{}`", object.dead_letter_table());
    assert_eq!(
        wait_for_count(emu, &dead_sql, n, Duration::from_secs(60)).await,
        n,
        "{}",
        app.log_text()
    );
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_replay_exactly_once_after_the_contract_is_fixed() {
    let config = provisioned();
    let emu = config.emulators.clone();
    let object = config.object("orders");
    let (ingest, dead) = (object.ingest_table(), object.dead_letter_table());

    let (messages, recoverable) = history();
    let app = dead_lettered(&config, messages, 25).await;
    let ingest_sql = format!("SELECT COUNT(*) AS n FROM `{ingest}`");
    assert_eq!(
        wait_for_count(&emu, &ingest_sql, 20, Duration::from_secs(30)).await,
        20
    );
    app.terminate().await;

    fix_contract(&config);

    let dry = replay(&config, &["--dry-run"]);
    assert_eq!(dry.code, Some(0), "{}\n{}", dry.stdout, dry.stderr);
    assert_eq!(
        reason_row(&dry.stdout, "unknown_event_type"),
        [10, 10, 0, 0],
        "{}",
        dry.stdout
    );
    assert_eq!(reason_row(&dry.stdout, "schema_violation"), [12, 10, 2, 0]);
    assert_eq!(reason_row(&dry.stdout, "malformed_json"), [3, 0, 3, 0]);
    assert_eq!(
        count(&emu, &ingest_sql).await,
        20,
        "a dry run appends nothing"
    );

    let landed_before_kill = killed_replay(&config, &emu, &ingest).await;
    eprintln!("the killed replay landed {landed_before_kill} of 20");
    assert!(
        (1..20).contains(&landed_before_kill),
        "the killed run landed part of the replay: {landed_before_kill}"
    );

    let run = replay(&config, &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains(&format!("appended {} row(s)", 20 - landed_before_kill)),
        "{}",
        run.stdout
    );
    let ids = replayed_ids(&emu, &ingest).await;
    assert_eq!(
        ids.len(),
        20,
        "each recoverable event exactly once: {ids:?}"
    );
    assert_eq!(ids.into_iter().collect::<BTreeSet<_>>(), recoverable);

    let again = replay(&config, &[]);
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again.stdout.contains("appended 0 row(s)"),
        "{}",
        again.stdout
    );
    assert_eq!(
        count(&emu, &ingest_sql).await,
        40,
        "the second run appends nothing"
    );

    assert_replayed_rows_keep_the_message(&emu, &ingest, &dead).await;
    assert_semantic_layer_recovered(&config, &emu, object).await;
}

/// Replayed rows carry the dead letter's message id, publish time and attributes.
async fn assert_replayed_rows_keep_the_message(emu: &Emulators, ingest: &str, dead: &str) {
    let rows = query(
        emu,
        &format!(
            "SELECT COUNT(*) AS n FROM `{ingest}` AS i JOIN `{dead}` AS d \
             ON i.message_id = d.message_id \
             WHERE i.replayed_at IS NOT NULL AND i.publish_time = d.publish_time \
             AND TO_JSON_STRING(i.attributes) = TO_JSON_STRING(d.attributes) \
             AND JSON_VALUE(i.attributes, '$.producer') = 'order-service'"
        ),
    )
    .await;
    assert_eq!(
        rows[0]["n"], "20",
        "message id, publish time, attributes kept"
    );
}

async fn assert_semantic_layer_recovered(
    config: &TestConfig,
    emu: &Emulators,
    object: &TestObject,
) {
    config.materialize();
    let view = format!("{PROJECT}.{}_sem.orders_v1", object.dataset);
    let rows = query(
        emu,
        &format!("SELECT object_id, status, total FROM `{view}` ORDER BY object_id"),
    )
    .await;
    assert_eq!(rows.len(), 20);
    for r in rows {
        let o: usize = r["object_id"].as_str().unwrap()[1..].parse().unwrap();
        let (status, total) = if o < 10 {
            ("shipped", 10.0)
        } else {
            ("paid", 12.5)
        };
        assert_eq!(r["status"], status, "{r:?}");
        let got: f64 = r["total"].as_str().unwrap().parse().unwrap();
        assert_eq!(got, total, "{r:?}");
    }
}

/// A replay into a drifted ingest table (a column dropped) is a fault of the table: it exits
/// non-zero naming the table and the column, counts no row as failing and loses nothing —
/// every dead letter stays, and once the table is as provisioned again the replay lands them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_into_a_drifted_table_fails_naming_the_table_and_loses_nothing() {
    let config = provisioned();
    let emu = config.emulators.clone();
    let object = config.object("orders");
    let (ingest, dead) = (object.ingest_table(), object.dead_letter_table());

    // Six shipped orders: a type the contract does not know yet, so dead-lettered.
    let shipped: Vec<Outgoing> = (0..6)
        .map(|o| {
            event(
                &format!("s{o}"),
                "OrderShipped",
                o,
                60,
                json!({"order_id": format!("o{o}"), "status": "shipped", "total": 10}),
            )
        })
        .collect();
    dead_lettered(&config, shipped, 6).await.terminate().await;
    let dead_sql = format!("SELECT COUNT(*) AS n FROM `{dead}`");

    // The contract is fixed, and the ingest table has drifted.
    fix_contract(&config);
    let provisioned = std::sync::Mutex::new(Vec::new());
    patch_schema(&emu, &ingest, |f| {
        *provisioned.lock().unwrap() = f.clone();
        f.retain(|c| c["name"] != "ordering_key")
    })
    .await;

    let run = replay(&config, &[]);
    assert_ne!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains(&format!("the ingest table {ingest} cannot take rows"))
            && run.stderr.contains("column `ordering_key` is missing"),
        "names the table and the cause:\n{}",
        run.stderr
    );
    assert!(
        !run.stdout.contains("bigquery_rejected"),
        "no row is reported as failing:\n{}",
        run.stdout
    );
    assert_eq!(count(&emu, &dead_sql).await, 6, "every dead letter stays");
    let replayed_sql =
        format!("SELECT COUNT(*) AS n FROM `{ingest}` WHERE replayed_at IS NOT NULL");
    assert_eq!(count(&emu, &replayed_sql).await, 0);

    // `provision` adds the column back, at the end: the schema now reads as it should, but
    // bqemulator (which inserts by position) refuses every append as INVALID_ARGUMENT — a
    // table that refuses every row. Still the table's fault, not the rows'.
    config.provision();
    let run = replay(&config, &[]);
    assert_ne!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "the ingest table {ingest} refused every append of this replay (INVALID_ARGUMENT"
        )),
        "names the table and the cause:\n{}",
        run.stderr
    );
    assert!(!run.stdout.contains("bigquery_rejected"), "{}", run.stdout);
    assert_eq!(count(&emu, &dead_sql).await, 6, "every dead letter stays");
    assert_eq!(count(&emu, &replayed_sql).await, 0);

    // Nothing was lost: with the table as provisioned again, the same replay lands them all.
    let provisioned = provisioned.into_inner().unwrap();
    patch_schema(&emu, &ingest, |f| f.clone_from(&provisioned)).await;
    let run = replay(&config, &[]);
    assert_eq!(run.code, Some(0), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(reason_row(&run.stdout, "unknown_event_type"), [6, 6, 0, 0]);
    assert_eq!(count(&emu, &replayed_sql).await, 6);
}
