//! The SQL `tidemark sql` prints. For PostgreSQL and SQLite: exactly the statements tidemark
//! runs, in order, from the same templates and merge plan. For the warehouses tidemark does not
//! drive (Snowflake, BigQuery, Databricks, SQL Server, Redshift): a script that does the same
//! job there, from `templates/<dialect>/`.

pub mod snowflake;

use std::fmt::Write as _;

use anyhow::{bail, Result};
use minijinja::Value;

use crate::merge::plan::{plan, Step};
use crate::sql::dialect::Dialect;
use crate::sql::{Rendered, Sql, Stmt, TableCtx};

/// What a script needs beyond the table.
#[derive(Debug, Clone)]
pub struct ScriptOptions {
    pub topic: String,
    /// The topic's wire format: Snowflake scripts read TiCDC Avro as the connector lands it.
    pub format: crate::config::Format,
    /// Snowflake: the table the Kafka connector writes (default: its naming for the topic).
    pub raw_table: Option<String>,
    /// The table's merge schedule (cron with seconds).
    pub schedule: String,
    /// The zone TiCDC rendered TIMESTAMP values in, as `+HH:MM`.
    pub source_offset: String,
    /// Snowflake: the warehouse tasks run on (default: serverless tasks).
    pub task_warehouse: Option<String>,
}

/// One statement of a script.
#[derive(Debug, Clone)]
pub struct Statement {
    /// What it does, printed above it.
    pub comment: Option<String>,
    pub sql: String,
    /// sqlparser has a grammar for it (it has none for Snowflake's CREATE STREAM/TASK).
    pub parseable: bool,
    /// Part of a later statement's body (a task's), not printed on its own.
    pub embedded: bool,
}

impl Statement {
    fn new(comment: Option<&str>, sql: Rendered) -> Statement {
        Statement::text(comment, &sql.text)
    }

    fn text(comment: Option<&str>, sql: &str) -> Statement {
        Statement { comment: comment.map(str::to_string), sql: sql.to_string(), parseable: true, embedded: false }
    }
}

/// The statements for table `t` in `dialect`.
pub fn table_script(dialect: Dialect, t: &TableCtx, opts: &ScriptOptions) -> Result<Vec<Statement>> {
    let sql = Sql::new(dialect);
    match dialect {
        Dialect::Postgres | Dialect::Sqlite => executed(&sql, dialect, t),
        Dialect::Snowflake => snowflake(&sql, t, opts),
        Dialect::Bigquery | Dialect::Databricks | Dialect::Mssql | Dialect::Redshift => landed(&sql, t),
        Dialect::Mysql => bail!("MySQL is an upstream tidemark reads, not a warehouse it writes scripts for"),
    }
}

/// The statements tidemark runs itself, in order.
fn executed(sql: &Sql, dialect: Dialect, t: &TableCtx) -> Result<Vec<Statement>> {
    let mut out = vec![
        Statement::new(
            Some("Staging: raw change records, appended by landing (COPY / multi-row INSERT)."),
            sql.render(Stmt::StagingTable, t, &[])?,
        ),
        Statement::new(
            Some("Replica: same columns and key as upstream; created on first merge."),
            sql.render(Stmt::ReplicaTable, t, &[])?,
        ),
        Statement::new(
            Some(&format!(
                "One merge, in one transaction. The consistent point bounds it: the minimum watermark over\n\
                 the topic's partitions, or the largest bigint for a stream without watermarks. Below, {p}1\n\
                 is the watermark the first SELECT returns; the merge source's {p}2 and {p}3 are the last\n\
                 point merged (the smallest bigint when none) and the point; the cleanup's {p}2 is the point.",
                p = if dialect == Dialect::Postgres { "$" } else { "?" }
            )),
            sql.fixed(Stmt::MergeBegin)?,
        ),
        Statement::new(None, sql.render(Stmt::MergeWatermark, t, &[])?),
    ];
    for step in plan(dialect).iter().filter(|s| s.runs_for(t)) {
        let what = match step {
            Step::Run(_) | Step::Bounded(_) => None,
            Step::Fill(_) => Some("Columns the last change of a key left out, from its earlier changes."),
            Step::Baseline(_) => Some("The replica's insert/update/delete counters before the apply ..."),
            Step::Counts(_) => Some("... and after: the differences are the rows inserted, updated, deleted."),
            Step::Inserted(_) => Some("Its row count is the number of rows inserted."),
            Step::Updated(_) => Some("Its row count is the number of rows updated."),
            Step::Deleted(_) => Some("Its row count is the number of rows deleted."),
            Step::Cleanup(_) => Some("Its row count is the number of staged rows consumed."),
        };
        out.push(Statement::new(what, sql.render(step.statement(), t, &[])?));
    }
    out.push(Statement::text(Some("The run is recorded in _tidemark_merges in the same transaction."), "COMMIT"));
    Ok(out)
}

