//! The change classes, table-driven: each case edits a base object file (or its JSON Schema)
//! and names the change kind it must produce and its class; a compatible case must produce no
//! breaking change at all, a breaking one at least one.

use super::Class::{self, Breaking, Compatible};
use super::diff::{ChangeKind, ChangeKind as K, breaking, diff};
use crate::configuration::ObjectSettings;
use std::path::Path;

const BASE: &str = "name: order
subscription: order-sub
topic: order-topic
ingest_table: ing.events
dead_letter_table: ing.dead
envelope:
  format: json
  object_id: payload.order_id
event_types: [OrderCreated, OrderUpdated, OrderDeleted]
payload_schema_file: schema.json
limits:
  max_message_bytes: 1048576
owner: team-a
sla:
  freshness: 15m
semantic:
  dataset: sem
  deleted_when: [OrderDeleted]
  fields:
    - {name: order_id, type: STRING, required: true, description: Order number.}
    - {name: total, type: NUMERIC}
    - {name: qty, type: INT64}
    - {name: note, type: STRING, deprecated: true}
    - {name: tags, type: STRING, repeated: true}
    - name: items
      type: STRUCT
      repeated: true
      fields:
        - {name: sku, type: STRING}
        - {name: price, type: NUMERIC}
";

const SCHEMA: &str = r#"{"type": "object", "required": ["order_id"],
 "properties": {
  "order_id": {"type": "string", "maxLength": 64},
  "status": {"type": "string", "enum": ["created", "paid", "shipped"]},
  "total": {"type": "number", "minimum": 0},
  "items": {"type": "array", "items": {"type": "object", "properties": {"sku": {"type": "string"}}}}}}"#;

/// One row of the table: what to edit in the object file and in the schema (`from`, `to`;
/// empty `from` = no edit), and the change that must follow.
struct Case {
    yaml: (&'static str, &'static str),
    schema: (&'static str, &'static str),
    kind: ChangeKind,
    class: Class,
}

const fn y(from: &'static str, to: &'static str, kind: ChangeKind, class: Class) -> Case {
    Case {
        yaml: (from, to),
        schema: ("", ""),
        kind,
        class,
    }
}

const fn s(from: &'static str, to: &'static str, kind: ChangeKind, class: Class) -> Case {
    Case {
        yaml: ("", ""),
        schema: (from, to),
        kind,
        class,
    }
}

const QTY: &str = "    - {name: qty, type: INT64}\n";

