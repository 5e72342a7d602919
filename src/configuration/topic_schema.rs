//! The `topic_schema:` section of an object file: the Pub/Sub topic schema the producers
//! publish with (an Avro `.avsc` or a Protocol Buffer `.proto` file), the encoding the topic is bound with, and the schema's
//! id in Pub/Sub. The file is the contract's schema: `provision --pubsub` creates it (and a new
//! revision when the file changed) and binds it to the topic; the service decodes each message
//! with the revision Pub/Sub names in its attributes.

use super::FieldError;
use serde::{Deserialize, Serialize};
use std::path::Path;

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SchemaKind {
    Avro,
    Protobuf,
}

/// How messages are encoded on a schema'd topic (Pub/Sub's `Encoding`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SchemaEncoding {
    Json,
    Binary,
}

impl SchemaEncoding {
    /// As Pub/Sub spells it (the `googclient_schemaencoding` attribute, the topic's setting).
    pub fn pubsub_name(self) -> &'static str {
        match self {
            SchemaEncoding::Json => "JSON",
            SchemaEncoding::Binary => "BINARY",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TopicSchemaSettings {
    #[serde(rename = "type")]
    pub kind: SchemaKind,
    /// The schema file as written (relative to the object file).
    pub file: String,
    /// Its text: the definition Pub/Sub gets.
    #[serde(skip)]
    pub definition: String,
    pub encoding: SchemaEncoding,
    /// Protocol Buffers: the message the topic carries (default: the file's only top-level
    /// message).
    pub message: Option<String>,
    /// Full name: `projects/<p>/schemas/<id>`.
    pub schema: String,
    /// The revisions the topic accepts (Pub/Sub's `first_revision_id` / `last_revision_id`);
    /// none: every revision.
    pub first_revision_id: Option<String>,
    pub last_revision_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TopicSchemaFile {
    #[serde(rename = "type")]
    kind: SchemaKind,
    file: String,
    encoding: SchemaEncoding,
    #[serde(default)]
    message: Option<String>,
    /// The schema's id in Pub/Sub; default: the object's name.
    #[serde(default)]
    schema_id: Option<String>,
    #[serde(default)]
    first_revision_id: Option<String>,
    #[serde(default)]
    last_revision_id: Option<String>,
}

impl TopicSchemaFile {
    /// Reads the schema file (relative to the object file) and checks that it parses.
    pub(super) fn resolve(
        self,
        object: &str,
        object_file: &Path,
        project: &str,
    ) -> Result<TopicSchemaSettings, FieldError> {
        let path = object_file
            .parent()
            .unwrap_or(Path::new("."))
            .join(&self.file);
        let invalid = |m: String| FieldError::new("topic_schema.file", m);
        let definition = std::fs::read_to_string(&path)
            .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
        // A Protocol Buffer file is compiled when its decoder is built (`check` builds them).
        if self.kind == SchemaKind::Avro {
            apache_avro::Schema::parse_str(&definition)
                .map_err(|e| invalid(format!("{} is not an Avro schema: {e}", path.display())))?;
        }
        if self.message.is_some() && self.kind == SchemaKind::Avro {
            return Err(FieldError::new(
                "topic_schema.message",
                "only a Protocol Buffer schema names its message",
            ));
        }
        let id = self.schema_id.unwrap_or_else(|| object.replace('_', "-"));
        let id_ok = (3..=255).contains(&id.len())
            && id.starts_with(|c: char| c.is_ascii_alphabetic())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.~+%".contains(c));
        if !id_ok {
            return Err(FieldError::new(
                "topic_schema.schema_id",
                format!("`{id}` is not a Pub/Sub schema id (3–255 characters, a letter first)"),
            ));
        }
        Ok(TopicSchemaSettings {
            kind: self.kind,
            file: self.file,
            definition,
            encoding: self.encoding,
            message: self.message,
            schema: format!("projects/{project}/schemas/{id}"),
            first_revision_id: self.first_revision_id,
            last_revision_id: self.last_revision_id,
        })
    }
}
