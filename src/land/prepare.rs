//! A batch decoded and routed, outside any transaction: staged rows per table, dead letters,
//! the partitions it covers, and what it shows of the schema.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::schema_watch::SchemaNews;

/// A Kafka partition: (topic, partition).
pub type Partition = (Arc<str>, i32);

/// One staged change, ready to write.
#[derive(Debug, Clone)]
pub struct StagedRow {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    /// Index of the change among those decoded from its Kafka record.
    pub sub: i16,
    /// The record's own order key; `None` inherits the previous record's in the partition.
    pub commit_ts: Option<i64>,
    pub commit_ms: Option<i64>,
    pub op: &'static str,
    pub key: String,
    pub row: Option<String>,
}

/// A record that could not be decoded, routed or keyed, with its raw bytes.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub table: Option<String>,
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub error: String,
}

/// The offsets a batch covers in one partition.
#[derive(Debug, Clone, Copy)]
pub struct Span {
    pub low: i64,
    pub high: i64,
}

/// A record with rows, in offset order within its partition, and its own order key.
#[derive(Debug, Clone, Copy)]
pub struct TrailEntry {
    pub offset: i64,
    pub own_key: Option<i64>,
}

/// A watermark read from a partition: every change with a smaller commit ts has been sent on
/// it before this offset.
#[derive(Debug, Clone, Copy)]
pub struct WatermarkEntry {
    pub offset: i64,
    pub ts: i64,
}

/// An upstream DDL statement as the stream carried it.
#[derive(Debug, Clone)]
pub struct DdlEvent {
    pub topic: Arc<str>,
    pub commit_ts: i64,
    pub query: String,
    pub db: String,
    pub table: String,
}

/// A decoded batch, ready to land.
pub struct Prepared {
    /// Staged rows per table index.
    pub rows: Vec<Vec<StagedRow>>,
    pub dead: Vec<DeadLetter>,
    /// Per partition, in sorted order (the order their offset rows are locked in).
    pub spans: BTreeMap<Partition, Span>,
    /// Per partition: each record with rows, in offset order.
    pub trail: BTreeMap<Partition, Vec<TrailEntry>>,
    /// Per partition: the watermarks it carried, in offset order.
    pub watermarks: BTreeMap<Partition, Vec<WatermarkEntry>>,
    pub ddl: Vec<DdlEvent>,
    /// What the batch shows of the schema that is not recorded yet.
    pub news: SchemaNews,
    /// Tables (by index) whose stream cannot be ordered exactly, and why.
    pub ordering: Vec<(usize, String)>,
    /// Tables (by index) with staged rows that leave unchanged columns out.
    pub partial: Vec<usize>,
    /// A chunk of an upstream snapshot: its progress, recorded in the same transaction.
    pub snapshot: Option<SnapshotStep>,
}

/// A snapshot chunk's progress: the last key landed of generation `generation` of `table`'s
/// snapshot moves from `after` to `last`, `rows` rows later.
#[derive(Debug, Clone)]
pub struct SnapshotStep {
    pub table: String,
    pub generation: i64,
    pub after: Option<String>,
    pub last: String,
    pub rows: i64,
}

impl Prepared {
    pub fn new(tables: usize) -> Prepared {
        Prepared {
            rows: (0..tables).map(|_| Vec::new()).collect(),
            dead: Vec::new(),
            spans: BTreeMap::new(),
            trail: BTreeMap::new(),
            watermarks: BTreeMap::new(),
            ddl: Vec::new(),
            news: SchemaNews::default(),
            ordering: Vec::new(),
            partial: Vec::new(),
            snapshot: None,
        }
    }

    /// Counts a record's offset into its partition's span.
    pub fn cover(&mut self, topic: &Arc<str>, partition: i32, offset: i64) {
        let span = self.spans.entry((topic.clone(), partition)).or_insert(Span { low: offset, high: offset });
        span.low = span.low.min(offset);
        span.high = span.high.max(offset);
    }
}
