//! The sink of one object: takes decoded rows from the bounded channel, batches them, appends
//! them to BigQuery and acknowledges each message once its row (or dead-letter row) is
//! confirmed. Rows BigQuery refuses are dead-lettered one by one; the rest of their batch lands.

pub mod arrow_rows;
pub mod schema;
pub mod writer;

use crate::ack::Ack;
use crate::batch::{Batch, BatchLimits};
use crate::configuration::BatchSettings;
use crate::envelope::{DeadLetterRow, IngestRow, ReasonCode};
use crate::health::ObjectHealth;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::{ObjectMetrics, TableKind};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;
use writer::{AppendFailure, TableWriter};

/// What a source hands the sink: a row to append, or a message to dead-letter.
#[derive(Debug)]
pub enum Inbound {
    Row(IngestRow, Ack),
    Rejected(DeadLetterRow, Ack),
}

/// Rows of one append and the acknowledgements they release, index for index.
struct Part<R> {
    rows: Vec<R>,
    acks: Vec<Ack>,
}

impl<R> Part<R> {
    fn from_pairs(pairs: Vec<(R, Ack)>) -> Self {
        let (rows, acks) = pairs.into_iter().unzip();
        Part { rows, acks }
    }

    fn split(self) -> (Part<R>, Part<R>) {
        let mid = self.rows.len() / 2;
        let mut rows = self.rows;
        let mut acks = self.acks;
        let rows_b = rows.split_off(mid);
        let acks_b = acks.split_off(mid);
        (
            Part { rows, acks },
            Part {
                rows: rows_b,
                acks: acks_b,
            },
        )
    }
}

/// How an append ended, after retries.
enum Outcome {
    Written,
    RowErrors(Vec<(usize, String)>),
    Rejected(String),
    /// The drain deadline passed: the rows stay unacknowledged and Pub/Sub redelivers them.
    GaveUp,
}

pub struct ObjectSink {
    pub object: String,
    pub subscription: String,
    pub ingest: TableWriter,
    pub dead_letter: TableWriter,
    pub max_dead_letter_data_bytes: usize,
    pub metrics: ObjectMetrics,
    pub health: Arc<ObjectHealth>,
    pub shutdown: Shutdown,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Exponential backoff with jitter: 100 ms doubling to 10 s for transient failures, to 60 s
/// for infrastructure ones.
fn backoff(attempt: u32, infrastructure: bool) -> Duration {
    let cap_ms: u64 = if infrastructure { 60_000 } else { 10_000 };
    let base = 100u64.saturating_mul(1u64 << attempt.min(16)).min(cap_ms);
    // Jitter from the clock's sub-second part: enough to de-synchronise retrying writers.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0) as u64;
    Duration::from_millis(base / 2 + (nanos % 1000) * base / 2000)
}

impl ObjectSink {
    /// Runs until every sender is gone and every append has finished.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Inbound>, settings: BatchSettings) {
        let limits = BatchLimits::from(&settings);
        let mut rows: Batch<(IngestRow, Ack)> = Batch::new(limits);
        let mut rejected: Batch<(DeadLetterRow, Ack)> = Batch::new(limits);
        let permits = Arc::new(Semaphore::new(settings.max_in_flight));
        let mut appends = JoinSet::new();

        loop {
            let deadline = match (rows.deadline(), rejected.deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let item = tokio::select! {
                biased;
                item = rx.recv() => item,
                _ = sleep_until_opt(deadline) => {
                    let now = Instant::now();
                    if rows.deadline().is_some_and(|d| d <= now) {
                        self.flush_rows(&mut rows, &permits, &mut appends).await;
                    }
                    if rejected.deadline().is_some_and(|d| d <= now) {
                        self.flush_rejected(&mut rejected, &permits, &mut appends).await;
                    }
                    continue;
                }
            };
            self.metrics.channel_depth.set(rx.len() as i64);
            let Some(item) = item else { break };
            let now = Instant::now();
            match item {
                Inbound::Row(row, ack) => {
                    let w = row.approx_bytes();
                    if !rows.fits(w) {
                        self.flush_rows(&mut rows, &permits, &mut appends).await;
                    }
                    rows.push((row, ack), w, now);
                    if rows.is_full() {
                        self.flush_rows(&mut rows, &permits, &mut appends).await;
                    }
                }
                Inbound::Rejected(row, ack) => {
                    let w = row.approx_bytes();
                    if !rejected.fits(w) {
                        self.flush_rejected(&mut rejected, &permits, &mut appends)
                            .await;
                    }
                    rejected.push((row, ack), w, now);
                    if rejected.is_full() {
                        self.flush_rejected(&mut rejected, &permits, &mut appends)
                            .await;
                    }
                }
            }
        }
        // Sources are gone (drain): flush what is left and wait for every append.
        self.flush_rows(&mut rows, &permits, &mut appends).await;
        self.flush_rejected(&mut rejected, &permits, &mut appends)
            .await;
        while appends.join_next().await.is_some() {}
        self.metrics.channel_depth.set(0);
    }

