//! The semantic layer: from an object's `semantic:` section, the SQL of its latest-state view
//! (typed columns, one row per object, duplicates and tombstones handled) and of the companion
//! `<view>_rejected` view that lists the events refused by validation. Pure text generation;
//! `provision` runs the DDL, `mesh-ingest semantic` writes it (or Dataform SQLX) to files.
//!
//! SQL notes, because the same text must mean the same thing on BigQuery and on bqemulator:
//! values are read with JSON_VALUE / JSON_QUERY and converted with functions that return NULL
//! on bad input (SAFE.PARSE_NUMERIC rather than SAFE_CAST AS NUMERIC, an explicit digits check
//! before INT64, a CASE for BOOL), so a value that does not fit becomes a validation failure,
//! never a silently rounded number.

pub mod dataform;

use crate::configuration::{FieldType, ObjectSettings, SemanticField, SemanticSettings};
use crate::tables::ingest::{
    EVENT_ID, EVENT_TIME, EVENT_TYPE, MESSAGE_ID, OBJECT_ID, PAYLOAD, PUBLISH_TIME,
};
use std::fmt::Write as _;

/// The two views of one object, as SELECT statements over `source` (the ingest table name as
/// SQL should write it: a back-quoted table, or a Dataform `${ref(...)}`).
pub struct SemanticSql {
    pub view: String,
    pub rejected: String,
}

/// A JSONPath with every key quoted: `$."a"."b c"`. Keys never hold quotes (config checks).
fn json_path(keys: &[String]) -> String {
    let mut p = String::from("$");
    for k in keys {
        let _ = write!(p, ".\"{k}\"");
    }
    p
}

fn sql_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// Converts the text of a JSON scalar (`raw`, from JSON_VALUE) to `t`, NULL when it does not fit.
fn convert(raw: &str, t: FieldType) -> String {
    match t {
        FieldType::String => raw.to_string(),
        FieldType::Int64 => {
            format!("IF(REGEXP_CONTAINS({raw}, r'^[+-]?[0-9]+$'), SAFE_CAST({raw} AS INT64), NULL)")
        }
        FieldType::Numeric => format!("SAFE.PARSE_NUMERIC({raw})"),
        FieldType::Float64 => format!("SAFE_CAST({raw} AS FLOAT64)"),
        FieldType::Bool => {
            format!("CASE LOWER({raw}) WHEN 'true' THEN TRUE WHEN 'false' THEN FALSE END")
        }
        FieldType::Timestamp => format!("SAFE_CAST({raw} AS TIMESTAMP)"),
        FieldType::Date => format!("SAFE.PARSE_DATE('%Y-%m-%d', {raw})"),
        FieldType::Json | FieldType::Struct => unreachable!("not a scalar conversion"),
    }
}

/// The typed value of `field`, read from the JSON expression `base` (`payload`, or an array
/// element). `depth` keeps UNNEST aliases of nested arrays apart.
fn typed(base: &str, field: &SemanticField, depth: usize) -> String {
    let path = sql_string(&json_path(&field.path));
    let query = format!("JSON_QUERY({base}, {path})");
    if field.repeated {
        let e = format!("e{depth}");
        let o = format!("o{depth}");
        let elements = format!(
            "UNNEST(IF(JSON_TYPE({query}) = 'array', JSON_QUERY_ARRAY({base}, {path}), [])) AS {e} WITH OFFSET AS {o}"
        );
        return match field.field_type {
            FieldType::Struct => format!(
                "ARRAY(SELECT AS STRUCT {} FROM {elements} WHERE JSON_TYPE({e}) = 'object' ORDER BY {o})",
                struct_members(&e, &field.fields, depth + 1)
            ),
            t => {
                let value = convert(&format!("JSON_VALUE({e}, '$')"), t);
                // BigQuery cannot return NULL array elements: values that do not fit are left out.
                format!(
                    "ARRAY(SELECT {value} FROM {elements} WHERE {value} IS NOT NULL ORDER BY {o})"
                )
            }
        };
    }
    match field.field_type {
        FieldType::Json => query,
        FieldType::Struct => format!(
            "IF(JSON_TYPE({query}) = 'object', STRUCT({}), NULL)",
            struct_members(&query, &field.fields, depth + 1)
        ),
        t => convert(&format!("JSON_VALUE({base}, {path})"), t),
    }
}

