//! `tidemark snapshot` and `tidemark verify` against a real upstream: MariaDB (the machine's
//! server, a database per test) as the MySQL-protocol upstream, PostgreSQL as the warehouse.
//! The stream is canal-json made from the writer's own log of what it changed (each change read
//! back after it committed; one writer, so log order is commit order), landed by tidemark's
//! Lander and merged while the snapshot runs — as `tidemark run` would.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::upstream::{CanalOf, UpstreamDb};
use common::{eventually, query, query_i64, records, tso, TestDb};
use serde_json::Value as Json;
use tidemark::config::Config;
use tidemark::merge::merge;
use tidemark::reconcile::verify::{verify, VerifyOptions};
use tidemark::upstream::Upstream;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_up_item";

/// Every MySQL type tidemark maps.
const ITEM: &str = "CREATE TABLE item (
    id BIGINT NOT NULL PRIMARY KEY,
    t_tiny TINYINT, t_small SMALLINT UNSIGNED, t_int INT, t_ubig BIGINT UNSIGNED,
    t_dec DECIMAL(30,10), t_float FLOAT, t_double DOUBLE,
    t_char CHAR(4), t_varchar VARCHAR(40), t_text TEXT,
    t_bin BINARY(3), t_varbin VARBINARY(20), t_blob BLOB,
    t_bit BIT(10), t_enum ENUM('red','green','blue'), t_set SET('a','b','c'),
    t_date DATE, t_time TIME(3), t_dt DATETIME(6), t_ts TIMESTAMP(3) NULL, t_year YEAR,
    t_json JSON
)";

/// The row generated from `seq` (a number), in column order.
fn generated(seq: &str) -> String {
    let seq = &format!("CAST({seq} AS SIGNED)");
    [
        seq.to_string(),
        format!("{seq} % 256 - 128"),
        format!("{seq} % 65536"),
        format!("{seq} * 7 - 700000"),
        format!("18446744073709551615 - {seq}"),
        format!("CAST(CONCAT({seq}, '.', LPAD({seq} * 7919 % 10000000000, 10, '0')) AS DECIMAL(30,10))"),
        format!("{seq} / 7"),
        format!("{seq} / 3 + 0.1e0"),
        format!("LEFT(CONCAT('c', {seq}), 4)"),
        format!("IF({seq} % 11 = 0, NULL, CONCAT('name ', {seq}))"),
        format!("REPEAT('t', {seq} % 50)"),
        format!("UNHEX(LPAD(HEX({seq} % 16777216), 6, '0'))"),
        format!("UNHEX(HEX({seq}))"),
        format!("IF({seq} % 5 = 0, NULL, UNHEX(MD5({seq})))"),
        format!("{seq} % 1024"),
        format!("1 + {seq} % 3"),
        format!("{seq} % 8"),
        format!("'2024-01-01' + INTERVAL {seq} % 3000 DAY"),
        format!("SEC_TO_TIME({seq} * 13 % 6040798 - 3020399 + 0.25)"),
        format!("TIMESTAMP('2020-01-01') + INTERVAL {seq} * 1000003 MICROSECOND"),
        format!("IF({seq} % 13 = 0, NULL, FROM_UNIXTIME(1600000000 + {seq} + 0.125))"),
        format!("1901 + {seq} % 255"),
        format!("JSON_OBJECT('n', {seq}, 's', CONCAT('x', {seq}))"),
    ]
    .join(", ")
}

async fn item_table(up: &UpstreamDb, rows: u64) {
    up.exec(ITEM).await;
    up.exec(&format!("INSERT INTO item SELECT {} FROM seq_1_to_{rows}", generated("seq"))).await;
}

fn write_config(dir: &Path, wh_url: &str, up_url: &str, chunk_rows: usize) -> PathBuf {
    let path = dir.join("tidemark.toml");
    let text = format!(
        "[warehouse]\nurl = {wh_url:?}\n[upstream]\nurl = {up_url:?}\nchunk_rows = {chunk_rows}\n\
         [defaults]\nschedule = \"0 0 0 1 1 *\"\n[[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\nformat = \"canal-json\"\n"
    );
    std::fs::write(&path, text).expect("config");
    path
}

