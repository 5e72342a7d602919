//! Records rendered from bodies `apache-avro` encoded: the decoder here and the reference
//! implementation must agree on every type; hostile lengths and nesting stop at the caps.

use super::values::{decimal, time_of_day, timestamp};
use super::*;
use apache_avro::types::Value as A;
use serde_json::json;

const SCHEMA: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "order_id", "type": "string"},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["created", "paid"]}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "qty", "type": "int"},
    {"name": "total_cents", "type": "long"},
    {"name": "ratio", "type": "double"},
    {"name": "weight", "type": "float"},
    {"name": "paid", "type": "boolean"},
    {"name": "blob", "type": "bytes"},
    {"name": "code", "type": {"type": "fixed", "name": "Code", "size": 2}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item",
        "fields": [{"name": "sku", "type": "string"}, {"name": "qty", "type": "int"}]}}},
    {"name": "tags", "type": {"type": "map", "values": "long"}},
    {"name": "placed_at", "type": {"type": "long", "logicalType": "timestamp-micros"}},
    {"name": "placed_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 10, "scale": 2}},
    {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "first", "type": ["null", "Item"], "default": null}
  ]
}"#;

fn schema() -> RecordSchema {
    RecordSchema::avro(SCHEMA, "r1").unwrap()
}

fn order() -> A {
    let item = |sku: &str, qty: i32| {
        A::Record(vec![
            ("sku".into(), A::String(sku.into())),
            ("qty".into(), A::Int(qty)),
        ])
    };
    A::Record(vec![
        ("order_id".into(), A::String("o-1 \"é\"".into())),
        ("status".into(), A::Enum(1, "paid".into())),
        (
            "note".into(),
            A::Union(1, Box::new(A::String("leave at door".into()))),
        ),
        ("qty".into(), A::Int(-3)),
        ("total_cents".into(), A::Long(9_007_199_254_740_993)),
        ("ratio".into(), A::Double(0.25)),
        ("weight".into(), A::Float(1.5)),
        ("paid".into(), A::Boolean(true)),
        ("blob".into(), A::Bytes(vec![0, 255, 1])),
        ("code".into(), A::Fixed(2, vec![b'D', b'E'])),
        (
            "items".into(),
            A::Array(vec![item("tea", 2), item("mug", 1)]),
        ),
        (
            "tags".into(),
            A::Map([("a".to_string(), A::Long(1))].into()),
        ),
        (
            "placed_at".into(),
            A::TimestampMicros(1_795_514_400_123_456),
        ),
        ("placed_ms".into(), A::TimestampMillis(1_795_514_400_123)),
        ("day".into(), A::Date(20_416)),
        (
            "amount".into(),
            A::Decimal(apache_avro::Decimal::from(vec![0x85])),
        ),
        (
            "id".into(),
            A::Uuid(apache_avro::Uuid::parse_str("67e55044-10b1-426f-9247-bb680e5fe0c8").unwrap()),
        ),
        ("first".into(), A::Union(1, Box::new(item("tea", 2)))),
    ])
}

fn expected() -> serde_json::Value {
    json!({
        "order_id": "o-1 \"é\"", "status": "paid", "note": "leave at door", "qty": -3,
        "total_cents": 9_007_199_254_740_993_i64, "ratio": 0.25, "weight": 1.5, "paid": true,
        "blob": "AP8B", "code": "REU=",
        "items": [{"sku": "tea", "qty": 2}, {"sku": "mug", "qty": 1}], "tags": {"a": 1},
        "placed_at": "2026-11-24T10:00:00.123456Z", "placed_ms": "2026-11-24T10:00:00.123Z",
        "day": "2025-11-24", "amount": "-1.23", "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "first": {"sku": "tea", "qty": 2}
    })
}

/// `value` as `apache-avro` writes it: the reference the decoder must agree with.
fn avro_bytes(schema: &apache_avro::Schema, value: A) -> Vec<u8> {
    apache_avro::writer::datum::GenericDatumWriter::builder(schema)
        .build()
        .unwrap()
        .write_value_to_vec(value)
        .unwrap()
}

/// The rendered JSON, parsed; the member spans the renderer noted are checked against it:
/// each names a member and holds its value, all members.
fn parse(r: &Rendered) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_slice(&r.json).unwrap();
    if let Some(spans) = &r.members {
        let text = std::str::from_utf8(&r.json).unwrap();
        let object = v.as_object().expect("members are noted for an object only");
        let mut noted: Vec<(&str, serde_json::Value)> = spans
            .iter()
            .map(|(k, x)| {
                (
                    &text[k.clone()],
                    serde_json::from_str(&text[x.clone()]).unwrap(),
                )
            })
            .collect();
        noted.sort_by(|a, b| a.0.cmp(b.0));
        let parsed: Vec<(&str, serde_json::Value)> = object
            .iter()
            .map(|(k, x)| (k.as_str(), x.clone()))
            .collect();
        assert_eq!(noted, parsed);
    }
    v
}