    async fn flush_rows(
        self: &Arc<Self>,
        batch: &mut Batch<(IngestRow, Ack)>,
        permits: &Arc<Semaphore>,
        appends: &mut JoinSet<()>,
    ) {
        if batch.is_empty() {
            return;
        }
        let part = Part::from_pairs(batch.take());
        // Waiting for a permit is the backpressure: the channel fills, sources block, and
        // Pub/Sub flow control stops delivery. Memory stays bounded while BigQuery is slow.
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let sink = self.clone();
        appends.spawn(async move {
            sink.write_rows(part).await;
            drop(permit);
        });
        while appends.try_join_next().is_some() {}
    }

    async fn flush_rejected(
        self: &Arc<Self>,
        batch: &mut Batch<(DeadLetterRow, Ack)>,
        permits: &Arc<Semaphore>,
        appends: &mut JoinSet<()>,
    ) {
        if batch.is_empty() {
            return;
        }
        let part = Part::from_pairs(batch.take());
        let permit = permits.clone().acquire_owned().await.expect("never closed");
        let sink = self.clone();
        appends.spawn(async move {
            sink.write_dead_letters(part).await;
            drop(permit);
        });
        while appends.try_join_next().is_some() {}
    }

    /// Appends rows to the ingest table; refused rows go to the dead-letter table.
    async fn write_rows(&self, part: Part<IngestRow>) {
        let mut pending = vec![part];
        while let Some(part) = pending.pop() {
            let encoded = arrow_rows::encode_ingest(&part.rows, &self.subscription, now_us());
            let outcome = match encoded {
                Ok(bytes) => self.append(TableKind::Ingest, part.rows.len(), bytes).await,
                Err(e) => Outcome::Rejected(format!("arrow encoding failed: {e}")),
            };
            match outcome {
                Outcome::Written => {
                    let now = now_us();
                    for row in &part.rows {
                        if let Some(p) = row.publish_time_us {
                            self.metrics.lag.observe((now - p).max(0) as f64 / 1e6);
                        }
                    }
                    self.metrics.written.inc_by(part.rows.len() as u64);
                    self.ack_all(part.acks);
                }
                Outcome::RowErrors(errors) => {
                    let bad: HashMap<usize, String> = errors
                        .into_iter()
                        .filter(|(i, _)| *i < part.rows.len())
                        .collect();
                    if bad.is_empty() {
                        // Errors that name no row of ours: find the culprit by splitting.
                        self.reject_or_split(
                            part,
                            "row errors without valid row indexes".into(),
                            &mut pending,
                        )
                        .await;
                        continue;
                    }
                    let mut good = Part {
                        rows: Vec::new(),
                        acks: Vec::new(),
                    };
                    let mut dead = Vec::new();
                    for (i, (row, ack)) in part.rows.into_iter().zip(part.acks).enumerate() {
                        match bad.get(&i) {
                            Some(msg) => dead.push((
                                row.into_dead_letter(
                                    ReasonCode::BigqueryRowError,
                                    format!("BigQuery refused the row: {msg}"),
                                    self.max_dead_letter_data_bytes,
                                ),
                                ack,
                            )),
                            None => {
                                good.rows.push(row);
                                good.acks.push(ack);
                            }
                        }
                    }
                    self.write_dead_letters(Part::from_pairs(dead)).await;
                    if !good.rows.is_empty() {
                        pending.push(good);
                    }
                }
                Outcome::Rejected(why) => self.reject_or_split(part, why, &mut pending).await,
                Outcome::GaveUp => {
                    tracing::warn!(object = %self.object, rows = part.rows.len(),
                        "drain deadline passed before the append landed; messages left for redelivery");
                }
            }
        }
    }

    /// A refused append of one row dead-letters that row; a larger one is split in halves so
    /// the good rows still land.
    async fn reject_or_split(
        &self,
        part: Part<IngestRow>,
        why: String,
        pending: &mut Vec<Part<IngestRow>>,
    ) {
        if part.rows.len() > 1 {
            tracing::debug!(object = %self.object, rows = part.rows.len(), "append refused; splitting to isolate the refused rows");
            let (a, b) = part.split();
            pending.push(b);
            pending.push(a);
            return;
        }
        let dead: Vec<(DeadLetterRow, Ack)> = part
            .rows
            .into_iter()
            .zip(part.acks)
            .map(|(row, ack)| {
                (
                    row.into_dead_letter(
                        ReasonCode::BigqueryRejected,
                        format!("BigQuery refused an append holding only this row: {why}"),
                        self.max_dead_letter_data_bytes,
                    ),
                    ack,
                )
            })
            .collect();
        self.write_dead_letters(Part::from_pairs(dead)).await;
    }

