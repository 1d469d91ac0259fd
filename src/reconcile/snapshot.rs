//! `tidemark snapshot`: the rows an upstream table holds, read at one consistent point and
//! landed into staging as changes ordered at that point — so the merges resolve their overlap
//! with the stream by the rules that already exist.
//!
//! The order key of a snapshot's rows:
//! - **TiDB**: the TSO it reads at (`@@tidb_current_ts` of a `WITH CONSISTENT SNAPSHOT`
//!   transaction, or `--at`): a streamed change committed after it wins, one before it loses.
//! - **MySQL, MariaDB**: their streams carry no order key comparable with a binlog position, so
//!   the rows are ordered at `-1`, before every streamed change: any change of the key the
//!   stream carries wins. That is exact when the stream holds every change from a point at or
//!   before the snapshot on (start it at the position the snapshot prints, or earlier).
//! - **PostgreSQL**: `-1` too — Debezium's order key (the last commit LSN) says nothing about
//!   what a REPEATABLE READ snapshot saw; the stream must hold every change from the WAL LSN
//!   the snapshot prints on.
//!
//! Chunks of `chunk_rows` rows in key order; each lands in one transaction with the snapshot's
//! progress (`_tidemark_snapshots`), so a crash or Ctrl-C resumes after the last landed chunk
//! (at a new point: each chunk's rows carry the point they were read at). While it runs, the
//! table's merges apply only changes ordered below its rows (see `merge::unit`).

use std::sync::Arc;
use std::time::Duration;

use super::progress::Progress;
use crate::config::Table;
use crate::from_row;
use crate::land::prepare::SnapshotStep;
use crate::land::snapshot::{RefusedRow, SnapshotChunk};
use crate::land::Lander;
use crate::model::change::Op;
use crate::model::change::Value;
use crate::sql::{Stmt, UpstreamStmt};
use crate::upstream::{key_binds, raw_key_json, read_row, value_context, Conn, Flavor, KeyBind, SourceTable, Upstream};
use crate::warehouse::db::Bind;
use crate::warehouse::Warehouse;
use anyhow::{bail, Context, Result};

/// The order key of MySQL/MariaDB snapshot rows: before every streamed change.
pub const BEFORE_THE_STREAM: i64 = -1;

#[derive(Debug, Clone)]
pub struct SnapshotOptions {
    pub chunk_rows: usize,
    /// TiDB: read as of this TSO (`@@tidb_snapshot`) instead of now.
    pub at: Option<i64>,
    /// Progress on stderr.
    pub progress: bool,
}

/// `snapshot_state`: a table's snapshot as recorded.
#[derive(Debug, Clone)]
pub struct SnapshotState {
    pub name: String,
    pub source: String,
    pub generation: i64,
    pub order_key: i64,
    pub cap: Option<i64>,
    pub point: Option<String>,
    pub last_key: Option<String>,
    pub rows_landed: i64,
    pub chunks: i64,
    pub started_at: String,
    pub done_at: Option<String>,
}
from_row!(SnapshotState {
    name,
    source,
    generation,
    order_key,
    cap,
    point,
    last_key,
    rows_landed,
    chunks,
    started_at,
    done_at
});

/// What a snapshot did.
#[derive(Debug, Clone)]
pub struct SnapshotSummary {
    pub table: String,
    pub source: String,
    /// Rows landed by this run, and in all (a resumed snapshot counts the earlier runs').
    pub rows: u64,
    pub total_rows: u64,
    pub dead_letters: u64,
    /// The key it resumed after, when it resumed.
    pub resumed_after: Option<String>,
    pub order_key: i64,
    /// Where upstream was, as the snapshot read it (a TSO, a binlog position).
    pub point: String,
    pub flavor: Flavor,
    pub elapsed: Duration,
}

impl SnapshotSummary {
    /// What to tell the person who ran it.
    pub fn describe(&self) -> String {
        let secs = self.elapsed.as_secs_f64().max(0.001);
        let mut out = format!(
            "{}: {} rows from {} in {:.1} s ({:.0} rows/s){}; order key {} ({})",
            self.table,
            self.rows,
            self.source,
            secs,
            self.rows as f64 / secs,
            match &self.resumed_after {
                Some(k) => format!(", resumed after key {k}, {} rows in all", self.total_rows),
                None => String::new(),
            },
            self.order_key,
            self.point
        );
        if self.dead_letters > 0 {
            out.push_str(&format!("; {} rows refused, in the dead-letter table", self.dead_letters));
        }
        out
    }

