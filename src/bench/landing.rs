//! Landing against its limits: `tidemark run` landing the preloaded topic, the broker's own
//! delivery to a consumer that does nothing, tidemark's landing fed from memory, and the
//! database's own bulk load of the same rows (PostgreSQL's binary COPY; SQLite's
//! `INSERT … SELECT`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{DefaultProducerContext, Producer, ThreadedProducer};

use super::child::{write_config, Measured};
use super::order_line::{self, Generator, TABLE};
use super::BenchArgs;
use crate::demo::produce::send_waiting;
use crate::sql::{safe, BenchStmt, Sql, Stmt, TableCtx, BENCH_TEMPLATES};
use crate::warehouse::db::Pool;
use crate::warehouse::Warehouse;

pub async fn create_topic(brokers: &str, topic: &str, partitions: i32) -> Result<()> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().context("creating a Kafka admin client")?;
    let t = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    for r in admin
        .create_topics([&t], &AdminOptions::new().operation_timeout(Some(Duration::from_secs(30))))
        .await
        .with_context(|| format!("creating topic {topic} on {brokers}"))?
    {
        r.map_err(|(t, e)| anyhow!("creating topic {t}: {e}"))?;
    }
    Ok(())
}

/// Produces every change `next` yields to `topic` (record batches compressed with
/// `compression`, librdkafka's `compression.codec`), and waits until all are acknowledged.
pub fn produce(
    brokers: &str,
    topic: &str,
    compression: &str,
    mut next: impl FnMut() -> Option<order_line::Change>,
) -> Result<()> {
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("compression.codec", compression)
        .set("linger.ms", "20")
        .set("batch.size", "1000000")
        .set("queue.buffering.max.kbytes", "262144")
        .create()
        .context("creating the bench's producer")?;
    while let Some(c) = next() {
        send_waiting(&producer, topic, c.partition, &c.payload).map_err(|e| anyhow!("producing to {topic}: {e}"))?;
    }
    producer.flush(Duration::from_secs(300)).context("flushing the bench's producer")?;
    Ok(())
}

/// `tidemark run` landing into a warehouse.
pub struct Landed {
    pub changes_per_s: f64,
    pub peak_mib: f64,
}

