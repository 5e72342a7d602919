//! Dead-letter rows: append them, then acknowledge their messages. A refused dead-letter
//! append is split like an ingest one; a single refused dead-letter row has nowhere left to
//! go and stays unacknowledged, so Pub/Sub redelivers it.

use super::ObjectSink;
use super::append::Outcome;
use super::arrow_rows;
use super::part::Part;
use crate::pipeline::DeadLetterRow;
use crate::pipeline::clock::now_us;
use crate::tables::TableKind;
use std::future::Future;
use std::pin::Pin;

impl ObjectSink {
    /// Appends dead-letter rows. Boxed: a refused dead-letter append is split recursively.
    pub(super) fn write_dead_letters(
        &self,
        part: Part<DeadLetterRow>,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(async move {
            if part.rows.is_empty() {
                return;
            }
            let encoded = arrow_rows::encode_dead_letter(&part.rows, &self.subscription, now_us());
            let outcome = match encoded {
                Ok(bytes) => self.append(TableKind::DeadLetter, part.len(), bytes).await,
                Err(e) => Outcome::Rejected(format!("arrow encoding failed: {e}")),
            };
            match outcome {
                Outcome::Written => self.dead_lettered(part),
                Outcome::RowErrors(_) | Outcome::Rejected(_) if part.len() > 1 => {
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
                    tracing::warn!(object = %self.object, rows = part.len(),
                        "drain deadline passed before the dead-letter append landed; messages left for redelivery");
                }
            }
        })
    }

    /// The dead-letter rows landed: count and log them (never their data), then acknowledge.
    fn dead_lettered(&self, part: Part<DeadLetterRow>) {
        for row in &part.rows {
            self.metrics.dead_lettered(row.reason_code);
            tracing::warn!(object = %self.object, message_id = %row.message_id,
                reason_code = %row.reason_code, "message dead-lettered");
            tracing::debug!(object = %self.object, message_id = %row.message_id,
                reason = %row.reason, "dead-letter reason");
        }
        self.ack_all(part.acks);
    }
}
