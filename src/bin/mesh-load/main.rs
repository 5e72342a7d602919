//! `mesh-load`: the load harness, in the spirit of Vector's `lading`. It serves pre-generated
//! envelopes from its own Pub/Sub StreamingPull server and accepts appends on its own Storage
//! Write server (both on one loopback port), runs a consumer against them — the real
//! `mesh-ingest run`, or any other command such as the Python peer — and reports sustained
//! events/s, CPU seconds per million events and peak RSS of the consumer (from /proc), and
//! served→acknowledged latency. It can slow, stall or fail appends to inject faults.
//! Not part of the production image: a separate binary, built only for load runs and tests.

#![warn(clippy::too_many_lines)]

mod arrow_check;
mod faults;
mod proto;
mod rest;
mod servers;

use bytes::Bytes;
use clap::Parser;
use faults::{FaultWindow, Schedule, Window};
use mesh_ingest::commands::check::BUDGET_LINE;
use mesh_ingest::configuration::template::{ConfigTemplate, ObjectTemplate};
use servers::{PubsubState, WriteFaults, WriteState};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
#[command(name = "mesh-load", about = "Load harness for mesh-ingest")]
struct Args {
    /// Events to serve (each acknowledged once ends the run).
    #[arg(long, default_value_t = 100_000)]
    events: usize,
    /// Approximate payload size of each event, bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: usize,
    /// Streaming-pull streams the consumer opens.
    #[arg(long, default_value_t = 2)]
    streams: usize,
    /// Flow control: max outstanding messages per stream.
    #[arg(long, default_value_t = 2000)]
    max_outstanding: i64,
    /// Latency added to every append, ms.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Fraction of appends answered with --fail-code.
    #[arg(long, default_value_t = 0.0)]
    fail_fraction: f64,
    /// gRPC status code of injected failures (14 UNAVAILABLE, 8 RESOURCE_EXHAUSTED).
    #[arg(long, default_value_t = 14)]
    fail_code: i32,
    /// Every n-th append reports a row error for its first row.
    #[arg(long, default_value_t = 0)]
    row_error_every: u64,
    /// Stall every append for this many seconds …
    #[arg(long, default_value_t = 0)]
    stall_secs: u64,
    /// … starting this many seconds into the run.
    #[arg(long, default_value_t = 2)]
    stall_after_secs: u64,
    /// The mesh-ingest binary (default: beside this one).
    #[arg(long)]
    mesh_ingest: Option<PathBuf>,
    /// Run this command as the consumer instead of mesh-ingest. It gets the endpoint in
    /// MESH_LOAD_ENDPOINT (host:port), the subscription in MESH_LOAD_SUBSCRIPTION and the
    /// table's write stream parent in MESH_LOAD_TABLE.
    #[arg(long, num_args = 1.., allow_hyphen_values = true)]
    peer: Option<Vec<String>>,
    /// Serve at most this many events per second (default: as fast as they are acked).
    #[arg(long)]
    rate: Option<f64>,
    /// Give up after this many seconds.
    #[arg(long, default_value_t = 300)]
    timeout_secs: u64,
    /// Label for the report.
    #[arg(long, default_value = "mesh-ingest")]
    label: String,
    /// A window of failures, `TABLE:CODE:FROM_SECS:FOR_SECS` from the first message served:
    /// every append to TABLE (ingest, dead_letter, any) gets gRPC status CODE. Repeatable.
    #[arg(long = "fault")]
    faults: Vec<FaultWindow>,
    /// `FROM_SECS:FOR_SECS`: in this window `tables.get` describes the ingest table without
    /// `ordering_key` (combine with `--fault ingest:3:…` for a dropped column).
    #[arg(long)]
    drift: Option<Window>,
    /// Every n-th message has a body that is not JSON (dead-lettered as malformed_json).
    #[arg(long, default_value_t = 0)]
    bad_every: usize,
    /// More YAML for the consumer's object file (batch, flow_control, …).
    #[arg(long, default_value = "")]
    object_yaml: String,
    /// Every n-th event carries a payload of `--large-bytes` instead (a mixed load).
    #[arg(long, default_value_t = 0)]
    large_every: usize,
    /// Payload size of the large events of a mixed load, bytes.
    #[arg(long, default_value_t = 256 * 1024)]
    large_bytes: usize,
    /// Start no consumer: print the servers' addresses as JSON and serve until killed.
    #[arg(long)]
    serve_only: bool,
}

