//! `tidemark run`: consumers, landing and scheduled merges in one process, until told to stop.

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::info;

use crate::codec::ValueContext;
use crate::config::Config;
use crate::scheduler;
use crate::source::{self, ConsumeStats};
use crate::staging::Lander;
use crate::warehouse::Warehouse;

/// Runs the service until `shutdown` turns true: then stops reading, lands what was read,
/// commits offsets, lets merges in flight finish, and returns.
pub async fn run(
    config: &Config,
    shutdown: watch::Receiver<bool>,
    progress: Option<watch::Sender<ConsumeStats>>,
) -> Result<ConsumeStats> {
    let tables = config.tables()?;
    if tables.is_empty() {
        anyhow::bail!("no [[tables]] configured: nothing to replicate");
    }
    // Refuse a bad Kafka configuration before touching the warehouse.
    source::client_config(&config.kafka)?;
    let wh = Warehouse::open(config.warehouse.url()).await?;
    info!(warehouse = %wh.url, tables = tables.len(), "tidemark starting");
    let ctx = ValueContext { source_offset_secs: config.source_offset_secs() };
    let mut lander = Lander::new(wh.clone(), tables.clone(), ctx, config.schema_registry.as_ref()).await?;
    let consumer = source::consumer(&config.kafka, &lander.topics())?;
    // The schedules stop on shutdown and also when the consumer loop ends with an error;
    // either way a merge in flight finishes (never cancelled half-way).
    let (stop_merges, merges_stopped) = watch::channel(false);
    let merges = scheduler::start(wh.clone(), tables, merges_stopped);
    let consumed = source::consume(&consumer, &mut lander, &config.kafka, shutdown, progress).await;
    let _ = stop_merges.send(true);
    for m in merges {
        let _ = m.await;
    }
    drop(consumer);
    wh.pool.close().await;
    let stats = consumed.context("consuming")?;
    info!(records = stats.records, staged = stats.staged, dead_letters = stats.dead_letters, "tidemark stopped");
    Ok(stats)
}

/// A shutdown signal that turns true on SIGINT or SIGTERM.
pub fn signals() -> Result<watch::Receiver<bool>> {
    let (tx, rx) = watch::channel(false);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: stopping"),
            _ = term.recv() => info!("SIGTERM: stopping"),
        }
        let _ = tx.send(true);
    });
    Ok(rx)
}
