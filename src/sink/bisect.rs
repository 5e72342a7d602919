//! Writing a part of a batch to one table, and deciding who a refusal blames. Rows BigQuery
//! names are *row* refusals. A refusal of a whole append is the *content* only once the table
//! is seen taking rows after it — an append *sent after* the refusal (a sibling part, or any
//! other) lands; one sent before may land late, from before a drift, and proves nothing — and
//! the part is then split in halves until each refused row is alone. Before that proof a refused part
//! is halved at most `SPLITS_WITHOUT_PROOF` times, and every part is tried before any waits.
//! A refusal that no landing follows (every part is refused) is the *table*: it halts,
//! nothing is blamed on the rows, and the parts wait, leased, until the table takes rows
//! again.

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
    /// What the rows weigh in an append request (the batch limits' measure).
    fn weight(&self, rows: &[R]) -> usize;
    /// The rows landed.
    fn landed(&self, part: Part<R>);
    /// BigQuery refused this row for its content.
    fn refused(&self, row: R, ack: Ack, blame: Blame);
}

/// How many times a refused part is halved before anything has landed. A batch holding fewer
/// than 2^4 rows BigQuery refuses then always has a part that lands, which proves the table
/// takes rows; a table that refuses every row costs at most 31 appends per batch to see.
const SPLITS_WITHOUT_PROOF: u32 = 4;

impl ObjectSink {
    /// Writes `part` through `lane` until every row landed or was refused for its content, or
    /// the drain deadline passed (what is left stays unacknowledged).
    pub(super) async fn write<R: Send, L: Lane<R> + Sync>(&self, lane: &L, part: Part<R>) {
        let dest = lane.destination();
        let _writing = dest.writing();
        let wait = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        // The batch's first refusal, marked by the appends sent before it: a landing of one
        // sent after it proves that the table takes rows, so a refusal is the content's.
        let mut refused_at: Option<u64> = None;
        let mut waits: u32 = 0;
        // Each part with the number of splits made without that proof.
        let mut pending = vec![(part, 0)];
        // Parts refused before any proof, once they may not be split further: every other
        // part is tried first (its landing is the proof they wait for).
        let mut unproven: Vec<(Part<R>, u32)> = Vec::new();
        let mut last_refusal = String::new();
        loop {
            let Some((part, splits)) = pending.pop() else {
                if unproven.is_empty() {
                    return;
                }
                let table_takes_rows = refused_at.is_some_and(|mark| dest.proven_since(mark));
                if !table_takes_rows {
                    // Refused, and nothing landed since: the table refuses every row.
                    self.metrics.retry(dest.kind, "INVALID_ARGUMENT");
                    dest.halt("refuses every row (INVALID_ARGUMENT)", &last_refusal)
                        .await;
                    waits = waits.saturating_add(1);
                    tokio::select! {
                        _ = tokio::time::sleep(wait.delay(waits)) => {}
                        _ = self.shutdown.gave_up() => return,
                    }
                }
                pending.append(&mut unproven);
                continue;
            };
            let outcome = self
                .append(dest, part.len(), lane.weight(&part.rows), || {
                    lane.encode(&part.rows)
                })
                .await;
            let why = match outcome {
                Outcome::Written => {
                    lane.landed(part);
                    continue;
                }
                Outcome::Rows(named) => {
                    let rest = blame_named(lane, part, named);
                    if !rest.rows.is_empty() {
                        pending.push((rest, splits));
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
            let mark = *refused_at.get_or_insert_with(|| dest.refusal_mark());
            let table_takes_rows = dest.proven_since(mark);
            if table_takes_rows && part.len() == 1 {
                for (row, ack) in part.into_pairs() {
                    lane.refused(row, ack, Blame::Alone(why.clone()));
                }
            } else if table_takes_rows || (splits < SPLITS_WITHOUT_PROOF && part.len() > 1) {
                tracing::debug!(object = %self.object, rows = part.len(),
                    "append refused; splitting to find whom it blames");
                let (a, b) = part.split();
                pending.push((b, splits + 1));
                pending.push((a, splits + 1));
            } else {
                last_refusal = why;
                unproven.push((part, splits));
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