const PROJECT: &str = "mesh-load";
const SUBSCRIPTION: &str = "projects/mesh-load/subscriptions/load-sub";

/// The bodies served, cycled: every `large_every`-th one (if any) with a `large_bytes` payload.
fn bodies(payload_bytes: usize, large_every: usize, large_bytes: usize) -> Vec<Bytes> {
    (0..256)
        .map(|i| {
            let payload_bytes = if large_every > 0 && i % large_every == large_every - 1 {
                large_bytes
            } else {
                payload_bytes
            };
            let mut envelope = serde_json::json!({
                "event_id": format!("evt-{i}"),
                "event_type": "OrderUpdated",
                "event_time": "2026-11-20T10:00:00.123456Z",
                "payload": {"order_id": format!("o-{i}"), "status": "paid", "total": 42.5,
                    "currency": "EUR", "items": [{"sku": "tea", "qty": 2}], "pad": ""},
            });
            let base = envelope.to_string().len();
            let pad = payload_bytes.saturating_sub(base.saturating_sub(60));
            envelope["payload"]["pad"] = serde_json::json!("x".repeat(pad));
            Bytes::from(envelope.to_string())
        })
        .collect()
}

/// The consumer's configuration: one object on the harness's subscription. The HTTP port is
/// 0: the service picks a free one and logs it (`bound_port` reads it back).
fn config(args: &Args) -> ConfigTemplate {
    ConfigTemplate {
        project: PROJECT.into(),
        environment: "load".into(),
        port: 0,
        shutdown_deadline_secs: 20,
        // Quiet, but for the start-up line that names the bound address.
        log_level: "warn,mesh_ingest::app=info".into(),
        objects: vec![ObjectTemplate {
            name: "orders".into(),
            subscription: SUBSCRIPTION.into(),
            topic: None,
            ingest_table: format!("{PROJECT}.load.events"),
            dead_letter_table: format!("{PROJECT}.load.dead_letter"),
            yaml: format!(
                "envelope:\n  format: json\n  object_id: payload.order_id\n\
                 streams: {}\n{}",
                args.streams,
                if args.object_yaml.contains("flow_control:") {
                    args.object_yaml.clone()
                } else {
                    format!(
                        "flow_control:\n  max_outstanding_messages: {}\n{}",
                        args.max_outstanding, args.object_yaml
                    )
                }
            ),
        }],
    }
}

/// The HTTP port mesh-ingest logged it bound (JSON logs), once it has.
fn bound_port(log: &Path) -> Option<u16> {
    mesh_ingest::app::port_from_log(&std::fs::read_to_string(log).ok()?)
}

/// CPU seconds (user + system) and peak RSS (bytes) of a process, from /proc.
fn cpu_seconds(pid: u32, ticks_per_sec: f64) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / ticks_per_sec)
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

/// `endpoint`: the gRPC servers (Pub/Sub, Storage Write); `rest`: the tables API.
fn spawn_consumer(
    args: &Args,
    (endpoint, rest): (&str, &str),
    config_dir: &Path,
    log: &Path,
) -> anyhow::Result<Child> {
    let log_file = std::fs::File::create(log)?;
    let mut cmd = match &args.peer {
        Some(command) => {
            let mut c = Command::new(&command[0]);
            c.args(&command[1..]);
            c
        }
        None => {
            let bin = match &args.mesh_ingest {
                Some(p) => p.clone(),
                None => std::env::current_exe()?.with_file_name("mesh-ingest"),
            };
            let mut c = Command::new(bin);
            c.arg("--config")
                .arg(config_dir)
                .args(["--env", "load", "run"]);
            c
        }
    };
    cmd.env("PUBSUB_EMULATOR_HOST", endpoint)
        .env(
            "BIGQUERY_STORAGE_EMULATOR_HOST",
            format!("http://{endpoint}"),
        )
        .env("BIGQUERY_EMULATOR_HOST", format!("http://{rest}"))
        .env("MESH_LOAD_ENDPOINT", endpoint)
        .env("MESH_LOAD_SUBSCRIPTION", SUBSCRIPTION)
        .env(
            "MESH_LOAD_TABLE",
            format!("projects/{PROJECT}/datasets/load/tables/events"),
        )
        .env("MESH_LOAD_STREAMS", args.streams.to_string())
        .env(
            "MESH_LOAD_MAX_OUTSTANDING",
            args.max_outstanding.to_string(),
        )
        .env_remove("RUST_LOG")
        .stdout(Stdio::from(log_file.try_clone()?))
        .stderr(Stdio::from(log_file));
    Ok(cmd.spawn()?)
}

