//! The data-contract facts of an object file that the pipeline itself does not use: who owns
//! the object, its domain, what it is, the contract's version and the freshness it promises.
//! `contract export` writes them into the ODCS document; the lag alert reads the freshness.

use super::FieldError;
use serde::{Deserialize, Serialize};

/// The contract metadata, resolved (every field optional in the file).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ContractSettings {
    /// The owning team, e.g. `team-orders`.
    pub owner: Option<String>,
    /// The Data Mesh domain, e.g. `sales`.
    pub domain: Option<String>,
    pub description: Option<String>,
    /// The contract's version (semantic versioning); `1.0.0` when not given.
    pub version: String,
    /// The freshness the data product promises: an event is in the semantic layer within this
    /// many seconds of being published.
    pub freshness_secs: Option<u64>,
}

impl ContractSettings {
    /// The MAJOR of `version`: the data product's current major.
    pub fn major(&self) -> u32 {
        self.version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(1)
    }
}

/// `sla:` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SlaFile {
    /// `30s`, `15m`, `2h` or `1d`.
    #[serde(default)]
    freshness: Option<String>,
}

pub(super) fn default_version() -> String {
    "1.0.0".to_string()
}

/// Validates the contract fields of an object file.
pub(super) fn resolve(
    owner: Option<String>,
    domain: Option<String>,
    description: Option<String>,
    version: Option<String>,
    sla: Option<SlaFile>,
) -> Result<ContractSettings, FieldError> {
    for (field, value) in [("owner", &owner), ("domain", &domain)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(FieldError::new(field, "must not be blank when given"));
        }
        if let Some(v) = value {
            // It labels every table and view of the object.
            super::labels::label_value(v).map_err(|m| FieldError::new(field, m))?;
        }
    }
    let version = version.unwrap_or_else(default_version);
    let semver = version.split('.').collect::<Vec<_>>();
    if semver.len() != 3
        || semver.iter().any(|p| p.parse::<u64>().is_err())
        || !semver[0].parse::<u32>().is_ok_and(|m| m >= 1)
    {
        return Err(FieldError::new(
            "version",
            format!("`{version}` is not MAJOR.MINOR.PATCH (MAJOR at least 1)"),
        ));
    }
    let freshness_secs = sla
        .and_then(|s| s.freshness)
        .map(|f| parse_duration(&f).map_err(|m| FieldError::new("sla.freshness", m)))
        .transpose()?;
    Ok(ContractSettings {
        owner,
        domain,
        description,
        version,
        freshness_secs,
    })
}

/// Seconds in the largest unit that divides them: 900 → (15, "m").
pub fn duration_parts(secs: u64) -> (u64, &'static str) {
    [(86_400, "d"), (3600, "h"), (60, "m")]
        .into_iter()
        .find(|(unit, _)| secs.is_multiple_of(*unit))
        .map_or((secs, "s"), |(unit, name)| (secs / unit, name))
}

/// Seconds as the object file writes them: 900 → `15m`.
pub fn format_duration(secs: u64) -> String {
    let (n, unit) = duration_parts(secs);
    format!("{n}{unit}")
}

/// `90s`, `15m`, `2h`, `1d` → seconds (at least one second).
pub fn parse_duration(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration such as 30s, 15m, 2h or 1d"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("`{text}`: the unit must be s, m, h or d")),
    };
    match n.checked_mul(scale) {
        Some(0) => Err(format!("`{text}` must be at least 1s")),
        Some(secs) => Ok(secs),
        None => Err(format!("`{text}` is too long")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_a_positive_number() {
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("2h"), Ok(7200));
        assert_eq!(parse_duration("1d"), Ok(86_400));
        assert!(parse_duration("15").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("m").is_err());
        assert!(parse_duration("5 weeks").is_err());
    }

    #[test]
    fn a_version_must_be_semantic() {
        let bad = resolve(None, None, None, Some("1.0".into()), None).unwrap_err();
        assert_eq!(bad.field, "version");
        let ok = resolve(Some("team-orders".into()), None, None, None, None).unwrap();
        assert_eq!(ok.version, "1.0.0");
        let blank = resolve(Some(" ".into()), None, None, None, None).unwrap_err();
        assert_eq!(blank.field, "owner");
    }
}
