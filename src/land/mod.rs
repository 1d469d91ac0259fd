//! Landing: Kafka records → staging tables, in batches, exactly once.
//!
//! A batch is decoded and routed first, outside any transaction ([`decode`], into a
//! [`prepare::Prepared`] batch; [`route`] says which table a record is for, [`schema_watch`]
//! what it shows of the schema), then landed in one transaction ([`write`]; [`order`] decides
//! against the recorded offsets what has landed before and the order keys of records that carry
//! none). A large batch lands in parts, in order, one transaction each, each part decoded while
//! the one before it is written. Only after the batch has landed may the consumer commit its
//! Kafka offsets.

mod decode;
pub mod key_only;
pub mod order;
mod ordering;
mod postgres;
pub mod prepare;
pub mod route;
pub mod schema_watch;
pub mod snapshot;
mod sqlite;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::StreamExt;

use crate::codec::debezium::Hints;
use crate::codec::large_message::{object_name, Fetched, CLAIM_CHECK_MARK};
use crate::codec::registry::Registry;
use crate::codec::s3::{FetchError, S3Store, StorageUnavailable};
use crate::codec::{open_protocol, Decoded, Decoder, KeyValue, ValueContext};
use crate::config::{Format, SchemaRegistryConfig, Table};
use crate::source::{NextOffset, RawRecord};
use crate::sql::TableCtx;
use crate::warehouse::failure::Failure;
use crate::warehouse::Warehouse;
pub use order::Gap;
use route::Router;
use schema_watch::TableCache;
pub use write::StaleState;

/// A record refused under `on_error = "stop"`: the service stops instead of retrying.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StopOnRecord(pub String);

/// What one landed batch did.
#[derive(Debug, Default, Clone)]
pub struct LandReport {
    pub records: usize,
    /// Staging rows written per table name.
    pub staged: HashMap<String, usize>,
    pub dead_letters: usize,
    /// Dead letters per table name (`""`: records no configured table took).
    pub dead_by_table: HashMap<String, usize>,
    /// Records skipped because they had landed before.
    pub duplicates: usize,
    /// What the consumer may now commit.
    pub next_offsets: Vec<NextOffset>,
    /// Offsets skipped because Kafka no longer had them.
    pub gaps: Vec<Gap>,
    /// Changes below their partition's watermark (re-sends), not staged, per table name.
    pub resent: HashMap<String, usize>,
    /// Topics that carried a watermark in this batch.
    pub watermarked_topics: Vec<String>,
    /// Upstream DDL statements recorded for the first time.
    pub ddl: usize,
    /// Tables (by index) whose stream this batch showed cannot be ordered exactly.
    pub ordering_warned: Vec<usize>,
    /// Tables (by index) recorded as staging rows that leave unchanged columns out.
    pub partial_recorded: Vec<usize>,
}

impl LandReport {
    /// Adds what a later part of the same batch did.
    fn absorb(&mut self, r: LandReport) {
        self.records += r.records;
        for (t, n) in r.staged {
            *self.staged.entry(t).or_default() += n;
        }
        self.dead_letters += r.dead_letters;
        for (t, n) in r.dead_by_table {
            *self.dead_by_table.entry(t).or_default() += n;
        }
        self.duplicates += r.duplicates;
        for n in r.next_offsets {
            match self.next_offsets.iter_mut().find(|m| m.topic == n.topic && m.partition == n.partition) {
                Some(m) => m.offset = m.offset.max(n.offset),
                None => self.next_offsets.push(n),
            }
        }
        self.gaps.extend(r.gaps);
        for (t, n) in r.resent {
            *self.resent.entry(t).or_default() += n;
        }
        for t in r.watermarked_topics {
            if !self.watermarked_topics.contains(&t) {
                self.watermarked_topics.push(t);
            }
        }
        self.ddl += r.ddl;
        for t in r.ordering_warned {
            if !self.ordering_warned.contains(&t) {
                self.ordering_warned.push(t);
            }
        }
        for t in r.partial_recorded {
            if !self.partial_recorded.contains(&t) {
                self.partial_recorded.push(t);
            }
        }
    }
}

/// A batch of at least twice this many records lands in parts of about this many, each decoded
/// while the one before it is written.
const PART_RECORDS: usize = 4_000;

