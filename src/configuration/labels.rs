//! The contract as BigQuery labels and descriptions, for every dataset, table and view
//! mesh-ingest owns: who owns it, its domain, which data product and layer it is, the
//! contract's major, and that mesh-ingest manages it. Label values follow BigQuery's rules
//! (lowercase letters, international ones too, digits, `_` and `-`; at most 63 characters): a
//! value is mapped to them, and one that cannot be (too long) is refused where the file is
//! read, naming the field.

use super::ObjectSettings;
use std::collections::BTreeMap;

/// BigQuery's longest label value.
pub const MAX_LABEL_CHARS: usize = 63;

/// `text` as a label value: lowercase, every other character `_`. Refused when longer than
/// BigQuery allows (cutting it could make two owners one).
pub fn label_value(text: &str) -> Result<String, String> {
    let value: String = text
        .trim()
        .chars()
        .flat_map(char::to_lowercase)
        .map(|c| {
            if c.is_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let n = value.chars().count();
    if n > MAX_LABEL_CHARS {
        return Err(format!(
            "`{text}` is {n} characters; as a BigQuery label value it may have at most {MAX_LABEL_CHARS}"
        ));
    }
    Ok(value)
}

/// Which part of a data product a table or view is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// The ingest and dead-letter tables.
    Ingest,
    /// The state tables and views of the data product.
    Semantic,
}

impl Layer {
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Ingest => "ingest",
            Layer::Semantic => "semantic",
        }
    }
}

impl ObjectSettings {
    /// The labels of the object's tables and views in `layer` (the values were checked at
    /// load). `contract_version` is the major: the current one, or the one `semantic` holds.
    pub fn labels(&self, layer: Layer) -> BTreeMap<String, String> {
        let c = &self.contract;
        let product = self
            .semantic
            .as_ref()
            .map_or(self.name.as_str(), |s| s.product.as_str());
        let major = self.semantic.as_ref().map_or(c.major(), |s| s.major);
        let mut labels = BTreeMap::from([
            ("managed_by".to_string(), "mesh-ingest".to_string()),
            ("layer".to_string(), layer.as_str().to_string()),
            ("data_product".to_string(), mapped(product)),
            ("contract_version".to_string(), major.to_string()),
        ]);
        for (key, value) in [("domain", &c.domain), ("owner", &c.owner)] {
            if let Some(v) = value {
                labels.insert(key.to_string(), mapped(v));
            }
        }
        labels
    }

    /// The contract in one paragraph, for the descriptions of the object's tables and views:
    /// owner, domain, where the contract lives and its version, and the freshness promise.
    pub fn contract_summary(&self) -> String {
        let c = &self.contract;
        let mut parts = Vec::new();
        if let Some(owner) = &c.owner {
            parts.push(format!("Owner: {owner}."));
        }
        if let Some(domain) = &c.domain {
            parts.push(format!("Domain: {domain}."));
        }
        let version = match self.semantic.as_ref().map(|s| s.major) {
            Some(m) if m != c.major() => format!("major {m}, kept beside version {}", c.version),
            _ => format!("version {}", c.version),
        };
        parts.push(format!(
            "Contract: {} ({version}; `mesh-ingest contract export` writes it as ODCS).",
            self.source_file
        ));
        if let Some(secs) = c.freshness_secs {
            parts.push(format!(
                "Freshness: an event is in the data product within {} of being published.",
                super::contract::format_duration(secs)
            ));
        }
        parts.join(" ")
    }
}

impl ObjectSettings {
    /// The sentence that says which payload paths are classified (`payload_classification`),
    /// for the `payload` column's description; `None` when none is.
    pub fn payload_classification_text(&self) -> Option<String> {
        if self.payload_classification.is_empty() {
            return None;
        }
        let paths: Vec<String> = self
            .payload_classification
            .iter()
            .map(|(path, class)| format!("{path} ({class})"))
            .collect();
        Some(format!("Classified: {}.", paths.join(", ")))
    }
}

/// A value checked at load (`label_value` of it succeeded).
fn mapped(text: &str) -> String {
    label_value(text).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_mapped_to_bigquery_label_rules_or_refused() {
        assert_eq!(label_value("Team Orders").unwrap(), "team_orders");
        assert_eq!(label_value("sales/eu.west").unwrap(), "sales_eu_west");
        assert_eq!(label_value("Ärger-Team").unwrap(), "ärger-team");
        assert_eq!(label_value(&"x".repeat(63)).unwrap().len(), 63);
        let e = label_value(&"x".repeat(64)).unwrap_err();
        assert!(e.contains("64 characters"), "{e}");
    }
}
