//! Whether a new version of an object's payload JSON Schema still accepts every document the
//! old one accepted (the producers write, the new schema must take what they could write
//! before: Confluent's BACKWARD rules for JSON Schema, reader = new, writer = old). The common
//! cases are decided keyword by keyword: `type`, `required`, `enum`/`const`, `properties`,
//! `additionalProperties`, `patternProperties` (entries changed or removed), `items`,
//! `uniqueItems` and the numeric and length bounds; annotations (`title`, `description`, …)
//! never break. Any other assertion keyword that is added or changed (`pattern`, `format`,
//! `allOf`/`anyOf`/`oneOf`/`not`, `if`/`then`/`else`, `$ref`/`$defs`, a new
//! `patternProperties` entry, `dependentRequired`, …) is reported as not analysed and counted
//! as breaking: the gate cannot prove it safe. Removing a keyword accepts more, except where
//! another keyword takes over (a property or pattern no longer described falls to
//! `additionalProperties`).
//!
//! A property that `properties` does not list is still accepted by an open schema (no
//! `additionalProperties`, or `true`) with any value, and by a partially open one with the
//! values its matching `patternProperties` (or else `additionalProperties`) schema accepts.
//! So describing a new property narrows what producers may send unless the old schema refused
//! it or the new description accepts all that the old cover did; and removing one is safe only
//! if what covers it now accepts all that its description did.

use super::Class;
use super::diff::ChangeKind;
use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// One difference between two schemas, `at` a JSON pointer into the new schema.
#[derive(Debug, Clone, PartialEq)]
pub struct SchemaChange {
    pub kind: ChangeKind,
    pub at: String,
    pub detail: String,
}

/// Keywords that describe and never constrain.
const ANNOTATIONS: &[&str] = &[
    "title",
    "description",
    "examples",
    "default",
    "$comment",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$id",
];

/// Lower bounds: a larger value accepts less.
const LOWER_BOUNDS: &[&str] = &[
    "minimum",
    "exclusiveMinimum",
    "minLength",
    "minItems",
    "minProperties",
];
/// Upper bounds: a smaller value accepts less.
const UPPER_BOUNDS: &[&str] = &[
    "maximum",
    "exclusiveMaximum",
    "maxLength",
    "maxItems",
    "maxProperties",
];

/// Every change between `old` and `new` that matters to the documents they accept.
pub fn compare(old: &Value, new: &Value) -> Vec<SchemaChange> {
    let mut out = Vec::new();
    walk(old, new, "", &mut out);
    out
}

fn push(out: &mut Vec<SchemaChange>, kind: ChangeKind, at: &str, detail: String) {
    out.push(SchemaChange {
        kind,
        at: if at.is_empty() { "/".into() } else { at.into() },
        detail,
    });
}

/// The two object schemas being compared at one place.
#[derive(Clone, Copy)]
struct Pair<'a> {
    old: &'a Map<String, Value>,
    new: &'a Map<String, Value>,
}

fn walk(old: &Value, new: &Value, at: &str, out: &mut Vec<SchemaChange>) {
    if old == new {
        return;
    }
    let (Value::Object(o), Value::Object(n)) = (old, new) else {
        // Boolean schemas: `true` accepts everything.
        let kind = if *new == Value::Bool(true) {
            ChangeKind::SchemaConstraintRemoved
        } else {
            ChangeKind::SchemaNotAnalysed
        };
        push(out, kind, at, format!("schema {old} became {new}"));
        return;
    };
    let keys: BTreeSet<&String> = o.keys().chain(n.keys()).collect();
    for key in keys {
        let (ov, nv) = (o.get(key.as_str()), n.get(key.as_str()));
        if ov == nv || ANNOTATIONS.contains(&key.as_str()) {
            if ov != nv {
                push(
                    out,
                    ChangeKind::SchemaAnnotationChanged,
                    &format!("{at}/{key}"),
                    format!("`{key}` changed"),
                );
            }
            continue;
        }
        keyword(key, ov, nv, Pair { old: o, new: n }, at, out);
    }
}

