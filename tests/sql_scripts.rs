//! `tidemark sql`: the scripts for every dialect, as golden files, and every statement parsed by
//! sqlparser's grammar for its warehouse.
//!
//! The tables are in `tests/scripts/*.sql` (upstream `CREATE TABLE`s); their scripts are in
//! `tests/scripts/<dialect>/<table>.sql`. A template change shows up as a golden diff: after
//! reviewing it, `TIDEMARK_BLESS=1 cargo test --test sql_scripts` writes the new files.

use std::path::{Path, PathBuf};

use sqlparser::dialect::{
    BigQueryDialect, DatabricksDialect, Dialect as ParserDialect, MsSqlDialect, PostgreSqlDialect, RedshiftSqlDialect,
    SQLiteDialect, SnowflakeDialect,
};
use sqlparser::parser::Parser;
use tidemark::script::{render, table_script, ScriptOptions, Statement};
use tidemark::sql::dialect::Dialect;
use tidemark::sql::TableCtx;

const TABLES: &[&str] = &["item", "every_type", "hostile"];

fn dialects() -> Vec<(Dialect, Box<dyn ParserDialect>)> {
    vec![
        (Dialect::Postgres, Box::new(PostgreSqlDialect {})),
        (Dialect::Sqlite, Box::new(SQLiteDialect {})),
        (Dialect::Snowflake, Box::new(SnowflakeDialect {})),
        (Dialect::Bigquery, Box::new(BigQueryDialect {})),
        (Dialect::Databricks, Box::new(DatabricksDialect {})),
        (Dialect::Mssql, Box::new(MsSqlDialect {})),
        (Dialect::Redshift, Box::new(RedshiftSqlDialect {})),
    ]
}

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scripts")
}

fn table(name: &str) -> TableCtx {
    let ddl = std::fs::read_to_string(dir().join(format!("{name}.sql"))).unwrap();
    let t = tidemark::model::source_ddl::parse(&ddl).unwrap();
    TableCtx::new(&t.name, &t.schema)
}

fn opts(table: &str) -> ScriptOptions {
    ScriptOptions {
        topic: format!("tidb_tpcc_{table}"),
        format: tidemark::config::Format::Avro,
        raw_table: None,
        schedule: "0 * * * * *".into(),
        source_offset: "+08:00".into(),
        task_warehouse: None,
    }
}

/// The script, or the error for a table the warehouse cannot name (BigQuery's names hold no
/// quotes): the golden file then holds the error.
fn script(d: Dialect, name: &str) -> Result<(TableCtx, Vec<Statement>), String> {
    let t = table(name);
    let statements = table_script(d, &t, &opts(name)).map_err(|e| format!("{e:#}"))?;
    Ok((t, statements))
}

#[test]
fn scripts_match_their_golden_files() {
    let bless = std::env::var_os("TIDEMARK_BLESS").is_some();
    let mut changed = Vec::new();
    for (d, _) in dialects() {
        for name in TABLES {
            let got = match script(d, name) {
                Ok((t, statements)) => render(d, &t, &statements),
                Err(e) => format!("error: {e}\n"),
            };
            let path = dir().join(d.name()).join(format!("{name}.sql"));
            let want = std::fs::read_to_string(&path).unwrap_or_default();
            if got != want {
                if bless {
                    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                    std::fs::write(&path, &got).unwrap();
                }
                changed.push(path.display().to_string());
            }
        }
    }
    assert!(
        bless || changed.is_empty(),
        "generated SQL differs from its golden file (review with `TIDEMARK_BLESS=1 cargo test --test sql_scripts` \
         and `git diff tests/scripts`):\n{}",
        changed.join("\n")
    );
}

#[test]
fn every_statement_parses_in_its_warehouse_grammar() {
    let mut failures = Vec::new();
    let mut parsed = 0;
    for (d, grammar) in dialects() {
        for name in TABLES {
            let statements = match script(d, name) {
                Ok((_, statements)) => statements,
                Err(e) if d == Dialect::Bigquery && *name == "hostile" => {
                    assert!(e.contains("cannot be a BigQuery name"), "{e}");
                    continue;
                }
                Err(e) => panic!("{d} {name}: {e}"),
            };
            for s in statements.iter().filter(|s| s.parseable) {
                match Parser::parse_sql(grammar.as_ref(), &s.sql) {
                    Ok(ast) if ast.len() == 1 => parsed += 1,
                    Ok(ast) => failures.push(format!("{d} {name}: {} statements in one:\n{}\n", ast.len(), s.sql)),
                    Err(e) => failures.push(format!("{d} {name}: {e}\n{}\n", s.sql)),
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} statements do not parse:\n{}", failures.len(), failures.join("\n"));
    assert!(parsed > 100, "only {parsed} statements parsed");
}
