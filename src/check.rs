//! `tidemark check`: is this config ready to run? It reads the config, parses every
//! `source_ddl`, connects to the warehouse, Kafka and the schema registry, and lists the topics
//! it would read and the replica tables it would create — every problem, not just the first —
//! changing nothing (no migration, no table).

use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::config::{Config, Format};
use crate::db::{redact_url, Bind, Pool};

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
    let tables = match config.tables() {
        Ok(t) => t,
        Err(e) => {
            f.problem(format!("tables: {e:#}"));
            return Ok(f);
        }
    };
    f.ok(format!("config: {} table(s)", tables.len()));
    for t in tables.iter().filter(|t| t.source_ddl.is_some()) {
        if let Some(path) = &t.source_ddl {
            match crate::ddl::load(path) {
                Ok(d) => f.ok(format!(
                    "table `{}`: source_ddl {} ({} columns)",
                    t.name,
                    path.display(),
                    d.schema.columns.len()
                )),
                Err(e) => f.problem(format!("table `{}`: {e:#}", t.name)),
            }
        }
    }
    if let Err(e) = crate::source::client_config(&config.kafka) {
        f.problem(format!("[kafka]: {e:#}"));
    }

    // The warehouse: reachable, and what exists already.
    let url = config.warehouse.url();
    match Pool::connect(url).await {
        Err(e) => f.problem(format!("warehouse {}: {e:#}", redact_url(url))),
        Ok(pool) => {
            f.ok(format!("warehouse {} ({})", redact_url(url), pool.dialect()));
            let sql = crate::sql::Sql::new(pool.dialect());
            for t in &tables {
                let exists = match sql.fixed("replica_columns") {
                    Ok(q) => pool.fetch(q, &[Bind::Text(t.name.clone())]).await.map(|r| !r.is_empty()),
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
    }

    // Kafka: the brokers answer, and every configured topic exists.
    match crate::source::client_config(&config.kafka)
        .and_then(|c| c.create::<BaseConsumer>().map_err(|e| anyhow::anyhow!("creating a Kafka client: {e}")))
    {
        Err(e) => f.problem(format!("Kafka {}: {e:#}", config.kafka.bootstrap_servers)),
        Ok(consumer) => {
            let meta = tokio::task::spawn_blocking(move || {
                consumer.fetch_metadata(None, Duration::from_secs(10)).map(|m| {
                    m.topics().iter().map(|t| (t.name().to_string(), t.partitions().len())).collect::<Vec<_>>()
                })
            })
            .await;
            match meta {
                Ok(Ok(topics)) => {
                    f.ok(format!("Kafka {}: {} topic(s)", config.kafka.bootstrap_servers, topics.len()));
                    for t in &tables {
                        match topics.iter().find(|(name, _)| *name == t.topic) {
                            Some((_, n)) => f.ok(format!("table `{}`: topic {} ({n} partitions)", t.name, t.topic)),
                            None => f.problem(format!("table `{}`: topic {} does not exist", t.name, t.topic)),
                        }
                    }
                }
                Ok(Err(e)) => f.problem(format!("Kafka {}: {e}", config.kafka.bootstrap_servers)),
                Err(e) => f.problem(format!("Kafka {}: {e}", config.kafka.bootstrap_servers)),
            }
        }
    }

    // The schema registry, for Avro tables: it answers (credentials included).
    let avro: Vec<_> = tables.iter().filter(|t| t.format == Format::Avro).collect();
    if let (Some(reg), false) = (&config.schema_registry, avro.is_empty()) {
        match crate::codec::registry::Registry::new(reg) {
            Err(e) => f.problem(format!("schema registry: {e:#}")),
            Ok(r) => {
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
        }
    }
    Ok(f)
}
