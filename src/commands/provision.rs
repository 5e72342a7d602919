//! `mesh-ingest provision`: creates what the configuration needs and does not yet exist:
//! datasets, the ingest and dead-letter tables (partitioned by day of ingestion, clustered),
//! the semantic views (always replaced, so a field added to the YAML shows up while the ingest
//! table stays untouched), and on emulators the topics and subscriptions. Idempotent: existing
//! datasets, tables, topics and subscriptions are kept. Every maintained major of a data
//! product is built side by side; an older one is labelled deprecated, warned about once past
//! its sunset, and a major the configuration no longer lists is dropped only with `--retire`.

use super::sql::Sql;
use crate::configuration::{
    GcpSettings, Layer, ObjectSettings, SemanticSettings, Settings, TableRef, major_view, today,
};
use crate::gcp::configured;
use crate::semantic::fingerprint::{Agreement, agreement};
use crate::semantic::{
    build_state_table, column_descriptions, column_policy_tags, ddl, state_columns, versions,
    watermark,
};
use crate::sink::writer::{existing_columns, get_table, table_fields};
use crate::tables::{Column, DEAD_LETTER, INGEST, SchemaDifference, TableLayout, compare};
use anyhow::Context;
use google_cloud_bigquery_v2::client::{DatasetService, TableService};
use google_cloud_bigquery_v2::model::table_field_schema::PolicyTagList;
use google_cloud_bigquery_v2::model::{
    Clustering, Dataset, DatasetReference, Table, TableFieldSchema, TableReference, TableSchema,
    TimePartitioning,
};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::paginator::ItemPaginator as _;
use google_cloud_pubsub::client::{SubscriptionAdmin, TopicAdmin};
use std::collections::{BTreeMap, BTreeSet};

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
    /// Existing tables whose schema was brought in line (added or relaxed columns).
    pub updated: Vec<String>,
    /// Tables and views of majors no longer configured, dropped (`--retire`).
    pub retired: Vec<String>,
    /// What needs a person: a major past its sunset, one left over from an older configuration.
    pub warnings: Vec<String>,
}

impl Report {
    pub(super) fn note_created(&mut self, what: String) {
        self.created.push(what);
    }

    pub(super) fn note_existing(&mut self, what: String) {
        self.existing.push(what);
    }

    fn note(&mut self, created: bool, what: String) {
        if created {
            self.created.push(what);
        } else {
            self.existing.push(what);
        }
    }
}

/// Runs `provision` and prints what it created and what already existed.
pub async fn run(settings: &Settings, pubsub: bool, retire: bool) -> anyhow::Result<()> {
    let report = provision(settings, pubsub, retire).await?;
    for c in &report.created {
        println!("created  {c}");
    }
    for e in &report.existing {
        println!("exists   {e}");
    }
    for u in &report.updated {
        println!("updated  {u}");
    }
    for r in &report.retired {
        println!("retired  {r}");
    }
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}

pub async fn provision(settings: &Settings, pubsub: bool, retire: bool) -> anyhow::Result<Report> {
    let mut report = Report::default();
    let gcp = &settings.gcp;
    let datasets_client = configured!(DatasetService::builder(), &gcp.bigquery_endpoint, gcp)
        .build()
        .await?;
    let tables_client = configured!(TableService::builder(), &gcp.bigquery_endpoint, gcp)
        .build()
        .await?;

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

    label_datasets(&datasets_client, settings).await?;

    for object in &settings.objects {
        provision_ingest(&tables_client, object, &mut report).await?;
        if pubsub {
            provision_pubsub(gcp, object, &mut report).await?;
        }
    }
    provision_semantic(settings, &tables_client, retire, &mut report).await?;
    Ok(report)
}

/// An object's ingest and dead-letter tables: created, or brought in line; then labelled and
/// described from the contract.
async fn provision_ingest(
    tables: &TableService,
    object: &ObjectSettings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let summary = object.contract_summary();
    for (table, layout, what) in [
        (
            &object.ingest_table,
            &INGEST,
            format!(
                "Append-only log of every accepted `{}` event, written by mesh-ingest: the \
                 payload as published (JSON) and its metadata.",
                object.name
            ),
        ),
        (
            &object.dead_letter_table,
            &DEAD_LETTER,
            format!(
                "Events of `{}` that mesh-ingest could not accept, with the reason and the \
                 body as received. They hold the producers' payloads (personal data): grant \
                 access as narrowly as to the ingest table.",
                object.name
            ),
        ),
    ] {
        let created = create_table(tables, table, layout).await?;
        if !created {
            reconcile(tables, table, layout, report).await?;
        }
        let mut update = Table::new()
            .set_description(format!("{what}\n{summary}"))
            .set_labels(object.labels(Layer::Ingest));
        if *table == object.ingest_table && object.payload_classification_text().is_some() {
            update = update.set_schema(classified_payload(tables, object).await?);
        }
        patch(tables, table, update).await?;
        report.note(created, format!("table {table}"));
    }
    Ok(())
}

