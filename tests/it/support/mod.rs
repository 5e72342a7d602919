//! The harness every integration test shares: a throw-away configuration per test (unique
//! topic, subscription and datasets, so tests run in parallel against the same emulators),
//! the real `mesh-ingest` binary started on a port it picks itself, and readers for what
//! landed in BigQuery, Pub/Sub and /metrics.
//!
//! The emulators must be running (`scripts/test.sh` starts them); a test never skips.

mod cut_proxy;
mod private_bigquery;

pub use cut_proxy::CutProxy;
pub use private_bigquery::PrivateBigQuery;

use mesh_ingest::configuration::template::{ConfigTemplate, ObjectTemplate};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PROJECT: &str = "mesh-local";

/// Where the emulators listen, from the variables `scripts/start-emulators.sh` exports.
#[derive(Clone, Debug)]
pub struct Emulators {
    pub pubsub: String,
    pub bigquery: String,
    pub bigquery_storage: String,
}

fn required_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the integration tests need the Pub/Sub emulator and bqemulator. \
             Run them with `scripts/test.sh`, which installs and starts both."
        )
    })
}

impl Emulators {
    pub fn from_env() -> Self {
        Emulators {
            pubsub: required_env("PUBSUB_EMULATOR_HOST"),
            bigquery: required_env("BIGQUERY_EMULATOR_HOST"),
            bigquery_storage: required_env("BIGQUERY_STORAGE_EMULATOR_HOST"),
        }
    }

    pub fn bigquery_url(&self) -> String {
        url(&self.bigquery)
    }

    pub fn pubsub_url(&self) -> String {
        url(&self.pubsub)
    }

    /// The REST address of a table named `project.dataset.table` (tables.get, patch, delete).
    pub fn table_url(&self, table: &str) -> String {
        let parts: Vec<&str> = table.split('.').collect();
        let [project, dataset, table] = parts.as_slice() else {
            panic!("`{table}` is not project.dataset.table");
        };
        format!(
            "{}/bigquery/v2/projects/{project}/datasets/{dataset}/tables/{table}",
            self.bigquery_url()
        )
    }
}

fn url(host: &str) -> String {
    if host.starts_with("http") {
        host.to_string()
    } else {
        format!("http://{host}")
    }
}

