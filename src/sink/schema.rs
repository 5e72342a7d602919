//! The columns of the ingest and dead-letter tables, defined once: provisioning creates the
//! BigQuery tables from them and the Arrow encoder writes rows in the same shape.

use arrow_schema::{DataType, Field, Schema, TimeUnit};
use std::sync::Arc;

/// A column's BigQuery type; each maps to one Arrow type on the write path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    /// Written as Arrow utf8, as the Storage Write API takes JSON.
    Json,
    /// Written as Arrow `timestamp[us, UTC]` (nanoseconds are refused by BigQuery).
    Timestamp,
    Int64,
    Bytes,
}

impl ColumnType {
    pub fn bigquery_name(self) -> &'static str {
        match self {
            ColumnType::String => "STRING",
            ColumnType::Json => "JSON",
            ColumnType::Timestamp => "TIMESTAMP",
            ColumnType::Int64 => "INT64",
            ColumnType::Bytes => "BYTES",
        }
    }

    fn arrow(self) -> DataType {
        match self {
            ColumnType::String | ColumnType::Json => DataType::Utf8,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnType::Int64 => DataType::Int64,
            ColumnType::Bytes => DataType::Binary,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnType,
    pub required: bool,
    pub description: &'static str,
}

const fn col(
    name: &'static str,
    kind: ColumnType,
    required: bool,
    description: &'static str,
) -> Column {
    Column {
        name,
        kind,
        required,
        description,
    }
}

use ColumnType::*;

/// The append-only ingest log: one row per accepted message, never updated.
pub const INGEST_COLUMNS: [Column; 12] = [
    col(
        "event_id",
        String,
        true,
        "Event id from the envelope; the Pub/Sub message id when the envelope has none.",
    ),
    col(
        "event_type",
        String,
        true,
        "Event type from the envelope, e.g. OrderCreated.",
    ),
    col(
        "event_time",
        Timestamp,
        true,
        "When the event happened, per its producer.",
    ),
    col(
        "object_id",
        String,
        false,
        "Id of the domain object the event is about.",
    ),
    col(
        "payload",
        Json,
        true,
        "The domain object as published, unchanged.",
    ),
    col(
        "attributes",
        Json,
        true,
        "Pub/Sub attributes of the message.",
    ),
    col("message_id", String, true, "Pub/Sub message id."),
    col(
        "publish_time",
        Timestamp,
        false,
        "When Pub/Sub accepted the message.",
    ),
    col(
        "subscription",
        String,
        true,
        "Subscription the message was pulled from.",
    ),
    col(
        "ordering_key",
        String,
        false,
        "Pub/Sub ordering key, if any.",
    ),
    col(
        "delivery_attempt",
        Int64,
        false,
        "Pub/Sub delivery attempt (only with a dead-letter policy).",
    ),
    col(
        "ingested_at",
        Timestamp,
        true,
        "When mesh-ingest appended the row; the partitioning column.",
    ),
];

/// Messages that could not become ingest rows, with the reason.
pub const DEAD_LETTER_COLUMNS: [Column; 10] = [
    col("message_id", String, true, "Pub/Sub message id."),
    col(
        "publish_time",
        Timestamp,
        false,
        "When Pub/Sub accepted the message.",
    ),
    col(
        "subscription",
        String,
        true,
        "Subscription the message was pulled from.",
    ),
    col(
        "attributes",
        Json,
        true,
        "Pub/Sub attributes of the message.",
    ),
    col(
        "data",
        Bytes,
        true,
        "The message body as received (cut to limits.max_dead_letter_data_bytes).",
    ),
    col(
        "reason_code",
        String,
        true,
        "Machine-readable reason, e.g. malformed_json, missing_field.",
    ),
    col(
        "reason",
        String,
        true,
        "Human-readable reason naming the field.",
    ),
    col(
        "failed_at",
        Timestamp,
        true,
        "When mesh-ingest dead-lettered the message; the partitioning column.",
    ),
    col(
        "event_id",
        String,
        false,
        "Event id, when the envelope got far enough to have one.",
    ),
    col(
        "delivery_attempt",
        Int64,
        false,
        "Pub/Sub delivery attempt (only with a dead-letter policy).",
    ),
];

pub fn arrow_schema(columns: &[Column]) -> Arc<Schema> {
    Arc::new(Schema::new(
        columns
            .iter()
            .map(|c| Field::new(c.name, c.kind.arrow(), !c.required))
            .collect::<Vec<_>>(),
    ))
}
