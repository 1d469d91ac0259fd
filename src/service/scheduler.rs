//! Runs each merge unit (a table, or a consistency group) on its cron schedule.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, Instrument};

use crate::config::Table;
use crate::merge::{merge_unit, MergeOutcome, TableStopped, Target};
use crate::observe::health::{Dependency, Health};
use crate::warehouse::Warehouse;

/// A merge the scheduler ran, for an observer (the demo checks the replica after each). The
/// scheduler's next merge of the unit waits until `done` is sent or dropped.
pub struct MergeNotice {
    pub outcomes: Vec<(String, MergeOutcome)>,
    pub done: oneshot::Sender<()>,
}

/// Starts one task per unit; each stops at `shutdown` (after finishing a merge in flight).
pub fn start(
    wh: Arc<Warehouse>,
    units: Vec<Vec<Table>>,
    health: Arc<Health>,
    shutdown: watch::Receiver<bool>,
    observer: Option<mpsc::Sender<MergeNotice>>,
) -> Vec<JoinHandle<()>> {
    units
        .into_iter()
        .map(|u| tokio::spawn(run_unit(wh.clone(), u, health.clone(), shutdown.clone(), observer.clone())))
        .collect()
}

/// What a unit's schedule says once when it changes, not at every tick.
#[derive(Default)]
struct Said {
    stopped: bool,
    failing: bool,
    waiting: Option<String>,
}

async fn run_unit(
    wh: Arc<Warehouse>,
    unit: Vec<Table>,
    health: Arc<Health>,
    mut shutdown: watch::Receiver<bool>,
    observer: Option<mpsc::Sender<MergeNotice>>,
) {
    let Some(first) = unit.first() else { return };
    let name = match &first.group {
        Some(g) => format!("group {g}"),
        None => first.name.clone(),
    };
    let targets: Vec<Target> = unit.iter().map(Target::from).collect();
    let tables: Vec<&str> = unit.iter().map(|t| t.name.as_str()).collect();
    info!(unit = %name, tables = %tables.join(", "), schedule = %first.schedule_text, "merge schedule");
    let mut said = Said::default();
    loop {
        if *shutdown.borrow() {
            return;
        }
        let Some(next) = first.schedule.upcoming(Utc).next() else {
            info!(unit = %name, "the schedule has no further run");
            return;
        };
        let wait = (next - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        // A run still going when the next tick comes just delays it: runs never overlap.
        let outcome = merge_unit(&wh, &targets, false).instrument(tracing::info_span!("merge", unit = %name)).await;
        say(&name, &outcome, &health, &mut said);
        if let (Some(obs), Ok(outcomes)) = (&observer, &outcome) {
            if outcomes.iter().any(|(_, o)| matches!(o, MergeOutcome::Merged(_))) {
                let (done, wait) = oneshot::channel();
                if obs.send(MergeNotice { outcomes: outcomes.clone(), done }).await.is_ok() {
                    let _ = wait.await;
                }
            }
        }
    }
}

/// Logs a merge's outcome once per change of state: a schedule of a second must not log sixty
/// errors a minute while the warehouse is down or a table is stopped.
fn say(name: &str, outcome: &anyhow::Result<Vec<(String, MergeOutcome)>>, health: &Health, said: &mut Said) {
    match outcome {
        Err(e) if e.downcast_ref::<TableStopped>().is_some() => {
            if !said.stopped {
                error!(unit = %name, error = %format!("{e:#}"), "merges stopped");
                said.stopped = true;
            }
            return;
        }
        _ if said.stopped => {
            info!(unit = %name, "merges run again");
            said.stopped = false;
        }
        _ => {}
    }
    match outcome {
        Err(e) => {
            let error = format!("{e:#}");
            if said.failing || health.is_down(Dependency::Warehouse) {
                debug!(unit = %name, error, "merge failed again");
            } else {
                error!(unit = %name, error, "merge failed; staged rows are kept for the next run");
            }
            said.failing = true;
        }
        Ok(outcomes) => {
            if said.failing {
                info!(unit = %name, "merges work again");
                said.failing = false;
            }
            let waiting = outcomes.iter().find_map(|(_, o)| match o {
                MergeOutcome::Waiting(w) => Some(w.clone()),
                _ => None,
            });
            match (&waiting, &said.waiting) {
                (Some(w), None) => info!(unit = %name, waiting_for = %w, "merges wait for a consistent point"),
                (None, Some(_)) => info!(unit = %name, "a consistent point: merges go on"),
                _ => {}
            }
            said.waiting = waiting;
            for (table, o) in outcomes {
                match o {
                    MergeOutcome::NothingStaged => debug!(table, "nothing staged"),
                    MergeOutcome::Busy => debug!(table, "skipped: a merge of this table runs elsewhere"),
                    _ => {}
                }
            }
        }
    }
}
