//! The `mesh-ingest` command line: parses the arguments, loads the configuration and hands
//! over to `commands`.

#![warn(clippy::too_many_lines)]

use clap::{Parser, Subcommand, ValueEnum};
use mesh_ingest::commands::consumers::ConsumersFormat;
use mesh_ingest::commands::contract::DiffFormat;
use mesh_ingest::commands::dlq::ReplayOptions;
use mesh_ingest::commands::preview::PreviewOptions;
use mesh_ingest::commands::{self, publish::LineFormat, semantic::SemanticFormat};
use mesh_ingest::configuration::Settings;
use mesh_ingest::envelope::encoding::ContentEncoding;
use mesh_ingest::telemetry::LogOutput;
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
    Check {
        /// Also compare every table in BigQuery with what mesh-ingest writes (reads only).
        #[arg(long)]
        remote: bool,
        /// CPUs (worker threads) to compute the memory budget for; default: this machine's.
        #[arg(long)]
        cpus: Option<u64>,
    },
    /// Create the datasets and tables (and, on emulators, topics and subscriptions).
    Provision {
        /// Also create topics and subscriptions (default: when PUBSUB_EMULATOR_HOST is set).
        #[arg(long)]
        pubsub: bool,
        /// Drop the tables and views of data-product majors the configuration no longer lists
        /// (without it, provision only warns about them).
        #[arg(long)]
        retire: bool,
    },
    /// Bring every object's semantic state table up to date: one MERGE of what was ingested
    /// since the last run (for a CronJob, or by hand).
    Materialize {
        /// Only this object (default: every object with a `semantic:` section).
        #[arg(long)]
        object: Option<String>,
    },
    /// Write the semantic layer of every object that has one: BigQuery DDL or Dataform SQLX.
    Semantic {
        /// `sql`: one `<object>.sql` file of CREATE OR REPLACE VIEW statements per object;
        /// `dataform`: SQLX files to copy into a Dataform repository's `definitions/`.
        #[arg(long, value_enum, default_value = "sql")]
        format: SemanticArg,
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
        lines: LinesArg,
        /// Compress each body and say so in its `content-encoding` attribute.
        #[arg(long, value_enum)]
        compress: Option<CompressArg>,
    },
    /// The object files as data contracts: export one, or diff two versions for a CI gate.
    Contract {
        #[command(subcommand)]
        action: ContractAction,
    },
    /// Who read each major of an object's data product (principals and job counts), from
    /// BigQuery's job history: whom to tell before a sunset.
    Consumers {
        #[arg(long)]
        object: String,
        /// How many days back (at most 180, BigQuery's job history).
        #[arg(long, default_value_t = 30)]
        days: u32,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputArg,
    },
    /// The dead-letter tables.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

