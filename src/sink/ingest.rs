//! The ingest lane: rows that land are acknowledged at once; rows BigQuery refuses for their
//! content go to the dead-letter lane (never waited for here, so a failing dead-letter table
//! cannot hold valid rows back).

use super::ObjectSink;
use super::arrow_rows;
use super::bisect::{Blame, Lane};
use super::destination::Destination;
use super::part::Part;
use crate::pipeline::clock::now_us;
use crate::pipeline::{Ack, DeadLetterRow, IngestRow, ReasonCode};
use arrow_schema::ArrowError;
use bytes::Bytes;
use tokio::sync::mpsc;

/// Where refused ingest rows go: the sink's dead-letter lane.
pub(super) type DeadLetters = mpsc::UnboundedSender<(DeadLetterRow, Ack)>;

pub(super) struct IngestLane<'a> {
    pub sink: &'a ObjectSink,
    pub dead_letters: DeadLetters,
}

impl Lane<IngestRow> for IngestLane<'_> {
    fn destination(&self) -> &Destination {
        &self.sink.ingest
    }

    fn weight(&self, rows: &[IngestRow]) -> usize {
        rows.iter().map(IngestRow::approx_bytes).sum()
    }

    fn encode(&self, rows: &[IngestRow]) -> Result<Bytes, ArrowError> {
        arrow_rows::encode_ingest(rows, &self.sink.subscription, now_us())
    }

    fn landed(&self, part: Part<IngestRow>) {
        let now = now_us();
        for row in &part.rows {
            if let Some(p) = row.publish_time_us {
                self.sink.metrics.lag.observe((now - p).max(0) as f64 / 1e6);
            }
        }
        self.sink.metrics.written.inc_by(part.len() as u64);
        self.sink.ack_all(part.acks);
    }

    fn refused(&self, row: IngestRow, ack: Ack, blame: Blame) {
        let (code, reason) = match blame {
            Blame::Named(msg) => (
                ReasonCode::BigqueryRowError,
                format!("BigQuery refused the row: {msg}"),
            ),
            Blame::Alone(why) => (
                ReasonCode::BigqueryRejected,
                format!("BigQuery refused an append holding only this row: {why}"),
            ),
        };
        let dead = row.into_dead_letter(code, reason, self.sink.max_dead_letter_data_bytes);
        // The lane lives as long as the sink's loop; if it is gone the message is released.
        let _ = self.dead_letters.send((dead, ack));
    }
}

impl ObjectSink {
    /// Appends rows to the ingest table; refused rows go to `dead_letters`.
    pub(super) async fn write_rows(&self, part: Part<IngestRow>, dead_letters: DeadLetters) {
        let lane = IngestLane {
            sink: self,
            dead_letters,
        };
        self.write(&lane, part).await;
    }
}
