//! One table's Storage Write API default stream, and the classing of its errors: a refusal of
//! specific rows, a refusal of the whole append for its content, a transient failure to retry,
//! or an infrastructure problem (missing table, permissions) that no row is to blame for.

use super::arrow_rows::serialized_schema;
use crate::configuration::{GcpSettings, TableRef};
use crate::gcp::configured;
use crate::tables::Column;
use bytes::Bytes;
use google_cloud_bigquery::client::Write;
use google_cloud_bigquery::error::AppendError;
use google_cloud_bigquery::model::{ArrowRecordBatch, ArrowSchema};
use google_cloud_bigquery::write::DefaultWriter;
use google_cloud_bigquery::write::format::Arrow;
use google_cloud_bigquery::write::retry_policy::RetryableErrors;
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::retry_policy::RetryPolicyExt;
use std::time::Duration;

/// Why an append did not land.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppendFailure {
    /// BigQuery refused these rows (index in the append, message); none of the batch landed.
    RowErrors(Vec<(usize, String)>),
    /// The whole append was refused for its content, without saying which row.
    Rejected(String),
    /// Worth retrying as is: unavailable, overloaded, timed out, connection lost.
    Retryable { code: String, message: String },
    /// Not the rows' fault (missing table, no permission): retry slowly and alert; never
    /// dead-letter good rows for it.
    Infrastructure { code: String, message: String },
}

impl AppendFailure {
    pub fn code(&self) -> &str {
        match self {
            AppendFailure::RowErrors(_) => "ROW_ERRORS",
            AppendFailure::Rejected(_) => "REJECTED",
            AppendFailure::Retryable { code, .. } | AppendFailure::Infrastructure { code, .. } => {
                code
            }
        }
    }
}

fn code_name(code: Code) -> String {
    format!("{code:?}")
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let sep = (i > 0 && c.is_ascii_uppercase()).then_some('_');
            sep.into_iter()
                .chain(std::iter::once(c.to_ascii_uppercase()))
        })
        .collect()
}

/// Classes an append error. Exposed for unit tests.
pub fn classify(err: AppendError) -> AppendFailure {
    match err {
        AppendError::RowErrors { row_errors, .. } => AppendFailure::RowErrors(
            row_errors
                .into_iter()
                .map(|e| {
                    (
                        e.index.max(0) as usize,
                        format!("{:?}: {}", e.code, e.message),
                    )
                })
                .collect(),
        ),
        AppendError::Rpc { source, .. } => match source.status() {
            Some(status) => {
                let code = code_name(status.code);
                let message = status.message.clone();
                match status.code {
                    // bqemulator answers UNKNOWN for a batch holding a value its column cannot
                    // take; BigQuery answers INVALID_ARGUMENT. Either way: the content.
                    Code::InvalidArgument | Code::Unknown => {
                        AppendFailure::Rejected(format!("{code}: {message}"))
                    }
                    Code::Unavailable
                    | Code::DeadlineExceeded
                    | Code::ResourceExhausted
                    | Code::Aborted
                    | Code::Internal
                    | Code::Cancelled => AppendFailure::Retryable { code, message },
                    _ => AppendFailure::Infrastructure { code, message },
                }
            }
            // No status: the request never got an answer (connection refused, reset, timeout).
            None => AppendFailure::Retryable {
                code: "TRANSPORT".into(),
                message: source.to_string(),
            },
        },
        AppendError::UnexpectedEndOfStream => AppendFailure::Retryable {
            code: "END_OF_STREAM".into(),
            message: "the AppendRows stream closed unexpectedly".into(),
        },
        other => AppendFailure::Retryable {
            code: "OTHER".into(),
            message: other.to_string(),
        },
    }
}

/// The Storage Write API client, shared by every table the service writes to.
pub struct WriteClient(Write);

impl WriteClient {
    pub async fn connect(gcp: &GcpSettings) -> anyhow::Result<Self> {
        let b = configured!(Write::builder(), &gcp.bigquery_write_endpoint, gcp);
        Ok(WriteClient(b.build().await?))
    }

    /// Opens the table's default stream. Makes no request: a missing table shows on the first
    /// append, as an infrastructure failure.
    pub async fn open(&self, table: &TableRef, columns: &[Column]) -> anyhow::Result<TableWriter> {
        let schema = ArrowSchema::new().set_serialized_schema(serialized_schema(columns));
        let writer = self
            .0
            .open_default_stream(table.write_api_name())
            // The sink has its own retry loop with backoff, metrics and readiness: the client
            // makes one attempt, so every failure is seen (and counted) there.
            .with_retry_policy(RetryableErrors.with_attempt_limit(1))
            // A stalled AppendRows stream is abandoned (and the append retried) after this.
            .with_attempt_timeout(Duration::from_secs(30))
            .build_arrow(schema)
            .await?;
        Ok(TableWriter {
            table: table.clone(),
            writer,
        })
    }
}

/// A table's default stream, Arrow rows.
pub struct TableWriter {
    table: TableRef,
    writer: DefaultWriter<Arrow>,
}

impl TableWriter {
    pub fn table(&self) -> &TableRef {
        &self.table
    }

    pub async fn append(&self, record_batch: Bytes) -> Result<(), AppendFailure> {
        let rows = ArrowRecordBatch::new().set_serialized_record_batch(record_batch);
        self.writer
            .append(rows)
            .send()
            .await
            .map(|_| ())
            .map_err(classify)
    }
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

    #[test]
    fn classes_status_codes() {
        assert_eq!(
            classify(rpc(Code::Unknown)),
            AppendFailure::Rejected("UNKNOWN: m".into())
        );
        assert!(matches!(
            classify(rpc(Code::InvalidArgument)),
            AppendFailure::Rejected(_)
        ));
        for c in [
            Code::Unavailable,
            Code::ResourceExhausted,
            Code::DeadlineExceeded,
        ] {
            assert!(matches!(classify(rpc(c)), AppendFailure::Retryable { .. }));
        }
        let f = classify(rpc(Code::NotFound));
        assert_eq!(f.code(), "NOT_FOUND");
        assert!(matches!(f, AppendFailure::Infrastructure { .. }));
        assert!(matches!(
            classify(rpc(Code::PermissionDenied)),
            AppendFailure::Infrastructure { .. }
        ));
        assert!(matches!(
            classify(AppendError::UnexpectedEndOfStream),
            AppendFailure::Retryable { .. }
        ));
    }

    #[test]
    fn code_names_are_screaming_snake() {
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
        assert_eq!(code_name(Code::Unavailable), "UNAVAILABLE");
    }
}
