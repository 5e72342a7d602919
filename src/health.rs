//! Liveness and readiness state, written by the pipeline and read by /healthz and /readyz.
//! Readiness says which object's subscription, stream or table is down and why, so an operator
//! reads the cause from the probe. Liveness is the progress watchdog: a process that holds
//! messages and finishes no append for `stall_timeout` is stuck, and /healthz fails so that
//! Kubernetes restarts it (its leases would otherwise be kept for `max_lease_secs`).

use prometheus_client::metrics::gauge::Gauge;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long messages may be held with no append finishing before the process counts as stuck.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Health {
    objects: Mutex<Vec<Arc<ObjectHealth>>>,
    draining: AtomicBool,
    stall_timeout: Duration,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            objects: Mutex::default(),
            draining: AtomicBool::default(),
            stall_timeout: DEFAULT_STALL_TIMEOUT,
        }
    }
}

/// The parts of an object that readiness reports on, each with its own problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The Pub/Sub subscription, as the source's probe sees it.
    Subscription = 0,
    Ingest = 1,
    DeadLetter = 2,
}

#[derive(Debug)]
pub struct ObjectHealth {
    name: String,
    streams: usize,
    streams_up: AtomicUsize,
    /// What is wrong with each part (`<part> <name> <state> (<cause>)`), by [`Part`]; `None`
    /// while it works. Our words only: upstream error text stays in the logs.
    problems: [Mutex<Option<String>>; 3],
    /// Append attempts that finished, whatever their outcome: the watchdog's sign of life.
    progress: AtomicU64,
    /// Messages received and not yet acknowledged (the object's in-flight gauge).
    held: Gauge,
    /// Messages held and no progress since the last look; `None` while nothing is held or
    /// the last look saw progress.
    stalled: Mutex<Option<Stall>>,
}

/// A stall the watchdog is timing.
#[derive(Debug, Clone, Copy)]
struct Stall {
    /// The progress count it started at.
    progress: u64,
    since: Instant,
    /// Whether passing the timeout was logged.
    reported: bool,
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// A health whose watchdog fails liveness after `stall_timeout` without progress.
    pub fn with_stall_timeout(stall_timeout: Duration) -> Arc<Self> {
        Arc::new(Health {
            stall_timeout,
            ..Self::default()
        })
    }

