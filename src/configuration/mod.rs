//! Loads the service settings: `config/base.yaml`, then the `config/<env>.yaml` overlay, then
//! `APP__…` environment variables (zero2prod style), plus one YAML file per domain object under
//! `config/objects/`. Every error names the file and the field. A leaf of the module graph:
//! it imports nothing of the data path, which is built from what it loads.

mod contract;
mod envelope;
mod labels;
pub mod memory;
mod object;
mod semantic;
mod table_ref;
pub mod template;
mod topic_schema;
mod tuning;

pub use contract::{ContractSettings, duration_parts, format_duration, parse_duration};
pub use envelope::{EnvelopeFormat, EnvelopeSettings, FieldLocator};
pub use labels::{Layer, MAX_LABEL_CHARS, label_value};
pub use object::ObjectSettings;
pub use semantic::{
    FieldType, STATE_EVENT_COLUMNS, SemanticField, SemanticSettings, major_view, today,
};
pub use table_ref::TableRef;
pub use topic_schema::{SchemaEncoding, SchemaKind, TopicSchemaSettings};
pub use tuning::{BatchSettings, FlowControlSettings, LimitSettings};

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Why the configuration could not be loaded. Always names the file, and the field where known.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: {message}")]
    Invalid { file: String, message: String },
    #[error("{file}: field `{field}`: {message}")]
    Field {
        file: String,
        field: String,
        message: String,
    },
}

impl ConfigError {
    pub(crate) fn field(file: &Path, field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError::new(field, message).at(file)
    }
}

/// A field of one file that failed validation; `at` names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldError {
    /// The field's path as written, e.g. `batch.max_rows`, `semantic.fields[2].type`.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn at(self, file: &Path) -> ConfigError {
        ConfigError::Field {
            file: file.display().to_string(),
            field: self.field,
            message: self.message,
        }
    }
}

/// The whole resolved configuration of one deployment.
#[derive(Debug, Clone)]
pub struct Settings {
    pub application: ApplicationSettings,
    pub gcp: GcpSettings,
    pub log: LogSettings,
    pub objects: Vec<ObjectSettings>,
    /// The environment overlay that was applied (`local`, `production`, …).
    pub environment: String,
}

/// The shortest progress watchdog: two append attempt timeouts.
pub const MIN_STALL_TIMEOUT_SECS: u64 = 60;

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ApplicationSettings {
    /// Address the HTTP server (health, readiness, metrics) binds to.
    pub host: String,
    pub port: u16,
    /// How long a SIGTERM drain may take before the process gives up and exits; messages
    /// still unacknowledged then are redelivered by Pub/Sub, never lost.
    pub shutdown_deadline_secs: u64,
    /// Directory holding one YAML file per domain object, relative to the config directory.
    #[serde(default = "default_objects_dir")]
    pub objects_dir: String,
    /// Message bytes the whole process may hold (delivered, not yet acknowledged), shared by
    /// every stream of every object: a stream holds at most twice its window and one message
    /// (`memory`), and when those add up to more, each window is scaled down to its share.
    #[serde(default = "default_max_outstanding_bytes")]
    pub max_outstanding_bytes: u64,
    /// Messages the whole process may hold, shared the same way by the streams'
    /// `flow_control.max_outstanding_messages` (each costs a decoded row's own fields).
    #[serde(default = "default_max_outstanding_messages")]
    pub max_outstanding_messages: u64,
    /// Bytes of rows in appends in flight, all tables of all objects together; one object
    /// may hold at most half of it, so a hanging table never starves the others.
    #[serde(default = "default_max_append_bytes")]
    pub max_append_bytes: u64,
    /// The progress watchdog: when an object holds messages and no append has finished for
    /// this long, /healthz fails so that Kubernetes restarts the stuck process (its leases
    /// would otherwise be kept for `flow_control.max_lease_secs`). Above the 30 s an append
    /// attempt may take, so a slow table is never mistaken for a stuck process.
    #[serde(default = "default_stall_timeout_secs")]
    pub stall_timeout_secs: u64,
}

fn default_stall_timeout_secs() -> u64 {
    300
}

