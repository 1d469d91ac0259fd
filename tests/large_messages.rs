//! TiCDC's large-message options (seed 002, `reference/anchors-2.md` §2) with canal-json: values
//! compressed with `large-message-handle-compression = "lz4" | "snappy"` (every value, not only
//! the large ones), and `claim-check` references — the Kafka record carries the key columns and
//! `claimCheckLocation`, the full message is an object in a real claim-check directory or in
//! S3-compatible storage (moto's server, checking every signature), wrapped as `{"key",
//! "value"}` or raw (`claim-check-raw-value`).

mod common;

use base64::Engine;
use common::*;
use tidemark::merge::merge;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_tp_int";

/// The full message TiCDC would have sent (the reference's literal shape, with a large column).
fn full(id: u32, big: &str) -> String {
    format!(
        r#"{{"id":0,"database":"test","table":"tp_int","pkNames":["id"],"isDdl":false,"type":"INSERT","es":1639633141221,"ts":1639633142960,"sql":"","sqlType":{{"id":4,"c":12}},"mysqlType":{{"id":"int","c":"text"}},"data":[{{"id":"{id}","c":"{big}"}}],"old":null,"_tidb":{{"commitTs":{}}}}}"#,
        163963314122145239u64 + id as u64
    )
}

/// The claim-check reference TiCDC sends instead (the reference's literal example).
fn reference(id: u32, uuid: &str) -> String {
    format!(
        r#"{{"id":0,"database":"test","table":"tp_int","pkNames":["id"],"isDdl":false,"type":"INSERT","es":1639633141221,"ts":1639633142960,"sql":"","sqlType":{{"id":4}},"mysqlType":{{"id":"int"}},"data":[{{"id":"{id}"}}],"old":null,"_tidb":{{"commitTs":{},"claimCheckLocation":"s3:/claim-check-bucket/{uuid}.json"}}}}"#,
        163963314122145239u64 + id as u64
    )
}

/// Where the claim-check objects are kept: a directory, or S3-compatible storage.
enum Storage {
    Dir,
    /// `Some(secret)`: read with that (wrong) secret key instead of the user's.
    S3(Option<&'static str>),
}

const OBJECT: &str = "6f1c0d3a-9a8e-4c55-9f43-2b9c1e0f7a01";
const MISSING: &str = "0b7e9d52-0000-4000-8000-000000000000";

/// A full message, a claim-check reference to an object that exists and one to an object that
/// does not. Returns the claim-check dead letters' errors.
async fn large_messages(url: &str, compression: &str, raw: bool, storage: Storage) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let claim_dir = dir.path().join("claim-check");
    std::fs::create_dir(&claim_dir).unwrap();
    let big = "x".repeat(100_000);
    // The object holds the full message, compressed like every value of the changefeed.
    let object = compress(compression, full(2, &big).as_bytes());
    let stored = if raw {
        object
    } else {
        let b64 = base64::engine::general_purpose::STANDARD.encode(&object);
        format!(r#"{{"key":null,"value":"{b64}"}}"#).into_bytes()
    };
    std::fs::write(claim_dir.join(format!("{OBJECT}.json")), stored).unwrap();
    let server;
    let uri = match storage {
        Storage::Dir => format!("file://{}", claim_dir.display()),
        Storage::S3(wrong_secret) => {
            server = common::s3::S3Server::start();
            let (key, secret) = server.prepare("claims", "cdc/large", &claim_dir);
            // As in TiCDC's URIs, query values are percent-encoded (a secret may hold `+`, `/`).
            let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
            format!(
                "s3://claims/cdc/large?endpoint={}&region=us-east-1&access-key={}&secret-access-key={}",
                enc(&server.endpoint),
                enc(&key),
                enc(wrong_secret.unwrap_or(&secret))
            )
        }
    };
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\nlarge_message_compression = {compression:?}\n\
         claim_check_storage = {uri:?}\nclaim_check_raw_value = {raw}\n[[tables]]\nname = \"tp_int\"\ntopic = \"{TOPIC}\"\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let batch = vec![
        compress(compression, full(1, "small").as_bytes()),
        compress(compression, reference(2, OBJECT).as_bytes()),
        compress(compression, reference(3, MISSING).as_bytes()),
    ];
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    let why: Vec<String> = query(&wh, "SELECT error FROM _tidemark_dead_letters ORDER BY kafka_offset", &[])
        .await
        .into_iter()
        .map(|r| r[0].clone().unwrap_or_default())
        .collect();
    if matches!(storage, Storage::S3(Some(_))) {
        return why;
    }
    assert_eq!((rep.staged.get("tp_int"), rep.dead_letters), (Some(&2), 1), "{why:?}");
    assert!(why[0].contains(&format!("{MISSING}.json")), "{why:?}");
    merge(&wh, "tp_int", true).await.unwrap();
    let got = rows(&wh, "tp_int", "CAST(id AS TEXT), CAST(length(c) AS TEXT)", "1").await;
    assert_eq!(got, vec![vec![s("1"), s("5")], vec![s("2"), s("100000")]]);
    why
}