fn struct_members(base: &str, fields: &[SemanticField], depth: usize) -> String {
    fields
        .iter()
        .map(|f| format!("{} AS {}", typed(base, f, depth), f.name))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A SQL expression that is NULL when `field` (read from `base`) passes validation, else the
/// reason. Only required fields are checked: absent or JSON null, or present but not
/// convertible to the declared type. Required sub-fields of a STRUCT are checked when the
/// STRUCT is there.
fn check(base: &str, field: &SemanticField, prefix: &str) -> Vec<String> {
    let name = format!("{prefix}{}", field.name);
    let path = sql_string(&json_path(&field.path));
    let query = format!("JSON_QUERY({base}, {path})");
    let mut checks = Vec::new();
    if field.required {
        let missing = format!("IFNULL(JSON_TYPE({query}), 'null') = 'null'");
        let wrong = if field.repeated {
            Some(format!("JSON_TYPE({query}) != 'array'"))
        } else {
            match field.field_type {
                FieldType::Json => None,
                FieldType::Struct => Some(format!("JSON_TYPE({query}) != 'object'")),
                _ => Some(format!("{} IS NULL", typed(base, field, 0))),
            }
        };
        let mut expr = format!(
            "CASE WHEN {missing} THEN {}",
            sql_string(&format!("{name}: missing"))
        );
        if let Some(w) = wrong {
            let _ = write!(
                expr,
                " WHEN {w} THEN {}",
                sql_string(&format!(
                    "{name}: not {}{}",
                    if field.repeated { "an array of " } else { "a " },
                    field.field_type.sql()
                ))
            );
        }
        expr.push_str(" END");
        checks.push(expr);
    }
    if field.field_type == FieldType::Struct && !field.repeated {
        for sub in &field.fields {
            for c in check(&query, sub, &format!("{name}.")) {
                // Only when the struct itself is there; its absence is the parent's check.
                checks.push(format!("IF(JSON_TYPE({query}) = 'object', {c}, NULL)"));
            }
        }
    }
    checks
}

/// The shared part of both views: deduplicated events with their validation outcome.
fn checked_events(object: &ObjectSettings, semantic: &SemanticSettings, source: &str) -> String {
    let checks: Vec<String> = semantic
        .fields
        .iter()
        .flat_map(|f| check("payload", f, ""))
        .collect();
    let reason = if checks.is_empty() {
        "''".to_string()
    } else {
        // IFNULL: bqemulator returns NULL, not '', when every element is NULL.
        format!(
            "IFNULL(ARRAY_TO_STRING([\n      {}\n    ], '; '), '')",
            checks.join(",\n      ")
        )
    };
    let deleted = if semantic.deleted_when.is_empty() {
        "FALSE".to_string()
    } else {
        format!(
            "event_type IN ({})",
            semantic
                .deleted_when
                .iter()
                .map(|t| sql_string(t))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    format!(
        "-- Generated by mesh-ingest from {file}; edit the YAML, not this SQL.
WITH events AS (
  -- The ingest table is at-least-once: a redelivered event (same event_id) counts once.
  SELECT {columns}
  FROM {source}
  WHERE {OBJECT_ID} IS NOT NULL
  QUALIFY ROW_NUMBER() OVER (PARTITION BY {EVENT_ID} ORDER BY {PUBLISH_TIME}, {MESSAGE_ID}) = 1
),
checked AS (
  SELECT *,
    {deleted} AS deleted,
    {reason} AS reason
  FROM events
)",
        file = object.source_file,
        columns = ingest_columns(),
    )
}

/// The ingest table's columns the views read, under the names the rest of the SQL uses (the
/// same names today: `AS` appears only if the table's column is ever renamed).
fn ingest_columns() -> String {
    [
        (OBJECT_ID, "object_id"),
        (EVENT_ID, "event_id"),
        (EVENT_TYPE, "event_type"),
        (EVENT_TIME, "event_time"),
        (PUBLISH_TIME, "publish_time"),
        (PAYLOAD, "payload"),
    ]
    .iter()
    .map(|(column, name)| {
        if column == name {
            column.to_string()
        } else {
            format!("{column} AS {name}")
        }
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// Generates both views of `object`'s semantic layer over `source`; `None` when the object
/// has no `semantic:` section.
pub fn generate(object: &ObjectSettings, source: &str) -> Option<SemanticSql> {
    let semantic = object.semantic.as_ref()?;
    let base = checked_events(object, semantic, source);
    let columns = semantic
        .fields
        .iter()
        .map(|f| format!("  {} AS {},", typed("payload", f, 0), f.name))
        .collect::<Vec<_>>()
        .join("\n");
    let view = format!(
        "{base},
latest AS (
  -- The latest valid event per object decides its state: by event time, then publish
  -- time, then event id, so ties resolve the same way on every run.
  SELECT * FROM checked
  WHERE deleted OR reason = ''
  QUALIFY ROW_NUMBER() OVER (
    PARTITION BY object_id ORDER BY event_time DESC, publish_time DESC, event_id DESC) = 1
)
SELECT
  object_id,
{columns}
  event_time AS updated_at,
  event_id
FROM latest
WHERE NOT deleted
"
    );
    let rejected = format!(
        "{base}
SELECT object_id, event_id, event_type, event_time, publish_time, reason
FROM checked
WHERE NOT deleted AND reason != ''
"
    );
    Some(SemanticSql { view, rejected })
}

/// One view's DDL.
#[derive(Debug, Clone)]
pub struct ViewDdl {
    /// The project that runs the statement (the view's own).
    pub project: String,
    /// `project.dataset.view`.
    pub name: String,
    /// `CREATE OR REPLACE VIEW …`.
    pub sql: String,
}

/// `CREATE OR REPLACE VIEW` statements for both views, in the order to run them.
pub fn ddl(object: &ObjectSettings) -> Option<Vec<ViewDdl>> {
    let semantic = object.semantic.as_ref()?;
    let sql = generate(object, &object.ingest_table.sql_name())?;
    let view = |view: &str, select: String| {
        let name = format!("{}.{}.{}", semantic.project, semantic.dataset, view);
        ViewDdl {
            project: semantic.project.clone(),
            sql: format!("CREATE OR REPLACE VIEW `{name}` AS\n{select}"),
            name,
        }
    };
    Some(vec![
        view(&semantic.view, sql.view),
        view(&semantic.rejected_view(), sql.rejected),
    ])
}

#[cfg(test)]
mod tests;
