//! End to end on the emulators: 500+ valid envelopes in each format plus every kind of bad
//! input go through the running service; exactly the valid ones land once each with every
//! column correct, each bad one lands in the dead-letter table with its reason code, and the
//! subscriptions are drained afterwards. Some order events come gzip- or zstd-compressed;
//! compressed bodies that cannot be read (a bomb, corrupt, an unknown encoding) are
//! dead-lettered as received.

use crate::support::*;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use mesh_ingest::envelope::encoding::{ContentEncoding, compress};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const VALID_PER_FORMAT: usize = 520;
const BASE_TIME_US: i64 = 1_795_000_000_000_000; // 2026-11-18

/// What a valid event must look like in the ingest table.
struct Expected {
    event_type: String,
    event_time_us: i64,
    object_id: String,
    payload: Value,
    attributes: Value,
    /// `None`: the event id is the Pub/Sub message id (the envelope had none).
    event_id: Option<String>,
    /// The CloudEvents source; `None` for the other formats.
    event_source: Option<&'static str>,
}

struct Case {
    message: Outgoing,
    expect: Result<Expected, &'static str>,
}

fn order_cases() -> (Vec<Case>, usize) {
    let mut cases = Vec::new();
    for i in 0..VALID_PER_FORMAT {
        let us = BASE_TIME_US + i as i64 * 1_000_123;
        let payload = json!({
            "order_id": format!("o-{}", i % 97),
            "status": if i % 2 == 0 { "created" } else { "paid" },
            "total": i as f64 + 0.25,
            "items": [{"sku": format!("sku-{i}"), "qty": i % 5}],
            "note": "unicode: é ✓ \"quoted\" \\ back",
        });
        let event_type = if i % 3 == 0 {
            "OrderCreated"
        } else {
            "OrderUpdated"
        };
        let mut envelope = json!({
            "event_type": event_type,
            "event_time": rfc3339(us),
            "payload": payload,
        });
        let event_id = (i % 50 != 7).then(|| format!("order-evt-{i}"));
        if let Some(id) = &event_id {
            envelope["event_id"] = json!(id);
        }
        let attrs: &[(&str, &str)] = if i % 10 == 0 {
            &[("source", "orders-svc")]
        } else {
            &[]
        };
        // Some bodies compressed, as a producer saving on Pub/Sub bytes sends them.
        let encoding = match i % 13 {
            4 => Some(ContentEncoding::Gzip),
            9 => Some(ContentEncoding::Zstd),
            _ => None,
        };
        let mut attrs = attrs.to_vec();
        let body = match encoding {
            Some(e) => {
                attrs.push(("content-encoding", e.as_str()));
                compress(e, envelope.to_string().as_bytes()).to_vec()
            }
            None => envelope.to_string().into_bytes(),
        };
        cases.push(Case {
            message: Outgoing::with_attributes(body, &attrs),
            expect: Ok(Expected {
                event_type: event_type.into(),
                event_time_us: us,
                object_id: format!("o-{}", i % 97),
                payload,
                attributes: attrs
                    .iter()
                    .map(|(k, v)| (k.to_string(), json!(v)))
                    .collect(),
                event_id,
                event_source: None,
            }),
        });
    }
    let valid = cases.len();
    let good = json!({"event_id": "b", "event_type": "OrderCreated", "event_time": "2026-11-20T10:00:00Z",
        "payload": {"order_id": "o-bad", "status": "created", "total": 1}});
    let with = |f: &dyn Fn(&mut Value)| {
        let mut v = good.clone();
        f(&mut v);
        v.to_string()
    };
    let deep = format!(
        r#"{{"event_id":"d","event_type":"OrderCreated","event_time":"2026-11-20T10:00:00Z","payload":{{"order_id":"o","status":"created","deep":{}{}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let bad: Vec<(Vec<u8>, &'static str)> = vec![
        (Vec::new(), "empty_body"),
        (b"{not json".to_vec(), "malformed_json"),
        (good.to_string().as_bytes()[..40].to_vec(), "malformed_json"),
        (b"{\"event_id\":\"\xff\xfe\"}".to_vec(), "invalid_utf8"),
        (b"[1,2,3]".to_vec(), "not_an_object"),
        (b"42".to_vec(), "not_an_object"),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("event_type");
            })
            .into(),
            "missing_field",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("event_time");
            })
            .into(),
            "missing_field",
        ),
        (
            with(&|v| {
                v["payload"].as_object_mut().unwrap().remove("order_id");
            })
            .into(),
            "missing_field",
        ),
        (
            with(&|v| {
                v.as_object_mut().unwrap().remove("payload");
            })
            .into(),
            "missing_field",
        ),
        (
            with(&|v| v["event_time"] = json!(1_795_000_000)).into(),
            "invalid_field",
        ),
        (
            with(&|v| v["event_id"] = json!({"id": 1})).into(),
            "invalid_field",
        ),
        (
            with(&|v| v["event_time"] = json!("last tuesday")).into(),
            "invalid_event_time",
        ),
        (
            with(&|v| v["event_time"] = json!("1969-07-20T20:17:40Z")).into(),
            "invalid_event_time",
        ),
        (
            with(&|v| v["event_time"] = json!("2999-01-01T00:00:00Z")).into(),
            "invalid_event_time",
        ),
        (
            with(&|v| v["event_type"] = json!("OrderTeleported")).into(),
            "unknown_event_type",
        ),
        (
            with(&|v| v["payload"]["total"] = json!(-5)).into(),
            "schema_violation",
        ),
        (
            with(&|v| v["payload"] = json!(["not", "an", "object"])).into(),
            "invalid_payload",
        ),
        (deep.into_bytes(), "too_deep"),
        (
            with(&|v| v["payload"]["blob"] = json!("x".repeat(100_000))).into(),
            "too_large",
        ),
    ];
    for (body, code) in bad {
        // Pub/Sub refuses a message with neither data nor attributes.
        let attrs: &[(&str, &str)] = if body.is_empty() {
            &[("kind", "empty")]
        } else {
            &[]
        };
        cases.push(Case {
            message: Outgoing::with_attributes(body, attrs),
            expect: Err(code),
        });
    }
    // Compressed bodies that cannot be read: kept compressed, as received. A bomb (1 MB of
    // JSON in about 1 KB) stops at the 64 KiB cap.
    let bomb = with(&|v| v["payload"]["blob"] = json!("x".repeat(1_000_000)));
    let gzip_good = compress(ContentEncoding::Gzip, good.to_string().as_bytes());
    for (body, encoding, code) in [
        (
            compress(ContentEncoding::Gzip, bomb.as_bytes()).to_vec(),
            "gzip",
            "too_large",
        ),
        (
            compress(ContentEncoding::Zstd, bomb.as_bytes()).to_vec(),
            "zstd",
            "too_large",
        ),
        (
            gzip_good[..gzip_good.len() / 2].to_vec(),
            "gzip",
            "invalid_encoding",
        ),
        (good.to_string().into_bytes(), "zstd", "invalid_encoding"),
        (good.to_string().into_bytes(), "br", "invalid_encoding"),
    ] {
        cases.push(Case {
            message: Outgoing::with_attributes(body, &[("content-encoding", encoding)]),
            expect: Err(code),
        });
    }
    (cases, valid)
}

