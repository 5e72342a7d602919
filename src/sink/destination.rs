//! One table as the sink sees it: where its appends go ([`TableIo`]), the evidence that it
//! takes rows (a count of appends that landed), and its state — ok, degraded (failing in a way
//! that may pass) or halted (the table itself cannot take rows) — as readiness, the
//! `mesh_ingest_destination_state` gauge and the log report it. The log speaks once per change
//! of state, not per retry; readiness names the table and the class, never upstream text.

use super::writer::AppendFailure;
use crate::health::ObjectHealth;
use crate::tables::{ExistingColumn, SchemaDifference, TableKind, compare};
use bytes::Bytes;
use futures::future::BoxFuture;
use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicU64, Ordering};
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
    fn columns(&self) -> BoxFuture<'_, Result<Vec<ExistingColumn>, String>>;
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

pub struct Destination {
    pub kind: TableKind,
    object: String,
    io: Arc<dyn TableIo>,
    landings: AtomicU64,
    status: Mutex<(State, String)>,
    last_schema_check: Mutex<Option<Instant>>,
    /// The first difference the last schema check found.
    drift: Mutex<Option<String>>,
    health: Arc<ObjectHealth>,
    gauge: Gauge,
}

impl Destination {
    pub fn new(
        kind: TableKind,
        object: &str,
        io: Arc<dyn TableIo>,
        health: Arc<ObjectHealth>,
        gauge: Gauge,
    ) -> Self {
        gauge.set(State::Ok as i64);
        Destination {
            kind,
            object: object.to_string(),
            io,
            landings: AtomicU64::new(0),
            status: Mutex::new((State::Ok, String::new())),
            last_schema_check: Mutex::new(None),
            drift: Mutex::new(None),
            health,
            gauge,
        }
    }

    pub fn name(&self) -> String {
        self.io.name()
    }

    /// Appends that landed since start: a refusal followed by a landing means the table takes
    /// rows, so the refusal was about the refused rows.
    pub fn landings(&self) -> u64 {
        self.landings.load(Ordering::Acquire)
    }

    pub fn state(&self) -> State {
        self.status.lock().expect("status lock").0
    }

    /// One append attempt; a landing (or row errors: the table judged rows one by one) marks
    /// the table as taking rows.
    pub async fn append(&self, batch: Bytes, rows: usize) -> Result<(), AppendFailure> {
        let result = self.io.append(batch, rows).await;
        if matches!(result, Ok(()) | Err(AppendFailure::Rows(_))) {
            self.landings.fetch_add(1, Ordering::AcqRel);
            self.set(State::Ok, "", "");
        }
        result
    }

    /// Records a new state. `cause` is our wording (readiness shows it); `upstream` is
    /// BigQuery's message, logged once with the change, never shown on /readyz.
    pub fn set(&self, state: State, cause: &str, upstream: &str) {
        let mut status = self.status.lock().expect("status lock");
        if status.0 == state && status.1 == cause {
            return;
        }
        let was = status.0;
        *status = (state, cause.to_string());
        drop(status);
        self.gauge.set(state as i64);
        let problem = (state != State::Ok).then(|| format!("{} ({cause})", state.as_str()));
        self.health
            .set_destination(self.kind, &self.io.name(), problem);
        let (object, table, kind) = (&self.object, self.io.name(), self.kind.as_str());
        match state {
            State::Ok => tracing::info!(
                object,
                table,
                kind,
                was = was.as_str(),
                "destination takes rows again"
            ),
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
        match self.io.columns().await {
            Ok(columns) => {
                let differences = compare(self.kind.layout().columns, &columns);
                *self.drift.lock().expect("drift lock") =
                    differences.first().map(|d| d.to_string());
                for d in &differences {
                    tracing::error!(object = %self.object, table = %self.io.name(),
                        difference = %d, "the table's schema differs from what mesh-ingest writes");
                }
                Some(differences)
            }
            Err(e) => {
                tracing::warn!(object = %self.object, table = %self.io.name(), error = %e,
                    "cannot read the table's schema");
                None
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
}
