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
    let mut out = Vec::with_capacity(attributes_json_len(attributes));
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
    serde_json::to_writer(out, &SortedMap(&sorted)).expect("string map serializes");
}

/// How long [`write_attributes_json`] writes `attributes`, exactly: batches are cut by bytes,
/// and an append must stay under BigQuery's request limit.
pub fn attributes_json_len(attributes: &HashMap<String, String>) -> usize {
    // Each pair is `"k":"v"` and pairs are joined by commas, inside braces.
    let pairs: usize = attributes
        .iter()
        .map(|(k, v)| json_string_len(k) + 1 + json_string_len(v) + 1)
        .sum();
    2 + pairs.saturating_sub(1)
}

/// The length of `s` as a JSON string, quotes and escapes included (as serde_json writes it).
fn json_string_len(s: &str) -> usize {
    let escaped: usize = s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum();
    escaped + 2
}

/// Pairs already sorted by key, written as a JSON object (no intermediate map).
struct SortedMap<'a>(&'a [(&'a str, &'a str)]);

impl serde::Serialize for SortedMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_json_is_sorted_and_its_length_is_known_before_writing() {
        let cases: [&[(&str, &str)]; 4] = [
            &[],
            &[("b", "2"), ("a", "1")],
            &[
                ("q\"uote", "back\\slash"),
                ("ctl", "\n\t\u{1}\u{7f}"),
                ("ü", "☃"),
            ],
            &[("", "")],
        ];
        let map_of = |attrs: &[(&str, &str)]| -> HashMap<String, String> {
            attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        for attrs in cases {
            let map = map_of(attrs);
            let json = attributes_json(&map);
            assert_eq!(attributes_json_len(&map), json.len(), "{json}");
            let back: std::collections::BTreeMap<String, String> =
                serde_json::from_str(&json).unwrap();
            assert_eq!(back.len(), map.len());
            assert!(back.iter().all(|(k, v)| map.get(k) == Some(v)), "{json}");
        }
        let sorted = attributes_json(&map_of(&[("b", "2"), ("a", "1")]));
        assert_eq!(sorted, r#"{"a":"1","b":"2"}"#);
    }
}
