//! The merge contract of DESIGN.md, on a real PostgreSQL server and on SQLite, through the
//! real lander and merge: canal-json records → staging → MERGE → replica.

mod common;

use std::sync::Arc;

use common::*;
use tidemark::land::{Gap, Lander};
use tidemark::merge::{merge, MergeOutcome, MergeReport};
use tidemark::sql::dialect::Dialect;
use tidemark::warehouse::Warehouse;

const TOPIC: &str = "tidb_tpcc_item";
const ITEM: &str = "CAST(i_id AS TEXT), CAST(i_im_id AS TEXT), i_name, CAST(i_price AS TEXT), i_data";

async fn setup(url: &str) -> (Arc<Warehouse>, Lander) {
    let cfg = config(url, &[("item", TOPIC)]);
    let wh = Warehouse::open(url).await.expect("open warehouse");
    let l = lander(&wh, &cfg).await;
    (wh, l)
}

async fn merged(wh: &Warehouse) -> MergeReport {
    match merge(wh, "item", true).await.expect("merge") {
        MergeOutcome::Merged(r) => r,
        other => panic!("expected a merge, got {other:?}"),
    }
}

fn item(id: &str, name: &str) -> Vec<Option<&'static str>> {
    // Leaked: test-only convenience for building rows from literals.
    let id: &'static str = Box::leak(id.to_string().into_boxed_str());
    let name: &'static str = Box::leak(name.to_string().into_boxed_str());
    vec![Some(id), Some("7"), Some(name), Some("12.50"), Some("data")]
}

fn row(id: &str, name: &str) -> Vec<Option<String>> {
    vec![s(id), s("7"), s(name), s("12.50"), s("data")]
}

async fn items(wh: &Warehouse) -> Vec<Vec<Option<String>>> {
    rows(wh, "item", ITEM, "\"item\".i_id").await
}

async fn several_changes_of_one_key_in_one_batch(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let batch = vec![
        c.insert(&item("1", "a"), tso(1)),
        c.update(&item("1", "b"), &item("1", "a"), tso(2)),
        c.update(&item("1", "c"), &item("1", "b"), tso(3)),
    ];
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.expect("land");
    assert_eq!(rep.staged.get("item"), Some(&3));
    let m = merged(&wh).await;
    assert!(m.replica_created);
    assert_eq!((m.staged_rows, m.inserted, m.updated, m.deleted), (3, 1, 0, 0));
    assert_eq!(items(&wh).await, vec![row("1", "c")]);

    let batch =
        vec![c.update(&item("1", "d"), &item("1", "c"), tso(4)), c.update(&item("1", "e"), &item("1", "d"), tso(5))];
    l.land(&records(TOPIC, 0, 3, batch)).await.expect("land");
    let m = merged(&wh).await;
    assert_eq!((m.staged_rows, m.inserted, m.updated, m.deleted), (2, 0, 1, 0));
    assert_eq!(items(&wh).await, vec![row("1", "e")]);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0, "merged rows are cleared");
}
both!(several_changes_of_one_key_in_one_batch);

async fn insert_then_delete_in_one_batch(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("3", "keep"), tso(1))])).await.unwrap();
    merged(&wh).await;
    let batch = vec![
        c.insert(&item("2", "x"), tso(2)),
        c.delete(&item("2", "x"), tso(3)),
        c.update(&item("3", "y"), &item("3", "keep"), tso(4)),
        c.delete(&item("3", "y"), tso(5)),
    ];
    l.land(&records(TOPIC, 0, 1, batch)).await.unwrap();
    let m = merged(&wh).await;
    assert_eq!((m.inserted, m.updated, m.deleted), (0, 0, 1));
    assert!(items(&wh).await.is_empty());
}
both!(insert_then_delete_in_one_batch);