/// The worst case `mesh-ingest check` predicts for the consumer's configuration on this
/// machine's CPUs (MiB); `None` for a peer, or a mesh-ingest that prints no budget.
fn predicted_budget(args: &Args, config_dir: &Path) -> Option<f64> {
    if args.peer.is_some() {
        return None;
    }
    let bin = match &args.mesh_ingest {
        Some(p) => p.clone(),
        None => std::env::current_exe().ok()?.with_file_name("mesh-ingest"),
    };
    let out = Command::new(bin)
        .arg("--config")
        .arg(config_dir)
        .args(["--env", "load", "check"])
        .env_remove("RUST_LOG")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stderr);
    let line = text.lines().find(|l| l.starts_with(BUDGET_LINE))?;
    line.rsplit(": ").next()?.strip_suffix(" MiB")?.parse().ok()
}

/// `GET path` on the consumer's HTTP port: status and body.
async fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).await.ok()?;
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())?;
    Some((status, body))
}

/// The sum of a metric's series in a Prometheus text scrape.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What the consumer showed while the first fault window was open: acknowledgements and
/// dead-letter rows from 1 s after it opened to its close, and /readyz and the destination
/// state gauge half-way through.
#[derive(Default)]
struct FaultObservation {
    acked: (Option<usize>, Option<usize>),
    dead_letter_rows: (Option<u64>, Option<u64>),
    readyz: Option<(u16, String)>,
    destination_state: Option<String>,
}

