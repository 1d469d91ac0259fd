//! Per partition, against what the warehouse records of it: which records have landed before
//! (below its next offset), the order key of records that carry none (inherited from the record
//! before them in the partition), the partition's next offset after the batch, and offsets that
//! were skipped because Kafka no longer has them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use tracing::warn;

use super::prepare::{Partition, Prepared, StagedRow};
use crate::source::NextOffset;
use crate::warehouse::OffsetRow;

/// What the warehouse records of a partition: the next offset to land, the order key of the
/// record before it, and the highest watermark landed from it.
#[derive(Debug, Clone, Copy)]
pub struct PartState {
    pub next: i64,
    pub last_ts: Option<i64>,
    pub watermark: Option<i64>,
}

/// Offsets skipped in a partition: records there were never landed and could not be read
/// (retention, a topic recreated, a reset group).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    pub topic: String,
    pub partition: i32,
    pub first_missing: i64,
    /// The first offset the batch read.
    pub first_read: i64,
}

impl Gap {
    /// How many offsets are missing.
    pub fn missing(&self) -> u64 {
        (self.first_read - self.first_missing).max(0) as u64
    }
}

/// A partition's offset row after the batch.
#[derive(Debug, Clone)]
pub struct Advance {
    pub topic: String,
    pub partition: i32,
    pub next_offset: i64,
    pub last_commit_ts: Option<i64>,
    /// The highest watermark landed (recorded or in this batch).
    pub watermark: Option<i64>,
}

/// How a batch lands against the warehouse's offsets.
pub struct Plan {
    current: HashMap<Partition, PartState>,
    /// The order key of every record with rows: its own, else inherited.
    keys: HashMap<(Partition, i64), i64>,
    /// Records whose commit ts is below their partition's watermark (recorded, or carried
    /// earlier in this batch): re-sends of what has landed, not staged.
    resent: HashSet<(Partition, i64)>,
    pub advance: Vec<Advance>,
    pub gaps: Vec<Gap>,
}

impl Plan {
    /// `rows`: the offset rows of the batch's partitions as the landing transaction read them.
    pub fn new(p: &Prepared, rows: Vec<OffsetRow>) -> Plan {
        let mut current = HashMap::new();
        for r in rows {
            if let Some((part, _)) = p.spans.get_key_value(&(Arc::from(r.topic.as_str()), r.kafka_partition)) {
                let state = PartState { next: r.next_offset, last_ts: r.last_commit_ts, watermark: r.watermark };
                current.insert(part.clone(), state);
            }
        }
        let (keys, last) = order_keys(p, &current);
        let (resent, watermarks) = resent(p, &current);
        let advance = advance(p, &current, &last, &watermarks);
        let gaps = gaps(p, &current);
        Plan { current, keys, resent, advance, gaps }
    }

    /// Whether the record at this position is a re-send below its partition's watermark.
    pub fn is_resent(&self, topic: &Arc<str>, partition: i32, offset: i64) -> bool {
        !self.resent.is_empty() && self.resent.contains(&((topic.clone(), partition), offset))
    }

    /// Whether the record at this position has not landed before.
    pub fn is_fresh(&self, topic: &Arc<str>, partition: i32, offset: i64) -> bool {
        offset >= self.current.get(&(topic.clone(), partition)).map(|s| s.next).unwrap_or(0)
    }

    /// A row's order key: its own, else the one inherited from its partition.
    pub fn order_key(&self, r: &StagedRow) -> i64 {
        r.commit_ts.or_else(|| self.keys.get(&((r.topic.clone(), r.partition), r.offset)).copied()).unwrap_or(0)
    }

    /// What the consumer may commit once the batch has landed.
    pub fn next_offsets(&self) -> Vec<NextOffset> {
        self.advance
            .iter()
            .map(|a| NextOffset { topic: a.topic.clone(), partition: a.partition, offset: a.next_offset })
            .collect()
    }
}

