//! The source of one object: N streaming-pull streams on its subscription (`pubsub`), each
//! decoding messages on arrival and handing rows to the sink through the bounded channel.
//! Pub/Sub flow control (max outstanding messages / bytes per stream) bounds what is held in
//! memory. This module builds the object's decoder from its configuration: the envelope knows
//! nothing of the configuration files.

pub mod probe;
pub mod pubsub;

use crate::configuration::{EnvelopeFormat, FieldLocator, ObjectSettings};
use crate::envelope::{Decoder, DecoderSpec, Format, Limits, Locator};
use crate::health::{ObjectHealth, Reporter};
use crate::pipeline::clock::now_us;
use crate::pipeline::{Ack, Decoded, ReceivedMessage};
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::ObjectMetrics;
use std::sync::Arc;
use tokio::sync::mpsc;

/// The decoder of `object`'s events, as its configuration describes them.
pub fn decoder_for(object: &ObjectSettings) -> Result<Decoder, String> {
    let locator = |l: &FieldLocator| match l {
        FieldLocator::Attribute(a) => Locator::Attribute(a.clone()),
        FieldLocator::Path(p) => Locator::Path(p.clone()),
    };
    let e = &object.envelope;
    Decoder::new(DecoderSpec {
        format: match e.format {
            EnvelopeFormat::Json => Format::Json,
            EnvelopeFormat::Attributes => Format::Attributes,
            EnvelopeFormat::CloudEvents => Format::CloudEvents,
        },
        event_id: locator(&e.event_id),
        event_type: locator(&e.event_type),
        event_time: locator(&e.event_time),
        object_id: locator(&e.object_id),
        payload: locator(&e.payload),
        event_types: object.event_types.clone(),
        payload_schema: object.payload_schema.clone(),
        limits: Limits {
            max_message_bytes: object.limits.max_message_bytes,
            max_dead_letter_data_bytes: object.limits.max_dead_letter_data_bytes,
            max_json_depth: object.limits.max_json_depth,
            max_future_event_time_secs: object.limits.max_future_event_time_secs,
        },
    })
}

/// One object's source: what each of its streams shares.
pub struct ObjectSource {
    pub object: Arc<ObjectSettings>,
    pub subscriber: pubsub::Subscriptions,
    pub decoder: Arc<Decoder>,
    pub metrics: ObjectMetrics,
    pub health: Arc<ObjectHealth>,
    /// The subscription's state as the probe last found it (`probe`).
    pub subscription_state: Reporter,
    /// Wakes the streams to reopen themselves (the probe, when Pub/Sub answers again).
    pub reopen_streams: tokio::sync::Notify,
    pub shutdown: Shutdown,
}

impl ObjectSource {
    /// Decodes one received message and hands it to the sink; `false` once the sink is gone.
    async fn hand_over(&self, msg: ReceivedMessage, ack: Ack, tx: &mpsc::Sender<Decoded>) -> bool {
        self.metrics.received.inc();
        if msg.delivery_attempt.is_some_and(|a| a > 1) {
            self.metrics.redelivered.inc();
        }
        let item = match self.decoder.decode(msg, now_us()) {
            Ok(row) => Decoded::Row(row, ack),
            Err(dead) => {
                tracing::debug!(object = %self.object.name, message_id = %dead.message_id,
                    reason_code = %dead.reason_code, "message rejected");
                Decoded::Rejected(*dead, ack)
            }
        };
        let sent = tx.send(item).await.is_ok();
        // Set here too: while the batcher is blocked on a full table budget it reads nothing,
        // and the depth it last saw would hide the backlog.
        let depth = tx.max_capacity() - tx.capacity();
        self.metrics.channel_depth.set(depth as i64);
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::GcpSettings;
    use crate::health::Health;
    use crate::telemetry::metrics::Metrics;
    use std::path::Path;

    /// With nobody reading the channel (a batcher blocked on a full table budget), the depth
    /// gauge still shows what waits: the source sets it after each hand-over.
    #[tokio::test]
    async fn channel_depth_shows_what_waits_while_the_batcher_reads_nothing() {
        let yaml = "name: order\nsubscription: order-sub\ningest_table: p.d.events\n\
                    dead_letter_table: p.d.dead\nenvelope: {format: json}\n";
        let object = ObjectSettings::parse(yaml, Path::new("order.yaml"), "p").unwrap();
        // The clients are built, never called: nothing listens at this endpoint.
        let gcp = GcpSettings {
            project: "p".into(),
            pubsub_endpoint: Some("http://127.0.0.1:9".into()),
            bigquery_endpoint: None,
            bigquery_write_endpoint: None,
            anonymous: true,
        };
        let metrics = Arc::new(Metrics::new()).object("order");
        let health = Health::new().register("order", 1, metrics.in_flight.messages.clone());
        let source = ObjectSource {
            subscription_state: probe::subscription_reporter(
                health.clone(),
                "order-sub",
                metrics.source_state(),
            ),
            reopen_streams: tokio::sync::Notify::new(),
            decoder: Arc::new(decoder_for(&object).unwrap()),
            object: Arc::new(object),
            subscriber: pubsub::Subscriptions::connect(&gcp, 1).await.unwrap(),
            metrics: metrics.clone(),
            health,
            shutdown: Shutdown::new(),
        };
        let (tx, _unread) = mpsc::channel(10);
        for i in 0..3 {
            let msg = ReceivedMessage {
                data: bytes::Bytes::from_static(b"not json"),
                attributes: Default::default(),
                message_id: format!("m-{i}"),
                publish_time_us: None,
                ordering_key: String::new(),
                delivery_attempt: None,
            };
            assert!(source.hand_over(msg, Ack::detached(), &tx).await);
        }
        assert_eq!(metrics.channel_depth.get(), 3);
    }
}
