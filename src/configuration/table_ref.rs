//! A BigQuery table named in an object file: `[project.]dataset.table`.

use serde::Serialize;

/// `project.dataset.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRef {
    pub project: String,
    pub dataset: String,
    pub table: String,
}

/// A project id as SQL may name it between backticks: lowercase letters, digits, hyphens (and
/// the colon of a domain-scoped id). Every table reference's project is checked with it.
pub fn project_id_ok(x: &str) -> bool {
    !x.is_empty()
        && x.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == ':')
}

impl TableRef {
    /// Parses `project.dataset.table` or `dataset.table` (in `default_project`).
    pub fn parse(s: &str, default_project: &str) -> Result<TableRef, String> {
        let parts: Vec<&str> = s.split('.').collect();
        let (project, dataset, table) = match parts.as_slice() {
            [p, d, t] => (*p, *d, *t),
            [d, t] => (default_project, *d, *t),
            _ => return Err(format!("`{s}` is not `project.dataset.table`")),
        };
        let ident_ok = |x: &str| {
            !x.is_empty()
                && x.len() <= 1024
                && x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !project_id_ok(project) {
            return Err(format!(
                "project `{project}` in `{s}` is not a valid project id"
            ));
        }
        if !ident_ok(dataset) {
            return Err(format!(
                "dataset `{dataset}` in `{s}` may only hold letters, digits and underscores"
            ));
        }
        if !ident_ok(table) {
            return Err(format!(
                "table `{table}` in `{s}` may only hold letters, digits and underscores"
            ));
        }
        Ok(TableRef {
            project: project.into(),
            dataset: dataset.into(),
            table: table.into(),
        })
    }

    /// The resource name the Storage Write API takes.
    pub fn write_api_name(&self) -> String {
        format!(
            "projects/{}/datasets/{}/tables/{}",
            self.project, self.dataset, self.table
        )
    }

    /// The name SQL uses, back-quoted.
    pub fn sql_name(&self) -> String {
        format!("`{}.{}.{}`", self.project, self.dataset, self.table)
    }
}

impl Serialize for TableRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl std::fmt::Display for TableRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.project, self.dataset, self.table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_ref_parses_and_rejects() {
        let t = TableRef::parse("p-1.d_s.t1", "x").unwrap();
        assert_eq!(t.write_api_name(), "projects/p-1/datasets/d_s/tables/t1");
        assert_eq!(TableRef::parse("d.t", "proj").unwrap().project, "proj");
        assert!(TableRef::parse("a.b.c.d", "p").is_err());
        assert!(
            TableRef::parse("p.d-x.t", "p")
                .unwrap_err()
                .contains("dataset `d-x`")
        );
    }
}
