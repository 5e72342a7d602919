//! Wires the service: HTTP server, Google clients, and per object a sink plus N streaming-pull
//! sources joined by a bounded channel. Runs until SIGTERM/SIGINT, then drains.

use crate::configuration::Settings;
use crate::envelope::Decoder;
use crate::gcp;
use crate::health::Health;
use crate::http::{HttpState, router};
use crate::shutdown::{self, Shutdown};
use crate::sink::ObjectSink;
use crate::sink::schema::{DEAD_LETTER_COLUMNS, INGEST_COLUMNS};
use crate::sink::writer::TableWriter;
use crate::source::ObjectSource;
use crate::telemetry::metrics::Metrics;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Runs the service until a signal, then drains within `application.shutdown_deadline_secs`.
pub async fn run(settings: Settings) -> anyhow::Result<()> {
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
    tracing::info!(address = %listener.local_addr()?, "serving /healthz, /readyz and /metrics");
    let http_stop = CancellationToken::new();
    let server = axum::serve(
        listener,
        router(HttpState {
            health: health.clone(),
            metrics: metrics.clone(),
        }),
    )
    .with_graceful_shutdown(http_stop.clone().cancelled_owned());
    let http = tokio::spawn(async move { server.await });

    let write_client = gcp::write_client(&settings.gcp).await?;
    let subchannels = settings
        .objects
        .iter()
        .map(|o| o.streams)
        .max()
        .unwrap_or(1);
    let subscriber = gcp::subscriber(&settings.gcp, subchannels).await?;

    let mut pipelines = JoinSet::new();
    let mut counters = Vec::new();
    for object in settings.objects {
        let object = Arc::new(object);
        let object_metrics = metrics.object(&object.name);
        let object_health = health.register(&object.name, object.streams);
        counters.push((object.name.clone(), object_metrics.clone()));
        let sink = Arc::new(ObjectSink {
            object: object.name.clone(),
            subscription: object.subscription.clone(),
            ingest: TableWriter::open(&write_client, &object.ingest_table, &INGEST_COLUMNS).await?,
            dead_letter: TableWriter::open(
                &write_client,
                &object.dead_letter_table,
                &DEAD_LETTER_COLUMNS,
            )
            .await?,
            max_dead_letter_data_bytes: object.limits.max_dead_letter_data_bytes,
            metrics: object_metrics.clone(),
            health: object_health.clone(),
            shutdown: shutdown.clone(),
        });
        let (tx, rx) = mpsc::channel(object.flow_control.channel_capacity);
        pipelines.spawn(sink.run(rx, object.batch));
        let source = Arc::new(ObjectSource {
            decoder: Arc::new(Decoder::new(&object)),
            object: object.clone(),
            subscriber: subscriber.clone(),
            metrics: object_metrics,
            health: object_health,
            shutdown: shutdown.clone(),
        });
        for index in 0..object.streams {
            pipelines.spawn(source.clone().run_stream(index, tx.clone()));
        }
        tracing::info!(object = %object.name, subscription = %object.subscription,
            ingest_table = %object.ingest_table, dead_letter_table = %object.dead_letter_table,
            streams = object.streams, "object pipeline started");
    }

    shutdown::signal().await;
    let deadline = Duration::from_secs(settings.application.shutdown_deadline_secs);
    tracing::info!(
        deadline_secs = deadline.as_secs(),
        "signal received: draining"
    );
    health.set_draining();
    // Give retries up a little before the deadline, so releasing what is left still fits in it.
    let give_up_after = deadline.saturating_sub((deadline / 5).min(Duration::from_secs(2)));
    shutdown.begin(give_up_after);
    let drained = tokio::time::timeout(deadline, async {
        while pipelines.join_next().await.is_some() {}
    })
    .await;
    match drained {
        Ok(()) if !shutdown.has_given_up() => {
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
    http_stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), http).await;
    Ok(())
}
