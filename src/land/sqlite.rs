//! Landing into SQLite: the landing transaction already holds the write lock (`BEGIN
//! IMMEDIATE`), so the offsets are simply read; rows, dead letters and offsets go in as
//! multi-row INSERTs, each statement under SQLite's bound-parameter limit.

use std::collections::HashMap;

use anyhow::{Context, Result};
use minijinja::Value as TmplValue;
use sqlx::{Sqlite, Transaction};

use super::order::{Advance, Plan};
use super::prepare::{DeadLetter, Prepared, StagedRow};
use crate::sql::{safe, Rendered, Sql, Stmt, TableCtx};
use crate::warehouse::db::decode_sqlite;
use crate::warehouse::OffsetRow;

type LiteTx<'c> = Transaction<'c, Sqlite>;

/// Rows per multi-row INSERT (at most 9 parameters each: under SQLite's 32766).
const ROWS_PER_INSERT: usize = 1000;

pub async fn lock_offsets(tx: &mut LiteTx<'_>, sql: &Sql, _p: &Prepared) -> Result<Vec<OffsetRow>> {
    let stmt = sql.fixed(Stmt::LoadOffsets)?;
    let name = stmt.name;
    let rows = sqlx::query(safe(stmt)).fetch_all(&mut **tx).await?;
    decode_sqlite(name, rows)
}

/// `statement` rendered for `rows` rows (cached: a batch uses at most two sizes per table).
fn for_rows(
    cache: &mut HashMap<usize, Rendered>,
    sql: &Sql,
    statement: Stmt,
    t: &TableCtx,
    rows: usize,
) -> Result<Rendered> {
    if let Some(s) = cache.get(&rows) {
        return Ok(s.clone());
    }
    let s = sql.render(statement, t, &[("rows", TmplValue::from(rows))])?;
    cache.insert(rows, s.clone());
    Ok(s)
}

pub async fn stage(tx: &mut LiteTx<'_>, sql: &Sql, t: &TableCtx, rows: &[&StagedRow], plan: &Plan) -> Result<()> {
    let mut statements = HashMap::new();
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(safe(for_rows(&mut statements, sql, Stmt::LandRows, t, chunk.len())?));
        for r in chunk {
            q = q
                .bind(r.topic.to_string())
                .bind(r.partition)
                .bind(r.offset)
                .bind(r.sub)
                .bind(plan.order_key(r))
                .bind(r.commit_ms)
                .bind(r.op)
                .bind(r.key.as_str())
                .bind(r.row.as_deref());
        }
        q.execute(&mut **tx).await.with_context(|| format!("inserting into {}", t.staging))?;
    }
    Ok(())
}

pub async fn dead_letters(tx: &mut LiteTx<'_>, sql: &Sql, dead: &[&DeadLetter]) -> Result<()> {
    let mut statements = HashMap::new();
    let none = TableCtx::bare("-");
    for chunk in dead.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(safe(for_rows(&mut statements, sql, Stmt::LandDeadLetters, &none, chunk.len())?));
        for d in chunk {
            q = q
                .bind(d.table.clone())
                .bind(d.topic.to_string())
                .bind(d.partition)
                .bind(d.offset)
                .bind(d.key.clone())
                .bind(d.value.clone())
                .bind(d.error.clone());
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}

pub async fn advance(tx: &mut LiteTx<'_>, sql: &Sql, advance: &[Advance]) -> Result<()> {
    let mut statements = HashMap::new();
    let none = TableCtx::bare("-");
    for chunk in advance.chunks(ROWS_PER_INSERT) {
        let mut q = sqlx::query(safe(for_rows(&mut statements, sql, Stmt::LandOffsetsUpdate, &none, chunk.len())?));
        for a in chunk {
            q = q.bind(a.topic.clone()).bind(a.partition).bind(a.next_offset).bind(a.last_commit_ts).bind(a.watermark);
        }
        q.execute(&mut **tx).await?;
    }
    Ok(())
}
