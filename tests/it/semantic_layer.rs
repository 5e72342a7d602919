//! The semantic layer on bqemulator: a scripted history of 50 orders (creates, out-of-order
//! updates, exact duplicates, event-time ties, deletes, re-creates, events with a missing or
//! ill-typed required field) goes through the running service; the generated view returns
//! exactly the latest valid state per order (every column compared with a table computed here
//! from the history), `_rejected` lists the refused events with their reason, the Dataform
//! SQLX returns the same rows, and a field added to the YAML appears after `provision` while
//! the ingest table's schema stays as it was.

use crate::support::*;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const ORDERS: usize = 50;
pub(crate) const BASE_US: i64 = 1_795_000_000_000_000;

pub(crate) const SEMANTIC: &str = r#"
semantic:
  dataset: DATASET
  view: orders_state
  deleted_when: [OrderDeleted]
  fields:
    - {name: order_id, type: STRING, required: true, description: The order number.}
    - {name: status, type: STRING, required: true}
    - {name: total, type: NUMERIC, required: true}
    - name: customer
      type: STRUCT
      fields:
        - {name: id, type: STRING}
        - {name: tier, path: loyalty.tier, type: STRING}
    - name: items
      type: STRUCT
      repeated: true
      fields:
        - {name: sku, type: STRING}
        - {name: qty, type: INT64}
    - {name: paid, type: BOOL}
    - {name: placed_at, type: TIMESTAMP}
    - {name: delivery_date, type: DATE}
    - {name: tags, type: STRING, repeated: true}
    - {name: weight, type: FLOAT64}
    - {name: extra, type: JSON}
"#;

pub(crate) struct Event {
    pub event_id: String,
    pub event_type: &'static str,
    pub order: String,
    pub time_us: i64,
    pub payload: Value,
}

impl Event {
    pub fn message(&self) -> Outgoing {
        Outgoing::body(
            json!({"event_id": self.event_id, "event_type": self.event_type,
                "event_time": rfc3339(self.time_us), "payload": self.payload})
            .to_string(),
        )
    }
}

pub(crate) fn payload(k: usize, step: usize) -> Value {
    json!({
        "order_id": format!("o-{k:03}"),
        "status": (["created", "paid", "packed", "shipped"][step % 4]),
        "total": format!("{}.{:02}", 10 + k, step * 7 % 100),
        "customer": {"id": format!("c-{}", k % 9), "loyalty": {"tier": (["gold", "silver"][k % 2])}},
        "items": (0..(step % 3 + 1)).map(|i| json!({"sku": format!("sku-{k}-{i}"), "qty": i + 1})).collect::<Vec<_>>(),
        "paid": step > 0,
        "placed_at": rfc3339(BASE_US + k as i64 * 1_000_000),
        "delivery_date": format!("2026-12-{:02}", 1 + (k + step) % 28),
        "tags": if k.is_multiple_of(4) { json!(["gift", "express"]) } else { json!([]) },
        "weight": 0.5 + step as f64,
        "extra": {"note": format!("step {step}"), "n": [k, step]},
    })
}

