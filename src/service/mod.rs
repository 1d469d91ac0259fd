//! `tidemark run`: consumers, landing and scheduled merges in one process, until told to stop.

mod heartbeat;
mod held;
pub mod http;
mod patterns;
pub mod pipeline;
pub mod scheduler;

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::watch;
use tracing::info;

use crate::config::Config;
use crate::land::Lander;
use crate::observe::health::{Dependency, Health};
use crate::source::kafka;
use crate::warehouse::Warehouse;
use pipeline::ConsumeStats;

/// What a caller may watch of a running service (the demo and the tests do).
#[derive(Default)]
pub struct Hooks {
    /// The consumer loop's totals, after each landed batch.
    pub progress: Option<watch::Sender<ConsumeStats>>,
    /// Every scheduled merge that merged something; the unit's next merge waits for the notice
    /// to be answered.
    pub merges: Option<tokio::sync::mpsc::Sender<scheduler::MergeNotice>>,
}

/// Runs the service until `shutdown` turns true: then stops reading, lands what was read,
/// commits offsets, lets merges in flight finish, and returns.
pub async fn run(config: &Config, shutdown: watch::Receiver<bool>, hooks: Hooks) -> Result<ConsumeStats> {
    if config.has_patterns() {
        return patterns::run(config, shutdown, &hooks).await;
    }
    run_tables(config, shutdown, &hooks).await
}

/// [`run`] for the tables `config` lists.
async fn run_tables(config: &Config, shutdown: watch::Receiver<bool>, hooks: &Hooks) -> Result<ConsumeStats> {
    let tables = config.tables()?;
    if tables.is_empty() {
        anyhow::bail!("no [[tables]] configured: nothing to replicate");
    }
    // Refuse a bad Kafka configuration before touching the warehouse.
    kafka::client_config(&config.kafka)?;
    config.require_registry()?;
    // The HTTP endpoint first: a port that cannot be bound is a configuration error.
    let http = match &config.http.listen {
        Some(listen) => Some((crate::service::http::bind(listen).await?, crate::observe::telemetry::handle()?)),
        None => None,
    };
    let wh = Warehouse::open(config.warehouse.url()).await?;
    info!(warehouse = %wh.url, tables = tables.len(), "tidemark starting");
    let health = Arc::new(Health::new());
    health.working(Dependency::Warehouse);
    let ctx = config.value_context();
    let mut lander = Lander::new(wh.clone(), tables.clone(), ctx, config.schema_registry.as_ref()).await?;
    if let Some(up) = &config.upstream {
        lander.resolve_key_only_from(up.url.0.clone());
    }
    let consumer = kafka::consumer(&config.kafka, &lander.topics(), health.clone())?;
    // The schedules and the heartbeat stop on shutdown and also when the consumer loop ends
    // with an error; either way a merge in flight finishes (never cancelled half-way).
    let (stop, stopped) = watch::channel(false);
    let names: Vec<(String, crate::config::Watermarks)> =
        tables.iter().map(|t| (t.name.clone(), t.watermarks)).collect();
    let merges =
        scheduler::start(wh.clone(), config.merge_units()?, health.clone(), stopped.clone(), hooks.merges.clone());
    let served = http.map(|(listener, metrics)| {
        tokio::spawn(crate::service::http::serve(listener, metrics, health.clone(), stopped.clone()))
    });
    let watched = heartbeat::Watched { tables: names, topics: lander.topics() };
    let beat = tokio::spawn(heartbeat::run(wh.clone(), consumer.clone(), health.clone(), watched, stopped));
    let consumed =
        pipeline::consume(&consumer, &mut lander, &config.kafka, &health, shutdown, hooks.progress.as_ref()).await;
    let _ = stop.send(true);
    for m in merges {
        let _ = m.await;
    }
    let _ = beat.await;
    if let Some(served) = served {
        let _ = served.await;
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
