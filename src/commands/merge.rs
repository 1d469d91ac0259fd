//! `tidemark merge --table T` (or `--all`): one merge now, what it did printed, non-zero on failure.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;
use crate::merge::{merge, MergeOutcome, MergeReport};
use crate::warehouse::Warehouse;

pub async fn run(config: &Config, table: Option<&str>) -> Result<ExitCode> {
    let tables = match table {
        Some(t) => vec![config.table(t)?],
        None => config.tables()?,
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
            Ok(MergeOutcome::Merged(r)) => println!("{}: {}", t.name, describe(&r)),
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

/// `3 staged changes → 2 inserted, 0 updated, 0 deleted in 14 ms`.
fn describe(r: &MergeReport) -> String {
    format!(
        "{} staged changes → {} inserted, {} updated, {} deleted in {} ms{}{}",
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
    )
}
