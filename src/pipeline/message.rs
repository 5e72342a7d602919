//! A message as the source received it, detached from the client library's types.

use bytes::Bytes;
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
        if self.attributes.is_empty() {
            return "{}".to_string();
        }
        let mut sorted: Vec<(&str, &str)> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        sorted.sort_unstable_by_key(|(k, _)| *k);
        let size: usize = sorted.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
        let mut out = Vec::with_capacity(size + 2);
        serde_json::to_writer(&mut out, &SortedMap(&sorted)).expect("string map serializes");
        String::from_utf8(out).expect("serde_json writes UTF-8")
    }
}

/// Pairs already sorted by key, written as a JSON object (no intermediate map).
struct SortedMap<'a>(&'a [(&'a str, &'a str)]);

impl serde::Serialize for SortedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}
