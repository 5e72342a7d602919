//! A message as the source received it, detached from the client library's types.

use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};

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
        let sorted: BTreeMap<&str, &str> = self
            .attributes
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        serde_json::to_string(&sorted).expect("string map serializes")
    }
}