impl ApplicationSettings {
    fn validate(&self) -> Result<(), FieldError> {
        if self.shutdown_deadline_secs == 0 {
            return Err(FieldError::new(
                "application.shutdown_deadline_secs",
                "must be at least 1",
            ));
        }
        if self.stall_timeout_secs < MIN_STALL_TIMEOUT_SECS {
            return Err(FieldError::new(
                "application.stall_timeout_secs",
                format!(
                    "must be at least {MIN_STALL_TIMEOUT_SECS} (an append attempt may take 30 s; \
                     a shorter watchdog would restart a process that is only waiting for BigQuery)"
                ),
            ));
        }
        for (field, value) in [
            (
                "application.max_outstanding_bytes",
                self.max_outstanding_bytes,
            ),
            ("application.max_append_bytes", self.max_append_bytes),
        ] {
            if value < 1024 * 1024 {
                return Err(FieldError::new(field, "must be at least 1 MiB (1048576)"));
            }
        }
        if self.max_outstanding_messages < 100 {
            return Err(FieldError::new(
                "application.max_outstanding_messages",
                "must be at least 100",
            ));
        }
        Ok(())
    }
}

fn default_max_outstanding_bytes() -> u64 {
    96 * 1024 * 1024
}

fn default_max_outstanding_messages() -> u64 {
    10_000
}

fn default_max_append_bytes() -> u64 {
    32 * 1024 * 1024
}

pub(crate) fn default_objects_dir() -> String {
    "objects".to_string()
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct GcpSettings {
    /// Project that owns the subscriptions and tables, unless an object names another.
    pub project: String,
    /// Pub/Sub endpoint; unset means Google's. `PUBSUB_EMULATOR_HOST` overrides it.
    #[serde(default)]
    pub pubsub_endpoint: Option<String>,
    /// BigQuery REST endpoint (tables, datasets). `BIGQUERY_EMULATOR_HOST` overrides it.
    #[serde(default)]
    pub bigquery_endpoint: Option<String>,
    /// BigQuery Storage Write gRPC endpoint. `BIGQUERY_STORAGE_EMULATOR_HOST` overrides it.
    #[serde(default)]
    pub bigquery_write_endpoint: Option<String>,
    /// Use anonymous credentials (emulators). Set automatically when an emulator variable is set.
    #[serde(default)]
    pub anonymous: bool,
    /// The policy tag of each classification, most restrictive first (a column holds one tag:
    /// the payload column gets the first that applies). Empty: classifications only describe.
    #[serde(default)]
    pub policy_tags: Vec<PolicyTagSetting>,
}

/// A classification and the BigQuery policy tag (Data Catalog taxonomy) that protects it.
#[derive(Debug, Clone, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct PolicyTagSetting {
    pub classification: String,
    /// `projects/<p>/locations/<l>/taxonomies/<t>/policyTags/<id>`.
    pub tag: String,
}

/// Checks `gcp.policy_tags`: names and tag resource names, each classification once.
fn validate_policy_tags(tags: &[PolicyTagSetting]) -> Result<(), FieldError> {
    for (i, t) in tags.iter().enumerate() {
        let at = format!("gcp.policy_tags[{i}]");
        semantic::classification_ok(&t.classification)
            .map_err(|m| FieldError::new(format!("{at}.classification"), m))?;
        let parts: Vec<&str> = t.tag.split('/').collect();
        let shape = [
            "projects",
            "",
            "locations",
            "",
            "taxonomies",
            "",
            "policyTags",
            "",
        ];
        let ok = parts.len() == shape.len()
            && parts.iter().zip(shape).all(|(p, want)| {
                if want.is_empty() {
                    !p.is_empty()
                } else {
                    *p == want
                }
            });
        if !ok {
            return Err(FieldError::new(
                format!("{at}.tag"),
                format!(
                    "`{}` is not projects/<p>/locations/<l>/taxonomies/<t>/policyTags/<id>",
                    t.tag
                ),
            ));
        }
        if tags[..i]
            .iter()
            .any(|o| o.classification == t.classification)
        {
            return Err(FieldError::new(
                format!("{at}.classification"),
                format!("`{}` appears twice", t.classification),
            ));
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines, for a terminal.
    Text,
    /// One JSON object per line, in the shape Cloud Logging reads.
    Json,
}

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub format: LogFormat,
    /// A tracing filter (`info`, `mesh_ingest=debug`, …); `RUST_LOG` overrides it.
    pub level: String,
}

/// The layered part of the configuration (everything but the object files).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayeredSettings {
    application: ApplicationSettings,
    gcp: GcpSettings,
    log: LogSettings,
}

/// Emulator variables, read once so that tests and `check` can see what was applied.
#[derive(Debug, Clone, Default)]
pub struct EmulatorEnv {
    pub pubsub_host: Option<String>,
    pub bigquery_host: Option<String>,
    pub bigquery_storage_host: Option<String>,
}

