//! `mesh-ingest consumers --object NAME [--days N]`: who read each major of an object's data
//! product in the last days, from BigQuery's job history (`semantic::consumers` writes the
//! query and groups its answer). Needs `bigquery.jobs.listAll` on the project (BigQuery
//! Resource Viewer); reads only.

use super::sql::{Sql, cell, dataset_location};
use crate::configuration::Settings;
use crate::semantic::consumers::{self, MAX_DAYS, TableReads};

/// How `consumers` prints.
#[derive(Debug, Clone, Copy)]
pub enum ConsumersFormat {
    Text,
    Json,
}

pub async fn run(
    settings: &Settings,
    object: &str,
    days: u32,
    format: ConsumersFormat,
) -> anyhow::Result<()> {
    if !(1..=MAX_DAYS).contains(&days) {
        anyhow::bail!(
            "--days must be between 1 and {MAX_DAYS} (BigQuery keeps job history that long)"
        );
    }
    let found = settings.object(object).map_err(anyhow::Error::msg)?;
    let Some(semantic) = found.semantic.as_ref() else {
        anyhow::bail!(
            "{}: no `semantic:` section, so no data product to read",
            found.source_file
        );
    };
    let gcp = &settings.gcp;
    // INFORMATION_SCHEMA.JOBS is per region: the one the data product's dataset lives in.
    let location = dataset_location(gcp, &semantic.project, &semantic.dataset).await?;
    let query = consumers::jobs_query(found, &location, days).expect("semantic");
    let sql = Sql::connect(gcp).await?;
    let what = format!(
        "reading who read {} from `{}`.INFORMATION_SCHEMA.JOBS (needs bigquery.jobs.listAll on \
         project {})",
        semantic.product,
        consumers::region(&location),
        semantic.project
    );
    let mut answer = sql.run(&semantic.project, query, &what).await?;
    let mut reads = Vec::new();
    loop {
        reads.extend(answer.rows.iter().filter_map(|row| {
            Some(TableReads {
                table: cell(row, 0)?.to_string(),
                principal: cell(row, 1).unwrap_or("(unknown)").to_string(),
                jobs: cell(row, 2)?.parse().ok()?,
                last_read: cell(row, 3).unwrap_or_default().to_string(),
            })
        }));
        match answer.next.take() {
            Some(page) => answer = sql.next(page, 10_000).await?,
            None => break,
        }
    }
    let majors = consumers::by_major(found, &reads);
    match format {
        ConsumersFormat::Text => print!("{}", consumers::to_text(&found.name, days, &majors)),
        ConsumersFormat::Json => println!(
            "{}",
            serde_json::json!({"object": found.name, "days": days, "location": location,
                "majors": majors})
        ),
    }
    Ok(())
}