const CASES: &[Case] = &[
    y(
        "{name: qty, type: INT64}",
        "{name: qty, type: INT64, classification: confidential}",
        K::ClassificationAdded,
        Breaking,
    ),
    y(
        QTY,
        "    - {name: qty, type: INT64}\n    - {name: channel, type: STRING}\n",
        K::FieldAdded,
        Compatible,
    ),
    y(QTY, "", K::FieldRemoved, Breaking),
    y(
        "    - {name: qty, type: INT64}",
        "    - {name: quantity, type: INT64}",
        K::FieldRemoved,
        Breaking,
    ),
    y(
        "    - {name: note, type: STRING, deprecated: true}\n",
        "",
        K::FieldRemovedAfterDeprecation,
        Compatible,
    ),
    y(
        "{name: total, type: NUMERIC}",
        "{name: total, type: NUMERIC, deprecated: true}",
        K::FieldDeprecated,
        Compatible,
    ),
    y(
        "{name: note, type: STRING, deprecated: true}",
        "{name: note, type: STRING}",
        K::FieldUndeprecated,
        Compatible,
    ),
    y(
        "{name: total, type: NUMERIC}",
        "{name: total, type: STRING}",
        K::FieldTypeChanged,
        Breaking,
    ),
    y(
        "{name: total, type: NUMERIC}",
        "{name: total, type: INT64}",
        K::FieldTypeChanged,
        Breaking,
    ),
    y(
        "{name: qty, type: INT64}",
        "{name: qty, type: NUMERIC}",
        K::FieldTypeWidened,
        Compatible,
    ),
    // BigQuery coerces these, but FLOAT64 rounds money and ids above 2^53.
    y(
        "{name: total, type: NUMERIC}",
        "{name: total, type: FLOAT64}",
        K::FieldTypeChanged,
        Breaking,
    ),
    y(
        "{name: qty, type: INT64}",
        "{name: qty, type: FLOAT64}",
        K::FieldTypeChanged,
        Breaking,
    ),
    y(
        "{name: total, type: NUMERIC}",
        "{name: total, type: NUMERIC, required: true}",
        K::FieldBecameRequired,
        Breaking,
    ),
    y(
        "type: STRING, required: true,",
        "type: STRING,",
        K::FieldBecameOptional,
        Compatible,
    ),
    y(
        "{name: tags, type: STRING, repeated: true}",
        "{name: tags, type: STRING}",
        K::FieldRepeatedChanged,
        Breaking,
    ),
    y(
        "{name: qty, type: INT64}",
        "{name: qty, path: quantity, type: INT64}",
        K::FieldPathChanged,
        Breaking,
    ),
    y(
        "Order number.",
        "The order number.",
        K::DescriptionChanged,
        Compatible,
    ),
    y(
        "        - {name: price, type: NUMERIC}\n",
        "",
        K::FieldRemoved,
        Breaking,
    ),
    y(
        "        - {name: sku, type: STRING}",
        "        - {name: sku, type: INT64}",
        K::FieldTypeChanged,
        Breaking,
    ),
    y(
        "OrderDeleted]\npayload",
        "OrderDeleted, OrderPaid]\npayload",
        K::EventTypeAdded,
        Compatible,
    ),
    y("OrderUpdated, ", "", K::EventTypeRemoved, Breaking),
    y(
        "event_types: [OrderCreated, OrderUpdated, OrderDeleted]\n",
        "",
        K::EventTypesOpened,
        Compatible,
    ),
    y(
        "object_id: payload.order_id",
        "object_id: payload.id",
        K::EnvelopePathChanged,
        Breaking,
    ),
    y(
        "  format: json\n",
        "  format: json\n  event_time: payload.updated_at\n",
        K::EnvelopePathChanged,
        Breaking,
    ),
    y(
        "  format: json\n  object_id: payload.order_id\n",
        "  format: cloudevents\n",
        K::EnvelopeFormatChanged,
        Breaking,
    ),
    y(
        "deleted_when: [OrderDeleted]",
        "deleted_when: []",
        K::DeletionChanged,
        Breaking,
    ),
    y(
        "  dataset: sem\n",
        "  dataset: sem2\n",
        K::SemanticMoved,
        Breaking,
    ),
    y("1048576", "524288", K::LimitNarrowed, Breaking),
    y("1048576", "2097152", K::LimitWidened, Compatible),
    y(
        "topic: order-topic",
        "topic: orders-v2",
        K::TopicChanged,
        Breaking,
    ),
    y(
        "subscription: order-sub",
        "subscription: order-sub-2",
        K::SubscriptionChanged,
        Compatible,
    ),
    y(
        "ingest_table: ing.events",
        "ingest_table: ing.events_v2",
        K::TableChanged,
        Breaking,
    ),
    y(
        "owner: team-a",
        "owner: team-b",
        K::MetadataChanged,
        Compatible,
    ),
    y(
        "freshness: 15m",
        "freshness: 5m",
        K::MetadataChanged,
        Compatible,
    ),
    y(
        "owner: team-a\n",
        "owner: team-a\nstreams: 2\n",
        K::OperationalChanged,
        Compatible,
    ),
    y(
        "payload_schema_file: schema.json\n",
        "",
        K::SchemaRemoved,
        Compatible,
    ),
    s(
        r#""required": ["order_id"]"#,
        r#""required": ["order_id", "status"]"#,
        K::SchemaPropertyRequired,
        Breaking,
    ),
    s(
        r#""paid", "shipped"]"#,
        r#""paid"]"#,
        K::SchemaEnumValueRemoved,
        Breaking,
    ),
    s(
        r#""paid", "shipped"]"#,
        r#""paid", "shipped", "cancelled"]"#,
        K::SchemaEnumValueAdded,
        Compatible,
    ),
    s(
        r#"{"type": "number", "minimum": 0}"#,
        r#"{"type": "integer", "minimum": 0}"#,
        K::SchemaTypeNarrowed,
        Breaking,
    ),
    s(
        r#"{"type": "number", "minimum": 0}"#,
        r#"{"type": ["number", "string"], "minimum": 0}"#,
        K::SchemaTypeWidened,
        Compatible,
    ),
    s(
        r#""required": ["order_id"],"#,
        r#""required": ["order_id"], "additionalProperties": false,"#,
        K::SchemaClosed,
        Breaking,
    ),
    // The base schema is open: a payload may already carry `currency` as a number.
    s(
        r#""properties": {"#,
        r#""properties": {"currency": {"type": "string"},"#,
        K::SchemaPropertyAddedToOpen,
        Breaking,
    ),
    s(
        r#""properties": {"#,
        r#""properties": {"currency": {"description": "ISO 4217"},"#,
        K::SchemaPropertyAdded,
        Compatible,
    ),
    s(
        r#""maxLength": 64"#,
        r#""maxLength": 32"#,
        K::SchemaBoundNarrowed,
        Breaking,
    ),
    s(
        r#""minimum": 0"#,
        r#""minimum": -10"#,
        K::SchemaBoundWidened,
        Compatible,
    ),
    s(
        r#""type": "number", "minimum": 0"#,
        r#""type": "number""#,
        K::SchemaConstraintRemoved,
        Compatible,
    ),
    s(
        r#""maxLength": 64"#,
        r#""maxLength": 64, "minLength": 1"#,
        K::SchemaConstraintAdded,
        Breaking,
    ),
    s(
        r#""maxLength": 64"#,
        r#""maxLength": 64, "pattern": "^o""#,
        K::SchemaNotAnalysed,
        Breaking,
    ),
    s(
        r#"{"type": "object", "required""#,
        r#"{"type": "object", "description": "An order.", "required""#,
        K::SchemaAnnotationChanged,
        Compatible,
    ),
    s(
        r#""sku": {"type": "string"}"#,
        r#""sku": {"type": "integer"}"#,
        K::SchemaTypeNarrowed,
        Breaking,
    ),
];

