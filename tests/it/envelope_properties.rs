//! Properties of the envelope decoder (pure: no emulators, no I/O after setup).
//!
//! - Total: any bytes with any attributes, in every format and under roomy and tight limits,
//!   decode to an ingest row or a dead-letter row without panicking; a dead-letter row keeps
//!   the body as received (cut to `limits.max_dead_letter_data_bytes`, the reason then says
//!   so) and an ingest row keeps it whole.
//! - Round trip: a valid envelope, encoded in each format (json, attributes, CloudEvents
//!   structured with `data` or `data_base64`, CloudEvents binary), decodes to a row whose every
//!   field is what was encoded.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use mesh_ingest::configuration::ObjectSettings;
use mesh_ingest::envelope::Decoder;
use mesh_ingest::pipeline::{IngestRow, ReasonCode, ReceivedMessage};
use proptest::prelude::*;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::LazyLock;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// The decoder's clock: 2027-01-15.
const NOW_US: i64 = 1_800_000_000_000_000;

const SCHEMA: &str = r#"{"type": "object",
  "properties": {"total": {"type": "number", "minimum": 0}, "status": {"type": "string"}}}"#;

const TIGHT_LIMITS: &str = "limits:\n  max_message_bytes: 256\n  max_dead_letter_data_bytes: 32\n  \
     max_json_depth: 4\n  max_future_event_time_secs: 60\n";

/// One decoder under test, with the limits the checks need.
struct Setup {
    name: &'static str,
    max_data: usize,
    max_future_secs: u64,
    decoder: Decoder,
}

/// Each format twice: defaults (no allow-list, no schema: the round trips use these), and
/// tight limits with an event-type allow-list and (json, cloudevents) a JSON Schema.
static SETUPS: LazyLock<Vec<Setup>> = LazyLock::new(|| {
    let configs: [(&'static str, String); 6] = [
        (
            "json",
            "envelope:\n  format: json\n  object_id: payload.order_id\n".to_string(),
        ),
        (
            "json-strict",
            format!(
                "envelope:\n  format: json\n  object_id: payload.order_id\n\
                 event_types: [OrderCreated, OrderUpdated]\npayload_schema_file: schema.json\n\
                 {TIGHT_LIMITS}"
            ),
        ),
        (
            "attributes",
            "envelope:\n  format: attributes\n  object_id: customer_id\n".to_string(),
        ),
        (
            "attributes-strict",
            format!(
                "envelope:\n  format: attributes\n  object_id: customer_id\n\
                 event_types: [CustomerUpdated]\n{TIGHT_LIMITS}"
            ),
        ),
        (
            "cloudevents",
            "envelope:\n  format: cloudevents\n".to_string(),
        ),
        (
            "cloudevents-strict",
            format!(
                "envelope:\n  format: cloudevents\n  object_id: data.shipment_id\n\
                 event_types: [ShipmentDispatched]\npayload_schema_file: schema.json\n\
                 {TIGHT_LIMITS}"
            ),
        ),
    ];
    // The schema is read while parsing; the decoder keeps it compiled, so the directory can go.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("schema.json"), SCHEMA).expect("write schema");
    configs
        .into_iter()
        .map(|(name, yaml)| {
            let text = format!(
                "name: prop\nsubscription: sub-prop\ningest_table: d.prop_events\n\
                 dead_letter_table: d.prop_dead_letter\n{yaml}"
            );
            let object = ObjectSettings::parse(&text, &dir.path().join("prop.yaml"), "p")
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            Setup {
                name,
                max_data: object.limits.max_dead_letter_data_bytes,
                max_future_secs: object.limits.max_future_event_time_secs,
                decoder: mesh_ingest::source::decoder_for(&object).unwrap(),
            }
        })
        .collect()
});

fn setup(name: &str) -> &'static Setup {
    SETUPS
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no setup `{name}`"))
}

// ---------------------------------------------------------------------------------------------
// Totality: any input decodes to a row or a rejection.

