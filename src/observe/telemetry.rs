//! Metrics, through the `metrics` crate and its Prometheus exporter (served on `/metrics` by
//! [`crate::service::http`]). Every series tidemark records is named and labelled here, so the set is
//! in one place; without an installed recorder (one-shot commands) recording is a no-op.

use std::collections::HashMap;
use std::sync::Mutex;

use anyhow::{Context, Result};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

/// The process-wide recorder, installed on first use; the handle renders the exposition text.
pub fn handle() -> Result<PrometheusHandle> {
    let mut handle = HANDLE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(h) = handle.as_ref() {
        return Ok(h.clone());
    }
    let h = install()?;
    *handle = Some(h.clone());
    Ok(h)
}

fn install() -> Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("duration_seconds".into()),
            &[0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0],
        )
        .and_then(|b| {
            b.set_buckets_for_metric(
                Matcher::Full("tidemark_landing_batch_records".into()),
                &[1.0, 10.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, 20000.0, 50000.0],
            )
        })
        .context("configuring the Prometheus exporter")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    Ok(handle)
}

fn describe() {
    describe_counter!("tidemark_records_consumed_total", "Kafka records read, per topic and partition");
    describe_counter!("tidemark_changes_landed_total", "Change records landed in staging, per table");
    describe_counter!("tidemark_dead_letters_total", "Records sent to the dead-letter table, per table");
    describe_gauge!("tidemark_consumer_lag_messages", "Records in Kafka not yet read, per topic and partition");
    describe_gauge!(
        "tidemark_commit_lag_seconds",
        Unit::Seconds,
        "Seconds between now and the upstream commit of the newest change merged, per table"
    );
    describe_gauge!("tidemark_staged_rows", "Rows waiting in staging, per table");
    describe_gauge!(
        "tidemark_oldest_staged_age_seconds",
        Unit::Seconds,
        "Age (from its upstream commit) of the oldest staged change, per table"
    );
    describe_counter!("tidemark_merges_total", "Merges run, per table and result (ok, failed)");
    describe_counter!("tidemark_merge_rows_total", "Replica rows changed by merges, per table and action");
    describe_histogram!("tidemark_merge_duration_seconds", Unit::Seconds, "Merge durations, per table");
    describe_histogram!("tidemark_landing_batch_records", "Kafka records per landed batch");
    describe_histogram!("tidemark_landing_batch_duration_seconds", Unit::Seconds, "Time to land a batch");
    describe_counter!("tidemark_schema_changes_total", "Replica columns added or widened, per table");
    describe_gauge!("tidemark_dependency_up", "1 when the dependency (kafka, warehouse, schema_registry) is reachable");
    describe_gauge!("tidemark_table_stopped", "1 when the table's merges are stopped by an incompatible change");
    describe_counter!(
        "tidemark_resent_total",
        "Changes dropped at landing as re-sends (below their partition's watermark), per table"
    );
    describe_gauge!(
        "tidemark_consistent_point_age_seconds",
        Unit::Seconds,
        "Seconds between now and the upstream time the replica is consistent as of (watermark-gated tables)"
    );
    describe_gauge!(
        "tidemark_ordering_warning",
        "1 when the table's stream cannot be ordered exactly (one key on several partitions, no watermarks)"
    );
}

/// `n` records read from a partition (counted per batch, not per record).
pub fn consumed(topic: &str, partition: i32, n: u64) {
    counter!("tidemark_records_consumed_total", "topic" => topic.to_string(), "partition" => partition.to_string())
        .increment(n);
}

/// A landed batch: its size, time, and what it staged and dead-lettered per table.
/// Re-sends dropped at landing, per table.
pub fn resent(resent: &HashMap<String, usize>) {
    for (table, n) in resent {
        counter!("tidemark_resent_total", "table" => table.clone()).increment(*n as u64);
    }
}

/// The age of the point a gated table is consistent as of, and whether its stream was found
/// unorderable.
pub fn consistency(table: &str, point_age_s: Option<f64>, ordering_warning: bool) {
    if let Some(age) = point_age_s {
        gauge!("tidemark_consistent_point_age_seconds", "table" => table.to_string()).set(age.max(0.0));
    }
    gauge!("tidemark_ordering_warning", "table" => table.to_string()).set(if ordering_warning { 1.0 } else { 0.0 });
}

pub fn landed(records: usize, secs: f64, staged: &HashMap<String, usize>, dead: &HashMap<String, usize>) {
    histogram!("tidemark_landing_batch_records").record(records as f64);
    histogram!("tidemark_landing_batch_duration_seconds").record(secs);
    for (table, n) in staged {
        counter!("tidemark_changes_landed_total", "table" => table.clone()).increment(*n as u64);
    }
    for (table, n) in dead {
        counter!("tidemark_dead_letters_total", "table" => table.clone()).increment(*n as u64);
    }
}

pub fn consumer_lag(topic: &str, partition: i32, lag: i64) {
    gauge!("tidemark_consumer_lag_messages", "topic" => topic.to_string(), "partition" => partition.to_string())
        .set(lag.max(0) as f64);
}

pub fn merged(table: &str, r: &crate::merge::MergeReport) {
    counter!("tidemark_merges_total", "table" => table.to_string(), "result" => "ok").increment(1);
    for (action, n) in [("inserted", r.inserted), ("updated", r.updated), ("deleted", r.deleted)] {
        counter!("tidemark_merge_rows_total", "table" => table.to_string(), "action" => action).increment(n);
    }
    histogram!("tidemark_merge_duration_seconds", "table" => table.to_string()).record(r.duration.as_secs_f64());
    let changed = (r.columns_added.len() + r.columns_widened.len()) as u64;
    if changed > 0 {
        counter!("tidemark_schema_changes_total", "table" => table.to_string()).increment(changed);
    }
}

pub fn merge_failed(table: &str) {
    counter!("tidemark_merges_total", "table" => table.to_string(), "result" => "failed").increment(1);
}

/// The commit lag of `table`: seconds from the upstream commit of the newest change merged (by
/// any instance: the heartbeat reads it from the warehouse) to now.
pub fn commit_lag(table: &str, seconds: f64) {
    gauge!("tidemark_commit_lag_seconds", "table" => table.to_string()).set(seconds.max(0.0));
}

pub fn staging(table: &str, rows: i64, oldest_age_s: Option<f64>, stopped: bool) {
    gauge!("tidemark_staged_rows", "table" => table.to_string()).set(rows as f64);
    gauge!("tidemark_oldest_staged_age_seconds", "table" => table.to_string()).set(oldest_age_s.unwrap_or(0.0));
    gauge!("tidemark_table_stopped", "table" => table.to_string()).set(if stopped { 1.0 } else { 0.0 });
}

pub fn dependency(name: &str, up: bool) {
    gauge!("tidemark_dependency_up", "dependency" => name.to_string()).set(if up { 1.0 } else { 0.0 });
}