fn snowflake(sql: &Sql, t: &TableCtx, opts: &ScriptOptions) -> Result<Vec<Statement>> {
    if opts.format != crate::config::Format::Avro {
        bail!(
            "table `{}` is format = \"{}\": Snowflake scripts read what the Snowflake Kafka connector lands \
             from TiCDC's Avro (format = \"avro\", key and value through the Avro converter)",
            t.name,
            opts.format
        );
    }
    let raw = opts.raw_table.clone().unwrap_or_else(|| crate::script::snowflake::connector_table(&opts.topic));
    let (schedule, note) = crate::script::snowflake::task_schedule(&opts.schedule).map_err(anyhow::Error::msg)?;
    let names = [
        ("raw", Value::from(raw.clone())),
        ("stream", Value::from(format!("{}_tidemark_stream", t.name))),
        ("task", Value::from(format!("{}_tidemark_merge", t.name))),
        ("positions", Value::from(format!("{}_tidemark_positions", t.name))),
        ("offset", Value::from(opts.source_offset.clone())),
        ("schedule", Value::from(schedule)),
        ("warehouse", Value::from(opts.task_warehouse.clone())),
    ];
    let merge = sql.render(Stmt::Merge, t, &names)?;
    let positions = sql.render(Stmt::Positions, t, &names)?;
    let cleanup = sql.render(Stmt::Cleanup, t, &names)?;
    if [&merge, &positions, &cleanup].iter().any(|s| s.text.contains("$$")) {
        bail!("a name of table `{}` contains `$$`, which cannot stand inside a Snowflake task body", t.name);
    }
    let mut task_ctx = names.to_vec();
    task_ctx.push(("merge_sql", Value::from(merge.text.clone())));
    task_ctx.push(("positions_sql", Value::from(positions.text.clone())));
    task_ctx.push(("cleanup_sql", Value::from(cleanup.text.clone())));
    let task_comment = format!(
        "The task: the MERGE, the partition positions and the raw-row cleanup, in one transaction,\n\
         on the table's schedule{}.\n\
         Safe cleanup: inside one explicit transaction every statement reads the same stream rows\n\
         (a stream is repeatable-read within a transaction, and an append-only stream keeps\n\
         showing rows deleted meanwhile), and only those raw rows are deleted; rows the connector\n\
         lands meanwhile stay for the next run. The stream's offset moves past exactly what was\n\
         merged when the transaction commits; a failed run rolls back and leaves it where it was.",
        note.map(|n| format!(" ({n})")).unwrap_or_default()
    );
    Ok(vec![
        Statement::new(Some("Replica: same columns and key as upstream."), sql.render(Stmt::ReplicaTable, t, &names)?),
        Statement::new(
            Some(&format!(
                "The raw table the Snowflake Kafka connector appends topic `{}` to (its own shape).",
                opts.topic.escape_debug()
            )),
            sql.render(Stmt::RawTable, t, &names)?,
        ),
        Statement::new(
            Some("Per Kafka partition, the last record merged (for records without a commit ts)."),
            sql.render(Stmt::PositionsTable, t, &names)?,
        ),
        Statement {
            parseable: false,
            ..Statement::new(
                Some(
                    "What the connector appended since the last run. Run this script before the connector\n\
                     starts writing the topic: rows landed before the stream exists are not in it.",
                ),
                sql.render(Stmt::Stream, t, &names)?,
            )
        },
        Statement {
            embedded: true,
            ..Statement::new(Some("One source row per key (the last change), delete / update / insert."), merge)
        },
        Statement { embedded: true, ..Statement::new(Some("Each partition's last record merged."), positions) },
        Statement { embedded: true, ..Statement::new(Some("Remove exactly the raw rows merged."), cleanup) },
        Statement { parseable: false, ..Statement::new(Some(&task_comment), sql.render(Stmt::Task, t, &task_ctx)?) },
        Statement {
            parseable: false,
            ..Statement::new(Some("Tasks are created suspended."), sql.render(Stmt::TaskResume, t, &names)?)
        },
    ])
}

