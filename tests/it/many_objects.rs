//! One deployment, many domain objects: a team with eight objects runs one mesh-ingest, which
//! keeps sixteen Storage Write connections open (ingest and dead-letter table per object). Every
//! object's events land in its own tables and nowhere else, and no object waits on another.
//!
//! Also guards the local setup: bqemulator as shipped serves only six open AppendRows
//! connections on a 2-core machine (scripts/bqemulator_launcher.py explains and fixes it); with
//! sixteen, this test fails if that fix is lost.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::json;
use std::time::Duration;

const OBJECTS: usize = 8;
const VALID_PER_OBJECT: usize = 40;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_of_eight_objects_lands_in_its_own_tables() {
    let objects = (0..OBJECTS)
        .map(|i| {
            TestObject::new(
                &format!("thing{i}"),
                "envelope:\n  format: json\n  object_id: payload.id\n\
                 batch:\n  max_rows: 10\n  max_delay_ms: 100\n",
            )
        })
        .collect();
    let config = TestConfig::new(objects);
    config.provision();
    let app = App::start(&config).await;
    let emu = config.emulators.clone();

    // Two rounds, so every writer has appended once and sits idle on an open connection while
    // the others append again.
    for round in 0..2 {
        for (i, object) in config.objects.iter().enumerate() {
            let mut messages: Vec<Outgoing> = (0..VALID_PER_OBJECT / 2)
                .map(|n| {
                    Outgoing::body(
                        json!({"event_id": format!("{}-r{round}-{n}", object.name),
                            "event_type": "Changed", "event_time": "2026-11-20T10:00:00Z",
                            "payload": {"id": format!("{i}-{n}")}})
                        .to_string(),
                    )
                })
                .collect();
            messages.push(Outgoing::body(format!("not json {round}")));
            publish(&emu, &object.topic_path(), messages).await;
        }
        for object in &config.objects {
            let expected = (VALID_PER_OBJECT / 2 * (round + 1)) as u64;
            let sql = format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table());
            let got = wait_for_count(&emu, &sql, expected, Duration::from_secs(60)).await;
            assert_eq!(
                got,
                expected,
                "{}: ingest rows after round {round}\n{}",
                object.name,
                app.log_text()
            );
            let sql = format!("SELECT COUNT(*) AS n FROM `{}`", object.dead_letter_table());
            let got = wait_for_count(&emu, &sql, round as u64 + 1, Duration::from_secs(30)).await;
            assert_eq!(
                got,
                round as u64 + 1,
                "{}: dead-letter rows after round {round}\n{}",
                object.name,
                app.log_text()
            );
        }
    }

    // Nothing crossed over: each table holds only its own object's events, each once.
    for object in &config.objects {
        let rows = query(
            &emu,
            &format!(
                "SELECT COUNT(DISTINCT event_id) AS distinct_ids, \
                 COUNTIF(STARTS_WITH(event_id, '{}-')) AS own FROM `{}`",
                object.name,
                object.ingest_table()
            ),
        )
        .await;
        assert_eq!(rows[0]["distinct_ids"], json!(VALID_PER_OBJECT.to_string()));
        assert_eq!(rows[0]["own"], json!(VALID_PER_OBJECT.to_string()));
        let rows = query(
            &emu,
            &format!(
                "SELECT reason_code, data FROM `{}`",
                object.dead_letter_table()
            ),
        )
        .await;
        // BYTES come base64-encoded over REST.
        let mut got: Vec<(String, Vec<u8>)> = rows
            .iter()
            .map(|r| {
                let data = BASE64.decode(r["data"].as_str().unwrap()).unwrap();
                (r["reason_code"].as_str().unwrap().to_string(), data)
            })
            .collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                ("malformed_json".to_string(), b"not json 0".to_vec()),
                ("malformed_json".to_string(), b"not json 1".to_vec()),
            ],
            "{}",
            object.name
        );
    }

    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0), "exit code after SIGTERM");
}
