//! Logging and metrics. In a container, logs are JSON lines in the shape Cloud Logging reads
//! (`severity`, `message`, `timestamp`, `logging.googleapis.com/sourceLocation`); locally they
//! are human-readable. Payloads are never logged at info or above.

pub mod metrics;

use crate::configuration::{LogFormat, LogSettings};
use serde_json::{Map, Value};
use std::fmt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, util::SubscriberInitExt};

/// Where log lines go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogOutput {
    /// The service: Cloud Logging reads a container's stdout.
    Stdout,
    /// A command: its stdout is its output (a report, JSON a script parses), so its log
    /// lines must not land in it.
    Stderr,
}

/// Installs the global subscriber; `RUST_LOG` overrides the configured level.
pub fn init(settings: &LogSettings, output: LogOutput) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&settings.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    let result = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .event_format(CloudLoggingFormat)
                    .with_writer(match output {
                        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
                        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
                    }),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// One JSON object per event, in Cloud Logging's structured-logging shape.
pub struct CloudLoggingFormat;

fn severity(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG | Level::TRACE => "DEBUG",
    }
}

impl<S, N> FormatEvent<S, N> for CloudLoggingFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut fields = FieldsToJson(Map::new());
        event.record(&mut fields);
        let mut out = Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        out.insert("timestamp".into(), Value::String(now));
        out.insert(
            "severity".into(),
            Value::String(severity(meta.level()).into()),
        );
        let message = fields
            .0
            .remove("message")
            .unwrap_or(Value::String(String::new()));
        out.insert("message".into(), message);
        out.insert("target".into(), Value::String(meta.target().into()));
        if let (Some(file), Some(line)) = (meta.file(), meta.line()) {
            out.insert(
                "logging.googleapis.com/sourceLocation".into(),
                serde_json::json!({ "file": file, "line": line.to_string() }),
            );
        }
        if let Some(scope) = ctx.event_scope() {
            let spans: Vec<Value> = scope
                .from_root()
                .map(|s| Value::String(s.name().to_string()))
                .collect();
            if !spans.is_empty() {
                out.insert("spans".into(), Value::Array(spans));
            }
        }
        for (k, v) in fields.0 {
            out.entry(k).or_insert(v);
        }
        let line = serde_json::to_string(&Value::Object(out)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

struct FieldsToJson(Map<String, Value>);

impl Visit for FieldsToJson {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::String(format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0
            .insert(field.name().into(), Value::String(value.into()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
}
