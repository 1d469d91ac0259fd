//! `tidemark bench` still works: a tiny run against a real broker (tansu), its second broker
//! (librdkafka's mock cluster in a process of its own) and PostgreSQL prints its whole table. (The figures of BENCHMARKS.md come from `./scripts/bench.sh`; at this
//! size they mean nothing, so targets are not asserted.)

mod common;

use std::process::Command;

use common::broker::Broker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tiny_bench_prints_its_table() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start().await;
    let out = tokio::task::block_in_place(|| {
        Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["bench", "--changes", "2000", "--runs", "1", "--freshness-secs", "3", "--rate", "1000"])
            .args(["--brokers", &broker.bootstrap, "--postgres", &common::pg_admin_url()])
            .args(["--dir", dir.path().to_str().unwrap()])
            .output()
    })
    .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    // 0: every target met; 2: it ran and a target was missed (at this size they mean nothing);
    // anything else is a failure of the bench itself.
    assert!(matches!(out.status.code(), Some(0 | 2)), "tidemark bench exited {}:\n{text}\n{err}", out.status);
    assert!(!err.contains("error:"), "{err}");
    for row in [
        "| PostgreSQL landing, 2000 changes |",
        "| PostgreSQL landing without the broker, 2000 changes |",
        "| the broker alone (tansu), 2000 records |",
        "| PostgreSQL landing from the mock cluster, 2000 changes |",
        "| the mock cluster alone, 2000 records |",
        "| landing from the mock cluster / without the broker, 2000 changes |",
        "| PostgreSQL merge, 2000 staged into 2000 rows |",
        "| freshness, 1000/s for 3 s, 1 s schedule |",
        "| peak RSS (landing / merge / freshness) |",
        "| SQLite landing, 2000 changes |",
        "| SQLite merge, 2000 staged into 2000 rows |",
    ] {
        assert!(text.contains(row), "missing {row}:\n{text}\n{err}");
    }
}
