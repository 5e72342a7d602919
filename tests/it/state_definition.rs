//! The state table follows its definition, on bqemulator. A few orders are ingested once;
//! then the object file is changed, one kind of change at a time (a field added, a path
//! changed, a type widened, `required` changed, `deleted_when` changed), and no new event
//! arrives. After each change: `materialize` exits 1 naming the change and merges nothing,
//! `provision` rebuilds the state table, and `materialize` then succeeds with rows that
//! follow the new definition — the state-backed view equals `<view>_history` and holds the
//! values the new definition computes for every order.

use crate::semantic_layer::{BASE_US, Event};
use crate::support::*;
use serde_json::json;
use std::time::Duration;

const YAML: &str = "
envelope:
  format: json
  object_id: payload.order_id
batch:
  max_rows: 100
  max_delay_ms: 100
semantic:
  dataset: DATASET
  view: orders
  deleted_when: [OrderDeleted]
  fields:
    - {name: status, type: STRING, required: true}
    - {name: total, type: INT64}
";

fn event(
    id: &str,
    kind: &'static str,
    order: &str,
    minute: i64,
    payload: serde_json::Value,
) -> Event {
    Event {
        event_id: id.into(),
        event_type: kind,
        order: order.into(),
        time_us: BASE_US + minute * 60_000_000,
        payload,
    }
}

/// o1: one event with a fractional total. o2: created with a total, then updated without
/// one. o3: created, then cancelled (an event without a status).
fn events() -> Vec<Event> {
    vec![
        event(
            "a1",
            "OrderCreated",
            "o1",
            0,
            json!({"order_id": "o1", "status": "new", "state": "open", "total": 10.5, "note": "hello"}),
        ),
        event(
            "b1",
            "OrderCreated",
            "o2",
            0,
            json!({"order_id": "o2", "status": "new", "state": "open", "total": 7, "note": "x"}),
        ),
        event(
            "b2",
            "OrderUpdated",
            "o2",
            1,
            json!({"order_id": "o2", "status": "paid", "state": "closed", "note": "y"}),
        ),
        event(
            "c1",
            "OrderCreated",
            "o3",
            0,
            json!({"order_id": "o3", "status": "new", "state": "open", "total": 3}),
        ),
        event("c2", "OrderCancelled", "o3", 1, json!({"order_id": "o3"})),
    ]
}

/// One change of the object file: what it is, the edit, a phrase `materialize` must name,
/// and the live rows the new definition computes (`object status total note`).
struct Change {
    what: &'static str,
    from: &'static str,
    to: &'static str,
    named: &'static str,
    rows: &'static [&'static str],
}

/// Applied in order, each on top of the previous ones.
const CHANGES: &[Change] = &[
    Change {
        what: "a field added",
        from: "    - {name: total, type: INT64}\n",
        to: "    - {name: total, type: INT64}\n    - {name: note, type: STRING}\n",
        named: "field note added (STRING at $.\"note\")",
        rows: &["o1 new - hello", "o2 paid - y", "o3 new 3 -"],
    },
    Change {
        what: "a path changed",
        from: "{name: status, type: STRING, required: true}",
        to: "{name: status, path: state, type: STRING, required: true}",
        named: "field status: STRING at $.\"status\", required → STRING at $.\"state\", required",
        rows: &["o1 open - hello", "o2 closed - y", "o3 open 3 -"],
    },
    Change {
        what: "a type widened",
        from: "{name: total, type: INT64}",
        to: "{name: total, type: NUMERIC}",
        named: "field total: INT64 at $.\"total\" → NUMERIC at $.\"total\"",
        rows: &["o1 open 10.5 hello", "o2 closed - y", "o3 open 3 -"],
    },
    Change {
        what: "required changed",
        from: "{name: total, type: NUMERIC}",
        to: "{name: total, type: NUMERIC, required: true}",
        named: "field total: NUMERIC at $.\"total\" → NUMERIC at $.\"total\", required",
        rows: &["o1 open 10.5 hello", "o2 open 7 x", "o3 open 3 -"],
    },
    Change {
        what: "deleted_when changed",
        from: "deleted_when: [OrderDeleted]",
        to: "deleted_when: [OrderDeleted, OrderCancelled]",
        named: "deleted when: 'OrderDeleted' → 'OrderCancelled', 'OrderDeleted'",
        rows: &["o1 open 10.5 hello", "o2 open 7 x"],
    },
];

