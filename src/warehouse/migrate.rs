//! The metadata tables (`migrations/<dialect>/`), brought up to date by `tidemark run` and
//! `tidemark migrate`.

use anyhow::{anyhow, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;

use super::db::Pool;
use crate::from_row;
use crate::sql::{Sql, Stmt, MIGRATIONS};

/// Where a warehouse's metadata stands against this tidemark's migrations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The versions this tidemark has and the warehouse has not applied.
    pub pending: Vec<i64>,
    /// The newest version this tidemark knows.
    pub newest: i64,
}

impl State {
    pub fn current(&self) -> bool {
        self.pending.is_empty()
    }
}

struct Present {
    present: bool,
}
from_row!(Present { present });

struct Applied {
    version: i64,
}
from_row!(Applied { version });

/// What `run`/`migrate` would apply, read without writing anything.
pub async fn state(pool: &Pool) -> Result<State> {
    let sql = Sql::new(pool.dialect());
    let known: Vec<i64> = migrator(pool)?.iter().map(|m| m.version).collect();
    let present: Present = pool.fetch_one(sql.fixed(Stmt::MigrationsPresent)?, &[]).await?;
    let applied: Vec<i64> = if present.present {
        let rows: Vec<Applied> = pool.fetch_as(sql.fixed(Stmt::MigrationsApplied)?, &[]).await?;
        rows.into_iter().map(|r| r.version).collect()
    } else {
        Vec::new()
    };
    Ok(State {
        pending: known.iter().copied().filter(|v| !applied.contains(v)).collect(),
        newest: known.iter().copied().max().unwrap_or(0),
    })
}

/// The migrator for the pool's dialect, recording its versions in `_tidemark_migrations`.
fn migrator(pool: &Pool) -> Result<Migrator> {
    let prefix = format!("{}/", pool.dialect().name());
    let mut migrations = Vec::new();
    for (name, sql) in MIGRATIONS.iter().filter(|(n, _)| n.starts_with(&prefix)) {
        let file = name.trim_start_matches(&prefix).trim_end_matches(".sql");
        let (version, description) =
            file.split_once('_').ok_or_else(|| anyhow!("migration {name} is not named NNNN_description.sql"))?;
        let version: i64 = version.parse().map_err(|_| anyhow!("migration {name}: bad version"))?;
        migrations.push(Migration::new(
            version,
            description.replace('_', " ").into(),
            MigrationType::Simple,
            (*sql).into_sql_str(),
            false,
        ));
    }
    let mut migrator = Migrator::with_migrations(migrations);
    migrator.dangerous_set_table_name("_tidemark_migrations");
    Ok(migrator)
}

/// Applies every migration not applied yet.
pub async fn run(pool: &Pool) -> Result<()> {
    let migrator = migrator(pool)?;
    match pool {
        // sqlx serialises concurrent PostgreSQL migrators with an advisory lock.
        Pool::Pg(p) => migrator.run(p).await?,
        // On SQLite it does not: two processes opening a new file race to record the same
        // version. The loser's attempt fails (the database is locked, or the version is
        // recorded meanwhile); it retries and then finds the version recorded.
        Pool::Lite(p) => {
            let mut attempt = 0;
            loop {
                match migrator.run(p).await {
                    Ok(()) => break,
                    Err(e) if attempt < 5 => {
                        attempt += 1;
                        tracing::debug!(error = %e, attempt, "migration raced another process; retrying");
                        tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    Ok(())
}