/// `tidemark run` landing the preloaded topic of `brokers` into `url`. The rate counts from the
/// first landed batch to the last, so group joining is not in it.
pub async fn land_once(args: &BenchArgs, brokers: &str, topic: &str, url: &str, group: &str, n: u64) -> Result<Landed> {
    let config = write_config(args, brokers, topic, url, group, "0 0 0 1 1 *")?;
    let wh = Warehouse::open(url).await?;
    let mut child = Measured::spawn(&config, &["run"], &args.dir.join(format!("{group}.log")))?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    let (mut t0, mut at_t0) = (None, 0i64);
    loop {
        let now: i64 = wh.offsets().await.map(|o| o.values().sum()).unwrap_or(0);
        if now > 0 && t0.is_none() {
            (t0, at_t0) = (Some(Instant::now()), now);
        }
        if now >= n as i64 {
            break;
        }
        if child.child.try_wait()?.is_some() {
            bail!("tidemark run stopped early (see {}/{group}.log)", args.dir.display());
        }
        if Instant::now() > deadline {
            bail!("tidemark run did not land {n} changes in 30 minutes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = t0.map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN);
    child.terminate()?;
    wh.pool.close().await;
    Ok(Landed { changes_per_s: (n as i64 - at_t0) as f64 / elapsed, peak_mib: child.peak_mib() })
}

/// The broker's own delivery rate: every record of `topic` read by a bare librdkafka consumer
/// that does nothing with them (fetching as tidemark's consumer does): records/s.
pub fn broker_limit(brokers: &str, topic: &str, n: u64) -> Result<f64> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("fetch.wait.max.ms", "100")
        .set("fetch.queue.backoff.ms", "20")
        .set("group.id", format!("bench-raw-{}-{}", std::process::id(), chrono::Utc::now().timestamp_millis()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a bare consumer")?;
    consumer.subscribe(&[topic]).context("subscribing the bare consumer")?;
    let (mut read, mut t0) = (0u64, None);
    let deadline = Instant::now() + Duration::from_secs(1800);
    while read < n {
        if Instant::now() > deadline {
            bail!("the bare consumer read {read} of {n} records in 30 minutes");
        }
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.context("the bare consumer")?;
            t0.get_or_insert_with(Instant::now);
            read += 1;
        }
    }
    Ok(read as f64 / t0.map(|t| t.elapsed().as_secs_f64()).unwrap_or(f64::NAN))
}

/// tidemark's own landing work — decode, stage, COPY — fed the same changes from memory in
/// batches of 20,000 records, as they come from Kafka: changes/s.
pub async fn land_without_broker(url: &str, topic: &str, n: u64, partitions: i32) -> Result<f64> {
    let config = crate::config::Config::parse(&format!(
        "[warehouse]\nurl = {url:?}\n[[tables]]\nname = {TABLE:?}\ntopic = {topic:?}\n"
    ))?;
    let wh = Warehouse::open(url).await?;
    let mut lander =
        crate::land::Lander::new(wh.clone(), config.tables()?, crate::codec::ValueContext::default(), None).await?;
    let mut gen = Generator::new(topic, n, partitions, 20261125, true);
    let topic: Arc<str> = topic.into();
    let mut offsets: HashMap<i32, i64> = HashMap::new();
    let mut batches = Vec::new();
    let mut produced = 0;
    while produced < n {
        let batch: Vec<crate::source::RawRecord> = (0..20_000.min(n - produced))
            .map(|_| {
                let c = gen.next_change();
                let offset = offsets.entry(c.partition).or_default();
                *offset += 1;
                crate::source::RawRecord {
                    topic: topic.clone(),
                    partition: c.partition,
                    offset: *offset - 1,
                    key: None,
                    value: Some(c.payload),
                }
            })
            .collect();
        produced += batch.len() as u64;
        batches.push(batch);
    }
    let t0 = Instant::now();
    for b in &batches {
        lander.land(b).await?;
    }
    let secs = t0.elapsed().as_secs_f64();
    wh.pool.close().await;
    Ok(n as f64 / secs)
}

/// PostgreSQL's binary COPY of the staging rows just landed, from a file, into an identical
/// table: rows/s.
pub async fn pg_copy_limit(url: &str) -> Result<f64> {
    let wh = Warehouse::open(url).await?;
    let Pool::Pg(pool) = &wh.pool else { bail!("not PostgreSQL") };
    let sql = Sql::with_sets(wh.dialect(), &[BENCH_TEMPLATES]);
    let staging = TableCtx::bare(TABLE);
    let copy_target = TableCtx { staging: "bench_copy".into(), ..TableCtx::bare(TABLE) };
    let mut conn = pool.acquire().await?;
    // The rows, as tidemark sent them, into a file.
    let file = std::env::temp_dir().join(format!("tidemark-bench-{}.copy", std::process::id()));
    {
        use futures_util::TryStreamExt;
        let mut out = Vec::new();
        let mut stream = (*conn).copy_out_raw(&sql.render(BenchStmt::CopyOut, &staging, &[])?.text).await?;
        while let Some(chunk) = stream.try_next().await? {
            out.extend_from_slice(&chunk);
        }
        std::fs::write(&file, &out).with_context(|| format!("writing {}", file.display()))?;
    }
    sqlx::raw_sql(safe(sql.render(Stmt::StagingTable, &copy_target, &[])?)).execute(&mut *conn).await?;
    let rows = wh.staged(TABLE).await?.staged_rows;
    let data = std::fs::read(&file)?;
    let t = Instant::now();
    let mut copy = (*conn).copy_in_raw(&sql.render(Stmt::LandCopy, &copy_target, &[])?.text).await?;
    for chunk in data.chunks(1 << 20) {
        copy.send(chunk).await?;
    }
    copy.finish().await?;
    let secs = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&file);
    drop(conn);
    wh.pool.close().await;
    Ok(rows as f64 / secs)
}

/// SQLite's own limit for landing: one `INSERT … SELECT` of the landed staging rows into an
/// identical table: rows/s.
pub async fn sqlite_insert_limit(url: &str) -> Result<f64> {
    let wh = Warehouse::open(url).await?;
    let sql = Sql::with_sets(wh.dialect(), &[BENCH_TEMPLATES]);
    let copy_target = TableCtx { staging: "bench_copy".into(), ..TableCtx::bare(TABLE) };
    wh.pool.execute(sql.render(Stmt::StagingTable, &copy_target, &[])?, &[]).await?;
    let t = Instant::now();
    let mut tx = wh.pool.begin(sql.fixed(Stmt::MergeBegin)?).await?;
    let rows = tx.execute(sql.render(BenchStmt::Copy, &TableCtx::bare(TABLE), &[])?, &[]).await?;
    tx.commit().await?;
    let secs = t.elapsed().as_secs_f64();
    wh.pool.close().await;
    Ok(rows as f64 / secs)
}
