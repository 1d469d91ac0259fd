//! Secrets never show: the warehouse password (in the url, and as a `password=` parameter),
//! SASL properties and schema-registry credentials are absent from everything tidemark prints
//! — `run`'s log at debug level (while Kafka refuses it and the registry is unreachable),
//! errors of every command, `status` — though each of those paths touches them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::process::{log_path, Tidemark};
use common::TestDb;

const SECRETS: [&str; 5] = ["Pg-S3cret-1", "Kafka-S3cret-2", "Url-S3cret-3", "Reg-S3cret-4", "Qry-S3cret-5"];

fn output(config: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap()])
        .args(args)
        .env("RUST_LOG", "debug")
        .output()
        .unwrap();
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{what} shows the secret {s}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    // The test server trusts local connections: the password is sent and ignored.
    let url = db.url.replacen("postgres://postgres@", "postgres://postgres:Pg-S3cret-1@", 1);
    assert_ne!(url, db.url);
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic("tidb_test_people", 1, 1).unwrap();
    let config = |warehouse: &str| {
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"secrets\"\n\
             [kafka.properties]\n\"security.protocol\" = \"SASL_PLAINTEXT\"\n\"sasl.mechanisms\" = \"PLAIN\"\n\
             \"sasl.username\" = \"tidemark\"\n\"sasl.password\" = \"${{KAFKA_SECRET}}\"\n\
             [warehouse]\nurl = {warehouse:?}\n\
             [schema_registry]\nurl = \"http://reg:Url-S3cret-3@127.0.0.1:9\"\nusername = \"key\"\npassword = \"Reg-S3cret-4\"\n\
             [defaults]\nformat = \"avro\"\nschedule = \"* * * * * *\"\n\
             [[tables]]\nname = \"people\"\ntopic = \"tidb_test_people\"\n",
            mock.bootstrap_servers()
        )
    };
    let good = dir.path().join("good.toml");
    std::fs::write(&good, config(&url)).unwrap();
    std::env::set_var("KAFKA_SECRET", "Kafka-S3cret-2");

    // The service, at debug level, while Kafka refuses SASL and nothing can progress.
    let log = log_path("secrets.log");
    let mut run = Tidemark::run(&good, &log, &[("RUST_LOG", "debug"), ("KAFKA_SECRET", "Kafka-S3cret-2")]);
    tokio::task::block_in_place(|| {
        run.wait_for_log("subscribed", Duration::from_secs(30));
        // Kafka refused it at least twice, and it recorded a heartbeat in the warehouse.
        run.wait_for_log("Authentication failure", Duration::from_secs(30));
    });
    let wh = tidemark::warehouse::Warehouse::open(&url).await.unwrap();
    common::eventually("Kafka's refusal said again, and a heartbeat recorded", Duration::from_secs(30), || async {
        run.log_text().matches("Authentication failure").count() >= 2
            && common::count(&wh, "_tidemark_instances").await >= 1
    })
    .await;
    common::stream::stop(&mut run, Duration::from_secs(30));
    let text = run.log_text();
    assert!(text.contains("DEBUG"), "the log is at debug level");
    assert_clean("run's log", &text);

    assert_clean("status", &output(&good, &["status"]));
    assert_clean("status --json", &output(&good, &["status", "--json"]));
    assert_clean("merge", &output(&good, &["merge", "--all"]));
    assert_clean("dead-letters", &output(&good, &["dead-letters"]));
    // The registry path: unreachable, with credentials in its url.
    let sql = output(&good, &["sql", "--dialect", "snowflake", "--table", "people"]);
    assert!(sql.contains("unreachable"), "{sql}");
    assert_clean("sql (registry unreachable)", &sql);

    // A warehouse that refuses the connection (no such database), password in the url and as
    // a parameter.
    let server = db.url.rsplit_once('/').unwrap().0.replacen("postgres://postgres@", "", 1);
    for bad_url in [
        format!("postgres://postgres:Pg-S3cret-1@{server}/no_such_db"),
        format!("postgres://{server}/no_such_db?user=postgres&password=Qry-S3cret-5"),
    ] {
        let bad = dir.path().join("bad.toml");
        std::fs::write(&bad, config(&bad_url)).unwrap();
        let text = output(&bad, &["status"]);
        assert!(text.contains("connecting to PostgreSQL at postgres://"), "{text}");
        assert_clean("an unreachable warehouse", &text);
        let text = output(&bad, &["run"]);
        assert!(text.contains("error"), "{text}");
        assert_clean("run with an unreachable warehouse", &text);
    }
    db.drop_db().await;
}

/// Passwords holding the characters that end a URL's parts (`/ ? # @ : %`, a space), as given
/// (which no client can parse) and percent-encoded, in the warehouse and registry URLs: never
/// shown by `status`, `check` or `run`'s error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_with_url_delimiters_never_show() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let server = db.url.rsplit_once('/').unwrap().0.replacen("postgres://postgres@", "", 1);
    for c in ["/", "?", "#", "@", ":", "%", " ", "/?#@"] {
        let encoded: String = c.bytes().map(|b| format!("%{b:02X}")).collect();
        for pw in [format!("Del{c}S3cret"), format!("Del{encoded}S3cret")] {
            let toml = format!(
                "[kafka]\nbootstrap_servers = \"127.0.0.1:9\"\n\
                 [warehouse]\nurl = \"postgres://postgres:{pw}@{server}/no_such_db\"\n\
                 [schema_registry]\nurl = \"http://reg:{pw}@127.0.0.1:9\"\n\
                 [defaults]\nformat = \"avro\"\n[[tables]]\nname = \"people\"\ntopic = \"tidb_test_people\"\n"
            );
            let config = dir.path().join("delimiters.toml");
            std::fs::write(&config, toml).unwrap();
            // `check` waits for Kafka (10 s): once per form, with every delimiter at once.
            let commands: &[&[&str]] =
                if c.len() > 1 { &[&["status"], &["check"], &["run"]] } else { &[&["status"], &["run"]] };
            for args in commands {
                let text = output(&config, args);
                assert!(!text.contains("S3cret"), "{args:?} with password {pw:?} shows it:\n{text}");
                assert!(!text.contains("Del"), "{args:?} with password {pw:?} shows part of it:\n{text}");
            }
        }
    }
    db.drop_db().await;
}