/// How often a batch is decoded again because another process changed a table's recorded state
/// meanwhile, before landing gives up (and is retried as any failure is).
const STALE_RETRIES: usize = 3;

/// Lands batches of Kafka records into staging tables.
pub struct Lander {
    wh: Arc<Warehouse>,
    router: Router,
    decoders: HashMap<Format, Decoder>,
    /// Per table (by index): landing's copy of its recorded state.
    caches: Vec<TableCache>,
    /// Table names and staging tables, by table index.
    names: Arc<[String]>,
    staging: Arc<[TableCtx]>,
    /// Topics recorded as carrying watermarks (no need to record it again).
    watermarked: std::collections::HashSet<String>,
    /// Keys seen per partition, for streams without watermarks.
    key_partitions: ordering::KeyPartitions,
    /// Tables (by index) recorded as staging partial rows (no need to record it again).
    partial_recorded: std::collections::HashSet<usize>,
    /// The batch's claim-check objects kept in S3, fetched before it is decoded.
    claim_objects: Fetched,
    /// The HTTP client for them, made on first use.
    http: Option<reqwest::Client>,
    /// The upstream database key-only records' rows are read from.
    key_only: key_only::KeyOnly,
}

impl Lander {
    /// Registers every table (staging tables created) and loads what the warehouse knows.
    /// `registry`: the Schema Registry, when a table's format needs one (Avro).
    pub async fn new(
        wh: Arc<Warehouse>,
        mut tables: Vec<Table>,
        ctx: ValueContext,
        registry: Option<&SchemaRegistryConfig>,
    ) -> Result<Lander> {
        let mut caches = Vec::new();
        let mut staging = Vec::new();
        for t in &mut tables {
            wh.register_table(&t.name, &t.topic).await?;
            if let Some(path) = &t.source_ddl {
                let ddl = crate::model::source_ddl::load(path)?;
                wh.apply_ddl(&t.name, &ddl.schema).await?;
                if t.key.is_none() && !ddl.schema.key.is_empty() {
                    t.key = Some(ddl.schema.key.clone());
                }
            }
            caches.push(TableCache::load(wh.table(&t.name).await?, t.source_ddl.is_some()));
            staging.push(TableCtx::bare(&t.name));
        }
        let registry = registry.map(Registry::new).transpose()?.map(Arc::new);
        let mut decoders = HashMap::new();
        for t in &tables {
            if let std::collections::hash_map::Entry::Vacant(e) = decoders.entry(t.format) {
                e.insert(Decoder::new(t.format, ctx.clone(), registry.clone())?);
            }
        }
        let mut watermarked = std::collections::HashSet::new();
        for t in &tables {
            if crate::warehouse::consistency::read_now(&wh.sql, &wh.pool, &t.topic).await?.watermarked {
                watermarked.insert(t.topic.clone());
            }
        }
        Ok(Lander {
            wh,
            names: tables.iter().map(|t| t.name.clone()).collect(),
            router: Router::new(tables),
            decoders,
            caches,
            staging: staging.into(),
            watermarked,
            key_partitions: Default::default(),
            claim_objects: Default::default(),
            http: None,
            partial_recorded: Default::default(),
            key_only: Default::default(),
        })
    }

    /// The warehouse's next offset to land, per partition.
    pub async fn offsets(&self) -> Result<HashMap<(String, i32), i64>> {
        self.wh.offsets().await
    }

    pub fn topics(&self) -> Vec<String> {
        self.router.topics()
    }

    pub fn tables(&self) -> &[Table] {
        &self.router.tables
    }

