//! `tidemark check`: is this config ready to run? It reads the config, parses every
//! `source_ddl`, connects to the warehouse, Kafka and the schema registry, and lists the topics
//! it would read and the replica tables it would create — every problem, not just the first —
//! changing nothing (no migration, no table).

use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::redact::redact_url;
use crate::config::{Config, Format, Table};
use crate::sql::Stmt;
use crate::warehouse::db::{Access, Bind, Pool};

/// What `check` found: `ok` lines and problems.
#[derive(Debug, Default)]
pub struct Findings {
    pub lines: Vec<String>,
    pub problems: usize,
}

impl Findings {
    fn ok(&mut self, what: String) {
        self.lines.push(format!("ok       {what}"));
    }

    fn problem(&mut self, what: String) {
        self.problems += 1;
        self.lines.push(format!("PROBLEM  {what}"));
    }
}

pub async fn run(config: &Config) -> Result<Findings> {
    let mut f = Findings::default();
    let config = &with_pattern_tables(config, &mut f).await;
    let tables = match config.tables() {
        Ok(t) => t,
        Err(e) => {
            f.problem(format!("tables: {e:#}"));
            return Ok(f);
        }
    };
    f.ok(format!("config: {} table(s)", tables.len()));
    source_ddls(&tables, &mut f);
    if let Err(e) = crate::source::kafka::client_config(&config.kafka) {
        f.problem(format!("[kafka]: {e:#}"));
    }
    warehouse(config, &tables, &mut f).await;
    kafka(config, &tables, &mut f).await;
    if let Err(e) = config.require_registry() {
        f.problem(format!("{e:#}"));
    }
    registry(config, &tables, &mut f).await;
    Ok(f)
}

/// The config with the tables `[[table_patterns]]` make of the brokers' topics, each pattern's
/// tables said (none yet is no problem: Debezium and TiCDC create a topic with its first change).
async fn with_pattern_tables(config: &Config, f: &mut Findings) -> Config {
    let mut config = config.clone();
    if !config.has_patterns() {
        return config;
    }
    let topics = match crate::source::ends::topic_names(&config.kafka, Duration::from_secs(10)).await {
        Ok(t) => t,
        Err(e) => {
            f.problem(format!("[[table_patterns]]: {e:#}"));
            return config;
        }
    };
    match config.add_pattern_tables(&topics) {
        Err(e) => f.problem(format!("{e:#}")),
        Ok(_) => {
            for p in &config.table_patterns {
                let made: Vec<&str> = config
                    .tables
                    .iter()
                    .filter(|t| t.pattern.as_ref() == Some(&p.topic))
                    .map(|t| t.name.as_str())
                    .collect();
                f.ok(format!(
                    "table pattern {:?}: {}",
                    p.topic,
                    if made.is_empty() {
                        "no topic matches yet".to_string()
                    } else {
                        format!("tables {}", made.join(", "))
                    }
                ));
            }
        }
    }
    config
}

/// Every `source_ddl` parses.
fn source_ddls(tables: &[Table], f: &mut Findings) {
    for t in tables {
        let Some(path) = &t.source_ddl else { continue };
        match crate::model::source_ddl::load(path) {
            Ok(d) => {
                f.ok(format!("table `{}`: source_ddl {} ({} columns)", t.name, path.display(), d.schema.columns.len()))
            }
            Err(e) => f.problem(format!("table `{}`: {e:#}", t.name)),
        }
    }
}

