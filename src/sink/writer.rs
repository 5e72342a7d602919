//! One table's Storage Write API default stream, and the one place that classes what an
//! append's failure says (see `AppendFailure`). The classes follow the documented meaning of
//! `AppendRowsResponse.error` ("Google BigQuery Storage v1 API - Class AppendRowsResponse"):
//! INVALID_ARGUMENT "indicates a malformed request or data", ABORTED and INTERNAL "can be
//! retried"; the status codes of the destination itself (NOT_FOUND, PERMISSION_DENIED, …)
//! are faults of the table, never of the rows.

use super::arrow_rows::serialized_schema;
use super::destination::{ReadError, TableIo};
use crate::configuration::{GcpSettings, TableRef};
use crate::gcp::{code_name, configured};
use crate::tables::{Column, ExistingColumn};
use bytes::Bytes;
use futures::future::BoxFuture;
use google_cloud_bigquery::client::Write;
use google_cloud_bigquery::error::AppendError;
use google_cloud_bigquery::model::{ArrowRecordBatch, ArrowSchema, RowError};
use google_cloud_bigquery::write::DefaultWriter;
use google_cloud_bigquery::write::format::Arrow;
use google_cloud_bigquery::write::retry_policy::RetryableErrors;
use google_cloud_bigquery_v2::client::TableService;
use google_cloud_bigquery_v2::model::{Table, TableFieldSchema};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use std::time::Duration;

/// Why an append did not land; none of its rows did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendFailure {
    /// *Row*: BigQuery named these rows (index in the append, message).
    Rows(Vec<(usize, String)>),
    /// The whole append was refused as malformed (INVALID_ARGUMENT): its content, or a table
    /// that can take no row (schema drift). Whether some rows' siblings land decides which.
    Refused { code: String, message: String },
    /// *Table*: the destination cannot take any row (missing, no permission, not usable).
    Table { code: String, message: String },
    /// *Transient*: may succeed as is later (unavailable, overloaded, timed out, connection
    /// cut, UNKNOWN, row errors naming rows the append does not have).
    Transient { code: String, message: String },
}

impl AppendFailure {
    /// The gRPC status code (or our name for a failure without one), for metrics and logs.
    pub fn code(&self) -> &str {
        match self {
            AppendFailure::Rows(_) => "ROW_ERRORS",
            AppendFailure::Refused { code, .. }
            | AppendFailure::Table { code, .. }
            | AppendFailure::Transient { code, .. } => code,
        }
    }

    /// The upstream message, for logs (never for /readyz).
    pub fn message(&self) -> &str {
        match self {
            AppendFailure::Rows(_) => "BigQuery refused rows of the append",
            AppendFailure::Refused { message, .. }
            | AppendFailure::Table { message, .. }
            | AppendFailure::Transient { message, .. } => message,
        }
    }
}

fn transient(code: &str, message: impl Into<String>) -> AppendFailure {
    AppendFailure::Transient {
        code: code.into(),
        message: message.into(),
    }
}

/// Row errors name rows only when every index is one of the append's `rows` rows; an index
/// outside it (or none) blames no row of ours, never row 0.
fn classify_row_errors(errors: &[RowError], rows: usize) -> AppendFailure {
    let named: Option<Vec<(usize, String)>> = errors
        .iter()
        .map(|e| {
            let index = usize::try_from(e.index).ok().filter(|i| *i < rows)?;
            Some((index, format!("{:?}: {}", e.code, e.message)))
        })
        .collect();
    match named {
        Some(named) if !named.is_empty() => AppendFailure::Rows(named),
        _ => transient(
            "ROW_ERRORS_OUT_OF_RANGE",
            format!(
                "{} row error(s) naming no row of a {rows}-row append",
                errors.len()
            ),
        ),
    }
}

