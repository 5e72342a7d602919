//! The dead-letter lane: dead-letter rows that land acknowledge their messages. A row the
//! dead-letter table refuses for its content has nowhere left to go: it stays unacknowledged,
//! so Pub/Sub redelivers it (and, with a dead-letter policy on the subscription, parks it).

use super::ObjectSink;
use super::arrow_rows;
use super::bisect::{Blame, Lane};
use super::destination::Destination;
use super::part::Part;
use crate::pipeline::clock::now_us;
use crate::pipeline::{Ack, DeadLetterRow};
use arrow_schema::ArrowError;
use bytes::Bytes;

impl Lane<DeadLetterRow> for ObjectSink {
    fn destination(&self) -> &Destination {
        &self.dead_letter
    }

    fn weight(&self, rows: &[DeadLetterRow]) -> usize {
        rows.iter().map(DeadLetterRow::approx_bytes).sum()
    }

    fn encode(&self, rows: &[DeadLetterRow]) -> Result<Bytes, ArrowError> {
        arrow_rows::encode_dead_letter(rows, &self.subscription, now_us())
    }

    /// Counts and logs the rows (never their data), then acknowledges them.
    fn landed(&self, part: Part<DeadLetterRow>) {
        for row in &part.rows {
            self.metrics.dead_lettered(row.reason_code);
            tracing::warn!(object = %self.object, message_id = %row.message_id,
                reason_code = %row.reason_code, "message dead-lettered");
            tracing::debug!(object = %self.object, message_id = %row.message_id,
                reason = %row.reason, "dead-letter reason");
        }
        self.ack_all(part.acks);
    }

    fn refused(&self, row: DeadLetterRow, ack: Ack, _blame: Blame) {
        tracing::error!(object = %self.object, message_id = %row.message_id,
            reason_code = %row.reason_code,
            "the dead-letter table refused this message; it stays unacknowledged");
        drop(ack);
    }
}

impl ObjectSink {
    /// Appends dead-letter rows, then acknowledges their messages.
    pub(super) async fn write_dead_letters(&self, part: Part<DeadLetterRow>) {
        self.write(self, part).await;
    }
}
