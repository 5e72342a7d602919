//! `contract diff`: every change between two versions of the object files, each classed as
//! compatible or breaking for the object's consumers and producers. Breaking: what could make
//! a consumer's query fail or change meaning (a semantic field removed or renamed, retyped,
//! made required, its repetition changed; the tables or the deletion/dedup rules moved), or
//! what could make a producer's valid event a dead letter (an event type removed, an envelope
//! path changed, a stricter JSON Schema or limit). Compatible: additions, descriptions,
//! lossless widening (INT64 → NUMERIC; not to FLOAT64, which rounds), and removing a field
//! that the old version had already marked `deprecated`.
//!
//! Data products evolve in majors, compared major by major. A breaking change is allowed when
//! it comes as the next major (the current one plus 1) with the old major kept beside it under
//! `semantic.previous`: its changes are listed under the new major, compatible, since readers
//! opt in by moving. Removing a major before its sunset, moving a sunset earlier, or a major
//! number that does not follow is breaking; removing one after its sunset is not.

use super::Class;
use super::json_schema;
use crate::configuration::{FieldType, ObjectSettings, SemanticField, SemanticSettings};
use serde::Serialize;

/// What changed. Each kind has one class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    ObjectAdded,
    ObjectRemoved,
    TopicChanged,
    SubscriptionChanged,
    TableChanged,
    EnvelopeFormatChanged,
    EnvelopePathChanged,
    EventTypeAdded,
    EventTypeRemoved,
    EventTypesRestricted,
    EventTypesOpened,
    DeletionChanged,
    LimitNarrowed,
    LimitWidened,
    SemanticAdded,
    SemanticRemoved,
    SemanticMoved,
    FieldAdded,
    FieldRemoved,
    FieldRemovedAfterDeprecation,
    FieldDeprecated,
    FieldUndeprecated,
    FieldTypeChanged,
    FieldTypeWidened,
    FieldBecameRequired,
    FieldBecameOptional,
    FieldRepeatedChanged,
    FieldPathChanged,
    DescriptionChanged,
    MetadataChanged,
    OperationalChanged,
    SchemaAdded,
    SchemaRemoved,
    SchemaPropertyAdded,
    SchemaPropertyAddedToOpen,
    SchemaPropertyRequired,
    SchemaPropertyRemoved,
    SchemaEnumValueAdded,
    SchemaEnumValueRemoved,
    SchemaTypeWidened,
    SchemaTypeNarrowed,
    SchemaClosed,
    SchemaConstraintAdded,
    SchemaConstraintRemoved,
    SchemaBoundWidened,
    SchemaBoundNarrowed,
    SchemaAnnotationChanged,
    SchemaNotAnalysed,
    MajorAdded,
    MajorDeprecated,
    MajorRetired,
    MajorRemovedBeforeSunset,
    MajorNotFollowing,
    SunsetAdvanced,
    SunsetPostponed,
    ClassificationAdded,
    ClassificationRemoved,
    TopicSchemaAdded,
    TopicSchemaRemoved,
    TopicSchemaBindingChanged,
    TopicSchemaRevised,
    TopicSchemaIncompatible,
    TopicSchemaNotAnalysed,
}

impl ChangeKind {
    /// The kind as the JSON report spells it: `field_removed`.
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    pub fn class(self) -> Class {
        use ChangeKind::*;
        match self {
            ObjectRemoved
            | TopicChanged
            | TableChanged
            | EnvelopeFormatChanged
            | EnvelopePathChanged
            | EventTypeRemoved
            | EventTypesRestricted
            | DeletionChanged
            | LimitNarrowed
            | SemanticRemoved
            | SemanticMoved
            | FieldRemoved
            | FieldTypeChanged
            | FieldBecameRequired
            | FieldRepeatedChanged
            | FieldPathChanged
            | SchemaAdded
            | SchemaPropertyAddedToOpen
            | SchemaPropertyRequired
            | SchemaPropertyRemoved
            | SchemaEnumValueRemoved
            | SchemaTypeNarrowed
            | SchemaClosed
            | SchemaConstraintAdded
            | SchemaBoundNarrowed
            | SchemaNotAnalysed
            | MajorRemovedBeforeSunset
            | MajorNotFollowing
            | SunsetAdvanced
            | ClassificationAdded
            | TopicSchemaAdded
            | TopicSchemaBindingChanged
            | TopicSchemaIncompatible
            | TopicSchemaNotAnalysed => Class::Breaking,
            ObjectAdded
            | SubscriptionChanged
            | EventTypeAdded
            | EventTypesOpened
            | LimitWidened
            | SemanticAdded
            | FieldAdded
            | FieldRemovedAfterDeprecation
            | FieldDeprecated
            | FieldUndeprecated
            | FieldTypeWidened
            | FieldBecameOptional
            | DescriptionChanged
            | MetadataChanged
            | OperationalChanged
            | SchemaRemoved
            | SchemaPropertyAdded
            | SchemaEnumValueAdded
            | SchemaTypeWidened
            | SchemaConstraintRemoved
            | SchemaBoundWidened
            | SchemaAnnotationChanged
            | MajorAdded
            | MajorDeprecated
            | MajorRetired
            | SunsetPostponed
            | ClassificationRemoved
            | TopicSchemaRemoved
            | TopicSchemaRevised => Class::Compatible,
        }
    }
}

