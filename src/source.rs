//! Kafka: the consumer-group client and the read → land → commit loop.
//!
//! Offsets are committed only for records whose landing transaction has committed. librdkafka
//! never stores or commits an offset by itself here (`enable.auto.offset.store=false`,
//! `enable.auto.commit=false`); after each landed batch the loop commits the batch's next
//! offsets. Should the group's offsets lag the warehouse (a crash between landing and commit,
//! a rebalance), the re-read records are recognised at landing and dropped.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};
use tokio::sync::watch;
use tracing::{debug, error, info, warn, Instrument};

use crate::codec::registry::RegistryUnavailable;
use crate::config::KafkaConfig;
use crate::health::{Dependency, Health};
use crate::staging::{LandReport, Lander, RawRecord, StopOnRecord};

/// Properties tidemark sets itself because its delivery guarantee depends on them.
const OWNED_PROPERTIES: &[(&str, &str)] = &[("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")];

/// Logs librdkafka's events and rebalances through `tracing`, and tells [`Health`] when the
/// brokers cannot be reached. While they cannot, librdkafka's own (repeated) connection
/// complaints are logged at debug level: the outage is said once, when it starts and ends.
pub struct KafkaContext {
    pub health: Arc<Health>,
}

impl ClientContext for KafkaContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let complaint = !matches!(level, RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info | RDKafkaLogLevel::Debug);
        if complaint && self.health.is_down(Dependency::Kafka) {
            debug!(target: "librdkafka", facility = fac, "{log_message}");
            return;
        }
        match level {
            RDKafkaLogLevel::Emerg | RDKafkaLogLevel::Alert | RDKafkaLogLevel::Critical | RDKafkaLogLevel::Error => {
                error!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", facility = fac, "{log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                info!(target: "librdkafka", facility = fac, "{log_message}")
            }
            RDKafkaLogLevel::Debug => debug!(target: "librdkafka", facility = fac, "{log_message}"),
        }
    }

    /// librdkafka's statistics (every `statistics.interval.ms`): each partition's consumer lag.
    fn stats(&self, statistics: rdkafka::Statistics) {
        for (topic, t) in &statistics.topics {
            for (partition, p) in &t.partitions {
                if *partition >= 0 && p.consumer_lag >= 0 {
                    crate::telemetry::consumer_lag(topic, *partition, p.consumer_lag);
                }
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        if unreachable(&error) {
            self.health.failing(Dependency::Kafka, reason);
        } else {
            warn!(target: "librdkafka", %error, reason, "Kafka client error");
        }
    }
}

impl ConsumerContext for KafkaContext {
    /// A commit the group coordinator acknowledged: the brokers are there.
    fn commit_callback(&self, result: rdkafka::error::KafkaResult<()>, _: &TopicPartitionList) {
        if result.is_ok() {
            self.health.working(Dependency::Kafka);
        }
    }

    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => info!(partitions = %describe(tpl), "partitions assigned"),
            Rebalance::Revoke(tpl) => info!(partitions = %describe(tpl), "partitions revoked"),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// An error that means the brokers cannot be reached (what the service then waits for).
fn unreachable(error: &KafkaError) -> bool {
    matches!(
        error.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::BrokerNotAvailable
        )
    )
}

fn describe(tpl: &TopicPartitionList) -> String {
    let mut by_topic: HashMap<String, Vec<i32>> = HashMap::new();
    for e in tpl.elements() {
        by_topic.entry(e.topic().to_string()).or_default().push(e.partition());
    }
    let mut parts: Vec<String> = by_topic
        .into_iter()
        .map(|(t, mut p)| {
            p.sort();
            format!("{t}{p:?}")
        })
        .collect();
    parts.sort();
    parts.join(" ")
}

pub type KafkaConsumer = StreamConsumer<KafkaContext>;

/// The librdkafka configuration: tidemark's settings, then the user's properties verbatim.
pub fn client_config(cfg: &KafkaConfig) -> Result<ClientConfig> {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &cfg.bootstrap_servers)
        .set("group.id", &cfg.group_id)
        .set("client.id", "tidemark")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // While landing waits (the warehouse is down), reading pauses: what librdkafka
        // prefetches meanwhile is bounded by this (its default is 64 MiB).
        .set("queued.max.messages.kbytes", "32768")
        // Per-partition consumer lag for /metrics.
        .set("statistics.interval.ms", "5000");
    for (k, v) in OWNED_PROPERTIES {
        c.set(*k, *v);
    }
    for (k, v) in &cfg.properties {
        if let Some((_, owned)) = OWNED_PROPERTIES.iter().find(|(o, _)| o == k) {
            if v != owned {
                bail!(
                    "[kafka.properties] {k} = {v:?} would commit offsets of records not yet landed; \
                     tidemark sets {k} = {owned:?} and commits after each landed batch"
                );
            }
        }
        c.set(k, v);
    }
    Ok(c)
}

