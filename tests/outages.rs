//! Outages, end to end: `tidemark run` as a child process with PostgreSQL, then the Kafka
//! broker (tansu), unreachable for 30 s mid-stream (a TCP proxy in between cuts every
//! connection and refuses new ones). tidemark must wait and retry by itself, say so once when
//! the outage starts and once when it ends (not per record or per retry), stop reading instead
//! of buffering without bound, show the outage in `status`, and converge.
//!
//! `TIDEMARK_OUTAGE_S` (default 30) sets the length of each outage.

mod common;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::broker::Broker;
use common::process::Tidemark;
use common::proxy::Proxy;
use common::stream::{self, PARTITIONS};
use common::TestDb;
use tidemark::demo::workload::Workload;
use tidemark::warehouse::Warehouse;

fn outage() -> Duration {
    Duration::from_secs(std::env::var("TIDEMARK_OUTAGE_S").ok().and_then(|v| v.parse().ok()).unwrap_or(30))
}

/// The workload of `seed` and its topics, created on `broker`.
async fn workload_on(broker: &Broker, seed: u64) -> (Workload, Vec<String>) {
    let work = Workload::new(seed, PARTITIONS);
    let topics: Vec<String> = work.tables.iter().map(|t| t.spec.topic.clone()).collect();
    for t in &topics {
        broker.create_topic(t, PARTITIONS).await;
    }
    (work, topics)
}

/// `tidemark status` (against the warehouse directly, as from another machine).
fn status(config: &std::path::Path) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap(), "status"])
        .output()
        .expect("status");
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// A proxy in front of the test database's server, and the database's url through it.
async fn behind_proxy(url: &str) -> (Proxy, String) {
    let host_port = url.split('@').nth(1).and_then(|r| r.split('/').next()).expect("host:port in the url");
    let pg_port: u16 = host_port.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(5432);
    let proxy = Proxy::start(format!("127.0.0.1:{pg_port}").parse().unwrap()).await;
    let proxied = url.replacen(&format!(":{pg_port}/"), &format!(":{}/", proxy.port), 1);
    assert_ne!(proxied, url, "the warehouse url goes through the proxy");
    (proxy, proxied)
}

/// `/readyz`: (status code, body); (0, "") when it does not answer.
async fn readyz(port: u16) -> (u16, String) {
    match reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
        Ok(r) => {
            let code = r.status().as_u16();
            (code, r.text().await.unwrap_or_default())
        }
        Err(_) => (0, String::new()),
    }
}

