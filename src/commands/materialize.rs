//! `mesh-ingest materialize [--object NAME]`: brings each object's state table up to date with
//! one MERGE that reads only the slice of the ingest log ingested since the watermark (less
//! the safety lag, for appends that were in flight), then moves the watermark. Idempotent: a
//! run that dies between the MERGE and the watermark leaves a state that the next run, reading
//! the same slice again, merges to the same result. Prints one JSON line per object: rows
//! merged, slice size, and freshness (now − newest `ingested_at` applied). Every maintained
//! major of a data product has its own state table and watermark, each brought up to date
//! alike. Refuses (exit 1) a major whose state table was built from another definition than
//! the configuration's, naming what differs: `provision` rebuilds it.

use super::provision::StateTables;
use super::sql::Sql;
use crate::configuration::{ObjectSettings, Settings};
use crate::pipeline::clock::now_us;
use crate::semantic::{merge_statement, watermark};
use anyhow::Context;
use serde_json::json;

/// What one object's run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub object: String,
    pub slice_events: i64,
    pub rows_merged: i64,
    /// The newest `ingested_at` applied (µs); the watermark now.
    pub watermark_us: Option<i64>,
}

pub async fn run(settings: &Settings, object: Option<&str>) -> anyhow::Result<()> {
    let objects: Vec<ObjectSettings> = settings
        .objects
        .iter()
        .filter(|o| o.semantic.is_some() && object.is_none_or(|n| n == o.name))
        .flat_map(ObjectSettings::per_major)
        .collect();
    if objects.is_empty() {
        anyhow::bail!(match object {
            Some(n) => format!("no object named `{n}` has a `semantic:` section"),
            None => "no object has a `semantic:` section".to_string(),
        });
    }
    let sql = Sql::connect(&settings.gcp).await?;
    let states = StateTables::connect(&settings.gcp).await?;
    let mut refused: Vec<String> = Vec::new();
    for o in &objects {
        let major = o.semantic.as_ref().map_or(0, |s| s.major);
        // A state table built from another definition holds rows the MERGE would not
        // recompute (or cannot write, for a widened type): refuse rather than mix the two.
        // The other objects are still brought up to date.
        if let Err(e) = states.verify(o).await {
            eprintln!("error: {e:#}");
            refused.push(format!("{} v{major}", o.name));
            continue;
        }
        let applied = materialize(&sql, o)
            .await
            .with_context(|| format!("materializing {}", o.name))?;
        let freshness = applied
            .watermark_us
            .map(|w| (now_us() - w).max(0) as f64 / 1e6);
        println!(
            "{}",
            json!({"object": applied.object, "major": major, "slice_events": applied.slice_events,
                "rows_merged": applied.rows_merged, "watermark_us": applied.watermark_us,
                "freshness_secs": freshness})
        );
    }
    if !refused.is_empty() {
        anyhow::bail!("not materialized: {}", refused.join(", "));
    }
    Ok(())
}

/// One object: read the watermark, measure the slice, MERGE it, move the watermark.
pub async fn materialize(sql: &Sql, object: &ObjectSettings) -> anyhow::Result<Applied> {
    let semantic = object.semantic.as_ref().expect("filtered on semantic");
    let project = &semantic.project;
    let mark = sql
        .first_row(project, watermark::read(semantic), "reading the watermark")
        .await?
        .and_then(|row| row.first().copied().flatten());
    let mark_sql = watermark::as_sql(mark);
    let stats = watermark::slice_stats(object, &mark_sql).expect("semantic");
    let row = sql
        .first_row(project, stats, "measuring the new slice")
        .await?
        .unwrap_or_default();
    let slice_events = row.first().copied().flatten().unwrap_or(0);
    let newest = row.get(1).copied().flatten();
    if slice_events == 0 {
        return Ok(Applied {
            object: object.name.clone(),
            slice_events,
            rows_merged: 0,
            watermark_us: mark,
        });
    }
    let merge = merge_statement(object, &mark_sql).expect("semantic");
    let merged = sql
        .run(project, merge, "merging the slice into the state table")
        .await?;
    // A crash here leaves the watermark where it was: the next run merges the same slice.
    let mark = newest.or(mark).map(|n| n.max(mark.unwrap_or(0)));
    sql.run(
        project,
        watermark::write(semantic, mark),
        "moving the watermark",
    )
    .await?;
    Ok(Applied {
        object: object.name.clone(),
        slice_events,
        rows_merged: merged.num_dml_affected_rows.unwrap_or(0),
        watermark_us: mark,
    })
}
