//! The monitoring shipped in deploy/monitoring, checked with promtool (Debian's `prometheus`
//! package; scripts/install-emulators.sh installs it): the rules file passes `promtool check
//! rules`; every alert fires on its positive case and stays silent on its negative one
//! (`promtool test rules` on the shipped test file as it is, annotations included); the
//! GMP `Rules` and the `PrometheusRule` carry exactly the file's groups; every query of the
//! Grafana dashboard is valid PromQL; and every metric the rules and the dashboard name is in
//! the `/metrics` of a running mesh-ingest.

use crate::support::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlEmitter, YamlLoader};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn monitoring() -> PathBuf {
    root().join("deploy/monitoring")
}

/// promtool: `MESH_PROMTOOL`, else on PATH, else where install-emulators.sh puts it.
fn promtool() -> PathBuf {
    if let Some(p) = std::env::var_os("MESH_PROMTOOL") {
        return p.into();
    }
    if Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        return "promtool".into();
    }
    let cached = Path::new(&std::env::var("HOME").unwrap_or_default())
        .join(".cache/mesh-ingest/promtool/promtool");
    assert!(
        cached.is_file(),
        "promtool not found: run scripts/install-emulators.sh (it extracts promtool from \
         Debian's prometheus package) or set MESH_PROMTOOL"
    );
    cached
}

fn run_promtool(args: &[&str], file: &Path) -> String {
    let out = Command::new(promtool())
        .args(args)
        .arg(file)
        .output()
        .expect("run promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {args:?} {}:\n{text}",
        file.display()
    );
    text
}

fn load_yaml(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap();
    YamlLoader::load_from_str(&text).unwrap().remove(0)
}

fn rules_file() -> PathBuf {
    monitoring().join("rules/mesh-ingest.rules.yaml")
}

/// The alerts of the rules file, by name.
fn alert_names() -> BTreeSet<String> {
    let rules = load_yaml(&rules_file());
    let groups = rules["groups"].as_vec().unwrap().iter();
    groups
        .flat_map(|g| g["rules"].as_vec().unwrap().iter())
        .filter_map(|rule| rule["alert"].as_str().map(str::to_string))
        .collect()
}

fn dump(doc: &Yaml) -> String {
    let mut text = String::new();
    YamlEmitter::new(&mut text).dump(doc).unwrap();
    text
}

#[test]
fn the_rules_file_checks_and_both_rule_resources_carry_exactly_its_groups() {
    let text = run_promtool(&["check", "rules"], &rules_file());
    assert!(text.contains("SUCCESS"), "{text}");
    let groups = load_yaml(&rules_file())["groups"].clone();
    for wrapper in ["gmp/rules.yaml", "prometheus-operator/prometheusrule.yaml"] {
        let doc = load_yaml(&monitoring().join(wrapper));
        assert_eq!(
            doc["spec"]["groups"], groups,
            "{wrapper} differs from the rules file: run scripts/monitoring-rules.sh"
        );
    }
}

#[test]
fn every_alert_fires_on_its_positive_case_and_not_on_its_negative_one() {
    // promtool runs the test file exactly as shipped (expected annotations included), so the
    // command an operator runs is the one tested.
    let file = monitoring().join("rules/mesh-ingest.rules.test.yaml");
    let cases = load_yaml(&file);
    assert_eq!(
        cases["rule_files"],
        Yaml::Array(vec![Yaml::String("mesh-ingest.rules.yaml".into())]),
        "the test file names the rules file beside it"
    );
    let mut positive: BTreeMap<String, usize> = BTreeMap::new();
    let mut negative: BTreeMap<String, usize> = BTreeMap::new();
    for test in cases["tests"].as_vec().expect("tests") {
        for check in test["alert_rule_test"].as_vec().expect("alert_rule_test") {
            let name = check["alertname"].as_str().unwrap().to_string();
            let alerts = check["exp_alerts"].as_vec().expect("exp_alerts");
            let counts = if alerts.is_empty() {
                &mut negative
            } else {
                &mut positive
            };
            *counts.entry(name).or_default() += 1;
        }
    }
    for name in &alert_names() {
        assert!(
            positive.get(name) >= Some(&1),
            "{name} has no positive case"
        );
        assert!(
            negative.get(name) >= Some(&1),
            "{name} has no negative case"
        );
    }
    let text = run_promtool(&["test", "rules"], &file);
    assert!(text.contains("SUCCESS"), "{text}");
}

