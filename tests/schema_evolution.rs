//! Schema evolution on PostgreSQL and SQLite: columns added, widened, dropped upstream, and an
//! incompatible type change that stops only its own table until `resume`.

mod common;

use common::*;
use tidemark::merge::{merge, MergeOutcome, TableStopped};
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

fn canal(im_type: &'static str) -> Canal {
    let mut c = Canal::item();
    c.types[1] = ("i_im_id", im_type);
    c
}

fn row(id: &'static str, im: &'static str) -> Vec<Option<&'static str>> {
    vec![Some(id), Some(im), Some("n"), Some("1.00"), Some("d")]
}

async fn merged(wh: &Warehouse, table: &str) {
    assert!(matches!(merge(wh, table, true).await.expect("merge"), MergeOutcome::Merged(_)));
}

async fn pg_type(wh: &Warehouse, column: &str) -> Option<String> {
    if wh.dialect() != Dialect::Postgres {
        return None;
    }
    let q = format!("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'item'::regclass AND attname = '{column}'");
    common::query(wh, &q, &[]).await[0][0].clone()
}

async fn widened_columns_follow(url: &str) {
    let cfg = config(url, &[("item", "tidb_tpcc_item")]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    l.land(&records("tidb_tpcc_item", 0, 0, vec![canal("int").insert(&row("1", "7"), tso(1))])).await.unwrap();
    merged(&wh, "item").await;
    if wh.dialect() == Dialect::Postgres {
        assert_eq!(pg_type(&wh, "i_im_id").await.as_deref(), Some("integer"));
    }
    // ALTER TABLE item MODIFY i_im_id BIGINT upstream, then a value beyond int.
    l.land(&records("tidb_tpcc_item", 0, 1, vec![canal("bigint").insert(&row("2", "9000000000"), tso(2))]))
        .await
        .unwrap();
    merged(&wh, "item").await;
    if wh.dialect() == Dialect::Postgres {
        assert_eq!(pg_type(&wh, "i_im_id").await.as_deref(), Some("bigint"));
    }
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), CAST(i_im_id AS TEXT)", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), s("7")], vec![s("2"), s("9000000000")]]);
}
both!(widened_columns_follow);

async fn incompatible_changes_stop_only_their_table(url: &str) {
    let cfg = config(url, &[("item", "tidb_tpcc_item"), ("other", "tidb_tpcc_other")]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let other = Canal { db: "tpcc", table: "other", pk: vec!["id"], types: vec![("id", "int")] };
    l.land(&records("tidb_tpcc_item", 0, 0, vec![canal("int").insert(&row("1", "7"), tso(1))])).await.unwrap();
    merged(&wh, "item").await;
    // ALTER TABLE item MODIFY i_im_id VARCHAR(10): the replica's integer column cannot take "x7".
    let rep = l
        .land(&records("tidb_tpcc_item", 0, 1, vec![canal("varchar(10)").insert(&row("2", "x7"), tso(2))]))
        .await
        .unwrap();
    assert_eq!((rep.staged.get("item"), rep.dead_letters), (Some(&1), 0), "the change is kept, staged");
    let err = merge(&wh, "item", true).await.unwrap_err();
    let stopped = err.downcast_ref::<TableStopped>().expect("a stopped table");
    assert!(stopped.reason.contains("i_im_id") && stopped.reason.contains("tidemark resume"), "{}", stopped.reason);
    // It keeps landing; other tables go on.
    l.land(&records("tidb_tpcc_item", 0, 2, vec![canal("varchar(10)").insert(&row("3", "y"), tso(3))])).await.unwrap();
    l.land(&records("tidb_tpcc_other", 0, 0, vec![other.insert(&[Some("5")], tso(4))])).await.unwrap();
    merged(&wh, "other").await;
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 2);
    let status = tidemark::commands::status::collect(&wh, &cfg.tables().unwrap()).await.unwrap();
    assert!(status.tables[0].stopped.is_some() && status.tables[1].stopped.is_none());

    let accepted = wh.resume("item").await.unwrap().expect("was stopped");
    assert_eq!(accepted, vec![("i_im_id".to_string(), "varchar(10)".to_string())]);
    merged(&wh, "item").await;
    if wh.dialect() == Dialect::Postgres {
        assert_eq!(pg_type(&wh, "i_im_id").await.as_deref(), Some("character varying(10)"));
    }
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), CAST(i_im_id AS TEXT)", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), s("7")], vec![s("2"), s("x7")], vec![s("3"), s("y")]]);
    // The new type is now the recorded one: more records of it do not stop the table again.
    l.land(&records("tidb_tpcc_item", 0, 3, vec![canal("varchar(10)").insert(&row("4", "z"), tso(5))])).await.unwrap();
    merged(&wh, "item").await;
}
both!(incompatible_changes_stop_only_their_table);

