//! The state the warehouse records of each table — the one source of truth for it: its columns
//! and their types as the stream showed them (`_tidemark_columns`), its key, whether its merges
//! are stopped and why (`_tidemark_tables`), and the version that moves with any of these.
//! Processes that cache it compare versions and reload ([`crate::land`] does, per batch).

use anyhow::{Context, Result};

use super::db::{Bind, Tx};
use crate::from_row;
use crate::model::schema::{Column, TableSchema};
use crate::sql::{Sql, Stmt};

/// A registered table as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct Recorded {
    /// Moves whenever anything below changes.
    pub version: i64,
    /// Why its merges are stopped, if they are.
    pub stopped: Option<String>,
    /// The commit ts from which the stop applies (merges up to before it may go on).
    pub stopped_ts: Option<i64>,
    /// The topic it is fed from.
    pub topic: String,
    /// The point its last watermark-gated merge made it consistent as of.
    pub merged_point: Option<i64>,
    /// Changes dropped at landing as re-sends (below their partition's watermark).
    pub resent: i64,
    /// Why its stream cannot be ordered exactly (one key on several partitions, no watermarks).
    pub ordering_warning: Option<String>,
    /// `None` until the stream (or a source_ddl) has shown its key and columns.
    pub schema: Option<TableSchema>,
}

/// A row of `load_table`.
#[derive(Debug, Clone)]
pub struct TableRow {
    /// JSON array of the key's column names, once known.
    pub key_columns: Option<String>,
    /// Why its merges are stopped.
    pub stopped: Option<String>,
    pub version: i64,
    pub topic: String,
    pub merged_point: Option<i64>,
    pub stopped_ts: Option<i64>,
    pub resent: i64,
    pub ordering_warning: Option<String>,
}
from_row!(TableRow { key_columns, stopped, version, topic, merged_point, stopped_ts, resent, ordering_warning });

/// A row of `load_columns`.
#[derive(Debug, Clone)]
pub struct ColumnRow {
    pub name: String,
    pub source_type: String,
    /// The type the replica column was last made for.
    pub applied_type: Option<String>,
    /// An incompatible type seen upstream, until `tidemark resume`.
    pub pending_type: Option<String>,
    /// The commit ts of the first change that showed this column or type.
    pub since_ts: Option<i64>,
}
from_row!(ColumnRow { name, source_type, applied_type, pending_type, since_ts });

/// A row of `table_versions` and `lock_table`.
#[derive(Debug, Clone)]
pub struct VersionRow {
    pub name: String,
    pub version: i64,
}
from_row!(VersionRow { name, version });

/// The version alone (`lock_table`).
#[derive(Debug, Clone)]
pub struct Version {
    pub version: i64,
}
from_row!(Version { version });

/// Reads `table`'s state inside a transaction.
pub async fn read(sql: &Sql, tx: &mut Tx<'_>, table: &str) -> Result<Option<Recorded>> {
    let name = [Bind::Text(table.into())];
    let row: Option<TableRow> = tx.fetch_optional(sql.fixed(Stmt::LoadTable)?, &name).await?;
    let columns: Vec<ColumnRow> = tx.fetch_as(sql.fixed(Stmt::LoadColumns)?, &name).await?;
    recorded(table, row, columns)
}

/// The state from its rows: `None` when the table is not registered.
pub fn recorded(table: &str, row: Option<TableRow>, columns: Vec<ColumnRow>) -> Result<Option<Recorded>> {
    let Some(row) = row else { return Ok(None) };
    let schema = match &row.key_columns {
        Some(key_json) if !columns.is_empty() => {
            let key: Vec<String> = serde_json::from_str(key_json)
                .with_context(|| format!("table `{table}`: stored key columns {key_json:?} are not a JSON array"))?;
            let mut schema = TableSchema { key, stopped: row.stopped.clone(), ..Default::default() };
            for c in columns {
                schema.columns.push(Column::new(c.name.as_str(), c.source_type.as_str()));
                if let Some(applied) = c.applied_type {
                    schema.applied.insert(c.name.clone(), applied);
                }
                if let Some(since) = c.since_ts {
                    schema.since.insert(c.name.clone(), since);
                }
                if let Some(pending) = c.pending_type {
                    schema.pending.insert(c.name, pending);
                }
            }
            Some(schema)
        }
        _ => None,
    };
    Ok(Some(Recorded {
        version: row.version,
        stopped: row.stopped,
        stopped_ts: row.stopped_ts,
        topic: row.topic,
        merged_point: row.merged_point,
        resent: row.resent,
        ordering_warning: row.ordering_warning,
        schema,
    }))
}