/// One change to one object's contract.
#[derive(Debug, Clone, Serialize)]
pub struct Change {
    pub object: String,
    /// The data product's major the change belongs to (`None`: the object as a whole, such
    /// as its envelope or ingest table, which every major shares).
    pub major: Option<u32>,
    /// What changed, as a path into the object file: `semantic.fields.total.type`.
    pub subject: String,
    pub kind: ChangeKind,
    pub class: Class,
    pub detail: String,
}

/// Collects the changes of one object.
pub(super) struct Changes<'a> {
    object: &'a str,
    major: Option<u32>,
    out: &'a mut Vec<Change>,
}

impl Changes<'_> {
    pub(super) fn add(
        &mut self,
        kind: ChangeKind,
        subject: impl Into<String>,
        detail: impl Into<String>,
    ) {
        self.out.push(Change {
            object: self.object.to_string(),
            major: self.major,
            subject: subject.into(),
            kind,
            class: kind.class(),
            detail: detail.into(),
        });
    }
}

/// Every change from `old` to `new`, objects matched by name, in the order of `new`, with
/// sunsets compared to today's date (UTC).
pub fn diff(old: &[ObjectSettings], new: &[ObjectSettings]) -> Vec<Change> {
    diff_on(old, new, &crate::configuration::today())
}

/// `diff` as on `today` (`YYYY-MM-DD`).
pub fn diff_on(old: &[ObjectSettings], new: &[ObjectSettings], today: &str) -> Vec<Change> {
    let mut out = Vec::new();
    for o in old.iter().filter(|o| !new.iter().any(|n| n.name == o.name)) {
        Changes {
            object: &o.name,
            major: None,
            out: &mut out,
        }
        .add(
            ChangeKind::ObjectRemoved,
            "",
            format!("{} is no longer configured", o.source_file),
        );
    }
    for n in new {
        let mut changes = Changes {
            object: &n.name,
            major: None,
            out: &mut out,
        };
        match old.iter().find(|o| o.name == n.name) {
            None => changes.add(ChangeKind::ObjectAdded, "", n.source_file.clone()),
            Some(o) => object(o, n, today, &mut changes),
        }
    }
    out
}

fn object(o: &ObjectSettings, n: &ObjectSettings, today: &str, c: &mut Changes) {
    let moved = |c: &mut Changes, kind, subject: &str, a: String, b: String| {
        if a != b {
            c.add(kind, subject, format!("{a} → {b}"));
        }
    };
    let topic = |t: &Option<String>| t.clone().unwrap_or_else(|| "(none)".into());
    moved(
        c,
        ChangeKind::TopicChanged,
        "topic",
        topic(&o.topic),
        topic(&n.topic),
    );
    moved(
        c,
        ChangeKind::SubscriptionChanged,
        "subscription",
        o.subscription.clone(),
        n.subscription.clone(),
    );
    moved(
        c,
        ChangeKind::TableChanged,
        "ingest_table",
        o.ingest_table.to_string(),
        n.ingest_table.to_string(),
    );
    moved(
        c,
        ChangeKind::TableChanged,
        "dead_letter_table",
        o.dead_letter_table.to_string(),
        n.dead_letter_table.to_string(),
    );
    envelope(o, n, c);
    super::topic_schema::diff(o.topic_schema.as_ref(), n.topic_schema.as_ref(), c);
    event_types(o.event_types.as_deref(), n.event_types.as_deref(), c);
    limits(o, n, c);
    schema(o, n, c);
    metadata(o, n, c);
    operational(o, n, c);
    match (&o.semantic, &n.semantic) {
        (None, None) => {}
        (None, Some(s)) => c.add(ChangeKind::SemanticAdded, "semantic", s.view_name()),
        (Some(s), None) => c.add(ChangeKind::SemanticRemoved, "semantic", s.view_name()),
        (Some(_), Some(_)) => majors(o, n, today, c),
    }
}

