//! The pure per-event path, per payload size: decode each envelope format (validate, build the
//! row), encode an Arrow batch, and both together — beside the floor, a validating JSON scan
//! (`serde_json` into `IgnoredAny`) of the same bytes. `cargo bench --bench envelope`.

mod common;

use common::{NOW, decoder, message, payload};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use mesh_ingest::envelope::Decoder;
use mesh_ingest::pipeline::{IngestRow, ReceivedMessage};
use mesh_ingest::sink::arrow_rows::encode_ingest;
use serde::de::IgnoredAny;
use std::hint::black_box;

const SIZES: [usize; 3] = [256, 1024, 16 * 1024];

struct Case {
    name: &'static str,
    decoder: Decoder,
    message: ReceivedMessage,
}

fn cases(size: usize) -> Vec<Case> {
    let p = payload(size);
    let time = "2026-11-20T10:00:00.123456Z";
    vec![
        Case {
            name: "json",
            decoder: decoder("envelope:\n  format: json\n  object_id: payload.order_id\n"),
            message: message(
                serde_json::json!({"event_id": "evt-1", "event_type": "OrderUpdated", "event_time": time, "payload": p})
                    .to_string(),
                &[],
            ),
        },
        Case {
            name: "attributes",
            decoder: decoder("envelope:\n  format: attributes\n  object_id: order_id\n"),
            message: message(
                p.to_string(),
                &[("event_id", "evt-1"), ("event_type", "OrderUpdated"), ("event_time", time)],
            ),
        },
        Case {
            name: "cloudevents",
            decoder: decoder("envelope:\n  format: cloudevents\n"),
            message: message(
                serde_json::json!({"specversion": "1.0", "id": "evt-1", "source": "//orders", "type": "OrderUpdated",
                    "time": time, "subject": "o-1234567", "datacontenttype": "application/json", "data": p})
                    .to_string(),
                &[],
            ),
        },
    ]
}

fn per_event(c: &mut Criterion) {
    for size in SIZES {
        let mut group = c.benchmark_group(format!("payload_{size}"));
        for case in cases(size) {
            let body = case.message.data.clone();
            group.throughput(Throughput::Bytes(body.len() as u64));
            group.bench_function(format!("floor_scan/{}", case.name), |b| {
                b.iter(|| {
                    black_box(serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap())
                })
            });
            group.bench_function(format!("decode/{}", case.name), |b| {
                b.iter_batched(
                    || case.message.clone(),
                    |m| black_box(case.decoder.decode(m, NOW).unwrap()),
                    BatchSize::SmallInput,
                )
            });
        }
        // Arrow encoding of a 1000-row batch, reported per row (the sink's share per event).
        let json = &cases(size)[0];
        let rows: Vec<IngestRow> = (0..1000)
            .map(|_| json.decoder.decode(json.message.clone(), NOW).unwrap())
            .collect();
        let bytes: u64 = 1000 * json.message.data.len() as u64;
        group.throughput(Throughput::Bytes(bytes));
        group.bench_function("encode_arrow_1000_rows", |b| {
            b.iter(|| {
                black_box(
                    encode_ingest(black_box(&rows), "projects/p/subscriptions/s", NOW).unwrap(),
                )
            })
        });
        group.bench_function("decode_and_encode_1000/json", |b| {
            b.iter_batched(
                || vec![json.message.clone(); 1000],
                |messages| {
                    let rows: Vec<IngestRow> = messages
                        .into_iter()
                        .map(|m| json.decoder.decode(m, NOW).unwrap())
                        .collect();
                    black_box(encode_ingest(&rows, "projects/p/subscriptions/s", NOW).unwrap())
                },
                BatchSize::LargeInput,
            )
        });
        group.bench_function("floor_scan_1000/json", |b| {
            let body = json.message.data.clone();
            b.iter(|| {
                for _ in 0..1000 {
                    black_box(serde_json::from_slice::<IgnoredAny>(black_box(&body)).unwrap());
                }
            })
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
        .sample_size(30);
    targets = per_event
}
criterion_main!(benches);
