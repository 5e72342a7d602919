//! The `mesh-ingest` command line: `run`, `check`, `provision`, `publish`.

use clap::{Parser, Subcommand};
use mesh_ingest::configuration::Settings;
use mesh_ingest::publish::LineFormat;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "mesh-ingest",
    version,
    about = "Lands Data Mesh domain events from Pub/Sub in BigQuery"
)]
struct Cli {
    /// Configuration directory: base.yaml, <env>.yaml and objects/.
    #[arg(long, global = true, env = "MESH_CONFIG_DIR", default_value = "config")]
    config: PathBuf,
    /// Environment overlay to apply (default: APP_ENVIRONMENT, else `local`).
    #[arg(long = "env", global = true)]
    environment: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Run,
    /// Load and validate the configuration, print the resolved settings.
    Check,
    /// Create the datasets and tables (and, on emulators, topics and subscriptions).
    Provision {
        /// Also create topics and subscriptions (default: when PUBSUB_EMULATOR_HOST is set).
        #[arg(long)]
        pubsub: bool,
    },
    /// Write the semantic layer of every object that has one: BigQuery DDL or Dataform SQLX.
    Semantic {
        /// `sql`: one `<object>.sql` file of CREATE OR REPLACE VIEW statements per object;
        /// `dataform`: SQLX files to copy into a Dataform repository's `definitions/`.
        #[arg(long, value_enum, default_value = "sql")]
        format: SemanticFormat,
        /// Directory to write into (created if missing).
        #[arg(long)]
        out: PathBuf,
    },
    /// Publish a JSONL file to an object's topic.
    Publish {
        /// The object whose topic to publish to.
        #[arg(long)]
        object: String,
        /// The JSONL file.
        #[arg(long)]
        file: PathBuf,
        /// What each line is.
        #[arg(long, value_enum, default_value = "body")]
        lines: LineFormat,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SemanticFormat {
    Sql,
    Dataform,
}

/// Writes the semantic layer's files; returns their paths.
fn write_semantic(
    settings: &Settings,
    format: SemanticFormat,
    out: &std::path::Path,
) -> anyhow::Result<Vec<PathBuf>> {
    use anyhow::Context;
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    for o in &settings.objects {
        match format {
            SemanticFormat::Sql => {
                if let Some(statements) = mesh_ingest::semantic::ddl(o) {
                    let text: Vec<String> = statements.into_iter().map(|(_, sql)| sql).collect();
                    files.push((
                        out.join(format!("{}.sql", o.name)),
                        text.join(";\n\n") + ";\n",
                    ));
                }
            }
            SemanticFormat::Dataform => {
                for f in mesh_ingest::semantic::dataform::sqlx_files(o).unwrap_or_default() {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config, cli.environment.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Semantic { format, out } = &cli.command {
        return match write_semantic(&settings, *format, out) {
            Ok(paths) => {
                for p in paths {
                    println!("wrote {}", p.display());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Check = cli.command {
        println!("{}", settings.to_resolved_yaml());
        eprintln!(
            "configuration OK: {} object(s), environment `{}`",
            settings.objects.len(),
            settings.environment
        );
        return ExitCode::SUCCESS;
    }
    mesh_ingest::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Check | Command::Semantic { .. } => unreachable!("handled above"),
            Command::Run => mesh_ingest::startup::run(settings).await,
            Command::Provision { pubsub } => {
                let pubsub = pubsub || std::env::var_os("PUBSUB_EMULATOR_HOST").is_some();
                let report = mesh_ingest::provision::provision(&settings, pubsub).await?;
                for c in &report.created {
                    println!("created  {c}");
                }
                for e in &report.existing {
                    println!("exists   {e}");
                }
                Ok(())
            }
            Command::Publish {
                object,
                file,
                lines,
            } => {
                let Some(o) = settings.objects.iter().find(|o| o.name == object) else {
                    anyhow::bail!("no object named `{object}` in the configuration");
                };
                let Some(topic) = &o.topic else {
                    anyhow::bail!("{}: field `topic` is not set", o.source_file);
                };
                let n =
                    mesh_ingest::publish::publish_file(&settings.gcp, topic, &file, lines).await?;
                println!("published {n} message(s) to {topic}");
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
