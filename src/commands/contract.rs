//! `mesh-ingest contract export` and `contract diff`: an object's contract as an ODCS document,
//! and the changes between two versions of the object files, classed for a CI gate.

use crate::configuration::{ObjectSettings, Settings, load_objects};
use crate::contract::{diff, odcs};
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The contract of `object`'s major `major` (default: the current one) as ODCS v3 YAML.
pub fn export(settings: &Settings, object: &str, major: Option<u32>) -> anyhow::Result<String> {
    let found = settings.object(object).map_err(anyhow::Error::msg)?;
    let majors = found.per_major();
    let chosen = match major {
        None => majors.into_iter().next().unwrap_or_else(|| found.clone()),
        Some(m) => majors
            .into_iter()
            .find(|o| o.semantic.as_ref().is_some_and(|s| s.major == m))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: no major {m} is configured (majors: {})",
                    found.source_file,
                    found
                        .majors()
                        .map(|s| s.major.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
    };
    Ok(odcs::to_yaml(&odcs::document(&chosen)))
}

/// Writes one ODCS document per object and major into `out` (`<object>.v<major>.odcs.yaml`;
/// `<object>.odcs.yaml` for an object without a data product); returns the paths.
pub fn export_all(settings: &Settings, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut written = Vec::new();
    for object in &settings.objects {
        let majors = object.per_major();
        let each = if majors.is_empty() {
            vec![object.clone()]
        } else {
            majors
        };
        for o in each {
            let name = match &o.semantic {
                Some(s) => format!("{}.v{}.odcs.yaml", o.name, s.major),
                None => format!("{}.odcs.yaml", o.name),
            };
            let path = out.join(name);
            std::fs::write(&path, odcs::to_yaml(&odcs::document(&o)))
                .with_context(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
    }
    Ok(written)
}

/// How `contract diff` prints.
#[derive(Debug, Clone, Copy)]
pub enum DiffFormat {
    Text,
    Json,
}

/// What `contract diff` found: the report to print, and whether any change is breaking.
pub struct DiffOutcome {
    pub report: String,
    pub breaking: bool,
}

/// Compares the object files of two directories (each a config directory holding `objects/`,
/// or an objects directory itself).
pub fn diff(old: &Path, new: &Path, format: DiffFormat) -> anyhow::Result<DiffOutcome> {
    let (old, new) = (objects(old)?, objects(new)?);
    let changes = diff::diff(&old, &new);
    let report = match format {
        DiffFormat::Text => diff::to_text(&changes),
        DiffFormat::Json => {
            let mut text = serde_json::to_string_pretty(&diff::to_json(&changes))?;
            text.push('\n');
            text
        }
    };
    Ok(DiffOutcome {
        report,
        breaking: diff::breaking(&changes) > 0,
    })
}

/// The project short names resolve against: the same on both sides, so it never shows up as
/// a change (a diff compares object files, not deployments).
const DIFF_PROJECT: &str = "project";

fn objects(dir: &Path) -> anyhow::Result<Vec<ObjectSettings>> {
    objects_in(dir, DIFF_PROJECT)
}

/// The object files of a config directory (holding `objects/`) or an objects directory, short
/// names resolved against `project`.
pub fn objects_in(dir: &Path, project: &str) -> anyhow::Result<Vec<ObjectSettings>> {
    let nested: PathBuf = dir.join(crate::configuration::default_objects_dir());
    let dir = if nested.is_dir() {
        nested
    } else {
        dir.to_path_buf()
    };
    load_objects(&dir, project).map_err(|e| anyhow::anyhow!("{e}"))
}