fn load(dir: &Path, yaml: &str, schema: &str) -> ObjectSettings {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("schema.json"), schema).unwrap();
    let file = dir.join("order.yaml");
    std::fs::write(&file, yaml).unwrap();
    ObjectSettings::load(&file, "p").unwrap_or_else(|e| panic!("{e}\n{yaml}"))
}

fn edited(base: &str, (from, to): (&str, &str)) -> String {
    if from.is_empty() {
        return base.to_string();
    }
    assert!(base.contains(from), "the base holds `{from}`");
    base.replacen(from, to, 1)
}

#[test]
fn every_change_kind_has_its_class() {
    let dir = tempfile::tempdir().unwrap();
    let old = load(&dir.path().join("old"), BASE, SCHEMA);
    assert!(diff(std::slice::from_ref(&old), std::slice::from_ref(&old)).is_empty());
    let mut kinds = std::collections::HashSet::new();
    for (i, case) in CASES.iter().enumerate() {
        let new = load(
            &dir.path().join(format!("new{i}")),
            &edited(BASE, case.yaml),
            &edited(SCHEMA, case.schema),
        );
        let changes = diff(std::slice::from_ref(&old), std::slice::from_ref(&new));
        let found = changes.iter().find(|c| c.kind == case.kind);
        assert!(
            found.is_some(),
            "case {i}: no {:?} in {changes:#?}",
            case.kind
        );
        assert_eq!(
            found.unwrap().class,
            case.class,
            "case {i}: {:?}",
            case.kind
        );
        let expect_breaking = case.class == Breaking;
        assert_eq!(
            breaking(&changes) > 0,
            expect_breaking,
            "case {i}: {changes:#?}"
        );
        kinds.insert(case.kind);
    }
    assert!(kinds.len() >= 20, "{} change kinds covered", kinds.len());
}

/// The kinds whose old version differs from the base: one pair (old, new) each.
#[test]
fn changes_from_another_old_version() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name);
    let base = load(&at("base"), BASE, SCHEMA);
    let no_schema = load(
        &at("a"),
        &BASE.replace("payload_schema_file: schema.json\n", ""),
        SCHEMA,
    );
    let no_types = load(
        &at("b"),
        &BASE
            .replace(
                "event_types: [OrderCreated, OrderUpdated, OrderDeleted]\n",
                "",
            )
            .replace("deleted_when: [OrderDeleted]", "deleted_when: []"),
        SCHEMA,
    );
    let with_types = load(
        &at("c"),
        &BASE.replace("deleted_when: [OrderDeleted]", "deleted_when: []"),
        SCHEMA,
    );
    let no_semantic = load(&at("d"), BASE.split("semantic:").next().unwrap(), SCHEMA);
    let closed = SCHEMA.replace(
        r#""required": ["order_id"],"#,
        r#""required": ["order_id"], "additionalProperties": false,"#,
    );
    let closed_old = load(&at("e"), BASE, &closed);
    let closed_new = load(
        &at("f"),
        BASE,
        &closed.replace(
            r#""status": {"type": "string", "enum": ["created", "paid", "shipped"]},"#,
            "",
        ),
    );
    let one = std::slice::from_ref;
    let pairs: [(&[ObjectSettings], &[ObjectSettings], ChangeKind, Class); 7] = [
        (&[], one(&base), K::ObjectAdded, Compatible),
        (one(&base), &[], K::ObjectRemoved, Breaking),
        (one(&no_schema), one(&base), K::SchemaAdded, Breaking),
        (
            one(&no_types),
            one(&with_types),
            K::EventTypesRestricted,
            Breaking,
        ),
        (one(&no_semantic), one(&base), K::SemanticAdded, Compatible),
        (one(&base), one(&no_semantic), K::SemanticRemoved, Breaking),
        (
            one(&closed_old),
            one(&closed_new),
            K::SchemaPropertyRemoved,
            Breaking,
        ),
    ];
    for (old, new, kind, class) in pairs {
        let changes = diff(old, new);
        let found = changes.iter().find(|c| c.kind == kind);
        assert!(found.is_some(), "no {kind:?} in {changes:#?}");
        assert_eq!(found.unwrap().class, class, "{kind:?}");
    }
}

