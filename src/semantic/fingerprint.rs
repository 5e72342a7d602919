//! The definition a state table is built from, as canonical text and a fingerprint of it.
//! The state table's rows depend on more than its column names: a field's path, type and
//! `required`, `deleted_when`, the ingest table read, how duplicates are dropped and which
//! event counts as the latest. The build writes this text and its fingerprint into the
//! table's description (in the same statement as the rows, so table and definition never
//! disagree), `provision` rebuilds when they differ from the configuration's, and
//! `materialize` refuses to merge into a table built from another definition, naming what
//! changed. Descriptions and `deprecated` are left out: they change no row.

use super::{LATEST_FIRST, dedup_window, json_path, sql_string};
use crate::configuration::{ObjectSettings, SemanticField};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// The canonical text's first line; the description is read from it on.
const HEADER: &str = "mesh-ingest state table definition, format 1";
/// Changes whenever the generated SQL computes a different row from the same definition, so
/// that state tables built by an older mesh-ingest are rebuilt rather than merged into.
const GENERATOR: u32 = 1;
/// How the build's description starts.
const INTRO: &str = "Latest state of every object of the data product";
/// The description line that carries the fingerprint.
const FINGERPRINT_PREFIX: &str = "fingerprint: ";
/// BigQuery's limit on a table description is 16,384 characters; a longer definition is
/// recorded by its fingerprint alone (a change is then detected, but not named).
const MAX_DESCRIPTION_CHARS: usize = 16_000;

/// The definition of `object`'s state table as text, one `key: value` line per thing that
/// decides its rows; `None` without a `semantic:` section.
pub fn canonical(object: &ObjectSettings) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let mut deleted: Vec<String> = semantic
        .deleted_when
        .iter()
        .map(|t| sql_string(t))
        .collect();
    // `event_type IN (…)`: neither order nor repetition changes a row.
    deleted.sort();
    deleted.dedup();
    let mut lines = vec![
        HEADER.to_string(),
        format!("generator: {GENERATOR}"),
        format!("source: {}", object.ingest_table),
        format!("deduplicated by: {}", dedup_window()),
        format!("latest by: {LATEST_FIRST}"),
        format!(
            "deleted when: {}",
            if deleted.is_empty() {
                "(never)".to_string()
            } else {
                deleted.join(", ")
            }
        ),
    ];
    for f in &semantic.fields {
        field_lines(f, "", &mut lines);
    }
    Some(lines.join("\n"))
}

fn field_lines(field: &SemanticField, prefix: &str, lines: &mut Vec<String>) {
    let name = format!("{prefix}{}", field.name);
    lines.push(format!(
        "field {name}: {} at {}{}",
        field.column_type(),
        json_path(&field.path),
        if field.required { ", required" } else { "" }
    ));
    for sub in &field.fields {
        field_lines(sub, &format!("{name}."), lines);
    }
}

/// A stable fingerprint of a canonical text: the first 128 bits of its SHA-256, in hex.
pub fn fingerprint(canonical: &str) -> String {
    Sha256::digest(canonical.as_bytes())[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The state table's description: what it is, the fingerprint, and the canonical text.
pub fn description(object: &ObjectSettings) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let text = canonical(object)?;
    let intro = format!(
        "{INTRO} `{}`, kept by mesh-ingest. Built \
         from the definition below: `mesh-ingest provision` rebuilds it when the \
         configuration's differs, `mesh-ingest materialize` refuses to merge until then.\n\
         {FINGERPRINT_PREFIX}{}\n",
        semantic.view,
        fingerprint(&text)
    );
    if intro.len() + text.len() > MAX_DESCRIPTION_CHARS {
        return Some(intro);
    }
    Some(intro + &text)
}

/// The part of a state table's description the build wrote (what `description` returns),
/// without what `provision` put before it (the contract, a deprecation notice).
pub fn recorded(description: &str) -> &str {
    description
        .find(INTRO)
        .map_or(description, |at| &description[at..])
}

/// How the definition a state table records compares with the configuration's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Agreement {
    Same,
    /// Built from another definition: the two fingerprints and what differs.
    Differs {
        recorded: String,
        configured: String,
        changes: Vec<String>,
    },
    /// The table records no definition (built by an older mesh-ingest, or by hand).
    Unrecorded,
}