#[test]
fn binary_records_render_as_documented_for_every_type() {
    let avro = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let body = avro_bytes(&avro, order());
    let json = schema()
        .render(WireEncoding::Binary, &body, 1 << 20, 64)
        .unwrap();
    assert_eq!(parse(&json), expected());
    assert!(
        json.members.is_some(),
        "a top-level record's members are noted"
    );
    // Fields in schema order, and the 2^53 + 1 long exact.
    let text = std::str::from_utf8(&json.json).unwrap();
    assert!(text.starts_with(r#"{"order_id":"#), "{text}");
    assert!(text.contains("9007199254740993"), "{text}");
}

#[test]
fn json_encoded_records_render_the_same() {
    // Avro's JSON encoding, as Pub/Sub checks it: unions wrapped in their branch's name,
    // bytes as code points 0–255.
    let body = json!({
        "order_id": "o-1 \"é\"", "status": "paid", "note": {"string": "leave at door"}, "qty": -3,
        "total_cents": 9_007_199_254_740_993_i64, "ratio": 0.25, "weight": 1.5, "paid": true,
        "blob": "\u{0}\u{ff}\u{1}", "code": "DE",
        "items": [{"sku": "tea", "qty": 2}, {"sku": "mug", "qty": 1}], "tags": {"a": 1},
        "placed_at": 1_795_514_400_123_456_i64, "placed_ms": 1_795_514_400_123_i64,
        "day": 20_416, "amount": "\u{ff}\u{85}", "id": "67e55044-10b1-426f-9247-bb680e5fe0c8",
        "first": {"shop.Item": {"sku": "tea", "qty": 2}}
    });
    let json = schema()
        .render(WireEncoding::Json, body.to_string().as_bytes(), 1 << 20, 64)
        .unwrap();
    assert_eq!(parse(&json), expected());
    let mut wrong = body.clone();
    wrong["note"] = json!({"int": 1});
    let e = schema()
        .render(
            WireEncoding::Json,
            wrong.to_string().as_bytes(),
            1 << 20,
            64,
        )
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::UndecodableRecord);
    assert!(e.reason.contains("`int` is not a branch"), "{}", e.reason);
    assert!(e.reason.contains("revision r1"), "{}", e.reason);
}

#[test]
fn corrupt_bodies_are_undecodable_and_name_the_revision() {
    let avro = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let body = avro_bytes(&avro, order());
    let mut trailing = body.clone();
    trailing.push(0);
    for (bad, why) in [
        (body[..body.len() / 2].to_vec(), "ends inside"),
        (trailing, "1 bytes after the record"),
        (b"\x0a{\"x\":1}".to_vec(), ""),
    ] {
        let e = schema()
            .render(WireEncoding::Binary, &bad, 1 << 20, 64)
            .unwrap_err();
        assert_eq!(e.code, ReasonCode::UndecodableRecord, "{}", e.reason);
        assert!(e.reason.contains("revision r1"), "{}", e.reason);
        assert!(e.reason.contains(why), "{}", e.reason);
    }
}

#[test]
fn lying_lengths_cost_nothing_and_output_stops_at_the_cap() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "R", "fields": [
            {"name": "s", "type": "string"},
            {"name": "nulls", "type": {"type": "array", "items": "null"}}]}"#,
        "r",
    )
    .unwrap();
    // A string claiming 2^62 bytes in a 10-byte body: refused before any allocation.
    let mut body = vec![0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
    body.push(0);
    let e = s
        .render(WireEncoding::Binary, &body, 1 << 20, 64)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::UndecodableRecord, "{}", e.reason);
    // An empty string, then a block of 2^40 nulls (no bytes each): stops at the 1 KiB cap.
    let mut bomb = vec![0];
    bomb.extend_from_slice(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x40]);
    bomb.push(0);
    let e = s.render(WireEncoding::Binary, &bomb, 1024, 64).unwrap_err();
    assert_eq!(e.code, ReasonCode::TooLarge, "{}", e.reason);
}

#[test]
fn recursive_types_decode_until_the_depth_limit() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "Node", "fields": [
            {"name": "next", "type": ["null", "Node"]}]}"#,
        "r",
    )
    .unwrap();
    // Three levels: branch 1 (Node), branch 1, branch 0 (null).
    let json = s
        .render(WireEncoding::Binary, &[2, 2, 0], 1024, 64)
        .unwrap();
    assert_eq!(parse(&json), json!({"next": {"next": {"next": null}}}));
    // 10,000 levels in 10,000 bytes: too deep, not a stack overflow.
    let mut deep = vec![2u8; 10_000];
    deep.push(0);
    let e = s
        .render(WireEncoding::Binary, &deep, 1 << 20, 64)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::TooDeep);
}

#[test]
fn schemas_are_refused_with_the_reason() {
    assert!(
        RecordSchema::avro("{", "r")
            .unwrap_err()
            .contains("not an Avro schema")
    );
    let big = r#"{"type": "bytes", "logicalType": "big-decimal"}"#;
    assert!(
        RecordSchema::avro(big, "r")
            .unwrap_err()
            .contains("big-decimal")
    );
}

#[test]
fn decimals_and_times_are_exact() {
    assert_eq!(decimal(&[0x00, 0x7b], 2).ok(), Some("1.23".into()));
    assert_eq!(decimal(&[0xff, 0xff], 3).ok(), Some("-0.001".into()));
    assert_eq!(decimal(&[0x01], 0).ok(), Some("1".into()));
    assert_eq!(
        time_of_day(3_723_000_004).ok(),
        Some("01:02:03.000004".into())
    );
    assert_eq!(
        timestamp(0, 1_000, true).ok(),
        Some("1970-01-01T00:00:00".into())
    );
}

#[test]
fn encoding_our_json_is_what_apache_avro_writes_and_renders_back() {
    let avro = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let reference = avro_bytes(&avro, order());
    let s = schema();
    let binary = s.encode(WireEncoding::Binary, &expected()).unwrap();
    assert_eq!(binary, reference, "byte for byte");
    for encoding in [WireEncoding::Binary, WireEncoding::Json] {
        let body = s.encode(encoding, &expected()).unwrap();
        let back = s.render(encoding, &body, 1 << 20, 64).unwrap();
        assert_eq!(parse(&back), expected(), "{encoding:?}");
    }
    let mut wrong = expected();
    wrong["status"] = json!("lost");
    let e = s.encode(WireEncoding::Binary, &wrong).unwrap_err();
    assert!(e.contains("status: `lost` is not a symbol"), "{e}");
}

