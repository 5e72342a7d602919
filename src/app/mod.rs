//! The service as one object: [`Application::build`] binds the HTTP server (health,
//! readiness, metrics), connects the Google clients and wires per object a sink and N
//! streaming-pull streams joined by a bounded channel; [`Application::run_until_stopped`]
//! starts them under a [`Supervisor`] and, once its stop future resolves, drains within
//! `application.shutdown_deadline_secs`.

mod supervisor;

use crate::configuration::memory::VALIDATION_BYTES;
use crate::configuration::{ObjectSettings, Settings};
use crate::health::{Health, ObjectHealth};
use crate::http::{HttpState, router};
use crate::pipeline::Decoded;
use crate::shutdown::Shutdown;
use crate::sink::ObjectSink;
use crate::sink::budget::AppendBudget;
use crate::sink::destination::{Destination, RECHECK_INTERVAL};
use crate::sink::writer::WriteClient;
use crate::source::probe::{PROBE_INTERVAL, subscription_reporter};
use crate::source::pubsub::Subscriptions;
use crate::source::{ObjectSource, decoder_for};
use crate::tables::TableKind;
use crate::telemetry::metrics::{Metrics, ObjectMetrics};
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use supervisor::Supervisor;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The start-up log line that carries the bound address (field `address`).
pub const SERVING: &str = "serving /healthz, /readyz and /metrics";

/// The HTTP port a service reported in its JSON log (`text`), once it has: how programs that
/// start it with port 0 (the tests, the load harness) learn where it listens.
pub fn port_from_log(text: &str) -> Option<u16> {
    text.lines()
        .filter(|l| l.contains(SERVING))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| v["address"].as_str()?.parse::<std::net::SocketAddr>().ok())
        .map(|a| a.port())
}

/// A built service, not yet pulling.
pub struct Application {
    port: u16,
    drain_deadline: Duration,
    health: Arc<Health>,
    shutdown: Shutdown,
    http: JoinHandle<std::io::Result<()>>,
    http_stop: CancellationToken,
    objects: Vec<ObjectPipeline>,
}

/// One object's sink and source, and the channel between them.
struct ObjectPipeline {
    object: Arc<ObjectSettings>,
    sink: Arc<ObjectSink>,
    source: Arc<ObjectSource>,
    channel: (mpsc::Sender<Decoded>, mpsc::Receiver<Decoded>),
    metrics: ObjectMetrics,
}

/// The Google clients every object shares.
struct Clients {
    write: WriteClient,
    subscriptions: Subscriptions,
    /// The decoding working-set budget every object's source shares (bytes).
    validation: Arc<tokio::sync::Semaphore>,
    /// The bytes of appends in flight every object's sink shares.
    appends: AppendBudget,
}

impl ObjectPipeline {
    /// Opens the object's tables (reading their schemas), builds its decoder, and joins its
    /// sink and source with a channel.
    async fn wire(
        object: ObjectSettings,
        clients: &Clients,
        metrics: ObjectMetrics,
        health: Arc<ObjectHealth>,
        shutdown: &Shutdown,
    ) -> anyhow::Result<ObjectPipeline> {
        let object = Arc::new(object);
        let mut tables = Vec::new();
        for (kind, table) in [
            (TableKind::Ingest, &object.ingest_table),
            (TableKind::DeadLetter, &object.dead_letter_table),
        ] {
            let io = clients.write.open(table, kind.layout().columns).await?;
            let state = metrics.destination_state(kind);
            let dest = Destination::new(kind, &object.name, Arc::new(io), health.clone(), state);
            let dest = Arc::new(dest);
            tokio::spawn(dest.clone().watch(RECHECK_INTERVAL, shutdown.clone()));
            tables.push(dest);
        }
        let (ingest, dead_letter) = (tables.remove(0), tables.remove(0));
        let sink = Arc::new(ObjectSink {
            object: object.name.clone(),
            subscription: object.subscription.clone(),
            ingest,
            dead_letter,
            max_dead_letter_data_bytes: object.limits.max_dead_letter_data_bytes,
            appends: clients.appends.for_object(),
            metrics: metrics.clone(),
            shutdown: shutdown.clone(),
        });
        let decoder =
            decoder_for(&object).map_err(|e| anyhow::anyhow!("{}: {e}", object.source_file))?;
        let subscription_state =
            subscription_reporter(health.clone(), &object.subscription, metrics.source_state());
        let source = Arc::new(ObjectSource {
            subscription_state,
            reopen_streams: tokio::sync::Notify::new(),
            validation: clients.validation.clone(),
            decoder: Arc::new(decoder),
            object: object.clone(),
            subscriber: clients.subscriptions.clone(),
            metrics: metrics.clone(),
            health,
            shutdown: shutdown.clone(),
        });
        Ok(ObjectPipeline {
            channel: mpsc::channel(object.channel_capacity()),
            object,
            sink,
            source,
            metrics,
        })
    }
}

impl Application {
    /// Binds the HTTP server (serving at once, so liveness answers during start-up), connects
    /// the clients and wires every object's pipeline.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let metrics = Arc::new(Metrics::new());
        let health = Health::with_stall_timeout(Duration::from_secs(
            settings.application.stall_timeout_secs,
        ));
        let shutdown = Shutdown::new();
        let address = (
            settings.application.host.as_str(),
            settings.application.port,
        );
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the HTTP server to {}:{}", address.0, address.1))?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, "{SERVING}");
        let http_stop = CancellationToken::new();
        let state = HttpState {
            health: health.clone(),
            metrics: metrics.clone(),
        };
        let server = axum::serve(listener, router(state))
            .with_graceful_shutdown(http_stop.clone().cancelled_owned());
        let http = tokio::spawn(async move { server.await });

