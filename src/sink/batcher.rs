//! The sink's loop: items from the bounded channel go into one batch per table; a batch that
//! is full, or whose oldest row has waited `max_delay_ms`, becomes an append task. At most
//! `max_in_flight` append tasks run at once: waiting for one is the backpressure.

use super::ObjectSink;
use super::part::Part;
use crate::batch::{Batch, BatchLimits};
use crate::configuration::BatchSettings;
use crate::pipeline::{Ack, Decoded};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The append tasks of one sink, and the permits that bound them.
struct Appends {
    permits: Arc<Semaphore>,
    tasks: JoinSet<()>,
}

impl Appends {
    /// Closes `batch` into an append task running `write`; waits for a permit first.
    async fn flush<R, F, Fut>(&mut self, batch: &mut Batch<(R, Ack)>, write: F)
    where
        F: FnOnce(Part<R>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        if batch.is_empty() {
            return;
        }
        let part = Part::from_pairs(batch.take());
        // Waiting for a permit is the backpressure: the channel fills, sources block, and
        // Pub/Sub flow control stops delivery. Memory stays bounded while BigQuery is slow.
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("never closed");
        let task = write(part);
        self.tasks.spawn(async move {
            task.await;
            drop(permit);
        });
        while self.tasks.try_join_next().is_some() {}
    }
}

/// Adds `item` to `batch`, flushing before (it would not fit) and after (the batch is full).
async fn add<R, F, Fut>(
    appends: &mut Appends,
    batch: &mut Batch<(R, Ack)>,
    item: (R, Ack),
    weight: usize,
    write: F,
) where
    F: Fn(Part<R>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    if !batch.fits(weight) {
        appends.flush(batch, &write).await;
    }
    batch.push(item, weight, Instant::now());
    if batch.is_full() {
        appends.flush(batch, &write).await;
    }
}

impl ObjectSink {
    /// Runs until every sender is gone and every append has finished.
    pub async fn run(self: Arc<Self>, mut rx: mpsc::Receiver<Decoded>, settings: BatchSettings) {
        let limits = BatchLimits::from(&settings);
        let mut rows = Batch::new(limits);
        let mut rejected = Batch::new(limits);
        let mut appends = Appends {
            permits: Arc::new(Semaphore::new(settings.max_in_flight)),
            tasks: JoinSet::new(),
        };
        let write_rows = |part| {
            let sink = self.clone();
            async move { sink.write_rows(part).await }
        };
        let write_dead_letters = |part| {
            let sink = self.clone();
            async move { sink.write_dead_letters(part).await }
        };

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
                        appends.flush(&mut rows, write_rows).await;
                    }
                    if rejected.deadline().is_some_and(|d| d <= now) {
                        appends.flush(&mut rejected, write_dead_letters).await;
                    }
                    continue;
                }
            };
            self.metrics.channel_depth.set(rx.len() as i64);
            match item {
                Some(Decoded::Row(row, ack)) => {
                    let w = row.approx_bytes();
                    add(&mut appends, &mut rows, (row, ack), w, write_rows).await;
                }
                Some(Decoded::Rejected(row, ack)) => {
                    let w = row.approx_bytes();
                    add(
                        &mut appends,
                        &mut rejected,
                        (row, ack),
                        w,
                        write_dead_letters,
                    )
                    .await;
                }
                None => break,
            }
        }
        // Sources are gone (drain): flush what is left and wait for every append.
        appends.flush(&mut rows, write_rows).await;
        appends.flush(&mut rejected, write_dead_letters).await;
        while appends.tasks.join_next().await.is_some() {}
        self.metrics.channel_depth.set(0);
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
