//! The semantic layer: from an object's `semantic:` section, the SQL of its data product. The
//! latest valid state of every object lives in a **state table** (`<view>_state`: typed
//! columns, one row per object, tombstones kept), built once from the whole ingest log and then
//! kept up to date by `mesh-ingest materialize`, one MERGE that reads only what was ingested
//! since its watermark. Consumers read `<view>` (the live objects of the state table);
//! `<view>_history` computes the same from the whole log, for audits; `<view>_rejected` lists
//! the events refused by validation. One generator (`state_select`) writes the full build,
//! the MERGE's source and Dataform's incremental table. Pure text generation: `provision` and
//! `materialize` run it, `mesh-ingest semantic` writes it (or Dataform SQLX) to files.
//!
//! SQL notes, because the same text must mean the same thing on BigQuery and on bqemulator:
//! values are read with JSON_VALUE / JSON_QUERY and converted with functions that return NULL
//! on bad input (SAFE.PARSE_NUMERIC rather than SAFE_CAST AS NUMERIC, an explicit digits check
//! before INT64, a CASE for BOOL), so a value that does not fit becomes a validation failure,
//! never a silently rounded number.

pub mod compare;
pub mod consumers;
pub mod dataform;
pub mod fingerprint;
pub mod versions;
pub mod watermark;

use crate::configuration::{
    FieldType, ObjectSettings, STATE_EVENT_COLUMNS, SemanticField, SemanticSettings,
};
use crate::tables::ingest::{
    EVENT_ID, EVENT_SOURCE, EVENT_TIME, EVENT_TYPE, INGESTED_AT, MESSAGE_ID, OBJECT_ID, PAYLOAD,
    PUBLISH_TIME,
};
use std::fmt::Write as _;

/// A JSONPath with every key quoted: `$."a"."b c"`. Keys never hold quotes, backslashes or
/// `${` (config checks): JSON_VALUE takes its path only as one literal, never a CONCAT.
fn json_path(keys: &[String]) -> String {
    let mut p = String::from("$");
    for k in keys {
        let _ = write!(p, ".\"{k}\"");
    }
    p
}

/// `s` as a BigQuery STRING expression that reads the same in plain SQL and in Dataform SQLX:
/// a quoted literal, or when `s` holds `${` a CONCAT of literals split between `$` and `{`.
/// SQLX bodies are JavaScript template literals and Dataform evaluates a `${` even inside a
/// quoted SQL string. The split leaves no `${` anywhere in the text, so it relies on nothing
/// but CONCAT of string literals (a constant expression, valid in OPTIONS too); an escape such
/// as `\x24` would rely on how Dataform's lexer passes backslashes through. Backslashes and
/// backticks inside a quoted string need nothing more: Dataform escapes both for its template.
pub fn sql_string(s: &str) -> String {
    let pieces: Vec<&str> = s.split("${").collect();
    let last = pieces.len() - 1;
    if last == 0 {
        return quoted(s);
    }
    let literals: Vec<String> = pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let open = if i == 0 { "" } else { "{" };
            let close = if i == last { "" } else { "$" };
            quoted(&format!("{open}{piece}{close}"))
        })
        .collect();
    format!("CONCAT({})", literals.join(", "))
}

/// `s` between single quotes, with BigQuery's documented escapes for a quote, a backslash, a
/// line break (which a single-quoted literal may not hold as is), a carriage return and a tab.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// `s` made inert inside a `--` comment: a line break would end the comment, and in SQLX a
/// backslash would start a JavaScript escape (Dataform escapes only backticks and `${` in
/// comments). A comment is for people, so those characters become `?`.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() || c == '\\' { '?' } else { c })
        .collect()
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

/// Where a field's value is read from: a JSON expression (`payload`, or an array element) and
/// the keys of the enclosing STRUCTs below it. A member of a STRUCT is read with one JSONPath
/// from the expression (`$."price"."amount"`), not a JSON_QUERY of the STRUCT's JSON_QUERY:
/// one path evaluation instead of two, the same value (a member path through an array or a
/// scalar is NULL either way). bqemulator also mistranslates JSON_TYPE over a nested JSON_QUERY.
#[derive(Clone, Copy)]
struct Base<'a> {
    expr: &'a str,
    keys: &'a [String],
}