    /// How the stream must start for the replica to be exact.
    pub fn stream_hint(&self) -> String {
        match self.flavor {
            Flavor::Tidb => format!(
                "If no changefeed feeds `{}` yet, create one from this point:\n  cdc cli changefeed create --start-ts={} --sink-uri=\"kafka://…\" …\n\
                 (a changefeed that started earlier is fine too: its older changes lose to the snapshot's rows).",
                self.table, self.order_key
            ),
            Flavor::Mariadb | Flavor::Mysql => format!(
                "The stream of `{}` must hold every change from {} on (or from earlier): its changes win over the snapshot's rows.",
                self.table, self.point
            ),
            Flavor::Postgres => format!(
                "The stream of `{}` must hold every change from {} on (or from earlier): create Debezium's replication slot \
                 before the snapshot (snapshot.mode = no_data, or never); its changes win over the snapshot's rows.",
                self.table, self.point
            ),
        }
    }
}

/// Reads a table's recorded snapshot.
pub async fn state(wh: &Warehouse, table: &str) -> Result<Option<SnapshotState>> {
    wh.pool
        .fetch_optional(wh.sql.fixed(Stmt::SnapshotState)?, &[Bind::Text(table.into())])
        .await
        .with_context(|| format!("reading the snapshot state of `{table}`"))
}

/// A snapshot generation's landing: the upstream table, its position tag and progress.
pub struct Generation {
    pub src: SourceTable,
    pub topic: Arc<str>,
    pub generation: i64,
    pub last_key: Option<String>,
    pub landed: i64,
}

/// Begins a new snapshot generation of `table` (or takes up the unfinished one): from its
/// commit on, the table's merges apply only changes below the rows it will land.
pub async fn begin(
    up: &Upstream,
    wh: &Warehouse,
    table: &str,
    src: SourceTable,
    at: Option<i64>,
) -> Result<Generation> {
    let topic: Arc<str> = Arc::from(format!("snapshot:{}", src.name()));
    if let Some(s) = state(wh, table).await? {
        if s.done_at.is_none() && s.source == src.name() {
            return Ok(Generation {
                src,
                topic,
                generation: s.generation,
                last_key: s.last_key,
                landed: s.rows_landed,
            });
        }
    }
    // The cap comes before the point is read: a merge that commits in between applies only
    // changes committed upstream before the snapshot reads.
    let (cap, order_key) = match (up.flavor, at) {
        (Flavor::Tidb, Some(at)) => (at - 1, at),
        (Flavor::Tidb, None) => {
            let now = current_tso(up).await?;
            (now - 1, now)
        }
        _ => (BEFORE_THE_STREAM - 1, BEFORE_THE_STREAM),
    };
    let binds = [Bind::Text(table.into()), Bind::Text(src.name()), Bind::I64(cap), Bind::I64(order_key)];
    wh.pool
        .execute(wh.sql.fixed(Stmt::SnapshotBegin)?, &binds)
        .await
        .with_context(|| format!("recording that a snapshot of `{table}` begins"))?;
    let s = state(wh, table).await?.context("the snapshot just begun is not recorded")?;
    Ok(Generation { src, topic, generation: s.generation, last_key: None, landed: 0 })
}

/// Lands a generation's chunk of upstream rows (upserts) and keys upstream no longer holds
/// (deletes), with its progress.
pub async fn land(
    lander: &mut Lander,
    table: &str,
    g: &mut Generation,
    order_key: i64,
    changes: Vec<crate::model::change::Change>,
    refused: Vec<RefusedRow>,
    last: String,
) -> Result<u64> {
    let rows = (changes.len() + refused.len()) as i64;
    let chunk = SnapshotChunk {
        table: table.into(),
        topic: g.topic.clone(),
        first: g.landed,
        order_key,
        changes,
        refused,
        step: SnapshotStep {
            table: table.into(),
            generation: g.generation,
            after: g.last_key.clone(),
            last: last.clone(),
            rows,
        },
    };
    let report = lander.land_snapshot(&chunk).await?;
    g.last_key = Some(last);
    g.landed += rows;
    Ok(report.dead_letters as u64)
}

/// The generation has landed every row: the table's merges apply everything again.
pub async fn finish(wh: &Warehouse, table: &str, g: &Generation) -> Result<()> {
    wh.pool
        .execute(wh.sql.fixed(Stmt::SnapshotDone)?, &[Bind::Text(table.into()), Bind::I64(g.generation)])
        .await
        .with_context(|| format!("recording that the snapshot of `{table}` is done"))?;
    Ok(())
}

/// TiDB's TSO now (the start ts of a transaction begun for it).
async fn current_tso(up: &Upstream) -> Result<i64> {
    let mut conn = up.acquire().await?;
    conn.run(up.fixed(UpstreamStmt::SnapshotBegin)?).await?;
    let ts = tidb_current_ts(up, &mut conn).await?;
    conn.run(up.fixed(UpstreamStmt::SnapshotEnd)?).await?;
    Ok(ts)
}