/// The warehouse: reachable, and what exists already.
async fn warehouse(config: &Config, tables: &[Table], f: &mut Findings) {
    let url = config.warehouse.url();
    match Pool::exists(url) {
        Err(e) => return f.problem(format!("warehouse {}: {e:#}", redact_url(url))),
        Ok(false) => {
            return f.ok(format!("warehouse {}: does not exist yet (`tidemark run` creates it)", redact_url(url)))
        }
        Ok(true) => {}
    }
    let pool = match Pool::connect_for(url, Access::ReadOnly).await {
        Err(e) => return f.problem(format!("warehouse {}: {e:#}", redact_url(url))),
        Ok(pool) => pool,
    };
    f.ok(format!("warehouse {} ({})", redact_url(url), pool.dialect()));
    match crate::warehouse::migrate::state(&pool).await {
        Ok(s) if s.current() => f.ok(format!("warehouse metadata at version {:04}", s.newest)),
        Ok(s) => f.ok(format!(
            "warehouse metadata: {} migration(s) to apply up to version {:04} (`tidemark run` or `tidemark migrate` applies them)",
            s.pending.len(),
            s.newest
        )),
        Err(e) => f.problem(format!("warehouse {}: reading its metadata versions: {e:#}", redact_url(url))),
    }
    let sql = crate::sql::Sql::new(pool.dialect());
    for t in tables {
        let exists = match sql.fixed(Stmt::ReplicaColumns) {
            Ok(q) => pool.fetch_rows(q, &[Bind::Text(t.name.clone())]).await.map(|r| !r.is_empty()),
            Err(e) => Err(e),
        };
        match exists {
            Ok(true) => f.ok(format!("table `{}`: the replica exists", t.name)),
            Ok(false) => f.ok(format!("table `{}`: the replica will be created by its first merge", t.name)),
            Err(e) => f.problem(format!("table `{}`: {e:#}", t.name)),
        }
    }
    pool.close().await;
}

/// Kafka: the brokers answer, and every configured topic exists.
async fn kafka(config: &Config, tables: &[Table], f: &mut Findings) {
    let brokers = &config.kafka.bootstrap_servers;
    let consumer = match crate::source::kafka::client_config(&config.kafka)
        .and_then(|c| c.create::<BaseConsumer>().map_err(|e| anyhow::anyhow!("creating a Kafka client: {e}")))
    {
        Err(e) => return f.problem(format!("Kafka {brokers}: {e:#}")),
        Ok(c) => c,
    };
    let meta = tokio::task::spawn_blocking(move || {
        consumer
            .fetch_metadata(None, Duration::from_secs(10))
            .map(|m| m.topics().iter().map(|t| (t.name().to_string(), t.partitions().len())).collect::<Vec<_>>())
    })
    .await;
    let topics = match meta {
        Ok(Ok(topics)) => topics,
        Ok(Err(e)) => return f.problem(format!("Kafka {brokers}: {e}")),
        Err(e) => return f.problem(format!("Kafka {brokers}: {e}")),
    };
    f.ok(format!("Kafka {brokers}: {} topic(s)", topics.len()));
    for t in tables {
        match topics.iter().find(|(name, _)| *name == t.topic) {
            Some((_, n)) => f.ok(format!("table `{}`: topic {} ({n} partitions)", t.name, t.topic)),
            None => f.problem(format!("table `{}`: topic {} does not exist", t.name, t.topic)),
        }
    }
}

/// The schema registry, for Avro tables: it answers (credentials included).
async fn registry(config: &Config, tables: &[Table], f: &mut Findings) {
    let avro: Vec<_> = tables.iter().filter(|t| t.format == Format::Avro).collect();
    let (Some(reg), false) = (&config.schema_registry, avro.is_empty()) else { return };
    let r = match crate::codec::registry::Registry::new(reg) {
        Err(e) => return f.problem(format!("schema registry: {e:#}")),
        Ok(r) => r,
    };
    for t in avro {
        let subject = format!("{}-value", t.topic.replace('.', "_"));
        match r.latest(&subject).await {
            Ok(Some(_)) => f.ok(format!("table `{}`: schema registry {} has {subject}", t.name, r.url())),
            Ok(None) => f.ok(format!(
                "table `{}`: schema registry {} has no {subject} yet (TiCDC registers it with the first change)",
                t.name,
                r.url()
            )),
            Err(e) => f.problem(format!("table `{}`: {e:#}", t.name)),
        }
    }
}
