//! What the benchmarks share: a decoder per envelope format, a realistic order payload of a
//! given size, a received message.

use bytes::Bytes;
use mesh_ingest::configuration::ObjectSettings;
use mesh_ingest::envelope::Decoder;
use mesh_ingest::pipeline::ReceivedMessage;
use std::collections::HashMap;
use std::path::Path;

pub const NOW: i64 = 1_795_100_000_000_000;

pub fn decoder(envelope: &str) -> Decoder {
    let text = format!(
        "name: bench\nsubscription: bench-sub\ningest_table: d.i\ndead_letter_table: d.dl\n{envelope}"
    );
    mesh_ingest::source::decoder_for(
        &ObjectSettings::parse(&text, Path::new("bench.yaml"), "p").unwrap(),
    )
    .unwrap()
}

/// A realistic order payload padded to about `size` bytes.
pub fn payload(size: usize) -> serde_json::Value {
    let mut p = serde_json::json!({"order_id": "o-1234567", "customer_id": "c-42", "status": "paid",
        "total": 1234.5, "currency": "EUR", "items": [{"sku": "tea-001", "qty": 2, "price": 4.5}],
        "note": ""});
    let pad = size.saturating_sub(p.to_string().len());
    p["note"] = serde_json::json!("n".repeat(pad));
    p
}

pub fn message(data: String, attributes: &[(&str, &str)]) -> ReceivedMessage {
    ReceivedMessage {
        data: Bytes::from(data),
        attributes: attributes
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<HashMap<_, _>>(),
        message_id: "1234567890".into(),
        publish_time_us: Some(NOW - 1_000_000),
        ..Default::default()
    }
}
