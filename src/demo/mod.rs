//! `tidemark demo`: the whole pipeline in one process on embedded defaults.
//!
//! librdkafka's in-process mock cluster stands in for Kafka; a generator ([`workload`]) writes
//! a TPC-C-like workload as TiCDC canal-json (index-value partitioning, re-sends, key changes,
//! deletes of unknown keys); the real service lands and merges on a 1 s schedule into an SQLite
//! file — and is killed and restarted halfway. At the end every replica table is compared with
//! the generator's model of the upstream tables ([`check`]).

pub mod check;
pub mod produce;
mod service;
pub mod workload;

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::demo::produce::send_waiting;
use crate::merge::{merge_unit, MergeOutcome, Target};
use crate::service::pipeline::ConsumeStats;
use crate::service::scheduler::MergeNotice;
use crate::warehouse::Warehouse;
pub use check::compare;
use service::{Progress, Service};
use workload::{Message, Workload};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Upstream changes to generate.
    #[arg(long, default_value_t = 40_000)]
    pub changes: u64,
    /// Changes per second the generator writes.
    #[arg(long, default_value_t = 8_000)]
    pub rate: u64,
    /// The SQLite file the replicas go to (recreated).
    #[arg(long, default_value = "tidemark-demo.db")]
    pub db: PathBuf,
    /// Partitions per topic. (The mock broker keeps at most 5 MiB per partition and drops
    /// older records beyond that, as retention would; the default leaves room.)
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
    /// Merge schedule (cron with seconds).
    #[arg(long, default_value = "* * * * * *")]
    pub schedule: String,
    /// Seed of the workload generator (same seed, same changes).
    #[arg(long, default_value_t = 20261122)]
    pub seed: u64,
    /// Kill the service (no shutdown, like `kill -9`) once this many changes are generated,
    /// then start a new one. Default: half way; 0: never.
    #[arg(long)]
    pub kill_at: Option<u64>,
}

type Producer_ = ThreadedProducer<DefaultProducerContext>;

/// Records produced per partition: what the warehouse must have landed at the end.
type Produced = HashMap<(String, i32), i64>;

/// The demo's Kafka: the mock cluster, its topics, and a producer.
struct Cluster {
    // Fields drop in order: the producer before the brokers it talks to.
    producer: Producer_,
    mock: MockCluster<'static, rdkafka::producer::DefaultProducerContext>,
    produced: Produced,
}

impl Cluster {
    fn start(work: &Workload, partitions: i32) -> Result<Cluster> {
        let mock = MockCluster::new(3).context("starting librdkafka's mock cluster")?;
        for t in &work.tables {
            mock.create_topic(&t.spec.topic, partitions, 3)
                .with_context(|| format!("creating topic {}", t.spec.topic))?;
        }
        let producer: Producer_ = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .create()
            .context("creating the demo's producer")?;
        Ok(Cluster { mock, producer, produced: HashMap::new() })
    }

    fn send_all(&mut self, msgs: Vec<Message>) -> Result<()> {
        for m in msgs {
            send_waiting(&self.producer, &m.topic, m.partition, &m.payload)
                .map_err(|e| anyhow!("producing to {} [{}]: {e}", m.topic, m.partition))?;
            *self.produced.entry((m.topic.clone(), m.partition)).or_default() += 1;
        }
        Ok(())
    }

    /// The service's config: this cluster, the SQLite file, every table of the workload.
    fn config(&self, args: &DemoArgs, work: &Workload, url: &str) -> Result<Config> {
        let mut toml = format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"tidemark-demo\"\nbatch_linger_ms = 100\n\
             [kafka.properties]\n\"session.timeout.ms\" = \"3000\"\n\"heartbeat.interval.ms\" = \"500\"\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = {:?}\nwatermarks = \"required\"\ngroup = \"tpcc\"\n",
            self.mock.bootstrap_servers(),
            args.schedule
        );
        for t in &work.tables {
            toml.push_str(&format!("[[tables]]\nname = {:?}\ntopic = {:?}\n", t.spec.table, t.spec.topic));
        }
        Config::parse(&toml)
    }
}

