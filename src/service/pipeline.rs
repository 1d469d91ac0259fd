//! The read → land → commit loop of `tidemark run`: a batch is read from Kafka, landed in one
//! warehouse transaction, and only then are its offsets committed to the consumer group.
//! Should the group's offsets lag the warehouse (a crash between landing and commit, a
//! rebalance), the re-read records are recognised at landing and dropped.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Result;
use rdkafka::consumer::{CommitMode, Consumer};
use tokio::sync::watch;
use tracing::{debug, info, warn, Instrument};

use super::held::Held;
use crate::codec::registry::RegistryUnavailable;
use crate::codec::s3::StorageUnavailable;
use crate::config::KafkaConfig;
use crate::land::{LandReport, Lander, StopOnRecord};
use crate::observe::health::{Dependency, Health};
use crate::source::kafka::{commit, KafkaConsumer};
use crate::source::positions::{Positions, TopicPartition};
use crate::source::{batch, NextOffset, RawRecord};
use crate::warehouse::failure::Failure;

/// Totals of a consumer loop, for logs and the demo.
#[derive(Debug, Default, Clone)]
pub struct ConsumeStats {
    pub batches: u64,
    pub records: u64,
    pub staged: u64,
    pub dead_letters: u64,
    pub duplicates: u64,
    /// Offsets that were never landed because Kafka no longer had them.
    pub skipped_offsets: u64,
}

impl ConsumeStats {
    /// Both runs' totals.
    pub fn plus(self, o: ConsumeStats) -> ConsumeStats {
        ConsumeStats {
            batches: self.batches + o.batches,
            records: self.records + o.records,
            staged: self.staged + o.staged,
            dead_letters: self.dead_letters + o.dead_letters,
            duplicates: self.duplicates + o.duplicates,
            skipped_offsets: self.skipped_offsets + o.skipped_offsets,
        }
    }

    fn add(&mut self, r: &LandReport) {
        self.batches += 1;
        self.records += r.records as u64;
        self.staged += r.staged.values().sum::<usize>() as u64;
        self.dead_letters += r.dead_letters as u64;
        self.duplicates += r.duplicates as u64;
        self.skipped_offsets += r.gaps.iter().map(|g| g.missing()).sum::<u64>();
    }
}

/// Reads, lands and commits until `shutdown` turns true; then lands what it has read,
/// commits, and returns. Landing failures are retried with backoff (nothing is committed
/// meanwhile); a record refused under `on_error = "stop"` ends the loop with its error.
pub async fn consume(
    consumer: &KafkaConsumer,
    lander: &mut Lander,
    cfg: &KafkaConfig,
    health: &Health,
    mut shutdown: watch::Receiver<bool>,
    progress: Option<&watch::Sender<ConsumeStats>>,
) -> Result<ConsumeStats> {
    let mut stats = ConsumeStats::default();
    // The next offset of every partition landed in this session, for the final commit.
    let mut landed: HashMap<TopicPartition, i64> = HashMap::new();
    let Some(start) = offsets_with_retry(lander, health, &mut shutdown).await else { return Ok(stats) };
    let mut positions = Positions::new(start);
    let mut held = Held::default();
    let mut stopping = *shutdown.borrow();
    // The next batch, read while the last one landed.
    let mut ahead: Option<batch::Batch> = None;
    while !stopping {
        held.retry_due(consumer);
        let read = match ahead.take() {
            Some(b) => b,
            None => batch::read(consumer, cfg, health, &mut shutdown).await,
        };
        stopping = read.stopping;
        let mut records = read.records;
        // (Records here say nothing of the brokers: they may come from librdkafka's prefetch
        // queue while the brokers are away. The heartbeat's metadata probe says they are back.)
        if positions.any_ahead(&records) {
            // Another instance may have landed it since: ask the warehouse, once per batch.
            let Some(now) = offsets_with_retry(lander, health, &mut shutdown).await else { break };
            positions.refresh(now);
            if positions.any_ahead(&records) {
                positions.rewind(consumer, &mut records);
            }
        }
        if records.is_empty() {
            continue;
        }
        count_consumed(&records);
        let landing_started = Instant::now();
        let mut reading_shutdown = shutdown.clone();
        let landing = land_with_retry(lander, &records, health, &mut shutdown)
            .instrument(tracing::info_span!("batch", records = records.len()));
        // Reading the next batch goes on while this one lands (landing waits on the warehouse
        // most of the time). Nothing of it is committed before it lands, after this one; what
        // this batch's outcome makes stale (a topic held back, a partition rewound) the checks
        // above catch when it comes up.
        let landing = if stopping {
            landing.await?
        } else {
            let (landing, next) = tokio::join!(landing, batch::read(consumer, cfg, health, &mut reading_shutdown));
            ahead = Some(next);
            landing?
        };
        let Some(Landed { report, refused }) = landing else {
            warn!(
                records = records.len(),
                "stopping while landing fails: the last records read stay uncommitted and are read again by the next run"
            );
            break;
        };
        for (topic, error) in &refused {
            held.hold(consumer, lander, topic, error);
        }
        held.landed(lander, &report).await;
        crate::failpoint::hit("land.committed");
        commit(consumer, &report.next_offsets, CommitMode::Async);
        for n in &report.next_offsets {
            landed.insert((n.topic.clone(), n.partition), n.offset);
        }
        crate::observe::telemetry::resent(&report.resent);
        crate::observe::telemetry::landed(
            report.records,
            landing_started.elapsed().as_secs_f64(),
            &report.staged,
            &report.dead_by_table,
        );
        positions.landed(&report.next_offsets);
        stats.add(&report);
        debug!(records = report.records, staged = ?report.staged, dead = report.dead_letters, dup = report.duplicates, "landed");
        if let Some(p) = &progress {
            let _ = p.send(stats.clone());
        }
    }
    commit_owned(consumer, landed);
    Ok(stats)
}