        let subchannels = settings.objects.iter().map(|o| o.streams).max();
        let clients = Clients {
            write: WriteClient::connect(&settings.gcp).await?,
            subscriptions: Subscriptions::connect(&settings.gcp, subchannels.unwrap_or(1)).await?,
            validation: Arc::new(tokio::sync::Semaphore::new(VALIDATION_BYTES as usize)),
            appends: AppendBudget::new(settings.application.max_append_bytes),
        };
        let mut objects = Vec::with_capacity(settings.objects.len());
        for object in settings.objects {
            let object_metrics = metrics.object(&object.name);
            let streams = object.streams as i64;
            metrics.describe(
                &object.name,
                streams * object.flow_control.max_outstanding_messages,
                streams * object.flow_control.max_outstanding_bytes,
                object.contract.freshness_secs,
            );
            for major in &object.older_majors {
                if let Some(at) = major.past_sunset_at() {
                    metrics.sunset(&object.name, major.major, at);
                }
            }
            let held = object_metrics.in_flight.messages.clone();
            let object_health = health.register(&object.name, object.streams, held);
            let p =
                ObjectPipeline::wire(object, &clients, object_metrics, object_health, &shutdown)
                    .await?;
            objects.push(p);
        }
        Ok(Application {
            port: bound.port(),
            drain_deadline: Duration::from_secs(settings.application.shutdown_deadline_secs),
            health,
            shutdown,
            http,
            http_stop,
            objects,
        })
    }

    /// The port the HTTP server bound (the configured one, or the one picked for port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Pulls and writes until `stop` resolves, then drains: stops pulling, writes and acks
    /// what is held, and gives up on what is still unwritten at the deadline. Fails (after
    /// draining the rest) when a pipeline task dies for good.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut supervisor = Supervisor::default();
        let mut counters = Vec::new();
        let watchdog = tokio::spawn(watch_progress(self.health.clone()));
        for p in self.objects {
            tokio::spawn(p.source.clone().watch(PROBE_INTERVAL));
            start(
                &mut supervisor,
                p.object.clone(),
                p.sink,
                p.source,
                p.channel,
                &p.metrics,
            );
            counters.push((p.object.name.clone(), p.metrics));
        }
        let failure = tokio::select! {
            _ = stop => None,
            why = supervisor.watch() => Some(why),
        };
        match &failure {
            None => tracing::info!(
                deadline_secs = self.drain_deadline.as_secs(),
                "signal received: draining"
            ),
            Some(why) => tracing::error!(error = %why, "pipeline failed: draining, then exiting"),
        }
        let deadline = self.drain_deadline;
        self.health.set_draining();
        // Give retries up a little before the deadline, so releasing what is left still fits in it.
        let give_up_after = deadline.saturating_sub((deadline / 5).min(Duration::from_secs(2)));
        self.shutdown.begin(give_up_after);
        let drained = tokio::time::timeout(deadline, supervisor.drain()).await;
        match drained {
            Ok(()) if !self.shutdown.has_given_up() => {
                tracing::info!("drained: every message received was written and acknowledged")
            }
            _ => tracing::warn!(
                "drain deadline reached: unacknowledged messages are left for Pub/Sub to redeliver"
            ),
        }
        for (object, m) in &counters {
            tracing::info!(object = %object, received = m.received.get(), written = m.written.get(),
                acked = m.acked.get(), "message counts since start");
        }
        watchdog.abort();
        self.http_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.http).await;
        match failure {
            None => Ok(()),
            Some(why) => Err(anyhow::anyhow!(why)),
        }
    }
}

/// The progress watchdog's clock: one look a second (see `Health::watch_progress`).
async fn watch_progress(health: Arc<Health>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        health.watch_progress();
    }
}

/// Starts one object's sink and its streams under `supervisor`; a stream that panics is
/// restarted with a sender of its own.
fn start(
    supervisor: &mut Supervisor,
    object: Arc<ObjectSettings>,
    sink: Arc<ObjectSink>,
    source: Arc<ObjectSource>,
    (tx, rx): (mpsc::Sender<Decoded>, mpsc::Receiver<Decoded>),
    metrics: &ObjectMetrics,
) {
    let name = &object.name;
    supervisor.spawn(
        format!("{name} sink"),
        "sink",
        metrics.clone(),
        Box::pin(sink.run(rx, object.batch)),
        None,
    );
    for index in 0..object.streams {
        let (source, tx) = (source.clone(), tx.clone());
        let stream = move || -> futures::future::BoxFuture<'static, ()> {
            Box::pin(source.clone().run_stream(index, tx.clone()))
        };
        supervisor.spawn(
            format!("{name} stream {index}"),
            "stream",
            metrics.clone(),
            stream(),
            Some(Arc::new(stream)),
        );
    }
    tracing::info!(object = %name, subscription = %object.subscription,
        ingest_table = %object.ingest_table, dead_letter_table = %object.dead_letter_table,
        streams = object.streams, "object pipeline started");
}
