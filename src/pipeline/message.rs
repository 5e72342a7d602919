//! A message as the source received it, detached from the client library's types.

use bytes::Bytes;
use smallvec::SmallVec;
use std::collections::HashMap;

/// A Pub/Sub message: body, attributes and delivery metadata.
#[derive(Debug, Clone, Default)]
pub struct ReceivedMessage {
    pub data: Bytes,
    pub attributes: HashMap<String, String>,
    pub message_id: String,
    /// Microseconds since the Unix epoch.
    pub publish_time_us: Option<i64>,
    pub ordering_key: String,
    /// Set by Pub/Sub only when the subscription has a dead-letter policy.
    pub delivery_attempt: Option<i32>,
}

impl ReceivedMessage {
    /// Attributes as a JSON object with sorted keys (deterministic, so rows compare equal).
    pub fn attributes_json(&self) -> String {
        attributes_json(&self.attributes)
    }
}

/// `attributes` as a JSON object with sorted keys.
pub fn attributes_json(attributes: &HashMap<String, String>) -> String {
    let mut out = Vec::new();
    write_attributes_json(attributes, &mut out);
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// Appends `attributes` to `out` as a JSON object with sorted keys. The sink writes each row's
/// attributes straight into its Arrow column this way: no string per row.
pub fn write_attributes_json(attributes: &HashMap<String, String>, out: &mut Vec<u8>) {
    if attributes.is_empty() {
        out.extend_from_slice(b"{}");
        return;
    }
    // Messages carry a handful of attributes: sort them on the stack.
    let mut sorted: SmallVec<[(&str, &str); 8]> = attributes
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    sorted.sort_unstable_by_key(|(k, _)| *k);
    out.reserve(attributes_json_len(attributes));
    serde_json::to_writer(out, &SortedMap(&sorted)).expect("string map serializes");
}

/// About how long [`write_attributes_json`] writes `attributes` (exact without escapes).
pub fn attributes_json_len(attributes: &HashMap<String, String>) -> usize {
    let pairs: usize = attributes.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    2 + pairs.saturating_sub(1)
}

/// Pairs already sorted by key, written as a JSON object (no intermediate map).
struct SortedMap<'a>(&'a [(&'a str, &'a str)]);

impl serde::Serialize for SortedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}
