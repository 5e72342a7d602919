//! `contract export`: an object's contract as an Open Data Contract Standard v3.1.0 document.
//! The data product (the semantic view: typed, described columns, required flags, the key and
//! the not-NULL rules the Dataform assertions check) is the first schema object; the ingest
//! table follows as the raw schema. Owner, domain, description, version and the freshness
//! promise come from the object file. Built as JSON (every ODCS key spelled once, here) and
//! written as YAML; `tests/data/odcs/` holds the JSON Schema it is tested against. One document
//! per major of the data product (`document` of each `ObjectSettings::per_major`): an older
//! major's has `status: deprecated`, its sunset and successor.

use crate::configuration::{
    FieldType, ObjectSettings, SemanticField, SemanticSettings, duration_parts,
};
use crate::semantic::{KEY_COLUMN, LATEST_EVENT_COLUMNS, UNIQUE_KEY, non_null_columns, versions};
use crate::tables::INGEST;
use serde_json::{Map, Value, json};

/// The ODCS version written.
pub const API_VERSION: &str = "v3.1.0";

/// The contract of `object` as an ODCS document (JSON form): of the major its `semantic`
/// holds (the current one, or an older one from `ObjectSettings::per_major`).
pub fn document(object: &ObjectSettings) -> Value {
    let c = &object.contract;
    let mut doc = Map::new();
    doc.insert("apiVersion".into(), json!(API_VERSION));
    doc.insert("kind".into(), json!("DataContract"));
    let major = object.semantic.as_ref().map(|s| s.major);
    let deprecated = object.semantic.as_ref().is_some_and(|s| s.deprecated());
    let id = match major {
        Some(m) => format!("mesh-ingest.{}.v{m}", object.name),
        None => format!("mesh-ingest.{}", object.name),
    };
    doc.insert("id".into(), json!(id));
    doc.insert("name".into(), json!(object.name));
    // An older major's last version is not recorded: its MAJOR.0.0 stands for it.
    let version = match major {
        Some(m) if deprecated => format!("{m}.0.0"),
        _ => c.version.clone(),
    };
    doc.insert("version".into(), json!(version));
    doc.insert(
        "status".into(),
        json!(if deprecated { "deprecated" } else { "active" }),
    );
    if let Some(domain) = &c.domain {
        doc.insert("domain".into(), json!(domain));
    }
    doc.insert("description".into(), description(object));
    doc.insert("servers".into(), servers(object));
    let mut schema = Vec::new();
    if let Some(semantic) = &object.semantic {
        schema.push(product(object, semantic));
    }
    schema.push(raw(object));
    doc.insert("schema".into(), Value::Array(schema));
    if let Some(owner) = &c.owner {
        doc.insert("team".into(), json!({"name": owner}));
    }
    if let Some(secs) = c.freshness_secs {
        let (value, unit) = duration_parts(secs);
        let element = object.semantic.as_ref().map_or_else(
            || format!("{}.ingested_at", object.ingest_table.table),
            |s| format!("{}.{}", s.view, LATEST_EVENT_COLUMNS[0].name),
        );
        doc.insert(
            "slaProperties".into(),
            json!([{
                "property": "latency",
                "value": value,
                "unit": unit,
                "element": element,
                "description": "Freshness: an event is in the data product within this time of being published.",
            }]),
        );
    }
    doc.insert("customProperties".into(), custom_properties(object));
    Value::Object(doc)
}

fn description(object: &ObjectSettings) -> Value {
    let purpose = object
        .contract
        .description
        .clone()
        .or_else(|| object.semantic.as_ref().and_then(|s| s.description.clone()))
        .unwrap_or_else(|| format!("Every state change of the {} domain object.", object.name));
    let limitations = "Events that fail validation are not in the data product: they are in the dead-letter table until replayed (`mesh-ingest dlq replay`).";
    let limitations = match object.semantic.as_ref().and_then(versions::notice) {
        Some(notice) => format!("{notice} {limitations}"),
        None => limitations.to_string(),
    };
    json!({
        "purpose": purpose,
        "usage": "Read the data product (the first schema); the ingest table is the raw, append-only event log it is built from.",
        "limitations": limitations,
    })
}

fn servers(object: &ObjectSettings) -> Value {
    let mut servers = Vec::new();
    if let Some(s) = &object.semantic {
        servers.push(json!({
            "server": "data-product",
            "type": "bigquery",
            "project": s.project,
            "dataset": s.dataset,
            "description": "The semantic dataset: the typed, latest-state data product.",
        }));
    }
    let ingest = &object.ingest_table;
    servers.push(json!({
        "server": "ingest",
        "type": "bigquery",
        "project": ingest.project,
        "dataset": ingest.dataset,
        "description": "The append-only ingest log.",
    }));
    Value::Array(servers)
}