/// Pieces that make the decoder go past its first checks when glued together at random.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    " ",
    "\n",
    "null",
    "true",
    "0",
    "-1.5e3",
    "18446744073709551616",
    "\"\"",
    "\"event_id\"",
    "\"event_type\"",
    "\"event_time\"",
    "\"payload\"",
    "\"order_id\"",
    "\"customer_id\"",
    "\"shipment_id\"",
    "\"OrderCreated\"",
    "\"ShipmentDispatched\"",
    "\"2026-11-24T10:00:00Z\"",
    "\"2026-11-24T10:00:00.123456789+23:59\"",
    "\"1969-12-31T23:59:59.9999999Z\"",
    "\"9999-12-31T23:59:60Z\"",
    "\"specversion\"",
    "\"1.0\"",
    "\"id\"",
    "\"source\"",
    "\"type\"",
    "\"time\"",
    "\"subject\"",
    "\"data\"",
    "\"data_base64\"",
    "\"eyJhIjoxfQ==\"",
    "\"\\ud800\"",
    "\"\\u00e9\"",
    "é",
    "\u{feff}",
    "\u{0}",
];

/// Valid messages of each format, to be mutated.
const SEEDS: &[&str] = &[
    r#"{"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00Z","payload":{"order_id":"o-1","total":12.5,"status":"paid"}}"#,
    r#"{"customer_id":"c-1","name":"Ada","tier":[1,{"x":null}]}"#,
    r#"{"specversion":"1.0","id":"ce-1","source":"/s","type":"ShipmentDispatched","time":"2026-11-24T10:00:00Z","subject":"s-1","data":{"shipment_id":"s-1"}}"#,
    r#"{"specversion":"1.0","id":"ce-2","source":"/s","type":"ShipmentDispatched","time":"2026-11-24T10:00:00Z","subject":"s-2","data_base64":"eyJzaGlwbWVudF9pZCI6InMtMiJ9"}"#,
];

fn token_soup() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(TOKENS), 0..48).prop_map(|t| t.concat().into_bytes())
}

/// A seed with a few bytes replaced, inserted or deleted.
fn mutated_seed() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(SEEDS),
        prop::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 0..6),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.as_bytes().to_vec();
            for (at, op, byte) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let i = at.index(bytes.len());
                match op {
                    0 => bytes[i] = byte,
                    1 => bytes.insert(i, byte),
                    _ => {
                        bytes.remove(i);
                    }
                }
            }
            bytes
        })
}

fn any_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..320),
        token_soup(),
        mutated_seed(),
        prop::sample::select(SEEDS).prop_map(|s| s.as_bytes().to_vec()),
    ]
}

const ATTRIBUTE_KEYS: &[&str] = &[
    "event_id",
    "event_type",
    "event_time",
    "customer_id",
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
];

const ATTRIBUTE_VALUES: &[&str] = &[
    "1.0",
    "0.3",
    "",
    "  ",
    "e-1",
    "OrderCreated",
    "CustomerUpdated",
    "ShipmentDispatched",
    "2026-11-24T10:00:00Z",
    "2999-01-01T00:00:00Z",
    "1969-12-31T23:59:59Z",
    "not a time",
];

fn any_attributes() -> impl Strategy<Value = HashMap<String, String>> {
    prop::collection::hash_map(
        prop_oneof![
            prop::sample::select(ATTRIBUTE_KEYS).prop_map(String::from),
            "\\PC{0,12}",
        ],
        prop_oneof![
            prop::sample::select(ATTRIBUTE_VALUES).prop_map(String::from),
            "\\PC{0,16}",
        ],
        0..8,
    )
}

