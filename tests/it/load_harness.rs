//! The load harness works and its counts close: every event served is acknowledged exactly
//! once and written once, also when appends fail transiently or report row errors. A few
//! seconds each; the real measurements are `scripts/bench.sh` (docs/BENCHMARKS.md).

use crate::support::mesh_load;
use serde_json::Value;

fn run(args: &[&str]) -> Value {
    mesh_load(args)
}

fn n(report: &Value, key: &str) -> u64 {
    report[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {report}"))
}

#[test]
fn every_served_event_is_acked_once_and_written_once() {
    let r = run(&[
        "--events",
        "20000",
        "--payload-bytes",
        "512",
        "--streams",
        "2",
    ]);
    print_counts("none", &r);
    assert_eq!(n(&r, "acked"), 20000);
    assert_eq!(n(&r, "never_acked"), 0);
    assert_eq!(n(&r, "acked_more_than_once"), 0);
    assert_eq!(n(&r, "rows_written"), 20000);
    assert_eq!(r["consumer_exit"], 0, "drained and exited cleanly");
    assert!(r["events_per_sec"].as_f64().unwrap() > 0.0);
    assert!(r["peak_rss_mib"].as_f64().unwrap() > 1.0);
    // Every writer schema passed the harness's check of BigQuery's documented Arrow mapping.
    assert_eq!(n(&r, "schema_refusals"), 0);
}

/// Memory is a function of configuration: with large objects, and with a mix of 1 KiB and
/// 256 KiB ones, the peak RSS stays under the worst case `mesh-ingest check` predicts for the
/// same configuration, and nothing is lost.
#[test]
fn memory_stays_under_the_budget_check_predicts() {
    for args in [
        &["--events", "6000", "--payload-bytes", "16384"][..],
        &[
            "--events",
            "3000",
            "--payload-bytes",
            "1024",
            "--large-every",
            "10",
            "--large-bytes",
            "262144",
        ][..],
    ] {
        let r = run(args);
        let events = args[1].parse::<u64>().unwrap();
        assert_eq!(n(&r, "acked"), events);
        assert_eq!(n(&r, "never_acked"), 0);
        let peak = r["peak_rss_mib"].as_f64().unwrap();
        let predicted = r["predicted_budget_mib"]
            .as_f64()
            .expect("check prints a memory budget");
        assert!(
            peak <= predicted,
            "{args:?}: peak RSS {peak} MiB above the predicted {predicted} MiB"
        );
    }
}

/// The counts every chaos run prints: published (served), ingested, dead-lettered, duplicates.
fn print_counts(name: &str, r: &Value) {
    eprintln!(
        "chaos {name}: published {} / ingested {} / dead-lettered {} / duplicates {} (acked twice {}, never {})",
        n(r, "served").min(n(r, "events")),
        n(r, "rows_written") - n(r, "dead_letter_rows"),
        n(r, "dead_letter_rows"),
        n(r, "duplicate_acks"),
        n(r, "acked_more_than_once"),
        n(r, "never_acked"),
    );
}

#[test]
fn transient_append_failures_are_retried_without_loss_and_counted() {
    // UNAVAILABLE (14) and RESOURCE_EXHAUSTED (8) on 30% of appends.
    for code in ["14", "8"] {
        let r = run(&[
            "--events",
            "5000",
            "--fail-fraction",
            "0.3",
            "--fail-code",
            code,
            "--payload-bytes",
            "256",
        ]);
        print_counts(&format!("append failures (code {code})"), &r);
        let failed = n(&r, "failed_appends");
        assert!(failed > 0, "failures were injected");
        assert_eq!(n(&r, "acked"), 5000);
        assert_eq!(n(&r, "acked_more_than_once"), 0);
        assert_eq!(
            n(&r, "rows_written"),
            5000,
            "each event written once, none lost"
        );
        let retries = r["bigquery_retries_metric"]
            .as_f64()
            .expect("retries scraped");
        assert!(
            retries >= failed as f64,
            "every injected failure is a retry in /metrics ({retries} < {failed})"
        );
    }
}

#[test]
fn a_slow_sink_for_a_minute_keeps_memory_bounded_and_loses_nothing() {
    // Every append takes 4 s: with 4 appends in flight of 1000 rows, about 1,000 events/s
    // drain, so 60,000 events keep the sink slow for about a minute while the harness would
    // serve far faster. Flow control must hold intake back: memory stays flat.
    let r = run(&[
        "--events",
        "60000",
        "--latency-ms",
        "4000",
        "--payload-bytes",
        "1024",
        "--timeout-secs",
        "240",
    ]);
    print_counts("slow sink", &r);
    assert!(
        r["seconds"].as_f64().unwrap() >= 45.0,
        "the sink was slow for most of a minute"
    );
    assert_eq!(n(&r, "acked"), 60000);
    assert_eq!(n(&r, "never_acked"), 0);
    assert_eq!(n(&r, "rows_written"), 60000);
    let rss = r["peak_rss_mib"].as_f64().unwrap();
    assert!(
        rss < 160.0,
        "peak RSS {rss} MiB: bounded by flow control, not by the backlog"
    );
}

#[test]
fn row_errors_send_exactly_those_rows_to_the_dead_letter_table() {
    // Every 4th append refuses its first row; that row goes to the dead-letter table (an
    // append of its own), the rest of the batch is appended again. Ingest + dead-letter rows
    // add up to the events: nothing lost, nothing twice.
    let r = run(&["--events", "5000", "--row-error-every", "4"]);
    print_counts("row errors", &r);
    let refused = n(&r, "row_error_appends");
    assert!(refused > 0);
    // One refused row per row-error answer, unless that answer hit a dead-letter append
    // (then the dead-letter row is retried alone and lands).
    assert!(n(&r, "dead_letter_rows") >= 1 && n(&r, "dead_letter_rows") <= refused);
    assert_eq!(n(&r, "acked"), 5000);
    assert_eq!(n(&r, "acked_more_than_once"), 0);
    assert_eq!(n(&r, "rows_written"), 5000);
}
