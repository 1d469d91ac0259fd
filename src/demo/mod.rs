//! `tidemark demo`: the whole pipeline in one process on embedded defaults.
//!
//! librdkafka's in-process mock cluster stands in for Kafka; a generator writes a TPC-C-like
//! workload as TiCDC canal-json (index-value partitioning, re-sends, key changes, deletes of
//! unknown keys); the real service lands and merges on a 1 s schedule into an SQLite file —
//! and is killed and restarted halfway. At the end every replica table is compared with the
//! generator's model of the upstream tables.

pub mod workload;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use tokio::sync::watch;

use crate::config::Config;
use crate::merge::{merge, MergeOutcome};
use crate::produce::send_waiting;
use crate::sql::TableCtx;
use crate::warehouse::Warehouse;
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

    let mock = MockCluster::new(3).context("starting librdkafka's mock cluster")?;
    for t in &work.tables {
        mock.create_topic(&t.spec.topic, args.partitions, 3)
            .with_context(|| format!("creating topic {}", t.spec.topic))?;
    }
    let producer: Producer_ = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("linger.ms", "5")
        .set("enable.idempotence", "true")
        .create()
        .context("creating the demo's producer")?;

    let mut toml = format!(
        "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"tidemark-demo\"\nbatch_linger_ms = 100\n\
         [kafka.properties]\n\"session.timeout.ms\" = \"3000\"\n\"heartbeat.interval.ms\" = \"500\"\n\
         [warehouse]\nurl = {url:?}\n[defaults]\nschedule = {:?}\n",
        mock.bootstrap_servers(),
        args.schedule
    );
    for t in &work.tables {
        toml.push_str(&format!("[[tables]]\nname = {:?}\ntopic = {:?}\n", t.spec.table, t.spec.topic));
    }
    let config = Config::parse(&toml)?;
    let wh = Warehouse::open(&url).await?;
    let show = Progress::new(args.changes);

    eprintln!(
        "tidemark demo: TiCDC canal-json → Kafka (in-process mock cluster, 3 brokers, {} partitions per topic) → tidemark → SQLite {}",
        args.partitions,
        args.db.display()
    );
    let mut produced: HashMap<(String, i32), i64> = HashMap::new();
    send_all(&producer, work.ddl(), &mut produced)?;

    // First service; killed halfway (no graceful shutdown), then a second one takes over.
    // The workload starts once it is consuming (it has landed the DDL records).
    let mut service = Service::start(&config);
    let joined = Instant::now() + Duration::from_secs(60);
    while service.landed() == 0 {
        service.check()?;
        if Instant::now() > joined {
            bail!("the service did not start consuming within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let kill_at = args.kill_at.unwrap_or(args.changes / 2);
    let mut crashed = false;
    let mut killed = crate::source::ConsumeStats::default();
    let tick = Duration::from_millis(100);
    let per_tick = (args.rate / 10).max(1);
    let mut next_tick = Instant::now();
    while work.counts.changes < args.changes {
        for _ in 0..per_tick {
            if work.counts.changes >= args.changes {
                break;
            }
            let msgs = work.step();
            send_all(&producer, msgs, &mut produced)?;
            if work.counts.changes % 2000 == 0 {
                send_all(&producer, work.watermark(), &mut produced)?;
            }
        }
        if !crashed && kill_at > 0 && work.counts.changes >= kill_at {
            killed = service.kill().await;
            show.line(&format!(
                "killed the service at change {} (no shutdown, no final offset commit); restarting",
                work.counts.changes
            ));
            service = Service::start(&config);
            crashed = true;
        }
        show.update(&wh, work.counts.changes, &service).await;
        next_tick += tick;
        tokio::time::sleep_until(next_tick.into()).await;
        service.check()?;
    }
    producer.flush(Duration::from_secs(30)).context("flushing the demo's producer")?;

    // Caught up: the warehouse has landed every produced offset.
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
        show.update(&wh, work.counts.changes, &service).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = service.stop().await?;
    show.done();

    // One last merge of whatever the schedule had not merged yet, then compare.
    for t in &work.tables {
        if let MergeOutcome::Merged(_) = merge(&wh, t.spec.table, true).await? {}
    }
    let mut mismatches = 0;
    let mut lines = Vec::new();
    for t in &work.tables {
        let (n, problems) = compare(&wh, t).await?;
        mismatches += problems.len();
        if problems.is_empty() {
            lines.push(format!("  {:<9} {n} rows, equal to upstream", t.spec.table));
        } else {
            lines.push(format!("  {:<9} {n} rows, {} MISMATCHES, e.g.:", t.spec.table, problems.len()));
            lines.extend(problems.iter().take(5).map(|p| format!("              {p}")));
        }
    }
    let (merges, worst_ms) = merge_stats(&wh).await?;
    let staged_left = staged_rows(&wh, &work).await?;
    let c = &work.counts;
    let records: i64 = produced.values().sum();
    println!("tidemark demo — {:.1} s", started.elapsed().as_secs_f64());
    println!(
        "  upstream  {} changes: {} inserts, {} updates, {} deletes, {} deletes of unknown keys, {} key changes",
        c.changes, c.inserts, c.updates, c.deletes, c.unknown_deletes, c.key_changes
    );
    println!(
        "  kafka     {records} records on {} partitions: {} re-sent by TiCDC, {} watermarks, {} DDL",
        work.tables.len() as i32 * args.partitions,
        c.resent,
        c.watermarks,
        c.ddl
    );
    println!(
        "  landed    {} staged rows, {} dead letters; after the kill, {} re-delivered records were recognised and dropped",
        stats.staged + killed.staged,
        stats.dead_letters + killed.dead_letters,
        stats.duplicates
    );
    let skipped = stats.skipped_offsets + killed.skipped_offsets;
    if skipped > 0 {
        println!("  LOST      {skipped} records were gone from Kafka before they were read (see the log)");
    }
    println!(
        "  merged    {merges} merges on a 1 s schedule; worst staleness {:.2} s (upstream commit → visible in the replica); {staged_left} rows left staged",
        worst_ms as f64 / 1000.0
    );
    for l in lines {
        println!("{l}");
    }
    if mismatches == 0 && staged_left == 0 && skipped == 0 {
        println!("OK: every replica table equals the upstream model");
        Ok(true)
    } else {
        println!("FAILED: {mismatches} rows differ from the upstream model");
        Ok(false)
    }
}

fn send_all(producer: &Producer_, msgs: Vec<Message>, produced: &mut HashMap<(String, i32), i64>) -> Result<()> {
    for m in msgs {
        send_waiting(producer, &m.topic, m.partition, &m.payload)
            .map_err(|e| anyhow!("producing to {} [{}]: {e}", m.topic, m.partition))?;
        *produced.entry((m.topic.clone(), m.partition)).or_default() += 1;
    }
    Ok(())
}

/// The service under demo, in a task of this process.
struct Service {
    task: tokio::task::JoinHandle<Result<crate::source::ConsumeStats>>,
    stop: watch::Sender<bool>,
    progress: watch::Receiver<crate::source::ConsumeStats>,
}

impl Service {
    fn start(config: &Config) -> Service {
        let (stop, stopped) = watch::channel(false);
        let (tx, progress) = watch::channel(Default::default());
        let config = config.clone();
        let task = tokio::spawn(async move { crate::service::run(&config, stopped, Some(tx)).await });
        Service { task, stop, progress }
    }

    fn landed(&self) -> u64 {
        self.progress.borrow().records
    }

    /// Like `kill -9`: no shutdown, no final commit. Returns what it had landed.
    async fn kill(&mut self) -> crate::source::ConsumeStats {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.progress.borrow().clone()
    }

    fn check(&mut self) -> Result<()> {
        if self.task.is_finished() {
            bail!("the service stopped on its own (see the log above)");
        }
        Ok(())
    }

    async fn stop(&mut self) -> Result<crate::source::ConsumeStats> {
        let _ = self.stop.send(true);
        (&mut self.task).await.context("the service task")?
    }
}

/// A progress line on a terminal, plain lines otherwise.
struct Progress {
    total: u64,
    tty: bool,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    fn new(total: u64) -> Progress {
        Progress { total, tty: std::io::stderr().is_terminal(), last: std::cell::Cell::new(Instant::now()) }
    }

    async fn update(&self, wh: &Warehouse, changes: u64, service: &Service) {
        let every = if self.tty { Duration::from_millis(250) } else { Duration::from_secs(3) };
        if self.last.get().elapsed() < every {
            return;
        }
        self.last.set(Instant::now());
        let merges = merge_stats(wh).await.map(|(n, _)| n).unwrap_or(0);
        let line =
            format!("  generated {changes}/{}  landed {} records  merges {merges}", self.total, service.landed());
        if self.tty {
            eprint!("\r{line:<78}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    fn line(&self, text: &str) {
        if self.tty {
            eprint!("\r{:<78}\r", "");
        }
        eprintln!("  {text}");
    }

    fn done(&self) {
        if self.tty {
            eprint!("\r{:<78}\r", "");
        }
    }
}

async fn merge_stats(wh: &Warehouse) -> Result<(i64, i64)> {
    let r = wh.pool.fetch(wh.sql.fixed("merge_stats")?, &[]).await?;
    let row = r.first().ok_or_else(|| anyhow!("merge_stats: no row"))?;
    Ok((row[0].as_i64().unwrap_or(0), row[1].as_i64().unwrap_or(0)))
}

async fn staged_rows(wh: &Warehouse, work: &Workload) -> Result<i64> {
    let mut n = 0;
    for t in &work.tables {
        let r = wh.pool.fetch(wh.sql.render("status_staging", &TableCtx::bare(t.spec.table), &[])?, &[]).await?;
        n += r.first().and_then(|r| r[0].as_i64()).unwrap_or(0);
    }
    Ok(n)
}

/// The replica against the model: (replica rows, descriptions of differences).
pub async fn compare(wh: &Warehouse, up: &workload::Upstream) -> Result<(usize, Vec<String>)> {
    let name = up.spec.table;
    let schema = wh.schema(name).await?.ok_or_else(|| anyhow!("no schema recorded for `{name}`"))?;
    let t = TableCtx::new(name, &schema);
    let rows = wh.pool.fetch(wh.sql.render("replica_rows", &t, &[])?, &[]).await?;
    let pos: Vec<usize> = up
        .spec
        .columns
        .iter()
        .map(|(c, _, _)| {
            t.columns.iter().position(|x| x.name == *c).ok_or_else(|| anyhow!("replica `{name}` lacks column {c}"))
        })
        .collect::<Result<_>>()?;
    let mut replica: HashMap<Vec<String>, Vec<Option<String>>> = HashMap::new();
    for r in &rows {
        let texts: Vec<Option<String>> = pos.iter().map(|&i| r[i].to_text()).collect();
        let key = up.spec.key.iter().map(|&k| texts[k].clone().unwrap_or_default()).collect();
        replica.insert(key, texts);
    }
    let mut problems = Vec::new();
    for (key, want) in &up.rows {
        let want: Vec<Option<String>> = want
            .iter()
            .map(|v| match v {
                crate::change::Value::Null => None,
                crate::change::Value::Text(s) => Some(s.clone()),
                crate::change::Value::Bytes(b) => {
                    let mut s = String::new();
                    crate::change::push_hex(&mut s, b);
                    Some(s)
                }
            })
            .collect();
        match replica.remove(key) {
            None => problems.push(format!("missing {key:?}")),
            Some(got) if got != want => problems.push(format!("{key:?}: replica {got:?}, upstream {want:?}")),
            Some(_) => {}
        }
    }
    for key in replica.keys() {
        problems.push(format!("extra {key:?} (not upstream)"));
    }
    Ok((rows.len(), problems))
}