/// The data product major by major: majors removed (after or before their sunset), kept
/// (compared field by field, and their sunsets), and added (only the next number, and then
/// compared with the old current major, compatible).
fn majors(o: &ObjectSettings, n: &ObjectSettings, today: &str, c: &mut Changes) {
    let (Some(old_current), Some(new_current)) = (&o.semantic, &n.semantic) else {
        return;
    };
    let find = |obj: &ObjectSettings, major: u32| obj.majors().find(|s| s.major == major).cloned();
    for om in o.majors().filter(|m| find(n, m.major).is_none()) {
        c.major = Some(om.major);
        match &om.sunset {
            Some(sunset) if today > sunset.as_str() => c.add(
                ChangeKind::MajorRetired,
                "semantic.previous",
                format!("{} removed after its sunset {sunset}", om.view),
            ),
            Some(sunset) => c.add(
                ChangeKind::MajorRemovedBeforeSunset,
                "semantic.previous",
                format!(
                    "{} removed before its sunset {sunset}: its readers were promised it until then",
                    om.view
                ),
            ),
            None => c.add(
                ChangeKind::MajorRemovedBeforeSunset,
                "semantic",
                format!(
                    "{} removed without a sunset: keep it under `semantic.previous` with a sunset \
                     date while its readers move",
                    om.view
                ),
            ),
        }
    }
    for nm in n.majors() {
        c.major = Some(nm.major);
        if let Some(om) = find(o, nm.major) {
            sunsets(&om, nm, c);
            semantic(&om, nm, c);
        } else if nm.major == old_current.major + 1 && nm.major == new_current.major {
            added_major(old_current, nm, c);
        } else {
            c.add(
                ChangeKind::MajorNotFollowing,
                "version",
                format!(
                    "major {} does not follow {}: a new major is the current one plus 1",
                    nm.major, old_current.major
                ),
            );
        }
    }
    if new_current.major < old_current.major {
        c.major = Some(new_current.major);
        c.add(
            ChangeKind::MajorNotFollowing,
            "version",
            format!(
                "the current major went back from {} to {}",
                old_current.major, new_current.major
            ),
        );
    }
    c.major = None;
}

/// The next major, added: what readers who move to it meet, compared with the old current
/// major and listed under the new one, compatible (they opt in).
fn added_major(old_current: &SemanticSettings, new: &SemanticSettings, c: &mut Changes) {
    c.add(
        ChangeKind::MajorAdded,
        "version",
        format!("{} beside {}", new.view, old_current.view),
    );
    let mut moved = Vec::new();
    semantic(
        old_current,
        new,
        &mut Changes {
            object: c.object,
            major: Some(new.major),
            out: &mut moved,
        },
    );
    for mut change in moved {
        change.class = Class::Compatible;
        change.detail = format!(
            "{} (from major {}; readers opt in by moving)",
            change.detail, old_current.major
        );
        c.out.push(change);
    }
}

/// A kept major: newly deprecated, or its sunset moved.
fn sunsets(o: &SemanticSettings, n: &SemanticSettings, c: &mut Changes) {
    match (&o.sunset, &n.sunset) {
        (None, Some(sunset)) => c.add(
            ChangeKind::MajorDeprecated,
            "semantic.previous",
            format!(
                "{} deprecated, sunset {sunset}, replaced by {}",
                n.view,
                n.successor.as_deref().unwrap_or("a newer major")
            ),
        ),
        (Some(a), Some(b)) if b < a => c.add(
            ChangeKind::SunsetAdvanced,
            "semantic.previous",
            format!(
                "{}: {a} → {b}: its readers were promised it until {a}",
                n.view
            ),
        ),
        (Some(a), Some(b)) if b > a => c.add(
            ChangeKind::SunsetPostponed,
            "semantic.previous",
            format!("{}: {a} → {b}", n.view),
        ),
        _ => {}
    }
}

