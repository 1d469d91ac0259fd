//! Reading one batch: records until the batch is full (records or bytes) or its first record
//! has waited `batch_linger_ms`.

use std::time::{Duration, Instant};

use rdkafka::message::Message;
use tokio::sync::watch;
use tracing::warn;

use super::kafka::{unreachable, KafkaConsumer};
use super::RawRecord;
use crate::config::KafkaConfig;
use crate::observe::health::{Dependency, Health};

/// A batch as read, and whether reading stopped because shutdown was asked for.
pub struct Batch {
    pub records: Vec<RawRecord>,
    pub stopping: bool,
}

/// Reads the next batch. An empty batch without `stopping` means nothing arrived within a second.
pub async fn read(
    consumer: &KafkaConsumer,
    cfg: &KafkaConfig,
    health: &Health,
    shutdown: &mut watch::Receiver<bool>,
) -> Batch {
    let linger = Duration::from_millis(cfg.batch_linger_ms);
    let mut records: Vec<RawRecord> = Vec::new();
    let mut bytes = 0usize;
    let mut first_at: Option<Instant> = None;
    loop {
        let wait = match first_at {
            None => Duration::from_secs(1),
            Some(t) => linger.saturating_sub(t.elapsed()),
        };
        tokio::select! {
            _ = shutdown.changed() => return Batch { records, stopping: true },
            r = tokio::time::timeout(wait, consumer.recv()) => match r {
                Err(_) => return Batch { records, stopping: false },
                Ok(Ok(m)) => {
                    let rec = RawRecord {
                        topic: m.topic().into(),
                        partition: m.partition(),
                        offset: m.offset(),
                        key: m.key().map(<[u8]>::to_vec),
                        value: m.payload().map(<[u8]>::to_vec),
                    };
                    bytes += rec.bytes();
                    records.push(rec);
                    first_at.get_or_insert_with(Instant::now);
                    if records.len() >= cfg.batch_records || bytes >= cfg.batch_bytes {
                        return Batch { records, stopping: false };
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
}

/// The batch with every Kafka position once: a rebalance can deliver a record twice within
/// one batch, and landing (which inherits a record's order key from its predecessor in the
/// partition) must see each position once. The first delivery is kept. Borrowed unchanged when
/// every partition's offsets strictly increase — the normal case, checked without hashing
/// records.
pub fn distinct_positions(records: &[RawRecord]) -> std::borrow::Cow<'_, [RawRecord]> {
    use std::collections::{HashMap, HashSet};
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    let increasing = records.iter().all(|r| {
        let prev = last.insert((&r.topic, r.partition), r.offset);
        prev.is_none_or(|p| p < r.offset)
    });
    if increasing {
        return std::borrow::Cow::Borrowed(records);
    }
    let mut seen: HashSet<(&str, i32, i64)> = HashSet::new();
    let kept: Vec<RawRecord> =
        records.iter().filter(|r| seen.insert((&r.topic, r.partition, r.offset))).cloned().collect();
    warn!(
        delivered = records.len(),
        distinct = kept.len(),
        "a batch held records delivered twice; each is landed once"
    );
    std::borrow::Cow::Owned(kept)
}