impl<'a> Base<'a> {
    fn of(expr: &'a str) -> Base<'a> {
        Base { expr, keys: &[] }
    }

    /// The keys from `expr` to `field`.
    fn path(&self, field: &SemanticField) -> Vec<String> {
        self.keys.iter().chain(&field.path).cloned().collect()
    }
}

/// The typed value of `field`, read from `base`. `depth` keeps UNNEST aliases of nested arrays
/// apart.
fn typed(base: Base, field: &SemanticField, depth: usize) -> String {
    let keys = base.path(field);
    let path = sql_string(&json_path(&keys));
    let expr = base.expr;
    let query = format!("JSON_QUERY({expr}, {path})");
    if field.repeated {
        let e = format!("e{depth}");
        let o = format!("o{depth}");
        let elements = format!(
            "UNNEST(IF(JSON_TYPE({query}) = 'array', JSON_QUERY_ARRAY({expr}, {path}), [])) AS {e} WITH OFFSET AS {o}"
        );
        return match field.field_type {
            FieldType::Struct => format!(
                "ARRAY(SELECT AS STRUCT {} FROM {elements} WHERE JSON_TYPE({e}) = 'object' ORDER BY {o})",
                struct_members(Base::of(&e), &field.fields, depth + 1)
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
            struct_members(Base { expr, keys: &keys }, &field.fields, depth + 1)
        ),
        t => convert(&format!("JSON_VALUE({expr}, {path})"), t),
    }
}

fn struct_members(base: Base, fields: &[SemanticField], depth: usize) -> String {
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
fn check(base: Base, field: &SemanticField, prefix: &str) -> Vec<String> {
    let name = format!("{prefix}{}", field.name);
    let keys = base.path(field);
    let path = sql_string(&json_path(&keys));
    let query = format!("JSON_QUERY({}, {path})", base.expr);
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
        let inner = Base {
            expr: base.expr,
            keys: &keys,
        };
        for sub in &field.fields {
            for c in check(inner, sub, &format!("{name}.")) {
                // Only when the struct itself is there; its absence is the parent's check.
                checks.push(format!("IF(JSON_TYPE({query}) = 'object', {c}, NULL)"));
            }
        }
    }
    checks
}

/// Which events a query reads, and which current state it merges them with. The same
/// generator serves the full rebuild (`Slice::all`), `materialize`'s MERGE (the new slice of
/// the ingest log, and the state table) and Dataform's incremental table (both wrapped in
/// `${when(incremental(), …)}`).
pub struct Slice {
    /// Appended to the events' WHERE clause (`AND ingested_at > …`), or empty.
    pub filter: String,
    /// The current state rows to compete with, as SQL that may stand after the slice's latest
    /// events (`UNION ALL SELECT … FROM state WHERE …`), or empty.
    pub current: String,
}

impl Slice {
    /// Every event of the ingest log, and no current state: the full computation.
    pub fn all() -> Slice {
        Slice {
            filter: String::new(),
            current: String::new(),
        }
    }

    /// Events ingested after `watermark_sql` (a TIMESTAMP expression) less the safety lag,
    /// competing with the rows of `state` (a table name as SQL writes it) for the same
    /// objects; `wrap` encloses each fragment (identity for plain SQL).
    pub fn since(
        semantic: &SemanticSettings,
        watermark_sql: &str,
        state: &str,
        wrap: impl Fn(String) -> String,
    ) -> Slice {
        let lag = semantic.safety_lag_secs;
        Slice {
            filter: wrap(format!(
                "AND {INGESTED_AT} > TIMESTAMP_SUB({watermark_sql}, INTERVAL {lag} SECOND)"
            )),
            current: wrap(format!(
                "UNION ALL\n  SELECT {} FROM {state}\n  WHERE object_id IN (SELECT object_id FROM slice_latest)",
                state_columns(semantic).join(", ")
            )),
        }
    }
}

/// The shared part of every query: the events of the slice, deduplicated, with their
/// validation outcome.
fn checked_events(
    object: &ObjectSettings,
    semantic: &SemanticSettings,
    source: &str,
    filter: &str,
) -> String {
    let checks: Vec<String> = semantic
        .fields
        .iter()
        .flat_map(|f| check(Base::of("payload"), f, ""))
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
  -- The ingest table is at-least-once: a redelivered event (same source and id) counts once.
  SELECT {columns}
  FROM {source}
  WHERE {OBJECT_ID} IS NOT NULL {filter}
  QUALIFY ROW_NUMBER() OVER (
    {dedup}) = 1
),
checked AS (
  SELECT *,
    {deleted} AS deleted,
    {reason} AS reason
  FROM events
)",
        file = comment_text(&object.source_file),
        columns = ingest_columns(),
        dedup = dedup_window(),
    )
}

