//! TiCDC Avro through a Schema Registry (a real HTTP server speaking its API), on PostgreSQL
//! and SQLite: every type round-trips exactly, tombstones delete, a column added upstream
//! (a new schema id) reaches the replica, and bad input or a missing registry is handled.

mod common;

use apache_avro::types::Value as Avro;
use apache_avro::Schema;
use common::registry::RegistryServer;
use common::*;
use num_bigint::BigInt;
use tidemark::config::Config;
use tidemark::land::Lander;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_test_types";

fn ty(avro: &str, tidb: &str) -> String {
    format!(r#"{{"type":"{avro}","connect.parameters":{{"tidb_type":"{tidb}"}}}}"#)
}

/// A nullable field, TiCDC style: `["null", T]`, or `[T, "null"]` when the column has a
/// non-null default.
fn nullable(name: &str, t: &str, null_first: bool) -> String {
    if null_first {
        format!(r#"{{"default":null,"name":"{name}","type":["null",{t}]}}"#)
    } else {
        format!(r#"{{"default":"0","name":"{name}","type":[{t},"null"]}}"#)
    }
}

fn record(fields: &[String]) -> String {
    format!(r#"{{"type":"record","name":"types","namespace":"default.test","fields":[{}]}}"#, fields.join(","))
}

fn key_schema() -> String {
    record(&[format!(r#"{{"name":"id","type":{}}}"#, ty("long", "BIGINT UNSIGNED"))])
}

fn ext_fields() -> Vec<String> {
    vec![
        r#"{"default":"","name":"_tidb_op","type":"string"}"#.to_string(),
        r#"{"default":0,"name":"_tidb_commit_ts","type":"long"}"#.to_string(),
        r#"{"default":0,"name":"_tidb_commit_physical_time","type":"long"}"#.to_string(),
    ]
}

fn value_schema() -> String {
    let mut f = vec![
        format!(r#"{{"name":"id","type":{}}}"#, ty("long", "BIGINT UNSIGNED")),
        nullable("i", &ty("int", "INT"), true),
        nullable("iu", &ty("long", "INT UNSIGNED"), true),
        nullable(
            "d",
            r#"{"type":"bytes","connect.parameters":{"tidb_type":"DECIMAL"},"logicalType":"decimal","precision":65,"scale":30}"#,
            true,
        ),
        nullable("ds", &ty("string", "DECIMAL"), false),
        nullable("f", &ty("float", "FLOAT"), true),
        nullable("g", &ty("double", "DOUBLE"), true),
        nullable("t", &ty("string", "TEXT"), true),
        nullable("n", &ty("string", "TEXT"), true),
        nullable("b", &ty("bytes", "BLOB"), true),
        nullable("dte", &ty("string", "DATE"), true),
        nullable("dtt", &ty("string", "DATETIME"), true),
        nullable("ts", &ty("string", "TIMESTAMP"), true),
        nullable("tm", &ty("string", "TIME"), true),
        nullable("y", &ty("int", "YEAR"), true),
        nullable("bt", r#"{"type":"bytes","connect.parameters":{"tidb_type":"BIT","length":"12"}}"#, true),
        nullable("e", r#"{"type":"string","connect.parameters":{"tidb_type":"ENUM","allowed":"a,b,c"}}"#, true),
        nullable("st", r#"{"type":"string","connect.parameters":{"tidb_type":"SET","allowed":"a,b,c"}}"#, true),
        nullable("j", &ty("string", "JSON"), true),
    ];
    f.extend(ext_fields());
    record(&f)
}

fn encode(schema: &str, v: Avro) -> Vec<u8> {
    let s = Schema::parse_str(schema).expect("schema");
    apache_avro::writer::datum::GenericDatumWriter::builder(&s)
        .build()
        .expect("writer")
        .write_value_to_vec(v)
        .expect("encode")
}

fn framed(id: u32, body: Vec<u8>) -> Vec<u8> {
    let mut out = vec![0];
    out.extend_from_slice(&id.to_be_bytes());
    out.extend(body);
    out
}

/// The Avro decimal bytes of `text` at `scale`.
fn decimal(text: &str, scale: usize) -> Avro {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let digits = format!("{int}{frac:0<scale$}");
    let n = BigInt::parse_bytes(digits.as_bytes(), 10).expect("digits");
    Avro::Decimal(apache_avro::Decimal::from(n.to_signed_bytes_be()))
}

fn some(v: Avro) -> Avro {
    Avro::Union(1, Box::new(v))
}
fn none() -> Avro {
    Avro::Union(0, Box::new(Avro::Null))
}
fn s_(v: &str) -> Avro {
    some(Avro::String(v.into()))
}

fn ext(op: &str, ts: u64) -> Vec<(String, Avro)> {
    vec![
        ("_tidb_op".into(), Avro::String(op.into())),
        ("_tidb_commit_ts".into(), Avro::Long(ts as i64)),
        ("_tidb_commit_physical_time".into(), Avro::Long((ts >> 18) as i64)),
    ]
}

const DECIMAL: &str = "-12345678901234567890123456789012345.123456789012345678901234567890";

async fn setup(
    url: &str,
    registry: &RegistryServer,
    auth: Option<(&str, &str)>,
) -> (std::sync::Arc<Warehouse>, Lander, Config) {
    let auth_toml = auth.map(|(u, p)| format!("username = {u:?}\npassword = {p:?}\n")).unwrap_or_default();
    setup_with(url, registry, &auth_toml).await
}

/// [`setup`] with more `[schema_registry]` settings.
async fn setup_with(
    url: &str,
    registry: &RegistryServer,
    registry_toml: &str,
) -> (std::sync::Arc<Warehouse>, Lander, Config) {
    let auth_toml = registry_toml;
    let cfg = Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[schema_registry]\nurl = {:?}\n{auth_toml}[defaults]\nformat = \"avro\"\n\
         [[tables]]\nname = \"types\"\ntopic = \"{TOPIC}\"\n",
        registry.url
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let l = lander(&wh, &cfg).await;
    (wh, l, cfg)
}

async fn every_type_round_trips(url: &str) {
    let registry = RegistryServer::start(None).await;
    let (wh, mut l, _) = setup(url, &registry, None).await;
    let kid = registry.register(&format!("{TOPIC}-key"), &key_schema(), None).await;
    let vid = registry.register(&format!("{TOPIC}-value"), &value_schema(), None).await;
    let all_bytes: Vec<u8> = (0u8..=255).collect();
    let key = framed(kid, encode(&key_schema(), Avro::Record(vec![("id".into(), Avro::Long(-1))])));
    let mut fields = vec![
        ("id".to_string(), Avro::Long(-1)), // BIGINT UNSIGNED max, wrapped negative by TiCDC
        ("i".into(), some(Avro::Int(-2147483648))),
        ("iu".into(), some(Avro::Long(4294967295))),
        ("d".into(), some(decimal(DECIMAL, 30))),
        ("ds".into(), Avro::Union(0, Box::new(Avro::String("123.4560".into())))), // [T, "null"]
        ("f".into(), some(Avro::Float(1.25))),
        ("g".into(), some(Avro::Double(0.30000000000000004))),
        ("t".into(), s_("")),
        ("n".into(), none()),
        ("b".into(), some(Avro::Bytes(all_bytes.clone()))),
        ("dte".into(), s_("2024-02-29")),
        ("dtt".into(), s_("2024-03-01 07:30:00.123456")),
        ("ts".into(), s_("2024-03-01 07:30:00.654321")),
        ("tm".into(), s_("-838:59:59")),
        ("y".into(), some(Avro::Int(2155))),
        ("bt".into(), some(Avro::Bytes(vec![0x0f, 0xff]))),
        ("e".into(), s_("b")),
        ("st".into(), s_("a,c")),
        ("j".into(), s_(r#"{"a": [1, 2.5, "x"]}"#)),
    ];
    fields.extend(ext("c", tso(1)));
    let value = framed(vid, encode(&value_schema(), Avro::Record(fields)));
    let rec = tidemark::source::RawRecord {
        topic: TOPIC.into(),
        partition: 0,
        offset: 0,
        key: Some(key),
        value: Some(value),
    };
    // The other extreme: DECIMAL(65,30)'s largest value, everything else NULL.
    let max = format!("{}.{}", "9".repeat(35), "9".repeat(30));
    let mut nulls: Vec<(String, Avro)> = vec![("id".to_string(), Avro::Long(0))];
    for name in ["i", "iu"] {
        nulls.push((name.into(), none()));
    }
    nulls.push(("d".into(), some(decimal(&max, 30))));
    nulls.push(("ds".into(), Avro::Union(1, Box::new(Avro::Null))));
    for name in ["f", "g", "t", "n", "b", "dte", "dtt", "ts", "tm", "y", "bt", "e", "st", "j"] {
        nulls.push((name.into(), none()));
    }
    nulls.extend(ext("c", tso(2)));
    let key0 = framed(kid, encode(&key_schema(), Avro::Record(vec![("id".into(), Avro::Long(0))])));
    let rec0 = tidemark::source::RawRecord {
        topic: TOPIC.into(),
        partition: 0,
        offset: 1,
        key: Some(key0),
        value: Some(framed(vid, encode(&value_schema(), Avro::Record(nulls)))),
    };
    let rep = l.land(&[rec, rec0]).await.unwrap();
    assert_eq!((rep.staged.get("types"), rep.dead_letters), (Some(&2), 0));
    assert!(matches!(merge(&wh, "types", true).await.unwrap(), MergeOutcome::Merged(_)));

    let select = match wh.dialect() {
        Dialect::Postgres => {
            "CAST(id AS TEXT), CAST(i AS TEXT), CAST(iu AS TEXT), CAST(d AS TEXT), CAST(ds AS TEXT), CAST(f AS TEXT), \
             CAST(g AS TEXT), t, n, encode(b, 'hex'), CAST(dte AS TEXT), CAST(dtt AS TEXT), \
             to_char(ts AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US'), CAST(tm AS TEXT), CAST(y AS TEXT), \
             encode(bt, 'hex'), e, st, CAST(j AS TEXT)"
        }
        _ => {
            "id, i, iu, d, ds, f, g, t, n, CASE WHEN b IS NULL THEN NULL ELSE lower(hex(b)) END, dte, dtt, ts, tm, y, \
             CASE WHEN bt IS NULL THEN NULL ELSE lower(hex(bt)) END, e, st, j"
        }
    };
    let hex: String = all_bytes.iter().map(|b| format!("{b:02x}")).collect();
    let want = vec![
        s("18446744073709551615"),
        s("-2147483648"),
        s("4294967295"),
        s(DECIMAL),
        s("123.4560"),
        s("1.25"),
        s("0.30000000000000004"),
        s(""),
        None,
        Some(hex),
        s("2024-02-29"),
        s("2024-03-01 07:30:00.123456"),
        s("2024-03-01 07:30:00.654321"),
        s("-838:59:59"),
        s("2155"),
        s("0fff"),
        s("b"),
        s("a,c"),
        s(r#"{"a": [1, 2.5, "x"]}"#),
    ];
    let mut extreme = vec![s("0"), None, None, Some(max)];
    extreme.extend(std::iter::repeat_n(None, 15));
    assert_eq!(rows(&wh, "types", select, "1").await, vec![extreme, want]);
    // The _tidb_* extension fields are metadata, never columns.
    let cols = wh.schema("types").await.unwrap().unwrap().columns;
    assert!(cols.iter().all(|c| !c.name.starts_with("_tidb")), "{cols:?}");
}
both!(every_type_round_trips);

fn item_schema(extra: bool) -> String {
    let mut f = vec![
        format!(r#"{{"name":"id","type":{}}}"#, ty("long", "BIGINT UNSIGNED")),
        nullable("name", &ty("string", "TEXT"), true),
    ];
    if extra {
        f.push(nullable("color", &ty("string", "TEXT"), true));
    }
    f.extend(ext_fields());
    record(&f)
}

struct Producer {
    kid: u32,
    vid: u32,
    vid2: u32,
    offset: i64,
}

impl Producer {
    async fn new(registry: &RegistryServer, auth: Option<(&str, &str)>) -> Producer {
        Producer {
            kid: registry.register(&format!("{TOPIC}-key"), &key_schema(), auth).await,
            vid: registry.register(&format!("{TOPIC}-value"), &item_schema(false), auth).await,
            vid2: registry.register(&format!("{TOPIC}-value"), &item_schema(true), auth).await,
            offset: 0,
        }
    }

    fn key(&self, id: i64) -> Vec<u8> {
        framed(self.kid, encode(&key_schema(), Avro::Record(vec![("id".into(), Avro::Long(id))])))
    }

    fn record(&mut self, key: Vec<u8>, value: Option<Vec<u8>>) -> tidemark::source::RawRecord {
        self.offset += 1;
        tidemark::source::RawRecord {
            topic: TOPIC.into(),
            partition: 0,
            offset: self.offset - 1,
            key: Some(key),
            value,
        }
    }

    fn upsert(&mut self, id: i64, name: &str, color: Option<&str>, op: &str, ts: u64) -> tidemark::source::RawRecord {
        let mut f = vec![("id".to_string(), Avro::Long(id)), ("name".into(), s_(name))];
        let (schema, vid) = match color {
            Some(c) => {
                f.push(("color".into(), s_(c)));
                (item_schema(true), self.vid2)
            }
            None => (item_schema(false), self.vid),
        };
        f.extend(ext(op, ts));
        let v = framed(vid, encode(&schema, Avro::Record(f)));
        let k = self.key(id);
        self.record(k, Some(v))
    }

    fn tombstone(&mut self, id: i64) -> tidemark::source::RawRecord {
        let k = self.key(id);
        self.record(k, None)
    }
}

async fn updates_tombstones_and_a_new_column(url: &str) {
    let registry = RegistryServer::start(None).await;
    let (wh, mut l, _) = setup(url, &registry, None).await;
    let mut p = Producer::new(&registry, None).await;
    let batch = vec![
        p.upsert(1, "a", None, "c", tso(1)),
        p.upsert(2, "b", None, "c", tso(2)),
        p.upsert(1, "a2", None, "u", tso(3)),
        p.tombstone(2), // no commit ts: ordered after the insert before it
        p.tombstone(9), // a key the replica never had
    ];
    l.land(&batch).await.unwrap();
    assert!(matches!(merge(&wh, "types", true).await.unwrap(), MergeOutcome::Merged(_)));
    let got = rows(&wh, "types", "CAST(id AS TEXT), name", "\"types\".id").await;
    assert_eq!(got, vec![vec![s("1"), s("a2")]]);
    // ALTER TABLE ADD COLUMN color upstream: a new schema id, no restart.
    let batch = vec![p.upsert(3, "c", Some("red"), "c", tso(4)), p.upsert(1, "a3", Some("blue"), "u", tso(5))];
    l.land(&batch).await.unwrap();
    let m = match merge(&wh, "types", true).await.unwrap() {
        MergeOutcome::Merged(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m.columns_added, vec!["color".to_string()]);
    let got = rows(&wh, "types", "CAST(id AS TEXT), name, color", "\"types\".id").await;
    assert_eq!(got, vec![vec![s("1"), s("a3"), s("blue")], vec![s("3"), s("c"), s("red")]]);
    assert_eq!(registry.gets(), 3, "each schema id is fetched once");
}
both!(updates_tombstones_and_a_new_column);

async fn bad_records_and_a_missing_registry(url: &str) {
    let registry = RegistryServer::start(None).await;
    let (wh, mut l, _) = setup(url, &registry, None).await;
    let mut p = Producer::new(&registry, None).await;
    let good = p.upsert(1, "a", None, "c", tso(1));
    let mut wrong_magic = p.upsert(2, "b", None, "c", tso(2));
    wrong_magic.value.as_mut().unwrap()[0] = 7;
    let mut unknown_id = p.upsert(3, "c", None, "c", tso(3));
    unknown_id.value.as_mut().unwrap()[1..5].copy_from_slice(&999u32.to_be_bytes());
    let mut truncated = p.upsert(4, "d", None, "c", tso(4));
    truncated.value.as_mut().unwrap().truncate(8);
    let rep = l.land(&[good, wrong_magic, unknown_id, truncated]).await.unwrap();
    assert_eq!((rep.staged.get("types"), rep.dead_letters), (Some(&1), 3));
    let dead = rows(&wh, "_tidemark_dead_letters", "CAST(kafka_offset AS TEXT), error", "id").await;
    assert!(dead[0][1].as_deref().unwrap().contains("magic byte 0x07"), "{dead:?}");
    assert!(dead[1][1].as_deref().unwrap().contains("schema id 999 is not in the schema registry"), "{dead:?}");
    assert!(dead[2][1].as_deref().unwrap().contains("undecodable Avro"), "{dead:?}");

    // The registry is down: the batch fails as a whole (nothing lands, nothing is committed)
    // and lands once it is back.
    let fresh = RegistryServer::start(None).await;
    let (_, mut l2, _) = setup(url, &fresh, None).await;
    let mut p2 = Producer::new(&fresh, None).await;
    p2.offset = 100;
    let batch = vec![p2.upsert(5, "e", None, "c", tso(5))];
    fresh.set_down(true);
    let err = l2.land(&batch).await.unwrap_err();
    assert!(format!("{err:#}").contains("503"), "{err:#}");
    assert_eq!(count(&wh, "_tidemark_stage_types").await, 1, "nothing landed");
    fresh.set_down(false);
    assert_eq!(l2.land(&batch).await.unwrap().staged.get("types"), Some(&1));
}
both!(bad_records_and_a_missing_registry);

/// A schema id the registry answers 404 for a moment (registered a moment after its first
/// record, a lagging registry replica) is asked for again: the record lands, not a dead letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_the_registry_misses_for_a_moment_is_asked_again() {
    let db = TestDb::sqlite();
    let registry = RegistryServer::start(None).await;
    let (wh, mut l, _) = setup(&db.url, &registry, None).await;
    let mut p = Producer::new(&registry, None).await;
    registry.miss_next(2);
    let rep = l.land(&[p.upsert(1, "a", None, "c", tso(1))]).await.unwrap();
    assert_eq!((rep.staged.get("types"), rep.dead_letters), (Some(&1), 0));
    assert_eq!(count(&wh, "_tidemark_dead_letters").await, 0);
    assert_eq!(registry.gets(), 4, "two 404s, then the key's and the value's schema");
}

/// A schema id still missing after the retries: its records are dead letters, the failure is
/// remembered (no lookup per batch) but not forever: once it expires the id is asked again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_schema_is_not_remembered_forever() {
    let db = TestDb::sqlite();
    let registry = RegistryServer::start(None).await;
    let (wh, mut l, _) = setup_with(&db.url, &registry, "missing_id_ttl_secs = 2\n").await;
    let mut p = Producer::new(&registry, None).await;
    registry.miss_next(1000);
    let rep = l.land(&[p.upsert(1, "a", None, "c", tso(1))]).await.unwrap();
    assert_eq!(rep.dead_letters, 1);
    let dead = rows(&wh, "_tidemark_dead_letters", "error", "id").await;
    assert!(dead[0][0].as_deref().unwrap().contains("asked 4 times"), "{dead:?}");
    let gets = registry.gets();
    assert_eq!(gets, 8, "both ids, asked four times each");
    // Remembered: the next batch does not ask again.
    registry.miss_next(0);
    let rep = l.land(&[p.upsert(2, "b", None, "c", tso(2))]).await.unwrap();
    assert_eq!((rep.dead_letters, registry.gets()), (1, gets), "a missing id was asked again at once");
    // Until it expires: then the id is asked again, and the records land.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    for ts in 3.. {
        let rep = l.land(&[p.upsert(ts as i64, "c", None, "c", tso(ts))]).await.unwrap();
        if rep.staged.get("types") == Some(&1) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the missing schema id was never asked for again");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_basic_auth() {
    let db = TestDb::sqlite();
    let registry = RegistryServer::start(Some(("key", "s3cret"))).await;
    let mut p = Producer::new(&registry, Some(("key", "s3cret"))).await;
    let (_, mut wrong, _) = setup(&db.url, &registry, Some(("key", "nope"))).await;
    let err = wrong.land(&[p.upsert(1, "a", None, "c", tso(1))]).await.unwrap_err();
    assert!(format!("{err:#}").contains("refused the credentials"), "{err:#}");
    assert!(!format!("{err:#}").contains("nope"), "the password never appears in errors");
    let (_, mut right, _) = setup(&db.url, &registry, Some(("key", "s3cret"))).await;
    assert_eq!(right.land(&[p.upsert(1, "a", None, "c", tso(1))]).await.unwrap().staged.get("types"), Some(&1));
}

/// `tidemark sql --dialect snowflake` for an Avro table with neither a source_ddl nor a
/// warehouse: the columns and key come from the registry's latest schemas for the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snowflake_script_from_the_registry() {
    let registry = RegistryServer::start(Some(("key", "s3cret"))).await;
    Producer::new(&registry, Some(("key", "s3cret"))).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tidemark.toml"),
        format!(
            "[kafka]\nbootstrap_servers = \"127.0.0.1:9\"\ngroup_id = \"g\"\n\
             [schema_registry]\nurl = \"{}\"\nusername = \"key\"\npassword = \"s3cret\"\n\
             [defaults]\nformat = \"avro\"\n\
             [[tables]]\nname = \"types\"\ntopic = \"{TOPIC}\"\n\
             [[tables]]\nname = \"unknown\"\ntopic = \"tidb_test_unknown\"\n\
             [[tables]]\nname = \"canal\"\ntopic = \"tidb_test_canal\"\nformat = \"canal-json\"\n\
             source_ddl = \"canal.sql\"\n",
            registry.url
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("canal.sql"), "CREATE TABLE canal (id int PRIMARY KEY, v text);").unwrap();
    let run = |table: &'static str| {
        let dir = dir.path().to_path_buf();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
                .current_dir(&dir)
                .args(["sql", "--dialect", "snowflake", "--table", table])
                .output()
                .unwrap()
        })
    };
    let out = run("types").await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for want in [
        "CREATE TABLE IF NOT EXISTS \"TYPES\" (",
        "\"ID\" NUMBER(20,0) NOT NULL,",
        "\"COLOR\" VARCHAR,",
        "PRIMARY KEY (\"ID\")",
        "CREATE STREAM IF NOT EXISTS \"TYPES_TIDEMARK_STREAM\" ON TABLE \"TIDB_TEST_TYPES\" APPEND_ONLY = TRUE;",
        "WHEN MATCHED AND s._TIDEMARK_IS_DELETE THEN",
    ] {
        assert!(text.contains(want), "missing {want}:\n{text}");
    }
    assert!(!dir.path().join("tidemark.db").exists(), "a script for Snowflake creates no local database");

    let out = run("unknown").await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("the columns of `unknown` are not known yet") && err.contains("schema registry"), "{err}");

    let out = run("canal").await.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("format = \"canal-json\"") && err.contains("Snowflake"), "{err}");
}

/// The schema registry away while Avro records arrive: `run` waits for it (nothing committed),
/// says so once in its log and in `status`, and lands everything when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_goes_away_and_comes_back() {
    use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer as _, ThreadedProducer};
    let db = TestDb::postgres().await;
    let registry = RegistryServer::start(None).await;
    let mut p = Producer::new(&registry, None).await;
    let mock = rdkafka::mocking::MockCluster::new(1).unwrap();
    mock.create_topic(TOPIC, 1, 1).unwrap();
    let kafka: ThreadedProducer<DefaultProducerContext> =
        rdkafka::config::ClientConfig::new().set("bootstrap.servers", mock.bootstrap_servers()).create().unwrap();
    let records: Vec<_> = (0..50).map(|i| p.upsert(i, &format!("n{i}"), None, "c", tso(i as u64 + 1))).collect();
    for r in &records {
        let mut b = BaseRecord::<Vec<u8>, Vec<u8>>::to(TOPIC).partition(0);
        b = b.key(r.key.as_ref().unwrap()).payload(r.value.as_ref().unwrap());
        kafka.send(b).map_err(|(e, _)| e).unwrap();
    }
    kafka.flush(std::time::Duration::from_secs(10)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tidemark.toml");
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = \"g\"\nbatch_linger_ms = 50\n\
             [warehouse]\nurl = {:?}\n[schema_registry]\nurl = {:?}\ntimeout_ms = 1000\n\
             [defaults]\nformat = \"avro\"\nschedule = \"* * * * * *\"\n\
             [[tables]]\nname = \"types\"\ntopic = \"{TOPIC}\"\n",
            mock.bootstrap_servers(),
            db.url,
            registry.url
        ),
    )
    .unwrap();
    registry.set_down(true);
    let mut run = common::process::Tidemark::run(&config, &common::process::log_path("outage-registry.log"), &[]);
    let status = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidemark"))
            .args(["--config", config.to_str().unwrap(), "status"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let wh = Warehouse::open(&db.url).await.unwrap();
    let started = std::time::Instant::now();
    while !status().contains("waiting for the schema registry since") {
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "status: {}\n{}", status(), run.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // Retried with backoff, landing nothing while the registry is away.
    let asked = registry.requests();
    common::eventually("landing retried while the registry is away", std::time::Duration::from_secs(30), || async {
        registry.requests() >= asked + 2
    })
    .await;
    assert!(wh.offsets().await.unwrap().is_empty(), "nothing landed or committed while it is away");
    registry.set_down(false);
    while wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)) != Some(&50) {
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "{}", run.log_text());
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    common::stream::stop(&mut run, std::time::Duration::from_secs(30));
    let log = run.log_text();
    assert_eq!(log.matches("the schema registry is unreachable").count(), 1, "{log}");
    assert_eq!(log.matches("the schema registry is reachable again").count(), 1, "{log}");
    assert_eq!(log.lines().filter(|l| l.contains("ERROR") || l.contains("WARN")).count(), 1, "{log}");
    db.drop_db().await;
}
