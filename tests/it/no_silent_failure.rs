//! A failure is never silent: Pub/Sub taken away under a running service, BigQuery down when
//! the service starts, and a table found missing at start each turn /readyz to 503 naming the
//! subscription or table and the cause, with the state gauge to match, within a minute; each
//! clears by itself once the peer is back, without any traffic; and nothing is lost.

use crate::support::*;
use std::time::{Duration, Instant};

/// Polls /readyz until it answers 503 with a body holding every one of `want`; the seconds it
/// took. Fails the test after `within`.
async fn until_unready(app: &App, want: &[&str], within: Duration) -> f64 {
    let start = Instant::now();
    loop {
        let (status, body) = app.readyz().await;
        if status == 503 && want.iter().all(|w| body.contains(w)) {
            return start.elapsed().as_secs_f64();
        }
        assert!(
            start.elapsed() < within,
            "/readyz did not report {want:?} within {within:?}: {status} {body}\n{}",
            app.log_text()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn orders() -> TestObject {
    TestObject::new(
        "orders",
        "envelope:\n  format: json\n  object_id: payload.order_id\nbatch:\n  max_rows: 50\n  max_delay_ms: 100\n",
    )
}

/// Waits up to `within` until `n` distinct events are in `table`, then checks each is there once.
async fn lands_once(emulators: &Emulators, table: &str, n: u64, app: &App, within: Duration) {
    let distinct = format!("SELECT COUNT(DISTINCT event_id) AS n FROM `{table}`");
    let landed = wait_for_count(emulators, &distinct, n, within).await;
    assert_eq!(landed, n, "every event lands\n{}", app.log_text());
    let rows = count(emulators, &format!("SELECT COUNT(*) AS n FROM `{table}`")).await;
    assert_eq!(rows, n, "each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pubsub_outage_fails_readiness_within_a_minute_and_every_event_lands_after_it() {
    let real = Emulators::from_env();
    let proxy = CutProxy::start(&real.pubsub).await;
    let emulators = Emulators {
        pubsub: proxy.address(),
        ..real.clone()
    };
    let object = TestObject::new(
        "orders",
        "envelope:\n  format: json\n  object_id: payload.order_id\nbatch:\n  max_rows: 50\n  max_delay_ms: 100\n\
         flow_control:\n  ack_deadline_secs: 10\n",
    );
    let config = TestConfig::with_emulators(emulators, vec![object]);
    config.provision();
    let app = App::start(&config).await;
    let object = config.object("orders");
    publish(&real, &object.topic_path(), order_events(0..50, usize::MAX)).await;
    lands_once(
        &real,
        &object.ingest_table(),
        50,
        &app,
        Duration::from_secs(90),
    )
    .await;

    proxy.cut();
    let want = [object.subscription.as_str(), "failing"];
    let secs = until_unready(&app, &want, Duration::from_secs(60)).await;
    eprintln!("Pub/Sub cut: /readyz 503 naming the subscription after {secs:.1} s");
    let metrics = app.metrics().await;
    let labels = [("object", "orders")];
    assert_eq!(
        metric(&metrics, "mesh_ingest_source_state", &labels),
        Some(1.0)
    );
    assert_eq!(metric(&metrics, "mesh_ingest_ready", &[]), Some(0.0));
    let log = std::fs::read_to_string(&app.log).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains(r#""severity":"WARNING""#) && l.contains("Pub/Sub unreachable")),
        "one warning says Pub/Sub is unreachable\n{}",
        app.log_text()
    );
    // Producers go on publishing (to Pub/Sub itself) during the outage.
    publish(
        &real,
        &object.topic_path(),
        order_events(50..100, usize::MAX),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    proxy.restore().await;
    app.wait_ready(Duration::from_secs(60)).await;
    // Emulator: a streaming pull whose connection was cut may still hold messages on the
    // emulator's side until their ack deadline (10 s here) passes; under a loaded suite the
    // redelivery has taken longer than 90 s, so the wait is generous.
    lands_once(
        &real,
        &object.ingest_table(),
        100,
        &app,
        Duration::from_secs(240),
    )
    .await;
    let metrics = app.metrics().await;
    assert_eq!(
        metric(&metrics, "mesh_ingest_source_state", &labels),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bigquery_down_at_start_is_degraded_and_recovers_without_traffic() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut bq = PrivateBigQuery::start(data_dir.path()).await;
    let emulators = Emulators {
        bigquery: bq.rest_url(),
        bigquery_storage: bq.grpc_url(),
        ..Emulators::from_env()
    };
    let config = TestConfig::with_emulators(emulators.clone(), vec![orders()]);
    config.provision();
    bq.kill();

    let app = App::spawn(&config).await;
    let object = config.object("orders");
    let ingest = object.ingest_table();
    let want = [ingest.as_str(), "degraded (unreachable)"];
    let secs = until_unready(&app, &want, Duration::from_secs(30)).await;
    eprintln!("BigQuery down at start: /readyz 503 naming the table after {secs:.1} s");
    let labels = [("object", "orders"), ("table", "ingest")];
    assert_eq!(
        metric(
            &app.metrics().await,
            "mesh_ingest_destination_state",
            &labels
        ),
        Some(1.0)
    );

    bq.restart().await;
    let back = Instant::now();
    app.wait_ready(Duration::from_secs(60)).await;
    eprintln!(
        "BigQuery back: ready again after {:.1} s, with no traffic",
        back.elapsed().as_secs_f64()
    );
    publish(
        &emulators,
        &object.topic_path(),
        order_events(0..20, usize::MAX),
    )
    .await;
    lands_once(&emulators, &ingest, 20, &app, Duration::from_secs(90)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_missing_at_start_halts_and_clears_after_provision_without_traffic() {
    let config = TestConfig::new(vec![orders()]);
    config.provision();
    let object = config.object("orders");
    let dead_letter = object.dead_letter_table();
    delete_table(&config.emulators, &dead_letter).await;

    let app = App::spawn(&config).await;
    let want = [dead_letter.as_str(), "halted (NOT_FOUND)"];
    until_unready(&app, &want, Duration::from_secs(30)).await;
    config.provision();
    app.wait_ready(Duration::from_secs(60)).await;
    let labels = [("object", "orders"), ("table", "dead_letter")];
    assert_eq!(
        metric(
            &app.metrics().await,
            "mesh_ingest_destination_state",
            &labels
        ),
        Some(0.0)
    );
}