async fn dropped_columns_stay(url: &str) {
    let cfg = config(url, &[("item", "tidb_tpcc_item")]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    l.land(&records("tidb_tpcc_item", 0, 0, vec![Canal::item().insert(&row("1", "7"), tso(1))])).await.unwrap();
    merged(&wh, "item").await;
    // ALTER TABLE item DROP COLUMN i_data upstream.
    let mut narrow = Canal::item();
    narrow.types.pop();
    l.land(&records(
        "tidb_tpcc_item",
        0,
        1,
        vec![narrow.insert(&[Some("2"), Some("8"), Some("m"), Some("2.00")], tso(2))],
    ))
    .await
    .unwrap();
    merged(&wh, "item").await;
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_data", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), s("d")], vec![s("2"), None]]);
}
both!(dropped_columns_stay);

/// A large batch lands in parts (each decoded while the one before it is written): a column
/// added upstream in the middle of it is recorded once, by the part that shows it first, and
/// the part decoded meanwhile against the older state is decoded again — every row lands, and
/// the batch delivered again lands nothing twice.
async fn a_column_added_inside_a_batch_landed_in_parts(url: &str) {
    let cfg = config(url, &[("item", "tidb_tpcc_item")]);
    let wh = Warehouse::open(url).await.unwrap();
    let mut l = lander(&wh, &cfg).await;
    let before = Canal::item();
    let mut after = Canal::item();
    after.types.push(("i_extra", "varchar"));
    const ROWS: u64 = 12_000;
    // 12,000 records land in three parts of 4,000; the column comes with the 5,001st.
    let ids: Vec<String> = (1..=ROWS).map(|i| i.to_string()).collect();
    let extras: Vec<String> = (1..=ROWS).map(|i| format!("e{i}")).collect();
    let values: Vec<Vec<u8>> = (0..ROWS as usize)
        .map(|i| {
            let base = [Some(ids[i].as_str()), Some("7"), Some("n"), Some("1.00"), Some("d")];
            if i < 5_000 {
                before.insert(&base, tso(i as u64 + 1))
            } else {
                let mut row = base.to_vec();
                row.push(Some(extras[i].as_str()));
                after.insert(&row, tso(i as u64 + 1))
            }
        })
        .collect();
    let batch = records("tidb_tpcc_item", 0, 0, values);
    let rep = l.land(&batch).await.unwrap();
    assert_eq!((rep.staged.get("item"), rep.dead_letters), (Some(&(ROWS as usize)), 0));
    let recorded = wh.table("item").await.unwrap().and_then(|r| r.schema).expect("recorded");
    assert_eq!(recorded.columns.iter().filter(|c| c.name == "i_extra").count(), 1, "{:?}", recorded.columns);
    merged(&wh, "item").await;
    assert_eq!(count(&wh, "item").await, ROWS as i64);
    let with_extra = query_i64(&wh, "SELECT count(*) FROM \"item\" WHERE i_extra IS NOT NULL", &[]).await;
    assert_eq!(with_extra, (ROWS - 5_000) as i64);
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_extra", "\"item\".i_id").await;
    assert_eq!((&got[4_999], &got[5_000]), (&vec![s("5000"), None], &vec![s("5001"), s("e5001")]));
    // Delivered again (a rebalance, a restart): every record is known.
    let again = l.land(&batch).await.unwrap();
    assert_eq!((again.duplicates, again.staged.get("item")), (ROWS as usize, None));
    // A second large batch (in parts too) updates every key twice, the newer change (by commit
    // ts) first: after its merge every row holds its newest value, none an older one.
    let names: Vec<String> = (1..=ROWS).map(|i| format!("v{i}")).collect();
    let mut updates = Vec::new();
    for i in 0..ROWS as usize {
        let (old, new) = (format!("old{}", i + 1), &names[i]);
        let row = |name: &str| {
            let mut r = vec![Some(ids[i].to_string()), Some("7".into()), Some(name.to_string())];
            r.extend([Some("1.00".into()), Some("d".into()), Some(extras[i].clone())]);
            r
        };
        // The newer change comes first in the batch; the older one, later, must not win.
        let (newer, older) = (row(new), row(&old));
        let (newer, older): (Vec<Option<&str>>, Vec<Option<&str>>) =
            (newer.iter().map(|v| v.as_deref()).collect(), older.iter().map(|v| v.as_deref()).collect());
        updates.push(after.update(&newer, &older, tso(ROWS + 2 * i as u64 + 2)));
        updates.push(after.update(&older, &older, tso(ROWS + 2 * i as u64 + 1)));
    }
    l.land(&records("tidb_tpcc_item", 0, ROWS as i64, updates)).await.unwrap();
    merged(&wh, "item").await;
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), i_name", "\"item\".i_id").await;
    let want: Vec<Vec<Option<String>>> = (0..ROWS as usize).map(|i| vec![s(&ids[i]), s(&names[i])]).collect();
    assert!(got == want, "a row went back in time: {:?}", got.iter().zip(&want).find(|(g, w)| g != w));
}
both!(a_column_added_inside_a_batch_landed_in_parts);