/// The ingest table's schema with its `payload` column saying which paths are classified, and
/// carrying the policy tag `gcp.policy_tags` gives them (one per column: the first that
/// applies).
async fn classified_payload(
    tables: &TableService,
    object: &ObjectSettings,
) -> anyhow::Result<TableSchema> {
    let table = &object.ingest_table;
    let mut fields = table_fields(tables, table)
        .await
        .with_context(|| format!("reading table {table}"))?
        .with_context(|| format!("table {table} exists but cannot be read"))?;
    let payload = crate::tables::ingest::PAYLOAD;
    let base = INGEST
        .columns
        .iter()
        .find(|c| c.name == payload)
        .map_or("", |c| c.description);
    let text = object.payload_classification_text().unwrap_or_default();
    if let Some(f) = fields.iter_mut().find(|f| f.name == payload) {
        f.description = Some(format!("{base} {text}"));
        if let Some(t) = &object.payload_policy_tag {
            f.policy_tags = Some(PolicyTagList::new().set_names([t.clone()]));
        }
    }
    Ok(TableSchema::new().set_fields(fields))
}

/// Sets the description and labels of every dataset mesh-ingest writes to: what it holds (the
/// ingest logs, the data products), `managed_by` and `layer`, and `domain` / `owner` when
/// every object in it agrees.
async fn label_datasets(datasets: &DatasetService, settings: &Settings) -> anyhow::Result<()> {
    let mut uses: BTreeMap<(String, String), Vec<(&ObjectSettings, Layer)>> = BTreeMap::new();
    for o in &settings.objects {
        for t in [&o.ingest_table, &o.dead_letter_table] {
            let at = uses
                .entry((t.project.clone(), t.dataset.clone()))
                .or_default();
            if !at
                .iter()
                .any(|(x, l)| x.name == o.name && *l == Layer::Ingest)
            {
                at.push((o, Layer::Ingest));
            }
        }
        if let Some(s) = &o.semantic {
            uses.entry((s.project.clone(), s.dataset.clone()))
                .or_default()
                .push((o, Layer::Semantic));
        }
    }
    for ((project, dataset), objects) in uses {
        let (labels, description) = dataset_metadata(&objects);
        datasets
            .patch_dataset()
            .set_project_id(&project)
            .set_dataset_id(&dataset)
            .set_dataset(
                Dataset::new()
                    .set_description(description)
                    .set_labels(labels),
            )
            .send()
            .await
            .with_context(|| format!("labelling dataset {project}.{dataset}"))?;
    }
    Ok(())
}

