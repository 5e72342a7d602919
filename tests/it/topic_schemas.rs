//! Schema'd topics on the emulators: an Avro topic schema in BINARY and in JSON encoding.
//! `provision --pubsub` creates the schema and binds the topic; Pub/Sub then refuses a
//! message that does not fit. Records of two revisions are in flight at once — some published
//! with the older revision after the newer one was committed — and each lands decoded with
//! its own revision; a corrupt body naming a revision is dead-lettered with that revision.
//! A Protocol Buffer BINARY topic the same way. Bodies are written by `apache-avro` (binary),
//! and by hand (Avro JSON, Protocol Buffer wire format), not by mesh-ingest.

use crate::support::*;
use apache_avro::types::Value as A;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

const V1: &str = r#"{"type": "record", "name": "ShipmentEvent", "namespace": "shop", "fields": [
  {"name": "event_id", "type": "string"},
  {"name": "event_type", "type": "string"},
  {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "payload", "type": {"type": "record", "name": "Shipment", "fields": [
    {"name": "shipment_id", "type": "string"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["packed", "shipped"]}},
    {"name": "weight_kg", "type": "double"}]}}]}"#;

/// V1 plus an optional carrier: a compatible new revision.
fn v2() -> String {
    V1.replace(
        r#"{"name": "weight_kg", "type": "double"}]"#,
        r#"{"name": "weight_kg", "type": "double"},
    {"name": "carrier", "type": ["null", "string"], "default": null}]"#,
    )
}

const BASE_US: i64 = 1_795_514_400_000_000; // 2026-11-24T10:00:00Z

struct Event {
    id: String,
    second: i64,
    carrier: Option<&'static str>,
}

impl Event {
    fn payload(&self) -> Value {
        let mut p = json!({"shipment_id": format!("s-{}", self.id), "status": "shipped", "weight_kg": 1.25});
        if let Some(c) = self.carrier {
            p["carrier"] = json!(c);
        }
        p
    }

    /// As a producer's Avro library writes it, with the revision's schema.
    fn binary(&self, revision: &str) -> Vec<u8> {
        let schema = apache_avro::Schema::parse_str(revision).unwrap();
        let mut shipment = vec![
            (
                "shipment_id".to_string(),
                A::String(format!("s-{}", self.id)),
            ),
            ("status".to_string(), A::Enum(1, "shipped".into())),
            ("weight_kg".to_string(), A::Double(1.25)),
        ];
        if revision.contains("carrier") {
            let carrier = match self.carrier {
                Some(c) => A::Union(1, Box::new(A::String(c.into()))),
                None => A::Union(0, Box::new(A::Null)),
            };
            shipment.push(("carrier".to_string(), carrier));
        }
        let record = A::Record(vec![
            ("event_id".into(), A::String(self.id.clone())),
            ("event_type".into(), A::String("ShipmentDispatched".into())),
            (
                "event_time".into(),
                A::TimestampMicros(BASE_US + self.second * 1_000_000),
            ),
            ("payload".into(), A::Record(shipment)),
        ]);
        apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(record)
            .unwrap()
    }

    /// Avro's JSON encoding of the same record: the union wrapped in its branch's name.
    fn avro_json(&self, with_carrier: bool) -> Vec<u8> {
        let mut p = json!({"shipment_id": format!("s-{}", self.id), "status": "shipped", "weight_kg": 1.25});
        if with_carrier {
            p["carrier"] = match self.carrier {
                Some(c) => json!({"string": c}),
                None => Value::Null,
            };
        }
        json!({"event_id": self.id, "event_type": "ShipmentDispatched",
               "event_time": BASE_US + self.second * 1_000_000, "payload": p})
        .to_string()
        .into_bytes()
    }
}

