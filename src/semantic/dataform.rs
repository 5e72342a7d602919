//! Dataform SQLX for teams that manage their BigQuery SQL with Dataform: a declaration of the
//! ingest table; the state table as an `incremental` table keyed by `object_id` (its
//! incremental branch reads only what was ingested since the newest event it holds, less the
//! safety lag; everything while it is empty); and the three views, with column descriptions
//! and assertions. The SQL is the text `provision` and `materialize` run, with tables written
//! as `${ref(...)}` / `${self()}`; config strings reach it only through `sql_string`, which
//! leaves no `${` for Dataform to evaluate. Each major of the data product has its own files
//! (its names carry the major); a deprecated major's say so in their descriptions and labels.

use super::{
    KEY_COLUMN, LATEST_EVENT_COLUMNS, Slice, UNIQUE_KEY, field_description, generate,
    non_null_columns, required_fields, state_select, versions, view_descriptions, watermark,
};
use crate::configuration::{ObjectSettings, SemanticField};
use serde_json::{Map, Value, json};

/// One file to write under a Dataform repository's `definitions/`.
pub struct SqlxFile {
    /// Relative path, e.g. `sources/order_events.sqlx`.
    pub path: String,
    pub contents: String,
}

fn config_block(config: &Value) -> String {
    // JSON is a valid JavaScript object literal, which is what a Dataform config block is.
    format!(
        "config {}\n",
        serde_json::to_string_pretty(&lexable(config)).expect("JSON values always serialise")
    )
}