/// Every `expr` of the dashboard's panels, with Grafana's variables given values.
fn dashboard_queries() -> Vec<String> {
    let text = std::fs::read_to_string(monitoring().join("dashboards/mesh-ingest.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).unwrap();
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains(&"object"), "an object selector");
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        let targets = panel["targets"].as_array().unwrap();
        assert!(!targets.is_empty(), "{}", panel["title"]);
        for t in targets {
            queries.push(
                t["expr"]
                    .as_str()
                    .unwrap()
                    .replace("$__rate_interval", "5m")
                    .replace("$object", ".+"),
            );
        }
    }
    queries
}

#[test]
fn every_dashboard_query_is_valid_promql() {
    let queries = dashboard_queries();
    assert!(queries.len() >= 10, "{} queries", queries.len());
    let rules: Vec<Yaml> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let mut rule = yaml_rust2::yaml::Hash::new();
            rule.insert(
                Yaml::String("record".into()),
                Yaml::String(format!("dashboard:query_{i}")),
            );
            rule.insert(Yaml::String("expr".into()), Yaml::String(q.clone()));
            Yaml::Hash(rule)
        })
        .collect();
    let mut group = yaml_rust2::yaml::Hash::new();
    group.insert(
        Yaml::String("name".into()),
        Yaml::String("dashboard".into()),
    );
    group.insert(Yaml::String("rules".into()), Yaml::Array(rules));
    let mut doc = yaml_rust2::yaml::Hash::new();
    doc.insert(
        Yaml::String("groups".into()),
        Yaml::Array(vec![Yaml::Hash(group)]),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard.rules.yaml");
    std::fs::write(&file, dump(&Yaml::Hash(doc))).unwrap();
    let text = run_promtool(&["check", "rules"], &file);
    assert!(
        text.contains(&format!("SUCCESS: {} rules found", queries.len())),
        "{text}"
    );
}

/// Metric names in PromQL text (recording rules, with a colon, are not metrics).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(i) = rest.find("mesh_ingest_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_total", "_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(name);
        names.insert(base.to_string());
        rest = &tail[end..];
    }
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_rules_and_dashboard_use_is_exported() {
    let mut used = BTreeSet::new();
    let rules = std::fs::read_to_string(rules_file()).unwrap();
    for line in rules.lines().filter(|l| !l.trim_start().starts_with('#')) {
        used.extend(metric_names(line));
    }
    for q in dashboard_queries() {
        used.extend(metric_names(&q));
    }
    assert!(used.len() >= 15, "{used:?}");

    // With a freshness promise and a deprecated major, so that the series that describe them
    // are exported too.
    let object = TestObject::new("orders", "");
    let yaml = format!(
        "envelope:\n  format: json\n  object_id: payload.order_id\nsla:\n  freshness: 15m\n\
         version: 2.0.0\nsemantic:\n  dataset: sem_{}\n  fields: [{{name: status, type: STRING}}]\n  \
         previous: [{{major: 1, sunset: 2999-12-31, fields: [{{name: status, type: STRING}}]}}]\n",
        object.dataset
    );
    let config = TestConfig::new(vec![TestObject { yaml, ..object }]);
    config.provision();
    let app = App::start(&config).await;
    app.wait_ready(std::time::Duration::from_secs(60)).await;
    let text = app.metrics().await;
    let exported: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let missing: Vec<&String> = used
        .iter()
        .filter(|n| !exported.contains(n.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "not in /metrics: {missing:?}\nexported: {exported:?}"
    );
    assert!(
        text.contains("mesh_ingest_freshness_slo_seconds{object=\"orders\"} 900"),
        "the object's freshness promise is exported"
    );
    assert!(
        text.contains("mesh_ingest_ready 1"),
        "a ready instance says so"
    );
}
