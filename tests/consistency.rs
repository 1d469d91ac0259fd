//! A replica never goes back in time, and with watermarks it is a consistent snapshot of
//! upstream: TiCDC's re-sends split across merges, the `ts` dispatcher with a lagging partition,
//! a multi-table transaction under a consistency group — each checked after EVERY merge against
//! the upstream model as of the point the merge reports — plus watermarks that go backwards,
//! replayed DDL, a partition that never sends a watermark, and a stream without watermarks that
//! cannot be ordered. The service lands through a real Kafka protocol peer (librdkafka's mock
//! cluster); the tests run the merges themselves, so that they can look between them.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use serde_json::json;
use tidemark::config::Config;
use tidemark::merge::{merge_unit, MergeOutcome, Target};
use tidemark::warehouse::Warehouse;
use tokio::sync::watch;

/// One key's changes: (commit ts, name or None for a delete).
type KeyHistory = Vec<(u64, Option<String>)>;

/// Upstream as the test writes it: per table, the history of each key (commit ts → row or
/// deleted), and the stream it goes to.
struct Upstream {
    mock: MockCluster<'static, DefaultProducerContext>,
    producer: ThreadedProducer<DefaultProducerContext>,
    produced: HashMap<(String, i32), i64>,
    /// (table, id) → its changes
    history: BTreeMap<(String, i64), KeyHistory>,
}

fn canal(table: &'static str) -> Canal {
    Canal { db: "shop", table, pk: vec!["id"], types: vec![("id", "int"), ("name", "varchar")] }
}

fn topic(table: &str) -> String {
    format!("tidb_shop_{table}")
}

impl Upstream {
    fn new(tables: &[&str], partitions: i32) -> Upstream {
        let mock = MockCluster::new(1).expect("mock cluster");
        for t in tables {
            mock.create_topic(&topic(t), partitions, 1).expect("topic");
        }
        let producer =
            ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().expect("producer");
        Upstream { mock, producer, produced: HashMap::new(), history: BTreeMap::new() }
    }

    fn send(&mut self, table: &str, partition: i32, payload: &[u8]) {
        let t = topic(table);
        self.producer.send(BaseRecord::<(), _>::to(&t).partition(partition).payload(payload)).expect("send");
        *self.produced.entry((t, partition)).or_default() += 1;
    }

    /// An upsert of `id` at commit ts `ts`, to `partition` (recorded in the model).
    fn upsert(&mut self, table: &'static str, partition: i32, id: i64, name: &str, ts: u64) {
        let msg = canal(table).insert(&[Some(&id.to_string()), Some(name)], ts);
        self.history.entry((table.to_string(), id)).or_default().push((ts, Some(name.to_string())));
        self.send(table, partition, &msg);
    }

    /// The same message again, as TiCDC re-sends (the model does not change).
    fn resend(&mut self, table: &'static str, partition: i32, id: i64, name: &str, ts: u64) {
        let msg = canal(table).insert(&[Some(&id.to_string()), Some(name)], ts);
        self.send(table, partition, &msg);
    }

    fn watermark(&mut self, table: &str, partitions: &[i32], ts: u64) {
        let msg = serde_json::to_vec(&json!({
            "id": 0, "database": "", "table": "", "pkNames": null, "isDdl": false, "type": "TIDB_WATERMARK",
            "es": ts >> 18, "ts": (ts >> 18) + 3, "sql": "", "sqlType": null, "mysqlType": null,
            "data": null, "old": null, "_tidb": {"watermarkTs": ts}
        }))
        .expect("json");
        for p in partitions {
            self.send(table, *p, &msg);
        }
    }

    fn ddl(&mut self, table: &str, partition: i32, sql: &str, ts: u64) {
        let msg = serde_json::to_vec(&json!({
            "id": 0, "database": "shop", "table": table, "pkNames": null, "isDdl": true, "type": "ALTER",
            "es": ts >> 18, "ts": (ts >> 18) + 3, "sql": sql, "sqlType": null, "mysqlType": null,
            "data": null, "old": null, "_tidb": {"commitTs": ts}
        }))
        .expect("json");
        self.send(table, partition, &msg);
    }

