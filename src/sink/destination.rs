//! One table as the sink sees it: where its appends go ([`TableIo`]), the evidence that it
//! takes rows (the newest append that landed, numbered in the order appends were sent), and
//! its state — ok, degraded (failing in a way that may pass) or halted (the table itself
//! cannot take rows) — as readiness, the `mesh_ingest_destination_state` gauge and the log
//! report it. The log speaks once per change of state, not per retry; readiness names the
//! table and the class, never upstream text. While a table is not ok and no rows are being
//! written to it, [`Destination::watch`] reads it again on a timer, so it returns to ok (or
//! shows what is wrong) without waiting for traffic.

use super::writer::AppendFailure;
use crate::health::{ObjectHealth, Part, Reporter};
use crate::shutdown::Shutdown;
use crate::tables::{ExistingColumn, SchemaDifference, TableKind, compare};
use bytes::Bytes;
use futures::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// What the sink needs of a table: append Arrow rows, read its columns. BigQuery's Storage
/// Write API and `tables.get` in production (`writer::BigQueryTable`), a script in tests.
pub trait TableIo: Send + Sync {
    /// `project.dataset.table`, for logs and readiness.
    fn name(&self) -> String;
    /// Appends one serialised Arrow record batch of `rows` rows.
    fn append(&self, batch: Bytes, rows: usize) -> BoxFuture<'_, Result<(), AppendFailure>>;
    /// The table's columns as BigQuery has them.
    fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, ReadError>>;
}

/// Why a table's columns could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The table does not exist: a fault of the table.
    NotFound,
    /// We may not read it (the upstream message): a fault of the table's permissions.
    PermissionDenied(String),
    /// No answer, or an answer that says nothing about the table (the upstream message).
    Unreachable(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotFound => f.write_str("the table does not exist"),
            ReadError::PermissionDenied(m) => write!(f, "permission denied: {m}"),
            ReadError::Unreachable(m) => write!(f, "unreachable: {m}"),
        }
    }
}

/// A destination's state; the gauge's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Ok = 0,
    Degraded = 1,
    Halted = 2,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Degraded => "degraded",
            State::Halted => "halted",
        }
    }
}

/// How often a failing table's schema is read again (one `tables.get`).
const SCHEMA_CHECK_INTERVAL: Duration = Duration::from_secs(30);

/// How often a table that is not ok, and that no rows are being written to, is read again.
pub const RECHECK_INTERVAL: Duration = Duration::from_secs(15);

pub struct Destination {
    pub kind: TableKind,
    object: String,
    io: Arc<dyn TableIo>,
    /// Appends sent so far; each append is numbered by this count when it is sent.
    sent: AtomicU64,
    /// The highest number of an append that landed (0: none yet).
    proven: AtomicU64,
    /// Parts being written: while any is, their appends' outcomes set the state.
    writing: AtomicUsize,
    reporter: Reporter,
    last_schema_check: Mutex<Option<Instant>>,
    /// The first difference the last schema check found.
    drift: Mutex<Option<String>>,
    health: Arc<ObjectHealth>,
}