/// One keyword that differs between the two schemas (either side may lack it).
fn keyword(
    key: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    schemas: Pair,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let here = format!("{at}/{key}");
    match (key, old, new) {
        ("properties", _, _) => properties(old, new, schemas, at, out),
        ("patternProperties", _, _) => patterns(old, new, schemas.new, &here, out),
        ("type", _, _) => types(old, new, &here, out),
        ("required", _, _) => required(old, new, &here, out),
        ("enum", Some(o), Some(n)) => enums(o, n, &here, out),
        ("additionalProperties", _, _) => additional(old, new, &here, out),
        ("items", Some(o), Some(n)) => walk(o, n, &here, out),
        ("uniqueItems", _, _) => {
            let (o, n) = (
                old == Some(&Value::Bool(true)),
                new == Some(&Value::Bool(true)),
            );
            if n && !o {
                push(
                    out,
                    ChangeKind::SchemaConstraintAdded,
                    &here,
                    "array items must now be unique".into(),
                );
            } else if o && !n {
                push(
                    out,
                    ChangeKind::SchemaConstraintRemoved,
                    &here,
                    "array items need no longer be unique".into(),
                );
            }
        }
        (k, Some(o), Some(n)) if LOWER_BOUNDS.contains(&k) || UPPER_BOUNDS.contains(&k) => {
            bound(k, o, n, &here, out)
        }
        (_, Some(_), None) => push(
            out,
            ChangeKind::SchemaConstraintRemoved,
            &here,
            format!("`{key}` removed"),
        ),
        (k, None, Some(_)) if analysed(k) => push(
            out,
            ChangeKind::SchemaConstraintAdded,
            &here,
            format!("`{key}` added"),
        ),
        ("const", Some(o), Some(n)) => push(
            out,
            ChangeKind::SchemaEnumValueRemoved,
            &here,
            format!("only {n} is allowed now, not {o}"),
        ),
        _ => push(
            out,
            ChangeKind::SchemaNotAnalysed,
            &here,
            format!("`{key}` added or changed; this keyword is not analysed"),
        ),
    }
}

fn analysed(key: &str) -> bool {
    matches!(key, "enum" | "const" | "items")
        || LOWER_BOUNDS.contains(&key)
        || UPPER_BOUNDS.contains(&key)
}

/// A name as one JSON pointer token (RFC 6901): `~` and `/` escaped.
fn token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

fn properties(
    old: Option<&Value>,
    new: Option<&Value>,
    schemas: Pair,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let empty = Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.and_then(Value::as_object).unwrap_or(&empty);
    for (name, old_prop) in o {
        let here = format!("{at}/properties/{}", token(name));
        match n.get(name) {
            Some(new_prop) => walk(old_prop, new_prop, &here, out),
            None => removed(
                &format!("`{name}`"),
                old_prop,
                &matching(schemas.old, name).unwrap_or_default(),
                unlisted(schemas.new, name),
                &here,
                out,
            ),
        }
    }
    for (name, new_prop) in n.iter().filter(|(k, _)| !o.contains_key(*k)) {
        let here = format!("{at}/properties/{}", token(name));
        added(name, new_prop, unlisted(schemas.old, name), &here, out);
    }
}

/// What a schema accepts under a property name that its `properties` does not list. JSON
/// Schema checks such a value against every `patternProperties` entry whose pattern matches
/// the name, and against `additionalProperties` only if none does.
enum Unlisted<'a> {
    /// Any value: an open content model (no `additionalProperties`, or `true`).
    Any,
    /// No value: `additionalProperties: false` and no pattern matching.
    Refused,
    /// What every one of these schemas accepts (a partially open content model), each
    /// named by the keyword it comes from.
    Covered(Vec<(String, &'a Value)>),
    /// Cannot be told, and why.
    Unknown(String),
}

fn unlisted<'a>(schema: &'a Map<String, Value>, name: &str) -> Unlisted<'a> {
    if schema
        .get("unevaluatedProperties")
        .is_some_and(|v| *v != Value::Bool(true))
    {
        return Unlisted::Unknown("`unevaluatedProperties` is not analysed".into());
    }
    match matching(schema, name) {
        Err(why) => Unlisted::Unknown(why),
        Ok(covers) if covers.is_empty() => fallback(schema),
        Ok(covers) => Unlisted::Covered(covers),
    }
}

