//! The SQL `tidemark sql` prints: exactly the statements tidemark runs, in order, from the same
//! templates and the same merge plan.

use std::fmt::Write as _;

use anyhow::Result;

use crate::dialect::Dialect;
use crate::merge::{plan, Step};
use crate::sql::{Sql, TableCtx};

/// The staging DDL, the replica DDL and one merge, as a script for `dialect`.
pub fn table_script(dialect: Dialect, t: &TableCtx) -> Result<String> {
    let sql = Sql::new(dialect);
    let (w, sep) = match dialect {
        Dialect::Postgres => ("$1", ";"),
        Dialect::Sqlite => ("?1", ";"),
    };
    let mut out = String::new();
    let _ = writeln!(out, "-- tidemark: table {} ({dialect})", t.name);
    let _ = writeln!(out, "\n-- Staging: raw change records, appended by landing (COPY / multi-row INSERT).");
    let _ = writeln!(out, "{}{sep}", sql.render("staging_table", t, &[])?);
    let _ = writeln!(out, "\n-- Replica: same columns and key as upstream; created on first merge.");
    let _ = writeln!(out, "{}{sep}", sql.render("replica_table", t, &[])?);
    let _ = writeln!(out, "\n-- One merge, in one transaction. {w} is the watermark the first SELECT returns.");
    let _ = writeln!(out, "{}{sep}", sql.fixed("merge_begin")?);
    let _ = writeln!(out, "{}{sep}", sql.render("merge_watermark", t, &[])?);
    for step in plan(dialect) {
        let what = match step {
            Step::Run(_) | Step::Bounded(_) => None,
            Step::Counts(_) => Some("-- Counts: rows inserted, updated, deleted (read before the apply)."),
            Step::Inserted(_) => Some("-- Its row count is the number of rows inserted."),
            Step::Updated(_) => Some("-- Its row count is the number of rows updated."),
            Step::Deleted(_) => Some("-- Its row count is the number of rows deleted."),
            Step::Cleanup(_) => Some("-- Its row count is the number of staged rows consumed."),
        };
        out.push('\n');
        if let Some(what) = what {
            let _ = writeln!(out, "{what}");
        }
        let _ = writeln!(out, "{}{sep}", sql.render(step.statement(), t, &[])?);
    }
    let _ = writeln!(out, "\n-- The run is recorded in _tidemark_merges in the same transaction.\nCOMMIT{sep}");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Column, TableSchema};

    #[test]
    fn scripts_contain_every_step() {
        let schema = TableSchema {
            columns: vec![Column::new("i_id", "int"), Column::new("i_name", "varchar(24)")],
            key: vec!["i_id".into()],
            ..Default::default()
        };
        let t = TableCtx::new("item", &schema);
        let pg = table_script(Dialect::Postgres, &t).unwrap();
        for want in [
            "CREATE TABLE IF NOT EXISTS \"_tidemark_stage_item\"",
            "MERGE INTO \"item\"",
            "BEGIN ISOLATION LEVEL REPEATABLE READ;",
            "DELETE FROM \"_tidemark_stage_item\" WHERE _tm_seq <= $1;",
        ] {
            assert!(pg.contains(want), "missing {want}:\n{pg}");
        }
        let lite = table_script(Dialect::Sqlite, &t).unwrap();
        for want in ["BEGIN IMMEDIATE;", "UPDATE \"item\" AS t", "NOT EXISTS", "DROP TABLE IF EXISTS temp._tm_src;"] {
            assert!(lite.contains(want), "missing {want}:\n{lite}");
        }
    }
}
