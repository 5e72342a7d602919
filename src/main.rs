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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(&cli.config, cli.environment.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
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
            Command::Check => unreachable!("handled above"),
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
