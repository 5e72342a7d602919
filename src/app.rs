//! The service as one object: [`Application::build`] binds the HTTP server (health,
//! readiness, metrics), connects the Google clients and wires per object a sink and N
//! streaming-pull streams joined by a bounded channel; [`Application::run_until_stopped`]
//! starts them and, once its stop future resolves, drains within
//! `application.shutdown_deadline_secs`.

use crate::configuration::{ObjectSettings, Settings};
use crate::health::Health;
use crate::http::{HttpState, router};
use crate::pipeline::Decoded;
use crate::shutdown::Shutdown;
use crate::sink::ObjectSink;
use crate::sink::writer::WriteClient;
use crate::source::pubsub::Subscriptions;
use crate::source::{ObjectSource, decoder_for};
use crate::tables::{DEAD_LETTER, INGEST};
use crate::telemetry::metrics::{Metrics, ObjectMetrics};
use anyhow::Context;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

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

impl Application {
    /// Binds the HTTP server (serving at once, so liveness answers during start-up), connects
    /// the clients and wires every object's pipeline.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let metrics = Arc::new(Metrics::new());
        let health = Health::new();
        let shutdown = Shutdown::new();
        let address = (
            settings.application.host.as_str(),
            settings.application.port,
        );
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("binding the HTTP server to {}:{}", address.0, address.1))?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, "serving /healthz, /readyz and /metrics");
        let http_stop = CancellationToken::new();
        let state = HttpState {
            health: health.clone(),
            metrics: metrics.clone(),
        };
        let server = axum::serve(listener, router(state))
            .with_graceful_shutdown(http_stop.clone().cancelled_owned());
        let http = tokio::spawn(async move { server.await });

        let write_client = WriteClient::connect(&settings.gcp).await?;
        let subchannels = settings.objects.iter().map(|o| o.streams).max();
        let subscriptions = Subscriptions::connect(&settings.gcp, subchannels.unwrap_or(1)).await?;
        let mut objects = Vec::with_capacity(settings.objects.len());
        for object in settings.objects {
            let object = Arc::new(object);
            let object_metrics = metrics.object(&object.name);
            let object_health = health.register(&object.name, object.streams);
            let sink = Arc::new(ObjectSink {
                object: object.name.clone(),
                subscription: object.subscription.clone(),
                ingest: write_client
                    .open(&object.ingest_table, INGEST.columns)
                    .await?,
                dead_letter: write_client
                    .open(&object.dead_letter_table, DEAD_LETTER.columns)
                    .await?,
                max_dead_letter_data_bytes: object.limits.max_dead_letter_data_bytes,
                metrics: object_metrics.clone(),
                health: object_health.clone(),
                shutdown: shutdown.clone(),
            });
            let decoder =
                decoder_for(&object).map_err(|e| anyhow::anyhow!("{}: {e}", object.source_file))?;
            let source = Arc::new(ObjectSource {
                decoder: Arc::new(decoder),
                object: object.clone(),
                subscriber: subscriptions.clone(),
                metrics: object_metrics.clone(),
                health: object_health,
                shutdown: shutdown.clone(),
            });
            objects.push(ObjectPipeline {
                channel: mpsc::channel(object.flow_control.channel_capacity),
                object,
                sink,
                source,
                metrics: object_metrics,
            });
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
    /// what is held, and gives up on what is still unwritten at the deadline.
    pub async fn run_until_stopped(self, stop: impl Future<Output = ()>) -> anyhow::Result<()> {
        let mut tasks = JoinSet::new();
        let mut counters = Vec::new();
        for p in self.objects {
            let (tx, rx) = p.channel;
            tasks.spawn(p.sink.run(rx, p.object.batch));
            for index in 0..p.object.streams {
                tasks.spawn(p.source.clone().run_stream(index, tx.clone()));
            }
            tracing::info!(object = %p.object.name, subscription = %p.object.subscription,
                ingest_table = %p.object.ingest_table, dead_letter_table = %p.object.dead_letter_table,
                streams = p.object.streams, "object pipeline started");
            counters.push((p.object.name.clone(), p.metrics));
        }

        stop.await;
        let deadline = self.drain_deadline;
        tracing::info!(
            deadline_secs = deadline.as_secs(),
            "signal received: draining"
        );
        self.health.set_draining();
        // Give retries up a little before the deadline, so releasing what is left still fits in it.
        let give_up_after = deadline.saturating_sub((deadline / 5).min(Duration::from_secs(2)));
        self.shutdown.begin(give_up_after);
        let drained = tokio::time::timeout(deadline, async {
            while tasks.join_next().await.is_some() {}
        })
        .await;
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
        self.http_stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.http).await;
        Ok(())
    }
}