    /// `held`: the object's gauge of messages received and not yet acknowledged.
    pub fn register(&self, name: &str, streams: usize, held: Gauge) -> Arc<ObjectHealth> {
        let o = Arc::new(ObjectHealth {
            name: name.to_string(),
            streams,
            streams_up: AtomicUsize::new(0),
            problems: Default::default(),
            progress: AtomicU64::new(0),
            held,
            stalled: Mutex::new(None),
        });
        self.objects.lock().expect("health lock").push(o.clone());
        o
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `Ok` when every object's subscription, streams and tables are up; otherwise what is down.
    pub fn readiness(&self) -> Result<String, Vec<String>> {
        let mut problems = Vec::new();
        if self.draining.load(Ordering::Relaxed) {
            problems.push("draining: shutting down".to_string());
        }
        let objects = self.objects.lock().expect("health lock");
        if objects.is_empty() {
            problems.push("starting: no object pipeline running yet".to_string());
        }
        for o in objects.iter() {
            let up = o.streams_up.load(Ordering::Relaxed);
            if up < o.streams {
                problems.push(format!(
                    "{}: {} of {} streaming-pull streams down",
                    o.name,
                    o.streams - up,
                    o.streams
                ));
            }
            for part in &o.problems {
                if let Some(p) = part.lock().expect("health lock").as_ref() {
                    problems.push(format!("{}: {p}", o.name));
                }
            }
        }
        if problems.is_empty() {
            Ok(format!("ready: {} object(s)", objects.len()))
        } else {
            Err(problems)
        }
    }

    /// The watchdog's look, once a second: an object that holds messages and whose progress
    /// count has not moved starts (or keeps) its stall clock. Logs once when a stall passes
    /// the timeout.
    pub fn watch_progress(&self) {
        let now = Instant::now();
        for o in self.objects.lock().expect("health lock").iter() {
            let progress = o.progress.load(Ordering::Acquire);
            let mut stalled = o.stalled.lock().expect("health lock");
            *stalled = match *stalled {
                _ if o.held.get() <= 0 => None,
                Some(mut stall) if stall.progress == progress => {
                    let waited = now - stall.since;
                    if waited >= self.stall_timeout && !stall.reported {
                        stall.reported = true;
                        tracing::error!(object = %o.name, held = o.held.get(),
                            stalled_secs = waited.as_secs(),
                            "no progress: messages are held and no append has finished; /healthz fails so the process is restarted");
                    }
                    Some(stall)
                }
                _ => Some(Stall {
                    progress,
                    since: now,
                    reported: false,
                }),
            };
        }
    }

    /// `Ok` unless an object has held messages for longer than the stall timeout with no
    /// append finishing: then what is stuck.
    pub fn liveness(&self) -> Result<(), Vec<String>> {
        let now = Instant::now();
        let problems: Vec<String> = self
            .objects
            .lock()
            .expect("health lock")
            .iter()
            .filter_map(|o| {
                let stall = (*o.stalled.lock().expect("health lock"))?;
                let waited = now - stall.since;
                (waited >= self.stall_timeout).then(|| {
                    format!(
                        "{}: {} message(s) held and no append finished for {} s",
                        o.name,
                        o.held.get(),
                        waited.as_secs()
                    )
                })
            })
            .collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }
}

/// A streaming-pull stream counted as up for as long as this lives: dropped on any exit of
/// the stream's task, a panic included, it counts the stream down.
#[derive(Debug)]
pub struct StreamUp(Arc<ObjectHealth>);

impl Drop for StreamUp {
    fn drop(&mut self) {
        let _ = self
            .0
            .streams_up
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }
}

impl ObjectHealth {
    pub fn stream_up(self: &Arc<Self>) -> StreamUp {
        self.streams_up.fetch_add(1, Ordering::Relaxed);
        StreamUp(self.clone())
    }

    /// An append attempt finished (landed or failed): the object is not stuck.
    pub fn progressed(&self) {
        self.progress.fetch_add(1, Ordering::AcqRel);
    }
}

/// One part's state as readiness, its gauge and the log report it. The three are changed
/// under one lock, so a scrape, a probe and the log never disagree about it.
#[derive(Debug)]
pub struct Reporter {
    health: Arc<ObjectHealth>,
    part: Part,
    gauge: Gauge,
    status: Mutex<Status>,
}

/// A reported state: the gauge's value, its name, our words for the cause, and a count of
/// changes (a caller that looked, then waited for an answer, changes it only if nobody else
/// did meanwhile).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub value: i64,
    pub name: &'static str,
    pub cause: String,
    pub changes: u64,
}

