//! Faults of the destination itself are never blamed on rows. Against the load harness
//! (faults on a schedule, Pub/Sub leases that expire like Pub/Sub's): a drifted schema or a
//! permission error halts the table (nothing acknowledged, nothing dead-lettered, /readyz and
//! the state gauge say which table) and everything lands once it is fixed, with no lease
//! expiring meanwhile; UNKNOWN is retried; a failing dead-letter table holds no valid row back;
//! a backlog does not delay dead letters. Against bqemulator: a deleted table halts its object
//! while another object flows, and `provision` brings it back; `check --remote` names a
//! drifted column and `provision` adds it.

use crate::support::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Runs the harness on `events` events of 512 bytes with a 10 s lease, 100 ms batches and
/// 1000 outstanding messages per stream, unless `extra` says otherwise.
fn harness(events: u64, extra: &[&str]) -> Value {
    let events = events.to_string();
    let mut args = vec!["--events", &events, "--payload-bytes", "512"];
    if !extra.contains(&"--max-outstanding") {
        args.extend(["--max-outstanding", "1000"]);
    }
    if !extra.contains(&"--object-yaml") {
        args.extend([
            "--object-yaml",
            "  ack_deadline_secs: 10\nbatch:\n  max_delay_ms: 100\n",
        ]);
    }
    args.extend(extra);
    mesh_load(&args)
}

fn n(report: &Value, path: &str) -> u64 {
    let v = path.split('.').fold(report, |v, k| &v[k]);
    v.as_u64().unwrap_or_else(|| panic!("{path} in {report}"))
}

/// Every event written and acknowledged exactly once, no lease expired, no redelivery.
fn everything_landed_once(r: &Value, events: u64) {
    assert_eq!(n(r, "acked"), events);
    assert_eq!(n(r, "never_acked"), 0);
    assert_eq!(n(r, "acked_more_than_once"), 0, "no duplicates");
    assert_eq!(
        n(r, "expired_leases"),
        0,
        "leases were kept through the outage"
    );
    assert_eq!(
        n(r, "max_delivery_attempt"),
        1,
        "delivery attempts did not grow"
    );
}

/// While the first fault window was open: nothing acknowledged or dead-lettered, /readyz
/// 503 naming `table` and `cause`, the table's state gauge at 2 (halted).
fn halted_during_fault(r: &Value, table: &str, cause: &str) {
    let f = &r["during_fault"];
    assert_eq!(n(r, "during_fault.acked"), 0, "nothing acknowledged: {f}");
    assert_eq!(
        n(r, "during_fault.dead_letter_rows"),
        0,
        "nothing dead-lettered"
    );
    assert_eq!(n(r, "during_fault.readyz_status"), 503);
    let readyz = f["readyz"].as_str().unwrap();
    assert!(
        readyz.contains(&format!("orders: {table} table mesh-load.load."))
            && readyz.contains(cause),
        "{readyz}"
    );
    assert!(
        !readyz.contains("injected"),
        "/readyz never quotes upstream messages: {readyz}"
    );
    let gauge = f["destination_state"].as_str().unwrap();
    assert!(gauge.contains(&format!("table=\"{table}\"}} 2")), "{gauge}");
}

#[test]
fn a_drifted_schema_halts_the_table_and_every_event_lands_once_it_is_fixed() {
    // INVALID_ARGUMENT on every append while tables.get shows the ingest table without
    // `ordering_key`, for 8 s; events keep arriving throughout.
    let r = harness(
        3000,
        &["--rate", "500", "--fault", "ingest:3:1:8", "--drift", "1:8"],
    );
    halted_during_fault(
        &r,
        "ingest",
        "schema drift: column `ordering_key` is missing",
    );
    assert_eq!(n(&r, "dead_letter_rows"), 0, "no valid event dead-lettered");
    assert_eq!(n(&r, "rows_written"), 3000);
    everything_landed_once(&r, 3000);
}

#[test]
fn permission_denied_for_longer_than_the_ack_deadline_holds_every_message_leased() {
    // 25 s of PERMISSION_DENIED: two and a half times the 10 s lease each delivery gets.
    let r = harness(3000, &["--rate", "500", "--fault", "ingest:7:1:25"]);
    halted_during_fault(&r, "ingest", "(PERMISSION_DENIED)");
    assert_eq!(n(&r, "dead_letter_rows"), 0);
    assert_eq!(n(&r, "rows_written"), 3000);
    everything_landed_once(&r, 3000);
}