const PROTO: &str = r#"syntax = "proto3";
package shop;
import "google/protobuf/timestamp.proto";
message Order {
  enum Status { STATUS_UNSPECIFIED = 0; PAID = 1; }
  string order_id = 1;
  int64 total_cents = 2;
  Status status = 3;
  bytes blob = 4;
  repeated string tags = 5;
  google.protobuf.Timestamp placed_at = 6;
  map<string, int32> counts = 7;
  string note = 8;
}
"#;

#[test]
fn protobuf_records_render_as_proto3_json_with_field_names_and_defaults() {
    let s = RecordSchema::protobuf(PROTO, None, "p1").unwrap();
    let ours = json!({"order_id": "o-1", "total_cents": "9007199254740993", "status": "PAID",
        "blob": "AP8B", "tags": ["a", "b"], "placed_at": "2026-11-24T10:00:00.123456Z",
        "counts": {"x": 2}, "note": ""});
    for encoding in [WireEncoding::Binary, WireEncoding::Json] {
        let body = s.encode(encoding, &ours).unwrap();
        let back = s.render(encoding, &body, 1 << 20, 64).unwrap();
        assert_eq!(parse(&back), ours, "{encoding:?}");
    }
    // Hand-written wire format: field 1 (string "o-2"), field 2 (varint 5); the rest default.
    let body = [0x0a, 3, b'o', b'-', b'2', 0x10, 5];
    let back = parse(&s.render(WireEncoding::Binary, &body, 1 << 20, 64).unwrap());
    assert_eq!(back["order_id"], "o-2");
    assert_eq!(back["total_cents"], "5", "int64 as a string");
    assert_eq!(back["status"], "STATUS_UNSPECIFIED", "a default is written");
    assert_eq!(back["note"], "");
    let e = s
        .render(WireEncoding::Binary, &[0x0a, 0xff, 0x01], 1 << 20, 64)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::UndecodableRecord);
    assert!(e.reason.contains("revision p1"), "{}", e.reason);
    let e = s.render(WireEncoding::Binary, &body, 10, 64).unwrap_err();
    assert_eq!(e.code, ReasonCode::TooLarge);
    // A file of two top-level messages names the one it carries.
    let two = format!("{PROTO}\nmessage Other {{ string x = 1; }}\n");
    assert!(
        RecordSchema::protobuf(&two, None, "p")
            .unwrap_err()
            .contains("more than one")
    );
    assert!(RecordSchema::protobuf(&two, Some("shop.Other"), "p").is_ok());
}

/// Found in review: numbers no Avro `date` or `time-millis` holds, and Protocol Buffer
/// output far larger than its body, are refused, not a panic or an unbounded buffer.
#[test]
fn hostile_values_are_refused_without_panic_or_unbounded_output() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "D", "fields": [
            {"name": "d", "type": {"type": "int", "logicalType": "date"}},
            {"name": "t", "type": {"type": "int", "logicalType": "time-millis"}}]}"#,
        "r",
    )
    .unwrap();
    for body in [
        r#"{"d": 9223372036854775807, "t": 0}"#,
        r#"{"d": 0, "t": 9223372036854775807}"#,
    ] {
        let e = s
            .render(WireEncoding::Json, body.as_bytes(), 1 << 20, 64)
            .unwrap_err();
        assert_eq!(e.code, ReasonCode::UndecodableRecord, "{}", e.reason);
    }
    // 1,000 empty submessages (2 bytes each) of a message with many fields: every field of
    // each is written, so the JSON is far larger than the body; the cap stops it.
    let fields: String = (1..=40).map(|i| format!("string f{i} = {i};\n")).collect();
    let proto = format!(
        "syntax = \"proto3\";\nmessage Outer {{\n  message Inner {{\n{fields}  }}\n  repeated Inner items = 1;\n}}\n"
    );
    let p = RecordSchema::protobuf(&proto, None, "p").unwrap();
    let body: Vec<u8> = std::iter::repeat_n([0x0a_u8, 0x00], 1000)
        .flatten()
        .collect();
    let e = p
        .render(WireEncoding::Binary, &body, 64 * 1024, 64)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::TooLarge, "{}", e.reason);
    assert!(p.render(WireEncoding::Binary, &body, 1 << 20, 64).is_ok());
}

#[test]
fn a_decimal_in_a_wide_fixed_round_trips_and_one_too_wide_for_it_is_refused() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "M", "fields": [{"name": "amount", "type":
            {"type": "fixed", "name": "F", "size": 20, "logicalType": "decimal", "precision": 40, "scale": 2}}]}"#,
        "r",
    )
    .unwrap();
    for amount in ["-1.23", "12345678901234567890.50"] {
        let body = s
            .encode(WireEncoding::Binary, &json!({"amount": amount}))
            .unwrap();
        assert_eq!(body.len(), 20);
        let back = s.render(WireEncoding::Binary, &body, 1024, 64).unwrap();
        assert_eq!(parse(&back), json!({"amount": amount}));
    }
    let narrow = RecordSchema::avro(
        r#"{"type": "record", "name": "M", "fields": [{"name": "amount", "type":
            {"type": "fixed", "name": "F", "size": 1, "logicalType": "decimal", "precision": 2, "scale": 0}}]}"#,
        "r",
    )
    .unwrap();
    let e = narrow
        .encode(WireEncoding::Binary, &json!({"amount": "300"}))
        .unwrap_err();
    assert!(e.contains("does not fit 1 bytes"), "{e}");
}

