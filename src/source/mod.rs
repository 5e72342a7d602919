//! The source of one object: N streaming-pull streams on its subscription (`pubsub`), each
//! decoding messages on arrival and handing rows to the sink through the bounded channel.
//! Pub/Sub flow control (max outstanding messages / bytes per stream) bounds what is held in
//! memory. This module builds the object's decoder from its configuration: the envelope knows
//! nothing of the configuration files.

pub mod hold;
pub mod probe;
pub mod pubsub;

use crate::configuration::memory::{VALIDATION_BYTES, zstd_window_log};
use crate::configuration::{EnvelopeFormat, FieldLocator, ObjectSettings};
use crate::configuration::{SchemaEncoding, SchemaKind};
use crate::envelope::record::WireEncoding;
use crate::envelope::{
    Decoder, DecoderSpec, Format, Limits, Locator, RecordFormat, TopicSchemaSpec,
};
use crate::health::{ObjectHealth, Reporter};
use crate::pipeline::clock::now_us;
use crate::pipeline::{Ack, Decoded, ReceivedMessage};
use crate::shutdown::Shutdown;
use crate::telemetry::metrics::ObjectMetrics;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};

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
        topic_schema: object.topic_schema.as_ref().map(|t| TopicSchemaSpec {
            schema: t.schema.clone(),
            definition: t.definition.clone(),
            format: match t.kind {
                SchemaKind::Avro => RecordFormat::Avro,
                SchemaKind::Protobuf => RecordFormat::Protobuf(t.message.clone()),
            },
            encoding: match t.encoding {
                SchemaEncoding::Json => WireEncoding::Json,
                SchemaEncoding::Binary => WireEncoding::Binary,
            },
        }),
        limits: Limits {
            max_message_bytes: object.limits.max_message_bytes,
            max_zstd_window_log: zstd_window_log(object.limits.max_message_bytes),
            max_dead_letter_data_bytes: object.limits.max_dead_letter_data_bytes,
            max_json_depth: object.limits.max_json_depth,
            max_future_event_time_secs: object.limits.max_future_event_time_secs,
            max_validation_bytes: VALIDATION_BYTES as usize,
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
    /// The process-wide budget for decoding's working set (JSON Schema value trees), in
    /// bytes, shared by every object: a stream holds its message's share while it decodes.
    pub validation: Arc<Semaphore>,
    pub shutdown: Shutdown,
}

