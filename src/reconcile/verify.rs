//! `tidemark verify`: the replica against its upstream table, row by row, saying exactly how
//! they differ — keys missing from the replica, extra in it, or different, with the differing
//! columns.
//!
//! Two passes of bounded chunks, whatever the two databases' collations: upstream in its key
//! order, each chunk's keys looked up in the replica (missing, different); then the replica in
//! its key order, each chunk's keys looked up upstream (extra). Values are compared in one
//! canonical text per column kind (`canonical`). A live table differs where the replica lags:
//! keys found different are read again on both sides after the table's next merge (or after
//! `settle`, when no merge comes) and only those still different are reported.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::Serialize;

use super::canonical::canonical;
use super::progress::Progress;
use super::snapshot::{self, BEFORE_THE_STREAM};
use crate::config::Table;
use crate::from_row;
use crate::land::snapshot::RefusedRow;
use crate::land::Lander;
use crate::model::change::{write_json_str, Op, Value};
use crate::model::schema::Kind;
use crate::sql::{Stmt, TableCtx, UpstreamStmt};
use crate::upstream::{
    key_binds, key_binds_of_texts, key_texts, raw_key_json, read_row, staged_text, value_context, Conn, Flavor,
    KeyBind, RawRow, SourceTable, Upstream,
};
use crate::warehouse::db::Bind;
use crate::warehouse::Warehouse;

/// Differences listed in full; beyond, only counted.
const LISTED: usize = 10_000;

/// Differences kept to be read again (memory stays bounded whatever the tables hold); beyond,
/// only counted, unchecked.
const KEPT: usize = 100_000;

/// Rounds of re-reading what differs, each after the table's next merge, at least; while keys
/// still differ and merges keep coming, the rounds go on for up to `settle` in all.
const RECHECKS: usize = 3;

/// Keys looked up upstream per statement (MySQL takes at most 65,535 placeholders).
const LOOKUP: usize = 1000;

#[derive(Debug, Clone)]
pub struct VerifyOptions {
    pub chunk_rows: usize,
    /// How long to wait for the table's next merge before differences are read again.
    pub settle: Duration,
    pub progress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// Upstream holds the key, the replica does not.
    Missing,
    /// The replica holds the key, upstream does not.
    Extra,
    /// Both hold it with different values.
    Different,
}

