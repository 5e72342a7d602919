//! One domain object's configuration (`config/objects/<object>.yaml`): where its events come
//! from, how their envelope is read, where its rows go and how they are batched.

use super::ConfigError;
use super::semantic::{SemanticFile, SemanticSettings};
use crate::envelope::FieldSource;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// AppendRows accepts at most 10 MB per request; stay clear of it with room for framing.
pub const MAX_APPEND_BYTES: usize = 9 * 1024 * 1024;

#[derive(Debug, Clone, Serialize)]
pub struct ObjectSettings {
    pub name: String,
    /// Full name: `projects/<p>/subscriptions/<s>`.
    pub subscription: String,
    /// Full name: `projects/<p>/topics/<t>`; only needed to provision emulators and to publish.
    pub topic: Option<String>,
    pub ingest_table: TableRef,
    pub dead_letter_table: TableRef,
    pub envelope: EnvelopeSettings,
    /// Accepted event types; `None` accepts every type.
    pub event_types: Option<Vec<String>>,
    /// JSON Schema every payload must satisfy, as loaded from `payload_schema_file`.
    #[serde(skip)]
    pub payload_schema: Option<serde_json::Value>,
    pub payload_schema_file: Option<String>,
    pub batch: BatchSettings,
    pub flow_control: FlowControlSettings,
    /// Parallel streaming-pull streams for this subscription.
    pub streams: usize,
    pub limits: LimitSettings,
    /// The typed latest-state view generated from the ingest table, if configured.
    pub semantic: Option<SemanticSettings>,
    /// The file this object was read from, for error messages.
    pub source_file: String,
}

/// `project.dataset.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

impl TableRef {
    /// Parses `project.dataset.table` or `dataset.table` (in `default_project`).
    pub fn parse(s: &str, default_project: &str) -> Result<TableRef, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let (project, dataset, table) = match parts.as_slice() {
            [p, d, t] => (*p, *d, *t),
            [d, t] => (default_project, *d, *t),
            _ => return Err(format!("`{s}` is not `project.dataset.table`")),
        };
        let ident_ok = |x: &str| {
            !x.is_empty()
                && x.len() <= 1024
                && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        let project_ok = |x: &str| {
            !x.is_empty()
                && x.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':')
        };
        if !project_ok(project) {
            return Err(format!(
                "project `{project}` in `{s}` is not a valid project id"
            ));
        }
        if !ident_ok(dataset) {
            return Err(format!(
                "dataset `{dataset}` in `{s}` may only hold letters, digits and underscores"
            ));
        }
        if !ident_ok(table) {
            return Err(format!(
                "table `{table}` in `{s}` may only hold letters, digits and underscores"
            ));
        }
        Ok(TableRef {
            project: project.into(),
            dataset: dataset.into(),
            table: table.into(),
        })
    }

    /// The resource name the Storage Write API takes.
    pub fn write_api_name(&self) -> String {
        format!(
            "projects/{}/datasets/{}/tables/{}",
            self.project, self.dataset, self.table
        )
    }

    /// The name SQL uses, back-quoted.
    pub fn sql_name(&self) -> String {
        format!("`{}.{}.{}`", self.project, self.dataset, self.table)
    }
}

impl Serialize for TableRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeFormat {
    /// `{"event_id", "event_type", "event_time", "object_id", "payload"}` in the body.
    Json,
    /// Event id / type / time in Pub/Sub attributes; the body is the payload.
    Attributes,
    /// CloudEvents 1.0, structured (JSON body) or binary (`ce-*` attributes) mode.
    CloudEvents,
}

/// Where each envelope field is read from. See `FieldSource` for the syntax.
#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeSettings {
    pub format: EnvelopeFormat,
    pub event_id: FieldSource,
    pub event_type: FieldSource,
    pub event_time: FieldSource,
    pub object_id: FieldSource,
    /// Path of the payload in a `json` envelope; unused by the other formats.
    pub payload: FieldSource,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatchSettings {
    /// A batch is flushed once it holds this many rows …
    pub max_rows: usize,
    /// … or this many bytes (capped below the 10 MB AppendRows limit) …
    pub max_bytes: usize,
    /// … or its oldest row has waited this long.
    pub max_delay_ms: u64,
    /// Appends in flight at once per object; beyond it the pipeline backs up into Pub/Sub flow
    /// control instead of into memory.
    pub max_in_flight: usize,
}

