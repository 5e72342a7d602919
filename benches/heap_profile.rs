//! A heap profile (dhat) of the per-event path at 16 KiB: messages as the Pub/Sub client hands
//! them over, decoded into rows, encoded into the Arrow IPC bytes of 500-row appends (about
//! 8 MiB, `batch.max_bytes`), the way the sink does it. Prints one JSON line: bytes and blocks
//! allocated per event (the body's own allocation, as the client makes it, included), and
//! the peak heap. `scripts/bench.sh` runs it on the baseline and on the current tree.

mod common;

use bytes::Bytes;
use common::{NOW, decoder, message, payload};
use mesh_ingest::pipeline::IngestRow;
use mesh_ingest::sink::arrow_rows::encode_ingest;
use std::hint::black_box;

#[global_allocator]
static ALLOCATOR: dhat::Alloc = dhat::Alloc;

const PAYLOAD_BYTES: usize = 16 * 1024;
const ROWS_PER_APPEND: usize = 500;
const APPENDS: usize = 40;

fn main() {
    let decoder = decoder("envelope:\n  format: json\n  object_id: payload.order_id\n");
    let body = serde_json::json!({"event_id": "evt-1", "event_type": "OrderUpdated",
        "event_time": "2026-11-20T10:00:00.123456Z", "payload": payload(PAYLOAD_BYTES)})
    .to_string();
    let template = message(body, &[("producer", "order-service")]);
    let profiler = dhat::Profiler::builder().testing().build();
    let mut request_bytes = 0;
    for _ in 0..APPENDS {
        let rows: Vec<IngestRow> = (0..ROWS_PER_APPEND)
            .map(|_| {
                let mut m = template.clone();
                // A fresh body per message, as the client receives it.
                m.data = Bytes::copy_from_slice(&template.data);
                decoder.decode(m, NOW).expect("a valid event")
            })
            .collect();
        let encoded = encode_ingest(&rows, "projects/p/subscriptions/s", NOW).expect("encodes");
        request_bytes += encoded.len();
        black_box(&encoded);
    }
    let stats = dhat::HeapStats::get();
    drop(profiler);
    let events = (APPENDS * ROWS_PER_APPEND) as f64;
    let body_bytes = template.data.len() as f64;
    println!(
        "{}",
        serde_json::json!({
            "events": events,
            "body_bytes": body_bytes,
            "allocated_bytes_per_event": stats.total_bytes as f64 / events,
            "allocated_bodies_per_event": stats.total_bytes as f64 / events / body_bytes,
            "blocks_per_event": stats.total_blocks as f64 / events,
            "peak_heap_mib": stats.max_bytes as f64 / 1048576.0,
            "request_bytes_per_event": request_bytes as f64 / events,
        })
    );
}
