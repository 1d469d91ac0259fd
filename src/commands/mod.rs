//! The command line: `tidemark [--config F] <command>`, one module per command that needs more
//! than a few lines.

pub mod check;
pub mod dead_letters;
mod merge;
mod run;
mod sql;
pub mod status;
mod upstream;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG};
use crate::sql::dialect::Dialect;
use crate::warehouse::db::Access;
use crate::warehouse::Warehouse;

#[derive(Debug, Parser)]
#[command(
    name = "tidemark",
    version,
    about = "Keeps a warehouse replica of every table in a TiCDC/Debezium change stream"
)]
pub struct Cli {
    /// The config file (default: ./tidemark.toml).
    #[arg(long, short, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log lines as text or JSON; `auto`: text on a terminal, JSON otherwise. Levels: RUST_LOG.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Auto,
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: consume, land, merge on schedule — until SIGINT/SIGTERM.
    Run,
    /// Merge staged changes now, print what it did, and exit (non-zero on failure).
    Merge {
        /// The table to merge.
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        table: Option<String>,
        /// Merge every configured table.
        #[arg(long)]
        all: bool,
    },
    /// Print a table's SQL: for PostgreSQL and SQLite what tidemark runs (staging DDL, replica
    /// DDL, one merge); for Snowflake, BigQuery, Databricks, SQL Server and Redshift a script
    /// that does the same job there.
    Sql {
        /// The dialect (default: the configured warehouse's).
        #[arg(long, value_enum)]
        dialect: Option<Dialect>,
        #[arg(long, required_unless_present = "all", conflicts_with = "all")]
        table: Option<String>,
        #[arg(long)]
        all: bool,
    },
    /// Accept the column types a stopped table's stream now shows, and let its merges run again
    /// (PostgreSQL replica columns are converted at the next merge).
    Resume {
        #[arg(long)]
        table: String,
    },
    /// Create or bring up to date tidemark's metadata tables in the warehouse (`run` does it
    /// too); every other command only reads them and asks for this when they are behind.
    Migrate,
    /// Is the config ready to run? Checks it, every source_ddl, the warehouse, Kafka and the
    /// schema registry, lists the topics and the replica tables; non-zero with every problem.
    Check,
    /// Per table: staged rows, oldest staged change, last merge, dead letters.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The records that could not be decoded or keyed (newest first): where each came from,
    /// why, and its raw key and value.
    DeadLetters {
        /// Only this table's (`--table ''`: records no configured table took).
        #[arg(long)]
        table: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        /// Machine-readable output (key and value in base64).
        #[arg(long)]
        json: bool,
    },
    /// Load a table's rows from the upstream database ([upstream]) into staging at one
    /// consistent point, so the merges resolve them with the stream; resumes after the last
    /// landed chunk when run again.
    Snapshot {
        #[command(flatten)]
        args: upstream::UpstreamArgs,
        /// TiDB: read as of this TSO (within TiDB's GC life time) instead of now.
        #[arg(long, value_name = "TSO")]
        at: Option<i64>,
    },
    /// Compare a replica with its upstream table and list every key missing, extra or
    /// different (with the columns); exit 0 only when equal.
    Verify {
        #[command(flatten)]
        args: upstream::UpstreamArgs,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
        /// Land corrective changes for what differs (read fresh from upstream): the next merge
        /// repairs the replica.
        #[arg(long)]
        fix: bool,
        /// Seconds to wait for the table's next merge before differences are read again (a
        /// live table's replica lags).
        #[arg(long, default_value_t = 30, value_name = "SECS")]
        settle: u64,
    },
    /// tidemark against the physical limits on this machine: landing vs COPY, merge vs one
    /// hand-written MERGE, freshness, memory (needs a Kafka broker and PostgreSQL; see
    /// scripts/bench.sh).
    Bench(crate::bench::BenchArgs),
    /// The bench's second broker: librdkafka's mock cluster in a process of its own (prints its
    /// address; serves until stdin closes).
    #[command(hide = true)]
    BenchBroker(crate::bench::BrokerArgs),
    /// The whole pipeline in one process on embedded defaults (mock Kafka, SQLite).
    Demo(crate::demo::DemoArgs),
}

impl Cli {
    fn load_config(&self) -> Result<Config> {
        match &self.config {
            Some(path) => Config::load(path, false),
            None => {
                let path = Config::default_path();
                if !path.exists() {
                    bail!(
                        "no config: create {DEFAULT_CONFIG} (see the README's config reference) or pass --config FILE"
                    );
                }
                Config::load(&path, false)
            }
        }
    }

