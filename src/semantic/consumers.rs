//! Who reads each major of a data product, so a team knows whom to tell before a sunset: the
//! query over BigQuery's job history (`region-<location>`.INFORMATION_SCHEMA.JOBS, with the
//! documented columns `creation_time`, `user_email`, `job_type`, `statement_type`,
//! `error_result`, `destination_table` and `referenced_tables`), and its answer grouped by
//! major. Pure: `commands::consumers` runs the query.

use super::sql_string;
use super::versions::major_of_table;
use crate::configuration::ObjectSettings;
use serde::Serialize;

/// How far back BigQuery keeps job history (INFORMATION_SCHEMA.JOBS: 180 days).
pub const MAX_DAYS: u32 = 180;

/// The region qualifier of a dataset location: `US` → `region-us`.
pub fn region(location: &str) -> String {
    format!("region-{}", location.to_ascii_lowercase())
}

/// The jobs of the last `days` days that read a table or view of any major of `object`'s data
/// product, per table and principal: `table_id, principal, jobs, last_read` (RFC 3339). Jobs
/// that failed, mesh-ingest's own maintenance (writing a major's state table; creating or
/// dropping its views) and other products whose names merely start alike are left out.
/// `None` without a `semantic:` section.
pub fn jobs_query(object: &ObjectSettings, location: &str, days: u32) -> Option<String> {
    let semantic = object.semantic.as_ref()?;
    let prefix = sql_string(&format!("{}_v", semantic.product));
    let dataset = sql_string(&semantic.dataset);
    Some(format!(
        "SELECT t.table_id AS table_id, j.user_email AS principal, COUNT(*) AS jobs,
  FORMAT_TIMESTAMP('%FT%TZ', MAX(j.creation_time)) AS last_read
FROM `{project}`.`{region}`.INFORMATION_SCHEMA.JOBS AS j, UNNEST(j.referenced_tables) AS t
WHERE j.creation_time >= TIMESTAMP_SUB(CURRENT_TIMESTAMP(), INTERVAL {days} DAY)
  AND j.job_type = 'QUERY' AND j.error_result IS NULL
  AND IFNULL(j.statement_type, '') NOT IN ('CREATE_VIEW', 'DROP_VIEW', 'DROP_TABLE')
  AND NOT (IFNULL(j.destination_table.dataset_id, '') = {dataset}
    AND ENDS_WITH(IFNULL(j.destination_table.table_id, ''), '_state')
    AND STARTS_WITH(j.destination_table.table_id, {prefix}))
  AND t.project_id = {project_literal} AND t.dataset_id = {dataset}
  AND STARTS_WITH(t.table_id, {prefix})
GROUP BY table_id, principal
ORDER BY table_id, jobs DESC",
        project = semantic.project,
        region = region(location),
        project_literal = sql_string(&semantic.project),
    ))
}

/// One row of the answer: a principal's jobs that read one table or view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableReads {
    pub table: String,
    pub principal: String,
    pub jobs: u64,
    pub last_read: String,
}

/// A principal's reads of one major (all its tables and views together).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reader {
    pub principal: String,
    pub jobs: u64,
    pub last_read: String,
}

/// Who read one major.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MajorReaders {
    pub major: u32,
    /// The major's live view, `project.dataset.view`.
    pub view: String,
    pub deprecated: bool,
    pub sunset: Option<String>,
    /// Whether the configuration still lists this major (a reader of one it no longer lists
    /// reads rows nobody keeps current).
    pub configured: bool,
    /// Most jobs first.
    pub readers: Vec<Reader>,
}

/// The answer by major: every configured major (newest first, readers or not), then any other
/// major that was read.
pub fn by_major(object: &ObjectSettings, reads: &[TableReads]) -> Vec<MajorReaders> {
    let Some(current) = object.semantic.as_ref() else {
        return Vec::new();
    };
    let mut out: Vec<MajorReaders> = object
        .majors()
        .map(|m| MajorReaders {
            major: m.major,
            view: m.view_name(),
            deprecated: m.deprecated(),
            sunset: m.sunset.clone(),
            configured: true,
            readers: Vec::new(),
        })
        .collect();
    for r in reads {
        let Some(major) = major_of_table(&current.product, &r.table) else {
            continue;
        };
        let at = match out.iter().position(|m| m.major == major) {
            Some(at) => at,
            None => {
                out.push(MajorReaders {
                    major,
                    view: current
                        .qualified(&crate::configuration::major_view(&current.product, major))
                        .to_string(),
                    deprecated: true,
                    sunset: None,
                    configured: false,
                    readers: Vec::new(),
                });
                out.len() - 1
            }
        };
        let readers = &mut out[at].readers;
        match readers.iter_mut().find(|x| x.principal == r.principal) {
            Some(x) => {
                x.jobs += r.jobs;
                if r.last_read > x.last_read {
                    x.last_read.clone_from(&r.last_read);
                }
            }
            None => readers.push(Reader {
                principal: r.principal.clone(),
                jobs: r.jobs,
                last_read: r.last_read.clone(),
            }),
        }
    }
    for m in &mut out {
        m.readers
            .sort_by(|a, b| b.jobs.cmp(&a.jobs).then(a.principal.cmp(&b.principal)));
    }
    out
}

