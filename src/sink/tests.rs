//! The sink's error model against scripted tables, in paused time (so a two-hour outage
//! takes milliseconds): who a refusal blames, what a table fault does, and that the
//! dead-letter table cannot hold valid rows back.

use super::ObjectSink;
use super::arrow_rows::serialized_schema;
use super::budget::AppendBudget;
use super::destination::{Destination, RECHECK_INTERVAL, ReadError, TableIo};
use super::writer::AppendFailure;
use crate::configuration::BatchSettings;
use crate::health::Health;
use crate::pipeline::{
    Ack, Acknowledge, DeadLetterRow, Decoded, InFlightGauges, IngestRow, ReasonCode,
};
use crate::shutdown::Shutdown;
use crate::tables::{ExistingColumn, TableKind};
use crate::telemetry::metrics::Metrics;
use arrow_array::{Array, StringArray};
use bytes::Bytes;
use futures::future::BoxFuture;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// How a scripted table answers an append of these message ids at this (virtual) time.
type Answer = Box<dyn Fn(&[String], Instant) -> Result<(), AppendFailure> + Send + Sync>;

/// How long a scripted table takes to answer an append of these message ids.
type Delay = fn(&[String]) -> Duration;

struct ScriptedTable {
    kind: TableKind,
    answer: Answer,
    delay: Delay,
    /// Message ids of the rows that landed, in order.
    landed: Mutex<Vec<String>>,
}

impl TableIo for ScriptedTable {
    fn name(&self) -> String {
        format!("p.d.{}", self.kind.as_str())
    }

    fn append(&self, batch: Bytes, rows: usize) -> BoxFuture<'_, Result<(), AppendFailure>> {
        let ids = message_ids(self.kind, &batch);
        assert_eq!(ids.len(), rows);
        let delay = (self.delay)(&ids);
        let result = (self.answer)(&ids, Instant::now());
        if result.is_ok() {
            self.landed.lock().unwrap().extend(ids);
        }
        Box::pin(async move {
            tokio::time::sleep(delay).await;
            result
        })
    }

    /// Exactly the columns mesh-ingest writes: the table fits.
    fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, ReadError>> {
        let columns = self.kind.layout().columns.iter();
        let columns = columns.map(|c| ExistingColumn {
            name: c.name.to_string(),
            type_name: c.kind.bigquery_name().to_string(),
            mode: if c.required { "REQUIRED" } else { "NULLABLE" }.to_string(),
        });
        let columns = columns.collect();
        Box::pin(async { Ok(columns) })
    }
}

fn message_ids(kind: TableKind, batch: &[u8]) -> Vec<String> {
    let mut stream = serialized_schema(kind.layout().columns).to_vec();
    stream.extend_from_slice(batch);
    let reader = arrow_ipc::reader::StreamReader::try_new(&stream[..], None).unwrap();
    let mut ids = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let c = b.column_by_name("message_id").unwrap();
        let c = c.as_any().downcast_ref::<StringArray>().unwrap();
        ids.extend((0..c.len()).map(|i| c.value(i).to_string()));
    }
    ids
}

/// Records acknowledgements by message id.
struct Recorder(String, Arc<Mutex<Vec<String>>>);

impl Acknowledge for Recorder {
    fn ack(self: Box<Self>) {
        self.1.lock().unwrap().push(self.0);
    }
}

struct Harness {
    ingest: Arc<ScriptedTable>,
    dead_letter: Arc<ScriptedTable>,
    acked: Arc<Mutex<Vec<String>>>,
    health: Arc<Health>,
    metrics: Arc<Metrics>,
    /// The object's in-flight gauges, which the watchdog reads.
    in_flight: InFlightGauges,
    tx: mpsc::Sender<Decoded>,
}

fn failure(code: &str) -> AppendFailure {
    let (code, message) = (code.to_string(), "scripted".to_string());
    match code.as_str() {
        "INVALID_ARGUMENT" => AppendFailure::Refused { code, message },
        "PERMISSION_DENIED" | "NOT_FOUND" => AppendFailure::Table { code, message },
        _ => AppendFailure::Transient { code, message },
    }
}

fn start(ingest: Answer, dead_letter: Answer) -> Harness {
    start_with_delay(ingest, dead_letter, |_| Duration::ZERO)
}

