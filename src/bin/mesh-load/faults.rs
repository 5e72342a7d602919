//! Faults the harness injects on a schedule, relative to the first message served: windows
//! in which every append to a table is answered with one gRPC status (`--fault`), and a window
//! in which `tables.get` describes the ingest table without a column (`--drift`).

use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Which table a fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableFilter {
    Ingest,
    DeadLetter,
    Any,
}

/// From `from` for `length` after the first serve, appends to `table` get status `code`.
#[derive(Debug, Clone)]
pub struct FaultWindow {
    pub table: TableFilter,
    pub code: i32,
    pub from: Duration,
    pub length: Duration,
}

/// `TABLE:CODE:FROM_SECS:FOR_SECS`, e.g. `ingest:7:2:30` (PERMISSION_DENIED for 30 s from 2 s).
impl FromStr for FaultWindow {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let [table, code, from, length] = parts.as_slice() else {
            return Err(format!("`{s}` is not TABLE:CODE:FROM_SECS:FOR_SECS"));
        };
        let table = match *table {
            "ingest" => TableFilter::Ingest,
            "dead_letter" => TableFilter::DeadLetter,
            "any" => TableFilter::Any,
            t => return Err(format!("table `{t}` is not ingest, dead_letter or any")),
        };
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("`{v}`: {e}"));
        Ok(FaultWindow {
            table,
            code: code.parse().map_err(|e| format!("code `{code}`: {e}"))?,
            from: Duration::from_secs_f64(number(from)?),
            length: Duration::from_secs_f64(number(length)?),
        })
    }
}

/// `FROM_SECS:FOR_SECS`.
#[derive(Debug, Clone)]
pub struct Window {
    pub from: Duration,
    pub length: Duration,
}

impl FromStr for Window {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (from, length) = s
            .split_once(':')
            .ok_or_else(|| format!("`{s}` is not FROM_SECS:FOR_SECS"))?;
        let number = |v: &str| v.parse::<f64>().map_err(|e| format!("`{v}`: {e}"));
        Ok(Window {
            from: Duration::from_secs_f64(number(from)?),
            length: Duration::from_secs_f64(number(length)?),
        })
    }
}

impl Window {
    fn contains(&self, since_epoch: Duration) -> bool {
        since_epoch >= self.from && since_epoch < self.from + self.length
    }
}

/// The schedule, and when it starts (the first message served).
#[derive(Debug, Default)]
pub struct Schedule {
    pub faults: Vec<FaultWindow>,
    pub drift: Option<Window>,
    epoch: Mutex<Option<Instant>>,
}

impl Schedule {
    pub fn new(faults: Vec<FaultWindow>, drift: Option<Window>) -> Self {
        Schedule {
            faults,
            drift,
            epoch: Mutex::new(None),
        }
    }

    /// Starts the clock (once).
    pub fn start(&self) {
        self.epoch.lock().unwrap().get_or_insert_with(Instant::now);
    }

    fn since_epoch(&self) -> Option<Duration> {
        self.epoch.lock().unwrap().map(|e| e.elapsed())
    }

    /// The status an append to this table gets now, if a fault window is open.
    pub fn fault(&self, dead_letter: bool) -> Option<i32> {
        let now = self.since_epoch()?;
        self.faults
            .iter()
            .find(|f| {
                let table = match f.table {
                    TableFilter::Any => true,
                    TableFilter::Ingest => !dead_letter,
                    TableFilter::DeadLetter => dead_letter,
                };
                table
                    && Window {
                        from: f.from,
                        length: f.length,
                    }
                    .contains(now)
            })
            .map(|f| f.code)
    }

    /// Whether `tables.get` describes the drifted ingest table now.
    pub fn drifted(&self) -> bool {
        match (&self.drift, self.since_epoch()) {
            (Some(w), Some(now)) => w.contains(now),
            _ => false,
        }
    }

    /// When the last fault (or drift) window closes, since the epoch.
    pub fn last_window_end(&self) -> Duration {
        let faults = self.faults.iter().map(|f| f.from + f.length);
        let drift = self.drift.iter().map(|w| w.from + w.length);
        faults.chain(drift).max().unwrap_or_default()
    }

    /// The first window's opening and closing, since the epoch.
    pub fn first_window(&self) -> Option<(Duration, Duration)> {
        let faults = self.faults.iter().map(|f| (f.from, f.from + f.length));
        let drift = self.drift.iter().map(|w| (w.from, w.from + w.length));
        faults.chain(drift).min()
    }

    pub fn elapsed(&self) -> Option<Duration> {
        self.since_epoch()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_open_per_table() {
        let f: FaultWindow = "dead_letter:7:1.5:10".parse().unwrap();
        assert_eq!(f.table, TableFilter::DeadLetter);
        assert_eq!(f.code, 7);
        assert_eq!(f.from, Duration::from_millis(1500));
        assert!("ingest:7:1".parse::<FaultWindow>().is_err());
        let s = Schedule::new(vec!["ingest:7:0:60".parse().unwrap()], None);
        assert_eq!(s.fault(false), None, "nothing before the first serve");
        s.start();
        assert_eq!(s.fault(false), Some(7));
        assert_eq!(s.fault(true), None);
    }
}
