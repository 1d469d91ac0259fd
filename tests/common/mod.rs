//! Test support: real databases (a fresh PostgreSQL database per test, an SQLite file per
//! test) and canal-json messages shaped exactly as TiCDC writes them.
#![allow(dead_code)]

pub mod broker;
pub mod process;
pub mod proxy;
pub mod registry;
pub mod s3;
pub mod stream;
pub mod upstream;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value as Json};
use sqlx::Connection;
use tidemark::codec::ValueContext;
use tidemark::config::Config;
use tidemark::land::Lander;
use tidemark::source::RawRecord;
use tidemark::sql::Rendered;
use tidemark::warehouse::db::Bind;
use tidemark::warehouse::Warehouse;

/// The server the tests create their databases on. `scripts/test.sh` starts PostgreSQL and
/// exports this; the default is the machine's local server.
pub fn pg_admin_url() -> String {
    std::env::var("TIDEMARK_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A warehouse under test: a fresh database, dropped at the end.
pub struct TestDb {
    pub url: String,
    pg_name: Option<String>,
    _dir: Option<tempfile::TempDir>,
}

impl TestDb {
    pub async fn postgres() -> TestDb {
        let admin = pg_admin_url();
        let name = format!("tidemark_test_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin}: {e}\n\
                 Run the tests with ./scripts/test.sh (it starts PostgreSQL), or point \
                 TIDEMARK_TEST_PG_URL at a server (15 or newer)."
            )
        });
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}")))
            .execute(&mut conn)
            .await
            .expect("drop old test database");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create test database");
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap_or(admin.clone());
        TestDb { url: format!("{base}/{name}"), pg_name: Some(name), _dir: None }
    }

    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("tidemark.db").display());
        TestDb { url, pg_name: None, _dir: Some(dir) }
    }

    pub async fn drop_db(self) {
        if let Some(name) = &self.pg_name {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&pg_admin_url()).await {
                let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut conn)
                    .await;
            }
        }
    }
}

/// A config with the given tables (`name`, `topic`), warehouse `url`.
pub fn config(url: &str, tables: &[(&str, &str)]) -> Config {
    let mut text = format!("[warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\n");
    for (name, topic) in tables {
        text.push_str(&format!("[[tables]]\nname = {name:?}\ntopic = {topic:?}\n"));
    }
    Config::parse(&text).expect("test config")
}

pub async fn lander(wh: &Arc<Warehouse>, cfg: &Config) -> Lander {
    Lander::new(wh.clone(), cfg.tables().expect("tables"), ValueContext::default(), cfg.schema_registry.as_ref())
        .await
        .expect("lander")
}

/// A canal-json DML message as TiCDC writes it (with `enable-tidb-extension=true`).
pub struct Canal {
    pub db: &'static str,
    pub table: &'static str,
    pub pk: Vec<&'static str>,
    pub types: Vec<(&'static str, &'static str)>,
}

impl Canal {
    pub fn item() -> Canal {
        Canal {
            db: "tpcc",
            table: "item",
            pk: vec!["i_id"],
            types: vec![
                ("i_id", "int"),
                ("i_im_id", "int"),
                ("i_name", "varchar"),
                ("i_price", "decimal"),
                ("i_data", "varchar"),
            ],
        }
    }

    fn obj(&self, values: &[Option<&str>]) -> Json {
        let mut m = serde_json::Map::new();
        for ((name, _), v) in self.types.iter().zip(values) {
            m.insert(name.to_string(), v.map(|s| Json::String(s.into())).unwrap_or(Json::Null));
        }
        Json::Object(m)
    }

    fn msg(&self, kind: &str, data: Json, old: Json, commit_ts: u64) -> Vec<u8> {
        let types: serde_json::Map<String, Json> =
            self.types.iter().map(|(n, t)| (n.to_string(), Json::String(t.to_string()))).collect();
        let sql_types: serde_json::Map<String, Json> =
            self.types.iter().map(|(n, _)| (n.to_string(), json!(12))).collect();
        serde_json::to_vec(&json!({
            "id": 0, "database": self.db, "table": self.table, "pkNames": self.pk, "isDdl": false,
            "type": kind, "es": commit_ts >> 18, "ts": (commit_ts >> 18) + 5, "sql": "",
            "sqlType": sql_types, "mysqlType": types, "data": [data], "old": old,
            "_tidb": {"commitTs": commit_ts}
        }))
        .expect("json")
    }

    pub fn insert(&self, row: &[Option<&str>], ts: u64) -> Vec<u8> {
        self.msg("INSERT", self.obj(row), Json::Null, ts)
    }