impl EmulatorEnv {
    pub fn from_process() -> Self {
        let get = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        EmulatorEnv {
            pubsub_host: get("PUBSUB_EMULATOR_HOST"),
            bigquery_host: get("BIGQUERY_EMULATOR_HOST"),
            bigquery_storage_host: get("BIGQUERY_STORAGE_EMULATOR_HOST"),
        }
    }
}

/// Turns `host:port` (the emulator convention) into an `http://` endpoint; leaves URLs alone.
fn as_endpoint(host: &str) -> String {
    if host.starts_with("http://") || host.starts_with("https://") {
        host.to_string()
    } else {
        format!("http://{host}")
    }
}

impl Settings {
    /// The object named `name`; the error lists the configured ones.
    pub fn object(&self, name: &str) -> Result<&ObjectSettings, String> {
        self.objects.iter().find(|o| o.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.objects.iter().map(|o| o.name.as_str()).collect();
            format!("no object `{name}` (configured: {})", names.join(", "))
        })
    }

    /// Loads `<dir>/base.yaml`, `<dir>/<environment>.yaml`, `APP__…` variables and the object
    /// files. `environment` defaults to `APP_ENVIRONMENT`, else `local`.
    pub fn load(dir: &Path, environment: Option<&str>) -> Result<Settings, ConfigError> {
        let environment = environment
            .map(str::to_string)
            .or_else(|| std::env::var("APP_ENVIRONMENT").ok())
            .unwrap_or_else(|| "local".to_string());
        let base = dir.join("base.yaml");
        let overlay = dir.join(format!("{environment}.yaml"));
        if !base.is_file() {
            return Err(ConfigError::Invalid {
                file: base.display().to_string(),
                message: "file not found (the config directory must hold base.yaml)".into(),
            });
        }
        if !overlay.is_file() {
            return Err(ConfigError::Invalid {
                file: overlay.display().to_string(),
                message: format!(
                    "file not found: no overlay for environment `{environment}` (set APP_ENVIRONMENT or --env)"
                ),
            });
        }
        let files = format!(
            "{} + {} + APP__ variables",
            base.display(),
            overlay.display()
        );
        let layered: LayeredSettings = config::Config::builder()
            .add_source(config::File::from(base.as_path()).format(config::FileFormat::Yaml))
            .add_source(config::File::from(overlay.as_path()).format(config::FileFormat::Yaml))
            .add_source(
                config::Environment::with_prefix("APP")
                    .prefix_separator("__")
                    .separator("__"),
            )
            .build()
            .and_then(|c| c.try_deserialize())
            .map_err(|e| ConfigError::Invalid {
                file: files.clone(),
                message: e.to_string(),
            })?;

        let mut gcp = layered.gcp;
        apply_emulator_env(&mut gcp, &EmulatorEnv::from_process());
        if gcp.project.trim().is_empty() {
            return Err(ConfigError::field(
                &base,
                "gcp.project",
                "must not be empty",
            ));
        }
        layered.application.validate().map_err(|e| e.at(&base))?;
        validate_policy_tags(&gcp.policy_tags).map_err(|e| ConfigError::Field {
            file: files.clone(),
            field: e.field,
            message: e.message,
        })?;
        let objects_dir = dir.join(&layered.application.objects_dir);
        let mut objects = load_objects(&objects_dir, &gcp.project)?;
        for o in &mut objects {
            o.resolve_policy_tags(&gcp.policy_tags);
        }
        memory::share_windows(&mut objects, &layered.application);
        Ok(Settings {
            application: layered.application,
            gcp,
            log: layered.log,
            objects,
            environment,
        })
    }

    /// The settings as JSON, for `mesh-ingest check`. Holds no secrets: credentials never
    /// live in this configuration (Workload Identity / ADC supplies them at run time).
    pub fn to_resolved_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Resolved<'a> {
            environment: &'a str,
            application: &'a ApplicationSettings,
            gcp: &'a GcpSettings,
            log: &'a LogSettings,
            objects: &'a [ObjectSettings],
        }
        let resolved = Resolved {
            environment: &self.environment,
            application: &self.application,
            gcp: &self.gcp,
            log: &self.log,
            objects: &self.objects,
        };
        serde_json::to_string_pretty(&resolved).unwrap_or_else(|e| format!("<unprintable: {e}>"))
    }
}

/// The conventional emulator variables switch a client to plaintext + anonymous credentials.
pub fn apply_emulator_env(gcp: &mut GcpSettings, env: &EmulatorEnv) {
    if let Some(h) = &env.pubsub_host {
        gcp.pubsub_endpoint = Some(as_endpoint(h));
        gcp.anonymous = true;
    }
    if let Some(h) = &env.bigquery_host {
        gcp.bigquery_endpoint = Some(as_endpoint(h));
        gcp.anonymous = true;
    }
    if let Some(h) = &env.bigquery_storage_host {
        gcp.bigquery_write_endpoint = Some(as_endpoint(h));
        gcp.anonymous = true;
    }
}

