//! Runs each table's merge on its cron schedule.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::{debug, error, info, Instrument};

use crate::config::Table;
use crate::merge::{merge, MergeOutcome, TableStopped};
use crate::observe::health::{Dependency, Health};
use crate::warehouse::Warehouse;

/// Starts one task per table; each stops at `shutdown` (after finishing a merge in flight).
pub fn start(
    wh: Arc<Warehouse>,
    tables: Vec<Table>,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
) -> Vec<JoinHandle<()>> {
    tables.into_iter().map(|t| tokio::spawn(run_table(wh.clone(), t, health.clone(), shutdown.clone()))).collect()
}

async fn run_table(wh: Arc<Warehouse>, table: Table, health: Arc<Health>, mut shutdown: watch::Receiver<bool>) {
    info!(table = %table.name, schedule = %table.schedule_text, "merge schedule");
    let mut stopped = false;
    // A failing merge is said once, and once when merges work again: a schedule of a second
    // must not log sixty errors a minute while the warehouse is down.
    let mut failing = false;
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(next) = table.schedule.upcoming(Utc).next() else {
            info!(table = %table.name, "the schedule has no further run");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        // A run still going when the next tick comes just delays it: runs never overlap.
        let outcome =
            merge(&wh, &table.name, false).instrument(tracing::info_span!("merge", table = %table.name)).await;
        // A stopped table is said once, when it stops, and once when it runs again.
        match &outcome {
            Err(e) if e.downcast_ref::<TableStopped>().is_some() => {
                if !stopped {
                    error!(table = %table.name, error = %format!("{e:#}"), "merges stopped");
                    stopped = true;
                }
                continue;
            }
            _ if stopped => {
                info!(table = %table.name, "merges run again");
                stopped = false;
            }
            _ => {}
        }
        match outcome {
            Err(e) => {
                let error = format!("{e:#}");
                if failing || health.is_down(Dependency::Warehouse) {
                    debug!(table = %table.name, error, "merge failed again");
                } else {
                    error!(table = %table.name, error, "merge failed; staged rows are kept for the next run");
                }
                failing = true;
                continue;
            }
            Ok(_) if failing => {
                info!(table = %table.name, "merges work again");
                failing = false;
            }
            Ok(_) => {}
        }
        match outcome {
            Ok(MergeOutcome::Merged(_)) | Err(_) => {}
            Ok(MergeOutcome::NothingStaged) => debug!(table = %table.name, "nothing staged"),
            Ok(MergeOutcome::Busy) => debug!(table = %table.name, "skipped: a merge of this table runs elsewhere"),
        }
    }
}
