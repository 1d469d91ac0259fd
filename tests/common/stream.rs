//! A TiCDC canal-json stream for the process-level tests: the demo's workload generator
//! (TPC-C-like `item` and `orders`: inserts, updates, deletes, deletes of unknown keys, key
//! changes, index-value partitioning, re-sent runs) produced to a real broker at a steady
//! rate, and the checks that the replica converged to its model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use tidemark::demo::produce::send_waiting;
use tidemark::demo::workload::{Message, Workload};
use tidemark::warehouse::Warehouse;

use super::process::Tidemark;

pub const PARTITIONS: i32 = 8;

/// Counts deliveries that failed: the model is only the upstream if every record arrived.
#[derive(Default)]
pub struct Deliveries {
    failed: AtomicU64,
}

impl rdkafka::ClientContext for Deliveries {}

impl rdkafka::producer::ProducerContext for Deliveries {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &rdkafka::message::DeliveryResult<'_>, _: ()) {
        if let Err((e, m)) = result {
            use rdkafka::Message as _;
            eprintln!("delivery to {} [{}] failed: {e}", m.topic(), m.partition());
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

type Prod = ThreadedProducer<Deliveries>;

fn send(producer: &Prod, msgs: Vec<Message>) {
    for m in msgs {
        send_waiting(producer, &m.topic, m.partition, &m.payload)
            .unwrap_or_else(|e| panic!("producing to {} [{}]: {e}", m.topic, m.partition));
    }
}

/// Produces `changes` upstream changes at `rate` per second (run it in a thread of its own);
/// `done` counts them, and is `u64::MAX` once all are acknowledged. Returns the model.
pub fn produce(bootstrap: String, mut work: Workload, changes: u64, rate: u64, done: Arc<AtomicU64>) -> Workload {
    let producer: Prod = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("linger.ms", "5")
        .set("acks", "all")
        // One request in flight per partition: a retried send never overtakes the next one, so
        // offset order within a partition stays commit order, as TiCDC's is.
        .set("max.in.flight.requests.per.connection", "1")
        .create_with_context(Deliveries::default())
        .expect("producer");
    send(&producer, work.ddl());
    let started = Instant::now();
    while work.counts.changes < changes {
        let msgs = work.step();
        send(&producer, msgs);
        if work.counts.changes % 2000 == 0 {
            send(&producer, work.watermark());
        }
        done.store(work.counts.changes, Ordering::Relaxed);
        let due = Duration::from_secs_f64(work.counts.changes as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    // TiCDC keeps sending watermarks while upstream is quiet: the last changes become mergeable.
    send(&producer, work.watermark());
    producer.flush(Duration::from_secs(120)).expect("flush");
    let failed = producer.context().failed.load(Ordering::Relaxed);
    assert_eq!(failed, 0, "{failed} records were not delivered: the broker does not hold the model's stream");
    done.store(u64::MAX, Ordering::Relaxed);
    work
}

/// librdkafka's mock cluster (its brokers listen on TCP like any broker's) holding the topics
/// of the workload of `seed`: the workload and its topics.
pub fn workload_on_mock(seed: u64) -> (MockCluster<'static, DefaultProducerContext>, Workload, Vec<String>) {
    let mock = MockCluster::new(1).expect("mock cluster");
    let work = Workload::new(seed, PARTITIONS);
    let topics: Vec<String> = work.tables.iter().map(|t| t.spec.topic.clone()).collect();
    for t in &topics {
        mock.create_topic(t, PARTITIONS, 1).expect("topic");
    }
    (mock, work, topics)
}

/// Every partition's end offset, as the broker says.
pub fn high_watermarks(bootstrap: &str, topics: &[String]) -> HashMap<(String, i32), i64> {
    let c: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "watermarks").create().expect("client");
    let mut out = HashMap::new();
    for t in topics {
        for p in 0..PARTITIONS {
            let (_, high) = c.fetch_watermarks(t, p, Duration::from_secs(10)).expect("watermarks");
            out.insert((t.clone(), p), high);
        }
    }
    out
}

/// A config for `run` on the workload's tables, merging every second; `extra` is appended.
pub fn config(dir: &Path, bootstrap: &str, url: &str, work: &Workload, extra: &str) -> PathBuf {
    let mut toml = format!(
        "[kafka]\nbootstrap_servers = {bootstrap:?}\ngroup_id = \"tidemark\"\nbatch_linger_ms = 100\n\
         batch_records = 5000\n\
         [kafka.properties]\n\"session.timeout.ms\" = \"3000\"\n\"heartbeat.interval.ms\" = \"300\"\n\
         [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"* * * * * *\"\n{extra}\n"
    );
    for t in &work.tables {
        toml.push_str(&format!("[[tables]]\nname = {:?}\ntopic = {:?}\n", t.spec.table, t.spec.topic));
    }
    static CONFIGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = CONFIGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = dir.join(format!("tidemark-{}-{n}.toml", std::process::id()));
    std::fs::write(&path, toml).expect("config");
    path
}

/// Waits until the warehouse has landed every record the broker has (`runs` must stay up).
pub async fn wait_landed(
    wh: &Warehouse,
    high: &HashMap<(String, i32), i64>,
    runs: &mut [&mut Tidemark],
    limit: Duration,
) {
    let deadline = Instant::now() + limit;
    loop {
        let o = wh.offsets().await.unwrap_or_default();
        if high.iter().all(|(k, n)| o.get(k).copied().unwrap_or(0) >= *n) {
            return;
        }
        for r in runs.iter_mut() {
            assert!(r.try_wait().is_none(), "run exited on its own:\n{}", r.log_text());
        }
        assert!(Instant::now() < deadline, "not everything landed within {limit:?}: {o:?} vs {high:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every record of `topic` whose value contains all of `needles`, as `partition@offset: value`
/// (to show a failing key's history).
pub fn history(bootstrap: &str, topic: &str, needles: &[String]) -> Vec<String> {
    use rdkafka::Message as _;
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "history")
        .set("enable.auto.commit", "false")
        .create()
        .expect("client");
    let mut tpl = rdkafka::TopicPartitionList::new();
    let mut left = 0;
    for p in 0..PARTITIONS {
        let (_, high) = c.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
        left += high;
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning).expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while left > 0 && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(500)) {
            left -= 1;
            let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned();
            if needles.iter().all(|n| v.contains(n.as_str())) {
                out.push(format!("{}@{}: {v}", m.partition(), m.offset()));
            }
        }
    }
    out
}

/// One last `merge --all`, then every replica table equals the model, nothing stays staged.
pub async fn assert_converged(wh: &Warehouse, config: &Path, model: &Workload) {
    let merge = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().expect("utf-8"), "merge", "--all"])
        .output()
        .expect("merge --all");
    assert!(merge.status.success(), "{}", String::from_utf8_lossy(&merge.stderr));
    let mut problems = Vec::new();
    for t in &model.tables {
        let (rows, p) = tidemark::demo::compare(wh, t).await.expect("compare");
        eprintln!("{}: {rows} replica rows, {} upstream rows, {} differences", t.spec.table, t.rows.len(), p.len());
        problems.extend(p.into_iter().take(10).map(|p| format!("{}: {p}", t.spec.table)));
        let staged = super::count(wh, &format!("_tidemark_stage_{}", t.spec.table)).await;
        assert_eq!(staged, 0, "{}: rows left staged after the final merge", t.spec.table);
    }
    assert!(problems.is_empty(), "the replica differs from upstream:\n{}", problems.join("\n"));
}

/// Stops a run with SIGTERM; it must exit 0 within `limit`.
pub fn stop(run: &mut Tidemark, limit: Duration) {
    // A signal before its handler is installed would kill it outright.
    tokio::task::block_in_place(|| run.wait_for_log("subscribed", Duration::from_secs(30)));
    run.signal("TERM");
    let status = tokio::task::block_in_place(|| run.wait_for_exit(limit));
    assert!(status.is_some_and(|s| s.success()), "after SIGTERM: {status:?}\n{}", run.log_text());
}

/// How many partitions a run's log says it was last given.
pub fn last_assignment(log: &str) -> usize {
    log.lines()
        .rev()
        .find(|l| l.contains("partitions assigned") || l.contains("partitions revoked"))
        .filter(|l| l.contains("partitions assigned"))
        .map(|l| {
            // `…item[0, 1, 2] …orders[0, 1, 2]`: the numbers inside the brackets.
            l.split('[').skip(1).filter_map(|s| s.split(']').next()).map(|inside| inside.split(',').count()).sum()
        })
        .unwrap_or(0)
}
