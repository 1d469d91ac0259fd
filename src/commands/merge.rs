//! `tidemark merge --table T` (or `--all`): one merge now, what it did printed, non-zero on failure.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::{Config, Table};
use crate::merge::{merge_unit, MergeOutcome, MergeReport, Target};
use crate::warehouse::db::Access;
use crate::warehouse::Warehouse;

/// A table of a consistency group merges with its whole group (one transaction, one point).
pub async fn run(config: &Config, table: Option<&str>) -> Result<ExitCode> {
    let units: Vec<Vec<Table>> = match table {
        Some(t) => {
            let t = config.table(t)?;
            config.merge_units()?.into_iter().filter(|u| u.iter().any(|m| m.name == t.name)).collect()
        }
        None => config.merge_units()?,
    };
    let wh = Warehouse::open_migrated(config.warehouse.url(), Access::ReadWrite).await?;
    let mut failed = 0;
    // Across several units, a progress line on a terminal; plain result lines always.
    let progress = units.len() > 1 && std::io::IsTerminal::is_terminal(&std::io::stderr());
    for (i, unit) in units.iter().enumerate() {
        let names: Vec<&str> = unit.iter().map(|t| t.name.as_str()).collect();
        if progress {
            eprint!("\r[{}/{}] merging {}…\x1b[K", i + 1, units.len(), names.join(", ").escape_debug());
        }
        for t in unit {
            wh.register_table(&t.name, &t.topic).await?;
        }
        let targets: Vec<Target> = unit.iter().map(Target::from).collect();
        let outcome = merge_unit(&wh, &targets, true).await;
        if progress {
            eprint!("\r\x1b[K");
        }
        match outcome {
            Ok(outcomes) => {
                for (name, o) in outcomes {
                    match o {
                        MergeOutcome::Merged(r) => println!("{name}: {}", describe(&r)),
                        MergeOutcome::NothingStaged => println!("{name}: nothing staged"),
                        MergeOutcome::Busy => println!("{name}: busy"),
                        MergeOutcome::Waiting(w) => println!("{name}: nothing merged, waiting for {w}"),
                    }
                }
            }
            Err(e) => {
                eprintln!("{}: merge FAILED: {e:#}", names.join(", "));
                failed += 1;
            }
        }
    }
    Ok(if failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// `3 staged changes → 2 inserted, 0 updated, 0 deleted in 14 ms`.
fn describe(r: &MergeReport) -> String {
    format!(
        "{} staged changes → {} inserted, {} updated, {} deleted in {} ms{}{}{}",
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
        r.point.map(|p| format!(" (consistent as of TSO {p}, {})", crate::model::tso::describe(p))).unwrap_or_default(),
    )
}
