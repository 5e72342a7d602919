//! The sink of one object: takes decoded rows from the bounded channel, batches them, appends
//! them to BigQuery and acknowledges each message once its row (or dead-letter row) is
//! confirmed. Rows BigQuery refuses are dead-lettered one by one; the rest of their batch lands.
//! A fault of a table itself (missing, no permission, a schema that no longer fits) is never
//! blamed on rows: it halts that table, visibly, and nothing is acknowledged or dead-lettered
//! for it until the table takes rows again.
//!
//! One job per file: `batcher` (channel → batches → append tasks), `append` (one append with
//! retries), `bisect` (whom a refusal blames), `ingest` and `dead_letter` (the two lanes),
//! `budget` (the process-wide bytes of appends in flight), `destination` (a table's state
//! and evidence), `writer` (BigQuery: the Storage Write stream,
//! `tables.get`, the error classes), `arrow_rows` (the row format).

mod append;
pub mod arrow_rows;
mod batcher;
mod bisect;
pub mod budget;
mod dead_letter;
pub mod destination;
mod ingest;
mod part;
pub mod writer;

use crate::pipeline::Ack;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::ObjectMetrics;
use destination::Destination;
use std::sync::Arc;

/// Everything one object's sink writes with.
pub struct ObjectSink {
    pub object: String,
    pub subscription: String,
    pub ingest: Arc<Destination>,
    pub dead_letter: Arc<Destination>,
    pub max_dead_letter_data_bytes: usize,
    /// This object's share of the process-wide budget of appends in flight.
    pub appends: budget::ObjectAppendBudget,
    pub metrics: ObjectMetrics,
    pub shutdown: Shutdown,
}

impl ObjectSink {
    /// Acknowledges messages whose rows BigQuery confirmed.
    fn ack_all(&self, acks: Vec<Ack>) {
        let n = acks.len() as u64;
        for a in acks {
            a.ack();
        }
        self.metrics.acked.inc_by(n);
    }
}

#[cfg(test)]
mod tests;