#[test]
fn the_text_report_lists_breaking_changes_first() {
    let dir = tempfile::tempdir().unwrap();
    let old = load(&dir.path().join("old"), BASE, SCHEMA);
    let new = load(
        &dir.path().join("new"),
        &BASE.replace("Order number.", "Id.").replace(QTY, ""),
        SCHEMA,
    );
    let text = super::diff::to_text(&diff(&[old], &[new]));
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("breaking   order v1 semantic.fields.qty (field_removed)"),
        "{text}"
    );
    assert!(
        lines[1].starts_with("compatible order v1 semantic.fields.order_id.description"),
        "{text}"
    );
    assert_eq!(lines[2], "2 change(s): 1 breaking, 1 compatible");
}

/// A pair of whole payload schemas (old, new), the change that must follow, its class, and
/// words its detail must hold. For what the base schema cannot show: closed and partially
/// open content models (`additionalProperties: {schema}`, `patternProperties`).
struct SchemaPair {
    old: &'static str,
    new: &'static str,
    kind: ChangeKind,
    class: Class,
    says: &'static str,
}

const fn pair(
    old: &'static str,
    new: &'static str,
    kind: ChangeKind,
    class: Class,
    says: &'static str,
) -> SchemaPair {
    SchemaPair {
        old,
        new,
        kind,
        class,
        says,
    }
}

const OPEN: &str = r#"{"type": "object", "properties": {"id": {"type": "string"}}}"#;
const CLOSED: &str = r#"{"type": "object", "properties": {"id": {"type": "string"}}, "additionalProperties": false}"#;
/// Closed but for the names `x_…`, which must be strings.
const X_STRINGS: &str = r#"{"type": "object", "properties": {"id": {"type": "string"}},
 "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#;

