//! Landing into PostgreSQL: the batch's offset rows locked (created where new) in one
//! statement, staged rows by binary COPY, dead letters and offsets by `UNNEST` of arrays.

use anyhow::{Context, Result};
use sqlx::{Postgres, Transaction};

use super::order::{Advance, Plan};
use super::prepare::{DeadLetter, Prepared, StagedRow};
use crate::sql::{safe, Sql, Stmt, TableCtx};
use crate::warehouse::db::decode_pg;
use crate::warehouse::OffsetRow;

type PgTx<'c> = Transaction<'c, Postgres>;

/// COPY data is sent in chunks of about this size.
const COPY_CHUNK: usize = 1 << 20;

/// Locks the offset rows of the batch's partitions — in sorted order, so that two landers of
/// overlapping partitions queue instead of deadlocking — and reads them.
pub async fn lock_offsets(tx: &mut PgTx<'_>, sql: &Sql, p: &Prepared) -> Result<Vec<OffsetRow>> {
    let topics: Vec<String> = p.spans.keys().map(|(t, _)| t.to_string()).collect();
    let parts: Vec<i32> = p.spans.keys().map(|(_, part)| *part).collect();
    let stmt = sql.fixed(Stmt::LandOffsetsLock)?;
    let name = stmt.name;
    let rows = sqlx::query(safe(stmt)).bind(&topics).bind(&parts).fetch_all(&mut **tx).await?;
    decode_pg(name, rows)
}

/// Appends a table's fresh rows by binary COPY.
pub async fn stage(tx: &mut PgTx<'_>, sql: &Sql, t: &TableCtx, rows: &[&StagedRow], plan: &Plan) -> Result<()> {
    let mut buf = CopyBuf::new();
    for r in rows {
        buf.row(r, plan.order_key(r));
    }
    buf.finish();
    let mut copy = tx.copy_in_raw(&sql.render(Stmt::LandCopy, t, &[])?.text).await?;
    for chunk in buf.0.chunks(COPY_CHUNK) {
        copy.send(chunk).await.with_context(|| format!("COPY into {}", t.staging))?;
    }
    copy.finish().await.with_context(|| format!("COPY into {}", t.staging))?;
    Ok(())
}

pub async fn dead_letters(tx: &mut PgTx<'_>, sql: &Sql, dead: &[&DeadLetter]) -> Result<()> {
    sqlx::query(safe(sql.fixed(Stmt::LandDeadLetters)?))
        .bind(dead.iter().map(|d| d.table.clone()).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.topic.to_string()).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.partition).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.offset).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.key.clone()).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.value.clone()).collect::<Vec<_>>())
        .bind(dead.iter().map(|d| d.error.clone()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn advance(tx: &mut PgTx<'_>, sql: &Sql, advance: &[Advance]) -> Result<()> {
    sqlx::query(safe(sql.fixed(Stmt::LandOffsetsUpdate)?))
        .bind(advance.iter().map(|a| a.topic.clone()).collect::<Vec<_>>())
        .bind(advance.iter().map(|a| a.partition).collect::<Vec<_>>())
        .bind(advance.iter().map(|a| a.next_offset).collect::<Vec<_>>())
        .bind(advance.iter().map(|a| a.last_commit_ts).collect::<Vec<_>>())
        .bind(advance.iter().map(|a| a.watermark).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// PostgreSQL binary COPY data for staging rows.
struct CopyBuf(Vec<u8>);

impl CopyBuf {
    fn new() -> CopyBuf {
        let mut b = Vec::with_capacity(64 << 10);
        b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        b.extend_from_slice(&0u32.to_be_bytes()); // flags
        b.extend_from_slice(&0u32.to_be_bytes()); // header extension length
        CopyBuf(b)
    }

    fn row(&mut self, r: &StagedRow, order_key: i64) {
        let b = &mut self.0;
        b.extend_from_slice(&9i16.to_be_bytes());
        field(b, r.topic.as_bytes());
        field(b, &r.partition.to_be_bytes());
        field(b, &r.offset.to_be_bytes());
        field(b, &r.sub.to_be_bytes());
        field(b, &order_key.to_be_bytes());
        match r.commit_ms {
            Some(ms) => field(b, &ms.to_be_bytes()),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        field(b, r.op.as_bytes());
        jsonb(b, &r.key);
        match &r.row {
            Some(row) => jsonb(b, row),
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        }
    }

    fn finish(&mut self) {
        self.0.extend_from_slice(&(-1i16).to_be_bytes());
    }
}

fn field(b: &mut Vec<u8>, data: &[u8]) {
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
}

/// jsonb's binary form: a version byte (1), then the JSON text.
fn jsonb(b: &mut Vec<u8>, text: &str) {
    b.extend_from_slice(&((text.len() + 1) as i32).to_be_bytes());
    b.push(1);
    b.extend_from_slice(text.as_bytes());
}