/// Integers either side of the ones written from two digits at once, as numbers and as
/// the quoted strings of 64-bit integers: the text `itoa` writes.
#[test]
fn integers_around_the_two_digit_writes_render_as_the_reference() {
    let mut cases: Vec<i64> = (-120..=120).collect();
    cases.extend([255, 256, 999, 1_000, i64::MIN, i64::MAX]);
    for n in cases {
        let mut w = read::Writer::new(&[], &[], Vec::new(), 1 << 10, 8, Wanted::default());
        w.int(n).unwrap();
        w.raw(b" ").unwrap();
        w.quoted_int(n).unwrap();
        // Unsigned ones too (`uint32`, `uint64`, `fixed64`).
        if let Ok(n) = u32::try_from(n) {
            w.raw(b" ").unwrap();
            w.int(n).unwrap();
            w.raw(b" ").unwrap();
            w.quoted_int(u64::from(n)).unwrap();
        }
        let want = match u32::try_from(n) {
            Ok(_) => format!("{n} \"{n}\" {n} \"{n}\""),
            Err(_) => format!("{n} \"{n}\""),
        };
        assert_eq!(String::from_utf8(w.out).unwrap(), want);
    }
}

#[test]
fn doubles_read_back_exactly() {
    let nodes = [Node::Double];
    let mut cases = vec![
        0.0,
        -0.0,
        0.1 + 0.2,
        4.35,
        -4.35,
        0.07,
        2.0,
        1.5,
        123.4,
        8.9e13,
        9.0e13,
        1e-7,
        5e-324,
        f64::MAX,
        f64::MIN_POSITIVE,
        1.0 / 3.0,
        -12_345_678_901.99,
        // Found in review: above 2^46 the hundredths may differ in the last digit.
        80_000_000_000_000.23,
        70_368_744_177_663.99,
        70_368_744_177_664.01,
    ];
    // Hundredths across the magnitudes, and their neighbours (not such decimals).
    for c in [
        1_u64,
        7,
        99,
        105,
        1_000,
        1_010,
        1_999,
        9_999,
        10_000,
        10_001,
        123_456,
        99_999_999,
        8_999_999_999_999_999,
    ] {
        let f = c as f64 / 100.0;
        cases.extend([f, -f, f.next_up(), f.next_down()]);
    }
    for f in cases {
        let mut w = read::Writer::new(&nodes, &[], Vec::new(), 1 << 10, 8, Wanted::default());
        w.binary(
            0,
            &mut read::Input {
                body: &f.to_le_bytes(),
                at: 0,
            },
            0,
        )
        .unwrap_or_else(|_| panic!("{f:?}"));
        let back: f64 = serde_json::from_slice(&w.out).unwrap();
        assert_eq!(
            back.to_bits(),
            f.to_bits(),
            "{f:?} written as {}",
            String::from_utf8_lossy(&w.out)
        );
        // The very text the general (shortest-digits) writer writes.
        let general = serde_json::to_string(&f).unwrap();
        assert_eq!(String::from_utf8_lossy(&w.out), general, "{f:?}");
    }
}

const PROTO_ALL: &str = r#"syntax = "proto3";
package t;
import "google/protobuf/timestamp.proto";
import "google/protobuf/duration.proto";
import "google/protobuf/wrappers.proto";
message All {
  enum Colour { COLOUR_UNSPECIFIED = 0; RED = 1; BLUE = 2; }
  message Inner { string s = 1; int32 i = 2; repeated Inner children = 3; Colour c = 4; }
  double d = 1; float f = 2; int32 i32 = 3; int64 i64 = 4; uint32 u32 = 5; uint64 u64 = 6;
  sint32 s32 = 7; sint64 s64 = 8; fixed32 fx32 = 9; fixed64 fx64 = 10; sfixed32 sf32 = 11;
  sfixed64 sf64 = 12; bool b = 13; string s = 14; bytes by = 15; Colour c = 16;
  Inner inner = 17;
  repeated int32 packed = 18;
  repeated int32 unpacked = 19 [packed = false];
  repeated string names = 20;
  repeated Inner inners = 21;
  repeated double ds = 22;
  repeated Colour cs = 23;
  map<string, int64> counts = 24;
  map<int32, Inner> by_id = 25;
  map<bool, Colour> flags = 26;
  oneof choice { string text = 27; Inner nested = 28; int64 number = 29; }
  optional int32 maybe = 30;
  google.protobuf.Timestamp at = 31;
  google.protobuf.Duration took = 32;
  google.protobuf.Int64Value wrapped = 33;
  google.protobuf.StringValue label = 34;
}
"#;

