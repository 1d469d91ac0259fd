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

mod broker;
mod child;
mod freshness;
mod landing;
mod merging;
pub mod order_line;
mod report;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

use broker::{check_retained, MockBroker};
pub use broker::{serve as serve_broker, BrokerArgs};
use child::PgDb;
use landing::{
    broker_limit, create_topic, land_once, land_without_broker, pg_copy_limit, produce, sqlite_insert_limit,
};
use merging::{merge_runs, MergeRuns};
use order_line::Generator;
use report::{Goal, Report, Runs};

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
    /// Partitions of the topic on the second broker, librdkafka's mock cluster (it keeps at most
    /// 5 MiB per partition, so 1M changes need more of them; 0: no second broker).
    #[arg(long, default_value_t = 32)]
    pub mock_partitions: i32,
}

/// PostgreSQL landing's runs.
#[derive(Debug, Default)]
struct PgLanding {
    /// `tidemark run`, end to end, changes/s.
    tidemark: Runs,
    /// PostgreSQL's COPY of the same rows, rows/s.
    copy: Runs,
    peak_mib: Runs,
    /// The broker's own delivery to a consumer that does nothing, records/s.
    broker: Runs,
    /// tidemark's landing fed from memory, changes/s.
    without_broker: Runs,
    /// `tidemark run` end to end from the mock cluster, changes/s.
    mock: Runs,
    /// The mock cluster's own delivery to a consumer that does nothing, records/s.
    mock_broker: Runs,
    mock_peak_mib: Runs,
}

/// Freshness runs.
#[derive(Debug, Default)]
struct FreshnessRuns {
    p50: Runs,
    p99: Runs,
    max: Runs,
    peak_mib: Runs,
}

/// SQLite's runs.
#[derive(Debug, Default)]
struct SqliteRuns {
    landing: Runs,
    insert_limit: Runs,
    without_broker: Runs,
    merge_s: Runs,
    merge_limit_s: Runs,
    peak_mib: Runs,
    merge_steps: Vec<String>,
}

/// Runs the benchmark and prints its table; `Ok(false)` when a target is missed.
pub async fn run(args: &BenchArgs) -> Result<bool> {
    std::fs::create_dir_all(&args.dir).with_context(|| format!("creating {}", args.dir.display()))?;
    let started = Instant::now();
    let mut report = Report::default();
    let n = args.changes;
    eprintln!(
        "tidemark bench: {n} changes, {} runs, broker {}, PostgreSQL {}",
        args.runs,
        args.brokers,
        crate::config::redact::redact_url(&args.postgres)
    );
    let topic = preload(args, &mut report).await?;
    let mock = preload_mock(args, &topic, &mut report).await?;
    let (landing, db) = pg_landing(args, &topic, mock.as_ref()).await?;
    drop(mock);
    report_pg_landing(&mut report, n, &landing);
    let merge = merge_runs(args, &db.url, n).await?;
    db.drop_db().await;
    report_pg_merge(&mut report, n, &merge);
    let fresh = freshness(args, false).await?;
    let gated = freshness(args, true).await?;
    report_freshness(&mut report, args, &fresh, &gated);
    // f64::max of NaN (no mock runs) is the other figure.
    let land_peak = landing.peak_mib.median().max(landing.mock_peak_mib.median());
    let peak = [land_peak, merge.peak_mib.median(), fresh.peak_mib.median()];
    report.row(
        "peak RSS (landing / merge / freshness)",
        format!("{:.0} / {:.0} / {:.0} MiB", peak[0], peak[1], peak[2]),
        "-".into(),
        "-".into(),
        "≤ 300 MiB",
        Some(peak.iter().copied().fold(0.0, f64::max) <= 300.0),
    );
    let lite = sqlite(args, &topic).await?;
    report_sqlite(&mut report, n, &lite);

    println!("\n{}", report.markdown());
    for d in &report.details {
        println!("- {d}");
    }
    println!("- total {:.0} s", started.elapsed().as_secs_f64());
    Ok(report.met)
}

