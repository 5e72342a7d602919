//! One append, retried with backoff for as long as the failure is not a verdict on the rows:
//! a *transient* failure degrades the table, a *table* fault halts it; either way the messages
//! stay leased and unacknowledged. Returns once the rows landed, BigQuery judged them (row
//! errors, or a refusal of the whole append), or the drain deadline passed.

use super::ObjectSink;
use super::destination::{Destination, State};
use super::writer::AppendFailure;
use crate::pipeline::backoff::Backoff;
use arrow_schema::ArrowError;
use bytes::Bytes;
use std::time::Duration;
use tokio::time::Instant;

/// How an append ended.
pub(super) enum Outcome {
    Written,
    /// BigQuery refused these rows (index in the append, message); none of the batch landed.
    Rows(Vec<(usize, String)>),
    /// BigQuery refused the whole append as malformed (`CODE: message`).
    Refused(String),
    /// The drain deadline passed: the rows stay unacknowledged and Pub/Sub redelivers them.
    GaveUp,
}

/// Failed attempts in a row after which a transient failure also gets the table's schema
/// read: a proxy that hides the real error must not hide a drifted table.
const CHECK_SCHEMA_AFTER: u32 = 3;

impl ObjectSink {
    /// `weight` is the rows' share of the append budget (`budget`). `encode` serialises the rows; it runs again for every attempt, so that the rows'
    /// `ingested_at` is never older than one attempt when they land (the semantic layer's
    /// watermark relies on it).
    pub(super) async fn append(
        &self,
        dest: &Destination,
        rows: usize,
        weight: usize,
        encode: impl Fn() -> Result<Bytes, ArrowError>,
    ) -> Outcome {
        let transient = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let table_fault = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut failures: u32 = 0;
        loop {
            // Held while the attempt encodes and waits for BigQuery; given back before any
            // backoff, so a failing table does not keep memory others could append with.
            let budget = tokio::select! {
                p = self.appends.take(weight) => p,
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            };
            let bytes = match encode() {
                Ok(bytes) => bytes,
                Err(e) => return Outcome::Refused(format!("arrow encoding failed: {e}")),
            };
            let started = Instant::now();
            let result = tokio::select! {
                r = dest.append(bytes.clone(), rows) => r,
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            };
            let failure = match result {
                Ok(()) => {
                    let seconds = started.elapsed().as_secs_f64();
                    self.metrics.append(dest.kind, rows, bytes.len(), seconds);
                    return Outcome::Written;
                }
                Err(AppendFailure::Rows(named)) => return Outcome::Rows(named),
                Err(AppendFailure::Refused { code, message }) => {
                    return Outcome::Refused(format!("{code}: {message}"));
                }
                Err(f) => f,
            };
            failures = failures.saturating_add(1);
            self.metrics.retry(dest.kind, failure.code());
            let policy = match &failure {
                AppendFailure::Table { code, .. } => {
                    dest.halt(code, failure.message()).await;
                    &table_fault
                }
                _ => {
                    let drifted = failures >= CHECK_SCHEMA_AFTER
                        && dest
                            .check_schema(false)
                            .await
                            .is_some_and(|d| !d.is_empty());
                    if drifted {
                        dest.halt_as_checked(failure.code(), failure.message());
                    } else if dest.state() != State::Halted {
                        dest.set(State::Degraded, failure.code(), failure.message());
                    }
                    &transient
                }
            };
            drop(budget);
            tokio::select! {
                _ = tokio::time::sleep(policy.delay(failures)) => {}
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            }
        }
    }
}
