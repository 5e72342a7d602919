//! `contract preview`'s findings, before a new version of the object files ships: of the
//! recent ingest log, how many accepted events the new configuration would reject; of the
//! recent dead letters, how many it would accept; for each major whose definition changes,
//! how the data product differs over the same history; and what each query scans. Pure: the
//! tallies, the report (text and JSON), and the two decisions (refuse a scan above the limit;
//! exit 1 when rejects appear that `contract diff` did not class breaking).
//! `commands::preview` reads the tables and feeds them in.

pub mod redecode;

use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// How many example message ids a reason keeps.
pub const EXAMPLES: usize = 3;

/// The messages of one reason code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ReasonTally {
    pub count: u64,
    /// The first few message ids, in the order read.
    pub examples: Vec<String>,
}

/// Messages examined, and those that changed side, by reason code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Redecoded {
    pub examined: u64,
    /// Accepted events: the reason the new configuration gives. Dead letters: the reason they
    /// were stored with.
    pub changed: BTreeMap<String, ReasonTally>,
    /// Dead letters only: still refused, by the reason the new configuration gives (and
    /// `body_not_kept` for one stored cut to `max_dead_letter_data_bytes`).
    pub unchanged: BTreeMap<String, u64>,
}

impl Redecoded {
    /// One message changed side, for `reason`.
    pub fn changed(&mut self, reason: &str, message_id: &str) {
        let t = self.changed.entry(reason.to_string()).or_default();
        t.count += 1;
        if t.examples.len() < EXAMPLES {
            t.examples.push(message_id.to_string());
        }
    }

    pub fn unchanged(&mut self, reason: &str) {
        *self.unchanged.entry(reason.to_string()).or_default() += 1;
    }

    pub fn changed_total(&self) -> u64 {
        self.changed.values().map(|t| t.count).sum()
    }
}

/// One major of the data product under both definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProductDiff {
    pub major: u32,
    /// The old major it is compared with (the same, or the old current one for a new major).
    pub against: u32,
    pub objects_old: u64,
    pub objects_new: u64,
    /// Live under the old definition only / the new one only.
    pub only_old: u64,
    pub only_new: u64,
    /// Per column present under both: objects (live under both) whose values differ.
    pub changed: BTreeMap<String, u64>,
}

/// A query and the bytes its dry run says it scans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Scan {
    pub what: String,
    pub bytes: u64,
}

/// Everything the preview found for one object.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ObjectPreview {
    pub object: String,
    /// Breaking changes `contract diff` lists for this object.
    pub breaking_in_diff: usize,
    pub compatible_in_diff: usize,
    /// Accepted events the new configuration would reject.
    pub accepted: Redecoded,
    /// Dead letters the new configuration would accept.
    pub dead_letters: Redecoded,
    pub products: Vec<ProductDiff>,
    pub scans: Vec<Scan>,
}

impl ObjectPreview {
    /// Rejects the diff did not announce: accepted events the new configuration refuses while
    /// `contract diff` classes no change of the object breaking.
    pub fn missed_by_diff(&self) -> bool {
        self.breaking_in_diff == 0 && self.accepted.changed_total() > 0
    }
}

/// Why the queries must not run: their dry runs add up to more than `max_bytes`.
pub fn over_limit(scans: &[Scan], max_bytes: u64) -> Option<String> {
    let total: u64 = scans.iter().map(|s| s.bytes).sum();
    (total > max_bytes).then(|| {
        format!(
            "the preview would scan {} (more than --max-bytes {}); narrow --since or raise the limit",
            bytes(total),
            bytes(max_bytes)
        )
    })
}

/// `1536` → `1.5 KiB`.
pub fn bytes(n: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

fn tallies(t: &BTreeMap<String, ReasonTally>) -> String {
    t.iter()
        .map(|(reason, t)| format!("{reason} {} (e.g. {})", t.count, t.examples.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The report for people.
pub fn to_text(previews: &[ObjectPreview], since: &str) -> String {
    let mut text = String::new();
    for p in previews {
        let _ = writeln!(
            text,
            "{} (contract diff: {} breaking, {} compatible)",
            p.object, p.breaking_in_diff, p.compatible_in_diff
        );
        for s in &p.scans {
            let _ = writeln!(text, "  scanned   {}: {}", s.what, bytes(s.bytes));
        }
        let a = &p.accepted;
        let _ = write!(
            text,
            "  accepted events since {since}: {} examined, {} would now be rejected",
            a.examined,
            a.changed_total()
        );
        if !a.changed.is_empty() {
            let _ = write!(text, ": {}", tallies(&a.changed));
        }
        text.push('\n');
        let d = &p.dead_letters;
        let _ = write!(
            text,
            "  dead letters since {since}: {} examined, {} would now be accepted",
            d.examined,
            d.changed_total()
        );
        if !d.changed.is_empty() {
            let _ = write!(text, " (stored as {})", tallies(&d.changed));
        }
        let still: u64 = d.unchanged.values().sum();
        let _ = writeln!(text, ", {still} still refused");
        for c in &p.products {
            let _ = write!(
                text,
                "  data product v{} (against v{} as it is): {} objects before, {} after, {} only before, {} only after",
                c.major, c.against, c.objects_old, c.objects_new, c.only_old, c.only_new
            );
            let changed: Vec<String> = c
                .changed
                .iter()
                .map(|(col, n)| format!("{col} {n}"))
                .collect();
            if !changed.is_empty() {
                let _ = write!(
                    text,
                    "; objects whose column differs: {}",
                    changed.join(", ")
                );
            }
            text.push('\n');
        }
        if p.missed_by_diff() {
            let _ = writeln!(
                text,
                "  NOT ANNOUNCED: {} accepted event(s) would be rejected, but contract diff \
                 classes no change of {} breaking",
                a.changed_total(),
                p.object
            );
        }
    }
    text
}

/// The report for bots.
pub fn to_json(previews: &[ObjectPreview], since: &str) -> serde_json::Value {
    serde_json::json!({
        "since": since,
        "missed_by_diff": previews.iter().filter(|p| p.missed_by_diff()).map(|p| &p.object).collect::<Vec<_>>(),
        "objects": previews,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_the_diff_did_not_class_breaking_fail_the_preview() {
        let mut p = ObjectPreview {
            object: "order".into(),
            ..ObjectPreview::default()
        };
        assert!(!p.missed_by_diff());
        for id in ["m1", "m2", "m3", "m4"] {
            p.accepted.changed("schema_violation", id);
        }
        assert!(p.missed_by_diff());
        assert_eq!(
            p.accepted.changed["schema_violation"],
            ReasonTally {
                count: 4,
                examples: vec!["m1".into(), "m2".into(), "m3".into()]
            }
        );
        assert!(to_text(&[p.clone()], "2026-12-01").contains("NOT ANNOUNCED: 4 accepted event(s)"));
        p.breaking_in_diff = 1;
        assert!(!p.missed_by_diff(), "announced by the diff");
    }

    #[test]
    fn scans_above_the_limit_are_refused() {
        let scans = [
            Scan {
                what: "a".into(),
                bytes: 600,
            },
            Scan {
                what: "b".into(),
                bytes: 500,
            },
        ];
        assert_eq!(over_limit(&scans, 1100), None);
        assert!(
            over_limit(&scans, 1099)
                .unwrap()
                .contains("would scan 1.1 KiB")
        );
        assert_eq!(bytes(5 * 1024 * 1024 * 1024), "5.0 GiB");
    }
}