/// TiDB: the TSO the open transaction reads at.
async fn tidb_current_ts(up: &Upstream, conn: &mut Conn) -> Result<i64> {
    let rows = conn.texts(up.fixed(UpstreamStmt::TidbCurrentTs)?, &[]).await?;
    let ts = rows.into_iter().next().and_then(|r| r.into_iter().next().flatten()).unwrap_or_default();
    ts.parse().with_context(|| format!("TiDB's @@tidb_current_ts is `{ts}`, not a TSO"))
}

/// The first value of the first row of a text query (`None`: no row, or NULL).
async fn first_text(conn: &mut Conn, sql: crate::sql::Rendered) -> Result<Option<String>> {
    Ok(conn.texts(sql, &[]).await?.into_iter().next().and_then(|r| r.into_iter().next().flatten()))
}

/// Snapshots one table.
pub async fn snapshot(
    up: &Upstream,
    wh: &Warehouse,
    lander: &mut Lander,
    table: &Table,
    opts: &SnapshotOptions,
) -> Result<SnapshotSummary> {
    let src = up.describe(table.source.as_ref(), &table.name).await?;
    if let Some(k) = &table.key {
        if k.as_slice() != &src.key_names[..] {
            bail!(
                "table `{}`: the configured key ({}) is not upstream's ({}): a snapshot reads in upstream key ranges",
                table.name,
                k.join(", "),
                src.key_names.join(", ")
            );
        }
    }
    if opts.at.is_some() && up.flavor != Flavor::Tidb {
        bail!("--at reads as of a TSO, which only TiDB has ({} is {})", up.shown, up.version);
    }
    let name = table.name.as_str();
    let estimate = up.estimate_rows(&src).await;
    let mut g = begin(up, wh, name, src, opts.at).await?;
    let resumed_after = g.last_key.clone();
    if let Some(k) = &resumed_after {
        tracing::info!(table = name, after = %k, rows = g.landed, "resuming the snapshot after the last landed chunk");
    }
    let src = g.src.clone();

    // The consistent read.
    let mut conn = up.acquire().await?;
    if let Some(at) = opts.at {
        conn.exec(up.fixed(UpstreamStmt::TidbSnapshotAt)?, &[KeyBind::Text(at.to_string())]).await?;
    }
    conn.run(up.fixed(UpstreamStmt::SnapshotIsolation)?).await?;
    conn.run(up.fixed(UpstreamStmt::SnapshotBegin)?)
        .await
        .with_context(|| format!("opening a consistent snapshot of {}", up.shown))?;
    let (order_key, point) = match up.flavor {
        Flavor::Tidb => {
            let ts = match opts.at {
                Some(at) => at,
                None => tidb_current_ts(up, &mut conn).await?,
            };
            (ts, format!("TSO {ts} ({})", crate::model::tso::describe(ts)))
        }
        Flavor::Mariadb | Flavor::Mysql => (BEFORE_THE_STREAM, binlog_position(up, &mut conn).await),
        Flavor::Postgres => {
            // The transaction's first statement: its snapshot is taken here.
            let lsn = first_text(&mut conn, up.fixed(UpstreamStmt::WalPosition)?)
                .await
                .with_context(|| format!("reading the WAL position of {}", up.shown))?;
            (BEFORE_THE_STREAM, format!("WAL LSN {}", lsn.unwrap_or_default()))
        }
    };
    wh.pool
        .execute(
            wh.sql.fixed(Stmt::SnapshotPoint)?,
            &[Bind::Text(name.into()), Bind::I64(g.generation), Bind::I64(order_key), Bind::Text(point.clone())],
        )
        .await?;

    let mut progress = Progress::new(format!("snapshot {name}"), estimate, g.landed as u64);
    let started = std::time::Instant::now();
    let (mut rows_landed, mut dead) = (0u64, 0u64);
    // Two stages on two cores: the next chunk is read and converted while this one lands; at
    // most two chunks in memory.
    let statements = [false, true].map(|after| {
        up.render(UpstreamStmt::Chunk, &src, &[("rows", opts.chunk_rows.into()), ("after", after.into())])
    });
    let [first, next] = statements;
    let reader =
        Reader { bytes: src.bytes(), src: src.clone(), first: first?, next: next?, chunk_rows: opts.chunk_rows };
    let (mut chunks, read) = reader.spawn(conn, g.last_key.clone());
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        let n = chunk.rows as u64;
        dead += land(lander, name, &mut g, order_key, chunk.changes, chunk.refused, chunk.last).await?;
        crate::failpoint::hit("snapshot.chunk_landed");
        rows_landed += n;
        if opts.progress {
            progress.advance(n);
        }
    }
    let mut conn = read.await.context("the snapshot's reader")??;
    progress.finish();
    let _ = conn.run(up.fixed(UpstreamStmt::SnapshotEnd)?).await;
    crate::failpoint::hit("snapshot.before_done");
    finish(wh, name, &g).await?;
    Ok(SnapshotSummary {
        table: name.into(),
        source: src.name(),
        rows: rows_landed,
        total_rows: g.landed as u64,
        dead_letters: dead,
        resumed_after,
        order_key,
        point,
        flavor: up.flavor,
        elapsed: started.elapsed(),
    })
}

