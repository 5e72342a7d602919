//! The rows the pipeline writes: an ingest row for a valid event, a dead-letter row (with a
//! typed reason) for a message that could not become one.

use super::ReceivedMessage;
use super::{attributes_json, attributes_json_len};
use bytes::Bytes;
use bytestring::ByteString;
use serde::Serialize;
use std::collections::HashMap;

/// One row of the append-only ingest table.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestRow {
    /// The envelope's texts are `ByteString`s: usually slices of the body, like `payload`,
    /// so a row costs no allocation of its own for them.
    pub event_id: ByteString,
    /// The CloudEvents `source` (an event id is unique only within it); `None` for the other
    /// envelope formats.
    pub event_source: Option<ByteString>,
    pub event_type: ByteString,
    /// Microseconds since the Unix epoch.
    pub event_time_us: i64,
    pub object_id: Option<ByteString>,
    /// The payload's JSON text exactly as published (a slice of `raw` where possible).
    pub payload: Bytes,
    /// The message's attributes, moved from it as received. The sink writes them as JSON
    /// straight into the Arrow column (see `write_attributes_json`), so no row holds a copy.
    pub attributes: HashMap<String, String>,
    pub message_id: String,
    pub publish_time_us: Option<i64>,
    pub ordering_key: Option<String>,
    pub delivery_attempt: Option<i64>,
    /// Set only by `dlq replay`: when the row was recovered from the dead-letter table.
    pub replayed_at_us: Option<i64>,
    /// The whole message body, kept (shared, not copied) in case BigQuery refuses the row and
    /// it must be dead-lettered as it was received.
    pub raw: Bytes,
}

impl IngestRow {
    /// The attributes as the ingest table stores them: a JSON object with sorted keys.
    pub fn attributes_json(&self) -> String {
        attributes_json(&self.attributes)
    }

    /// What the row weighs in an append request, for batch limits.
    pub fn approx_bytes(&self) -> usize {
        96 + self.event_id.len()
            + self.event_source.as_ref().map_or(0, |s| s.len())
            + self.event_type.len()
            + self.object_id.as_ref().map_or(0, |s| s.len())
            + self.payload.len()
            + attributes_json_len(&self.attributes)
            + self.message_id.len()
            + self.ordering_key.as_ref().map_or(0, String::len)
    }

    /// Turns a row BigQuery refused into its dead-letter row.
    pub fn into_dead_letter(
        self,
        code: ReasonCode,
        reason: String,
        max_data_bytes: usize,
    ) -> DeadLetterRow {
        let (data, truncated) = truncate(self.raw, max_data_bytes);
        DeadLetterRow {
            message_id: self.message_id,
            publish_time_us: self.publish_time_us,
            attributes_json: attributes_json(&self.attributes),
            data,
            reason_code: code,
            reason: with_truncation_note(reason, truncated),
            event_id: Some(String::from(self.event_id)),
            delivery_attempt: self.delivery_attempt,
        }
    }
}

/// One row of the dead-letter table: the message as received, and why it was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetterRow {
    pub message_id: String,
    pub publish_time_us: Option<i64>,
    pub attributes_json: String,
    /// The raw body, cut to `limits.max_dead_letter_data_bytes` (the reason then says so).
    pub data: Bytes,
    pub reason_code: ReasonCode,
    pub reason: String,
    /// The event id, when the envelope got far enough to have one.
    pub event_id: Option<String>,
    pub delivery_attempt: Option<i64>,
}

impl DeadLetterRow {
    pub fn new(msg: ReceivedMessage, rejection: Rejection, max_data_bytes: usize) -> Self {
        let attributes_json = msg.attributes_json();
        let (data, truncated) = truncate(msg.data, max_data_bytes);
        DeadLetterRow {
            message_id: msg.message_id,
            publish_time_us: msg.publish_time_us,
            attributes_json,
            data,
            reason_code: rejection.code,
            reason: with_truncation_note(rejection.reason, truncated),
            event_id: None,
            delivery_attempt: msg.delivery_attempt.map(i64::from),
        }
    }

    pub fn approx_bytes(&self) -> usize {
        96 + self.message_id.len()
            + self.attributes_json.len()
            + self.data.len()
            + self.reason.len()
            + self.event_id.as_ref().map_or(0, String::len)
    }
}

