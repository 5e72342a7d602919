//! Watches the pipeline's long-running tasks. A task that panics is logged and counted; a
//! streaming-pull stream is restarted (its messages were released for redelivery when it
//! unwound), at most `MAX_RESTARTS` times a minute. A task that cannot be restarted (an
//! object's sink owns its channel), or one that keeps panicking, ends the service with an
//! error, so the process exits non-zero and Kubernetes restarts it.

use crate::telemetry::metrics::ObjectMetrics;
use futures::future::BoxFuture;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;

/// Restarts allowed per task within `RESTART_WINDOW`.
const MAX_RESTARTS: usize = 5;
const RESTART_WINDOW: Duration = Duration::from_secs(60);

/// Starts a task again; `None` for one that cannot be restarted.
pub type Restart = Option<Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>>;

struct Watched {
    /// e.g. `order stream 1`, for logs.
    label: String,
    /// `stream` or `sink`, the metric's label.
    kind: &'static str,
    metrics: ObjectMetrics,
    restart: Restart,
    restarts: VecDeque<Instant>,
}

#[derive(Default)]
pub struct Supervisor {
    tasks: JoinSet<()>,
    watched: HashMap<Id, Watched>,
}

impl Supervisor {
    /// Runs `task`; `restart` starts it again after a panic.
    pub fn spawn(
        &mut self,
        label: String,
        kind: &'static str,
        metrics: ObjectMetrics,
        task: BoxFuture<'static, ()>,
        restart: Restart,
    ) {
        let id = self.tasks.spawn(task).id();
        self.watched.insert(
            id,
            Watched {
                label,
                kind,
                metrics,
                restart,
                restarts: VecDeque::new(),
            },
        );
    }

    /// Watches until a task ends that must not: returns why. Every task runs until shutdown,
    /// so before it any end is a failure; a panicked restartable task is started again.
    pub async fn watch(&mut self) -> String {
        loop {
            let Some(ended) = self.tasks.join_next_with_id().await else {
                return "no pipeline task is running".into();
            };
            let (id, panic) = match ended {
                Ok((id, ())) => (id, None),
                Err(e) => (e.id(), Some(e.to_string())),
            };
            let Some(mut w) = self.watched.remove(&id) else {
                continue;
            };
            let Some(panic) = panic else {
                return format!("{} ended before shutdown", w.label);
            };
            tracing::error!(task = %w.label, error = %panic, "pipeline task panicked");
            w.metrics.task_restarted(w.kind);
            let now = Instant::now();
            w.restarts
                .retain(|t| now.duration_since(*t) < RESTART_WINDOW);
            let Some(restart) = w
                .restart
                .clone()
                .filter(|_| w.restarts.len() < MAX_RESTARTS)
            else {
                return format!("{} panicked and cannot be restarted", w.label);
            };
            w.restarts.push_back(now);
            tracing::warn!(task = %w.label, "restarting the task");
            let id = self.tasks.spawn(restart()).id();
            self.watched.insert(id, w);
        }
    }

    /// Stops restarting (dropping what restarts hold, such as channel senders) and waits for
    /// every task to end.
    pub async fn drain(&mut self) {
        self.watched.clear();
        while let Some(ended) = self.tasks.join_next().await {
            if let Err(e) = ended {
                tracing::error!(error = %e, "pipeline task failed while draining");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::telemetry::metrics::Metrics;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn metrics() -> (Arc<Metrics>, ObjectMetrics) {
        let m = Arc::new(Metrics::new());
        let o = m.object("order");
        (m, o)
    }

    #[tokio::test]
    async fn a_panicked_stream_is_restarted_and_counted() {
        let (all, m) = metrics();
        let starts = Arc::new(AtomicUsize::new(0));
        let s = starts.clone();
        let task = move || -> BoxFuture<'static, ()> {
            let first = s.fetch_add(1, Ordering::SeqCst) == 0;
            Box::pin(async move {
                if first {
                    panic!("first run panics");
                }
                std::future::pending::<()>().await
            })
        };
        let mut sup = Supervisor::default();
        sup.spawn(
            "order stream 0".into(),
            "stream",
            m,
            task(),
            Some(Arc::new(task)),
        );
        let watched = tokio::time::timeout(Duration::from_millis(500), sup.watch()).await;
        assert!(watched.is_err(), "the restarted task runs on: {watched:?}");
        assert_eq!(starts.load(Ordering::SeqCst), 2);
        assert!(
            all.render()
                .contains(r#"mesh_ingest_task_restarts_total{object="order",task="stream"} 1"#)
        );
    }

    #[tokio::test]
    async fn a_task_that_cannot_be_restarted_ends_the_watch() {
        let (_all, m) = metrics();
        let mut sup = Supervisor::default();
        sup.spawn(
            "order sink".into(),
            "sink",
            m.clone(),
            Box::pin(async { panic!("the sink panics") }),
            None,
        );
        let why = sup.watch().await;
        assert_eq!(why, "order sink panicked and cannot be restarted");

        let always = || -> BoxFuture<'static, ()> { Box::pin(async { panic!("again") }) };
        sup.spawn(
            "order stream 1".into(),
            "stream",
            m,
            always(),
            Some(Arc::new(always)),
        );
        let why = sup.watch().await;
        assert_eq!(why, "order stream 1 panicked and cannot be restarted");
    }
}
