//! The command line: `tidemark [--config F] <command>`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Result};
use clap::{Parser, Subcommand};

use crate::config::{Config, DEFAULT_CONFIG};
use crate::dialect::Dialect;
use crate::merge::{merge, MergeOutcome};
use crate::sql::TableCtx;
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
    /// tidemark against the physical limits on this machine: landing vs COPY, merge vs one
    /// hand-written MERGE, freshness, memory (needs a Kafka broker and PostgreSQL; see
    /// scripts/bench.sh).
    Bench(crate::bench::BenchArgs),
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

    /// The default log filter for this command (RUST_LOG overrides it).
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Run => "info,librdkafka=warn,sqlx=warn",
            _ => "warn",
        }
    }
}

/// A table's schema for a script: what the warehouse recorded, else its source_ddl, else the
/// registry's latest schemas for its topic.
async fn script_schema(
    config: &Config,
    t: &crate::config::Table,
    wh: Option<&Warehouse>,
) -> Result<crate::schema::TableSchema> {
    if let Some(wh) = wh {
        if let Some(s) = wh.schema(&t.name).await? {
            return Ok(s);
        }
    }
    if let Some(path) = &t.source_ddl {
        return Ok(crate::ddl::load(path)?.schema);
    }
    if let (crate::config::Format::Avro, Some(reg)) = (t.format, &config.schema_registry) {
        let registry = crate::codec::registry::Registry::new(reg)?;
        if let Some(s) = crate::codec::avro::schema_from_registry(&registry, &t.topic).await? {
            return Ok(s);
        }
    }
    bail!(
        "the columns of `{}` are not known yet: give the table a source_ddl{}, or run `tidemark run` until its \
         first change has landed",
        t.name,
        if t.format == crate::config::Format::Avro { " (or register its schemas in the schema registry)" } else { "" }
    )
}

pub async fn run(cli: Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Run => {
            let config = cli.load_config()?;
            let shutdown = crate::service::signals()?;
            let mut told = shutdown.clone();
            let limit = std::time::Duration::from_secs(config.service.shutdown_timeout_s);
            let service = crate::service::run(&config, shutdown, None);
            tokio::pin!(service);
            // Stopping is bounded: once told to stop, the service has `limit` to finish.
            let overdue = async {
                let _ = told.wait_for(|stop| *stop).await;
                tokio::time::sleep(limit).await;
            };
            tokio::select! {
                r = &mut service => r.map(|_| ExitCode::SUCCESS),
                _ = overdue => {
                    tracing::warn!(
                        timeout_s = limit.as_secs(),
                        "shutdown did not finish in time: exiting anyway; records read but not landed are read again \
                         by the next run, a merge cut short rolls back"
                    );
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
        Command::Merge { table, all } => {
            let config = cli.load_config()?;
            let tables = match (table, all) {
                (Some(t), _) => vec![config.table(t)?],
                _ => config.tables()?,
            };
            let wh = Warehouse::open(config.warehouse.url()).await?;
            let mut failed = 0;
            // Across several tables, a progress line on a terminal; plain result lines always.
            let progress = tables.len() > 1 && std::io::IsTerminal::is_terminal(&std::io::stderr());
            for (i, t) in tables.iter().enumerate() {
                if progress {
                    eprint!("\r[{}/{}] merging {}…\x1b[K", i + 1, tables.len(), t.name.escape_debug());
                }
                wh.register_table(&t.name, &t.topic).await?;
                let outcome = merge(&wh, &t.name, true).await;
                if progress {
                    eprint!("\r\x1b[K");
                }
                match outcome {
                    Ok(MergeOutcome::Merged(r)) => println!(
                        "{}: {} staged changes → {} inserted, {} updated, {} deleted in {} ms{}{}",
                        t.name,
                        r.staged_rows,
                        r.inserted,
                        r.updated,
                        r.deleted,
                        r.duration.as_millis(),
                        if r.replica_created { " (replica created)" } else { "" },
                        if r.columns_added.is_empty() {
                            String::new()
                        } else {
                            format!(" (columns added: {})", r.columns_added.join(", "))
                        },
                    ),
                    Ok(MergeOutcome::NothingStaged) => println!("{}: nothing staged", t.name),
                    Ok(MergeOutcome::Busy) => println!("{}: busy", t.name),
                    Err(e) => {
                        eprintln!("{}: merge FAILED: {e:#}", t.name);
                        failed += 1;
                    }
                }
            }
            Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
        }
        Command::Sql { dialect, table, all } => {
            let config = cli.load_config()?;
            let tables = match (table, all) {
                (Some(t), _) => vec![config.table(t)?],
                _ => config.tables()?,
            };
            // A script for a warehouse tidemark does not drive must not create a local
            // SQLite file just to look: the configured warehouse is read only when there is one.
            let wh = if config.warehouse.url.is_some() || dialect.is_none_or(|d| d.executed()) {
                Some(Warehouse::open(config.warehouse.url()).await?)
            } else {
                None
            };
            let dialect = match (dialect, &wh) {
                (Some(d), _) => *d,
                (None, Some(wh)) => wh.dialect(),
                (None, None) => bail!("say which --dialect"),
            };
            for t in &tables {
                let schema = script_schema(&config, t, wh.as_deref()).await?;
                let ctx = TableCtx::new(&t.name, &schema);
                let opts = crate::script::ScriptOptions {
                    topic: t.topic.clone(),
                    format: t.format,
                    raw_table: t.raw_table.clone(),
                    schedule: t.schedule_text.clone(),
                    source_offset: crate::config::format_offset(config.source_offset_secs()),
                    task_warehouse: config.snowflake.task_warehouse.clone(),
                };
                let statements = crate::script::table_script(dialect, &ctx, &opts)?;
                print!("{}", crate::script::render(dialect, &ctx, &statements));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Resume { table } => {
            let config = cli.load_config()?;
            config.table(table)?;
            let wh = Warehouse::open(config.warehouse.url()).await?;
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
        Command::Status { json } => {
            let config = cli.load_config()?;
            let wh = Warehouse::open(config.warehouse.url()).await?;
            let status = crate::status::collect(&wh, &config.tables()?).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&status)?);
            } else {
                print!("{}", crate::status::render(&status));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check => {
            let config = cli.load_config()?;
            let findings = crate::check::run(&config).await?;
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
            let config = cli.load_config()?;
            if let Some(t) = table.as_deref().filter(|t| !t.is_empty()) {
                config.table(t)?;
            }
            let wh = Warehouse::open(config.warehouse.url()).await?;
            let letters = crate::dead_letters::list(&wh, table.as_deref(), *limit).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&letters)?);
            } else {
                print!("{}", crate::dead_letters::render(&letters));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench(args) => Ok(if crate::bench::run(args).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
        Command::Demo(args) => Ok(if crate::demo::run(args).await? { ExitCode::SUCCESS } else { ExitCode::FAILURE }),
    }
}
