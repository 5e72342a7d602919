//! Liveness and readiness state, written by the pipeline and read by /readyz. Readiness says
//! which object's stream or writer is down, so an operator reads the cause from the probe.

use crate::tables::TableKind;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
pub struct Health {
    objects: Mutex<Vec<Arc<ObjectHealth>>>,
    draining: AtomicBool,
}

#[derive(Debug)]
pub struct ObjectHealth {
    name: String,
    streams: usize,
    streams_up: AtomicUsize,
    /// What is wrong with each table (`<kind> table <name> <state> (<cause>)`); `None` while
    /// it takes rows. Our words only: upstream error text stays in the logs.
    ingest_problem: Mutex<Option<String>>,
    dead_letter_problem: Mutex<Option<String>>,
}

impl Health {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    pub fn register(&self, name: &str, streams: usize) -> Arc<ObjectHealth> {
        let o = Arc::new(ObjectHealth {
            name: name.to_string(),
            streams,
            streams_up: AtomicUsize::new(0),
            ingest_problem: Mutex::new(None),
            dead_letter_problem: Mutex::new(None),
        });
        self.objects.lock().expect("health lock").push(o.clone());
        o
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// `Ok` when every object's streams and writers are up; otherwise what is down.
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
            for table in [&o.ingest_problem, &o.dead_letter_problem] {
                if let Some(p) = table.lock().expect("health lock").as_ref() {
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

    /// `problem`: what is wrong with the table named `name`, or `None` when it takes rows.
    pub fn set_destination(&self, table: TableKind, name: &str, problem: Option<String>) {
        *self.problem(table).lock().expect("health lock") =
            problem.map(|p| format!("{} table {name} {p}", table.as_str()));
    }

    fn problem(&self, table: TableKind) -> &Mutex<Option<String>> {
        match table {
            TableKind::Ingest => &self.ingest_problem,
            TableKind::DeadLetter => &self.dead_letter_problem,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_names_what_is_down() {
        let h = Health::new();
        let o = h.register("order", 2);
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
        o.set_destination(
            TableKind::Ingest,
            "p.d.t",
            Some("halted (PERMISSION_DENIED)".into()),
        );
        assert_eq!(
            h.readiness().unwrap_err(),
            vec!["order: ingest table p.d.t halted (PERMISSION_DENIED)"]
        );
        o.set_destination(TableKind::Ingest, "p.d.t", None);
        assert!(h.readiness().is_ok());
        h.set_draining();
        assert!(h.readiness().unwrap_err()[0].starts_with("draining"));
    }
}