/// A dataset's labels and description from the objects (and layers) it holds.
fn dataset_metadata(objects: &[(&ObjectSettings, Layer)]) -> (BTreeMap<String, String>, String) {
    let mut labels = BTreeMap::from([("managed_by".to_string(), "mesh-ingest".to_string())]);
    let layers: BTreeSet<&str> = objects.iter().map(|(_, l)| l.as_str()).collect();
    for key in ["layer", "domain", "owner"] {
        let values: BTreeSet<Option<String>> = objects
            .iter()
            .map(|(o, l)| o.labels(*l).get(key).cloned())
            .collect();
        if let [Some(v)] = values.into_iter().collect::<Vec<_>>().as_slice() {
            labels.insert(key.to_string(), v.clone());
        }
    }
    let names = |layer: Layer| {
        objects
            .iter()
            .filter(|(_, l)| *l == layer)
            .map(|(o, _)| match (&o.semantic, layer) {
                (Some(s), Layer::Semantic) => format!("`{}_v<MAJOR>`", s.product),
                _ => format!("`{}`", o.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut text = Vec::new();
    if layers.contains("ingest") {
        text.push(format!(
            "Ingest logs and dead letters of {}, written by mesh-ingest.",
            names(Layer::Ingest)
        ));
    }
    if layers.contains("semantic") {
        text.push(format!(
            "Data products {}, built by mesh-ingest: typed, one row per object, one view per major.",
            names(Layer::Semantic)
        ));
    }
    let contracts: BTreeSet<&str> = objects
        .iter()
        .map(|(o, _)| o.source_file.as_str())
        .collect();
    text.push(format!(
        "Contracts: {}.",
        contracts.into_iter().collect::<Vec<_>>().join(", ")
    ));
    (labels, text.join(" "))
}

/// Per object with a semantic layer, per maintained major: the watermark table, the state
/// table (built from the whole ingest log when it is missing, its columns no longer match the
/// YAML or it records another definition, with its watermark set to what that build read),
/// the views, and the labels and descriptions that say which major each is. Then the majors
/// the configuration no longer lists: warned about, or dropped with `retire`.
async fn provision_semantic(
    settings: &Settings,
    tables: &TableService,
    retire: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let objects: Vec<&ObjectSettings> = settings
        .objects
        .iter()
        .filter(|o| o.semantic.is_some())
        .collect();
    if objects.is_empty() {
        return Ok(());
    }
    let sql = Sql::connect(&settings.gcp).await?;
    let today = today();
    for object in objects {
        create_watermarks(&sql, tables, object).await?;
        for major in object.per_major() {
            provision_major(&sql, tables, &major, report).await?;
            let semantic = major.semantic.as_ref().expect("per major");
            if semantic.past_sunset(&today) {
                report.warnings.push(format!(
                    "{}: `{}` (major {}) is past its sunset {}; it is still maintained. Remove it \
                     from `semantic.previous` (contract diff allows that now) and run \
                     `mesh-ingest provision --retire`",
                    object.source_file,
                    semantic.view,
                    semantic.major,
                    semantic.sunset.as_deref().unwrap_or_default()
                ));
            }
        }
        leftover_majors(&sql, tables, object, retire, report).await?;
    }
    Ok(())
}

/// The watermark table of the object's semantic dataset (every major's state table has its
/// row there), created if missing, labelled and described.
async fn create_watermarks(
    sql: &Sql,
    tables: &TableService,
    object: &ObjectSettings,
) -> anyhow::Result<()> {
    let semantic = object.semantic.as_ref().expect("filtered");
    sql.run(
        &semantic.project,
        watermark::create_table(semantic),
        "creating the watermark table",
    )
    .await?;
    let update = Table::new()
        .set_description(
            "`mesh-ingest materialize`'s watermarks: per state table of this dataset, the \
             newest `ingested_at` it applied. Kept by mesh-ingest.",
        )
        .set_labels([("managed_by", "mesh-ingest"), ("layer", "semantic")]);
    patch(tables, &semantic.qualified(watermark::TABLE), update).await
}

/// One major of one object's data product (`major` carries it as its `semantic`).
async fn provision_major(
    sql: &Sql,
    tables: &TableService,
    object: &ObjectSettings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let semantic = object.semantic.as_ref().expect("per major");
    let state = state_table_ref(semantic);
    let existing = read_state(tables, &state).await?;
    match rebuild_reason(object, existing.as_ref()) {
        Some(_) if existing.is_none() => {
            build_state(sql, object).await?;
            report.note(true, format!("table {state} (built from the ingest log)"));
        }
        Some(why) => {
            tracing::info!(object = %object.name, table = %state, why = %why,
                "definition changed: rebuilding the state table from the ingest log");
            build_state(sql, object).await?;
            report.note(
                true,
                format!("table {state} (rebuilt from the ingest log: {why})"),
            );
        }
        None => report.note(false, format!("table {state}")),
    }
    for view in ddl(object).unwrap_or_default() {
        let what = format!("creating view {}", view.name);
        sql.run(&view.project, view.sql, &what).await?;
        report.note(true, format!("view {} (created or replaced)", view.name));
    }
    label_major(tables, object).await
}

/// Sets the labels and descriptions of every table and view of a major, and its columns'
/// descriptions: the contract's labels and summary, a deprecated major's notice first (the
/// state table keeps the definition its build recorded). `CREATE OR REPLACE VIEW` leaves a
/// view without any of them, so this follows every build; a changed contract (owner,
/// description, …) is applied here without rebuilding anything.
async fn label_major(tables: &TableService, object: &ObjectSettings) -> anyhow::Result<()> {
    let semantic = object.semantic.as_ref().expect("per major");
    let labels = versions::labels(object);
    let state = state_table_ref(semantic);
    let mut targets: Vec<(TableRef, Option<String>)> = crate::semantic::view_descriptions(object)
        .unwrap_or_default()
        .into_iter()
        .map(|(view, text)| (semantic.qualified(&view), Some(text)))
        .collect();
    // The state table's description is built from what its build recorded.
    targets.push((state.clone(), None));
    for (table, text) in targets {
        let Some(existing) = get_table(tables, &table)
            .await
            .with_context(|| format!("reading table {table}"))?
        else {
            continue;
        };
        let description = match text {
            Some(text) => versions::description(object, &text),
            None => versions::describe(
                semantic,
                &format!(
                    "{}\n{}",
                    object.contract_summary(),
                    crate::semantic::fingerprint::recorded(
                        existing.description.as_deref().unwrap_or_default()
                    )
                ),
            ),
        };
        let rejected = table.table == semantic.rejected_view();
        let columns = column_descriptions(semantic, rejected);
        let tags = if table == state {
            column_policy_tags(semantic)
        } else {
            BTreeMap::new()
        };
        let mut update = Table::new()
            .set_description(description)
            .set_labels(labels.clone());
        if let Some(mut fields) = existing.schema.map(|s| s.fields) {
            describe_columns(&mut fields, "", &columns, &tags);
            update = update.set_schema(TableSchema::new().set_fields(fields));
        }
        patch(tables, &table, update).await?;
    }
    Ok(())
}

/// Patches `table` with what `update` sets (labels, description, schema).
async fn patch(tables: &TableService, table: &TableRef, update: Table) -> anyhow::Result<()> {
    tables
        .patch_table()
        .set_project_id(&table.project)
        .set_dataset_id(&table.dataset)
        .set_table_id(&table.table)
        .set_table(update)
        .send()
        .await
        .with_context(|| format!("labelling {table}"))?;
    Ok(())
}

/// Sets each column's description from `docs` and its policy tag from `tags` (both by path:
/// `total.amount`), sub-fields too.
fn describe_columns(
    fields: &mut [TableFieldSchema],
    prefix: &str,
    docs: &BTreeMap<String, String>,
    tags: &BTreeMap<String, String>,
) {
    for f in fields {
        let path = format!("{prefix}{}", f.name);
        if let Some(d) = docs.get(&path) {
            f.description = Some(d.clone());
        }
        if let Some(t) = tags.get(&path) {
            f.policy_tags = Some(PolicyTagList::new().set_names([t.clone()]));
        }
        describe_columns(&mut f.fields, &format!("{path}."), docs, tags);
    }
}

/// The majors of `object`'s data product that earlier configurations built (their state
/// tables are in the dataset) and this one no longer lists, and the unversioned product of a
/// release before majors: nobody maintains them, so they go stale. Warned about; with
/// `retire`, their views and state table are dropped and their watermark forgotten.
async fn leftover_majors(
    sql: &Sql,
    tables: &TableService,
    object: &ObjectSettings,
    retire: bool,
    report: &mut Report,
) -> anyhow::Result<()> {
    let semantic = object.semantic.as_ref().expect("filtered");
    let mut listed = tables
        .list_tables()
        .set_project_id(&semantic.project)
        .set_dataset_id(&semantic.dataset)
        .by_item();
    let mut names = Vec::new();
    while let Some(table) = listed.next().await {
        let table = table.with_context(|| {
            format!(
                "listing the tables of {}.{}",
                semantic.project, semantic.dataset
            )
        })?;
        if let Some(reference) = table.table_reference {
            names.push(reference.table_id);
        }
    }
    let configured: Vec<u32> = object.majors().map(|m| m.major).collect();
    for table in &names {
        let base = match versions::major_of_state_table(&semantic.product, table) {
            Some(Some(major)) if !configured.contains(&major) => {
                major_view(&semantic.product, major)
            }
            Some(None) => semantic.product.clone(),
            _ => continue,
        };
        let gone = [
            ("VIEW", base.clone()),
            ("VIEW", format!("{base}_history")),
            ("VIEW", format!("{base}_rejected")),
            ("TABLE", format!("{base}_state")),
        ];
        if !retire {
            report.warnings.push(format!(
                "{}: `{}` is no longer configured and no longer maintained (its rows go \
                 stale); tell its readers, then run `mesh-ingest provision --retire` to drop it",
                object.source_file,
                semantic.qualified(&base)
            ));
            continue;
        }
        for (kind, name) in gone {
            let target = semantic.qualified(&name);
            sql.run(
                &semantic.project,
                format!("DROP {kind} IF EXISTS {}", target.sql_name()),
                &format!("dropping {target}"),
            )
            .await?;
            report
                .retired
                .push(format!("{} {target}", kind.to_lowercase()));
        }
        sql.run(
            &semantic.project,
            watermark::forget(semantic, table),
            "forgetting the watermark",
        )
        .await?;
    }
    Ok(())
}

/// The state table of a semantic section.
fn state_table_ref(semantic: &SemanticSettings) -> TableRef {
    semantic.qualified(&semantic.state_table())
}

/// What a state table holds that decides whether it follows the configuration.
struct StateTable {
    columns: Vec<String>,
    /// Where the build recorded the definition it was built from.
    description: Option<String>,
}

/// Reads the state table; `None` when it does not exist.
async fn read_state(tables: &TableService, state: &TableRef) -> anyhow::Result<Option<StateTable>> {
    let table = get_table(tables, state)
        .await
        .with_context(|| format!("reading table {state}"))?;
    Ok(table.map(|t| StateTable {
        columns: t
            .schema
            .map(|s| s.fields.into_iter().map(|f| f.name).collect())
            .unwrap_or_default(),
        description: t.description,
    }))
}

/// Why the state table must be (re)built, `None` when it follows the configuration: it is
/// missing, its columns differ, or it was built from another definition (a path, a type,
/// `required`, `deleted_when`, …: its rows would not be what the configuration computes).
fn rebuild_reason(object: &ObjectSettings, existing: Option<&StateTable>) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let Some(table) = existing else {
        return Some("the table does not exist".into());
    };
    match agreement(object, table.description.as_deref()) {
        Agreement::Same if table.columns == state_columns(semantic) => None,
        Agreement::Same => Some("its columns differ from the configuration's fields".into()),
        other => Some(other.explain()),
    }
}

/// Reads state tables for `materialize`: a state table that does not follow the
/// configuration's definition is not merged into.
pub struct StateTables {
    tables: TableService,
}

impl StateTables {
    pub async fn connect(gcp: &GcpSettings) -> anyhow::Result<StateTables> {
        let tables = configured!(TableService::builder(), &gcp.bigquery_endpoint, gcp)
            .build()
            .await?;
        Ok(StateTables { tables })
    }

    /// Errors, naming what differs, unless `object`'s state table exists and was built from
    /// the configuration's definition.
    pub async fn verify(&self, object: &ObjectSettings) -> anyhow::Result<()> {
        let Some(semantic) = object.semantic.as_ref() else {
            return Ok(());
        };
        let state = state_table_ref(semantic);
        let existing = read_state(&self.tables, &state).await?;
        let Some(why) = rebuild_reason(object, existing.as_ref()) else {
            return Ok(());
        };
        if existing.is_none() {
            anyhow::bail!(
                "{}: the state table {state} does not exist; run `mesh-ingest provision`",
                object.source_file
            );
        }
        anyhow::bail!(
            "{}: the state table {state} was built from another definition; run \
             `mesh-ingest provision` (it rebuilds the table from the ingest log): {why}",
            object.source_file
        )
    }
}

/// Builds the state table from the whole ingest log. The watermark is read before: what is
/// ingested while the build runs is read again by the next `materialize`.
async fn build_state(sql: &Sql, object: &ObjectSettings) -> anyhow::Result<()> {
    let semantic = object.semantic.as_ref().expect("semantic");
    let project = &semantic.project;
    let newest = sql
        .first_row(
            project,
            watermark::newest_ingested(object),
            "reading the ingest log",
        )
        .await?
        .and_then(|row| row.first().copied().flatten());
    let build = build_state_table(object).expect("semantic");
    sql.run(project, build, "building the state table").await?;
    sql.run(
        project,
        watermark::write(semantic, newest),
        "setting the watermark",
    )
    .await?;
    Ok(())
}

async fn create_table(
    client: &TableService,
    table: &TableRef,
    layout: &TableLayout,
) -> anyhow::Result<bool> {
    let body = Table::new()
        .set_table_reference(
            TableReference::new()
                .set_project_id(&table.project)
                .set_dataset_id(&table.dataset)
                .set_table_id(&table.table),
        )
        .set_schema(table_schema(layout.columns))
        .set_time_partitioning(
            TimePartitioning::new()
                .set_type("DAY")
                .set_field(layout.partition_by),
        )
        .set_clustering(Clustering::new().set_fields(layout.cluster_by.iter().copied()));
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

/// Brings an existing table in line with what mesh-ingest writes, where that loses nothing:
/// missing columns are added (NULLABLE), REQUIRED columns mesh-ingest may leave NULL are
/// relaxed. Any other difference is refused, by column: it needs a person.
async fn reconcile(
    client: &TableService,
    table: &TableRef,
    layout: &TableLayout,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(mut fields) = table_fields(client, table)
        .await
        .with_context(|| format!("reading table {table}"))?
    else {
        anyhow::bail!("table {table} exists but cannot be read");
    };
    let differences = compare(layout.columns, &existing_columns(&fields));
    let unsafe_ones: Vec<String> = differences
        .iter()
        .filter(|d| !d.additive())
        .map(ToString::to_string)
        .collect();
    if !unsafe_ones.is_empty() {
        anyhow::bail!(
            "table {table} differs from what mesh-ingest writes in ways provision does not \
             change: {}. Migrate or recreate the table by hand",
            unsafe_ones.join("; ")
        );
    }
    if differences.is_empty() {
        return Ok(());
    }
    for d in &differences {
        match d {
            SchemaDifference::Missing { column } => {
                let c = layout.columns.iter().find(|c| c.name == *column);
                let c = c.expect("a missing column is one of ours");
                fields.push(
                    TableFieldSchema::new()
                        .set_name(c.name)
                        .set_type(c.kind.bigquery_name())
                        .set_mode("NULLABLE")
                        .set_description(c.description),
                );
            }
            SchemaDifference::ModeChanged { column, .. } => {
                if let Some(f) = fields
                    .iter_mut()
                    .find(|f| f.name.eq_ignore_ascii_case(column))
                {
                    f.mode = "NULLABLE".into();
                }
            }
            _ => {}
        }
    }
    client
        .patch_table()
        .set_project_id(&table.project)
        .set_dataset_id(&table.dataset)
        .set_table_id(&table.table)
        .set_table(Table::new().set_schema(TableSchema::new().set_fields(fields)))
        .send()
        .await
        .with_context(|| format!("updating the schema of table {table}"))?;
    for d in &differences {
        report.updated.push(format!("table {table}: {d}; fixed"));
    }
    Ok(())
}

async fn provision_pubsub(
    gcp: &GcpSettings,
    object: &ObjectSettings,
    report: &mut Report,
) -> anyhow::Result<()> {
    let Some(topic) = &object.topic else {
        anyhow::bail!(
            "{}: field `topic`: needed to provision the subscription on Pub/Sub",
            object.source_file
        );
    };
    let topics = configured!(TopicAdmin::builder(), &gcp.pubsub_endpoint, gcp)
        .build()
        .await?;
    match topics.create_topic().set_name(topic).send().await {
        Ok(_) => report.note(true, format!("topic {topic}")),
        Err(e) if already_exists(&e) => report.note(false, format!("topic {topic}")),
        Err(e) => return Err(e).with_context(|| format!("creating topic {topic}")),
    }
    if let Some(t) = &object.topic_schema {
        super::topic_schema::provision(gcp, t, topic, &topics, report).await?;
    }
    let subs = configured!(SubscriptionAdmin::builder(), &gcp.pubsub_endpoint, gcp)
        .build()
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema `provision` patches: each column (sub-fields too) gets its description, and
    /// a classified one its policy tag, by path.
    #[test]
    fn columns_get_their_description_and_policy_tag_by_path() {
        let mut fields = vec![
            TableFieldSchema::new().set_name("name").set_type("STRING"),
            TableFieldSchema::new()
                .set_name("total")
                .set_type("RECORD")
                .set_fields([TableFieldSchema::new()
                    .set_name("amount")
                    .set_type("NUMERIC")]),
        ];
        let docs = BTreeMap::from([
            (
                "name".to_string(),
                "Full name. Classification: pii.".to_string(),
            ),
            ("total.amount".to_string(), "Amount.".to_string()),
        ]);
        let tag = "projects/p/locations/eu/taxonomies/1/policyTags/2";
        let tags = BTreeMap::from([("name".to_string(), tag.to_string())]);
        describe_columns(&mut fields, "", &docs, &tags);
        assert_eq!(
            fields[0].description.as_deref(),
            Some("Full name. Classification: pii.")
        );
        assert_eq!(
            fields[0].policy_tags.as_ref().map(|t| t.names.clone()),
            Some(vec![tag.to_string()])
        );
        assert_eq!(fields[1].description, None);
        assert!(fields[1].policy_tags.is_none());
        assert_eq!(fields[1].fields[0].description.as_deref(), Some("Amount."));
    }
}