async fn delete_of_an_absent_key_is_a_no_op(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let batch = vec![c.insert(&item("1", "a"), tso(1)), c.delete(&item("99", "ghost"), tso(2))];
    l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    let m = merged(&wh).await;
    assert_eq!((m.inserted, m.updated, m.deleted), (1, 0, 0));
    assert_eq!(items(&wh).await, vec![row("1", "a")], "no row of NULLs for the unknown key");
    // A delete arriving alone, in a later run, is a no-op too.
    l.land(&records(TOPIC, 0, 2, vec![c.delete(&item("98", "ghost"), tso(3))])).await.unwrap();
    let m = merged(&wh).await;
    assert_eq!((m.staged_rows, m.inserted, m.updated, m.deleted), (1, 0, 0, 0));
    assert_eq!(count(&wh, "item").await, 1);
}
both!(delete_of_an_absent_key_is_a_no_op);

async fn update_changing_the_key_removes_the_old_key(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("10", "a"), tso(1))])).await.unwrap();
    merged(&wh).await;
    // TiCDC's unsplit form: one UPDATE whose old image has the old key.
    l.land(&records(TOPIC, 0, 1, vec![c.update(&item("20", "b"), &item("10", "a"), tso(2))])).await.unwrap();
    let m = merged(&wh).await;
    assert_eq!((m.inserted, m.updated, m.deleted), (1, 0, 1));
    assert_eq!(items(&wh).await, vec![row("20", "b")]);
    // Insert and key change in one batch, and the split form (DELETE + INSERT) on another key.
    let batch = vec![
        c.insert(&item("30", "c"), tso(3)),
        c.update(&item("31", "d"), &item("30", "c"), tso(4)),
        c.delete(&item("20", "b"), tso(5)),
        c.insert(&item("21", "b2"), tso(5)),
    ];
    l.land(&records(TOPIC, 1, 0, batch)).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("21", "b2"), row("31", "d")]);
}
both!(update_changing_the_key_removes_the_old_key);

async fn the_same_record_landed_twice_stages_once(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let batch = records(
        TOPIC,
        2,
        100,
        vec![c.insert(&item("1", "a"), tso(1)), c.update(&item("1", "b"), &item("1", "a"), tso(2))],
    );
    let first = l.land(&batch).await.unwrap();
    assert_eq!((first.staged.get("item"), first.duplicates), (Some(&2), 0));
    // Re-delivery after a crash before the offset commit: the same records again.
    let again = l.land(&batch).await.unwrap();
    assert_eq!((again.staged.get("item"), again.duplicates), (None, 2));
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 2);
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("1", "b")]);
    // And after the merge: re-delivered old records must not roll the row back.
    let third = l.land(&batch[..1]).await.unwrap();
    assert_eq!(third.duplicates, 1);
    assert!(matches!(merge(&wh, "item", true).await.unwrap(), MergeOutcome::NothingStaged));
    assert_eq!(items(&wh).await, vec![row("1", "b")]);
    // The offsets table says where landing stands.
    let offsets = wh.offsets().await.unwrap();
    assert_eq!(offsets.get(&(TOPIC.to_string(), 2)), Some(&102));
}
both!(the_same_record_landed_twice_stages_once);

async fn resent_older_changes_lose_to_newer_commits(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    // TiCDC after a restart re-sends a run of older messages at higher offsets.
    let batch = vec![
        c.insert(&item("1", "a"), tso(1)),
        c.update(&item("1", "b"), &item("1", "a"), tso(2)),
        c.update(&item("1", "c"), &item("1", "b"), tso(3)),
        c.insert(&item("1", "a"), tso(1)),                  // re-send
        c.update(&item("1", "b"), &item("1", "a"), tso(2)), // re-send
    ];
    l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("1", "c")], "commit order decides, not offset order");
    // The rest of the re-sent run arrives later; once it is merged the replica has converged.
    l.land(&records(TOPIC, 0, 5, vec![c.update(&item("1", "c"), &item("1", "b"), tso(3))])).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("1", "c")]);
    // Same commit ts (one transaction deleting and re-inserting a key): offset order decides.
    let batch = vec![c.delete(&item("1", "c"), tso(9)), c.insert(&item("1", "z"), tso(9))];
    l.land(&records(TOPIC, 0, 6, batch)).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("1", "z")]);
}
both!(resent_older_changes_lose_to_newer_commits);

