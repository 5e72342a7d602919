//! The generated SQL, checked as text; tests/semantic_layer.rs runs it on bqemulator.

use super::*;
use crate::configuration::ObjectSettings;
use std::path::Path;

const ORDER: &str = r#"
name: order
subscription: order-ingest
ingest_table: p.ing.order_events
dead_letter_table: p.ing.order_dead_letter
envelope: {format: json, object_id: payload.order_id}
event_types: [OrderCreated, OrderDeleted]
semantic:
  dataset: sem
  deleted_when: [OrderDeleted]
  fields:
    - {name: order_id, type: STRING, required: true, description: "The order's id"}
    - {name: total, type: NUMERIC, required: true}
    - {name: qty, path: counts.qty, type: INT64}
    - name: items
      type: STRUCT
      repeated: true
      fields:
        - {name: sku, type: STRING}
        - {name: n, path: "\"q.ty\"", type: INT64}
    - name: customer
      type: STRUCT
      required: true
      fields:
        - {name: id, type: STRING, required: true}
    - {name: tags, type: STRING, repeated: true}
"#;

fn order() -> ObjectSettings {
    ObjectSettings::parse(ORDER, Path::new("objects/order.yaml"), "p").unwrap()
}

#[test]
fn view_reads_typed_fields_with_safe_conversions() {
    let sql = generate(&order(), "`p.ing.order_events`", "`p.sem.order_v1_state`").unwrap();
    let v = &sql.history;
    assert!(v.contains("FROM `p.ing.order_events`"), "{v}");
    assert!(
        v.contains("SAFE.PARSE_NUMERIC(JSON_VALUE(payload, '$.\"total\"')) AS total"),
        "{v}"
    );
    assert!(
        v.contains("IF(REGEXP_CONTAINS(JSON_VALUE(payload, '$.\"counts\".\"qty\"'), r'^[+-]?[0-9]+$'), SAFE_CAST(JSON_VALUE(payload, '$.\"counts\".\"qty\"') AS INT64), NULL) AS qty"),
        "{v}"
    );
    // A key with a dot stays one key.
    assert!(v.contains("JSON_VALUE(e0, '$.\"q.ty\"')"), "{v}");
    assert!(v.contains("ARRAY(SELECT AS STRUCT"), "{v}");
    assert!(v.contains("WITH OFFSET AS o0"), "{v}");
    assert!(
        v.contains("IF(JSON_TYPE(JSON_QUERY(payload, '$.\"customer\"')) = 'object', STRUCT("),
        "{v}"
    );
    assert!(v.contains("WHERE JSON_VALUE(e0, '$') IS NOT NULL"), "{v}");
}

#[test]
fn view_deduplicates_orders_and_drops_tombstones() {
    let sql = generate(&order(), "t", "s").unwrap();
    let v = &sql.history;
    assert!(
        v.contains("PARTITION BY event_source, event_id ORDER BY publish_time, message_id) = 1")
    );
    assert!(v.contains(
        "PARTITION BY object_id ORDER BY updated_at DESC, publish_time DESC, event_id DESC, event_source DESC) = 1"
    ));
    assert!(v.contains("event_type IN ('OrderDeleted') AS deleted"));
    assert!(v.contains("WHERE deleted OR reason = ''"));
    assert!(v.trim_end().ends_with("WHERE NOT deleted"));
    assert!(v.contains("event_time AS updated_at"));
    // Consumers read the live rows of the state table.
    assert!(
        sql.live.contains("FROM s\nWHERE NOT deleted"),
        "{}",
        sql.live
    );
}