async fn rest(method: reqwest::Method, url: String, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .request(method, url)
        .json(&body)
        .send()
        .await
        .expect("the Pub/Sub emulator answers");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Publishes over REST, as any client would: the status and the answer (a refusal names why).
async fn publish_rest(emu: &Emulators, topic: &str, data: &[u8], attrs: Value) -> (u16, Value) {
    use base64::Engine as _;
    let data = base64::engine::general_purpose::STANDARD.encode(data);
    rest(
        reqwest::Method::POST,
        format!("{}/v1/{topic}:publish", emu.pubsub_url()),
        json!({"messages": [{"data": data, "attributes": attrs}]}),
    )
    .await
}

/// Waits until `n` dead letters of `reason` are in the object's dead-letter table.
async fn dead_lettered(emu: &Emulators, o: &TestObject, reason: &str, n: u64, app: &App) {
    let dead = wait_for_count(
        emu,
        &format!(
            "SELECT COUNT(*) AS n FROM `{}` WHERE reason_code = '{reason}'",
            o.dead_letter_table()
        ),
        n,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(dead, n, "{}", app.log_text());
}

/// Waits until `n` rows are in the object's ingest table, then reads them.
async fn landed(
    emu: &Emulators,
    o: &TestObject,
    n: usize,
    app: &App,
) -> Vec<serde_json::Map<String, Value>> {
    let count = wait_for_count(
        emu,
        &format!("SELECT COUNT(*) AS n FROM `{}`", o.ingest_table()),
        n as u64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(count, n as u64, "{}", app.log_text());
    query(
        emu,
        &format!(
            "SELECT event_id, object_id, UNIX_MICROS(event_time) AS t, TO_JSON_STRING(payload) AS payload, \
             TO_JSON_STRING(attributes) AS attributes FROM `{}`",
            o.ingest_table()
        ),
    )
    .await
}

async fn topic_schemas_bind_and_records_of_two_revisions_land(encoding: &str) {
    let binary = encoding == "binary";
    let mut object = TestObject::new(
        "shipments",
        "envelope:\n  format: json\n  object_id: payload.shipment_id\n",
    );
    let schema_id = format!("{}-schema", object.topic);
    object.yaml.push_str(&format!(
        "topic_schema:\n  type: avro\n  file: shipment.avsc\n  encoding: {encoding}\n  schema_id: {schema_id}\n"
    ));
    let config = TestConfig::new(vec![object]);
    let emu = config.emulators.clone();
    let o = config.object("shipments");
    let avsc = config.path().join("objects/shipment.avsc");
    std::fs::write(&avsc, V1).unwrap();
    let schema_name = format!("projects/{PROJECT}/schemas/{schema_id}");

    // Before the topic is bound: the schema exists (revision 1), and a corrupt body that
    // names it waits on the subscription, as a buggy producer on an unbound topic leaves it.
    let (status, created) = rest(
        reqwest::Method::POST,
        format!(
            "{}/v1/projects/{PROJECT}/schemas?schemaId={schema_id}",
            emu.pubsub_url()
        ),
        json!({"type": "AVRO", "definition": V1}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let rev1 = created["revisionId"].as_str().unwrap().to_string();
    let topic = o.topic_path();
    rest(
        reqwest::Method::PUT,
        format!("{}/v1/{topic}", emu.pubsub_url()),
        json!({}),
    )
    .await;
    rest(
        reqwest::Method::PUT,
        format!("{}/v1/{}", emu.pubsub_url(), o.subscription_path()),
        json!({"topic": topic, "ackDeadlineSeconds": 10}),
    )
    .await;
    let wire = if binary { "BINARY" } else { "JSON" };
    let corrupt: &[u8] = if binary {
        b"\x06abc\xff"
    } else {
        b"{\"event_id\": 7}"
    };
    let attrs = json!({"googclient_schemaname": schema_name, "googclient_schemarevisionid": rev1,
                       "googclient_schemaencoding": wire});
    let (status, answer) = publish_rest(&emu, &topic, corrupt, attrs).await;
    assert_eq!(status, 200, "{answer}");

    // provision binds the topic to the schema it finds unchanged.
    let out = config.run_ok(&["provision"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains(&format!("bound to schema {schema_name}")),
        "{text}"
    );

    // Pub/Sub now refuses what does not fit.
    let (status, answer) =
        publish_rest(&emu, &topic, b"{\"not\": \"a shipment\"}", json!({})).await;
    assert_eq!(status, 400, "a non-conforming publish is refused: {answer}");

    let events: Vec<Event> = (0..8)
        .map(|i| Event {
            id: format!("e{i}"),
            second: i,
            carrier: (i % 2 == 0).then_some("DHL"),
        })
        .collect();
    let body = |e: &Event, revision: &str| {
        if binary {
            e.binary(revision)
        } else {
            e.avro_json(revision.contains("carrier"))
        }
    };
    let mut published: Vec<(&Event, bool)> = Vec::new();
    for e in &events[..3] {
        let (status, a) = publish_rest(&emu, &topic, &body(e, V1), json!({})).await;
        assert_eq!(status, 200, "{a}");
        published.push((e, false));
    }
    // The file changes: provision commits revision 2.
    std::fs::write(&avsc, v2()).unwrap();
    let out = config.run_ok(&["provision"]);
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("new revision"), "{text}");
    // Both revisions in flight: new records, and old ones from a producer not yet upgraded.
    for (i, e) in events[3..].iter().enumerate() {
        let newer = i % 2 == 0;
        let rev = if newer { v2() } else { V1.to_string() };
        let (status, a) = publish_rest(&emu, &topic, &body(e, &rev), json!({})).await;
        assert_eq!(status, 200, "{a}");
        published.push((e, newer));
    }

    let app = App::start(&config).await;
    let rows = landed(&emu, o, events.len(), &app).await;
    let by_id: BTreeMap<&str, &serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap(), r))
        .collect();
    let mut revisions = std::collections::BTreeSet::new();
    for (e, newer) in &published {
        let row = by_id[e.id.as_str()];
        let mut want = e.payload();
        if !newer {
            want.as_object_mut().unwrap().remove("carrier");
        } else if e.carrier.is_none() {
            want["carrier"] = Value::Null;
        }
        let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, want, "{}", e.id);
        assert_eq!(
            row["object_id"].as_str(),
            Some(format!("s-{}", e.id).as_str())
        );
        assert_eq!(
            row["t"].as_str().unwrap(),
            (BASE_US + e.second * 1_000_000).to_string()
        );
        let attrs: Value = serde_json::from_str(row["attributes"].as_str().unwrap()).unwrap();
        assert_eq!(attrs["googclient_schemaencoding"], wire);
        revisions.insert(
            attrs["googclient_schemarevisionid"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        revisions.len(),
        2,
        "records of two revisions: {revisions:?}"
    );
    assert!(revisions.contains(&rev1));

    let dead = query(
        &emu,
        &format!(
            "SELECT reason_code, reason, data FROM `{}`",
            o.dead_letter_table()
        ),
    )
    .await;
    assert_eq!(dead.len(), 1, "{dead:?}\n{}", app.log_text());
    assert_eq!(dead[0]["reason_code"], "undecodable_record");
    let reason = dead[0]["reason"].as_str().unwrap();
    assert!(reason.contains(&format!("revision {rev1}")), "{reason}");
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn avro_binary_topic() {
    topic_schemas_bind_and_records_of_two_revisions_land("binary").await;
}

#[tokio::test]
async fn avro_json_topic() {
    topic_schemas_bind_and_records_of_two_revisions_land("json").await;
}

/// Dead letters of a schema'd topic name the revision they were published with. After the
/// contract changed (a new revision, and an event type now allowed), `contract preview`
/// and `dlq replay` read each letter with that revision, fetched from Pub/Sub: the contract's
/// file is the newer revision, which cannot read those bodies.
#[tokio::test]
async fn dead_letters_are_read_with_their_revision() {
    let mut object = TestObject::new(
        "shipments",
        "envelope:\n  format: json\n  object_id: payload.shipment_id\n",
    );
    let schema_id = format!("{}-schema", object.topic);
    let topic_schema = format!(
        "topic_schema:\n  type: avro\n  file: shipment.avsc\n  encoding: binary\n  schema_id: {schema_id}\n"
    );
    object.yaml.push_str(&topic_schema);
    object.yaml.push_str("event_types: [ShipmentPacked]\n");
    let config = TestConfig::new(vec![object]);
    let emu = config.emulators.clone();
    let o = config.object("shipments");
    std::fs::write(config.path().join("objects/shipment.avsc"), V1).unwrap();
    config.provision();

    let events: Vec<Event> = (0..3)
        .map(|i| Event {
            id: format!("d{i}"),
            second: i,
            carrier: None,
        })
        .collect();
    for e in &events {
        let (status, a) = publish_rest(&emu, &o.topic_path(), &e.binary(V1), json!({})).await;
        assert_eq!(status, 200, "{a}");
    }
    let app = App::start(&config).await;
    dead_lettered(&emu, o, "unknown_event_type", 3, &app).await;
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));

    // The new contract: revision 2 of the schema, and the event type allowed.
    let new = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(new.path().join("objects")).unwrap();
    for file in std::fs::read_dir(config.path()).unwrap() {
        let file = file.unwrap().path();
        if file.is_file() {
            std::fs::copy(&file, new.path().join(file.file_name().unwrap())).unwrap();
        }
    }
    let yaml = std::fs::read_to_string(config.path().join("objects/shipments.yaml")).unwrap();
    let widened = yaml.replace("[ShipmentPacked]", "[ShipmentPacked, ShipmentDispatched]");
    assert_ne!(widened, yaml);
    std::fs::write(new.path().join("objects/shipments.yaml"), &widened).unwrap();
    std::fs::write(new.path().join("objects/shipment.avsc"), v2()).unwrap();
    let (old_dir, new_dir) = (
        config.path().to_str().unwrap().to_string(),
        new.path().to_str().unwrap().to_string(),
    );
    let out = config
        .command(&[
            "contract", "preview", &old_dir, &new_dir, "--since", "1d", "--format", "json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let p = &report["objects"][0];
    assert_eq!(p["dead_letters"]["examined"], 3, "{p:#}");
    assert_eq!(
        p["dead_letters"]["changed"]["unknown_event_type"]["count"], 3,
        "each letter decodes with its own revision and would now be accepted: {p:#}"
    );

    // The change is made: provision commits revision 2; the replay lands every letter.
    std::fs::write(config.path().join("objects/shipments.yaml"), &widened).unwrap();
    std::fs::write(config.path().join("objects/shipment.avsc"), v2()).unwrap();
    let (code, text) = config.run(&["provision"]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("new revision"), "{text}");
    let (code, text) = config.run(&["dlq", "replay", "--object", "shipments"]);
    assert_eq!(code, Some(0), "{text}");
    let rows = query(
        &emu,
        &format!(
            "SELECT event_id, TO_JSON_STRING(payload) AS payload FROM `{}` \
             WHERE replayed_at IS NOT NULL ORDER BY event_id",
            o.ingest_table()
        ),
    )
    .await;
    assert_eq!(rows.len(), 3, "{text}");
    for (row, e) in rows.iter().zip(&events) {
        assert_eq!(row["event_id"].as_str(), Some(e.id.as_str()));
        let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, e.payload(), "read with revision 1: no carrier");
    }
}

const PROTO_V1: &str = r#"syntax = "proto3";
package shop;

message ShipmentEvent {
  message Shipment {
    string shipment_id = 1;
    Status status = 2;
    double weight_kg = 3;
  }
  enum Status {
    STATUS_UNSPECIFIED = 0;
    PACKED = 1;
    SHIPPED = 2;
  }
  string event_id = 1;
  string event_type = 2;
  string event_time = 3;
  Shipment payload = 4;
}
"#;

/// Protocol Buffer wire format, written by hand: tag, then the value.
fn pb_len(field: u32, bytes: &[u8], out: &mut Vec<u8>) {
    pb_varint(u64::from(field << 3 | 2), out);
    pb_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

fn pb_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// One shipment event as a producer's generated code writes it; `carrier` only in revision 2.
fn pb_event(e: &Event, with_carrier: bool) -> Vec<u8> {
    let mut shipment = Vec::new();
    pb_len(1, format!("s-{}", e.id).as_bytes(), &mut shipment);
    pb_varint(2 << 3, &mut shipment);
    pb_varint(2, &mut shipment); // SHIPPED
    pb_varint(3 << 3 | 1, &mut shipment);
    shipment.extend_from_slice(&1.25f64.to_le_bytes());
    if with_carrier && let Some(c) = e.carrier {
        pb_len(4, c.as_bytes(), &mut shipment);
    }
    let mut out = Vec::new();
    pb_len(1, e.id.as_bytes(), &mut out);
    pb_len(2, b"ShipmentDispatched", &mut out);
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(BASE_US + e.second * 1_000_000) * 1000,
    )
    .unwrap()
    .format(&time::format_description::well_known::Rfc3339)
    .unwrap();
    pb_len(3, t.as_bytes(), &mut out);
    pb_len(4, &shipment, &mut out);
    out
}

/// Protocol Buffer records. The emulator does not implement Protocol Buffer schemas (it
/// answers UNIMPLEMENTED: `provision --pubsub` fails, naming the schema, which is checked
/// here), so the topic is provisioned unbound and the records carry no
/// revision: they are decoded with the contract's `.proto` (proto field names, defaults
/// written), and a body that does not parse is dead-lettered. Binding, refusal at publish and
/// revisions are tested for Avro above.
#[tokio::test]
async fn protobuf_binary_records() {
    let plain = TestObject::new(
        "shipments",
        "envelope:\n  format: json\n  object_id: payload.shipment_id\n",
    );
    let object = TestObject {
        name: plain.name.clone(),
        topic: plain.topic.clone(),
        subscription: plain.subscription.clone(),
        dataset: plain.dataset.clone(),
        yaml: format!(
            "{}topic_schema:\n  type: protobuf\n  file: shipment.proto\n  encoding: binary\n",
            plain.yaml
        ),
    };
    // Provisioned without the schema (the emulator cannot create it), run with it.
    TestConfig::new(vec![plain]).provision();
    let config = TestConfig::new(vec![object]);
    let emu = config.emulators.clone();
    let o = config.object("shipments");
    std::fs::write(
        config.path().join("objects/shipment.proto"),
        PROTO_V1.replace(
            "    double weight_kg = 3;\n",
            "    double weight_kg = 3;\n    string carrier = 4;\n",
        ),
    )
    .unwrap();
    // What `provision --pubsub` meets on this emulator: it cannot create a Protocol Buffer
    // schema. The command fails, naming the schema and the emulator's answer (and, should an
    // emulator implement them, this fails first: then bind and revise here as for Avro).
    let out = config
        .command(&["provision", "--pubsub"])
        .output()
        .expect("run mesh-ingest");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("creating schema") && stderr.contains("schemas/"),
        "{stderr}"
    );
    assert!(stderr.to_lowercase().contains("unimplemented"), "{stderr}");
    let topic = o.topic_path();
    let events: Vec<Event> = (0..4)
        .map(|i| Event {
            id: format!("p{i}"),
            second: i,
            carrier: (i % 2 == 0).then_some("UPS"),
        })
        .collect();
    for e in &events {
        let (status, a) = publish_rest(&emu, &topic, &pb_event(e, true), json!({})).await;
        assert_eq!(status, 200, "{a}");
    }
    let (status, a) = publish_rest(&emu, &topic, b"\x0a\xff\x01", json!({})).await;
    assert_eq!(status, 200, "{a}");

    let app = App::start(&config).await;
    let rows = landed(&emu, o, events.len(), &app).await;
    let by_id: BTreeMap<&str, &serde_json::Map<String, Value>> = rows
        .iter()
        .map(|r| (r["event_id"].as_str().unwrap(), r))
        .collect();
    for e in &events {
        let row = by_id[e.id.as_str()];
        // Every field is written, a default (an unset string) too.
        let want = json!({"shipment_id": format!("s-{}", e.id), "status": "SHIPPED",
                          "weight_kg": 1.25, "carrier": e.carrier.unwrap_or("")});
        let payload: Value = serde_json::from_str(row["payload"].as_str().unwrap()).unwrap();
        assert_eq!(payload, want, "{}", e.id);
        assert_eq!(
            row["t"].as_str().unwrap(),
            (BASE_US + e.second * 1_000_000).to_string()
        );
    }
    dead_lettered(&emu, o, "undecodable_record", 1, &app).await;
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}