/// Reads every object file (`*.yaml`, `*.yml`) of `dir`; names must be unique.
pub fn load_objects(dir: &Path, project: &str) -> Result<Vec<ObjectSettings>, ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| ConfigError::Invalid {
        file: dir.display().to_string(),
        message: format!("cannot read the objects directory: {e}"),
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml")))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(ConfigError::Invalid {
            file: dir.display().to_string(),
            message: "no object files (*.yaml): configure at least one domain object".into(),
        });
    }
    let mut objects: Vec<ObjectSettings> = Vec::with_capacity(files.len());
    for file in &files {
        let object = ObjectSettings::load(file, project)?;
        if let Some(other) = objects.iter().find(|o| o.name == object.name) {
            return Err(ConfigError::field(
                file,
                "name",
                format!("`{}` is already used by {}", object.name, other.source_file),
            ));
        }
        if let Some(other) = objects
            .iter()
            .find(|o| o.subscription == object.subscription)
        {
            return Err(ConfigError::field(
                file,
                "subscription",
                format!(
                    "`{}` is already consumed by object `{}`",
                    object.subscription, other.name
                ),
            ));
        }
        objects.push(object);
    }
    Ok(objects)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_tags_name_their_field_and_classifications_resolve_to_them() {
        let tag = |c: &str, t: &str| PolicyTagSetting {
            classification: c.into(),
            tag: t.into(),
        };
        let good = "projects/p/locations/eu/taxonomies/1/policyTags/2";
        assert_eq!(validate_policy_tags(&[tag("pii", good)]), Ok(()));
        for (tags, field) in [
            (vec![tag("PII", good)], "gcp.policy_tags[0].classification"),
            (
                vec![tag("pii", "projects/p/policyTags/2")],
                "gcp.policy_tags[0].tag",
            ),
            (
                vec![tag("pii", good), tag("pii", good)],
                "gcp.policy_tags[1].classification",
            ),
        ] {
            assert_eq!(validate_policy_tags(&tags).unwrap_err().field, field);
        }
        let yaml = "name: c\nsubscription: c-sub\ningest_table: d.c\ndead_letter_table: d.c_dl\n\
            envelope: {format: json, object_id: payload.id}\n\
            payload_classification: {email: pii, note: internal}\n\
            semantic:\n  dataset: s\n  fields:\n    - {name: email, type: STRING, classification: pii}\n    \
            - {name: note, type: STRING}\n";
        let mut o = ObjectSettings::parse(yaml, Path::new("c.yaml"), "p").unwrap();
        o.resolve_policy_tags(&[
            tag(
                "internal",
                "projects/p/locations/eu/taxonomies/1/policyTags/9",
            ),
            tag("pii", good),
        ]);
        let fields = &o.semantic.as_ref().unwrap().fields;
        assert_eq!(fields[0].policy_tag.as_deref(), Some(good));
        assert_eq!(fields[1].policy_tag, None);
        // The payload column holds both: the first tag of the list that applies.
        assert_eq!(
            o.payload_policy_tag.as_deref(),
            Some("projects/p/locations/eu/taxonomies/1/policyTags/9")
        );
        let bad = yaml.replace("email: pii,", "email: PII!,");
        let e = ObjectSettings::parse(&bad, Path::new("c.yaml"), "p").unwrap_err();
        assert!(
            e.to_string().contains("payload_classification.email"),
            "{e}"
        );
    }

    #[test]
    fn emulator_host_becomes_plaintext_endpoint_and_anonymous() {
        let mut gcp = GcpSettings {
            project: "p".into(),
            pubsub_endpoint: None,
            bigquery_endpoint: None,
            bigquery_write_endpoint: None,
            anonymous: false,
            policy_tags: Vec::new(),
        };
        apply_emulator_env(
            &mut gcp,
            &EmulatorEnv {
                pubsub_host: Some("127.0.0.1:8085".into()),
                bigquery_host: None,
                bigquery_storage_host: Some("http://127.0.0.1:9060".into()),
            },
        );
        assert_eq!(
            gcp.pubsub_endpoint.as_deref(),
            Some("http://127.0.0.1:8085")
        );
        assert_eq!(gcp.bigquery_endpoint, None);
        assert_eq!(
            gcp.bigquery_write_endpoint.as_deref(),
            Some("http://127.0.0.1:9060")
        );
        assert!(gcp.anonymous);
    }
}