#[test]
fn the_merge_reads_only_the_slice_and_competes_with_the_current_rows() {
    let m = merge_statement(&order(), "TIMESTAMP_MICROS(42)").unwrap();
    assert!(m.starts_with("MERGE `p.sem.order_v1_state` T"), "{m}");
    assert!(
        m.contains("AND ingested_at > TIMESTAMP_SUB(TIMESTAMP_MICROS(42), INTERVAL 300 SECOND)"),
        "{m}"
    );
    assert!(
        m.contains("UNION ALL\n  SELECT object_id, order_id, total, qty, items, customer, tags, updated_at, event_id, event_source, publish_time, ingested_at, deleted FROM `p.sem.order_v1_state`"),
        "{m}"
    );
    assert!(
        m.contains("WHEN NOT MATCHED THEN INSERT (object_id, order_id,"),
        "{m}"
    );
    // The full build and the MERGE's source come from the same generator.
    let build = build_state_table(&order()).unwrap();
    assert!(build.contains("CLUSTER BY object_id"), "{build}");
    assert!(!build.contains("UNION ALL"), "{build}");
}

#[test]
fn only_required_fields_are_validated_and_reasons_name_them() {
    let r = generate(&order(), "t", "s").unwrap().rejected;
    assert!(r.contains("'order_id: missing'"), "{r}");
    assert!(r.contains("'total: not a NUMERIC'"), "{r}");
    assert!(r.contains("'customer: not a STRUCT'"), "{r}");
    assert!(r.contains("'customer.id: missing'"), "{r}");
    assert!(
        !r.contains("'qty: "),
        "optional fields are not validated: {r}"
    );
    assert!(r.contains("WHERE NOT deleted AND reason != ''"));
}

#[test]
fn ddl_names_the_views_and_strings_are_escaped() {
    let ddl = ddl(&order()).unwrap();
    assert_eq!(ddl[0].name, "p.sem.order_v1");
    assert_eq!(ddl[0].project, "p");
    assert!(
        ddl[0]
            .sql
            .starts_with("CREATE OR REPLACE VIEW `p.sem.order_v1` AS\n")
    );
    assert_eq!(ddl[1].name, "p.sem.order_v1_history");
    assert_eq!(ddl[2].name, "p.sem.order_v1_rejected");
    assert_eq!(sql_string("it's \\ odd"), "'it\\'s \\\\ odd'");
}

#[test]
fn objects_without_semantic_section_generate_nothing() {
    let text = ORDER.split("semantic:").next().unwrap();
    let o = ObjectSettings::parse(text, Path::new("o.yaml"), "p").unwrap();
    assert!(generate(&o, "t", "s").is_none());
    assert!(dataform::sqlx_files(&o).is_none());
}

#[test]
fn dataform_files_declare_the_source_and_assert_uniqueness() {
    let files = dataform::sqlx_files(&order()).unwrap();
    let paths: Vec<&str> = files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "sources/order_events.sqlx",
            "order_v1_state.sqlx",
            "order_v1.sqlx",
            "order_v1_history.sqlx",
            "order_v1_rejected.sqlx"
        ]
    );
    let state = &files[1].contents;
    assert!(state.contains("\"type\": \"incremental\""), "{state}");
    assert!(state.contains("FROM ${ref(\"order_events\")}"), "{state}");
    assert!(
        state.contains("${when(incremental(), `AND ingested_at > TIMESTAMP_SUB(COALESCE((SELECT MAX(ingested_at) FROM ${self()}), TIMESTAMP_MICROS(0)), INTERVAL 300 SECOND)`)}"),
        "{state}"
    );
    assert!(state.contains("FROM ${self()}"), "{state}");
    let view = &files[2].contents;
    assert!(view.starts_with("config {\n"));
    assert!(view.contains("FROM ${ref(\"order_v1_state\")}"), "{view}");
    assert!(
        view.contains("\"uniqueKey\": [\n      \"object_id\"\n    ]"),
        "{view}"
    );
    assert!(view.contains("\"order_id\": \"The order's id\""), "{view}");
    let non_null = view.split("\"nonNull\"").nth(1).unwrap();
    assert!(
        non_null.contains("\"total\""),
        "required fields are asserted non-null"
    );
    assert!(!non_null.split(']').next().unwrap().contains("\"qty\""));
}

