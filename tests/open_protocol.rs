//! TiCDC's `open-protocol`: the event stream of TiCDC's docs (its logs 1–14: the DDL and resolved
//! events on both partitions, inserts, a repeated event, deletes, updates, a key change), framed
//! as TiCDC frames it (an 8-byte version, then length-prefixed keys and values). Resolved events
//! are watermarks: after the docs' resolved ts the replica is upstream as of it; after a later
//! one, as of that.

mod common;

use common::*;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::source::RawRecord;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_t1";

fn key(keys: &[&str]) -> Vec<u8> {
    let mut out = 1i64.to_be_bytes().to_vec();
    for k in keys {
        out.extend_from_slice(&(k.len() as i64).to_be_bytes());
        out.extend_from_slice(k.as_bytes());
    }
    out
}

fn value(values: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for v in values {
        out.extend_from_slice(&(v.len() as i64).to_be_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    out
}

fn rec(partition: i32, offset: i64, k: Vec<u8>, v: Option<Vec<u8>>) -> RawRecord {
    RawRecord { topic: TOPIC.into(), partition, offset, key: Some(k), value: v }
}

const DDL_KEY: &str = r#"{"ts":415508856908021766,"scm":"test","tbl":"t1","t":2}"#;
const DDL: &str = r#"{"q":"CREATE TABLE test.t1(id int primary key, val varchar(16))","t":3}"#;
const T1: &str = r#"{"ts":415508878783938562,"scm":"test","tbl":"t1","t":1}"#;
const T2: &str = r#"{"ts":415508881418485761,"scm":"test","tbl":"t1","t":1}"#;

fn resolved(ts: u64) -> Vec<u8> {
    key(&[&format!(r#"{{"ts":{ts},"t":3}}"#)])
}

async fn the_docs_event_stream(url: &str) {
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nformat = \"open-protocol\"\n[[tables]]\nname = \"t1\"\ntopic = \"{TOPIC}\"\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let row =
        |id: u32, val: &str| format!(r#"{{"u":{{"id":{{"t":3,"h":true,"v":{id}}},"val":{{"t":15,"v":"{val}"}}}}}}"#);
    let del = |id: u32| format!(r#"{{"d":{{"id":{{"t":3,"h":true,"v":{id}}}}}}}"#);
    let batch = vec![
        rec(0, 0, key(&[DDL_KEY]), Some(value(&[DDL]))),
        rec(0, 1, resolved(415508856908021766), None),
        rec(1, 0, key(&[DDL_KEY]), Some(value(&[DDL]))),
        rec(1, 1, resolved(415508856908021766), None),
        // Logs 5 and 7 batched in one message; 8 repeats 7.
        rec(0, 2, key(&[T1, T1]), Some(value(&[&row(1, "aa"), &row(3, "cc")]))),
        rec(1, 2, key(&[T1]), Some(value(&[&row(2, "bb")]))),
        rec(0, 3, key(&[T1]), Some(value(&[&row(3, "cc")]))),
        // Logs 9–12: deletes, an update, the key change 2 → 4 (a delete and an insert).
        rec(0, 4, key(&[T2, T2, T2]), Some(value(&[&del(1), &row(3, "dd"), &row(4, "ee")]))),
        rec(1, 3, key(&[T2]), Some(value(&[&del(2)]))),
        // Logs 13, 14.
        rec(0, 5, resolved(415508881038376963), None),
        rec(1, 4, resolved(415508881038376963), None),
    ];
    let rep = l.land(&batch).await.unwrap();
    assert_eq!((rep.staged.get("t1"), rep.dead_letters, rep.ddl), (Some(&8), 0, 1));
    // The partition count `run` records from the brokers' metadata.
    exec(&wh, &format!("INSERT INTO _tidemark_topics (topic, partitions, watermarked) VALUES ('{TOPIC}', 2, true) ON CONFLICT (topic) DO UPDATE SET partitions = 2")).await;
    let MergeOutcome::Merged(m) = merge(&wh, "t1", true).await.unwrap() else { panic!("not merged") };
    assert_eq!(m.point, Some(415508881038376963));
    let got = rows(&wh, "t1", "CAST(id AS TEXT), val", "1").await;
    assert_eq!(
        got,
        vec![vec![s("1"), s("aa")], vec![s("2"), s("bb")], vec![s("3"), s("cc")]],
        "as of the docs' resolved ts"
    );

    let later = vec![rec(0, 6, resolved(415508881418485762), None), rec(1, 5, resolved(415508881418485762), None)];
    l.land(&later).await.unwrap();
    merge(&wh, "t1", true).await.unwrap();
    let got = rows(&wh, "t1", "CAST(id AS TEXT), val", "1").await;
    assert_eq!(got, vec![vec![s("3"), s("dd")], vec![s("4"), s("ee")]]);
}
both!(the_docs_event_stream);

/// TiCDC's large-message options with the open protocol (`pkg/sink/codec/open`): with
/// `large-message-handle-compression`, every event's value is compressed *inside* the framing
/// (DDLs' too); a claim-check reference is an event whose key names `ccl` and whose value has
/// only the handle key, its object `{"key", "value"}` holding the event's key (a version and
/// one frame) and value (one compressed frame).
async fn compressed_and_claim_checked(url: &str, how: &str, in_s3: bool) {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let row =
        |id: u32, val: &str| format!(r#"{{"u":{{"id":{{"t":3,"h":true,"v":{id}}},"val":{{"t":15,"v":"{val}"}}}}}}"#);
    let z = |v: &str| compress(how, v.as_bytes());
    let framed = |vs: &[Vec<u8>]| {
        let mut out = Vec::new();
        for v in vs {
            out.extend_from_slice(&(v.len() as i64).to_be_bytes());
            out.extend_from_slice(v);
        }
        out
    };
    let big = "b".repeat(16);
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let object = format!(r#"{{"key":"{}","value":"{}"}}"#, b64(&key(&[T2])), b64(&framed(&[z(&row(5, &big))])));
    std::fs::write(dir.path().join("0f0e.json"), object).unwrap();
    let server;
    let storage = if in_s3 {
        server = common::s3::S3Server::start();
        let (key, secret) = server.prepare("claims", "", dir.path());
        let enc = |v: &str| url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
        format!(
            "s3://claims?endpoint={}&access-key={}&secret-access-key={}",
            enc(&server.endpoint),
            enc(&key),
            enc(&secret)
        )
    } else {
        format!("file://{}", dir.path().display())
    };
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nformat = \"open-protocol\"\nwatermarks = \"off\"\n\
         large_message_compression = {how:?}\nclaim_check_storage = {storage:?}\n\
         [[tables]]\nname = \"t1\"\ntopic = \"{TOPIC}\"\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let reference =
        r#"{"ts":415508881418485761,"scm":"test","tbl":"t1","t":1,"ohk":false,"ccl":"s3://claims/0f0e.json"}"#;
    let handle_only = z(r#"{"u":{"id":{"t":3,"h":true,"v":5}}}"#);
    let batch = vec![
        rec(0, 0, key(&[DDL_KEY]), Some(framed(&[z(DDL)]))),
        rec(0, 1, key(&[T1, T1]), Some(framed(&[z(&row(1, "aa")), z(&row(3, "cc"))]))),
        // A reference batched with an ordinary event.
        rec(0, 2, key(&[T2, reference]), Some(framed(&[z(&row(3, "dd")), handle_only]))),
    ];
    let rep = l.land(&batch).await.unwrap();
    assert_eq!((rep.staged.get("t1"), rep.dead_letters, rep.ddl), (Some(&4), 0, 1), "{how}");
    merge(&wh, "t1", true).await.unwrap();
    let got = rows(&wh, "t1", "CAST(id AS TEXT), CAST(length(val) AS TEXT)", "1").await;
    assert_eq!(got, vec![vec![s("1"), s("2")], vec![s("3"), s("2")], vec![s("5"), s("16")]], "{how}");
}

async fn open_protocol_lz4_and_claim_check(url: &str) {
    compressed_and_claim_checked(url, "lz4", false).await;
}
both!(open_protocol_lz4_and_claim_check);

async fn open_protocol_snappy_and_claim_check(url: &str) {
    compressed_and_claim_checked(url, "snappy", false).await;
}
both!(open_protocol_snappy_and_claim_check);

async fn open_protocol_claim_check_uncompressed(url: &str) {
    compressed_and_claim_checked(url, "none", false).await;
}
both!(open_protocol_claim_check_uncompressed);

/// The reference's object in S3-compatible storage: fetched before the batch is decoded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_protocol_claim_check_in_s3() {
    let db = TestDb::sqlite();
    compressed_and_claim_checked(&db.url, "lz4", true).await;
}
