//! `source_ddl`: the upstream CREATE TABLE gives the replica exact types and its key, and values
//! are held to those types even when the stream describes them less precisely.

mod common;

use common::*;
use tidemark::config::Config;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

/// The seed's TPC-C item table, as TiDB prints it.
const ITEM_DDL: &str = "CREATE TABLE `item` (
  `i_id` int(11) NOT NULL,
  `i_im_id` int(11) DEFAULT NULL,
  `i_name` varchar(24) DEFAULT NULL,
  `i_price` decimal(5,2) DEFAULT NULL,
  `i_data` varchar(50) DEFAULT NULL,
  `i_kind` enum('book','pen','cup') DEFAULT NULL,
  PRIMARY KEY (`i_id`) /*T![clustered_index] CLUSTERED */
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;";

fn setup_config(dir: &std::path::Path, url: &str) -> Config {
    std::fs::write(dir.join("item.sql"), ITEM_DDL).unwrap();
    let path = dir.join("tidemark.toml");
    std::fs::write(
        &path,
        format!("[warehouse]\nurl = {url:?}\n[[tables]]\nname = \"item\"\ntopic = \"tidb_tpcc_item\"\nsource_ddl = \"item.sql\"\n"),
    )
    .unwrap();
    Config::load(&path, false).unwrap()
}

async fn ddl_types_and_key_decide(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = setup_config(dir.path(), url);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    // canal-json as TiCDC writes it by default: bare types, ENUM as its index, and no pkNames
    // (the key comes from the DDL).
    let mut c = Canal::item();
    c.types = vec![
        ("i_id", "int"),
        ("i_im_id", "int"),
        ("i_name", "varchar"),
        ("i_price", "decimal"),
        ("i_data", "varchar"),
        ("i_kind", "enum"),
    ];
    c.pk = vec![];
    let batch = vec![
        c.insert(&[Some("1"), Some("5"), Some("pen"), Some("9.99"), Some("d"), Some("2")], tso(1)),
        c.insert(&[Some("2"), Some("5"), Some("too much"), Some("123.456"), Some("d"), Some("1")], tso(2)),
        c.insert(&[Some("3"), Some("5"), Some("x".repeat(25).leak()), Some("1.00"), Some("d"), Some("1")], tso(3)),
        c.insert(&[Some("4"), Some("5"), Some("cup"), Some("-999.99"), Some("d"), Some("3")], tso(4)),
    ];
    let rep = l.land(&records("tidb_tpcc_item", 0, 0, batch)).await.unwrap();
    assert_eq!((rep.staged.get("item"), rep.dead_letters), (Some(&2), 2), "123.456 and a 25-character name do not fit");
    assert!(matches!(merge(&wh, "item", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_name, CAST(i_price AS TEXT), i_kind", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), s("pen"), s("9.99"), s("pen")], vec![s("4"), s("cup"), s("-999.99"), s("cup")]]);
    if wh.dialect() == Dialect::Postgres {
        let types = common::query(
            &wh,
            "SELECT string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' ORDER BY attnum) \
             FROM pg_attribute WHERE attrelid = 'item'::regclass AND attnum > 0",
            &[],
        )
        .await[0][0]
            .clone()
            .unwrap();
        assert_eq!(
            types,
            "i_id integer, i_im_id integer, i_name character varying(24), i_price numeric(5,2), \
             i_data character varying(50), i_kind text"
        );
    }
}
both!(ddl_types_and_key_decide);

#[test]
fn sql_command_works_from_the_ddl_alone() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    setup_config(dir.path(), &url);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args([
            "--config",
            dir.path().join("tidemark.toml").to_str().unwrap(),
            "sql",
            "--dialect",
            "postgres",
            "--table",
            "item",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("\"i_price\" numeric(5,2)") && text.contains("\"i_name\" varchar(24)"), "{text}");
    assert!(text.contains("PRIMARY KEY (\"i_id\")"), "{text}");
}

/// `tidemark sql --dialect snowflake` for an Avro table with a source_ddl: the DDL gives the
/// columns, so no `[schema_registry]` is needed; `run` still refuses Avro without one, with the
/// fix in the message.
#[test]
fn a_snowflake_script_from_source_ddl_needs_no_registry() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("item.sql"), ITEM_DDL).unwrap();
    let path = dir.path().join("tidemark.toml");
    std::fs::write(
        &path,
        "[warehouse]\nurl = \"sqlite://never-created.db\"\n[kafka]\nbootstrap_servers = \"127.0.0.1:1\"\n\
         [[tables]]\nname = \"item\"\ntopic = \"tidb_tpcc_item\"\nformat = \"avro\"\nsource_ddl = \"item.sql\"\n",
    )
    .unwrap();
    let tidemark = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["--config", path.to_str().unwrap()])
            .args(args)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let sql = tidemark(&["sql", "--dialect", "snowflake", "--table", "item"]);
    let out = String::from_utf8_lossy(&sql.stdout);
    assert!(sql.status.success(), "{}", String::from_utf8_lossy(&sql.stderr));
    assert!(out.contains("MERGE INTO") && (out.contains("I_PRICE") || out.contains("i_price")), "{out}");
    assert!(!dir.path().join("never-created.db").exists(), "sql wrote a warehouse file");
    let run = tidemark(&["run"]);
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(!run.status.success() && err.contains("configure [schema_registry]"), "{err}");
}
