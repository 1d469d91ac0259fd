//! The Kafka consumer-group client: librdkafka's configuration (tidemark's settings, then the
//! user's properties verbatim), its events logged through `tracing` and reported to
//! [`Health`], and committing offsets.

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance, StreamConsumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::{Offset, TopicPartitionList};
use tracing::{debug, error, info, warn};

use super::NextOffset;
use crate::config::KafkaConfig;
use crate::observe::health::{Dependency, Health};

/// Properties tidemark sets itself because its delivery guarantee depends on them.
const OWNED_PROPERTIES: &[(&str, &str)] = &[("enable.auto.commit", "false"), ("enable.auto.offset.store", "false")];

/// Logs librdkafka's events and rebalances through `tracing`, and tells [`Health`] when the
/// brokers cannot be reached. While they cannot, librdkafka's own (repeated) connection
/// complaints are logged at debug level: the outage is said once, when it starts and ends.
pub struct KafkaContext {
    pub health: Arc<Health>,
    /// Assignments received so far: after one, every assigned partition reads from its
    /// committed offset again, undoing any seek made before it.
    pub assignments: std::sync::atomic::AtomicU64,
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
                    crate::observe::telemetry::consumer_lag(topic, *partition, p.consumer_lag);
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
            Rebalance::Assign(tpl) => {
                self.assignments.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                info!(partitions = %describe(tpl), "partitions assigned")
            }
            Rebalance::Revoke(tpl) => info!(partitions = %describe(tpl), "partitions revoked"),
            Rebalance::Error(e) => warn!(error = %e, "rebalance error"),
        }
    }
}

/// An error that means the brokers cannot be reached (what the service then waits for).
pub fn unreachable(error: &KafkaError) -> bool {
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
        // Once that queue is full, a partition's next fetch waits this long (librdkafka's
        // default, 1 s, stalled landing from a fast broker every few batches: the queue ran dry
        // while the fetches were postponed).
        .set("fetch.queue.backoff.ms", "20")
        // A broker holds a fetch for new records at most this long (librdkafka's default,
        // 500 ms); one that answers only when that time is up (tansu) delays every change by
        // up to as much.
        .set("fetch.wait.max.ms", "100")
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
        .create_with_context(KafkaContext { health, assignments: Default::default() })
        .with_context(|| format!("creating the Kafka consumer for {}", cfg.bootstrap_servers))?;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    consumer.subscribe(&names).with_context(|| format!("subscribing to {}", names.join(", ")))?;
    info!(topics = %names.join(", "), group = %cfg.group_id, "subscribed");
    Ok(Arc::new(consumer))
}

/// Commits each partition's next offset for the consumer group.
pub fn commit(consumer: &KafkaConsumer, next: &[NextOffset], mode: CommitMode) {
    let mut tpl = TopicPartitionList::new();
    for n in next {
        if let Err(e) = tpl.add_partition_offset(&n.topic, n.partition, Offset::Offset(n.offset)) {
            warn!(topic = n.topic, partition = n.partition, offset = n.offset, error = %e, "cannot commit offset");
        }
    }
    if let Err(e) = consumer.commit(&tpl, mode) {
        // The warehouse holds the truth; a failed commit only means re-reading (and dropping)
        // these records after a restart.
        warn!(error = %e, "offset commit failed");
    }
}
