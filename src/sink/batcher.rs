//! The sink's loop: items from the bounded channel go into one batch per table; a batch that
//! is full, or whose oldest row has waited `max_delay_ms`, becomes an append task. Each table
//! has its own budget of `max_in_flight` appends. Waiting for an ingest permit is the
//! backpressure (the channel fills, Pub/Sub flow control stops delivery); dead-letter tasks
//! wait for their permits themselves, so a failing dead-letter table never holds valid rows.
//! Rows refused by the ingest table come back through an internal dead-letter lane.

use super::ObjectSink;
use super::ingest::DeadLetters;
use super::part::Part;
use crate::batch::{Batch, BatchLimits};
use crate::configuration::BatchSettings;
use crate::pipeline::{Ack, DeadLetterRow, Decoded, IngestRow};
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The open batches of one sink, their permits and the append tasks.
struct Batcher {
    sink: Arc<ObjectSink>,
    rows: Batch<(IngestRow, Ack)>,
    rejected: Batch<(DeadLetterRow, Ack)>,
    ingest_permits: Arc<Semaphore>,
    dead_letter_permits: Arc<Semaphore>,
    /// Rows refused by the ingest table, on their way to the dead-letter batch. Dropped when
    /// the channel closes, so the lane ends once the last ingest task has finished.
    dead_letters: Option<DeadLetters>,
    tasks: JoinSet<()>,
}

impl Batcher {
    /// Closes the row batch into an ingest task, once one of the table's permits is free.
    async fn flush_rows(&mut self) {
        if self.rows.is_empty() {
            return;
        }
        let part = Part::from_pairs(self.rows.take());
        let permit = self
            .ingest_permits
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let sink = self.sink.clone();
        let lane = self
            .dead_letters
            .clone()
            .expect("rows are flushed before the lane closes");
        self.tasks.spawn(async move {
            sink.write_rows(part, lane).await;
            drop(permit);
        });
        self.reap();
    }

    /// Closes the dead-letter batch into a task that waits for its own permit.
    fn flush_rejected(&mut self) {
        if self.rejected.is_empty() {
            return;
        }
        let part = Part::from_pairs(self.rejected.take());
        let permits = self.dead_letter_permits.clone();
        let sink = self.sink.clone();
        self.tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            sink.write_dead_letters(part).await;
        });
        self.reap();
    }

    /// Collects finished tasks; a panicked one is logged (its messages were released).
    fn reap(&mut self) {
        while let Some(done) = self.tasks.try_join_next() {
            if let Err(e) = done {
                tracing::error!(object = %self.sink.object, error = %e,
                    "an append task failed; its messages were released for redelivery");
            }
        }
    }

    async fn add_row(&mut self, row: IngestRow, ack: Ack) {
        let w = row.approx_bytes();
        if !self.rows.fits(w) {
            self.flush_rows().await;
        }
        self.rows.push((row, ack), w, Instant::now());
        if self.rows.is_full() {
            self.flush_rows().await;
        }
    }

    fn add_rejected(&mut self, row: DeadLetterRow, ack: Ack) {
        let w = row.approx_bytes();
        if !self.rejected.fits(w) {
            self.flush_rejected();
        }
        self.rejected.push((row, ack), w, Instant::now());
        if self.rejected.is_full() {
            self.flush_rejected();
        }
    }

    /// Flushes every batch whose delay has passed; returns when the next one is due.
    async fn flush_due(&mut self) -> Option<Instant> {
        let now = Instant::now();
        if self.rejected.deadline().is_some_and(|d| d <= now) {
            self.flush_rejected();
        }
        if self.rows.deadline().is_some_and(|d| d <= now) {
            self.flush_rows().await;
        }
        match (self.rows.deadline(), self.rejected.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

impl ObjectSink {
    /// Runs until every sender is gone and every append has finished.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Decoded>, settings: BatchSettings) {
        let limits = BatchLimits::from(&settings);
        let (lane_tx, mut lane_rx) = mpsc::unbounded_channel();
        let mut b = Batcher {
            sink: self.clone(),
            rows: Batch::new(limits),
            rejected: Batch::new(limits),
            ingest_permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            dead_letter_permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            dead_letters: Some(lane_tx),
            tasks: JoinSet::new(),
        };
        let mut channel_open = true;
        loop {
            // Due batches first, on every turn: a channel that is never empty (a backlog) must
            // not keep a batch waiting past its delay.
            let next_due = b.flush_due().await;
            tokio::select! {
                biased;
                _ = sleep_until_opt(next_due) => {}
                refused = lane_rx.recv() => match refused {
                    Some((row, ack)) => b.add_rejected(row, ack),
                    // Every ingest task is done and the channel is closed.
                    None => break,
                },
                item = rx.recv(), if channel_open => {
                    self.metrics.channel_depth.set(rx.len() as i64);
                    match item {
                        Some(Decoded::Row(row, ack)) => b.add_row(row, ack).await,
                        Some(Decoded::Rejected(row, ack)) => b.add_rejected(row, ack),
                        None => {
                            // Sources are gone (drain): flush the rows, then close the lane.
                            channel_open = false;
                            b.flush_rows().await;
                            b.dead_letters = None;
                        }
                    }
                }
            }
        }
        b.flush_rejected();
        while let Some(done) = b.tasks.join_next().await {
            if let Err(e) = done {
                tracing::error!(object = %self.object, error = %e, "an append task failed");
            }
        }
        self.metrics.channel_depth.set(0);
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