impl ObjectSource {
    /// Decodes one received message and hands it to the sink; `false` once the sink is gone.
    /// `held` is the message's place in its stream's hold, sized for its body inflated at
    /// most: trimmed to what the inflated body took, then kept until the message is acked.
    async fn hand_over(
        &self,
        msg: ReceivedMessage,
        ack: Ack,
        mut held: hold::Held,
        tx: &mpsc::Sender<Decoded>,
    ) -> bool {
        self.metrics.received.inc();
        if msg.delivery_attempt.is_some_and(|a| a > 1) {
            self.metrics.redelivered.inc();
        }
        // A compressed body is inflated by this worker thread's decompressor (its memory is
        // the budget's `decompressors` term); the hold keeps what the inflated body takes.
        let inflated = {
            // An Avro JSON body's value tree comes from the process-wide decoding budget.
            let _working_set = self
                .working_set(self.decoder.record_working_set(&msg))
                .await;
            self.decoder.inflate(&msg)
        };
        held.keep(msg.data.len() + inflated.inflated_bytes());
        let ack = ack.holding(held);
        // Waits while other checks hold the budget. A payload that could need more than the
        // whole budget is rejected without building its tree, so checks never exceed it
        // together.
        let need = self.decoder.working_set(inflated.body(&msg.data));
        let _working_set = self.working_set(need).await;
        let item = match self.decoder.decode_inflated(msg, inflated, now_us()) {
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

/// Reads `revision` of `schema` from Pub/Sub and has `decoder` compile it, or remember why
/// there is none (its messages are then dead-lettered with the reason). An error is Pub/Sub's,
/// to retry: nothing is learnt.
pub async fn learn_revision(
    pubsub: &pubsub::Subscriptions,
    decoder: &Decoder,
    object: &str,
    schema: &str,
    revision: &str,
) -> Result<(), String> {
    let definition = pubsub
        .schema_revision(schema, revision)
        .await?
        .ok_or_else(|| "Pub/Sub does not have this revision".to_string());
    match decoder.learn_revision(
        schema,
        revision,
        definition.as_deref().map_err(Clone::clone),
    ) {
        Ok(()) => tracing::info!(object, schema, revision, "topic schema revision compiled"),
        Err(why) => tracing::warn!(
            object,
            schema,
            revision,
            why,
            "topic schema revision unusable: its messages are dead-lettered"
        ),
    }
    Ok(())
}

impl ObjectSource {
    /// Fetches the topic schema revision `msg` names if the decoder has not compiled it yet,
    /// retrying while Pub/Sub cannot be read (the message waits, leased; each failure is
    /// logged and counted). `false` once the service stops pulling.
    async fn ensure_revision(&self, msg: &ReceivedMessage) -> bool {
        let Some((schema, revision)) = self.decoder.unknown_revision(msg) else {
            return true;
        };
        let backoff = crate::pipeline::backoff::Backoff::new(
            std::time::Duration::from_millis(250),
            std::time::Duration::from_secs(30),
        );
        let mut failures = 0;
        loop {
            let Err(error) = learn_revision(
                &self.subscriber,
                &self.decoder,
                &self.object.name,
                &schema,
                &revision,
            )
            .await
            else {
                return true;
            };
            failures += 1;
            self.metrics.schema_fetch_failures.inc();
            let delay = backoff.delay(failures);
            tracing::error!(object = %self.object.name, schema, revision, error,
                retry_in_ms = delay.as_millis() as u64,
                "cannot read the topic schema revision a message names; it waits");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.stopped_pulling() => return false,
            }
        }
    }

    /// `bytes` of the process-wide decoding budget, held until dropped (none for 0).
    async fn working_set(&self, bytes: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
        if bytes == 0 {
            return None;
        }
        // Never more than the whole budget, or it would wait forever.
        let permits = u32::try_from(bytes.min(VALIDATION_BYTES as usize)).unwrap_or(u32::MAX);
        Some(
            self.validation
                .acquire_many(permits)
                .await
                .expect("never closed"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::configuration::GcpSettings;

    /// `check` counts what the record renderer keeps per thread: the same figure.
    #[test]
    fn the_render_scratch_is_what_check_counts() {
        assert_eq!(
            crate::configuration::memory::RENDER_SCRATCH_BYTES,
            crate::envelope::record::RENDER_SCRATCH_BYTES as u64
        );
    }
    use crate::health::Health;
    use crate::telemetry::metrics::Metrics;
    use std::path::Path;

    /// A source for `object` whose clients are built, never called (nothing listens at the
    /// endpoint), sharing `validation` as its decoding budget.
    async fn source_for(object: ObjectSettings, validation: Arc<Semaphore>) -> ObjectSource {
        let gcp = GcpSettings {
            project: "p".into(),
            pubsub_endpoint: Some("http://127.0.0.1:9".into()),
            bigquery_endpoint: None,
            bigquery_write_endpoint: None,
            anonymous: true,
            policy_tags: Vec::new(),
        };
        let metrics = Arc::new(Metrics::new()).object(&object.name);
        let health = Health::new().register(&object.name, 1, metrics.in_flight.messages.clone());
        ObjectSource {
            subscription_state: probe::subscription_reporter(
                health.clone(),
                &object.subscription,
                metrics.source_state(),
            ),
            reopen_streams: tokio::sync::Notify::new(),
            validation,
            decoder: Arc::new(decoder_for(&object).unwrap()),
            object: Arc::new(object),
            subscriber: pubsub::Subscriptions::connect(&gcp, 1).await.unwrap(),
            metrics,
            health,
            shutdown: Shutdown::new(),
        }
    }

    /// A place in a hold that never runs out.
    async fn unheld() -> hold::Held {
        hold::Hold::new(u64::from(u32::MAX), 1 << 20).take(0).await
    }

    fn message(i: usize, body: &str) -> ReceivedMessage {
        ReceivedMessage {
            data: bytes::Bytes::copy_from_slice(body.as_bytes()),
            message_id: format!("m-{i}"),
            ..Default::default()
        }
    }

    /// With nobody reading the channel (a batcher blocked on a full table budget), the depth
    /// gauge still shows what waits: the source sets it after each hand-over.
    #[tokio::test]
    async fn channel_depth_shows_what_waits_while_the_batcher_reads_nothing() {
        let yaml = "name: order\nsubscription: order-sub\ningest_table: p.d.events\n\
                    dead_letter_table: p.d.dead\nenvelope: {format: json}\n";
        let object = ObjectSettings::parse(yaml, Path::new("order.yaml"), "p").unwrap();
        let budget = Arc::new(Semaphore::new(VALIDATION_BYTES as usize));
        let source = source_for(object, budget).await;
        let (tx, _unread) = mpsc::channel(10);
        for i in 0..3 {
            let msg = message(i, "not json");
            assert!(
                source
                    .hand_over(msg, Ack::detached(), unheld().await, &tx)
                    .await
            );
        }
        assert_eq!(source.metrics.channel_depth.get(), 3);
    }

    /// Schema checks of every object draw on one budget: while another check holds it, a
    /// message waits undecoded, and goes on once the budget is given back.
    #[tokio::test]
    async fn schema_checks_wait_for_the_shared_working_set() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("s.json"), r#"{"type":"object"}"#).unwrap();
        let yaml = "name: order\nsubscription: order-sub\ningest_table: p.d.events\n\
                    dead_letter_table: p.d.dead\nenvelope: {format: json, object_id: payload.id}\n\
                    payload_schema_file: s.json\n";
        let object = ObjectSettings::parse(yaml, &dir.path().join("order.yaml"), "p").unwrap();
        let budget = Arc::new(Semaphore::new(VALIDATION_BYTES as usize));
        let source = source_for(object, budget.clone()).await;
        let body = r#"{"event_id":"e","event_type":"T","event_time":"2026-11-24T10:00:00Z","payload":{"id":"1"}}"#;
        assert!(source.decoder.working_set(body.as_bytes()) > 0);
        // Another object's check holds the whole budget.
        let held = budget
            .clone()
            .acquire_many_owned(VALIDATION_BYTES as u32)
            .await
            .unwrap();
        let (tx, mut rx) = mpsc::channel(10);
        let waiting = source.hand_over(message(0, body), Ack::detached(), unheld().await, &tx);
        tokio::pin!(waiting);
        let early = tokio::time::timeout(std::time::Duration::from_millis(200), &mut waiting).await;
        assert!(early.is_err(), "decoded while the budget was held");
        assert!(rx.try_recv().is_err());
        drop(held);
        assert!(waiting.await);
        assert!(matches!(rx.recv().await, Some(Decoded::Row(..))));
        assert_eq!(budget.available_permits(), VALIDATION_BYTES as usize);
    }
}
