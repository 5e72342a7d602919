//! `mesh-ingest check`: the configuration loaded and validated (by the time this runs), printed
//! resolved as JSON on stdout, with a one-line verdict on stderr. `--remote` also reads every
//! table's schema from BigQuery and compares it with what mesh-ingest writes, without
//! changing anything: what differs is named by column.

use crate::configuration::memory::{APPEND_COPIES, budget, mib};
use crate::configuration::{Settings, TableRef};
use crate::gcp::configured;
use crate::sink::writer::{existing_columns, table_fields};
use crate::tables::{TableKind, compare};
use google_cloud_bigquery_v2::client::TableService;

/// How the report's first line starts; it ends with the total (`…: 179.9 MiB`). The load
/// harness reads the prediction from it.
pub const BUDGET_LINE: &str = "memory budget (worst case, ";

pub fn check(settings: &Settings, cpus: u64) -> anyhow::Result<()> {
    // What loading cannot tell: that every decoder builds (a topic schema using a type
    // mesh-ingest cannot render, say).
    for o in &settings.objects {
        if let Err(e) = crate::source::decoder_for(o) {
            let field = if o.topic_schema.is_some() && e.contains("topic schema") {
                "topic_schema.file"
            } else {
                "payload_schema_file"
            };
            anyhow::bail!("{}: field `{field}`: {e}", o.source_file);
        }
    }
    println!("{}", settings.to_resolved_json());
    eprintln!(
        "configuration OK: {} object(s), environment `{}`",
        settings.objects.len(),
        settings.environment
    );
    eprint!("{}", memory_report(settings, cpus));
    Ok(())
}

/// The worst-case memory of this configuration on `cpus` worker threads, and the container
/// request and limit to give it.
pub fn memory_report(settings: &Settings, cpus: u64) -> String {
    let app = &settings.application;
    let b = budget(&settings.objects, app, cpus);
    let mut out = format!(
        "{BUDGET_LINE}{cpus} worker thread(s)): {}\n  baseline: {}\n  \
         reused payload columns: {} ({cpus} × the largest batch)\n  \
         decompressors: {} ({cpus} × one zstd window and state, and a record scratch with a topic schema)\n  \
         JSON Schema checks and record trees: {} (all objects together)\n  \
         messages held: {} (all streams together; application.max_outstanding_bytes = {})\n  \
         decoded rows: {} (application.max_outstanding_messages = {})\n  \
         appends in flight: {} ({APPEND_COPIES} copies of application.max_append_bytes = {})\n",
        mib(b.total),
        mib(b.baseline),
        mib(b.column_buffers),
        mib(b.decompressors),
        mib(b.validation),
        mib(b.messages),
        mib(app.max_outstanding_bytes),
        mib(b.rows),
        app.max_outstanding_messages,
        mib(b.appends),
        mib(app.max_append_bytes),
    );
    for (o, s) in b.objects.iter().zip(&settings.objects) {
        out.push_str(&format!(
            "    object {}: messages {} + rows {} ({} stream(s), window {} / {} messages each)\n",
            o.object,
            mib(o.messages),
            mib(o.rows),
            s.streams,
            mib(s.flow_control.max_outstanding_bytes as u64),
            s.flow_control.max_outstanding_messages,
        ));
    }
    // The tokio runtime starts one worker thread per CPU the container is given: the same
    // configuration on a larger node holds one reused payload column more per thread.
    let others: Vec<String> = [1, 2, 4, 8, 16]
        .iter()
        .map(|&n| format!("{n}: {}", mib(budget(&settings.objects, app, n).total)))
        .collect();
    out.push_str(&format!(
        "  by worker threads (one per CPU; `--cpus N` assumes N): {}\n",
        others.join(", ")
    ));
    out.push_str(&format!(
        "recommended container memory: requests {}Mi, limits {}Mi\n",
        b.request / (1024 * 1024),
        b.limit / (1024 * 1024),
    ));
    out
}

/// Compares every table with what mesh-ingest writes; fails naming each problem.
pub async fn remote(settings: &Settings) -> anyhow::Result<()> {
    let gcp = &settings.gcp;
    let client = configured!(TableService::builder(), &gcp.bigquery_endpoint, gcp)
        .build()
        .await?;
    let mut problems = Vec::new();
    for o in &settings.objects {
        for (kind, table) in [
            (TableKind::Ingest, &o.ingest_table),
            (TableKind::DeadLetter, &o.dead_letter_table),
        ] {
            problems.extend(check_table(&client, kind, table).await?);
        }
    }
    if problems.is_empty() {
        eprintln!("tables OK: every table takes what mesh-ingest writes");
        return Ok(());
    }
    for p in &problems {
        eprintln!("{p}");
    }
    anyhow::bail!(
        "{} table problem(s); `provision` fixes the additive ones",
        problems.len()
    )
}

async fn check_table(
    client: &TableService,
    kind: TableKind,
    table: &TableRef,
) -> anyhow::Result<Vec<String>> {
    let name = format!("{} table {table}", kind.as_str());
    let Some(fields) = table_fields(client, table).await? else {
        return Ok(vec![format!("{name}: does not exist (run provision)")]);
    };
    let differences = compare(kind.layout().columns, &existing_columns(&fields));
    Ok(differences
        .iter()
        .map(|d| {
            let fix = if d.additive() {
                "provision fixes it"
            } else {
                "needs a person"
            };
            format!("{name}: {d} ({fix})")
        })
        .collect())
}
