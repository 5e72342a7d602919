//! The data product under two definitions over the same ingest log, compared object by object
//! (for `contract preview`): how many objects each has, how many only one of them has, and per
//! column of the same name, how many objects' values differ. Each side is the full computation
//! the state table is built from (`state_select` over the whole log), live objects only.

use super::{Slice, state_select};
use crate::configuration::ObjectSettings;

/// One comparison: its SQL (one row) and what each of its columns counts, in order.
pub struct Comparison {
    pub sql: String,
    /// `objects_old`, `objects_new`, `only_old`, `only_new`, then one per compared column.
    pub counts: Vec<String>,
    /// The compared columns (present under both definitions), in `counts`' order after the
    /// first four.
    pub columns: Vec<String>,
}

/// Compares `old`'s data product with `new`'s (each `ObjectSettings` holding the major to
/// compare as its `semantic`), both over `new`'s ingest table as SQL writes it (`source`).
pub fn compare(old: &ObjectSettings, new: &ObjectSettings, source: &str) -> Option<Comparison> {
    let (os, ns) = (old.semantic.as_ref()?, new.semantic.as_ref()?);
    let old_sql = state_select(old, source, &Slice::all())?;
    let new_sql = state_select(new, source, &Slice::all())?;
    let columns: Vec<String> = ns
        .fields
        .iter()
        .filter(|f| os.fields.iter().any(|o| o.name == f.name))
        .map(|f| f.name.clone())
        .collect();
    let both = "o.object_id IS NOT NULL AND n.object_id IS NOT NULL";
    let mut counts = vec![
        (
            "objects_old".to_string(),
            "COUNTIF(o.object_id IS NOT NULL)".to_string(),
        ),
        (
            "objects_new".to_string(),
            "COUNTIF(n.object_id IS NOT NULL)".to_string(),
        ),
        (
            "only_old".to_string(),
            "COUNTIF(n.object_id IS NULL)".to_string(),
        ),
        (
            "only_new".to_string(),
            "COUNTIF(o.object_id IS NULL)".to_string(),
        ),
    ];
    for c in &columns {
        // As JSON text: compares STRUCTs and ARRAYs too, and a NULL on one side only counts.
        counts.push((
            c.clone(),
            format!(
                "COUNTIF({both} AND IFNULL(TO_JSON_STRING(o.{c}), '') != IFNULL(TO_JSON_STRING(n.{c}), ''))"
            ),
        ));
    }
    let select = counts
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| format!("  {expr} AS c{i}"))
        .collect::<Vec<_>>()
        .join(",\n");
    let sql = format!(
        "WITH old_product AS (\n  SELECT * FROM (\n{old_sql}) WHERE NOT deleted\n),\n\
         new_product AS (\n  SELECT * FROM (\n{new_sql}) WHERE NOT deleted\n)\n\
         SELECT\n{select}\nFROM old_product AS o FULL OUTER JOIN new_product AS n \
         ON o.object_id = n.object_id\n"
    );
    Some(Comparison {
        sql,
        counts: counts.into_iter().map(|(name, _)| name).collect(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn object(fields: &str) -> ObjectSettings {
        let yaml = format!(
            "name: order\nsubscription: s-sub\ningest_table: ing.events\n\
             dead_letter_table: ing.dead\nenvelope: {{format: json, object_id: payload.id}}\n\
             semantic:\n  dataset: sem\n  fields: [{fields}]\n"
        );
        ObjectSettings::parse(&yaml, Path::new("order.yaml"), "p").unwrap()
    }

    #[test]
    fn columns_of_the_same_name_are_compared_and_the_rest_counted() {
        let old = object("{name: total, type: NUMERIC}, {name: note, type: STRING}");
        let new = object("{name: total, type: STRING, required: true}, {name: tag, type: STRING}");
        let c = compare(&old, &new, "`p.ing.events`").unwrap();
        assert_eq!(c.columns, ["total"]);
        assert_eq!(
            c.counts,
            [
                "objects_old",
                "objects_new",
                "only_old",
                "only_new",
                "total"
            ]
        );
        assert!(
            c.sql.contains("FROM old_product AS o FULL OUTER JOIN new_product AS n ON o.object_id = n.object_id"),
            "{}",
            c.sql
        );
        assert!(c.sql.contains("TO_JSON_STRING(o.total)"), "{}", c.sql);
        // The new definition's validation applies on its side only.
        assert_eq!(c.sql.matches("'total: missing'").count(), 1, "{}", c.sql);
    }
}
