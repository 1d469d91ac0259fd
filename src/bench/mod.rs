//! `tidemark bench`: tidemark against the physical limits, on the same machine, in one run.
//!
//! Every figure comes from the real thing: `tidemark run` / `tidemark merge` as child processes
//! of this binary (so their memory is their own), a Kafka broker given by `--brokers`, and a
//! PostgreSQL server given by `--postgres` (the bench makes and drops its own databases) or
//! SQLite files. Each limit is measured in the same run as tidemark, on the same rows:
//!
//! - landing: `tidemark run` landing N preloaded canal-json changes, against PostgreSQL's own
//!   binary `COPY … FROM STDIN` of the very staging rows it landed (SQLite: one
//!   `INSERT … SELECT` of them from a prepared table);
//! - merge: `tidemark merge` of N staged changes into a replica of N rows, against one
//!   hand-written `MERGE` (SQLite: one upsert and one delete) from an already de-duplicated,
//!   typed table, checked to give the same replica;
//! - freshness: `tidemark run` on a 1 s schedule under a steady stream; probes (rows of a
//!   warehouse id no other row has) are watched until visible in the replica;
//! - memory: each child's peak resident set (VmHWM).

pub mod order_line;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use minijinja::Value as TmplValue;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};
use sqlx::Connection;

use crate::db::{Bind, Pool};
use crate::produce::send_waiting;
use crate::sql::{safe, TableCtx};
use crate::warehouse::Warehouse;
use order_line::{Generator, TABLE};

#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Changes per landing and merge measurement (the replica holds as many rows).
    #[arg(long, default_value_t = 1_000_000)]
    pub changes: u64,
    /// Runs of each measurement; figures are medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// A Kafka broker (bootstrap servers) the bench may create topics on.
    #[arg(long)]
    pub brokers: String,
    /// A PostgreSQL server (15+) the bench may create and drop databases on.
    #[arg(long)]
    pub postgres: String,
    /// Where SQLite files and configs go.
    #[arg(long, default_value = "target/bench")]
    pub dir: PathBuf,
    /// Freshness: changes per second, steady ...
    #[arg(long, default_value_t = 20_000)]
    pub rate: u64,
    /// ... for this many seconds.
    #[arg(long, default_value_t = 60)]
    pub freshness_secs: u64,
    /// Partitions per topic.
    #[arg(long, default_value_t = 8)]
    pub partitions: i32,
}

/// One measurement's runs.
#[derive(Debug, Default, Clone)]
struct Runs(Vec<f64>);

impl Runs {
    fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The median of the run-by-run ratios `self / other` (each ratio from one run).
    fn ratio_to(&self, other: &Runs) -> f64 {
        Runs(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect()).median()
    }

    fn list(&self, f: impl Fn(f64) -> String) -> String {
        self.0.iter().map(|x| f(*x)).collect::<Vec<_>>().join(", ")
    }
}

/// What a ratio row is held to: a target, or only a note on what the row shows.
enum Goal {
    AtLeast(f64),
    Note(&'static str),
}

#[derive(Debug, Default)]
struct Report {
    rows: Vec<[String; 6]>,
    details: Vec<String>,
    met: bool,
}

impl Report {
    fn row(&mut self, what: &str, tidemark: String, limit: String, ratio: String, target: &str, met: Option<bool>) {
        let mark = match met {
            Some(true) => "met",
            Some(false) => {
                self.met = false;
                "MISSED"
            }
            None => "",
        };
        self.rows.push([what.into(), tidemark, limit, ratio, target.into(), mark.into()]);
    }

    /// A row of tidemark against its limit: `ratio` (the median of each run's own ratio) held to
    /// `goal`.
    fn versus(&mut self, what: &str, tidemark: String, limit: String, ratio: f64, goal: Goal) {
        match goal {
            Goal::AtLeast(t) => {
                self.row(what, tidemark, limit, format!("{ratio:.2}"), &format!("≥ {t:.2}"), Some(ratio >= t))
            }
            Goal::Note(note) => self.row(what, tidemark, limit, format!("{ratio:.2}"), note, None),
        }
    }

    fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | tidemark | limit | tidemark / limit | target | |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out
    }
}

/// Runs the benchmark and prints its table; `Ok(false)` when a target is missed.
pub async fn run(args: &BenchArgs) -> Result<bool> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let started = Instant::now();
    let mut report = Report { met: true, ..Default::default() };
    let n = args.changes;
    eprintln!(
        "tidemark bench: {n} changes, {} runs, broker {}, PostgreSQL {}",
        args.runs,
        args.brokers,
        crate::db::redact_url(&args.postgres)
    );

    // The stream, preloaded once: N changes of order_line on `partitions` partitions.
    let topic = format!("bench_order_line_{}_{}", n, std::process::id());
    create_topic(&args.brokers, &topic, args.partitions).await?;
    let t = Instant::now();
    let mut gen = Generator::new(&topic, n, args.partitions, 20261125, true);
    let mut produced = 0u64;
    produce(&args.brokers, &topic, || {
        (produced < n).then(|| {
            produced += 1;
            gen.next_change()
        })
    })?;
    let preload_s = t.elapsed().as_secs_f64();
    report.details.push(format!("preloaded {n} changes into {topic} in {preload_s:.1} s"));

    // PostgreSQL: landing, then the merge on the last run's staging.
    // tidemark/s, COPY/s, RSS MiB, the broker's own delivery/s, tidemark without the broker/s
    let mut land = (Runs::default(), Runs::default(), Runs::default(), Runs::default(), Runs::default());
    let mut last_db = None;
    for r in 0..args.runs {
        let db = PgDb::create(&args.postgres, &format!("land{r}")).await?;
        let (rate, rss) =
            land_once(args, &topic, &db.url, &format!("bench-land-{r}-{}", std::process::id()), n).await?;
        let copy = pg_copy_limit(&db.url).await?;
        let broker = broker_limit(&args.brokers, &topic, n)?;
        let direct = PgDb::create(&args.postgres, &format!("direct{r}")).await?;
        let in_process = land_without_broker(&direct.url, &topic, n, args.partitions).await?;
        direct.drop_db().await;
        eprintln!(
            "  PostgreSQL landing run {}: {rate:.0} changes/s (broker alone {broker:.0}/s; without the broker \
             {in_process:.0}/s), COPY {copy:.0} rows/s, peak RSS {rss:.0} MiB",
            r + 1
        );
        land.0 .0.push(rate);
        land.1 .0.push(copy);
        land.2 .0.push(rss);
        land.3 .0.push(broker);
        land.4 .0.push(in_process);
        if let Some(old) = last_db.replace(db) {
            old.drop_db().await;
        }
    }
    report.versus(
        &format!("PostgreSQL landing, {n} changes"),
        format!("{:.0} changes/s", land.0.median()),
        format!("COPY: {:.0} rows/s", land.1.median()),
        land.0.ratio_to(&land.1),
        Goal::AtLeast(0.5),
    );
    report.versus(
        &format!("PostgreSQL landing without the broker, {n} changes"),
        format!("{:.0} changes/s", land.4.median()),
        format!("COPY: {:.0} rows/s", land.1.median()),
        land.4.ratio_to(&land.1),
        Goal::Note("(decode + stage + COPY)"),
    );
    report.row(
        &format!("the broker alone, {n} records"),
        format!("{:.0} records/s", land.3.median()),
        "-".into(),
        format!("landing / broker: {:.2}", land.0.ratio_to(&land.3)),
        "(what bounds landing)",
        None,
    );
    report.details.push(format!(
        "PostgreSQL landing runs: tidemark {} changes/s; COPY {} rows/s; the broker alone {} records/s; \
         tidemark without the broker {} changes/s",
        land.0.list(|x| format!("{x:.0}")),
        land.1.list(|x| format!("{x:.0}")),
        land.3.list(|x| format!("{x:.0}")),
        land.4.list(|x| format!("{x:.0}"))
    ));

    let db = last_db.ok_or_else(|| anyhow!("no landing run"))?;
    let merge = merge_runs(args, &db.url, n).await?;
    db.drop_db().await;
    report.versus(
        &format!("PostgreSQL merge, {n} staged into {n} rows"),
        format!("{:.2} s", merge.0.median()),
        format!("one MERGE: {:.2} s", merge.1.median()),
        merge.1.ratio_to(&merge.0),
        Goal::AtLeast(0.7),
    );
    report.details.push(format!(
        "PostgreSQL merge runs: tidemark {} s (the whole `tidemark merge` process: {} s); hand-written MERGE {} s",
        merge.0.list(|x| format!("{x:.2}")),
        merge.3.list(|x| format!("{x:.2}")),
        merge.1.list(|x| format!("{x:.2}"))
    ));
    report.details.push(format!("PostgreSQL merge statements, per run: {}", merge.4.join("; ")));

    // Freshness at a steady rate on a 1 s schedule.
    let mut fresh = (Runs::default(), Runs::default(), Runs::default(), Runs::default());
    for r in 0..args.runs {
        let db = PgDb::create(&args.postgres, &format!("fresh{r}")).await?;
        let f = freshness_once(args, &db.url, r).await?;
        eprintln!(
            "  freshness run {}: p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} probes; {:.0} changes/s produced; peak RSS {:.0} MiB",
            r + 1,
            f.p50,
            f.p99,
            f.max,
            f.probes,
            f.rate,
            f.rss
        );
        fresh.0 .0.push(f.p50);
        fresh.1 .0.push(f.p99);
        fresh.2 .0.push(f.max);
        fresh.3 .0.push(f.rss);
        db.drop_db().await;
    }
    report.row(
        &format!("freshness, {}/s for {} s, 1 s schedule", args.rate, args.freshness_secs),
        format!("p50 {:.2} s, p99 {:.2} s, max {:.2} s", fresh.0.median(), fresh.1.median(), fresh.2.median()),
        "-".into(),
        "-".into(),
        "p99 ≤ 3 s",
        Some(fresh.1.median() <= 3.0),
    );

    let peak = [land.2.median(), merge.2.median(), fresh.3.median()];
    let worst = peak.iter().copied().fold(0.0, f64::max);
    report.row(
        "peak RSS (landing / merge / freshness)",
        format!("{:.0} / {:.0} / {:.0} MiB", peak[0], peak[1], peak[2]),
        "-".into(),
        "-".into(),
        "≤ 300 MiB",
        Some(worst <= 300.0),
    );

    // SQLite: landing and merge against its own limits.
    let mut lite =
        (Runs::default(), Runs::default(), Runs::default(), Runs::default(), Runs::default(), Runs::default());
    let mut lite_steps = Vec::new();
    for r in 0..args.runs {
        let path = args.dir.join(format!("bench-{r}.db"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        let url = format!("sqlite://{}", path.display());
        let (rate, rss) = land_once(args, &topic, &url, &format!("bench-lite-{r}-{}", std::process::id()), n).await?;
        let insert = sqlite_insert_limit(&url).await?;
        let direct_path = args.dir.join(format!("bench-direct-{r}.db"));
        let in_process =
            land_without_broker(&format!("sqlite://{}", direct_path.display()), &topic, n, args.partitions).await?;
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", direct_path.display()));
        }
        let m = merge_runs(&BenchArgs { runs: 1, ..args.clone() }, &url, n).await?;
        eprintln!(
            "  SQLite run {}: landing {rate:.0} changes/s (without the broker {in_process:.0}/s; INSERT…SELECT {insert:.0} rows/s), merge {:.2} s (limit {:.2} s), peak RSS {rss:.0} MiB",
            r + 1,
            m.0.median(),
            m.1.median()
        );
        lite.0 .0.push(rate);
        lite.1 .0.push(insert);
        lite.2 .0.extend(m.0 .0);
        lite_steps.extend(m.4);
        lite.3 .0.extend(m.1 .0);
        lite.4 .0.push(rss.max(m.2.median()));
        lite.5 .0.push(in_process);
        let _ = std::fs::remove_file(&path);
    }
    report.versus(
        &format!("SQLite landing, {n} changes"),
        format!("{:.0} changes/s", lite.0.median()),
        format!("INSERT…SELECT: {:.0} rows/s", lite.1.median()),
        lite.0.ratio_to(&lite.1),
        Goal::AtLeast(0.5),
    );
    report.versus(
        &format!("SQLite landing without the broker, {n} changes"),
        format!("{:.0} changes/s", lite.5.median()),
        format!("INSERT…SELECT: {:.0} rows/s", lite.1.median()),
        lite.5.ratio_to(&lite.1),
        Goal::Note("(decode + stage + INSERT)"),
    );
    report.versus(
        &format!("SQLite merge, {n} staged into {n} rows"),
        format!("{:.2} s", lite.2.median()),
        format!("upsert + delete: {:.2} s", lite.3.median()),
        lite.3.ratio_to(&lite.2),
        Goal::AtLeast(0.7),
    );
    report.details.push(format!("SQLite peak RSS: {} MiB", lite.4.list(|x| format!("{x:.0}"))));
    report.details.push(format!("SQLite merge statements, per run: {}", lite_steps.join("; ")));

    println!("\n{}", report.markdown());
    for d in &report.details {
        println!("- {d}");
    }
    println!("- total {:.0} s", started.elapsed().as_secs_f64());
    Ok(report.met)
}

