//! The state table, kept incrementally, on bqemulator: the scripted history of the semantic
//! test arrives in increments with `materialize` between them — out-of-order updates,
//! duplicates, ties, deletes, re-creates and bad required fields, plus a late event after a
//! newer state was merged, a duplicate published again in a later increment, and a run that
//! "crashes" between its MERGE and its watermark. After every increment the state-backed view
//! equals the view computed from the whole log, column by column. Then: Dataform's
//! incremental branch, run as the MERGE Dataform makes of it, yields the same table; and with
//! the watermark set, rows corrupted in the already-applied part of the log change nothing.
//! The product has two majors side by side, built from the one ingest log: major 2 (`total`
//! read as text, `weight` gone, `customer` and its `id` required) and major 1 (the semantic
//! test's fields); every check holds for each.

use crate::semantic_layer::{
    BASE_US, Event, SEMANTIC, assert_rows_eq, history, keyed_rows, payload, split_sqlx,
};
use crate::support::*;
use serde_json::json;
use std::time::Duration;

/// The majors of the product, newest first: their live views.
const MAJORS: [&str; 2] = ["orders_state_v2", "orders_state_v1"];

/// Major 2 beside major 1 (the semantic test's `SEMANTIC`), kept until a far sunset.
fn two_majors(dataset: &str) -> String {
    let v1 = SEMANTIC.replace("DATASET", dataset);
    let (head, fields) = v1.split_once("  fields:\n").expect("SEMANTIC lists fields");
    let total = "{name: total, type: NUMERIC, required: true}";
    let weight = "    - {name: weight, type: FLOAT64}\n";
    assert!(fields.contains(total) && fields.contains(weight));
    // A required STRUCT with a required member: validated with one JSONPath per member.
    let customer = "    - name: customer\n      type: STRUCT\n      fields:\n        - {name: id, type: STRING}\n";
    assert!(fields.contains(customer));
    let v2 = fields
        .replace(total, "{name: total, type: STRING, required: true}")
        .replace(weight, "")
        .replace(
            customer,
            "    - name: customer\n      type: STRUCT\n      required: true\n      fields:\n        \
             - {name: id, type: STRING, required: true}\n",
        );
    let previous: String = fields.lines().map(|l| format!("    {l}\n")).collect();
    // The smallest safety lag: every run re-reads the last minute, which in this test is the
    // whole log; the corruption check moves what was applied out of that window.
    format!(
        "\nversion: 2.0.0\n{head}  fields:\n{v2}  safety_lag_secs: 60\n  previous:\n    \
         - major: 1\n      sunset: 2999-12-31\n      fields:\n{previous}"
    )
}

struct Run {
    config: TestConfig,
    emu: Emulators,
    dataset: String,
    published: u64,
    log: std::path::PathBuf,
}

impl Run {
    fn table(&self, name: &str) -> String {
        format!("`{PROJECT}.{}.{name}`", self.dataset)
    }

    /// Publishes `events`, waits until the ingest table holds everything published so far.
    async fn publish(&mut self, events: &[&Event]) {
        let object = self.config.object("orders");
        let messages = events.iter().map(|e| e.message()).collect();
        publish(&self.emu, &object.topic_path(), messages).await;
        self.published += events.len() as u64;
        let sql = format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table());
        let landed = wait_for_count(&self.emu, &sql, self.published, Duration::from_secs(60)).await;
        assert_eq!(
            landed,
            self.published,
            "every event of the increment landed\n{}",
            log_tail(&self.log)
        );
    }

    /// Of each major, the state-backed view equals the view computed from the whole log.
    async fn assert_state_is_history(&self, step: &str) {
        for major in MAJORS {
            let state =
                keyed_rows(&self.emu, &format!("SELECT * FROM {}", self.table(major))).await;
            let history = keyed_rows(
                &self.emu,
                &format!("SELECT * FROM {}", self.table(&format!("{major}_history"))),
            )
            .await;
            assert!(!history.is_empty());
            assert_rows_eq(&state, &history, &format!("{major}, {step}"));
        }
    }

    async fn watermark(&self) -> Option<i64> {
        let rows = query(
            &self.emu,
            &format!(
                "SELECT UNIX_MICROS(watermark) AS w FROM {} WHERE state_table = 'orders_state_v1_state'",
                self.table("_mesh_ingest_watermarks")
            ),
        )
        .await;
        rows.first().and_then(|r| r["w"].as_str()?.parse().ok())
    }

    async fn set_watermark(&self, micros: i64) {
        query(
            &self.emu,
            &format!(
                "UPDATE {} SET watermark = TIMESTAMP_MICROS({micros}) \
                 WHERE state_table IN ('orders_state_v1_state', 'orders_state_v2_state')",
                self.table("_mesh_ingest_watermarks")
            ),
        )
        .await;
    }
}

