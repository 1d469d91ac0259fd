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
use crate::sql::TableCtx;
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
    // The HTTP endpoint first: a port that cannot be bound is a configuration error.
    let http = match &config.http.listen {
        Some(listen) => Some((crate::http::bind(listen).await?, crate::telemetry::handle()?)),
        None => None,
    };
    let wh = Warehouse::open(config.warehouse.url()).await?;
    info!(warehouse = %wh.url, tables = tables.len(), "tidemark starting");
    let health = Arc::new(Health::new());
    health.working(Dependency::Warehouse);
    let ctx = ValueContext { source_offset_secs: config.source_offset_secs() };
    let mut lander = Lander::new(wh.clone(), tables.clone(), ctx, config.schema_registry.as_ref()).await?;
    let consumer = source::consumer(&config.kafka, &lander.topics(), health.clone())?;
    // The schedules and the heartbeat stop on shutdown and also when the consumer loop ends
    // with an error; either way a merge in flight finishes (never cancelled half-way).
    let (stop, stopped) = watch::channel(false);
    let names: Vec<String> = tables.iter().map(|t| t.name.clone()).collect();
    let merges = scheduler::start(wh.clone(), tables, health.clone(), stopped.clone());
    let served = http.map(|(listener, metrics)| {
        tokio::spawn(crate::http::serve(listener, metrics, health.clone(), stopped.clone()))
    });
    let beat = tokio::spawn(heartbeat(wh.clone(), consumer.clone(), health.clone(), names, stopped));
    let consumed = source::consume(&consumer, &mut lander, &config.kafka, &health, shutdown, progress).await;
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

/// Every few seconds: records this instance's state in the warehouse (for `status` anywhere),
/// refreshes the per-table gauges (staged rows, oldest staged change, commit lag, stopped
/// tables), and until Kafka has answered, or while it is down, asks it (a quiet topic brings
/// no record that would tell). The last beat says `stopped`.
async fn heartbeat(
    wh: Arc<Warehouse>,
    consumer: Arc<KafkaConsumer>,
    health: Arc<Health>,
    tables: Vec<String>,
    mut stop: watch::Receiver<bool>,
) {
    let started = Utc::now();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".into());
    let pid = std::process::id();
    let instance = format!("{host}:{pid}:{}", started.timestamp_millis());
    for prune in ["instance_prune", "merges_prune"] {
        if let Ok(sql) = wh.sql.fixed(prune) {
            if let Err(e) = wh.pool.execute(sql, &[]).await {
                debug!(error = %format!("{e:#}"), prune, "pruning old records");
            }
        }
    }
    loop {
        let stopping = *stop.borrow();
        if (health.is_down(Dependency::Kafka) || !health.has_answered(Dependency::Kafka)) && !stopping {
            let c = consumer.clone();
            let probe = tokio::task::spawn_blocking(move || c.fetch_metadata(None, Duration::from_secs(3))).await;
            match probe {
                Ok(Ok(_)) => health.working(Dependency::Kafka),
                Ok(Err(e)) => debug!(error = %e, "Kafka still unreachable"),
                Err(e) => debug!(error = %e, "Kafka probe"),
            }
        }
        if !stopping {
            if let Err(e) = table_gauges(&wh, &health, &tables).await {
                debug!(error = %format!("{e:#}"), "reading the tables' state");
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
            changed = stop.changed() => {
                // The service itself is gone (its future dropped, as the demo's kill does):
                // no last beat, and no loop spinning on a closed channel.
                if changed.is_err() {
                    return;
                }
            }
        }
    }
}

/// Staged rows, the oldest staged change, commit lag and stopped tables, for /metrics and /readyz.
async fn table_gauges(wh: &Warehouse, health: &Health, tables: &[String]) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut stopped = Vec::new();
    for table in tables {
        let key = wh.pool.fetch(wh.sql.fixed("load_key")?, &[Bind::Text(table.clone())]).await?;
        let why = key.first().and_then(|r| r[1].to_text());
        let staging = wh.pool.fetch(wh.sql.render("status_staging", &TableCtx::bare(table), &[])?, &[]).await;
        // A table nothing has landed for yet has no staging table: nothing staged.
        let (rows, oldest) = match staging.as_deref() {
            Ok([r, ..]) => (r[0].as_i64().unwrap_or(0), r[1].as_i64()),
            _ => (0, None),
        };
        crate::telemetry::staging(table, rows, oldest.map(|ms| (now - ms) as f64 / 1000.0), why.is_some());
        crate::telemetry::commit_lag(table);
        if let Some(why) = why {
            stopped.push((table.clone(), why));
        }
    }
    health.set_stopped(stopped);
    Ok(())
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
