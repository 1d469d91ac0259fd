//! A refusal no record is to blame for, through the whole service: while `tidemark run` lands
//! two tables, the staging table of one of them disappears (renamed away, as an operator's
//! mistake or a lost permission would make landing fail). That table stops — `status` and
//! `/readyz` say why — and its topic is held back, while the other table's records keep
//! landing and merging. Once the staging table is back, the held topic is read again by
//! itself, the table goes on, and both replicas converge: nothing lost, nothing twice.

mod common;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use common::process::{log_path, Tidemark};
use common::stream;
use common::TestDb;
use tidemark::warehouse::Warehouse;

/// `tidemark status --json` for `table`: its `stopped` reason, if any.
fn stopped(config: &std::path::Path, table: &str) -> Option<String> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap(), "status", "--json"])
        .output()
        .expect("status");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --json: {e}: {}", String::from_utf8_lossy(&out.stderr)));
    let tables = status["tables"].as_array().cloned().unwrap_or_default();
    tables.iter().find(|t| t["table"] == table).and_then(|t| t["stopped"].as_str().map(str::to_string))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_table_the_warehouse_refuses_stops_alone_and_goes_on_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let (mock, work, topics) = stream::workload_on_mock(51);
    let bootstrap = mock.bootstrap_servers();
    let db = TestDb::postgres().await;
    let config = stream::config(dir.path(), &bootstrap, &db.url, &work, "[http]\nlisten = \"127.0.0.1:0\"\n");
    let wh = Warehouse::open(&db.url).await.unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let mut run = Tidemark::run(&config, &log_path("refusals.log"), &[]);
    let port = run.http_port(Duration::from_secs(30));

    let work = tokio::task::block_in_place(|| stream::produce(bootstrap.clone(), work, 2000, 4000, done.clone()));
    let high = stream::high_watermarks(&bootstrap, &topics);
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(60)).await;

    // `item`'s staging table goes away; more changes of both tables arrive.
    common::exec(&wh, "ALTER TABLE _tidemark_stage_item RENAME TO _held_stage_item").await;
    let work = tokio::task::block_in_place(|| stream::produce(bootstrap.clone(), work, 4000, 4000, done.clone()));
    let high = stream::high_watermarks(&bootstrap, &topics);
    let orders: std::collections::HashMap<(String, i32), i64> =
        high.iter().filter(|((t, _), _)| t.ends_with("orders")).map(|(k, v)| (k.clone(), *v)).collect();
    // `orders` goes on: everything of it lands.
    stream::wait_landed(&wh, &orders, &mut [&mut run], Duration::from_secs(60)).await;
    // `item` is stopped, and says why.
    let why =
        common::eventually_some("item stopped", Duration::from_secs(30), || async { stopped(&config, "item") }).await;
    assert!(why.starts_with("landing refused:") && why.contains("_tidemark_stage_item"), "{why}");
    assert_eq!(stopped(&config, "orders"), None);
    // /readyz learns it from the warehouse with the next heartbeat.
    let body = common::eventually_some("/readyz says item is stopped", Duration::from_secs(30), || async {
        let ready = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await.ok()?;
        (ready.status().as_u16() == 503).then_some(())?;
        ready.text().await.ok()
    })
    .await;
    assert!(body.contains("table `item` is stopped: landing refused"), "{body}");
    assert!(!run.log_text().contains("is unreachable"), "a refusal was reported as an outage:\n{}", run.log_text());

    // The staging table is back: within the retry, `item` lands everything and goes on.
    common::exec(&wh, "ALTER TABLE _held_stage_item RENAME TO _tidemark_stage_item").await;
    stream::wait_landed(&wh, &high, &mut [&mut run], Duration::from_secs(90)).await;
    common::eventually("item goes on", Duration::from_secs(30), || async { stopped(&config, "item").is_none() }).await;
    stream::stop(&mut run, Duration::from_secs(30));
    stream::assert_converged(&wh, &config, &work).await;
    db.drop_db().await;
}
