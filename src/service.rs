//! `tidemark run`: consumers, landing and scheduled merges in one process, until told to stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tracing::{debug, info};

use crate::codec::ValueContext;
use crate::config::Config;
use crate::db::Bind;
use crate::health::{Dependency, Health};
use crate::scheduler;
use crate::source::{self, ConsumeStats, KafkaConsumer};
use crate::staging::Lander;
use crate::warehouse::Warehouse;

/// How often a running instance records that it is alive and what it waits for.
const HEARTBEAT: Duration = Duration::from_secs(5);

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
    let health = Arc::new(Health::new());
    let ctx = ValueContext { source_offset_secs: config.source_offset_secs() };
    let mut lander = Lander::new(wh.clone(), tables.clone(), ctx, config.schema_registry.as_ref()).await?;
    let consumer = source::consumer(&config.kafka, &lander.topics(), health.clone())?;
    // The schedules and the heartbeat stop on shutdown and also when the consumer loop ends
    // with an error; either way a merge in flight finishes (never cancelled half-way).
    let (stop, stopped) = watch::channel(false);
    let merges = scheduler::start(wh.clone(), tables, health.clone(), stopped.clone());
    let beat = tokio::spawn(heartbeat(wh.clone(), consumer.clone(), health.clone(), stopped));
    let consumed = source::consume(&consumer, &mut lander, &config.kafka, &health, shutdown, progress).await;
    let _ = stop.send(true);
    for m in merges {
        let _ = m.await;
    }
    let _ = beat.await;
    drop(consumer);
    wh.pool.close().await;
    let stats = consumed.context("consuming")?;
    info!(records = stats.records, staged = stats.staged, dead_letters = stats.dead_letters, "tidemark stopped");
    Ok(stats)
}

/// Every few seconds: records this instance's state in the warehouse (for `status` anywhere),
/// and while Kafka is down, asks it whether it is back (a quiet topic brings no record that
/// would tell). The last beat says `stopped`.
async fn heartbeat(
    wh: Arc<Warehouse>,
    consumer: Arc<KafkaConsumer>,
    health: Arc<Health>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Utc::now();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    let pid = std::process::id();
    let instance = format!("{host}:{pid}:{}", started.timestamp_millis());
    if let Ok(sql) = wh.sql.fixed("instance_prune") {
        let _ = wh.pool.execute(sql, &[]).await;
    }
    loop {
        let stopping = *stop.borrow();
        if health.is_down(Dependency::Kafka) && !stopping {
            let c = consumer.clone();
            let probe = tokio::task::spawn_blocking(move || c.fetch_metadata(None, Duration::from_secs(3))).await;
            match probe {
                Ok(Ok(_)) => health.working(Dependency::Kafka),
                Ok(Err(e)) => debug!(error = %e, "Kafka still unreachable"),
                Err(e) => debug!(error = %e, "Kafka probe"),
            }
        }
        let state = if stopping { "stopped".to_string() } else { health.describe() };
        match beat(&wh, &instance, &host, pid, started, &state).await {
            Ok(()) => health.working(Dependency::Warehouse),
            Err(e) if !stopping => {
                health.failing(Dependency::Warehouse, &format!("{e:#}"));
            }
            Err(e) => debug!(error = %format!("{e:#}"), "could not record the instance as stopped"),
        }
        if stopping {
            return;
        }
        // While Kafka is away, ask it again every second: that is how its return is noticed.
        let pause = if health.is_down(Dependency::Kafka) { Duration::from_secs(1) } else { HEARTBEAT };
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

async fn beat(wh: &Warehouse, instance: &str, host: &str, pid: u32, started: DateTime<Utc>, state: &str) -> Result<()> {
    let binds = [
        Bind::Text(instance.into()),
        Bind::Text(host.into()),
        Bind::I32(pid as i32),
        Bind::Time(started),
        Bind::Time(Utc::now()),
        Bind::Text(state.into()),
    ];
    wh.pool.execute(wh.sql.fixed("instance_heartbeat")?, &binds).await.context("recording the instance heartbeat")?;
    Ok(())
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