/// A message of `desc` with some fields set from `next`, nested at most `depth` deep.
fn random_message(
    desc: &prost_reflect::MessageDescriptor,
    next: &mut impl FnMut() -> u64,
    depth: usize,
) -> prost_reflect::DynamicMessage {
    use prost_reflect::{Kind, MapKey, Value};
    fn scalar(kind: &Kind, next: &mut impl FnMut() -> u64, depth: usize) -> Option<Value> {
        let r = next();
        Some(match kind {
            Kind::Double => Value::F64([0.0, -1.5, 1e300, 4.35, f64::NAN][r as usize % 5]),
            Kind::Float => Value::F32([0.0, 1.1, -2.5e-8, f32::INFINITY][r as usize % 4]),
            Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Value::I32(r as i32),
            Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                Value::I64((r as i64).wrapping_sub(1 << 62))
            }
            Kind::Uint32 | Kind::Fixed32 => Value::U32(r as u32),
            Kind::Uint64 | Kind::Fixed64 => Value::U64(r.wrapping_mul(r)),
            Kind::Bool => Value::Bool(r.is_multiple_of(2)),
            Kind::String => Value::String(["", "é\"\\\n", "plain"][r as usize % 3].to_string()),
            Kind::Bytes => Value::Bytes(bytes::Bytes::from(vec![r as u8; (r % 5) as usize])),
            // Values 0–2 are named; 7 is not.
            Kind::Enum(_) => Value::EnumNumber([0, 1, 2, 7][r as usize % 4]),
            Kind::Message(m) if m.full_name() == "google.protobuf.Timestamp" => {
                let mut t = prost_reflect::DynamicMessage::new(m.clone());
                t.set_field_by_name(
                    "seconds",
                    Value::I64((r % 4_000_000_000) as i64 - 1_000_000_000),
                );
                t.set_field_by_name(
                    "nanos",
                    Value::I32([0, 5_000_000, 123_456_000, 7][r as usize % 4]),
                );
                Value::Message(t)
            }
            Kind::Message(m) if m.full_name() == "google.protobuf.Duration" => {
                let mut t = prost_reflect::DynamicMessage::new(m.clone());
                let s = (r % 1000) as i64 - 500;
                t.set_field_by_name("seconds", Value::I64(s));
                t.set_field_by_name(
                    "nanos",
                    Value::I32(if s < 0 { -1_000 } else { 500_000_000 }),
                );
                Value::Message(t)
            }
            Kind::Message(m) if depth > 0 => Value::Message(random_message(m, next, depth - 1)),
            Kind::Message(_) => return None,
        })
    }
    let mut msg = prost_reflect::DynamicMessage::new(desc.clone());
    for f in desc.fields() {
        if next().is_multiple_of(3) {
            continue;
        }
        let value = if f.is_map() {
            let Kind::Message(entry) = f.kind() else {
                unreachable!()
            };
            let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let mut map = std::collections::HashMap::new();
            for _ in 0..next() % 4 {
                let key = match kf.kind() {
                    Kind::String => MapKey::String(format!("k{}", next() % 3)),
                    Kind::Bool => MapKey::Bool(next().is_multiple_of(2)),
                    _ => MapKey::I32((next() % 3) as i32),
                };
                if let Some(v) = scalar(&vf.kind(), next, depth) {
                    map.insert(key, v);
                }
            }
            Value::Map(map)
        } else if f.is_list() {
            let items = (0..next() % 4)
                .filter_map(|_| scalar(&f.kind(), next, depth))
                .collect();
            Value::List(items)
        } else {
            match scalar(&f.kind(), next, depth) {
                Some(v) => v,
                None => continue,
            }
        };
        msg.set_field(&f, value);
    }
    msg
}

/// The wire reader writes what the dynamic message writes (`prost-reflect`, the reference),
/// for random messages of every field type, and for two encodings concatenated (the wire
/// format's merge: last scalar wins, messages merged, lists appended, oneof last set).
#[test]
fn the_protobuf_wire_reader_agrees_with_the_dynamic_message() {
    let s = RecordSchema::protobuf(PROTO_ALL, None, "p").unwrap();
    let Kind::Protobuf { message, plan } = &s.kind else {
        unreachable!()
    };
    assert!(
        plan.is_some(),
        "every type of this schema is read by the wire reader"
    );
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut previous: Vec<u8> = Vec::new();
    let (mut compared, mut refused) = (0, 0);
    for round in 0..400 {
        let m = random_message(message, &mut next, 2);
        let body = prost::Message::encode_to_vec(&m);
        let mut bodies = vec![body.clone()];
        if round % 4 == 0 {
            bodies.push([previous.as_slice(), body.as_slice()].concat());
        }
        if round % 4 == 1 {
            // Its fields in reverse order: read through the scan.
            let mut fields: Vec<Vec<u8>> = m
                .fields()
                .map(|(f, v)| {
                    let mut one = prost_reflect::DynamicMessage::new(message.clone());
                    one.set_field(&f, v.clone());
                    prost::Message::encode_to_vec(&one)
                })
                .collect();
            fields.reverse();
            bodies.push(fields.concat());
        }
        previous = body;
        for body in bodies {
            let reference = proto::render(message, false, &body, 1 << 20)
                .map(|j| serde_json::from_slice::<serde_json::Value>(&j).unwrap());
            let ours = s.render(WireEncoding::Binary, &body, 1 << 20, 64);
            match (reference, ours) {
                (Ok(want), Ok(got)) => {
                    assert_eq!(parse(&got), want, "round {round}: {m:?}");
                    compared += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                (want, got) => panic!("round {round}: {m:?}\nreference {want:?}\nours {got:?}"),
            }
        }
    }
    // Most bodies are read by both (Timestamps and Durations out of range are refused).
    assert!(
        compared > 400,
        "{compared} compared, {refused} refused by both"
    );
}

#[test]
fn the_protobuf_wire_reader_refuses_what_is_not_a_message() {
    let s = RecordSchema::protobuf(PROTO_ALL, None, "p").unwrap();
    for (body, why) in [
        (&[0x0a_u8, 0x05, 0x00][..], "a length beyond the body"),
        (&[0x08, 0xff], "a varint cut short"),
        (&[0x00, 0x01], "field number 0"),
        (&[0x0c], "an end-group tag outside a group"),
        (&[0x72, 0x02, 0xff, 0xfe], "a string that is not UTF-8"),
        (
            &[0x8a, 0x01, 0x01, 0x08],
            "a message whose inside is cut short",
        ),
        (&[0x0d, 0, 0, 0, 0], "a double with a 32-bit wire type"),
    ] {
        let e = s
            .render(WireEncoding::Binary, body, 1 << 20, 64)
            .unwrap_err();
        assert_eq!(e.code, ReasonCode::UndecodableRecord, "{why}: {}", e.reason);
    }
    // A list of 2^40 claimed elements costs nothing until its bytes are there.
    let e = s
        .render(
            WireEncoding::Binary,
            &[0x92, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
            1 << 20,
            64,
        )
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::UndecodableRecord);
    // Nesting stops at the limit.
    let mut deep = Vec::new();
    for _ in 0..100 {
        let mut outer = vec![0x1a_u8];
        prost::encoding::encode_varint(deep.len() as u64, &mut outer);
        outer.extend_from_slice(&deep);
        deep = outer;
    }
    let mut body = vec![0x8a_u8, 0x01];
    prost::encoding::encode_varint(deep.len() as u64, &mut body);
    body.extend_from_slice(&deep);
    let e = s
        .render(WireEncoding::Binary, &body, 1 << 20, 64)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::TooDeep, "{}", e.reason);
}