/// Runs the demo; `Ok(false)` when a replica differs from the model.
pub async fn run(args: &DemoArgs) -> Result<bool> {
    let started = Instant::now();
    for suffix in ["", "-wal", "-shm"] {
        let mut p = args.db.clone().into_os_string();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let url = format!("sqlite://{}", args.db.display());
    let mut work = Workload::new(args.seed, args.partitions);
    let mut cluster = Cluster::start(&work, args.partitions)?;
    let config = cluster.config(args, &work, &url)?;
    let wh = Warehouse::open(&url).await?;
    let show = Progress::new(args.changes);
    let mut checks = MergeChecks::new(&work);
    eprintln!(
        "tidemark demo: TiCDC canal-json → Kafka (in-process mock cluster, 3 brokers, {} partitions per topic) → tidemark → SQLite {}",
        args.partitions,
        args.db.display()
    );
    cluster.send_all(work.ddl())?;
    let (service, killed) = generate(args, &mut work, &mut cluster, &config, &wh, &show, &mut checks).await?;
    // A last watermark: upstream is quiet, everything before it may be merged.
    cluster.send_all(work.watermark())?;
    cluster.producer.flush(Duration::from_secs(30)).context("flushing the demo's producer")?;
    let stats = catch_up(&wh, &cluster.produced, service, &mut work, &show, &mut checks).await?;
    show.done();

    // One last merge of whatever the schedule had not merged yet, then compare.
    for unit in config.merge_units()? {
        let targets: Vec<Target> = unit.iter().map(Target::from).collect();
        let outcomes = merge_unit(&wh, &targets, true).await?;
        if let Some(point) = point_of(&outcomes) {
            checks.as_of.check(&wh, &mut work, point).await?;
        }
    }
    let mut verdict = check::verdict(&wh, &work).await?;
    verdict.as_of = Some((checks.as_of.checked, std::mem::take(&mut checks.as_of.mismatches)));
    let records: i64 = cluster.produced.values().sum();
    check::summary(args, &work, &verdict, records, &stats, &killed, started.elapsed());
    Ok(verdict.ok() && stats.skipped_offsets + killed.skipped_offsets == 0)
}

/// The point a merge unit's merge reached (the same for every table of a group).
fn point_of(outcomes: &[(String, MergeOutcome)]) -> Option<u64> {
    outcomes
        .iter()
        .filter_map(|(_, o)| match o {
            MergeOutcome::Merged(r) => r.point,
            _ => None,
        })
        .max()
        .map(|p| p as u64)
}

/// After every merge the service's scheduler runs, the demo compares every replica table with
/// upstream as of the point the merge reports, while the scheduler waits.
struct MergeChecks {
    tx: mpsc::Sender<MergeNotice>,
    rx: mpsc::Receiver<MergeNotice>,
    as_of: check::AsOf,
}

impl MergeChecks {
    fn new(work: &Workload) -> MergeChecks {
        let (tx, rx) = mpsc::channel(1);
        MergeChecks { tx, rx, as_of: check::AsOf::new(work) }
    }

    /// Checks the merges the scheduler has reported since the last call.
    async fn serve(&mut self, wh: &Warehouse, work: &mut Workload) -> Result<()> {
        while let Ok(notice) = self.rx.try_recv() {
            if let Some(point) = point_of(&notice.outcomes) {
                self.as_of.check(wh, work, point).await?;
            }
            let _ = notice.done.send(());
        }
        Ok(())
    }
}

/// Generates the workload at its rate while the service runs; kills the service half way and
/// starts another. Returns the running service and what the killed one had landed.
async fn generate(
    args: &DemoArgs,
    work: &mut Workload,
    cluster: &mut Cluster,
    config: &Config,
    wh: &Warehouse,
    show: &Progress,
    checks: &mut MergeChecks,
) -> Result<(Service, ConsumeStats)> {
    // The workload starts once the service is consuming (it has landed the DDL records).
    let mut service = Service::start(config, checks.tx.clone());
    service.wait_consuming(Duration::from_secs(60)).await?;
    let kill_at = args.kill_at.unwrap_or(args.changes / 2);
    let mut killed = None;
    let tick = Duration::from_millis(100);
    let per_tick = (args.rate / 10).max(1);
    let mut next_tick = Instant::now();
    while work.counts.changes < args.changes {
        for _ in 0..per_tick {
            if work.counts.changes >= args.changes {
                break;
            }
            let msgs = work.step();
            cluster.send_all(msgs)?;
            if work.counts.changes % 2000 == 0 {
                cluster.send_all(work.watermark())?;
            }
        }
        if killed.is_none() && kill_at > 0 && work.counts.changes >= kill_at {
            killed = Some(service.kill().await);
            show.line(&format!(
                "killed the service at change {} (no shutdown, no final offset commit); restarting",
                work.counts.changes
            ));
            service = Service::start(config, checks.tx.clone());
        }
        checks.serve(wh, work).await?;
        show.update(wh, work.counts.changes, &service).await;
        next_tick += tick;
        tokio::time::sleep_until(next_tick.into()).await;
        service.check()?;
    }
    Ok((service, killed.unwrap_or_default()))
}

/// Waits until the warehouse has landed every produced offset, then stops the service.
async fn catch_up(
    wh: &Warehouse,
    produced: &Produced,
    mut service: Service,
    work: &mut Workload,
    show: &Progress,
    checks: &mut MergeChecks,
) -> Result<ConsumeStats> {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let offsets = wh.offsets().await?;
        if produced.iter().all(|(k, n)| offsets.get(k) == Some(n)) {
            break;
        }
        if Instant::now() > deadline {
            bail!("the service did not land every record within 3 minutes");
        }
        service.check()?;
        checks.serve(wh, work).await?;
        show.update(wh, work.counts.changes, &service).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The scheduler may be waiting for a check: answer it while the service stops.
    let stopping = service.stop();
    tokio::pin!(stopping);
    loop {
        tokio::select! {
            stats = &mut stopping => return stats,
            Some(notice) = checks.rx.recv() => {
                if let Some(point) = point_of(&notice.outcomes) {
                    checks.as_of.check(wh, work, point).await?;
                }
                let _ = notice.done.send(());
            }
        }
    }
}
