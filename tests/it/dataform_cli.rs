//! The generated SQLX as the real Dataform CLI compiles it (npm `@dataform/cli`, installed by
//! scripts/install-emulators.sh; `MESH_DATAFORM` names its directory), run on bqemulator as
//! Dataform runs an incremental table: the full query builds the state table while the ingest
//! log is empty, three events arrive, and the compiled incremental query, in the MERGE Dataform
//! makes of a table with a unique key, brings all three in. Two of them have hostile event
//! types listed in `deleted_when` (`Evil${1+1}`, a backtick): they reach the compiled SQL as
//! the same text, so they delete. The product has two majors: both compile, each one's
//! incremental table then equals its view of the whole log, and the older one's views and
//! table carry its deprecation in their description and labels. A `pii` field with a policy
//! tag configured keeps it on the compiled state table's column (`bigqueryPolicyTags`).

use crate::semantic_layer::keyed_rows;
use crate::support::*;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The directory holding `node_modules/.bin/dataform` and `node_modules/@dataform/core`:
/// `MESH_DATAFORM`, else where install-emulators.sh puts them.
fn dataform_dir() -> PathBuf {
    let dir = std::env::var_os("MESH_DATAFORM").map_or_else(
        || {
            Path::new(&std::env::var("HOME").unwrap_or_default())
                .join(".cache/mesh-ingest/dataform")
        },
        PathBuf::from,
    );
    assert!(
        dir.join("node_modules/.bin/dataform").is_file()
            && dir
                .join("node_modules/@dataform/core/package.json")
                .is_file(),
        "the Dataform CLI is not in {}: run scripts/install-emulators.sh (npm @dataform/cli and \
         @dataform/core) or set MESH_DATAFORM",
        dir.display()
    );
    dir
}

/// A Dataform project around the SQLX in `definitions/`, compiled offline: the core the CLI
/// compiles with is copied into the project's node_modules (the CLI would otherwise fetch the
/// `dataformCoreVersion` of workflow_settings.yaml from the registry; a symlink out of the
/// project is refused by its sandbox). Returns the compiled graph.
fn compile(project: &Path, dataset: &str) -> Value {
    let dir = dataform_dir();
    std::fs::write(
        project.join("workflow_settings.yaml"),
        format!(
            "defaultProject: {PROJECT}\ndefaultLocation: US\ndefaultDataset: {dataset}\n\
             defaultAssertionDataset: {dataset}_assertions\n"
        ),
    )
    .unwrap();
    let core = dir.join("node_modules/@dataform/core");
    let version: Value =
        serde_json::from_str(&std::fs::read_to_string(core.join("package.json")).unwrap()).unwrap();
    std::fs::write(
        project.join("package.json"),
        json!({"dependencies": {"@dataform/core": version["version"]}}).to_string(),
    )
    .unwrap();
    let target = project.join("node_modules/@dataform/core");
    std::fs::create_dir_all(&target).unwrap();
    for entry in std::fs::read_dir(&core).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), target.join(entry.file_name())).unwrap();
    }
    let out = Command::new(dir.join("node_modules/.bin/dataform"))
        .args(["compile", "--json"])
        .arg(project)
        .output()
        .expect("run dataform");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "dataform compile failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let graph: Value = serde_json::from_str(&stdout).expect("dataform compile --json");
    assert!(
        graph.get("graphErrors").is_none_or(|e| e == &json!({})),
        "{}",
        graph["graphErrors"]
    );
    graph
}

fn compiled_table<'a>(graph: &'a Value, name: &str) -> &'a Value {
    graph["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["target"]["name"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {graph}"))
}