#[test]
fn unknown_on_single_row_appends_is_retried_not_dead_lettered() {
    // A third of the appends cut with UNKNOWN (as a proxy cutting the stream looks), the rest
    // landing: the cut rows' siblings land, yet an UNKNOWN blames no row.
    let r = harness(
        500,
        &[
            "--rate",
            "200",
            "--fail-fraction",
            "0.3",
            "--fail-code",
            "2",
            "--object-yaml",
            "  ack_deadline_secs: 10\nbatch:\n  max_rows: 1\n  max_delay_ms: 100\n",
        ],
    );
    assert!(n(&r, "failed_appends") > 100, "UNKNOWN was answered");
    assert_eq!(n(&r, "dead_letter_rows"), 0);
    assert_eq!(n(&r, "rows_written"), 500);
    everything_landed_once(&r, 500);
    let retries = r["bigquery_retries_metric"].as_f64().expect("scraped");
    assert!(
        retries >= n(&r, "fault_appends") as f64,
        "each UNKNOWN retried"
    );
}

#[test]
fn a_failing_dead_letter_table_holds_no_valid_row_back() {
    // PERMISSION_DENIED on the dead-letter table for 8 s; every 50th event is not JSON.
    let r = harness(
        3000,
        &[
            "--rate",
            "500",
            "--bad-every",
            "50",
            "--fault",
            "dead_letter:7:1:8",
        ],
    );
    assert!(
        n(&r, "during_fault.acked") > 500,
        "valid events were acknowledged during the outage: {}",
        r["during_fault"]
    );
    assert_eq!(n(&r, "during_fault.dead_letter_rows"), 0);
    let readyz = r["during_fault"]["readyz"].as_str().unwrap();
    assert!(readyz.contains("orders: dead_letter table"), "{readyz}");
    assert_eq!(n(&r, "dead_letters.bad_messages"), 60);
    assert_eq!(
        n(&r, "dead_letters.distinct"),
        60,
        "each bad event dead-lettered"
    );
    assert_eq!(n(&r, "dead_letters.more_than_once"), 0, "and only once");
    assert_eq!(n(&r, "rows_written"), 3000);
    everything_landed_once(&r, 3000);
}

#[test]
fn a_backlog_does_not_delay_dead_letters() {
    // No rate limit and 200 ms appends: the channel stays full. A bad event's dead-letter row
    // must land within max_delay_ms (100) plus a few appends of waiting (in the channel,
    // for a permit, its own append), never wait for a dead-letter batch to fill.
    let r = harness(
        10_000,
        &[
            "--max-outstanding",
            "100",
            "--latency-ms",
            "200",
            "--bad-every",
            "1000",
            "--object-yaml",
            "batch:\n  max_rows: 100\n  max_delay_ms: 100\n",
        ],
    );
    assert_eq!(n(&r, "dead_letters.distinct"), 10);
    let worst = r["dead_letters"]["latency_ms_max"].as_f64().unwrap();
    assert!(
        worst <= 100.0 + 3.0 * 200.0 + 500.0,
        "a dead-letter row waited {worst} ms"
    );
    assert!(
        r["seconds"].as_f64().unwrap() * 1000.0 > 4.0 * worst,
        "the run outlasted the worst wait several times over (it was a backlog)"
    );
}

const ORDERS: &str = "envelope:\n  format: json\n  object_id: payload.order_id\n\
    batch:\n  max_delay_ms: 100\n";