const SCHEMA_PAIRS: &[SchemaPair] = &[
    // A property added: narrowing unless the old schema refused the name, or the new
    // description accepts all the old schema accepted under it.
    pair(
        OPEN,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}}}"#,
        K::SchemaPropertyAddedToOpen,
        Breaking,
        "`n` added to an open schema",
    ),
    pair(
        OPEN,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "n": true}}"#,
        K::SchemaPropertyAdded,
        Compatible,
        "`n` described without constraining it",
    ),
    pair(
        CLOSED,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}},
         "additionalProperties": false}"#,
        K::SchemaPropertyAdded,
        Compatible,
        "the old schema refused it",
    ),
    pair(
        r#"{"type": "object", "additionalProperties": {"type": "string"}}"#,
        r#"{"type": "object", "properties": {"n": {"type": "string", "maxLength": 3}},
         "additionalProperties": {"type": "string"}}"#,
        K::SchemaPropertyAddedToOpen,
        Breaking,
        "`n` added where `additionalProperties` accepted it",
    ),
    pair(
        r#"{"type": "object", "additionalProperties": {"type": "string", "maxLength": 3}}"#,
        r#"{"type": "object", "properties": {"n": {"type": "string"}},
         "additionalProperties": {"type": "string", "maxLength": 3}}"#,
        K::SchemaPropertyAdded,
        Compatible,
        "accepts all that `additionalProperties` accepted",
    ),
    pair(
        X_STRINGS,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "x_n": {"type": "integer"}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#,
        K::SchemaPropertyAddedToOpen,
        Breaking,
        "`x_n` added where `patternProperties` `^x_` accepted it",
    ),
    pair(
        X_STRINGS,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "x_n": {"type": "string"}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#,
        K::SchemaPropertyAdded,
        Compatible,
        "accepts all that `patternProperties` `^x_` accepted",
    ),
    pair(
        X_STRINGS,
        r#"{"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "integer"}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#,
        K::SchemaPropertyAdded,
        Compatible,
        "the old schema refused it",
    ),
    // A property removed: its values now fall to what covers the name in the new schema.
    pair(
        r#"{"type": "object", "properties": {"note": {"type": "string"}},
         "additionalProperties": {"type": "integer"}}"#,
        r#"{"type": "object", "additionalProperties": {"type": "integer"}}"#,
        K::SchemaPropertyRemoved,
        Breaking,
        "`note` removed; `additionalProperties` now checks the values",
    ),
    pair(
        r#"{"type": "object", "properties": {"note": {"type": "string", "maxLength": 5}},
         "additionalProperties": {"type": "string"}}"#,
        r#"{"type": "object", "additionalProperties": {"type": "string"}}"#,
        K::SchemaConstraintRemoved,
        Compatible,
        "`note` no longer described; `additionalProperties` still accepts all that its description did",
    ),
    pair(
        r#"{"type": "object", "properties": {"x_n": {"type": "string", "maxLength": 8}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#,
        r#"{"type": "object", "additionalProperties": false,
         "patternProperties": {"^x_": {"type": "string"}}}"#,
        K::SchemaConstraintRemoved,
        Compatible,
        "`patternProperties` `^x_` still accepts all that its description did",
    ),
    // The pattern held before too, so it refuses nothing the old schema accepted.
    pair(
        r#"{"type": "object", "properties": {"x_n": {"type": ["string", "null"]}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "string"}}}"#,
        r#"{"type": "object", "additionalProperties": false,
         "patternProperties": {"^x_": {"type": "string"}}}"#,
        K::SchemaConstraintRemoved,
        Compatible,
        "`x_n` no longer described",
    ),
    pair(
        r#"{"type": "object", "properties": {"x_n": {"type": "string"}}, "additionalProperties": false}"#,
        r#"{"type": "object", "additionalProperties": false,
         "patternProperties": {"^x_": {"type": "integer"}}}"#,
        K::SchemaPropertyRemoved,
        Breaking,
        "`x_n` removed; `patternProperties` `^x_` now checks the values",
    ),
    pair(
        r#"{"type": "object", "properties": {"a": true, "b": {"type": "string"}},
         "unevaluatedProperties": false}"#,
        r#"{"type": "object", "properties": {"a": true}, "unevaluatedProperties": false}"#,
        K::SchemaNotAnalysed,
        Breaking,
        "`b` removed",
    ),
    // A pattern removed: the names it matched fall to `additionalProperties`.
    pair(
        X_STRINGS,
        CLOSED,
        K::SchemaPropertyRemoved,
        Breaking,
        "properties matching `^x_` removed while additional properties are refused",
    ),
    pair(
        r#"{"type": "object", "patternProperties": {"^x_": {"type": "string"}}}"#,
        r#"{"type": "object"}"#,
        K::SchemaConstraintRemoved,
        Compatible,
        "properties matching `^x_` no longer described",
    ),
    pair(
        r#"{"type": "object", "additionalProperties": {"type": "integer"},
         "patternProperties": {"^x_": {"type": "string"}}}"#,
        r#"{"type": "object", "additionalProperties": {"type": "integer"}}"#,
        K::SchemaPropertyRemoved,
        Breaking,
        "properties matching `^x_` removed; `additionalProperties` now checks the values",
    ),
    pair(
        X_STRINGS,
        r#"{"type": "object", "properties": {"id": {"type": "string"}},
         "additionalProperties": false, "patternProperties": {"^x_": {"type": "integer"}}}"#,
        K::SchemaTypeNarrowed,
        Breaking,
        "\"string\" became \"integer\"",
    ),
    // `additionalProperties` itself.
    pair(
        OPEN,
        r#"{"type": "object", "properties": {"id": {"type": "string"}},
         "additionalProperties": {"type": "string"}}"#,
        K::SchemaTypeNarrowed,
        Breaking,
        "type any became \"string\"",
    ),
    pair(
        CLOSED,
        r#"{"type": "object", "properties": {"id": {"type": "string"}},
         "additionalProperties": {"type": "string"}}"#,
        K::SchemaConstraintRemoved,
        Compatible,
        "properties not listed are now accepted",
    ),
    pair(
        r#"{"type": "object", "additionalProperties": {"type": "string"}}"#,
        r#"{"type": "object", "additionalProperties": false}"#,
        K::SchemaClosed,
        Breaking,
        "properties not listed are now refused",
    ),
];

#[test]
fn open_and_partly_open_schemas_have_their_class() {
    let dir = tempfile::tempdir().unwrap();
    for (i, case) in SCHEMA_PAIRS.iter().enumerate() {
        let old = load(&dir.path().join(format!("old{i}")), BASE, case.old);
        let new = load(&dir.path().join(format!("new{i}")), BASE, case.new);
        let changes = diff(std::slice::from_ref(&old), std::slice::from_ref(&new));
        let found = changes.iter().find(|c| c.kind == case.kind);
        let Some(found) = found else {
            panic!("pair {i}: no {:?} in {changes:#?}", case.kind)
        };
        assert_eq!(found.class, case.class, "pair {i}: {found:#?}");
        assert!(found.detail.contains(case.says), "pair {i}: {found:#?}");
        assert_eq!(
            breaking(&changes) > 0,
            case.class == Breaking,
            "pair {i}: {changes:#?}"
        );
    }
}