/// Counts the records read per partition (once per batch, not per record).
fn count_consumed(records: &[RawRecord]) {
    let mut per_partition: HashMap<(&str, i32), u64> = HashMap::new();
    for r in records {
        *per_partition.entry((&*r.topic, r.partition)).or_default() += 1;
    }
    for ((topic, partition), n) in per_partition {
        crate::observe::telemetry::consumed(topic, partition, n);
    }
}

/// Shutdown: commits synchronously what landed, for the partitions this consumer still owns
/// (committing a revoked one could move its new owner's offset back).
fn commit_owned(consumer: &KafkaConsumer, landed: HashMap<TopicPartition, i64>) {
    let assigned = consumer.assignment().unwrap_or_default();
    let last: Vec<NextOffset> = landed
        .into_iter()
        .filter(|((t, p), _)| assigned.find_partition(t, *p).is_some())
        .map(|((topic, partition), offset)| NextOffset { topic, partition, offset })
        .collect();
    if !last.is_empty() {
        commit(consumer, &last, CommitMode::Sync);
        info!(partitions = last.len(), "committed the landed offsets");
    }
}

/// A landed batch, and the topics whose records the warehouse refused (with why): their
/// tables are to be stopped and the topics held back, the rest is landed.
struct Landed {
    report: LandReport,
    refused: Vec<(String, String)>,
}

/// Lands a batch, retrying with backoff while the warehouse or the registry is away. A refusal
/// no record is to blame for lands the batch topic by topic: the topics refused are returned
/// (when their tables can be stopped), the others land. `None`: told to stop while it still
/// fails (nothing of the batch is committed).
async fn land_with_retry(
    lander: &mut Lander,
    batch: &[RawRecord],
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<Landed>> {
    let mut backoff = Duration::from_millis(500);
    loop {
        let mut landed = lander.land(batch).await.map(|report| Landed { report, refused: Vec::new() });
        if matches!(&landed, Err(e) if Failure::of(e) == Failure::Other && unavailable_other(e).is_none()) {
            landed = land_topic_by_topic(lander, batch).await;
        }
        match landed {
            Ok(r) => {
                health.working(Dependency::Warehouse);
                health.working(Dependency::SchemaRegistry);
                health.working(Dependency::ClaimCheckStorage);
                return Ok(Some(r));
            }
            Err(e) if e.downcast_ref::<StopOnRecord>().is_some() => return Err(e),
            Err(e) => {
                // Said once per outage (Health logs the change), then at debug level per retry.
                let dependency = unavailable_other(&e).unwrap_or(Dependency::Warehouse);
                // Refused data was set aside by landing already; what is left is either an
                // outage or a refusal no record is to blame for (a permission, a dropped table).
                let error = match Failure::of(&e) {
                    Failure::Other if dependency == Dependency::Warehouse => {
                        format!("the warehouse refuses the batch (not an outage; retried until it is mended): {e:#}")
                    }
                    _ => format!("{e:#}"),
                };
                health.failing(dependency, &error);
                debug!(error = %format!("{e:#}"), "landing failed again");
                if *shutdown.borrow() {
                    return Ok(None);
                }
                back_off(&mut backoff, shutdown).await;
            }
        }
    }
}

/// A batch the warehouse refuses for no record's fault, landed topic by topic: the refused
/// topics' tables are stopped and the topics returned; the others land. When even the stop
/// cannot be recorded, that is the error (and the whole batch is retried).
async fn land_topic_by_topic(lander: &mut Lander, batch: &[RawRecord]) -> Result<Landed> {
    let (report, failed) = lander.land_by_topic(batch).await?;
    let refused: Vec<(String, String)> = failed.iter().map(|(t, e)| (t.clone(), format!("{e:#}"))).collect();
    for (topic, error) in &refused {
        if let Err(e) = lander.stop_topic(topic, error).await {
            return Err(e.context(format!(
                "the warehouse refuses the records of topic {topic} ({error}); stopping its tables"
            )));
        }
    }
    Ok(Landed { report, refused })
}

/// The dependency besides the warehouse whose absence failed a batch, if one did.
fn unavailable_other(e: &anyhow::Error) -> Option<Dependency> {
    e.chain().find_map(|c| {
        if c.is::<RegistryUnavailable>() {
            Some(Dependency::SchemaRegistry)
        } else if c.is::<StorageUnavailable>() {
            Some(Dependency::ClaimCheckStorage)
        } else {
            None
        }
    })
}

/// The warehouse's next offset of every partition, retried with backoff while the warehouse
/// is away: a partition assigned during an outage is never read from offset 0 because the
/// warehouse did not answer. `None`: told to stop meanwhile.
async fn offsets_with_retry(
    lander: &Lander,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Option<HashMap<TopicPartition, i64>> {
    let mut backoff = Duration::from_millis(500);
    loop {
        match lander.offsets().await {
            Ok(o) => {
                health.working(Dependency::Warehouse);
                return Some(o);
            }
            Err(e) => {
                health.failing(Dependency::Warehouse, &format!("reading the landed offsets: {e:#}"));
                if *shutdown.borrow() {
                    return None;
                }
                back_off(&mut backoff, shutdown).await;
            }
        }
    }
}

/// Waits `backoff` (less when shutdown is asked for) and doubles it, up to 30 s.
async fn back_off(backoff: &mut Duration, shutdown: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(*backoff) => {}
        _ = shutdown.changed() => {}
    }
    *backoff = (*backoff * 2).min(Duration::from_secs(30));
}