/// `tidemark --config C <args>`: exit code, stdout, stderr.
fn tidemark(config: &Path, args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
    cmd.arg("--config").arg(config).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run tidemark");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A writer changing `item` at random keys (inserts above the loaded rows too), logging each
/// change as canal-json at an increasing commit ts.
struct Writer {
    stop: Arc<AtomicBool>,
    changes: Arc<AtomicU64>,
    handle: tokio::task::JoinHandle<()>,
}

impl Writer {
    fn start(up: &UpstreamDb, canal: Arc<CanalOf>, log: Arc<Mutex<Vec<Vec<u8>>>>, max_id: i64) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(AtomicU64::new(0));
        let pool = up.pool.clone();
        let (s, n) = (stop.clone(), changes.clone());
        let handle = tokio::spawn(async move {
            let mut conn = pool.acquire().await.expect("writer connection");
            let mut x: u64 = 0x2545_f491_4f6c_dd1d;
            let mut seq = 0u64;
            while !s.load(Ordering::SeqCst) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let id = 1 + (x % max_id as u64) as i64;
                let before = canal.row(&mut conn, id).await;
                let kind = match (&before, x % 10) {
                    (None, _) => {
                        let sql = format!("INSERT INTO item SELECT {} FROM (SELECT ? AS seq) AS s", generated("s.seq"));
                        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).execute(&mut *conn).await.expect("insert");
                        "INSERT"
                    }
                    (Some(_), 0..=2) => {
                        sqlx::query("DELETE FROM item WHERE id = ?")
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .expect("delete");
                        "DELETE"
                    }
                    (Some(_), _) => {
                        sqlx::query(
                            "UPDATE item SET t_varchar = CONCAT('upd ', ?), t_dec = t_dec + 0.0000000001, \
                             t_blob = UNHEX(MD5(?)), t_ts = NOW(3), t_enum = 1 + (? % 3), t_text = NULL, \
                             t_json = JSON_OBJECT('u', ?) WHERE id = ?",
                        )
                        .bind(seq as i64)
                        .bind(seq as i64)
                        .bind(seq as i64)
                        .bind(seq as i64)
                        .bind(id)
                        .execute(&mut *conn)
                        .await
                        .expect("update");
                        "UPDATE"
                    }
                };
                seq += 1;
                let data = if kind == "DELETE" { before } else { canal.row(&mut conn, id).await };
                let data = data.expect("the changed row");
                log.lock().expect("log").push(canal.message(kind, &data, tso(seq)));
                n.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        });
        Writer { stop, changes, handle }
    }

    async fn stop(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("writer");
        self.changes.load(Ordering::SeqCst)
    }
}

/// The stream: the writer's log landed in order, and merged — as `tidemark run` does.
struct Stream {
    stop: Arc<AtomicBool>,
    handle: tokio::task::JoinHandle<()>,
}

