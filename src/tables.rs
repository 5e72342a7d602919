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
    pub const EVENT_SOURCE: &str = "event_source";
    pub const REPLAYED_AT: &str = "replayed_at";
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
pub const INGEST_COLUMNS: [Column; 14] = [
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
    col(
        ingest::EVENT_SOURCE,
        T::String,
        false,
        "CloudEvents source: event ids are unique per source. NULL for the other envelope formats.",
    ),
    col(
        ingest::REPLAYED_AT,
        T::Timestamp,
        false,
        "When `mesh-ingest dlq replay` recovered this row from the dead-letter table; NULL for rows ingested as they arrived.",
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

/// A column as a table in BigQuery has it (`tables.get`): name, type and mode as the REST API
/// spells them (legacy names such as INTEGER are accepted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingColumn {
    pub name: String,
    pub type_name: String,
    /// `NULLABLE` (also when empty), `REQUIRED` or `REPEATED`.
    pub mode: String,
}

/// How a table in BigQuery differs from what mesh-ingest writes to it. Extra nullable
/// columns are not differences: appends leave them NULL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaDifference {
    /// mesh-ingest writes this column; the table has none.
    Missing { column: &'static str },
    /// The table's column has another type.
    TypeChanged {
        column: &'static str,
        table: String,
        ours: &'static str,
    },
    /// The table requires a value mesh-ingest may leave NULL (or repeats a single value).
    ModeChanged { column: &'static str, table: String },
    /// The table requires a column mesh-ingest does not write.
    ExtraRequired { column: String },
}

impl SchemaDifference {
    /// Whether `provision` may fix it in place without losing anything: adding a NULLABLE
    /// column, or relaxing REQUIRED to NULLABLE.
    pub fn additive(&self) -> bool {
        match self {
            SchemaDifference::Missing { .. } => true,
            SchemaDifference::ModeChanged { table, .. } => table == "REQUIRED",
            SchemaDifference::TypeChanged { .. } | SchemaDifference::ExtraRequired { .. } => false,
        }
    }
}

impl std::fmt::Display for SchemaDifference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SchemaDifference::Missing { column } => {
                write!(f, "column `{column}` is missing from the table")
            }
            SchemaDifference::TypeChanged {
                column,
                table,
                ours,
            } => write!(
                f,
                "column `{column}` is {table} in the table; mesh-ingest writes {ours}"
            ),
            SchemaDifference::ModeChanged { column, table } => write!(
                f,
                "column `{column}` is {table} in the table; mesh-ingest writes it NULLABLE"
            ),
            SchemaDifference::ExtraRequired { column } => write!(
                f,
                "the table requires column `{column}`, which mesh-ingest does not write"
            ),
        }
    }
}

/// The type name as standard SQL spells it (`tables.get` may answer the legacy names).
fn standard_type(name: &str) -> String {
    match name.to_ascii_uppercase().as_str() {
        "INTEGER" => "INT64".into(),
        "FLOAT" => "FLOAT64".into(),
        "BOOLEAN" => "BOOL".into(),
        "RECORD" => "STRUCT".into(),
        other => other.into(),
    }
}

/// Compares a table's columns with `ours`; empty when mesh-ingest can write to it.
pub fn compare(ours: &[Column], table: &[ExistingColumn]) -> Vec<SchemaDifference> {
    let mode = |c: &ExistingColumn| {
        let m = c.mode.to_ascii_uppercase();
        if m.is_empty() { "NULLABLE".into() } else { m }
    };
    let mut out = Vec::new();
    for c in ours {
        let Some(t) = table.iter().find(|t| t.name.eq_ignore_ascii_case(c.name)) else {
            out.push(SchemaDifference::Missing { column: c.name });
            continue;
        };
        let ours_type = c.kind.bigquery_name();
        if standard_type(&t.type_name) != ours_type {
            out.push(SchemaDifference::TypeChanged {
                column: c.name,
                table: t.type_name.clone(),
                ours: ours_type,
            });
        }
        let m = mode(t);
        // A REQUIRED table column takes our always-set columns, never our nullable ones.
        if m == "REPEATED" || (m == "REQUIRED" && !c.required) {
            out.push(SchemaDifference::ModeChanged {
                column: c.name,
                table: m,
            });
        }
    }
    for t in table {
        let ours = ours.iter().any(|c| c.name.eq_ignore_ascii_case(&t.name));
        if !ours && mode(t) == "REQUIRED" {
            out.push(SchemaDifference::ExtraRequired {
                column: t.name.clone(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn existing(columns: &[Column]) -> Vec<ExistingColumn> {
        columns
            .iter()
            .map(|c| ExistingColumn {
                name: c.name.to_string(),
                type_name: c.kind.bigquery_name().to_string(),
                mode: if c.required { "REQUIRED" } else { "NULLABLE" }.to_string(),
            })
            .collect()
    }

    #[test]
    fn a_table_as_provisioned_matches() {
        assert_eq!(compare(&INGEST_COLUMNS, &existing(&INGEST_COLUMNS)), vec![]);
        assert_eq!(
            compare(&DEAD_LETTER_COLUMNS, &existing(&DEAD_LETTER_COLUMNS)),
            vec![]
        );
    }

    #[test]
    fn each_difference_is_named_and_classed() {
        let mut table = existing(&INGEST_COLUMNS);
        table.retain(|c| c.name != "ordering_key");
        table
            .iter_mut()
            .find(|c| c.name == "payload")
            .unwrap()
            .type_name = "STRING".into();
        table
            .iter_mut()
            .find(|c| c.name == "delivery_attempt")
            .unwrap()
            .type_name = "INTEGER".into(); // the legacy name of INT64: no difference
        table
            .iter_mut()
            .find(|c| c.name == "object_id")
            .unwrap()
            .mode = "REQUIRED".into();
        table.push(ExistingColumn {
            name: "tenant".into(),
            type_name: "STRING".into(),
            mode: "REQUIRED".into(),
        });
        table.push(ExistingColumn {
            name: "note".into(),
            type_name: "STRING".into(),
            mode: String::new(),
        });
        let d = compare(&INGEST_COLUMNS, &table);
        let text: Vec<String> = d.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "column `object_id` is REQUIRED in the table; mesh-ingest writes it NULLABLE",
                "column `payload` is STRING in the table; mesh-ingest writes JSON",
                "column `ordering_key` is missing from the table",
                "the table requires column `tenant`, which mesh-ingest does not write",
            ]
        );
        let additive: Vec<bool> = d.iter().map(SchemaDifference::additive).collect();
        assert_eq!(additive, [true, false, true, false]);
    }
}
