//! Renders the SQL in `templates/<dialect>/<statement>.sql`.
//!
//! Templates see a table as [`TableCtx`] and quote every identifier with the `ident` filter
//! (`lit` for identifier-derived string literals, `json_path` for SQLite JSON paths). This is
//! the only place rendered SQL is marked safe to execute.

pub mod dialect;

use anyhow::{anyhow, Context, Result};
use minijinja::{Environment, Value};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::model::schema::{Kind, TableSchema};
use crate::sql::dialect::{staging_table, Dialect};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::{
    BenchStmt, DemoStmt, Stmt, UpstreamStmt, BENCH_TEMPLATES, DEMO_TEMPLATES, MIGRATIONS, TEMPLATES, UPSTREAM_TEMPLATES,
};

/// A statement name the compiler checks, and where its template lives for a dialect.
pub trait Template: Copy + std::fmt::Debug {
    /// The file name without `.sql`.
    fn name(self) -> &'static str;
    /// The template's name in the environment: `postgres/merge_source.sql`.
    fn path(self, dialect: Dialect) -> String;
}

impl Template for Stmt {
    fn name(self) -> &'static str {
        Stmt::name(self)
    }
    fn path(self, dialect: Dialect) -> String {
        format!("{}/{}.sql", dialect.name(), self.name())
    }
}

impl Template for BenchStmt {
    fn name(self) -> &'static str {
        BenchStmt::name(self)
    }
    fn path(self, dialect: Dialect) -> String {
        format!("bench/{}/{}.sql", dialect.name(), self.name())
    }
}

impl Template for UpstreamStmt {
    fn name(self) -> &'static str {
        UpstreamStmt::name(self)
    }
    fn path(self, dialect: Dialect) -> String {
        format!("upstream/{}/{}.sql", dialect.name(), self.name())
    }
}

impl Template for DemoStmt {
    fn name(self) -> &'static str {
        DemoStmt::name(self)
    }
    fn path(self, dialect: Dialect) -> String {
        format!("demo/{}/{}.sql", dialect.name(), self.name())
    }
}

/// A rendered statement, ready to run: its text and the template it came from (for errors).
#[derive(Debug, Clone)]
pub struct Rendered {
    pub name: &'static str,
    pub text: String,
}

impl std::fmt::Display for Rendered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// A table as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct TableCtx {
    pub name: String,
    pub staging: String,
    pub columns: Vec<ColumnCtx>,
    pub key: Vec<ColumnCtx>,
    pub non_key: Vec<ColumnCtx>,
    /// Staged rows may leave columns out (unchanged, e.g. Debezium's TOAST placeholder): the
    /// merge fills them from the key's earlier staged changes, else keeps the replica's value.
    pub partial_rows: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnCtx {
    pub name: String,
    pub is_key: bool,
    #[serde(flatten)]
    pub kind: Kind,
}

impl TableCtx {
    /// A table whose schema is not known yet: enough for staging statements.
    pub fn bare(name: &str) -> TableCtx {
        TableCtx {
            name: name.into(),
            staging: staging_table(name),
            columns: vec![],
            key: vec![],
            non_key: vec![],
            partial_rows: false,
        }
    }

    pub fn new(name: &str, schema: &TableSchema) -> TableCtx {
        let col = |c: &crate::model::schema::Column| ColumnCtx {
            name: c.name.clone(),
            is_key: schema.is_key(&c.name),
            kind: c.ty.kind.clone(),
        };
        let columns: Vec<ColumnCtx> = schema.columns.iter().map(col).collect();
        // Key columns in key order, which may differ from column order.
        let key = schema.key.iter().filter_map(|k| schema.column(k)).map(col).collect();
        let non_key = columns.iter().filter(|c| !c.is_key).cloned().collect();
        TableCtx { name: name.into(), staging: staging_table(name), columns, key, non_key, partial_rows: false }
    }
}

/// The template environment of one dialect.
pub struct Sql {
    env: Environment<'static>,
    dialect: Dialect,
    /// Every template's source, for [`Sql::doc`].
    sources: Vec<(&'static str, &'static str)>,
}

impl Sql {
    /// The product's templates.
    pub fn new(dialect: Dialect) -> Sql {
        Sql::with_sets(dialect, &[])
    }