/// Found in review: an Avro `duration` is an object, one level of nesting the parse counted
/// (the envelope no longer parses a rendered record); a string of control characters may
/// escape to six times its size, past the output cap.
#[test]
fn a_duration_nests_and_escapes_stop_at_the_cap() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "R", "fields": [{"name": "d", "type":
            {"type": "fixed", "name": "D", "size": 12, "logicalType": "duration"}}]}"#,
        "r",
    )
    .unwrap();
    let e = s
        .render(WireEncoding::Binary, &[0; 12], 1024, 1)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::TooDeep, "{}", e.reason);
    assert!(s.render(WireEncoding::Binary, &[0; 12], 1024, 2).is_ok());
    let text = RecordSchema::avro(
        r#"{"type": "record", "name": "T", "fields": [{"name": "t", "type": "string"}]}"#,
        "r",
    )
    .unwrap();
    let mut body = vec![0xc8, 0x01]; // 100, zig-zag
    body.extend([1_u8; 100]);
    let e = text
        .render(WireEncoding::Binary, &body, 200, 8)
        .unwrap_err();
    assert_eq!(e.code, ReasonCode::TooLarge, "{}", e.reason);
    let fits = text.render(WireEncoding::Binary, &body, 700, 8).unwrap();
    assert_eq!(parse(&fits)["t"].as_str().unwrap().len(), 100);
}

/// Found in review of the wire reader: encodings where it differed from the reference
/// (`prost-reflect`). Each must now give the reference's answer, a value or a refusal.
#[test]
fn the_protobuf_wire_reader_agrees_on_the_cases_found_in_review() {
    let sub = "message Sub { int32 x = 1; int32 y = 2; }\n";
    let nine_ff = [0xff_u8; 9];
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "a oneof member set again after another member clears what it held",
            format!("{sub}message M {{ oneof o {{ Sub a = 1; int32 b = 2; }} }}"),
            vec![0x0a, 0x02, 0x08, 0x01, 0x10, 0x05, 0x0a, 0x02, 0x10, 0x02],
        ),
        (
            "a map entry's message value sent twice is merged",
            format!("{sub}message M {{ map<string, Sub> m = 1; }}"),
            vec![0x0a, 0x0b, 0x0a, 0x01, b'k', 0x12, 0x02, 0x08, 0x01, 0x12, 0x02, 0x10, 0x02],
        ),
        (
            "an unsigned map key absent and zero are one key",
            "message M { map<uint32, string> m = 1; }".into(),
            vec![0x0a, 0x05, 0x08, 0x00, 0x12, 0x01, b'b', 0x0a, 0x03, 0x12, 0x01, b'a'],
        ),
        (
            "an aliased enum number is named as the reference names it",
            "enum E { option allow_alias = true; Z = 0; ONE = 1; UNO = 1; }\nmessage M { E e = 1; }"
                .into(),
            vec![0x08, 0x01],
        ),
        (
            "a DoubleValue that is NaN",
            "import \"google/protobuf/wrappers.proto\";\nmessage M { google.protobuf.DoubleValue d = 1; }"
                .into(),
            vec![0x0a, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f],
        ),
        (
            "a Timestamp with negative nanos",
            "import \"google/protobuf/timestamp.proto\";\nmessage M { google.protobuf.Timestamp t = 1; }"
                .into(),
            [&[0x0a_u8, 0x0b, 0x10][..], &nine_ff, &[0x01]].concat(),
        ),
        (
            "a Duration of mixed signs",
            "import \"google/protobuf/duration.proto\";\nmessage M { google.protobuf.Duration d = 1; }"
                .into(),
            [&[0x0a_u8, 0x0d, 0x08, 0x01, 0x10][..], &nine_ff, &[0x01]].concat(),
        ),
        (
            "an earlier string value that is not UTF-8",
            "message M { string s = 1; }".into(),
            vec![0x0a, 0x01, 0xff, 0x0a, 0x01, b'A'],
        ),
        (
            "an earlier value of the wrong wire type",
            "message M { int32 i = 1; }".into(),
            vec![0x0d, 0, 0, 0, 0, 0x08, 0x01],
        ),
        (
            "a varint beyond 64 bits",
            "message M { int64 v = 1; }".into(),
            [&[0x08_u8][..], &nine_ff, &[0x7f]].concat(),
        ),
        (
            "a oneof member that lost, not UTF-8",
            "message M { oneof o { string a = 1; int32 b = 2; } }".into(),
            vec![0x0a, 0x01, 0xff, 0x10, 0x01],
        ),
    ];
    for (why, schema, body) in cases {
        agrees_with_the_reference(why, &schema, &body);
    }
}

