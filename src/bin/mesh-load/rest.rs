//! The BigQuery REST peer of the harness: `tables.get` only, describing each table as
//! mesh-ingest provisions it — or, inside the `--drift` window, the ingest table without
//! `ordering_key`, as if someone had dropped that column.

use crate::faults::Schedule;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use mesh_ingest::tables::{DEAD_LETTER_COLUMNS, INGEST_COLUMNS};
use serde_json::{Value, json};
use std::sync::Arc;

/// The column a drifted ingest table lacks.
pub const DRIFTED_COLUMN: &str = "ordering_key";

async fn get_table(
    State(schedule): State<Arc<Schedule>>,
    Path((project, dataset, table)): Path<(String, String, String)>,
) -> impl axum::response::IntoResponse {
    let dead_letter = table.contains("dead_letter");
    let columns = if dead_letter {
        &DEAD_LETTER_COLUMNS[..]
    } else {
        &INGEST_COLUMNS[..]
    };
    let drifted = !dead_letter && schedule.drifted();
    let fields: Vec<Value> = columns
        .iter()
        .filter(|c| !(drifted && c.name == DRIFTED_COLUMN))
        .map(|c| {
            json!({"name": c.name, "type": c.kind.bigquery_name(),
                "mode": if c.required { "REQUIRED" } else { "NULLABLE" }})
        })
        .collect();
    let body = json!({
        "tableReference": {"projectId": project, "datasetId": dataset, "tableId": table},
        "schema": {"fields": fields},
    });
    (
        [(http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

/// Serves `tables.get` on `listener` until the process ends.
pub async fn serve(listener: tokio::net::TcpListener, schedule: Arc<Schedule>) {
    let app = Router::new()
        .route(
            "/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}",
            get(get_table),
        )
        .with_state(schedule);
    let _ = axum::serve(listener, app).await;
}
