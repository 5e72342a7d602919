//! Wire formats (issue 27): bytes on the wire and decode cost per event, plain JSON vs gzip vs
//! zstd, for the shipped sample events and for realistic orders of 1 KiB and 16 KiB; and the
//! same orders as Avro records of a schema'd topic (binary and JSON encoding) against the
//! plain JSON decode of the same object. `cargo bench --bench compression`; the sizes are
//! printed before criterion's timings.

#[allow(dead_code)] // `payload` is for the other benches
mod common;

use common::{decoder, message};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use mesh_ingest::envelope::encoding::{CONTENT_ENCODING, ContentEncoding, compress};
use mesh_ingest::pipeline::ReceivedMessage;
use std::hint::black_box;

/// After the sample events' times (2026-11-24), so none is in the future.
const NOW: i64 = 1_800_000_000_000_000;

const ENCODINGS: [Option<ContentEncoding>; 3] = [
    None,
    Some(ContentEncoding::Gzip),
    Some(ContentEncoding::Zstd),
];

/// `(case, envelope yaml, body)`: the shipped sample events, then realistic orders.
fn bodies() -> Vec<(String, &'static str, String)> {
    let order_env = "envelope:\n  format: json\n  object_id: payload.order_id\n";
    let ce_env = "envelope:\n  format: cloudevents\n";
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let orders = std::fs::read_to_string(format!("{root}/orders.jsonl")).unwrap();
    let customers = std::fs::read_to_string(format!("{root}/customers.jsonl")).unwrap();
    let mut out = vec![(
        "sample order".to_string(),
        order_env,
        orders.lines().next().unwrap().to_string(),
    )];
    let customer: serde_json::Value =
        serde_json::from_str(customers.lines().next().unwrap()).unwrap();
    out.push((
        "sample customer".into(),
        ce_env,
        customer["data"].to_string(),
    ));
    for size in [1024, 16 * 1024] {
        let envelope = serde_json::json!({"event_id": "ord-evt-0001", "event_type": "OrderUpdated",
            "event_time": "2026-11-24T09:00:00.000001Z", "payload": realistic_order(size)});
        out.push((
            format!("order {} KiB", size / 1024),
            order_env,
            envelope.to_string(),
        ));
    }
    out
}

fn compressed(body: &str, encoding: Option<ContentEncoding>) -> ReceivedMessage {
    match encoding {
        None => message(body.to_string(), &[]),
        Some(e) => {
            let mut m = message(String::new(), &[(CONTENT_ENCODING, e.as_str())]);
            m.data = compress(e, body.as_bytes());
            m
        }
    }
}

fn per_event(c: &mut Criterion) {
    for (case, envelope, body) in bodies() {
        let d = decoder(envelope);
        let sizes: Vec<String> = ENCODINGS
            .iter()
            .map(|e| compressed(&body, *e).data.len().to_string())
            .collect();
        println!("body bytes, {case}: plain gzip zstd = {}", sizes.join(" "));
        let mut group = c.benchmark_group(format!("compressed/{case}"));
        for encoding in ENCODINGS {
            let m = compressed(&body, encoding);
            let name = encoding.map_or("plain", ContentEncoding::as_str);
            group.bench_function(format!("decode/{name}"), |b| {
                b.iter_batched(
                    || m.clone(),
                    |m| black_box(d.decode(m, NOW).unwrap()),
                    BatchSize::SmallInput,
                )
            });
        }
        for encoding in [ContentEncoding::Gzip, ContentEncoding::Zstd] {
            group.bench_function(format!("compress/{}", encoding.as_str()), |b| {
                b.iter(|| black_box(compress(encoding, black_box(body.as_bytes()))))
            });
        }
        group.finish();
    }
}

/// The realistic order's envelope as an Avro record.
const ORDER_AVSC: &str = r#"{"type": "record", "name": "OrderEvent", "fields": [
  {"name": "event_id", "type": "string"},
  {"name": "event_type", "type": "string"},
  {"name": "event_time", "type": {"type": "long", "logicalType": "timestamp-micros"}},
  {"name": "payload", "type": {"type": "record", "name": "Order", "fields": [
    {"name": "order_id", "type": "string"}, {"name": "customer_id", "type": "string"},
    {"name": "status", "type": "string"}, {"name": "channel", "type": "string"},
    {"name": "created_at", "type": "string"},
    {"name": "delivery", "type": {"type": "record", "name": "Address", "fields": [
      {"name": "name", "type": "string"}, {"name": "street", "type": "string"},
      {"name": "city", "type": "string"}, {"name": "postcode", "type": "string"},
      {"name": "country", "type": "string"}]}},
    {"name": "price", "type": {"type": "record", "name": "Price", "fields": [
      {"name": "amount", "type": "double"}, {"name": "currency", "type": "string"}]}},
    {"name": "items", "type": {"type": "array", "items": {"type": "record", "name": "Item", "fields": [
      {"name": "sku", "type": "string"}, {"name": "name", "type": "string"},
      {"name": "qty", "type": "long"}, {"name": "unit_price", "type": "double"},
      {"name": "warehouse", "type": "string"}]}}}]}}]}"#;

/// The same order as a Protocol Buffer message.
const ORDER_PROTO: &str = r#"syntax = "proto3";
import "google/protobuf/timestamp.proto";
message OrderEvent {
  string event_id = 1;
  string event_type = 2;
  google.protobuf.Timestamp event_time = 3;
  Order payload = 4;
}
message Order {
  string order_id = 1; string customer_id = 2; string status = 3; string channel = 4;
  string created_at = 5;
  message Address { string name = 1; string street = 2; string city = 3; string postcode = 4;
                    string country = 5; }
  Address delivery = 6;
  message Price { double amount = 1; string currency = 2; }
  Price price = 7;
  message Item { string sku = 1; string name = 2; int64 qty = 3; double unit_price = 4;
                 string warehouse = 5; }
  repeated Item items = 8;
}
"#;

