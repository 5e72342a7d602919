//! BigQuery's documented Arrow mapping, over the wire. The load harness's Storage Write server
//! checks each connection's writer schema the way "Supported protocol buffer and Arrow data
//! types" (BigQuery documentation) says BigQuery maps columns (src/bin/mesh-load/arrow_check.rs):
//! it refuses a schema that sends the TIMESTAMP column `event_time` as Utf8 with
//! INVALID_ARGUMENT naming the field, and takes the schema mesh-ingest writes. (bqemulator
//! casts whatever arrives, so it could not catch such a regression.)

use bytes::Bytes;
use mesh_ingest::configuration::{GcpSettings, TableRef};
use mesh_ingest::pipeline::IngestRow;
use mesh_ingest::sink::arrow_rows::encode_ingest;
use mesh_ingest::sink::destination::TableIo;
use mesh_ingest::sink::writer::{AppendFailure, WriteClient};
use mesh_ingest::tables::{ColumnType, INGEST_COLUMNS};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// `mesh-load --serve-only`: its servers without a consumer; killed on drop.
struct Harness {
    child: Child,
    endpoint: String,
    rest: String,
}

impl Harness {
    fn start() -> Harness {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mesh-load"))
            .arg("--serve-only")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start mesh-load");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .expect("the harness prints its endpoints");
        let addresses: serde_json::Value = serde_json::from_str(&line).expect("JSON endpoints");
        Harness {
            child,
            endpoint: addresses["endpoint"].as_str().unwrap().to_string(),
            rest: addresses["rest"].as_str().unwrap().to_string(),
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn row() -> IngestRow {
    IngestRow {
        event_id: "evt-1".into(),
        event_source: None,
        event_type: "OrderCreated".into(),
        event_time_us: 1_795_100_000_000_000,
        object_id: Some("o-1".into()),
        payload: Bytes::from_static(br#"{"order_id":"o-1"}"#),
        attributes: Default::default(),
        message_id: "1".into(),
        publish_time_us: Some(1_795_100_000_000_000),
        ordering_key: None,
        delivery_attempt: None,
        replayed_at_us: None,
        raw: Bytes::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_refuses_a_writer_schema_off_the_documented_mapping() {
    let harness = Harness::start();
    let gcp: GcpSettings = serde_json::from_value(serde_json::json!({
        "project": "mesh-load",
        "bigquery_endpoint": format!("http://{}", harness.rest),
        "bigquery_write_endpoint": format!("http://{}", harness.endpoint),
        "anonymous": true,
    }))
    .unwrap();
    let client = WriteClient::connect(&gcp).await.unwrap();
    let table = TableRef::parse("load.events", "mesh-load").unwrap();
    let batch = encode_ingest(&[row()], "projects/mesh-load/subscriptions/load-sub", 1).unwrap();

    // `event_time` is a TIMESTAMP column: documented as Timestamp(MICROSECONDS, UTC).
    let mut off_mapping = INGEST_COLUMNS;
    let event_time = off_mapping
        .iter_mut()
        .find(|c| c.name == "event_time")
        .unwrap();
    event_time.kind = ColumnType::String;
    let refused = client
        .open(&table, &off_mapping)
        .await
        .unwrap()
        .append(batch.clone(), 1)
        .await
        .unwrap_err();
    match refused {
        AppendFailure::Refused { code, message } => {
            assert_eq!(code, "INVALID_ARGUMENT");
            assert!(
                message.contains("event_time") && message.contains("TIMESTAMP"),
                "{message}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    let accepted = client.open(&table, &INGEST_COLUMNS).await.unwrap();
    accepted
        .append(batch, 1)
        .await
        .expect("mesh-ingest's own schema is taken");
}
