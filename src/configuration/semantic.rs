//! The `semantic:` section of an object file: the typed, latest-state data product generated
//! from the ingest table — its dataset and view name, typed fields read from the payload, and
//! the event types that delete an object. The product evolves in major versions: the
//! contract's `version` names the current major, and `previous:` lists older majors still
//! maintained beside it, each with its own fields and a sunset date. Every major's tables and
//! views carry it in their names (`<view>_v<MAJOR>`), so a new major never changes what an
//! existing name means.

use super::table_ref::project_id_ok;
use super::{FieldError, PolicyTagSetting, TableRef};
use serde::{Deserialize, Serialize};

/// BigQuery types a semantic field can have.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "UPPERCASE")]
pub enum FieldType {
    String,
    Int64,
    Numeric,
    Float64,
    Bool,
    Timestamp,
    Date,
    Json,
    Struct,
}

impl FieldType {
    pub fn sql(self) -> &'static str {
        match self {
            FieldType::String => "STRING",
            FieldType::Int64 => "INT64",
            FieldType::Numeric => "NUMERIC",
            FieldType::Float64 => "FLOAT64",
            FieldType::Bool => "BOOL",
            FieldType::Timestamp => "TIMESTAMP",
            FieldType::Date => "DATE",
            FieldType::Json => "JSON",
            FieldType::Struct => "STRUCT",
        }
    }
}

/// One typed column of the semantic view.
#[derive(Debug, Clone, Serialize)]
pub struct SemanticField {
    pub name: String,
    /// Keys from the payload (or, inside a STRUCT, from the enclosing object) to the value.
    pub path: Vec<String>,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// An array in the payload: each element typed as `field_type`.
    pub repeated: bool,
    /// A latest event without it (or whose value does not cast) is listed in `<view>_rejected`
    /// instead of becoming the object's state.
    pub required: bool,
    pub description: Option<String>,
    /// Announced for removal: consumers should stop reading it. `contract diff` lets a field
    /// be removed only once a previous version of the contract marked it so.
    pub deprecated: bool,
    /// Sub-fields of a STRUCT.
    pub fields: Vec<SemanticField>,
    /// How sensitive the values are (`pii`, `confidential`, …): in the column's description,
    /// the ODCS export and, with a policy tag configured for it, BigQuery column-level access.
    pub classification: Option<String>,
    /// The policy tag of `classification` (`gcp.policy_tags`), resolved at load.
    pub policy_tag: Option<String>,
}

