//! The instance heartbeat: every few seconds `run` records in the warehouse that it is alive and
//! what it waits for (so `status` shows it from any machine), refreshes the per-table gauges,
//! and — until Kafka has answered, or while it is down — asks Kafka (a quiet topic brings no
//! record that would tell).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rdkafka::consumer::Consumer;
use tokio::sync::watch;
use tracing::debug;

use crate::config::Watermarks;
use crate::observe::health::{Dependency, Health};
use crate::source::kafka::KafkaConsumer;
use crate::sql::Stmt;
use crate::warehouse::db::Bind;
use crate::warehouse::Warehouse;

/// How often a running instance records that it is alive and what it waits for.
const HEARTBEAT: Duration = Duration::from_secs(5);

/// Every few seconds: records this instance's state in the warehouse (for `status` anywhere),
/// refreshes the per-table gauges (staged rows, oldest staged change, commit lag, stopped
/// tables), and until Kafka has answered, or while it is down, asks it (a quiet topic brings
/// no record that would tell). The last beat says `stopped`.
/// What the heartbeat keeps an eye on.
pub struct Watched {
    /// Each table and its watermark policy.
    pub tables: Vec<(String, Watermarks)>,
    /// The subscribed topics, whose partition counts it records (a consistent point is the
    /// minimum watermark over every partition, read yet or not).
    pub topics: Vec<String>,
}

pub async fn run(
    wh: Arc<Warehouse>,
    consumer: Arc<KafkaConsumer>,
    health: Arc<Health>,
    watched: Watched,
    mut stop: watch::Receiver<bool>,
) {
    let tables = watched.tables;
    let mut partitions: HashMap<String, i32> = HashMap::new();
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
        if !stopping {
            // The brokers' metadata: their answer says Kafka is there (a quiet topic brings no
            // record that would), and the topics' partition counts.
            let c = consumer.clone();
            let probe = tokio::task::spawn_blocking(move || {
                c.fetch_metadata(None, Duration::from_secs(3))
                    .map(|m| m.topics().iter().map(|t| (t.name().to_string(), t.partitions().len() as i32)).collect())
            })
            .await;
            match probe {
                Ok(Ok(counts)) => {
                    health.working(Dependency::Kafka);
                    record_partitions(&wh, &watched.topics, counts, &mut partitions).await;
                }
                Ok(Err(e)) => debug!(error = %e, "Kafka metadata unavailable"),
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

/// Records each watched topic's partition count when it is new or changed.
async fn record_partitions(
    wh: &Warehouse,
    topics: &[String],
    counts: Vec<(String, i32)>,
    known: &mut HashMap<String, i32>,
) {
    for (topic, n) in counts {
        if n == 0 || !topics.contains(&topic) || known.get(&topic) == Some(&n) {
            continue;
        }
        let recorded = match wh.sql.fixed(Stmt::TopicPartitions) {
            Ok(stmt) => wh.pool.execute(stmt, &[Bind::Text(topic.clone()), Bind::I32(n)]).await.map(|_| ()),
            Err(e) => Err(e),
        };
        match recorded {
            Ok(()) => {
                known.insert(topic, n);
            }
            Err(e) => debug!(topic, error = %format!("{e:#}"), "recording the topic's partition count"),
        }
    }
}

/// Staged rows, the oldest staged change, commit lag and stopped tables, for /metrics and
/// /readyz — all from the warehouse, so every instance shows what all of them did.
async fn table_gauges(wh: &Warehouse, health: &Health, tables: &[(String, Watermarks)]) -> Result<()> {
    let now = Utc::now().timestamp_millis();
    let mut stopped = Vec::new();
    for (table, policy) in tables {
        let Some(state) = wh.table(table).await? else { continue };
        let why = state.stopped.clone();
        if let Some(why) = &why {
            stopped.push((table.clone(), why.clone()));
        }
        // One table's unreadable staging (gone, no permission) leaves the others' gauges and
        // the stopped tables as they are.
        let gauges = async {
            let staged = wh.staged(table).await?;
            let age = |ms: i64| (now - ms) as f64 / 1000.0;
            crate::observe::telemetry::staging(
                table,
                staged.staged_rows,
                staged.oldest_commit_ms.map(age),
                why.is_some(),
            );
            if let Some(ms) = wh.newest_merged(table).await? {
                crate::observe::telemetry::commit_lag(table, age(ms));
            }
            let point = wh.consistency(table, |w| policy.gates(w)).await?.and_then(|c| c.point);
            crate::observe::telemetry::consistency(
                table,
                point.map(|p| age(p >> 18)),
                state.ordering_warning.is_some(),
            );
            anyhow::Ok(())
        };
        if let Err(e) = gauges.await {
            debug!(table, error = %format!("{e:#}"), "reading the table's gauges");
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