    pub fn update(&self, row: &[Option<&str>], old: &[Option<&str>], ts: u64) -> Vec<u8> {
        self.msg("UPDATE", self.obj(row), json!([self.obj(old)]), ts)
    }

    pub fn delete(&self, row: &[Option<&str>], ts: u64) -> Vec<u8> {
        self.msg("DELETE", self.obj(row), Json::Null, ts)
    }

    /// A record without any commit timestamp (as TiCDC's Avro deletes arrive).
    pub fn without_ts(msg: Vec<u8>) -> Vec<u8> {
        let mut v: Json = serde_json::from_slice(&msg).expect("json");
        let o = v.as_object_mut().expect("object");
        o.remove("_tidb");
        o.insert("es".into(), json!(0));
        serde_json::to_vec(&v).expect("json")
    }
}

/// TiDB-like commit timestamps: physical ms << 18 | logical.
pub fn tso(n: u64) -> u64 {
    ((1_700_000_000_000 + n) << 18) | (n & 0xff)
}

/// Records on one topic/partition with consecutive offsets from `first_offset`.
pub fn records(topic: &str, partition: i32, first_offset: i64, values: Vec<Vec<u8>>) -> Vec<RawRecord> {
    let topic: Arc<str> = topic.into();
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| RawRecord {
            topic: topic.clone(),
            partition,
            offset: first_offset + i as i64,
            key: None,
            value: Some(v),
        })
        .collect()
}

/// A test's own query (not a template: tests inspect the warehouse as they like), every cell as
/// text.
pub async fn query(wh: &Warehouse, sql: &str, binds: &[Bind]) -> Vec<Vec<Option<String>>> {
    let q = Rendered { name: "a test's query", text: sql.to_string() };
    wh.pool
        .fetch_rows(q, binds)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:#}"))
        .into_iter()
        .map(|r| r.cells().iter().map(|c| c.to_text()).collect())
        .collect()
}

/// Runs a test's own statement (DDL the test sets up, as a user would).
pub async fn exec(wh: &Warehouse, sql: &str) {
    let q = Rendered { name: "a test's statement", text: sql.to_string() };
    wh.pool.execute(q, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e:#}"));
}

/// The first cell of the first row of a test's query, as an integer.
pub async fn query_i64(wh: &Warehouse, sql: &str, binds: &[Bind]) -> i64 {
    let rows = query(wh, sql, binds).await;
    rows.first()
        .and_then(|r| r.first())
        .cloned()
        .flatten()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{sql}: {rows:?}"))
}

/// The replica's rows as text, ordered by `order_by`; `select` lists text expressions.
pub async fn rows(wh: &Warehouse, table: &str, select: &str, order_by: &str) -> Vec<Vec<Option<String>>> {
    query(wh, &format!("SELECT {select} FROM \"{table}\" ORDER BY {order_by}"), &[]).await
}

pub async fn count(wh: &Warehouse, table: &str) -> i64 {
    query_i64(wh, &format!("SELECT count(*) FROM \"{table}\""), &[]).await
}

/// Polls `cond` (every 50 ms) until it holds; fails with `what` once `within` has passed.
pub async fn eventually<F, Fut>(what: &str, within: std::time::Duration, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    eventually_some(what, within, || {
        let f = cond();
        async move { f.await.then_some(()) }
    })
    .await
}

/// Polls `probe` (every 50 ms) until it gives a value; fails with `what` once `within` has passed.
pub async fn eventually_some<T, F, Fut>(what: &str, within: std::time::Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

pub fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Runs an async scenario on PostgreSQL and on SQLite.
#[macro_export]
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                let db = $crate::common::TestDb::postgres().await;
                super::$name(&db.url).await;
                db.drop_db().await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let db = $crate::common::TestDb::sqlite();
                super::$name(&db.url).await;
            }
        }
    };
}

/// `bytes` as TiCDC's `large-message-handle-compression` writes them: an LZ4 frame, a raw snappy
/// block, or unchanged (`"none"`).
pub fn compress(how: &str, bytes: &[u8]) -> Vec<u8> {
    match how {
        "lz4" => {
            use std::io::Write;
            let mut enc = lz4_flex::frame::FrameEncoder::new(Vec::new());
            enc.write_all(bytes).expect("lz4");
            enc.finish().expect("lz4")
        }
        "snappy" => snap::raw::Encoder::new().compress_vec(bytes).expect("snappy"),
        _ => bytes.to_vec(),
    }
}
