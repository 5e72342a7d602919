//! Streaming pull from Pub/Sub: the only file of the service that speaks to the Pub/Sub client
//! library. A stream pulls with flow control, turns each message into a `ReceivedMessage` and
//! an `Ack` backed by the client's handler, and reopens itself after a stream error. The
//! client retries a broken stream inside itself and says nothing, so [`Subscriptions::probe`]
//! reads the subscription (`subscriptions.get`) to tell whether Pub/Sub can be reached.

use super::ObjectSource;
use super::hold::Hold;
use crate::configuration::GcpSettings;
use crate::configuration::memory::stream_hold;
use crate::gcp::{code_name, configured};
use crate::pipeline::backoff::Backoff;
use crate::pipeline::{Ack, Acknowledge, Decoded, ReceivedMessage};
use google_cloud_gax::error::rpc::Code;
use google_cloud_gax::options::RequestOptionsBuilder;
use google_cloud_gax::retry_policy::NeverRetry;
use google_cloud_pubsub::client::{SchemaService, Subscriber, SubscriptionAdmin};
use google_cloud_pubsub::model::Message;
use google_cloud_pubsub::subscriber::ShutdownBehavior;
use google_cloud_pubsub::subscriber::handler::Handler;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// The subscriber client, shared by every stream of every object, and the admin client the
/// probe reads subscriptions with.
#[derive(Clone, Debug)]
pub struct Subscriptions {
    client: Subscriber,
    admin: SubscriptionAdmin,
    schemas: SchemaService,
}

/// What one probe of a subscription found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    Connected,
    /// No answer, or a status that may pass (our cause, the upstream message).
    Failing(String, String),
    NotFound(String),
    /// Refused: the service account lacks `pubsub.subscriptions.get` or more.
    PermissionDenied(String),
}

/// How long one probe may take before Pub/Sub counts as unreachable.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

impl Subscriptions {
    /// `subchannels`: gRPC connections, one per parallel stream of the busiest object.
    pub async fn connect(gcp: &GcpSettings, subchannels: usize) -> anyhow::Result<Self> {
        let b = configured!(Subscriber::builder(), &gcp.pubsub_endpoint, gcp);
        let admin = configured!(SubscriptionAdmin::builder(), &gcp.pubsub_endpoint, gcp);
        let schemas = configured!(SchemaService::builder(), &gcp.pubsub_endpoint, gcp);
        Ok(Subscriptions {
            client: b.with_grpc_subchannel_count(subchannels).build().await?,
            admin: admin.build().await?,
            schemas: schemas.build().await?,
        })
    }