/// Encodings most encoders do not write: read again from the start through the scan.
#[test]
fn the_protobuf_wire_reader_agrees_on_encodings_it_reads_twice() {
    let cases: Vec<(&str, String, Vec<u8>)> = vec![
        (
            "a Timestamp out of range that a later occurrence overrides",
            "import \"google/protobuf/timestamp.proto\";\nmessage M { google.protobuf.Timestamp t = 1; }"
                .into(),
            vec![
                0x0a, 0x07, 0x08, 0x80, 0x83, 0xd1, 0xff, 0xaf, 0x07, 0x0a, 0x02, 0x08, 0x01,
            ],
        ),
        (
            "fields out of field order",
            "message M { int32 a = 1; string b = 2; }".into(),
            vec![0x12, 0x01, b'x', 0x08, 0x05],
        ),
        (
            "a repeated field's values with another field between them",
            "message M { repeated int32 r = 1; int32 a = 2; }".into(),
            vec![0x08, 0x01, 0x10, 0x02, 0x08, 0x03],
        ),
    ];
    for (why, schema, body) in cases {
        agrees_with_the_reference(why, &schema, &body);
    }
}

/// Message `M` of `schema` encoded in `body`: rendered as the reference renders it, or
/// refused by both.
fn agrees_with_the_reference(why: &str, schema: &str, body: &[u8]) {
    let proto = format!("syntax = \"proto3\";\n{schema}\n");
    let s = RecordSchema::protobuf(&proto, Some("M"), "p").unwrap();
    let Kind::Protobuf { message, plan } = &s.kind else {
        unreachable!()
    };
    assert!(plan.is_some(), "{why}: read by the wire reader");
    let reference = proto::render(message, false, body, 1 << 20)
        .map(|j| serde_json::from_slice::<serde_json::Value>(&j).unwrap());
    let ours = s.render(WireEncoding::Binary, body, 1 << 20, 64);
    match (reference, ours) {
        (Ok(want), Ok(got)) => assert_eq!(parse(&got), want, "{why}"),
        (Err(_), Err(_)) => {}
        (want, got) => panic!("{why}\nreference {want:?}\nours {got:?}"),
    }
}

/// The member of a member the envelope reads (the object id) is noted while the record is
/// written, when the outer member is a record; not when it is something else.
#[test]
fn the_object_id_one_level_down_is_noted_as_it_is_written() {
    let s = RecordSchema::avro(
        r#"{"type": "record", "name": "E", "fields": [
            {"name": "event_id", "type": "string"},
            {"name": "payload", "type": ["null", {"type": "record", "name": "P", "fields": [
                {"name": "items", "type": {"type": "array", "items": {"type": "record",
                    "name": "I", "fields": [{"name": "id", "type": "string"}]}}},
                {"name": "id", "type": "string"}]}]},
            {"name": "tags", "type": {"type": "map", "values": "string"}}]}"#,
        "r",
    )
    .unwrap();
    let value = json!({"event_id": "e1", "payload": {"items": [{"id": "not-this"}], "id": "o-7"},
                       "tags": {"id": "nor-this"}});
    let body = s.encode(WireEncoding::Binary, &value).unwrap();
    payload_id_is_noted(&s, &body);
    let null = s
        .encode(
            WireEncoding::Binary,
            &json!({"event_id": "e2", "payload": null, "tags": {}}),
        )
        .unwrap();
    assert_eq!(
        noting(&s, &null, Some(("payload", "id"))).inner,
        None,
        "a null union: not noted"
    );
}

/// The same for a Protocol Buffer record, read in one pass or (fields out of order) through
/// the scan.
#[test]
fn the_object_id_one_level_down_is_noted_in_a_protobuf_record() {
    let s = RecordSchema::protobuf(
        r#"syntax = "proto3";
        message P { message I { string id = 1; } repeated I items = 1; string id = 2; }
        message E { string event_id = 1; P payload = 2; map<string, string> tags = 3; }"#,
        Some("E"),
        "r",
    )
    .unwrap();
    let payload = json!({"payload": {"items": [{"id": "not-this"}], "id": "o-7"}});
    let in_order = s
        .encode(
            WireEncoding::Binary,
            &json!({"event_id": "e1", "payload": payload["payload"], "tags": {"id": "nor-this"}}),
        )
        .unwrap();
    let reversed = [
        s.encode(WireEncoding::Binary, &json!({"tags": {"id": "nor-this"}}))
            .unwrap(),
        s.encode(WireEncoding::Binary, &payload).unwrap(),
        s.encode(WireEncoding::Binary, &json!({"event_id": "e1"}))
            .unwrap(),
    ]
    .concat();
    for body in [in_order, reversed] {
        payload_id_is_noted(&s, &body);
    }
    let without = s
        .encode(WireEncoding::Binary, &json!({"event_id": "e2"}))
        .unwrap();
    assert_eq!(
        noting(&s, &without, Some(("payload", "id"))).inner,
        None,
        "an absent message: not noted"
    );
}