/// As [`start`], with the ingest table answering each append after `delay`.
fn start_with_delay(ingest: Answer, dead_letter: Answer, delay: Delay) -> Harness {
    let metrics = Arc::new(Metrics::new());
    let object = metrics.object("order");
    let health = Health::new();
    let in_flight = InFlightGauges::default();
    let object_health = health.register("order", 0, in_flight.messages.clone());
    let table = |kind, answer, delay| {
        Arc::new(ScriptedTable {
            kind,
            answer,
            delay,
            landed: Mutex::new(Vec::new()),
        })
    };
    let (ingest, dead_letter) = (
        table(TableKind::Ingest, ingest, delay),
        table(TableKind::DeadLetter, dead_letter, |_| Duration::ZERO),
    );
    let dest = |t: &Arc<ScriptedTable>| {
        let io: Arc<dyn TableIo> = t.clone();
        let state = object.destination_state(t.kind);
        let dest = Arc::new(Destination::new(
            t.kind,
            "order",
            io,
            object_health.clone(),
            state,
        ));
        tokio::spawn(dest.clone().watch(RECHECK_INTERVAL, Shutdown::new()));
        dest
    };
    let sink = Arc::new(ObjectSink {
        object: "order".into(),
        subscription: "s".into(),
        ingest: dest(&ingest),
        dead_letter: dest(&dead_letter),
        max_dead_letter_data_bytes: 1024,
        appends: AppendBudget::new(16 << 20).for_object(),
        metrics: object,
        shutdown: Shutdown::new(),
    });
    let (tx, rx) = mpsc::channel(1000);
    let settings = BatchSettings {
        max_rows: 10,
        max_bytes: 1 << 20,
        max_delay_ms: 100,
        max_in_flight: 2,
    };
    tokio::spawn(sink.run(rx, settings));
    Harness {
        ingest,
        dead_letter,
        acked: Arc::default(),
        health,
        metrics,
        in_flight,
        tx,
    }
}

impl Harness {
    fn ack(&self, id: &str) -> Ack {
        let recorder = Recorder(id.to_string(), self.acked.clone());
        Ack::new(Box::new(recorder), &self.in_flight, 1)
    }

    async fn row(&self, id: &str) {
        let row = IngestRow {
            event_id: format!("e-{id}").into(),
            event_source: None,
            event_type: "OrderUpdated".into(),
            event_time_us: 1,
            object_id: Some("o".into()),
            payload: Bytes::from_static(b"{}"),
            attributes: Default::default(),
            message_id: id.into(),
            publish_time_us: Some(1),
            ordering_key: None,
            delivery_attempt: None,
            replayed_at_us: None,
            raw: Bytes::from_static(b"{}"),
        };
        let ack = self.ack(id);
        self.tx.send(Decoded::Row(row, ack)).await.unwrap();
    }

    async fn rejected(&self, id: &str) {
        let row = DeadLetterRow {
            message_id: id.into(),
            publish_time_us: None,
            attributes_json: "{}".into(),
            data: Bytes::from_static(b"not json"),
            reason_code: ReasonCode::MalformedJson,
            reason: "body is not valid JSON".into(),
            event_id: None,
            delivery_attempt: None,
        };
        let ack = self.ack(id);
        self.tx.send(Decoded::Rejected(row, ack)).await.unwrap();
    }

    fn acked(&self) -> BTreeSet<String> {
        self.acked.lock().unwrap().iter().cloned().collect()
    }

    fn landed(table: &ScriptedTable) -> Vec<String> {
        table.landed.lock().unwrap().clone()
    }

