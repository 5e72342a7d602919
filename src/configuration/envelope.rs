//! The `envelope:` section of an object file: the format, and where each envelope field is
//! found (`attributes.<name>` for a Pub/Sub attribute, else a dotted path), with each
//! format's defaults filled in.

use super::FieldError;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum EnvelopeFormat {
    /// `{"event_id", "event_type", "event_time", "object_id", "payload"}` in the body.
    Json,
    /// Event id / type / time in Pub/Sub attributes; the body is the payload.
    Attributes,
    /// CloudEvents 1.0, structured (JSON body) or binary (`ce-*` attributes) mode.
    CloudEvents,
}

/// Where an envelope field is read from, as written in an object's YAML:
/// `attributes.<name>` reads a Pub/Sub attribute; anything else is a dotted JSON path into the
/// format's document (the body for `json`; the payload for `attributes`; the event for
/// `cloudevents`, where `data.<path>` reaches into the data and, in binary mode, a top-level
/// name reads its `ce-<name>` attribute).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldLocator {
    Attribute(String),
    Path(Vec<String>),
}

impl FieldLocator {
    pub fn parse(s: &str) -> Result<FieldLocator, String> {
        let s = s.trim();
        if let Some(name) = s.strip_prefix("attributes.") {
            if name.is_empty() {
                return Err("`attributes.` needs an attribute name".into());
            }
            return Ok(FieldLocator::Attribute(name.to_string()));
        }
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        let parts: Vec<String> = s.split('.').map(str::to_string).collect();
        if parts.iter().any(String::is_empty) {
            return Err(format!("`{s}` has an empty path segment"));
        }
        Ok(FieldLocator::Path(parts))
    }
}

impl std::fmt::Display for FieldLocator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FieldLocator::Attribute(a) => write!(f, "attributes.{a}"),
            FieldLocator::Path(p) => f.write_str(&p.join(".")),
        }
    }
}

impl Serialize for FieldLocator {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Where each envelope field is read from, defaults resolved.
#[derive(Debug, Clone, Serialize)]
pub struct EnvelopeSettings {
    pub format: EnvelopeFormat,
    pub event_id: FieldLocator,
    pub event_type: FieldLocator,
    pub event_time: FieldLocator,
    pub object_id: FieldLocator,
    /// Path of the payload in a `json` envelope; unused by the other formats.
    pub payload: FieldLocator,
}

/// The section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EnvelopeFile {
    format: EnvelopeFormat,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    event_type: Option<String>,
    #[serde(default)]
    event_time: Option<String>,
    #[serde(default)]
    object_id: Option<String>,
    #[serde(default)]
    payload: Option<String>,
}

fn locator(field: &str, value: &Option<String>, default: &str) -> Result<FieldLocator, FieldError> {
    FieldLocator::parse(value.as_deref().unwrap_or(default))
        .map_err(|m| FieldError::new(format!("envelope.{field}"), m))
}

impl EnvelopeFile {
    /// Validates the section and fills in the format's defaults.
    pub(super) fn resolve(&self) -> Result<EnvelopeSettings, FieldError> {
        match self.format {
            EnvelopeFormat::Json => self.resolve_json(),
            EnvelopeFormat::Attributes => self.resolve_attributes(),
            EnvelopeFormat::CloudEvents => self.resolve_cloudevents(),
        }
    }

    fn resolve_json(&self) -> Result<EnvelopeSettings, FieldError> {
        let payload = locator("payload", &self.payload, "payload")?;
        if let FieldLocator::Attribute(_) = payload {
            return Err(FieldError::new(
                "envelope.payload",
                "must be a JSON path into the body, not an attribute",
            ));
        }
        Ok(EnvelopeSettings {
            format: self.format,
            event_id: locator("event_id", &self.event_id, "event_id")?,
            event_type: locator("event_type", &self.event_type, "event_type")?,
            event_time: locator("event_time", &self.event_time, "event_time")?,
            object_id: locator("object_id", &self.object_id, "object_id")?,
            payload,
        })
    }

    fn resolve_attributes(&self) -> Result<EnvelopeSettings, FieldError> {
        if self.payload.is_some() {
            return Err(FieldError::new(
                "envelope.payload",
                "not used by the `attributes` format: the whole body is the payload",
            ));
        }
        Ok(EnvelopeSettings {
            format: self.format,
            event_id: locator("event_id", &self.event_id, "attributes.event_id")?,
            event_type: locator("event_type", &self.event_type, "attributes.event_type")?,
            event_time: locator("event_time", &self.event_time, "attributes.event_time")?,
            object_id: locator("object_id", &self.object_id, "attributes.object_id")?,
            payload: FieldLocator::Path(Vec::new()),
        })
    }

    fn resolve_cloudevents(&self) -> Result<EnvelopeSettings, FieldError> {
        for (field, v) in [
            ("event_id", &self.event_id),
            ("event_type", &self.event_type),
            ("event_time", &self.event_time),
            ("payload", &self.payload),
        ] {
            if v.is_some() {
                return Err(FieldError::new(
                    format!("envelope.{field}"),
                    "fixed by CloudEvents 1.0 (id, type, time, data); remove it",
                ));
            }
        }
        let fixed = |name: &str| FieldLocator::Path(vec![name.to_string()]);
        Ok(EnvelopeSettings {
            format: self.format,
            event_id: fixed("id"),
            event_type: fixed("type"),
            event_time: fixed("time"),
            object_id: locator("object_id", &self.object_id, "subject")?,
            payload: fixed("data"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locators_parse() {
        assert_eq!(
            FieldLocator::parse("attributes.ce-id").unwrap(),
            FieldLocator::Attribute("ce-id".into())
        );
        assert_eq!(
            FieldLocator::parse("payload.order_id").unwrap(),
            FieldLocator::Path(vec!["payload".into(), "order_id".into()])
        );
        assert!(FieldLocator::parse("a..b").is_err());
        assert!(FieldLocator::parse("attributes.").is_err());
    }
}