/// The report for people: one block per major.
pub fn to_text(object: &str, days: u32, majors: &[MajorReaders]) -> String {
    let mut text = String::new();
    for m in majors {
        let state = match (&m.sunset, m.configured) {
            (_, false) => "no longer configured".to_string(),
            (Some(s), true) => format!("deprecated, sunset {s}"),
            (None, true) => "current".to_string(),
        };
        text.push_str(&format!("{object} v{} ({state}) {}:", m.major, m.view));
        if m.readers.is_empty() {
            text.push_str(&format!(" no reads in the last {days} days\n"));
            continue;
        }
        text.push_str(&format!(" {} principal(s)\n", m.readers.len()));
        for r in &m.readers {
            text.push_str(&format!(
                "  {}  {} job(s), last {}\n",
                r.principal, r.jobs, r.last_read
            ));
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn order() -> ObjectSettings {
        let yaml = "name: order\nsubscription: s-sub\ningest_table: ing.events\n\
            dead_letter_table: ing.dead\nenvelope: {format: json, object_id: payload.id}\n\
            version: 3.0.0\nsemantic:\n  dataset: sem\n  fields: [{name: a, type: STRING}]\n  \
            previous: [{major: 2, sunset: 2027-06-30, fields: [{name: a, type: STRING}]}]\n";
        ObjectSettings::parse(yaml, Path::new("order.yaml"), "p").unwrap()
    }

    #[test]
    fn the_query_reads_the_documented_view_of_the_datasets_region() {
        let sql = jobs_query(&order(), "EU", 30).unwrap();
        for part in [
            "FROM `p`.`region-eu`.INFORMATION_SCHEMA.JOBS AS j, UNNEST(j.referenced_tables) AS t",
            "INTERVAL 30 DAY",
            "j.job_type = 'QUERY' AND j.error_result IS NULL",
            "t.project_id = 'p' AND t.dataset_id = 'sem'",
            "STARTS_WITH(t.table_id, 'order_v')",
            "ENDS_WITH(IFNULL(j.destination_table.table_id, ''), '_state')",
        ] {
            assert!(sql.contains(part), "{part} in\n{sql}");
        }
    }

    #[test]
    fn reads_are_summed_per_major_and_principal() {
        let read = |table: &str, who: &str, jobs, last: &str| TableReads {
            table: table.into(),
            principal: who.into(),
            jobs,
            last_read: last.into(),
        };
        let majors = by_major(
            &order(),
            &[
                read("order_v2", "ana@x", 3, "2026-12-01T10:00:00Z"),
                read("order_v2_state", "ana@x", 2, "2026-12-03T10:00:00Z"),
                read("order_v2_history", "bob@x", 9, "2026-11-01T10:00:00Z"),
                read("order_v1", "old@x", 1, "2026-11-02T10:00:00Z"),
                read("order_vip_v1", "someone@x", 5, "2026-11-02T10:00:00Z"),
            ],
        );
        type Summary<'a> = (u32, bool, Vec<(&'a str, u64, &'a str)>);
        let summary: Vec<Summary> = majors
            .iter()
            .map(|m| {
                let readers = m
                    .readers
                    .iter()
                    .map(|r| (r.principal.as_str(), r.jobs, r.last_read.as_str()))
                    .collect();
                (m.major, m.configured, readers)
            })
            .collect();
        assert_eq!(
            summary,
            [
                (3, true, vec![]),
                (
                    2,
                    true,
                    vec![
                        ("bob@x", 9, "2026-11-01T10:00:00Z"),
                        ("ana@x", 5, "2026-12-03T10:00:00Z")
                    ]
                ),
                (1, false, vec![("old@x", 1, "2026-11-02T10:00:00Z")]),
            ]
        );
        let text = to_text("order", 30, &majors);
        assert!(
            text.contains("order v3 (current) p.sem.order_v3: no reads in the last 30 days"),
            "{text}"
        );
        assert!(text.contains("order v2 (deprecated, sunset 2027-06-30) p.sem.order_v2: 2 principal(s)\n  bob@x  9 job(s)"), "{text}");
        assert!(
            text.contains("order v1 (no longer configured) p.sem.order_v1: 1 principal(s)"),
            "{text}"
        );
    }
}