#[derive(Debug, Clone, Serialize)]
pub struct ColumnDiff {
    pub column: String,
    pub replica: Option<String>,
    pub upstream: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Difference {
    /// The key object, as staged: `{"id":"5"}`.
    pub key: serde_json::Value,
    pub kind: DiffKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<ColumnDiff>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub table: String,
    pub source: String,
    pub equal: bool,
    pub upstream_rows: u64,
    pub replica_rows: u64,
    /// Columns one side has and the other has not.
    pub column_differences: Vec<String>,
    pub differences: Vec<Difference>,
    /// Differences beyond those listed.
    pub not_listed: u64,
    /// Whether differences found were read again after a merge (or the settle time).
    pub rechecked: bool,
    /// TiDB: the TSO upstream was read as of — the replica's consistent point.
    pub as_of: Option<i64>,
    /// Corrective changes landed (`--fix`).
    pub fixed: u64,
    pub elapsed_ms: u64,
}

impl VerifyReport {
    /// Human lines: a summary, then one line per difference.
    pub fn describe(&self) -> String {
        let n = self.differences.len() as u64 + self.not_listed;
        let mut out = format!(
            "{}: {} upstream rows ({}), {} replica rows: {}",
            self.table,
            self.upstream_rows,
            self.source,
            self.replica_rows,
            if self.equal { "equal".to_string() } else { format!("{n} differences") }
        );
        if let Some(p) = self.as_of {
            out.push_str(&format!(
                "\n  upstream read as of TSO {p} ({}), the replica's consistent point",
                crate::model::tso::describe(p)
            ));
        }
        for c in &self.column_differences {
            out.push_str(&format!("\n  column   {c}"));
        }
        for d in &self.differences {
            let key = d.key.to_string();
            match d.kind {
                DiffKind::Missing => out.push_str(&format!("\n  missing  {key} (upstream, not in the replica)")),
                DiffKind::Extra => out.push_str(&format!("\n  extra    {key} (in the replica, not upstream)")),
                DiffKind::Different => {
                    let cols: Vec<String> = d
                        .columns
                        .iter()
                        .map(|c| {
                            format!("{}: replica {}, upstream {}", c.column, shown(&c.replica), shown(&c.upstream))
                        })
                        .collect();
                    out.push_str(&format!("\n  differs  {key}: {}", cols.join("; ")));
                }
            }
        }
        if self.not_listed > 0 {
            out.push_str(&format!("\n  … and {} more", self.not_listed));
        }
        if self.fixed > 0 {
            out.push_str(&format!(
                "\n  {} corrective changes landed: the next merge repairs the replica (then verify again)",
                self.fixed
            ));
        }
        out
    }
}

fn shown(v: &Option<String>) -> String {
    match v {
        None => "NULL".into(),
        Some(s) => {
            let mut out = String::new();
            let cut: String = s.chars().take(200).collect();
            write_json_str(&mut out, &cut);
            if cut.len() < s.len() {
                out.push('…');
            }
            out
        }
    }
}

/// Keys found different in the passes, kept up to [`KEPT`].
#[derive(Default)]
struct Found {
    keys: Vec<(String, DiffKind)>,
    more: u64,
}

impl Found {
    fn push(&mut self, key: String, kind: DiffKind) {
        if self.keys.len() < KEPT {
            self.keys.push((key, kind));
        } else {
            self.more += 1;
        }
    }
}

/// The columns compared, as (name, kind, index upstream, index in the replica).
struct Compared {
    cols: Vec<(String, Kind, usize, usize)>,
    /// Per key column (key order): its index in the replica's columns, and its kind.
    replica_key: Vec<usize>,
    key_kinds: Vec<Kind>,
}

/// A row reduced for comparison: its key's canonical text, the staged key object, and each
/// compared column's canonical text (and the text shown).
#[derive(Debug, Clone)]
struct Canon {
    key_json: String,
    /// The key's canonical text ([`canon_key_texts`]).
    key: String,
    values: Vec<Option<(String, String)>>,
}

/// `status_last_merge`: which merge finished last.
struct MergeSeen {
    finished_at: String,
}
from_row!(MergeSeen { finished_at });

/// `status_staging`: how many rows wait.
struct Staged {
    staged_rows: i64,
}
from_row!(Staged { staged_rows });

/// Verifies one table; with `lander`, lands corrective changes for what differs (`--fix`).
pub async fn verify(
    up: &Upstream,
    wh: &Warehouse,
    table: &Table,
    opts: &VerifyOptions,
    lander: Option<&mut Lander>,
) -> Result<VerifyReport> {
    let started = Instant::now();
    let name = table.name.as_str();
    let src = up.describe(table.source.as_ref(), name).await?;
    let schema = wh
        .schema(name)
        .await?
        .with_context(|| format!("table `{name}` has no replica yet (nothing landed): snapshot it first"))?;
    let t = TableCtx::new(name, &schema);
    let mut column_differences = Vec::new();
    let mut cols = Vec::new();
    for (ri, c) in schema.columns.iter().enumerate() {
        match src.schema.columns.iter().position(|u| u.name == c.name) {
            Some(ui) => cols.push((c.name.clone(), c.ty.kind.clone(), ui, ri)),
            None => column_differences.push(format!("`{}` is in the replica, not upstream", c.name)),
        }
    }
    for u in &src.schema.columns {
        if schema.column(&u.name).is_none() {
            column_differences.push(format!("`{}` is upstream, not in the replica", u.name));
        }
    }
    let replica_key: Vec<usize> = src
        .key_names
        .iter()
        .map(|k| schema.columns.iter().position(|c| &c.name == k))
        .collect::<Option<_>>()
        .with_context(|| format!("the replica of `{name}` lacks upstream's key ({})", src.key_names.join(", ")))?;
    let key_kinds = src.key_index.iter().map(|&i| src.schema.columns[i].ty.kind.clone()).collect();
    let compared = Compared { cols, replica_key, key_kinds };

    let mut conn = up.acquire().await?;
    let as_of = read_as_of(up, wh, name, &mut conn).await?;

    // The two passes run side by side (each on its own upstream connection), so that each
    // database works while tidemark compares what the other returned.
    let estimate = up.estimate_rows(&src).await;
    let progress = std::sync::Mutex::new(Progress::new(format!("verify {name}"), estimate * 2, 0));
    let mut conn2 = up.acquire().await?;
    if let Some(p) = as_of {
        set_as_of(up, &mut conn2, p).await?;
    }
    let pass = Pass { up, wh, src: &src, t: &t, compared: &compared, opts, progress: &progress, bytes: src.bytes() };
    let ((upstream_rows, missing), (replica_rows_n, extra)) =
        tokio::try_join!(pass.upstream_side(&mut conn), pass.replica_side(&mut conn2))?;
    drop(conn2);
    let mut found = Found::default();
    for (k, kind) in missing.keys.into_iter().chain(extra.keys) {
        found.push(k, kind);
    }
    found.more += missing.more + extra.more;
    let progress = progress.into_inner().unwrap_or_else(|e| e.into_inner());
    progress.finish();

    // What differs may only lag: read it again after the next merge.
    let rechecked = !found.keys.is_empty();
    let mut as_of = as_of;
    // A key changed upstream just before a re-check is read may not have reached the replica by
    // then: a key is reported only when it differed in every round (RECHECKS of them, each after
    // the next merge, and more while merges keep coming, for up to `settle` in all — a stream
    // lagging a few merges behind a hot key is no difference), or when nothing is staged any
    // more to bring the replica along.
    let mut differences = Vec::new();
    let mut pending = found.keys;
    let rechecking = Instant::now();
    for round in 0.. {
        if pending.is_empty() || (round >= RECHECKS && rechecking.elapsed() >= opts.settle) {
            break;
        }
        // As of a point, upstream is read where the replica stands: no merge to wait for, only
        // the point it has moved to since.
        let waited = match as_of {
            Some(_) => {
                as_of = read_as_of(up, wh, name, &mut conn).await?;
                false
            }
            None => wait_for_merge(wh, &t, opts.settle).await?,
        };
        differences = recheck(up, &mut conn, wh, &src, &t, &compared, &pending, opts.chunk_rows).await?;
        if !waited {
            break;
        }
        pending = differences.iter().map(|d| (d.key.to_string(), d.kind)).collect();
    }
    let mut fixed = 0;
    if let Some(lander) = lander {
        if !differences.is_empty() {
            if as_of.is_some() {
                conn.run(up.fixed(UpstreamStmt::TidbSnapshotClear)?).await?;
            }
            fixed = fix(up, &mut conn, wh, lander, name, src.clone(), &differences, opts.chunk_rows).await?;
        }
    }
    let total = differences.len() + found.more as usize;
    let listed: Vec<Difference> = differences.into_iter().take(LISTED).collect();
    Ok(VerifyReport {
        table: name.into(),
        source: src.name(),
        equal: total == 0 && column_differences.is_empty(),
        upstream_rows,
        replica_rows: replica_rows_n,
        column_differences,
        not_listed: (total - listed.len()) as u64,
        differences: listed,
        rechecked,
        as_of,
        fixed,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// What both passes read with.
struct Pass<'a> {
    up: &'a Upstream,
    wh: &'a Warehouse,
    src: &'a SourceTable,
    t: &'a TableCtx,
    compared: &'a Compared,
    opts: &'a VerifyOptions,
    progress: &'a std::sync::Mutex<Progress>,
    /// Which of the upstream table's columns are read as bytes.
    bytes: Vec<bool>,
}

impl Pass<'_> {
    fn advance(&self, rows: usize) {
        if self.opts.progress {
            self.progress.lock().unwrap_or_else(|e| e.into_inner()).advance(rows as u64);
        }
    }

    /// Pass 1: upstream in key order; each chunk's keys in the replica (missing, different).
    async fn upstream_side(&self, conn: &mut Conn) -> Result<(u64, Found)> {
        let (up, src, compared) = (self.up, self.src, self.compared);
        let mut found = Found::default();
        let mut rows_seen = 0u64;
        let mut after: Option<String> = None;
        let ctx = value_context();
        loop {
            let binds = after.as_deref().map(|k| key_binds(src, k)).transpose()?.map(|b| src.chunk_binds(&b));
            let q = up.render(
                UpstreamStmt::Chunk,
                src,
                &[("rows", self.opts.chunk_rows.into()), ("after", binds.is_some().into())],
            )?;
            let binds = binds.unwrap_or_default();
            let rows = conn
                .rows(q, &binds, &self.bytes)
                .await
                .with_context(|| format!("reading upstream table {} after key {after:?}", src.name()))?;
            let Some(last) = rows.last() else { break };
            after = Some(raw_key_json(src, last));
            let full = rows.len() == self.opts.chunk_rows;
            rows_seen += rows.len() as u64;
            let ups: Vec<Canon> = rows.iter().map(|r| upstream_canon(src, compared, r, &ctx)).collect();
            let keys: Vec<&str> = ups.iter().map(|c| c.key_json.as_str()).collect();
            let reps = replica_rows(self.wh, self.t, compared, &keys).await?;
            for u in &ups {
                match reps.get(&u.key) {
                    None => found.push(u.key_json.clone(), DiffKind::Missing),
                    Some(r) if !diff_columns(compared, r, u).is_empty() => {
                        found.push(u.key_json.clone(), DiffKind::Different)
                    }
                    Some(_) => {}
                }
            }
            self.advance(rows.len());
            if !full {
                break;
            }
        }
        Ok((rows_seen, found))
    }

    /// Pass 2: the replica in its key order; each chunk's keys upstream (extra).
    async fn replica_side(&self, conn: &mut Conn) -> Result<(u64, Found)> {
        let (wh, src, compared) = (self.wh, self.src, self.compared);
        let mut found = Found::default();
        let mut rows_seen = 0u64;
        let mut after: Option<String> = None;
        loop {
            let q = wh.sql.render(
                Stmt::VerifyKeys,
                self.t,
                &[("rows", self.opts.chunk_rows.into()), ("after", after.is_some().into())],
            )?;
            let binds: Vec<Bind> = after.iter().map(|a| Bind::Text(a.clone())).collect();
            let rows = wh
                .pool
                .fetch_rows(q, &binds)
                .await
                .with_context(|| format!("reading the replica `{}`'s keys", self.t.name))?;
            if rows.is_empty() {
                break;
            }
            let full = rows.len() == self.opts.chunk_rows;
            rows_seen += rows.len() as u64;
            let keys: Vec<Vec<Option<String>>> =
                rows.iter().map(|r| r.cells().iter().map(|c| c.to_text()).collect()).collect();
            after = keys.last().map(|k| key_object(src, k));
            let present = upstream_keys(self.up, conn, src, compared, &keys).await?;
            for k in &keys {
                if !present.contains(&canon_key_texts(compared, k)) {
                    found.push(key_object(src, k), DiffKind::Extra);
                }
            }
            self.advance(rows.len());
            if !full {
                break;
            }
        }
        Ok((rows_seen, found))
    }
}

async fn set_as_of(up: &Upstream, conn: &mut Conn, point: i64) -> Result<()> {
    conn.exec(up.fixed(UpstreamStmt::TidbSnapshotAt)?, &[KeyBind::Text(point.to_string())])
        .await
        .with_context(|| format!("reading {} as of TSO {point}", up.shown))?;
    Ok(())
}

/// TiDB: reads of `conn` from now on see upstream as of the replica's consistent point (its
/// last watermark-gated merge), which is returned; elsewhere, and before any such merge, `None`.
async fn read_as_of(up: &Upstream, wh: &Warehouse, table: &str, conn: &mut Conn) -> Result<Option<i64>> {
    if up.flavor != Flavor::Tidb {
        return Ok(None);
    }
    let Some(point) = wh.table(table).await?.and_then(|r| r.merged_point) else { return Ok(None) };
    set_as_of(up, conn, point).await?;
    Ok(Some(point))
}

/// Waits until a merge of the table finishes (when rows are staged), at most `settle`. Whether
/// it waited: with nothing staged (or no settle time) the replica has nothing to catch up with.
async fn wait_for_merge(wh: &Warehouse, t: &TableCtx, settle: Duration) -> Result<bool> {
    let staged: Staged = wh.pool.fetch_one(wh.sql.render(Stmt::StatusStaging, t, &[])?, &[]).await?;
    if staged.staged_rows == 0 || settle.is_zero() {
        return Ok(false);
    }
    let last = || async {
        let seen: Option<MergeSeen> =
            wh.pool.fetch_optional(wh.sql.fixed(Stmt::StatusLastMerge)?, &[Bind::Text(t.name.clone())]).await?;
        anyhow::Ok(seen.map(|m| m.finished_at))
    };
    let before = last().await?;
    let until = Instant::now() + settle;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(250)).await;
        if last().await? != before {
            return Ok(true);
        }
    }
    Ok(true)
}

