//! Hostile names and values, on PostgreSQL and SQLite: a table and columns named with quotes,
//! spaces, semicolons, reserved words, mixed case and non-ASCII; values with quotes,
//! backslashes, every byte value, emoji and other non-BMP text, a megabyte of text, NULL next
//! to ''. They replicate exactly — and no SQL statement tidemark sends ever contains a row
//! value: every statement sqlx runs is captured (its own `sqlx::query` events) and searched.

mod common;

use std::sync::{Arc, Mutex, OnceLock};

use common::*;
use serde_json::json;
use tidemark::merge::{merge, MergeOutcome};
use tidemark::sql::{Stmt, TableCtx};
use tidemark::warehouse::Warehouse;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

const TABLE: &str = "we\"ird 'tab`le]; DROP TABLE x;--";
const TOPIC: &str = "tidb_hostile";

/// Every statement sqlx runs in this test binary.
fn statements() -> &'static Arc<Mutex<Vec<String>>> {
    static CAPTURED: OnceLock<Arc<Mutex<Vec<String>>>> = OnceLock::new();
    CAPTURED.get_or_init(|| {
        let captured: Arc<Mutex<Vec<String>>> = Arc::default();
        let subscriber = tracing_subscriber::registry().with(Capture(captured.clone()));
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

struct Capture(Arc<Mutex<Vec<String>>>);

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, _: &Field, value: &str) {
        self.0.push_str(value);
        self.0.push('\n');
    }
    fn record_debug(&mut self, _: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{value:?}\n"));
    }
}

impl<S: tracing::Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target().starts_with("sqlx::query") {
            let mut f = Fields(String::new());
            event.record(&mut f);
            self.0.lock().unwrap().push(f.0);
        }
    }
}

/// (name, mysqlType) of the hostile columns; the first is the key.
const COLUMNS: [(&str, &str); 7] = [
    ("select", "int"),
    ("Mixed Case", "varchar"),
    ("semi;colon -- x", "text"),
    ("naïve \"col\"", "blob"),
    ("back\\slash", "text"),
    ("ÆØÅ 名前", "varchar"),
    ("'quoted'", "text"),
];

/// A marker inside every text value, to look for in the statements.
const MARK: &str = "ROW-VALUE-7f3a";

fn rows() -> Vec<Vec<Option<String>>> {
    let every_byte: String = (0u8..=255).map(char::from).collect(); // canal-json's ISO-8859-1 form
    let long = format!("{MARK}{}", "ab'\\\"c".repeat(200_000));
    vec![
        vec![
            Some("1".into()),
            Some(format!("{MARK} it's \"quoted\" \\ back\\slash")),
            Some(format!("{MARK}'; DROP TABLE item; --")),
            Some(every_byte),
            Some(format!("{MARK} 𝄞 😀 non-BMP")),
            Some(String::new()),
            None,
        ],
        vec![
            Some("2".into()),
            Some(String::new()),
            None,
            Some(String::new()),
            Some(long),
            Some(format!("{MARK} \u{1}\u{7}\t\n\r control")),
            Some(format!("{MARK} $1 ?1 :name")),
        ],
        // Text with the NUL character: SQLite keeps it; PostgreSQL cannot store it, so there
        // the record is a dead letter (never a batch that fails forever).
        vec![Some("3".into()), Some(format!("{MARK} nul \u{0} inside")), None, None, None, None, None],
    ]
}

fn insert(row: &[Option<String>], ts: u64) -> Vec<u8> {
    let data: serde_json::Map<String, serde_json::Value> =
        COLUMNS.iter().zip(row).map(|((n, _), v)| (n.to_string(), json!(v))).collect();
    let types: serde_json::Map<String, serde_json::Value> =
        COLUMNS.iter().map(|(n, t)| (n.to_string(), json!(t))).collect();
    serde_json::to_vec(&json!({
        "id": 0, "database": "tpcc", "table": TABLE, "pkNames": [COLUMNS[0].0], "isDdl": false,
        "type": "INSERT", "es": ts >> 18, "ts": ts >> 18, "sql": "", "sqlType": {}, "mysqlType": types,
        "data": [data], "old": null, "_tidb": {"commitTs": ts}
    }))
    .unwrap()
}

async fn hostile_names_and_values_replicate_exactly(url: &str) {
    let captured = statements().clone();
    let cfg = tidemark::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\n[[tables]]\nname = {TABLE:?}\ntopic = {TOPIC:?}\n"
    ))
    .unwrap();
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let want = rows();
    let batch: Vec<Vec<u8>> = want.iter().enumerate().map(|(i, r)| insert(r, tso(i as u64 + 1))).collect();
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    let pg = wh.dialect() == tidemark::sql::dialect::Dialect::Postgres;
    assert_eq!(rep.dead_letters, usize::from(pg));
    if pg {
        let dead = common::rows(&wh, "_tidemark_dead_letters", "CAST(kafka_offset AS TEXT), error", "id").await;
        assert_eq!(dead[0][0], s("2"));
        assert!(dead[0][1].as_deref().unwrap().contains("`Mixed Case` holds the NUL character"), "{dead:?}");
    }
    assert!(matches!(merge(&wh, TABLE, true).await.unwrap(), MergeOutcome::Merged(_)));

    // Read back every column as text (binary as hex), through tidemark's own template.
    let schema = wh.schema(TABLE).await.unwrap().expect("schema");
    assert_eq!(schema.columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(), COLUMNS.map(|c| c.0).to_vec());
    let t = TableCtx::new(TABLE, &schema);
    let got = wh.pool.fetch_rows(wh.sql.render(Stmt::ReplicaRows, &t, &[]).unwrap(), &[]).await.unwrap();
    let mut got: Vec<Vec<Option<String>>> =
        got.iter().map(|r| r.cells().iter().map(|c| c.to_text()).collect()).collect();
    got.sort();
    let hex = |s: &str| s.chars().map(|c| format!("{:02x}", c as u32)).collect::<String>();
    let want: Vec<Vec<Option<String>>> = want
        .into_iter()
        .filter(|r| !(pg && r[0].as_deref() == Some("3")))
        .map(|mut r| {
            r[3] = r[3].as_deref().map(hex);
            r
        })
        .collect();
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(&want) {
        for (i, (gv, wv)) in g.iter().zip(w).enumerate() {
            assert_eq!(gv, wv, "column {:?} of row {:?}", COLUMNS[i].0, w[0]);
        }
    }

    // No statement text held a row value.
    let statements = captured.lock().unwrap().clone();
    assert!(statements.iter().any(|s| s.contains("MERGE") || s.contains("UPDATE")), "statements were captured");
    assert!(statements.len() > 10, "only {} statements captured", statements.len());
    for s in &statements {
        assert!(!s.contains(MARK), "a statement holds a row value:\n{s}");
        assert!(!s.contains("😀"), "a statement holds a row value:\n{s}");
    }
}
both!(hostile_names_and_values_replicate_exactly);