/// Reads back the STRING expression `sql_string` writes at the start of `sql`: a quoted
/// literal or a CONCAT of them. Returns the value and the rest of the text.
fn read_string_expr(sql: &str) -> (String, &str) {
    fn literal(sql: &str) -> (String, &str) {
        let mut chars = sql.char_indices();
        assert_eq!(chars.next().map(|(_, c)| c), Some('\''), "a literal: {sql}");
        let mut value = String::new();
        while let Some((i, c)) = chars.next() {
            match c {
                '\'' => return (value, &sql[i + 1..]),
                '\\' => value.push(match chars.next().expect("escape").1 {
                    'n' => '\n',
                    'r' => '\r',
                    't' => '\t',
                    c @ ('\'' | '\\') => c,
                    c => panic!("an escape bqemulator does not read: \\{c}"),
                }),
                '\n' | '\r' => panic!("a raw line break in a quoted string: {sql}"),
                c => value.push(c),
            }
        }
        panic!("unterminated literal: {sql}")
    }
    let Some(mut rest) = sql.strip_prefix("CONCAT(") else {
        return literal(sql);
    };
    let mut value = String::new();
    loop {
        let (piece, after) = literal(rest);
        value.push_str(&piece);
        match after.strip_prefix(", ") {
            Some(more) => rest = more,
            None => return (value, after.strip_prefix(')').expect("CONCAT closed")),
        }
    }
}

/// The SQL of a SQLX body with Dataform's own placeholders (the ones mesh-ingest writes)
/// taken out: what is left must hold no `${`, and backticks only inside quoted strings and
/// comments, where Dataform escapes them for its JavaScript template.
fn assert_no_javascript(body: &str, source: &str) {
    let sql = body
        .replace(&format!("${{ref(\"{source}\")}}"), "T")
        .replace("${ref(\"order_v1_state\")}", "T")
        .replace("${self()}", "T")
        .replace("${when(incremental(), `", "")
        .replace("`)}", "");
    assert!(
        !sql.contains("${"),
        "a `${{` Dataform would evaluate:\n{sql}"
    );
    let mut rest = sql.as_str();
    while let Some(i) = rest.find(['\'', '`', '-']) {
        let after = &rest[i..];
        rest = if after.starts_with('`') {
            panic!("a backtick outside a quoted string:\n{after}")
        } else if after.starts_with("--") {
            after.split_once('\n').map_or("", |(_, r)| r)
        } else if after.starts_with('\'') {
            read_string_expr(after).1
        } else {
            &after[1..]
        };
    }
}

/// The object file with `text` as its descriptions and, when `deletes`, as its one deletion
/// event type.
fn hostile(text: &str, deletes: bool) -> Result<ObjectSettings, crate::configuration::ConfigError> {
    let json = serde_json::to_string(text).unwrap();
    let mut yaml = ORDER
        .replace(
            "deleted_when: [OrderDeleted]",
            &format!("deleted_when: [OrderDeleted]\n  description: {json}"),
        )
        .replace(
            "description: \"The order's id\"",
            &format!("description: {json}"),
        );
    if deletes {
        yaml = yaml
            .replace(
                "[OrderCreated, OrderDeleted]",
                &format!("[OrderCreated, {json}]"),
            )
            .replace(
                "deleted_when: [OrderDeleted]",
                &format!("deleted_when: [{json}]"),
            );
    }
    ObjectSettings::parse(&yaml, Path::new("objects/order.yaml"), "p")
}

/// Every SQLX file: its config block is one Dataform's lexer reads (a quoted string there
/// admits no escape but \" and \\), its body holds nothing Dataform would evaluate.
fn assert_dataform_reads(object: &ObjectSettings) -> Vec<String> {
    let mut bodies = Vec::new();
    for f in dataform::sqlx_files(object).unwrap() {
        let (config, body) = f.contents.split_once("\n}\n").unwrap_or((&f.contents, ""));
        let mut chars = config.chars();
        while let Some(c) = chars.next() {
            if c == '\\' {
                let escaped = chars.next();
                assert!(matches!(escaped, Some('"' | '\\')), "{config}");
            }
        }
        assert_no_javascript(body, "order_events");
        bodies.push(body.to_string());
    }
    bodies
}

