//! A topic's consistent point: the minimum watermark recorded over all its partitions. Every
//! change with a commit ts at or below it has landed (TiCDC sends a partition's watermark after
//! every change below it, and landing records it in the transaction of the records before it), so
//! a merge up to it can never be followed by an older change of a key.

use anyhow::Result;

use super::db::{Bind, Pool, Tx};
use crate::from_row;
use crate::sql::{Sql, Stmt};

/// `topic_state`.
#[derive(Debug, Clone)]
struct TopicRow {
    partitions: Option<i32>,
    watermarked: bool,
}
from_row!(TopicRow { partitions, watermarked });

/// `topic_watermarks`: one partition's highest watermark and since when (UTC text).
#[derive(Debug, Clone, PartialEq)]
pub struct PartitionMark {
    pub kafka_partition: i32,
    pub watermark: Option<i64>,
    pub watermark_at: Option<String>,
}
from_row!(PartitionMark { kafka_partition, watermark, watermark_at });

/// What the warehouse records of a topic's watermarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TopicPoint {
    pub topic: String,
    /// From the brokers' metadata, once `run` has asked.
    pub partitions: Option<i32>,
    /// A watermark has landed from it: its stream carries them.
    pub watermarked: bool,
    /// The partitions that have landed something.
    pub marks: Vec<PartitionMark>,
}

/// The partition a topic's point waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Holder {
    pub partition: i32,
    /// Its watermark (`None`: none has landed from it yet).
    pub watermark: Option<i64>,
    /// Since when it has been there (UTC).
    pub since: Option<String>,
}

impl TopicPoint {
    /// The minimum watermark over all partitions; `None` while the partition count is unknown
    /// or a partition has no watermark yet.
    pub fn point(&self) -> Option<i64> {
        let n = self.partitions?;
        (0..n).map(|p| self.mark(p).and_then(|m| m.watermark)).collect::<Option<Vec<i64>>>()?.into_iter().min()
    }

    fn mark(&self, partition: i32) -> Option<&PartitionMark> {
        self.marks.iter().find(|m| m.kafka_partition == partition)
    }

    /// The partition holding the point back: one without a watermark, else the lowest.
    pub fn holder(&self) -> Option<Holder> {
        let n = self.partitions?;
        let of = |p: i32| self.mark(p).map(|m| (m.watermark, m.watermark_at.clone())).unwrap_or((None, None));
        let missing = (0..n).find(|&p| of(p).0.is_none());
        let partition = missing.or_else(|| (0..n).min_by_key(|&p| of(p).0))?;
        let (watermark, since) = of(partition);
        Some(Holder { partition, watermark, since })
    }

    /// Why no merge can be consistent yet, for logs and `status`.
    pub fn waiting_for(&self) -> String {
        match (self.partitions, self.holder()) {
            (None, _) => format!("the partition count of topic {} (recorded by `tidemark run`)", self.topic),
            (_, Some(h)) if h.watermark.is_none() => {
                format!("a first watermark from topic {} partition {}", self.topic, h.partition)
            }
            (_, Some(h)) => format!("topic {} partition {}", self.topic, h.partition),
            _ => format!("topic {}", self.topic),
        }
    }
}

fn assemble(topic: &str, row: Option<TopicRow>, marks: Vec<PartitionMark>) -> TopicPoint {
    TopicPoint {
        topic: topic.to_string(),
        partitions: row.as_ref().and_then(|r| r.partitions),
        watermarked: row.is_some_and(|r| r.watermarked),
        marks,
    }
}

/// Reads `topic`'s point inside a transaction (a merge's, so that it agrees with what the merge
/// sees of staging).
pub async fn read(sql: &Sql, tx: &mut Tx<'_>, topic: &str) -> Result<TopicPoint> {
    let arg = [Bind::Text(topic.into())];
    let row = tx.fetch_optional(sql.fixed(Stmt::TopicState)?, &arg).await?;
    let marks = tx.fetch_as(sql.fixed(Stmt::TopicWatermarks)?, &arg).await?;
    Ok(assemble(topic, row, marks))
}

/// Reads `topic`'s point (for `status` and the gauges).
pub async fn read_now(sql: &Sql, pool: &Pool, topic: &str) -> Result<TopicPoint> {
    let arg = [Bind::Text(topic.into())];
    let row = pool.fetch_optional(sql.fixed(Stmt::TopicState)?, &arg).await?;
    let marks = pool.fetch_as(sql.fixed(Stmt::TopicWatermarks)?, &arg).await?;
    Ok(assemble(topic, row, marks))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(p: i32, w: Option<i64>) -> PartitionMark {
        PartitionMark { kafka_partition: p, watermark: w, watermark_at: None }
    }

    #[test]
    fn the_point_is_the_minimum_over_every_partition() {
        let mut t = TopicPoint { topic: "t".into(), partitions: Some(3), watermarked: true, marks: vec![] };
        assert_eq!(t.point(), None);
        assert_eq!(t.holder().map(|h| h.partition), Some(0));
        t.marks = vec![mark(0, Some(30)), mark(2, Some(10))];
        assert_eq!(t.point(), None, "partition 1 has sent nothing");
        assert_eq!(t.holder().map(|h| h.partition), Some(1));
        assert!(t.waiting_for().contains("a first watermark from topic t partition 1"), "{}", t.waiting_for());
        t.marks.push(mark(1, Some(20)));
        assert_eq!(t.point(), Some(10));
        assert_eq!(t.holder(), Some(Holder { partition: 2, watermark: Some(10), since: None }));
        t.partitions = None;
        assert_eq!(t.point(), None, "an unknown partition count is no point");
    }
}
