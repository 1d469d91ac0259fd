//! The upstream database of the snapshot and verify tests: a fresh database per test on the
//! MariaDB server (`TIDEMARK_TEST_MYSQL_URL`, which `scripts/test.sh` starts and exports), and
//! canal-json messages of its rows made exactly as TiCDC writes them for those column types.

use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{json, Map, Value as Json};
use sqlx::mysql::{MySqlPool, MySqlPoolOptions};
use sqlx::Row;

/// The MySQL-protocol server the tests create their upstream databases on.
pub fn mysql_admin_url() -> String {
    std::env::var("TIDEMARK_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/".into())
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

pub struct UpstreamDb {
    /// The URL naming the test's database.
    pub url: String,
    pub name: String,
    pub pool: MySqlPool,
}

impl UpstreamDb {
    pub async fn create() -> UpstreamDb {
        let admin = mysql_admin_url();
        let name = format!("tidemark_up_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst));
        let root = MySqlPoolOptions::new().max_connections(1).connect(&admin).await.unwrap_or_else(|e| {
            panic!(
                "MariaDB/MySQL is not reachable at {admin}: {e}\n\
                 Run the tests with ./scripts/test.sh (it starts the machine's MariaDB), or point \
                 TIDEMARK_TEST_MYSQL_URL at a MySQL-protocol server."
            )
        });
        for stmt in [format!("DROP DATABASE IF EXISTS {name}"), format!("CREATE DATABASE {name}")] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(stmt)).execute(&root).await.expect("create the upstream test database");
        }
        root.close().await;
        let url = format!("{}/{name}", admin.trim_end_matches('/'));
        let pool = MySqlPoolOptions::new()
            .max_connections(4)
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::raw_sql("SET SESSION time_zone = '+00:00'").execute(conn).await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .expect("connect to the upstream test database");
        UpstreamDb { url, name, pool }
    }

    pub async fn exec(&self, sql: &str) {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&self.pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    pub async fn count(&self, table: &str) -> i64 {
        sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) AS n FROM {table}")))
            .fetch_one(&self.pool)
            .await
            .expect("count")
            .get("n")
    }

    /// `(column, COLUMN_TYPE)` of a table, in order.
    pub async fn column_types(&self, table: &str) -> Vec<(String, String)> {
        sqlx::query(
            "SELECT CAST(COLUMN_NAME AS CHAR) AS n, CAST(COLUMN_TYPE AS CHAR) AS t FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
        )
        .bind(&self.name)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .expect("columns")
        .iter()
        .map(|r| (r.get("n"), r.get("t")))
        .collect()
    }

    pub async fn drop_db(self) {
        let name = self.name.clone();
        self.pool.close().await;
        if let Ok(root) = MySqlPoolOptions::new().max_connections(1).connect(&mysql_admin_url()).await {
            let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&root).await;
        }
    }
}

/// canal-json of one table's rows, as TiCDC encodes each column type: ENUM as its index, SET
/// as its bitmask, BIT as its number, binary strings as ISO-8859-1 text, TIMESTAMP in UTC.
pub struct CanalOf {
    pub db: String,
    pub table: String,
    pub key: String,
    pub types: Vec<(String, String)>,
}

impl CanalOf {
    pub async fn new(up: &UpstreamDb, table: &str, key: &str) -> CanalOf {
        CanalOf { db: up.name.clone(), table: table.into(), key: key.into(), types: up.column_types(table).await }
    }

    fn binary(ty: &str) -> bool {
        ty.contains("binary") || ty.contains("blob")
    }

    /// The SELECT list that reads a row in canal-json's encoding.
    fn select_list(&self) -> String {
        self.types
            .iter()
            .map(|(c, ty)| {
                if Self::binary(ty) {
                    format!("`{c}`")
                } else if ty.starts_with("enum") || ty.starts_with("set") || ty.starts_with("bit") {
                    format!("CAST(`{c}` + 0 AS CHAR)")
                } else if ty.starts_with("float") {
                    format!("CAST(CAST(`{c}` AS DOUBLE) AS CHAR)")
                } else {
                    format!("CAST(`{c}` AS CHAR)")
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The row of key `id` as canal-json's `data` object, `None` when upstream has none.
    pub async fn row(&self, conn: &mut sqlx::MySqlConnection, id: i64) -> Option<Json> {
        let sql = format!("SELECT {} FROM `{}` WHERE `{}` = ?", self.select_list(), self.table, self.key);
        let row = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id).fetch_optional(conn).await.expect("read a row")?;
        let mut m = Map::new();
        for (i, (c, ty)) in self.types.iter().enumerate() {
            let v = if Self::binary(ty) {
                row.get::<Option<Vec<u8>>, _>(i).map(|b| Json::String(b.iter().map(|&x| x as char).collect()))
            } else {
                row.get::<Option<String>, _>(i).map(Json::String)
            };
            m.insert(c.clone(), v.unwrap_or(Json::Null));
        }
        Some(Json::Object(m))
    }

    /// A canal-json message: `kind` INSERT/UPDATE/DELETE of `data` at commit ts `ts`.
    pub fn message(&self, kind: &str, data: &Json, ts: u64) -> Vec<u8> {
        let types: Map<String, Json> = self.types.iter().map(|(n, t)| (n.clone(), Json::String(t.clone()))).collect();
        let sql_types: Map<String, Json> = self.types.iter().map(|(n, _)| (n.clone(), json!(12))).collect();
        let old = if kind == "UPDATE" { json!([data]) } else { Json::Null };
        serde_json::to_vec(&json!({
            "id": 0, "database": self.db, "table": self.table, "pkNames": [self.key], "isDdl": false,
            "type": kind, "es": ts >> 18, "ts": (ts >> 18) + 5, "sql": "",
            "sqlType": sql_types, "mysqlType": types, "data": [data], "old": old,
            "_tidb": {"commitTs": ts}
        }))
        .expect("json")
    }
}
