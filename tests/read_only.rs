//! Commands that only look never write: `status`, `dead-letters`, `check` and `sql` run no
//! migration, create no SQLite file and change no byte of an existing one, and `status` /
//! `dead-letters` work for a PostgreSQL role that may only `SELECT` tidemark's tables. The
//! metadata tables have one home: `tidemark migrate` (and `run`); the others say to run it.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_tpcc_item";

/// (exit success, stdout + stderr) of `tidemark --config <config> <args>`.
fn tidemark(config: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run tidemark");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// A config for `item` on `url`; Kafka is a closed port (`check` reports it, nothing else needs it).
fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let config = dir.join("tidemark.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n[warehouse]\nurl = {url:?}\n\
             [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n"
        ),
    )
    .expect("config");
    config
}

/// Every SQLite file in `dir` (the database and a -wal beside it that holds anything; -shm is
/// only shared memory, and a reader of a WAL database may leave an empty -wal) with its length
/// and a hash of its bytes.
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    let digest = |bytes: Vec<u8>| {
        let fnv = bytes.iter().fold(0xcbf29ce484222325u64, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x100000001b3));
        (bytes.len(), fnv)
    };
    let mut files: Vec<(String, usize, u64)> = std::fs::read_dir(dir)
        .expect("dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("tidemark.db"))
        .filter(|e| !e.file_name().to_string_lossy().ends_with("-shm"))
        .map(|e| {
            let (len, hash) = digest(std::fs::read(e.path()).expect("read"));
            (e.file_name().to_string_lossy().into_owned(), len, hash)
        })
        .filter(|(_, len, _)| *len > 0)
        .collect();
    files.sort();
    files
}

/// Lands one change of `item` and one undecodable record on its topic.
async fn land_some(url: &str) {
    let wh = Warehouse::open(url).await.expect("warehouse");
    let cfg = config(url, &[("item", TOPIC)]);
    let mut lander = lander(&wh, &cfg).await;
    let good = Canal::item().insert(&[Some("1"), Some("1"), Some("pen"), Some("1.50"), None], tso(1));
    lander.land(&records(TOPIC, 0, 0, vec![good, b"{\"not json".to_vec()])).await.expect("land");
    wh.pool.close().await;
}

#[tokio::test]
async fn sqlite_read_only_commands_create_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("tidemark.db");
    let url = format!("sqlite://{}", db.display());
    let config = write_config(dir.path(), &url);

    // No warehouse yet: looking creates none.
    for args in [&["status"][..], &["dead-letters"], &["merge", "--table", "item"]] {
        let (ok, out) = tidemark(&config, args);
        assert!(!ok, "{args:?} succeeded without a warehouse:\n{out}");
        assert!(out.contains("tidemark migrate"), "{args:?} does not say what to do:\n{out}");
        assert!(!db.exists(), "{args:?} created {}", db.display());
    }
    let (_, out) = tidemark(&config, &["check"]);
    assert!(out.contains("does not exist yet"), "{out}");
    assert!(!db.exists(), "check created {}", db.display());

    // `migrate` creates it, once.
    let (ok, out) = tidemark(&config, &["migrate"]);
    assert!(ok && out.contains("created"), "{out}");
    let (ok, out) = tidemark(&config, &["migrate"]);
    assert!(ok && out.contains("already at version"), "{out}");

    // With something landed, the looking commands leave every byte as it was.
    land_some(&url).await;
    let before = snapshot(dir.path());
    let unchanged = |what: &str| assert_eq!(snapshot(dir.path()), before, "{what} changed the SQLite files");
    let (ok, out) = tidemark(&config, &["status", "--json"]);
    unchanged("status");
    assert!(ok, "{out}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status --json");
    assert_eq!(status["tables"][0]["staged_rows"], 1, "{status}");
    assert_eq!(status["tables"][0]["dead_letters"], 1, "{status}");
    let (ok, out) = tidemark(&config, &["dead-letters", "--table", "item"]);
    assert!(ok && out.contains("offset 1  table item"), "{out}");
    unchanged("dead-letters");
    let (_, out) = tidemark(&config, &["check"]);
    assert!(out.contains("metadata at version"), "{out}");
    unchanged("check");
    let (ok, out) = tidemark(&config, &["sql", "--table", "item"]);
    assert!(ok, "{out}");
    unchanged("sql");
}

#[tokio::test]
async fn postgres_select_only_role_reads_status_and_dead_letters() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();

    // Never migrated: the looking commands say so and create nothing.
    let config = write_config(dir.path(), &db.url);
    for args in [&["status"][..], &["dead-letters"]] {
        let (ok, out) = tidemark(&config, args);
        assert!(!ok && out.contains("tidemark migrate"), "{args:?}:\n{out}");
    }
    tidemark(&config, &["check"]);
    let pg = tidemark::warehouse::db::Pool::connect(&db.url).await.expect("connect");
    let tables = query_i64_on(&pg, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").await;
    assert_eq!(tables, 0, "a looking command created tables");

    let (ok, out) = tidemark(&config, &["migrate"]);
    assert!(ok && out.contains("applied"), "{out}");
    land_some(&db.url).await;

    // A monitoring role: it may connect and SELECT, nothing else.
    let role = format!("tidemark_monitor_{}", std::process::id());
    let name = db.url.rsplit('/').next().expect("db name").to_string();
    for stmt in [
        format!("DROP ROLE IF EXISTS {role}"),
        format!("CREATE ROLE {role} LOGIN"),
        format!("GRANT CONNECT ON DATABASE {name} TO {role}"),
        format!("GRANT USAGE ON SCHEMA public TO {role}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}"),
    ] {
        exec_on(&pg, &stmt).await;
    }
    let base = db.url.rsplit_once("://").map(|(_, rest)| rest).expect("url");
    let host_and_db = base.split_once('@').map(|(_, h)| h).unwrap_or(base);
    let monitor = write_config(dir.path(), &format!("postgres://{role}@{host_and_db}"));

    let (ok, out) = tidemark(&monitor, &["status", "--json"]);
    assert!(ok, "status as a SELECT-only role:\n{out}");
    let status: serde_json::Value = serde_json::from_str(&out).expect("status --json");
    assert_eq!(status["tables"][0]["staged_rows"], 1, "{status}");
    assert_eq!(status["tables"][0]["dead_letters"], 1, "{status}");
    let (ok, out) = tidemark(&monitor, &["dead-letters", "--json"]);
    assert!(ok, "dead-letters as a SELECT-only role:\n{out}");
    let letters: serde_json::Value = serde_json::from_str(&out).expect("dead-letters --json");
    assert_eq!(letters.as_array().map(Vec::len), Some(1), "{letters}");

    pg.close().await;
    let pg = tidemark::warehouse::db::Pool::connect(&common::pg_admin_url()).await.expect("admin");
    db.drop_db().await;
    exec_on(&pg, &format!("DROP ROLE IF EXISTS {role}")).await;
}

async fn exec_on(pool: &tidemark::warehouse::db::Pool, sql: &str) {
    let tidemark::warehouse::db::Pool::Pg(p) = pool else { panic!("PostgreSQL") };
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).execute(p).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

async fn query_i64_on(pool: &tidemark::warehouse::db::Pool, sql: &str) -> i64 {
    let tidemark::warehouse::db::Pool::Pg(p) = pool else { panic!("PostgreSQL") };
    sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.to_string()))
        .fetch_one(p)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}