    /// The upstream table as of commit ts `point`: (id, name) sorted.
    fn as_of(&self, table: &str, point: u64) -> Vec<Vec<Option<String>>> {
        let mut out = Vec::new();
        for ((t, id), changes) in &self.history {
            if t != table {
                continue;
            }
            let last = changes.iter().filter(|(ts, _)| *ts <= point).max_by_key(|(ts, _)| *ts);
            if let Some((_, Some(name))) = last {
                out.push(vec![Some(id.to_string()), Some(name.clone())]);
            }
        }
        out
    }

    /// Waits until the warehouse has landed everything produced.
    async fn landed(&self, wh: &Warehouse) {
        self.producer.flush(Duration::from_secs(10)).expect("flush");
        let want = self.produced.clone();
        eventually("everything produced landed", Duration::from_secs(60), || {
            let want = want.clone();
            async move {
                let got = wh.offsets().await.unwrap();
                want.iter().all(|(k, n)| got.get(k) == Some(n))
            }
        })
        .await;
    }
}

/// The service, landing only (its schedule never fires: the test merges), on `url`.
struct Service {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<anyhow::Result<tidemark::service::pipeline::ConsumeStats>>,
    config: Config,
}

impl Service {
    fn start(up: &Upstream, url: &str, tables: &[&str], extra: &str) -> Service {
        let mut text = format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"consistency\"\nbatch_linger_ms = 20\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 * 2099\"\n{extra}\n",
            up.mock.bootstrap_servers()
        );
        for t in tables {
            text.push_str(&format!("[[tables]]\nname = {t:?}\ntopic = {:?}\n", topic(t)));
        }
        let config = Config::parse(&text).expect("config");
        let (stop, stopped) = watch::channel(false);
        let c = config.clone();
        let task = tokio::spawn(async move { tidemark::service::run(&c, stopped, Default::default()).await });
        Service { stop, task, config }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().expect("service");
    }

    fn targets(&self) -> Vec<Target> {
        self.config.tables().unwrap().iter().map(Target::from).collect()
    }
}

/// The replica's rows (none while it does not exist yet).
async fn replica(wh: &Warehouse, table: &str) -> Vec<Vec<Option<String>>> {
    if !replica_exists(wh, table).await {
        return Vec::new();
    }
    rows(wh, table, "CAST(id AS TEXT), name", "id").await
}

async fn replica_exists(wh: &Warehouse, table: &str) -> bool {
    let q = if wh.dialect() == tidemark::sql::dialect::Dialect::Postgres {
        format!("SELECT count(*) FROM pg_tables WHERE tablename = '{table}'")
    } else {
        format!("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '{table}'")
    };
    query_i64(wh, &q, &[]).await == 1
}

/// Merges `targets` as one unit and checks every table against the model as of the point the
/// merge reports (the same for all of them); returns that point.
async fn merge_and_check(wh: &Warehouse, up: &Upstream, targets: &[Target]) -> Option<u64> {
    let outcomes = merge_unit(wh, targets, true).await.expect("merge");
    let mut point = None;
    for (table, o) in &outcomes {
        if let MergeOutcome::Merged(r) = o {
            let p = r.point.expect("a watermark-gated merge reports its point") as u64;
            assert!(point.is_none_or(|q| q == p), "one point for the whole unit: {outcomes:?}");
            point = Some(p);
            assert!(r.table == *table);
        }
    }
    if let Some(p) = point {
        for (table, _) in &outcomes {
            assert_eq!(replica(wh, table).await, up.as_of(table, p), "`{table}` as of the merge's point {p}");
        }
    }
    point
}