/// A consumer subscribed to `topics`.
pub fn consumer(cfg: &KafkaConfig, topics: &[String], health: Arc<Health>) -> Result<Arc<KafkaConsumer>> {
    let consumer: KafkaConsumer = client_config(cfg)?
        .create_with_context(KafkaContext { health })
        .with_context(|| format!("creating the Kafka consumer for {}", cfg.bootstrap_servers))?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).with_context(|| format!("subscribing to {}", names.join(", ")))?;
    info!(topics = %names.join(", "), group = %cfg.group_id, "subscribed");
    Ok(Arc::new(consumer))
}

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
    fn add(&mut self, r: &LandReport) {
        self.batches += 1;
        self.records += r.records as u64;
        self.staged += r.staged.values().sum::<usize>() as u64;
        self.dead_letters += r.dead_letters as u64;
        self.duplicates += r.duplicates as u64;
        self.skipped_offsets += r.gaps.iter().map(|g| (g.3 - g.2) as u64).sum::<u64>();
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
    progress: Option<watch::Sender<ConsumeStats>>,
) -> Result<ConsumeStats> {
    let linger = Duration::from_millis(cfg.batch_linger_ms);
    let mut stats = ConsumeStats::default();
    // The next offset of every partition landed in this session, for the final commit.
    let mut landed: HashMap<(String, i32), i64> = HashMap::new();
    let mut positions = Positions { next: lander.offsets().await.unwrap_or_default(), ..Default::default() };
    let mut stopping = *shutdown.borrow();
    while !stopping {
        let mut batch: Vec<RawRecord> = Vec::new();
        let mut bytes = 0usize;
        let mut first_at: Option<Instant> = None;
        loop {
            let wait = match first_at {
                None => Duration::from_secs(1),
                Some(t) => linger.saturating_sub(t.elapsed()),
            };
            tokio::select! {
                _ = shutdown.changed() => { stopping = true; break; }
                r = tokio::time::timeout(wait, consumer.recv()) => match r {
                    Err(_) if batch.is_empty() => continue,
                    Err(_) => break,
                    Ok(Ok(m)) => {
                        let rec = RawRecord {
                            topic: m.topic().into(),
                            partition: m.partition(),
                            offset: m.offset(),
                            key: m.key().map(<[u8]>::to_vec),
                            value: m.payload().map(<[u8]>::to_vec),
                        };
                        bytes += rec.bytes();
                        batch.push(rec);
                        first_at.get_or_insert_with(Instant::now);
                        if batch.len() >= cfg.batch_records || bytes >= cfg.batch_bytes {
                            break;
                        }
                    }
                    Ok(Err(e)) => {
                        if unreachable(&e) {
                            health.failing(Dependency::Kafka, &e.to_string());
                        } else {
                            warn!(error = %e, "Kafka consumer error");
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
        if batch.is_empty() {
            continue;
        }
        // (Records here say nothing of the brokers: they may come from librdkafka's prefetch
        // queue while the brokers are away. The heartbeat's metadata probe says they are back.)
        positions.check(consumer, lander, &mut batch).await;
        if batch.is_empty() {
            continue;
        }
        let mut per_partition: HashMap<(&str, i32), u64> = HashMap::new();
        for r in &batch {
            *per_partition.entry((&*r.topic, r.partition)).or_default() += 1;
        }
        for ((topic, partition), n) in per_partition {
            crate::telemetry::consumed(topic, partition, n);
        }
        let landing_started = Instant::now();
        let landing = land_with_retry(lander, &batch, health, &mut shutdown)
            .instrument(tracing::info_span!("batch", records = batch.len()))
            .await?;
        let Some(report) = landing else {
            warn!(
                records = batch.len(),
                "stopping while landing fails: the last records read stay uncommitted and are read again by the next run"
            );
            break;
        };
        crate::failpoint::hit("land.committed");
        commit(consumer, &report.next_offsets, CommitMode::Async);
        for (topic, partition, next) in &report.next_offsets {
            landed.insert((topic.clone(), *partition), *next);
        }
        crate::telemetry::landed(
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
    // Shutdown: commit synchronously what landed, for the partitions this consumer still owns
    // (committing a revoked one could move its new owner's offset back).
    let assigned = consumer.assignment().unwrap_or_default();
    let last: Vec<(String, i32, i64)> = landed
        .into_iter()
        .filter(|((t, p), _)| assigned.find_partition(t, *p).is_some())
        .map(|((t, p), n)| (t, p, n))
        .collect();
    if !last.is_empty() {
        commit(consumer, &last, CommitMode::Sync);
        info!(partitions = last.len(), "committed the landed offsets");
    }
    Ok(stats)
}

/// Where reading must go on from, per partition: the warehouse's next offset to land — the
/// truth, whatever the group's committed offsets say (an operator's reset, another tool in
/// the group, a broker that answers a fetch inside a record batch with the next batch).
/// A batch that starts past it while the broker still holds the records between is not
/// landed: the partition is rewound, further back at each attempt, and what is read twice
/// is recognised at landing. Only records the broker no longer has become a gap.
#[derive(Default)]
struct Positions {
    next: HashMap<(String, i32), i64>,
    /// Partitions being rewound, and how far before the next offset the last rewind went.
    rewinds: HashMap<(String, i32), i64>,
}

impl Positions {
    fn landed(&mut self, next: &[(String, i32, i64)]) {
        for (t, p, n) in next {
            self.next.insert((t.clone(), *p), *n);
        }
    }

    async fn check(&mut self, consumer: &KafkaConsumer, lander: &Lander, batch: &mut Vec<RawRecord>) {
        let mut first: HashMap<(String, i32), i64> = HashMap::new();
        for r in batch.iter() {
            let f = first.entry((r.topic.to_string(), r.partition)).or_insert(r.offset);
            *f = (*f).min(r.offset);
        }
        let mut reloaded = false;
        let mut rewound: Vec<(String, i32)> = Vec::new();
        for (tp, first) in first {
            // A partition nothing has landed from yet starts at 0, as for the lander.
            let ahead = |next: &HashMap<(String, i32), i64>| first > next.get(&tp).copied().unwrap_or(0);
            if !ahead(&self.next) {
                self.rewinds.remove(&tp);
                continue;
            }
            // Another instance may have landed it since: ask the warehouse, once per batch.
            if !reloaded {
                reloaded = true;
                if let Ok(o) = lander.offsets().await {
                    self.next.extend(o);
                }
                if !ahead(&self.next) {
                    continue;
                }
            }
            let next = self.next.get(&tp).copied().unwrap_or(0);
            let (topic, partition) = (&tp.0, tp.1);
            let low = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)).map(|(low, _)| low);
            if matches!(low, Ok(low) if low > next) {
                continue; // gone from Kafka: landed as a gap, which the lander reports
            }
            let earliest = low.unwrap_or(0).max(0);
            // Exactly there first (what Kafka serves), then ever further back.
            let back = match self.rewinds.get(&tp) {
                None => 0,
                Some(b) => (b * 16).max(16).min(next - earliest),
            };
            if self.rewinds.get(&tp) == Some(&back) {
                warn!(topic, partition, next, first, "the broker serves no records between; landing the gap");
                self.rewinds.remove(&tp);
                continue;
            }
            let from = next - back;
            info!(
                topic,
                partition,
                next,
                read_from = first,
                rewind_to = from,
                "read past the next offset to land: re-reading"
            );
            match consumer.seek(topic, partition, Offset::Offset(from), Duration::from_secs(5)) {
                Ok(()) => {
                    self.rewinds.insert(tp.clone(), back);
                    rewound.push(tp);
                }
                Err(e) => warn!(topic, partition, error = %e, "cannot rewind; landing the gap"),
            }
        }
        if !rewound.is_empty() {
            batch.retain(|r| !rewound.iter().any(|(t, p)| **t == *r.topic && *p == r.partition));
        }
    }
}

/// Lands a batch, retrying with backoff while the warehouse or the registry is away. `None`:
/// told to stop while it still fails (nothing of the batch is committed).
async fn land_with_retry(
    lander: &mut Lander,
    batch: &[RawRecord],
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Result<Option<LandReport>> {
    let mut backoff = Duration::from_millis(500);
    loop {
        match lander.land(batch).await {
            Ok(r) => {
                health.working(Dependency::Warehouse);
                health.working(Dependency::SchemaRegistry);
                return Ok(Some(r));
            }
            Err(e) if e.downcast_ref::<StopOnRecord>().is_some() => return Err(e),
            Err(e) => {
                // Said once per outage (Health logs the change), then at debug level per retry.
                let dependency = if e.chain().any(|c| c.is::<RegistryUnavailable>()) {
                    Dependency::SchemaRegistry
                } else {
                    Dependency::Warehouse
                };
                health.failing(dependency, &format!("{e:#}"));
                debug!(error = %format!("{e:#}"), "landing failed again");
                if *shutdown.borrow() {
                    return Ok(None);
                }
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = shutdown.changed() => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Commits (topic, partition, next offset) for the consumer group.
fn commit(consumer: &KafkaConsumer, next: &[(String, i32, i64)], mode: CommitMode) {
    let mut tpl = TopicPartitionList::new();
    for (topic, partition, offset) in next {
        if let Err(e) = tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset)) {
            warn!(topic, partition, offset, error = %e, "cannot commit offset");
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        // The warehouse holds the truth; a failed commit only means re-reading (and dropping)
        // these records after a restart.
        warn!(error = %e, "offset commit failed");
    }
}