impl SemanticField {
    /// The column's type as BigQuery names it (`ARRAY<…>` when repeated).
    pub fn column_type(&self) -> String {
        if self.repeated {
            format!("ARRAY<{}>", self.field_type.sql())
        } else {
            self.field_type.sql().to_string()
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SemanticSettings {
    pub project: String,
    pub dataset: String,
    /// The data product's name as written (`semantic.view`, default the object's name).
    pub product: String,
    /// The major version these settings describe.
    pub major: u32,
    /// The live view of this major: `<product>_v<major>`; the other names derive from it.
    pub view: String,
    /// For an older major: the day (`YYYY-MM-DD`, UTC) after which it may be removed.
    pub sunset: Option<String>,
    /// For an older major: the live view of the major that replaces it.
    pub successor: Option<String>,
    pub description: Option<String>,
    /// Event types that delete the object: its latest event being one removes it from the view.
    pub deleted_when: Vec<String>,
    pub fields: Vec<SemanticField>,
    /// How far behind its watermark `materialize` re-reads the ingest log, for appends that
    /// were in flight when the last run read it.
    pub safety_lag_secs: u64,
}

/// The live view of `product`'s major `major`.
pub fn major_view(product: &str, major: u32) -> String {
    format!("{product}_v{major}")
}

impl SemanticField {
    /// Sets the policy tag of this field and its sub-fields from `tags` (classification →
    /// policy tag).
    pub(super) fn resolve_policy_tags(&mut self, tags: &[PolicyTagSetting]) {
        self.policy_tag = self.classification.as_ref().and_then(|c| {
            tags.iter()
                .find(|t| &t.classification == c)
                .map(|t| t.tag.clone())
        });
        for f in &mut self.fields {
            f.resolve_policy_tags(tags);
        }
    }
}

impl SemanticSettings {
    /// Whether this is an older major, kept until its sunset.
    pub fn deprecated(&self) -> bool {
        self.sunset.is_some()
    }

    /// Whether `today` (`YYYY-MM-DD`) is after this major's sunset.
    pub fn past_sunset(&self, today: &str) -> bool {
        self.sunset.as_deref().is_some_and(|s| today > s)
    }

    /// When this major is past its sunset: the start (UTC) of the day after it, in Unix seconds.
    pub fn past_sunset_at(&self) -> Option<i64> {
        let day = parse_date(self.sunset.as_deref()?)?;
        Some(day.next_day()?.midnight().assume_utc().unix_timestamp())
    }

    pub fn view_name(&self) -> String {
        self.qualified(&self.view).to_string()
    }

    pub fn rejected_view(&self) -> String {
        format!("{}_rejected", self.view)
    }

    /// The table that holds the latest state of every object, tombstones included.
    pub fn state_table(&self) -> String {
        format!("{}_state", self.view)
    }

    /// The view that computes the latest state from the whole ingest log (for audits).
    pub fn history_view(&self) -> String {
        format!("{}_history", self.view)
    }

    /// A table or view of the semantic dataset.
    pub fn qualified(&self, name: &str) -> TableRef {
        TableRef {
            project: self.project.clone(),
            dataset: self.dataset.clone(),
            table: name.to_string(),
        }
    }
}

/// The section as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SemanticFile {
    dataset: String,
    #[serde(default)]
    view: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    deleted_when: Vec<String>,
    fields: Vec<FieldFile>,
    #[serde(default = "default_safety_lag")]
    safety_lag_secs: u64,
    /// Older majors still maintained, each until its sunset.
    #[serde(default)]
    previous: Vec<PreviousFile>,
}

/// One older major as written under `semantic.previous`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreviousFile {
    major: u32,
    /// `YYYY-MM-DD`.
    sunset: String,
    #[serde(default)]
    description: Option<String>,
    fields: Vec<FieldFile>,
}

fn default_safety_lag() -> u64 {
    300
}

/// The smallest safety lag: twice the 30 s an append attempt may take. An append lands up to
/// that long after the `ingested_at` it carries; with a smaller lag `materialize`'s watermark
/// could pass rows still in flight, and they would never reach the state table.
pub const MIN_SAFETY_LAG_SECS: u64 = 60;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldFile {
    name: String,
    #[serde(default)]
    path: Option<String>,
    #[serde(rename = "type")]
    field_type: FieldType,
    #[serde(default)]
    repeated: bool,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    fields: Vec<FieldFile>,
    #[serde(default)]
    classification: Option<String>,
}

/// The state table's own columns after the typed fields: what decides which event is the
/// latest, and whether it deleted the object (`semantic::state_columns`).
pub const STATE_EVENT_COLUMNS: [&str; 6] = [
    "updated_at",
    "event_id",
    "event_source",
    "publish_time",
    "ingested_at",
    "deleted",
];

/// Whether the view and the state table define a column of this name themselves.
fn reserved(name: &str) -> bool {
    matches!(name, "object_id" | "event_type") || STATE_EVENT_COLUMNS.contains(&name)
}

fn ident_ok(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s.len() <= 300
}

/// Splits `a.b.c` into keys; a key with dots or spaces can be quoted: `a."b.c"`.
fn parse_path(s: &str) -> Result<Vec<String>, String> {
    let mut keys = Vec::new();
    let mut rest = s;
    while !rest.is_empty() {
        let (key, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q
                .find('"')
                .ok_or_else(|| format!("`{s}`: unterminated quote"))?;
            (&q[..end], &q[end + 1..])
        } else {
            match rest.find('.') {
                Some(i) => (&rest[..i], &rest[i..]),
                None => (rest, ""),
            }
        };
        if key.is_empty() {
            return Err(format!("`{s}`: empty key"));
        }
        if key.contains(['"', '\'', '\\', '`']) {
            return Err(format!("`{s}`: key `{key}` holds a quote or backslash"));
        }
        if key.contains("${") || key.chars().any(char::is_control) {
            // JSON_VALUE takes its path as one literal, and SQLX would evaluate a `${`.
            return Err(format!(
                "`{s}`: key `{key}` holds `${{` or a control character"
            ));
        }
        keys.push(key.to_string());
        rest = match after.strip_prefix('.') {
            Some(r) if !r.is_empty() => r,
            Some(_) => return Err(format!("`{s}`: ends with a dot")),
            None if after.is_empty() => "",
            None => return Err(format!("`{s}`: expected `.` after `{key}`")),
        };
    }
    if keys.is_empty() {
        return Err("empty path".into());
    }
    Ok(keys)
}

fn resolve_fields(
    files: Vec<FieldFile>,
    at: &str,
    top_level: bool,
) -> Result<Vec<SemanticField>, FieldError> {
    let mut out: Vec<SemanticField> = Vec::with_capacity(files.len());
    for (i, f) in files.into_iter().enumerate() {
        let here = format!("{at}[{i}]");
        if !ident_ok(&f.name) {
            return Err(FieldError::new(
                format!("{here}.name"),
                format!(
                    "`{}` is not a column name (letters, digits, underscores)",
                    f.name
                ),
            ));
        }
        let lower = f.name.to_ascii_lowercase();
        if top_level && reserved(&lower) {
            return Err(FieldError::new(
                format!("{here}.name"),
                format!("`{}` is a column the view defines itself", f.name),
            ));
        }
        if out.iter().any(|o| o.name.eq_ignore_ascii_case(&f.name)) {
            return Err(FieldError::new(
                format!("{here}.name"),
                format!("`{}` appears twice", f.name),
            ));
        }
        let path = parse_path(f.path.as_deref().unwrap_or(&f.name))
            .map_err(|m| FieldError::new(format!("{here}.path"), m))?;
        let fields = match (f.field_type, f.fields.is_empty()) {
            (FieldType::Struct, true) => {
                return Err(FieldError::new(
                    format!("{here}.fields"),
                    "a STRUCT needs its `fields`",
                ));
            }
            (FieldType::Struct, false) => {
                resolve_fields(f.fields, &format!("{here}.fields"), false)?
            }
            (_, false) => {
                return Err(FieldError::new(
                    format!("{here}.fields"),
                    format!("only a STRUCT has `fields`, not {}", f.field_type.sql()),
                ));
            }
            (_, true) => Vec::new(),
        };
        if f.repeated && f.field_type == FieldType::Json {
            return Err(FieldError::new(
                format!("{here}.repeated"),
                "a JSON field holds arrays as they are; drop `repeated`",
            ));
        }
        if let Some(c) = &f.classification {
            classification_ok(c)
                .map_err(|m| FieldError::new(format!("{here}.classification"), m))?;
        }
        out.push(SemanticField {
            name: f.name,
            path,
            field_type: f.field_type,
            repeated: f.repeated,
            required: f.required,
            description: f.description,
            deprecated: f.deprecated,
            fields,
            classification: f.classification,
            policy_tag: None,
        });
    }
    Ok(out)
}

impl SemanticFile {
    /// Validates the section; errors name the field path. Returns the current major (`major`,
    /// from the contract's version) and the older ones still maintained, newest first.
    pub(super) fn resolve(
        self,
        object: &str,
        project: &str,
        event_types: Option<&[String]>,
        major: u32,
    ) -> Result<(SemanticSettings, Vec<SemanticSettings>), FieldError> {
        let (project, dataset) = match self.dataset.split_once('.') {
            Some((p, d)) => (p.to_string(), d.to_string()),
            None => (project.to_string(), self.dataset.clone()),
        };
        if !project_id_ok(&project) {
            return Err(FieldError::new(
                "semantic.dataset",
                format!(
                    "project `{project}` is not a valid project id (lowercase letters, digits, hyphens)"
                ),
            ));
        }
        if !ident_ok(&dataset) {
            return Err(FieldError::new(
                "semantic.dataset",
                format!("`{dataset}` is not a dataset id (letters, digits, underscores)"),
            ));
        }
        let view = self.view.unwrap_or_else(|| object.to_string());
        if !ident_ok(&view) {
            return Err(FieldError::new(
                "semantic.view",
                format!("`{view}` is not a view name (letters, digits, underscores)"),
            ));
        }
        check_deleted_when(&self.deleted_when, event_types)?;
        if self.safety_lag_secs < MIN_SAFETY_LAG_SECS {
            return Err(FieldError::new(
                "semantic.safety_lag_secs",
                format!(
                    "must be at least {MIN_SAFETY_LAG_SECS}: an append lands up to 30 s after \
                     its `ingested_at`, and a smaller lag lets the watermark pass rows in flight"
                ),
            ));
        }
        if self.fields.is_empty() {
            return Err(FieldError::new(
                "semantic.fields",
                "list at least one field",
            ));
        }
        let fields = resolve_fields(self.fields, "semantic.fields", true)?;
        let current = SemanticSettings {
            view: major_view(&view, major),
            project,
            dataset,
            product: view,
            major,
            sunset: None,
            successor: None,
            description: self.description,
            deleted_when: self.deleted_when,
            fields,
            safety_lag_secs: self.safety_lag_secs,
        };
        let previous = resolve_previous(self.previous, &current)?;
        Ok((current, previous))
    }
}

/// `deleted_when`: event type names that can arrive.
fn check_deleted_when(
    deleted_when: &[String],
    event_types: Option<&[String]>,
) -> Result<(), FieldError> {
    if let Some(t) = deleted_when.iter().find(|t| t.trim().is_empty()) {
        return Err(FieldError::new(
            "semantic.deleted_when",
            format!("`{t}` is blank"),
        ));
    }
    if let Some(t) = deleted_when
        .iter()
        .find(|t| t.chars().any(char::is_control))
    {
        // An event type is a name: a control character in one is a mistake in the file (a
        // stray line break from a YAML block scalar), not a type producers send.
        return Err(FieldError::new(
            "semantic.deleted_when",
            format!("{t:?} holds a control character (a line break, a tab…)"),
        ));
    }
    if let (Some(allowed), Some(t)) = (
        event_types,
        deleted_when
            .iter()
            .find(|t| event_types.is_some_and(|a| !a.contains(t))),
    ) {
        return Err(FieldError::new(
            "semantic.deleted_when",
            format!(
                "`{t}` is not in event_types ({}): it would never arrive",
                allowed.join(", ")
            ),
        ));
    }
    Ok(())
}

/// The older majors, newest first, each pointing at the major that replaces it.
fn resolve_previous(
    files: Vec<PreviousFile>,
    current: &SemanticSettings,
) -> Result<Vec<SemanticSettings>, FieldError> {
    let mut out: Vec<SemanticSettings> = Vec::with_capacity(files.len());
    for (i, p) in files.into_iter().enumerate() {
        let here = format!("semantic.previous[{i}]");
        if p.major == 0 || p.major >= current.major {
            return Err(FieldError::new(
                format!("{here}.major"),
                format!(
                    "{} is not an older major: the contract's version makes {} the current one",
                    p.major, current.major
                ),
            ));
        }
        if out.iter().any(|o| o.major == p.major) {
            return Err(FieldError::new(
                format!("{here}.major"),
                format!("major {} appears twice", p.major),
            ));
        }
        if !date_ok(&p.sunset) {
            return Err(FieldError::new(
                format!("{here}.sunset"),
                format!("`{}` is not a date (YYYY-MM-DD)", p.sunset),
            ));
        }
        if p.fields.is_empty() {
            return Err(FieldError::new(
                format!("{here}.fields"),
                "list at least one field",
            ));
        }
        let fields = resolve_fields(p.fields, &format!("{here}.fields"), true)?;
        out.push(SemanticSettings {
            view: major_view(&current.product, p.major),
            major: p.major,
            sunset: Some(p.sunset),
            successor: None,
            description: p.description.or_else(|| current.description.clone()),
            fields,
            ..current.clone()
        });
    }
    out.sort_by_key(|m| std::cmp::Reverse(m.major));
    // Each older major is replaced by the next newer one still maintained.
    let mut successor = current.view.clone();
    for o in &mut out {
        o.successor = Some(successor);
        successor = o.view.clone();
    }
    Ok(out)
}

/// A classification is a name: lowercase letters, digits, `_` and `-`, starting with a letter
/// (it is matched against `gcp.policy_tags` and written as a label-like word).
pub fn classification_ok(c: &str) -> Result<(), String> {
    let mut chars = c.chars();
    let ok = chars.next().is_some_and(|f| f.is_ascii_lowercase())
        && chars.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || x == '_' || x == '-')
        && c.len() <= 63;
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{c}` is not a classification name (lowercase letters, digits, `_`, `-`; e.g. pii)"
        ))
    }
}

/// Whether `s` is a calendar date written `YYYY-MM-DD`.
fn date_ok(s: &str) -> bool {
    s.len() == 10 && parse_date(s).is_some()
}

/// `YYYY-MM-DD` as a date.
fn parse_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, format).ok()
}

/// Today's date in UTC as `YYYY-MM-DD`, for comparing with sunsets.
pub fn today() -> String {
    let d = time::OffsetDateTime::now_utc().date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_on_dots_and_keep_quoted_keys() {
        assert_eq!(parse_path("a.b").unwrap(), ["a", "b"]);
        assert_eq!(parse_path("a.\"b.c d\".e").unwrap(), ["a", "b.c d", "e"]);
        assert!(parse_path("a..b").is_err());
        assert!(parse_path("a.").is_err());
        assert!(parse_path("a.\"b").is_err());
        assert!(parse_path("a'b").is_err());
    }

    fn file(yaml: &str) -> SemanticFile {
        serde_json::from_value(serde_yaml_like(yaml)).unwrap()
    }

    /// Tiny YAML → JSON through the config crate, as the loader does.
    fn serde_yaml_like(yaml: &str) -> serde_json::Value {
        config::Config::builder()
            .add_source(config::File::from_str(yaml, config::FileFormat::Yaml))
            .build()
            .unwrap()
            .try_deserialize()
            .unwrap()
    }

    #[test]
    fn resolves_defaults_and_names_the_bad_field() {
        let s = file("dataset: sem\nfields:\n  - {name: total, type: NUMERIC, required: true}\n")
            .resolve("order", "p", None, 1)
            .unwrap()
            .0;
        assert_eq!(s.view_name(), "p.sem.order_v1");
        assert_eq!(s.fields[0].path, ["total"]);

        let e = file("dataset: sem\nfields:\n  - {name: items, type: STRUCT}\n")
            .resolve("order", "p", None, 1)
            .unwrap_err();
        assert_eq!(e.field, "semantic.fields[0].fields");
        let e = file("dataset: sem\nfields:\n  - {name: object_id, type: STRING}\n")
            .resolve("order", "p", None, 1)
            .unwrap_err();
        assert_eq!(e.field, "semantic.fields[0].name");
        let allowed = vec!["OrderCreated".to_string()];
        let e =
            file("dataset: sem\ndeleted_when: [OrderGone]\nfields:\n  - {name: a, type: STRING}\n")
                .resolve("order", "p", Some(&allowed), 1)
                .unwrap_err();
        assert_eq!(e.field, "semantic.deleted_when");
        // Every config string that reaches SQL text is checked where it is read.
        for (yaml, field, says) in [
            (
                "dataset: \"Evil`x.sem\"",
                "semantic.dataset",
                "project `Evil`x`",
            ),
            ("dataset: \"p q.sem\"", "semantic.dataset", "project `p q`"),
            ("dataset: \"p.se-m\"", "semantic.dataset", "`se-m`"),
            (
                "dataset: sem\ndeleted_when: [\"A\\nB\"]",
                "semantic.deleted_when",
                "control",
            ),
            (
                "dataset: sem\nsafety_lag_secs: 0",
                "semantic.safety_lag_secs",
                "at least 60",
            ),
        ] {
            let e = file(&format!("{yaml}\nfields:\n  - {{name: a, type: STRING}}\n"))
                .resolve("order", "p", None, 1)
                .unwrap_err();
            assert_eq!(e.field, field, "{yaml}");
            assert!(e.message.contains(says), "{yaml}: {}", e.message);
        }
        let e = file("dataset: sem\nfields:\n  - {name: a, type: STRING}\n")
            .resolve("order", "My_Project", None, 1)
            .unwrap_err();
        assert_eq!(
            e.field, "semantic.dataset",
            "the default project is checked too"
        );
        assert!(parse_path("a${b}").is_err());
        assert_eq!(parse_path("$oid").unwrap(), ["$oid"]);
    }

    #[test]
    fn older_majors_are_named_checked_and_chained_to_their_successor() {
        let fields = "fields:\n  - {name: a, type: STRING}\n";
        let older = |entries: &str| format!("dataset: sem\n{fields}previous:\n{entries}");
        let (current, previous) = file(&older(
            "  - {major: 1, sunset: 2027-01-31, fields: [{name: a, type: INT64}]}\n  \
             - {major: 2, sunset: '2027-06-30', fields: [{name: a, type: NUMERIC}]}\n",
        ))
        .resolve("order", "p", None, 3)
        .unwrap();
        assert_eq!(current.view, "order_v3");
        assert_eq!(current.state_table(), "order_v3_state");
        let names: Vec<(&str, Option<&str>, Option<&str>)> = previous
            .iter()
            .map(|m| (m.view.as_str(), m.sunset.as_deref(), m.successor.as_deref()))
            .collect();
        assert_eq!(
            names,
            [
                ("order_v2", Some("2027-06-30"), Some("order_v3")),
                ("order_v1", Some("2027-01-31"), Some("order_v2")),
            ]
        );
        assert!(previous[1].past_sunset("2027-02-01") && !previous[1].past_sunset("2027-01-31"));
        assert_eq!(previous[1].past_sunset_at(), Some(1_801_440_000));
        for (entries, field, says) in [
            (
                "  - {major: 3, sunset: 2027-01-31, fields: [{name: a, type: STRING}]}\n",
                "semantic.previous[0].major",
                "not an older major",
            ),
            (
                "  - {major: 1, sunset: 2027-01-31, fields: [{name: a, type: STRING}]}\n  - {major: 1, sunset: 2027-01-31, fields: [{name: a, type: STRING}]}\n",
                "semantic.previous[1].major",
                "twice",
            ),
            (
                "  - {major: 1, sunset: 2027-02-30, fields: [{name: a, type: STRING}]}\n",
                "semantic.previous[0].sunset",
                "not a date",
            ),
            (
                "  - {major: 1, sunset: soon, fields: [{name: a, type: STRING}]}\n",
                "semantic.previous[0].sunset",
                "not a date",
            ),
            (
                "  - {major: 1, sunset: 2027-01-31, fields: [{name: object_id, type: STRING}]}\n",
                "semantic.previous[0].fields[0].name",
                "defines itself",
            ),
        ] {
            let e = file(&older(entries))
                .resolve("order", "p", None, 3)
                .unwrap_err();
            assert_eq!(e.field, field, "{entries}");
            assert!(e.message.contains(says), "{entries}: {}", e.message);
        }
    }
}
