//! Crash safety, end to end: `tidemark run` as a child process against a real PostgreSQL and a
//! real Kafka broker process (tansu), killed again and again while TiCDC-style canal-json
//! streams in — SIGKILL at random instants, and aborts at the failpoints between the steps
//! whose order matters (staging written / landing committed but Kafka offsets not / replica
//! changed but staging not cleaned / merge committed) — and restarted each time. At the end
//! the replica must equal the generator's model of the upstream tables exactly, with nothing
//! left staged.
//!
//! `TIDEMARK_CRASH_CHANGES` (default 200000) and `TIDEMARK_CRASH_KILLS` (default 24) size it.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

use common::broker::Broker;
use common::process::Tidemark;
use common::stream::{self, PARTITIONS};
use common::TestDb;
use tidemark::demo::workload::{Rng, Workload};
use tidemark::warehouse::Warehouse;

const FAILPOINTS: [&str; 4] = ["land.written", "land.committed", "merge.applied", "merge.committed"];

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killed_at_any_instant_the_replica_still_converges() {
    let changes = env_u64("TIDEMARK_CRASH_CHANGES", 200_000);
    let min_kills = env_u64("TIDEMARK_CRASH_KILLS", 24);
    let t0 = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let broker = Broker::start().await;
    let db = TestDb::postgres().await;
    let work = Workload::new(20261125, PARTITIONS);
    let topics: Vec<String> = work.tables.iter().map(|t| t.spec.topic.clone()).collect();
    for t in &topics {
        broker.create_topic(t, PARTITIONS).await;
    }
    let config = stream::config(dir.path(), &broker.bootstrap, &db.url, &work, "[service]\nshutdown_timeout_s = 20");
    // Kept after the test (target/tmp/), to read when it fails.
    let log = common::process::log_path("crash.log");
    let wh = Warehouse::open(&db.url).await.expect("warehouse");

    // Spread the stream over the kills: a life lasts about six seconds (joining the group
    // takes most of it), and the stream must still be flowing at the last one.
    let rate = env_u64("TIDEMARK_CRASH_RATE", (changes / (min_kills * 6)).max(500));
    let done = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bootstrap, done) = (broker.bootstrap.clone(), done.clone());
        std::thread::spawn(move || stream::produce(bootstrap, work, changes, rate, done))
    };

    let mut rng = Rng::new(7);
    let mut kills: HashMap<&str, u64> = HashMap::new();
    let mut cycle = 0u64;
    let landed_now = |o: &HashMap<(String, i32), i64>| o.values().sum::<i64>();
    loop {
        let produced_all = done.load(Ordering::Relaxed) == u64::MAX;
        let total: u64 = kills.values().sum();
        if produced_all && total >= min_kills {
            break;
        }
        cycle += 1;
        // Every other life of the first sixteen ends at a failpoint (each point twice, while
        // the stream still flows), the others by SIGKILL at a random instant once landing.
        let point = (cycle % 2 == 0 && cycle <= 16 && !produced_all)
            .then(|| FAILPOINTS[(cycle / 2) as usize % FAILPOINTS.len()]);
        let spec = point.map(|p| format!("{p}={}", 1 + rng.below(3)));
        let env: Vec<(&str, &str)> = spec.as_deref().map(|s| vec![("TIDEMARK_FAILPOINTS", s)]).unwrap_or_default();
        let before = landed_now(&wh.offsets().await.unwrap_or_default());
        let mut run = Tidemark::run(&config, &log, &env);
        let born = Instant::now();
        if point.is_some() {
            match tokio::task::block_in_place(|| run.wait_for_exit(Duration::from_secs(30))) {
                Some(status) => {
                    assert!(!status.success(), "a failpoint ends the process abnormally");
                    *kills.entry(point.unwrap_or_default()).or_default() += 1;
                }
                None => {
                    run.kill9();
                    *kills.entry("SIGKILL (failpoint not reached in 30 s)").or_default() += 1;
                }
            }
            continue;
        }
        // Landing again: offsets moved past where they were (or nothing is left to land).
        loop {
            let now = landed_now(&wh.offsets().await.unwrap_or_default());
            if now > before || born.elapsed() > Duration::from_secs(30) {
                break;
            }
            assert!(run.try_wait().is_none(), "run exited on its own:\n{}", run.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_millis(200 + rng.below(2500))).await;
        assert!(run.try_wait().is_none(), "run exited on its own:\n{}", run.log_text());
        run.kill9();
        *kills.entry("SIGKILL").or_default() += 1;
    }
    let model = producer.join().expect("producer thread");

    // The last life: it lands everything the broker has, then stops on SIGTERM.
    let high = stream::high_watermarks(&broker.bootstrap, &topics);
    let mut run = Tidemark::run(&config, &log, &[]);
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(180)).await;
    stream::stop(&mut run, Duration::from_secs(30));
    if let Err(e) = std::panic::AssertUnwindSafe(stream::assert_converged(&wh, &config, &model)).catch_unwind().await {
        // The history of the first differing keys, from the broker, to tell why.
        for t in &model.tables {
            let (_, problems) = tidemark::demo::compare(&wh, t).await.expect("compare");
            for p in problems.iter().take(3) {
                let key: Vec<String> = p
                    .split('"')
                    .skip(1)
                    .step_by(2)
                    .take(t.spec.key.len())
                    .zip(&t.spec.key)
                    .map(|(v, &i)| format!("\"{}\":\"{v}\"", t.spec.columns[i].0))
                    .collect();
                eprintln!("history of {} {key:?}:", t.spec.table);
                for line in stream::history(&broker.bootstrap, &t.spec.topic, &key) {
                    eprintln!("  {line}");
                }
            }
        }
        eprintln!(
            "log: {}",
            std::fs::read_to_string(&log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("ERROR") || l.contains("WARN") || l.contains("failpoint"))
                .collect::<Vec<_>>()
                .join("\n")
        );
        std::panic::resume_unwind(e);
    }

    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    for p in FAILPOINTS {
        assert!(
            log_text.contains(&format!("failpoint {p} reached")),
            "failpoint {p} was never reached: kills {kills:?}"
        );
    }
    let total: u64 = kills.values().sum();
    let c = &model.counts;
    eprintln!(
        "crash test: {} changes ({} inserts, {} updates, {} deletes, {} deletes of unknown keys, {} key changes, \
         {} re-sent messages) at {rate}/s; {total} kills {kills:?}; {:.0} s",
        c.changes,
        c.inserts,
        c.updates,
        c.deletes,
        c.unknown_deletes,
        c.key_changes,
        c.resent,
        t0.elapsed().as_secs_f64()
    );
    assert!(total >= min_kills, "only {total} kills");
    drop(wh);
    db.drop_db().await;
}
