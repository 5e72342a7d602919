//! Decoder tests: each format, each rejection reason.

//! They build decoders from object YAML, through the source's mapping, so that what they
//! check is what an object file means.

use super::*;
use crate::configuration::ObjectSettings;
use crate::pipeline::{DeadLetterRow, ReasonCode, ReceivedMessage};
use crate::source::decoder_for;
use bytes::Bytes;
use std::path::Path;

const NOW: i64 = 1_800_000_000_000_000; // 2027-01-15

fn object(yaml: &str) -> ObjectSettings {
    let text =
        format!("name: t\nsubscription: sub-t\ningest_table: d.i\ndead_letter_table: d.dl\n{yaml}");
    ObjectSettings::parse(&text, Path::new("test.yaml"), "p").expect("valid test config")
}

fn json_decoder() -> Decoder {
    decoder_for(&object(
        "envelope:\n  format: json\n  object_id: payload.order_id\nevent_types: [OrderCreated]\nlimits:\n  max_message_bytes: 4096\n  max_dead_letter_data_bytes: 16\n  max_json_depth: 8\n",
    )).unwrap()
}

fn msg(body: &str) -> ReceivedMessage {
    ReceivedMessage {
        data: Bytes::copy_from_slice(body.as_bytes()),
        message_id: "m-1".into(),
        publish_time_us: Some(NOW - 1_000_000),
        ..Default::default()
    }
}

fn with_attrs(mut m: ReceivedMessage, attrs: &[(&str, &str)]) -> ReceivedMessage {
    m.attributes = attrs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    m
}

fn rejected(d: &Decoder, m: ReceivedMessage) -> DeadLetterRow {
    *d.decode(m, NOW).expect_err("should be rejected")
}

const GOOD: &str = r#"{"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","payload":{"order_id":"o-1","total":12.5}}"#;