/// The semantic view: key, typed fields, which event set the state; quality rules from the
/// same facts as the Dataform assertions (a unique key, the columns never NULL).
fn product(object: &ObjectSettings, semantic: &SemanticSettings) -> Value {
    let non_null = non_null_columns(semantic);
    let own = |name: &str, bigquery_type: &str, description: &str, key: bool| {
        let mut p = property(name, logical_type(bigquery_type), bigquery_type);
        p.insert("description".into(), json!(description));
        p.insert("required".into(), json!(true));
        if key {
            p.insert("primaryKey".into(), json!(true));
            p.insert("primaryKeyPosition".into(), json!(1));
            p.insert("unique".into(), json!(true));
        }
        not_null_rule(&mut p);
        Value::Object(p)
    };
    let mut properties = vec![own(
        KEY_COLUMN.name,
        KEY_COLUMN.bigquery_type,
        KEY_COLUMN.description,
        true,
    )];
    properties.extend(
        semantic
            .fields
            .iter()
            .map(|f| field(f, non_null.contains(&f.name))),
    );
    properties.extend(
        LATEST_EVENT_COLUMNS
            .iter()
            .map(|c| own(c.name, c.bigquery_type, c.description, false)),
    );
    json!({
        "name": semantic.view,
        "physicalName": semantic.view_name(),
        "physicalType": "view",
        "logicalType": "object",
        "description": semantic.description.clone().unwrap_or_else(|| format!(
            "Latest valid state of each {} (one row per object; deleted objects absent).",
            object.name
        )),
        "properties": properties,
        "quality": [{
            "type": "library",
            "metric": "duplicateValues",
            "arguments": {"properties": UNIQUE_KEY},
            "mustBe": 0,
            "dimension": "uniqueness",
            "description": "One row per object.",
        }],
    })
}

fn property(name: &str, logical: Option<&str>, physical: &str) -> Map<String, Value> {
    let mut p = Map::new();
    p.insert("name".into(), json!(name));
    if let Some(l) = logical {
        p.insert("logicalType".into(), json!(l));
    }
    p.insert("physicalType".into(), json!(physical));
    if logical == Some("timestamp") {
        p.insert("logicalTypeOptions".into(), json!({"timezone": true}));
    }
    p
}

fn not_null_rule(p: &mut Map<String, Value>) {
    p.insert(
        "quality".into(),
        json!([{
            "type": "library",
            "metric": "nullValues",
            "mustBe": 0,
            "dimension": "completeness",
        }]),
    );
}

/// ODCS's logical type of a BigQuery type; `None` where ODCS has none (JSON, BYTES).
fn logical_type(bigquery_type: &str) -> Option<&'static str> {
    Some(match bigquery_type {
        "STRING" => "string",
        "INT64" => "integer",
        "NUMERIC" | "FLOAT64" => "number",
        "BOOL" => "boolean",
        "TIMESTAMP" => "timestamp",
        "DATE" => "date",
        "STRUCT" => "object",
        _ => return None,
    })
}

/// One typed field of the view (a STRUCT's sub-fields nested, a repeated field as an array).
fn field(f: &SemanticField, never_null: bool) -> Value {
    // The field itself, or the element type of a repeated one.
    let mut element = property(
        &f.name,
        logical_type(f.field_type.sql()),
        f.field_type.sql(),
    );
    if f.field_type == FieldType::Struct {
        element.insert(
            "properties".into(),
            Value::Array(f.fields.iter().map(|s| field(s, false)).collect()),
        );
    }
    let mut p = if f.repeated {
        // An array's `items` has no name of its own.
        element.remove("name");
        let mut p = property(&f.name, Some("array"), &f.column_type());
        p.insert("items".into(), Value::Object(element));
        p
    } else {
        element
    };
    if let Some(d) = &f.description {
        p.insert("description".into(), json!(d));
    }
    p.insert("required".into(), json!(f.required));
    if never_null {
        not_null_rule(&mut p);
    }
    if f.deprecated {
        p.insert("tags".into(), json!(["deprecated"]));
    }
    if let Some(c) = &f.classification {
        p.insert("classification".into(), json!(c));
    }
    Value::Object(p)
}

