//! Upstream `CREATE TABLE` statements (TiDB/MySQL), for `source_ddl`: exact column types
//! (precision, scale, lengths, unsignedness, ENUM/SET members) and the key, parsed with
//! sqlparser's MySQL dialect.

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use sqlparser::ast::{ColumnOption, CreateTable, Expr, IndexColumn, Statement, TableConstraint};
use sqlparser::dialect::MySqlDialect;
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::model::schema::{Column, TableSchema};

/// The table a `CREATE TABLE` describes.
#[derive(Debug, Clone)]
pub struct DdlTable {
    pub name: String,
    pub schema: TableSchema,
}

/// Reads and parses a `CREATE TABLE` file.
pub fn load(path: &Path) -> Result<DdlTable> {
    let sql = std::fs::read_to_string(path).with_context(|| format!("reading source_ddl {}", path.display()))?;
    parse(&sql).with_context(|| format!("source_ddl {}", path.display()))
}

/// Parses the first `CREATE TABLE` in `sql`.
pub fn parse(sql: &str) -> Result<DdlTable> {
    let sql = without_zerofill(sql)?;
    let statements = Parser::parse_sql(&MySqlDialect {}, &sql).map_err(|e| anyhow!("not a MySQL CREATE TABLE: {e}"))?;
    let create = statements
        .into_iter()
        .find_map(|s| match s {
            Statement::CreateTable(c) => Some(c),
            _ => None,
        })
        .ok_or_else(|| anyhow!("no CREATE TABLE statement"))?;
    table(create)
}

/// `ZEROFILL` (which MySQL's SHOW CREATE TABLE prints) only pads the display and implies
/// UNSIGNED; sqlparser does not know it, so it becomes UNSIGNED (or goes, after one) here.
fn without_zerofill(sql: &str) -> Result<String> {
    let tokens = Tokenizer::new(&MySqlDialect {}, sql).tokenize_with_location().map_err(|e| anyhow!("{e}"))?;
    let is = |t: &Token, w: &str| matches!(t, Token::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(w));
    // Byte offset of each line's start, to turn the tokenizer's (line, column) into offsets.
    let line_starts: Vec<usize> = std::iter::once(0).chain(sql.match_indices('\n').map(|(i, _)| i + 1)).collect();
    let offset = |line: u64, column: u64| -> usize {
        let start = line_starts.get(line.saturating_sub(1) as usize).copied().unwrap_or(sql.len());
        sql[start..].char_indices().nth(column.saturating_sub(1) as usize).map(|(i, _)| start + i).unwrap_or(sql.len())
    };
    let mut edits = Vec::new();
    let mut previous: Option<&Token> = None;
    for t in &tokens {
        if matches!(t.token, Token::Whitespace(_)) {
            continue;
        }
        if is(&t.token, "zerofill") {
            let (a, b) = (offset(t.span.start.line, t.span.start.column), offset(t.span.end.line, t.span.end.column));
            let replacement = if previous.is_some_and(|p| is(p, "unsigned")) { "" } else { "UNSIGNED" };
            edits.push((a, b, replacement));
        }
        previous = Some(&t.token);
    }
    let mut out = sql.to_string();
    for (a, b, r) in edits.into_iter().rev() {
        out.replace_range(a..b, r);
    }
    Ok(out)
}

fn column_name(c: &IndexColumn) -> Option<String> {
    match &c.column.expr {
        Expr::Identifier(id) => Some(id.value.clone()),
        _ => None,
    }
}