proptest::proptest! {
    /// Awkward text as an event type that deletes: config refuses it with an error naming
    /// `event_types` or `semantic.deleted_when` (blank, or a control character), or the SQL and the SQLX hold
    /// it as a string that reads back exactly, with nothing Dataform would evaluate; as a
    /// description, it leaves the config block one that Dataform's lexer reads.
    #[test]
    fn config_strings_reach_sql_and_sqlx_escaped_or_are_refused(
        text in proptest::string::string_regex(
            "([a-zA-Z ]|'|\"|\\\\|`|\\$|\\{|\\}|\\$\\{|\\n|\\r|\\t|é|😀|\\PC){0,12}"
        ).unwrap()
    ) {
        assert_dataform_reads(&hostile(&text, false).expect("any description is taken"));
        let object = match hostile(&text, true) {
            Err(e) => {
                let message = e.to_string();
                proptest::prop_assert!(
                    message.contains("objects/order.yaml")
                        && (message.contains("semantic.deleted_when") || message.contains("event_types")),
                    "{}", message
                );
                proptest::prop_assert!(
                    text.trim().is_empty() || text.chars().any(char::is_control),
                    "refused without a reason: {:?}: {}", text, message
                );
                return Ok(());
            }
            Ok(o) => o,
        };
        let plain = generate(&object, "`p.ing.order_events`", "`p.sem.order_v1_state`").unwrap();
        let mut texts = vec![plain.history, plain.rejected];
        texts.extend(assert_dataform_reads(&object));
        for sql in texts.iter().filter(|s| s.contains(" AS deleted")) {
            let at = sql.find("event_type IN (").expect("the deletion test") + "event_type IN (".len();
            let (value, rest) = read_string_expr(&sql[at..]);
            proptest::prop_assert_eq!(&value, &text);
            proptest::prop_assert!(rest.starts_with(") AS deleted"), "{}", rest);
        }
    }
}

/// A classified field: its classification in every column description, and its policy tag on
/// the state table's column only (a view's columns cannot carry one).
#[test]
fn a_classification_describes_the_column_and_tags_only_the_state_table() {
    let yaml = ORDER.replace(
        "- {name: total, type: NUMERIC",
        "- {name: total, type: NUMERIC, classification: confidential",
    );
    assert_ne!(yaml, ORDER, "the base object has a total field");
    let mut o = ObjectSettings::parse(&yaml, Path::new("objects/order.yaml"), "p").unwrap();
    let tag = "projects/p/locations/eu/taxonomies/1/policyTags/2";
    o.resolve_policy_tags(&[crate::configuration::PolicyTagSetting {
        classification: "confidential".into(),
        tag: tag.into(),
    }]);
    let semantic = o.semantic.as_ref().unwrap();
    assert!(
        super::column_descriptions(semantic, false)["total"]
            .ends_with("Classification: confidential."),
    );
    assert_eq!(super::column_policy_tags(semantic)["total"], tag);
    let files = dataform::sqlx_files(&o).unwrap();
    let config = |name: &str| {
        let f = files.iter().find(|f| f.path == name).unwrap();
        split_sqlx_config(&f.contents)
    };
    let state = config("order_v1_state.sqlx");
    assert_eq!(
        state["columns"]["total"]["bigqueryPolicyTags"],
        serde_json::json!([tag])
    );
    let view = config("order_v1.sqlx");
    assert!(view["columns"]["total"].is_string(), "{view}");
    assert!(
        view["columns"]["total"]
            .as_str()
            .unwrap()
            .ends_with("Classification: confidential.")
    );
}

/// The config block of a generated SQLX file, as JSON (mesh-ingest writes it as JSON).
fn split_sqlx_config(contents: &str) -> serde_json::Value {
    let end = contents.find("\n}\n").expect("a config block");
    serde_json::from_str(&contents["config ".len()..end + 2]).expect("JSON")
}
