//! SQL dialects: identifier quoting, literals, and naming rules per warehouse.
//!
//! Identifiers come from the wire and are untrusted: every one that reaches SQL text goes
//! through [`Dialect::quote_ident`]. Row values never reach SQL text at all; they are bound
//! or streamed (COPY) as data.

use std::fmt;

/// A SQL dialect tidemark generates for. PostgreSQL and SQLite it also runs itself; the others
/// get scripts (`tidemark sql --dialect …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum Dialect {
    Postgres,
    Sqlite,
    Snowflake,
    Bigquery,
    Databricks,
    Mssql,
    Redshift,
    /// An upstream database of the MySQL protocol (MySQL, MariaDB, TiDB) that `snapshot` and
    /// `verify` read; never a warehouse.
    #[value(skip)]
    Mysql,
}

/// PostgreSQL truncates longer identifiers (with only a NOTICE): two long names could then
/// collide silently, so tidemark refuses them instead.
const PG_MAX_IDENT: usize = 63;

impl Dialect {
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Sqlite => "sqlite",
            Dialect::Snowflake => "snowflake",
            Dialect::Bigquery => "bigquery",
            Dialect::Databricks => "databricks",
            Dialect::Mssql => "mssql",
            Dialect::Redshift => "redshift",
            Dialect::Mysql => "mysql",
        }
    }

    /// Whether tidemark drives this warehouse itself (else it only generates scripts for it).
    pub fn executed(self) -> bool {
        matches!(self, Dialect::Postgres | Dialect::Sqlite)
    }

    /// The identifier quoted for the dialect, embedded quote characters escaped.
    /// Snowflake folds unquoted names to upper case: a plain lower-case name is quoted in upper
    /// case, so that `item` and `"ITEM"` are the same table; any other name keeps its case.
    pub fn quote_ident(self, name: &str) -> Result<String, String> {
        if name.is_empty() {
            return Err("an empty identifier".into());
        }
        if name.contains('\0') {
            return Err(format!("identifier {name:?} contains a NUL character"));
        }
        if self == Dialect::Bigquery {
            // BigQuery's (flexible) column names: letters, marks, digits, connectors, dashes,
            // spaces and a few symbols; table names fewer still. Nothing to escape, then.
            if let Some(c) = name.chars().find(|c| !(c.is_alphanumeric() || " _-&%=+:'<>#|".contains(*c))) {
                return Err(format!("{name:?} cannot be a BigQuery name (it holds {c:?})"));
            }
        }
        if self == Dialect::Postgres && name.len() > PG_MAX_IDENT {
            return Err(format!("identifier {name:?} is {} bytes; PostgreSQL allows {PG_MAX_IDENT}", name.len()));
        }
        Ok(match self {
            Dialect::Snowflake => {
                let plain = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
                    && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
                let n = if plain { name.to_ascii_uppercase() } else { name.to_string() };
                format!("\"{}\"", n.replace('"', "\"\""))
            }
            Dialect::Bigquery => format!("`{name}`"),
            Dialect::Databricks | Dialect::Mysql => format!("`{}`", name.replace('`', "``")),
            Dialect::Mssql => format!("[{}]", name.replace(']', "]]")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        })
    }

    /// A string literal for an identifier-derived text (a JSON key, a path) — never a row value.
    pub fn string_literal(self, s: &str) -> String {
        match self {
            // Backslash is an escape character in these dialects' literals.
            Dialect::Snowflake | Dialect::Redshift | Dialect::Mysql => {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
            }
            Dialect::Bigquery | Dialect::Databricks => {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
            Dialect::Mssql => format!("N'{}'", s.replace('\'', "''")),
            _ => format!("'{}'", s.replace('\'', "''")),
        }
    }

    /// SQLite JSON path literal `'$."name"'` selecting the object member `name`.
    /// Inside a quoted label only `"`, `\` and control characters need escaping; SQLite
    /// compares escaped labels with stored keys by their decoded text.
    pub fn json_path_literal(self, name: &str) -> String {
        let mut label = String::with_capacity(name.len() + 8);
        for c in name.chars() {
            match c {
                '"' | '\\' => label.push_str(&format!("\\u{:04x}", c as u32)),
                c if (c as u32) < 0x20 => label.push_str(&format!("\\u{:04x}", c as u32)),
                c => label.push(c),
            }
        }
        self.string_literal(&format!("$.\"{label}\""))
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The staging table of replica table `name`: `_tidemark_stage_<name>`, shortened with a
/// hash suffix when it would exceed PostgreSQL's identifier length.
pub fn staging_table(name: &str) -> String {
    let full = format!("_tidemark_stage_{name}");
    if full.len() <= PG_MAX_IDENT {
        return full;
    }
    let mut cut = PG_MAX_IDENT - 9;
    while !full.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{:08x}", &full[..cut], fnv1a(name.as_bytes()))
}

/// tidemark's advisory-lock space ("tm").
pub const LOCK_SPACE: i32 = 0x746d;

/// The advisory-lock id under which tidemark creates its tables (no table's merge lock id
/// collides with it but by chance, and then it only waits).
pub const DDL_LOCK_ID: i32 = i32::MIN;

/// The advisory-lock id of a table's merges.
pub fn merge_lock_id(table: &str) -> i32 {
    fnv1a(table.as_bytes()) as i32
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c9dc5;
    for b in bytes {
        h ^= *b as u32;
        h = h.wrapping_mul(0x01000193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        let d = Dialect::Postgres;
        assert_eq!(d.quote_ident("item").unwrap(), "\"item\"");
        assert_eq!(d.quote_ident("a\"b; drop").unwrap(), "\"a\"\"b; drop\"");
        assert!(d.quote_ident("").is_err());
        assert!(d.quote_ident("a\0b").is_err());
        assert!(d.quote_ident(&"x".repeat(64)).is_err());
        assert!(Dialect::Sqlite.quote_ident(&"x".repeat(64)).is_ok());
        assert_eq!(d.string_literal("it's"), "'it''s'");
    }

    #[test]
    fn quoting_per_warehouse() {
        let q = |d: Dialect, n: &str| d.quote_ident(n).unwrap();
        assert_eq!(q(Dialect::Snowflake, "item"), "\"ITEM\"");
        assert_eq!(q(Dialect::Snowflake, "Item"), "\"Item\"");
        assert_eq!(q(Dialect::Snowflake, "a\"b"), "\"a\"\"b\"");
        assert_eq!(q(Dialect::Bigquery, "Mixed Case-1"), "`Mixed Case-1`");
        assert!(Dialect::Bigquery.quote_ident("a`b").is_err());
        assert_eq!(q(Dialect::Databricks, "a`b"), "`a``b`");
        assert_eq!(q(Dialect::Mssql, "a]b"), "[a]]b]");
        assert_eq!(q(Dialect::Redshift, "a\"b"), "\"a\"\"b\"");
        assert_eq!(Dialect::Snowflake.string_literal("it's a\\b"), "'it''s a\\\\b'");
        assert_eq!(Dialect::Bigquery.string_literal("it's"), "'it\\'s'");
        assert_eq!(Dialect::Mssql.string_literal("it's"), "N'it''s'");
    }

    #[test]
    fn json_paths() {
        let d = Dialect::Sqlite;
        assert_eq!(d.json_path_literal("i_id"), r#"'$."i_id"'"#);
        assert_eq!(d.json_path_literal("a\"b'c.d"), r#"'$."a\u0022b''c.d"'"#);
    }

    #[test]
    fn staging_names_fit() {
        assert_eq!(staging_table("item"), "_tidemark_stage_item");
        let long = staging_table(&"é".repeat(40));
        assert!(long.len() <= 63, "{}", long.len());
        assert_ne!(staging_table(&"a".repeat(60)), staging_table(&format!("{}b", "a".repeat(59))));
    }
}