async fn empty_staging_is_one_cheap_query(url: &str) {
    let (wh, _l) = setup(url).await;
    assert!(matches!(merge(&wh, "item", true).await.unwrap(), MergeOutcome::NothingStaged));
    assert_eq!(count(&wh, "_tidemark_merges").await, 0, "nothing recorded, no transaction");
}
both!(empty_staging_is_one_cheap_query);

async fn new_upstream_columns_are_added(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("1", "a"), tso(1))])).await.unwrap();
    merged(&wh).await;
    let mut wide = Canal::item();
    wide.types.push(("i_extra", "bigint"));
    let mut r = item("2", "b");
    r.push(Some("42"));
    l.land(&records(TOPIC, 0, 1, vec![wide.insert(&r, tso(2))])).await.unwrap();
    let m = merged(&wh).await;
    assert_eq!(m.columns_added, vec!["i_extra".to_string()]);
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), CAST(i_extra AS TEXT)", "\"item\".i_id").await;
    assert_eq!(got, vec![vec![s("1"), None], vec![s("2"), s("42")]]);
}
both!(new_upstream_columns_are_added);

/// Landing and merging at the same time: whatever the interleaving, nothing staged is lost
/// and, after a final merge, the replica equals the model and staging is empty.
async fn rows_landing_while_merges_run_survive(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let merger = {
        let wh = wh.clone();
        tokio::spawn(async move {
            let mut merges = 0;
            for _ in 0..40 {
                if let MergeOutcome::Merged(_) = merge(&wh, "item", true).await.expect("merge") {
                    merges += 1;
                }
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            merges
        })
    };
    let mut model = std::collections::BTreeMap::new();
    let mut offset = 0i64;
    let mut ts = 1;
    for round in 0..40 {
        let mut batch = Vec::new();
        for k in 0..200 {
            let id = format!("{}", (k * 7 + round) % 300);
            let name = format!("r{round}k{k}");
            if (k + round) % 11 == 0 {
                batch.push(c.delete(&item(&id, "x"), tso(ts)));
                model.remove(&id.parse::<i64>().unwrap());
            } else {
                batch.push(c.insert(&item(&id, &name), tso(ts)));
                model.insert(id.parse::<i64>().unwrap(), name);
            }
            ts += 1;
        }
        let n = batch.len() as i64;
        l.land(&records(TOPIC, 0, offset, batch)).await.expect("land");
        offset += n;
    }
    let merges = merger.await.unwrap();
    assert!(merges > 0);
    merged(&wh).await;
    let want: Vec<Vec<Option<String>>> = model.iter().map(|(k, v)| row(&k.to_string(), v)).collect();
    assert_eq!(items(&wh).await, want);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0);
}
both!(rows_landing_while_merges_run_survive);

