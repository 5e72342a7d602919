//! Whether a new version of an object's payload JSON Schema still accepts every document the
//! old one accepted. The common cases are decided keyword by keyword: `type`, `required`,
//! `enum`/`const`, `properties`, `additionalProperties`, `items`, `uniqueItems` and the numeric
//! and length bounds; annotations (`title`, `description`, …) never break. Any other assertion
//! keyword that is added or changed (`pattern`, `format`, `allOf`/`anyOf`/`oneOf`/`not`,
//! `if`/`then`/`else`, `$ref`/`$defs`, `patternProperties`, `dependentRequired`, …) is reported
//! as not analysed and counted as breaking: the gate cannot prove it safe. Removing a keyword
//! only ever accepts more.

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
        keyword(key, ov, nv, n, at, out);
    }
}

/// One keyword that differs between the two schemas (either side may lack it).
fn keyword(
    key: &str,
    old: Option<&Value>,
    new: Option<&Value>,
    new_schema: &Map<String, Value>,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let here = format!("{at}/{key}");
    match (key, old, new) {
        ("properties", _, _) => properties(old, new, new_schema, at, out),
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

fn properties(
    old: Option<&Value>,
    new: Option<&Value>,
    new_schema: &Map<String, Value>,
    at: &str,
    out: &mut Vec<SchemaChange>,
) {
    let empty = Map::new();
    let o = old.and_then(Value::as_object).unwrap_or(&empty);
    let n = new.and_then(Value::as_object).unwrap_or(&empty);
    let closed = new_schema.get("additionalProperties") == Some(&Value::Bool(false));
    for (name, old_prop) in o {
        let here = format!("{at}/properties/{name}");
        match n.get(name) {
            Some(new_prop) => walk(old_prop, new_prop, &here, out),
            None if closed => push(
                out,
                ChangeKind::SchemaPropertyRemoved,
                &here,
                format!("`{name}` removed while additional properties are refused"),
            ),
            None => push(
                out,
                ChangeKind::SchemaConstraintRemoved,
                &here,
                format!("`{name}` no longer described (still accepted)"),
            ),
        }
    }
    for name in n.keys().filter(|k| !o.contains_key(*k)) {
        push(
            out,
            ChangeKind::SchemaPropertyAdded,
            &format!("{at}/properties/{name}"),
            format!("`{name}` described"),
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
    let open = |v: Option<&Value>| v.is_none_or(|v| *v == Value::Bool(true));
    match (old, new) {
        (o, Some(Value::Bool(false))) if open(o) => push(
            out,
            ChangeKind::SchemaClosed,
            at,
            "properties not listed are now refused".into(),
        ),
        (_, n) if open(n) => push(
            out,
            ChangeKind::SchemaConstraintRemoved,
            at,
            "properties not listed are now accepted".into(),
        ),
        (Some(o), Some(n)) if o.is_object() && n.is_object() => walk(o, n, at, out),
        _ => push(
            out,
            ChangeKind::SchemaNotAnalysed,
            at,
            "`additionalProperties` changed; this form is not analysed".into(),
        ),
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