    /// Appends dead-letter rows. Boxed: a refused dead-letter append is split recursively.
    fn write_dead_letters(
        &self,
        part: Part<DeadLetterRow>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if part.rows.is_empty() {
                return;
            }
            let encoded = arrow_rows::encode_dead_letter(&part.rows, &self.subscription, now_us());
            let outcome = match encoded {
                Ok(bytes) => {
                    self.append(TableKind::DeadLetter, part.rows.len(), bytes)
                        .await
                }
                Err(e) => Outcome::Rejected(format!("arrow encoding failed: {e}")),
            };
            match outcome {
                Outcome::Written => {
                    for row in &part.rows {
                        self.metrics.dead_lettered(row.reason_code);
                        tracing::warn!(object = %self.object, message_id = %row.message_id,
                            reason_code = %row.reason_code, "message dead-lettered");
                        tracing::debug!(object = %self.object, message_id = %row.message_id,
                            reason = %row.reason, "dead-letter reason");
                    }
                    self.ack_all(part.acks);
                }
                Outcome::RowErrors(_) | Outcome::Rejected(_) if part.rows.len() > 1 => {
                    let (a, b) = part.split();
                    self.write_dead_letters(a).await;
                    self.write_dead_letters(b).await;
                }
                Outcome::RowErrors(_) | Outcome::Rejected(_) => {
                    // Nowhere left to put it: leave it unacknowledged, so Pub/Sub redelivers it
                    // (and, with a dead-letter policy on the subscription, parks it there).
                    let row = &part.rows[0];
                    tracing::error!(object = %self.object, message_id = %row.message_id,
                        reason_code = %row.reason_code,
                        "the dead-letter table refused this message; it stays unacknowledged");
                }
                Outcome::GaveUp => {
                    tracing::warn!(object = %self.object, rows = part.rows.len(),
                        "drain deadline passed before the dead-letter append landed; messages left for redelivery");
                }
            }
        })
    }

    fn ack_all(&self, acks: Vec<Ack>) {
        let n = acks.len() as u64;
        for a in acks {
            a.ack();
        }
        self.metrics.acked.inc_by(n);
    }

    /// One append, retried with backoff while the failure is transient or infrastructural,
    /// until it lands, is refused for its content, or the drain deadline passes.
    async fn append(&self, table: TableKind, rows: usize, bytes: Bytes) -> Outcome {
        let writer = match table {
            TableKind::Ingest => &self.ingest,
            TableKind::DeadLetter => &self.dead_letter,
        };
        let dead_letter = table == TableKind::DeadLetter;
        let mut attempt: u32 = 0;
        loop {
            let started = Instant::now();
            let result = tokio::select! {
                r = writer.append(bytes.clone()) => r,
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            };
            let failure = match result {
                Ok(()) => {
                    self.health.writer_ok(dead_letter);
                    self.metrics
                        .append(table, rows, bytes.len(), started.elapsed().as_secs_f64());
                    return Outcome::Written;
                }
                Err(AppendFailure::RowErrors(e)) => {
                    self.health.writer_ok(dead_letter);
                    return Outcome::RowErrors(e);
                }
                Err(AppendFailure::Rejected(why)) => {
                    self.health.writer_ok(dead_letter);
                    return Outcome::Rejected(why);
                }
                Err(f) => f,
            };
            let infrastructure = matches!(failure, AppendFailure::Infrastructure { .. });
            self.metrics.retry(table, failure.code());
            let (code, message) = match &failure {
                AppendFailure::Retryable { code, message }
                | AppendFailure::Infrastructure { code, message } => {
                    (code.as_str(), message.as_str())
                }
                _ => ("", ""),
            };
            self.health
                .writer_failing(dead_letter, format!("{code}: {message}"));
            if attempt.is_multiple_of(10) {
                let level_error = infrastructure;
                if level_error {
                    tracing::error!(object = %self.object, table = %writer.table(), code, error = message, attempt,
                        "append failing for a reason no row is to blame for; retrying, messages stay unacknowledged");
                } else {
                    tracing::warn!(object = %self.object, table = %writer.table(), code, error = message, attempt,
                        "append failed; retrying");
                }
            }
            let delay = backoff(attempt, infrastructure);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.gave_up() => return Outcome::GaveUp,
            }
        }
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let first = backoff(0, false);
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let late = backoff(30, false);
        assert!(late <= Duration::from_secs(10) && late >= Duration::from_secs(5));
        assert!(backoff(30, true) >= Duration::from_secs(30));
    }

    #[test]
    fn parts_split_rows_and_acks_together() {
        let p = Part::from_pairs((0..5).map(|i| (i, Ack::detached())).collect());
        let (a, b) = p.split();
        assert_eq!(a.rows, vec![0, 1]);
        assert_eq!(b.rows, vec![2, 3, 4]);
        assert_eq!(a.acks.len(), 2);
        assert_eq!(b.acks.len(), 3);
    }
}