fn truncate(data: Bytes, max: usize) -> (Bytes, Option<usize>) {
    if data.len() > max {
        let full = data.len();
        (data.slice(..max), Some(full))
    } else {
        (data, None)
    }
}

/// How a dead-letter reason says its `data` was cut (the whole body is not stored).
const TRUNCATION_NOTE: &str = "(data holds only the first bytes of a ";

fn with_truncation_note(reason: String, truncated: Option<usize>) -> String {
    match truncated {
        None => reason,
        Some(full) => format!("{reason} {TRUNCATION_NOTE}{full}-byte body)"),
    }
}

/// Whether a dead-letter row's `reason` says its `data` holds only part of the body.
pub fn is_truncated(reason: &str) -> bool {
    reason.contains(TRUNCATION_NOTE)
}

/// Why a message was dead-lettered; stored as `reason_code`, used as a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// The body has no bytes at all.
    EmptyBody,
    /// The body is not UTF-8.
    InvalidUtf8,
    /// The body (or the CloudEvents data) is not JSON.
    MalformedJson,
    /// The body is JSON, but not an object.
    NotAnObject,
    /// A required envelope field is absent or null.
    MissingField,
    /// An envelope field has the wrong JSON type or an empty value.
    InvalidField,
    /// The event time is not RFC 3339, before 1970, or too far in the future.
    InvalidEventTime,
    /// The event type is not in the object's `event_types`.
    UnknownEventType,
    /// The payload is not a JSON object.
    InvalidPayload,
    /// The payload violates the object's JSON Schema.
    SchemaViolation,
    /// The body exceeds `limits.max_message_bytes`.
    TooLarge,
    /// The JSON nests deeper than `limits.max_json_depth`.
    TooDeep,
    /// A CloudEvent whose specversion is not 1.0.
    UnsupportedSpecversion,
    /// The `content-encoding` attribute names an unsupported encoding, or the body does not
    /// inflate as the one it names.
    InvalidEncoding,
    /// The body is not a record of the topic schema revision its attributes name.
    UndecodableRecord,
    /// BigQuery reported an error for this row.
    BigqueryRowError,
    /// BigQuery refused an append holding only this row.
    BigqueryRejected,
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 17] = [
        ReasonCode::EmptyBody,
        ReasonCode::InvalidUtf8,
        ReasonCode::MalformedJson,
        ReasonCode::NotAnObject,
        ReasonCode::MissingField,
        ReasonCode::InvalidField,
        ReasonCode::InvalidEventTime,
        ReasonCode::UnknownEventType,
        ReasonCode::InvalidPayload,
        ReasonCode::SchemaViolation,
        ReasonCode::TooLarge,
        ReasonCode::TooDeep,
        ReasonCode::UnsupportedSpecversion,
        ReasonCode::InvalidEncoding,
        ReasonCode::UndecodableRecord,
        ReasonCode::BigqueryRowError,
        ReasonCode::BigqueryRejected,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::EmptyBody => "empty_body",
            ReasonCode::InvalidUtf8 => "invalid_utf8",
            ReasonCode::MalformedJson => "malformed_json",
            ReasonCode::NotAnObject => "not_an_object",
            ReasonCode::MissingField => "missing_field",
            ReasonCode::InvalidField => "invalid_field",
            ReasonCode::InvalidEventTime => "invalid_event_time",
            ReasonCode::UnknownEventType => "unknown_event_type",
            ReasonCode::InvalidPayload => "invalid_payload",
            ReasonCode::SchemaViolation => "schema_violation",
            ReasonCode::TooLarge => "too_large",
            ReasonCode::TooDeep => "too_deep",
            ReasonCode::UnsupportedSpecversion => "unsupported_specversion",
            ReasonCode::InvalidEncoding => "invalid_encoding",
            ReasonCode::UndecodableRecord => "undecodable_record",
            ReasonCode::BigqueryRowError => "bigquery_row_error",
            ReasonCode::BigqueryRejected => "bigquery_rejected",
        }
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed rejection: the code is for machines, the reason for people. Reasons name fields
/// and JSON types, never values: they end up in logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub code: ReasonCode,
    pub reason: String,
}

impl Rejection {
    pub fn new(code: ReasonCode, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}