fn envelope(o: &ObjectSettings, n: &ObjectSettings, c: &mut Changes) {
    let (oe, ne) = (&o.envelope, &n.envelope);
    if oe.format != ne.format {
        c.add(
            ChangeKind::EnvelopeFormatChanged,
            "envelope.format",
            format!("{:?} → {:?}", oe.format, ne.format).to_lowercase(),
        );
    }
    for (name, a, b) in [
        ("event_id", &oe.event_id, &ne.event_id),
        ("event_type", &oe.event_type, &ne.event_type),
        ("event_time", &oe.event_time, &ne.event_time),
        ("object_id", &oe.object_id, &ne.object_id),
        ("payload", &oe.payload, &ne.payload),
    ] {
        if a != b {
            c.add(
                ChangeKind::EnvelopePathChanged,
                format!("envelope.{name}"),
                format!("{a} → {b}"),
            );
        }
    }
}

fn event_types(o: Option<&[String]>, n: Option<&[String]>, c: &mut Changes) {
    match (o, n) {
        (None, None) => {}
        (None, Some(n)) => c.add(
            ChangeKind::EventTypesRestricted,
            "event_types",
            format!("every type was accepted; now only {}", n.join(", ")),
        ),
        (Some(_), None) => c.add(
            ChangeKind::EventTypesOpened,
            "event_types",
            "every event type is now accepted",
        ),
        (Some(o), Some(n)) => {
            for t in o.iter().filter(|t| !n.contains(t)) {
                c.add(ChangeKind::EventTypeRemoved, "event_types", t.clone());
            }
            for t in n.iter().filter(|t| !o.contains(t)) {
                c.add(ChangeKind::EventTypeAdded, "event_types", t.clone());
            }
        }
    }
}

fn limits(o: &ObjectSettings, n: &ObjectSettings, c: &mut Changes) {
    let (ol, nl) = (&o.limits, &n.limits);
    for (name, a, b) in [
        (
            "max_message_bytes",
            ol.max_message_bytes as u64,
            nl.max_message_bytes as u64,
        ),
        (
            "max_json_depth",
            ol.max_json_depth as u64,
            nl.max_json_depth as u64,
        ),
        (
            "max_future_event_time_secs",
            ol.max_future_event_time_secs,
            nl.max_future_event_time_secs,
        ),
    ] {
        let kind = match b.cmp(&a) {
            std::cmp::Ordering::Less => ChangeKind::LimitNarrowed,
            std::cmp::Ordering::Greater => ChangeKind::LimitWidened,
            std::cmp::Ordering::Equal => continue,
        };
        c.add(kind, format!("limits.{name}"), format!("{a} → {b}"));
    }
}

fn schema(o: &ObjectSettings, n: &ObjectSettings, c: &mut Changes) {
    let file = |s: &ObjectSettings| s.payload_schema_file.clone().unwrap_or_default();
    match (&o.payload_schema, &n.payload_schema) {
        (None, None) => {}
        (None, Some(_)) => c.add(
            ChangeKind::SchemaAdded,
            "payload_schema_file",
            format!("payloads must now satisfy {}", file(n)),
        ),
        (Some(_), None) => c.add(
            ChangeKind::SchemaRemoved,
            "payload_schema_file",
            "payloads are no longer checked against a JSON Schema",
        ),
        (Some(a), Some(b)) => {
            for change in json_schema::compare(a, b) {
                c.add(
                    change.kind,
                    format!("payload_schema_file#{}", change.at),
                    change.detail,
                );
            }
        }
    }
}

fn metadata(o: &ObjectSettings, n: &ObjectSettings, c: &mut Changes) {
    let (oc, nc) = (&o.contract, &n.contract);
    let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "(none)".into());
    let secs = |v: Option<u64>| v.map_or("(none)".into(), |s| format!("{s}s"));
    for (name, a, b) in [
        ("owner", show(&oc.owner), show(&nc.owner)),
        ("domain", show(&oc.domain), show(&nc.domain)),
        ("version", oc.version.clone(), nc.version.clone()),
        (
            "sla.freshness",
            secs(oc.freshness_secs),
            secs(nc.freshness_secs),
        ),
    ] {
        if a != b {
            c.add(ChangeKind::MetadataChanged, name, format!("{a} → {b}"));
        }
    }
    if oc.description != nc.description {
        c.add(ChangeKind::DescriptionChanged, "description", "");
    }
}

