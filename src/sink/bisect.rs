//! Writing a part of a batch to one table, and deciding who a refusal blames. Rows BigQuery
//! names are *row* refusals. A refusal of a whole append is the *content* only once the table
//! is seen taking rows after it — a sibling part, or any other append, lands — and the part
//! is then split in halves until each refused row is alone. A refusal that no landing follows
//! (the batch's halves are refused too) is the *table*: it halts, nothing is blamed on the
//! rows, and the part waits, leased, until the table takes rows again.

use super::ObjectSink;
use super::append::Outcome;
use super::destination::Destination;
use super::part::Part;
use crate::pipeline::Ack;
use crate::pipeline::backoff::Backoff;
use arrow_schema::ArrowError;
use bytes::Bytes;
use std::collections::HashMap;
use std::time::Duration;

/// Why BigQuery refused one row.
pub(super) enum Blame {
    /// It named the row (row errors).
    Named(String),
    /// It refused an append holding only this row, while the table took others.
    Alone(String),
}

/// What a lane (ingest or dead-letter rows) does with its outcomes.
pub(super) trait Lane<R> {
    fn destination(&self) -> &Destination;
    fn encode(&self, rows: &[R]) -> Result<Bytes, ArrowError>;
    /// The rows landed.
    fn landed(&self, part: Part<R>);
    /// BigQuery refused this row for its content.
    fn refused(&self, row: R, ack: Ack, blame: Blame);
}

impl ObjectSink {
    /// Writes `part` through `lane` until every row landed or was refused for its content, or
    /// the drain deadline passed (what is left stays unacknowledged).
    pub(super) async fn write<R: Send, L: Lane<R> + Sync>(&self, lane: &L, part: Part<R>) {
        let dest = lane.destination();
        let wait = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        // `refused_at`: landings counted at the batch's first refusal; a landing after it
        // proves the table takes rows. `split`: the batch was already halved once without it.
        let mut refused_at: Option<u64> = None;
        let mut waits: u32 = 0;
        let mut pending = vec![(part, false)];
        while let Some((part, split)) = pending.pop() {
            let outcome = self
                .append(dest, part.len(), || lane.encode(&part.rows))
                .await;
            let why = match outcome {
                Outcome::Written => {
                    lane.landed(part);
                    continue;
                }
                Outcome::Rows(named) => {
                    let rest = blame_named(lane, part, named);
                    if !rest.rows.is_empty() {
                        pending.push((rest, split));
                    }
                    continue;
                }
                Outcome::GaveUp => {
                    tracing::warn!(object = %self.object, table = %dest.name(), rows = part.len(),
                        "drain deadline passed before the append landed; messages left for redelivery");
                    return;
                }
                Outcome::Refused(why) => why,
            };
            let mark = *refused_at.get_or_insert_with(|| dest.landings());
            let table_takes_rows = dest.landings() > mark;
            if table_takes_rows && part.len() == 1 {
                for (row, ack) in part.into_pairs() {
                    lane.refused(row, ack, Blame::Alone(why.clone()));
                }
            } else if table_takes_rows || (!split && part.len() > 1) {
                tracing::debug!(object = %self.object, rows = part.len(),
                    "append refused; splitting to find whom it blames");
                let (a, b) = part.split();
                pending.push((b, true));
                pending.push((a, true));
            } else {
                // Refused, and nothing landed since: the table refuses every row.
                self.metrics.retry(dest.kind, "INVALID_ARGUMENT");
                dest.halt("refuses every row (INVALID_ARGUMENT)", &why)
                    .await;
                waits = waits.saturating_add(1);
                tokio::select! {
                    _ = tokio::time::sleep(wait.delay(waits)) => {}
                    _ = self.shutdown.gave_up() => return,
                }
                pending.push((part, split));
            }
        }
    }
}

/// Hands the rows BigQuery named to the lane as refused; returns the others.
fn blame_named<R, L: Lane<R>>(lane: &L, part: Part<R>, named: Vec<(usize, String)>) -> Part<R> {
    let mut named: HashMap<usize, String> = named.into_iter().collect();
    let mut rest = Vec::new();
    for (i, (row, ack)) in part.into_pairs().enumerate() {
        match named.remove(&i) {
            Some(msg) => lane.refused(row, ack, Blame::Named(msg)),
            None => rest.push((row, ack)),
        }
    }
    Part::from_pairs(rest)
}