impl Reporter {
    /// Starts in `initial`, which readiness shows as `problem` (`None`: ready).
    pub fn new(
        health: Arc<ObjectHealth>,
        part: Part,
        gauge: Gauge,
        initial: (i64, &'static str, &str),
        problem: Option<String>,
    ) -> Self {
        gauge.set(initial.0);
        *health.problems[part as usize].lock().expect("health lock") = problem;
        Reporter {
            health,
            part,
            gauge,
            status: Mutex::new(Status {
                value: initial.0,
                name: initial.1,
                cause: initial.2.to_string(),
                changes: 0,
            }),
        }
    }

    pub fn status(&self) -> Status {
        self.status.lock().expect("status lock").clone()
    }

    /// Records `(value, name, cause)` and what readiness shows (`problem`), unless nothing
    /// changed or, with `unless_changed_since`, somebody changed it after that count. Returns
    /// the status it replaced, for the caller's one log line per change.
    pub fn set(
        &self,
        (value, name, cause): (i64, &'static str, &str),
        problem: Option<String>,
        unless_changed_since: Option<u64>,
    ) -> Option<Status> {
        let mut status = self.status.lock().expect("status lock");
        if (status.value == value && status.cause == cause)
            || unless_changed_since.is_some_and(|n| n != status.changes)
        {
            return None;
        }
        let changes = status.changes + 1;
        let was = std::mem::replace(
            &mut *status,
            Status {
                value,
                name,
                cause: cause.to_string(),
                changes,
            },
        );
        self.gauge.set(value);
        *self.health.problems[self.part as usize]
            .lock()
            .expect("health lock") = problem;
        Some(was)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_is_down() {
        let h = Health::new();
        let o = h.register("order", 2, Gauge::default());
        let _first = o.stream_up();
        let err = h.readiness().unwrap_err();
        assert_eq!(err, vec!["order: 1 of 2 streaming-pull streams down"]);
        let second = o.stream_up();
        assert!(h.readiness().is_ok());
        // A stream task that ends, or panics, drops its guard: the stream counts as down.
        let panicked = std::thread::spawn(move || {
            let _guard = second;
            panic!("a stream task panics");
        })
        .join();
        assert!(panicked.is_err());
        assert_eq!(
            h.readiness().unwrap_err(),
            vec!["order: 1 of 2 streaming-pull streams down"]
        );
        let _second = o.stream_up();
        assert!(h.readiness().is_ok());
        let gauge = Gauge::default();
        let table = Reporter::new(o.clone(), Part::Ingest, gauge.clone(), (0, "ok", ""), None);
        let problem = Some("ingest table p.d.t halted (PERMISSION_DENIED)".to_string());
        let was = table.set((2, "halted", "PERMISSION_DENIED"), problem.clone(), None);
        assert_eq!(was.map(|s| s.name), Some("ok"));
        assert_eq!(gauge.get(), 2);
        assert_eq!(
            h.readiness().unwrap_err(),
            vec!["order: ingest table p.d.t halted (PERMISSION_DENIED)"]
        );
        assert!(
            table
                .set((2, "halted", "PERMISSION_DENIED"), problem, None)
                .is_none(),
            "no change, no report"
        );
        // A look that started before another change does not overwrite it.
        assert!(table.set((0, "ok", ""), None, Some(0)).is_none());
        assert!(h.readiness().is_err());
        assert!(table.set((0, "ok", ""), None, Some(1)).is_some());
        assert!(h.readiness().is_ok());
        assert_eq!(gauge.get(), 0);
        h.set_draining();
        assert!(h.readiness().unwrap_err()[0].starts_with("draining"));
    }

    #[tokio::test(start_paused = true)]
    async fn liveness_fails_only_when_messages_are_held_without_progress() {
        let h = Health::with_stall_timeout(Duration::from_secs(60));
        let held = Gauge::default();
        let o = h.register("order", 1, held.clone());
        let look_for = |secs: u64| {
            let h = h.clone();
            async move {
                for _ in 0..secs {
                    h.watch_progress();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        // Idle for longer than the timeout: nothing held, alive.
        look_for(120).await;
        assert!(h.liveness().is_ok());
        // A message arrives after a long idle time: the clock starts now, not at the last
        // progress.
        held.set(1);
        look_for(30).await;
        assert!(h.liveness().is_ok());
        // Progress resets the clock.
        o.progressed();
        look_for(45).await;
        assert!(h.liveness().is_ok(), "45 s since the last progress");
        look_for(20).await;
        let stuck = h.liveness().unwrap_err();
        assert_eq!(stuck.len(), 1);
        assert!(
            stuck[0].starts_with("order: 1 message(s) held and no append finished for"),
            "{stuck:?}"
        );
        o.progressed();
        look_for(1).await;
        assert!(h.liveness().is_ok(), "progress again: alive");
        held.set(0);
        look_for(120).await;
        assert!(h.liveness().is_ok());
    }
}
