//! The `tidemark` binary as users run it: demo, merge, sql, status, and run until SIGTERM.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{Offset, TopicPartitionList};
use tidemark::warehouse::Warehouse;

fn tidemark(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tidemark")).args(args).env("RUST_LOG", "warn").output().expect("run tidemark")
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

#[test]
fn demo_reports_zero_mismatches() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let out = tidemark(&["demo", "--changes", "4000", "--rate", "4000", "--db", db.to_str().unwrap()]);
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("OK: every replica table equals the upstream model"), "{all}");
    assert!(all.contains("item") && all.contains("orders"), "{all}");
}

fn write_config(dir: &Path, url: &str, bootstrap: &str) -> String {
    let path = dir.join("tidemark.toml");
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = {bootstrap:?}\ngroup_id = \"cli\"\nbatch_linger_ms = 50\n\
             [kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"* * * * * *\"\n\
             [[tables]]\nname = \"item\"\ntopic = \"tidb_tpcc_item\"\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_sql_and_status_commands() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let cfg = write_config(dir.path(), &url, "127.0.0.1:1");

    // Before anything landed, `sql` cannot know the columns and says why.
    let out = tidemark(&["--config", &cfg, "sql", "--table", "item"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not known yet"), "{}", text(&out));

    let wh = Warehouse::open(&url).await.unwrap();
    let mut l = lander(&wh, &tidemark::config::Config::load(Path::new(&cfg), false).unwrap()).await;
    let c = Canal::item();
    let row = |id: &'static str, n: &'static str| vec![Some(id), Some("1"), Some(n), Some("9.99"), Some("d")];
    l.land(&records(
        "tidb_tpcc_item",
        0,
        0,
        vec![
            c.insert(&row("1", "a"), tso(1)),
            c.update(&row("1", "b"), &row("1", "a"), tso(2)),
            c.insert(&row("2", "x"), tso(3)),
        ],
    ))
    .await
    .unwrap();

    let out = tidemark(&["--config", &cfg, "status"]);
    assert!(out.status.success(), "{}", text(&out));
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(s.contains("TABLE") && s.lines().any(|l| l.starts_with("item") && l.contains(" 3 ")), "{s}");

    let out = tidemark(&["--config", &cfg, "merge", "--table", "item"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().next().unwrap().split(" in ").next().unwrap(),
        "item: 3 staged changes → 2 inserted, 0 updated, 0 deleted"
    );
    let out = tidemark(&["--config", &cfg, "merge", "--all"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("item: nothing staged"));

    let out = tidemark(&["--config", &cfg, "status", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(v["tables"][0]["table"], "item");
    assert_eq!(v["tables"][0]["staged_rows"], 0);
    assert_eq!(v["tables"][0]["last_merge"]["inserted"], 2);
    assert_eq!(v["tables"][0]["last_merge"]["status"], "ok");

    let out = tidemark(&["--config", &cfg, "sql", "--table", "item"]);
    let lite = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success()
            && lite.contains("BEGIN IMMEDIATE;")
            && lite.contains("CREATE TABLE IF NOT EXISTS \"item\""),
        "{lite}"
    );
    let out = tidemark(&["--config", &cfg, "sql", "--dialect", "postgres", "--table", "item"]);
    let pg = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(pg.contains("MERGE INTO \"item\" AS t") && pg.contains("\"i_price\" numeric"), "{pg}");

    let out = tidemark(&["--config", &cfg, "merge", "--table", "nope"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("`nope` is not in the config"), "{}", text(&out));
}

#[test]
fn bad_configs_fail_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[kafka]\nbootstrap_server = \"x\"\n").unwrap();
    let out = tidemark(&["--config", cfg.to_str().unwrap(), "status"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("bootstrap_server"), "{}", text(&out));
    std::fs::write(
        &cfg,
        "[kafka.properties]\n\"enable.auto.offset.store\" = \"true\"\n[[tables]]\nname='a'\ntopic='t'\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", cfg.to_str().unwrap(), "run"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("would commit offsets of records not yet landed"), "{}", text(&out));
    assert!(!dir.path().join("tidemark.db").exists(), "a config error must stop before the warehouse is touched");
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark")).arg("status").current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out).contains("no config"), "{}", text(&out));
}

/// `run` as a child process: it lands everything, a one-shot merge works alongside it, and
/// SIGTERM makes it commit its offsets and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_until_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("tidb_tpcc_item", 2, 1).unwrap();
    let cfg = write_config(dir.path(), &url, &mock.bootstrap_servers());
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().unwrap();
    let c = Canal::item();
    let mut produced = [0i64; 2];
    for i in 0..400i64 {
        let id: &'static str = Box::leak(format!("{}", i % 50).into_boxed_str());
        let name: &'static str = Box::leak(format!("v{i}").into_boxed_str());
        let p = (i % 50 % 2) as i32;
        let payload = c.insert(&[Some(id), Some("1"), Some(name), Some("1.00"), None], tso(i as u64));
        producer.send(BaseRecord::<(), _>::to("tidb_tpcc_item").partition(p).payload(&payload)).unwrap();
        produced[p as usize] += 1;
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", &cfg, "run"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let wh = Warehouse::open(&url).await.unwrap();
    let start = Instant::now();
    loop {
        let o = wh.offsets().await.unwrap_or_default();
        if (0..2).all(|p| o.get(&("tidb_tpcc_item".to_string(), p)) == Some(&produced[p as usize])) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "run did not land everything: {o:?}");
        assert!(child.try_wait().unwrap().is_none(), "run exited early");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A one-shot merge while the service runs (and merges on its own schedule).
    let out = tidemark(&["--config", &cfg, "merge", "--table", "item"]);
    assert!(out.status.success(), "{}", text(&out));

    let kill = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "run did not stop within 30 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut log = String::new();
    std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut log).unwrap();
    assert!(status.success(), "exit {status:?}\n{log}");
    assert!(log.contains("SIGTERM: stopping") && log.contains("tidemark stopped"), "{log}");

    // The group's committed offsets are where landing stands.
    let consumer: BaseConsumer =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).set("group.id", "cli").create().unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("tidb_tpcc_item", 0);
    tpl.add_partition("tidb_tpcc_item", 1);
    let committed = consumer.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    for p in 0..2 {
        let e = committed.find_partition("tidb_tpcc_item", p).unwrap();
        assert_eq!(e.offset(), Offset::Offset(produced[p as usize]), "partition {p}");
    }

    tidemark(&["--config", &cfg, "merge", "--all"]);
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_name", "\"item\".i_id").await;
    assert_eq!(got.len(), 50);
    assert_eq!(got[0], vec![s("0"), s("v350")]);
    assert_eq!(got[49], vec![s("49"), s("v399")]);
}
