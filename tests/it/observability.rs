//! What an operator sees: /metrics counters and histograms move by exactly what was ingested,
//! per object and per reason; container-mode logs are JSON lines Cloud Logging reads
//! (`severity`, `message`, `timestamp`) and hold no payload bytes, even of rejected messages.

use crate::support::*;
use base64::Engine as _;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// A value every payload carries; it must never reach a log line or /metrics.
const SENSITIVE: &str = "SECRET-PII-4711 jane.doe@example.org";

fn order(i: usize) -> Outgoing {
    Outgoing::body(
        json!({"event_id": format!("o-evt-{i}"), "event_type": "OrderCreated",
            "event_time": "2026-11-20T10:00:00Z",
            "payload": {"order_id": format!("o-{i}"), "customer_email": SENSITIVE}})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_by_what_was_ingested_and_logs_are_json_without_payloads() {
    let config = TestConfig::new(vec![
        TestObject::new(
            "orders",
            "envelope:\n  format: json\n  object_id: payload.order_id\nbatch:\n  max_rows: 10\n  max_delay_ms: 100\n",
        ),
        TestObject::new(
            "customers",
            "envelope:\n  format: attributes\n  object_id: customer_id\nbatch:\n  max_delay_ms: 100\n",
        ),
    ]);
    config.provision();
    let app = App::start(&config).await;
    let emu = config.emulators.clone();

    let before = app.metrics().await;
    for object in ["orders", "customers"] {
        assert_eq!(
            metric(
                &before,
                "mesh_ingest_messages_received_total",
                &[("object", object)]
            ),
            Some(0.0),
            "{object}: series exist from the start"
        );
        assert_eq!(
            metric(
                &before,
                "mesh_ingest_rows_dead_lettered_total",
                &[("object", object), ("reason_code", "schema_violation")]
            ),
            Some(0.0),
            "every reason is a series from the start"
        );
    }
    assert!(before.contains("mesh_ingest_build_info{"), "{before}");

    // orders: 40 valid, 3 malformed, 2 missing event_type — every one carrying the secret.
    let mut orders: Vec<Outgoing> = (0..40).map(order).collect();
    for i in 0..3 {
        orders.push(Outgoing::body(format!(
            "{{\"event_id\": \"bad-{i}\", \"payload\": {{\"email\": \"{SENSITIVE}\"}}"
        )));
    }
    for i in 0..2 {
        orders.push(Outgoing::body(
            json!({"event_id": format!("m-{i}"), "event_time": "2026-11-20T10:00:00Z",
                "payload": {"order_id": "o", "email": SENSITIVE}})
            .to_string(),
        ));
    }
    // customers: 25 valid, 1 without event_type.
    let mut customers: Vec<Outgoing> = (0..25)
        .map(|i| {
            Outgoing::with_attributes(
                json!({"customer_id": format!("c-{i}"), "email": SENSITIVE}).to_string(),
                &[
                    ("event_type", "CustomerUpdated"),
                    ("event_time", "2026-11-20T10:00:00Z"),
                ],
            )
        })
        .collect();
    customers.push(Outgoing::with_attributes(
        json!({"customer_id": "c-x", "email": SENSITIVE}).to_string(),
        &[("event_time", "2026-11-20T10:00:00Z")],
    ));
    publish(&emu, &config.object("orders").topic_path(), orders).await;
    publish(&emu, &config.object("customers").topic_path(), customers).await;

    let started = Instant::now();
    let metrics = loop {
        let m = app.metrics().await;
        let acked = |o| metric(&m, "mesh_ingest_messages_acked_total", &[("object", o)]);
        if acked("orders") == Some(45.0) && acked("customers") == Some(26.0) {
            break m;
        }
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "not everything acked:\n{m}\n{}",
            app.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let get = |name: &str, labels: &[(&str, &str)]| {
        metric(&metrics, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?}:\n{metrics}"))
    };
    for (object, received, written, dead) in
        [("orders", 45.0, 40.0, 5.0), ("customers", 26.0, 25.0, 1.0)]
    {
        let o = [("object", object)];
        assert_eq!(
            get("mesh_ingest_messages_received_total", &o),
            received,
            "{object}"
        );
        assert_eq!(
            get("mesh_ingest_rows_written_total", &o),
            written,
            "{object}"
        );
        assert_eq!(get("mesh_ingest_redeliveries_total", &o), 0.0, "{object}");
        assert_eq!(get("mesh_ingest_in_flight_messages", &o), 0.0, "{object}");
        assert_eq!(get("mesh_ingest_in_flight_bytes", &o), 0.0, "{object}");
        assert_eq!(get("mesh_ingest_channel_depth", &o), 0.0, "{object}");
        // Histograms: rows per append add up to what was written; one latency sample per append.
        let ingest = [("object", object), ("table", "ingest")];
        let dead_letter = [("object", object), ("table", "dead_letter")];
        assert_eq!(
            get("mesh_ingest_batch_rows_sum", &ingest),
            written,
            "{object}"
        );
        assert_eq!(
            get("mesh_ingest_batch_rows_sum", &dead_letter),
            dead,
            "{object}"
        );
        let appends = get("mesh_ingest_batch_rows_count", &ingest);
        assert!(appends >= 1.0);
        assert_eq!(
            get("mesh_ingest_append_latency_seconds_count", &ingest),
            appends
        );
        assert_eq!(get("mesh_ingest_batch_bytes_count", &ingest), appends);
        assert!(get("mesh_ingest_batch_bytes_sum", &ingest) > written * 50.0);
        assert_eq!(get("mesh_ingest_end_to_end_lag_seconds_count", &o), written);
        assert!(get("mesh_ingest_append_latency_seconds_sum", &ingest) > 0.0);
    }
    // orders ran with max_rows 10: 40 rows need at least 4 appends.
    assert!(
        get(
            "mesh_ingest_batch_rows_count",
            &[("object", "orders"), ("table", "ingest")]
        ) >= 4.0
    );
    let reason = |o, r| {
        get(
            "mesh_ingest_rows_dead_lettered_total",
            &[("object", o), ("reason_code", r)],
        )
    };
    assert_eq!(reason("orders", "malformed_json"), 3.0);
    assert_eq!(reason("orders", "missing_field"), 2.0);
    assert_eq!(reason("orders", "schema_violation"), 0.0);
    assert_eq!(reason("customers", "missing_field"), 1.0);
    assert_eq!(reason("customers", "malformed_json"), 0.0);
    assert!(
        !metrics.contains("SECRET-PII"),
        "/metrics holds no payload data"
    );
    let health = reqwest::get(app.url("/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let ready = reqwest::get(app.url("/readyz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!health.contains("SECRET") && !ready.contains("SECRET"));

    let log_path = app.log.clone();
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));

    let log = std::fs::read_to_string(log_path).unwrap();
    let secret_b64 = base64::engine::general_purpose::STANDARD.encode(SENSITIVE);
    let mut dead_letter_lines = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        let severity = entry["severity"].as_str().unwrap_or_default();
        assert!(
            ["DEBUG", "INFO", "NOTICE", "WARNING", "ERROR", "CRITICAL"].contains(&severity),
            "severity Cloud Logging knows: {line}"
        );
        assert!(entry["message"].is_string(), "{line}");
        let ts = entry["timestamp"].as_str().unwrap_or_default();
        assert!(
            time::OffsetDateTime::parse(ts, &time::format_description::well_known::Rfc3339).is_ok(),
            "RFC 3339 timestamp: {line}"
        );
        assert!(
            !line.contains("SECRET-PII")
                && !line.contains("jane.doe")
                && !line.contains(&secret_b64),
            "a log line holds payload data: {line}"
        );
        if entry["message"] == "message dead-lettered" {
            dead_letter_lines += 1;
            assert!(entry["message_id"].is_string(), "{line}");
            assert!(entry["reason_code"].is_string(), "{line}");
            assert!(
                entry.get("reason").is_none(),
                "the reason may quote input: debug only"
            );
        }
    }
    assert_eq!(
        dead_letter_lines, 6,
        "each rejected message logged once, by id and reason code"
    );
}
