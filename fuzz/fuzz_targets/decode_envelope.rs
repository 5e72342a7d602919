//! Fuzzes the envelope decoder (how to run it: CONTRIBUTING.md, "Fuzzing").
//!
//! The input is split into:
//!
//! - byte 0: which decoder (each format, with default limits or with tight limits, an
//!   event-type allow-list and a JSON Schema);
//! - byte 1: how many attributes follow (mod 8); each is a key and a value, each written as a
//!   length byte and that many bytes (lossily UTF-8). A key length byte of 0xF0 or more picks a
//!   well-known key instead (`ce-specversion`, `event_time`, …) and is followed by no key bytes;
//! - the rest: the message body.
//!
//! Checked: the decoder never panics; an accepted message keeps the whole body, a rejected one
//! keeps it as received (cut to `limits.max_dead_letter_data_bytes`, which its reason then
//! says), with a non-empty reason and never a BigQuery reason code.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use mesh_ingest::configuration::ObjectSettings;
use mesh_ingest::envelope::Decoder;
use mesh_ingest::pipeline::{ReasonCode, ReceivedMessage};
use std::collections::HashMap;
use std::sync::LazyLock;

/// The decoder's clock: 2027-01-15.
const NOW_US: i64 = 1_800_000_000_000_000;

const SCHEMA: &str = r#"{"type": "object",
  "properties": {"total": {"type": "number", "minimum": 0}, "status": {"type": "string"}}}"#;

const TIGHT: &str = "limits:\n  max_message_bytes: 512\n  max_dead_letter_data_bytes: 32\n  \
     max_json_depth: 4\n  max_future_event_time_secs: 60\n";

const WELL_KNOWN_KEYS: [&str; 12] = [
    "event_id",
    "event_type",
    "event_time",
    "object_id",
    "customer_id",
    "ce-specversion",
    "ce-id",
    "ce-source",
    "ce-type",
    "ce-time",
    "ce-subject",
    "content-type",
];

struct Setup {
    max_data: usize,
    decoder: Decoder,
}

static SETUPS: LazyLock<Vec<Setup>> = LazyLock::new(|| {
    let envelopes = [
        "envelope:\n  format: json\n  object_id: payload.order_id\n",
        "envelope:\n  format: attributes\n  object_id: customer_id\n",
        "envelope:\n  format: cloudevents\n",
        "envelope:\n  format: cloudevents\n  object_id: data.shipment_id\n",
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("schema.json"), SCHEMA).expect("write schema");
    let mut setups = Vec::new();
    for envelope in envelopes {
        for strict in [false, true] {
            let extra = if strict {
                format!(
                    "event_types: [OrderCreated, CustomerUpdated, ShipmentDispatched]\n\
                     payload_schema_file: schema.json\n{TIGHT}"
                )
            } else {
                String::new()
            };
            let text = format!(
                "name: fuzz\nsubscription: sub-fuzz\ningest_table: d.fuzz_events\n\
                 dead_letter_table: d.fuzz_dead_letter\n{envelope}{extra}"
            );
            let object = ObjectSettings::parse(&text, &dir.path().join("fuzz.yaml"), "p")
                .unwrap_or_else(|e| panic!("fuzz configuration: {e}"));
            setups.push(Setup {
                max_data: object.limits.max_dead_letter_data_bytes,
                decoder: mesh_ingest::source::decoder_for(&object).unwrap(),
            });
        }
    }
    setups
});

/// Takes up to `n` bytes off the front of `input`.
fn take<'a>(input: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = input.split_at(n.min(input.len()));
    *input = tail;
    head
}

fn take_byte(input: &mut &[u8]) -> u8 {
    take(input, 1).first().copied().unwrap_or(0)
}

/// (decoder selector, attributes, body)
fn split(data: &[u8]) -> (usize, HashMap<String, String>, &[u8]) {
    let mut rest = data;
    let selector = usize::from(take_byte(&mut rest));
    let count = take_byte(&mut rest) % 8;
    let mut attributes = HashMap::new();
    for _ in 0..count {
        let key_len = take_byte(&mut rest);
        let key = if key_len >= 0xF0 {
            WELL_KNOWN_KEYS[usize::from(key_len - 0xF0) % WELL_KNOWN_KEYS.len()].to_string()
        } else {
            String::from_utf8_lossy(take(&mut rest, usize::from(key_len))).into_owned()
        };
        let value_len = usize::from(take_byte(&mut rest));
        let value = String::from_utf8_lossy(take(&mut rest, value_len)).into_owned();
        attributes.insert(key, value);
    }
    (selector, attributes, rest)
}

fuzz_target!(|data: &[u8]| {
    let (selector, attributes, body) = split(data);
    let setup = &SETUPS[selector % SETUPS.len()];
    let msg = ReceivedMessage {
        data: Bytes::copy_from_slice(body),
        attributes,
        message_id: "m-fuzz".to_string(),
        publish_time_us: Some(NOW_US),
        ordering_key: String::new(),
        delivery_attempt: None,
    };
    let attributes_json = msg.attributes_json();
    match setup.decoder.decode(msg, NOW_US) {
        Ok(row) => {
            assert_eq!(
                &row.raw[..],
                body,
                "an accepted message keeps its whole body"
            );
            assert!(
                !row.event_type.trim().is_empty(),
                "blank event type accepted"
            );
            assert!(row.event_time_us >= 0, "event time before 1970 accepted");
            assert_eq!(row.attributes_json(), attributes_json);
        }
        Err(dead) => {
            let kept = body.len().min(setup.max_data);
            assert_eq!(
                &dead.data[..],
                &body[..kept],
                "a rejected message keeps its raw bytes"
            );
            if body.len() > setup.max_data {
                assert!(
                    dead.reason.contains(&format!("{}-byte body", body.len())),
                    "a cut body is noted in the reason: {}",
                    dead.reason
                );
            }
            assert!(!dead.reason.trim().is_empty(), "empty reason");
            assert!(
                !matches!(
                    dead.reason_code,
                    ReasonCode::BigqueryRowError | ReasonCode::BigqueryRejected
                ),
                "decoder used a BigQuery reason code"
            );
            assert_eq!(dead.message_id, "m-fuzz");
            assert_eq!(dead.attributes_json, attributes_json);
        }
    }
});