/// PostgreSQL, deterministically: a merge is held after it took its snapshot (another session
/// blocks its writes to the replica); a batch lands and commits meanwhile. The merge's cleanup
/// must leave that batch staged, and the next merge applies it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_rows_landed_during_a_merge_stay_staged() {
    use sqlx::Connection;
    let db = TestDb::postgres().await;
    let (wh, mut l) = setup(&db.url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("1", "a"), tso(1))])).await.unwrap();
    merged(&wh).await; // creates the replica
    l.land(&records(TOPIC, 0, 1, vec![c.update(&item("1", "b"), &item("1", "a"), tso(2))])).await.unwrap();

    let mut blocker = sqlx::PgConnection::connect(&db.url).await.unwrap();
    sqlx::raw_sql("BEGIN; LOCK TABLE item IN SHARE MODE").execute(&mut blocker).await.unwrap();
    let running = {
        let wh = wh.clone();
        tokio::spawn(async move { merge(&wh, "item", true).await })
    };
    // Wait until the merge is blocked on the replica (its MERGE needs a write lock), i.e. it is
    // past its snapshot and has read staging.
    let mut waiting = false;
    for _ in 0..200 {
        let n: i64 =
            sqlx::query_scalar("SELECT count(*) FROM pg_locks WHERE relation = 'item'::regclass AND NOT granted")
                .fetch_one(&mut blocker)
                .await
                .unwrap();
        if n > 0 {
            waiting = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    if !waiting {
        let act: Vec<(Option<String>, Option<String>, Option<String>)> =
            sqlx::query_as("SELECT l.locktype || ' ' || l.mode || ' ' || coalesce(l.relation::regclass::text, '-') || ' granted=' || l.granted, a.state, a.query FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.datname = current_database()")
                .fetch_all(&mut blocker)
                .await
                .unwrap();
        panic!("the merge never reached its MERGE statement: {act:#?} finished={}", running.is_finished());
    }
    let during = l
        .land(&records(
            TOPIC,
            0,
            2,
            vec![c.update(&item("1", "c"), &item("1", "b"), tso(3)), c.insert(&item("2", "n"), tso(4))],
        ))
        .await
        .unwrap();
    assert_eq!(during.staged.get("item"), Some(&2));
    sqlx::raw_sql("COMMIT").execute(&mut blocker).await.unwrap();
    let m = match running.await.unwrap().unwrap() {
        MergeOutcome::Merged(m) => m,
        other => panic!("{other:?}"),
    };
    assert_eq!(m.staged_rows, 1, "the merge consumed only what its snapshot saw");
    assert_eq!(items(&wh).await, vec![row("1", "b")]);
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 2, "rows landed during the merge survive it");
    let m = merged(&wh).await;
    assert_eq!((m.staged_rows, m.inserted, m.updated), (2, 1, 1));
    assert_eq!(items(&wh).await, vec![row("1", "c"), row("2", "n")]);
    db.drop_db().await;
}

/// PostgreSQL keeps deleted staging rows until a vacuum, and autovacuum comes at most once a
/// minute: once merges removed enough rows, tidemark vacuums the staging table itself, so the
/// scans of staging stay as small as what is staged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_staging_space_is_reclaimed_after_large_merges() {
    let db = TestDb::postgres().await;
    let (wh, mut l) = setup(&db.url).await;
    let c = Canal::item();
    let size = || async { common::query_i64(&wh, "SELECT pg_relation_size('_tidemark_stage_item')", &[]).await };
    let batch: Vec<_> = (0..25_000).map(|i| c.insert(&item(&i.to_string(), "n"), tso(i + 1))).collect();
    l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    let staged = size().await;
    assert!(staged > 1 << 20, "25,000 staged rows take space: {staged} bytes");
    let m = merged(&wh).await;
    assert_eq!(m.staged_rows, 25_000);
    assert_eq!(size().await, 0, "the merged rows' space was reclaimed (it was {staged} bytes)");
    db.drop_db().await;
}