impl Default for BatchSettings {
    fn default() -> Self {
        BatchSettings {
            max_rows: 1000,
            max_bytes: 8 * 1024 * 1024,
            max_delay_ms: 500,
            max_in_flight: 4,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FlowControlSettings {
    /// Per stream: Pub/Sub stops delivering while this many messages are unacknowledged.
    pub max_outstanding_messages: i64,
    /// Per stream: … or this many bytes.
    pub max_outstanding_bytes: i64,
    /// Decoded rows waiting for the batcher, across the object's streams.
    pub channel_capacity: usize,
    /// Lease the client asks for (and keeps extending) on each message, 10–600 s. It is also
    /// how soon Pub/Sub redelivers messages that were on their way to an instance that stopped
    /// before reading them.
    pub ack_deadline_secs: u64,
}

impl Default for FlowControlSettings {
    fn default() -> Self {
        FlowControlSettings {
            max_outstanding_messages: 2000,
            max_outstanding_bytes: 100 * 1024 * 1024,
            channel_capacity: 2000,
            ack_deadline_secs: 60,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Larger bodies are dead-lettered as `too_large` (their first bytes are kept).
    pub max_message_bytes: usize,
    /// How much of a rejected body the dead-letter row keeps.
    pub max_dead_letter_data_bytes: usize,
    /// Deeper JSON is dead-lettered as `too_deep`; at most 128.
    pub max_json_depth: usize,
    /// Event times further than this ahead of the clock are rejected as `invalid_event_time`.
    pub max_future_event_time_secs: u64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        LimitSettings {
            max_message_bytes: 4 * 1024 * 1024,
            max_dead_letter_data_bytes: 1024 * 1024,
            max_json_depth: 64,
            max_future_event_time_secs: 24 * 3600,
        }
    }
}

/// The object file as written; resolved into `ObjectSettings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectFile {
    name: String,
    subscription: String,
    #[serde(default)]
    topic: Option<String>,
    ingest_table: String,
    dead_letter_table: String,
    envelope: EnvelopeFile,
    #[serde(default)]
    event_types: Option<Vec<String>>,
    #[serde(default)]
    payload_schema_file: Option<String>,
    #[serde(default)]
    batch: BatchSettings,
    #[serde(default)]
    flow_control: FlowControlSettings,
    #[serde(default = "one")]
    streams: usize,
    #[serde(default)]
    limits: LimitSettings,
    #[serde(default)]
    semantic: Option<SemanticFile>,
}

fn one() -> usize {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EnvelopeFile {
    format: EnvelopeFormat,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

fn full_name(kind: &str, s: &str, project: &str) -> Result<String, String> {
    let valid_id = |x: &str| {
        (3..=255).contains(&x.len())
            && x.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c))
    };
    if let Some(rest) = s.strip_prefix("projects/") {
        match rest.split('/').collect::<Vec<_>>().as_slice() {
            [p, k, id] if *k == kind && !p.is_empty() && valid_id(id) => Ok(s.to_string()),
            _ => Err(format!("`{s}` is not `projects/<project>/{kind}/<id>`")),
        }
    } else if valid_id(s) {
        Ok(format!("projects/{project}/{kind}/{s}"))
    } else {
        Err(format!(
            "`{s}` is not a valid id (3–255 letters, digits or -_.~+%) nor a full `projects/…/{kind}/…` name"
        ))
    }
}

impl ObjectSettings {
    /// Reads and validates one object file.
    pub fn load(file: &Path, project: &str) -> Result<ObjectSettings, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|e| ConfigError::Invalid {
            file: file.display().to_string(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse(&text, file, project)
    }

    /// Validates an object file's text; `file` names it in errors and anchors relative paths.
    pub fn parse(text: &str, file: &Path, project: &str) -> Result<ObjectSettings, ConfigError> {
        let raw: ObjectFile = config::Config::builder()
            .add_source(config::File::from_str(text, config::FileFormat::Yaml))
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Invalid {
                file: file.display().to_string(),
                message: e.to_string(),
            })?;
        let err = |field: &str, msg: String| ConfigError::field(file, field, msg);

        let name_ok = !raw.name.is_empty()
            && raw
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(err(
                "name",
                format!(
                    "`{}` must be lower-case letters, digits and underscores",
                    raw.name
                ),
            ));
        }
        let subscription = full_name("subscriptions", &raw.subscription, project)
            .map_err(|m| err("subscription", m))?;
        let topic = raw
            .topic
            .as_deref()
            .map(|t| full_name("topics", t, project))
            .transpose()
            .map_err(|m| err("topic", m))?;
        let ingest_table =
            TableRef::parse(&raw.ingest_table, project).map_err(|m| err("ingest_table", m))?;
        let dead_letter_table = TableRef::parse(&raw.dead_letter_table, project)
            .map_err(|m| err("dead_letter_table", m))?;
        if ingest_table == dead_letter_table {
            return Err(err(
                "dead_letter_table",
                "must differ from ingest_table".into(),
            ));
        }
        let envelope = resolve_envelope(&raw.envelope).map_err(|(f, m)| err(&f, m))?;

        if let Some(types) = &raw.event_types {
            if types.is_empty() {
                return Err(err(
                    "event_types",
                    "an empty list would reject every event; omit the field to accept all".into(),
                ));
            }
            if let Some(t) = types.iter().find(|t| t.trim().is_empty()) {
                return Err(err("event_types", format!("`{t}` is blank")));
            }
        }

        let payload_schema = match &raw.payload_schema_file {
            None => None,
            Some(rel) => {
                let path = file.parent().unwrap_or(Path::new(".")).join(rel);
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    err(
                        "payload_schema_file",
                        format!("cannot read {}: {e}", path.display()),
                    )
                })?;
                let schema: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
                    err(
                        "payload_schema_file",
                        format!("{} is not JSON: {e}", path.display()),
                    )
                })?;
                jsonschema::validator_for(&schema).map_err(|e| {
                    err(
                        "payload_schema_file",
                        format!("{} is not a valid JSON Schema: {e}", path.display()),
                    )
                })?;
                Some(schema)
            }
        };

        let b = raw.batch;
        if b.max_rows == 0 || b.max_rows > 50_000 {
            return Err(err("batch.max_rows", "must be between 1 and 50000".into()));
        }
        if b.max_bytes < 1024 || b.max_bytes > MAX_APPEND_BYTES {
            return Err(err(
                "batch.max_bytes",
                format!(
                    "must be between 1024 and {MAX_APPEND_BYTES} (the AppendRows request limit is 10 MB)"
                ),
            ));
        }
        if b.max_delay_ms == 0 || b.max_delay_ms > 60_000 {
            return Err(err(
                "batch.max_delay_ms",
                "must be between 1 and 60000".into(),
            ));
        }
        if b.max_in_flight == 0 || b.max_in_flight > 64 {
            return Err(err(
                "batch.max_in_flight",
                "must be between 1 and 64".into(),
            ));
        }
        let fc = raw.flow_control;
        if fc.max_outstanding_messages <= 0 {
            return Err(err(
                "flow_control.max_outstanding_messages",
                "must be positive: an unbounded subscriber can exhaust memory".into(),
            ));
        }
        if fc.max_outstanding_bytes <= 0 {
            return Err(err(
                "flow_control.max_outstanding_bytes",
                "must be positive: an unbounded subscriber can exhaust memory".into(),
            ));
        }
        if fc.channel_capacity == 0 {
            return Err(err(
                "flow_control.channel_capacity",
                "must be at least 1".into(),
            ));
        }
        if !(10..=600).contains(&fc.ack_deadline_secs) {
            return Err(err(
                "flow_control.ack_deadline_secs",
                "must be between 10 and 600 (Pub/Sub's limits)".into(),
            ));
        }
        if raw.streams == 0 || raw.streams > 32 {
            return Err(err("streams", "must be between 1 and 32".into()));
        }
        let l = raw.limits;
        if l.max_message_bytes == 0 || l.max_message_bytes > MAX_APPEND_BYTES {
            return Err(err(
                "limits.max_message_bytes",
                format!("must be between 1 and {MAX_APPEND_BYTES}"),
            ));
        }
        if l.max_message_bytes > b.max_bytes {
            return Err(err(
                "limits.max_message_bytes",
                format!(
                    "{} exceeds batch.max_bytes ({}): such a message could never be appended",
                    l.max_message_bytes, b.max_bytes
                ),
            ));
        }
        if l.max_dead_letter_data_bytes == 0 || l.max_dead_letter_data_bytes > 4 * 1024 * 1024 {
            return Err(err(
                "limits.max_dead_letter_data_bytes",
                "must be between 1 and 4194304".into(),
            ));
        }
        if l.max_future_event_time_secs > 10 * 365 * 24 * 3600 {
            return Err(err(
                "limits.max_future_event_time_secs",
                "must be at most ten years (315360000)".into(),
            ));
        }
        if !(1..=128).contains(&l.max_json_depth) {
            return Err(err(
                "limits.max_json_depth",
                "must be between 1 and 128".into(),
            ));
        }

        let semantic = raw
            .semantic
            .map(|s| s.resolve(&raw.name, project, raw.event_types.as_deref()))
            .transpose()
            .map_err(|(f, m)| err(&f, m))?;

        Ok(ObjectSettings {
            name: raw.name,
            subscription,
            topic,
            ingest_table,
            dead_letter_table,
            envelope,
            event_types: raw.event_types,
            payload_schema,
            payload_schema_file: raw.payload_schema_file,
            batch: b,
            flow_control: fc,
            streams: raw.streams,
            limits: l,
            semantic,
            source_file: file.display().to_string(),
        })
    }
}