/// BigQuery, Databricks, SQL Server, Redshift: tidemark's staging table and one merge of it, with
/// the same semantics as tidemark's own. Each step's comment is its template's own.
fn landed(sql: &Sql, t: &TableCtx) -> Result<Vec<Statement>> {
    const STEPS: &[Stmt] = &[
        Stmt::StagingTable,
        Stmt::ReplicaTable,
        Stmt::Begin,
        Stmt::Batch,
        Stmt::MergeSource,
        Stmt::Merge,
        Stmt::MergeDelete,
        Stmt::MergeInsert,
        Stmt::Cleanup,
        Stmt::Commit,
        Stmt::DropSource,
        Stmt::DropBatch,
    ];
    STEPS
        .iter()
        .filter(|step| sql.has(**step))
        .map(|step| Ok(Statement::new(sql.doc(*step).as_deref(), sql.render(*step, t, &[])?)))
        .collect()
}

/// The script as text: each statement with its comment, `;`-terminated.
pub fn render(dialect: Dialect, t: &TableCtx, statements: &[Statement]) -> String {
    let mut out = String::new();
    // The name escaped: a line break in it must not end the comment.
    let _ = writeln!(out, "-- tidemark: table {} ({dialect})", t.name.escape_debug());
    for s in statements.iter().filter(|s| !s.embedded) {
        out.push('\n');
        if let Some(c) = &s.comment {
            for line in c.lines() {
                let _ = writeln!(out, "-- {line}");
            }
        }
        let _ = writeln!(out, "{};", s.sql);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::{Column, TableSchema};

    fn opts() -> ScriptOptions {
        ScriptOptions {
            topic: "tidb_tpcc_item".into(),
            format: crate::config::Format::Avro,
            raw_table: None,
            schedule: "0 * * * * *".into(),
            source_offset: "+00:00".into(),
            task_warehouse: None,
        }
    }

    #[test]
    fn scripts_contain_every_step() {
        let schema = TableSchema {
            columns: vec![Column::new("i_id", "int"), Column::new("i_name", "varchar(24)")],
            key: vec!["i_id".into()],
            ..Default::default()
        };
        let t = TableCtx::new("item", &schema);
        let pg = render(Dialect::Postgres, &t, &table_script(Dialect::Postgres, &t, &opts()).unwrap());
        for want in [
            "CREATE TABLE IF NOT EXISTS \"_tidemark_stage_item\"",
            "MERGE INTO \"item\"",
            "BEGIN ISOLATION LEVEL REPEATABLE READ;",
            "DELETE FROM \"_tidemark_stage_item\" WHERE _tm_seq <= $1 AND _tm_commit_ts <= $2;",
        ] {
            assert!(pg.contains(want), "missing {want}:\n{pg}");
        }
        let lite = render(Dialect::Sqlite, &t, &table_script(Dialect::Sqlite, &t, &opts()).unwrap());
        for want in ["BEGIN IMMEDIATE;", "UPDATE \"item\" AS t", "NOT EXISTS", "DROP TABLE IF EXISTS temp._tm_src;"] {
            assert!(lite.contains(want), "missing {want}:\n{lite}");
        }
        let sf = render(Dialect::Snowflake, &t, &table_script(Dialect::Snowflake, &t, &opts()).unwrap());
        for want in [
            "CREATE TABLE IF NOT EXISTS \"TIDB_TPCC_ITEM\"",
            "CREATE STREAM IF NOT EXISTS \"ITEM_TIDEMARK_STREAM\" ON TABLE \"TIDB_TPCC_ITEM\" APPEND_ONLY = TRUE;",
            "SCHEDULE = 'USING CRON * * * * * UTC'",
            "WHEN SYSTEM$STREAM_HAS_DATA('\"ITEM_TIDEMARK_STREAM\"')",
            "BEGIN TRANSACTION;",
            "ALTER TASK \"ITEM_TIDEMARK_MERGE\" RESUME;",
        ] {
            assert!(sf.contains(want), "missing {want}:\n{sf}");
        }
    }
}
