//! Runs SQL on BigQuery (`jobs.query`) for the commands that maintain the semantic layer, and
//! reads what they need from the answers: the first row's cells, the rows a DML touched. A
//! statement that outlasts `jobs.query`'s wait (`jobComplete: false`) is waited for with
//! `jobs.getQueryResults` until it completes: a MERGE must be done before its watermark moves.

use crate::configuration::GcpSettings;
use crate::gcp::configured;
use anyhow::Context;
use google_cloud_bigquery_v2::builder::job_service::GetQueryResults;
use google_cloud_bigquery_v2::client::{DatasetService, JobService};
use google_cloud_bigquery_v2::model::{JobReference, QueryRequest, QueryResponse};
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::NeverRetry;
use serde_json::Value;
use std::time::Duration;

/// How long one `jobs.query` / `jobs.getQueryResults` call waits for the job on the server.
const SERVER_WAIT_MS: u32 = 20_000;
/// How long one such call may take on the wire (the server's wait, and some).
const CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// What a finished statement answered (one page of its rows).
pub struct Answer {
    pub rows: Vec<serde_json::Map<String, Value>>,
    pub num_dml_affected_rows: Option<i64>,
    /// Where the next page of rows is, if there is one.
    pub next: Option<NextPage>,
}

/// The next page of a finished query's rows (`jobs.getQueryResults` with a page token).
pub struct NextPage {
    project: String,
    job_id: String,
    location: Option<String>,
    token: String,
    what: String,
}

impl NextPage {
    fn of(job: Option<&JobReference>, token: &str, what: &str) -> Option<NextPage> {
        let job = job?;
        (!token.is_empty()).then(|| NextPage {
            project: job.project_id.clone(),
            job_id: job.job_id.clone(),
            location: job.location.clone(),
            token: token.to_string(),
            what: what.to_string(),
        })
    }

    /// The same job, a later page.
    fn after(self, token: &str) -> Option<NextPage> {
        (!token.is_empty()).then(|| NextPage {
            token: token.to_string(),
            ..self
        })
    }
}

pub struct Sql {
    jobs: JobService,
}

impl Sql {
    pub async fn connect(gcp: &GcpSettings) -> anyhow::Result<Sql> {
        let jobs = configured!(JobService::builder(), &gcp.bigquery_endpoint, gcp)
            .build()
            .await?;
        Ok(Sql { jobs })
    }

    /// Runs `sql` as a job of `project` and waits until it completed; `what` says what it
    /// was for in an error.
    pub async fn run(&self, project: &str, sql: String, what: &str) -> anyhow::Result<Answer> {
        self.run_paged(project, sql, what, None).await
    }

    /// The bytes `sql` would scan, from a dry run (`dryRun`: nothing is run or billed).
    pub async fn dry_run(&self, project: &str, sql: String, what: &str) -> anyhow::Result<u64> {
        let request = QueryRequest::new()
            .set_query(sql)
            .set_use_legacy_sql(false)
            .set_dry_run(true);
        let response: QueryResponse = self
            .jobs
            .query()
            .set_project_id(project)
            .set_query_request(request)
            .send()
            .await
            .with_context(|| format!("{what} (dry run)"))?;
        if let Some(e) = response.errors.first() {
            anyhow::bail!("{what} (dry run): {}", e.message);
        }
        Ok(response
            .total_bytes_processed
            .map_or(0, |b| u64::try_from(b).unwrap_or(0)))
    }