/// TiCDC restarts and re-sends `v2, v3` after `v1, v2, v3` (the reference's §5.4): the re-sent
/// run lands across several merges, and the replica never reads an older value.
async fn resends_split_across_merges_never_go_back(url: &str) {
    let mut up = Upstream::new(&["item"], 1);
    let svc = Service::start(&up, url, &["item"], "");
    let wh = Warehouse::open(url).await.unwrap();
    let t = svc.targets();
    for (i, name) in ["v1", "v2", "v3"].iter().enumerate() {
        up.upsert("item", 0, 1, name, tso(i as u64 + 1));
    }
    up.watermark("item", &[0], tso(3));
    up.landed(&wh).await;
    assert_eq!(merge_and_check(&wh, &up, &t).await, Some(tso(3)));
    assert_eq!(replica(&wh, "item").await, vec![vec![s("1"), s("v3")]]);

    // The re-sent run, one message per merge: v2 (below the watermark: dropped at landing) ...
    up.resend("item", 0, 1, "v2", tso(2));
    up.landed(&wh).await;
    merge_and_check(&wh, &up, &t).await;
    assert_eq!(replica(&wh, "item").await, vec![vec![s("1"), s("v3")]]);
    // ... v3 (at the watermark: staged, and recognised at merge as at or below the last point).
    up.resend("item", 0, 1, "v3", tso(3));
    up.landed(&wh).await;
    merge_and_check(&wh, &up, &t).await;
    assert_eq!(replica(&wh, "item").await, vec![vec![s("1"), s("v3")]]);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0, "the stale re-send was removed, not applied");

    up.upsert("item", 0, 1, "v4", tso(5));
    up.watermark("item", &[0], tso(5));
    up.landed(&wh).await;
    assert_eq!(merge_and_check(&wh, &up, &t).await, Some(tso(5)));
    assert_eq!(replica(&wh, "item").await, vec![vec![s("1"), s("v4")]]);
    let state = wh.table("item").await.unwrap().unwrap();
    assert_eq!(state.resent, 1, "the change below the watermark was counted as a re-send");
    svc.stop().await;
}
both!(resends_split_across_merges_never_go_back);

/// TiCDC's `ts` dispatcher spreads one key over 3 partitions; partition 1 lags several merge
/// cycles behind. The replica is never older than upstream at the consistent point, and
/// converges to the newest values once the partition catches up.
async fn ts_dispatch_with_a_lagging_partition(url: &str) {
    let mut up = Upstream::new(&["item"], 3);
    let svc = Service::start(&up, url, &["item"], "");
    let wh = Warehouse::open(url).await.unwrap();
    let t = svc.targets();
    let mut held: Vec<(i64, String, u64)> = Vec::new();
    let mut points = Vec::new();
    let mut n = 0u64;
    for cycle in 0..5u64 {
        // Every change of every key goes to the partition of its commit ts.
        for id in 1..=4i64 {
            n += 1;
            let ts = tso(n);
            let name = format!("k{id}c{cycle}");
            if ts % 3 == 1 {
                // Partition 1's records are delayed (in the model already: upstream committed them).
                up.history.entry(("item".into(), id)).or_default().push((ts, Some(name.clone())));
                held.push((id, name, ts));
            } else {
                up.upsert("item", (ts % 3) as i32, id, &name, ts);
            }
        }
        n += 1;
        up.watermark("item", &[0, 2], tso(n));
        up.landed(&wh).await;
        points.push(merge_and_check(&wh, &up, &t).await);
    }
    assert!(points.iter().all(Option::is_none), "no point can pass the lagging partition: {points:?}");
    // Partition 1 catches up: its records, then its watermarks.
    for (id, name, ts) in held {
        let msg = canal("item").insert(&[Some(&id.to_string()), Some(&name)], ts);
        up.send("item", 1, &msg);
    }
    up.watermark("item", &[1], tso(n));
    up.landed(&wh).await;
    assert_eq!(merge_and_check(&wh, &up, &t).await, Some(tso(n)));
    let newest: Vec<Vec<Option<String>>> =
        (1..=4).map(|id| vec![Some(id.to_string()), Some(format!("k{id}c4"))]).collect();
    assert_eq!(replica(&wh, "item").await, newest, "converged to the newest values");
    svc.stop().await;
}
both!(ts_dispatch_with_a_lagging_partition);

