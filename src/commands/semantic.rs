//! `mesh-ingest semantic`: writes every object's semantic layer to files, as BigQuery DDL or
//! as Dataform SQLX, every maintained major of it.

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
        let majors = o.per_major();
        match format {
            SemanticFormat::Sql => {
                let text: Vec<String> = majors
                    .iter()
                    .filter_map(semantic::ddl)
                    .flatten()
                    .map(|v| v.sql)
                    .collect();
                if !text.is_empty() {
                    files.push((
                        out.join(format!("{}.sql", o.name)),
                        text.join(";\n\n") + ";\n",
                    ));
                }
            }
            SemanticFormat::Dataform => {
                for f in majors
                    .iter()
                    .filter_map(semantic::dataform::sqlx_files)
                    .flatten()
                {
                    // Every major declares the same ingest table: one file.
                    let path = out.join(f.path);
                    if !files.iter().any(|(p, _)| *p == path) {
                        files.push((path, f.contents));
                    }
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
