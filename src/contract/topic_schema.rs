//! The gate on a topic schema: Avro's schema resolution decides whether a revision is
//! compatible. A reader using the new schema must read every record written with the old one
//! (the Avro specification's "Schema Resolution", as `apache-avro` implements it): fields
//! added with a default, removed fields, promoted numbers (int → long → double) and added
//! enum symbols pass; a field added without a default, a type changed, a symbol removed (with
//! no default to take its place) do not.
//! Binding a topic to a schema (or changing the encoding or the schema it is bound to) is
//! breaking for producers: Pub/Sub starts refusing what they publish. Protocol Buffer
//! revisions follow that format's rules (`proto_diff`).

use super::diff::{ChangeKind, Changes};
use crate::configuration::{SchemaKind, TopicSchemaSettings};
use crate::envelope::record::{avro_logical_types, proto_message};
use apache_avro::Schema;
use apache_avro::schema_compatibility::{Compatibility, SchemaCompatibility};

pub(super) fn diff(
    old: Option<&TopicSchemaSettings>,
    new: Option<&TopicSchemaSettings>,
    c: &mut Changes,
) {
    let (o, n) = match (old, new) {
        (None, None) => return,
        (None, Some(n)) => {
            return c.add(
                ChangeKind::TopicSchemaAdded,
                "topic_schema",
                format!(
                    "the topic is bound to {} ({}): Pub/Sub refuses what does not fit",
                    n.schema,
                    n.encoding.pubsub_name()
                ),
            );
        }
        (Some(o), None) => {
            return c.add(
                ChangeKind::TopicSchemaRemoved,
                "topic_schema",
                o.schema.clone(),
            );
        }
        (Some(o), Some(n)) => (o, n),
    };
    let binding = |t: &TopicSchemaSettings| {
        format!(
            "{} {} revisions {}..{}",
            t.schema,
            t.encoding.pubsub_name(),
            t.first_revision_id.as_deref().unwrap_or("first"),
            t.last_revision_id.as_deref().unwrap_or("latest")
        )
    };
    if binding(o) != binding(n) {
        c.add(
            ChangeKind::TopicSchemaBindingChanged,
            "topic_schema",
            format!("{} → {}", binding(o), binding(n)),
        );
    }
    if n.kind == SchemaKind::Protobuf || o.kind == SchemaKind::Protobuf {
        return protobuf(o, n, c);
    }
    avro(o, n, c);
}

/// Avro's resolution rules, old records read with the new schema.
fn avro(o: &TopicSchemaSettings, n: &TopicSchemaSettings, c: &mut Changes) {
    let (Ok(writer), Ok(reader)) = (
        Schema::parse_str(&o.definition),
        Schema::parse_str(&n.definition),
    ) else {
        return; // `check` refuses a file that does not parse
    };
    // Parsing Canonical Form drops logical types, and resolution lets `long` read any
    // timestamp: a logical type changed at a position both schemas have changes what every
    // record there means.
    let (old_logical, new_logical) = (
        avro_logical_types(&o.definition),
        avro_logical_types(&n.definition),
    );
    let changed: Vec<String> = old_logical
        .iter()
        .filter_map(|(path, lt)| match new_logical.get(path) {
            Some(nlt) if nlt != lt => Some(format!(
                "{}: {} → {}",
                if path.is_empty() {
                    "(the record)"
                } else {
                    path.trim_start_matches('.')
                },
                lt.as_deref().unwrap_or("no logical type"),
                nlt.as_deref().unwrap_or("no logical type")
            )),
            _ => None,
        })
        .collect();
    if !changed.is_empty() {
        return c.add(
            ChangeKind::TopicSchemaIncompatible,
            "topic_schema.file",
            format!(
                "{}: a logical type changed ({})",
                n.file,
                changed.join("; ")
            ),
        );
    }
    if writer.canonical_form() == reader.canonical_form() {
        return;
    }
    match SchemaCompatibility::can_read(&writer, &reader) {
        Ok(Compatibility::Full) => c.add(
            ChangeKind::TopicSchemaRevised,
            "topic_schema.file",
            format!("{}: the new schema reads records of the old one", n.file),
        ),
        Ok(Compatibility::Partial) => c.add(
            ChangeKind::TopicSchemaIncompatible,
            "topic_schema.file",
            format!(
                "{}: the new schema cannot read every record of the old one (an enum symbol or \
                 a union branch is missing, and no default takes its place)",
                n.file
            ),
        ),
        Err(e) => c.add(
            ChangeKind::TopicSchemaIncompatible,
            "topic_schema.file",
            format!(
                "{}: the new schema cannot read records of the old one: {e}",
                n.file
            ),
        ),
    }
}

/// Protocol Buffers' breaking rules (`proto_diff`); a file that does not compile, or a kind
/// changed between Avro and Protocol Buffers, cannot be analysed: breaking until reviewed.
fn protobuf(o: &TopicSchemaSettings, n: &TopicSchemaSettings, c: &mut Changes) {
    if o.definition == n.definition && o.message == n.message {
        return;
    }
    let compile = |t: &TopicSchemaSettings| match t.kind {
        SchemaKind::Protobuf => proto_message(&t.definition, t.message.as_deref()),
        SchemaKind::Avro => Err("an Avro schema".to_string()),
    };
    match (compile(o), compile(n)) {
        (Ok(old), Ok(new)) => super::proto_diff::diff(&old, &new, &n.file, c),
        (Err(e), _) | (_, Err(e)) => c.add(
            ChangeKind::TopicSchemaNotAnalysed,
            "topic_schema.file",
            format!("{}: cannot compare with the old schema: {e}", n.file),
        ),
    }
}