    /// Waits (virtual time) until `n` messages are acknowledged.
    async fn until_acked(&self, n: usize, within: Duration) {
        let start = Instant::now();
        while self.acked.lock().unwrap().len() < n {
            assert!(
                start.elapsed() < within,
                "{} of {n} acked",
                self.acked().len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn ids(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("m-{i}")).collect()
}

#[tokio::test(start_paused = true)]
async fn a_table_that_refuses_every_row_halts_and_blames_no_row() {
    // Schema drift: every append refused as malformed for ten minutes, then fixed.
    let t0 = Instant::now();
    let h = start(
        Box::new(move |_, now| {
            if now < t0 + Duration::from_secs(600) {
                Err(failure("INVALID_ARGUMENT"))
            } else {
                Ok(())
            }
        }),
        Box::new(|_, _| Ok(())),
    );
    for id in ids(0..25) {
        h.row(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(h.acked().is_empty(), "nothing acknowledged while halted");
    assert!(Harness::landed(&h.dead_letter).is_empty(), "no row blamed");
    let ready = h.health.readiness().unwrap_err();
    assert!(
        ready[0].contains("ingest table p.d.ingest halted"),
        "{ready:?}"
    );
    assert!(
        h.metrics
            .render()
            .contains(r#"mesh_ingest_destination_state{object="order",table="ingest"} 2"#)
    );
    h.until_acked(25, Duration::from_secs(900)).await;
    let landed: BTreeSet<String> = Harness::landed(&h.ingest).into_iter().collect();
    assert_eq!(landed, ids(0..25).into_iter().collect());
    assert!(Harness::landed(&h.dead_letter).is_empty());
    assert!(h.health.readiness().is_ok(), "resumed by itself");
}

#[tokio::test(start_paused = true)]
async fn a_late_landing_sent_before_a_drift_proves_nothing() {
    // An append sent before the table drifted lands 5 s later, after the first refusal of
    // the rows sent since. Only a landing sent after a refusal proves that the table takes
    // rows: here none can, so the table halts and no valid row is dead-lettered.
    let t0 = Instant::now();
    let drift = t0 + Duration::from_millis(50);
    let fixed = t0 + Duration::from_secs(600);
    let h = start_with_delay(
        Box::new(move |_, now| {
            if (drift..fixed).contains(&now) {
                Err(failure("INVALID_ARGUMENT"))
            } else {
                Ok(())
            }
        }),
        Box::new(|_, _| Ok(())),
        |ids| {
            if ids[0].starts_with("slow") {
                Duration::from_secs(5)
            } else {
                Duration::ZERO
            }
        },
    );
    let slow: Vec<String> = (0..10).map(|i| format!("slow-{i}")).collect();
    for id in &slow {
        h.row(id).await;
    }
    tokio::time::sleep(Duration::from_millis(60)).await;
    for id in ids(0..10) {
        h.row(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert_eq!(
        h.acked(),
        slow.iter().cloned().collect(),
        "only the late landing"
    );
    assert!(
        Harness::landed(&h.dead_letter).is_empty(),
        "no valid row blamed"
    );
    let ready = h.health.readiness().unwrap_err();
    assert!(
        ready[0].contains("ingest table p.d.ingest halted"),
        "{ready:?}"
    );
    h.until_acked(20, Duration::from_secs(900)).await;
    assert!(Harness::landed(&h.dead_letter).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_table_fails_liveness_once_the_stall_timeout_passed() {
    use crate::http::{HttpState, router};
    use tower::ServiceExt;
    // The table takes the appends and never answers: nothing fails, so readiness stays
    // green; only the watchdog can see that nothing moves.
    let h = start_with_delay(Box::new(|_, _| Ok(())), Box::new(|_, _| Ok(())), |_| {
        Duration::from_secs(24 * 3600)
    });
    let health = h.health.clone();
    tokio::spawn(async move {
        loop {
            health.watch_progress();
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    let healthz = |h: &Harness| {
        let app = router(HttpState {
            health: h.health.clone(),
            metrics: h.metrics.clone(),
        });
        let request = axum::http::Request::get("/healthz").body(axum::body::Body::empty());
        async move { app.oneshot(request.unwrap()).await.unwrap().status() }
    };
    tokio::time::sleep(Duration::from_secs(400)).await;
    assert_eq!(
        healthz(&h).await,
        200,
        "nothing held: alive however long idle"
    );
    for id in ids(0..5) {
        h.row(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(290)).await;
    assert!(
        h.health.readiness().is_ok(),
        "a hanging table fails nothing"
    );
    assert_eq!(healthz(&h).await, 200, "within the stall timeout");
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_eq!(
        healthz(&h).await,
        503,
        "held, and no append finished for 300 s"
    );
    let stuck = h.health.liveness().unwrap_err();
    assert!(
        stuck[0].starts_with("order: 5 message(s) held"),
        "{stuck:?}"
    );
}

/// A table that refuses any append holding one of `bad`, and takes every other.
fn refusing(bad: &'static [&'static str]) -> Answer {
    Box::new(move |ids, _| {
        if ids.iter().any(|id| bad.contains(&id.as_str())) {
            Err(failure("INVALID_ARGUMENT"))
        } else {
            Ok(())
        }
    })
}

/// Sends rows `m-0`…`m-{n-1}` to a table [`refusing`] `bad`, and checks that all are
/// acknowledged soon, the `bad` ones dead-lettered, every other landed once.
async fn only_refused_rows_are_dead_lettered(n: usize, bad: &'static [&'static str]) -> Harness {
    let h = start(refusing(bad), Box::new(|_, _| Ok(())));
    for id in ids(0..n) {
        h.row(&id).await;
    }
    h.until_acked(n, Duration::from_secs(60)).await;
    let mut dead = Harness::landed(&h.dead_letter);
    dead.sort();
    assert_eq!(dead, bad);
    let mut landed = Harness::landed(&h.ingest);
    landed.sort();
    let mut want: Vec<String> = ids(0..n)
        .into_iter()
        .filter(|i| !bad.contains(&i.as_str()))
        .collect();
    want.sort();
    assert_eq!(landed, want, "each valid row once");
    assert!(h.health.readiness().is_ok());
    h
}

#[tokio::test(start_paused = true)]
async fn a_refused_row_is_dead_lettered_alone_once_its_siblings_land() {
    let h = only_refused_rows_are_dead_lettered(20, &["m-7"]).await;
    assert!(h.metrics.render().contains(
        r#"mesh_ingest_rows_dead_lettered_total{object="order",reason_code="bigquery_rejected"} 1"#
    ));
}

#[tokio::test(start_paused = true)]
async fn a_refused_row_in_the_first_half_of_the_last_batch_does_not_hold_its_siblings() {
    // One batch and nothing after it: the half holding m-1 is refused before anything has
    // landed. Its sibling half must still be tried (its landing is the proof that the table
    // takes rows), not wait behind it for a landing that only it could bring.
    only_refused_rows_are_dead_lettered(10, &["m-1"]).await;
}

#[tokio::test(start_paused = true)]
async fn refused_rows_in_both_halves_are_each_dead_lettered_alone() {
    only_refused_rows_are_dead_lettered(10, &["m-0", "m-9"]).await;
}

#[tokio::test(start_paused = true)]
async fn nine_refused_rows_of_ten_are_found_by_the_one_that_lands() {
    // Halving four times without proof reaches single rows in a 10-row batch: the one valid
    // row lands alone, and that landing blames the nine.
    const BAD: &[&str] = &[
        "m-0", "m-1", "m-2", "m-3", "m-4", "m-5", "m-6", "m-7", "m-8",
    ];
    only_refused_rows_are_dead_lettered(10, BAD).await;
}

#[tokio::test(start_paused = true)]
async fn permission_denied_for_two_hours_loses_nothing_and_dead_letters_nothing() {
    // Longer than the Pub/Sub client's default maximum lease (one hour): the sink keeps the
    // messages for as long as the outage lasts (the source's lease is `max_lease_secs`).
    let t0 = Instant::now();
    let h = start(
        Box::new(move |_, now| {
            if now < t0 + Duration::from_secs(2 * 3600) {
                Err(failure("PERMISSION_DENIED"))
            } else {
                Ok(())
            }
        }),
        Box::new(|_, _| Ok(())),
    );
    for id in ids(0..10) {
        h.row(&id).await;
    }
    tokio::time::sleep(Duration::from_secs(2 * 3600 - 60)).await;
    assert!(h.acked().is_empty());
    assert!(Harness::landed(&h.dead_letter).is_empty());
    let ready = h.health.readiness().unwrap_err();
    assert_eq!(
        ready,
        ["order: ingest table p.d.ingest halted (PERMISSION_DENIED)"]
    );
    h.until_acked(10, Duration::from_secs(3600)).await;
    assert_eq!(Harness::landed(&h.ingest).len(), 10, "each row once");
    assert!(Harness::landed(&h.dead_letter).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failing_dead_letter_table_does_not_hold_valid_rows() {
    let t0 = Instant::now();
    let h = start(
        Box::new(|_, _| Ok(())),
        Box::new(move |_, now| {
            if now < t0 + Duration::from_secs(600) {
                Err(failure("PERMISSION_DENIED"))
            } else {
                Ok(())
            }
        }),
    );
    // First the rejected messages: their appends fail and retry, holding whatever they hold.
    for i in (0..60).filter(|i| i % 2 == 0) {
        h.rejected(&format!("m-{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for i in (0..60).filter(|i| i % 2 != 0) {
        h.row(&format!("m-{i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    // More dead-letter batches than appends may be in flight: none of them may take a
    // permit the valid rows need.
    let valid: BTreeSet<String> = (0..60)
        .filter(|i| i % 2 != 0)
        .map(|i| format!("m-{i}"))
        .collect();
    assert_eq!(
        h.acked(),
        valid,
        "valid rows acknowledged during the outage"
    );
    h.until_acked(60, Duration::from_secs(1200)).await;
    let mut dead = Harness::landed(&h.dead_letter);
    dead.sort();
    let mut want: Vec<String> = (0..60)
        .filter(|i| i % 2 == 0)
        .map(|i| format!("m-{i}"))
        .collect();
    want.sort();
    assert_eq!(dead, want, "each rejected message once, after the outage");
}