/// `payload.id` of the record in `body` is noted where it was written (`"o-7"`); a missing
/// member as missing; a map's or a string's members not at all.
fn payload_id_is_noted(s: &RecordSchema, body: &[u8]) {
    let noted = |inner| noting(s, body, inner);
    let r = noted(Some(("payload", "id")));
    let at = r.inner.clone().expect("noted").expect("present");
    assert_eq!(&r.json[at], br#""o-7""#);
    assert_eq!(noted(Some(("payload", "absent"))).inner, Some(None));
    assert_eq!(noted(Some(("tags", "id"))).inner, None, "a map: not noted");
    assert_eq!(
        noted(Some(("event_id", "id"))).inner,
        None,
        "a string: not noted"
    );
    assert_eq!(noted(None).inner, None);
}

/// The binary record `body` rendered, noting member `inner.1` of member `inner.0`.
fn noting(s: &RecordSchema, body: &[u8], inner: Option<(&str, &str)>) -> Rendered {
    rendered(
        s,
        body,
        Wanted {
            inner,
            event_time: None,
        },
    )
}

/// The binary record `body` rendered, noting what is `wanted`.
fn rendered(s: &RecordSchema, body: &[u8], wanted: Wanted<'_>) -> Rendered {
    s.render_noting(WireEncoding::Binary, body, 1 << 20, 64, wanted)
        .unwrap()
}

/// The word-at-a-time string scan agrees with the byte-at-a-time definition for every byte
/// value at every position of strings up to a window long, whatever follows them.
#[test]
fn the_string_scan_finds_every_byte_to_escape_or_check() {
    for n in 0..=read::WINDOW {
        for at in 0..read::WINDOW {
            for c in 0..=255_u8 {
                let mut window = [b'a'; read::WINDOW];
                window[at] = c;
                let s = &window[..n];
                let plain = s
                    .iter()
                    .all(|&c| (0x20..0x80).contains(&c) && c != b'"' && c != b'\\');
                assert_eq!(
                    read::plain_ascii(&window, n),
                    plain,
                    "{n} bytes, {c:#04x} at {at}"
                );
            }
        }
    }
}

/// Keys and strings either side of the lengths copied at once (a key of up to 31 bytes with
/// its comma, quotes and colon; a string of up to a window with a window of body after its
/// start), with escapes, wide characters and the body's end among them: written as the
/// reference writes them.
#[test]
fn keys_and_strings_around_the_fixed_copy_lengths_render_as_the_reference() {
    let name = |c: char, n: usize| c.to_string().repeat(n);
    let schema = format!(
        "message M {{ string {} = 1; string {} = 2; string {} = 3; string {} = 4; \
         string e = 5; }}",
        name('a', 26),
        name('b', 27),
        name('c', 28),
        name('d', 40)
    );
    let field = |number: u8, s: &str| {
        let mut b = vec![number << 3 | 2, u8::try_from(s.len()).unwrap()];
        b.extend_from_slice(s.as_bytes());
        b
    };
    let strings: [[String; 5]; 3] = [
        [
            name('x', 31),
            name('y', 32),
            name('z', 33),
            name('w', 1),
            name('v', 32),
        ],
        [
            format!("é{}", name('y', 29)),
            format!("{}\"", name('q', 31)),
            format!("\u{1}{}", name('r', 30)),
            String::new(),
            format!("{}\\", name('s', 30)),
        ],
        [
            name('k', 8),
            name('l', 16),
            format!("{}ü", name('m', 29)),
            name('n', 2),
            "€".into(),
        ],
    ];
    for (i, values) in strings.iter().enumerate() {
        let body: Vec<u8> = values
            .iter()
            .zip(1..)
            .flat_map(|(s, n)| field(n, s))
            .collect();
        agrees_with_the_reference(&format!("strings {i}"), &schema, &body);
    }
}

/// The event time is noted only for a `Timestamp` that is the value of the top-level member
/// asked for, in the one pass and through the scan alike (the last of repeated occurrences),
/// normalised: never for one nested, repeated or in a map, a `Duration`, or another member.
#[test]
fn the_event_time_is_noted_only_for_the_top_level_timestamp_asked_for() {
    let s = RecordSchema::protobuf(
        "syntax = \"proto3\";\nimport \"google/protobuf/timestamp.proto\";\n\
         import \"google/protobuf/duration.proto\";\n\
         message Inner { google.protobuf.Timestamp t = 1; }\n\
         message M { google.protobuf.Timestamp t = 1; Inner inner = 2;\n\
         repeated google.protobuf.Timestamp many = 3;\n\
         map<string, google.protobuf.Timestamp> by = 4; google.protobuf.Duration d = 5;\n\
         string s = 6; }\n",
        Some("M"),
        "r1",
    )
    .unwrap();
    let field = |n: u8, bytes: &[u8]| [&[n << 3 | 2, bytes.len() as u8][..], bytes].concat();
    // 1,000,000 s and 2,500 ns (0x0f4240, 0x09c4), as varints.
    let time = [0x08, 0xc0, 0x84, 0x3d, 0x10, 0xc4, 0x13];
    let noted = |body: &[u8], want: &str| {
        let wanted = Wanted {
            inner: None,
            event_time: Some(want),
        };
        rendered(&s, body, wanted).event_time_us
    };
    let us = Some(1_000_000_000_002);
    assert_eq!(noted(&field(1, &time), "t"), us, "in one pass");
    assert_eq!(
        noted(&field(1, &time), "s"),
        None,
        "another member asked for"
    );
    // Out of field order, then sent twice: read through the scan, the last one kept.
    let scanned = [field(6, b"x"), field(1, &[0x08, 0x01]), field(1, &time)].concat();
    assert_eq!(noted(&scanned, "t"), us, "through the scan");
    let unnormalised = field(1, &[0x08, 0x01, 0x10, 0xff, 0xff, 0xff, 0xff, 0x0f]);
    assert_eq!(noted(&unnormalised, "t"), None, "nanos out of range");
    assert_eq!(noted(&field(2, &field(1, &time)), "inner"), None, "nested");
    assert_eq!(noted(&field(3, &time), "many"), None, "repeated");
    let entry = [field(1, b"k"), field(2, &time)].concat();
    assert_eq!(noted(&field(4, &entry), "by"), None, "in a map");
    assert_eq!(noted(&field(5, &time), "d"), None, "a Duration");
}