fn resolve_envelope(e: &EnvelopeFile) -> Result<EnvelopeSettings, (String, String)> {
    let parse = |field: &str, value: &Option<String>, default: &str| {
        let text = value.as_deref().unwrap_or(default);
        FieldSource::parse(text).map_err(|m| (format!("envelope.{field}"), m))
    };
    match e.format {
        EnvelopeFormat::Json => {
            let payload = parse("payload", &e.payload, "payload")?;
            if let FieldSource::Attribute(_) = payload {
                return Err((
                    "envelope.payload".into(),
                    "must be a JSON path into the body, not an attribute".into(),
                ));
            }
            Ok(EnvelopeSettings {
                format: e.format,
                event_id: parse("event_id", &e.event_id, "event_id")?,
                event_type: parse("event_type", &e.event_type, "event_type")?,
                event_time: parse("event_time", &e.event_time, "event_time")?,
                object_id: parse("object_id", &e.object_id, "object_id")?,
                payload,
            })
        }
        EnvelopeFormat::Attributes => {
            if e.payload.is_some() {
                return Err((
                    "envelope.payload".into(),
                    "not used by the `attributes` format: the whole body is the payload".into(),
                ));
            }
            Ok(EnvelopeSettings {
                format: e.format,
                event_id: parse("event_id", &e.event_id, "attributes.event_id")?,
                event_type: parse("event_type", &e.event_type, "attributes.event_type")?,
                event_time: parse("event_time", &e.event_time, "attributes.event_time")?,
                object_id: parse("object_id", &e.object_id, "attributes.object_id")?,
                payload: FieldSource::Path(Vec::new()),
            })
        }
        EnvelopeFormat::CloudEvents => {
            for (field, v) in [
                ("event_id", &e.event_id),
                ("event_type", &e.event_type),
                ("event_time", &e.event_time),
                ("payload", &e.payload),
            ] {
                if v.is_some() {
                    return Err((
                        format!("envelope.{field}"),
                        "fixed by CloudEvents 1.0 (id, type, time, data); remove it".into(),
                    ));
                }
            }
            Ok(EnvelopeSettings {
                format: e.format,
                event_id: FieldSource::parse("id").expect("static"),
                event_type: FieldSource::parse("type").expect("static"),
                event_time: FieldSource::parse("time").expect("static"),
                object_id: parse("object_id", &e.object_id, "subject")?,
                payload: FieldSource::parse("data").expect("static"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ref_parses_and_rejects() {
        let t = TableRef::parse("p-1.d_s.t1", "x").unwrap();
        assert_eq!(t.write_api_name(), "projects/p-1/datasets/d_s/tables/t1");
        assert_eq!(TableRef::parse("d.t", "proj").unwrap().project, "proj");
        assert!(TableRef::parse("a.b.c.d", "p").is_err());
        assert!(
            TableRef::parse("p.d-x.t", "p")
                .unwrap_err()
                .contains("dataset `d-x`")
        );
    }

    #[test]
    fn short_names_expand_with_the_project() {
        assert_eq!(
            full_name("subscriptions", "orders-sub", "p").unwrap(),
            "projects/p/subscriptions/orders-sub"
        );
        assert!(full_name("topics", "projects/p/subscriptions/x", "p").is_err());
        assert!(full_name("topics", "a", "p").is_err());
    }
}