    /// The config with the tables its `[[table_patterns]]` make of the brokers' topics.
    async fn load_config_with_topics(&self) -> Result<Config> {
        let mut config = self.load_config()?;
        if config.has_patterns() {
            let topics = crate::source::ends::topic_names(&config.kafka, Duration::from_secs(10))
                .await
                .context("[[table_patterns]] name tables by the brokers' topics")?;
            config.add_pattern_tables(&topics)?;
        }
        Ok(config)
    }

    /// The default log filter for this command (RUST_LOG overrides it).
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Run => "info,librdkafka=warn,sqlx=warn",
            _ => "warn",
        }
    }
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Run => run::run(&cli.load_config()?).await,
        Command::Merge { table, .. } => merge::run(&cli.load_config_with_topics().await?, table.as_deref()).await,
        Command::Sql { dialect, table, .. } => {
            sql::run(&cli.load_config_with_topics().await?, *dialect, table.as_deref()).await
        }
        Command::Resume { table } => resume(&cli.load_config_with_topics().await?, table).await,
        Command::Migrate => migrate(&cli.load_config()?).await,
        Command::Snapshot { args, at } => upstream::snapshot(&cli.load_config_with_topics().await?, args, *at).await,
        Command::Verify { args, json, fix, settle } => {
            upstream::verify(&cli.load_config_with_topics().await?, args, *json, *fix, *settle).await
        }
        Command::Status { json } => {
            let config = cli.load_config_with_topics().await?;
            let wh = Warehouse::open_migrated(config.warehouse.url(), Access::ReadOnly).await?;
            let tables = config.tables()?;
            let topics: Vec<String> = tables.iter().map(|t| t.topic.clone()).collect();
            // What the brokers hold, if they answer soon: status still shows without them.
            let ends = crate::source::ends::watermarks(&config.kafka, &topics, Duration::from_secs(3)).await;
            let mut status = status::collect_with(&wh, &tables, ends.as_ref().ok()).await?;
            status.brokers_unanswered = ends.err().map(|e| format!("{e:#}"));
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", status::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let findings = check::run(&cli.load_config()?).await?;
            for line in &findings.lines {
                println!("{line}");
            }
            if findings.problems > 0 {
                println!("{} problem(s)", findings.problems);
                return Ok(ExitCode::FAILURE);
            }
            println!("ready to run");
            Ok(ExitCode::SUCCESS)
        }
        Command::DeadLetters { table, limit, json } => {
            let config = cli.load_config_with_topics().await?;
            if let Some(t) = table.as_deref().filter(|t| !t.is_empty()) {
                config.table(t)?;
            }
            let wh = Warehouse::open_migrated(config.warehouse.url(), Access::ReadOnly).await?;
            let letters = dead_letters::list(&wh, table.as_deref(), *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else {
                print!("{}", dead_letters::render(&letters));
            }
            Ok(ExitCode::SUCCESS)
        }
        // 2: it ran, and a target was missed (1 is an error).
        Command::Bench(args) => Ok(if crate::bench::run(args).await? { ExitCode::SUCCESS } else { ExitCode::from(2) }),
        Command::BenchBroker(args) => {
            crate::bench::serve_broker(args)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo(args) => Ok(exit(crate::demo::run(args).await?)),
    }
}

fn exit(ok: bool) -> ExitCode {
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `tidemark migrate`: applies what is pending and says where the metadata stands.
async fn migrate(config: &Config) -> Result<ExitCode> {
    let url = config.warehouse.url();
    // `None`: an SQLite file that does not exist yet.
    let pending = match Warehouse::open_existing(url, Access::ReadOnly).await? {
        Some((before, state)) => {
            before.pool.close().await;
            Some(state.pending.len())
        }
        None => None,
    };
    let wh = Warehouse::open(url).await?;
    let newest = crate::warehouse::migrate::state(&wh.pool).await?.newest;
    match pending {
        None => println!("{}: created, metadata at version {newest:04}", wh.url),
        Some(0) => println!("{}: metadata already at version {newest:04}", wh.url),
        Some(n) => println!("{}: applied {n} migration(s), metadata at version {newest:04}", wh.url),
    }
    wh.pool.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `tidemark resume --table T`.
async fn resume(config: &Config, table: &str) -> Result<ExitCode> {
    config.table(table)?;
    let wh = Warehouse::open_migrated(config.warehouse.url(), Access::ReadWrite).await?;
    match wh.resume(table).await? {
        None => println!("{table}: not stopped"),
        Some(accepted) => {
            for (column, ty) in &accepted {
                println!("{table}: column `{column}` is now {ty}");
            }
            println!("{table}: resumed; its staged changes are merged on the next run");
        }
    }
    Ok(ExitCode::SUCCESS)
}