/// A chunk read and converted, ready to land.
struct ReadChunk {
    changes: Vec<crate::model::change::Change>,
    refused: Vec<RefusedRow>,
    /// The key of its last row, as staged: where the next chunk starts.
    last: String,
    rows: usize,
}

/// Reads the snapshot's chunks in key order on the snapshot's connection, in a task of its own.
struct Reader {
    src: SourceTable,
    /// `chunk.sql` from the start, and after a key.
    first: crate::sql::Rendered,
    next: crate::sql::Rendered,
    chunk_rows: usize,
    /// Which columns are read as bytes.
    bytes: Vec<bool>,
}

impl Reader {
    /// Chunks after `after` (from the start: `None`), one ahead of the consumer; the connection
    /// back when every row is read.
    fn spawn(
        self,
        mut conn: Conn,
        mut after: Option<String>,
    ) -> (tokio::sync::mpsc::Receiver<Result<ReadChunk>>, tokio::task::JoinHandle<Result<Conn>>) {
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let handle = tokio::spawn(async move {
            let ctx = value_context();
            loop {
                let read = self.read(&mut conn, after.as_deref(), &ctx).await;
                let (full, last) = match &read {
                    Ok(Some(c)) => (c.rows == self.chunk_rows, Some(c.last.clone())),
                    Ok(None) => (false, None),
                    Err(_) => (false, None),
                };
                match read {
                    Ok(None) => break,
                    Ok(Some(chunk)) => {
                        if tx.send(Ok(chunk)).await.is_err() {
                            break;
                        }
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        break;
                    }
                }
                if !full {
                    break;
                }
                after = last;
            }
            Ok(conn)
        });
        (rx, handle)
    }

    /// The chunk after `after`; `None` past the last row.
    async fn read(
        &self,
        conn: &mut Conn,
        after: Option<&str>,
        ctx: &crate::codec::ValueContext,
    ) -> Result<Option<ReadChunk>> {
        let src = &self.src;
        let binds = match after {
            Some(k) => src.chunk_binds(&key_binds(src, k)?),
            None => Vec::new(),
        };
        let sql = if after.is_some() { &self.next } else { &self.first };
        let rows = conn
            .rows(sql.clone(), &binds, &self.bytes)
            .await
            .with_context(|| format!("reading upstream table {} after key {after:?}", src.name()))?;
        let Some(last_row) = rows.last() else { return Ok(None) };
        let last = raw_key_json(src, last_row);
        let mut changes = Vec::with_capacity(rows.len());
        let mut refused = Vec::new();
        for r in &rows {
            match read_row(src, r, ctx) {
                Ok(values) => changes.push(src.change(Op::Insert, src.key_of(&values), Some(values))),
                Err(error) => refused.push(RefusedRow { row: raw_row_json(src, r), key: raw_key_json(src, r), error }),
            }
        }
        Ok(Some(ReadChunk { changes, refused, last, rows: rows.len() }))
    }
}

/// Where the binlog is at the open snapshot: MariaDB says exactly; elsewhere unknown.
async fn binlog_position(up: &Upstream, conn: &mut Conn) -> String {
    let rows = match up.fixed(UpstreamStmt::BinlogSnapshot) {
        Ok(q) => conn.texts(q, &[]).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    let get = |name: &str| {
        rows.iter().find_map(|r| {
            let n = r.first()?.as_deref()?;
            let v = r.get(1)?.as_deref()?;
            (n.eq_ignore_ascii_case(name) && !v.is_empty()).then(|| v.to_string())
        })
    };
    match (get("Binlog_snapshot_file"), get("Binlog_snapshot_position")) {
        (Some(f), Some(p)) => format!("binlog {f}:{p}"),
        _ => "the moment the snapshot began (the binlog position is unknown: binlog off, or not MariaDB)".into(),
    }
}

/// The row as JSON text, values as read (for a refused row's dead letter).
fn raw_row_json(src: &SourceTable, row: &[Value]) -> String {
    src.change(Op::Insert, Vec::new(), Some(row.to_vec())).row_json().unwrap_or_default()
}