/// Classes the failure of an append of `rows` rows.
pub fn classify(err: AppendError, rows: usize) -> AppendFailure {
    match err {
        AppendError::RowErrors { row_errors, .. } => classify_row_errors(&row_errors, rows),
        AppendError::Rpc { source, .. } => match source.status() {
            Some(status) => {
                let code = code_name(status.code);
                let message = status.message.clone();
                match status.code {
                    Code::InvalidArgument => AppendFailure::Refused { code, message },
                    Code::NotFound
                    | Code::PermissionDenied
                    | Code::FailedPrecondition
                    | Code::Unauthenticated
                    | Code::Unimplemented
                    | Code::OutOfRange
                    | Code::AlreadyExists => AppendFailure::Table { code, message },
                    // UNKNOWN is what a stream cut by a proxy looks like: no verdict on the
                    // rows. The rest may succeed when retried as they are.
                    _ => AppendFailure::Transient { code, message },
                }
            }
            // No status: the request never got an answer (connection refused, reset, timeout).
            None => transient("TRANSPORT", source.to_string()),
        },
        AppendError::UnexpectedEndOfStream => {
            transient("END_OF_STREAM", "the AppendRows stream closed unexpectedly")
        }
        other => transient("OTHER", other.to_string()),
    }
}

/// The BigQuery clients, shared by every table the service writes to: Storage Write for
/// rows, the tables API for schemas.
pub struct WriteClient {
    write: Write,
    tables: TableService,
}

impl WriteClient {
    pub async fn connect(gcp: &GcpSettings) -> anyhow::Result<Self> {
        let write = configured!(Write::builder(), &gcp.bigquery_write_endpoint, gcp);
        let tables = configured!(TableService::builder(), &gcp.bigquery_endpoint, gcp);
        Ok(WriteClient {
            write: write.build().await?,
            tables: tables.build().await?,
        })
    }

    /// Opens the table's default stream. Makes no request: a missing table shows on the first
    /// append, as a fault of the table.
    pub async fn open(
        &self,
        table: &TableRef,
        columns: &[Column],
    ) -> anyhow::Result<BigQueryTable> {
        let schema = ArrowSchema::new().set_serialized_schema(serialized_schema(columns));
        let writer = self
            .write
            .open_default_stream(table.write_api_name())
            // The sink has its own retry loop with backoff, metrics and readiness: the client
            // makes one attempt, so every failure is seen (and counted) there.
            .with_retry_policy(RetryableErrors.with_attempt_limit(1))
            // A stalled AppendRows stream is abandoned (and the append retried) after this.
            .with_attempt_timeout(Duration::from_secs(30))
            .build_arrow(schema)
            .await?;
        Ok(BigQueryTable {
            table: table.clone(),
            writer,
            tables: self.tables.clone(),
        })
    }
}

/// How long reading a table's schema may take.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(10);

/// A table in BigQuery: its default stream (Arrow rows) and its metadata.
pub struct BigQueryTable {
    table: TableRef,
    writer: DefaultWriter<Arrow>,
    tables: TableService,
}

/// A table's fields as `tables.get` describes them; `None` when the table does not exist.
pub async fn table_fields(
    tables: &TableService,
    table: &TableRef,
) -> Result<Option<Vec<TableFieldSchema>>, google_cloud_gax::error::Error> {
    Ok(get_table(tables, table)
        .await?
        .map(|t| t.schema.map(|s| s.fields).unwrap_or_default()))
}