/// Which copy of a redelivered event counts: the first published of each source and id.
fn dedup_window() -> String {
    format!("PARTITION BY {EVENT_SOURCE}, {EVENT_ID} ORDER BY {PUBLISH_TIME}, {MESSAGE_ID}")
}

/// The ingest table's columns the queries read, under the names the rest of the SQL uses
/// (the same names today: `AS` appears only if the table's column is ever renamed).
fn ingest_columns() -> String {
    [
        (OBJECT_ID, "object_id"),
        (EVENT_ID, "event_id"),
        (EVENT_SOURCE, "event_source"),
        (EVENT_TYPE, "event_type"),
        (EVENT_TIME, "event_time"),
        (PUBLISH_TIME, "publish_time"),
        (INGESTED_AT, "ingested_at"),
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

/// A column the view defines itself: name, BigQuery type, description.
pub struct OwnColumn {
    pub name: &'static str,
    pub bigquery_type: &'static str,
    pub description: &'static str,
}

/// The view's key column (first), before the typed fields.
pub const KEY_COLUMN: OwnColumn = OwnColumn {
    name: "object_id",
    bigquery_type: "STRING",
    description: "Id of the domain object.",
};

/// The view's columns after the typed fields: which event set the state.
pub const LATEST_EVENT_COLUMNS: [OwnColumn; 2] = [
    OwnColumn {
        name: "updated_at",
        bigquery_type: "TIMESTAMP",
        description: "Event time of the event that set this state.",
    },
    OwnColumn {
        name: "event_id",
        bigquery_type: "STRING",
        description: "Id of the event that set this state.",
    },
];

/// The data product's key: one row per object.
pub const UNIQUE_KEY: [&str; 1] = [KEY_COLUMN.name];

/// The typed fields a row of the view always has (required and not repeated). The Dataform
/// assertions and the contract's quality rules are both written from this.
pub fn required_fields(semantic: &SemanticSettings) -> Vec<String> {
    semantic
        .fields
        .iter()
        .filter(|f| f.required && !f.repeated)
        .map(|f| f.name.clone())
        .collect()
}

/// The view's columns that are never NULL: the key, when and by which event it was last
/// updated, and the required fields.
pub fn non_null_columns(semantic: &SemanticSettings) -> Vec<String> {
    let mut columns = vec![KEY_COLUMN.name.to_string()];
    columns.extend(LATEST_EVENT_COLUMNS.iter().map(|c| c.name.to_string()));
    columns.extend(required_fields(semantic));
    columns
}

/// The state table's columns, in order: the object, its typed fields, and what decides which
/// event is the latest (and whether it deleted the object).
pub fn state_columns(semantic: &SemanticSettings) -> Vec<String> {
    let mut columns = vec!["object_id".to_string()];
    columns.extend(semantic.fields.iter().map(|f| f.name.clone()));
    columns.extend(STATE_EVENT_COLUMNS.map(String::from));
    columns
}

/// The latest valid event wins: by event time, then publish time, then event id (and source).
const LATEST_FIRST: &str = "updated_at DESC, publish_time DESC, event_id DESC, event_source DESC";

/// The state of every object the slice touches, one row each, tombstones included (a deleted
/// object keeps its row, `deleted` set, so a late event older than the delete cannot bring it
/// back): its latest valid event in the slice, or its current row if that is later.
pub fn state_select(object: &ObjectSettings, source: &str, slice: &Slice) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let base = checked_events(object, semantic, source, &slice.filter);
    let typed = semantic
        .fields
        .iter()
        .map(|f| format!("    {} AS {},", typed(Base::of("payload"), f, 0), f.name))
        .collect::<Vec<_>>()
        .join("\n");
    let current = &slice.current;
    Some(format!(
        "{base},
slice_latest AS (
  SELECT
    object_id,
{typed}
    event_time AS updated_at, event_id, event_source, publish_time, ingested_at, deleted
  FROM checked
  WHERE deleted OR reason = ''
  QUALIFY ROW_NUMBER() OVER (PARTITION BY object_id ORDER BY {LATEST_FIRST}) = 1
),
candidates AS (
  SELECT * FROM slice_latest
  {current}
)
SELECT * FROM candidates
QUALIFY ROW_NUMBER() OVER (PARTITION BY object_id ORDER BY {LATEST_FIRST}) = 1
"
    ))
}

/// The consumer's columns: the state table's first ones (the object, its typed fields, when
/// and by which event it was set), without what decides "latest".
fn live_columns(semantic: &SemanticSettings) -> String {
    state_columns(semantic)[..semantic.fields.len() + 3].join(", ")
}

/// The SELECTs of the views of one object.
pub struct SemanticSql {
    /// `<view>`: the live objects, read from the state table.
    pub live: String,
    /// `<view>_history`: the same, computed from the whole ingest log (for audits).
    pub history: String,
    /// `<view>_rejected`: events refused by validation, with the reason.
    pub rejected: String,
}

/// Generates the views of `object`'s semantic layer over `source` (the ingest table as SQL
/// writes it) and `state` (the state table, likewise); `None` without a `semantic:` section.
pub fn generate(object: &ObjectSettings, source: &str, state: &str) -> Option<SemanticSql> {
    let semantic = object.semantic.as_ref()?;
    let columns = live_columns(semantic);
    let full = state_select(object, source, &Slice::all())?;
    let history = format!("SELECT {columns}\nFROM (\n{full})\nWHERE NOT deleted\n");
    let base = checked_events(object, semantic, source, "");
    let rejected = format!(
        "{base}
SELECT object_id, event_id, event_type, event_time, publish_time, reason
FROM checked
WHERE NOT deleted AND reason != ''
"
    );
    let live = format!(
        "-- Generated by mesh-ingest from {file}: the live objects of the state table that \
         `mesh-ingest materialize` keeps.\nSELECT {columns}\nFROM {state}\nWHERE NOT deleted\n",
        file = comment_text(&object.source_file)
    );
    Some(SemanticSql {
        live,
        history,
        rejected,
    })
}

/// The views of one major with what each holds, live view first: the descriptions
/// `provision` sets and the Dataform SQLX carries (a deprecated major's notice goes before
/// them, `versions::describe`).
pub fn view_descriptions(object: &ObjectSettings) -> Option<[(String, String); 3]> {
    let semantic = object.semantic.as_ref()?;
    let name = &object.name;
    Some([
        (
            semantic.view.clone(),
            semantic.description.clone().unwrap_or_else(|| {
                format!(
                    "Latest valid state of each {name} (one row per object; deleted objects absent). Generated by mesh-ingest."
                )
            }),
        ),
        (
            semantic.history_view(),
            format!(
                "The same as {}, computed from the whole ingest log (for audits). Generated by mesh-ingest.",
                semantic.view
            ),
        ),
        (
            semantic.rejected_view(),
            format!(
                "{name} events refused by the semantic layer's validation, with the reason. Generated by mesh-ingest."
            ),
        ),
    ])
}

/// What the columns of a major's state table and views hold, by column path (`total`,
/// `total.amount`): the typed fields as the YAML describes them, and the columns the layer
/// defines itself. `rejected`: for `<view>_rejected`, whose rows are refused events.
pub fn column_descriptions(
    semantic: &SemanticSettings,
    rejected: bool,
) -> std::collections::BTreeMap<String, String> {
    let mut out = by_path(&semantic.fields, &field_description);
    let own = [
        (KEY_COLUMN.name, KEY_COLUMN.description),
        (
            LATEST_EVENT_COLUMNS[0].name,
            LATEST_EVENT_COLUMNS[0].description,
        ),
        (
            LATEST_EVENT_COLUMNS[1].name,
            LATEST_EVENT_COLUMNS[1].description,
        ),
        ("deleted", DELETED_DESCRIPTION),
        (
            "event_source",
            "CloudEvents source of the event that set this state (an id is unique per source).",
        ),
        (
            "publish_time",
            "When Pub/Sub received the event that set this state.",
        ),
        (
            "ingested_at",
            "When mesh-ingest wrote the event that set this state to the ingest table.",
        ),
    ];
    for (name, text) in own {
        out.insert(name.to_string(), text.to_string());
    }
    if rejected {
        for (name, text) in [
            ("event_id", "Id of the refused event."),
            ("event_type", "Type of the refused event."),
            ("event_time", "Event time of the refused event."),
            ("publish_time", "When Pub/Sub received the refused event."),
            (
                "reason",
                "Which required fields are missing or do not fit their type.",
            ),
        ] {
            out.insert(name.to_string(), text.to_string());
        }
    }
    out
}

/// A typed field's column description: the YAML's, and its classification.
pub fn field_description(f: &SemanticField) -> Option<String> {
    match (&f.description, &f.classification) {
        (Some(d), Some(c)) => Some(format!("{d} Classification: {c}.")),
        (None, Some(c)) => Some(format!("Classification: {c}.")),
        (d, None) => d.clone(),
    }
}

/// The policy tag of each classified column of a major's state table, by column path (a
/// view's columns cannot carry one: BigQuery applies the table's to the view's readers).
pub fn column_policy_tags(
    semantic: &SemanticSettings,
) -> std::collections::BTreeMap<String, String> {
    by_path(&semantic.fields, &|f| f.policy_tag.clone())
}

/// `value` of every field and sub-field that has one, by column path (`total.amount`).
fn by_path(
    fields: &[SemanticField],
    value: &dyn Fn(&SemanticField) -> Option<String>,
) -> std::collections::BTreeMap<String, String> {
    fn walk(
        out: &mut std::collections::BTreeMap<String, String>,
        prefix: &str,
        list: &[SemanticField],
        value: &dyn Fn(&SemanticField) -> Option<String>,
    ) {
        for f in list {
            let path = format!("{prefix}{}", f.name);
            if let Some(v) = value(f) {
                out.insert(path.clone(), v);
            }
            walk(out, &format!("{path}."), &f.fields, value);
        }
    }
    let mut out = std::collections::BTreeMap::new();
    walk(&mut out, "", fields, value);
    out
}

/// The state table's `deleted` column.
pub const DELETED_DESCRIPTION: &str = "The latest event deleted the object (its row is kept so that older events cannot bring it back).";

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

/// `CREATE OR REPLACE VIEW` statements for the three views, in the order to run them.
pub fn ddl(object: &ObjectSettings) -> Option<Vec<ViewDdl>> {
    let semantic = object.semantic.as_ref()?;
    let state = semantic.qualified(&semantic.state_table()).sql_name();
    let sql = generate(object, &object.ingest_table.sql_name(), &state)?;
    let view = |view: &str, select: String| {
        let name = semantic.qualified(view).to_string();
        ViewDdl {
            project: semantic.project.clone(),
            sql: format!("CREATE OR REPLACE VIEW `{name}` AS\n{select}"),
            name,
        }
    };
    Some(vec![
        view(&semantic.view, sql.live),
        view(&semantic.history_view(), sql.history),
        view(&semantic.rejected_view(), sql.rejected),
    ])
}

/// The statement that (re)builds the state table from the whole ingest log: partitioned by
/// month of `updated_at` (a month, not a day: event times may span centuries, and a table
/// holds at most 10,000 partitions), clustered by `object_id`. Its description records the
/// definition it was built from (`fingerprint`), in the same statement as its rows.
pub fn build_state_table(object: &ObjectSettings) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let full = state_select(object, &object.ingest_table.sql_name(), &Slice::all())?;
    Some(format!(
        "CREATE OR REPLACE TABLE {}\nPARTITION BY TIMESTAMP_TRUNC(updated_at, MONTH)\nCLUSTER BY object_id\nOPTIONS(description = {})\nAS\n{full}",
        semantic.qualified(&semantic.state_table()).sql_name(),
        sql_string(&fingerprint::description(object)?)
    ))
}

/// The MERGE `materialize` runs: the events ingested after the watermark (a TIMESTAMP
/// expression), merged into the state table.
pub fn merge_statement(object: &ObjectSettings, watermark_sql: &str) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let state = semantic.qualified(&semantic.state_table()).sql_name();
    let slice = Slice::since(semantic, watermark_sql, &state, |s| s);
    let select = state_select(object, &object.ingest_table.sql_name(), &slice)?;
    let columns = state_columns(semantic);
    let set = columns
        .iter()
        .skip(1)
        .map(|c| format!("{c} = S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let names = columns.join(", ");
    let values = columns
        .iter()
        .map(|c| format!("S.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    Some(format!(
        "MERGE {state} T\nUSING (\n{select}) S\nON T.object_id = S.object_id\n\
         WHEN MATCHED THEN UPDATE SET {set}\n\
         WHEN NOT MATCHED THEN INSERT ({names}) VALUES ({values})"
    ))
}

#[cfg(test)]
mod tests;
