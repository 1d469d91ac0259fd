//! A second broker for the bench, one that is not the bound: librdkafka's mock cluster, hosted
//! in a process of its own (`tidemark bench-broker`, a hidden command) so that its CPU and
//! memory are not the bench's. Its brokers listen on real TCP ports; the bench's producer, the
//! bare consumer and `tidemark run` connect to it like to any broker.
//!
//! The mock keeps at most 5 MiB per partition (older record batches are dropped, librdkafka's
//! `rdkafka_mock.c`), so the bench compresses what it preloads there (zstd) and spreads it over
//! more partitions, and checks that nothing was dropped before it measures.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;

/// The hidden command's arguments.
#[derive(Debug, Clone, clap::Args)]
pub struct BrokerArgs {
    /// The topic to create.
    #[arg(long)]
    pub topic: String,
    /// Its partitions.
    #[arg(long)]
    pub partitions: i32,
}

/// `tidemark bench-broker`: starts a one-broker mock cluster with the topic, prints its
/// bootstrap servers on the first line of stdout, and serves until stdin closes (the bench
/// exits or drops it).
pub fn serve(args: &BrokerArgs) -> Result<()> {
    let mock = MockCluster::new(1).context("starting librdkafka's mock cluster")?;
    mock.create_topic(&args.topic, args.partitions, 1)
        .with_context(|| format!("creating topic {} on the mock cluster", args.topic))?;
    println!("{}", mock.bootstrap_servers());
    let mut sink = Vec::new();
    // Returns at EOF: the parent closed the pipe or is gone.
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(mock);
    Ok(())
}

/// The mock cluster's process, killed when dropped.
pub struct MockBroker {
    child: Child,
    pub bootstrap: String,
}

impl MockBroker {
    pub fn start(topic: &str, partitions: i32) -> Result<MockBroker> {
        let exe = std::env::current_exe().context("finding the tidemark binary")?;
        let mut child = Command::new(exe)
            .args(["bench-broker", "--topic", topic, "--partitions", &partitions.to_string()])
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("starting the mock broker's process (tidemark bench-broker)")?;
        let out = child.stdout.take().context("the mock broker's stdout")?;
        let mut line = String::new();
        BufReader::new(out).read_line(&mut line).context("reading the mock broker's address")?;
        let bootstrap = line.trim().to_string();
        if bootstrap.is_empty() {
            let _ = child.kill();
            bail!("the mock broker's process exited before it printed its address");
        }
        Ok(MockBroker { child, bootstrap })
    }
}

impl Drop for MockBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails when a partition of `topic` does not start at offset 0 any more, or holds fewer than
/// `n` records in all: the mock broker dropped some (it keeps 5 MiB per partition).
pub fn check_retained(brokers: &str, topic: &str, partitions: i32, n: u64) -> Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "bench-watermarks")
        .create()
        .context("creating a consumer for watermarks")?;
    let mut total = 0i64;
    for p in 0..partitions {
        let (low, high) = consumer
            .fetch_watermarks(topic, p, Duration::from_secs(10))
            .with_context(|| format!("watermarks of {topic} [{p}] on {brokers}"))?;
        if low != 0 {
            bail!(
                "the mock broker dropped the first {low} records of {topic} [{p}] (it keeps 5 MiB per \
                 partition): give the bench more --mock-partitions"
            );
        }
        total += high;
    }
    if total < n as i64 {
        bail!("{topic} holds {total} of the {n} records produced to it on {brokers}");
    }
    Ok(())
}