/// The `patternProperties` entries whose pattern matches `name`, each named.
fn matching<'a>(
    schema: &'a Map<String, Value>,
    name: &str,
) -> Result<Vec<(String, &'a Value)>, String> {
    let mut covers = Vec::new();
    let patterns = schema.get("patternProperties").and_then(Value::as_object);
    for (pattern, sub) in patterns.into_iter().flatten() {
        match matches(pattern, name) {
            Some(true) => covers.push((format!("`patternProperties` `{pattern}`"), sub)),
            Some(false) => {}
            None => return Err(format!("pattern `{pattern}` is not understood")),
        }
    }
    Ok(covers)
}

/// What `additionalProperties` accepts: the values of names no pattern matches.
fn fallback(schema: &Map<String, Value>) -> Unlisted<'_> {
    match schema.get("additionalProperties") {
        None | Some(Value::Bool(true)) => Unlisted::Any,
        Some(Value::Bool(false)) => Unlisted::Refused,
        Some(sub) => Unlisted::Covered(vec![("`additionalProperties`".into(), sub)]),
    }
}

/// Whether `pattern` matches `name` the way `patternProperties` does (ECMA 262, unanchored),
/// asked of the same validator that checks the payloads so that the two agree; `None` if it
/// refuses the pattern.
fn matches(pattern: &str, name: &str) -> Option<bool> {
    let probe = serde_json::json!({ "patternProperties": { pattern: false } });
    let validator = jsonschema::validator_for(&probe).ok()?;
    Some(!validator.is_valid(&serde_json::json!({ name: null })))
}

/// What `to` refuses of what `from` accepted, in words: the breaking changes from one to the
/// other (empty when `to` accepts it all). `true` is read as `{}`, so that its keywords are
/// compared one by one.
fn refused(from: &Value, to: &Value) -> Vec<String> {
    let object = |v: &Value| match v {
        Value::Bool(true) => Value::Object(Map::new()),
        v => v.clone(),
    };
    let mut out = Vec::new();
    walk(&object(from), &object(to), "", &mut out);
    out.into_iter()
        .filter(|c| c.kind.class() == Class::Breaking)
        .map(|c| c.detail)
        .collect()
}

fn names(covers: &[(String, &Value)]) -> String {
    let names: Vec<&str> = covers.iter().map(|(by, _)| by.as_str()).collect();
    names.join(" and ")
}

/// `what` (a property, or the properties a pattern matched), described by `old` before, is
/// no longer described; `now` is what the new schema accepts in its place. `held` are the
/// covers that checked its values before as well (unchanged patterns): they refuse nothing
/// new.
fn removed(
    what: &str,
    old: &Value,
    held: &[(String, &Value)],
    now: Unlisted,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let (kind, detail) = match now {
        Unlisted::Any => (
            ChangeKind::SchemaConstraintRemoved,
            format!("{what} no longer described (still accepted)"),
        ),
        Unlisted::Refused => (
            ChangeKind::SchemaPropertyRemoved,
            format!("{what} removed while additional properties are refused"),
        ),
        Unlisted::Covered(covers) => {
            // The value must now satisfy every cover: each must accept what `old` did.
            let why: Vec<String> = covers
                .iter()
                .filter(|cover| !held.contains(cover))
                .flat_map(|(_, c)| refused(old, c))
                .collect();
            if why.is_empty() {
                (
                    ChangeKind::SchemaConstraintRemoved,
                    format!(
                        "{what} no longer described; {} still accepts all that its description did",
                        names(&covers)
                    ),
                )
            } else {
                (
                    ChangeKind::SchemaPropertyRemoved,
                    format!(
                        "{what} removed; {} now checks the values and refuses some that its description accepted: {}",
                        names(&covers),
                        why.join("; ")
                    ),
                )
            }
        }
        Unlisted::Unknown(why) => (
            ChangeKind::SchemaNotAnalysed,
            format!("{what} removed; whether the schema still accepts it is not known: {why}"),
        ),
    };
    push(out, kind, at, detail);
}