/// The stream, preloaded once: N changes of order_line on `partitions` partitions.
async fn preload(args: &BenchArgs, report: &mut Report) -> Result<String> {
    let n = args.changes;
    let topic = format!("bench_order_line_{}_{}", n, std::process::id());
    create_topic(&args.brokers, &topic, args.partitions).await?;
    let t = Instant::now();
    let mut gen = Generator::new(&topic, n, args.partitions, 20261125, true);
    let mut produced = 0u64;
    produce(&args.brokers, &topic, "none", || {
        (produced < n).then(|| {
            produced += 1;
            gen.next_change()
        })
    })?;
    report.details.push(format!("preloaded {n} changes into {topic} in {:.1} s", t.elapsed().as_secs_f64()));
    Ok(topic)
}

/// The same stream on the second broker, librdkafka's mock cluster in a process of its own
/// (zstd-compressed, on `--mock-partitions` partitions: it keeps 5 MiB of each); `None` when
/// `--mock-partitions 0`.
async fn preload_mock(args: &BenchArgs, topic: &str, report: &mut Report) -> Result<Option<MockBroker>> {
    if args.mock_partitions <= 0 {
        return Ok(None);
    }
    let n = args.changes;
    let mock = MockBroker::start(topic, args.mock_partitions)?;
    let t = Instant::now();
    let mut gen = Generator::new(topic, n, args.mock_partitions, 20261125, true);
    let mut produced = 0u64;
    produce(&mock.bootstrap, topic, "zstd", || {
        (produced < n).then(|| {
            produced += 1;
            gen.next_change()
        })
    })?;
    check_retained(&mock.bootstrap, topic, args.mock_partitions, n)?;
    report.details.push(format!(
        "preloaded the same {n} changes into librdkafka's mock cluster (its own process; {} partitions, \
         zstd) in {:.1} s",
        args.mock_partitions,
        t.elapsed().as_secs_f64()
    ));
    Ok(Some(mock))
}

/// PostgreSQL landing runs (from tansu, and from the mock cluster when there is one); the last
/// run's database is kept for the merge.
async fn pg_landing(args: &BenchArgs, topic: &str, mock: Option<&MockBroker>) -> Result<(PgLanding, PgDb)> {
    let n = args.changes;
    let mut out = PgLanding::default();
    let mut last_db: Option<PgDb> = None;
    for r in 0..args.runs {
        if let Some(mock) = mock {
            let db = PgDb::create(&args.postgres, &format!("mock{r}")).await?;
            let group = format!("bench-mock-{r}-{}", std::process::id());
            let landed = land_once(args, &mock.bootstrap, topic, &db.url, &group, n).await?;
            let delivered = broker_limit(&mock.bootstrap, topic, n)?;
            db.drop_db().await;
            eprintln!(
                "  PostgreSQL landing run {} from the mock cluster: {:.0} changes/s (the mock alone \
                 {delivered:.0}/s), peak RSS {:.0} MiB",
                r + 1,
                landed.changes_per_s,
                landed.peak_mib
            );
            out.mock.push(landed.changes_per_s);
            out.mock_broker.push(delivered);
            out.mock_peak_mib.push(landed.peak_mib);
        }
        let db = PgDb::create(&args.postgres, &format!("land{r}")).await?;
        let group = format!("bench-land-{r}-{}", std::process::id());
        let landed = land_once(args, &args.brokers, topic, &db.url, &group, n).await?;
        let copy = pg_copy_limit(&db.url).await?;
        let broker = broker_limit(&args.brokers, topic, n)?;
        let direct = PgDb::create(&args.postgres, &format!("direct{r}")).await?;
        let in_process = land_without_broker(&direct.url, topic, n, args.partitions).await?;
        direct.drop_db().await;
        eprintln!(
            "  PostgreSQL landing run {}: {:.0} changes/s (broker alone {broker:.0}/s; without the broker \
             {in_process:.0}/s), COPY {copy:.0} rows/s, peak RSS {:.0} MiB",
            r + 1,
            landed.changes_per_s,
            landed.peak_mib
        );
        out.tidemark.push(landed.changes_per_s);
        out.copy.push(copy);
        out.peak_mib.push(landed.peak_mib);
        out.broker.push(broker);
        out.without_broker.push(in_process);
        if let Some(old) = last_db.replace(db) {
            old.drop_db().await;
        }
    }
    let db = last_db.context("no landing run")?;
    Ok((out, db))
}