/// The differences among `found` that remain when both sides are read again.
#[allow(clippy::too_many_arguments)]
async fn recheck(
    up: &Upstream,
    conn: &mut Conn,
    wh: &Warehouse,
    src: &SourceTable,
    t: &TableCtx,
    compared: &Compared,
    found: &[(String, DiffKind)],
    chunk: usize,
) -> Result<Vec<Difference>> {
    let ctx = value_context();
    let mut out = Vec::new();
    for part in found.chunks(chunk.clamp(1, LOOKUP)) {
        let keys: Vec<&str> = part.iter().map(|(k, _)| k.as_str()).collect();
        let ups = upstream_rows_by_key(up, conn, src, compared, &keys, &ctx).await?;
        let reps = replica_rows(wh, t, compared, &keys).await?;
        for (key_json, _) in part {
            let texts = key_texts(src, key_json)?;
            let k = canon_key_texts(compared, &texts);
            let key = serde_json::from_str(key_json).unwrap_or(serde_json::Value::Null);
            match (ups.get(&k), reps.get(&k)) {
                (None, None) => {}
                (Some(_), None) => out.push(Difference { key, kind: DiffKind::Missing, columns: Vec::new() }),
                (None, Some(_)) => out.push(Difference { key, kind: DiffKind::Extra, columns: Vec::new() }),
                (Some(u), Some(r)) => {
                    let columns = diff_columns(compared, r, u);
                    if !columns.is_empty() {
                        out.push(Difference { key, kind: DiffKind::Different, columns });
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Lands what the replica needs to equal upstream: each differing or missing key's row read
/// fresh, a delete of each extra key — ordered like a snapshot's rows, so a change the stream
/// carries for the key still wins.
#[allow(clippy::too_many_arguments)]
async fn fix(
    up: &Upstream,
    conn: &mut Conn,
    wh: &Warehouse,
    lander: &mut Lander,
    name: &str,
    src: SourceTable,
    differences: &[Difference],
    chunk: usize,
) -> Result<u64> {
    let order_key = match up.flavor {
        Flavor::Tidb => None,
        _ => Some(BEFORE_THE_STREAM),
    };
    let mut g = snapshot::begin(up, wh, name, src.clone(), None).await?;
    let order_key = match order_key {
        Some(k) => k,
        None => snapshot::state(wh, name).await?.map(|s| s.order_key).unwrap_or(BEFORE_THE_STREAM),
    };
    let ctx = value_context();
    let mut landed = 0u64;
    for part in differences.chunks(chunk.clamp(1, LOOKUP)) {
        let keys: Vec<String> = part.iter().map(|d| d.key.to_string()).collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let rows = fetch_by_key(up, conn, &src, &refs).await?;
        let mut changes = Vec::new();
        let mut refused = Vec::new();
        let mut present = std::collections::HashSet::new();
        for r in &rows {
            match read_row(&src, r, &ctx) {
                Ok(values) => {
                    present.insert(src.key_json(&values));
                    changes.push(src.change(Op::Insert, src.key_of(&values), Some(values)));
                }
                Err(error) => {
                    let key = raw_key_json(&src, r);
                    present.insert(key.clone());
                    refused.push(RefusedRow { row: String::new(), key, error });
                }
            }
        }
        for d in part.iter().filter(|d| d.kind == DiffKind::Extra) {
            let key_json = d.key.to_string();
            if present.contains(&key_json) {
                continue;
            }
            let texts = key_texts(&src, &key_json)?;
            let key: Vec<Value> = texts
                .iter()
                .zip(src.key_index.iter())
                .map(|(t, &i)| staged_value(&src.schema.columns[i].ty.kind, t.as_deref()))
                .collect();
            changes.push(src.change(Op::Delete, key, None));
        }
        let n = (changes.len() + refused.len()) as u64;
        let last = keys.last().cloned().unwrap_or_default();
        snapshot::land(lander, name, &mut g, order_key, changes, refused, last).await?;
        landed += n;
    }
    snapshot::finish(wh, name, &g).await?;
    Ok(landed)
}

/// A staged key text back as a value (bytes from hex).
fn staged_value(kind: &Kind, text: Option<&str>) -> Value {
    match (kind, text) {
        (_, None) => Value::Null,
        (Kind::Bytes | Kind::Bit, Some(h)) => {
            let bytes: Option<Vec<u8>> =
                (0..h.len()).step_by(2).map(|i| h.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
            bytes.map(Value::Bytes).unwrap_or_else(|| Value::Text(h.to_string()))
        }
        (_, Some(s)) => Value::Text(s.to_string()),
    }
}

/// Upstream rows of the keys (staged key objects), as read.
async fn fetch_by_key(up: &Upstream, conn: &mut Conn, src: &SourceTable, keys: &[&str]) -> Result<Vec<RawRow>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let binds: Vec<KeyBind> = keys.iter().map(|k| key_binds(src, k)).collect::<Result<Vec<_>>>()?.concat();
    let q = up.render(UpstreamStmt::RowsByKey, src, &[("rows", keys.len().into())])?;
    conn.rows(q, &binds, &src.bytes())
        .await
        .with_context(|| format!("reading {} rows of upstream table {} by key", keys.len(), src.name()))
}

async fn upstream_rows_by_key(
    up: &Upstream,
    conn: &mut Conn,
    src: &SourceTable,
    compared: &Compared,
    keys: &[&str],
    ctx: &crate::codec::text_values::ValueContext,
) -> Result<HashMap<String, Canon>> {
    let rows = fetch_by_key(up, conn, src, keys).await?;
    Ok(rows
        .iter()
        .map(|r| {
            let c = upstream_canon(src, compared, r, ctx);
            (c.key.clone(), c)
        })
        .collect())
}

/// Which of the replica's keys (as text) upstream holds, as canonical keys.
async fn upstream_keys(
    up: &Upstream,
    conn: &mut Conn,
    src: &SourceTable,
    compared: &Compared,
    keys: &[Vec<Option<String>>],
) -> Result<std::collections::HashSet<String>> {
    let mut present = std::collections::HashSet::new();
    for part in keys.chunks(LOOKUP) {
        let mut binds = Vec::new();
        for k in part {
            binds.extend(key_binds_of_texts(src, k)?);
        }
        let q = up.render(UpstreamStmt::KeysPresent, src, &[("rows", part.len().into())])?;
        let rows = conn
            .rows(q, &binds, &src.key_bytes())
            .await
            .with_context(|| format!("looking up {} keys in upstream table {}", part.len(), src.name()))?;
        for r in &rows {
            let texts: Vec<Option<String>> = r.iter().map(staged_text).collect();
            present.insert(canon_key_texts(compared, &texts));
        }
    }
    Ok(present)
}

/// The replica rows of `keys` (staged key objects), by canonical key.
async fn replica_rows(
    wh: &Warehouse,
    t: &TableCtx,
    compared: &Compared,
    keys: &[&str],
) -> Result<HashMap<String, Canon>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let array = format!("[{}]", keys.join(","));
    let rows = wh
        .pool
        .fetch_rows(wh.sql.render(Stmt::VerifyRows, t, &[])?, &[Bind::Text(array)])
        .await
        .with_context(|| format!("reading {} rows of the replica `{}` by key", keys.len(), t.name))?;
    let mut out = HashMap::with_capacity(rows.len());
    for r in rows {
        let texts: Vec<Option<String>> = r.cells().iter().map(|c| c.to_text()).collect();
        let values = compared
            .cols
            .iter()
            .map(|(_, kind, _, ri)| texts[*ri].as_ref().map(|s| (canonical(kind, s), s.clone())))
            .collect();
        let key: Vec<Option<String>> = compared.replica_key.iter().map(|&i| texts[i].clone()).collect();
        let k = canon_key_texts(compared, &key);
        out.insert(k.clone(), Canon { key_json: String::new(), key: k, values });
    }
    Ok(out)
}

/// An upstream row for comparison. A value the column type does not take is compared as read.
fn upstream_canon(
    src: &SourceTable,
    compared: &Compared,
    row: &[Value],
    ctx: &crate::codec::text_values::ValueContext,
) -> Canon {
    let values: Vec<Value> = match read_row(src, row, ctx) {
        Ok(v) => v,
        Err(_) => row.to_vec(),
    };
    let key_json = src.key_json(&values);
    let key_texts: Vec<Option<String>> = src.key_index.iter().map(|&i| staged_text(&values[i])).collect();
    let key = canon_key_texts(compared, &key_texts);
    let values = compared
        .cols
        .iter()
        .map(|(_, kind, ui, _)| staged_text(&values[*ui]).map(|s| (canonical(kind, &s), s)))
        .collect();
    Canon { key_json, key, values }
}

fn canon_one(kind: &Kind, v: &Option<String>) -> String {
    match v {
        Some(s) => canonical(kind, s),
        None => "\u{0}".into(),
    }
}

fn canon_key_texts(compared: &Compared, texts: &[Option<String>]) -> String {
    texts.iter().zip(&compared.key_kinds).map(|(t, kind)| canon_one(kind, t)).collect::<Vec<_>>().join("\u{1}")
}

/// A staged key object from key values as text.
fn key_object(src: &SourceTable, texts: &[Option<String>]) -> String {
    let mut out = String::from("{");
    for (i, (name, v)) in src.key_names.iter().zip(texts).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(&mut out, name);
        out.push(':');
        match v {
            Some(s) => write_json_str(&mut out, s),
            None => out.push_str("null"),
        }
    }
    out.push('}');
    out
}

/// The compared columns whose canonical texts differ.
fn diff_columns(compared: &Compared, replica: &Canon, upstream: &Canon) -> Vec<ColumnDiff> {
    compared
        .cols
        .iter()
        .enumerate()
        .filter(|(i, _)| replica.values[*i].as_ref().map(|v| &v.0) != upstream.values[*i].as_ref().map(|v| &v.0))
        .map(|(i, (name, ..))| ColumnDiff {
            column: name.clone(),
            replica: replica.values[i].as_ref().map(|v| v.1.clone()),
            upstream: upstream.values[i].as_ref().map(|v| v.1.clone()),
        })
        .collect()
}