/// A table as `tables.get` describes it; `None` when it does not exist.
pub async fn get_table(
    tables: &TableService,
    table: &TableRef,
) -> Result<Option<Table>, google_cloud_gax::error::Error> {
    let result = tables
        .get_table()
        .set_project_id(&table.project)
        .set_dataset_id(&table.dataset)
        .set_table_id(&table.table)
        .send()
        .await;
    match result {
        Ok(t) => Ok(Some(t)),
        Err(e)
            if e.http_status_code() == Some(404)
                || e.status().is_some_and(|s| s.code == Code::NotFound) =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The fields as the schema comparison reads them.
pub fn existing_columns(fields: &[TableFieldSchema]) -> Vec<ExistingColumn> {
    fields
        .iter()
        .map(|f| ExistingColumn {
            name: f.name.clone(),
            type_name: f.r#type.clone(),
            mode: f.mode.clone(),
        })
        .collect()
}

impl TableIo for BigQueryTable {
    fn name(&self) -> String {
        self.table.to_string()
    }

    fn append(&self, batch: Bytes, rows: usize) -> BoxFuture<'_, Result<(), AppendFailure>> {
        Box::pin(async move {
            let batch = ArrowRecordBatch::new().set_serialized_record_batch(batch);
            self.writer
                .append(batch)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify(e, rows))
        })
    }

    fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, ReadError>> {
        Box::pin(async move {
            // A diagnosis must not hold the pipeline up: give up on a slow answer.
            let get = tokio::time::timeout(SCHEMA_TIMEOUT, table_fields(&self.tables, &self.table));
            match get.await {
                Ok(Ok(Some(fields))) => Ok(existing_columns(&fields)),
                Ok(Ok(None)) => Err(ReadError::NotFound),
                Ok(Err(e)) if is_permission_denied(&e) => {
                    Err(ReadError::PermissionDenied(e.to_string()))
                }
                Ok(Err(e)) => Err(ReadError::Unreachable(e.to_string())),
                Err(_) => Err(ReadError::Unreachable(format!(
                    "no answer within {SCHEMA_TIMEOUT:?}"
                ))),
            }
        })
    }
}

/// Whether `tables.get` was refused for lack of permission (HTTP 403 on the REST API).
fn is_permission_denied(e: &google_cloud_gax::error::Error) -> bool {
    e.http_status_code() == Some(403)
        || e.status()
            .is_some_and(|s| matches!(s.code, Code::PermissionDenied | Code::Unauthenticated))
}

#[cfg(test)]
mod tests {
    use super::*;
    use google_cloud_bigquery::Error;
    use google_cloud_gax::error::rpc::Status;

    fn rpc(code: Code) -> AppendError {
        AppendError::from(Error::service(
            Status::default().set_code(code).set_message("m"),
        ))
    }

    fn class(f: &AppendFailure) -> &'static str {
        match f {
            AppendFailure::Rows(_) => "row",
            AppendFailure::Refused { .. } => "refused",
            AppendFailure::Table { .. } => "table",
            AppendFailure::Transient { .. } => "transient",
        }
    }

    #[test]
    fn classes_status_codes() {
        let cases = [
            (Code::InvalidArgument, "refused"),
            (Code::Unknown, "transient"),
            (Code::Unavailable, "transient"),
            (Code::ResourceExhausted, "transient"),
            (Code::DeadlineExceeded, "transient"),
            (Code::Aborted, "transient"),
            (Code::Internal, "transient"),
            (Code::NotFound, "table"),
            (Code::PermissionDenied, "table"),
            (Code::FailedPrecondition, "table"),
            (Code::Unauthenticated, "table"),
        ];
        for (code, want) in cases {
            assert_eq!(class(&classify(rpc(code), 3)), want, "{code:?}");
        }
        assert_eq!(classify(rpc(Code::NotFound), 1).code(), "NOT_FOUND");
        assert_eq!(
            class(&classify(AppendError::UnexpectedEndOfStream, 1)),
            "transient"
        );
    }

    fn row_errors(indexes: &[i64], rows: usize) -> AppendFailure {
        let errors: Vec<RowError> = indexes
            .iter()
            .map(|i| RowError::new().set_index(*i).set_message("bad"))
            .collect();
        classify_row_errors(&errors, rows)
    }

    #[test]
    fn row_errors_name_rows_of_the_append_or_blame_none() {
        assert!(matches!(
            row_errors(&[0, 2], 3),
            AppendFailure::Rows(r) if r.iter().map(|(i, _)| *i).collect::<Vec<_>>() == [0, 2]
        ));
        // Outside the append, negative, or none at all: never row 0.
        for bad in [&[3][..], &[-1], &[0, 7], &[]] {
            assert_eq!(class(&row_errors(bad, 3)), "transient", "{bad:?}");
        }
    }
}