/// A value as JSON, so that settings of different types compare and print alike.
fn as_json<T: Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Batching, flow control, streams and the like: how the service runs, not what it promises.
fn operational(o: &ObjectSettings, n: &ObjectSettings, c: &mut Changes) {
    let lag = |s: &ObjectSettings| s.semantic.as_ref().map(|s| s.safety_lag_secs);
    for (name, a, b) in [
        ("batch", as_json(&o.batch), as_json(&n.batch)),
        (
            "flow_control",
            as_json(&o.flow_control),
            as_json(&n.flow_control),
        ),
        ("streams", as_json(&o.streams), as_json(&n.streams)),
        (
            "limits.max_dead_letter_data_bytes",
            as_json(&o.limits.max_dead_letter_data_bytes),
            as_json(&n.limits.max_dead_letter_data_bytes),
        ),
        (
            "semantic.safety_lag_secs",
            as_json(&lag(o)),
            as_json(&lag(n)),
        ),
    ] {
        if a != b {
            c.add(ChangeKind::OperationalChanged, name, format!("{a} → {b}"));
        }
    }
}

fn semantic(o: &SemanticSettings, n: &SemanticSettings, c: &mut Changes) {
    // The product's place, not the major's view: `order_v1` → `order_v2` is not a move.
    let place = |s: &SemanticSettings| s.qualified(&s.product).to_string();
    if place(o) != place(n) {
        c.add(
            ChangeKind::SemanticMoved,
            "semantic",
            format!("{} → {}", place(o), place(n)),
        );
    }
    if o.description != n.description {
        c.add(ChangeKind::DescriptionChanged, "semantic.description", "");
    }
    let mut od = o.deleted_when.clone();
    let mut nd = n.deleted_when.clone();
    od.sort();
    nd.sort();
    if od != nd {
        c.add(
            ChangeKind::DeletionChanged,
            "semantic.deleted_when",
            format!("[{}] → [{}]", od.join(", "), nd.join(", ")),
        );
    }
    fields(&o.fields, &n.fields, "semantic.fields", c);
}

fn fields(old: &[SemanticField], new: &[SemanticField], at: &str, c: &mut Changes) {
    for o in old {
        let here = format!("{at}.{}", o.name);
        match new.iter().find(|n| n.name == o.name) {
            Some(n) => field(o, n, &here, c),
            None if o.deprecated => c.add(
                ChangeKind::FieldRemovedAfterDeprecation,
                here,
                "removed after being deprecated",
            ),
            None => c.add(
                ChangeKind::FieldRemoved,
                here,
                "removed without being deprecated first (mark it `deprecated: true` in a release before removing it)",
            ),
        }
    }
    for n in new.iter().filter(|n| !old.iter().any(|o| o.name == n.name)) {
        c.add(
            ChangeKind::FieldAdded,
            format!("{at}.{}", n.name),
            n.column_type(),
        );
    }
}

/// Whether every value of `from` has an exact value in `to`. BigQuery lets `ALTER COLUMN …
/// SET DATA TYPE` coerce INT64 and NUMERIC to FLOAT64 as well, but FLOAT64 holds 53 bits of
/// mantissa: ids above 2^53 and exact decimals (money) come back rounded, and the semantic
/// layer's state table no longer matches. Only INT64 to NUMERIC (29 integer digits) keeps
/// every value.
fn widens(from: FieldType, to: FieldType) -> bool {
    matches!((from, to), (FieldType::Int64, FieldType::Numeric))
}

/// Why a type change that BigQuery would coerce still breaks: said in the detail, so that
/// "INT64 → FLOAT64" does not read like a widening.
fn loses_precision(from: FieldType, to: FieldType) -> Option<&'static str> {
    match (from, to) {
        (FieldType::Int64, FieldType::Float64) => {
            Some("FLOAT64 rounds integers above 2^53 (large ids, counters)")
        }
        (FieldType::Numeric, FieldType::Float64) => Some(
            "FLOAT64 rounds exact decimals (money) and NUMERIC's 38 significant digits to about 15–17",
        ),
        _ => None,
    }
}