/// `name` is described by `new` now; `before` is what the old schema accepted under it.
fn added(name: &str, new: &Value, before: Unlisted, at: &str, out: &mut Vec<SchemaChange>) {
    let (kind, detail) = match before {
        Unlisted::Refused => (
            ChangeKind::SchemaPropertyAdded,
            format!("`{name}` described; the old schema refused it"),
        ),
        Unlisted::Any => match refused(&Value::Bool(true), new) {
            why if why.is_empty() => (
                ChangeKind::SchemaPropertyAdded,
                format!("`{name}` described without constraining it"),
            ),
            why => (
                ChangeKind::SchemaPropertyAddedToOpen,
                format!(
                    "`{name}` added to an open schema (no `additionalProperties: false`): payloads could carry `{name}` with any value; now {}",
                    why.join("; ")
                ),
            ),
        },
        Unlisted::Covered(covers) => {
            // An old value satisfied every cover, so one cover within `new` is enough.
            let why: Vec<Vec<String>> = covers.iter().map(|(_, c)| refused(c, new)).collect();
            if why.iter().any(Vec::is_empty) {
                (
                    ChangeKind::SchemaPropertyAdded,
                    format!(
                        "`{name}` described; it accepts all that {} accepted",
                        names(&covers)
                    ),
                )
            } else {
                (
                    ChangeKind::SchemaPropertyAddedToOpen,
                    format!(
                        "`{name}` added where {} accepted it, and its description is narrower: {}",
                        names(&covers),
                        why.concat().join("; ")
                    ),
                )
            }
        }
        Unlisted::Unknown(why) => (
            ChangeKind::SchemaNotAnalysed,
            format!("`{name}` added; what the old schema accepted under it is not known: {why}"),
        ),
    };
    push(out, kind, at, detail);
}

/// `patternProperties` entries changed or removed. A removed pattern's names fall to
/// `additionalProperties` (or to other patterns, which held before as well); a new one is not
/// analysed, since which names it reaches cannot be enumerated.
fn patterns(
    old: Option<&Value>,
    new: Option<&Value>,
    new_schema: &Map<String, Value>,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let empty = Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.and_then(Value::as_object).unwrap_or(&empty);
    for (pattern, old_sub) in o {
        let here = format!("{at}/{}", token(pattern));
        match n.get(pattern) {
            Some(new_sub) => walk(old_sub, new_sub, &here, out),
            None => removed(
                &format!("properties matching `{pattern}`"),
                old_sub,
                &[],
                fallback(new_schema),
                &here,
                out,
            ),
        }
    }
    for pattern in n.keys().filter(|k| !o.contains_key(*k)) {
        push(
            out,
            ChangeKind::SchemaNotAnalysed,
            &format!("{at}/{}", token(pattern)),
            format!(
                "`patternProperties` `{pattern}` added; the properties it reaches are not analysed"
            ),
        );
    }
}

