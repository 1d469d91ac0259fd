//! TiCDC's `simple` protocol (JSON), with messages exactly as the reference's literal examples
//! (`reference/ticdc-formats.md` §4.1): BOOTSTRAP gives the schema, DML carries none, WATERMARK
//! is a watermark, DDL is recorded. A consumer that starts after the BOOTSTRAP (a restart) reads
//! DML with the table's recorded types and key.

mod common;

use common::*;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_simple_user";
const BOOTSTRAP: &str = r#"{"version":1,"type":"BOOTSTRAP","commitTs":0,"buildTs":1708924603278,"tableSchema":{"schema":"simple","table":"user","tableID":148,"version":447984074911121426,"columns":[{"name":"id","dataType":{"mysqlType":"int","charset":"binary","collate":"binary","length":11},"nullable":false,"default":null},{"name":"name","dataType":{"mysqlType":"varchar","charset":"utf8mb4","collate":"utf8mb4_bin","length":255},"nullable":true,"default":null},{"name":"age","dataType":{"mysqlType":"int","charset":"binary","collate":"binary","length":11},"nullable":true,"default":null},{"name":"score","dataType":{"mysqlType":"float","charset":"binary","collate":"binary","length":12},"nullable":true,"default":null}],"indexes":[{"name":"primary","unique":true,"primary":true,"nullable":false,"columns":["id"]}]}}"#;
const INSERT: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"INSERT","commitTs":447984084414103554,"buildTs":1708923662983,"schemaVersion":447984074911121426,"data":{"age":"25","id":"1","name":"John Doe","score":"90.5"}}"#;
const UPDATE: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"UPDATE","commitTs":447984099186180098,"buildTs":1708923719184,"schemaVersion":447984074911121426,"data":{"age":"25","id":"1","name":"John Doe","score":"95"},"old":{"age":"25","id":"1","name":"John Doe","score":"90.5"}}"#;
const DELETE: &str = r#"{"version":1,"database":"simple","table":"user","tableID":148,"type":"DELETE","commitTs":447984114259722243,"buildTs":1708923776484,"schemaVersion":447984074911121426,"old":{"age":"25","id":"1","name":"John Doe","score":"95"}}"#;
const WATERMARK: &str = r#"{"version":1,"type":"WATERMARK","commitTs":447984124732375041,"buildTs":1708923816911}"#;

fn config(url: &str) -> tidemark::config::Config {
    tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nformat = \"simple\"\n[[tables]]\nname = \"user\"\ntopic = \"{TOPIC}\"\n"
    ))
    .unwrap()
}

fn msgs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|m| m.as_bytes().to_vec()).collect()
}

async fn the_references_examples_replicate(url: &str) {
    let cfg = config(url);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let rep = l.land(&records(TOPIC, 0, 0, msgs(&[BOOTSTRAP, INSERT]))).await.unwrap();
    assert_eq!((rep.staged.get("user"), rep.dead_letters), (Some(&1), 0));
    assert!(matches!(merge(&wh, "user", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "user", "CAST(id AS TEXT), name, CAST(age AS TEXT), CAST(score AS TEXT)", "1").await;
    assert_eq!(got[0][..3], [s("1"), s("John Doe"), s("25")]);
    assert_eq!(got[0][3].as_deref().map(|v| v.parse::<f32>().unwrap()), Some(90.5));

    // A fresh consumer (a restart) that reads the UPDATE before any BOOTSTRAP: the table's
    // recorded types and key decide.
    let mut again = lander(&wh, &cfg).await;
    let rep = again.land(&records(TOPIC, 0, 2, msgs(&[UPDATE]))).await.unwrap();
    assert_eq!((rep.staged.get("user"), rep.dead_letters), (Some(&1), 0));
    assert!(matches!(merge(&wh, "user", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "user", "CAST(score AS TEXT)", "1").await;
    assert_eq!(got[0][0].as_deref().map(|v| v.parse::<f32>().unwrap()), Some(95.0));

    // The DELETE, then a WATERMARK: recorded per partition like canal-json's; from now on merges
    // go up to the topic's consistent point (its partition count is what `run` records).
    let rep = again.land(&records(TOPIC, 0, 3, msgs(&[DELETE, WATERMARK]))).await.unwrap();
    assert_eq!((rep.staged.get("user"), rep.dead_letters), (Some(&1), 0));
    let wm = query(&wh, "SELECT CAST(watermark AS TEXT) FROM _tidemark_offsets", &[]).await;
    assert_eq!(wm, vec![vec![s("447984124732375041")]]);
    assert!(matches!(merge(&wh, "user", true).await.unwrap(), MergeOutcome::Waiting(_)));
    exec(&wh, &format!("INSERT INTO _tidemark_topics (topic, partitions, watermarked) VALUES ('{TOPIC}', 1, true) ON CONFLICT (topic) DO UPDATE SET partitions = 1")).await;
    let MergeOutcome::Merged(done) = merge(&wh, "user", true).await.unwrap() else { panic!("not merged") };
    assert_eq!(done.point, Some(447984124732375041), "merged up to the WATERMARK");
    assert_eq!(count(&wh, "user").await, 0);
}
both!(the_references_examples_replicate);