fn report_pg_landing(report: &mut Report, n: u64, land: &PgLanding) {
    report.versus(
        &format!("PostgreSQL landing, {n} changes"),
        format!("{:.0} changes/s", land.tidemark.median()),
        format!("COPY: {:.0} rows/s", land.copy.median()),
        land.tidemark.ratio_to(&land.copy),
        Goal::Note("(end to end: see the broker's row)"),
    );
    // Issue 17's targets: tidemark's own work ≥ 0.80 of COPY; end to end ≥ 0.95 of what the
    // broker alone delivers.
    report.versus(
        &format!("PostgreSQL landing without the broker, {n} changes"),
        format!("{:.0} changes/s", land.without_broker.median()),
        format!("COPY: {:.0} rows/s", land.copy.median()),
        land.without_broker.ratio_to(&land.copy),
        Goal::AtLeast(0.8),
    );
    let of_broker = land.tidemark.ratio_to(&land.broker);
    report.row(
        &format!("the broker alone (tansu), {n} records"),
        format!("{:.0} records/s", land.broker.median()),
        "-".into(),
        format!("landing / broker: {of_broker:.2}"),
        "≥ 0.95",
        Some(of_broker >= 0.95),
    );
    if !land.mock.0.is_empty() {
        report.versus(
            &format!("PostgreSQL landing from the mock cluster, {n} changes"),
            format!("{:.0} changes/s", land.mock.median()),
            format!("COPY: {:.0} rows/s", land.copy.median()),
            land.mock.ratio_to(&land.copy),
            Goal::Note("(end to end: see the next row)"),
        );
        let of_mock = land.mock.ratio_to(&land.mock_broker);
        report.row(
            &format!("the mock cluster alone, {n} records"),
            format!("{:.0} records/s", land.mock_broker.median()),
            "-".into(),
            format!("landing / broker: {of_mock:.2}"),
            "≥ 0.95",
            Some(of_mock >= 0.95),
        );
        // What the broker leaves of tidemark's own rate: the mock delivers faster than COPY
        // takes rows, so against it end to end is bounded by landing's own work.
        report.row(
            &format!("landing from the mock cluster / without the broker, {n} changes"),
            format!("{:.0} / {:.0} changes/s", land.mock.median(), land.without_broker.median()),
            "-".into(),
            format!("{:.2}", land.mock.ratio_to(&land.without_broker)),
            "reported",
            None,
        );
        report.details.push(format!(
            "PostgreSQL landing from the mock cluster: tidemark {} changes/s; the mock alone {} records/s; \
             peak RSS {} MiB",
            land.mock.whole(),
            land.mock_broker.whole(),
            land.mock_peak_mib.whole()
        ));
    }
    report.details.push(format!(
        "PostgreSQL landing runs: tidemark {} changes/s; COPY {} rows/s; the broker alone {} records/s; \
         tidemark without the broker {} changes/s",
        land.tidemark.whole(),
        land.copy.whole(),
        land.broker.whole(),
        land.without_broker.whole()
    ));
}

fn report_pg_merge(report: &mut Report, n: u64, merge: &MergeRuns) {
    report.versus(
        &format!("PostgreSQL merge, {n} staged into {n} rows"),
        format!("{:.2} s", merge.tidemark_s.median()),
        format!("one MERGE: {:.2} s", merge.limit_s.median()),
        merge.limit_s.ratio_to(&merge.tidemark_s),
        Goal::AtLeast(0.7),
    );
    report.details.push(format!(
        "PostgreSQL merge runs: tidemark {} s (the whole `tidemark merge` process: {} s); hand-written MERGE {} s",
        merge.tidemark_s.hundredths(),
        merge.wall_s.hundredths(),
        merge.limit_s.hundredths()
    ));
    report.details.push(format!("PostgreSQL merge statements, per run: {}", merge.steps.join("; ")));
}

/// The freshness rows: without watermarks (the target), and gated by a watermark a second
/// (reported: the consistent point trails upstream by up to a watermark interval).
fn report_freshness(report: &mut Report, args: &BenchArgs, fresh: &FreshnessRuns, gated: &FreshnessRuns) {
    let figure = |f: &FreshnessRuns| {
        format!("p50 {:.2} s, p99 {:.2} s, max {:.2} s", f.p50.median(), f.p99.median(), f.max.median())
    };
    report.row(
        &format!("freshness, {}/s for {} s, 1 s schedule", args.rate, args.freshness_secs),
        figure(fresh),
        "-".into(),
        "-".into(),
        "p99 ≤ 1.5 s",
        Some(fresh.p99.median() <= 1.5),
    );
    report.row(
        "freshness, the same gated by a watermark a second",
        figure(gated),
        "-".into(),
        "-".into(),
        "reported",
        None,
    );
}