/// Counts a part as being written for as long as it lives.
pub struct Writing<'a>(&'a AtomicUsize);

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Destination {
    /// A table not yet read: degraded ("not checked yet") until [`Destination::watch`] has read
    /// it or an append has landed, so readiness never claims a table it has not seen.
    pub fn new(
        kind: TableKind,
        object: &str,
        io: Arc<dyn TableIo>,
        health: Arc<ObjectHealth>,
        gauge: Gauge,
    ) -> Self {
        let part = match kind {
            TableKind::Ingest => Part::Ingest,
            TableKind::DeadLetter => Part::DeadLetter,
        };
        let cause = "not checked yet";
        let problem = problem(kind, &io.name(), State::Degraded, cause);
        let initial = (State::Degraded as i64, State::Degraded.as_str(), cause);
        Destination {
            kind,
            object: object.to_string(),
            reporter: Reporter::new(health.clone(), part, gauge, initial, problem),
            io,
            sent: AtomicU64::new(0),
            proven: AtomicU64::new(0),
            writing: AtomicUsize::new(0),
            last_schema_check: Mutex::new(None),
            drift: Mutex::new(None),
            health,
        }
    }

    pub fn name(&self) -> String {
        self.io.name()
    }

    /// Marks a refusal seen now: every append sent so far was sent before it.
    pub fn refusal_mark(&self) -> u64 {
        self.sent.load(Ordering::Acquire)
    }

    /// Whether an append sent after the refusal marked `mark` has landed: only that proves
    /// the table takes rows now (an append sent before it may land late, from before a drift).
    pub fn proven_since(&self, mark: u64) -> bool {
        self.proven.load(Ordering::Acquire) > mark
    }

    pub fn state(&self) -> State {
        match self.reporter.status().value {
            0 => State::Ok,
            1 => State::Degraded,
            _ => State::Halted,
        }
    }

    /// Counts a part as being written until the guard drops.
    pub fn writing(&self) -> Writing<'_> {
        self.writing.fetch_add(1, Ordering::AcqRel);
        Writing(&self.writing)
    }

    /// One append attempt; a landing (or row errors: the table judged rows one by one) marks
    /// the table as taking rows.
    pub async fn append(&self, batch: Bytes, rows: usize) -> Result<(), AppendFailure> {
        let number = self.sent.fetch_add(1, Ordering::AcqRel) + 1;
        let result = self.io.append(batch, rows).await;
        self.health.progressed();
        if matches!(result, Ok(()) | Err(AppendFailure::Rows(_))) {
            self.proven.fetch_max(number, Ordering::AcqRel);
            self.set(State::Ok, "", "");
        }
        result
    }

    /// Records a new state. `cause` is our wording (readiness shows it); `upstream` is
    /// BigQuery's message, logged once with the change, never shown on /readyz.
    pub fn set(&self, state: State, cause: &str, upstream: &str) {
        self.set_unless_changed(state, cause, upstream, None);
    }

    fn set_unless_changed(&self, state: State, cause: &str, upstream: &str, since: Option<u64>) {
        let table = self.io.name();
        let problem = problem(self.kind, &table, state, cause);
        let new = (state as i64, state.as_str(), cause);
        let Some(was) = self.reporter.set(new, problem, since) else {
            return;
        };
        let (object, kind, was) = (&self.object, self.kind.as_str(), was.name);
        match state {
            State::Ok => tracing::info!(object, table, kind, was, "destination takes rows"),
            State::Degraded => tracing::warn!(
                object,
                table,
                kind,
                cause,
                error = upstream,
                "destination degraded: appends are retried, messages stay unacknowledged"
            ),
            State::Halted => tracing::error!(
                object,
                table,
                kind,
                cause,
                error = upstream,
                "destination halted: nothing is acknowledged or dead-lettered for it until it takes rows again"
            ),
        }
    }

    /// Reads the table's schema (unless `force`, at most every 30 s) and compares it with
    /// what mesh-ingest writes; `None` when skipped or unreadable. Differences are logged by
    /// column.
    pub async fn check_schema(&self, force: bool) -> Option<Vec<SchemaDifference>> {
        {
            let mut last = self.last_schema_check.lock().expect("check lock");
            if !force && last.is_some_and(|t| t.elapsed() < SCHEMA_CHECK_INTERVAL) {
                return None;
            }
            *last = Some(Instant::now());
        }
        self.read_schema().await.ok()
    }

    /// Reads the table's schema and compares it with what mesh-ingest writes; remembers the
    /// first difference for the halt's cause.
    async fn read_schema(&self) -> Result<Vec<SchemaDifference>, ReadError> {
        match self.io.columns().await {
            Ok(columns) => {
                let differences = compare(self.kind.layout().columns, &columns);
                *self.drift.lock().expect("drift lock") =
                    differences.first().map(|d| d.to_string());
                for d in &differences {
                    tracing::error!(object = %self.object, table = %self.io.name(),
                        difference = %d, "the table's schema differs from what mesh-ingest writes");
                }
                Ok(differences)
            }
            Err(e) => {
                tracing::warn!(object = %self.object, table = %self.io.name(), error = %e,
                    "cannot read the table's schema");
                Err(e)
            }
        }
    }

    /// Halts the table for a fault of its own; the cause names the schema difference when
    /// the last check found one.
    pub async fn halt(&self, cause: &str, upstream: &str) {
        // Entering the halt is worth a fresh look at the table; staying in it is not.
        self.check_schema(self.state() != State::Halted).await;
        self.halt_as_checked(cause, upstream);
    }

    /// Halts the table, naming the difference the last schema check found, if any (for a
    /// caller that has just checked).
    pub fn halt_as_checked(&self, cause: &str, upstream: &str) {
        let drift = self.drift.lock().expect("drift lock").clone();
        let cause = match drift {
            Some(d) => format!("schema drift: {d}"),
            None => cause.to_string(),
        };
        self.set(State::Halted, &cause, upstream);
    }

    /// Reads the table at once, then every `interval` while it is not ok and no rows are being
    /// written to it (their appends set the state then), until the drain begins. What a read
    /// finds becomes the state unless an append changed it meanwhile.
    pub async fn watch(self: Arc<Self>, interval: Duration, shutdown: Shutdown) {
        let mut first = true;
        loop {
            let idle = self.writing.load(Ordering::Acquire) == 0;
            if first || (idle && self.state() != State::Ok) {
                self.recheck().await;
            }
            first = false;
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.stopped_pulling() => return,
            }
        }
    }

    /// One read of the table: ok when it exists and its schema fits what mesh-ingest writes.
    async fn recheck(&self) {
        let before = self.reporter.status().changes;
        let (state, cause, upstream) = match self.read_schema().await {
            Ok(d) if d.is_empty() => (State::Ok, String::new(), String::new()),
            Ok(d) => (
                State::Halted,
                format!("schema drift: {}", d[0]),
                String::new(),
            ),
            Err(ReadError::NotFound) => (State::Halted, "NOT_FOUND".into(), String::new()),
            Err(ReadError::PermissionDenied(m)) => (State::Halted, "PERMISSION_DENIED".into(), m),
            Err(ReadError::Unreachable(m)) => (State::Degraded, "unreachable".into(), m),
        };
        *self.last_schema_check.lock().expect("check lock") = Some(Instant::now());
        self.set_unless_changed(state, &cause, &upstream, Some(before));
    }
}

/// What readiness shows for a table in `state` (`None` when it takes rows).
fn problem(kind: TableKind, table: &str, state: State, cause: &str) -> Option<String> {
    (state != State::Ok).then(|| {
        format!(
            "{} table {table} {} ({cause})",
            kind.as_str(),
            state.as_str()
        )
    })
}
