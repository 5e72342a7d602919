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
    /// Why appends currently fail, per table; `None` when the last append succeeded.
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
            if let Some(p) = o.ingest_problem.lock().expect("health lock").as_ref() {
                problems.push(format!("{}: ingest writer failing: {p}", o.name));
            }
            if let Some(p) = o.dead_letter_problem.lock().expect("health lock").as_ref() {
                problems.push(format!("{}: dead-letter writer failing: {p}", o.name));
            }
        }
        if problems.is_empty() {
            Ok(format!("ready: {} object(s)", objects.len()))
        } else {
            Err(problems)
        }
    }
}

impl ObjectHealth {
    pub fn stream_up(&self) {
        self.streams_up.fetch_add(1, Ordering::Relaxed);
    }

    pub fn stream_down(&self) {
        let _ = self
            .streams_up
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    pub fn writer_ok(&self, table: TableKind) {
        *self.problem(table).lock().expect("health lock") = None;
    }

    pub fn writer_failing(&self, table: TableKind, why: String) {
        *self.problem(table).lock().expect("health lock") = Some(why);
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
        o.stream_up();
        let err = h.readiness().unwrap_err();
        assert_eq!(err, vec!["order: 1 of 2 streaming-pull streams down"]);
        o.stream_up();
        assert!(h.readiness().is_ok());
        o.writer_failing(TableKind::Ingest, "UNAVAILABLE".into());
        assert!(h.readiness().unwrap_err()[0].contains("ingest writer failing: UNAVAILABLE"));
        o.writer_ok(TableKind::Ingest);
        h.set_draining();
        assert!(h.readiness().unwrap_err()[0].starts_with("draining"));
    }
}
