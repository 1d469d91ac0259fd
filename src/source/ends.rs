//! What the brokers hold: their topics (for `[[table_patterns]]`), each partition's low and high
//! watermark (for `status`: how many records of a topic have not landed yet). Read-only: no
//! group is joined, nothing is committed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;

use crate::config::KafkaConfig;

/// (topic, partition) → (low, high): the oldest offset the broker still has, and the offset its
/// next record will get.
pub type Ends = HashMap<(String, i32), (i64, i64)>;

/// A client that keeps librdkafka's own complaints to itself: what fails is the question's
/// answer, said once by the caller (a command's output stays its own).
struct Quiet;

impl ClientContext for Quiet {
    fn log(&self, _: RDKafkaLogLevel, _: &str, _: &str) {}
    fn error(&self, _: KafkaError, _: &str) {}
}

impl ConsumerContext for Quiet {}

fn client(cfg: &KafkaConfig) -> Result<BaseConsumer<Quiet>> {
    super::kafka::client_config(cfg)?
        .create_with_context(Quiet)
        .with_context(|| format!("creating a Kafka client for {}", cfg.bootstrap_servers))
}

/// The names of the topics the brokers have (Kafka's own `__…` topics left out), asked within
/// `budget`.
pub async fn topic_names(cfg: &KafkaConfig, budget: Duration) -> Result<Vec<String>> {
    let client = client(cfg)?;
    let brokers = cfg.bootstrap_servers.clone();
    tokio::task::spawn_blocking(move || {
        let meta = client.fetch_metadata(None, budget).with_context(|| format!("Kafka {brokers}: listing topics"))?;
        Ok(meta.topics().iter().map(|t| t.name().to_string()).filter(|n| !n.starts_with("__")).collect())
    })
    .await
    .map_err(|e| anyhow!("asking the brokers: {e}"))?
}

/// The watermarks of every partition of `topics` that exist; all asked within `budget`.
pub async fn watermarks(cfg: &KafkaConfig, topics: &[String], budget: Duration) -> Result<Ends> {
    let client = client(cfg)?;
    let topics = topics.to_vec();
    let brokers = cfg.bootstrap_servers.clone();
    tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + budget;
        let left = || deadline.saturating_duration_since(Instant::now());
        let meta = client.fetch_metadata(None, left()).with_context(|| format!("Kafka {brokers}: metadata"))?;
        let mut ends = Ends::new();
        for t in meta.topics().iter().filter(|t| topics.iter().any(|n| n == t.name())) {
            for p in t.partitions() {
                let w = client
                    .fetch_watermarks(t.name(), p.id(), left())
                    .with_context(|| format!("Kafka {brokers}: watermarks of {}/{}", t.name(), p.id()))?;
                ends.insert((t.name().to_string(), p.id()), w);
            }
        }
        Ok(ends)
    })
    .await
    .map_err(|e| anyhow!("asking the brokers: {e}"))?
}

/// Records of `topic` the brokers hold past what has landed (`landed`: each partition's next
/// offset to read, as the warehouse records it); `None` when the brokers do not have the topic.
pub fn pending(ends: &Ends, landed: &HashMap<(String, i32), i64>, topic: &str) -> Option<i64> {
    let mut found = false;
    let mut sum = 0;
    for ((t, p), &(low, high)) in ends.iter().filter(|((t, _), _)| t == topic) {
        found = true;
        let next = landed.get(&(t.clone(), *p)).copied().unwrap_or(low).max(low);
        sum += (high - next).max(0);
    }
    found.then_some(sum)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_counts_what_has_not_landed_and_what_the_broker_still_has() {
        let ends: Ends =
            [(("t".to_string(), 0), (0, 10)), (("t".to_string(), 1), (5, 8)), (("u".to_string(), 0), (0, 3))]
                .into_iter()
                .collect();
        let landed: HashMap<(String, i32), i64> = [(("t".to_string(), 0), 10)].into_iter().collect();
        // Partition 1 never landed: from the oldest record the broker still has.
        assert_eq!(pending(&ends, &landed, "t"), Some(3));
        assert_eq!(pending(&ends, &landed, "u"), Some(3));
        assert_eq!(pending(&ends, &landed, "v"), None);
        let landed: HashMap<(String, i32), i64> =
            [(("t".to_string(), 0), 10), (("t".to_string(), 1), 8)].into_iter().collect();
        assert_eq!(pending(&ends, &landed, "t"), Some(0));
    }
}
