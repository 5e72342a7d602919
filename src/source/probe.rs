//! The subscription's state, seen from outside its streams. The Pub/Sub client resumes a
//! broken streaming pull inside itself, forever and without a word, so a stream cannot tell
//! us that Pub/Sub is unreachable. A probe reads the subscription (`subscriptions.get`) on a
//! timer instead: connected, failing, not found or permission denied, reported — like a
//! table's state — by readiness, the `mesh_ingest_source_state` gauge and one log line per
//! change.

use super::ObjectSource;
use super::pubsub::Reach;
use crate::health::{ObjectHealth, Part, Reporter};
use prometheus_client::metrics::gauge::Gauge;
use std::sync::Arc;
use std::time::Duration;

/// How often each subscription is probed: with the probe's 5 s timeout an outage shows within
/// 15 s.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(10);

/// A subscription's state; the gauge's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceState {
    Connected = 0,
    Failing = 1,
    NotFound = 2,
    PermissionDenied = 3,
}

impl SourceState {
    fn as_str(self) -> &'static str {
        match self {
            SourceState::Connected => "connected",
            SourceState::Failing => "failing",
            SourceState::NotFound => "not found",
            SourceState::PermissionDenied => "permission denied",
        }
    }
}

/// The reporter of `subscription`'s state: failing ("not checked yet") until the first probe
/// answers, so readiness never claims a subscription nobody has reached.
pub fn subscription_reporter(
    health: Arc<ObjectHealth>,
    subscription: &str,
    gauge: Gauge,
) -> Reporter {
    let state = SourceState::Failing;
    let cause = "not checked yet";
    let problem = problem(subscription, state, cause);
    Reporter::new(
        health,
        Part::Subscription,
        gauge,
        (state as i64, state.as_str(), cause),
        problem,
    )
}

fn problem(subscription: &str, state: SourceState, cause: &str) -> Option<String> {
    (state != SourceState::Connected)
        .then(|| format!("subscription {subscription} {} ({cause})", state.as_str()))
}

impl ObjectSource {
    /// Probes the subscription now and every `interval` until the drain begins.
    pub async fn watch(self: Arc<Self>, interval: Duration) {
        loop {
            let reach = self.subscriber.probe(&self.object.subscription).await;
            self.report(reach);
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = self.shutdown.stopped_pulling() => return,
            }
        }
    }

    fn report(&self, reach: Reach) {
        let (state, cause, upstream) = match reach {
            Reach::Connected => (SourceState::Connected, String::new(), String::new()),
            Reach::Failing(code, m) => (SourceState::Failing, code, m),
            Reach::NotFound(m) => (SourceState::NotFound, "NOT_FOUND".into(), m),
            Reach::PermissionDenied(m) => {
                (SourceState::PermissionDenied, "PERMISSION_DENIED".into(), m)
            }
        };
        let subscription = &self.object.subscription;
        let new = (state as i64, state.as_str(), cause.as_str());
        let Some(was) =
            self.subscription_state
                .set(new, problem(subscription, state, &cause), None)
        else {
            return;
        };
        let recovered = was.changes > 0;
        let (object, was) = (&self.object.name, was.name);
        match state {
            SourceState::Connected => {
                tracing::info!(object, subscription, was, "Pub/Sub subscription reachable");
                if recovered {
                    self.reopen_streams.notify_waiters();
                }
            }
            SourceState::Failing => tracing::warn!(
                object,
                subscription,
                was,
                cause,
                error = upstream,
                "Pub/Sub unreachable: no message is received until it answers; streams keep retrying"
            ),
            SourceState::NotFound | SourceState::PermissionDenied => tracing::error!(
                object,
                subscription,
                was,
                cause,
                error = upstream,
                "Pub/Sub refuses the subscription: no message is received until an operator fixes it"
            ),
        }
    }
}