    /// Lands a batch in one transaction: all of it, or (on error) none of it — except that
    /// when the database refuses the batch's data (a value out of range, a constraint, a
    /// trigger: [`Failure::Data`]), the batch is landed in halves, and halves of those, until
    /// each record responsible is alone; those become dead letters with the database's error
    /// and the rest lands, in order. Any other failure is returned (what landed of the
    /// halves so far stays landed; landing the batch again skips it).
    pub async fn land(&mut self, batch: &[RawRecord]) -> Result<LandReport> {
        let delivered = batch.len();
        let batch = &*crate::source::batch::distinct_positions(batch);
        let first = match self.land_once(batch).await {
            Err(e) if Failure::of(&e) == Failure::Data => e,
            other => return other.map(|r| LandReport { records: delivered, ..r }),
        };
        tracing::warn!(records = batch.len(), error = %format!("{first:#}"), "the warehouse refused a batch's data: landing it in parts to find the records responsible");
        let mut report = LandReport::default();
        let mut parts: std::collections::VecDeque<(&[RawRecord], Option<anyhow::Error>)> =
            std::collections::VecDeque::from([(batch, Some(first))]);
        while let Some((part, known)) = parts.pop_front() {
            let landed = match known {
                Some(e) => Err(e),
                None => self.land_once(part).await,
            };
            match landed {
                Ok(r) => report.absorb(r),
                Err(e) if Failure::of(&e) != Failure::Data => return Err(e),
                Err(e) if part.len() == 1 => report.absorb(self.land_refused(&part[0], &e).await?),
                Err(_) => {
                    let (a, b) = part.split_at(part.len() / 2);
                    parts.push_front((b, None));
                    parts.push_front((a, None));
                }
            }
        }
        report.records = delivered;
        Ok(report)
    }

    /// [`Lander::land`] topic by topic, for a batch the warehouse refuses for a reason no
    /// record is to blame for ([`Failure::Other`]: a permission, a staging table gone): the
    /// topics whose records land are not held back by those whose records do not. Returns what
    /// landed and each topic that failed so, with its error; any other failure is returned.
    pub async fn land_by_topic(&mut self, batch: &[RawRecord]) -> Result<(LandReport, Vec<(String, anyhow::Error)>)> {
        let mut topics: Vec<&Arc<str>> = Vec::new();
        for r in batch {
            if !topics.contains(&&r.topic) {
                topics.push(&r.topic);
            }
        }
        let mut report = LandReport::default();
        let mut failed = Vec::new();
        for topic in topics {
            let part: Vec<RawRecord> = batch.iter().filter(|r| r.topic == *topic).cloned().collect();
            match self.land(&part).await {
                Ok(r) => report.absorb(r),
                Err(e) if Failure::of(&e) == Failure::Other && e.downcast_ref::<StopOnRecord>().is_none() => {
                    failed.push((topic.to_string(), e))
                }
                Err(e) => return Err(e),
            }
        }
        Ok((report, failed))
    }

    /// The configured tables `topic` feeds.
    pub fn tables_of(&self, topic: &str) -> Vec<String> {
        self.router.candidates(topic).iter().map(|&ti| self.router.tables[ti].name.clone()).collect()
    }

    /// Stops every table `topic` feeds: the warehouse refuses to land its records.
    pub async fn stop_topic(&self, topic: &str, reason: &str) -> Result<()> {
        for table in self.tables_of(topic) {
            self.wh.stop_landing(&table, reason).await?;
        }
        Ok(())
    }

    /// The tables `topic` feeds go on: its records land again.
    pub async fn unstop_topic(&self, topic: &str) -> Result<()> {
        for table in self.tables_of(topic) {
            if self.wh.unstop_landing(&table).await? {
                tracing::info!(table, topic, "its records land again: the table goes on");
            }
        }
        Ok(())
    }

    /// Lands one record the database refused as a dead letter carrying the database's error.
    async fn land_refused(&mut self, rec: &RawRecord, refusal: &anyhow::Error) -> Result<LandReport> {
        let mut p = prepare::Prepared::new(self.router.tables.len());
        p.cover(&rec.topic, rec.partition, rec.offset);
        self.refuse(rec, None, format!("the warehouse refused it: {refusal:#}"), &mut p)?;
        let (mut report, _) = self.commit(&p).await.with_context(|| {
            format!(
                "landing the refused record at {} partition {} offset {} as a dead letter",
                rec.topic, rec.partition, rec.offset
            )
        })?;
        report.records = 1;
        Ok(report)
    }