/// The service has landed and merged for a while: records of every table landed, and a few
/// merges done.
async fn running_for_a_while(wh: &Warehouse, run: &mut Tidemark) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(run.try_wait().is_none(), "{}", run.log_text());
        let landed: i64 = wh.offsets().await.map(|o| o.values().sum()).unwrap_or(0);
        if landed > 5000 && common::count(wh, "_tidemark_merges").await >= 4 {
            return;
        }
        assert!(Instant::now() < deadline, "no landing and merges within 60 s:\n{}", run.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn occurrences(log: &str, what: &str) -> usize {
    log.lines().filter(|l| l.contains(what)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_warehouse_goes_away_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start().await;
    let db = TestDb::postgres().await;
    let (proxy, proxied) = behind_proxy(&db.url).await;
    let (work, topics) = workload_on(&broker, 31).await;
    // A small prefetch bound, so that the stream outgrows it during the outage.
    let config = stream::config(dir.path(), &broker.bootstrap, &proxied, &work, "[http]\nlisten = \"127.0.0.1:0\"");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("[kafka.properties]\n", "[kafka.properties]\n\"queued.max.messages.kbytes\" = \"4096\"\n");
    std::fs::write(&config, text).unwrap();
    let direct = stream::config(dir.path(), &broker.bootstrap, &db.url, &work, "");
    let wh = Warehouse::open(&db.url).await.unwrap();

    let rate = 3000;
    let changes = rate * (outage().as_secs() + 25);
    let done = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bootstrap, done) = (broker.bootstrap.clone(), done.clone());
        std::thread::spawn(move || stream::produce(bootstrap, work, changes, rate, done))
    };
    let mut run = Tidemark::run(&config, &common::process::log_path("outage-warehouse.log"), &[]);
    let http = tokio::task::block_in_place(|| run.http_port(Duration::from_secs(30)));
    running_for_a_while(&wh, &mut run).await;

    proxy.cut();
    let cut_at = Instant::now();
    let landed_at_cut: i64 = wh.offsets().await.unwrap().values().sum();
    tokio::time::sleep(outage() / 3).await;
    let rss_early = run.rss_kib();
    let mut rss_max = rss_early;
    let mut said_not_responding = false;
    let mut unready = String::new();
    while cut_at.elapsed() < outage() {
        if unready.is_empty() {
            let (code, body) = readyz(http).await;
            if code == 503 && body.contains("the warehouse is unreachable") {
                unready = body;
            }
        }
        rss_max = rss_max.max(run.rss_kib());
        if !said_not_responding && cut_at.elapsed() > Duration::from_secs(20) {
            let s = status(&direct);
            said_not_responding = s.contains("NOT RESPONDING");
            assert!(said_not_responding || cut_at.elapsed() < outage() - Duration::from_secs(2), "{s}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let landed_in_outage: i64 = wh.offsets().await.unwrap().values().sum::<i64>() - landed_at_cut;
    proxy.restore();
    assert!(run.try_wait().is_none(), "run gave up during the outage:\n{}", run.log_text());

    let model = producer.join().unwrap();
    let high = stream::high_watermarks(&broker.bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(120)).await;
    assert!(!unready.is_empty(), "/readyz never said the warehouse was away");
    // A heartbeat after the outage says so, in status and /readyz.
    common::eventually("ready again after the outage, and status says running", Duration::from_secs(30), || async {
        readyz(http).await.0 == 200 && status(&direct).contains(": running")
    })
    .await;
    stream::stop(&mut run, Duration::from_secs(30));
    stream::assert_converged(&wh, &direct, &model).await;

    let log = run.log_text();
    eprintln!(
        "warehouse outage: RSS {rss_early} KiB early in it, at most {rss_max} KiB; {landed_in_outage} records landed \
         during it"
    );
    assert_eq!(landed_in_outage, 0, "nothing lands while the warehouse is away");
    assert_eq!(occurrences(&log, "the warehouse is unreachable"), 1, "said once:\n{log}");
    assert_eq!(occurrences(&log, "the warehouse is reachable again"), 1, "{log}");
    assert!(occurrences(&log, "merge failed") <= 2, "a failing merge is said once per table:\n{log}");
    assert!(
        rss_max < rss_early + 16 * 1024,
        "memory grew from {rss_early} to {rss_max} KiB while waiting: reading must pause"
    );
    assert!(said_not_responding, "status did not show the silent instance");
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_broker_goes_away_and_comes_back() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start().await;
    let proxy = &broker.proxy;
    let db = TestDb::postgres().await;
    let work = Workload::new(32, PARTITIONS);
    let topics: Vec<String> = work.tables.iter().map(|t| t.spec.topic.clone()).collect();
    for t in &topics {
        broker.create_topic(t, PARTITIONS).await;
    }
    let config = stream::config(dir.path(), &broker.bootstrap, &db.url, &work, "");
    let wh = Warehouse::open(&db.url).await.unwrap();

    let rate = 3000;
    let changes = rate * 20;
    let done = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bootstrap, done) = (broker.bootstrap.clone(), done.clone());
        std::thread::spawn(move || stream::produce(bootstrap, work, changes, rate, done))
    };
    let mut run = Tidemark::run(&config, &common::process::log_path("outage-kafka.log"), &[]);
    running_for_a_while(&wh, &mut run).await;

    proxy.cut();
    let cut_at = Instant::now();
    let mut waiting_shown = String::new();
    while cut_at.elapsed() < outage() {
        if waiting_shown.is_empty() && cut_at.elapsed() > Duration::from_secs(10) {
            let s = status(&config);
            if s.contains("waiting for Kafka since") {
                waiting_shown = s;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    proxy.restore();
    assert!(run.try_wait().is_none(), "run gave up during the outage:\n{}", run.log_text());

    tokio::task::block_in_place(|| run.wait_for_log("Kafka is reachable again", Duration::from_secs(30)));
    let model = producer.join().unwrap();
    let high = stream::high_watermarks(&broker.bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(120)).await;
    stream::stop(&mut run, Duration::from_secs(30));
    stream::assert_converged(&wh, &config, &model).await;

    let log = run.log_text();
    assert!(!waiting_shown.is_empty(), "status never said it waits for Kafka:\n{}", status(&config));
    assert_eq!(occurrences(&log, "Kafka is unreachable"), 1, "said once:\n{log}");
    assert_eq!(occurrences(&log, "Kafka is reachable again"), 1, "{log}");
    let complaints = log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).count();
    assert!(complaints <= 6, "{complaints} warnings and errors for one outage:\n{log}");
    db.drop_db().await;
}

/// SIGTERM while the warehouse hangs (a network partition: statements neither finish nor
/// fail): landing and merges in flight cannot end, yet `run` exits 0 within
/// `[service] shutdown_timeout_s`; what it read but did not land is read again by the next run.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stopping_is_bounded_even_while_the_warehouse_is_away() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start().await;
    let db = TestDb::postgres().await;
    let (proxy, proxied) = behind_proxy(&db.url).await;
    let (work, topics) = workload_on(&broker, 33).await;
    let config = stream::config(dir.path(), &broker.bootstrap, &proxied, &work, "[service]\nshutdown_timeout_s = 4");
    let direct = stream::config(dir.path(), &broker.bootstrap, &db.url, &work, "");
    let done = Arc::new(AtomicU64::new(0));
    let producer = {
        let (bootstrap, done) = (broker.bootstrap.clone(), done.clone());
        std::thread::spawn(move || stream::produce(bootstrap, work, 30_000, 2000, done))
    };
    let log = common::process::log_path("outage-shutdown.log");
    let mut run = Tidemark::run(&config, &log, &[]);
    tokio::task::block_in_place(|| run.wait_for_log("merged", Duration::from_secs(30)));
    proxy.stall();
    // Work in flight is stuck: something sent to the warehouse is held by the stalled proxy.
    common::eventually("a statement held by the stalled warehouse", Duration::from_secs(30), || async {
        proxy.held() > 0
    })
    .await;
    let asked = Instant::now();
    run.signal("TERM");
    let status = tokio::task::block_in_place(|| run.wait_for_exit(Duration::from_secs(15)));
    let took = asked.elapsed();
    assert!(status.is_some_and(|s| s.success()), "exit {status:?}:\n{}", run.log_text());
    assert!(took < Duration::from_secs(7), "stopping took {took:?} with a 4 s bound:\n{}", run.log_text());
    assert!(took >= Duration::from_secs(4), "it waited for the work in flight first ({took:?})");
    assert!(run.log_text().contains("shutdown did not finish in time"), "{}", run.log_text());

    // The next run, with the warehouse back, lands everything: nothing was lost.
    proxy.restore();
    let model = producer.join().unwrap();
    let wh = Warehouse::open(&db.url).await.unwrap();
    let mut again = Tidemark::run(&config, &log, &[]);
    let high = stream::high_watermarks(&broker.bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut again], Duration::from_secs(120)).await;
    stream::stop(&mut again, Duration::from_secs(30));
    stream::assert_converged(&wh, &direct, &model).await;
    eprintln!("stopped in {took:?} while the warehouse was away");
    db.drop_db().await;
}

/// Partitions assigned while the warehouse is away: the offsets the instance read when it
/// started are stale (another instance has landed since), and it must not take "no answer" for
/// "nothing newer landed": it waits for the warehouse's offsets instead of rewinding those
/// partitions to what it knew (or to offset 0) and reading them again.
///
/// Two instances in one group: on librdkafka's mock cluster (reached over TCP), as in
/// tests/instances.rs — tansu 0.6 does not keep a two-member group's rebalances working.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn partitions_assigned_during_a_warehouse_outage_are_not_read_again() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, work, topics) = stream::workload_on_mock(33);
    let bootstrap = mock.bootstrap_servers();
    let db = TestDb::postgres().await;
    let (proxy, proxied) = behind_proxy(&db.url).await;
    let config = stream::config(dir.path(), &bootstrap, &proxied, &work, "");
    let wh = Warehouse::open(&db.url).await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let produce = |work: Workload, changes: u64| {
        let (bootstrap, done) = (bootstrap.clone(), done.clone());
        std::thread::spawn(move || stream::produce(bootstrap, work, changes, 20_000, done))
    };
    // Two instances share the partitions and land a stream.
    let mut a = Tidemark::run(&config, &common::process::log_path("outage-assign-a.log"), &[]);
    tokio::task::block_in_place(|| a.wait_for_log("partitions assigned", Duration::from_secs(60)));
    let mut b = Tidemark::run(&config, &common::process::log_path("outage-assign-b.log"), &[]);
    common::eventually("both instances own partitions", Duration::from_secs(60), || async {
        let (na, nb) = (stream::last_assignment(&a.log_text()), stream::last_assignment(&b.log_text()));
        na > 0 && nb > 0 && na + nb == 2 * PARTITIONS as usize
    })
    .await;
    let _ = produce(work, 4000).join().unwrap();
    let high = stream::high_watermarks(&bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut a, &mut b], Duration::from_secs(120)).await;

    // The warehouse goes away; `b` leaves, `a` is given its partitions; more records arrive.
    proxy.cut();
    b.signal("TERM");
    common::eventually("a owns every partition", Duration::from_secs(90), || async {
        stream::last_assignment(&a.log_text()) == 2 * PARTITIONS as usize
    })
    .await;
    let _ = produce(Workload::new(34, PARTITIONS), 500).join().unwrap();
    // The outage lasts long enough for `a` to fetch from the partitions it was given.
    tokio::time::sleep(Duration::from_secs(5)).await;
    proxy.restore();
    let high = stream::high_watermarks(&bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut a], Duration::from_secs(120)).await;
    stream::stop(&mut a, Duration::from_secs(30));
    let log = a.log_text();
    assert_eq!(occurrences(&log, "re-reading"), 0, "a partition was rewound although it had landed:\n{log}");
    db.drop_db().await;
}