/// The scripted history: (first publish wave, second wave). The second wave is published
/// after the first, so its events have later publish times (ties on event time).
pub(crate) fn history() -> (Vec<Event>, Vec<Event>) {
    let mut first = Vec::new();
    let mut second = Vec::new();
    for k in 0..ORDERS {
        let order = format!("o-{k:03}");
        let t = |j: i64| BASE_US + k as i64 * 3_600_000_000 + j * 60_000_000;
        let mut events = vec![Event {
            event_id: format!("{order}-created"),
            event_type: "OrderCreated",
            order: order.clone(),
            time_us: t(0),
            payload: payload(k, 0),
        }];
        let updates = 1 + k % 4;
        for j in 1..=updates {
            events.push(Event {
                event_id: format!("{order}-upd-{j}"),
                event_type: "OrderUpdated",
                order: order.clone(),
                time_us: t(j as i64),
                payload: payload(k, j),
            });
        }
        let last = updates as i64;
        if k % 6 == 1 {
            // Latest event lacks a required field: the previous state stays.
            let mut p = payload(k, 9);
            p.as_object_mut().unwrap().remove("total");
            events.push(Event {
                event_id: format!("{order}-no-total"),
                event_type: "OrderUpdated",
                order: order.clone(),
                time_us: t(last + 1),
                payload: p,
            });
        }
        if k % 10 == 4 {
            let mut p = payload(k, 8);
            p["total"] = json!("twelve");
            events.push(Event {
                event_id: format!("{order}-bad-total"),
                event_type: "OrderUpdated",
                order: order.clone(),
                time_us: t(last + 2),
                payload: p,
            });
        }
        if k % 7 == 3 {
            events.push(Event {
                event_id: format!("{order}-deleted"),
                event_type: "OrderDeleted",
                order: order.clone(),
                time_us: t(last + 3),
                payload: json!({"order_id": order}),
            });
        }
        if k % 7 == 5 {
            // Deleted, then created again: present, with the new state.
            events.push(Event {
                event_id: format!("{order}-deleted"),
                event_type: "OrderDeleted",
                order: order.clone(),
                time_us: t(last + 3),
                payload: json!({"order_id": order}),
            });
            events.push(Event {
                event_id: format!("{order}-recreated"),
                event_type: "OrderCreated",
                order: order.clone(),
                time_us: t(last + 4),
                payload: payload(k, 5),
            });
        }
        // Out of order: even orders publish newest first.
        if k.is_multiple_of(2) {
            events.reverse();
        }
        // Exact duplicates: the same event (same event id and body) published twice.
        if k.is_multiple_of(3) {
            let e = &events[0];
            events.push(Event {
                event_id: e.event_id.clone(),
                event_type: e.event_type,
                order: e.order.clone(),
                time_us: e.time_us,
                payload: e.payload.clone(),
            });
        }
        first.extend(events);
        if k % 5 == 2 {
            // Same event time as the newest valid update, published later: it wins the tie.
            second.push(Event {
                event_id: format!("{order}-tie"),
                event_type: "OrderUpdated",
                order: order.clone(),
                time_us: t(last),
                payload: payload(k, 6),
            });
        }
    }
    (first, second)
}

