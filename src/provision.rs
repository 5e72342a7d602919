//! `mesh-ingest provision`: creates what the configuration needs and does not yet exist:
//! datasets, the ingest and dead-letter tables (partitioned by day of ingestion, clustered),
//! the semantic views (always replaced, so a field added to the YAML shows up while the ingest
//! table stays untouched), and on emulators the topics and subscriptions. Idempotent: existing
//! datasets, tables, topics and subscriptions are kept.

use crate::configuration::{ObjectSettings, Settings, TableRef};
use crate::gcp;
use crate::sink::schema::{Column, DEAD_LETTER_COLUMNS, INGEST_COLUMNS};
use anyhow::Context;
use google_cloud_bigquery_v2::model::{
    Clustering, Dataset, DatasetReference, QueryRequest, Table, TableFieldSchema, TableReference,
    TableSchema, TimePartitioning,
};
use google_cloud_gax::error::rpc::Code;
use std::collections::BTreeSet;

/// Whether an admin call failed only because the resource is already there.
fn already_exists(e: &google_cloud_gax::error::Error) -> bool {
    e.http_status_code() == Some(409) || e.status().is_some_and(|s| s.code == Code::AlreadyExists)
}

pub fn table_schema(columns: &[Column]) -> TableSchema {
    TableSchema::new().set_fields(columns.iter().map(|c| {
        TableFieldSchema::new()
            .set_name(c.name)
            .set_type(c.kind.bigquery_name())
            .set_mode(if c.required { "REQUIRED" } else { "NULLABLE" })
            .set_description(c.description)
    }))
}

/// What `provision` did, for the operator.
#[derive(Debug, Default)]
pub struct Report {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

impl Report {
    fn note(&mut self, created: bool, what: String) {
        if created {
            self.created.push(what);
        } else {
            self.existing.push(what);
        }
    }
}

pub async fn provision(settings: &Settings, pubsub: bool) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let datasets_client = gcp::dataset_service(&settings.gcp).await?;
    let tables_client = gcp::table_service(&settings.gcp).await?;

    let datasets: BTreeSet<(String, String)> = settings
        .objects
        .iter()
        .flat_map(|o| [&o.ingest_table, &o.dead_letter_table])
        .map(|t| (t.project.clone(), t.dataset.clone()))
        .chain(
            settings
                .objects
                .iter()
                .filter_map(|o| o.semantic.as_ref())
                .map(|s| (s.project.clone(), s.dataset.clone())),
        )
        .collect();
    for (project, dataset) in datasets {
        let result = datasets_client
            .insert_dataset()
            .set_project_id(&project)
            .set_dataset(
                Dataset::new().set_dataset_reference(
                    DatasetReference::new()
                        .set_project_id(&project)
                        .set_dataset_id(&dataset),
                ),
            )
            .send()
            .await;
        match result {
            Ok(_) => report.note(true, format!("dataset {project}.{dataset}")),
            Err(e) if already_exists(&e) => {
                report.note(false, format!("dataset {project}.{dataset}"))
            }
            Err(e) => {
                return Err(e).with_context(|| format!("creating dataset {project}.{dataset}"));
            }
        }
    }

    for object in &settings.objects {
        for (table, columns, partition_by, cluster_by) in [
            (
                &object.ingest_table,
                &INGEST_COLUMNS[..],
                "ingested_at",
                vec!["event_type", "object_id"],
            ),
            (
                &object.dead_letter_table,
                &DEAD_LETTER_COLUMNS[..],
                "failed_at",
                vec!["reason_code"],
            ),
        ] {
            let created =
                create_table(&tables_client, table, columns, partition_by, &cluster_by).await?;
            report.note(created, format!("table {table}"));
        }
        if pubsub {
            provision_pubsub(settings, object, &mut report).await?;
        }
    }
    replace_semantic_views(settings, &mut report).await?;
    Ok(report)
}

/// Runs each object's `CREATE OR REPLACE VIEW` statements.
async fn replace_semantic_views(settings: &Settings, report: &mut Report) -> anyhow::Result<()> {
    let statements: Vec<(String, String)> = settings
        .objects
        .iter()
        .filter_map(crate::semantic::ddl)
        .flatten()
        .collect();
    if statements.is_empty() {
        return Ok(());
    }
    let jobs = gcp::job_service(&settings.gcp).await?;
    for (view, sql) in statements {
        let project = view.split('.').next().unwrap_or(&settings.gcp.project);
        let response = jobs
            .query()
            .set_project_id(project)
            .set_query_request(QueryRequest::new().set_query(sql).set_use_legacy_sql(false))
            .send()
            .await
            .with_context(|| format!("creating view {view}"))?;
        if let Some(e) = response.errors.first() {
            anyhow::bail!("creating view {view}: {}", e.message);
        }
        report.note(true, format!("view {view} (created or replaced)"));
    }
    Ok(())
}

async fn create_table(
    client: &google_cloud_bigquery_v2::client::TableService,
    table: &TableRef,
    columns: &[Column],
    partition_by: &str,
    cluster_by: &[&str],
) -> anyhow::Result<bool> {
    let body = Table::new()
        .set_table_reference(
            TableReference::new()
                .set_project_id(&table.project)
                .set_dataset_id(&table.dataset)
                .set_table_id(&table.table),
        )
        .set_schema(table_schema(columns))
        // By ingestion day: a producer's event_time can be anything and must never make a
        // row unwritable (BigQuery refuses rows outside the partition window).
        .set_time_partitioning(
            TimePartitioning::new()
                .set_type("DAY")
                .set_field(partition_by),
        )
        .set_clustering(Clustering::new().set_fields(cluster_by.iter().copied()));
    match client
        .insert_table()
        .set_project_id(&table.project)
        .set_dataset_id(&table.dataset)
        .set_table(body)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if already_exists(&e) => Ok(false),
        Err(e) => Err(e).with_context(|| format!("creating table {table}")),
    }
}

async fn provision_pubsub(
    settings: &Settings,
    object: &ObjectSettings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(topic) = &object.topic else {
        anyhow::bail!(
            "{}: field `topic`: needed to provision the subscription on Pub/Sub",
            object.source_file
        );
    };
    let topics = gcp::topic_admin(&settings.gcp).await?;
    match topics.create_topic().set_name(topic).send().await {
        Ok(_) => report.note(true, format!("topic {topic}")),
        Err(e) if already_exists(&e) => report.note(false, format!("topic {topic}")),
        Err(e) => return Err(e).with_context(|| format!("creating topic {topic}")),
    }
    let subs = gcp::subscription_admin(&settings.gcp).await?;
    let sub = &object.subscription;
    match subs
        .create_subscription()
        .set_name(sub)
        .set_topic(topic)
        // Short, so a crashed consumer's messages come back quickly; a live client keeps
        // extending its leases.
        .set_ack_deadline_seconds(10)
        .send()
        .await
    {
        Ok(_) => report.note(true, format!("subscription {sub}")),
        Err(e) if already_exists(&e) => report.note(false, format!("subscription {sub}")),
        Err(e) => return Err(e).with_context(|| format!("creating subscription {sub}")),
    }
    Ok(())
}
