//! The source of one object: N streaming-pull streams on its subscription, each decoding
//! messages on arrival and handing rows to the sink through the bounded channel. Pub/Sub flow
//! control (max outstanding messages / bytes per stream) bounds what is held in memory.

use crate::ack::Ack;
use crate::configuration::ObjectSettings;
use crate::envelope::{Decoder, InboundMessage};
use crate::health::ObjectHealth;
use crate::shutdown::Shutdown;
use crate::sink::Inbound;
use crate::telemetry::metrics::ObjectMetrics;
use google_cloud_pubsub::client::Subscriber;
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::ShutdownBehavior;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

pub struct ObjectSource {
    pub object: Arc<ObjectSettings>,
    pub subscriber: Subscriber,
    pub decoder: Arc<Decoder>,
    pub metrics: ObjectMetrics,
    pub health: Arc<ObjectHealth>,
    pub shutdown: Shutdown,
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Detaches a message from the client library's types.
pub fn inbound(msg: Message, delivery_attempt: Option<i32>) -> InboundMessage {
    InboundMessage {
        publish_time_us: msg
            .publish_time
            .map(|t| t.seconds() * 1_000_000 + i64::from(t.nanos()) / 1000),
        data: msg.data,
        attributes: msg.attributes,
        message_id: msg.message_id,
        ordering_key: msg.ordering_key,
        delivery_attempt,
    }
}

impl ObjectSource {
    /// Runs one stream until shutdown; reopens it after a permanent stream error.
    pub async fn run_stream(self: Arc<Self>, index: usize, tx: mpsc::Sender<Inbound>) {
        let o = &self.object;
        let mut failures: u32 = 0;
        loop {
            let mut stream = self
                .subscriber
                .subscribe(o.subscription.clone())
                .set_max_outstanding_messages(o.flow_control.max_outstanding_messages)
                .set_max_outstanding_bytes(o.flow_control.max_outstanding_bytes)
                .set_max_lease_extension(Duration::from_secs(o.flow_control.ack_deadline_secs))
                // On shutdown keep leases alive until the sink has acked what it holds.
                .set_shutdown_behavior(ShutdownBehavior::WaitForProcessing)
                .build();
            let token = stream.shutdown_token();
            self.health.stream_up();
            tracing::info!(object = %o.name, stream = index, subscription = %o.subscription, "streaming pull started");
            let ended = loop {
                let next = tokio::select! {
                    biased;
                    _ = self.shutdown.stopped_pulling() => break None,
                    next = stream.next() => next,
                };
                match next {
                    Some(Ok((msg, handler))) => {
                        failures = 0;
                        let attempt = handler.delivery_attempt();
                        self.metrics.received.inc();
                        if attempt.is_some_and(|a| a > 1) {
                            self.metrics.redelivered.inc();
                        }
                        let size = msg.data.len();
                        let ack = Ack::new(handler, &self.metrics, size);
                        let item = match self.decoder.decode(inbound(msg, attempt), now_us()) {
                            Ok(row) => Inbound::Row(row, ack),
                            Err(dead) => {
                                tracing::debug!(object = %o.name, message_id = %dead.message_id,
                                    reason_code = %dead.reason_code, "message rejected");
                                Inbound::Rejected(*dead, ack)
                            }
                        };
                        if tx.send(item).await.is_err() {
                            // The sink is gone; nothing more can be written.
                            break None;
                        }
                    }
                    Some(Err(e)) => break Some(e.to_string()),
                    None => break Some("the stream ended".to_string()),
                }
            };
            self.health.stream_down();
            match ended {
                None => {
                    // Stop pulling; the sink drains once every stream dropped its sender.
                    drop(tx);
                    token.shutdown().await;
                    tracing::info!(object = %o.name, stream = index, "streaming pull stopped");
                    return;
                }
                Some(error) => {
                    failures = failures.saturating_add(1);
                    let delay = Duration::from_millis((250u64 << failures.min(8)).min(30_000));
                    tracing::error!(object = %o.name, stream = index, error, retry_in_ms = delay.as_millis() as u64,
                        "streaming pull failed; reopening");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = self.shutdown.stopped_pulling() => {
                            drop(tx);
                            return;
                        }
                    }
                }
            }
        }
    }
}
