//! `provision --pubsub` for a schema'd topic: the contract's schema file becomes the Pub/Sub
//! schema (a new revision when the file changed since the latest one) and the topic is bound
//! to it with the declared encoding and revision range, so Pub/Sub refuses a message that does
//! not fit the contract at publish time.

use super::provision::Report;
use crate::configuration::{GcpSettings, SchemaEncoding, SchemaKind, TopicSchemaSettings};
use crate::envelope::record::avro_normalized;
use crate::gcp::configured;
use anyhow::Context;
use google_cloud_gax::error::rpc::Code;
use google_cloud_pubsub::client::{SchemaService, TopicAdmin};
use google_cloud_pubsub::model::{Encoding, Schema, SchemaSettings, SchemaView, Topic, schema};

/// Whether two definitions are the same schema: Avro's as JSON without documentation,
/// whatever their layout (logical types count); a `.proto` file by its text.
fn same_schema(a: &str, b: &str) -> bool {
    match (avro_normalized(a), avro_normalized(b)) {
        (Some(a), Some(b)) => a == b,
        _ => a == b,
    }
}

/// The topic's schema settings as the object file declares them.
fn settings(t: &TopicSchemaSettings) -> SchemaSettings {
    SchemaSettings::new()
        .set_schema(&t.schema)
        .set_encoding(match t.encoding {
            SchemaEncoding::Json => Encoding::Json,
            SchemaEncoding::Binary => Encoding::Binary,
        })
        .set_first_revision_id(t.first_revision_id.clone().unwrap_or_default())
        .set_last_revision_id(t.last_revision_id.clone().unwrap_or_default())
}

/// Creates or revises the schema, then binds `topic` to it.
pub async fn provision(
    gcp: &GcpSettings,
    t: &TopicSchemaSettings,
    topic: &str,
    topics: &TopicAdmin,
    report: &mut Report,
) -> anyhow::Result<()> {
    let schemas = configured!(SchemaService::builder(), &gcp.pubsub_endpoint, gcp)
        .build()
        .await?;
    let wanted = Schema::new()
        .set_type(match t.kind {
            SchemaKind::Avro => schema::Type::Avro,
            SchemaKind::Protobuf => schema::Type::ProtocolBuffer,
        })
        .set_definition(&t.definition);
    let (parent, id) = t
        .schema
        .rsplit_once("/schemas/")
        .context("a schema name is projects/<p>/schemas/<id>")?;
    match schemas
        .get_schema()
        .set_name(&t.schema)
        .set_view(SchemaView::Full)
        .send()
        .await
    {
        Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => {
            let created = schemas
                .create_schema()
                .set_parent(parent)
                .set_schema_id(id)
                .set_schema(wanted)
                .send()
                .await
                .with_context(|| format!("creating schema {}", t.schema))?;
            report.note_created(format!(
                "schema {} (revision {})",
                t.schema, created.revision_id
            ));
        }
        Ok(current) if same_schema(&current.definition, &t.definition) => {
            report.note_existing(format!(
                "schema {} (revision {})",
                t.schema, current.revision_id
            ));
        }
        Ok(_) => {
            let revised = schemas
                .commit_schema()
                .set_name(&t.schema)
                .set_schema(wanted)
                .send()
                .await
                .with_context(|| format!("committing a revision of schema {}", t.schema))?;
            report.updated.push(format!(
                "schema {}: new revision {} from {}",
                t.schema, revised.revision_id, t.file
            ));
        }
        Err(e) => return Err(e).with_context(|| format!("reading schema {}", t.schema)),
    }
    let wanted = settings(t);
    let current = topics
        .get_topic()
        .set_topic(topic)
        .send()
        .await
        .with_context(|| format!("reading topic {topic}"))?;
    if current.schema_settings.as_ref() == Some(&wanted) {
        return Ok(());
    }
    topics
        .update_topic()
        .set_topic(Topic::new().set_name(topic).set_schema_settings(wanted))
        .set_update_mask(google_cloud_wkt::FieldMask::default().set_paths(["schema_settings"]))
        .send()
        .await
        .with_context(|| format!("binding topic {topic} to schema {}", t.schema))?;
    report.updated.push(format!(
        "topic {topic}: bound to schema {} ({})",
        t.schema,
        t.encoding.pubsub_name()
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_schema_laid_out_differently_is_not_a_new_revision() {
        let a = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"string"}]}"#;
        let b = "{\n  \"type\": \"record\", \"name\": \"R\", \"doc\": \"x\",\n  \"fields\": [{\"name\": \"a\", \"type\": \"string\"}]\n}";
        let c = r#"{"type":"record","name":"R","fields":[{"name":"a","type":"long"}]}"#;
        let d = r#"{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"long","logicalType":"timestamp-micros"}}]}"#;
        assert!(same_schema(a, b));
        assert!(!same_schema(a, c));
        assert!(!same_schema(c, d), "a logical type is a change");
    }
}
