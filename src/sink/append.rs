//! One append, retried with backoff while the failure is transient or infrastructural, until
//! it lands, is refused for its content, or the drain deadline passes.

use super::ObjectSink;
use super::writer::AppendFailure;
use crate::pipeline::backoff::Backoff;
use crate::tables::TableKind;
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// How an append ended, after retries.
pub(super) enum Outcome {
    Written,
    /// BigQuery refused these rows (index in the append, message); none of the batch landed.
    RowErrors(Vec<(usize, String)>),
    /// The whole append was refused for its content.
    Rejected(String),
    /// The drain deadline passed: the rows stay unacknowledged and Pub/Sub redelivers them.
    GaveUp,
}

impl ObjectSink {
    pub(super) async fn append(&self, table: TableKind, rows: usize, bytes: Bytes) -> Outcome {
        let writer = match table {
            TableKind::Ingest => &self.ingest,
            TableKind::DeadLetter => &self.dead_letter,
        };
        let transient = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let infrastructure = Backoff::new(Duration::from_millis(100), Duration::from_secs(60));
        let mut failures: u32 = 0;
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                r = writer.append(bytes.clone()) => r,
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            };
            let (code, message, is_infrastructure) = match result {
                Ok(()) => {
                    self.health.writer_ok(table);
                    self.metrics
                        .append(table, rows, bytes.len(), started.elapsed().as_secs_f64());
                    return Outcome::Written;
                }
                Err(AppendFailure::RowErrors(e)) => {
                    self.health.writer_ok(table);
                    return Outcome::RowErrors(e);
                }
                Err(AppendFailure::Rejected(why)) => {
                    self.health.writer_ok(table);
                    return Outcome::Rejected(why);
                }
                Err(AppendFailure::Retryable { code, message }) => (code, message, false),
                Err(AppendFailure::Infrastructure { code, message }) => (code, message, true),
            };
            self.metrics.retry(table, &code);
            self.health
                .writer_failing(table, format!("{code}: {message}"));
            if failures.is_multiple_of(10) {
                if is_infrastructure {
                    tracing::error!(object = %self.object, table = %writer.table(), code, error = message, attempt = failures,
                        "append failing for a reason no row is to blame for; retrying, messages stay unacknowledged");
                } else {
                    tracing::warn!(object = %self.object, table = %writer.table(), code, error = message, attempt = failures,
                        "append failed; retrying");
                }
            }
            failures = failures.saturating_add(1);
            let policy = if is_infrastructure {
                &infrastructure
            } else {
                &transient
            };
            tokio::select! {
                _ = tokio::time::sleep(policy.delay(failures)) => {}
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            }
        }
    }
}