#[test]
fn json_envelope_decodes_and_slices_the_payload() {
    let d = json_decoder();
    let m = with_attrs(msg(GOOD), &[("b", "2"), ("a", "1")]);
    let row = d.decode(m, NOW).unwrap();
    assert_eq!(row.event_id, "e-1");
    assert_eq!(row.event_source, None, "only CloudEvents have a source");
    assert_eq!(row.event_type, "OrderCreated");
    assert_eq!(row.event_time_us, 1_795_514_400_123_456);
    assert_eq!(row.object_id.as_deref(), Some("o-1"));
    assert_eq!(&row.payload[..], br#"{"order_id":"o-1","total":12.5}"#);
    assert_eq!(row.attributes_json(), r#"{"a":"1","b":"2"}"#);
    assert_eq!(row.message_id, "m-1");
    // The payload shares the body's buffer: no copy.
    let body = row.raw.as_ptr() as usize;
    let p = row.payload.as_ptr() as usize;
    assert!(p > body && p < body + row.raw.len());
}

/// The object id is read during the parse (`payload.order_id`); other fields of the same
/// member are still found, each its own value.
#[test]
fn fields_beside_the_object_id_in_the_payload_keep_their_own_values() {
    let d = decoder_for(&object(
        "envelope:\n  format: json\n  object_id: payload.order_id\n  event_id: payload.event.id\n  event_time: payload.updated_at\n",
    ))
    .unwrap();
    let body = r#"{"event_type":"OrderCreated","payload":{"updated_at":"2026-11-24T10:00:00Z","order_id":"o-7","event":{"id":"e-7"}}}"#;
    let row = d.decode(msg(body), NOW).unwrap();
    assert_eq!(row.object_id.as_deref(), Some("o-7"));
    assert_eq!(row.event_id, "e-7");
    assert_eq!(row.event_time_us, 1_795_514_400_000_000);
    // An empty payload object: read inside and placed like any other.
    let body = r#"{"event_type":"OrderCreated","payload":{}}"#;
    assert_eq!(
        rejected(&d, msg(body)).reason_code,
        ReasonCode::MissingField
    );
}

/// The parse keeps only the members the decoder reads: members it skips (before, between and
/// after them, with escaped keys, and a duplicate `payload` that is no object) change nothing.
#[test]
fn members_the_decoder_does_not_read_change_nothing() {
    let d = json_decoder();
    let bodies = [
        r#"{"a":[1,{"b":"}"}],"event_id":"e-1","n\u0061me":"x","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","z":null,"payload":{"order_id":"o-1","total":12.5},"tail":{"x":1}}"#,
        r#"{"event_id":"e-1","\u0065xtra":1,"event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","payload":{"order_id":"o-1","total":12.5}}"#,
        r#"{"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","payload":{"order_id":"o-1","total":12.5},"\u0065xtra":1}"#,
        r#"{"payload":1e400,"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","payload":{"order_id":"o-1","total":12.5}}"#,
        r#"{"payload":{"order_id":"o-0"},"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00.123456Z","payload":{"order_id":"o-1","total":12.5}}"#,
    ];
    for body in bodies {
        let row = d
            .decode(msg(body), NOW)
            .unwrap_or_else(|e| panic!("{body}: {}", e.reason));
        assert_eq!(row.event_id, "e-1", "{body}");
        assert_eq!(row.event_type, "OrderCreated", "{body}");
        assert_eq!(row.event_time_us, 1_795_514_400_123_456, "{body}");
        assert_eq!(row.object_id.as_deref(), Some("o-1"), "{body}");
        assert_eq!(
            &row.payload[..],
            br#"{"order_id":"o-1","total":12.5}"#,
            "{body}"
        );
    }
}

#[test]
fn missing_event_id_falls_back_to_the_message_id() {
    let d = json_decoder();
    let body = GOOD.replace(r#""event_id":"e-1","#, "");
    assert_eq!(d.decode(msg(&body), NOW).unwrap().event_id, "m-1");
    let body = GOOD.replace(r#""e-1""#, "null");
    assert_eq!(d.decode(msg(&body), NOW).unwrap().event_id, "m-1");
}

#[test]
fn integer_object_ids_are_accepted_as_text() {
    let d = json_decoder();
    let body = GOOD.replace(r#""o-1""#, "42");
    assert_eq!(
        d.decode(msg(&body), NOW).unwrap().object_id.as_deref(),
        Some("42")
    );
}

#[test]
#[allow(clippy::too_many_lines)] // a table of cases, one row per kind of rejection
fn every_json_rejection_has_its_reason_code() {
    let d = json_decoder();
    let cases: Vec<(String, ReasonCode, &str)> = vec![
        ("".into(), ReasonCode::EmptyBody, "empty"),
        (
            "{\"a\": ".into(),
            ReasonCode::MalformedJson,
            "not valid JSON",
        ),
        ("[1,2]".into(), ReasonCode::NotAnObject, "an array"),
        ("\"x\"".into(), ReasonCode::NotAnObject, "a string"),
        (
            GOOD.replace(r#""event_type":"OrderCreated","#, ""),
            ReasonCode::MissingField,
            "event type is missing",
        ),
        (
            GOOD.replace(r#""event_time":"2026-11-24T10:00:00.123456Z","#, ""),
            ReasonCode::MissingField,
            "event time is missing",
        ),
        (
            GOOD.replace(r#""order_id":"o-1","#, ""),
            ReasonCode::MissingField,
            "object id is missing (expected at `payload.order_id`)",
        ),
        (
            GOOD.replace(r#","payload":{"order_id":"o-1","total":12.5}"#, ""),
            ReasonCode::MissingField,
            "payload is missing",
        ),
        (
            GOOD.replace(r#""e-1""#, r#"{"x":1}"#),
            ReasonCode::InvalidField,
            "event id at `event_id` is an object",
        ),
        (
            GOOD.replace(r#""2026-11-24T10:00:00.123456Z""#, "1700000000"),
            ReasonCode::InvalidField,
            "event time at `event_time` is a number",
        ),
        (
            GOOD.replace("2026-11-24T10:00:00.123456Z", "yesterday"),
            ReasonCode::InvalidEventTime,
            "not an RFC 3339",
        ),
        (
            GOOD.replace("2026-11-24T10:00:00.123456Z", "1969-12-31T23:59:59Z"),
            ReasonCode::InvalidEventTime,
            "before 1970",
        ),
        (
            // Half a microsecond before the epoch: floored, not truncated to 0.
            GOOD.replace(
                "2026-11-24T10:00:00.123456Z",
                "1969-12-31T23:59:59.9999995Z",
            ),
            ReasonCode::InvalidEventTime,
            "before 1970",
        ),
        (
            GOOD.replace("2026-11-24T10:00:00.123456Z", "2099-01-01T00:00:00Z"),
            ReasonCode::InvalidEventTime,
            "ahead of the clock",
        ),
        (
            GOOD.replace("OrderCreated", "OrderExploded"),
            ReasonCode::UnknownEventType,
            "not one of",
        ),
        (
            GOOD.replace(r#"{"order_id":"o-1","total":12.5}"#, "[1]"),
            ReasonCode::InvalidPayload,
            "payload at `payload` is an array",
        ),
        (
            GOOD.replace(r#""o-1""#, r#""""#),
            ReasonCode::InvalidField,
            "object id at `payload.order_id` is empty",
        ),
        (
            // Blank is empty, Unicode whitespace included.
            GOOD.replace(r#""o-1""#, "\"\u{a0} \u{2003}\""),
            ReasonCode::InvalidField,
            "object id at `payload.order_id` is empty",
        ),
        (
            format!(r#"{{"x":{}{}}}"#, "[".repeat(20), "]".repeat(20)),
            ReasonCode::TooDeep,
            "deeper than limits.max_json_depth (8)",
        ),
        ("x".repeat(5000), ReasonCode::TooLarge, "5000 bytes"),
    ];
    for (body, code, reason) in cases {
        let dl = rejected(&d, msg(&body));
        assert_eq!(dl.reason_code, code, "body {body:.80}: {}", dl.reason);
        assert!(
            dl.reason.contains(reason),
            "{code}: reason `{}` lacks `{reason}`",
            dl.reason
        );
        assert_eq!(dl.message_id, "m-1");
    }
}

#[test]
fn non_utf8_bodies_are_kept_as_bytes_and_cut_to_the_limit() {
    let d = json_decoder();
    let mut m = msg("");
    m.data = Bytes::from_static(b"{\"a\":\"\xff\xfe\"} and more bytes after it");
    let dl = rejected(&d, m);
    assert_eq!(dl.reason_code, ReasonCode::InvalidUtf8);
    assert_eq!(dl.data.len(), 16, "cut to max_dead_letter_data_bytes");
    assert_eq!(&dl.data[..8], b"{\"a\":\"\xff\xfe");
    assert!(
        dl.reason.contains("first bytes of a 34-byte body"),
        "{}",
        dl.reason
    );
}

#[test]
fn schema_violations_name_the_place_not_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.json"),
        r#"{"type":"object","required":["order_id"],"properties":{"total":{"type":"number","minimum":0}}}"#,
    )
    .unwrap();
    let text = "name: t\nsubscription: sub-t\ningest_table: d.i\ndead_letter_table: d.dl\nenvelope:\n  format: json\n  object_id: payload.order_id\npayload_schema_file: s.json\n";
    let o = ObjectSettings::parse(text, &dir.path().join("t.yaml"), "p").unwrap();
    let d = decoder_for(&o).unwrap();
    assert!(d.decode(msg(GOOD), NOW).is_ok());
    let dl = rejected(&d, msg(&GOOD.replace("12.5", "-99.25")));
    assert_eq!(dl.reason_code, ReasonCode::SchemaViolation);
    assert!(dl.reason.contains("/total"), "{}", dl.reason);
    assert!(
        !dl.reason.contains("99.25"),
        "reasons must not echo payload values"
    );
}

fn attributes_decoder() -> Decoder {
    decoder_for(&object(
        "envelope:\n  format: attributes\n  object_id: customer_id\n",
    ))
    .unwrap()
}

#[test]
fn attributes_envelope_reads_attributes_and_takes_the_body_as_payload() {
    let d = attributes_decoder();
    let body = r#"{"customer_id": 7, "name": "Ada"}"#;
    let m = with_attrs(
        msg(body),
        &[
            ("event_id", "e-9"),
            ("event_type", "CustomerUpdated"),
            ("event_time", "2026-11-24T10:00:00+01:00"),
        ],
    );
    let row = d.decode(m, NOW).unwrap();
    assert_eq!(row.event_id, "e-9");
    assert_eq!(row.event_type, "CustomerUpdated");
    assert_eq!(row.event_time_us, 1_795_510_800_000_000);
    assert_eq!(row.object_id.as_deref(), Some("7"));
    assert_eq!(&row.payload[..], body.as_bytes());
}

#[test]
fn attributes_envelope_rejections() {
    let d = attributes_decoder();
    let ok_attrs = [
        ("event_type", "CustomerUpdated"),
        ("event_time", "2026-11-24T10:00:00Z"),
    ];
    let dl = rejected(
        &d,
        with_attrs(msg(r#"{"customer_id":"c"}"#), &ok_attrs[..1]),
    );
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
    assert!(dl.reason.contains("attributes.event_time"), "{}", dl.reason);
    let dl = rejected(&d, with_attrs(msg("[]"), &ok_attrs));
    assert_eq!(dl.reason_code, ReasonCode::NotAnObject);
    assert!(
        dl.reason.starts_with("payload (the message body)"),
        "{}",
        dl.reason
    );
    let dl = rejected(&d, with_attrs(msg(r#"{"name":"x"}"#), &ok_attrs));
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
}

fn cloudevents_decoder() -> Decoder {
    decoder_for(&object("envelope:\n  format: cloudevents\n")).unwrap()
}

const CE: &str = r#"{"specversion":"1.0","id":"ce-1","source":"/crm","type":"CustomerRegistered","time":"2026-11-24T10:00:00Z","subject":"c-1","datacontenttype":"application/json","data":{"customer_id":"c-1","tier":"gold"}}"#;

#[test]
fn structured_cloudevents_decode() {
    let d = cloudevents_decoder();
    let row = d.decode(msg(CE), NOW).unwrap();
    assert_eq!(row.event_id, "ce-1");
    assert_eq!(row.event_type, "CustomerRegistered");
    assert_eq!(row.event_source.as_deref(), Some("/crm"));
    assert_eq!(row.object_id.as_deref(), Some("c-1"));
    assert_eq!(&row.payload[..], br#"{"customer_id":"c-1","tier":"gold"}"#);
}

#[test]
fn structured_cloudevents_with_base64_data() {
    let d = cloudevents_decoder();
    let body = CE.replace(
        r#""data":{"customer_id":"c-1","tier":"gold"}"#,
        r#""data_base64":"eyJjdXN0b21lcl9pZCI6ImMtMSJ9""#,
    );
    let row = d.decode(msg(&body), NOW).unwrap();
    assert_eq!(&row.payload[..], br#"{"customer_id":"c-1"}"#);
}

#[test]
fn binary_cloudevents_decode_from_ce_attributes() {
    let d = cloudevents_decoder();
    let m = with_attrs(
        msg(r#"{"customer_id":"c-2"}"#),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "ce-2"),
            ("ce-source", "/crm"),
            ("ce-type", "CustomerUpdated"),
            ("ce-time", "2026-11-24T11:00:00Z"),
            ("ce-subject", "c-2"),
        ],
    );
    let row = d.decode(m, NOW).unwrap();
    assert_eq!(row.event_id, "ce-2");
    assert_eq!(row.event_source.as_deref(), Some("/crm"));
    assert_eq!(row.event_type, "CustomerUpdated");
    assert_eq!(row.object_id.as_deref(), Some("c-2"));
    assert_eq!(&row.payload[..], br#"{"customer_id":"c-2"}"#);
}

/// `data.…` paths read the data: inside the event in structured mode, the body itself in
/// binary mode.
#[test]
fn cloudevents_object_id_from_the_data() {
    let d = decoder_for(&object(
        "envelope:\n  format: cloudevents\n  object_id: data.customer_id\n",
    ))
    .unwrap();
    let structured = CE.replace(r#""c-1","tier""#, r#""c-9","tier""#);
    let row = d.decode(msg(&structured), NOW).unwrap();
    assert_eq!(row.object_id.as_deref(), Some("c-9"));
    let binary = with_attrs(
        msg(r#"{"tier":"gold","customer_id":"c-3"}"#),
        &[
            ("ce-specversion", "1.0"),
            ("ce-id", "ce-3"),
            ("ce-source", "/crm"),
            ("ce-type", "CustomerUpdated"),
            ("ce-time", "2026-11-24T11:00:00Z"),
        ],
    );
    let row = d.decode(binary, NOW).unwrap();
    assert_eq!(row.object_id.as_deref(), Some("c-3"));
    assert_eq!(&row.payload[..], br#"{"tier":"gold","customer_id":"c-3"}"#);
}

#[test]
fn cloudevents_rejections() {
    let d = cloudevents_decoder();
    let dl = rejected(&d, msg(&CE.replace(r#""1.0""#, r#""0.3""#)));
    assert_eq!(dl.reason_code, ReasonCode::UnsupportedSpecversion);
    let dl = rejected(&d, msg(&CE.replace(r#""specversion":"1.0","#, "")));
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
    let dl = rejected(&d, msg(&CE.replace(r#""id":"ce-1","#, "")));
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
    assert!(dl.reason.contains("event id"), "{}", dl.reason);
    let dl = rejected(&d, msg(&CE.replace(r#""source":"/crm","#, "")));
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
    assert!(dl.reason.contains("source"), "{}", dl.reason);
    let dl = rejected(
        &d,
        msg(&CE.replace(r#","data":{"customer_id":"c-1","tier":"gold"}"#, "")),
    );
    assert_eq!(dl.reason_code, ReasonCode::MissingField);
    let binary_wrong_version = with_attrs(msg("{}"), &[("ce-specversion", "2.0"), ("ce-id", "x")]);
    assert_eq!(
        rejected(&d, binary_wrong_version).reason_code,
        ReasonCode::UnsupportedSpecversion
    );
}

/// Counts, per thread, the heap bytes live and their peak: what building a value tree takes.
mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(n: isize) {
        let live = LIVE.with(|l| {
            l.set(l.get() + n);
            l.get()
        });
        PEAK.with(|p| p.set(p.get().max(live)));
    }

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            // A moving realloc holds both blocks for a moment: count the new one first.
            add(new as isize);
            let p = unsafe { System.realloc(ptr, layout, new) };
            add(-(layout.size() as isize));
            p
        }
    }

    /// The peak of bytes `f` allocated beyond what was live when it started.
    pub fn peak_of<T>(f: impl FnOnce() -> T) -> (usize, T) {
        let start = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(start));
        let out = f();
        (PEAK.with(Cell::get).saturating_sub(start) as usize, out)
    }
}

#[global_allocator]
static HEAP: heap::Counting = heap::Counting;

/// Hostile shapes of about 1 MB: the bound the schema check is budgeted by must hold the
/// value tree serde_json builds of each, measured by the allocator.
#[test]
fn the_value_tree_bound_holds_what_serde_json_builds() {
    let n = 200_000;
    let keys = (0..n).map(|i| format!("\"k{i}\":0")).collect::<Vec<_>>();
    let shapes = [
        format!("[{}0]", "0,".repeat(n)),
        format!("[{}[]]", "[],".repeat(n)),
        format!("[{}{{}}]", "{},".repeat(n)),
        format!("[{}\"\"]", "\"\",".repeat(n)),
        format!("{{{}}}", keys.join(",")),
        format!("[{}1.5e300]", "-1.5e300,".repeat(n)),
        format!("{}{}", "[".repeat(60), "]".repeat(60)),
        format!("[{}\"a\"]", "\"a,b,c,d\",".repeat(n)),
    ];
    for json in &shapes {
        let (peak, value) = heap::peak_of(|| serde_json::from_str::<serde_json::Value>(json));
        assert!(value.is_ok());
        let bound = super::decode::tree_bytes(json.as_bytes());
        assert!(
            peak <= bound,
            "{}…: built {peak} bytes, bound {bound}",
            &json[..20.min(json.len())]
        );
    }
}

/// A payload whose value tree could outgrow the check's budget is rejected unbuilt, naming
/// the budget; one within it is checked as usual.
#[test]
fn a_payload_too_costly_to_check_against_its_schema_is_rejected_unbuilt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.json"),
        r#"{"type":"object","required":["order_id"]}"#,
    )
    .unwrap();
    let text = "name: t\nsubscription: sub-t\ningest_table: d.i\ndead_letter_table: d.dl\nenvelope:\n  format: json\n  object_id: payload.order_id\npayload_schema_file: s.json\n";
    let o = ObjectSettings::parse(text, &dir.path().join("t.yaml"), "p").unwrap();
    let d = decoder_for(&o).unwrap();
    let budget = crate::configuration::memory::VALIDATION_BYTES as usize;
    let body = |items: usize| {
        format!(
            r#"{{"event_id":"e-1","event_type":"OrderCreated","event_time":"2026-11-24T10:00:00Z","payload":{{"order_id":"o-1","items":[{}0]}}}}"#,
            "0,".repeat(items)
        )
    };
    // Each item is a value: the budget over the per-value bound is how many fit.
    let hostile = body(budget / 160);
    assert_eq!(d.working_set(hostile.as_bytes()), budget);
    let (peak, dl) = heap::peak_of(|| rejected(&d, msg(&hostile)));
    assert_eq!(dl.reason_code, ReasonCode::TooLarge);
    assert!(dl.reason.contains("JSON Schema"), "{}", dl.reason);
    assert!(
        peak < 4 * hostile.len(),
        "built {peak} bytes for a rejection"
    );
    let fine = body(1000);
    let need = d.working_set(fine.as_bytes());
    assert!(need > 1000 * 160 && need < budget, "{need}");
    assert!(d.decode(msg(&fine), NOW).is_ok());
    // Without a schema nothing is built, and nothing is asked of the budget.
    assert_eq!(json_decoder().working_set(hostile.as_bytes()), 0);
}

/// A compressed body is read inflated; the row keeps it as received (what a dead-letter row
/// would hold), and a body that does not inflate is dead-lettered compressed, with its reason.
#[test]
fn compressed_bodies_are_read_inflated_and_kept_as_received() {
    use std::io::Write;
    let d = json_decoder();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(GOOD.as_bytes()).unwrap();
    let gzip = gz.finish().unwrap();
    let zstd = zstd::bulk::compress(GOOD.as_bytes(), 3).unwrap();
    for (encoding, packed) in [("gzip", &gzip), ("zstd", &zstd)] {
        let m = ReceivedMessage {
            data: Bytes::copy_from_slice(packed),
            ..with_attrs(msg(""), &[("content-encoding", encoding)])
        };
        assert_eq!(d.inflation_bound(&m), 4096, "{encoding}: the cap");
        let row = d.decode(m, NOW).unwrap();
        assert_eq!(&row.payload[..], br#"{"order_id":"o-1","total":12.5}"#);
        assert_eq!(row.event_id, "e-1");
        assert_eq!(&row.raw[..], &packed[..], "{encoding}");
        assert_eq!(
            row.attributes_json(),
            format!(r#"{{"content-encoding":"{encoding}"}}"#)
        );

        let corrupt = Bytes::copy_from_slice(&packed[..packed.len() / 2]);
        let m = ReceivedMessage {
            data: corrupt.clone(),
            ..with_attrs(msg(""), &[("content-encoding", encoding)])
        };
        let dl = rejected(&d, m);
        assert_eq!(dl.reason_code, ReasonCode::InvalidEncoding, "{}", dl.reason);
        // Kept as received, up to max_dead_letter_data_bytes (16 here).
        assert_eq!(&dl.data[..], &corrupt[..16]);
    }
    // Inflating beyond the cap (4096) is too large, however small the compressed body.
    let big = GOOD.replace("12.5}", &format!("12.5,\"pad\":\"{}\"}}", "x".repeat(5000)));
    let m = ReceivedMessage {
        data: Bytes::from(zstd::bulk::compress(big.as_bytes(), 3).unwrap()),
        ..with_attrs(msg(""), &[("content-encoding", "zstd")])
    };
    assert!(m.data.len() < 200);
    assert_eq!(rejected(&d, m).reason_code, ReasonCode::TooLarge);
    // An encoding nobody supports is named; an uncompressed body needs no room to inflate.
    let m = with_attrs(msg(GOOD), &[("content-encoding", "br")]);
    let dl = rejected(&d, m);
    assert_eq!(dl.reason_code, ReasonCode::InvalidEncoding);
    assert_eq!(d.inflation_bound(&msg(GOOD)), 0);
}

/// A Protocol Buffer record's event time, noted as its `Timestamp` is written, is what the
/// envelope reads from the text written for it (the same record decoded as a plain JSON
/// body): the same microseconds, or the same rejection, for edge and random instants. An
/// event time read from further in (`event_time.seconds`, inside the `Timestamp`'s text) is
/// not taken from the note: both decoders refuse it alike.
#[test]
fn an_event_time_noted_while_rendering_is_the_one_parsed_from_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let top = timed_decoders(dir.path(), "");
    let deeper = tempfile::tempdir().unwrap();
    let deeper = timed_decoders(deeper.path(), "  event_time: event_time.seconds\n");
    let mut instants: Vec<(i64, i32)> = vec![
        (0, 0),
        (0, 999_999_999),
        (-1, 999_999_999),
        (-1, 0),
        (1_795_514_400, 123_456_789),
        (1_795_514_400, 1_000),
        (1_795_514_400, 999),
        (NOW / 1_000_000 + 3_600, 0),
        (253_402_300_799, 999_999_999),
        (-62_135_596_800, 0),
        // Not normalised: written through `Display` and read back from the text.
        (1_795_514_400, -1),
        (1_795_514_400, 1_000_000_000),
    ];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    for _ in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        // Half within the times the envelope accepts (1970 to a day ahead), half beyond.
        let seconds = if seed & 1 == 0 {
            (seed % (NOW as u64 / 1_000_000)) as i64
        } else {
            (seed % 4_000_000_000) as i64 - 500_000_000
        };
        instants.push((seconds, ((seed >> 32) % 1_000_000_000) as i32));
    }
    let mut accepted = 0;
    for (seconds, nanos) in instants {
        let m = ReceivedMessage {
            data: Bytes::from(timed_record(seconds, nanos)),
            ..msg("")
        };
        for (records, plain) in [&top, &deeper] {
            let noted = records.decode(m.clone(), NOW);
            let rendered = records.inflate(&m).body(&m.data).clone();
            let parsed = plain.decode(
                ReceivedMessage {
                    data: rendered.clone(),
                    ..msg("")
                },
                NOW,
            );
            let what = format!(
                "{seconds} s {nanos} ns: {}",
                String::from_utf8_lossy(&rendered)
            );
            match (noted, parsed) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.event_time_us, b.event_time_us, "{what}");
                    accepted += 1;
                }
                (Err(a), Err(b)) => {
                    assert_eq!(a.reason_code, b.reason_code, "{what}");
                    assert_eq!(a.reason, b.reason, "{what}");
                }
                (a, b) => panic!("{what}: {a:?} against {b:?}"),
            }
        }
    }
    // Most instants compared as microseconds, not as rejections; none read further in.
    assert!(accepted > 100, "{accepted}");
    let at = ReceivedMessage {
        data: Bytes::from(timed_record(1_795_514_400, 0)),
        ..msg("")
    };
    assert!(deeper.0.decode(at, NOW).is_err());
}

/// A decoder of Protocol Buffer records whose event time is a `Timestamp` (its schema file
/// written in `dir`), and one of the same envelope (with `envelope_extra`) as plain JSON.
fn timed_decoders(dir: &Path, envelope_extra: &str) -> (Decoder, Decoder) {
    std::fs::write(
        dir.join("e.proto"),
        "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\n\
         message P { string order_id = 1; }\n\
         message E { string event_id = 1; string event_type = 2;\n\
         google.protobuf.Timestamp event_time = 3; P payload = 4; }\n",
    )
    .unwrap();
    let envelope =
        format!("envelope:\n  format: json\n  object_id: payload.order_id\n{envelope_extra}");
    let text = format!(
        "name: timed\nsubscription: sub-t\ningest_table: d.i\ndead_letter_table: d.dl\n{envelope}\
         topic_schema:\n  type: protobuf\n  file: e.proto\n  encoding: binary\n  message: E\n"
    );
    let o = ObjectSettings::parse(&text, &dir.join("t.yaml"), "p").unwrap();
    (
        decoder_for(&o).unwrap(),
        decoder_for(&object(&envelope)).unwrap(),
    )
}

/// The binary record of `timed_decoders`' schema with its event time at `seconds` and
/// `nanos`, written field by field.
fn timed_record(seconds: i64, nanos: i32) -> Vec<u8> {
    fn varint(mut v: u64, out: &mut Vec<u8>) {
        while v >= 0x80 {
            out.push(v as u8 | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn field(n: u8, bytes: &[u8], out: &mut Vec<u8>) {
        out.push(n << 3 | 2);
        varint(bytes.len() as u64, out);
        out.extend_from_slice(bytes);
    }
    let mut t = vec![1 << 3];
    varint(seconds as u64, &mut t);
    t.push(2 << 3);
    varint(i64::from(nanos) as u64, &mut t);
    let mut body = Vec::new();
    field(1, b"e-1", &mut body);
    field(2, b"OrderCreated", &mut body);
    field(3, &t, &mut body);
    field(4, b"\x0a\x03o-1", &mut body);
    body
}

/// Protocol Buffer records are each read with the revision their attributes name, as Pub/Sub
/// sets them: two revisions in flight at once (the older one's records after the newer was
/// learned), a revision not yet fetched asked for, one Pub/Sub does not have and a corrupt
/// body dead-lettered naming it. (The emulator implements no Protocol Buffer schemas: this is
/// the decoder's side of what `topic_schemas.rs` runs end to end for Avro.)
#[test]
fn protobuf_records_are_read_with_the_revision_they_name() {
    let dir = tempfile::tempdir().unwrap();
    let (d, _) = timed_decoders(dir.path(), "");
    let schema = "projects/p/schemas/timed";
    let v1 = std::fs::read_to_string(dir.path().join("e.proto")).unwrap();
    // The newer revision adds a field to the payload: its records carry it, the older's not.
    let v2 = v1.replace(
        "message P { string order_id = 1; }",
        "message P { string order_id = 1; string carrier = 2; }",
    );
    let named = |body: Vec<u8>, revision: &str| {
        with_attrs(
            ReceivedMessage {
                data: Bytes::from(body),
                ..msg("")
            },
            &[
                ("googclient_schemaname", schema),
                ("googclient_schemarevisionid", revision),
                ("googclient_schemaencoding", "BINARY"),
            ],
        )
    };
    let older = named(timed_record(1_795_514_400, 0), "r1");
    let mut newer_body = timed_record(1_795_514_400, 0);
    // The payload (field 4) of the newer revision, with a carrier: replaces the older's.
    let at = newer_body.len() - 7;
    newer_body.truncate(at);
    newer_body.extend_from_slice(b"\x22\x0a\x0a\x03o-1\x12\x03UPS");
    let newer = named(newer_body, "r2");
    assert_eq!(
        d.unknown_revision(&newer),
        Some((schema.to_string(), "r2".to_string()))
    );
    d.learn_revision(schema, "r2", Ok(&v2)).unwrap();
    assert_eq!(d.unknown_revision(&newer), None);
    assert_eq!(
        d.unknown_revision(&older),
        Some((schema.to_string(), "r1".to_string()))
    );
    d.learn_revision(schema, "r1", Ok(&v1)).unwrap();
    let row = d.decode(newer, NOW).unwrap();
    assert_eq!(&row.payload[..], br#"{"order_id":"o-1","carrier":"UPS"}"#);
    let row = d.decode(older.clone(), NOW).unwrap();
    assert_eq!(&row.payload[..], br#"{"order_id":"o-1"}"#);
    assert_eq!(row.event_time_us, 1_795_514_400_000_000);

    // A corrupt body names its revision.
    let corrupt = named(b"\x0a\xff\x01".to_vec(), "r1");
    let dl = rejected(&d, corrupt);
    assert_eq!(dl.reason_code, ReasonCode::UndecodableRecord);
    assert!(dl.reason.contains("revision r1"), "{}", dl.reason);
    // A revision Pub/Sub does not have: its records are dead-lettered with why.
    let gone = named(timed_record(1_795_514_400, 0), "r9");
    assert!(
        d.learn_revision(schema, "r9", Err("NOT_FOUND".into()))
            .is_err()
    );
    let dl = rejected(&d, gone);
    assert_eq!(dl.reason_code, ReasonCode::UndecodableRecord);
    assert!(
        dl.reason.contains("revision r9") && dl.reason.contains("NOT_FOUND"),
        "{}",
        dl.reason
    );
}