    /// The definition of `revision` of `schema` (`projects/<p>/schemas/<id>`); `None` when
    /// Pub/Sub does not have it. Errors are Pub/Sub's, to retry.
    pub async fn schema_revision(
        &self,
        schema: &str,
        revision: &str,
    ) -> Result<Option<String>, String> {
        let got = self
            .schemas
            .get_schema()
            .set_name(format!("{schema}@{revision}"))
            .set_view(google_cloud_pubsub::model::SchemaView::Full)
            .send()
            .await;
        match got {
            Ok(s) => Ok(Some(s.definition)),
            Err(e) if e.status().is_some_and(|s| s.code == Code::NotFound) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Reads `subscription` once, without retries: can Pub/Sub be reached, and does it serve
    /// the subscription to us?
    pub async fn probe(&self, subscription: &str) -> Reach {
        let call = self
            .admin
            .get_subscription()
            .set_subscription(subscription)
            .with_retry_policy(NeverRetry)
            .with_attempt_timeout(PROBE_TIMEOUT)
            .send();
        let e = match tokio::time::timeout(PROBE_TIMEOUT + Duration::from_secs(1), call).await {
            Ok(Ok(_)) => return Reach::Connected,
            Ok(Err(e)) => e,
            Err(_) => {
                let waited = format!("no answer within {PROBE_TIMEOUT:?}");
                return Reach::Failing("DEADLINE_EXCEEDED".into(), waited);
            }
        };
        let message = e.to_string();
        match e.status().map(|s| s.code) {
            Some(Code::NotFound) => Reach::NotFound(message),
            Some(Code::PermissionDenied | Code::Unauthenticated) => {
                Reach::PermissionDenied(message)
            }
            Some(code) => Reach::Failing(code_name(code), message),
            // No status: the request got no answer (connection refused, reset, timed out).
            None => Reach::Failing("UNAVAILABLE".into(), message),
        }
    }
}

/// A dropped handler nacks its message; `ack` acknowledges it.
impl Acknowledge for Handler {
    fn ack(self: Box<Self>) {
        Handler::ack(*self);
    }
}

/// Detaches a message from the client library's types.
pub fn received_message(msg: Message, delivery_attempt: Option<i32>) -> ReceivedMessage {
    ReceivedMessage {
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

/// Why a stream's pulling loop ended.
enum StreamEnd {
    /// Shutdown, or the sink is gone.
    Stop,
    /// Pub/Sub answers again after an outage: a fresh stream resumes sooner than this one.
    Reopen,
    Failed(String),
}

impl ObjectSource {
    /// Runs one stream until shutdown; reopens it after a stream error, and when the probe
    /// finds Pub/Sub answering again after an outage (`reopen_streams`).
    pub async fn run_stream(self: Arc<Self>, index: usize, tx: mpsc::Sender<Decoded>) {
        let o = &self.object;
        let reopen = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
        let mut failures: u32 = 0;
        // Kept across reopens: the old stream's messages still count until given back.
        let (bytes, messages) = stream_hold(o);
        let hold = Hold::new(bytes, messages);
        loop {
            let mut stream = self
                .subscriber
                .client
                .subscribe(o.subscription.clone())
                .set_max_outstanding_messages(o.flow_control.max_outstanding_messages)
                .set_max_outstanding_bytes(o.flow_control.max_outstanding_bytes)
                .set_max_lease_extension(Duration::from_secs(o.flow_control.ack_deadline_secs))
                // Leases are kept for as long as the sink holds a message, an outage of the
                // table included; see `flow_control.max_lease_secs` for the trade-off.
                .set_max_lease(Duration::from_secs(o.flow_control.max_lease_secs))
                // On shutdown keep leases alive until the sink has acked what it holds.
                .set_shutdown_behavior(ShutdownBehavior::WaitForProcessing)
                .build();
            let token = stream.shutdown_token();
            let up = self.health.stream_up();
            tracing::info!(object = %o.name, stream = index, subscription = %o.subscription, "streaming pull started");
            let end = loop {
                let next = tokio::select! {
                    biased;
                    _ = self.shutdown.stopped_pulling() => break StreamEnd::Stop,
                    // The client backs off up to 60 s between its own attempts to resume: a
                    // fresh stream starts pulling as soon as Pub/Sub answers again.
                    _ = self.reopen_streams.notified() => break StreamEnd::Reopen,
                    next = stream.next() => next,
                };
                match next {
                    Some(Ok((msg, handler))) => {
                        failures = 0;
                        let attempt = handler.delivery_attempt();
                        let msg = received_message(msg, attempt);
                        // A record of a schema revision not seen yet: fetch it first.
                        if !self.ensure_revision(&msg).await {
                            break StreamEnd::Stop;
                        }
                        // A compressed body is held at its compressed size plus the most it
                        // may inflate to; `hand_over` gives back what it did not use.
                        let size = msg.data.len() + self.decoder.inflation_bound(&msg);
                        let held = tokio::select! {
                            held = hold.take(size) => held,
                            // Dropped unread: the handler releases it for redelivery.
                            _ = self.shutdown.stopped_pulling() => break StreamEnd::Stop,
                        };
                        let ack =
                            Ack::new(Box::new(handler), &self.metrics.in_flight, msg.data.len());
                        if !self.hand_over(msg, ack, held, &tx).await {
                            // The sink is gone; nothing more can be written.
                            break StreamEnd::Stop;
                        }
                    }
                    Some(Err(e)) => break StreamEnd::Failed(e.to_string()),
                    None => break StreamEnd::Failed("the stream ended".to_string()),
                }
            };
            drop(up);
            let error = match end {
                StreamEnd::Stop => {
                    // Stop pulling; the sink drains once every stream dropped its sender.
                    drop(tx);
                    token.shutdown().await;
                    tracing::info!(object = %o.name, stream = index, "streaming pull stopped");
                    return;
                }
                StreamEnd::Reopen => {
                    tracing::info!(object = %o.name, stream = index,
                        "Pub/Sub answers again: reopening the streaming pull");
                    continue;
                }
                StreamEnd::Failed(error) => error,
            };
            failures = failures.saturating_add(1);
            let delay = reopen.delay(failures);
            tracing::error!(object = %o.name, stream = index, error, retry_in_ms = delay.as_millis() as u64,
                "streaming pull failed; reopening");
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = self.shutdown.stopped_pulling() => return,
            }
        }
    }
}
