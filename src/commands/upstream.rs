//! `tidemark snapshot` and `tidemark verify`: the commands that read the upstream database
//! (`[upstream]`, see [`crate::upstream`]).

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::{Config, Table};
use crate::land::Lander;
use crate::reconcile::snapshot::{self, SnapshotOptions};
use crate::reconcile::verify::{self, VerifyOptions};
use crate::upstream::Upstream;
use crate::warehouse::db::Access;
use crate::warehouse::Warehouse;

/// What `snapshot` and `verify` take from the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct UpstreamArgs {
    /// The table (as configured).
    #[arg(long, required_unless_present = "all", conflicts_with = "all")]
    pub table: Option<String>,
    /// Every configured table.
    #[arg(long)]
    pub all: bool,
    /// Rows per chunk (default: [upstream] chunk_rows).
    #[arg(long)]
    pub chunk_rows: Option<usize>,
}

async fn open(config: &Config, args: &UpstreamArgs) -> Result<(Upstream, Vec<Table>, usize)> {
    let cfg = config
        .upstream
        .as_ref()
        .context("no [upstream] in the config: add [upstream] url = \"mysql://user:${PASSWORD}@host:4000/db\"")?;
    let tables = match &args.table {
        Some(t) => vec![config.table(t)?],
        None => config.tables()?,
    };
    let up = Upstream::connect(&cfg.url.0).await?;
    Ok((up, tables, args.chunk_rows.unwrap_or(cfg.chunk_rows).max(1)))
}

async fn lander(config: &Config, wh: &Arc<Warehouse>, tables: &[Table]) -> Result<Lander> {
    for t in tables {
        wh.register_table(&t.name, &t.topic).await?;
    }
    Lander::new(wh.clone(), tables.to_vec(), config.value_context(), None).await
}

/// Snapshots each table; non-zero when one failed.
pub async fn snapshot(config: &Config, args: &UpstreamArgs, at: Option<i64>) -> Result<ExitCode> {
    let (up, tables, chunk_rows) = open(config, args).await?;
    // The first step of a new replica: it creates the warehouse's tables, as `run` does.
    let wh = Warehouse::open(config.warehouse.url()).await?;
    let mut lander = lander(config, &wh, &tables).await?;
    let opts = SnapshotOptions { chunk_rows, at, progress: true };
    let mut failed = 0;
    let mut hints = Vec::new();
    for t in &tables {
        match snapshot::snapshot(&up, &wh, &mut lander, t, &opts).await {
            Ok(s) => {
                println!("{}", s.describe());
                hints.push(s.stream_hint());
            }
            Err(e) => {
                eprintln!("{}: snapshot FAILED: {e:#}", t.name);
                failed += 1;
            }
        }
    }
    hints.dedup();
    for h in hints {
        println!("{h}");
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Verifies each table: 0 when every one equals upstream, 1 when one differs or failed.
pub async fn verify(config: &Config, args: &UpstreamArgs, json: bool, fix: bool, settle: u64) -> Result<ExitCode> {
    let (up, tables, chunk_rows) = open(config, args).await?;
    let access = if fix { Access::ReadWrite } else { Access::ReadOnly };
    let wh = Warehouse::open_migrated(config.warehouse.url(), access).await?;
    let mut lander = if fix { Some(lander(config, &wh, &tables).await?) } else { None };
    let opts = VerifyOptions { chunk_rows, settle: Duration::from_secs(settle), progress: !json };
    let mut reports = Vec::new();
    let mut bad = 0;
    for t in &tables {
        match verify::verify(&up, &wh, t, &opts, lander.as_mut()).await {
            Ok(r) => {
                if !r.equal {
                    bad += 1;
                }
                if !json {
                    println!("{}", r.describe());
                }
                reports.push(r);
            }
            Err(e) => {
                eprintln!("{}: verify FAILED: {e:#}", t.name);
                bad += 1;
            }
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    Ok(if bad > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