impl Agreement {
    /// What differs, for the operator.
    pub fn explain(&self) -> String {
        match self {
            Agreement::Same => "the definition is the configuration's".into(),
            Agreement::Unrecorded => {
                "the table records no definition (built by an older mesh-ingest or by hand)".into()
            }
            Agreement::Differs {
                recorded,
                configured,
                changes,
            } => format!(
                "definition {recorded} in the table, {configured} in the configuration: {}",
                changes.join("; ")
            ),
        }
    }
}

/// Compares the definition recorded in a state table's `description` with `object`'s.
pub fn agreement(object: &ObjectSettings, description: Option<&str>) -> Agreement {
    let Some(configured_text) = canonical(object) else {
        return Agreement::Same;
    };
    let configured = fingerprint(&configured_text);
    let Some(description) = description else {
        return Agreement::Unrecorded;
    };
    let Some(recorded) = description
        .lines()
        .find_map(|l| l.strip_prefix(FINGERPRINT_PREFIX))
        .map(str::trim)
    else {
        return Agreement::Unrecorded;
    };
    if recorded == configured {
        return Agreement::Same;
    }
    let changes = match description.find(HEADER) {
        Some(at) => differences(&description[at..], &configured_text),
        None => vec!["the table's definition text was too long to record".into()],
    };
    Agreement::Differs {
        recorded: recorded.to_string(),
        configured,
        changes,
    }
}

/// The `key: value` lines of a canonical text, after its header.
fn entries(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .skip(1)
        .map(|l| l.split_once(": ").unwrap_or((l, "")))
        .collect()
}

