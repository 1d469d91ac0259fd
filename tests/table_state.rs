//! One source of truth for a table's state: what the warehouse records. A process's cached copy
//! (landing's) follows it — `tidemark resume` run elsewhere takes effect, a second instance with
//! an older copy never undoes it — and the gauges every instance serves come from it.

mod common;

use std::time::Duration;

use common::process::{log_path, Tidemark};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tidemark::merge::{merge, MergeOutcome, TableStopped};
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_tpcc_item";

fn canal(im_type: &'static str) -> Canal {
    let mut c = Canal::item();
    c.types[1] = ("i_im_id", im_type);
    c
}

fn row<'a>(id: &'a str, im: &'a str) -> Vec<Option<&'a str>> {
    vec![Some(id), Some(im), Some("n"), Some("1.00"), Some("d")]
}

/// Two instances (two landers, each with its own copy of the table's state) on one warehouse.
/// A sees an incompatible type and stops the table; the user resumes it; B — whose copy is from
/// before all that — then sees the same new type on its partition. It must not stop the table
/// again: it reloads the state the warehouse records, where the new type is the accepted one.
async fn a_stale_instance_never_stops_a_resumed_table(url: &str) {
    let cfg = config(url, &[("item", TOPIC)]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut a = lander(&wh, &cfg).await;
    a.land(&records(TOPIC, 0, 0, vec![canal("int").insert(&row("1", "7"), tso(1))])).await.unwrap();
    let mut b = lander(&wh, &cfg).await;
    b.land(&records(TOPIC, 1, 0, vec![canal("int").insert(&row("2", "8"), tso(2))])).await.unwrap();
    assert!(matches!(merge(&wh, "item", true).await.unwrap(), MergeOutcome::Merged(_)));

    // ALTER TABLE item MODIFY i_im_id VARCHAR(10), seen first by A.
    a.land(&records(TOPIC, 0, 1, vec![canal("varchar(10)").insert(&row("3", "x"), tso(3))])).await.unwrap();
    let err = merge(&wh, "item", true).await.unwrap_err();
    assert!(err.downcast_ref::<TableStopped>().is_some(), "{err:#}");
    wh.resume("item").await.unwrap().expect("it was stopped");

    // B's first record of the new type.
    b.land(&records(TOPIC, 1, 1, vec![canal("varchar(10)").insert(&row("4", "y"), tso(4))])).await.unwrap();
    let state = wh.table("item").await.unwrap().expect("registered");
    assert_eq!(state.stopped, None, "a stale copy stopped the resumed table again");
    assert!(matches!(merge(&wh, "item", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), CAST(i_im_id AS TEXT)", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), s("7")], vec![s("2"), s("8")], vec![s("3"), s("x")], vec![s("4"), s("y")]]);
}
both!(a_stale_instance_never_stops_a_resumed_table);

fn producer(mock: &MockCluster<'_, DefaultProducerContext>) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().unwrap()
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, partition: i32, payload: &[u8]) {
    p.send(BaseRecord::<(), _>::to(TOPIC).partition(partition).payload(payload)).unwrap();
    p.flush(Duration::from_secs(10)).unwrap();
}

fn write_config(dir: &std::path::Path, name: &str, bootstrap: &str, url: &str, schedule: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = {bootstrap:?}\ngroup_id = \"state\"\nbatch_linger_ms = 50\n\
             [kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = {schedule:?}\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n"
        ),
    )
    .unwrap();
    path
}

/// `tidemark resume` in one process while `tidemark run` runs in another: the running
/// service's next scheduled merge applies what was held back, and later changes of the new
/// type land and merge — no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_takes_effect_in_a_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 1, 1).unwrap();
    let p = producer(&mock);
    let config = write_config(dir.path(), "run", mock.bootstrap_servers().as_str(), &db.url, "* * * * * *");
    let mut run = Tidemark::run(&config, &log_path("table-state-resume.log"), &[]);
    let wh = Warehouse::open(&db.url).await.unwrap();

    send(&p, 0, &canal("int").insert(&row("1", "7"), tso(1)));
    eventually("the replica holds row 1", Duration::from_secs(60), || async {
        wh.staged("item").await.is_ok_and(|s| s.staged_rows == 0) && count_if_exists(&wh).await == 1
    })
    .await;
    send(&p, 0, &canal("varchar(10)").insert(&row("2", "x"), tso(2)));
    eventually("the table stopped", Duration::from_secs(60), || async {
        wh.table("item").await.unwrap().and_then(|s| s.stopped).is_some()
    })
    .await;

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap(), "resume", "--table", "item"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("resumed"));
    send(&p, 0, &canal("varchar(10)").insert(&row("3", "y"), tso(3)));
    eventually("rows 2 and 3 merged by the running service", Duration::from_secs(60), || async {
        count_if_exists(&wh).await == 3 && wh.staged("item").await.is_ok_and(|s| s.staged_rows == 0)
    })
    .await;
    assert_eq!(wh.table("item").await.unwrap().and_then(|s| s.stopped), None);
    assert!(run.try_wait().is_none(), "{}", run.log_text());
    common::stream::stop(&mut run, Duration::from_secs(30));
    db.drop_db().await;
}