/// A name no other test (or earlier run) uses.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        % 100_000_000;
    format!(
        "{prefix}_{}_{}_{}",
        std::process::id(),
        t,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// One object of a test configuration.
pub struct TestObject {
    pub name: String,
    pub topic: String,
    pub subscription: String,
    pub dataset: String,
    /// Extra YAML for the object file (envelope, event_types, limits, …).
    pub yaml: String,
}

impl TestObject {
    pub fn new(name: &str, yaml: &str) -> Self {
        let id = unique(name);
        TestObject {
            name: name.to_string(),
            topic: format!("{id}-topic"),
            subscription: format!("{id}-sub"),
            dataset: format!("ds_{id}"),
            yaml: yaml.to_string(),
        }
    }

    pub fn ingest_table(&self) -> String {
        format!("{PROJECT}.{}.{}_events", self.dataset, self.name)
    }

    pub fn dead_letter_table(&self) -> String {
        format!("{PROJECT}.{}.{}_dead_letter", self.dataset, self.name)
    }

    pub fn topic_path(&self) -> String {
        format!("projects/{PROJECT}/topics/{}", self.topic)
    }

    pub fn subscription_path(&self) -> String {
        format!("projects/{PROJECT}/subscriptions/{}", self.subscription)
    }
}

/// A configuration directory written for one test.
pub struct TestConfig {
    pub dir: tempfile::TempDir,
    pub emulators: Emulators,
    pub objects: Vec<TestObject>,
}

impl TestConfig {
    pub fn new(objects: Vec<TestObject>) -> Self {
        Self::with_emulators(Emulators::from_env(), objects)
    }

    pub fn with_emulators(emulators: Emulators, objects: Vec<TestObject>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        ConfigTemplate {
            project: PROJECT.into(),
            environment: "test".into(),
            port: 0,
            shutdown_deadline_secs: 20,
            log_level: "info".into(),
            objects: objects
                .iter()
                .map(|o| ObjectTemplate {
                    name: o.name.clone(),
                    subscription: o.subscription.clone(),
                    topic: Some(o.topic.clone()),
                    ingest_table: o.ingest_table(),
                    dead_letter_table: o.dead_letter_table(),
                    yaml: o.yaml.clone(),
                })
                .collect(),
        }
        .write(dir.path())
        .expect("write the test configuration");
        TestConfig {
            dir,
            emulators,
            objects,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A `mesh-ingest` command wired to this configuration and the emulators.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_mesh-ingest"));
        c.arg("--config")
            .arg(self.path())
            .arg("--env")
            .arg("test")
            .args(args)
            .env("PUBSUB_EMULATOR_HOST", &self.emulators.pubsub)
            .env("BIGQUERY_EMULATOR_HOST", &self.emulators.bigquery)
            .env(
                "BIGQUERY_STORAGE_EMULATOR_HOST",
                &self.emulators.bigquery_storage,
            )
            .env_remove("RUST_LOG");
        c
    }

    /// Runs `mesh-ingest <args>`, which must succeed; its output.
    pub fn run_ok(&self, args: &[&str]) -> std::process::Output {
        let out = self.command(args).output().expect("run mesh-ingest");
        assert!(
            out.status.success(),
            "mesh-ingest {args:?} failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Runs `mesh-ingest <args>`: its exit code, and its stdout then stderr as one text.
    pub fn run(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = self.command(args).output().expect("run mesh-ingest");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }

    /// `mesh-ingest provision`: datasets, tables, topic and subscription.
    pub fn provision(&self) {
        self.run_ok(&["provision"]);
    }

    /// `mesh-ingest materialize`: one JSON report per object.
    pub fn materialize(&self) -> Vec<serde_json::Value> {
        let out = self.run_ok(&["materialize"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).expect("a JSON line per object"))
            .collect()
    }

    pub fn object(&self, name: &str) -> &TestObject {
        self.objects
            .iter()
            .find(|o| o.name == name)
            .expect("object")
    }
}

/// A running `mesh-ingest run`.
pub struct App {
    pub child: Child,
    pub port: u16,
    pub log: PathBuf,
}

/// The port a service logged it bound (its JSON start-up line), once it has.
fn logged_port(log: &Path) -> Option<u16> {
    mesh_ingest::app::port_from_log(&std::fs::read_to_string(log).ok()?)
}

/// A log for failure messages: its warnings and errors first, then its last 6000 characters.
pub fn log_tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    // Warnings and errors other than the routine dead-letter lines come first: a long failure
    // message is shown cut in the middle, and these say what the service was stuck on.
    let problems: Vec<&str> = text
        .lines()
        .filter(|l| l.contains(r#""severity":"ERROR""#) || l.contains(r#""severity":"WARNING""#))
        .filter(|l| !l.contains(r#""message":"message dead-lettered""#))
        .collect();
    let problems = &problems[problems.len().saturating_sub(40)..];
    let len = text.len();
    let start = (len.saturating_sub(6000)..len)
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(len);
    format!(
        "--- warnings and errors (last 40, without dead-letter lines) ---\n{}\n--- end of the log ---\n{}",
        problems.join("\n"),
        &text[start..]
    )
}

impl App {
    /// Starts the service on a port it picks (port 0), reads the port from its log and waits
    /// until /readyz answers 200.
    pub async fn start(config: &TestConfig) -> App {
        let app = App::spawn(config).await;
        app.wait_ready(Duration::from_secs(30)).await;
        app
    }

    /// Starts the service and reads its port from its log; does not wait for readiness.
    pub async fn spawn(config: &TestConfig) -> App {
        static STARTS: AtomicU32 = AtomicU32::new(0);
        let n = STARTS.fetch_add(1, Ordering::Relaxed);
        let log = config.path().join(format!("app-{n}.log"));
        let file = std::fs::File::create(&log).unwrap();
        let mut child = config
            .command(&["run"])
            .stdout(Stdio::from(file.try_clone().unwrap()))
            .stderr(Stdio::from(file))
            .spawn()
            .expect("spawn mesh-ingest run");
        let start = Instant::now();
        let port = loop {
            if let Some(port) = logged_port(&log) {
                break port;
            }
            let exited = child.try_wait().unwrap();
            assert!(
                exited.is_none() && start.elapsed() < Duration::from_secs(30),
                "mesh-ingest logged no bound port (exit: {exited:?}); log:\n{}",
                log_tail(&log)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        App { child, port, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub async fn wait_ready(&self, within: Duration) {
        let start = Instant::now();
        loop {
            if let Ok(r) = reqwest::get(self.url("/readyz")).await
                && r.status().is_success()
            {
                return;
            }
            assert!(
                start.elapsed() < within,
                "mesh-ingest not ready within {within:?}; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The service's log for failure messages (see `log_tail`).
    pub fn log_text(&self) -> String {
        log_tail(&self.log)
    }

    /// /readyz's status and body.
    pub async fn readyz(&self) -> (u16, String) {
        let r = reqwest::get(self.url("/readyz"))
            .await
            .expect("GET /readyz");
        (r.status().as_u16(), r.text().await.unwrap())
    }

    pub async fn metrics(&self) -> String {
        reqwest::get(self.url("/metrics"))
            .await
            .expect("scrape /metrics")
            .text()
            .await
            .unwrap()
    }

    /// Sends SIGTERM and waits for the exit; returns the exit code and how long it took.
    pub async fn terminate(mut self) -> (Option<i32>, Duration) {
        let pid = self.child.id().to_string();
        let started = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill -TERM");
        assert!(status.success());
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return (s.code(), started.elapsed());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "mesh-ingest did not exit after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for App {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Deletes a table through bqemulator's REST API (tables.delete).
pub async fn delete_table(emu: &Emulators, table: &str) {
    let status = reqwest::Client::new()
        .delete(emu.table_url(table))
        .send()
        .await
        .expect("tables.delete")
        .status();
    assert!(status.is_success(), "deleting {table}: {status}");
}

/// Runs a query on bqemulator's REST API and returns the whole `jobs.query` response; fails
/// the test on any error (bqemulator reports some with HTTP 200 and an `errors` array).
pub async fn query_raw(emulators: &Emulators, sql: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let resp = client
        .post(format!(
            "{}/bigquery/v2/projects/{PROJECT}/queries",
            emulators.bigquery_url()
        ))
        .json(&serde_json::json!({
            "query": sql,
            "useLegacySql": false,
            "maxResults": 100000,
            "timeoutMs": 60000,
        }))
        .send()
        .await
        .expect("query request");
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.expect("query response is JSON");
    assert!(
        status.is_success(),
        "query failed ({status}): {body}\n{sql}"
    );
    assert!(
        body.get("errors")
            .is_none_or(|e| e.as_array().is_none_or(Vec::is_empty)),
        "query failed: {body}\n{sql}"
    );
    body
}

/// Runs the MERGE Dataform makes of an incremental table with `uniqueKey: ["object_id"]`:
/// `source` (the compiled incremental query) merged into `target` (a backquoted table name),
/// every column of the target (Dataform reads them from the table) set or inserted.
pub async fn dataform_merge(emulators: &Emulators, target: &str, source: &str) {
    let table: serde_json::Value = reqwest::get(emulators.table_url(&target.replace('`', "")))
        .await
        .expect("tables.get")
        .json()
        .await
        .expect("a table resource");
    let columns: Vec<&str> = table["schema"]["fields"]
        .as_array()
        .expect("the target's fields")
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    let set: Vec<String> = columns.iter().map(|c| format!("{c} = S.{c}")).collect();
    let values: Vec<String> = columns.iter().map(|c| format!("S.{c}")).collect();
    query(
        emulators,
        &format!(
            "MERGE {target} T USING ({source}) S ON T.object_id = S.object_id \
             WHEN MATCHED THEN UPDATE SET {} WHEN NOT MATCHED THEN INSERT ({}) VALUES ({})",
            set.join(", "),
            columns.join(", "),
            values.join(", ")
        ),
    )
    .await;
}

/// Runs a query and returns the rows as JSON objects keyed by column name (values as
/// BigQuery's REST API renders them: strings, or null).
pub async fn query(
    emulators: &Emulators,
    sql: &str,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let body = query_raw(emulators, sql).await;
    let fields: Vec<String> = body["schema"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|x| x["name"].as_str().unwrap().to_string())
                .collect()
        })
        .unwrap_or_default();
    body["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    fields
                        .iter()
                        .zip(r["f"].as_array().unwrap())
                        .map(|(k, v)| (k.clone(), v["v"].clone()))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Runs `sql` (a `SELECT COUNT(*) AS n …`) and returns `n`.
pub async fn count(emulators: &Emulators, sql: &str) -> u64 {
    query(emulators, sql).await[0]["n"]
        .as_str()
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
}

/// Polls `sql` (a `SELECT COUNT(*) AS n …`) until it returns at least `n` or time runs out;
/// returns the last count.
pub async fn wait_for_count(emulators: &Emulators, sql: &str, n: u64, within: Duration) -> u64 {
    let start = Instant::now();
    loop {
        let got = count(emulators, sql).await;
        if got >= n || start.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// A message to publish.
pub struct Outgoing {
    pub data: Vec<u8>,
    pub attributes: Vec<(String, String)>,
}

impl Outgoing {
    pub fn body(data: impl Into<Vec<u8>>) -> Self {
        Outgoing {
            data: data.into(),
            attributes: Vec::new(),
        }
    }

    pub fn with_attributes(data: impl Into<Vec<u8>>, attributes: &[(&str, &str)]) -> Self {
        Outgoing {
            data: data.into(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

/// Publishes through the official client; returns the message ids in order.
pub async fn publish(
    emulators: &Emulators,
    topic_path: &str,
    messages: Vec<Outgoing>,
) -> Vec<String> {
    use google_cloud_auth::credentials::anonymous::Builder as Anonymous;
    use google_cloud_pubsub::client::Publisher;
    use google_cloud_pubsub::model::Message;
    let publisher = Publisher::builder(topic_path)
        .with_endpoint(emulators.pubsub_url())
        .with_credentials(Anonymous::new().build())
        .build()
        .await
        .expect("publisher");
    let futures: Vec<_> = messages
        .into_iter()
        .map(|m| {
            publisher.publish(
                Message::new()
                    .set_data(bytes::Bytes::from(m.data))
                    .set_attributes(m.attributes),
            )
        })
        .collect();
    let mut ids = Vec::with_capacity(futures.len());
    for f in futures {
        ids.push(f.await.expect("publish"));
    }
    ids
}

/// Pulls once without waiting (REST, as any client would), returning how many messages came.
/// Does not acknowledge them.
pub async fn pull_count(emulators: &Emulators, subscription_path: &str) -> usize {
    let resp: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/v1/{subscription_path}:pull",
            emulators.pubsub_url()
        ))
        .json(&serde_json::json!({"maxMessages": 1000, "returnImmediately": true}))
        .send()
        .await
        .expect("pull")
        .json()
        .await
        .expect("pull response");
    resp["receivedMessages"]
        .as_array()
        .map(Vec::len)
        .unwrap_or(0)
}

/// The sum of the samples of `name` whose labels include every `label="value"` given, from a
/// Prometheus text scrape; `None` when no sample matches.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(name)?;
            let (label_text, value) = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?,
                None => ("", rest.strip_prefix(' ')?),
            };
            let matches = labels
                .iter()
                .all(|(k, v)| label_text.split(',').any(|p| p == format!("{k}=\"{v}\"")));
            matches.then(|| value.trim().parse::<f64>().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// A counter summed over all its label sets (0 when absent).
pub fn counter(text: &str, name: &str) -> u64 {
    metric(text, name, &[]).unwrap_or(0.0) as u64
}

/// Microseconds since the Unix epoch as RFC 3339, as producers write event times.
pub fn rfc3339(us: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1000).unwrap();
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub use mesh_ingest::pipeline::clock::now_us;

/// An `orders` object for the chaos tests: small batches, one append at a time and little
/// flow-control room, so a load is still in progress when the test strikes.
pub const BUSY_ORDERS_YAML: &str = "envelope:\n  format: json\n  object_id: payload.order_id\n\
    batch:\n  max_rows: 50\n  max_delay_ms: 100\n  max_in_flight: 1\n\
    flow_control:\n  max_outstanding_messages: 200\n  ack_deadline_secs: 10\n";

/// `OrderUpdated` envelopes `evt-<i>` for each i in `range`, about `orders` distinct orders
/// (`o-<i % orders>`), the event time rising with i (by the second, within one hour).
pub fn order_events(range: std::ops::Range<usize>, orders: usize) -> Vec<Outgoing> {
    range
        .map(|i| {
            Outgoing::body(
                serde_json::json!({"event_id": format!("evt-{i}"), "event_type": "OrderUpdated",
                    "event_time": format!("2026-11-20T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                    "payload": {"order_id": format!("o-{}", i % orders), "n": i}})
                .to_string(),
            )
        })
        .collect()
}

/// Runs the load harness against the real binary and returns its JSON report; fails the test
/// if the harness fails. A `--timeout-secs` of 150 unless `args` set one.
pub fn mesh_load(args: &[&str]) -> serde_json::Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mesh-load"));
    cmd.args(["--mesh-ingest", env!("CARGO_BIN_EXE_mesh-ingest")]);
    if !args.contains(&"--timeout-secs") {
        cmd.args(["--timeout-secs", "150"]);
    }
    let out = cmd.args(args).output().expect("run mesh-load");
    assert!(
        out.status.success(),
        "mesh-load {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON report");
    eprintln!("{report}");
    report
}

/// YAML read back as JSON (maps compare regardless of key order).
pub fn yaml_to_json(y: &yaml_rust2::Yaml) -> serde_json::Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Null => serde_json::Value::Null,
        Yaml::Boolean(b) => serde_json::Value::Bool(*b),
        Yaml::Integer(i) => serde_json::Value::from(*i),
        Yaml::Real(r) => serde_json::Value::from(r.parse::<f64>().expect("a YAML real")),
        Yaml::String(s) => serde_json::Value::String(s.clone()),
        Yaml::Array(a) => serde_json::Value::Array(a.iter().map(yaml_to_json).collect()),
        Yaml::Hash(h) => serde_json::Value::Object(
            h.iter()
                .map(|(k, v)| {
                    (
                        k.as_str().expect("string keys").to_string(),
                        yaml_to_json(v),
                    )
                })
                .collect(),
        ),
        other => panic!("unexpected YAML node {other:?}"),
    }
}