    /// The product's templates and extra sets (`BENCH_TEMPLATES`, `DEMO_TEMPLATES`).
    pub fn with_sets(dialect: Dialect, extra: &[&'static [(&'static str, &'static str)]]) -> Sql {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut sources = Vec::new();
        for set in std::iter::once(&TEMPLATES).chain(extra) {
            for (name, source) in set.iter() {
                // Embedded at build time and parsed by the tests: a broken one cannot ship.
                if let Err(e) = env.add_template(name, source) {
                    panic!("template {name} does not parse: {e}");
                }
                sources.push((*name, *source));
            }
        }
        env.add_filter("ident", move |s: String| {
            dialect.quote_ident(&s).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        env.add_filter("lit", move |s: String| dialect.string_literal(&s));
        env.add_filter("json_path", move |s: String| dialect.json_path_literal(&s));
        Sql { env, dialect, sources }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Whether this dialect has the statement (some exist for one database only).
    pub fn has(&self, statement: impl Template) -> bool {
        self.env.get_template(&statement.path(self.dialect)).is_ok()
    }

    /// The comment a template opens with (after its imports), as plain lines: what the
    /// statement does, for the scripts `tidemark sql` prints.
    pub fn doc(&self, statement: impl Template) -> Option<String> {
        let path = statement.path(self.dialect);
        let source = self.sources.iter().find(|(name, _)| *name == path)?.1;
        let rest = source.trim_start();
        let rest = match rest.strip_prefix("{%- import") {
            Some(r) => r.split_once("%}")?.1.trim_start(),
            None => rest,
        };
        let body = rest.strip_prefix("{#")?.split_once("#}")?.0;
        let body = body.trim().trim_start_matches('-').trim_end_matches('-');
        let lines: Vec<&str> = body.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
        (!lines.is_empty()).then(|| lines.join("\n"))
    }

    /// Renders `statement` for table `t` (extra values: `c` a column, `rows` a row count).
    pub fn render(&self, statement: impl Template, t: &TableCtx, extra: &[(&str, Value)]) -> Result<Rendered> {
        let path = statement.path(self.dialect);
        let tmpl = self.env.get_template(&path).map_err(|e| anyhow!("no template {path} ({e})"))?;
        let mut ctx: Vec<(&str, Value)> = vec![("t", value(t)), ("dialect", Value::from(self.dialect.name()))];
        ctx.extend(extra.iter().cloned());
        let ctx = Value::from_pairs(ctx);
        let text = tmpl.render(ctx).with_context(|| format!("rendering {path} for table `{}`", t.name))?;
        Ok(Rendered { name: statement.name(), text: text.trim().to_string() })
    }

    /// A statement that does not depend on a table.
    pub fn fixed(&self, statement: impl Template) -> Result<Rendered> {
        self.render(statement, &TableCtx::bare("-"), &[])
    }
}

/// Any serializable value as a template value.
pub fn value<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// Marks rendered template output as executable. Every SQL string tidemark runs passes here.
pub fn safe(sql: Rendered) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::Column;

    fn item() -> TableSchema {
        TableSchema {
            columns: vec![
                Column::new("i_id", "int"),
                Column::new("i_im_id", "int"),
                Column::new("i_name", "varchar(24)"),
                Column::new("i_price", "decimal(5, 2)"),
                Column::new("i_data", "varchar(50)"),
            ],
            key: vec!["i_id".into()],
            ..Default::default()
        }
    }

    /// Every template of every set and dialect renders (through its checked name), and every
    /// template file has a name: a template no code can name, or a name without a template in
    /// any dialect, fails here.
    #[test]
    fn every_template_renders_for_every_dialect() {
        let t = TableCtx::new("item", &item());
        let c = value(&t.columns[1]);
        let mut extra: Vec<(&str, Value)> =
            vec![("c", c), ("rows", Value::from(2)), ("a", Value::from("x")), ("b", Value::from("y"))];
        for name in ["raw", "stream", "task", "positions", "offset", "schedule", "warehouse"] {
            extra.push((name, Value::from("x")));
        }
        for name in ["merge_sql", "positions_sql", "cleanup_sql"] {
            extra.push((name, Value::from("SELECT 1")));
        }
        extra.extend([("after", Value::from(true)), ("db", Value::from("d")), ("table", Value::from("t"))]);
        let native: Vec<&str> = t.columns.iter().map(|_| "integer").collect();
        extra.extend([("native", Value::from(native.clone())), ("key_native", Value::from(native[..1].to_vec()))]);
        let all = [
            Dialect::Postgres,
            Dialect::Sqlite,
            Dialect::Snowflake,
            Dialect::Bigquery,
            Dialect::Databricks,
            Dialect::Mssql,
            Dialect::Redshift,
            Dialect::Mysql,
        ];
        let mut rendered = std::collections::BTreeSet::new();
        let mut check = |path: String, out: Rendered| {
            assert!(!out.text.is_empty(), "{path}");
            assert!(!out.text.contains("{{") && !out.text.contains("{%"), "{path}: {out}");
            rendered.insert(path);
        };
        for d in all {
            let sql = Sql::with_sets(d, &[BENCH_TEMPLATES, DEMO_TEMPLATES, UPSTREAM_TEMPLATES]);
            for &s in Stmt::ALL.iter().filter(|s| sql.has(**s)) {
                check(s.path(d), sql.render(s, &t, &extra).unwrap());
            }
            for &s in BenchStmt::ALL.iter().filter(|s| sql.has(**s)) {
                check(s.path(d), sql.render(s, &t, &extra).unwrap());
            }
            for &s in DemoStmt::ALL.iter().filter(|s| sql.has(**s)) {
                check(s.path(d), sql.render(s, &t, &extra).unwrap());
            }
            for &s in UpstreamStmt::ALL.iter().filter(|s| sql.has(**s)) {
                check(s.path(d), sql.render(s, &t, &extra).unwrap());
            }
        }
        let files: std::collections::BTreeSet<String> =
            [TEMPLATES, BENCH_TEMPLATES, DEMO_TEMPLATES, UPSTREAM_TEMPLATES]
                .iter()
                .flat_map(|set| set.iter().map(|(name, _)| name.to_string()))
                .filter(|name| !name.ends_with("/macros.sql"))
                .collect();
        assert_eq!(files, rendered, "template files and rendered statements differ");
        for s in Stmt::ALL {
            assert!(all.iter().any(|d| Sql::new(*d).has(*s)), "{s:?} has no template in any dialect");
        }
    }

    #[test]
    fn hostile_identifiers_are_quoted() {
        let schema = TableSchema {
            columns: vec![Column::new("id\"; DROP TABLE x; --", "int"), Column::new("naïve 'col'", "text")],
            key: vec!["id\"; DROP TABLE x; --".into()],
            ..Default::default()
        };
        let t = TableCtx::new("we\"ird", &schema);
        let pg = Sql::new(Dialect::Postgres).render(Stmt::MergeApply, &t, &[]).unwrap().text;
        assert!(pg.contains("\"we\"\"ird\""), "{pg}");
        assert!(pg.contains("\"id\"\"; DROP TABLE x; --\""), "{pg}");
        let src = Sql::new(Dialect::Postgres).render(Stmt::MergeSource, &t, &[]).unwrap().text;
        assert!(src.contains("->> 'naïve ''col''')"), "{src}");
        let lite = Sql::new(Dialect::Sqlite).render(Stmt::MergeSource, &t, &[]).unwrap().text;
        assert!(lite.contains(r#"'$."id\u0022; DROP TABLE x; --"'"#), "{lite}");
    }

    #[test]
    fn pg_types_follow_the_mapping() {
        let schema = TableSchema {
            columns: vec![
                Column::new("a", "bigint unsigned"),
                Column::new("b", "decimal(38, 10)"),
                Column::new("c", "varbinary"),
                Column::new("d", "timestamp(3)"),
                Column::new("e", "json"),
                Column::new("f", "datetime"),
            ],
            key: vec!["a".into()],
            ..Default::default()
        };
        let ddl =
            Sql::new(Dialect::Postgres).render(Stmt::ReplicaTable, &TableCtx::new("t", &schema), &[]).unwrap().text;
        for want in [
            "\"a\" numeric(20,0) NOT NULL",
            "\"b\" numeric(38,10)",
            "\"c\" bytea",
            "\"d\" timestamptz(3)",
            "\"e\" jsonb",
            "\"f\" timestamp,",
            "PRIMARY KEY (\"a\")",
        ] {
            assert!(ddl.contains(want), "missing {want} in {ddl}");
        }
    }
}
