//! Bad input through the whole service: `tidemark run` as a child process reads a topic that
//! holds, between good records, malformed JSON, a change of a table no configured table takes,
//! a change without its key column, and values too large for their columns. Each lands in
//! the dead-letter table with its raw bytes and position, the stream goes on, the group's
//! offsets move past them only with them durable, and `status` / `dead-letters` show them.
//! With `on_error = "stop"` the first one stops the service with a clear error instead.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine;
use common::process::{log_path, Tidemark};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_tpcc_item";

fn tidemark(config: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark")).args(["--config", config]).args(args).output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// The stream: good records around every kind of bad one. Returns (payloads, bad offsets).
fn stream() -> (Vec<Vec<u8>>, Vec<i64>) {
    let c = Canal::item();
    let other = Canal { table: "other", ..Canal::item() };
    let no_key_column = Canal { types: Canal::item().types[1..].to_vec(), ..Canal::item() };
    let long = "x".repeat(30);
    let good = |id: &'static str, ts| c.insert(&[Some(id), Some("1"), Some("pen"), Some("1.50"), None], tso(ts));
    let records = vec![
        good("1", 1),
        b"{\"not json".to_vec(), // malformed
        other.insert(&[Some("9"), Some("1"), Some("cup"), Some("2.00"), None], tso(2)), // unknown table
        good("2", 3),
        c.insert(&[None, Some("1"), Some("no key"), Some("1.00"), None], tso(4)), // null key column
        no_key_column.insert(&[Some("1"), Some("no i_id"), Some("1.00"), None], tso(5)), // key column absent
        c.insert(&[Some("6"), Some("1"), Some(&long), Some("1.00"), None], tso(6)), // varchar(24)
        c.insert(&[Some("7"), Some("1"), Some("price"), Some("12345.00"), None], tso(7)), // decimal(5,2)
        good("3", 8),
    ];
    (records, vec![1, 2, 4, 5, 6, 7])
}

fn setup(dir: &std::path::Path, bootstrap: &str, url: &str, on_error: &str) -> String {
    std::fs::write(
        dir.join("item.sql"),
        "CREATE TABLE item (i_id int NOT NULL, i_im_id int, i_name varchar(24), i_price decimal(5,2), \
         i_data varchar(50), PRIMARY KEY (i_id));",
    )
    .unwrap();
    let config = dir.join("tidemark.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = {bootstrap:?}\ngroup_id = \"bad\"\nbatch_linger_ms = 50\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"* * * * * *\"\non_error = {on_error:?}\n\
             [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\nsource = \"tpcc.item\"\nsource_ddl = \"item.sql\"\n"
        ),
    )
    .unwrap();
    config.to_str().unwrap().to_string()
}

fn produce(bootstrap: &str, records: &[Vec<u8>]) {
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().unwrap();
    for r in records {
        producer.send(BaseRecord::<(), _>::to(TOPIC).partition(0).payload(r)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
}

fn committed(bootstrap: &str) -> Offset {
    let c: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).set("group.id", "bad").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(TOPIC, 0);
    c.committed_offsets(tpl, Duration::from_secs(10)).unwrap().find_partition(TOPIC, 0).unwrap().offset()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_dead_lettered_and_the_stream_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 1, 1).unwrap();
    let (records, bad) = stream();
    produce(&mock.bootstrap_servers(), &records);
    let config = setup(dir.path(), &mock.bootstrap_servers(), &db.url, "dead-letter");

    let mut run = Tidemark::run(config.as_ref(), &log_path("bad-input.log"), &[]);
    let wh = Warehouse::open(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)) != Some(&(records.len() as i64)) {
        assert!(Instant::now() < deadline && run.try_wait().is_none(), "{}", run.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    common::stream::stop(&mut run, Duration::from_secs(30));
    assert_eq!(committed(&mock.bootstrap_servers()), Offset::Offset(records.len() as i64), "offsets moved past them");
    assert!(tidemark(&config, &["merge", "--all"]).0);
    let got = rows(&wh, "item", "CAST(i_id AS TEXT)", "\"item\".i_id").await;
    assert_eq!(got, vec![s("1"), s("2"), s("3")].into_iter().map(|v| vec![v]).collect::<Vec<_>>());

    // Every bad record, with its position, its reason and its bytes.
    let (ok, text) = tidemark(&config, &["dead-letters", "--json", "--limit", "100"]);
    assert!(ok, "{text}");
    let letters: serde_json::Value = serde_json::from_str(&text).unwrap();
    let letters = letters.as_array().unwrap();
    let mut offsets: Vec<i64> = letters.iter().map(|d| d["offset"].as_i64().unwrap()).collect();
    offsets.sort();
    assert_eq!(offsets, bad);
    for d in letters {
        let off = d["offset"].as_i64().unwrap() as usize;
        let value = base64::engine::general_purpose::STANDARD.decode(d["value_base64"].as_str().unwrap()).unwrap();
        assert_eq!(value, records[off], "the raw value of offset {off}");
        assert_eq!(d["topic"], TOPIC);
        let error = d["error"].as_str().unwrap();
        let want = match off {
            1 => "invalid canal-json",
            2 => "no configured table takes",
            4 | 5 => "i_id",
            6 => "24",
            _ => "decimal",
        };
        assert!(error.contains(want), "offset {off}: {error}");
    }
    let (_, item_only) = tidemark(&config, &["dead-letters", "--table", "item"]);
    // The undecodable record (offset 1) is on a topic only `item` reads: it is item's too.
    assert_eq!(item_only.matches("\n#").count() + usize::from(item_only.starts_with('#')), 5, "{item_only}");
    let (_, status) = tidemark(&config, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["tables"][0]["dead_letters"], 5);
    assert_eq!(status["unrouted_dead_letters"], 1);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_error_stop_stops_at_the_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 1, 1).unwrap();
    let (records, _) = stream();
    // The good record first, alone in its batch, then the bad ones.
    produce(&mock.bootstrap_servers(), &records[..1]);
    let config = setup(dir.path(), &mock.bootstrap_servers(), &db.url, "stop");
    let mut run = Tidemark::run(config.as_ref(), &log_path("bad-input-stop.log"), &[]);
    let wh = Warehouse::open(&db.url).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)) != Some(&1) {
        assert!(Instant::now() < deadline && run.try_wait().is_none(), "{}", run.log_text());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    produce(&mock.bootstrap_servers(), &records[1..]);
    let status = tokio::task::block_in_place(|| run.wait_for_exit(Duration::from_secs(30)));
    assert!(status.is_some_and(|s| !s.success()), "it stops, non-zero: {status:?}");
    let log = run.log_text();
    assert!(
        log.contains(&format!("record at {TOPIC} partition 0 offset 1")) && log.contains("on_error = \"stop\""),
        "{log}"
    );
    assert_eq!(wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)), Some(&1), "nothing past it landed");
    assert_eq!(count(&wh, "_tidemark_dead_letters").await, 0);
    db.drop_db().await;
}
