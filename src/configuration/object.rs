//! One domain object's configuration (`config/objects/<object>.yaml`): where its events come
//! from, how their envelope is read, where its rows go and how they are batched.

use super::contract::{self, ContractSettings, SlaFile};
use super::envelope::{EnvelopeFile, EnvelopeSettings};
use super::semantic::{SemanticFile, SemanticSettings};
use super::table_ref::TableRef;
use super::topic_schema::{TopicSchemaFile, TopicSchemaSettings};
use super::tuning::{BatchSettings, FlowControlSettings, LimitSettings};
use super::{ConfigError, FieldError, PolicyTagSetting};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, Serialize)]
pub struct ObjectSettings {
    pub name: String,
    /// Full name: `projects/<p>/subscriptions/<s>`.
    pub subscription: String,
    /// Full name: `projects/<p>/topics/<t>`; only needed to provision emulators and to publish.
    pub topic: Option<String>,
    /// The Pub/Sub topic schema the producers publish with, if the topic has one.
    pub topic_schema: Option<TopicSchemaSettings>,
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
    /// The typed latest-state data product generated from the ingest table, if configured:
    /// its current major.
    pub semantic: Option<SemanticSettings>,
    /// Older majors of the data product still maintained beside `semantic`, newest first.
    pub older_majors: Vec<SemanticSettings>,
    /// Owner, domain, description, version and freshness: the contract's metadata.
    pub contract: ContractSettings,
    /// Classified parts of the payload (a dotted path → `pii`, `confidential`, …): the ingest
    /// table keeps the payload as one JSON column, so they classify that column.
    pub payload_classification: BTreeMap<String, String>,
    /// The policy tag the ingest table's `payload` column gets: the first of `gcp.policy_tags`
    /// whose classification a payload path has (resolved at load).
    pub payload_policy_tag: Option<String>,
    /// The file this object was read from, for error messages.
    pub source_file: String,
}

/// The object file as written; resolved into `ObjectSettings`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ObjectFile {
    name: String,
    subscription: String,
    #[serde(default)]
    topic: Option<String>,
    #[serde(default)]
    topic_schema: Option<TopicSchemaFile>,
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
    #[serde(default)]
    owner: Option<String>,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    sla: Option<SlaFile>,
    #[serde(default)]
    payload_classification: BTreeMap<String, String>,
}

fn one() -> usize {
    1
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
    /// The object once per maintained major of its data product, newest first, each with that
    /// major as its `semantic` and no older ones: every generator that builds one data product
    /// builds each major alike, from the one ingest log. Empty without a `semantic:` section.
    pub fn per_major(&self) -> Vec<ObjectSettings> {
        self.semantic
            .iter()
            .chain(&self.older_majors)
            .map(|s| ObjectSettings {
                semantic: Some(s.clone()),
                older_majors: Vec::new(),
                ..self.clone()
            })
            .collect()
    }

    /// Resolves the policy tags of every classified field (all majors) and of the payload
    /// column from `tags` (in order: the first that applies to the payload wins).
    pub fn resolve_policy_tags(&mut self, tags: &[PolicyTagSetting]) {
        for s in self.semantic.iter_mut().chain(self.older_majors.iter_mut()) {
            for f in &mut s.fields {
                f.resolve_policy_tags(tags);
            }
        }
        self.payload_policy_tag = tags
            .iter()
            .find(|t| {
                self.payload_classification
                    .values()
                    .any(|c| *c == t.classification)
            })
            .map(|t| t.tag.clone());
    }

    /// The maintained majors of the data product, newest first.
    pub fn majors(&self) -> impl Iterator<Item = &SemanticSettings> {
        self.semantic.iter().chain(&self.older_majors)
    }

    /// The capacity of the channel between the source and the sink (resolved at load).
    pub fn channel_capacity(&self) -> usize {
        self.flow_control.channel_capacity.unwrap_or(1).max(1)
    }

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
        raw.resolve(file, project).map_err(|e| e.at(file))
    }
}