/// Avro binary and JSON records, and Protocol Buffer binary ones, of a schema'd topic against
/// the plain JSON of the same order.
fn records(c: &mut Criterion) {
    use mesh_ingest::envelope::record::{RecordSchema, WireEncoding};
    let dir = std::env::temp_dir().join(format!("mesh-bench-avro-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order.avsc"), ORDER_AVSC).unwrap();
    std::fs::write(dir.join("order.proto"), ORDER_PROTO).unwrap();
    let yaml = |kind: &str, file: &str, encoding: &str| {
        let message = if kind == "protobuf" {
            "  message: OrderEvent\n"
        } else {
            ""
        };
        format!(
            "name: bench\nsubscription: bench-sub\ningest_table: d.i\ndead_letter_table: d.dl\n\
             envelope:\n  format: json\n  object_id: payload.order_id\n\
             topic_schema:\n  type: {kind}\n  file: {file}\n  encoding: {encoding}\n{message}"
        )
    };
    let avro = RecordSchema::avro(ORDER_AVSC, "bench").unwrap();
    let proto = RecordSchema::protobuf(ORDER_PROTO, Some("OrderEvent"), "bench").unwrap();
    for size in [1024, 16 * 1024] {
        let json = serde_json::json!({"event_id": "ord-evt-0001", "event_type": "OrderUpdated",
            "event_time": "2026-11-24T09:00:00.000001Z", "payload": realistic_order(size)});
        let mut group = c.benchmark_group(format!("records/order {} KiB", size / 1024));
        let plain = message(json.to_string(), &[]);
        let d = decoder("envelope:\n  format: json\n  object_id: payload.order_id\n");
        decode_both_ways(&mut group, "json", &d, &plain);
        for (name, kind, file, encoding, schema) in [
            (
                "avro_binary",
                "avro",
                "order.avsc",
                WireEncoding::Binary,
                &avro,
            ),
            ("avro_json", "avro", "order.avsc", WireEncoding::Json, &avro),
            (
                "protobuf_binary",
                "protobuf",
                "order.proto",
                WireEncoding::Binary,
                &proto,
            ),
        ] {
            let wire = if encoding == WireEncoding::Binary {
                "binary"
            } else {
                "json"
            };
            let text = yaml(kind, file, wire);
            let object = mesh_ingest::configuration::ObjectSettings::parse(
                &text,
                &dir.join("bench.yaml"),
                "p",
            )
            .unwrap();
            let d = mesh_ingest::source::decoder_for(&object).unwrap();
            let mut m = message(String::new(), &[]);
            m.data = schema.encode(encoding, &json).unwrap().into();
            println!(
                "body bytes, order {} KiB: JSON {} {name} {}",
                size / 1024,
                plain.data.len(),
                m.data.len()
            );
            decode_both_ways(&mut group, name, &d, &m);
        }
        group.finish();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// `decode/…`: rows kept until criterion's batch ends, so the heap is trimmed between
/// batches and a row's newly allocated memory (a rendered record's JSON; a plain JSON row
/// only slices its body) is faulted in again. `decode_warm/…`: each row dropped as it is
/// made, the heap warm, as in a service that recycles its batches' memory.
fn decode_both_ways(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    d: &mesh_ingest::envelope::Decoder,
    m: &ReceivedMessage,
) {
    group.bench_function(format!("decode/{name}"), |b| {
        b.iter_batched(
            || m.clone(),
            |m| black_box(d.decode(m, NOW).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.bench_function(format!("decode_warm/{name}"), |b| {
        b.iter(|| black_box(d.decode(black_box(m.clone()), NOW).unwrap()))
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(300))
        .measurement_time(std::time::Duration::from_secs(1))
        .sample_size(20);
    targets = per_event, records
}
criterion_main!(benches);

/// An order as a shop would publish it, about `size` bytes: line items with varied SKUs,
/// names, quantities and prices, and a delivery address (deterministic). Unlike
/// `common::payload`'s padding, this compresses like a real domain object.
fn realistic_order(size: usize) -> serde_json::Value {
    const NAMES: [&str; 8] = [
        "Assam tea, loose leaf",
        "Ceramic mug, 350 ml",
        "Espresso beans, 1 kg",
        "Milk frother",
        "Oat biscuits",
        "Glass teapot with infuser",
        "Dark chocolate 70%",
        "Linen napkins, set of 4",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        seed >> 33
    };
    let mut order = serde_json::json!({
        "order_id": "o-20261124-0042317", "customer_id": "c-0018842", "status": "paid",
        "channel": "web", "created_at": "2026-11-24T09:00:00.000001Z",
        "delivery": {"name": "Ada Lovelace", "street": "12 St James's Square", "city": "London",
                     "postcode": "SW1Y 4JH", "country": "GB"},
        "price": {"amount": 0.0, "currency": "EUR"}, "items": []
    });
    let mut total = 0.0;
    while order.to_string().len() < size {
        let qty = 1 + next() % 4;
        let unit = (199 + next() % 4800) as f64 / 100.0;
        total += qty as f64 * unit;
        order["items"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({
                "sku": format!("SKU-{:05}", next() % 100_000),
                "name": NAMES[(next() % 8) as usize],
                "qty": qty,
                "unit_price": unit,
                "warehouse": format!("DE-{}", 1 + next() % 9),
            }));
    }
    order["price"]["amount"] = serde_json::json!((total * 100.0).round() / 100.0);
    order
}
