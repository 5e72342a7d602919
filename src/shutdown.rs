//! Shutdown, as an explicit type: SIGTERM first stops pulling, then the pipeline drains; if the
//! drain deadline passes, retry loops give up and whatever is unacknowledged is left for
//! Pub/Sub to redeliver. Nothing is acknowledged that was not written.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    stop_pulling: CancellationToken,
    give_up: CancellationToken,
}

impl Shutdown {
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a drain: sources stop pulling, batches flush, in-flight appends finish. After
    /// `deadline`, retries give up.
    pub fn begin(&self, deadline: Duration) {
        if self.stop_pulling.is_cancelled() {
            return;
        }
        self.stop_pulling.cancel();
        let give_up = self.give_up.clone();
        tokio::spawn(async move {
            tokio::time::sleep(deadline).await;
            give_up.cancel();
        });
    }

    pub fn is_draining(&self) -> bool {
        self.stop_pulling.is_cancelled()
    }

    /// Resolves when sources must stop pulling.
    pub async fn stopped_pulling(&self) {
        self.stop_pulling.cancelled().await
    }

    /// Resolves when the drain deadline passed: retries stop, unwritten messages are released.
    pub async fn gave_up(&self) {
        self.give_up.cancelled().await
    }

    pub fn has_given_up(&self) -> bool {
        self.give_up.is_cancelled()
    }
}

/// Resolves on SIGTERM (Kubernetes) or SIGINT (a terminal).
pub async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
