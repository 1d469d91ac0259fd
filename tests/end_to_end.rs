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
        tokio::spawn(async move { tidemark::service::run(&config, stopped, None).await })
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
    // Let the 1 s schedule merge at least once on its own, then stop like SIGTERM would.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.send(true).unwrap();
    let stats = service.await.unwrap().expect("service");
    assert_eq!(stats.records, produced.iter().sum::<i64>() as u64);
    assert_eq!(stats.dead_letters, 0);
    assert!(count(&wh, "_tidemark_merges").await >= 1, "the schedule ran merges");
    if let MergeOutcome::Merged(_) = merge(&wh, "item", true).await.unwrap() {}

    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_name, CAST(i_price AS TEXT)", "\"item\".i_id").await;
    let want: Vec<Vec<Option<String>>> =
        model.iter().map(|(id, (n, p))| vec![Some(id.to_string()), Some(n.clone()), Some(p.clone())]).collect();
    assert_eq!(got.len(), want.len());
    assert_eq!(got, want);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0);
}
both!(end_to_end);
