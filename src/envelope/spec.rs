//! What a decoder is told about one object's events: the envelope format, where each
//! envelope field is found, the accepted event types, the payload's JSON Schema and the
//! limits. Built from an object's configuration by the source.

use std::fmt;

/// The envelope format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Fields of the JSON body; the payload is one of them.
    Json,
    /// Fields in Pub/Sub attributes; the whole body is the payload.
    Attributes,
    /// CloudEvents 1.0, structured (JSON body) or binary (`ce-*` attributes).
    CloudEvents,
}

/// Where an envelope field is read from: a Pub/Sub attribute, or a path of keys into the
/// format's document (the body for `Json`; the payload for `Attributes`; the event for
/// `CloudEvents`, where `data.…` reaches into the data and, in binary mode, a top-level name
/// reads its `ce-<name>` attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locator {
    Attribute(String),
    Path(Vec<String>),
}

impl Locator {
    pub(super) fn path(key: &str) -> Locator {
        Locator::Path(vec![key.to_string()])
    }
}

/// Spelled as in the object files (`attributes.x`, `payload.order_id`): reasons quote it.
impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Locator::Attribute(a) => write!(f, "attributes.{a}"),
            Locator::Path(p) => f.write_str(&p.join(".")),
        }
    }
}

/// Size limits the decoder enforces.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Larger bodies, compressed or inflated, are rejected as `too_large`.
    pub max_message_bytes: usize,
    /// The largest zstd window a compressed body may ask for, as a power of two.
    pub max_zstd_window_log: u32,
    /// How much of a rejected body its dead-letter row keeps.
    pub max_dead_letter_data_bytes: usize,
    /// Deeper JSON is rejected as `too_deep`.
    pub max_json_depth: usize,
    /// Event times further than this ahead of the clock are `invalid_event_time`.
    pub max_future_event_time_secs: u64,
    /// The most memory one payload's JSON Schema check may build its value tree in; a payload
    /// that could need more is rejected as `too_large` without building it.
    pub max_validation_bytes: usize,
}

/// The kind of a topic schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordFormat {
    Avro,
    /// The message the topic carries (`None`: the file's only top-level one).
    Protobuf(Option<String>),
}

/// The topic schema an object's messages are records of (see [`record`](super::record)).
#[derive(Debug, Clone)]
pub struct TopicSchemaSpec {
    /// `projects/<p>/schemas/<id>`: the schema whose revisions the messages name.
    pub schema: String,
    /// The contract's schema file: decodes a message that names no revision.
    pub definition: String,
    pub format: RecordFormat,
    /// How a message that does not say is encoded.
    pub encoding: super::record::WireEncoding,
}

/// Everything a [`Decoder`](super::Decoder) needs to know about one object's events.
#[derive(Debug, Clone)]
pub struct DecoderSpec {
    pub format: Format,
    pub event_id: Locator,
    pub event_type: Locator,
    pub event_time: Locator,
    pub object_id: Locator,
    /// Ignored by `Attributes` (the body) and `CloudEvents` (`data`).
    pub payload: Locator,
    /// Accepted event types; `None` accepts every type.
    pub event_types: Option<Vec<String>>,
    /// JSON Schema every payload must satisfy.
    pub payload_schema: Option<serde_json::Value>,
    /// The Pub/Sub topic schema the bodies are records of; `None`: bodies are JSON.
    pub topic_schema: Option<TopicSchemaSpec>,
    pub limits: Limits,
}
