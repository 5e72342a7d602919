//! The sink of one object: takes decoded rows from the bounded channel, batches them, appends
//! them to BigQuery and acknowledges each message once its row (or dead-letter row) is
//! confirmed. Rows BigQuery refuses are dead-lettered one by one; the rest of their batch lands.
//!
//! One job per file: `batcher` (channel → batches → append tasks), `append` (one append with
//! retries), `ingest` (ingest rows, bisecting refused appends), `dead_letter` (dead-letter
//! rows), `writer` (a table's Storage Write stream and its error classes), `arrow_rows` (the
//! row format).

mod append;
pub mod arrow_rows;
mod batcher;
mod dead_letter;
mod ingest;
mod part;
pub mod writer;

use crate::health::ObjectHealth;
use crate::pipeline::Ack;
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::ObjectMetrics;
use std::sync::Arc;
use writer::TableWriter;

/// Everything one object's sink writes with.
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