    /// [`Lander::land`] in one transaction — or, for a batch of at least twice
    /// [`PART_RECORDS`] records, in parts of about that many, one transaction each and in
    /// order, each part decoded while the one before it is written (the warehouse works on one
    /// while tidemark decodes the next: two cores, two stages). A part that fails leaves the
    /// parts before it landed; landing the batch again skips them.
    async fn land_once(&mut self, batch: &[RawRecord]) -> Result<LandReport> {
        let delivered = batch.len();
        let started = std::time::Instant::now();
        self.prefetch(batch).await?;
        self.refresh().await.context("reading the tables' recorded state")?;
        let parts: Vec<&[RawRecord]> = if batch.len() >= 2 * PART_RECORDS {
            let n = batch.len().div_ceil(PART_RECORDS);
            batch.chunks(batch.len().div_ceil(n)).collect()
        } else {
            vec![batch]
        };
        let mut report = LandReport::default();
        // The next part, decoded while this one was written.
        let mut ahead: Option<Result<prepare::Prepared>> = None;
        let (mut decode_ms, mut write_wait_ms) = (0u128, 0u128);
        for (i, part) in parts.iter().enumerate() {
            let mut attempt = 0;
            let mut prepared = match ahead.take() {
                Some(p) => p?,
                None => {
                    let t = std::time::Instant::now();
                    let p = self.prepare(part)?;
                    decode_ms += t.elapsed().as_millis();
                    p
                }
            };
            loop {
                let writer = self.writer();
                let writing = std::time::Instant::now();
                let (written, back, next) = match parts.get(i + 1) {
                    Some(next_part) => {
                        let task = tokio::spawn(async move {
                            let written = writer.commit(&prepared).await;
                            (written, prepared)
                        });
                        let t = std::time::Instant::now();
                        let next = self.prepare(next_part);
                        decode_ms += t.elapsed().as_millis();
                        let waited = std::time::Instant::now();
                        let (written, back) = task.await.context("the landing transaction's task")?;
                        write_wait_ms += waited.elapsed().as_millis();
                        (written, back, Some(next))
                    }
                    None => {
                        let written = writer.commit(&prepared).await;
                        write_wait_ms += writing.elapsed().as_millis();
                        (written, prepared, None)
                    }
                };
                match written {
                    Ok((r, versions)) => {
                        // The next part was decoded against the state before this one landed:
                        // what this one recorded (schema news, a topic's watermarks, an
                        // ordering warning) makes it stale.
                        let stale = !versions.is_empty()
                            || !r.ordering_warned.is_empty()
                            || r.watermarked_topics.iter().any(|t| !self.watermarked.contains(t));
                        self.landed(back, &versions, &r);
                        report.absorb(r);
                        ahead = next.filter(|_| !stale);
                        break;
                    }
                    Err(e) if attempt < STALE_RETRIES && e.downcast_ref::<StaleState>().is_some() => {
                        attempt += 1;
                        tracing::info!(error = %e, "reloading the table's state and decoding the batch again");
                        self.refresh().await.context("reading the tables' recorded state")?;
                        prepared = self.prepare(part)?;
                    }
                    Err(e) => {
                        return Err(e)
                            .with_context(|| format!("landing a batch of {} records into {}", part.len(), self.wh.url))
                    }
                }
            }
        }
        tracing::debug!(
            records = delivered,
            parts = parts.len(),
            ms = started.elapsed().as_millis() as u64,
            decode_ms = decode_ms as u64,
            write_wait_ms = write_wait_ms as u64,
            "batch landed"
        );
        report.records = delivered;
        Ok(report)
    }

    /// A part of a batch has landed: landing's copies follow what it recorded.
    fn landed(&mut self, prepared: prepare::Prepared, versions: &[(usize, i64)], r: &LandReport) {
        self.absorb(prepared, versions);
        self.watermarked.extend(r.watermarked_topics.iter().cloned());
        for ti in &r.ordering_warned {
            self.key_partitions.warned(*ti);
        }
        self.partial_recorded.extend(r.partial_recorded.iter().copied());
    }

    /// Fetches what decoding needs from elsewhere (Avro writer schemas; claim-check objects kept
    /// in S3; the rows of key-only records, from upstream).
    async fn prefetch(&mut self, batch: &[RawRecord]) -> Result<()> {
        self.prefetch_schemas(batch).await?;
        self.fetch_claim_checks(batch).await?;
        self.prefetch_key_only(batch).await
    }

