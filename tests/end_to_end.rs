//! End to end through a real Kafka protocol peer (librdkafka's in-process mock cluster):
//! canal-json produced on several partitions (index-value placement), `run` until every
//! record has landed, then the replica is compared with the expected rows.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tidemark::config::Config;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::warehouse::Warehouse;
use tokio::sync::watch;

const TOPIC: &str = "tidb_tpcc_item";
const PARTITIONS: i32 = 4;

fn partition_of(id: i64) -> i32 {
    (id.rem_euclid(PARTITIONS as i64)) as i32
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn item(id: i64, name: &str, price: &str) -> Vec<Option<&'static str>> {
    vec![Some(leak(id.to_string())), Some("7"), Some(leak(name.to_string())), Some(leak(price.to_string())), Some("d")]
}

async fn end_to_end(url: &str) {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, PARTITIONS, 1).expect("topic");
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("linger.ms", "5")
        .create()
        .expect("producer");

    // A workload with several changes per key between merges, deletes, deletes of unknown
    // keys and key changes; the model is the upstream table.
    let c = Canal::item();
    let mut model: BTreeMap<i64, (String, String)> = BTreeMap::new();
    let mut produced = [0i64; PARTITIONS as usize];
    let mut ts = 0u64;
    let send = |id: i64, payload: Vec<u8>, produced: &mut [i64; PARTITIONS as usize]| {
        let p = partition_of(id);
        producer.send(BaseRecord::<(), _>::to(TOPIC).partition(p).payload(&payload)).expect("enqueue");
        produced[p as usize] += 1;
    };
    for i in 0..3000i64 {
        ts += 1;
        let id = (i * 37) % 400;
        let name = format!("n{i}");
        let price = format!("{}.{:02}", i % 1000, i % 100);
        match (i % 10, model.get(&id).cloned()) {
            (0..=5, None) => {
                send(id, c.insert(&item(id, &name, &price), tso(ts)), &mut produced);
                model.insert(id, (name, price));
            }
            (0..=5, Some((n0, p0))) | (6..=7, Some((n0, p0))) => {
                send(id, c.update(&item(id, &name, &price), &item(id, &n0, &p0), tso(ts)), &mut produced);
                model.insert(id, (name, price));
            }
            (8, Some((n0, p0))) => {
                send(id, c.delete(&item(id, &n0, &p0), tso(ts)), &mut produced);
                model.remove(&id);
            }
            (9, Some((n0, p0))) if !model.contains_key(&(id + 1000)) => {
                // Key change, as TiCDC sends it unsplit: to the new key's partition.
                let new = id + 1000;
                send(new, c.update(&item(new, &n0, &p0), &item(id, &n0, &p0), tso(ts)), &mut produced);
                model.remove(&id);
                model.insert(new, (n0, p0));
            }
            _ => {
                // A delete of a key the replica never had.
                send(id + 5000, c.delete(&item(id + 5000, "ghost", "0.00"), tso(ts)), &mut produced);
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let config = Config::parse(&format!(
        "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"e2e\"\nbatch_linger_ms = 50\nbatch_records = 500\n\
         [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"* * * * * *\"\n\
         [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n",
        mock.bootstrap_servers()
    ))
    .expect("config");
    let (stop, stopped) = watch::channel(false);
    let service = {
        let config = config.clone();
        tokio::spawn(async move { tidemark::service::run(&config, stopped, Default::default()).await })
    };

    // Caught up: the warehouse has landed every produced offset.
    let wh = Warehouse::open(url).await.unwrap();
    let started = Instant::now();
    loop {
        let offsets = wh.offsets().await.unwrap();
        let done = (0..PARTITIONS).all(|p| offsets.get(&(TOPIC.to_string(), p)) == Some(&produced[p as usize]));
        if done {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "not caught up: {offsets:?} vs {produced:?}");
        assert!(!service.is_finished(), "the service stopped early: {:?}", service.await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The 1 s schedule merges on its own; then stop like SIGTERM would.
    common::eventually("a merge run by the schedule", Duration::from_secs(30), || async {
        count(&wh, "_tidemark_merges").await >= 1
    })
    .await;
    stop.send(true).unwrap();
    let stats = service.await.unwrap().expect("service");
    assert_eq!(stats.records, produced.iter().sum::<i64>() as u64);
    assert_eq!(stats.dead_letters, 0);
    if let MergeOutcome::Merged(_) = merge(&wh, "item", true).await.unwrap() {}

    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_name, CAST(i_price AS TEXT)", "\"item\".i_id").await;
    let want: Vec<Vec<Option<String>>> =
        model.iter().map(|(id, (n, p))| vec![Some(id.to_string()), Some(n.clone()), Some(p.clone())]).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0);
}
both!(end_to_end);

/// An Avro topic through a Schema Registry: inserts, updates, deletes as tombstones, and a
/// column added mid-stream (a new schema id) while the service runs.
async fn avro_end_to_end(url: &str) {
    use apache_avro::types::Value as Avro;
    let registry = common::registry::RegistryServer::start(None).await;
    let topic = "tidb_test_people";
    let key_schema = r#"{"type":"record","name":"people","namespace":"default.test","fields":[{"name":"id","type":{"type":"int","connect.parameters":{"tidb_type":"INT"}}}]}"#;
    let value_schema = |extra: bool| {
        format!(
            r#"{{"type":"record","name":"people","namespace":"default.test","fields":[{{"name":"id","type":{{"type":"int","connect.parameters":{{"tidb_type":"INT"}}}}}},{{"default":null,"name":"name","type":["null",{{"type":"string","connect.parameters":{{"tidb_type":"TEXT"}}}}]}}{}, {{"default":"","name":"_tidb_op","type":"string"}},{{"default":0,"name":"_tidb_commit_ts","type":"long"}},{{"default":0,"name":"_tidb_commit_physical_time","type":"long"}}]}}"#,
            if extra {
                r#",{"default":null,"name":"age","type":["null",{"type":"int","connect.parameters":{"tidb_type":"INT"}}]}"#
            } else {
                ""
            }
        )
    };
    let kid = registry.register(&format!("{topic}-key"), key_schema, None).await;
    let vids = [
        registry.register(&format!("{topic}-value"), &value_schema(false), None).await,
        registry.register(&format!("{topic}-value"), &value_schema(true), None).await,
    ];
    let enc = |schema: &str, v: Avro, id: u32| {
        let s = apache_avro::Schema::parse_str(schema).unwrap();
        let mut out = vec![0];
        out.extend_from_slice(&id.to_be_bytes());
        out.extend(
            apache_avro::writer::datum::GenericDatumWriter::builder(&s).build().unwrap().write_value_to_vec(v).unwrap(),
        );
        out
    };

    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(topic, 2, 1).expect("topic");
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().expect("producer");
    let mut produced = [0i64; 2];
    let mut model: BTreeMap<i32, (String, Option<i32>)> = BTreeMap::new();
    let mut send = |id: i32, value: Option<Vec<u8>>| {
        let key = enc(key_schema, Avro::Record(vec![("id".into(), Avro::Int(id))]), kid);
        let p = id.rem_euclid(2);
        let mut r = BaseRecord::to(topic).partition(p).key(&key);
        if let Some(v) = &value {
            r = r.payload(v);
        }
        producer.send::<Vec<u8>, Vec<u8>>(r).map_err(|(e, _)| e).expect("enqueue");
        produced[p as usize] += 1;
    };
    let upsert = |id: i32, name: &str, age: Option<i32>, op: &str, ts: u64| {
        let mut f = vec![
            ("id".to_string(), Avro::Int(id)),
            ("name".into(), Avro::Union(1, Box::new(Avro::String(name.into())))),
        ];
        if let Some(a) = age {
            f.push(("age".into(), Avro::Union(1, Box::new(Avro::Int(a)))));
        }
        f.push(("_tidb_op".into(), Avro::String(op.into())));
        f.push(("_tidb_commit_ts".into(), Avro::Long(ts as i64)));
        f.push(("_tidb_commit_physical_time".into(), Avro::Long((ts >> 18) as i64)));
        let (schema, id_) = if age.is_some() { (value_schema(true), vids[1]) } else { (value_schema(false), vids[0]) };
        enc(&schema, Avro::Record(f), id_)
    };
    let mut ts = 0u64;
    for i in 0..600i32 {
        ts += 1;
        let id = i % 97;
        // The upstream table gains `age` half way.
        let age = (i >= 300).then_some(i % 80);
        match (i % 7, model.contains_key(&id)) {
            (0, true) => {
                send(id, None);
                model.remove(&id);
            }
            (_, exists) => {
                send(id, Some(upsert(id, &format!("n{i}"), age, if exists { "u" } else { "c" }, tso(ts))));
                model.insert(id, (format!("n{i}"), age));
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");

    let config = Config::parse(&format!(
        "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"e2e-avro\"\nbatch_linger_ms = 50\nbatch_records = 100\n\
         [warehouse]\nurl = {url:?}\n[schema_registry]\nurl = {:?}\n[defaults]\nformat = \"avro\"\nschedule = \"* * * * * *\"\n\
         [[tables]]\nname = \"people\"\ntopic = \"{topic}\"\n",
        mock.bootstrap_servers(),
        registry.url
    ))
    .expect("config");
    let (stop, stopped) = watch::channel(false);
    let service = tokio::spawn(async move { tidemark::service::run(&config, stopped, Default::default()).await });
    let wh = Warehouse::open(url).await.unwrap();
    let started = Instant::now();
    loop {
        let offsets = wh.offsets().await.unwrap();
        if (0..2).all(|p| offsets.get(&(topic.to_string(), p)) == Some(&produced[p as usize])) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(90), "not caught up: {offsets:?} vs {produced:?}");
        assert!(!service.is_finished(), "the service stopped early: {:?}", service.await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    let stats = service.await.unwrap().expect("service");
    assert_eq!(stats.dead_letters, 0);
    if let MergeOutcome::Merged(_) = merge(&wh, "people", true).await.unwrap() {}
    let got = rows(&wh, "people", "CAST(id AS TEXT), name, CAST(age AS TEXT)", "\"people\".id").await;
    let want: Vec<Vec<Option<String>>> = model
        .iter()
        .map(|(id, (n, a))| vec![Some(id.to_string()), Some(n.clone()), a.map(|a| a.to_string())])
        .collect();
    assert_eq!(got, want);
}
both!(avro_end_to_end);

/// The warehouse, not the consumer group, says where reading goes on: a group that starts
/// past what has landed (here: a new `group_id` with `auto.offset.reset = "latest"`; also an
/// operator's `--reset-offsets`, another tool in the group) still reads and lands the records
/// in between.
async fn a_group_ahead_of_the_warehouse_loses_nothing(url: &str) {
    group_ahead(url, 40).await
}
both!(a_group_ahead_of_the_warehouse_loses_nothing);

/// The same with nothing landed yet: a partition the warehouse has never seen starts at 0.
async fn a_new_group_on_latest_still_reads_from_the_start(url: &str) {
    group_ahead(url, 0).await
}
both!(a_new_group_on_latest_still_reads_from_the_start);

/// `landed_first` records landed by a first group, then 100 in all behind a second one that
/// starts at the end of the topic.
async fn group_ahead(url: &str, landed_first: i64) {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().expect("producer");
    let c = Canal::item();
    let send = |from: i64, to: i64| {
        for id in from..to {
            let payload = c.insert(&item(id, &format!("n{id}"), "1.00"), tso(id as u64 + 1));
            producer.send(BaseRecord::<(), _>::to(TOPIC).partition(0).payload(&payload)).expect("enqueue");
        }
        producer.flush(Duration::from_secs(30)).expect("flush");
    };
    let config = |group: &str, reset: &str| {
        Config::parse(&format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = {group:?}\nbatch_linger_ms = 50\n\
             [kafka.properties]\n\"auto.offset.reset\" = {reset:?}\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\n\
             [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n",
            mock.bootstrap_servers()
        ))
        .expect("config")
    };
    let wh = Warehouse::open(url).await.unwrap();
    let landed = |wh: std::sync::Arc<Warehouse>| async move {
        wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)).copied().unwrap_or(0)
    };
    let start = |config: Config| {
        let (stop, stopped) = watch::channel(false);
        (stop, tokio::spawn(async move { tidemark::service::run(&config, stopped, Default::default()).await }))
    };
    let wait = |n: i64, service: &tokio::task::JoinHandle<_>| {
        let wh = wh.clone();
        let finished = service.is_finished();
        async move {
            let started = Instant::now();
            while landed(wh.clone()).await != n {
                assert!(started.elapsed() < Duration::from_secs(60), "landed {} of {n}", landed(wh.clone()).await);
                assert!(!finished, "the service stopped early");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };

    if landed_first > 0 {
        send(0, landed_first);
        let (stop, service) = start(config("first", "earliest"));
        wait(landed_first, &service).await;
        stop.send(true).unwrap();
        service.await.unwrap().expect("service");
    }

    // More records, then a new group that starts at the end of the topic.
    send(landed_first, 100);
    let (stop, service) = start(config("second", "latest"));
    // New records until the group has joined and read one (it starts at the end of the topic).
    let mut sent = 100;
    let started = Instant::now();
    while landed(wh.clone()).await < 100 {
        assert!(started.elapsed() < Duration::from_secs(60), "landed {}", landed(wh.clone()).await);
        send(sent, sent + 1);
        sent += 1;
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    wait(sent, &service).await;
    stop.send(true).unwrap();
    let stats = service.await.unwrap().expect("service");
    assert_eq!(stats.skipped_offsets, 0, "no gap was landed");
    if let MergeOutcome::Merged(_) = merge(&wh, "item", true).await.unwrap() {}
    assert_eq!(count(&wh, "item").await, sent, "the records before the group's start were read all the same");
}

/// A service whose future is dropped (as the demo kills one) leaves nothing running behind: its
/// heartbeat ends instead of spinning on the closed stop channel, writing beats and keeping the
/// Kafka consumer — and its partitions — alive.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_service_leaves_nothing_running() {
    let mock = MockCluster::new(1).expect("mock cluster");
    mock.create_topic(TOPIC, 1, 1).expect("topic");
    let db = TestDb::sqlite();
    let url = db.url.clone();
    let config = Config::parse(&format!(
        "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"dropped\"\n[warehouse]\nurl = {url:?}\n\
         [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n",
        mock.bootstrap_servers()
    ))
    .expect("config");
    let (_stop, stopped) = watch::channel(false);
    let service = tokio::spawn(async move { tidemark::service::run(&config, stopped, Default::default()).await });
    let wh = Warehouse::open(&url).await.expect("warehouse");
    let beats = || async {
        common::query(&wh, "SELECT CAST(seen_at AS TEXT) FROM _tidemark_instances", &[])
            .await
            .first()
            .and_then(|r| r[0].clone())
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while beats().await.is_none() {
        assert!(Instant::now() < deadline, "the service never beat");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    service.abort();
    let _ = service.await;
    // An absence can only be watched over a window: a beat already in flight at the abort may
    // still land (200 ms), then none for a second — the spinning heartbeat wrote thousands.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after_abort = beats().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(beats().await, after_abort, "nothing beats once the service is gone");
}

/// Configured topics that do not exist when `run` starts (Debezium creates a table's topic with
/// its first event) are read within seconds of their creation (the 40 s bound is far below
/// librdkafka's periodic metadata refresh, 5 minutes).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_topic_created_after_the_start_is_read_within_seconds() {
    use common::process::{log_path, Tidemark};
    use common::stream;
    let dir = tempfile::tempdir().unwrap();
    // tansu, a broker process: how a real broker tells a client about a new topic.
    let broker = common::broker::Broker::start().await;
    let bootstrap = broker.bootstrap.clone();
    let db = TestDb::postgres().await;
    let work = tidemark::demo::workload::Workload::new(61, stream::PARTITIONS);
    let topics: Vec<String> = work.tables.iter().map(|t| t.spec.topic.clone()).collect();
    // None of the configured topics exists at the start.
    let config = stream::config(dir.path(), &bootstrap, &db.url, &work, "");
    let wh = Warehouse::open(&db.url).await.unwrap();
    let mut run = Tidemark::run(&config, &log_path("late-topic.log"), &[]);
    // Created once the consumer has been told they do not exist — and `status` says so.
    tokio::task::block_in_place(|| run.wait_for_log("Subscribed topic not available", Duration::from_secs(30)));
    let status = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["--config", config.to_str().unwrap(), "status"])
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    common::eventually("status says the topics do not exist yet", Duration::from_secs(20), || {
        let out = status();
        let topics = topics.clone();
        async move { topics.iter().all(|t| out.contains(&format!("topic {t} does not exist yet"))) }
    })
    .await;
    for t in &topics {
        broker.create_topic(t, stream::PARTITIONS).await;
    }
    let done = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let model = tokio::task::block_in_place(|| stream::produce(bootstrap.clone(), work, 1000, 4000, done));
    let high = stream::high_watermarks(&bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(40)).await;
    // And merged by the service (a gated merge also waits for the topic's partition count,
    // which the heartbeat records).
    common::eventually("both tables merged", Duration::from_secs(30), || {
        let log = run.log_text();
        async move {
            ["item", "orders"]
                .iter()
                .all(|t| log.lines().any(|l| l.contains("\"merged\"") && l.contains(&format!("\"table\":\"{t}\""))))
        }
    })
    .await;
    assert!(!status().contains("does not exist yet"), "{}", status());
    stream::stop(&mut run, Duration::from_secs(30));
    stream::assert_converged(&wh, &config, &model).await;
    db.drop_db().await;
}

/// `[[table_patterns]]`: every topic matching `tidb_shop_(\w+)` is a table named by the group —
/// those there at the start, and one created while `run` runs (read within seconds, without a
/// restart of the process); an explicit `[[tables]]` entry keeps its own name; a topic the
/// pattern does not match is not read. `status` and `merge` know the pattern's tables too.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn topics_matching_a_pattern_are_tables() {
    let mock = MockCluster::new(1).expect("mock cluster");
    for t in ["tidb_shop_item", "tidb_shop_orders", "tidb_shop_stock", "tidb_other_item"] {
        mock.create_topic(t, 2, 1).expect("topic");
    }
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().expect("producer");
    let send = |topic: &str, table: &'static str, n: i64| {
        let c = Canal { db: "shop", table, ..Canal::item() };
        for id in 0..n {
            let payload = c.insert(&item(id, table, "1.00"), tso(id as u64 + 1));
            producer.send(BaseRecord::<(), _>::to(topic).partition(partition_of(id) % 2).payload(&payload)).unwrap();
        }
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    send("tidb_shop_item", "item", 5);
    send("tidb_shop_orders", "orders", 7);
    send("tidb_shop_stock", "stock", 3);
    send("tidb_other_item", "item", 4);
    let db = TestDb::sqlite();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"patterns\"\nbatch_linger_ms = 50\ntopic_refresh_secs = 1\n\
         [kafka.properties]\n\"session.timeout.ms\" = \"3000\"\n\"heartbeat.interval.ms\" = \"300\"\n\
         [warehouse]\nurl = {:?}\n[defaults]\nschedule = \"* * * * * *\"\n\
         [[tables]]\nname = \"warehouse_stock\"\ntopic = \"tidb_shop_stock\"\n\
         [[table_patterns]]\ntopic = 'tidb_shop_(\\w+)'\n",
        mock.bootstrap_servers(),
        db.url
    );
    let path = dir.path().join("tidemark.toml");
    std::fs::write(&path, &text).unwrap();
    let config = Config::parse(&text).expect("config");
    let (stop, stopped) = watch::channel(false);
    let service = tokio::spawn(async move { tidemark::service::run(&config, stopped, Default::default()).await });
    let wh = Warehouse::open(&db.url).await.unwrap();
    let rows_of = |t: &'static str| {
        let wh = wh.clone();
        async move {
            let exists = common::query(
                &wh,
                "SELECT name FROM sqlite_master WHERE name = ?",
                &[tidemark::warehouse::db::Bind::Text(t.into())],
            )
            .await;
            if exists.is_empty() {
                0
            } else {
                count(&wh, t).await
            }
        }
    };
    for (table, n) in [("item", 5), ("orders", 7), ("warehouse_stock", 3)] {
        common::eventually(&format!("{table} merged"), Duration::from_secs(60), || async { rows_of(table).await == n })
            .await;
    }
    // A new upstream table: its topic appears while `run` runs. (`run` starts its consumer
    // again; the mock cluster lets the new one in once the old one's session has expired, hence
    // the short session above.)
    mock.create_topic("tidb_shop_users", 2, 1).expect("topic");
    send("tidb_shop_users", "users", 6);
    common::eventually("users merged", Duration::from_secs(60), || async { rows_of("users").await == 6 }).await;
    assert!(!service.is_finished(), "the service kept running");
    assert_eq!(rows_of("stock").await, 0, "an explicit entry wins over the pattern");
    let offsets = wh.offsets().await.unwrap();
    assert!(
        !offsets.keys().any(|(t, _)| t == "tidb_other_item"),
        "a topic no pattern matches is not read: {offsets:?}"
    );
    stop.send(true).unwrap();
    service.await.unwrap().expect("service");

    let status = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["--config", path.to_str().unwrap(), "status", "--json"])
            .output()
            .unwrap()
    });
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    let mut tables: Vec<&str> =
        status["tables"].as_array().unwrap().iter().map(|t| t["table"].as_str().unwrap()).collect();
    tables.sort();
    assert_eq!(tables, ["item", "orders", "users", "warehouse_stock"], "{status}");
}
