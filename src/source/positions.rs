//! Where reading must go on from, per partition: the warehouse's next offset to land — the
//! truth, whatever the group's committed offsets say (an operator's reset, another tool in
//! the group, a broker that answers a fetch inside a record batch with the next batch).
//! A batch that starts past it while the broker still holds the records between is not
//! landed: the partition is rewound, further back at each attempt, and what is read twice
//! is recognised at landing. Only records the broker no longer has become a gap.

use std::collections::HashMap;
use std::time::Duration;

use rdkafka::consumer::Consumer;
use rdkafka::Offset;
use tracing::{info, warn};

use super::kafka::KafkaConsumer;
use super::{NextOffset, RawRecord};

/// A Kafka partition by name: (topic, partition).
pub type TopicPartition = (String, i32);

#[derive(Default)]
pub struct Positions {
    next: HashMap<TopicPartition, i64>,
    /// Partitions being rewound, and how far before the next offset the last rewind went.
    rewinds: HashMap<TopicPartition, i64>,
    /// The consumer's assignment count when the rewinds began: a rebalance since undid them.
    generation: u64,
}

impl Positions {
    /// Starts from the warehouse's next offsets.
    pub fn new(next: HashMap<TopicPartition, i64>) -> Positions {
        Positions { next, rewinds: HashMap::new(), generation: 0 }
    }

    /// What the warehouse says now (another instance may have landed since).
    pub fn refresh(&mut self, next: HashMap<TopicPartition, i64>) {
        self.next.extend(next);
    }

    /// A landed batch's next offsets.
    pub fn landed(&mut self, next: &[NextOffset]) {
        for n in next {
            self.next.insert((n.topic.clone(), n.partition), n.offset);
        }
    }

    /// The first offset of each partition in the batch.
    fn firsts(batch: &[RawRecord]) -> HashMap<TopicPartition, i64> {
        let mut first: HashMap<TopicPartition, i64> = HashMap::new();
        for r in batch {
            let f = first.entry((r.topic.to_string(), r.partition)).or_insert(r.offset);
            *f = (*f).min(r.offset);
        }
        first
    }

    /// Whether some partition of the batch starts past its next offset to land (a partition
    /// nothing has landed from yet starts at 0, as for landing). Partitions that do not are
    /// done being rewound.
    pub fn any_ahead(&mut self, batch: &[RawRecord]) -> bool {
        let mut ahead = false;
        for (tp, first) in Self::firsts(batch) {
            if first > self.next.get(&tp).copied().unwrap_or(0) {
                ahead = true;
            } else {
                self.rewinds.remove(&tp);
            }
        }
        ahead
    }

    /// Rewinds every partition of the batch that starts past its next offset while the broker
    /// still holds the records between, and drops those partitions' records from the batch.
    pub fn rewind(&mut self, consumer: &KafkaConsumer, batch: &mut Vec<RawRecord>) {
        // A rebalance since the last rewind sent the partitions back to their committed offsets:
        // the seeks did not fail, they were undone, and the escalation starts again. (Counting
        // them as failures declared gaps the broker still held, under a rebalancing group.)
        let generation = consumer.context().assignments.load(std::sync::atomic::Ordering::Relaxed);
        if generation != self.generation {
            self.rewinds.clear();
            self.generation = generation;
        }
        let mut rewound: Vec<TopicPartition> = Vec::new();
        for (tp, first) in Self::firsts(batch) {
            let next = self.next.get(&tp).copied().unwrap_or(0);
            if first <= next {
                continue;
            }
            let (topic, partition) = (&tp.0, tp.1);
            let low = consumer.fetch_watermarks(topic, partition, Duration::from_secs(5)).map(|(low, _)| low);
            if matches!(low, Ok(low) if low > next) {
                continue; // gone from Kafka: landed as a gap, which landing reports
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