/// A table's merges never overlap: across sessions on PostgreSQL (advisory lock), and within
/// a process on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_merges_never_overlap_across_sessions() {
    use sqlx::Connection;
    let db = TestDb::postgres().await;
    let (wh, mut l) = setup(&db.url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("1", "a"), tso(1))])).await.unwrap();
    let mut other = sqlx::PgConnection::connect(&db.url).await.unwrap();
    let id = tidemark::sql::dialect::merge_lock_id("item");
    sqlx::query("SELECT pg_advisory_lock($1, $2)")
        .bind(tidemark::sql::dialect::LOCK_SPACE)
        .bind(id)
        .execute(&mut other)
        .await
        .unwrap();
    assert!(matches!(merge(&wh, "item", false).await.unwrap(), MergeOutcome::Busy));
    let waiting = {
        let wh = wh.clone();
        tokio::spawn(async move { merge(&wh, "item", true).await })
    };
    // It waits for the lock: PostgreSQL shows its session waiting on the advisory lock.
    common::eventually(
        "the merge waiting on the table's advisory lock",
        std::time::Duration::from_secs(10),
        || async {
            common::query_i64(&wh, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted", &[])
                .await
                == 1
        },
    )
    .await;
    assert!(!waiting.is_finished(), "a waiting merge must wait for the lock");
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 1);
    sqlx::query("SELECT pg_advisory_unlock($1, $2)")
        .bind(tidemark::sql::dialect::LOCK_SPACE)
        .bind(id)
        .execute(&mut other)
        .await
        .unwrap();
    assert!(matches!(waiting.await.unwrap().unwrap(), MergeOutcome::Merged(_)));
    db.drop_db().await;
}

async fn in_process_merges_never_overlap(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("1", "a"), tso(1))])).await.unwrap();
    let lock = wh.merge_lock("item");
    let guard = lock.lock().await;
    assert!(matches!(merge(&wh, "item", false).await.unwrap(), MergeOutcome::Busy));
    drop(guard);
    assert!(matches!(merge(&wh, "item", false).await.unwrap(), MergeOutcome::Merged(_)));
}
both!(in_process_merges_never_overlap);

/// A record that cannot be decoded lands in the dead-letter table; the rest of the batch lands.
async fn bad_records_are_dead_lettered(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let batch = vec![c.insert(&item("1", "a"), tso(1)), b"{not json".to_vec(), c.insert(&item("x", "bad id"), tso(2))];
    let rep = l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    assert_eq!((rep.staged.get("item"), rep.dead_letters), (Some(&1), 2));
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("1", "a")]);
    let dead = rows(&wh, "_tidemark_dead_letters", "topic, CAST(kafka_offset AS TEXT), error", "id").await;
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0][1], s("1"));
    assert!(dead[0][2].as_deref().unwrap().contains("invalid canal-json"));
    assert!(dead[1][2].as_deref().unwrap().contains("i_id"));
}
both!(bad_records_are_dead_lettered);

/// Offsets that were never landed and can no longer be read (retention) are reported, not
/// silently skipped.
async fn offset_gaps_are_reported(url: &str) {
    let (_wh, mut l) = setup(url).await;
    let c = Canal::item();
    let first = l.land(&records(TOPIC, 0, 0, vec![c.insert(&item("1", "a"), tso(1))])).await.unwrap();
    assert!(first.gaps.is_empty());
    let later = l.land(&records(TOPIC, 0, 10, vec![c.insert(&item("2", "b"), tso(2))])).await.unwrap();
    assert_eq!(later.gaps, vec![Gap { topic: TOPIC.to_string(), partition: 0, first_missing: 1, first_read: 10 }]);
    // A partition first read past offset 0 (the log start moved on) is reported too.
    let fresh = l.land(&records(TOPIC, 3, 500, vec![c.insert(&item("3", "c"), tso(3))])).await.unwrap();
    assert_eq!(fresh.gaps, vec![Gap { topic: TOPIC.to_string(), partition: 3, first_missing: 0, first_read: 500 }]);
}
both!(offset_gaps_are_reported);