/// `config` with every control character of its strings (a description's line breaks, tabs)
/// made a space. Dataform finds the end of the config block with a lexer whose quoted
/// strings admit no escape but `\"` and `\\`: JSON's `\n` or `\u0001` would make it lose
/// track of the quotes, and a `}` in a later description would then end the block.
fn lexable(config: &Value) -> Value {
    match config {
        Value::String(s) => Value::String(
            s.chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(lexable).collect()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .map(|(k, v)| (k.clone(), lexable(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Column docs for Dataform's `columns:` block: descriptions (with a classification), and
/// with `policy_tags` (the state table: a view's columns cannot carry one) each classified
/// column's `bigqueryPolicyTags`.
fn column_docs(fields: &[SemanticField], policy_tags: bool) -> Map<String, Value> {
    fields
        .iter()
        .map(|f| {
            let text = field_description(f).unwrap_or_default();
            let tag = f.policy_tag.as_ref().filter(|_| policy_tags);
            let doc = match (f.fields.is_empty(), tag) {
                (true, None) => json!(text),
                (true, Some(t)) => json!({"description": text, "bigqueryPolicyTags": [t]}),
                (false, tag) => {
                    let mut doc = json!({"description": text, "columns": column_docs(&f.fields, policy_tags)});
                    if let Some(t) = tag {
                        doc["bigqueryPolicyTags"] = json!([t]);
                    }
                    doc
                }
            };
            (f.name.clone(), doc)
        })
        .collect()
}

fn live_column_docs(fields: &[SemanticField], policy_tags: bool) -> Map<String, Value> {
    let mut columns = Map::new();
    columns.insert(KEY_COLUMN.name.into(), json!(KEY_COLUMN.description));
    columns.extend(column_docs(fields, policy_tags));
    for c in &LATEST_EVENT_COLUMNS {
        columns.insert(c.name.into(), json!(c.description));
    }
    columns
}

/// The incremental state table: the same `state_select` as `materialize`, its slice and its
/// merge with the current rows inside `when(incremental(), …)`.
fn state_table_file(object: &ObjectSettings, source: &str) -> Option<SqlxFile> {
    let semantic = object.semantic.as_ref()?;
    // A JavaScript template literal inside the SQLX: what it encloses is generated text and
    // validated column names only (no config string, so nothing there needs escaping).
    let incremental = |sql: String| format!("${{when(incremental(), `{sql}`)}}");
    // The newest event the table holds; the epoch while it is empty (MAX of no rows is NULL,
    // and `ingested_at > NULL` would read nothing, the table staying empty for good).
    let watermark = format!(
        "COALESCE((SELECT MAX(ingested_at) FROM ${{self()}}), {})",
        watermark::as_sql(None)
    );
    let slice = Slice::since(semantic, &watermark, "${self()}", incremental);
    let body = state_select(object, source, &slice)?;
    let mut columns = live_column_docs(&semantic.fields, true);
    columns.insert("deleted".into(), json!(super::DELETED_DESCRIPTION));
    let required: Vec<String> = required_fields(semantic)
        .iter()
        .map(|f| format!("deleted OR {f} IS NOT NULL"))
        .collect();
    let config = json!({
        "type": "incremental",
        "database": semantic.project,
        "schema": semantic.dataset,
        "name": semantic.state_table(),
        "description": versions::description(object, &format!(
            "Latest state of every {}, deleted ones flagged; kept up to date incrementally. Generated by mesh-ingest.",
            object.name
        )),
        "uniqueKey": UNIQUE_KEY,
        "bigquery": {
            "partitionBy": "TIMESTAMP_TRUNC(updated_at, MONTH)",
            "clusterBy": ["object_id"],
            "labels": versions::labels(object),
        },
        "columns": columns,
        "assertions": {"uniqueKey": UNIQUE_KEY, "rowConditions": required},
    });
    Some(SqlxFile {
        path: format!("{}.sqlx", semantic.state_table()),
        contents: format!("{}\n{body}", config_block(&config)),
    })
}

/// The SQLX files of `object`'s semantic layer; `None` without a `semantic:` section.
pub fn sqlx_files(object: &ObjectSettings) -> Option<Vec<SqlxFile>> {
    let semantic = object.semantic.as_ref()?;
    let table = &object.ingest_table;
    let source = format!("${{ref(\"{}\")}}", table.table);
    let state = format!("${{ref(\"{}\")}}", semantic.state_table());
    let sql = generate(object, &source, &state)?;
    let declaration = json!({
        "type": "declaration",
        "database": table.project,
        "schema": table.dataset,
        "name": table.table,
        "description": format!("Append-only ingest log of {} events, written by mesh-ingest.", object.name),
    });
    let non_null = non_null_columns(semantic);
    let view = |name: String, description: String, columns: Value, assertions: Value| {
        json!({
            "type": "view",
            "database": semantic.project,
            "schema": semantic.dataset,
            "name": name,
            "description": versions::description(object, &description),
            "columns": columns,
            "assertions": assertions,
            "bigquery": {"labels": versions::labels(object)},
        })
    };
    let [
        (live_name, live_text),
        (history_name, history_text),
        (rejected_name, rejected_text),
    ] = view_descriptions(object)?;
    let live = view(
        live_name,
        live_text,
        Value::Object(live_column_docs(&semantic.fields, false)),
        json!({"uniqueKey": UNIQUE_KEY, "nonNull": non_null}),
    );
    let history = view(
        history_name,
        history_text,
        Value::Object(live_column_docs(&semantic.fields, false)),
        json!({"uniqueKey": UNIQUE_KEY}),
    );
    let rejected = view(
        rejected_name,
        rejected_text,
        json!({
            "object_id": "Id of the domain object.",
            "event_id": "Id of the refused event.",
            "reason": "Which required fields are missing or do not fit their type.",
        }),
        json!({}),
    );
    let file = |name: &str, config: &Value, body: &str| SqlxFile {
        path: format!("{name}.sqlx"),
        contents: format!("{}\n{body}", config_block(config)),
    };
    Some(vec![
        SqlxFile {
            path: format!("sources/{}.sqlx", table.table),
            contents: config_block(&declaration),
        },
        state_table_file(object, &source)?,
        file(&semantic.view, &live, &sql.live),
        file(&semantic.history_view(), &history, &sql.history),
        file(&semantic.rejected_view(), &rejected, &sql.rejected),
    ])
}
