//! The ingest and dead-letter tables, defined once: their columns, partitioning and
//! clustering, and the Storage Write API's request limit. Provisioning creates the tables from
//! this, the sink writes rows in this shape, and the semantic layer reads these columns.
//! A leaf of the module graph: it imports nothing of the crate.

/// AppendRows accepts at most 10 MB per request; stay clear of it with room for framing.
pub const MAX_APPEND_BYTES: usize = 9 * 1024 * 1024;

/// Which of an object's two tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableKind {
    Ingest,
    DeadLetter,
}

impl TableKind {
    /// The metric label and readiness wording: `ingest`, `dead_letter`.
    pub fn as_str(self) -> &'static str {
        match self {
            TableKind::Ingest => "ingest",
            TableKind::DeadLetter => "dead_letter",
        }
    }

    pub fn layout(self) -> &'static TableLayout {
        match self {
            TableKind::Ingest => &INGEST,
            TableKind::DeadLetter => &DEAD_LETTER,
        }
    }
}

/// A table's columns, and how it is partitioned (by day) and clustered.
#[derive(Debug)]
pub struct TableLayout {
    pub columns: &'static [Column],
    pub partition_by: &'static str,
    pub cluster_by: &'static [&'static str],
}

/// Names of the ingest table's columns, for SQL that reads them.
pub mod ingest {
    pub const EVENT_ID: &str = "event_id";
    pub const EVENT_TYPE: &str = "event_type";
    pub const EVENT_TIME: &str = "event_time";
    pub const OBJECT_ID: &str = "object_id";
    pub const PAYLOAD: &str = "payload";
    pub const ATTRIBUTES: &str = "attributes";
    pub const MESSAGE_ID: &str = "message_id";
    pub const PUBLISH_TIME: &str = "publish_time";
    pub const SUBSCRIPTION: &str = "subscription";
    pub const ORDERING_KEY: &str = "ordering_key";
    pub const DELIVERY_ATTEMPT: &str = "delivery_attempt";
    pub const INGESTED_AT: &str = "ingested_at";
}

/// Partitioned by ingestion day, not event time: a producer's clock must never make a row
/// unwritable (BigQuery refuses rows outside the partition window).
pub static INGEST: TableLayout = TableLayout {
    columns: &INGEST_COLUMNS,
    partition_by: ingest::INGESTED_AT,
    cluster_by: &[ingest::EVENT_TYPE, ingest::OBJECT_ID],
};

pub static DEAD_LETTER: TableLayout = TableLayout {
    columns: &DEAD_LETTER_COLUMNS,
    partition_by: "failed_at",
    cluster_by: &["reason_code"],
};

/// A column's BigQuery type; each maps to one Arrow type on the write path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    String,
    Json,
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

// Short names for the tables below; `T::String` is the column type, never std's String.
use ColumnType as T;

/// The append-only ingest log: one row per accepted message, never updated.
pub const INGEST_COLUMNS: [Column; 12] = [
    col(
        ingest::EVENT_ID,
        T::String,
        true,
        "Event id from the envelope; the Pub/Sub message id when the envelope has none.",
    ),
    col(
        ingest::EVENT_TYPE,
        T::String,
        true,
        "Event type from the envelope, e.g. OrderCreated.",
    ),
    col(
        ingest::EVENT_TIME,
        T::Timestamp,
        true,
        "When the event happened, per its producer.",
    ),
    col(
        ingest::OBJECT_ID,
        T::String,
        false,
        "Id of the domain object the event is about.",
    ),
    col(
        ingest::PAYLOAD,
        T::Json,
        true,
        "The domain object as published, unchanged.",
    ),
    col(
        ingest::ATTRIBUTES,
        T::Json,
        true,
        "Pub/Sub attributes of the message.",
    ),
    col(ingest::MESSAGE_ID, T::String, true, "Pub/Sub message id."),
    col(
        ingest::PUBLISH_TIME,
        T::Timestamp,
        false,
        "When Pub/Sub accepted the message.",
    ),
    col(
        ingest::SUBSCRIPTION,
        T::String,
        true,
        "Subscription the message was pulled from.",
    ),
    col(
        ingest::ORDERING_KEY,
        T::String,
        false,
        "Pub/Sub ordering key, if any.",
    ),
    col(
        ingest::DELIVERY_ATTEMPT,
        T::Int64,
        false,
        "Pub/Sub delivery attempt (only with a dead-letter policy).",
    ),
    col(
        ingest::INGESTED_AT,
        T::Timestamp,
        true,
        "When mesh-ingest appended the row; the partitioning column.",
    ),
];

/// Messages that could not become ingest rows, with the reason.
pub const DEAD_LETTER_COLUMNS: [Column; 10] = [
    col("message_id", T::String, true, "Pub/Sub message id."),
    col(
        "publish_time",
        T::Timestamp,
        false,
        "When Pub/Sub accepted the message.",
    ),
    col(
        "subscription",
        T::String,
        true,
        "Subscription the message was pulled from.",
    ),
    col(
        "attributes",
        T::Json,
        true,
        "Pub/Sub attributes of the message.",
    ),
    col(
        "data",
        T::Bytes,
        true,
        "The message body as received (cut to limits.max_dead_letter_data_bytes).",
    ),
    col(
        "reason_code",
        T::String,
        true,
        "Machine-readable reason, e.g. malformed_json, missing_field.",
    ),
    col(
        "reason",
        T::String,
        true,
        "Human-readable reason naming the field.",
    ),
    col(
        "failed_at",
        T::Timestamp,
        true,
        "When mesh-ingest dead-lettered the message; the partitioning column.",
    ),
    col(
        "event_id",
        T::String,
        false,
        "Event id, when the envelope got far enough to have one.",
    ),
    col(
        "delivery_attempt",
        T::Int64,
        false,
        "Pub/Sub delivery attempt (only with a dead-letter policy).",
    ),
];