/// Why the view must refuse `p` (None: valid), exactly as the generated SQL words it.
fn refusal(p: &Value) -> Option<String> {
    let mut reasons = Vec::new();
    for f in ["order_id", "status"] {
        match p.get(f) {
            None | Some(Value::Null) => reasons.push(format!("{f}: missing")),
            Some(Value::String(_)) | Some(Value::Number(_)) | Some(Value::Bool(_)) => {}
            Some(_) => reasons.push(format!("{f}: not a STRING")),
        }
    }
    match p.get("total") {
        None | Some(Value::Null) => reasons.push("total: missing".into()),
        Some(v) => {
            let text = v
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            if text.parse::<f64>().is_err() {
                reasons.push("total: not a NUMERIC".into());
            }
        }
    }
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// A view row as the test expects it, normalised like `normalise` below.
fn expected_row(e: &Event) -> Map<String, Value> {
    let p = &e.payload;
    let micros = |s: &str| {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        json!((t.unix_timestamp_nanos() / 1000) as i64)
    };
    let mut m = Map::new();
    m.insert("object_id".into(), json!(e.order));
    m.insert("order_id".into(), p["order_id"].clone());
    m.insert("status".into(), p["status"].clone());
    m.insert(
        "total".into(),
        json!(p["total"].as_str().unwrap().parse::<f64>().unwrap()),
    );
    m.insert(
        "customer".into(),
        json!({"id": p["customer"]["id"], "tier": p["customer"]["loyalty"]["tier"]}),
    );
    m.insert("items".into(), p["items"].clone());
    m.insert("paid".into(), p["paid"].clone());
    m.insert("placed_at".into(), micros(p["placed_at"].as_str().unwrap()));
    m.insert("delivery_date".into(), p["delivery_date"].clone());
    m.insert("tags".into(), p["tags"].clone());
    m.insert("weight".into(), p["weight"].clone());
    m.insert("extra".into(), p["extra"].clone());
    m.insert("updated_at".into(), json!(e.time_us));
    m.insert("event_id".into(), json!(e.event_id));
    m
}

/// Turns a REST `jobs.query` cell into plain JSON using its schema field: numbers as numbers,
/// TIMESTAMP as microseconds, RECORD as an object, REPEATED as an array, JSON parsed.
fn normalise(field: &Value, cell: &Value) -> Value {
    if field["mode"] == "REPEATED" {
        let mut scalar = field.clone();
        scalar["mode"] = json!("NULLABLE");
        return Value::Array(
            cell.as_array()
                .map(|a| a.iter().map(|x| normalise(&scalar, &x["v"])).collect())
                .unwrap_or_default(),
        );
    }
    if cell.is_null() {
        return Value::Null;
    }
    let text = || cell.as_str().unwrap_or_default();
    match field["type"].as_str().unwrap_or_default() {
        "RECORD" | "STRUCT" => {
            let subs = field["fields"].as_array().unwrap();
            let cells = cell["f"].as_array().unwrap();
            Value::Object(
                subs.iter()
                    .zip(cells)
                    .map(|(s, c)| {
                        (
                            s["name"].as_str().unwrap().to_string(),
                            normalise(s, &c["v"]),
                        )
                    })
                    .collect(),
            )
        }
        "INTEGER" | "INT64" => json!(text().parse::<i64>().unwrap()),
        "FLOAT" | "FLOAT64" | "NUMERIC" | "BIGNUMERIC" => json!(text().parse::<f64>().unwrap()),
        "BOOLEAN" | "BOOL" => json!(text() == "true"),
        "TIMESTAMP" => {
            let t = text();
            match t.parse::<i64>() {
                Ok(us) => json!(us),
                Err(_) => json!((t.parse::<f64>().unwrap() * 1e6).round() as i64),
            }
        }
        "JSON" => serde_json::from_str(text()).unwrap(),
        _ => cell.clone(),
    }
}

/// The same objects, then the same columns object by object (a failure names the object).
pub(crate) fn assert_rows_eq(
    got: &BTreeMap<String, Map<String, Value>>,
    want: &BTreeMap<String, Map<String, Value>>,
    what: &str,
) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (object, row) in want {
        assert_eq!(&got[object], row, "{what}: {object}, every column");
    }
}