async fn start() -> (Run, App) {
    let object = TestObject::new(
        "orders",
        "envelope:\n  format: json\n  object_id: payload.order_id\n\
         batch:\n  max_rows: 100\n  max_delay_ms: 100\n",
    );
    let dataset = format!("sem_{}", object.dataset);
    let yaml = two_majors(&dataset);
    let object = TestObject {
        yaml: format!("{}{yaml}", object.yaml),
        ..object
    };
    let config = TestConfig::new(vec![object]);
    config.provision();
    let app = App::start(&config).await;
    let emu = config.emulators.clone();
    let run = Run {
        config,
        emu,
        dataset,
        published: 0,
        log: app.log.clone(),
    };
    (run, app)
}

/// A copy of an event (same id, same body), to be published again.
fn again(e: &Event) -> Event {
    Event {
        event_id: e.event_id.clone(),
        event_type: e.event_type,
        order: e.order.clone(),
        time_us: e.time_us,
        payload: e.payload.clone(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_state_table_kept_incrementally_equals_the_whole_history_after_every_increment() {
    let (mut run, app) = start().await;
    let (first, second) = history();
    let chunk = first.len().div_ceil(3);
    let mut increments: Vec<Vec<&Event>> =
        first.chunks(chunk).map(|c| c.iter().collect()).collect();
    increments.push(second.iter().collect());
    for (i, events) in increments.iter().enumerate() {
        run.publish(events).await;
        let report = run.config.materialize();
        assert_eq!(report.len(), 2, "one line per major: {report:?}");
        for line in &report {
            assert!(line["rows_merged"].as_i64().unwrap() > 0, "{report:?}");
        }
        run.assert_state_is_history(&format!("increment {i}")).await;
    }

    // Late: an update of o-001 older than the state merged above; it must not roll back.
    let late = Event {
        event_id: "o-001-late".into(),
        event_type: "OrderUpdated",
        order: "o-001".into(),
        time_us: BASE_US + 3_600_000_000 + 30_000_000,
        payload: payload(1, 2),
    };
    // Again: an event of the first increment, published once more (a new publish time).
    let duplicate = again(&first[1]);
    run.publish(&[&late, &duplicate]).await;
    run.config.materialize();
    run.assert_state_is_history("late event and a later duplicate")
        .await;

    // A crash between the MERGE and the watermark: the MERGE applied, the watermark not moved.
    let before = run.watermark().await.expect("a watermark");
    let recreated = Event {
        event_id: "o-003-back".into(),
        event_type: "OrderCreated",
        order: "o-003".into(),
        time_us: BASE_US + 100 * 3_600_000_000,
        payload: {
            let mut p = payload(3, 1);
            p["order_id"] = json!("o-003");
            p
        },
    };
    run.publish(&[&recreated]).await;
    run.config.materialize();
    run.set_watermark(before).await;
    run.assert_state_is_history("after the MERGE, before the watermark")
        .await;
    let report = run.config.materialize();
    assert!(
        report[0]["slice_events"].as_i64().unwrap() >= 1,
        "the slice is read again"
    );
    run.assert_state_is_history("the same slice merged twice")
        .await;
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataform_incremental_matches_materialize_and_only_the_slice_is_read() {
    let (mut run, app) = start().await;
    let (first, second) = history();
    run.publish(&first.iter().collect::<Vec<_>>()).await;
    run.config.materialize();

    // Dataform's copy of each major's state table, before the next increment.
    for major in MAJORS {
        let state = run.table(&format!("{major}_state"));
        let copy = run.table(&format!("dataform_{major}"));
        query(
            &run.emu,
            &format!("CREATE TABLE {copy} AS SELECT * FROM {state}"),
        )
        .await;
    }
    run.publish(&second.iter().collect::<Vec<_>>()).await;
    run.config.materialize();

    // Dataform's incremental run: its body with the incremental branch taken, in the MERGE
    // Dataform makes of an incremental table with a unique key.
    let out = run.config.path().join("dataform");
    let status = run
        .config
        .command(&["semantic", "--format", "dataform", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let ingest = run.config.object("orders").ingest_table();
    let source = ingest.rsplit('.').next().unwrap();
    for major in MAJORS {
        let state = run.table(&format!("{major}_state"));
        let copy = run.table(&format!("dataform_{major}"));
        let sqlx = std::fs::read_to_string(out.join(format!("{major}_state.sqlx"))).unwrap();
        let (config, body) = split_sqlx(&sqlx);
        assert_eq!(config["type"], "incremental");
        assert_eq!(config["uniqueKey"], json!(["object_id"]));
        let body = body
            .replace("${when(incremental(), `", "")
            .replace("`)}", "")
            .replace("${self()}", &copy)
            .replace(&format!("${{ref(\"{source}\")}}"), &format!("`{ingest}`"));
        assert!(!body.contains("${"), "every placeholder resolved: {body}");
        dataform_merge(&run.emu, &copy, &body).await;
        let all = |table: &str| format!("SELECT * EXCEPT (ingested_at) FROM {table}");
        let from_dataform = keyed_rows(&run.emu, &all(&copy)).await;
        let from_materialize = keyed_rows(&run.emu, &all(&state)).await;
        assert_eq!(
            from_dataform, from_materialize,
            "{major}: Dataform's table is materialize's"
        );
    }

    // Corrupt every row already applied, then bring one new event: the state of every other
    // order stays exactly as it was, because the MERGE reads only the new slice. The applied
    // rows are also moved two hours back, as if ingested long ago: the slice (from the
    // watermark less the 60 s lag) then holds none of them.
    let mut before = Vec::new();
    for major in MAJORS {
        let rows = keyed_rows(&run.emu, &format!("SELECT * FROM {}", run.table(major))).await;
        before.push(rows);
    }
    let watermark = run.watermark().await.expect("a watermark");
    query(
        &run.emu,
        &format!(
            "UPDATE `{ingest}` SET payload = PARSE_JSON('{{\"order_id\": \"o-000\", \"status\": \"CORRUPTED\", \"total\": \"0\"}}'), \
             ingested_at = TIMESTAMP_SUB(ingested_at, INTERVAL 2 HOUR) \
             WHERE ingested_at <= TIMESTAMP_MICROS({watermark})"
        ),
    )
    .await;
    let mut p = payload(7, 3);
    p["status"] = json!("returned");
    let fresh = Event {
        event_id: "o-007-returned".into(),
        event_type: "OrderUpdated",
        order: "o-007".into(),
        time_us: BASE_US + 60 * 3_600_000_000,
        payload: p,
    };
    run.publish(&[&fresh]).await;
    let report = run.config.materialize();
    for line in &report {
        assert_eq!(line["slice_events"], json!(1), "{report:?}");
    }
    for (major, before) in MAJORS.iter().zip(&before) {
        let after = keyed_rows(&run.emu, &format!("SELECT * FROM {}", run.table(major))).await;
        assert_eq!(after["o-007"]["status"], json!("returned"), "{major}");
        for (order, row) in before {
            if order != "o-007" {
                assert_eq!(
                    &after[order], row,
                    "{major}, {order}: untouched by the corrupted history"
                );
            }
        }
    }
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}