fn customer_cases() -> (Vec<Case>, usize) {
    let mut cases = Vec::new();
    for i in 0..VALID_PER_FORMAT {
        let us = BASE_TIME_US + i as i64 * 7_000_001;
        let payload = json!({"customer_id": format!("c-{}", i % 61), "name": format!("Customer {i}"), "tier": i % 4});
        let time = rfc3339(us);
        let id = format!("cust-evt-{i}");
        let mut attrs = vec![
            ("event_id", id.as_str()),
            ("event_type", "CustomerUpdated"),
            ("event_time", time.as_str()),
        ];
        if i % 25 == 3 {
            attrs.remove(0); // no event id: falls back to the message id
        }
        let message = Outgoing::with_attributes(payload.to_string(), &attrs);
        let attributes: Value = attrs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        cases.push(Case {
            message,
            expect: Ok(Expected {
                event_type: "CustomerUpdated".into(),
                event_time_us: us,
                object_id: format!("c-{}", i % 61),
                payload,
                attributes,
                event_id: (i % 25 != 3).then_some(id),
                event_source: None,
            }),
        });
    }
    let valid = cases.len();
    let ok_attrs = [
        ("event_type", "CustomerUpdated"),
        ("event_time", "2026-11-20T10:00:00Z"),
    ];
    cases.push(Case {
        message: Outgoing::with_attributes(r#"{"customer_id":"c"}"#, &ok_attrs[..1]),
        expect: Err("missing_field"),
    });
    cases.push(Case {
        message: Outgoing::with_attributes("customer c, not JSON", &ok_attrs),
        expect: Err("malformed_json"),
    });
    cases.push(Case {
        message: Outgoing::with_attributes("\"just a string\"", &ok_attrs),
        expect: Err("not_an_object"),
    });
    (cases, valid)
}

fn shipment_cases() -> (Vec<Case>, usize) {
    let mut cases = Vec::new();
    for i in 0..VALID_PER_FORMAT {
        let us = BASE_TIME_US + i as i64 * 3_000_017;
        let id = format!("ship-evt-{i}");
        let subject = format!("s-{}", i % 43);
        let data = json!({"shipment_id": subject, "carrier": "DHL", "parcels": i % 3 + 1});
        let (message, attributes) = if i % 2 == 0 {
            let event = json!({"specversion": "1.0", "id": id, "source": "//logistics", "type": "ShipmentDispatched",
                "time": rfc3339(us), "subject": subject, "datacontenttype": "application/json", "data": data});
            let attrs = [("content-type", "application/cloudevents+json")];
            (
                Outgoing::with_attributes(event.to_string(), &attrs),
                json!({"content-type": "application/cloudevents+json"}),
            )
        } else {
            let time = rfc3339(us);
            let attrs = [
                ("ce-specversion", "1.0"),
                ("ce-id", id.as_str()),
                ("ce-source", "//logistics"),
                ("ce-type", "ShipmentDispatched"),
                ("ce-time", time.as_str()),
                ("ce-subject", subject.as_str()),
            ];
            let attributes: Value = attrs
                .iter()
                .map(|(k, v)| (k.to_string(), json!(v)))
                .collect();
            (
                Outgoing::with_attributes(data.to_string(), &attrs),
                attributes,
            )
        };
        cases.push(Case {
            message,
            expect: Ok(Expected {
                event_type: "ShipmentDispatched".into(),
                event_time_us: us,
                object_id: subject,
                payload: data,
                attributes,
                event_id: Some(id),
                event_source: Some("//logistics"),
            }),
        });
    }
    let valid = cases.len();
    let structured = |f: &dyn Fn(&mut Value)| {
        let mut v = json!({"specversion": "1.0", "id": "x", "source": "//l", "type": "ShipmentDispatched",
            "time": "2026-11-20T10:00:00Z", "subject": "s-x", "data": {"a": 1}});
        f(&mut v);
        Outgoing::body(v.to_string())
    };
    cases.push(Case {
        message: structured(&|v| v["specversion"] = json!("0.3")),
        expect: Err("unsupported_specversion"),
    });
    cases.push(Case {
        message: structured(&|v| {
            v.as_object_mut().unwrap().remove("id");
        }),
        expect: Err("missing_field"),
    });
    cases.push(Case {
        message: structured(&|v| {
            v.as_object_mut().unwrap().remove("data");
        }),
        expect: Err("missing_field"),
    });
    cases.push(Case {
        message: Outgoing::with_attributes(
            r#"{"a":1}"#,
            &[("ce-specversion", "2.0"), ("ce-id", "y"), ("ce-type", "T")],
        ),
        expect: Err("unsupported_specversion"),
    });
    // Accepted by the decoder, refused by BigQuery's JSON column (a lone surrogate): must be
    // isolated from the good rows of its batch and dead-lettered alone.
    cases.push(Case {
        message: structured(&|v| v["data"] = json!({"name": "placeholder"}))
            .replace_body("\"placeholder\"", "\"\\ud800\""),
        expect: Err("bigquery_rejected"),
    });
    (cases, valid)
}

trait ReplaceBody {
    fn replace_body(self, from: &str, to: &str) -> Outgoing;
}

impl ReplaceBody for Outgoing {
    fn replace_body(mut self, from: &str, to: &str) -> Outgoing {
        let text = String::from_utf8(self.data).unwrap().replace(from, to);
        self.data = text.into_bytes();
        self
    }
}

const ORDER_SCHEMA: &str = r#"{"type": "object", "required": ["order_id", "status"],
  "properties": {"total": {"type": "number", "minimum": 0}, "status": {"type": "string"}}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_valid_event_lands_once_and_every_bad_one_is_dead_lettered() {
    let config = TestConfig::new(vec![
        TestObject::new(
            "orders",
            "envelope:\n  format: json\n  object_id: payload.order_id\nevent_types: [OrderCreated, OrderUpdated]\n\
             payload_schema_file: orders.schema.json\nlimits:\n  max_message_bytes: 65536\n\
             batch:\n  max_rows: 200\n  max_delay_ms: 200\nstreams: 2\n",
        ),
        TestObject::new(
            "customers",
            "envelope:\n  format: attributes\n  object_id: customer_id\nbatch:\n  max_rows: 100\n  max_delay_ms: 200\n",
        ),
        TestObject::new(
            "shipments",
            "envelope:\n  format: cloudevents\nbatch:\n  max_rows: 300\n  max_delay_ms: 300\n",
        ),
    ]);
    std::fs::write(
        config.path().join("objects/orders.schema.json"),
        ORDER_SCHEMA,
    )
    .unwrap();
    config.provision();
    let app = App::start(&config).await;
    let emu = config.emulators.clone();

    let mut plans = Vec::new();
    for (name, (cases, valid)) in [
        ("orders", order_cases()),
        ("customers", customer_cases()),
        ("shipments", shipment_cases()),
    ] {
        let object = config.object(name);
        let (messages, expects): (Vec<_>, Vec<_>) =
            cases.into_iter().map(|c| (c.message, c.expect)).unzip();
        let bodies: Vec<Vec<u8>> = messages.iter().map(|m| m.data.clone()).collect();
        let ids = publish(&emu, &object.topic_path(), messages).await;
        plans.push((name, ids, expects, valid, bodies));
    }

    for (name, ids, expects, valid, bodies) in &plans {
        let object = config.object(name);
        let bad = expects.len() - valid;
        let ingested = wait_for_count(
            &emu,
            &format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table()),
            *valid as u64,
            Duration::from_secs(90),
        )
        .await;
        let dead = wait_for_count(
            &emu,
            &format!("SELECT COUNT(*) AS n FROM `{}`", object.dead_letter_table()),
            bad as u64,
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(
            ingested,
            *valid as u64,
            "{name}: ingest rows\n{}",
            app.log_text()
        );
        assert_eq!(
            dead,
            bad as u64,
            "{name}: dead-letter rows\n{}",
            app.log_text()
        );

        // Every column of every valid row, by message id.
        let rows = query(
            &emu,
            &format!(
                "SELECT message_id, event_id, event_type, UNIX_MICROS(event_time) AS event_time_us, object_id, \
                 TO_JSON_STRING(payload) AS payload, TO_JSON_STRING(attributes) AS attributes, \
                 UNIX_MICROS(publish_time) AS publish_us, subscription, ordering_key, delivery_attempt, \
                 UNIX_MICROS(ingested_at) AS ingested_us, event_source FROM `{}`",
                object.ingest_table()
            ),
        )
        .await;
        let by_id: HashMap<&str, &serde_json::Map<String, Value>> = rows
            .iter()
            .map(|r| (r["message_id"].as_str().unwrap(), r))
            .collect();
        assert_eq!(
            by_id.len(),
            *valid,
            "{name}: each valid message exactly once"
        );
        for (id, expect) in ids.iter().zip(expects) {
            let Ok(e) = expect else {
                assert!(
                    !by_id.contains_key(id.as_str()),
                    "{name}: bad message {id} was ingested"
                );
                continue;
            };
            let row = by_id
                .get(id.as_str())
                .unwrap_or_else(|| panic!("{name}: message {id} missing"));
            let text = |k: &str| row[k].as_str().unwrap_or_default().to_string();
            assert_eq!(
                text("event_id"),
                e.event_id.clone().unwrap_or_else(|| id.clone()),
                "{name} {id}"
            );
            assert_eq!(text("event_type"), e.event_type, "{name} {id}");
            assert_eq!(
                text("event_time_us"),
                e.event_time_us.to_string(),
                "{name} {id}"
            );
            assert_eq!(text("object_id"), e.object_id, "{name} {id}");
            assert_eq!(
                row["event_source"].as_str(),
                e.event_source,
                "{name} {id}: event_source"
            );
            let payload: Value = serde_json::from_str(&text("payload")).unwrap();
            assert_eq!(payload, e.payload, "{name} {id}: payload");
            let attributes: Value = serde_json::from_str(&text("attributes")).unwrap();
            assert_eq!(attributes, e.attributes, "{name} {id}: attributes");
            assert_eq!(text("subscription"), object.subscription_path());
            assert!(
                row["ordering_key"].is_null(),
                "{name} {id}: no ordering key"
            );
            assert!(
                row["delivery_attempt"].is_null(),
                "no dead-letter policy, no delivery attempt"
            );
            let publish_us: i64 = text("publish_us").parse().unwrap();
            let ingested_us: i64 = text("ingested_us").parse().unwrap();
            assert!(
                publish_us > 1_700_000_000_000_000,
                "{name} {id}: publish_time set"
            );
            assert!(
                ingested_us >= publish_us,
                "{name} {id}: ingested after publish"
            );
        }

        // Every bad message, with its reason code.
        let dl_rows = query(
            &emu,
            &format!(
                "SELECT message_id, reason_code, reason, subscription, data FROM `{}`",
                object.dead_letter_table()
            ),
        )
        .await;
        let bodies: HashMap<&str, &[u8]> = ids
            .iter()
            .zip(bodies)
            .map(|(id, b)| (id.as_str(), b.as_slice()))
            .collect();
        let got: BTreeMap<String, String> = dl_rows
            .iter()
            .map(|r| {
                assert!(!r["reason"].as_str().unwrap().is_empty());
                let id = r["message_id"].as_str().unwrap();
                let data = BASE64
                    .decode(r["data"].as_str().unwrap_or_default())
                    .unwrap();
                assert!(
                    data == bodies[id],
                    "{name} {id}: dead-letter data is the raw body"
                );
                assert_eq!(
                    r["subscription"].as_str().unwrap(),
                    object.subscription_path()
                );
                (
                    r["message_id"].as_str().unwrap().to_string(),
                    r["reason_code"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want: BTreeMap<String, String> = ids
            .iter()
            .zip(expects)
            .filter_map(|(id, e)| e.as_ref().err().map(|c| (id.clone(), c.to_string())))
            .collect();
        assert_eq!(got, want, "{name}: dead-letter reason codes by message id");
    }

    let metrics = app.metrics().await;
    assert!(
        metrics.contains("mesh_ingest_rows_dead_lettered_total{object=\"shipments\",reason_code=\"bigquery_rejected\"} 1"),
        "{metrics}"
    );
    let (code, took) = app.terminate().await;
    assert_eq!(code, Some(0), "clean exit on SIGTERM");
    assert!(
        took < Duration::from_secs(20),
        "drained within the deadline ({took:?})"
    );

    // Drained: past the 10 s ack deadline, nothing is redelivered.
    tokio::time::sleep(Duration::from_secs(11)).await;
    for o in &config.objects {
        assert_eq!(
            pull_count(&emu, &o.subscription_path()).await,
            0,
            "{}: redelivered",
            o.name
        );
    }
}