/// A transaction touching two tables (several partitions each) under a consistency group: after
/// each merge cycle the warehouse equals upstream as of exactly one TSO — both tables, never a
/// mix — even while one table's partition lags.
async fn a_group_is_consistent_across_tables(url: &str) {
    let mut up = Upstream::new(&["orders", "order_line"], 2);
    let svc = Service::start(&up, url, &["orders", "order_line"], "group = \"shop\"");
    let wh = Warehouse::open(url).await.unwrap();
    let t = svc.targets();
    let mut n = 0u64;
    let mut late: Vec<(i64, String, u64)> = Vec::new();
    let mut seen = Vec::new();
    for cycle in 0..6u64 {
        for order in 1..=3i64 {
            n += 1;
            let ts = tso(n);
            // One upstream transaction: the order and its line, same commit ts.
            up.upsert("orders", (order % 2) as i32, order, &format!("o{order}c{cycle}"), ts);
            let line = format!("l{order}c{cycle}");
            if cycle % 2 == 0 && order == 2 {
                // order_line's partition 0 lags this cycle.
                up.history.entry(("order_line".into(), order)).or_default().push((ts, Some(line.clone())));
                late.push((order, line, ts));
            } else {
                up.upsert("order_line", (order % 2) as i32, order, &line, ts);
            }
        }
        n += 1;
        up.watermark("orders", &[0, 1], tso(n));
        up.watermark("order_line", &[1], tso(n));
        if cycle % 2 == 1 {
            // The lagging partition catches up, then says so.
            for (id, name, ts) in late.drain(..) {
                up.send(
                    "order_line",
                    (id % 2) as i32,
                    &canal("order_line").insert(&[Some(&id.to_string()), Some(&name)], ts),
                );
            }
            up.watermark("order_line", &[0], tso(n));
        }
        up.landed(&wh).await;
        seen.push(merge_and_check(&wh, &up, &t).await);
    }
    assert!(seen.iter().flatten().count() >= 3, "the group merged at several points: {seen:?}");
    assert_eq!(seen.last().copied().flatten(), Some(tso(n)));
    let state = wh.table("orders").await.unwrap().unwrap();
    assert_eq!(state.merged_point, Some(tso(n) as i64));
    svc.stop().await;
}
both!(a_group_is_consistent_across_tables);

/// A watermark that goes backwards (TiCDC replays them) never lowers a partition's; a DDL sent
/// twice (replayed) is recorded once; a partition that never sends a watermark holds the table
/// back, and `status` says which.
async fn replayed_watermarks_and_ddl_and_a_silent_partition(url: &str) {
    let mut up = Upstream::new(&["item"], 2);
    let svc = Service::start(&up, url, &["item"], "");
    let wh = Warehouse::open(url).await.unwrap();
    let t = svc.targets();
    up.upsert("item", 0, 1, "a", tso(1));
    up.ddl("item", 0, "ALTER TABLE item ADD COLUMN note varchar(10)", tso(2));
    up.ddl("item", 0, "ALTER TABLE item ADD COLUMN note varchar(10)", tso(2));
    up.watermark("item", &[0], tso(10));
    up.watermark("item", &[0], tso(4));
    up.landed(&wh).await;
    let marks =
        query(&wh, "SELECT kafka_partition, watermark FROM _tidemark_offsets ORDER BY kafka_partition", &[]).await;
    assert_eq!(marks, vec![vec![s("0"), Some(tso(10).to_string())]], "the replayed older watermark is ignored");
    assert_eq!(count(&wh, "_tidemark_ddl").await, 1, "the replayed DDL is recorded once");
    let outcome = merge_unit(&wh, &t, true).await.unwrap();
    let waiting = match &outcome[0].1 {
        MergeOutcome::Waiting(w) => w.clone(),
        other => panic!("merged without a watermark from partition 1: {other:?}"),
    };
    assert!(waiting.contains("partition 1"), "{waiting}");
    let status = tidemark::commands::status::collect(&wh, &svc.config.tables().unwrap()).await.unwrap();
    let c = status.tables[0].consistency.as_ref().expect("a watermark-gated table");
    assert_eq!(c.point, None);
    assert!(c.held_back_by.as_deref().is_some_and(|h| h.contains("partition 1: no watermark yet")), "{c:?}");
    let text = tidemark::commands::status::render(&status);
    assert!(text.contains("the point waits for topic tidb_shop_item partition 1"), "{text}");

    // Partition 1 speaks: the point is the minimum, the replica follows.
    up.watermark("item", &[1], tso(6));
    up.landed(&wh).await;
    assert_eq!(merge_and_check(&wh, &up, &t).await, Some(tso(6)));
    let status = tidemark::commands::status::collect(&wh, &svc.config.tables().unwrap()).await.unwrap();
    let c = status.tables[0].consistency.clone().unwrap();
    assert_eq!(c.point, Some(tso(6) as i64), "{c:?}");
    assert!(c.held_back_by.as_deref().is_some_and(|h| h.contains("partition 1: watermark")), "{c:?}");
    svc.stop().await;
}
both!(replayed_watermarks_and_ddl_and_a_silent_partition);

