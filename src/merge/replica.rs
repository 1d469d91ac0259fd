//! The replica table kept in step with what the stream shows, inside the merge transaction:
//! created on first use, given the columns the stream gained since, and widened where the
//! stream's types widened (or where `tidemark resume` accepted a new type).

use anyhow::{Context, Result};
use tracing::{info, warn};

use super::MergeReport;
use crate::from_row;
use crate::model::schema::{Column, TableSchema};
use crate::sql::{value, Stmt, TableCtx};
use crate::warehouse::db::{Bind, Tx};
use crate::warehouse::Warehouse;

/// A column the replica has (`replica_columns`).
struct ReplicaColumn {
    name: String,
}
from_row!(ReplicaColumn { name });

/// Brings the replica of `t` to the recorded schema; what it did goes into `report`.
pub async fn evolve(
    wh: &Warehouse,
    tx: &mut Tx<'_>,
    t: &TableCtx,
    schema: &TableSchema,
    report: &mut MergeReport,
) -> Result<()> {
    let table = t.name.as_str();
    let sql = &wh.sql;
    let existing: Vec<ReplicaColumn> = tx
        .fetch_as(sql.fixed(Stmt::ReplicaColumns)?, &[Bind::Text(table.into())])
        .await
        .with_context(|| format!("merge of `{table}`: reading the replica's columns"))?;
    if existing.is_empty() {
        tx.execute(sql.render(Stmt::ReplicaTable, t, &[])?, &[])
            .await
            .with_context(|| format!("merge of `{table}`: creating the replica table"))?;
        for c in &schema.columns {
            mark_applied(wh, tx, table, &c.name, &c.source_type).await?;
        }
        report.replica_created = true;
        info!(table, columns = t.columns.len(), "created the replica table");
        return Ok(());
    }
    for (c, col) in t.columns.iter().zip(&schema.columns) {
        if !existing.iter().any(|e| e.name == c.name) {
            tx.execute(sql.render(Stmt::AddColumn, t, &[("c", value(c))])?, &[])
                .await
                .with_context(|| format!("merge of `{table}`: adding column `{}`", c.name))?;
            mark_applied(wh, tx, table, &c.name, &col.source_type).await?;
            info!(table, column = %c.name, "added a column to the replica");
            report.columns_added.push(c.name.clone());
            continue;
        }
        match schema.applied.get(&c.name) {
            // A column tidemark did not make (a replica created by hand): left as it is.
            None => mark_applied(wh, tx, table, &c.name, &col.source_type).await?,
            Some(applied) if applied != &col.source_type => {
                if change_type(wh, tx, t, c, applied).await? {
                    report.columns_widened.push(c.name.clone());
                }
                mark_applied(wh, tx, table, &c.name, &col.source_type).await?;
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The replica column now has type `ty`.
async fn mark_applied(wh: &Warehouse, tx: &mut Tx<'_>, table: &str, column: &str, ty: &str) -> Result<()> {
    let binds = [Bind::Text(table.into()), Bind::Text(column.into()), Bind::Text(ty.into())];
    tx.execute(wh.sql.fixed(Stmt::MarkApplied)?, &binds).await?;
    Ok(())
}

/// Changes column `c` from the type it was made for (`applied`) to the recorded one, where the
/// two map to different replica types and the dialect can. Returns whether it did.
async fn change_type(
    wh: &Warehouse,
    tx: &mut Tx<'_>,
    t: &TableCtx,
    c: &crate::sql::ColumnCtx,
    applied: &str,
) -> Result<bool> {
    let (sql, table) = (&wh.sql, t.name.as_str());
    let old = Column::new(&c.name, applied);
    let old_ctx = TableCtx::new(table, &TableSchema { columns: vec![old], ..Default::default() });
    let was = sql.render(Stmt::ColumnType, &old_ctx, &[("c", value(&old_ctx.columns[0]))])?.text;
    let now = sql.render(Stmt::ColumnType, t, &[("c", value(c))])?.text;
    if was == now {
        return Ok(false);
    }
    if !sql.has(Stmt::AlterColumnType) {
        warn!(table, column = %c.name, was, now, "this dialect cannot change a column's type; values are stored as they come");
        return Ok(false);
    }
    tx.execute(sql.render(Stmt::AlterColumnType, t, &[("c", value(c))])?, &[])
        .await
        .with_context(|| format!("merge of `{table}`: changing column `{}` from {was} to {now}", c.name))?;
    info!(table, column = %c.name, was, now, "changed the replica column's type");
    Ok(true)
}
