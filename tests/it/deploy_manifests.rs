//! deploy/ must agree with config/ and the binary: the example overlay is rendered with
//! `kubectl kustomize` (no cluster needed) and its probes, ports, metrics path, security
//! context, grace period, mounted object files and KEDA subscriptions are checked against the
//! configuration the service actually loads.

use crate::support::yaml_to_json;
use std::path::{Path, PathBuf};
use std::process::Command;
use yaml_rust2::{Yaml, YamlLoader};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn render(dir: &str) -> Vec<Yaml> {
    let out = Command::new("kubectl")
        .args(["kustomize", "--load-restrictor", "LoadRestrictionsNone"])
        .arg(root().join(dir))
        .output()
        .expect("kubectl is on the machine image");
    assert!(
        out.status.success(),
        "kubectl kustomize {dir}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    YamlLoader::load_from_str(&String::from_utf8(out.stdout).unwrap()).unwrap()
}

fn find<'a>(docs: &'a [Yaml], kind: &str) -> Vec<&'a Yaml> {
    docs.iter()
        .filter(|d| d["kind"].as_str() == Some(kind))
        .collect()
}

/// The resolved production configuration, as `mesh-ingest check` prints it (stdout), and its
/// verdict and memory budget for a pod of `cpus` CPUs (stderr).
fn production_config(cpus: &str) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mesh-ingest"))
        .arg("--config")
        .arg(root().join("config"))
        .args(["--env", "production", "check", "--cpus", cpus])
        .env_remove("PUBSUB_EMULATOR_HOST")
        .env_remove("BIGQUERY_EMULATOR_HOST")
        .env_remove("BIGQUERY_STORAGE_EMULATOR_HOST")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        serde_json::from_slice(&out.stdout).unwrap(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn example_overlay_agrees_with_config_and_binary() {
    let docs = render("deploy/overlays/orders-and-customers");
    let cpu_limit = find(&docs, "Deployment")[0]["spec"]["template"]["spec"]["containers"][0]
        ["resources"]["limits"]["cpu"]
        .as_str()
        .expect("a CPU limit")
        .to_string();
    let (settings, verdict) = production_config(&cpu_limit);
    let port = settings["application"]["port"].as_i64().unwrap();
    assert_eq!(
        settings["application"]["host"], "0.0.0.0",
        "probes reach the pod IP"
    );
    let deadline = settings["application"]["shutdown_deadline_secs"]
        .as_i64()
        .unwrap();

    let deployments = find(&docs, "Deployment");
    assert_eq!(deployments.len(), 1);
    let pod = &deployments[0]["spec"]["template"]["spec"];
    assert!(
        pod["terminationGracePeriodSeconds"].as_i64().unwrap() > deadline,
        "the drain deadline fits in the grace period"
    );
    assert_eq!(pod["serviceAccountName"].as_str(), Some("mesh-ingest"));
    assert_eq!(pod["securityContext"]["runAsNonRoot"].as_bool(), Some(true));
    let containers = pod["containers"].as_vec().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let ports = c["ports"].as_vec().unwrap();
    assert!(
        ports.iter().any(
            |p| p["containerPort"].as_i64() == Some(port) && p["name"].as_str() == Some("http")
        ),
        "container port {port} named http"
    );
    let probe_path = |probe: &str| c[probe]["httpGet"]["path"].as_str().map(str::to_string);
    assert_eq!(probe_path("livenessProbe").as_deref(), Some("/healthz"));
    assert_eq!(probe_path("readinessProbe").as_deref(), Some("/readyz"));
    for probe in ["livenessProbe", "readinessProbe"] {
        let p = &c[probe]["httpGet"]["port"];
        assert!(
            p.as_str() == Some("http") || p.as_i64() == Some(port),
            "{probe} port"
        );
    }
    let sc = &c["securityContext"];
    assert_eq!(sc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(sc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert_eq!(sc["runAsNonRoot"].as_bool(), Some(true));
    assert!(
        sc["capabilities"]["drop"]
            .as_vec()
            .is_some_and(|d| d.iter().any(|x| x.as_str() == Some("ALL")))
    );
    // Memory as `check` computes it for this configuration and CPU limit.
    let memory = format!(
        "recommended container memory: requests {}, limits {}",
        c["resources"]["requests"]["memory"].as_str().unwrap(),
        c["resources"]["limits"]["memory"].as_str().unwrap()
    );
    assert!(
        verdict.contains(&memory),
        "the manifest says `{memory}`; check says:\n{verdict}"
    );
    // The headline is the figure for the CPU limit; the same budget on other thread counts
    // follows it, growing with each thread's reused payload column.
    let headline = verdict
        .lines()
        .find_map(|l| l.split_once(&format!("{cpu_limit} worker thread(s)): ")))
        .map(|(_, total)| total.to_string())
        .expect("a headline for the CPU limit");
    let by_threads = verdict
        .lines()
        .find_map(|l| l.split_once("`--cpus N` assumes N): "))
        .map(|(_, figures)| figures.to_string())
        .expect("the budget by worker threads");
    assert!(
        by_threads.contains(&format!("{cpu_limit}: {headline}")),
        "{by_threads}"
    );
    let totals: Vec<f64> = by_threads
        .split(", ")
        .map(|f| f.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(totals.windows(2).all(|w| w[0] < w[1]), "{by_threads}");
    assert!(c["resources"]["requests"]["cpu"].as_str().is_some());
    let env_value = |name: &str| {
        c["env"]
            .as_vec()
            .and_then(|e| e.iter().find(|v| v["name"].as_str() == Some(name)))
            .and_then(|v| v["value"].as_str().map(str::to_string))
    };
    assert_eq!(env_value("APP_ENVIRONMENT").as_deref(), Some("production"));
    let config_dir = env_value("MESH_CONFIG_DIR").unwrap_or_else(|| "/etc/mesh-ingest".into());

    // The object files mounted are exactly config/objects, at <config dir>/objects.
    let mounts = c["volumeMounts"].as_vec().unwrap();
    let objects_mount = mounts
        .iter()
        .find(|m| m["mountPath"].as_str() == Some(&format!("{config_dir}/objects")))
        .expect("objects mounted under the config dir");
    let volume = pod["volumes"]
        .as_vec()
        .unwrap()
        .iter()
        .find(|v| v["name"] == objects_mount["name"])
        .unwrap();
    let map_name = volume["configMap"]["name"].as_str().unwrap();
    let map = find(&docs, "ConfigMap")
        .into_iter()
        .find(|m| m["metadata"]["name"].as_str() == Some(map_name))
        .unwrap();
    let objects_dir = root().join("config/objects");
    let mut shipped: Vec<String> = std::fs::read_dir(&objects_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    shipped.sort();
    let mut mounted: Vec<String> = map["data"]
        .as_hash()
        .unwrap()
        .keys()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    mounted.sort();
    assert_eq!(mounted, shipped);
    for name in &shipped {
        let text = std::fs::read_to_string(Path::new(&objects_dir).join(name)).unwrap();
        assert_eq!(
            map["data"][name.as_str()].as_str(),
            Some(text.as_str()),
            "{name}"
        );
    }

    // Metrics: scrape annotations and the Service agree with the port and /metrics.
    let annotations = &deployments[0]["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(annotations["prometheus.io/path"].as_str(), Some("/metrics"));
    assert_eq!(
        annotations["prometheus.io/port"].as_str(),
        Some(port.to_string().as_str())
    );
    let services = find(&docs, "Service");
    assert_eq!(services.len(), 1);
    assert!(
        services[0]["spec"]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|p| p["port"].as_i64() == Some(port))
    );

    // KEDA: one trigger per configured subscription, full names in the configured project.
    let project = find(&docs, "ConfigMap")
        .into_iter()
        .find_map(|m| m["data"]["APP__GCP__PROJECT"].as_str())
        .expect("the overlay sets the project");
    let scaled = find(&docs, "ScaledObject");
    assert_eq!(scaled.len(), 1);
    let mut triggers: Vec<String> = scaled[0]["spec"]["triggers"]
        .as_vec()
        .unwrap()
        .iter()
        .map(|t| {
            assert_eq!(t["type"].as_str(), Some("gcp-pubsub"));
            t["metadata"]["subscriptionName"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    triggers.sort();
    let mut subscriptions: Vec<String> = settings["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let full = o["subscription"].as_str().unwrap();
            let id = full.rsplit('/').next().unwrap();
            format!("projects/{project}/subscriptions/{id}")
        })
        .collect();
    subscriptions.sort();
    assert_eq!(
        triggers, subscriptions,
        "KEDA watches exactly the configured subscriptions"
    );
    assert_eq!(
        scaled[0]["spec"]["scaleTargetRef"]["name"],
        deployments[0]["metadata"]["name"]
    );
    assert_eq!(find(&docs, "PodDisruptionBudget").len(), 1);
    materialize_job_runs_with_the_service_config(&docs, c, pod);
    let accounts = find(&docs, "ServiceAccount");
    assert!(
        accounts[0]["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
            .as_str()
            .is_some_and(|a| a.ends_with(".iam.gserviceaccount.com")),
        "Workload Identity, no key files"
    );
}

/// The CronJob runs `materialize` with the service's image, settings and mounted object files,
/// one run at a time, and its pods are not selected by the service's Service or PDB.
fn materialize_job_runs_with_the_service_config(docs: &[Yaml], service: &Yaml, pod: &Yaml) {
    let jobs = find(docs, "CronJob");
    assert_eq!(jobs.len(), 1);
    let spec = &jobs[0]["spec"];
    assert_eq!(spec["concurrencyPolicy"].as_str(), Some("Forbid"));
    assert!(
        spec["schedule"]
            .as_str()
            .is_some_and(|s| s.split(' ').count() == 5)
    );
    let job_pod = &spec["jobTemplate"]["spec"]["template"];
    let c = &job_pod["spec"]["containers"][0];
    assert_eq!(c["image"], service["image"], "the service's image");
    assert_eq!(c["args"][0].as_str(), Some("materialize"));
    assert_eq!(c["env"], service["env"], "the service's settings");
    assert_eq!(c["envFrom"], service["envFrom"]);
    assert_eq!(
        job_pod["spec"]["volumes"],
        pod["volumes"]
            .clone()
            .into_vec()
            .map(|v| {
                Yaml::Array(
                    v.into_iter()
                        .filter(|v| v["name"].as_str() != Some("tmp"))
                        .collect(),
                )
            })
            .unwrap()
    );
    assert_eq!(
        job_pod["spec"]["serviceAccountName"],
        pod["serviceAccountName"]
    );
    let job_name = &job_pod["metadata"]["labels"]["app.kubernetes.io/name"];
    let selected = &find(docs, "Service")[0]["spec"]["selector"]["app.kubernetes.io/name"];
    assert_ne!(
        job_name, selected,
        "the Service does not select the job's pods"
    );
}

#[test]
fn dockerfile_runs_the_binary_as_non_root_with_the_config_baked_in() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).unwrap();
    let (settings, _) = production_config("1");
    let port = settings["application"]["port"].as_i64().unwrap();
    assert!(text.contains(&format!("EXPOSE {port}")));
    assert!(text.contains("USER 65532"));
    assert!(text.contains("COPY config/ /etc/mesh-ingest/"));
    assert!(text.contains("APP_ENVIRONMENT=production"));
    assert!(text.contains("--locked"));
}

/// `labels` ⊆ the labels of `resource` at `path` (a map), for selectors.
fn selects(selector: &Yaml, labels: &Yaml) -> bool {
    selector
        .as_hash()
        .is_some_and(|s| !s.is_empty() && s.iter().all(|(k, v)| labels[k.as_str().unwrap()] == *v))
}

fn rules_groups() -> Yaml {
    let text =
        std::fs::read_to_string(root().join("deploy/monitoring/rules/mesh-ingest.rules.yaml"))
            .unwrap();
    YamlLoader::load_from_str(&text).unwrap()[0]["groups"].clone()
}

/// The monitoring component renders in both setups: in the example overlay for GKE Managed
/// Prometheus (PodMonitoring selecting the pods on their `http` port, `Rules` with the rules
/// file's groups, the dashboard ConfigMap), and for the Prometheus Operator (ServiceMonitor
/// selecting the Service's `http` port, `PrometheusRule` with the same groups).
#[test]
fn monitoring_component_renders_for_both_scrapers() {
    let docs = render("deploy/overlays/orders-and-customers");
    let pod = &find(&docs, "Deployment")[0]["spec"]["template"];
    let monitors = find(&docs, "PodMonitoring");
    assert_eq!(monitors.len(), 1);
    assert!(
        find(&docs, "ServiceMonitor").is_empty(),
        "one scraper per overlay"
    );
    let m = &monitors[0]["spec"];
    assert!(selects(
        &m["selector"]["matchLabels"],
        &pod["metadata"]["labels"]
    ));
    let ports = pod["spec"]["containers"][0]["ports"].as_vec().unwrap();
    let port = m["endpoints"][0]["port"].as_str().unwrap();
    assert!(ports.iter().any(|p| p["name"].as_str() == Some(port)));
    assert_eq!(m["endpoints"][0]["path"].as_str(), Some("/metrics"));
    assert_eq!(
        yaml_to_json(&find(&docs, "Rules")[0]["spec"]["groups"]),
        yaml_to_json(&rules_groups())
    );
    let dashboard = find(&docs, "ConfigMap")
        .into_iter()
        .find(|c| c["metadata"]["name"].as_str() == Some("mesh-ingest-dashboard"))
        .expect("the dashboard ConfigMap");
    assert_eq!(
        dashboard["metadata"]["labels"]["grafana_dashboard"].as_str(),
        Some("1")
    );
    let json: serde_json::Value =
        serde_json::from_str(dashboard["data"]["mesh-ingest.json"].as_str().unwrap()).unwrap();
    assert_eq!(json["title"], "mesh-ingest");

    // The Prometheus Operator variant, on the base.
    let dir = root().join("target/monitoring-prometheus-operator");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("kustomization.yaml"),
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n\
         resources:\n  - ../../deploy/base\n\
         components:\n  - ../../deploy/monitoring\n  - ../../deploy/monitoring/prometheus-operator\n",
    )
    .unwrap();
    let docs = render("target/monitoring-prometheus-operator");
    assert!(find(&docs, "PodMonitoring").is_empty());
    let service = find(&docs, "Service")[0];
    let monitor = &find(&docs, "ServiceMonitor")[0]["spec"];
    assert!(selects(
        &monitor["selector"]["matchLabels"],
        &service["metadata"]["labels"]
    ));
    let port = monitor["endpoints"][0]["port"].as_str().unwrap();
    assert!(
        service["spec"]["ports"]
            .as_vec()
            .unwrap()
            .iter()
            .any(|p| p["name"].as_str() == Some(port))
    );
    assert_eq!(
        yaml_to_json(&find(&docs, "PrometheusRule")[0]["spec"]["groups"]),
        yaml_to_json(&rules_groups())
    );
}