/// Without watermarks tidemark cannot order a key whose changes go to several partitions: it
/// says so once, in the log, `status` and the table's record.
async fn a_key_on_two_partitions_without_watermarks_is_reported(url: &str) {
    let mut up = Upstream::new(&["item"], 2);
    let svc = Service::start(&up, url, &["item"], "");
    let wh = Warehouse::open(url).await.unwrap();
    up.upsert("item", 0, 1, "a", tso(1));
    up.upsert("item", 0, 2, "b", tso(2));
    up.landed(&wh).await;
    assert_eq!(wh.table("item").await.unwrap().unwrap().ordering_warning, None, "index-value so far");
    up.upsert("item", 1, 1, "c", tso(3));
    up.upsert("item", 1, 1, "d", tso(4));
    up.landed(&wh).await;
    let warning = wh.table("item").await.unwrap().unwrap().ordering_warning.expect("the warning");
    assert!(warning.contains("partitions 0 and 1"), "{warning}");
    let status = tidemark::commands::status::collect(&wh, &svc.config.tables().unwrap()).await.unwrap();
    assert!(tidemark::commands::status::render(&status).contains("WARNING: key {\"id\":\"1\"}"));
    // Ungated: merged by commit ts, as before.
    let outcome = merge_unit(&wh, &svc.targets(), true).await.unwrap();
    assert!(matches!(&outcome[0].1, MergeOutcome::Merged(r) if r.point.is_none()), "{outcome:?}");
    assert_eq!(replica(&wh, "item").await, vec![vec![s("1"), s("d")], vec![s("2"), s("b")]]);
    svc.stop().await;
}
both!(a_key_on_two_partitions_without_watermarks_is_reported);

/// Upstream idle for two minutes while TiCDC's watermarks keep coming: the replica is up to
/// date as of the newest watermark, and `status` says so — its lag is not the age of the last
/// change.
async fn an_idle_upstream_does_not_make_the_replica_lag(url: &str) {
    let mut up = Upstream::new(&["item"], 1);
    let svc = Service::start(&up, url, &["item"], "");
    let wh = Warehouse::open(url).await.unwrap();
    let tso_ago = |secs: i64| ((chrono::Utc::now().timestamp_millis() - secs * 1000) as u64) << 18;
    up.upsert("item", 0, 1, "a", tso_ago(120));
    up.watermark("item", &[0], tso_ago(119));
    up.landed(&wh).await;
    merge_and_check(&wh, &up, &svc.targets()).await;
    up.watermark("item", &[0], tso_ago(0));
    up.landed(&wh).await;
    let status = tidemark::commands::status::collect(&wh, &svc.config.tables().unwrap()).await.unwrap();
    let lag = status.tables[0].replica_lag_s.expect("a replica lag");
    assert!(lag < 30.0, "upstream idle, watermarks current, yet a replica lag of {lag:.0} s");
    svc.stop().await;
}
both!(an_idle_upstream_does_not_make_the_replica_lag);