async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().context("creating a Kafka admin client")?;
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&t], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .with_context(|| format!("creating topic {topic} on {brokers}"))?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Produces every change `next` yields to `topic`, and waits until all are acknowledged.
fn produce(brokers: &str, topic: &str, mut next: impl FnMut() -> Option<order_line::Change>) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "262144")
        .create()
        .context("creating the bench's producer")?;
    while let Some(c) = next() {
        send(&producer, topic, &c)?;
    }
    producer.flush(Duration::from_secs(300)).context("flushing the bench's producer")?;
    Ok(())
}

fn send(producer: &ThreadedProducer<DefaultProducerContext>, topic: &str, c: &order_line::Change) -> Result<()> {
    send_waiting(producer, topic, c.partition, &c.payload).map_err(|e| anyhow!("producing to {topic}: {e}"))
}

/// A database of its own on the bench's PostgreSQL server.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn create(admin: &str, what: &str) -> Result<PgDb> {
        let name = format!("tidemark_bench_{}_{what}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {}", crate::db::redact_url(admin)))?;
        for stmt in [format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"), format!("CREATE DATABASE {name}")] {
            sqlx::raw_sql(safe(stmt)).execute(&mut conn).await.with_context(|| format!("creating database {name}"))?;
        }
        let base = admin.split('?').next().unwrap_or(admin);
        let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
        Ok(PgDb { admin: admin.to_string(), url: format!("{base}/{name}"), name })
    }

    async fn drop_db(self) {
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(safe(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)))
                .execute(&mut conn)
                .await;
        }
    }
}

