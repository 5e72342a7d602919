//! A data product's majors as consumers meet them: the labels and the deprecation notice each
//! major's tables and views carry, and which stored objects belong to which major (so that
//! `provision` can find a major the configuration no longer lists). Pure, like the rest of
//! the semantic layer.

use crate::configuration::{Layer, ObjectSettings, SemanticSettings, major_view};
use std::collections::BTreeMap;

/// A name or date as a label value (names are identifiers, dates `YYYY-MM-DD`: both fit).
fn label_value(s: &str) -> String {
    crate::configuration::label_value(s).unwrap_or_else(|_| s.chars().take(63).collect())
}

/// The labels of every table and view of one major (`object` holds it as its `semantic`):
/// the contract's (`ObjectSettings::labels`) and, for an older major, that it is deprecated,
/// its sunset and what replaces it.
pub fn labels(object: &ObjectSettings) -> BTreeMap<String, String> {
    let mut labels = object.labels(Layer::Semantic);
    let Some(semantic) = object.semantic.as_ref() else {
        return labels;
    };
    labels.insert("deprecated".into(), semantic.deprecated().to_string());
    if let Some(sunset) = &semantic.sunset {
        labels.insert("sunset".into(), label_value(sunset));
    }
    if let Some(successor) = &semantic.successor {
        labels.insert("successor".into(), label_value(successor));
    }
    labels
}

/// The sentence that opens a deprecated major's descriptions; `None` for the current major.
pub fn notice(semantic: &SemanticSettings) -> Option<String> {
    let sunset = semantic.sunset.as_deref()?;
    let successor = semantic.successor.as_deref().unwrap_or("a newer major");
    Some(format!(
        "DEPRECATED: major {} of the data product `{}`, maintained until {sunset} (sunset); \
         move to `{successor}`.",
        semantic.major, semantic.product
    ))
}

/// `text` with the deprecation notice before it, for a deprecated major.
pub fn describe(semantic: &SemanticSettings, text: &str) -> String {
    match notice(semantic) {
        Some(n) if text.is_empty() => n,
        Some(n) => format!("{n}\n{text}"),
        None => text.to_string(),
    }
}

/// The description of one of a major's tables or views: the deprecation notice (for an older
/// major), what it holds (`text`), and the contract in a paragraph.
pub fn description(object: &ObjectSettings, text: &str) -> String {
    let body = format!("{text}\n{}", object.contract_summary());
    match object.semantic.as_ref() {
        Some(s) => describe(s, &body),
        None => body,
    }
}

/// The views of one major, live view first.
pub fn views(semantic: &SemanticSettings) -> [String; 3] {
    [
        semantic.view.clone(),
        semantic.history_view(),
        semantic.rejected_view(),
    ]
}

/// What a state table's name says about the product `product`: `Some(Some(n))` for major
/// `n`'s (`order_v2_state`), `Some(None)` for the unversioned one a release before majors
/// built (`order_state`), `None` for another product's.
pub fn major_of_state_table(product: &str, table: &str) -> Option<Option<u32>> {
    let stem = table.strip_suffix("_state")?;
    if stem == product {
        return Some(None);
    }
    let major: u32 = stem
        .strip_prefix(product)?
        .strip_prefix("_v")?
        .parse()
        .ok()?;
    (major_view(product, major) == stem).then_some(Some(major))
}

/// The major a table or view of `product` belongs to: `order_v2`, `order_v2_state`,
/// `order_v2_history`, `order_v2_rejected` → 2; `None` for anything else.
pub fn major_of_table(product: &str, table: &str) -> Option<u32> {
    let stem = ["_state", "_history", "_rejected"]
        .iter()
        .find_map(|s| table.strip_suffix(s))
        .unwrap_or(table);
    let major: u32 = stem
        .strip_prefix(product)?
        .strip_prefix("_v")?
        .parse()
        .ok()?;
    (major_view(product, major) == stem).then_some(major)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_tables_name_their_major() {
        assert_eq!(
            major_of_state_table("order", "order_v2_state"),
            Some(Some(2))
        );
        assert_eq!(major_of_state_table("order", "order_state"), Some(None));
        assert_eq!(major_of_state_table("order", "order_v02_state"), None);
        assert_eq!(major_of_state_table("order", "orders_v1_state"), None);
        assert_eq!(major_of_state_table("order", "order_v1"), None);
        assert_eq!(major_of_state_table("order", "order_vx_state"), None);
    }

    #[test]
    fn tables_and_views_name_their_major() {
        for (table, major) in [
            ("order_v2", Some(2)),
            ("order_v2_state", Some(2)),
            ("order_v12_history", Some(12)),
            ("order_v1_rejected", Some(1)),
            ("order", None),
            ("order_state", None),
            ("order_vip_v1", None),
            ("order_v01", None),
        ] {
            assert_eq!(major_of_table("order", table), major, "{table}");
        }
    }
}