/// Freshness at a steady rate on a 1 s schedule; `gated`: with watermarks, merges wait for them.
async fn freshness(args: &BenchArgs, gated: bool) -> Result<FreshnessRuns> {
    let mut out = FreshnessRuns::default();
    for r in 0..args.runs {
        let db = PgDb::create(&args.postgres, &format!("fresh{r}{}", if gated { "g" } else { "" })).await?;
        let f = freshness::freshness_once(args, &db.url, r, gated).await?;
        eprintln!(
            "  freshness run {}{}: p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} probes; {:.0} changes/s produced; peak RSS {:.0} MiB",
            r + 1,
            if gated { " (gated by watermarks)" } else { "" },
            f.p50,
            f.p99,
            f.max,
            f.probes,
            f.rate,
            f.peak_mib
        );
        out.p50.push(f.p50);
        out.p99.push(f.p99);
        out.max.push(f.max);
        out.peak_mib.push(f.peak_mib);
        db.drop_db().await;
    }
    Ok(out)
}

/// Removes an SQLite database and its WAL files.
fn remove_sqlite(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

/// SQLite: landing and merge against its own limits.
async fn sqlite(args: &BenchArgs, topic: &str) -> Result<SqliteRuns> {
    let n = args.changes;
    let mut out = SqliteRuns::default();
    for r in 0..args.runs {
        let path = args.dir.join(format!("bench-{r}.db"));
        remove_sqlite(&path);
        let url = format!("sqlite://{}", path.display());
        let group = format!("bench-lite-{r}-{}", std::process::id());
        let landed = land_once(args, &args.brokers, topic, &url, &group, n).await?;
        let insert = sqlite_insert_limit(&url).await?;
        let direct_path = args.dir.join(format!("bench-direct-{r}.db"));
        let in_process =
            land_without_broker(&format!("sqlite://{}", direct_path.display()), topic, n, args.partitions).await?;
        remove_sqlite(&direct_path);
        let m = merge_runs(&BenchArgs { runs: 1, ..args.clone() }, &url, n).await?;
        eprintln!(
            "  SQLite run {}: landing {:.0} changes/s (without the broker {in_process:.0}/s; INSERT…SELECT {insert:.0} rows/s), merge {:.2} s (limit {:.2} s), peak RSS {:.0} MiB",
            r + 1,
            landed.changes_per_s,
            m.tidemark_s.median(),
            m.limit_s.median(),
            landed.peak_mib
        );
        out.landing.push(landed.changes_per_s);
        out.insert_limit.push(insert);
        out.merge_s.0.extend(m.tidemark_s.0);
        out.merge_steps.extend(m.steps);
        out.merge_limit_s.0.extend(m.limit_s.0);
        out.peak_mib.push(landed.peak_mib.max(m.peak_mib.median()));
        out.without_broker.push(in_process);
        remove_sqlite(&path);
    }
    Ok(out)
}

fn report_sqlite(report: &mut Report, n: u64, lite: &SqliteRuns) {
    report.versus(
        &format!("SQLite landing, {n} changes"),
        format!("{:.0} changes/s", lite.landing.median()),
        format!("INSERT…SELECT: {:.0} rows/s", lite.insert_limit.median()),
        lite.landing.ratio_to(&lite.insert_limit),
        Goal::Note("(end to end)"),
    );
    // Issue 17's targets: landing's own work ≥ 0.50 of INSERT…SELECT; merge ≥ 0.50.
    report.versus(
        &format!("SQLite landing without the broker, {n} changes"),
        format!("{:.0} changes/s", lite.without_broker.median()),
        format!("INSERT…SELECT: {:.0} rows/s", lite.insert_limit.median()),
        lite.without_broker.ratio_to(&lite.insert_limit),
        Goal::AtLeast(0.5),
    );
    report.versus(
        &format!("SQLite merge, {n} staged into {n} rows"),
        format!("{:.2} s", lite.merge_s.median()),
        format!("upsert + delete: {:.2} s", lite.merge_limit_s.median()),
        lite.merge_limit_s.ratio_to(&lite.merge_s),
        Goal::AtLeast(0.5),
    );
    report.details.push(format!("SQLite peak RSS: {} MiB", lite.peak_mib.whole()));
    report.details.push(format!("SQLite merge statements, per run: {}", lite.merge_steps.join("; ")));
}
