//! BigQuery goes away mid-stream, twice: a private bqemulator (persistent, so tables survive)
//! is SIGKILLed while events flow and started again on the same ports. While it is down nothing
//! is acknowledged; afterwards every published event is in the ingest table.

use crate::support::*;
use std::collections::HashMap;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_published_while_bigquery_is_down_twice_land_and_none_is_acked_early() {
    let data_dir = tempfile::tempdir().unwrap();
    let mut bq = PrivateBigQuery::start(data_dir.path()).await;
    let emulators = Emulators {
        bigquery: bq.rest_url(),
        bigquery_storage: bq.grpc_url(),
        ..Emulators::from_env()
    };
    let config = TestConfig::with_emulators(
        emulators.clone(),
        vec![TestObject::new(
            "orders",
            "envelope:\n  format: json\n  object_id: payload.order_id\nbatch:\n  max_rows: 50\n  max_delay_ms: 100\n",
        )],
    );
    config.provision();
    let app = App::start(&config).await;
    let object = config.object("orders");
    let count_sql = format!(
        "SELECT COUNT(DISTINCT event_id) AS n FROM `{}`",
        object.ingest_table()
    );

    // Phase 1: BigQuery up.
    publish(
        &emulators,
        &object.topic_path(),
        order_events(0..500, usize::MAX),
    )
    .await;
    let landed = wait_for_count(&emulators, &count_sql, 500, Duration::from_secs(60)).await;
    assert_eq!(landed, 500, "phase 1\n{}", app.log_text());

    // Phase 2: BigQuery killed; events keep coming.
    bq.kill();
    let before = app.metrics().await;
    let acked_before = counter(&before, "mesh_ingest_messages_acked_total");
    publish(
        &emulators,
        &object.topic_path(),
        order_events(500..1500, usize::MAX),
    )
    .await;
    // Long enough for batches to be attempted, fail and be retried several times.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let during = app.metrics().await;
    assert_eq!(
        counter(&during, "mesh_ingest_messages_acked_total"),
        acked_before,
        "nothing may be acknowledged while BigQuery is down"
    );
    assert!(
        counter(&during, "mesh_ingest_bigquery_retries_total") > 0,
        "failed appends are retried:\n{during}"
    );
    let not_ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(not_ready.status(), 503, "a writer is down, so not ready");

    // Phase 3: BigQuery back (same ports, same data); more events.
    bq.restart().await;
    publish(
        &emulators,
        &object.topic_path(),
        order_events(1500..2000, usize::MAX),
    )
    .await;
    let landed = wait_for_count(&emulators, &count_sql, 2000, Duration::from_secs(120)).await;
    assert_eq!(landed, 2000, "every event lands\n{}", app.log_text());

    // Phase 4: killed a second time, events keep coming, back again.
    bq.kill();
    let acked_before = counter(&app.metrics().await, "mesh_ingest_messages_acked_total");
    publish(
        &emulators,
        &object.topic_path(),
        order_events(2000..2500, usize::MAX),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        counter(&app.metrics().await, "mesh_ingest_messages_acked_total"),
        acked_before,
        "nothing acknowledged during the second outage"
    );
    bq.restart().await;
    publish(
        &emulators,
        &object.topic_path(),
        order_events(2500..3000, usize::MAX),
    )
    .await;
    let landed = wait_for_count(&emulators, &count_sql, 3000, Duration::from_secs(120)).await;
    assert_eq!(landed, 3000, "every event lands\n{}", app.log_text());

    let rows = query(
        &emulators,
        &format!(
            "SELECT event_id, COUNT(*) AS n FROM `{}` GROUP BY event_id",
            object.ingest_table()
        ),
    )
    .await;
    let copies: HashMap<String, u64> = rows
        .iter()
        .map(|r| {
            (
                r["event_id"].as_str().unwrap().to_string(),
                r["n"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    for i in 0..3000 {
        assert!(copies.contains_key(&format!("evt-{i}")), "evt-{i} missing");
    }
    let duplicates: u64 = copies.values().map(|n| n - 1).sum();
    let dead = query(
        &emulators,
        &format!("SELECT COUNT(*) AS n FROM `{}`", object.dead_letter_table()),
    )
    .await;
    eprintln!(
        "chaos bigquery restarted twice: published 3000 / ingested {} distinct / dead-lettered {} / duplicates {duplicates}",
        copies.len(),
        dead[0]["n"].as_str().unwrap()
    );
    assert_eq!(dead[0]["n"], "0", "an outage is not bad input");
    let after = app.metrics().await;
    assert!(counter(&after, "mesh_ingest_messages_acked_total") >= 3000);
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}