impl FaultObservation {
    async fn sample(
        &mut self,
        schedule: &Schedule,
        pubsub: &PubsubState,
        write: &WriteState,
        log: &Path,
    ) {
        let (Some((open, close)), Some(now)) = (schedule.first_window(), schedule.elapsed()) else {
            return;
        };
        let acked = pubsub.acked.load(Ordering::Relaxed);
        let dead = write.dead_letter_rows.load(Ordering::Relaxed);
        if now >= open + Duration::from_secs(1) && self.acked.0.is_none() {
            self.acked.0 = Some(acked);
            self.dead_letter_rows.0 = Some(dead);
        }
        if now + Duration::from_millis(200) >= close && self.acked.1.is_none() {
            self.acked.1 = Some(acked);
            self.dead_letter_rows.1 = Some(dead);
        }
        if now >= (open + close) / 2 && self.readyz.is_none() {
            let Some(port) = bound_port(log) else { return };
            self.readyz = http_get(port, "/readyz").await;
            self.destination_state = http_get(port, "/metrics").await.map(|(_, m)| {
                m.lines()
                    .filter(|l| l.starts_with("mesh_ingest_destination_state{"))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }

    fn report(&self) -> serde_json::Value {
        let delta = |(a, b): (Option<u64>, Option<u64>)| a.zip(b).map(|(a, b)| b - a);
        serde_json::json!({
            "acked": delta((self.acked.0.map(|v| v as u64), self.acked.1.map(|v| v as u64))),
            "dead_letter_rows": delta(self.dead_letter_rows),
            "readyz_status": self.readyz.as_ref().map(|r| r.0),
            "readyz": self.readyz.as_ref().map(|r| r.1.clone()),
            "destination_state": self.destination_state,
        })
    }
}

/// What the run measured, from the first message served to the last one acknowledged.
struct Measurement {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss_kib: u64,
    stall_rss_kib: Vec<u64>,
    during_fault: FaultObservation,
}

/// Waits until the consumer pulled its first message (start-up is left out of the figures).
async fn wait_for_first_pull(
    child: &mut Child,
    pubsub: &PubsubState,
    deadline: Instant,
    log: &Path,
) -> anyhow::Result<()> {
    while pubsub.served.load(Ordering::Relaxed) == 0 {
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the consumer exited ({status}) before pulling; log: {}",
                log.display()
            );
        }
        anyhow::ensure!(Instant::now() < deadline, "no pull within the timeout");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

/// Samples the consumer every 50 ms until every event is acknowledged; stalls appends for
/// `--stall-secs` once `--stall-after-secs` have passed.
async fn measure(
    args: &Args,
    child: &mut Child,
    (pubsub, write): (&PubsubState, &WriteState),
    deadline: Instant,
    log: &Path,
) -> anyhow::Result<Measurement> {
    let pid = child.id();
    let ticks = ticks_per_sec();
    let started = Instant::now();
    let cpu_start = cpu_seconds(pid, ticks).unwrap_or(0.0);
    let mut max_rss_kib = 0u64;
    let mut stall_rss_kib: Vec<u64> = Vec::new();
    let mut stall: Option<(Instant, Instant)> = None;
    let mut during_fault = FaultObservation::default();
    loop {
        during_fault
            .sample(&write.schedule, pubsub, write, log)
            .await;
        let acked = pubsub.acked.load(Ordering::Relaxed);
        let rss = status_kib(pid, "VmRSS:").unwrap_or(0);
        max_rss_kib = max_rss_kib.max(rss);
        if args.stall_secs > 0
            && stall.is_none()
            && started.elapsed() >= Duration::from_secs(args.stall_after_secs)
        {
            let until = Instant::now() + Duration::from_secs(args.stall_secs);
            *write.stall_until.lock().unwrap() = Some(until);
            stall = Some((Instant::now(), until));
        }
        if stall.is_some_and(|(from, until)| (from..until).contains(&Instant::now())) {
            stall_rss_kib.push(rss);
        }
        let windows_over = write
            .schedule
            .elapsed()
            .is_some_and(|t| t >= write.schedule.last_window_end());
        if acked >= args.events && windows_over {
            break;
        }
        if let Some(status) = child.try_wait()? {
            anyhow::bail!(
                "the consumer exited ({status}) after {acked} acks; log: {}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("timeout: {acked} of {} acknowledged", args.events);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(Measurement {
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: cpu_seconds(pid, ticks).unwrap_or(0.0) - cpu_start,
        peak_rss_kib: status_kib(pid, "VmHWM:")
            .unwrap_or(max_rss_kib)
            .max(max_rss_kib),
        stall_rss_kib,
        during_fault,
    })
}

/// The report, one JSON object: the figures and the harness's counts.
fn report(
    args: &Args,
    m: &Measurement,
    pubsub: &PubsubState,
    write: &WriteState,
    retries: Option<f64>,
    exit: Option<i32>,
) -> serde_json::Value {
    let latencies = pubsub.latencies();
    let (acked_twice, never_acked) = pubsub.ack_anomalies();
    let dead_letters = dead_letter_report(pubsub, write);
    let mib = |kib: u64| kib as f64 / 1024.0;
    let counter = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    serde_json::json!({
        "label": args.label,
        "events": args.events,
        "payload_bytes": args.payload_bytes,
        "envelope_bytes": bodies(args.payload_bytes, 0, 0)[0].len(),
        "large_every": args.large_every,
        "large_bytes": args.large_bytes,
        "streams": args.streams,
        "seconds": m.seconds,
        "events_per_sec": args.events as f64 / m.seconds,
        "cpu_seconds": m.cpu_seconds,
        "cpu_seconds_per_million": m.cpu_seconds / args.events as f64 * 1e6,
        "events_per_cpu_second": args.events as f64 / m.cpu_seconds.max(1e-9),
        "peak_rss_mib": mib(m.peak_rss_kib),
        "stall_rss_mib_min": m.stall_rss_kib.iter().min().map(|k| mib(*k)),
        "stall_rss_mib_max": m.stall_rss_kib.iter().max().map(|k| mib(*k)),
        "latency_ms_p50": percentile(&latencies, 0.50),
        "latency_ms_p99": percentile(&latencies, 0.99),
        "served": pubsub.served.load(Ordering::Relaxed),
        "acked": pubsub.acked.load(Ordering::Relaxed),
        "acked_more_than_once": acked_twice,
        "never_acked": never_acked,
        "duplicate_acks": pubsub.duplicate_acks.load(Ordering::Relaxed),
        "nacks": pubsub.nacks.load(Ordering::Relaxed),
        "rows_written": counter(&write.rows),
        "dead_letter_rows": counter(&write.dead_letter_rows),
        "appends": counter(&write.appends),
        "append_bytes": counter(&write.bytes),
        "failed_appends": counter(&write.failed_appends),
        "row_error_appends": counter(&write.row_errors),
        "schema_refusals": counter(&write.schema_refusals),
        "consumer_exit": exit,
        "bigquery_retries_metric": retries,
        "fault_appends": counter(&write.fault_appends),
        "expired_leases": pubsub.expired_leases.load(Ordering::Relaxed),
        "max_delivery_attempt": pubsub.max_delivery_attempt(),
        "dead_letters": dead_letters,
        "during_fault": m.during_fault.report(),
    })
}

/// Per bad message: how many dead-letter rows it got, and how long after it was served.
fn dead_letter_report(pubsub: &PubsubState, write: &WriteState) -> serde_json::Value {
    let rows = write.dead_letters.lock().unwrap().clone();
    let mut per_message: std::collections::HashMap<usize, usize> = Default::default();
    let mut latency_ms_max: f64 = 0.0;
    for (index, at) in &rows {
        *per_message.entry(*index).or_default() += 1;
        let served = pubsub.served_at(*index);
        latency_ms_max =
            latency_ms_max.max(at.saturating_duration_since(served).as_secs_f64() * 1e3);
    }
    let bad = (0..pubsub.total()).filter(|i| pubsub.is_bad(*i)).count();
    serde_json::json!({
        "bad_messages": bad,
        "distinct": per_message.len(),
        "more_than_once": per_message.values().filter(|n| **n > 1).count(),
        "latency_ms_max": latency_ms_max,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pubsub = PubsubState::new(
        bodies(args.payload_bytes, args.large_every, args.large_bytes),
        args.bad_every,
        args.events,
        args.rate,
    );
    let schedule = Arc::new(Schedule::new(args.faults.clone(), args.drift.clone()));
    let faults = WriteFaults {
        latency: Duration::from_millis(args.latency_ms),
        fail_fraction: args.fail_fraction,
        fail_code: args.fail_code,
        row_error_every: args.row_error_every,
    };
    let write = WriteState::new(faults, schedule.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let endpoint = listener.local_addr()?.to_string();
    tokio::spawn(servers::serve(listener, pubsub.clone(), write.clone()));
    tokio::spawn(pubsub.clone().expire_leases());
    let rest_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let rest = rest_listener.local_addr()?.to_string();
    tokio::spawn(rest::serve(rest_listener, schedule.clone()));
    if args.serve_only {
        // For tests that are their own client: the endpoints, then serve until killed.
        println!(
            "{}",
            serde_json::json!({"endpoint": endpoint, "rest": rest})
        );
        std::future::pending::<()>().await;
    }

    let dir = std::env::temp_dir().join(format!("mesh-load-{}", std::process::id()));
    config(&args).write(&dir)?;
    let log = dir.join("consumer.log");
    let mut child = spawn_consumer(&args, (&endpoint, &rest), &dir, &log)?;
    let pid = child.id();
    // The clock starts with the first message served; CPU is counted from the same moment,
    // so start-up (client set-up, connecting) is left out of the per-event figures.
    let deadline = Instant::now() + Duration::from_secs(args.timeout_secs);
    wait_for_first_pull(&mut child, &pubsub, deadline, &log).await?;
    schedule.start();
    let measurement = measure(&args, &mut child, (&pubsub, &write), deadline, &log).await?;
    // Let late duplicate acks (if any) arrive before counting.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let retries = match (&args.peer, bound_port(&log)) {
        (None, Some(port)) => http_get(port, "/metrics")
            .await
            .map(|(_, m)| metric_sum(&m, "mesh_ingest_bigquery_retries_total")),
        _ => None,
    };
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    let exit = tokio::task::spawn_blocking(move || child.wait()).await??;
    let mut report = report(&args, &measurement, &pubsub, &write, retries, exit.code());
    report["predicted_budget_mib"] = predicted_budget(&args, &dir).into();
    println!("{report}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