/// A config for the child processes.
fn write_config(args: &BenchArgs, topic: &str, url: &str, group: &str, schedule: &str) -> Result<PathBuf> {
    let path = args.dir.join(format!("{group}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = {group:?}\n\
             [kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = {schedule:?}\n\
             [[tables]]\nname = {TABLE:?}\ntopic = {topic:?}\n",
            args.brokers
        ),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A child `tidemark` process and its peak resident set, sampled until it exits.
struct Measured {
    child: Child,
    peak_kib: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Measured {
    fn spawn(config: &Path, args: &[&str], log: &Path) -> Result<Measured> {
        let exe = std::env::current_exe().context("finding the tidemark binary")?;
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exe)
            .args(["--log-format", "text", "--config"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info,librdkafka=warn,sqlx=warn,tidemark::merge=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting a tidemark child process")?;
        let (peak_kib, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (pid, peak, stop) = (child.id(), peak_kib.clone(), done.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = vm_hwm(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(Measured { child, peak_kib, done })
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    fn terminate(&mut self) -> Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("a tidemark child did not stop within 60 s of SIGTERM");
            }
            if let Some(kib) = vm_hwm(self.child.id()) {
                self.peak_kib.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.done.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The peak resident set of a process, KiB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

async fn landed(wh: &Warehouse) -> i64 {
    wh.offsets().await.map(|o| o.values().sum()).unwrap_or(0)
}

/// `tidemark run` landing the preloaded topic into `url`: (changes/s, peak RSS MiB). The rate
/// counts from the first landed batch to the last, so group joining is not in it.
async fn land_once(args: &BenchArgs, topic: &str, url: &str, group: &str, n: u64) -> Result<(f64, f64)> {
    let config = write_config(args, topic, url, group, "0 0 0 1 1 *")?;
    let wh = Warehouse::open(url).await?;
    let mut child = Measured::spawn(&config, &["run"], &args.dir.join(format!("{group}.log")))?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (mut t0, mut at_t0) = (None, 0i64);
    loop {
        let now = landed(&wh).await;
        if now > 0 && t0.is_none() {
            (t0, at_t0) = (Some(Instant::now()), now);
        }
        if now >= n as i64 {
            break;
        }
        if child.child.try_wait()?.is_some() {
            bail!("tidemark run stopped early (see {}/{group}.log)", args.dir.display());
        }
        if Instant::now() > deadline {
            bail!("tidemark run did not land {n} changes in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t0.map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    child.terminate()?;
    wh.pool.close().await;
    Ok(((n as i64 - at_t0) as f64 / elapsed, child.peak_mib()))
}

/// The broker's own delivery rate: every record of `topic` read by a bare librdkafka consumer
/// that does nothing with them: records/s.
fn broker_limit(brokers: &str, topic: &str, n: u64) -> Result<f64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("bench-raw-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a bare consumer")?;
    consumer.subscribe(&[topic]).context("subscribing the bare consumer")?;
    let (mut read, mut t0) = (0u64, None);
    let deadline = Instant::now() + Duration::from_secs(1800);
    while read < n {
        if Instant::now() > deadline {
            bail!("the bare consumer read {read} of {n} records in 30 minutes");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.context("the bare consumer")?;
            t0.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    Ok(read as f64 / t0.map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN))
}

/// tidemark's own landing work — decode, stage, COPY — fed the same changes from memory in
/// batches of 20,000 records, as they come from Kafka: changes/s.
async fn land_without_broker(url: &str, topic: &str, n: u64, partitions: i32) -> Result<f64> {
    let config = crate::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[[tables]]\nname = {TABLE:?}\ntopic = {topic:?}\n"
    ))?;
    let wh = Warehouse::open(url).await?;
    let mut lander =
        crate::staging::Lander::new(wh.clone(), config.tables()?, crate::codec::ValueContext::default(), None).await?;
    let mut gen = Generator::new(topic, n, partitions, 20261125, true);
    let topic: Arc<str> = topic.into();
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    let mut batches = Vec::new();
    let mut produced = 0;
    while produced < n {
        let batch: Vec<crate::staging::RawRecord> = (0..20_000.min(n - produced))
            .map(|_| {
                let c = gen.next_change();
                let offset = offsets.entry(c.partition).or_default();
                *offset += 1;
                crate::staging::RawRecord {
                    topic: topic.clone(),
                    partition: c.partition,
                    offset: *offset - 1,
                    key: None,
                    value: Some(c.payload),
                }
            })
            .collect();
        produced += batch.len() as u64;
        batches.push(batch);
    }
    let t0 = Instant::now();
    for b in &batches {
        lander.land(b).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    wh.pool.close().await;
    Ok(n as f64 / secs)
}

/// PostgreSQL's binary COPY of the staging rows just landed, from a file, into an identical
/// table: rows/s.
async fn pg_copy_limit(url: &str) -> Result<f64> {
    let wh = Warehouse::open(url).await?;
    let Pool::Pg(pool) = &wh.pool else { bail!("not PostgreSQL") };
    let staging = TableCtx::bare(TABLE);
    let copy_target = TableCtx { staging: "bench_copy".into(), ..TableCtx::bare(TABLE) };
    let mut conn = pool.acquire().await?;
    // The rows, as tidemark sent them, into a file.
    let file = std::env::temp_dir().join(format!("tidemark-bench-{}.copy", std::process::id()));
    {
        use futures_util::TryStreamExt;
        let mut out = Vec::new();
        let mut stream = (*conn).copy_out_raw(&wh.sql.render("bench_copy_out", &staging, &[])?).await?;
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        std::fs::write(&file, &out).with_context(|| format!("writing {}", file.display()))?;
    }
    sqlx::raw_sql(safe(wh.sql.render("staging_table", &copy_target, &[])?)).execute(&mut *conn).await?;
    let counted = wh.pool.fetch(wh.sql.render("status_staging", &staging, &[])?, &[]).await?;
    let rows = counted.first().and_then(|r| r[0].as_i64()).unwrap_or(0);
    let data = std::fs::read(&file)?;
    let t = Instant::now();
    let mut copy = (*conn).copy_in_raw(&wh.sql.render("land_copy", &copy_target, &[])?).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    drop(conn);
    wh.pool.close().await;
    Ok(rows as f64 / secs)
}

/// SQLite's own limit for landing: one `INSERT … SELECT` of the landed staging rows into an
/// identical table: rows/s.
async fn sqlite_insert_limit(url: &str) -> Result<f64> {
    let wh = Warehouse::open(url).await?;
    let copy_target = TableCtx { staging: "bench_copy".into(), ..TableCtx::bare(TABLE) };
    wh.pool.execute(wh.sql.render("staging_table", &copy_target, &[])?, &[]).await?;
    let t = Instant::now();
    let mut tx = wh.pool.begin(wh.sql.fixed("merge_begin")?).await?;
    let rows = tx.execute(wh.sql.render("bench_copy", &TableCtx::bare(TABLE), &[])?, &[]).await?;
    tx.commit().await?;
    let secs = t.elapsed().as_secs_f64();
    wh.pool.close().await;
    Ok(rows as f64 / secs)
}

/// Merge runs on the staging landed in `url`: (tidemark s, limit s, tidemark peak RSS MiB,
/// tidemark wall time of the whole `tidemark merge` process s, its time per statement).
/// Each run starts from the same replica (N rows) and the same staged changes; the limit runs
/// from a de-duplicated, typed copy of them, and must give the same replica.
async fn merge_runs(args: &BenchArgs, url: &str, n: u64) -> Result<(Runs, Runs, Runs, Runs, Vec<String>)> {
    let wh = Warehouse::open(url).await?;
    let sql = &wh.sql;
    let schema = wh.schema(TABLE).await?.ok_or_else(|| anyhow!("nothing landed for {TABLE}"))?;
    let t = TableCtx::new(TABLE, &schema);
    let named = |a: &str, b: &str| [("a", TmplValue::from(a)), ("b", TmplValue::from(b))];
    // The starting point: the replica with N rows, the staged changes, both saved.
    wh.pool.execute(sql.render("replica_table", &t, &[])?, &[]).await?;
    wh.pool.execute(sql.render("bench_fill", &t, &[])?, &[Bind::I64(n as i64)]).await.context("filling the replica")?;
    wh.pool.execute(sql.render("bench_save", &t, &named(TABLE, "bench_replica_saved"))?, &[]).await?;
    wh.pool.execute(sql.render("bench_save", &t, &named(&t.staging, "bench_staging_saved"))?, &[]).await?;
    let reference = TableCtx { name: "bench_ref".into(), ..t.clone() };
    wh.pool.execute(sql.render("replica_table", &reference, &[])?, &[]).await?;
    // The limit's input: tidemark's own typed last-change-per-key, made once.
    prepare_source(&wh, &t).await?;

    let mut out = (Runs::default(), Runs::default(), Runs::default(), Runs::default(), Vec::new());
    for r in 0..args.runs {
        for (saved, table) in [
            ("bench_replica_saved", TABLE),
            ("bench_staging_saved", t.staging.as_str()),
            ("bench_replica_saved", "bench_ref"),
        ] {
            let mut tx = wh.pool.begin(sql.fixed("merge_begin")?).await?;
            tx.execute(sql.render("bench_clear", &t, &named(saved, table))?, &[]).await?;
            tx.execute(sql.render("bench_restore", &t, &named(saved, table))?, &[]).await?;
            tx.commit().await?;
        }
        wh.pool.execute(sql.render("bench_analyze", &t, &[])?, &[]).await?;

        let config =
            write_config(args, "unused", url, &format!("bench-merge-{r}-{}", std::process::id()), "0 0 0 1 1 *")?;
        let t0 = Instant::now();
        let mut child =
            Measured::spawn(&config, &["merge", "--table", TABLE], &args.dir.join(format!("bench-merge-{r}.log")))?;
        let status = loop {
            if let Some(s) = child.child.try_wait()? {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let wall = t0.elapsed().as_secs_f64();
        child.done.store(true, Ordering::Relaxed);
        let mut stdout = String::new();
        if let Some(mut o) = child.child.stdout.take() {
            std::io::Read::read_to_string(&mut o, &mut stdout)?;
        }
        // Its own figure ("… in N ms"): the merge, without starting a process and connecting.
        let reported = stdout
            .rsplit_once(" in ")
            .and_then(|(_, rest)| rest.split_whitespace().next()?.parse::<f64>().ok())
            .map(|ms| ms / 1000.0);
        let Some(secs) = reported.filter(|_| status.success()) else {
            bail!("tidemark merge failed: {stdout} (see {}/bench-merge-{r}.log)", args.dir.display());
        };
        // Where its time went, from its own log ("merge step … statement=… ms=…").
        let log = std::fs::read_to_string(args.dir.join(format!("bench-merge-{r}.log"))).unwrap_or_default();
        let steps: Vec<String> = log
            .lines()
            .filter(|l| l.contains("merge step"))
            .filter_map(|l| {
                let field =
                    |k: &str| l.split(k).nth(1)?.split_whitespace().next().map(|v| v.trim_matches('"').to_string());
                Some(format!("{} {} ms", field("statement=")?, field("ms=")?))
            })
            .collect();
        out.4.push(steps.join(", "));
        let limit = reference_merge(&wh, &t).await?;
        let diff = wh.pool.fetch(sql.render("bench_differences", &t, &named(TABLE, "bench_ref"))?, &[]).await?;
        let diff = diff.first().and_then(|r| r[0].as_i64()).unwrap_or(-1);
        if diff != 0 {
            bail!("tidemark's merge and the hand-written one disagree on {diff} rows");
        }
        out.0 .0.push(secs);
        out.3 .0.push(wall);
        out.1 .0.push(limit);
        out.2 .0.push(child.peak_mib());
    }
    wh.pool.close().await;
    Ok(out)
}

/// `bench_src`: every staged change's last per key, typed — what tidemark's merge computes
/// before it applies, kept as a table of its own.
async fn prepare_source(wh: &Warehouse, t: &TableCtx) -> Result<()> {
    let sql = &wh.sql;
    let mut conn = wh.pool.acquire().await?;
    let mut tx = conn.begin(sql.fixed("merge_begin")?).await?;
    if sql.has("merge_drop_source") {
        tx.execute(sql.render("merge_drop_source", t, &[])?, &[]).await?;
    }
    tx.execute(sql.render("merge_source", t, &[])?, &[Bind::I64(i64::MAX)]).await.context("bench source")?;
    tx.execute(sql.render("bench_src", t, &[])?, &[]).await?;
    if sql.has("merge_drop_source") {
        tx.execute(sql.render("merge_drop_source", t, &[])?, &[]).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// The limit: the apply alone, from the prepared source, in one transaction: seconds.
async fn reference_merge(wh: &Warehouse, t: &TableCtx) -> Result<f64> {
    let sql = &wh.sql;
    let reference = TableCtx { name: "bench_ref".into(), ..t.clone() };
    let mut conn = wh.pool.acquire().await?;
    let mut tx = conn.begin(sql.fixed("merge_begin")?).await?;
    if sql.has("bench_src_temp") {
        tx.execute(sql.render("bench_src_temp", t, &[])?, &[]).await?;
    }
    let t0 = Instant::now();
    for step in ["bench_ref_delete", "bench_ref_apply"] {
        if sql.has(step) {
            tx.execute(sql.render(step, &reference, &[])?, &[]).await.with_context(|| format!("bench {step}"))?;
        }
    }
    tx.commit().await?;
    Ok(t0.elapsed().as_secs_f64())
}

struct Freshness {
    p50: f64,
    p99: f64,
    max: f64,
    probes: usize,
    rate: f64,
    rss: f64,
}

/// `tidemark run` on a 1 s schedule under a steady stream; every 200th change is a probe whose
/// visibility in the replica is watched every 20 ms.
async fn freshness_once(args: &BenchArgs, url: &str, r: usize) -> Result<Freshness> {
    let topic = format!("bench_fresh_{}_{r}", std::process::id());
    create_topic(&args.brokers, &topic, args.partitions).await?;
    let group = format!("bench-fresh-{r}-{}", std::process::id());
    let config = write_config(args, &topic, url, &group, "* * * * * *")?;
    let wh = Warehouse::open(url).await?;
    let mut child = Measured::spawn(&config, &["run"], &args.dir.join(format!("{group}.log")))?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let sent: Arc<std::sync::Mutex<BTreeMap<u64, u64>>> = Arc::default();
    let (brokers, rate, secs, partitions, sent_) =
        (args.brokers.clone(), args.rate, args.freshness_secs, args.partitions, sent.clone());
    let t_topic = topic.clone();
    let producer = std::thread::spawn(move || -> Result<f64> {
        let mut gen = Generator::new(&t_topic, 1_000_000, partitions, 7 + r as u64, false);
        let total = rate * secs;
        let start = Instant::now();
        let mut i = 0u64;
        produce(&brokers, &t_topic, || {
            if i >= total {
                return None;
            }
            i += 1;
            let c = if i % 200 == 0 {
                let (c, id) = gen.probe();
                if let Ok(mut s) = sent_.lock() {
                    s.insert(id, c.commit_ms);
                }
                c
            } else {
                gen.next_change()
            };
            let due = Duration::from_secs_f64(i as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
            Some(c)
        })?;
        Ok(total as f64 / start.elapsed().as_secs_f64())
    });

    let probe_sql = wh.sql.render("bench_probes", &TableCtx::bare(TABLE), &[])?;
    let mut seen: HashMap<u64, f64> = HashMap::new();
    // Probe ids count up from 1; the poll asks only for those from the lowest one not seen yet.
    let mut unseen = 1u64;
    let end = Instant::now() + Duration::from_secs(args.freshness_secs + 15);
    while Instant::now() < end {
        let now_ms = chrono::Utc::now().timestamp_millis() as f64;
        if let Ok(rows) = wh.pool.fetch(probe_sql.clone(), &[Bind::I64(unseen as i64)]).await {
            let sent = sent.lock().map_err(|_| anyhow!("probe list poisoned"))?;
            for row in rows {
                let Some(id) = row[0].as_i64() else { continue };
                if let (Some(commit), true) = (sent.get(&(id as u64)), !seen.contains_key(&(id as u64))) {
                    seen.insert(id as u64, (now_ms - *commit as f64) / 1000.0);
                }
            }
            while seen.contains_key(&unseen) {
                unseen += 1;
            }
            if producer.is_finished() && seen.len() >= sent.len() {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rate = producer.join().map_err(|_| anyhow!("the producer thread panicked"))??;
    child.terminate()?;
    wh.pool.close().await;
    let total = sent.lock().map_err(|_| anyhow!("probe list poisoned"))?.len();
    let mut lat: Vec<f64> = seen.into_values().collect();
    lat.sort_by(|a, b| a.total_cmp(b));
    if lat.len() < total {
        bail!("{} of {total} probes never became visible", total - lat.len());
    }
    let pct = |p: f64| lat.get(((lat.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    Ok(Freshness { p50: pct(0.50), p99: pct(0.99), max: pct(1.0), probes: lat.len(), rate, rss: child.peak_mib() })
}