fn events(prefix: &str, range: std::ops::Range<usize>) -> Vec<Outgoing> {
    range
        .map(|i| {
            Outgoing::body(
                json!({"event_id": format!("{prefix}-{i}"), "event_type": "Updated",
                    "event_time": "2026-11-20T10:00:00Z",
                    "payload": {"order_id": format!("o-{i}")}})
                .to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_table_halts_its_object_while_another_flows_and_provision_restores_it() {
    let config = TestConfig::new(vec![
        TestObject::new("orders", ORDERS),
        TestObject::new("customers", ORDERS),
    ]);
    config.provision();
    let emu = config.emulators.clone();
    let app = App::start(&config).await;
    let (orders, customers) = (config.object("orders"), config.object("customers"));
    let count = |t: String| format!("SELECT COUNT(*) AS n FROM `{t}`");
    publish(&emu, &orders.topic_path(), events("before", 0..20)).await;
    let landed = wait_for_count(
        &emu,
        &count(orders.ingest_table()),
        20,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(landed, 20, "{}", app.log_text());

    delete_table(&emu, &orders.ingest_table()).await;
    publish(&emu, &orders.topic_path(), events("during", 0..100)).await;
    publish(&emu, &customers.topic_path(), events("c", 0..100)).await;
    let other = wait_for_count(
        &emu,
        &count(customers.ingest_table()),
        100,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(
        other,
        100,
        "the other object keeps flowing\n{}",
        app.log_text()
    );
    let acked = |m: &str| {
        metric(
            m,
            "mesh_ingest_messages_acked_total",
            &[("object", "orders")],
        )
    };
    let before = acked(&app.metrics().await);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let metrics = app.metrics().await;
    assert_eq!(
        acked(&metrics),
        before,
        "nothing acknowledged for the deleted table"
    );
    assert_eq!(acked(&metrics), Some(20.0));
    assert!(
        metrics.contains(r#"mesh_ingest_destination_state{object="orders",table="ingest"} 2"#),
        "{metrics}"
    );
    let readyz = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(readyz.status(), 503);
    let text = readyz.text().await.unwrap();
    assert!(
        text.contains(&format!(
            "orders: ingest table {} halted (NOT_FOUND)",
            orders.ingest_table()
        )),
        "{text}"
    );
    assert_eq!(count_rows(&emu, &orders.dead_letter_table()).await, 0);

    config.provision();
    let restored = wait_for_count(
        &emu,
        &count(orders.ingest_table()),
        100,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(restored, 100, "{}", app.log_text());
    let ids = query(
        &emu,
        &format!("SELECT event_id FROM `{}`", orders.ingest_table()),
    )
    .await;
    let mut ids: Vec<String> = ids
        .iter()
        .map(|r| r["event_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    let mut want: Vec<String> = (0..100).map(|i| format!("during-{i}")).collect();
    want.sort();
    assert_eq!(ids, want, "every event published during the outage, once");
    assert_eq!(count_rows(&emu, &orders.dead_letter_table()).await, 0);
    app.wait_ready(Duration::from_secs(30)).await;
}

async fn count_rows(emu: &Emulators, table: &str) -> u64 {
    count(emu, &format!("SELECT COUNT(*) AS n FROM `{table}`")).await
}

/// Replaces a table's schema on bqemulator (which, unlike BigQuery, lets tables.patch drop
/// or retype a column): the drift a person could cause with DDL.
pub(crate) async fn patch_schema(emu: &Emulators, table: &str, edit: impl Fn(&mut Vec<Value>)) {
    let url = emu.table_url(table);
    let client = reqwest::Client::new();
    let t: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    let mut fields = t["schema"]["fields"].as_array().unwrap().clone();
    edit(&mut fields);
    let status = client
        .patch(&url)
        .json(&json!({"schema": {"fields": fields}}))
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "patching {table}: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_remote_names_a_drifted_column_and_provision_adds_it_back() {
    let config = TestConfig::new(vec![TestObject::new("orders", ORDERS)]);
    config.provision();
    let emu = config.emulators.clone();
    let table = config.object("orders").ingest_table();
    let run = |args: &[&str]| config.run(args);
    let (code, text) = run(&["check", "--remote"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("tables OK"), "{text}");

    patch_schema(&emu, &table, |f| f.retain(|c| c["name"] != "ordering_key")).await;
    let (code, text) = run(&["check", "--remote"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains(&format!(
            "ingest table {table}: column `ordering_key` is missing from the table (provision fixes it)"
        )),
        "{text}"
    );
    let (code, text) = run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(
        text.contains(&format!("updated  table {table}: column `ordering_key`")),
        "{text}"
    );
    let (code, text) = run(&["check", "--remote"]);
    assert_eq!(code, Some(0), "{text}");

    // A retyped column is not provision's to change: it says which, and changes nothing.
    patch_schema(&emu, &table, |f| {
        for c in f.iter_mut().filter(|c| c["name"] == "payload") {
            c["type"] = json!("STRING");
        }
    })
    .await;
    let (code, text) = run(&["provision"]);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("column `payload` is STRING in the table; mesh-ingest writes JSON"),
        "{text}"
    );
}
