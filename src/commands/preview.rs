//! `mesh-ingest contract preview OLD NEW [--since 7d] [--max-bytes N]`: what the object files
//! of NEW would do to the data of this deployment, before they ship. Read-only. Plans every
//! query, prints what each would scan (dry runs) and refuses above `--max-bytes`, then runs
//! them and hands the rows to `preview` (the findings and the report). Exit 1 when the new
//! files reject accepted events that `contract diff` did not class breaking.

use super::dlq::dead_letters;
use super::sql::{Answer, Sql, cell};
use crate::configuration::{ObjectSettings, Settings};
use crate::contract::{Class, diff};
use crate::pipeline::clock::now_us;
use crate::preview::redecode::{self, StoredEvent};
use crate::preview::{self, ObjectPreview, ProductDiff, Scan};
use crate::semantic::compare::{Comparison, compare};
use crate::semantic::fingerprint::canonical;
use crate::source::decoder_for;
use std::path::PathBuf;

/// What to preview, from the command line.
pub struct PreviewOptions {
    pub old: PathBuf,
    pub new: PathBuf,
    pub since_secs: u64,
    pub max_bytes: u64,
    pub json: bool,
}

/// Rows per page of the ingest log and the dead letters.
const PAGE_ROWS: u32 = 1000;

/// One query of the plan, and what its rows feed.
enum Query {
    Accepted,
    DeadLetters,
    Product {
        major: u32,
        against: u32,
        comparison: Comparison,
    },
}

/// One object's planned queries: (query, project, SQL, what it reads).
struct Plan {
    old: ObjectSettings,
    new: ObjectSettings,
    preview: ObjectPreview,
    queries: Vec<(Query, String, String, String)>,
}

/// Runs the preview; `Ok(true)` when rejects appear that the diff did not announce.
pub async fn run(settings: &Settings, options: &PreviewOptions) -> anyhow::Result<bool> {
    let project = &settings.gcp.project;
    let old = super::contract::objects_in(&options.old, project)?;
    let new = super::contract::objects_in(&options.new, project)?;
    let since_us = now_us() - i64::try_from(options.since_secs).unwrap_or(i64::MAX / 2) * 1_000_000;
    let since = time::OffsetDateTime::from_unix_timestamp(since_us / 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let mut plans: Vec<Plan> = new
        .iter()
        .filter_map(|n| Some(plan(old.iter().find(|o| o.name == n.name)?, n, since_us)))
        .filter(|p| p.preview.breaking_in_diff + p.preview.compatible_in_diff > 0)
        .collect();
    let sql = Sql::connect(&settings.gcp).await?;
    for p in &mut plans {
        for (_, project, text, what) in &p.queries {
            let bytes = sql.dry_run(project, text.clone(), what).await?;
            eprintln!(
                "contract preview {}: {what} would scan {}",
                p.new.name,
                preview::bytes(bytes)
            );
            p.preview.scans.push(Scan {
                what: what.clone(),
                bytes,
            });
        }
    }
    let scans: Vec<Scan> = plans.iter().flat_map(|p| p.preview.scans.clone()).collect();
    if let Some(why) = preview::over_limit(&scans, options.max_bytes) {
        anyhow::bail!("{why}");
    }
    for p in &mut plans {
        execute(settings, &sql, p).await?;
    }
    let previews: Vec<ObjectPreview> = plans.into_iter().map(|p| p.preview).collect();
    if options.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&preview::to_json(&previews, &since))?
        );
    } else if previews.is_empty() {
        println!("no changes to preview");
    } else {
        print!("{}", preview::to_text(&previews, &since));
    }
    Ok(previews.iter().any(ObjectPreview::missed_by_diff))
}

