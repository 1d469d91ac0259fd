//! Reading Kafka: the consumer-group client ([`kafka`]), batches of records ([`batch`]),
//! where each partition must be read from ([`positions`]), and what the brokers hold ([`ends`]).
//!
//! Offsets are committed only for records whose landing transaction has committed: librdkafka
//! never stores or commits an offset by itself here (`enable.auto.offset.store=false`,
//! `enable.auto.commit=false`); the service commits a batch's next offsets after landing it.

pub mod batch;
pub mod ends;
pub mod kafka;
pub mod positions;

use std::sync::Arc;

/// A Kafka record as read.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub topic: Arc<str>,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl RawRecord {
    /// What the record weighs in a batch: its key and value plus a fixed overhead.
    pub fn bytes(&self) -> usize {
        self.key.as_ref().map_or(0, Vec::len) + self.value.as_ref().map_or(0, Vec::len) + 64
    }
}

/// A partition's next offset to read: what the consumer group commits once the records before
/// it have landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NextOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}