/// Records without a commit timestamp (TiCDC's Avro deletes) are ordered by their position in
/// the partition: after the record before them, within a batch and across batches.
async fn records_without_commit_ts_follow_offset_order(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let batch = vec![
        c.insert(&item("1", "a"), tso(10)),
        Canal::without_ts(c.delete(&item("1", "a"), 0)),
        c.insert(&item("2", "b"), tso(11)),
    ];
    l.land(&records(TOPIC, 0, 0, batch)).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("2", "b")], "the delete at the higher offset wins");
    // Across batches: the partition's last order key is kept with its offset.
    l.land(&records(TOPIC, 0, 3, vec![c.update(&item("2", "c"), &item("2", "b"), tso(12))])).await.unwrap();
    l.land(&records(TOPIC, 0, 4, vec![Canal::without_ts(c.delete(&item("2", "c"), 0))])).await.unwrap();
    merged(&wh).await;
    assert!(items(&wh).await.is_empty());
    // And a later record with a real timestamp still wins over them.
    l.land(&records(TOPIC, 0, 5, vec![c.insert(&item("2", "d"), tso(13))])).await.unwrap();
    merged(&wh).await;
    assert_eq!(items(&wh).await, vec![row("2", "d")]);
}
both!(records_without_commit_ts_follow_offset_order);

/// A rebalance can deliver records twice inside one batch: each position lands once, and a
/// record without a commit ts still takes the order key of the record before it in the
/// partition, not of whatever was delivered just before it.
async fn a_batch_with_records_delivered_twice_lands_each_once(url: &str) {
    let (wh, mut l) = setup(url).await;
    let c = Canal::item();
    let first = records(
        TOPIC,
        0,
        0,
        vec![
            c.insert(&item("1", "a"), tso(10)),
            Canal::without_ts(c.delete(&item("1", "a"), 0)),
            c.insert(&item("2", "b"), tso(11)),
        ],
    );
    // Offsets 0, 1, 2, then 1 and 2 again (re-delivered after a rebalance), then 3.
    let mut batch = first.clone();
    batch.extend(first[1..].iter().cloned());
    batch.extend(records(TOPIC, 0, 3, vec![c.update(&item("2", "c"), &item("2", "b"), tso(12))]));
    let rep = l.land(&batch).await.expect("land");
    assert_eq!(rep.staged.get("item"), Some(&4), "four distinct positions, each staged once");
    let m = merged(&wh).await;
    assert_eq!(m.staged_rows, 4);
    assert_eq!(items(&wh).await, vec![row("2", "c")], "key 1 deleted, key 2 updated");
    assert_eq!(wh.offsets().await.unwrap().get(&(TOPIC.to_string(), 0)), Some(&4));
}
both!(a_batch_with_records_delivered_twice_lands_each_once);