    /// Like `run`, answering at most `page_rows` rows at a time: the rest are read with
    /// `next` (for answers too large for one response).
    pub async fn run_paged(
        &self,
        project: &str,
        sql: String,
        what: &str,
        page_rows: Option<u32>,
    ) -> anyhow::Result<Answer> {
        let mut request = QueryRequest::new()
            .set_query(sql)
            .set_use_legacy_sql(false)
            .set_timeout_ms(SERVER_WAIT_MS);
        if let Some(n) = page_rows {
            request = request.set_max_results(n);
        }
        let response: QueryResponse = self
            .jobs
            .query()
            .set_project_id(project)
            .set_query_request(request)
            // One attempt, however long it takes to answer: the client's default retry policy
            // also caps each attempt at its 60 s budget, and a statement is not to be sent twice.
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(CALL_TIMEOUT)
            .send()
            .await
            .with_context(|| what.to_string())?;
        if let Some(e) = response.errors.first() {
            anyhow::bail!("{what}: {}", e.message);
        }
        if response.job_complete != Some(false) {
            return Ok(Answer {
                next: NextPage::of(response.job_reference.as_ref(), &response.page_token, what),
                rows: response.rows,
                num_dml_affected_rows: response.num_dml_affected_rows,
            });
        }
        let job = response
            .job_reference
            .with_context(|| format!("{what}: an incomplete job without a reference"))?;
        loop {
            let r = self
                .results(
                    &job.project_id,
                    &job.job_id,
                    job.location.as_ref(),
                    page_rows,
                )
                .with_retry_policy(NeverRetry)
                .with_attempt_timeout(CALL_TIMEOUT)
                .send()
                .await
                .with_context(|| format!("{what}: waiting for job {}", job.job_id))?;
            if let Some(e) = r.errors.first() {
                anyhow::bail!("{what}: {}", e.message);
            }
            if r.job_complete != Some(false) {
                return Ok(Answer {
                    next: NextPage::of(Some(&job), &r.page_token, what),
                    rows: r.rows,
                    num_dml_affected_rows: r.num_dml_affected_rows,
                });
            }
        }
    }

    /// The page after the one `page` came with.
    pub async fn next(&self, page: NextPage, page_rows: u32) -> anyhow::Result<Answer> {
        // Reading a finished job's rows changes nothing: the client's retries may repeat it.
        let r = self
            .results(
                &page.project,
                &page.job_id,
                page.location.as_ref(),
                Some(page_rows),
            )
            .set_page_token(&page.token)
            .with_attempt_timeout(CALL_TIMEOUT)
            .send()
            .await
            .with_context(|| format!("{}: reading the next page", page.what))?;
        if let Some(e) = r.errors.first() {
            anyhow::bail!("{}: {}", page.what, e.message);
        }
        Ok(Answer {
            next: page.after(&r.page_token),
            rows: r.rows,
            num_dml_affected_rows: None,
        })
    }

    /// `jobs.getQueryResults` of a job: waits up to the server's wait for it to complete, and
    /// answers at most `page_rows` rows.
    fn results(
        &self,
        project: &str,
        job_id: &str,
        location: Option<&String>,
        page_rows: Option<u32>,
    ) -> GetQueryResults {
        let mut get = self
            .jobs
            .get_query_results()
            .set_project_id(project)
            .set_job_id(job_id)
            .set_timeout_ms(SERVER_WAIT_MS);
        if let Some(n) = page_rows {
            get = get.set_max_results(n);
        }
        if let Some(location) = location {
            get = get.set_location(location.clone());
        }
        get
    }

    /// The first row of `sql`'s answer as integers by column name (`None` for NULL), or
    /// `None` when there is no row.
    pub async fn first_row(
        &self,
        project: &str,
        sql: String,
        what: &str,
    ) -> anyhow::Result<Option<Vec<Option<i64>>>> {
        let response = self.run(project, sql, what).await?;
        let Some(row) = response.rows.first() else {
            return Ok(None);
        };
        let cells = row.get("f").and_then(Value::as_array);
        Ok(Some(
            cells
                .map_or(&[][..], Vec::as_slice)
                .iter()
                .map(|c| match &c["v"] {
                    Value::String(s) => s.parse::<i64>().ok(),
                    Value::Number(n) => n.as_i64(),
                    _ => None,
                })
                .collect(),
        ))
    }
}

/// Where a dataset lives (`US`, `EU`, `europe-west1`, …): the region its jobs and its
/// INFORMATION_SCHEMA views are in.
pub async fn dataset_location(
    gcp: &GcpSettings,
    project: &str,
    dataset: &str,
) -> anyhow::Result<String> {
    let datasets = configured!(DatasetService::builder(), &gcp.bigquery_endpoint, gcp)
        .build()
        .await?;
    Ok(datasets
        .get_dataset()
        .set_project_id(project)
        .set_dataset_id(dataset)
        .send()
        .await
        .with_context(|| format!("reading dataset {project}.{dataset}"))?
        .location)
}

/// Cell `i` of a row of a query answer, as text (`None` for NULL).
pub fn cell(row: &serde_json::Map<String, Value>, i: usize) -> Option<&str> {
    row.get("f")?.as_array()?.get(i)?.get("v")?.as_str()
}