#[derive(Subcommand)]
enum ContractAction {
    /// Print an object's contract as an Open Data Contract Standard v3 document (YAML): one
    /// major of its data product; or, with `--all --out DIR`, every object and major to files.
    Export {
        #[arg(long, required_unless_present = "all")]
        object: Option<String>,
        /// The major to export (default: the current one).
        #[arg(long)]
        major: Option<u32>,
        /// Every object, every major, one file each (needs `--out`).
        #[arg(long, requires = "out", conflicts_with_all = ["object", "major"])]
        all: bool,
        /// The directory `--all` writes into (created if missing).
        #[arg(long)]
        out: Option<PathBuf>,
        #[arg(long, value_enum, default_value = "odcs")]
        format: ExportArg,
    },
    /// What NEW's object files would do to this deployment's recent data, before they ship:
    /// accepted events they would reject, dead letters they would accept, how each changed
    /// major of the data product differs. Read-only; dry-runs every query first. Exit 1 when
    /// they reject events that `contract diff` does not class breaking, 2 when it cannot run.
    Preview {
        old: PathBuf,
        new: PathBuf,
        /// How far back to read the ingest log and the dead letters (`30m`, `12h`, `7d`).
        #[arg(long, default_value = "7d")]
        since: String,
        /// Refuse when the dry runs add up to more bytes than this (default 10 GiB).
        #[arg(long, default_value_t = 10 * 1024 * 1024 * 1024)]
        max_bytes: u64,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputArg,
    },
    /// List every change between two versions of the object files, compatible or breaking;
    /// exits 1 when a change is breaking. Each directory is a config directory (holding
    /// `objects/`) or an objects directory; needs no other configuration.
    Diff {
        old: PathBuf,
        new: PathBuf,
        #[arg(long, value_enum, default_value = "text")]
        format: OutputArg,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// Re-decode an object's dead letters with the current configuration and append the ones
    /// that now pass to its ingest table, each at most once (safe to re-run, even after a
    /// crash). Dead letters that still fail stay where they are.
    Replay {
        #[arg(long)]
        object: String,
        /// Only dead letters with this reason code (repeatable), e.g. schema_violation.
        #[arg(long = "reason")]
        reasons: Vec<String>,
        /// Only dead letters written at or after this time (RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Only dead letters written before this time (RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Print what would pass and what would still fail, per reason; append nothing.
        #[arg(long)]
        dry_run: bool,
        /// Rows per append.
        #[arg(long, default_value_t = 500)]
        batch_rows: usize,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ExportArg {
    Odcs,
}

#[derive(Clone, Copy, ValueEnum)]
enum OutputArg {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum SemanticArg {
    Sql,
    Dataform,
}

#[derive(Clone, Copy, ValueEnum)]
enum CompressArg {
    Gzip,
    Zstd,
}

impl From<LinesArg> for LineFormat {
    fn from(l: LinesArg) -> Self {
        match l {
            LinesArg::Body => LineFormat::Body,
            LinesArg::Message => LineFormat::Message,
        }
    }
}

impl From<CompressArg> for ContentEncoding {
    fn from(c: CompressArg) -> Self {
        match c {
            CompressArg::Gzip => ContentEncoding::Gzip,
            CompressArg::Zstd => ContentEncoding::Zstd,
        }
    }
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LinesArg {
    /// Each line is the message body, attributes empty.
    Body,
    /// Each line describes a whole message: data, attributes, ordering key.
    Message,
}

/// Runs an async command on a multi-threaded runtime.
fn block_on<T>(command: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(command)
}

/// `contract diff`: needs no configuration but the two directories. Exit code 1 on a breaking
/// change, 2 when a directory's object files are invalid.
fn contract_diff(old: &std::path::Path, new: &std::path::Path, format: OutputArg) -> ExitCode {
    let format = match format {
        OutputArg::Text => DiffFormat::Text,
        OutputArg::Json => DiffFormat::Json,
    };
    match commands::contract::diff(old, new, format) {
        Ok(outcome) => {
            print!("{}", outcome.report);
            ExitCode::from(u8::from(outcome.breaking))
        }
        Err(e) => {
            eprintln!("configuration error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Contract {
        action: ContractAction::Diff { old, new, format },
    } = &cli.command
    {
        return contract_diff(old, new, *format);
    }
    let settings = match Settings::load(&cli.config, cli.environment.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Contract {
        action: action @ ContractAction::Preview { .. },
    } = &cli.command
    {
        mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
        return contract_preview(&settings, action);
    }
    match dispatch(settings, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `contract export` (`diff` needs no settings: handled in `main`).
fn contract(settings: &Settings, action: ContractAction) -> anyhow::Result<()> {
    match action {
        ContractAction::Export {
            object,
            major,
            all: _,
            out,
            format: _,
        } => match (object, out) {
            (Some(object), _) => {
                commands::contract::export(settings, &object, major).map(|yaml| print!("{yaml}"))
            }
            (None, Some(out)) => commands::contract::export_all(settings, &out).map(|paths| {
                for p in paths {
                    println!("wrote {}", p.display());
                }
            }),
            (None, None) => unreachable!("clap requires --object or --all --out"),
        },
        ContractAction::Diff { .. } | ContractAction::Preview { .. } => {
            unreachable!("handled in main")
        }
    }
}

/// `contract preview`: exit 1 when it finds rejects the diff did not announce, 2 when it
/// cannot run (or refuses to scan that much).
fn contract_preview(settings: &Settings, action: &ContractAction) -> ExitCode {
    let ContractAction::Preview {
        old,
        new,
        since,
        max_bytes,
        format,
    } = action
    else {
        unreachable!("called for preview only");
    };
    let since_secs = match mesh_ingest::configuration::parse_duration(since) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: --since: {e}");
            return ExitCode::from(2);
        }
    };
    let options = PreviewOptions {
        old: old.clone(),
        new: new.clone(),
        since_secs,
        max_bytes: *max_bytes,
        json: matches!(format, OutputArg::Json),
    };
    match block_on(commands::preview::run(settings, &options)) {
        Ok(missed) => ExitCode::from(u8::from(missed)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn dispatch(settings: Settings, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Check { remote, cpus } => {
            let cpus = cpus.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
            });
            commands::check::check(&settings, cpus)?;
            if remote {
                block_on(commands::check::remote(&settings))
            } else {
                Ok(())
            }
        }
        Command::Semantic { format, out } => {
            let format = match format {
                SemanticArg::Sql => SemanticFormat::Sql,
                SemanticArg::Dataform => SemanticFormat::Dataform,
            };
            commands::semantic::write(&settings, format, &out).map(|paths| {
                for p in paths {
                    println!("wrote {}", p.display());
                }
            })
        }
        Command::Run => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stdout);
            block_on(commands::run::run(settings))
        }
        Command::Provision { pubsub, retire } => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
            let pubsub = pubsub || std::env::var_os("PUBSUB_EMULATOR_HOST").is_some();
            block_on(commands::provision::run(&settings, pubsub, retire))
        }
        Command::Materialize { object } => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
            block_on(commands::materialize::run(&settings, object.as_deref()))
        }
        Command::Publish {
            object,
            file,
            lines,
            compress,
        } => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
            let (lines, compress) = (lines.into(), compress.map(ContentEncoding::from));
            block_on(commands::publish::run(
                &settings, &object, &file, lines, compress,
            ))
        }
        Command::Contract { action } => contract(&settings, action),
        Command::Consumers {
            object,
            days,
            format,
        } => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
            let format = match format {
                OutputArg::Text => ConsumersFormat::Text,
                OutputArg::Json => ConsumersFormat::Json,
            };
            block_on(commands::consumers::run(&settings, &object, days, format))
        }
        Command::Dlq {
            action:
                DlqAction::Replay {
                    object,
                    reasons,
                    since,
                    until,
                    dry_run,
                    batch_rows,
                },
        } => {
            mesh_ingest::telemetry::init(&settings.log, LogOutput::Stderr);
            let options =
                ReplayOptions::parse(&object, &reasons, since, until, dry_run, batch_rows)?;
            block_on(commands::dlq::replay(&settings, options))
        }
    }
}