/// Order keys for records that carry none (TiCDC Avro deletes, tombstones): the key of the
/// record before them in their partition, so offset order decides among them and against
/// their neighbours; `0` when nothing came before. Returns the key of every record and the
/// partitions' new last keys.
fn order_keys(
    p: &Prepared,
    current: &HashMap<Partition, PartState>,
) -> (HashMap<(Partition, i64), i64>, HashMap<Partition, i64>) {
    let mut keys = HashMap::new();
    let mut last = HashMap::new();
    for (part, trail) in &p.trail {
        let mut prev = current.get(part).and_then(|s| s.last_ts).unwrap_or(0);
        for entry in trail {
            prev = entry.own_key.unwrap_or(prev);
            keys.insert((part.clone(), entry.offset), prev);
        }
        last.insert(part.clone(), prev);
    }
    (keys, last)
}

/// The records of the batch below their partition's watermark — the recorded one, or one the
/// batch carried before them — and each partition's highest watermark after the batch. Only a
/// commit ts strictly below counts (TiCDC's own consumer does the same): a record at the
/// watermark is kept. Records without their own commit ts are never judged.
fn resent(
    p: &Prepared,
    current: &HashMap<Partition, PartState>,
) -> (HashSet<(Partition, i64)>, HashMap<Partition, i64>) {
    let mut resent = HashSet::new();
    let mut highest = HashMap::new();
    for part in p.spans.keys() {
        let recorded = current.get(part).and_then(|s| s.watermark);
        let marks = p.watermarks.get(part).map(Vec::as_slice).unwrap_or_default();
        let mut marks = marks.iter().peekable();
        let mut w = recorded;
        for entry in p.trail.get(part).map(Vec::as_slice).unwrap_or_default() {
            while let Some(m) = marks.next_if(|m| m.offset < entry.offset) {
                w = Some(w.map_or(m.ts, |w| w.max(m.ts)));
            }
            if let (Some(own), Some(w)) = (entry.own_key, w) {
                if own < w {
                    resent.insert((part.clone(), entry.offset));
                }
            }
        }
        for m in marks {
            w = Some(w.map_or(m.ts, |w| w.max(m.ts)));
        }
        if let Some(w) = w {
            highest.insert(part.clone(), w);
        }
    }
    (resent, highest)
}

/// Each partition's offset row after this batch.
fn advance(
    p: &Prepared,
    current: &HashMap<Partition, PartState>,
    last: &HashMap<Partition, i64>,
    watermarks: &HashMap<Partition, i64>,
) -> Vec<Advance> {
    p.spans
        .iter()
        .map(|(part, span)| {
            let cur = current.get(part);
            Advance {
                topic: part.0.to_string(),
                partition: part.1,
                next_offset: cur.map(|s| s.next).unwrap_or(0).max(span.high + 1),
                last_commit_ts: last.get(part).copied().or(cur.and_then(|s| s.last_ts)),
                watermark: watermarks.get(part).copied().or(cur.and_then(|s| s.watermark)),
            }
        })
        .collect()
}

/// Partitions whose batch starts beyond the next offset to land: records that were never
/// landed and can no longer be read. Logged loudly, once per gap.
fn gaps(p: &Prepared, current: &HashMap<Partition, PartState>) -> Vec<Gap> {
    let mut gaps = Vec::new();
    for (part, span) in &p.spans {
        let known = current.get(part).map(|s| s.next);
        let next = known.unwrap_or(0);
        if span.low <= next {
            continue;
        }
        let (topic, partition) = (&part.0, part.1);
        if known.is_some_and(|n| n > 0) {
            tracing::error!(topic = %topic, partition, missing_from = next, missing_to = span.low - 1,
                "offsets were never landed and are no longer in Kafka (retention? a reset or recreated topic?): \
                 the replica misses those changes; re-seed it from a snapshot");
        } else {
            warn!(topic = %topic, partition, first_offset = span.low,
                "starting at this offset: earlier records are no longer in Kafka, so the replica holds only \
                 changes from here on (seed it from a snapshot if it must be complete)");
        }
        gaps.push(Gap { topic: topic.to_string(), partition, first_missing: next, first_read: span.low });
    }
    gaps
}
