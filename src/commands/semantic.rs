//! `mesh-ingest semantic`: writes every object's semantic layer to files, as BigQuery DDL or
//! as Dataform SQLX.

use crate::configuration::Settings;
use crate::semantic;
use anyhow::Context;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SemanticFormat {
    /// One `<object>.sql` file of CREATE OR REPLACE VIEW statements per object.
    Sql,
    /// SQLX files to copy into a Dataform repository's `definitions/`.
    Dataform,
}

/// Writes the files into `out` (created if missing); returns their paths.
pub fn write(
    settings: &Settings,
    format: SemanticFormat,
    out: &Path,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for o in &settings.objects {
        match format {
            SemanticFormat::Sql => {
                if let Some(views) = semantic::ddl(o) {
                    let text: Vec<String> = views.into_iter().map(|v| v.sql).collect();
                    files.push((
                        out.join(format!("{}.sql", o.name)),
                        text.join(";\n\n") + ";\n",
                    ));
                }
            }
            SemanticFormat::Dataform => {
                for f in semantic::dataform::sqlx_files(o).unwrap_or_default() {
                    files.push((out.join(f.path), f.contents));
                }
            }
        }
    }
    if files.is_empty() {
        anyhow::bail!("no object has a `semantic:` section");
    }
    for (path, text) in &files {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(files.into_iter().map(|(p, _)| p).collect())
}