/// The invariants every decode result must hold.
fn check_total(setup: &Setup, msg: ReceivedMessage) -> Result<(), TestCaseError> {
    let body = msg.data.clone();
    let message_id = msg.message_id.clone();
    let attributes_json = msg.attributes_json();
    match setup.decoder.decode(msg, NOW_US) {
        Ok(row) => {
            prop_assert_eq!(&row.raw[..], &body[..], "the row keeps the whole body");
            prop_assert_eq!(&row.message_id, &message_id);
            prop_assert_eq!(&row.attributes_json(), &attributes_json);
            prop_assert!(!row.event_id.trim().is_empty(), "blank event id");
            prop_assert!(!row.event_type.trim().is_empty(), "blank event type");
            prop_assert!(
                row.object_id
                    .as_deref()
                    .is_some_and(|id| !id.trim().is_empty()),
                "no object id"
            );
            let latest = NOW_US + setup.max_future_secs as i64 * 1_000_000;
            prop_assert!(
                (0..=latest).contains(&row.event_time_us),
                "event time {} out of range",
                row.event_time_us
            );
            prop_assert_eq!(
                row.payload.trim_ascii_start().first(),
                Some(&b'{'),
                "the payload is a JSON object"
            );
        }
        Err(dead) => {
            let kept = body.len().min(setup.max_data);
            prop_assert_eq!(
                &dead.data[..],
                &body[..kept],
                "dead-letter data is the body as received, cut to the limit"
            );
            if body.len() > setup.max_data {
                let note = format!("{}-byte body", body.len());
                prop_assert!(
                    dead.reason.contains(&note),
                    "a cut body is noted: {}",
                    dead.reason
                );
            }
            prop_assert_eq!(&dead.message_id, &message_id);
            prop_assert_eq!(&dead.attributes_json, &attributes_json);
            prop_assert!(!dead.reason.trim().is_empty(), "empty reason");
            prop_assert!(
                !matches!(
                    dead.reason_code,
                    ReasonCode::BigqueryRowError | ReasonCode::BigqueryRejected
                ),
                "the decoder used a BigQuery code: {}",
                dead.reason_code
            );
            prop_assert!(
                dead.event_id.is_none(),
                "decode rejections carry no event id"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_bytes_with_any_attributes_decode_to_a_row_or_a_rejection(
        body in any_body(),
        attributes in any_attributes(),
        ordering_key in prop_oneof![Just(String::new()), "[a-z0-9]{1,8}"],
        delivery_attempt in prop::option::of(1i32..20),
    ) {
        for s in SETUPS.iter() {
            let msg = ReceivedMessage {
                data: Bytes::from(body.clone()),
                attributes: attributes.clone(),
                message_id: "m-prop".to_string(),
                publish_time_us: Some(NOW_US - 1_000_000),
                ordering_key: ordering_key.clone(),
                delivery_attempt,
            };
            check_total(s, msg).map_err(|e| TestCaseError::fail(format!("{}: {e}", s.name)))?;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trip: encode a valid envelope, decode it, get every field back.

/// Ids, types and sources: never blank, with characters JSON must escape and non-ASCII ones.
fn text() -> impl Strategy<Value = String> {
    r#"[A-Za-z0-9][A-Za-z0-9 _.:/@"\\é✓-]{0,24}"#
}

/// An object id: text, or an integer (accepted and stored as its decimal text).
#[derive(Debug, Clone)]
enum Id {
    Text(String),
    Int(i64),
}

impl Id {
    fn json(&self) -> Value {
        match self {
            Id::Text(s) => json!(s),
            Id::Int(n) => json!(n),
        }
    }

    fn text(&self) -> String {
        match self {
            Id::Text(s) => s.clone(),
            Id::Int(n) => n.to_string(),
        }
    }
}

fn object_id() -> impl Strategy<Value = Id> {
    prop_oneof![text().prop_map(Id::Text), any::<i64>().prop_map(Id::Int)]
}

/// A time between 1970 and `NOW_US` (whole microseconds), as RFC 3339 in UTC or at an offset.
fn event_time() -> impl Strategy<Value = (i64, String)> {
    (
        0i64..=NOW_US,
        prop_oneof![Just(0i32), -(23 * 60i32)..=(23 * 60i32)],
        any::<bool>(),
    )
        .prop_map(|(us, offset_minutes, zulu)| {
            let t =
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000).expect("in range");
            let t = if zulu {
                t
            } else {
                t.to_offset(UtcOffset::from_whole_seconds(offset_minutes * 60).expect("offset"))
            };
            (us, t.format(&Rfc3339).expect("RFC 3339"))
        })
}

/// JSON without floats that might not survive a text round trip (multiples of 1/64 do).
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        (-1_000_000_000i64..1_000_000_000).prop_map(|n| json!(n as f64 / 64.0)),
        "\\PC{0,16}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,10}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn payload_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map("\\PC{0,10}", json_value(), 0..6)
        .prop_map(|m| m.into_iter().collect())
}

/// Attributes no format reads (`x-…`): they must still be stored.
fn extra_attributes() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("x-[a-z]{1,6}", "\\PC{0,12}", 0..4)
}

/// What Pub/Sub adds to a message.
#[derive(Debug, Clone)]
struct Meta {
    message_id: String,
    publish_time_us: Option<i64>,
    ordering_key: String,
    delivery_attempt: Option<i32>,
}

fn meta() -> impl Strategy<Value = Meta> {
    (
        "[1-9][0-9]{0,15}",
        prop::option::of(0i64..=NOW_US),
        prop_oneof![Just(String::new()), "[a-z0-9-]{1,12}"],
        prop::option::of(1i32..=100),
    )
        .prop_map(
            |(message_id, publish_time_us, ordering_key, delivery_attempt)| Meta {
                message_id,
                publish_time_us,
                ordering_key,
                delivery_attempt,
            },
        )
}

impl Meta {
    fn message(&self, body: &[u8], attributes: &BTreeMap<String, String>) -> ReceivedMessage {
        ReceivedMessage {
            data: Bytes::copy_from_slice(body),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            message_id: self.message_id.clone(),
            publish_time_us: self.publish_time_us,
            ordering_key: self.ordering_key.clone(),
            delivery_attempt: self.delivery_attempt,
        }
    }
}

/// The row a valid envelope must decode to.
struct Expected {
    event_id: String,
    event_type: String,
    event_time_us: i64,
    object_id: String,
    payload: Value,
    attributes: BTreeMap<String, String>,
}

fn decode_ok(setup_name: &str, msg: ReceivedMessage) -> Result<IngestRow, TestCaseError> {
    setup(setup_name)
        .decoder
        .decode(msg, NOW_US)
        .map_err(|dead| {
            TestCaseError::fail(format!(
                "{setup_name}: a valid envelope was rejected as {}: {}",
                dead.reason_code, dead.reason
            ))
        })
}

fn check_row(
    row: &IngestRow,
    want: &Expected,
    meta: &Meta,
    body: &[u8],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(&row.event_id, &want.event_id);
    prop_assert_eq!(&row.event_type, &want.event_type);
    prop_assert_eq!(row.event_time_us, want.event_time_us);
    prop_assert_eq!(row.object_id.as_deref(), Some(want.object_id.as_str()));
    let payload: Value = serde_json::from_slice(&row.payload)
        .map_err(|e| TestCaseError::fail(format!("the payload is not JSON: {e}")))?;
    prop_assert_eq!(&payload, &want.payload);
    let attributes: BTreeMap<String, String> = serde_json::from_str(&row.attributes_json())
        .map_err(|e| TestCaseError::fail(format!("attributes_json is not a map: {e}")))?;
    prop_assert_eq!(&attributes, &want.attributes);
    prop_assert_eq!(&row.message_id, &meta.message_id);
    prop_assert_eq!(row.publish_time_us, meta.publish_time_us);
    let ordering_key = (!meta.ordering_key.is_empty()).then(|| meta.ordering_key.clone());
    prop_assert_eq!(&row.ordering_key, &ordering_key);
    prop_assert_eq!(row.delivery_attempt, meta.delivery_attempt.map(i64::from));
    prop_assert_eq!(&row.raw[..], body);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn json_envelopes_round_trip(
        event_id in prop::option::of(text()),
        event_type in text(),
        (event_time_us, event_time) in event_time(),
        object_id in object_id(),
        payload in payload_object(),
        attributes in extra_attributes(),
        meta in meta(),
    ) {
        let mut payload = payload;
        payload.insert("order_id".to_string(), object_id.json());
        let mut envelope = Map::new();
        if let Some(id) = &event_id {
            envelope.insert("event_id".to_string(), json!(id));
        }
        envelope.insert("event_type".to_string(), json!(event_type));
        envelope.insert("event_time".to_string(), json!(event_time));
        envelope.insert("payload".to_string(), Value::Object(payload.clone()));
        let body = serde_json::to_vec(&Value::Object(envelope)).unwrap();
        let row = decode_ok("json", meta.message(&body, &attributes))?;
        let want = Expected {
            // No event id in the envelope: the Pub/Sub message id stands in.
            event_id: event_id.unwrap_or_else(|| meta.message_id.clone()),
            event_type,
            event_time_us,
            object_id: object_id.text(),
            payload: Value::Object(payload),
            attributes,
        };
        check_row(&row, &want, &meta, &body)?;
    }

    #[test]
    fn attributes_envelopes_round_trip(
        event_id in prop::option::of(text()),
        event_type in text(),
        (event_time_us, event_time) in event_time(),
        object_id in object_id(),
        payload in payload_object(),
        extra in extra_attributes(),
        meta in meta(),
    ) {
        let mut payload = payload;
        payload.insert("customer_id".to_string(), object_id.json());
        let body = serde_json::to_vec(&payload).unwrap();
        let mut attributes = extra;
        if let Some(id) = &event_id {
            attributes.insert("event_id".to_string(), id.clone());
        }
        attributes.insert("event_type".to_string(), event_type.clone());
        attributes.insert("event_time".to_string(), event_time);
        let row = decode_ok("attributes", meta.message(&body, &attributes))?;
        let want = Expected {
            event_id: event_id.unwrap_or_else(|| meta.message_id.clone()),
            event_type,
            event_time_us,
            object_id: object_id.text(),
            payload: Value::Object(payload),
            attributes,
        };
        check_row(&row, &want, &meta, &body)?;
    }

    #[test]
    fn structured_cloudevents_round_trip(
        id in text(),
        source in text(),
        event_type in text(),
        (event_time_us, event_time) in event_time(),
        subject in object_id(),
        payload in payload_object(),
        base64_data in any::<bool>(),
        (attributes, meta) in (extra_attributes(), meta()),
    ) {
        let data = Value::Object(payload);
        let mut event = json!({
            "specversion": "1.0",
            "id": id,
            "source": source,
            "type": event_type,
            "time": event_time,
            "subject": subject.json(),
            "datacontenttype": "application/json",
        });
        if base64_data {
            event["data_base64"] = json!(BASE64.encode(serde_json::to_vec(&data).unwrap()));
        } else {
            event["data"] = data.clone();
        }
        let body = serde_json::to_vec(&event).unwrap();
        let row = decode_ok("cloudevents", meta.message(&body, &attributes))?;
        let want = Expected {
            event_id: id,
            event_type,
            event_time_us,
            object_id: subject.text(),
            payload: data,
            attributes,
        };
        check_row(&row, &want, &meta, &body)?;
    }

    #[test]
    fn binary_cloudevents_round_trip(
        id in text(),
        source in text(),
        event_type in text(),
        (event_time_us, event_time) in event_time(),
        subject in object_id(),
        payload in payload_object(),
        extra in extra_attributes(),
        meta in meta(),
    ) {
        let data = Value::Object(payload);
        let body = serde_json::to_vec(&data).unwrap();
        let mut attributes = extra;
        for (k, v) in [
            ("ce-specversion", "1.0".to_string()),
            ("ce-id", id.clone()),
            ("ce-source", source),
            ("ce-type", event_type.clone()),
            ("ce-time", event_time),
            ("ce-subject", subject.text()),
        ] {
            attributes.insert(k.to_string(), v);
        }
        let row = decode_ok("cloudevents", meta.message(&body, &attributes))?;
        let want = Expected {
            event_id: id,
            event_type,
            event_time_us,
            object_id: subject.text(),
            payload: data,
            attributes,
        };
        check_row(&row, &want, &meta, &body)?;
    }
}
