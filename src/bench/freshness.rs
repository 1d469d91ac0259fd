//! Freshness: `tidemark run` on a 1 s schedule under a steady stream; every 200th change is a
//! probe (a row of a warehouse id no other row has) whose visibility in the replica is watched
//! every 20 ms, from its upstream commit time.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::child::{write_config, Measured};
use super::landing::{create_topic, produce};
use super::order_line::{Generator, TABLE};
use super::BenchArgs;
use crate::from_row;
use crate::sql::{BenchStmt, Sql, TableCtx, BENCH_TEMPLATES};
use crate::warehouse::db::Bind;
use crate::warehouse::Warehouse;

/// One freshness run.
pub struct Freshness {
    pub p50: f64,
    pub p99: f64,
    pub max: f64,
    pub probes: usize,
    /// Changes per second actually produced.
    pub rate: f64,
    pub peak_mib: f64,
}

/// Probe id → its upstream commit time (epoch ms).
type Sent = Arc<Mutex<BTreeMap<u64, u64>>>;

/// A probe row visible in the replica.
struct Probe {
    probe: i64,
}
from_row!(Probe { probe });

/// One run; `gated`: the stream carries a watermark every second (as TiCDC's does) and the
/// merges wait for them.
pub async fn freshness_once(args: &BenchArgs, url: &str, r: usize, gated: bool) -> Result<Freshness> {
    let topic = format!("bench_fresh_{}_{r}_{}", std::process::id(), if gated { "gated" } else { "plain" });
    create_topic(&args.brokers, &topic, args.partitions).await?;
    let group = format!("{topic}-group");
    let config = write_config(args, &args.brokers, &topic, url, &group, "* * * * * *")?;
    let wh = Warehouse::open(url).await?;
    let mut child = Measured::spawn(&config, &["run"], &args.dir.join(format!("{group}.log")))?;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let sent: Sent = Arc::default();
    let producer = steady_stream(args, &topic, r, sent.clone(), gated);
    let seen = watch_probes(&wh, args, &sent, &producer).await?;
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
    Ok(Freshness { p50: pct(0.50), p99: pct(0.99), max: pct(1.0), probes: lat.len(), rate, peak_mib: child.peak_mib() })
}

/// `rate` changes a second for `freshness_secs` (and, `gated`, a watermark to every partition
/// each second), in a thread; returns the rate it achieved.
fn steady_stream(args: &BenchArgs, topic: &str, r: usize, sent: Sent, gated: bool) -> JoinHandle<Result<f64>> {
    let (brokers, rate, secs, partitions) = (args.brokers.clone(), args.rate, args.freshness_secs, args.partitions);
    let topic = topic.to_string();
    std::thread::spawn(move || -> Result<f64> {
        let mut gen = Generator::new(&topic, 1_000_000, partitions, 7 + r as u64, false);
        let total = rate * secs;
        let start = Instant::now();
        let mut i = 0u64;
        let mut marks: Vec<super::order_line::Change> = Vec::new();
        let mut next_mark = Duration::from_secs(1);
        produce(&brokers, &topic, "none", || {
            if let Some(m) = marks.pop() {
                return Some(m);
            }
            if gated && start.elapsed() >= next_mark {
                next_mark += Duration::from_secs(1);
                marks = gen.watermarks();
                return marks.pop();
            }
            if i >= total {
                if gated && next_mark != Duration::MAX {
                    // A last watermark, so that the last probes become mergeable.
                    next_mark = Duration::MAX;
                    marks = gen.watermarks();
                    return marks.pop();
                }
                return None;
            }
            i += 1;
            let c = if i % 200 == 0 {
                let (c, id) = gen.probe();
                if let Ok(mut s) = sent.lock() {
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
    })
}

/// Polls the replica for probes until every probe sent is seen (or time is up): probe id →
/// seconds from its upstream commit to the poll that saw it.
async fn watch_probes(
    wh: &Warehouse,
    args: &BenchArgs,
    sent: &Sent,
    producer: &JoinHandle<Result<f64>>,
) -> Result<HashMap<u64, f64>> {
    let sql = Sql::with_sets(wh.dialect(), &[BENCH_TEMPLATES]);
    let probe_sql = sql.render(BenchStmt::Probes, &TableCtx::bare(TABLE), &[])?;
    let mut seen: HashMap<u64, f64> = HashMap::new();
    // Probe ids count up from 1; the poll asks only for those from the lowest one not seen yet.
    let mut unseen = 1u64;
    let end = Instant::now() + Duration::from_secs(args.freshness_secs + 15);
    while Instant::now() < end {
        let now_ms = chrono::Utc::now().timestamp_millis() as f64;
        if let Ok(rows) = wh.pool.fetch_as::<Probe>(probe_sql.clone(), &[Bind::I64(unseen as i64)]).await {
            let sent = sent.lock().map_err(|_| anyhow!("probe list poisoned"))?;
            for row in rows {
                let id = row.probe as u64;
                if let (Some(commit), true) = (sent.get(&id), !seen.contains_key(&id)) {
                    seen.insert(id, (now_ms - *commit as f64) / 1000.0);
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
    Ok(seen)
}