impl ObjectFile {
    fn resolve(mut self, file: &Path, project: &str) -> Result<ObjectSettings, FieldError> {
        self.validate_name()?;
        let subscription = full_name("subscriptions", &self.subscription, project)
            .map_err(|m| FieldError::new("subscription", m))?;
        let topic = self
            .topic
            .as_deref()
            .map(|t| full_name("topics", t, project))
            .transpose()
            .map_err(|m| FieldError::new("topic", m))?;
        let ingest_table = TableRef::parse(&self.ingest_table, project)
            .map_err(|m| FieldError::new("ingest_table", m))?;
        let dead_letter_table = TableRef::parse(&self.dead_letter_table, project)
            .map_err(|m| FieldError::new("dead_letter_table", m))?;
        if ingest_table == dead_letter_table {
            return Err(FieldError::new(
                "dead_letter_table",
                "must differ from ingest_table",
            ));
        }
        let envelope = self.envelope.resolve()?;
        let topic_schema = self
            .topic_schema
            .take()
            .map(|t| t.resolve(&self.name, file, project))
            .transpose()?;
        self.validate_event_types()?;
        let payload_schema = self.payload_schema(file)?;
        self.batch.validate()?;
        if self.streams == 0 || self.streams > 32 {
            return Err(FieldError::new("streams", "must be between 1 and 32"));
        }
        let mut flow_control = self.flow_control;
        flow_control.resolve(self.streams)?;
        self.limits.validate(&self.batch)?;
        self.validate_payload_classification()?;
        let contract = contract::resolve(
            self.owner,
            self.domain,
            self.description,
            self.version,
            self.sla,
        )?;
        let (semantic, older_majors) = self
            .semantic
            .map(|s| {
                s.resolve(
                    &self.name,
                    project,
                    self.event_types.as_deref(),
                    contract.major(),
                )
            })
            .transpose()?
            .map_or((None, Vec::new()), |(current, older)| {
                (Some(current), older)
            });
        Ok(ObjectSettings {
            name: self.name,
            subscription,
            topic,
            topic_schema,
            ingest_table,
            dead_letter_table,
            envelope,
            event_types: self.event_types,
            payload_schema,
            payload_schema_file: self.payload_schema_file,
            batch: self.batch,
            flow_control,
            streams: self.streams,
            limits: self.limits,
            semantic,
            older_majors,
            contract,
            payload_classification: self.payload_classification,
            payload_policy_tag: None,
            source_file: file.display().to_string(),
        })
    }

    fn validate_name(&self) -> Result<(), FieldError> {
        let name_ok = !self.name.is_empty()
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if name_ok {
            return Ok(());
        }
        Err(FieldError::new(
            "name",
            format!(
                "`{}` must be lower-case letters, digits and underscores",
                self.name
            ),
        ))
    }

    fn validate_payload_classification(&self) -> Result<(), FieldError> {
        for (path, class) in &self.payload_classification {
            let field = format!("payload_classification.{path}");
            if path.split('.').any(str::is_empty) {
                return Err(FieldError::new(field, "not a dotted path into the payload"));
            }
            super::semantic::classification_ok(class).map_err(|m| FieldError::new(field, m))?;
        }
        Ok(())
    }

    fn validate_event_types(&self) -> Result<(), FieldError> {
        let Some(types) = &self.event_types else {
            return Ok(());
        };
        if types.is_empty() {
            return Err(FieldError::new(
                "event_types",
                "an empty list would reject every event; omit the field to accept all",
            ));
        }
        if let Some(t) = types.iter().find(|t| t.trim().is_empty()) {
            return Err(FieldError::new("event_types", format!("`{t}` is blank")));
        }
        Ok(())
    }

    /// Reads the JSON Schema file (relative to the object file) and checks it compiles.
    fn payload_schema(&self, file: &Path) -> Result<Option<serde_json::Value>, FieldError> {
        let Some(rel) = &self.payload_schema_file else {
            return Ok(None);
        };
        let invalid = |m: String| FieldError::new("payload_schema_file", m);
        let path = file.parent().unwrap_or(Path::new(".")).join(rel);
        let text = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        let schema: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| invalid(format!("{} is not JSON: {e}", path.display())))?;
        jsonschema::validator_for(&schema).map_err(|e| {
            invalid(format!(
                "{} is not a valid JSON Schema: {e}",
                path.display()
            ))
        })?;
        Ok(Some(schema))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