impl Stream {
    async fn start(wh: Arc<Warehouse>, config: &Config, log: Arc<Mutex<Vec<Vec<u8>>>>) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let mut lander = common::lander(&wh, config).await;
        let handle = tokio::spawn(async move {
            let mut landed = 0usize;
            loop {
                let stopping = s.load(Ordering::SeqCst);
                let batch: Vec<Vec<u8>> = log.lock().expect("log")[landed..].to_vec();
                if !batch.is_empty() {
                    let n = batch.len();
                    lander.land(&records(TOPIC, 0, landed as i64, batch)).await.expect("land the stream");
                    landed += n;
                }
                merge(&wh, "item", true).await.expect("merge");
                if stopping {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Stream { stop, handle }
    }

    /// Lands what is left of the log, merges once more, and stops.
    async fn drain(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.await.expect("stream");
    }
}

async fn verify_now(config: &Config, wh: &Warehouse, settle: Duration) -> tidemark::reconcile::verify::VerifyReport {
    let up = Upstream::connect(&config.upstream.as_ref().expect("upstream").url.0).await.expect("upstream");
    let table = config.table("item").expect("item");
    let opts = VerifyOptions { chunk_rows: 5000, settle, progress: false };
    verify(&up, wh, &table, &opts, None).await.expect("verify")
}

/// A 200,000-row table snapshotted while a writer changes it and its stream lands and merges:
/// the snapshot is killed (SIGKILL) mid-way and run again, and stopped again just before it
/// records that it is done — no chunk staged twice, merges held below its rows until then —
/// and the replica ends equal to upstream. `verify` finds no difference while the stream still
/// flows, and none at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_table_snapshotted_through_a_crash_converges_with_its_stream() {
    let up = UpstreamDb::create().await;
    item_table(&up, 200_000).await;
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = write_config(dir.path(), &db.url, &up.url, 5000);
    let config = Config::load(&config_path, false).expect("config");
    let wh = Warehouse::open(&db.url).await.expect("warehouse");

    let canal = Arc::new(CanalOf::new(&up, "item", "id").await);
    let log = Arc::new(Mutex::new(Vec::new()));
    // The stream starts before the snapshot: it holds every change from before it on.
    let writer = Writer::start(&up, canal, log.clone(), 210_000);
    eventually("the writer changes rows", Duration::from_secs(30), || async {
        writer.changes.load(Ordering::SeqCst) > 20
    })
    .await;
    let stream = Stream::start(wh.clone(), &config, log.clone()).await;

    // Killed after a few chunks landed.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("--config")
        .arg(&config_path)
        .args(["snapshot", "--table", "item"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn snapshot");
    let landed_sql = "SELECT COALESCE(max(rows_landed), 0) FROM _tidemark_snapshots WHERE name = 'item'";
    eventually("the snapshot lands three chunks", Duration::from_secs(120), || async {
        query_i64(&wh, landed_sql, &[]).await >= 15_000
    })
    .await;
    child.kill().expect("SIGKILL the snapshot");
    let _ = child.wait();
    let staged_sql = "SELECT count(*) FROM _tidemark_stage_item WHERE _tm_topic LIKE 'snapshot:%'";
    let landed = query_i64(&wh, landed_sql, &[]).await;
    assert!(landed < 200_000, "the snapshot was killed mid-way ({landed} rows landed)");
    // Merges hold the snapshot's rows while it runs: every row it landed is still staged.
    assert_eq!(query_i64(&wh, staged_sql, &[]).await, landed, "the killed snapshot's rows, each once");

    let (_, out, _) = tidemark(&config_path, &["status"], &[]);
    assert!(out.contains("snapshot from") && out.contains("NOT DONE"), "status says the snapshot is not done: {out}");

    // Run again: it resumes after the last landed chunk; stopped just before it is done.
    let (code, _, err) =
        tidemark(&config_path, &["snapshot", "--table", "item"], &[("TIDEMARK_FAILPOINTS", "snapshot.before_done=1")]);
    assert_ne!(code, 0, "the failpoint stops it: {err}");
    let staged = query(
        &wh,
        "SELECT count(*)::text, count(DISTINCT _tm_key)::text FROM _tidemark_stage_item WHERE _tm_topic LIKE 'snapshot:%'",
        &[],
    )
    .await;
    let landed = query_i64(&wh, landed_sql, &[]).await;
    assert!(landed > 190_000, "every chunk landed: {landed}");
    assert_eq!(staged[0][0].as_deref(), Some(landed.to_string().as_str()), "all staged, none merged yet: {staged:?}");
    assert_eq!(staged[0][0], staged[0][1], "no key staged twice: no chunk landed twice");

    // Run once more: nothing is left to read; it records that it is done and merges go on.
    let (code, out, err) = tidemark(&config_path, &["snapshot", "--table", "item"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("resumed after key"), "{out}");
    assert!(out.contains("must hold every change from"), "it says how the stream must start: {out}");

    // While the stream still flows, verify sees no false difference.
    eventually("the snapshot's rows are merged", Duration::from_secs(120), || async {
        query_i64(&wh, staged_sql, &[]).await == 0
    })
    .await;
    let live = verify_now(&config, &wh, Duration::from_secs(20)).await;
    assert!(live.equal, "a live stream under verify: {}", live.describe());

    let changes = writer.stop().await;
    stream.drain().await;
    assert!(changes > 200, "the writer kept changing rows ({changes})");
    let end = verify_now(&config, &wh, Duration::ZERO).await;
    assert!(end.equal, "{}", end.describe());
    assert_eq!(end.replica_rows as i64, up.count("item").await);

    db.drop_db().await;
    up.drop_db().await;
}

/// `verify` says exactly how a replica differs — a changed row, a missing one, an extra one,
/// NULL against the empty string, a decimal's last digit, one byte of a blob — exits non-zero
/// until `--fix` and a merge repair it, then 0.
#[tokio::test]
async fn verify_reports_each_difference_and_fix_repairs_them() {
    let up = UpstreamDb::create().await;
    item_table(&up, 1000).await;
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = write_config(dir.path(), &db.url, &up.url, 128);
    let (code, out, err) = tidemark(&config_path, &["snapshot", "--table", "item"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("item: 1000 rows from"), "{out}");
    let (code, out, err) = tidemark(&config_path, &["merge", "--table", "item"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tidemark(&config_path, &["verify", "--table", "item"], &[]);
    assert_eq!(code, 0, "equal tables: {out}{err}");
    assert!(out.contains("1000 upstream rows") && out.contains("equal"), "{out}");
    let (_, out, _) = tidemark(&config_path, &["status"], &[]);
    assert!(out.contains("snapshot from") && out.contains("done") && out.contains("1000 rows"), "{out}");

    let wh = Warehouse::open(&db.url).await.expect("warehouse");
    for sql in [
        "UPDATE item SET t_int = t_int + 1 WHERE id = 10",
        "DELETE FROM item WHERE id = 20",
        "INSERT INTO item (id, t_varchar) VALUES (5000, 'not upstream')",
        "UPDATE item SET t_text = NULL WHERE id = 50", // upstream: '' (50 % 50 = 0)
        "UPDATE item SET t_dec = t_dec + 0.0000000001 WHERE id = 60",
        "UPDATE item SET t_blob = overlay(t_blob placing '\\x00'::bytea from 3 for 1) WHERE id = 71",
    ] {
        common::exec(&wh, sql).await;
    }
    let (code, out, err) = tidemark(&config_path, &["verify", "--table", "item", "--json", "--settle", "0"], &[]);
    assert_eq!(code, 1, "{out}{err}");
    let reports: Json = serde_json::from_str(&out).expect("verify --json");
    let r = &reports[0];
    assert_eq!(r["equal"], false);
    assert_eq!(r["upstream_rows"], 1000);
    // (key, kind, [(column, replica, upstream)])
    type Reported = (String, String, Vec<(String, Json, Json)>);
    let diffs: Vec<Reported> = r["differences"]
        .as_array()
        .expect("differences")
        .iter()
        .map(|d| {
            let cols = d["columns"]
                .as_array()
                .map(|cs| {
                    cs.iter()
                        .map(|c| {
                            (c["column"].as_str().unwrap().to_string(), c["replica"].clone(), c["upstream"].clone())
                        })
                        .collect()
                })
                .unwrap_or_default();
            (d["key"]["id"].as_str().unwrap().to_string(), d["kind"].as_str().unwrap().to_string(), cols)
        })
        .collect();
    let find =
        |id: &str| diffs.iter().find(|d| d.0 == id).unwrap_or_else(|| panic!("key {id} not reported: {diffs:?}"));
    assert_eq!(diffs.len(), 6, "exactly the six differences: {diffs:?}");
    let d = find("10");
    assert_eq!((d.1.as_str(), d.2.len()), ("different", 1), "{d:?}");
    assert_eq!(d.2[0].0, "t_int");
    assert_eq!(d.2[0].1, Json::String((10 * 7 - 700000 + 1).to_string()));
    assert_eq!(d.2[0].2, Json::String((10 * 7 - 700000).to_string()));
    assert_eq!(find("20").1, "missing");
    assert_eq!(find("5000").1, "extra");
    let d = find("50");
    assert_eq!(d.2, vec![("t_text".to_string(), Json::Null, Json::String(String::new()))], "NULL vs ''");
    let d = find("60");
    assert_eq!(d.2.len(), 1);
    assert_eq!(d.2[0].0, "t_dec");
    let (rep, upv) = (d.2[0].1.as_str().unwrap(), d.2[0].2.as_str().unwrap());
    assert_eq!(rep.len(), upv.len(), "only the last digit differs: {rep} vs {upv}");
    assert_eq!(&rep[..rep.len() - 1], &upv[..upv.len() - 1], "{rep} vs {upv}");
    let d = find("71");
    assert_eq!(d.2.len(), 1);
    assert_eq!(d.2[0].0, "t_blob");

    // The human form names each of them too.
    let (_, out, _) = tidemark(&config_path, &["verify", "--table", "item", "--settle", "0"], &[]);
    for line in ["differs  {\"id\":\"10\"}: t_int", "missing  {\"id\":\"20\"}", "extra    {\"id\":\"5000\"}"] {
        assert!(out.contains(line), "{line} in {out}");
    }

    let (code, out, err) = tidemark(&config_path, &["verify", "--table", "item", "--fix", "--settle", "0"], &[]);
    assert_eq!(code, 1, "it still differed when it looked: {out}{err}");
    assert!(out.contains("6 corrective changes landed"), "{out}");
    let (code, out, err) = tidemark(&config_path, &["merge", "--table", "item"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = tidemark(&config_path, &["verify", "--table", "item"], &[]);
    assert_eq!(code, 0, "repaired: {out}{err}");

    db.drop_db().await;
    up.drop_db().await;
}

/// The TiDB statements cannot run here (no TiDB): they render, with their TiDB-only variables.
#[test]
fn the_tidb_statements_render() {
    use tidemark::sql::dialect::Dialect;
    use tidemark::sql::{Sql, UpstreamStmt, UPSTREAM_TEMPLATES};
    let sql = Sql::with_sets(Dialect::Mysql, &[UPSTREAM_TEMPLATES]);
    let current = sql.fixed(UpstreamStmt::TidbCurrentTs).expect("render").text;
    assert!(current.contains("@@tidb_current_ts"), "{current}");
    let at = sql.fixed(UpstreamStmt::TidbSnapshotAt).expect("render").text;
    assert!(at.contains("SET @@tidb_snapshot = ?"), "{at}");
    let begin = sql.fixed(UpstreamStmt::SnapshotBegin).expect("render").text;
    assert!(begin.contains("WITH CONSISTENT SNAPSHOT"), "{begin}");
}

/// A key-only canal-json record (TiCDC's large-message `handle-key-only`): data and mysqlType
/// hold only the key columns.
fn key_only(db: &str, kind: &str, id: i64, ts: u64) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": 0, "database": db, "table": "item", "pkNames": ["id"], "isDdl": false, "type": kind,
        "es": ts >> 18, "ts": (ts >> 18) + 5, "sql": "", "sqlType": {"id": -5}, "mysqlType": {"id": "bigint(20)"},
        "data": [{"id": id.to_string()}], "old": null, "_tidb": {"commitTs": ts, "onlyHandleKey": true}
    }))
    .expect("json")
}

/// Key-only records resolved from the upstream database (MariaDB: as the row is now): an
/// update and an insert land the rows upstream holds, every type exact; a delete needs only its
/// key. Without [upstream] the same record is a dead letter saying what to configure.
#[tokio::test]
async fn key_only_records_are_resolved_from_upstream() {
    let up = UpstreamDb::create().await;
    item_table(&up, 100).await;
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = write_config(dir.path(), &db.url, &up.url, 1000);
    let (code, out, err) = tidemark(&config_path, &["snapshot", "--table", "item"], &[]);
    assert_eq!(code, 0, "{out}{err}");
    let config = Config::load(&config_path, false).expect("config");
    let wh = Warehouse::open(&db.url).await.expect("warehouse");
    merge(&wh, "item", true).await.expect("merge the snapshot");

    up.exec("UPDATE item SET t_varchar = 'changed', t_blob = UNHEX('00ff00'), t_dec = -1.0000000001 WHERE id = 3")
        .await;
    up.exec("DELETE FROM item WHERE id = 4").await;
    up.exec(&format!("INSERT INTO item SELECT {} FROM (SELECT 5000 AS seq) AS s", generated("s.seq"))).await;
    let msgs = vec![
        key_only(&up.name, "UPDATE", 3, tso(1)),
        key_only(&up.name, "DELETE", 4, tso(2)),
        key_only(&up.name, "INSERT", 5000, tso(3)),
        // Inserted and deleted since: upstream has no row, the stream its delete.
        key_only(&up.name, "INSERT", 6000, tso(4)),
    ];
    let mut lander = common::lander(&wh, &config).await;
    lander.resolve_key_only_from(up.url.clone());
    let report = lander.land(&records(TOPIC, 0, 0, msgs)).await.expect("land");
    assert_eq!(report.dead_letters, 0, "{report:?}");
    merge(&wh, "item", true).await.expect("merge");
    let r = verify_now(&config, &wh, Duration::ZERO).await;
    assert!(r.equal, "{}", r.describe());
    assert_eq!(r.replica_rows, 100, "3 updated, 4 deleted, 5000 inserted");

    // Without [upstream]: a dead letter that says why.
    let mut bare = common::lander(&wh, &config).await;
    let report = bare.land(&records(TOPIC, 0, 4, vec![key_only(&up.name, "UPDATE", 5, tso(5))])).await.expect("land");
    assert_eq!(report.dead_letters, 1, "{report:?}");
    let error = query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await;
    let error = error[0][0].clone().unwrap_or_default();
    assert!(error.contains("handle-key-only") && error.contains("[upstream]"), "{error}");

    db.drop_db().await;
    up.drop_db().await;
}
