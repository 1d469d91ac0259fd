//! Topics held back: the warehouse refuses to land a topic's records for a reason no record is
//! to blame for (a permission, a staging table gone). Its tables are stopped — `status` and
//! `/readyz` say why — and its partitions paused, so the other topics go on; every
//! [`RETRY`] the topic is read again, and once its records land its tables go on by themselves.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use rdkafka::consumer::Consumer;
use rdkafka::TopicPartitionList;
use tracing::{info, warn};

use crate::land::{LandReport, Lander};
use crate::source::kafka::KafkaConsumer;

/// How long a held topic waits before it is read again.
pub const RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Held {
    /// Paused topics, and when each is read again.
    paused: HashMap<String, Instant>,
    /// Topics read again, until a batch of theirs lands (or is refused again).
    retrying: HashSet<String>,
}

impl Held {
    /// The warehouse refused `topic`'s records (its tables are stopped already): pauses its
    /// partitions until the next retry.
    pub fn hold(&mut self, consumer: &KafkaConsumer, lander: &Lander, topic: &str, error: &str) {
        // Paused again even when held already: a rebalance forgets pauses.
        pause(consumer, topic, true);
        self.retrying.remove(topic);
        if !self.paused.contains_key(topic) {
            warn!(
                topic,
                tables = %lander.tables_of(topic).join(", "),
                error,
                retry_s = RETRY.as_secs(),
                "the warehouse refuses to land this topic's records: its tables are stopped and it is read again later; other topics go on"
            );
        }
        self.paused.entry(topic.to_string()).or_insert_with(|| Instant::now() + RETRY);
    }

    /// Reads again the topics whose wait is over.
    pub fn retry_due(&mut self, consumer: &KafkaConsumer) {
        let now = Instant::now();
        let due: Vec<String> = self.paused.iter().filter(|(_, at)| **at <= now).map(|(t, _)| t.clone()).collect();
        for topic in due {
            self.paused.remove(&topic);
            pause(consumer, &topic, false);
            info!(topic, "reading a held topic again");
            self.retrying.insert(topic);
        }
    }

    /// After a batch landed: the held topics it landed records of go on.
    pub async fn landed(&mut self, lander: &Lander, report: &LandReport) {
        let back: Vec<String> =
            self.retrying.iter().filter(|t| report.next_offsets.iter().any(|n| &n.topic == *t)).cloned().collect();
        for topic in back {
            match lander.unstop_topic(&topic).await {
                Ok(()) => {
                    self.retrying.remove(&topic);
                }
                Err(e) => warn!(topic, error = %format!("{e:#}"), "cannot record that the topic's tables go on"),
            }
        }
    }
}

/// Pauses (or resumes) every partition of `topic` this consumer is assigned.
fn pause(consumer: &KafkaConsumer, topic: &str, paused: bool) {
    let assigned = consumer.assignment().unwrap_or_default();
    let mut tpl = TopicPartitionList::new();
    for e in assigned.elements_for_topic(topic) {
        tpl.add_partition(topic, e.partition());
    }
    if tpl.count() == 0 {
        return;
    }
    let done = if paused { consumer.pause(&tpl) } else { consumer.resume(&tpl) };
    if let Err(e) = done {
        warn!(topic, paused, error = %e, "cannot pause or resume the topic's partitions");
    }
}
