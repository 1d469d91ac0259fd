//! `tidemark sql`: a table's SQL, statement by statement — what tidemark runs (PostgreSQL, SQLite)
//! or a script that does the same job in a warehouse it does not drive.

use std::process::ExitCode;

use anyhow::{bail, Result};

use crate::config::Config;
use crate::model::schema::TableSchema;
use crate::sql::dialect::Dialect;
use crate::sql::TableCtx;
use crate::warehouse::db::{Access, Pool};
use crate::warehouse::Warehouse;

pub async fn run(config: &Config, dialect: Option<Dialect>, table: Option<&str>) -> Result<ExitCode> {
    let tables = match table {
        Some(t) => vec![config.table(t)?],
        None => config.tables()?,
    };
    // Looking changes nothing: the configured warehouse is only read, and only when it exists
    // (a script for a warehouse tidemark does not drive needs no local SQLite file).
    let url = config.warehouse.url();
    let wh = if config.warehouse.url.is_some() || dialect.is_none_or(|d| d.executed()) {
        recorded(url).await?
    } else {
        None
    };
    let dialect = match (dialect, Pool::dialect_of(url)) {
        (Some(d), _) => d,
        (None, Some(d)) => d,
        (None, None) => bail!("say which --dialect"),
    };
    for t in &tables {
        let schema = script_schema(config, t, wh.as_deref()).await?;
        let ctx = TableCtx::new(&t.name, &schema);
        let opts = crate::script::ScriptOptions {
            topic: t.topic.clone(),
            format: t.format,
            raw_table: t.raw_table.clone(),
            schedule: t.schedule_text.clone(),
            source_offset: crate::config::format_offset(config.source_offset_secs()),
            task_warehouse: config.snowflake.task_warehouse.clone(),
        };
        let statements = crate::script::table_script(dialect, &ctx, &opts)?;
        print!("{}", crate::script::render(dialect, &ctx, &statements));
    }
    Ok(ExitCode::SUCCESS)
}

/// The warehouse, read-only, when it holds tidemark's metadata (else nothing is recorded yet).
async fn recorded(url: &str) -> Result<Option<std::sync::Arc<Warehouse>>> {
    Ok(Warehouse::open_existing(url, Access::ReadOnly).await?.filter(|(_, state)| state.current()).map(|(wh, _)| wh))
}

/// A table's schema for a script: what the warehouse recorded, else its source_ddl, else the
/// registry's latest schemas for its topic.
async fn script_schema(config: &Config, t: &crate::config::Table, wh: Option<&Warehouse>) -> Result<TableSchema> {
    if let Some(wh) = wh {
        if let Some(s) = wh.schema(&t.name).await? {
            return Ok(s);
        }
    }
    if let Some(path) = &t.source_ddl {
        return Ok(crate::model::source_ddl::load(path)?.schema);
    }
    if let (crate::config::Format::Avro, Some(reg)) = (t.format, &config.schema_registry) {
        let registry = crate::codec::registry::Registry::new(reg)?;
        if let Some(s) = crate::codec::avro::schema_from_registry(&registry, &t.topic).await? {
            return Ok(s);
        }
    }
    bail!(
        "the columns of `{}` are not known yet: give the table a source_ddl{}, or run `tidemark run` until its \
         first change has landed",
        t.name,
        if t.format == crate::config::Format::Avro { " (or register its schemas in the schema registry)" } else { "" }
    )
}
