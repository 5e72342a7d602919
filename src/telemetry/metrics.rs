//! Prometheus metrics, labelled by object. Hot-path handles are resolved once per object so
//! recording an event is an atomic add, not a label lookup.

use crate::pipeline::{InFlightGauges, ReasonCode};
use crate::tables::TableKind;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabel {
    object: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    object: String,
    reason_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    object: String,
    /// `ingest` or `dead_letter`.
    table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RetryLabels {
    object: String,
    table: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    object: String,
    /// `stream` or `sink`.
    task: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MajorLabels {
    object: String,
    major: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 1 ms … ~65 s
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

fn rows_histogram() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 17))
}

fn bytes_histogram() -> Histogram {
    // 256 B … 16 MiB
    Histogram::new(exponential_buckets(256.0, 2.0, 17))
}

/// Every metric mesh-ingest exports.
pub struct Metrics {
    registry: Registry,
    received: Family<ObjectLabel, Counter>,
    written: Family<ObjectLabel, Counter>,
    dead_lettered: Family<ReasonLabels, Counter>,
    acked: Family<ObjectLabel, Counter>,
    redelivered: Family<ObjectLabel, Counter>,
    schema_fetch_failures: Family<ObjectLabel, Counter>,
    retries: Family<RetryLabels, Counter>,
    append_latency: HistogramFamily<TableLabels>,
    batch_rows: HistogramFamily<TableLabels>,
    batch_bytes: HistogramFamily<TableLabels>,
    lag: HistogramFamily<ObjectLabel>,
    in_flight_messages: Family<ObjectLabel, Gauge>,
    in_flight_bytes: Family<ObjectLabel, Gauge>,
    channel_depth: Family<ObjectLabel, Gauge>,
    destination_state: Family<TableLabels, Gauge>,
    source_state: Family<ObjectLabel, Gauge>,
    task_restarts: Family<TaskLabels, Counter>,
    flow_limit_messages: Family<ObjectLabel, Gauge>,
    flow_limit_bytes: Family<ObjectLabel, Gauge>,
    freshness_slo: Family<ObjectLabel, Gauge>,
    sunset: Family<MajorLabels, Gauge>,
    ready: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("mesh_ingest");
        let m = Metrics {
            received: Family::default(),
            written: Family::default(),
            dead_lettered: Family::default(),
            acked: Family::default(),
            redelivered: Family::default(),
            schema_fetch_failures: Family::default(),
            retries: Family::default(),
            append_latency: Family::new_with_constructor(latency_histogram),
            batch_rows: Family::new_with_constructor(rows_histogram),
            batch_bytes: Family::new_with_constructor(bytes_histogram),
            lag: Family::new_with_constructor(latency_histogram),
            in_flight_messages: Family::default(),
            in_flight_bytes: Family::default(),
            channel_depth: Family::default(),
            destination_state: Family::default(),
            source_state: Family::default(),
            task_restarts: Family::default(),
            flow_limit_messages: Family::default(),
            flow_limit_bytes: Family::default(),
            freshness_slo: Family::default(),
            sunset: Family::default(),
            ready: Gauge::default(),
            registry: Registry::default(),
        };
        m.register(&mut registry);
        Metrics { registry, ..m }
    }

    fn register(&self, registry: &mut Registry) {
        let m = self;
        // Counters get their `_total` suffix from the library.
        registry.register(
            "messages_received",
            "Messages pulled from Pub/Sub",
            m.received.clone(),
        );
        registry.register(
            "rows_written",
            "Rows BigQuery confirmed in the ingest table",
            m.written.clone(),
        );
        registry.register(
            "rows_dead_lettered",
            "Rows BigQuery confirmed in the dead-letter table, by reason",
            m.dead_lettered.clone(),
        );
        registry.register(
            "messages_acked",
            "Messages acknowledged after their row was confirmed",
            m.acked.clone(),
        );
        registry.register(
            "redeliveries",
            "Messages received with delivery_attempt > 1",
            m.redelivered.clone(),
        );
        registry.register(
            "schema_fetch_failures",
            "Failed reads of a topic schema revision a message names (its messages wait)",
            m.schema_fetch_failures.clone(),
        );
        registry.register(
            "bigquery_retries",
            "Append attempts retried, by gRPC status code",
            m.retries.clone(),
        );
        registry.register(
            "append_latency_seconds",
            "Time from sending an append to its confirmation",
            m.append_latency.clone(),
        );
        registry.register("batch_rows", "Rows per append", m.batch_rows.clone());
        registry.register(
            "batch_bytes",
            "Arrow bytes per append",
            m.batch_bytes.clone(),
        );
        registry.register(
            "end_to_end_lag_seconds",
            "Time from Pub/Sub publish to the append confirmed",
            m.lag.clone(),
        );
        registry.register(
            "task_restarts",
            "Pipeline tasks restarted after a panic",
            m.task_restarts.clone(),
        );
        self.register_gauges(registry);
    }

    /// What the service holds and promises now: in flight, limits, states, readiness, build.
    fn register_gauges(&self, registry: &mut Registry) {
        let m = self;
        registry.register(
            "in_flight_messages",
            "Messages received and not yet acknowledged",
            m.in_flight_messages.clone(),
        );
        registry.register(
            "in_flight_bytes",
            "Bytes of messages received and not yet acknowledged",
            m.in_flight_bytes.clone(),
        );
        registry.register(
            "channel_depth",
            "Decoded rows waiting for the batcher",
            m.channel_depth.clone(),
        );
        registry.register(
            "destination_state",
            "State of each table: 0 ok, 1 degraded (retrying), 2 halted (the table cannot take rows)",
            m.destination_state.clone(),
        );
        registry.register(
            "source_state",
            "State of each object's Pub/Sub subscription, as a probe reads it every 10 s: 0 connected, 1 failing (unreachable, retrying), 2 not found, 3 permission denied",
            m.source_state.clone(),
        );
        registry.register(
            "flow_control_limit_messages",
            "Messages the object's streams may hold at most (streams × max_outstanding_messages)",
            m.flow_limit_messages.clone(),
        );
        registry.register(
            "flow_control_limit_bytes",
            "Bytes the object's streams may hold at most (streams × max_outstanding_bytes, after the process cap)",
            m.flow_limit_bytes.clone(),
        );
        registry.register(
            "freshness_slo_seconds",
            "The object's freshness promise (sla.freshness in its contract), if it has one",
            m.freshness_slo.clone(),
        );
        registry.register(
            "semantic_major_sunset_timestamp_seconds",
            "When a deprecated major of the object's data product is past its sunset (Unix time: the start of the day after it)",
            m.sunset.clone(),
        );
        registry.register(
            "ready",
            "1 while /readyz answers 200, else 0 (read at each scrape)",
            m.ready.clone(),
        );
        let build: Family<BuildLabels, Gauge> = Family::default();
        build
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION").to_string(),
            })
            .set(1);
        registry.register("build_info", "Build information", build);
    }

    /// The metrics of one object, resolved once.
    pub fn object(self: &Arc<Self>, object: &str) -> ObjectMetrics {
        let o = ObjectLabel {
            object: object.to_string(),
        };
        let t = |table: &str| TableLabels {
            object: object.to_string(),
            table: table.to_string(),
        };
        // Make every reason visible (at 0) from the start, so alerts see a series.
        for code in ReasonCode::ALL {
            let _ = self.dead_lettered.get_or_create(&ReasonLabels {
                object: object.to_string(),
                reason_code: code.as_str().to_string(),
            });
        }
        // Likewise the tasks that can restart, and the retry codes an operator acts on (a
        // counter that starts at its first increment loses that increment to rate()).
        for task in ["stream", "sink"] {
            let _ = self.task_restarts.get_or_create(&TaskLabels {
                object: object.to_string(),
                task: task.to_string(),
            });
        }
        for table in [TableKind::Ingest, TableKind::DeadLetter] {
            for code in ["UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"] {
                let _ = self.retries.get_or_create(&RetryLabels {
                    object: object.to_string(),
                    table: table.as_str().to_string(),
                    code: code.to_string(),
                });
            }
        }
        ObjectMetrics {
            metrics: self.clone(),
            object: object.to_string(),
            received: handle(&self.received, &o),
            written: handle(&self.written, &o),
            acked: handle(&self.acked, &o),
            redelivered: handle(&self.redelivered, &o),
            schema_fetch_failures: handle(&self.schema_fetch_failures, &o),
            ingest_latency: handle(&self.append_latency, &t("ingest")),
            dead_letter_latency: handle(&self.append_latency, &t("dead_letter")),
            ingest_batch_rows: handle(&self.batch_rows, &t("ingest")),
            dead_letter_batch_rows: handle(&self.batch_rows, &t("dead_letter")),
            ingest_batch_bytes: handle(&self.batch_bytes, &t("ingest")),
            dead_letter_batch_bytes: handle(&self.batch_bytes, &t("dead_letter")),
            lag: handle(&self.lag, &o),
            in_flight: InFlightGauges {
                messages: handle(&self.in_flight_messages, &o),
                bytes: handle(&self.in_flight_bytes, &o),
            },
            channel_depth: handle(&self.channel_depth, &o),
        }
    }

    /// What an object promises and may hold, for alert rules that compare against it.
    pub fn describe(&self, object: &str, limit_messages: i64, limit_bytes: i64, slo: Option<u64>) {
        let o = ObjectLabel {
            object: object.to_string(),
        };
        handle(&self.flow_limit_messages, &o).set(limit_messages);
        handle(&self.flow_limit_bytes, &o).set(limit_bytes);
        if let Some(secs) = slo {
            handle(&self.freshness_slo, &o).set(i64::try_from(secs).unwrap_or(i64::MAX));
        }
    }

    /// A deprecated major of the object's data product and when it is past its sunset (Unix
    /// seconds), for the alert that says it is still there.
    pub fn sunset(&self, object: &str, major: u32, past_at: i64) {
        let labels = MajorLabels {
            object: object.to_string(),
            major: major.to_string(),
        };
        handle(&self.sunset, &labels).set(past_at);
    }

    /// Whether /readyz would answer 200 now.
    pub fn set_ready(&self, ready: bool) {
        self.ready.set(i64::from(ready));
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// A family member's handle. The family's lock guard drops on return: holding two guards in
/// one expression deadlocks when the second call has to insert.
fn handle<L, M, C>(family: &Family<L, M, C>, labels: &L) -> M
where
    L: Clone + std::hash::Hash + Eq,
    M: Clone,
    C: prometheus_client::metrics::family::MetricConstructor<M>,
{
    family.get_or_create(labels).clone()
}

#[derive(Clone)]
pub struct ObjectMetrics {
    metrics: Arc<Metrics>,
    object: String,
    pub received: Counter,
    pub written: Counter,
    pub acked: Counter,
    pub redelivered: Counter,
    pub schema_fetch_failures: Counter,
    ingest_latency: Histogram,
    dead_letter_latency: Histogram,
    ingest_batch_rows: Histogram,
    dead_letter_batch_rows: Histogram,
    ingest_batch_bytes: Histogram,
    dead_letter_batch_bytes: Histogram,
    pub lag: Histogram,
    pub in_flight: InFlightGauges,
    pub channel_depth: Gauge,
}

impl ObjectMetrics {
    pub fn dead_lettered(&self, code: ReasonCode) {
        self.metrics
            .dead_lettered
            .get_or_create(&ReasonLabels {
                object: self.object.clone(),
                reason_code: code.as_str().to_string(),
            })
            .inc();
    }

    /// The gauge of `table`'s state (see `sink::destination::State`).
    pub fn destination_state(&self, table: TableKind) -> Gauge {
        handle(
            &self.metrics.destination_state,
            &TableLabels {
                object: self.object.clone(),
                table: table.as_str().to_string(),
            },
        )
    }

    /// The gauge of the object's subscription state (see `source::probe::SourceState`).
    pub fn source_state(&self) -> Gauge {
        handle(
            &self.metrics.source_state,
            &ObjectLabel {
                object: self.object.clone(),
            },
        )
    }

    pub fn task_restarted(&self, task: &str) {
        self.metrics
            .task_restarts
            .get_or_create(&TaskLabels {
                object: self.object.clone(),
                task: task.to_string(),
            })
            .inc();
    }

    pub fn retry(&self, table: TableKind, code: &str) {
        self.metrics
            .retries
            .get_or_create(&RetryLabels {
                object: self.object.clone(),
                table: table.as_str().to_string(),
                code: code.to_string(),
            })
            .inc();
    }

    pub fn append(&self, table: TableKind, rows: usize, bytes: usize, seconds: f64) {
        let (latency, r, b) = match table {
            TableKind::Ingest => (
                &self.ingest_latency,
                &self.ingest_batch_rows,
                &self.ingest_batch_bytes,
            ),
            TableKind::DeadLetter => (
                &self.dead_letter_latency,
                &self.dead_letter_batch_rows,
                &self.dead_letter_batch_bytes,
            ),
        };
        latency.observe(seconds);
        r.observe(rows as f64);
        b.observe(bytes as f64);
    }
}
