//! Operations: `/metrics`, `/healthz` and `/readyz` of a running service, `tidemark check`, and
//! every file in `deploy/` — YAML and TOML parsed, and each shipped tidemark config checked by
//! `tidemark check` against real services (PostgreSQL, a Kafka protocol peer).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::process::{log_path, Tidemark};
use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use tidemark::warehouse::Warehouse;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// GET `path` on 127.0.0.1:`port`: (status code, body).
async fn get(port: u16, path: &str) -> (u16, String) {
    let resp = reqwest::get(format!("http://127.0.0.1:{port}{path}")).await.expect("GET");
    let status = resp.status().as_u16();
    (status, resp.text().await.expect("body"))
}

/// The value of a series line `name{labels…} value` whose labels include all of `with`.
fn series(metrics: &str, name: &str, with: &[&str]) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .find(|l| with.iter().all(|w| l.contains(w)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness() {
    let dir = tempfile::tempdir().unwrap();
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("tidb_tpcc_item", 2, 1).unwrap();
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().unwrap();
    let c = Canal::item();
    for i in 0..300u64 {
        let id = (i % 50).to_string();
        let payload = c.insert(&[Some(&id), Some("1"), Some("pen"), Some("1.00"), None], tso(i + 1));
        producer.send(BaseRecord::<(), _>::to("tidb_tpcc_item").partition((i % 2) as i32).payload(&payload)).unwrap();
    }
    producer.send(BaseRecord::<(), _>::to("tidb_tpcc_item").partition(0).payload(b"{not json")).unwrap();
    producer.flush(Duration::from_secs(10)).unwrap();
    let config = dir.path().join("tidemark.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"ops\"\nbatch_linger_ms = 50\n\
             [warehouse]\nurl = {:?}\n[defaults]\nschedule = \"* * * * * *\"\n\
             [http]\nlisten = \"127.0.0.1:0\"\n\
             [[tables]]\nname = \"item\"\ntopic = \"tidb_tpcc_item\"\n",
            mock.bootstrap_servers(),
            db.url
        ),
    )
    .unwrap();
    let mut run = Tidemark::run(&config, &log_path("operations.log"), &[]);
    let port = tokio::task::block_in_place(|| run.http_port(Duration::from_secs(30)));
    let wh = Warehouse::open(&db.url).await.unwrap();

    // Alive at once; ready once Kafka and the warehouse have answered.
    let started = Instant::now();
    let ready = loop {
        assert!(run.try_wait().is_none(), "{}", run.log_text());
        if let Ok(resp) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap();
            if status == 200 {
                break body;
            }
            assert_eq!(status, 503, "{body}");
            assert!(body.contains("\"ready\":false") && body.contains("problems"), "{body}");
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never ready:\n{}", run.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(ready.contains("\"ready\":true"), "{ready}");
    let (status, alive) = get(port, "/healthz").await;
    assert_eq!(status, 200);
    assert!(alive.contains("\"alive\":true"), "{alive}");
    assert_eq!(get(port, "/nope").await.0, 404);

    // Everything landed and merged, then the series say so.
    while wh.offsets().await.unwrap().values().sum::<i64>() < 301 || count(&wh, "_tidemark_merges").await == 0 {
        assert!(started.elapsed() < Duration::from_secs(60), "{}", run.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The gauges come with a heartbeat and librdkafka's statistics interval: polled for.
    let m = common::eventually_some(
        "the gauges of a heartbeat and of librdkafka's statistics",
        Duration::from_secs(30),
        || async move {
            let (status, m) = get(port, "/metrics").await;
            assert_eq!(status, 200);
            let ready = series(&m, "tidemark_staged_rows", &["table=\"item\""]) == Some(0.0)
                && series(&m, "tidemark_consumer_lag_messages", &["partition=\"0\""]) == Some(0.0)
                && series(&m, "tidemark_commit_lag_seconds", &["table=\"item\""]).is_some();
            ready.then_some(m)
        },
    )
    .await;
    let consumed: f64 =
        (0..2).filter_map(|p| series(&m, "tidemark_records_consumed_total", &[&format!("partition=\"{p}\"")])).sum();
    assert_eq!(consumed, 301.0, "{m}");
    assert_eq!(series(&m, "tidemark_changes_landed_total", &["table=\"item\""]), Some(300.0), "{m}");
    // The undecodable record is on item's own topic: item's dead letter.
    assert_eq!(series(&m, "tidemark_dead_letters_total", &["table=\"item\""]), Some(1.0), "{m}");
    assert!(series(&m, "tidemark_merges_total", &["table=\"item\"", "result=\"ok\""]).unwrap_or(0.0) >= 1.0, "{m}");
    assert_eq!(series(&m, "tidemark_merge_rows_total", &["table=\"item\"", "action=\"inserted\""]), Some(50.0), "{m}");
    assert!(series(&m, "tidemark_merge_duration_seconds_count", &["table=\"item\""]).unwrap_or(0.0) >= 1.0, "{m}");
    assert!(series(&m, "tidemark_landing_batch_records_count", &[]).unwrap_or(0.0) >= 1.0, "{m}");
    assert_eq!(series(&m, "tidemark_staged_rows", &["table=\"item\""]), Some(0.0), "{m}");
    assert_eq!(series(&m, "tidemark_table_stopped", &["table=\"item\""]), Some(0.0), "{m}");
    assert!(series(&m, "tidemark_commit_lag_seconds", &["table=\"item\""]).is_some(), "{m}");
    assert_eq!(series(&m, "tidemark_consumer_lag_messages", &["partition=\"0\""]), Some(0.0), "{m}");
    assert_eq!(series(&m, "tidemark_dependency_up", &["dependency=\"warehouse\""]), Some(1.0), "{m}");
    assert_eq!(series(&m, "tidemark_dependency_up", &["dependency=\"kafka\""]), Some(1.0), "{m}");

    // status --json, from the warehouse.
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap(), "status", "--json"])
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(status["tables"][0]["table"], "item");
    assert_eq!(status["tables"][0]["staged_rows"], 0);
    // Everything landed and merged: up to date, whatever the age of the newest change (these
    // were committed upstream in 1970) — an idle upstream is not lag.
    assert_eq!(status["tables"][0]["pending_in_kafka"], 0, "{status}");
    assert_eq!(status["tables"][0]["up_to_date"], true, "{status}");
    assert_eq!(status["tables"][0]["replica_lag_s"].as_f64(), Some(0.0), "{status}");
    assert_eq!(status["tables"][0]["dead_letters"], 1);
    assert_eq!(status["unrouted_dead_letters"], 0);
    assert_eq!(status["instances"][0]["state"], "running", "{status}");
    common::stream::stop(&mut run, Duration::from_secs(30));

    // With `run` stopped, records that arrive are pending: not up to date, and counted.
    for i in 0..7u64 {
        let payload = c.insert(&[Some("1"), Some("1"), Some("pen"), Some("2.00"), None], tso(400 + i));
        producer.send(BaseRecord::<(), _>::to("tidb_tpcc_item").partition((i % 2) as i32).payload(&payload)).unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let status_of = |json: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        cmd.args(["--config", config.to_str().unwrap(), "status"]);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let status: serde_json::Value = serde_json::from_str(&status_of(true)).expect("status --json is JSON");
    assert_eq!(status["tables"][0]["pending_in_kafka"], 7, "{status}");
    assert_eq!(status["tables"][0]["up_to_date"], false, "{status}");
    let text = status_of(false);
    let row = text.lines().find(|l| l.starts_with("item ")).unwrap_or_else(|| panic!("{text}"));
    assert!(row.split_whitespace().nth(1) == Some("7"), "IN KAFKA column: {text}");
    db.drop_db().await;
}

/// `tidemark check` lists every problem, and exits non-zero.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_lists_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let mock = MockCluster::new(1).unwrap();
    mock.create_topic("tidb_tpcc_item", 2, 1).unwrap();
    std::fs::write(dir.path().join("bad.sql"), "CREATE TABLE item (i_id int,").unwrap();
    let config = dir.path().join("tidemark.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\n[warehouse]\nurl = \"postgres://postgres@127.0.0.1:5432/no_such_database\"\n\
             [[tables]]\nname = \"item\"\ntopic = \"tidb_tpcc_item\"\n\
             [[tables]]\nname = \"ghost\"\ntopic = \"tidb_tpcc_ghost\"\nsource_ddl = \"bad.sql\"\n",
            mock.bootstrap_servers()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
        .args(["--config", config.to_str().unwrap(), "check"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("PROBLEM  table `ghost`: source_ddl"), "{text}");
    assert!(text.contains("PROBLEM  warehouse postgres://postgres@127.0.0.1:5432/no_such_database"), "{text}");
    assert!(text.contains("PROBLEM  table `ghost`: topic tidb_tpcc_ghost does not exist"), "{text}");
    assert!(text.contains("ok       table `item`: topic tidb_tpcc_item (2 partitions)"), "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
}

/// Every YAML and TOML file under deploy/ parses; the manifests say what the service needs.
#[test]
fn deploy_files_parse() {
    let mut yaml = 0;
    for path in files(&deploy()) {
        let text = std::fs::read_to_string(&path).unwrap();
        match path.extension().and_then(|e| e.to_str()) {
            Some("yaml" | "yml") => {
                for doc in serde_norway::Deserializer::from_str(&text) {
                    let v: serde_norway::Value =
                        serde::Deserialize::deserialize(doc).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                    assert!(!v.is_null(), "{}", path.display());
                    yaml += 1;
                }
            }
            Some("toml") => {
                text.parse::<toml::Table>().unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            }
            _ => {}
        }
    }
    assert!(yaml >= 6, "{yaml} YAML documents");
    let deployment: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(deploy().join("kubernetes/deployment.yaml")).unwrap()).unwrap();
    let c = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["ports"][0]["containerPort"], 9464);
    let compose: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(deploy().join("compose/docker-compose.yml")).unwrap()).unwrap();
    for s in ["kafka", "schema-registry", "postgres", "tidemark"] {
        assert!(!compose["services"][s].is_null(), "compose lacks {s}");
    }
    assert!(compose["services"]["kafka"]["environment"]["KAFKA_PROCESS_ROLES"]
        .as_str()
        .unwrap()
        .contains("controller"));
    let dockerfile = std::fs::read_to_string(deploy().join("Dockerfile")).unwrap();
    assert!(dockerfile.contains("USER 10001") && dockerfile.matches("FROM ").count() == 2, "multi-stage, non-root");
    let unit = std::fs::read_to_string(deploy().join("tidemark.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/tidemark --config /etc/tidemark/tidemark.toml run"));
}

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Each tidemark config shipped in deploy/ (the sample, the compose lab's, the Kubernetes
/// ConfigMap's) passes `tidemark check` against real services, given its environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipped_configs_pass_check() {
    let db = TestDb::postgres().await;
    let mock = MockCluster::new(1).unwrap();
    for t in ["tidb_tpcc_item", "tidb_tpcc_orders"] {
        mock.create_topic(t, 2, 1).unwrap();
    }
    let registry = common::registry::RegistryServer::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let configmap: serde_norway::Value =
        serde_norway::from_str(&std::fs::read_to_string(deploy().join("kubernetes/configmap.yaml")).unwrap()).unwrap();
    let from_configmap = dir.path().join("configmap.toml");
    std::fs::write(&from_configmap, configmap["data"]["tidemark.toml"].as_str().unwrap()).unwrap();
    let (server, name) = db.url.trim_start_matches("postgres://postgres@").split_once('/').unwrap();
    let (host, port) = server.split_once(':').unwrap();
    for config in [deploy().join("tidemark.toml"), deploy().join("compose/tidemark.toml"), from_configmap] {
        let out = Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["--config", config.to_str().unwrap(), "check"])
            .env("KAFKA_BOOTSTRAP", mock.bootstrap_servers())
            .env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
            .env("SCHEMA_REGISTRY_URL", &registry.url)
            .env("PGHOST", host)
            .env("PGPORT", port)
            .env("PGUSER", "postgres")
            .env("PGPASSWORD", "unused-by-trust-auth")
            .env("PGDATABASE", name)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}:\n{text}{}", config.display(), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("ready to run"), "{text}");
    }
    db.drop_db().await;
}