#[test]
fn a_precision_losing_type_change_names_the_field_and_why() {
    let dir = tempfile::tempdir().unwrap();
    let old = load(&dir.path().join("old"), BASE, SCHEMA);
    let new = load(
        &dir.path().join("new"),
        &BASE
            .replace(
                "{name: total, type: NUMERIC}",
                "{name: total, type: FLOAT64}",
            )
            .replace(QTY, "    - {name: qty, type: FLOAT64}\n"),
        SCHEMA,
    );
    let changes = diff(&[old], &[new]);
    let detail = |subject: &str| {
        let change = changes.iter().find(|c| c.subject == subject);
        change.map_or(String::new(), |c| c.detail.clone())
    };
    let total = detail("semantic.fields.total.type");
    assert!(
        total.starts_with("NUMERIC → FLOAT64: loses precision") && total.contains("money"),
        "{changes:#?}"
    );
    let qty = detail("semantic.fields.qty.type");
    assert!(
        qty.starts_with("INT64 → FLOAT64: loses precision") && qty.contains("2^53"),
        "{changes:#?}"
    );
}

/// An object file with `version`, current fields and older majors (`previous` as YAML).
fn versioned(version: &str, fields: &str, previous: &str) -> String {
    format!(
        "name: order\nsubscription: order-sub\ningest_table: ing.events\ndead_letter_table: ing.dead\n\
         envelope: {{format: json, object_id: payload.order_id}}\nversion: {version}\n\
         semantic:\n  dataset: sem\n  fields:\n{fields}{previous}"
    )
}

const V1_FIELDS: &str =
    "    - {name: order_id, type: STRING, required: true}\n    - {name: total, type: NUMERIC}\n";
const V2_FIELDS: &str = "    - {name: order_id, type: STRING, required: true}\n    - name: total\n      type: STRUCT\n      path: price\n      fields:\n        - {name: amount, type: NUMERIC}\n        - {name: currency, type: STRING}\n";

fn v1_kept(sunset: &str, total: &str) -> String {
    format!(
        "  previous:\n    - major: 1\n      sunset: {sunset}\n      fields:\n        - {{name: order_id, type: STRING, required: true}}\n        - {{name: total, type: {total}}}\n"
    )
}

/// One step of a product's life: from `old` to `new` on `today`, the changes that must be
/// there (kind, major, class), and whether the gate fails.
struct Step {
    what: &'static str,
    old: ObjectSettings,
    new: ObjectSettings,
    today: &'static str,
    expected: &'static [(ChangeKind, Option<u32>, Class)],
    gate_fails: bool,
}

#[allow(clippy::too_many_lines)] // a table of steps, one per rule of the gate
fn product_steps(dir: &Path) -> Vec<Step> {
    let mut n = 0;
    let mut obj = |version: &str, fields: &str, previous: String| {
        n += 1;
        load(
            &dir.join(format!("v{n}")),
            &versioned(version, fields, &previous),
            "{}",
        )
    };
    let v1 = obj("1.3.0", V1_FIELDS, String::new());
    let v2_beside_v1 = obj("2.0.0", V2_FIELDS, v1_kept("2027-06-30", "NUMERIC"));
    let v2_alone = obj("2.0.0", V2_FIELDS, String::new());
    let step =
        |what, old: &ObjectSettings, new: &ObjectSettings, today, expected, gate_fails| Step {
            what,
            old: old.clone(),
            new: new.clone(),
            today,
            expected,
            gate_fails,
        };
    let (before, after) = ("2027-03-01", "2027-07-01");
    vec![
        step(
            "a new major with the old one kept",
            &v1,
            &v2_beside_v1,
            before,
            &[
                (K::MajorAdded, Some(2), Compatible),
                (K::MajorDeprecated, Some(1), Compatible),
                (K::FieldTypeChanged, Some(2), Compatible),
            ],
            false,
        ),
        step(
            "a new major replacing the old one",
            &v1,
            &v2_alone,
            before,
            &[(K::MajorRemovedBeforeSunset, Some(1), Breaking)],
            true,
        ),
        step(
            "a major number that skips one",
            &v1,
            &obj("3.0.0", V2_FIELDS, v1_kept("2027-06-30", "NUMERIC")),
            before,
            &[(K::MajorNotFollowing, Some(3), Breaking)],
            true,
        ),
        step(
            "a breaking change inside the kept major",
            &v1,
            &obj("2.0.0", V2_FIELDS, v1_kept("2027-06-30", "FLOAT64")),
            before,
            &[(K::FieldTypeChanged, Some(1), Breaking)],
            true,
        ),
        step(
            "the old major removed before its sunset",
            &v2_beside_v1,
            &v2_alone,
            before,
            &[(K::MajorRemovedBeforeSunset, Some(1), Breaking)],
            true,
        ),
        step(
            "the old major removed after its sunset",
            &v2_beside_v1,
            &v2_alone,
            after,
            &[(K::MajorRetired, Some(1), Compatible)],
            false,
        ),
        step(
            "a sunset moved earlier",
            &v2_beside_v1,
            &obj("2.0.0", V2_FIELDS, v1_kept("2027-01-31", "NUMERIC")),
            before,
            &[(K::SunsetAdvanced, Some(1), Breaking)],
            true,
        ),
        step(
            "a sunset moved later",
            &v2_beside_v1,
            &obj("2.1.0", V2_FIELDS, v1_kept("2027-12-31", "NUMERIC")),
            before,
            &[(K::SunsetPostponed, Some(1), Compatible)],
            false,
        ),
    ]
}