/// Records that cannot be decoded are filed under the table they belong to: their topic's
/// only table, or the table they name on a topic that feeds several; a change of a table no
/// configured table takes stays unattributed.
async fn dead_letters_are_filed_under_their_table(url: &str) {
    let text = format!(
        "[warehouse]\nurl = {url:?}\n[defaults]\nschedule = \"0 0 0 1 1 *\"\n\
         [[tables]]\nname = \"item\"\ntopic = \"{TOPIC}\"\n\
         [[tables]]\nname = \"stock\"\ntopic = \"tidb_tpcc_mixed\"\nsource = \"tpcc.stock\"\n\
         [[tables]]\nname = \"district\"\ntopic = \"tidb_tpcc_mixed\"\nsource = \"tpcc.district\"\n"
    );
    let cfg = tidemark::config::Config::parse(&text).expect("config");
    let wh = Warehouse::open(url).await.expect("open warehouse");
    let mut l = lander(&wh, &cfg).await;
    let on_item = vec![b"{not json".to_vec(), br#"{"database":"tpcc","table":"item","type":"WHAT"}"#.to_vec()];
    let mixed = vec![
        br#"{"database":"tpcc","table":"stock","type":"WHAT","data":7}"#.to_vec(),
        b"\x00garbage".to_vec(),
        br#"{"database":"tpcc","table":"warehouse","type":"WHAT"}"#.to_vec(),
    ];
    let mut batch = records(TOPIC, 0, 0, on_item);
    batch.extend(records("tidb_tpcc_mixed", 0, 0, mixed));
    let rep = l.land(&batch).await.expect("land");
    assert_eq!(rep.dead_letters, 5);
    let by_table = rows(&wh, "_tidemark_dead_letters", "table_name, topic, CAST(kafka_offset AS TEXT)", "id").await;
    let filed: Vec<(Option<String>, String)> = by_table
        .into_iter()
        .map(|r| (r[0].clone(), format!("{}@{}", r[1].as_deref().unwrap(), r[2].as_deref().unwrap())))
        .collect();
    assert_eq!(
        filed,
        vec![
            (s("item"), format!("{TOPIC}@0")),
            (s("item"), format!("{TOPIC}@1")),
            (s("stock"), "tidb_tpcc_mixed@0".to_string()),
            (None, "tidb_tpcc_mixed@1".to_string()),
            (None, "tidb_tpcc_mixed@2".to_string()),
        ]
    );
}
both!(dead_letters_are_filed_under_their_table);

/// A value the warehouse itself refuses at landing (here a trigger on the staging table, as a
/// user's or a database's own rule would): the batch is landed in parts, the two records
/// responsible become dead letters carrying the database's error, every other record lands —
/// in the same call, not retried forever as an outage.
async fn records_the_warehouse_refuses_at_landing_are_dead_letters(url: &str) {
    let wh = Warehouse::open(url).await.expect("open warehouse");
    let cfg = config(url, &[("item", TOPIC)]);
    let mut l = lander(&wh, &cfg).await;
    let c = Canal::item();
    let item = |id: i64, name: &str| {
        c.insert(&[Some(&id.to_string()), Some("1"), Some(name), Some("1.00"), None], tso(id as u64 + 1))
    };
    l.land(&records(TOPIC, 0, 0, vec![item(0, "first")])).await.expect("first batch");
    let refuse = match wh.dialect() {
        Dialect::Postgres => vec![
            "CREATE FUNCTION refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW._tm_row->>'i_name' = 'poison' THEN RAISE EXCEPTION 'poison is not allowed' USING ERRCODE = '23514'; END IF; \
             RETURN NEW; END $$",
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON _tidemark_stage_item FOR EACH ROW EXECUTE FUNCTION refuse_poison()",
        ],
        _ => vec![
            "CREATE TRIGGER refuse_poison BEFORE INSERT ON _tidemark_stage_item \
             WHEN json_extract(NEW._tm_row, '$.i_name') = 'poison' BEGIN SELECT RAISE(ABORT, 'poison is not allowed'); END",
        ],
    };
    for stmt in refuse {
        exec(&wh, stmt).await;
    }
    let names = ["a", "b", "poison", "c", "d", "e", "poison", "f", "g", "h"];
    let batch: Vec<Vec<u8>> = names.iter().enumerate().map(|(i, n)| item(i as i64 + 1, n)).collect();
    let rep = l.land(&records(TOPIC, 0, 1, batch)).await.expect("a refused value does not fail the batch");
    assert_eq!((rep.staged.get("item"), rep.dead_letters), (Some(&8), 2), "{rep:?}");
    assert_eq!(rep.next_offsets[0].offset, 11);
    let dead = rows(&wh, "_tidemark_dead_letters", "CAST(kafka_offset AS TEXT), table_name, error", "id").await;
    assert_eq!(dead.iter().map(|d| d[0].clone()).collect::<Vec<_>>(), vec![s("3"), s("7")]);
    assert!(dead.iter().all(|d| d[1] == s("item")), "{dead:?}");
    assert!(dead[0][2].as_deref().unwrap().contains("poison is not allowed"), "{dead:?}");
    assert!(matches!(merge(&wh, "item", true).await.expect("merge"), MergeOutcome::Merged(_)));
    assert_eq!(count(&wh, "item").await, 9);
}
both!(records_the_warehouse_refuses_at_landing_are_dead_letters);

/// A rule a user added to the replica (a CHECK constraint on PostgreSQL; on SQLite, which
/// cannot add one to an existing table, a trigger): the staged changes that break it are found
/// and moved to the dead-letter table with the database's error, and the rest is merged in the
/// same cycle — the table is not blocked.
async fn changes_the_replica_refuses_are_set_aside_and_the_rest_merged(url: &str) {
    let wh = Warehouse::open(url).await.expect("open warehouse");
    let cfg = config(url, &[("item", TOPIC)]);
    let mut l = lander(&wh, &cfg).await;
    let c = Canal::item();
    let row = |id: i64, price: &str, ts: u64| (id.to_string(), price.to_string(), ts);
    let msg = |(id, price, ts): (String, String, u64)| {
        c.insert(&[Some(&id), Some("1"), Some("pen"), Some(&price), None], tso(ts))
    };
    let first: Vec<Vec<u8>> = (1..=4).map(|i| msg(row(i, "10.00", i as u64))).collect();
    l.land(&records(TOPIC, 0, 0, first)).await.expect("land");
    assert!(matches!(merge(&wh, "item", true).await.expect("first merge"), MergeOutcome::Merged(_)));
    let rule = match wh.dialect() {
        Dialect::Postgres => vec!["ALTER TABLE item ADD CONSTRAINT cheap CHECK (i_price < 100)"],
        _ => vec![
            "CREATE TRIGGER cheap_insert BEFORE INSERT ON item WHEN CAST(NEW.i_price AS REAL) >= 100 BEGIN SELECT RAISE(ABORT, 'cheap: i_price must be below 100'); END",
            "CREATE TRIGGER cheap_update BEFORE UPDATE ON item WHEN CAST(NEW.i_price AS REAL) >= 100 BEGIN SELECT RAISE(ABORT, 'cheap: i_price must be below 100'); END",
        ],
    };
    for stmt in rule {
        exec(&wh, stmt).await;
    }
    let second = vec![
        msg(row(1, "150.00", 10)), // an update the rule refuses
        msg(row(2, "20.00", 11)),  // a good update
        msg(row(5, "500.00", 12)), // an insert the rule refuses
        msg(row(6, "30.00", 13)),  // a good insert
        msg(row(3, "999.00", 14)), // refused, then superseded by a good change
        msg(row(3, "40.00", 15)),
    ];
    l.land(&records(TOPIC, 0, 4, second)).await.expect("land");
    match merge(&wh, "item", true).await.expect("the merge goes on without the refused changes") {
        MergeOutcome::Merged(_) => {}
        other => panic!("{other:?}"),
    }
    let got = rows(&wh, "item", "CAST(i_id AS TEXT), CAST(i_price AS TEXT)", "i_id").await;
    let prices: Vec<(String, f64)> =
        got.iter().map(|r| (r[0].clone().unwrap(), r[1].as_deref().unwrap().parse::<f64>().unwrap())).collect();
    assert_eq!(
        prices,
        vec![("1".into(), 10.0), ("2".into(), 20.0), ("3".into(), 40.0), ("4".into(), 10.0), ("6".into(), 30.0)]
    );
    let dead =
        rows(&wh, "_tidemark_dead_letters", "CAST(kafka_offset AS TEXT), table_name, error", "kafka_offset").await;
    let offsets: Vec<Option<String>> = dead.iter().map(|d| d[0].clone()).collect();
    assert!(offsets.contains(&s("4")) && offsets.contains(&s("6")), "the refused changes are dead letters: {dead:?}");
    assert!(!offsets.contains(&s("5")) && !offsets.contains(&s("9")), "a good change was set aside: {dead:?}");
    assert!(dead.iter().all(|d| d[1] == s("item") && d[2].as_deref().unwrap().contains("cheap")), "{dead:?}");
    assert_eq!(count(&wh, "_tidemark_stage_item").await, 0, "nothing is left staged");
}
both!(changes_the_replica_refuses_are_set_aside_and_the_rest_merged);