async fn claim_check_wrapped_uncompressed(url: &str) {
    large_messages(url, "none", false, Storage::Dir).await;
}
both!(claim_check_wrapped_uncompressed);

async fn claim_check_wrapped_lz4(url: &str) {
    large_messages(url, "lz4", false, Storage::Dir).await;
}
both!(claim_check_wrapped_lz4);

async fn claim_check_raw_snappy(url: &str) {
    large_messages(url, "snappy", true, Storage::Dir).await;
}
both!(claim_check_raw_snappy);

/// The same, the objects in S3-compatible storage (moto, authenticating every request): read
/// with signed GETs.
async fn claim_check_in_s3_lz4(url: &str) {
    let why = large_messages(url, "lz4", false, Storage::S3(None)).await;
    assert!(why[0].contains("404"), "{why:?}");
}
both!(claim_check_in_s3_lz4);

/// With a wrong secret key the storage refuses every object: each reference is a dead letter
/// saying so (the full message lands), and the secret is in no error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_check_in_s3_with_a_wrong_secret() {
    let db = TestDb::sqlite();
    let why = large_messages(&db.url, "none", true, Storage::S3(Some("not-the-secret"))).await;
    assert_eq!(why.len(), 2, "{why:?}");
    for w in &why {
        assert!(w.contains("403") && w.contains("SignatureDoesNotMatch"), "{why:?}");
        assert!(!w.contains("not-the-secret"), "{why:?}");
    }
}

/// Storage that cannot be reached fails the batch (landed again later, as in an outage), never
/// dead-letters the references.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_check_storage_away_is_an_outage() {
    let db = TestDb::sqlite();
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {:?}\n[[tables]]\nname = \"tp_int\"\ntopic = \"{TOPIC}\"\n\
         claim_check_storage = \"s3://claims?endpoint=http://127.0.0.1:1&access-key=a&secret-access-key=b\"\n",
        db.url
    ))
    .unwrap();
    let wh = Warehouse::open(&db.url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let e = l.land(&records(TOPIC, 0, 0, vec![reference(2, OBJECT).into_bytes()])).await.unwrap_err();
    assert!(format!("{e:#}").contains("the claim-check storage"), "{e:#}");
    assert_eq!(count(&wh, "_tidemark_dead_letters").await, 0);
}

/// TiCDC's Debezium protocol compresses the key too (`pkg/sink/codec/debezium/encoder.go`): both
/// are decompressed (the key names the row's key; a delete carries only it and `before`).
async fn debezium_key_and_value_compressed(url: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.sql"), "CREATE TABLE t (id int NOT NULL, c varchar(10), PRIMARY KEY (id))")
        .unwrap();
    let path = dir.path().join("tidemark.toml");
    std::fs::write(
        &path,
        format!(
            "[warehouse]\nurl = {url:?}\n[defaults]\nlarge_message_compression = \"lz4\"\n\
             [[tables]]\nname = \"t\"\ntopic = \"tidb_test_t\"\nformat = \"debezium\"\nsource_ddl = \"t.sql\"\n"
        ),
    )
    .unwrap();
    let cfg = tidemark::config::Config::load(&path, false).unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let ev = |op: &str, id: u32, c: &str, ts: u64| {
        let (before, after) = if op == "d" {
            (format!(r#"{{"id":{id},"c":"{c}"}}"#), "null".to_string())
        } else {
            ("null".to_string(), format!(r#"{{"id":{id},"c":"{c}"}}"#))
        };
        let value = format!(
            r#"{{"payload":{{"before":{before},"after":{after},"op":"{op}","source":{{"connector":"TiCDC","db":"test","table":"t","commit_ts":{ts},"ts_ms":0}},"ts_ms":1,"transaction":null}}}}"#
        );
        let key = format!(r#"{{"payload":{{"id":{id}}}}}"#);
        (compress("lz4", key.as_bytes()), compress("lz4", value.as_bytes()))
    };
    let batch: Vec<tidemark::source::RawRecord> =
        [ev("c", 1, "one", tso(1)), ev("c", 2, "two", tso(2)), ev("d", 1, "one", tso(3))]
            .into_iter()
            .enumerate()
            .map(|(i, (k, v))| tidemark::source::RawRecord {
                topic: "tidb_test_t".into(),
                partition: 0,
                offset: i as i64,
                key: Some(k),
                value: Some(v),
            })
            .collect();
    let rep = l.land(&batch).await.unwrap();
    let why = query(&wh, "SELECT error FROM _tidemark_dead_letters", &[]).await;
    assert_eq!(rep.dead_letters, 0, "{why:?}");
    merge(&wh, "t", true).await.unwrap();
    assert_eq!(rows(&wh, "t", "CAST(id AS TEXT), c", "1").await, vec![vec![s("2"), s("two")]]);
}
both!(debezium_key_and_value_compressed);