#[test]
fn majors_are_gated_by_number_and_sunset() {
    let dir = tempfile::tempdir().unwrap();
    let steps = product_steps(dir.path());
    for s in &steps {
        let changes = super::diff::diff_on(
            std::slice::from_ref(&s.old),
            std::slice::from_ref(&s.new),
            s.today,
        );
        for (kind, major, class) in s.expected {
            assert!(
                changes
                    .iter()
                    .any(|c| c.kind == *kind && c.major == *major && c.class == *class),
                "{}: no {kind:?} of major {major:?} ({class:?}) in {changes:#?}",
                s.what
            );
        }
        assert_eq!(
            breaking(&changes) > 0,
            s.gate_fails,
            "{}: {changes:#?}",
            s.what
        );
    }
    // The text names the major of each change.
    let first = &steps[0];
    let text = super::diff::to_text(&super::diff::diff_on(
        std::slice::from_ref(&first.old),
        std::slice::from_ref(&first.new),
        first.today,
    ));
    assert!(
        text.contains("compatible order v2 version (major_added): order_v2 beside order_v1"),
        "{text}"
    );
}

const AVSC: &str = r#"{"type": "record", "name": "E", "fields": [
  {"name": "id", "type": "string"},
  {"name": "n", "type": "int"},
  {"name": "s", "type": {"type": "enum", "name": "S", "symbols": ["a", "b"]}}]}"#;

/// The base object bound to a topic schema (`None`: not bound).
fn with_topic_schema(dir: &Path, avsc: Option<&str>, encoding: &str) -> ObjectSettings {
    std::fs::create_dir_all(dir).unwrap();
    let mut yaml = BASE.to_string();
    if let Some(avsc) = avsc {
        std::fs::write(dir.join("t.avsc"), avsc).unwrap();
        yaml.push_str(&format!(
            "topic_schema:\n  type: avro\n  file: t.avsc\n  encoding: {encoding}\n"
        ));
    }
    load(dir, &yaml, SCHEMA)
}

