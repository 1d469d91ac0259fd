//! The instance heartbeat: every few seconds `run` records in the warehouse that it is alive and
//! what it waits for (so `status` shows it from any machine), refreshes the per-table gauges,
//! and — until Kafka has answered, or while it is down — asks Kafka (a quiet topic brings no
//! record that would tell).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tracing::debug;

use crate::observe::health::{Dependency, Health};
use crate::source::kafka::KafkaConsumer;
use crate::sql::Stmt;
use crate::warehouse::db::Bind;
use crate::warehouse::tables::TableRow;
use crate::warehouse::Warehouse;

/// How often a running instance records that it is alive and what it waits for.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Every few seconds: records this instance's state in the warehouse (for `status` anywhere),
/// refreshes the per-table gauges (staged rows, oldest staged change, commit lag, stopped
/// tables), and until Kafka has answered, or while it is down, asks it (a quiet topic brings
/// no record that would tell). The last beat says `stopped`.
pub async fn run(
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
    for prune in [Stmt::InstancePrune, Stmt::MergesPrune] {
        if let Ok(sql) = wh.sql.fixed(prune) {
            if let Err(e) = wh.pool.execute(sql, &[]).await {
                debug!(error = %format!("{e:#}"), prune = prune.name(), "pruning old records");
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

/// Staged rows, the oldest staged change, commit lag and stopped tables, for /metrics and
/// /readyz — all from the warehouse, so every instance shows what all of them did.
async fn table_gauges(wh: &Warehouse, health: &Health, tables: &[String]) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut stopped = Vec::new();
    for table in tables {
        let state: Option<TableRow> =
            wh.pool.fetch_optional(wh.sql.fixed(Stmt::LoadTable)?, &[Bind::Text(table.clone())]).await?;
        let why = state.and_then(|s| s.stopped);
        let staged = wh.staged(table).await?;
        let age = |ms: i64| (now - ms) as f64 / 1000.0;
        crate::observe::telemetry::staging(table, staged.staged_rows, staged.oldest_commit_ms.map(age), why.is_some());
        if let Some(ms) = wh.newest_merged(table).await? {
            crate::observe::telemetry::commit_lag(table, age(ms));
        }
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
    wh.pool
        .execute(wh.sql.fixed(Stmt::InstanceHeartbeat)?, &binds)
        .await
        .context("recording the instance heartbeat")?;
    Ok(())
}
