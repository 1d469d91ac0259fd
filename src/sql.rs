//! Renders the SQL in `templates/<dialect>/<statement>.sql`.
//!
//! Templates see a table as [`TableCtx`] and quote every identifier with the `ident` filter
//! (`lit` for identifier-derived string literals, `json_path` for SQLite JSON paths). This is
//! the only place rendered SQL is marked safe to execute.

use anyhow::{anyhow, Context, Result};
use minijinja::{Environment, Value};
use serde::Serialize;
use sqlx::AssertSqlSafe;

use crate::dialect::{staging_table, Dialect};
use crate::schema::{Kind, TableSchema};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}
pub use embedded::{MIGRATIONS, TEMPLATES};

/// A table as templates see it.
#[derive(Debug, Clone, Serialize)]
pub struct TableCtx {
    pub name: String,
    pub staging: String,
    pub columns: Vec<ColumnCtx>,
    pub key: Vec<ColumnCtx>,
    pub non_key: Vec<ColumnCtx>,
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
        TableCtx { name: name.into(), staging: staging_table(name), columns: vec![], key: vec![], non_key: vec![] }
    }

    pub fn new(name: &str, schema: &TableSchema) -> TableCtx {
        let col = |c: &crate::schema::Column| ColumnCtx {
            name: c.name.clone(),
            is_key: schema.is_key(&c.name),
            kind: c.ty.kind.clone(),
        };
        let columns: Vec<ColumnCtx> = schema.columns.iter().map(col).collect();
        // Key columns in key order, which may differ from column order.
        let key = schema.key.iter().filter_map(|k| schema.column(k)).map(col).collect();
        let non_key = columns.iter().filter(|c| !c.is_key).cloned().collect();
        TableCtx { name: name.into(), staging: staging_table(name), columns, key, non_key }
    }
}

/// The template environment of one dialect.
pub struct Sql {
    env: Environment<'static>,
    dialect: Dialect,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Sql {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // Embedded at build time and parsed by the tests: a broken one cannot ship.
            if let Err(e) = env.add_template(name, source) {
                panic!("template {name} does not parse: {e}");
            }
        }
        env.add_filter("ident", move |s: String| {
            dialect.quote_ident(&s).map_err(|e| minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e))
        });
        env.add_filter("lit", move |s: String| dialect.string_literal(&s));
        env.add_filter("json_path", move |s: String| dialect.json_path_literal(&s));
        Sql { env, dialect }
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn has(&self, statement: &str) -> bool {
        self.env.get_template(&self.path(statement)).is_ok()
    }

    /// The comment a template opens with (after its imports), as plain lines: what the
    /// statement does, for the scripts `tidemark sql` prints.
    pub fn doc(&self, statement: &str) -> Option<String> {
        let path = self.path(statement);
        let source = TEMPLATES.iter().find(|(name, _)| *name == path)?.1;
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

    fn path(&self, statement: &str) -> String {
        format!("{}/{statement}.sql", self.dialect.name())
    }

    /// Renders `statement` for table `t` (extra values: `c` a column, `rows` a row count).
    pub fn render(&self, statement: &str, t: &TableCtx, extra: &[(&str, Value)]) -> Result<String> {
        let tmpl = self
            .env
            .get_template(&self.path(statement))
            .map_err(|e| anyhow!("no template {} ({e})", self.path(statement)))?;
        let mut ctx: Vec<(&str, Value)> = vec![("t", value(t)), ("dialect", Value::from(self.dialect.name()))];
        ctx.extend(extra.iter().cloned());
        let ctx = Value::from_pairs(ctx);
        let text =
            tmpl.render(ctx).with_context(|| format!("rendering {} for table `{}`", self.path(statement), t.name))?;
        Ok(text.trim().to_string())
    }

    /// A statement that does not depend on a table.
    pub fn fixed(&self, statement: &str) -> Result<String> {
        self.render(statement, &TableCtx::bare("-"), &[])
    }
}

/// Any serializable value as a template value.
pub fn value<T: Serialize>(v: T) -> Value {
    Value::from(minijinja::value::Serde(v))
}

/// Marks rendered template output as executable. Every SQL string tidemark runs passes here.
pub fn safe(sql: String) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::Column;

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

    #[test]
    fn every_template_renders_for_every_dialect() {
        let t = TableCtx::new("item", &item());
        for d in [Dialect::Postgres, Dialect::Sqlite] {
            let sql = Sql::new(d);
            let prefix = format!("{}/", d.name());
            for (name, _) in TEMPLATES.iter().filter(|(n, _)| n.starts_with(&prefix)) {
                let stmt = name.trim_start_matches(&prefix).trim_end_matches(".sql");
                if stmt == "macros" {
                    continue;
                }
                let c = value(&t.columns[1]);
                let extra = [("c", c), ("rows", Value::from(2)), ("a", Value::from("x")), ("b", Value::from("y"))];
                let out = sql.render(stmt, &t, &extra).unwrap();
                assert!(!out.is_empty(), "{name}");
                assert!(!out.contains("{{") && !out.contains("{%"), "{name}: {out}");
            }
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
        let pg = Sql::new(Dialect::Postgres).render("merge_apply", &t, &[]).unwrap();
        assert!(pg.contains("\"we\"\"ird\""), "{pg}");
        assert!(pg.contains("\"id\"\"; DROP TABLE x; --\""), "{pg}");
        let src = Sql::new(Dialect::Postgres).render("merge_source", &t, &[]).unwrap();
        assert!(src.contains("->> 'naïve ''col''')"), "{src}");
        let lite = Sql::new(Dialect::Sqlite).render("merge_source", &t, &[]).unwrap();
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
        let ddl = Sql::new(Dialect::Postgres).render("replica_table", &TableCtx::new("t", &schema), &[]).unwrap();
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