/// Runs `sql` and returns its rows keyed by object_id, every cell normalised.
pub(crate) async fn keyed_rows(emu: &Emulators, sql: &str) -> BTreeMap<String, Map<String, Value>> {
    let body = query_raw(emu, sql).await;
    let fields = body["schema"]["fields"].as_array().unwrap().clone();
    let mut out = BTreeMap::new();
    for row in body["rows"].as_array().cloned().unwrap_or_default() {
        let mut m: Map<String, Value> = fields
            .iter()
            .zip(row["f"].as_array().unwrap())
            .map(|(f, c)| {
                (
                    f["name"].as_str().unwrap().to_string(),
                    normalise(f, &c["v"]),
                )
            })
            .collect();
        // JSON_QUERY results come back as text on bqemulator; compare them parsed.
        if let Some(Value::String(s)) = m.get("extra") {
            let parsed: Value = serde_json::from_str(s).unwrap();
            m.insert("extra".into(), parsed);
        }
        let key = m["object_id"].as_str().unwrap().to_string();
        assert!(out.insert(key.clone(), m).is_none(), "two rows for {key}");
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn semantic_view_holds_latest_valid_state_per_order() {
    let object = TestObject::new(
        "orders",
        "envelope:\n  format: json\n  object_id: payload.order_id\n\
         batch:\n  max_rows: 100\n  max_delay_ms: 100\n",
    );
    let semantic_dataset = format!("sem_{}", object.dataset);
    let yaml = SEMANTIC.replace("DATASET", &semantic_dataset);
    let object = TestObject {
        yaml: format!("{}{yaml}", object.yaml),
        ..object
    };
    let config = TestConfig::new(vec![object]);
    config.provision();
    let emu = config.emulators.clone();
    let object = config.object("orders");
    let view = format!("`{PROJECT}.{semantic_dataset}.orders_state_v1`");
    let rejected_view = format!("`{PROJECT}.{semantic_dataset}.orders_state_v1_rejected`");

    let app = App::start(&config).await;
    let (first, second) = history();
    let published = first.len() + second.len();
    publish(
        &emu,
        &object.topic_path(),
        first.iter().map(Event::message).collect(),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    publish(
        &emu,
        &object.topic_path(),
        second.iter().map(Event::message).collect(),
    )
    .await;
    let landed = wait_for_count(
        &emu,
        &format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table()),
        published as u64,
        Duration::from_secs(90),
    )
    .await;
    assert_eq!(landed, published as u64, "{}", app.log_text());

    // Publish times as Pub/Sub assigned them (the earliest copy of a duplicate counts).
    let publish_us: HashMap<String, i64> = query(
        &emu,
        &format!(
            "SELECT event_id, MIN(UNIX_MICROS(publish_time)) AS p FROM `{}` GROUP BY event_id",
            object.ingest_table()
        ),
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r["event_id"].as_str().unwrap().to_string(),
            r["p"].as_str().unwrap().parse().unwrap(),
        )
    })
    .collect();

    // The expected state, from the history alone.
    let mut by_order: BTreeMap<&str, HashMap<&str, &Event>> = BTreeMap::new();
    for e in first.iter().chain(&second) {
        by_order
            .entry(e.order.as_str())
            .or_default()
            .insert(&e.event_id, e);
    }
    let mut expected = BTreeMap::new();
    let mut expected_rejected = BTreeMap::new();
    for (order, events) in &by_order {
        let mut candidates: Vec<&&Event> = Vec::new();
        for e in events.values() {
            if e.event_type == "OrderDeleted" {
                candidates.push(e);
            } else if let Some(why) = refusal(&e.payload) {
                expected_rejected.insert(e.event_id.clone(), why);
            } else {
                candidates.push(e);
            }
        }
        let latest = candidates
            .into_iter()
            .max_by_key(|e| (e.time_us, publish_us[&e.event_id], e.event_id.clone()))
            .unwrap();
        if latest.event_type != "OrderDeleted" {
            expected.insert(order.to_string(), expected_row(latest));
        }
    }
    assert!(expected.len() < ORDERS, "some orders are deleted");
    assert!(!expected_rejected.is_empty());

    // The history view computes the state from the whole log; the state table, built by
    // provision and brought up to date by materialize, must hold the same.
    let history_view = format!("`{PROJECT}.{semantic_dataset}.orders_state_v1_history`");
    let got = keyed_rows(&emu, &format!("SELECT * FROM {history_view}")).await;
    assert_rows_eq(
        &got,
        &expected,
        "one row per live order, deleted ones absent",
    );
    let report = config.materialize();
    assert_eq!(report[0]["slice_events"], json!(published), "{report:?}");
    let from_state = keyed_rows(&emu, &format!("SELECT * FROM {view}")).await;
    assert_eq!(
        from_state, got,
        "the state table holds what the whole log says"
    );

    let rejected: BTreeMap<String, String> = query(
        &emu,
        &format!("SELECT event_id, reason FROM {rejected_view}"),
    )
    .await
    .into_iter()
    .map(|r| {
        (
            r["event_id"].as_str().unwrap().to_string(),
            r["reason"].as_str().unwrap().to_string(),
        )
    })
    .collect();
    assert_eq!(
        rejected, expected_rejected,
        "refused events and their reasons"
    );

    // Dataform: the SQLX body, with ${ref(...)} resolved, returns the same rows.
    let out = config.path().join("dataform");
    let status = config
        .command(&["semantic", "--format", "dataform", "--out"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    let sqlx = std::fs::read_to_string(out.join("orders_state_v1.sqlx")).unwrap();
    let (config_block, live_body) = split_sqlx(&sqlx);
    assert!(
        live_body.contains("${ref(\"orders_state_v1_state\")}"),
        "{live_body}"
    );
    let history_sqlx = std::fs::read_to_string(out.join("orders_state_v1_history.sqlx")).unwrap();
    let (_, body) = split_sqlx(&history_sqlx);
    assert_eq!(config_block["type"], "view");
    assert_eq!(config_block["schema"], semantic_dataset.as_str());
    assert_eq!(
        config_block["assertions"]["uniqueKey"],
        json!(["object_id"])
    );
    assert_eq!(
        config_block["columns"]["order_id"], "The order number.",
        "descriptions come from the YAML"
    );
    let source_name = object
        .ingest_table()
        .rsplit('.')
        .next()
        .unwrap()
        .to_string();
    let declaration =
        std::fs::read_to_string(out.join(format!("sources/{source_name}.sqlx"))).unwrap();
    let (decl, rest) = split_sqlx(&declaration);
    assert_eq!(decl["type"], "declaration");
    assert!(rest.trim().is_empty());
    let resolved = body.replace(
        &format!("${{ref(\"{source_name}\")}}"),
        &format!("`{}`", object.ingest_table()),
    );
    assert!(!resolved.contains("${"), "every ref resolved");
    let from_dataform = keyed_rows(&emu, &resolved).await;
    assert_eq!(
        from_dataform, got,
        "Dataform's history view returns the view's rows"
    );

    // Schema evolution: a new field shows up after provision; the ingest table is untouched.
    let ingest_schema = |emu: Emulators, table: String| async move {
        let t: Value = reqwest::get(emu.table_url(&table))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t["schema"].clone()
    };
    let before = ingest_schema(emu.clone(), object.ingest_table()).await;
    let file = config.path().join("objects/orders.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{text}    - {{name: coupon, path: promo.code, type: STRING}}\n"),
    )
    .unwrap();
    config.provision();
    assert_eq!(
        ingest_schema(emu.clone(), object.ingest_table()).await,
        before
    );
    let evolved = keyed_rows(&emu, &format!("SELECT * FROM {view}")).await;
    assert_eq!(evolved.len(), expected.len());
    for row in evolved.values() {
        assert_eq!(row.get("coupon"), Some(&Value::Null), "old events: NULL");
    }
    let mut p = payload(1, 3);
    p["order_id"] = json!("o-new");
    p["promo"] = json!({"code": "WINTER"});
    let e = Event {
        event_id: "o-new-created".into(),
        event_type: "OrderCreated",
        order: "o-new".into(),
        time_us: BASE_US,
        payload: p,
    };
    publish(&emu, &object.topic_path(), vec![e.message()]).await;
    let ingested = wait_for_count(
        &emu,
        &format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table()),
        published as u64 + 1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(ingested, published as u64 + 1);
    config.materialize();
    let n = count(
        &emu,
        &format!("SELECT COUNT(*) AS n FROM {view} WHERE coupon = 'WINTER'"),
    )
    .await;
    assert_eq!(n, 1, "a new event fills the new column");
    eprintln!(
        "semantic layer: {published} events published for {ORDERS} orders, {} live in the view, {} refused",
        expected.len(),
        expected_rejected.len()
    );
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}

/// Splits a SQLX file into its config block (parsed) and the SQL after it.
pub(crate) fn split_sqlx(text: &str) -> (Value, String) {
    let rest = text
        .strip_prefix("config ")
        .expect("a SQLX file starts with its config block");
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for (i, c) in rest.char_indices() {
        match (in_string, c) {
            (true, '\\') if !escaped => {
                escaped = true;
                continue;
            }
            (true, '"') if !escaped => in_string = false,
            (false, '"') => in_string = true,
            (false, '{') => depth += 1,
            (false, '}') => {
                depth -= 1;
                if depth == 0 {
                    let block: Value = serde_json::from_str(&rest[..=i]).expect("config block");
                    return (block, rest[i + 1..].to_string());
                }
            }
            _ => {}
        }
        escaped = false;
    }
    panic!("unterminated config block");
}
