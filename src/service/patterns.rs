//! `run` with `[[table_patterns]]`: the brokers' topics say which tables there are. The service
//! runs for the tables the patterns make of the topics there are; every `topic_refresh_secs` it
//! asks the brokers again, and when a new topic makes a new table it stops as it stops on
//! shutdown (lands what it read, commits, lets merges finish) and starts again with the new
//! table too — a new topic is rare (a new upstream table), a restart takes a group rejoin.

use std::time::Duration;

use anyhow::Result;
use tokio::sync::watch;
use tracing::{info, warn};

use super::pipeline::ConsumeStats;
use super::Hooks;
use crate::config::Config;
use crate::source::ends::topic_names;

/// Why a run for one set of tables ended.
enum Ended {
    Shutdown,
    NewTables(Vec<String>),
}

pub(super) async fn run(config: &Config, mut shutdown: watch::Receiver<bool>, hooks: &Hooks) -> Result<ConsumeStats> {
    let refresh = Duration::from_secs(config.kafka.topic_refresh_secs.max(1));
    let mut total = ConsumeStats::default();
    loop {
        let Some(tables) = tables_now(config, refresh, &mut shutdown).await? else { return Ok(total) };
        let (stop, stopped) = watch::channel(false);
        let watcher = tokio::spawn(watch_topics(tables.clone(), refresh, shutdown.clone(), stop));
        let ran = super::run_tables(&tables, stopped, hooks).await;
        watcher.abort();
        total = total.plus(ran?);
        match watcher.await {
            Ok(Ended::NewTables(names)) => {
                info!(tables = %names.join(", "), "new topics match [[table_patterns]]: starting again with their tables")
            }
            // Ended by shutdown (or the watcher was stopped with the run): done.
            Ok(Ended::Shutdown) | Err(_) => return Ok(total),
        }
    }
}

/// The config with the tables the patterns make of the brokers' topics, once the brokers answer
/// and some topic matches; `None` on shutdown meanwhile.
async fn tables_now(
    config: &Config,
    refresh: Duration,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Config>> {
    let mut said = false;
    loop {
        if *shutdown.borrow() {
            return Ok(None);
        }
        match topic_names(&config.kafka, Duration::from_secs(10)).await {
            Ok(topics) => {
                let mut c = config.clone();
                c.add_pattern_tables(&topics)?;
                if !c.tables.is_empty() {
                    return Ok(Some(c));
                }
                if !said {
                    info!("no topic matches [[table_patterns]] yet: waiting for one");
                }
            }
            Err(e) if !said => warn!(error = %format!("{e:#}"), "cannot list the brokers' topics; trying again"),
            Err(_) => {}
        }
        said = true;
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(refresh) => {}
        }
    }
}

/// Ends the run (through `stop`) on shutdown, or when the brokers have a topic that makes a
/// table `running` does not have.
async fn watch_topics(
    running: Config,
    refresh: Duration,
    mut shutdown: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
) -> Ended {
    loop {
        if *shutdown.borrow() {
            let _ = stop.send(true);
            return Ended::Shutdown;
        }
        tokio::select! {
            changed = shutdown.changed() => if changed.is_err() {
                let _ = stop.send(true);
                return Ended::Shutdown;
            },
            _ = tokio::time::sleep(refresh) => {
                let Ok(topics) = topic_names(&running.kafka, Duration::from_secs(10)).await else { continue };
                let mut c = running.clone();
                match c.add_pattern_tables(&topics) {
                    Ok(new) if !new.is_empty() => {
                        let _ = stop.send(true);
                        return Ended::NewTables(new);
                    }
                    Ok(_) => {}
                    Err(e) => warn!(error = %format!("{e:#}"), "[[table_patterns]]: a new topic cannot be a table"),
                }
            }
        }
    }
}