fn table(create: CreateTable) -> Result<DdlTable> {
    // The identifier's own text: quotes removed, doubled quotes inside it undone.
    let name = create.name.0.last().and_then(|p| p.as_ident()).map(|i| i.value.clone()).unwrap_or_default();
    let mut columns = Vec::new();
    let mut pk: Vec<String> = Vec::new();
    let mut not_null = Vec::new();
    for c in &create.columns {
        let ty = c.data_type.to_string().to_ascii_lowercase();
        columns.push(Column::new(c.name.value.clone(), ty));
        for o in &c.options {
            match &o.option {
                ColumnOption::PrimaryKey(_) => pk = vec![c.name.value.clone()],
                ColumnOption::NotNull => not_null.push(c.name.value.clone()),
                _ => {}
            }
        }
    }
    if columns.is_empty() {
        bail!("CREATE TABLE {name} has no columns");
    }
    let mut unique: Option<Vec<String>> = None;
    for k in &create.constraints {
        match k {
            TableConstraint::PrimaryKey(p) => pk = p.columns.iter().filter_map(column_name).collect(),
            TableConstraint::Unique(u) if unique.is_none() => {
                let cols: Vec<String> = u.columns.iter().filter_map(column_name).collect();
                // TiCDC's handle key without a primary key: a unique key of NOT NULL columns.
                if !cols.is_empty() && cols.iter().all(|c| not_null.contains(c)) {
                    unique = Some(cols);
                }
            }
            _ => {}
        }
    }
    let key = if pk.is_empty() { unique.unwrap_or_default() } else { pk };
    for k in &key {
        if !columns.iter().any(|c| &c.name == k) {
            bail!("the key names column `{k}`, which the table does not have");
        }
    }
    Ok(DdlTable { name, schema: TableSchema { columns, key, ..Default::default() } })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::Kind;

    /// The seed's TPC-C item table, as TiDB's SHOW CREATE TABLE prints it.
    const ITEM: &str = "CREATE TABLE `item` (
  `i_id` int(11) NOT NULL,
  `i_im_id` int(11) DEFAULT NULL,
  `i_name` varchar(24) DEFAULT NULL,
  `i_price` decimal(5,2) DEFAULT NULL,
  `i_data` varchar(50) DEFAULT NULL,
  PRIMARY KEY (`i_id`) /*T![clustered_index] CLUSTERED */
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;";

    #[test]
    fn the_seed_item_table() {
        let t = parse(ITEM).unwrap();
        assert_eq!(t.name, "item");
        assert_eq!(t.schema.key, vec!["i_id"]);
        let types: Vec<&str> = t.schema.columns.iter().map(|c| c.source_type.as_str()).collect();
        assert_eq!(types, vec!["int(11)", "int(11)", "varchar(24)", "decimal(5,2)", "varchar(50)"]);
        assert_eq!(t.schema.columns[3].ty.kind, Kind::Decimal { precision: Some(5), scale: Some(2) });
        assert_eq!(t.schema.columns[2].ty.kind, Kind::Text { length: Some(24) });
    }

    #[test]
    fn every_type_and_zerofill() {
        let t = parse(
            "create table t (a tinyint unsigned primary key, b int(10) unsigned zerofill, c bigint zerofill, \
             d decimal(65,30), e bit(12), f enum('x','y''z'), g datetime(6), h timestamp(3) null, i time, \
             j year, k json, l longblob, m char(3))",
        )
        .unwrap();
        let ty = |n: &str| t.schema.column(n).unwrap().ty.clone();
        assert_eq!(t.schema.key, vec!["a"]);
        assert_eq!(ty("a").int_range, Some((0, 255)));
        assert_eq!(ty("b").kind, Kind::Int { bytes: 8 }, "INT UNSIGNED");
        assert_eq!(ty("c").kind, Kind::UInt64, "ZEROFILL implies UNSIGNED");
        assert_eq!(ty("d").kind, Kind::Decimal { precision: Some(65), scale: Some(30) });
        assert_eq!(ty("f").members.unwrap(), vec!["x", "y'z"]);
        assert_eq!(ty("g").kind, Kind::DateTime { fsp: Some(6) });
        assert_eq!(ty("h").kind, Kind::Timestamp { fsp: Some(3) });
        assert_eq!(ty("l").kind, Kind::Bytes);
        assert_eq!(ty("m").kind, Kind::Text { length: Some(3) });
    }

    #[test]
    fn keys() {
        let composite =
            parse("CREATE TABLE o (w smallint NOT NULL, d tinyint NOT NULL, id int NOT NULL, PRIMARY KEY (w, d, id))")
                .unwrap();
        assert_eq!(composite.schema.key, vec!["w", "d", "id"]);
        let uk = parse("CREATE TABLE u (a int NOT NULL, b int, UNIQUE KEY ua (a))").unwrap();
        assert_eq!(uk.schema.key, vec!["a"], "a unique key over NOT NULL columns is TiCDC's handle key");
        let nullable = parse("CREATE TABLE u (a int, UNIQUE KEY ua (a))").unwrap();
        assert!(nullable.schema.key.is_empty());
        assert!(parse("SELECT 1").is_err());
        assert!(parse("CREATE TABLE x (a int, PRIMARY KEY (b))").is_err());
    }
}