/// Rows in the replica, 0 while it does not exist yet.
async fn count_if_exists(wh: &Warehouse) -> i64 {
    let exists = query(wh, "SELECT to_regclass('item')::text", &[]).await;
    if exists[0][0].is_none() {
        return 0;
    }
    count(wh, "item").await
}

/// The commit-lag gauge is the warehouse's figure, whoever merged: an instance whose own
/// schedule never merges the table shows the lag of the merges another instance ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_instance_shows_the_commit_lag_of_all_merges() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 2, 1).unwrap();
    let bootstrap = mock.bootstrap_servers();
    let merging = write_config(dir.path(), "merging", &bootstrap, &db.url, "* * * * * *");
    let idle = write_config(dir.path(), "idle", &bootstrap, &db.url, "0 0 0 1 1 * 2099");
    let mut a = Tidemark::run(&merging, &log_path("table-state-lag-a.log"), &[]);
    let mut b = Tidemark::run(&idle, &log_path("table-state-lag-b.log"), &[]);
    let ports =
        tokio::task::block_in_place(|| (a.http_port(Duration::from_secs(30)), b.http_port(Duration::from_secs(30))));
    let p = producer(&mock);
    for i in 0..20u64 {
        send(&p, (i % 2) as i32, &Canal::item().insert(&row(&i.to_string(), "1"), tso(i + 1)));
    }
    let wh = Warehouse::open(&db.url).await.unwrap();
    eventually("a merge by the merging instance", Duration::from_secs(60), || async {
        wh.newest_merged("item").await.unwrap().is_some()
    })
    .await;
    let newest = wh.newest_merged("item").await.unwrap().expect("merged");
    for (name, port) in [("merging", ports.0), ("idle", ports.1)] {
        let lag = eventually_some(
            &format!("the commit lag on the {name} instance"),
            Duration::from_secs(30),
            || async move {
                let text = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await.ok()?.text().await.ok()?;
                text.lines()
                    .find(|l| l.starts_with("tidemark_commit_lag_seconds{") && l.contains("table=\"item\""))
                    .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            },
        )
        .await;
        let since = (chrono::Utc::now().timestamp_millis() - newest) as f64 / 1000.0;
        // Read at a heartbeat (every 5 s) before now: between `since - 6` and `since`.
        assert!(lag <= since + 0.5 && lag >= since - 6.0, "{name}: lag {lag} s, the warehouse says {since} s");
    }
    common::stream::stop(&mut a, Duration::from_secs(30));
    common::stream::stop(&mut b, Duration::from_secs(30));
    db.drop_db().await;
}