/// The ingest table as the raw schema: every column, partitioned by ingestion time.
fn raw(object: &ObjectSettings) -> Value {
    let layout = &INGEST;
    let properties: Vec<Value> = layout
        .columns
        .iter()
        .map(|c| {
            let physical = c.kind.bigquery_name();
            let mut p = property(c.name, logical_type(physical), physical);
            p.insert("description".into(), json!(c.description));
            p.insert("required".into(), json!(c.required));
            if c.name == layout.partition_by {
                p.insert("partitioned".into(), json!(true));
                p.insert("partitionKeyPosition".into(), json!(1));
            }
            if let Some(text) = object
                .payload_classification_text()
                .filter(|_| c.name == crate::tables::ingest::PAYLOAD)
            {
                let mut classes: Vec<&str> = object
                    .payload_classification
                    .values()
                    .map(String::as_str)
                    .collect();
                classes.sort_unstable();
                classes.dedup();
                p.insert("classification".into(), json!(classes.join(", ")));
                p.insert(
                    "description".into(),
                    json!(format!("{} {text}", c.description)),
                );
            }
            Value::Object(p)
        })
        .collect();
    json!({
        "name": object.ingest_table.table,
        "physicalName": object.ingest_table.to_string(),
        "physicalType": "table",
        "logicalType": "object",
        "description": format!(
            "Append-only log of every accepted {} event, payload as published (JSON).",
            object.name
        ),
        "properties": properties,
    })
}

fn custom_properties(object: &ObjectSettings) -> Value {
    let mut props = vec![
        json!({"property": "envelopeFormat", "value": object.envelope.format}),
        json!({"property": "deadLetterTable", "value": object.dead_letter_table.to_string()}),
    ];
    if let Some(topic) = &object.topic {
        props.push(json!({"property": "pubsubTopic", "value": topic}));
    }
    if let Some(types) = &object.event_types {
        props.push(json!({"property": "eventTypes", "value": types}));
    }
    if let Some(s) = &object.semantic
        && !s.deleted_when.is_empty()
    {
        props.push(json!({"property": "deletedWhen", "value": s.deleted_when}));
    }
    if let Some(schema) = &object.payload_schema_file {
        props.push(json!({"property": "payloadSchemaFile", "value": schema}));
    }
    if let Some(t) = &object.topic_schema {
        // Where events are checked at publish: the Pub/Sub schema, its file and encoding.
        props.push(json!({"property": "pubsubTopicSchema", "value": t.schema}));
        props.push(json!({"property": "pubsubTopicSchemaFile", "value": t.file}));
        props.push(
            json!({"property": "pubsubTopicSchemaEncoding", "value": t.encoding.pubsub_name()}),
        );
    }
    if let Some(s) = &object.semantic {
        props.push(json!({"property": "major", "value": s.major}));
        if let Some(sunset) = &s.sunset {
            props.push(json!({"property": "sunset", "value": sunset}));
        }
        if let Some(successor) = &s.successor {
            props.push(
                json!({"property": "successor", "value": s.qualified(successor).to_string()}),
            );
        }
    }
    Value::Array(props)
}

/// A JSON value as YAML text (block style).
pub fn to_yaml(doc: &Value) -> String {
    let mut out = String::new();
    yaml_rust2::YamlEmitter::new(&mut out)
        .dump(&yaml(doc))
        .expect("writing YAML to a String cannot fail");
    out.push('\n');
    out
}

/// Keys written first, in this order (ODCS's own order); the others follow alphabetically.
const KEY_ORDER: &[&str] = &[
    "apiVersion",
    "kind",
    "id",
    "name",
    "server",
    "version",
    "status",
    "domain",
    "type",
    "metric",
    "arguments",
    "mustBe",
    "project",
    "dataset",
    "physicalName",
    "physicalType",
    "logicalType",
    "logicalTypeOptions",
    "description",
    "required",
    "primaryKey",
    "primaryKeyPosition",
    "unique",
    "classification",
    "partitioned",
    "partitionKeyPosition",
    "team",
    "slaProperties",
    "servers",
    "schema",
    "properties",
    "items",
    "quality",
    "customProperties",
];

fn yaml(v: &Value) -> yaml_rust2::Yaml {
    use yaml_rust2::Yaml;
    match v {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            Yaml::Integer(n.as_i64().unwrap_or(i64::MAX))
        }
        Value::Number(n) => Yaml::Real(n.to_string()),
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(a) => Yaml::Array(a.iter().map(yaml).collect()),
        Value::Object(o) => {
            let rank = |k: &str| KEY_ORDER.iter().position(|x| *x == k).unwrap_or(usize::MAX);
            let mut entries: Vec<(&String, &Value)> = o.iter().collect();
            entries.sort_by(|a, b| (rank(a.0), a.0).cmp(&(rank(b.0), b.0)));
            Yaml::Hash(
                entries
                    .into_iter()
                    .map(|(k, v)| (Yaml::String(k.clone()), yaml(v)))
                    .collect(),
            )
        }
    }
}