/// The live rows of `view` as `object status total note` (`-` for NULL or no column; the
/// total as a number, however the column's type prints it).
async fn live_rows(emu: &Emulators, view: &str) -> Vec<String> {
    let text = |v: Option<&serde_json::Value>| {
        let t = v.and_then(|v| v.as_str()).unwrap_or("-");
        t.parse::<f64>().map_or(t.to_string(), |n| n.to_string())
    };
    query(emu, &format!("SELECT * FROM {view} ORDER BY object_id"))
        .await
        .iter()
        .map(|r| {
            ["object_id", "status", "total", "note"]
                .map(|c| text(r.get(c)))
                .join(" ")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_change_of_the_definition_is_refused_by_materialize_and_rebuilt_by_provision() {
    let object = TestObject::new("orders", "");
    let dataset = format!("sem_{}", object.dataset);
    let object = TestObject {
        yaml: YAML.replace("DATASET", &dataset),
        ..object
    };
    let config = TestConfig::new(vec![object]);
    config.provision();
    let emu = config.emulators.clone();
    let object = config.object("orders");
    let app = App::start(&config).await;
    let events = events();
    publish(
        &emu,
        &object.topic_path(),
        events.iter().map(Event::message).collect(),
    )
    .await;
    let landed = wait_for_count(
        &emu,
        &format!("SELECT COUNT(*) AS n FROM `{}`", object.ingest_table()),
        events.len() as u64,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(landed, events.len() as u64, "{}", app.log_text());
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));

    let view = format!("`{PROJECT}.{dataset}.orders_v1`");
    let history = format!("`{PROJECT}.{dataset}.orders_v1_history`");
    let state = format!("{PROJECT}.{dataset}.orders_v1_state");
    config.materialize();
    assert_eq!(
        live_rows(&emu, &view).await,
        ["o1 new - -", "o2 paid - -", "o3 new 3 -"]
    );

    let file = config.path().join("objects").join("orders.yaml");
    let run = |args: &[&str]| config.run(args);
    for change in CHANGES {
        let what = change.what;
        let yaml = std::fs::read_to_string(&file).unwrap();
        assert!(
            yaml.contains(change.from),
            "{what}: `{}` in\n{yaml}",
            change.from
        );
        std::fs::write(&file, yaml.replacen(change.from, change.to, 1)).unwrap();

        let (code, text) = run(&["materialize"]);
        assert_eq!(code, Some(1), "{what}: materialize must refuse\n{text}");
        assert!(
            text.contains(&format!(
                "the state table {state} was built from another definition"
            )) && text.contains("run `mesh-ingest provision`")
                && text.contains(change.named),
            "{what}: the refusal names the table and the change\n{text}"
        );

        let (code, text) = run(&["provision"]);
        assert_eq!(code, Some(0), "{what}: {text}");
        assert!(
            text.contains(&format!(
                "table {state} (rebuilt from the ingest log: definition "
            )) && text.contains(change.named),
            "{what}: provision rebuilds and says why\n{text}"
        );

        let (code, text) = run(&["materialize"]);
        assert_eq!(code, Some(0), "{what}: {text}");
        let live = live_rows(&emu, &view).await;
        assert_eq!(
            live, change.rows,
            "{what}: the rows follow the new definition"
        );
        assert_eq!(
            live,
            live_rows(&emu, &history).await,
            "{what}: the view equals its history"
        );
        // Nothing changed since: provision keeps the table.
        let (code, text) = run(&["provision"]);
        assert_eq!(code, Some(0), "{what}: {text}");
        assert!(
            text.contains(&format!("exists   table {state}\n")),
            "{what}: {text}"
        );
    }
}