    /// The claim-check objects the batch's S3-stored references name, by location: a refusal
    /// (no such object, access denied) is kept for its record's dead letter; storage that cannot
    /// be reached fails the batch (tried again, as an outage).
    async fn fetch_claim_checks(&mut self, batch: &[RawRecord]) -> Result<()> {
        self.claim_objects.clear();
        let mut wanted: Vec<(S3Store, String)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for rec in batch {
            let (compression, Some(store)) = self.router.large_messages(&rec.topic) else { continue };
            let Some(store) = store.s3() else { continue };
            let mut want = |location: String| {
                if seen.insert(location.clone()) {
                    wanted.push((store.clone(), location));
                }
            };
            // The open protocol names its references in the events' keys (`ccl`).
            if self.router.format(&rec.topic) == Format::OpenProtocol {
                rec.key
                    .as_deref()
                    .map(open_protocol::claim_check_locations)
                    .unwrap_or_default()
                    .into_iter()
                    .for_each(want);
                continue;
            }
            // A reference is small and names its location; what does not decode here is
            // refused with its reason when the batch is decoded.
            let Some(Ok(value)) = rec.value.as_deref().map(|v| compression.decompress(v)) else { continue };
            if !value.windows(CLAIM_CHECK_MARK.len()).any(|w| w == CLAIM_CHECK_MARK) {
                continue;
            }
            let Some(decoder) = self.decoders.get_mut(&self.router.format(&rec.topic)) else { continue };
            if let Ok(Decoded::ClaimCheck { location }) = decoder.decode(rec.key.as_deref(), Some(&value), None) {
                want(location);
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        let client = self.http.get_or_insert_with(reqwest::Client::new).clone();
        let fetches = wanted.into_iter().map(|(store, location)| {
            let client = client.clone();
            async move {
                let got = match object_name(&location) {
                    Ok(name) => store.get(&client, name).await,
                    Err(e) => Err(FetchError::Refused(e)),
                };
                (location, got)
            }
        });
        let fetched: Vec<_> = futures_util::stream::iter(fetches).buffer_unordered(8).collect().await;
        for (location, got) in fetched {
            let got = match got {
                Ok(bytes) => Ok(bytes),
                Err(FetchError::Refused(e)) => Err(e),
                Err(FetchError::Unavailable(e)) => {
                    return Err(StorageUnavailable(format!("the claim-check storage: {e}")).into())
                }
            };
            self.claim_objects.insert(location, got);
        }
        Ok(())
    }

    /// Fetches the writer schemas the batch's Avro records name, per format.
    async fn prefetch_schemas(&mut self, batch: &[RawRecord]) -> Result<()> {
        for (format, decoder) in self.decoders.iter_mut() {
            let records: Vec<KeyValue> = batch
                .iter()
                .filter(|r| self.router.format(&r.topic) == *format)
                .map(|r| (r.key.as_deref(), r.value.as_deref()))
                .collect();
            decoder.prefetch(records).await.with_context(|| format!("preparing to decode {format} records"))?;
        }
        Ok(())
    }

    /// Reloads every table whose recorded state moved since landing copied it.
    async fn refresh(&mut self) -> Result<()> {
        let versions = self.wh.versions().await?;
        for (ti, t) in self.router.tables.iter().enumerate() {
            let now = versions.get(&t.name).copied();
            if now.is_some() && now != self.caches[ti].version {
                tracing::debug!(table = %t.name, was = ?self.caches[ti].version, now = ?now, "reloading the table's state");
                self.caches[ti] = TableCache::load(self.wh.table(&t.name).await?, t.source_ddl.is_some());
            }
        }
        Ok(())
    }

    /// The warehouse has the batch's schema news now: the copies follow.
    fn absorb(&mut self, prepared: prepare::Prepared, versions: &[(usize, i64)]) {
        let news = prepared.news;
        for (ti, cache) in self.caches.iter_mut().enumerate() {
            let columns: Vec<_> = news.columns.iter().filter(|e| e.table == ti).cloned().collect();
            let key = news.keys.iter().find(|(t, _)| *t == ti).map(|(_, k)| k.as_slice());
            cache.recorded(&columns, key);
            cache.verified(news.layouts.iter().filter(|(t, _)| *t == ti).map(|(_, l)| l.clone()));
        }
        for &(ti, version) in versions {
            self.caches[ti].version = Some(version);
        }
    }

    /// The recorded column types of the (first) table on `topic`.
    fn hints(&mut self, topic: &str) -> Option<Arc<Hints>> {
        let ti = *self.router.candidates(topic).first()?;
        self.caches[ti].hints()
    }
}