fn event(id: &str, event_type: &str, order: &str) -> Outgoing {
    Outgoing::body(
        json!({"event_id": id, "event_type": event_type, "event_time": rfc3339(1_795_000_000_000_000),
            "payload": {"order_id": order, "status": "placed"}})
        .to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dataform_incremental_reads_every_event_into_a_table_built_empty() {
    let object = TestObject::new(
        "orders",
        "envelope:\n  format: json\n  object_id: payload.order_id\n\
         batch:\n  max_rows: 10\n  max_delay_ms: 100\n",
    );
    let dataset = format!("sem_{}", object.dataset);
    let yaml = format!(
        "version: 2.0.0\nsemantic:\n  dataset: {dataset}\n  view: orders\n  \
         deleted_when: [OrderDeleted, \"Evil${{1+1}}\", \"Back`tick\"]\n  fields:\n    \
         - {{name: order_id, type: STRING, required: true, classification: pii}}\n    - {{name: status, type: JSON}}\n  \
         previous:\n    - major: 1\n      sunset: 2999-12-31\n      fields:\n        \
         - {{name: order_id, type: STRING, required: true}}\n        - {{name: status, type: STRING}}\n"
    );
    let object = TestObject {
        yaml: format!("{}{yaml}", object.yaml),
        ..object
    };
    let config = TestConfig::new(vec![object]);
    // A policy tag for `pii`: the state table's classified column carries it.
    let tag = "projects/mesh-local/locations/us/taxonomies/1/policyTags/2";
    let overlay = config.path().join("test.yaml");
    let text = std::fs::read_to_string(&overlay).unwrap();
    std::fs::write(
        &overlay,
        format!("{text}gcp:\n  policy_tags:\n    - {{classification: pii, tag: \"{tag}\"}}\n"),
    )
    .unwrap();
    config.provision();
    let emu = config.emulators.clone();
    let project = config.path().join("dataform");
    let status = config
        .command(&["semantic", "--format", "dataform", "--out"])
        .arg(project.join("definitions"))
        .status()
        .unwrap();
    assert!(status.success());
    let graph = compile(&project, &dataset);
    // Both majors compiled; the older one says it is deprecated, where consumers look.
    for (name, deprecated) in [
        ("orders_v2", false),
        ("orders_v2_state", false),
        ("orders_v1", true),
        ("orders_v1_history", true),
        ("orders_v1_state", true),
    ] {
        let table = compiled_table(&graph, name);
        let labels = &table["bigquery"]["labels"];
        assert_eq!(
            labels["deprecated"],
            json!(deprecated.to_string()),
            "{name}: {table}"
        );
        let description = table["actionDescriptor"]["description"]
            .as_str()
            .unwrap_or("");
        assert_eq!(
            description.starts_with("DEPRECATED"),
            deprecated,
            "{name}: {table}"
        );
        if deprecated {
            assert_eq!(
                (&labels["sunset"], &labels["successor"]),
                (&json!("2999-12-31"), &json!("orders_v2")),
                "{name}"
            );
        }
    }
    // Compiled by the real CLI, the classified column keeps its policy tag on the state table,
    // and its classification in every description.
    let column = |table: &str, name: &str| {
        compiled_table(&graph, table)["actionDescriptor"]["columns"]
            .as_array()
            .unwrap_or(&Vec::new())
            .iter()
            .find(|c| c["path"] == json!([name]))
            .cloned()
            .unwrap_or_else(|| panic!("no column {name} in {table}"))
    };
    let state_column = column("orders_v2_state", "order_id");
    assert_eq!(
        state_column["bigqueryPolicyTags"],
        json!([tag]),
        "{state_column}"
    );
    let view_column = column("orders_v2", "order_id");
    assert!(
        view_column.get("bigqueryPolicyTags").is_none(),
        "{view_column}"
    );
    assert!(
        view_column["description"]
            .as_str()
            .is_some_and(|d| d.contains("Classification: pii.")),
        "{view_column}"
    );

    // Dataform's first run of each major: the table from the full query, while the log is
    // empty.
    let majors = ["orders_v1", "orders_v2"];
    let mut incremental = Vec::new();
    for major in majors {
        let state = compiled_table(&graph, &format!("{major}_state"));
        assert_eq!(state["enumType"], "INCREMENTAL", "{state}");
        assert_eq!(state["uniqueKey"], json!(["object_id"]));
        let query_text = state["incrementalQuery"].as_str().unwrap().to_string();
        assert!(
            !query_text.contains("Evil2"),
            "Dataform evaluated a config string:\n{query_text}"
        );
        let target = format!("`{PROJECT}.{dataset}.{major}_state`");
        query(
            &emu,
            &format!(
                "CREATE OR REPLACE TABLE {target} PARTITION BY TIMESTAMP_TRUNC(updated_at, MONTH) \
                 CLUSTER BY object_id AS {}",
                state["query"].as_str().unwrap()
            ),
        )
        .await;
        assert_eq!(
            count(&emu, &format!("SELECT COUNT(*) AS n FROM {target}")).await,
            0
        );
        incremental.push((major, target, query_text));
    }

    let app = App::start(&config).await;
    let orders = config.object("orders");
    let events = vec![
        event("e-1", "OrderCreated", "o-1"),
        event("e-2", "Evil${1+1}", "o-2"),
        event("e-3", "Back`tick", "o-3"),
    ];
    publish(&emu, &orders.topic_path(), events).await;
    let landed = wait_for_count(
        &emu,
        &format!("SELECT COUNT(*) AS n FROM `{}`", orders.ingest_table()),
        3,
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(landed, 3, "{}", app.log_text());

    // The next run of each major: the incremental query, merged on the unique key as Dataform
    // does. Each major's table then holds what its view computed from the whole log holds.
    for (major, target, incremental) in &incremental {
        let read = count(&emu, &format!("SELECT COUNT(*) AS n FROM ({incremental})")).await;
        assert_eq!(
            read, 3,
            "{major}: the incremental query reads every event:\n{incremental}"
        );
        dataform_merge(&emu, target, incremental).await;
        let rows = query(
            &emu,
            &format!("SELECT object_id, deleted FROM {target} ORDER BY object_id"),
        )
        .await;
        let got: Vec<(String, String)> = rows
            .iter()
            .map(|r| {
                (
                    r["object_id"].as_str().unwrap().to_string(),
                    r["deleted"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("o-1".to_string(), "false".to_string()),
                ("o-2".to_string(), "true".to_string()),
                ("o-3".to_string(), "true".to_string()),
            ],
            "{major}: 3 of 3 events in the table; the hostile event types delete as configured"
        );
        let live = keyed_rows(
            &emu,
            &format!(
                "SELECT * EXCEPT (event_source, publish_time, ingested_at, deleted) FROM {target} \
                 WHERE NOT deleted"
            ),
        )
        .await;
        let history = keyed_rows(
            &emu,
            &format!("SELECT * FROM `{PROJECT}.{dataset}.{major}_history`"),
        )
        .await;
        assert_eq!(live.len(), 1, "{major}: {live:?}");
        assert_eq!(
            live, history,
            "{major}: Dataform's table is the whole history's"
        );
    }
    let (code, _) = app.terminate().await;
    assert_eq!(code, Some(0));
}
