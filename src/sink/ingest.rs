//! Ingest rows: append a batch; on row errors dead-letter exactly the rows BigQuery named and
//! append the rest again; on a refusal of the whole append split it in halves until the
//! refused rows are alone, so their siblings still land.

use super::ObjectSink;
use super::append::Outcome;
use super::arrow_rows;
use super::part::Part;
use crate::pipeline::clock::now_us;
use crate::pipeline::{DeadLetterRow, IngestRow, ReasonCode};
use crate::tables::TableKind;
use std::collections::HashMap;

impl ObjectSink {
    /// Appends rows to the ingest table; refused rows go to the dead-letter table.
    pub(super) async fn write_rows(&self, part: Part<IngestRow>) {
        let mut pending = vec![part];
        while let Some(part) = pending.pop() {
            let outcome = match arrow_rows::encode_ingest(&part.rows, &self.subscription, now_us())
            {
                Ok(bytes) => self.append(TableKind::Ingest, part.len(), bytes).await,
                Err(e) => Outcome::Rejected(format!("arrow encoding failed: {e}")),
            };
            match outcome {
                Outcome::Written => self.written(part),
                Outcome::RowErrors(errors) => {
                    let bad: HashMap<usize, String> = errors
                        .into_iter()
                        .filter(|(i, _)| *i < part.len())
                        .collect();
                    if bad.is_empty() {
                        // Errors that name no row of ours: find the culprit by splitting.
                        let why = "row errors without valid row indexes".to_string();
                        self.reject_or_split(part, why, &mut pending).await;
                    } else {
                        let good = self.dead_letter_named(part, &bad).await;
                        if !good.rows.is_empty() {
                            pending.push(good);
                        }
                    }
                }
                Outcome::Rejected(why) => self.reject_or_split(part, why, &mut pending).await,
                Outcome::GaveUp => {
                    tracing::warn!(object = %self.object, rows = part.len(),
                        "drain deadline passed before the append landed; messages left for redelivery");
                }
            }
        }
    }

    /// The rows landed: record their lag and acknowledge them.
    fn written(&self, part: Part<IngestRow>) {
        let now = now_us();
        for row in &part.rows {
            if let Some(p) = row.publish_time_us {
                self.metrics.lag.observe((now - p).max(0) as f64 / 1e6);
            }
        }
        self.metrics.written.inc_by(part.len() as u64);
        self.ack_all(part.acks);
    }

    /// Dead-letters the rows named in `bad`; returns the others, to append again.
    async fn dead_letter_named(
        &self,
        part: Part<IngestRow>,
        bad: &HashMap<usize, String>,
    ) -> Part<IngestRow> {
        let mut good = Vec::new();
        let mut dead = Vec::new();
        for (i, (row, ack)) in part.into_pairs().enumerate() {
            match bad.get(&i) {
                Some(msg) => dead.push((
                    self.dead_letter_row(
                        row,
                        ReasonCode::BigqueryRowError,
                        format!("BigQuery refused the row: {msg}"),
                    ),
                    ack,
                )),
                None => good.push((row, ack)),
            }
        }
        self.write_dead_letters(Part::from_pairs(dead)).await;
        Part::from_pairs(good)
    }

    /// A refused append of one row dead-letters that row; a larger one is split in halves so
    /// the good rows still land.
    async fn reject_or_split(
        &self,
        part: Part<IngestRow>,
        why: String,
        pending: &mut Vec<Part<IngestRow>>,
    ) {
        if part.len() > 1 {
            tracing::debug!(object = %self.object, rows = part.len(), "append refused; splitting to isolate the refused rows");
            let (a, b) = part.split();
            pending.push(b);
            pending.push(a);
            return;
        }
        let dead = part
            .into_pairs()
            .map(|(row, ack)| {
                let reason = format!("BigQuery refused an append holding only this row: {why}");
                (
                    self.dead_letter_row(row, ReasonCode::BigqueryRejected, reason),
                    ack,
                )
            })
            .collect();
        self.write_dead_letters(Part::from_pairs(dead)).await;
    }

    fn dead_letter_row(&self, row: IngestRow, code: ReasonCode, reason: String) -> DeadLetterRow {
        row.into_dead_letter(code, reason, self.max_dead_letter_data_bytes)
    }
}