fn field(o: &SemanticField, n: &SemanticField, at: &str, c: &mut Changes) {
    if o.field_type != n.field_type {
        let kind = if widens(o.field_type, n.field_type) {
            ChangeKind::FieldTypeWidened
        } else {
            ChangeKind::FieldTypeChanged
        };
        let mut detail = format!("{} → {}", o.field_type.sql(), n.field_type.sql());
        if let Some(why) = loses_precision(o.field_type, n.field_type) {
            detail.push_str(&format!(": loses precision, {why}"));
        }
        c.add(kind, format!("{at}.type"), detail);
    }
    if o.repeated != n.repeated {
        c.add(
            ChangeKind::FieldRepeatedChanged,
            format!("{at}.repeated"),
            format!("{} → {}", o.repeated, n.repeated),
        );
    }
    match (o.required, n.required) {
        (false, true) => c.add(
            ChangeKind::FieldBecameRequired,
            format!("{at}.required"),
            "objects whose latest event lacks it leave the view",
        ),
        (true, false) => c.add(
            ChangeKind::FieldBecameOptional,
            format!("{at}.required"),
            "the view may now hold NULL here",
        ),
        _ => {}
    }
    if o.path != n.path {
        c.add(
            ChangeKind::FieldPathChanged,
            format!("{at}.path"),
            format!("{} → {}", o.path.join("."), n.path.join(".")),
        );
    }
    match (o.deprecated, n.deprecated) {
        (false, true) => c.add(ChangeKind::FieldDeprecated, at, "marked deprecated"),
        (true, false) => c.add(ChangeKind::FieldUndeprecated, at, "no longer deprecated"),
        _ => {}
    }
    if o.description != n.description {
        c.add(
            ChangeKind::DescriptionChanged,
            format!("{at}.description"),
            "",
        );
    }
    match (&o.classification, &n.classification) {
        (a, Some(b)) if a.as_ref() != Some(b) => c.add(
            ChangeKind::ClassificationAdded,
            format!("{at}.classification"),
            format!(
                "{} → {b}: with a policy tag for it, readers without access to {b} can no longer read the column",
                a.as_deref().unwrap_or("(none)")
            ),
        ),
        (Some(a), None) => c.add(
            ChangeKind::ClassificationRemoved,
            format!("{at}.classification"),
            format!("{a} → (none)"),
        ),
        _ => {}
    }
    if o.field_type == FieldType::Struct && n.field_type == FieldType::Struct {
        fields(&o.fields, &n.fields, &format!("{at}.fields"), c);
    }
}

/// The changes as text for people: one line per change, breaking ones first, then a count.
pub fn to_text(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes\n".to_string();
    }
    let mut sorted: Vec<&Change> = changes.iter().collect();
    sorted.sort_by_key(|c| (c.class == Class::Compatible, c.object.clone()));
    let mut text = String::new();
    for c in &sorted {
        let subject = if c.subject.is_empty() {
            "-"
        } else {
            &c.subject
        };
        let detail = if c.detail.is_empty() {
            String::new()
        } else {
            format!(": {}", c.detail)
        };
        let object = match c.major {
            Some(m) => format!("{} v{m}", c.object),
            None => c.object.clone(),
        };
        text.push_str(&format!(
            "{:<10} {} {} ({}){}\n",
            c.class.as_str(),
            object,
            subject,
            c.kind.name(),
            detail
        ));
    }
    let breaking = breaking(changes);
    text.push_str(&format!(
        "{} change(s): {} breaking, {} compatible\n",
        changes.len(),
        breaking,
        changes.len() - breaking
    ));
    text
}

pub fn breaking(changes: &[Change]) -> usize {
    changes
        .iter()
        .filter(|c| c.class == Class::Breaking)
        .count()
}

/// The changes as JSON for CI bots: counts and the list.
pub fn to_json(changes: &[Change]) -> serde_json::Value {
    let breaking = breaking(changes);
    serde_json::json!({
        "breaking": breaking,
        "compatible": changes.len() - breaking,
        "changes": changes,
    })
}