/// What differs between two canonical texts, line by line, by key: a field added or removed,
/// a value changed (`field total: INT64 at $."total" → NUMERIC at $."total"`).
pub fn differences(recorded: &str, configured: &str) -> Vec<String> {
    let old = entries(recorded);
    let new = entries(configured);
    let old_map: BTreeMap<&str, &str> = old.iter().copied().collect();
    let new_map: BTreeMap<&str, &str> = new.iter().copied().collect();
    let mut out = Vec::new();
    for (key, was) in &old {
        match new_map.get(key) {
            None => out.push(format!("{key} removed (was {was})")),
            Some(now) if now != was => out.push(format!("{key}: {was} → {now}")),
            Some(_) => {}
        }
    }
    for (key, now) in &new {
        if !old_map.contains_key(key) {
            out.push(format!("{key} added ({now})"));
        }
    }
    if out.is_empty() && recorded.lines().next() != configured.lines().next() {
        out.push("the definition's format changed".into());
    } else if out.is_empty() {
        out.push("the order of the fields changed".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const BASE: &str = r#"
name: order
subscription: order-ingest
ingest_table: p.ing.order_events
dead_letter_table: p.ing.order_dead_letter
envelope: {format: json, object_id: payload.order_id}
semantic:
  dataset: sem
  description: Orders.
  deleted_when: [OrderDeleted, OrderRemoved]
  fields:
    - {name: status, type: STRING, required: true, description: Where it is.}
    - {name: total, type: INT64}
    - name: customer
      type: STRUCT
      fields:
        - {name: id, type: STRING}
"#;

    fn object(yaml: &str) -> ObjectSettings {
        ObjectSettings::parse(yaml, Path::new("objects/order.yaml"), "p").unwrap()
    }

    /// Each edit of the YAML, whether it changes the fingerprint, and a phrase that names it.
    const EDITS: &[(&str, &str, &str, bool, &str)] = &[
        (
            "a field added",
            "    - {name: total, type: INT64}\n",
            "    - {name: total, type: INT64}\n    - {name: note, type: STRING}\n",
            true,
            "field note added (STRING at $.\"note\")",
        ),
        (
            "a path changed",
            "{name: total, type: INT64}",
            "{name: total, path: sum.total, type: INT64}",
            true,
            "field total: INT64 at $.\"total\" → INT64 at $.\"sum\".\"total\"",
        ),
        (
            "a type widened",
            "{name: total, type: INT64}",
            "{name: total, type: NUMERIC}",
            true,
            "field total: INT64 at $.\"total\" → NUMERIC at $.\"total\"",
        ),
        (
            "required changed",
            "{name: total, type: INT64}",
            "{name: total, type: INT64, required: true}",
            true,
            "field total: INT64 at $.\"total\" → INT64 at $.\"total\", required",
        ),
        (
            "a sub-field's type",
            "{name: id, type: STRING}",
            "{name: id, type: INT64}",
            true,
            "field customer.id: STRING at $.\"id\" → INT64 at $.\"id\"",
        ),
        (
            "deleted_when changed",
            "deleted_when: [OrderDeleted, OrderRemoved]",
            "deleted_when: [OrderDeleted]",
            true,
            "deleted when: 'OrderDeleted', 'OrderRemoved' → 'OrderDeleted'",
        ),
        (
            "a field removed",
            "    - {name: total, type: INT64}\n",
            "",
            true,
            "field total removed (was INT64 at $.\"total\")",
        ),
        (
            "another ingest table",
            "ingest_table: p.ing.order_events",
            "ingest_table: p.ing.other_events",
            true,
            "source: p.ing.order_events → p.ing.other_events",
        ),
        (
            "a field's description",
            "description: Where it is.",
            "description: Where the order is now.",
            false,
            "",
        ),
        (
            "the view's description",
            "description: Orders.",
            "description: All orders.",
            false,
            "",
        ),
        (
            "deleted_when reordered",
            "deleted_when: [OrderDeleted, OrderRemoved]",
            "deleted_when: [OrderRemoved, OrderDeleted]",
            false,
            "",
        ),
    ];

    #[test]
    fn the_fingerprint_follows_what_changes_rows_and_names_the_change() {
        let base = object(BASE);
        let base_text = canonical(&base).unwrap();
        let base_description = description(&base).unwrap();
        assert_eq!(
            agreement(&base, Some(&base_description)),
            Agreement::Same,
            "{base_description}"
        );
        for (what, from, to, changes, named) in EDITS {
            assert!(BASE.contains(from), "{what}: `{from}` is not in the base");
            let edited = object(&BASE.replacen(from, to, 1));
            let text = canonical(&edited).unwrap();
            assert_eq!(
                fingerprint(&text) != fingerprint(&base_text),
                *changes,
                "{what}:\n{base_text}\n---\n{text}"
            );
            let verdict = agreement(&edited, Some(&base_description));
            if *changes {
                let Agreement::Differs { changes, .. } = &verdict else {
                    panic!("{what}: {verdict:?}");
                };
                assert_eq!(changes, &[named.to_string()], "{what}");
                assert!(verdict.explain().contains(named), "{what}");
            } else {
                assert_eq!(verdict, Agreement::Same, "{what}");
            }
        }
    }

    #[test]
    fn the_fingerprint_is_stable_and_fits_a_label() {
        // A fixed text's fingerprint: it must not change with the Rust version or the
        // platform, or every state table would be rebuilt after an upgrade.
        assert_eq!(fingerprint("abc"), "ba7816bf8f01cfea414140de5dae2223");
        let f = fingerprint(&canonical(&object(BASE)).unwrap());
        assert_eq!(f.len(), 32);
        assert!(
            f.chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
    }

    #[test]
    fn a_table_without_a_recorded_definition_is_not_taken_for_the_same() {
        let base = object(BASE);
        assert_eq!(agreement(&base, None), Agreement::Unrecorded);
        assert_eq!(
            agreement(&base, Some("hand-written notes")),
            Agreement::Unrecorded
        );
        // A fingerprint without the text: the change is seen, not named.
        let mut cut = description(&base).unwrap();
        cut.truncate(cut.find(HEADER).unwrap());
        let edited = object(&BASE.replace("type: INT64", "type: NUMERIC"));
        let Agreement::Differs { changes, .. } = agreement(&edited, Some(&cut)) else {
            panic!("a different definition");
        };
        assert_eq!(
            changes,
            ["the table's definition text was too long to record"]
        );
    }
}
