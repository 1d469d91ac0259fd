//! The metadata tables (`migrations/<dialect>/`), brought up to date by `tidemark run` and
//! `tidemark migrate`.

use anyhow::{anyhow, Result};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::SqlSafeStr;

use super::db::Pool;
use crate::sql::MIGRATIONS;

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