/// The queries of one object changed between `old` and `new`: its recent accepted events and
/// dead letters, and each major whose definition changes.
fn plan(old: &ObjectSettings, new: &ObjectSettings, since_us: i64) -> Plan {
    let changes = diff::diff(std::slice::from_ref(old), std::slice::from_ref(new));
    let breaking = changes
        .iter()
        .filter(|c| c.class == Class::Breaking)
        .count();
    let project = old.ingest_table.project.clone();
    let mut queries = vec![
        (
            Query::Accepted,
            project.clone(),
            redecode::ingest_sql(old, since_us),
            format!("accepted events of {}", old.ingest_table),
        ),
        (
            Query::DeadLetters,
            project.clone(),
            redecode::dead_letters_sql(old, since_us),
            format!("dead letters of {}", old.dead_letter_table),
        ),
    ];
    let old_majors = old.per_major();
    for n in new.per_major() {
        let major = n.semantic.as_ref().map_or(0, |s| s.major);
        let Some(o) = old_majors
            .iter()
            .find(|o| o.semantic.as_ref().is_some_and(|s| s.major == major))
            .or(old_majors.first())
        else {
            continue;
        };
        if canonical(o) == canonical(&n) {
            continue;
        }
        let against = o.semantic.as_ref().map_or(0, |s| s.major);
        if let Some(comparison) = compare(o, &n, &old.ingest_table.sql_name()) {
            let text = comparison.sql.clone();
            queries.push((
                Query::Product {
                    major,
                    against,
                    comparison,
                },
                project.clone(),
                text,
                format!(
                    "data product v{major} against v{against}, over {}",
                    old.ingest_table
                ),
            ));
        }
    }
    Plan {
        old: old.clone(),
        new: new.clone(),
        preview: ObjectPreview {
            object: new.name.clone(),
            breaking_in_diff: breaking,
            compatible_in_diff: changes.len() - breaking,
            ..ObjectPreview::default()
        },
        queries,
    }
}

/// Runs one object's queries and tallies their rows.
async fn execute(settings: &Settings, sql: &Sql, p: &mut Plan) -> anyhow::Result<()> {
    // Dead letters of a schema'd topic are read with the revisions they name, as `dlq replay`.
    let (decoder, pubsub) = super::dlq::decoding(settings, &p.new).await?;
    // Accepted events are re-built as JSON, records of a schema'd topic too: the new
    // configuration reads them as JSON (its envelope, event types, limits, JSON Schema).
    let rebuilt = decoder_for(&ObjectSettings {
        topic_schema: None,
        ..p.new.clone()
    })
    .map_err(|e| anyhow::anyhow!("{}: {e}", p.new.name))?;
    for (query, project, text, what) in &p.queries {
        let mut page = sql
            .run_paged(project, text.clone(), what, Some(PAGE_ROWS))
            .await?;
        let mut last_dead_letter: Option<String> = None;
        loop {
            match query {
                Query::Accepted => {
                    for event in stored_events(&page) {
                        let a = &mut p.preview.accepted;
                        a.examined += 1;
                        if let Err(rejected) =
                            rebuilt.decode(redecode::message(&p.old, &event), now_us())
                        {
                            a.changed(rejected.reason_code.as_str(), &event.message_id);
                        }
                    }
                }
                Query::DeadLetters => {
                    for letter in dead_letters(&page)? {
                        let id = letter.message.message_id.clone();
                        if last_dead_letter.as_ref() == Some(&id) {
                            continue; // dead-lettered more than once: counted once
                        }
                        last_dead_letter = Some(id.clone());
                        let d = &mut p.preview.dead_letters;
                        d.examined += 1;
                        if letter.truncated {
                            d.unchanged("body_not_kept");
                            continue;
                        }
                        super::dlq::learn_revision(
                            pubsub.as_ref(),
                            &decoder,
                            &p.new,
                            &letter.message,
                        )
                        .await?;
                        match decoder.decode(letter.message, now_us()) {
                            Ok(_) => d.changed(&letter.reason_code, &id),
                            Err(rejected) => d.unchanged(rejected.reason_code.as_str()),
                        }
                    }
                }
                Query::Product {
                    major,
                    against,
                    comparison,
                } => p
                    .preview
                    .products
                    .push(product(&page, *major, *against, comparison)),
            }
            let Some(next) = page.next.take() else { break };
            page = sql.next(next, PAGE_ROWS).await?;
        }
    }
    Ok(())
}

fn stored_events(page: &Answer) -> Vec<StoredEvent> {
    page.rows
        .iter()
        .filter_map(|row| {
            let text = |i| cell(row, i).map(str::to_string);
            Some(StoredEvent {
                message_id: text(0)?,
                event_id: text(1).unwrap_or_default(),
                event_type: text(2),
                event_time: text(3),
                object_id: text(4).unwrap_or_default(),
                event_source: text(5),
                payload: text(6).unwrap_or_else(|| "null".into()),
                attributes: text(7),
                publish_time_us: cell(row, 8).and_then(|v| v.parse().ok()),
            })
        })
        .collect()
}

fn product(page: &Answer, major: u32, against: u32, c: &Comparison) -> ProductDiff {
    let row = page.rows.first();
    let count = |i: usize| {
        row.and_then(|r| cell(r, i))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    ProductDiff {
        major,
        against,
        objects_old: count(0),
        objects_new: count(1),
        only_old: count(2),
        only_new: count(3),
        changed: c
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| (col.clone(), count(4 + i)))
            .collect(),
    }
}