/// The JSON types a `type` keyword allows; `None` allows all.
fn type_set(v: Option<&Value>) -> Option<BTreeSet<String>> {
    match v? {
        Value::String(s) => Some([s.clone()].into()),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn types(old: Option<&Value>, new: Option<&Value>, at: &str, out: &mut Vec<SchemaChange>) {
    let covers = |set: &Option<BTreeSet<String>>, t: &str| {
        set.as_ref()
            .is_none_or(|s| s.contains(t) || (t == "integer" && s.contains("number")))
    };
    let (o, n) = (type_set(old), type_set(new));
    let all = [
        "null", "boolean", "object", "array", "number", "integer", "string",
    ];
    let lost: Vec<&str> = all
        .into_iter()
        .filter(|t| covers(&o, t) && !covers(&n, t))
        .collect();
    let show = |v: Option<&Value>| v.map_or("any".to_string(), Value::to_string);
    if lost.is_empty() {
        push(
            out,
            ChangeKind::SchemaTypeWidened,
            at,
            format!("type {} became {}", show(old), show(new)),
        );
    } else {
        push(
            out,
            ChangeKind::SchemaTypeNarrowed,
            at,
            format!(
                "type {} became {}: {} no longer accepted",
                show(old),
                show(new),
                lost.join(", ")
            ),
        );
    }
}

fn strings(v: Option<&Value>) -> BTreeSet<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn required(old: Option<&Value>, new: Option<&Value>, at: &str, out: &mut Vec<SchemaChange>) {
    let (o, n) = (strings(old), strings(new));
    for name in n.difference(&o) {
        push(
            out,
            ChangeKind::SchemaPropertyRequired,
            at,
            format!("`{name}` is now required"),
        );
    }
    for name in o.difference(&n) {
        push(
            out,
            ChangeKind::SchemaConstraintRemoved,
            at,
            format!("`{name}` is no longer required"),
        );
    }
}

fn enums(old: &Value, new: &Value, at: &str, out: &mut Vec<SchemaChange>) {
    let (Some(o), Some(n)) = (old.as_array(), new.as_array()) else {
        return push(
            out,
            ChangeKind::SchemaNotAnalysed,
            at,
            "`enum` is not an array".into(),
        );
    };
    for v in o.iter().filter(|v| !n.contains(v)) {
        push(
            out,
            ChangeKind::SchemaEnumValueRemoved,
            at,
            format!("{v} is no longer allowed"),
        );
    }
    for v in n.iter().filter(|v| !o.contains(v)) {
        push(
            out,
            ChangeKind::SchemaEnumValueAdded,
            at,
            format!("{v} is now allowed"),
        );
    }
}

fn additional(old: Option<&Value>, new: Option<&Value>, at: &str, out: &mut Vec<SchemaChange>) {
    match (old, new) {
        (_, Some(Value::Bool(false))) => push(
            out,
            ChangeKind::SchemaClosed,
            at,
            "properties not listed are now refused".into(),
        ),
        (_, None | Some(Value::Bool(true))) => push(
            out,
            ChangeKind::SchemaConstraintRemoved,
            at,
            "properties not listed are now accepted".into(),
        ),
        (Some(Value::Bool(false)), Some(_)) => push(
            out,
            ChangeKind::SchemaConstraintRemoved,
            at,
            "properties not listed are now accepted when `additionalProperties` accepts them"
                .into(),
        ),
        // Open before: any value was accepted, as by the empty schema.
        (None | Some(Value::Bool(true)), Some(n)) => walk(&Value::Object(Map::new()), n, at, out),
        (Some(o), Some(n)) => walk(o, n, at, out),
    }
}

fn bound(key: &str, old: &Value, new: &Value, at: &str, out: &mut Vec<SchemaChange>) {
    let (Some(o), Some(n)) = (old.as_f64(), new.as_f64()) else {
        return push(
            out,
            ChangeKind::SchemaNotAnalysed,
            at,
            format!("`{key}` is not a number"),
        );
    };
    let narrower = if LOWER_BOUNDS.contains(&key) {
        n > o
    } else {
        n < o
    };
    let kind = if narrower {
        ChangeKind::SchemaBoundNarrowed
    } else {
        ChangeKind::SchemaBoundWidened
    };
    push(out, kind, at, format!("`{key}` {old} became {new}"));
}