/// A new topic schema file (`None`: unbound), its encoding, and the one change it must make.
type TopicSchemaCase = (Option<String>, &'static str, Option<(ChangeKind, Class)>);

fn topic_schema_cases() -> Vec<TopicSchemaCase> {
    let field = r#"{"name": "n", "type": "int"},"#;
    vec![
        (
            Some(AVSC.replace(
                field,
                &format!(
                    r#"{field} {{"name": "x", "type": ["null", "string"], "default": null}},"#
                ),
            )),
            "binary",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (
            Some(AVSC.replace(
                field,
                &format!(r#"{field} {{"name": "x", "type": "string"}},"#),
            )),
            "binary",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            Some(AVSC.replace(field, "")),
            "binary",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (
            Some(AVSC.replace(r#""type": "int""#, r#""type": "long""#)),
            "binary",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (
            Some(AVSC.replace(r#""type": "int""#, r#""type": "string""#)),
            "binary",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            Some(AVSC.replace(r#"["a", "b"]"#, r#"["a"]"#)),
            "binary",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            Some(AVSC.replace(r#"["a", "b"]"#, r#"["a", "b", "c"]"#)),
            "binary",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        // Layout and documentation only: the same schema, no change at all.
        (
            Some(
                AVSC.replace("\n", " ")
                    .replace(r#""name": "E","#, r#""name": "E", "doc": "x","#),
            ),
            "binary",
            None,
        ),
        (
            Some(AVSC.to_string()),
            "json",
            Some((K::TopicSchemaBindingChanged, Breaking)),
        ),
        (
            Some(AVSC.replace(
                r#""type": "int""#,
                r#""type": {"type": "int", "logicalType": "date"}"#,
            )),
            "binary",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (None, "binary", Some((K::TopicSchemaRemoved, Compatible))),
    ]
}

/// Avro's resolution rules decide a revision; binding (or rebinding) a topic is breaking for
/// its producers.
#[test]
fn topic_schemas_are_gated_by_avro_resolution() {
    let dir = tempfile::tempdir().unwrap();
    let old = with_topic_schema(&dir.path().join("old"), Some(AVSC), "binary");
    let cases = topic_schema_cases();
    for (i, (avsc, encoding, want)) in cases.into_iter().enumerate() {
        let new = with_topic_schema(
            &dir.path().join(format!("new{i}")),
            avsc.as_deref(),
            encoding,
        );
        let changes = diff(std::slice::from_ref(&old), std::slice::from_ref(&new));
        let topic: Vec<_> = changes
            .iter()
            .filter(|c| c.subject.starts_with("topic_schema"))
            .collect();
        match want {
            None => assert!(changes.is_empty(), "case {i}: {changes:#?}"),
            Some((kind, class)) => {
                assert_eq!(topic.len(), 1, "case {i}: {changes:#?}");
                assert_eq!(
                    (topic[0].kind, topic[0].class),
                    (kind, class),
                    "case {i}: {}",
                    topic[0].detail
                );
                assert_eq!(breaking(&changes) > 0, class == Breaking, "case {i}");
            }
        }
    }
    // Binding a topic that had no schema.
    let unbound = with_topic_schema(&dir.path().join("unbound"), None, "binary");
    let changes = diff(std::slice::from_ref(&unbound), std::slice::from_ref(&old));
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(
        (changes[0].kind, changes[0].class),
        (K::TopicSchemaAdded, Breaking)
    );
}

const PROTO: &str = "syntax = \"proto3\";
package t;
message E {
  enum S { S0 = 0; A = 1; B = 2; }
  message Item { string sku = 1; int32 qty = 2; }
  string id = 1;
  int32 n = 2;
  S s = 3;
  repeated Item items = 4;
}
";

fn with_proto(dir: &Path, proto: &str) -> ObjectSettings {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("t.proto"), proto).unwrap();
    let yaml =
        format!("{BASE}topic_schema:\n  type: protobuf\n  file: t.proto\n  encoding: binary\n");
    load(dir, &yaml, SCHEMA)
}

/// An edit of the base `.proto` (from, to), and the one change it must make (`None`: none).
type ProtoCase = (&'static str, &'static str, Option<(ChangeKind, Class)>);

const N: &str = "  int32 n = 2;\n";

fn proto_cases() -> Vec<ProtoCase> {
    let n = N;
    vec![
        (
            n,
            "  int32 n = 2;\n  string note = 5;\n",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (n, "", Some((K::TopicSchemaIncompatible, Breaking))),
        (
            n,
            "  reserved 2;\n",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (
            n,
            "  string n = 2;\n",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            n,
            "  int32 count = 2;\n",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            "repeated Item items",
            "Item items",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            "int32 qty = 2;",
            "int64 qty = 2;",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (" B = 2;", "", Some((K::TopicSchemaIncompatible, Breaking))),
        (
            " B = 2;",
            " B = 2; C = 3;",
            Some((K::TopicSchemaRevised, Compatible)),
        ),
        (
            " B = 2;",
            " BEE = 2;",
            Some((K::TopicSchemaIncompatible, Breaking)),
        ),
        (
            "package t;\n",
            "package t;\n// A comment changes nothing.\n",
            None,
        ),
    ]
}

/// Protocol Buffers' breaking rules, one edit of the base `.proto` each.
#[test]
fn protobuf_topic_schemas_are_gated_by_field_numbers_types_and_cardinality() {
    let dir = tempfile::tempdir().unwrap();
    let old = with_proto(&dir.path().join("old"), PROTO);
    let n = N;
    for (i, (from, to, want)) in proto_cases().into_iter().enumerate() {
        let new = with_proto(
            &dir.path().join(format!("new{i}")),
            &edited(PROTO, (from, to)),
        );
        let changes = diff(std::slice::from_ref(&old), std::slice::from_ref(&new));
        match want {
            None => assert!(changes.is_empty(), "case {i}: {changes:#?}"),
            Some((kind, class)) => {
                assert_eq!(changes.len(), 1, "case {i}: {changes:#?}");
                assert_eq!(
                    (changes[0].kind, changes[0].class),
                    (kind, class),
                    "case {i}: {}",
                    changes[0].detail
                );
            }
        }
    }
    // A number the old schema reserved, used again.
    let reserving = with_proto(
        &dir.path().join("reserving"),
        &edited(PROTO, (n, "  reserved 2;\n")),
    );
    let reusing = with_proto(
        &dir.path().join("reusing"),
        &edited(PROTO, (n, "  string other = 2;\n")),
    );
    let changes = diff(
        std::slice::from_ref(&reserving),
        std::slice::from_ref(&reusing),
    );
    assert_eq!(changes.len(), 1, "{changes:#?}");
    assert_eq!(changes[0].kind, K::TopicSchemaIncompatible);
    assert!(
        changes[0].detail.contains("reserved"),
        "{}",
        changes[0].detail
    );
}
