//! Watching the schema the stream shows: new columns, wider types and incompatible ones are
//! noticed per record layout and recorded with the batch that first shows them; values are
//! held to the recorded types where those are stricter than the record's own.
//!
//! What landing knows of a table is a copy of the warehouse's record of it
//! ([`crate::warehouse::tables`]), tagged with its version: landing reloads it when the version
//! has moved (`tidemark resume`, another instance), and records schema news only under a lock
//! on the table's state that proves the copy current.

use std::collections::HashMap;
use std::sync::Arc;

use tracing::info;

use crate::codec::debezium::Hints;
use crate::model::change::{Change, Value};
use crate::model::schema::{compare, RecordSchema, SourceType, TypeChange};
use crate::warehouse::Recorded;

/// Layouts a table's cache remembers before it starts again (a stream whose layout changes with
/// every record must not grow memory without bound).
const MAX_LAYOUTS: usize = 256;

/// A column the stream shows differently from what is recorded.
#[derive(Debug, Clone)]
pub struct ColumnEvent {
    pub table: usize,
    pub name: String,
    /// The type the stream shows.
    pub ty: String,
    pub change: ColumnChange,
    /// The commit ts of the change that showed it: the replica follows with the merge that
    /// covers it.
    pub since: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnChange {
    Added,
    Widened,
    Incompatible,
}

/// Columns of a layout (by index) and the recorded types their values must conform to.
type ConformList = Arc<Vec<(usize, SourceType)>>;

/// Landing's copy of what the warehouse records of one table.
#[derive(Default)]
pub struct TableCache {
    /// The version of the warehouse's record this copy is of (`None`: not loaded yet).
    pub version: Option<i64>,
    /// Column → recorded type.
    columns: HashMap<String, String>,
    /// Incompatible types already reported (awaiting `tidemark resume`).
    pending: HashMap<String, String>,
    /// The types come from the table's source_ddl: they decide, and the stream's (often less
    /// precise: Avro's INT covers TINYINT..INT) only have to be of the same kind.
    ddl: bool,
    key: Option<Vec<String>>,
    /// Per layout fingerprint: its columns whose values must be conformed.
    conform: HashMap<u64, (Arc<RecordSchema>, ConformList)>,
    /// Layouts already checked against the recorded schema, by fingerprint.
    verified: HashMap<u64, Arc<RecordSchema>>,
    /// The recorded types, for records that carry none (Debezium without its schema part).
    hints: Option<Arc<Hints>>,
}

/// The same layout: the same allocation, or the same columns (a fingerprint match is checked).
fn same(a: &Arc<RecordSchema>, b: &Arc<RecordSchema>) -> bool {
    Arc::ptr_eq(a, b) || a.columns == b.columns
}

impl TableCache {
    /// A copy of `recorded` (or of nothing, for a table not registered yet).
    pub fn load(recorded: Option<Recorded>, ddl: bool) -> TableCache {
        let mut c = TableCache { ddl, ..Default::default() };
        if let Some(r) = recorded {
            c.version = Some(r.version);
            if let Some(s) = r.schema {
                c.columns = s.columns.into_iter().map(|col| (col.name, col.source_type)).collect();
                c.pending = s.pending;
                c.key = Some(s.key);
            }
        }
        c
    }

    /// The batch recorded these columns and key: the copy follows, so the next batch does not
    /// record them again.
    pub fn recorded(&mut self, columns: &[ColumnEvent], key: Option<&[String]>) {
        if !columns.is_empty() {
            self.conform.clear();
            self.verified.clear();
            self.hints = None;
        }
        for ev in columns {
            match ev.change {
                ColumnChange::Added | ColumnChange::Widened => self.columns.insert(ev.name.clone(), ev.ty.clone()),
                ColumnChange::Incompatible => self.pending.insert(ev.name.clone(), ev.ty.clone()),
            };
        }
        if let Some(k) = key {
            self.key.get_or_insert_with(|| k.to_vec());
        }
    }

    /// Remembers layouts checked by a landed batch.
    pub fn verified(&mut self, layouts: impl IntoIterator<Item = Arc<RecordSchema>>) {
        for l in layouts {
            if self.verified.len() >= MAX_LAYOUTS {
                self.verified.clear();
            }
            self.verified.insert(l.fingerprint, l);
        }
    }

    fn is_verified(&self, layout: &Arc<RecordSchema>) -> bool {
        self.verified.get(&layout.fingerprint).is_some_and(|v| same(v, layout))
    }

    /// The recorded column types, for records that carry none.
    /// The recorded key, if any.
    pub fn key(&self) -> Option<&[String]> {
        self.key.as_deref()
    }

    pub fn hints(&mut self) -> Option<Arc<Hints>> {
        if self.columns.is_empty() {
            return None;
        }
        let columns = &self.columns;
        Some(
            self.hints
                .get_or_insert_with(|| {
                    Arc::new(columns.iter().map(|(n, t)| (n.clone(), SourceType::parse(t))).collect())
                })
                .clone(),
        )
    }
}

/// What a batch shows of the schema that is not recorded yet.
#[derive(Default)]
pub struct SchemaNews {
    pub columns: Vec<ColumnEvent>,
    /// Keys named for the first time, per table index.
    pub keys: Vec<(usize, Vec<String>)>,
    /// Layouts checked by this batch, per table index.
    pub layouts: Vec<(usize, Arc<RecordSchema>)>,
}

impl SchemaNews {
    /// Whether the batch records anything about table `ti`.
    pub fn touches(&self, ti: usize) -> bool {
        self.columns.iter().any(|e| e.table == ti) || self.keys.iter().any(|(t, _)| *t == ti)
    }
}

/// Checks a change against table `ti`'s recorded schema; what is new goes to `news`.
pub fn check(cache: &TableCache, ti: usize, table: &str, c: &Change, news: &mut SchemaNews) -> Result<(), String> {
    let pending_key = news.keys.iter().find(|(t, _)| *t == ti).map(|(_, k)| k);
    match cache.key.as_ref().or(pending_key) {
        Some(k) if k.as_slice() != &*c.key_names => {
            return Err(format!(
                "the key of `{table}` changed upstream from {k:?} to {:?}: a replica keyed differently \
                 needs a new table",
                c.key_names
            ));
        }
        Some(_) => {}
        None => news.keys.push((ti, c.key_names.to_vec())),
    }
    if cache.is_verified(&c.schema) || news.layouts.iter().any(|(t, l)| *t == ti && same(l, &c.schema)) {
        return Ok(());
    }
    for col in &c.schema.columns {
        if news.columns.iter().any(|e| e.table == ti && e.name == col.name && e.ty == col.source_type) {
            continue;
        }
        let Some(change) = column_change(cache, &col.name, &col.source_type, &col.ty) else { continue };
        let recorded = cache.columns.get(&col.name).map(String::as_str).unwrap_or("-");
        match change {
            ColumnChange::Added => {
                info!(table, column = %col.name, source_type = %col.source_type, "new column in the stream")
            }
            ColumnChange::Widened => info!(table, column = %col.name, from = recorded, to = %col.source_type,
                "column widened upstream; the replica follows at the next merge"),
            ColumnChange::Incompatible => {
                tracing::error!(table, column = %col.name, from = recorded, to = %col.source_type,
                "incompatible type change upstream: the table's merges stop (its changes stay staged) until `tidemark resume`")
            }
        }
        let since = c.commit_ts.and_then(|t| i64::try_from(t).ok());
        news.columns.push(ColumnEvent {
            table: ti,
            name: col.name.clone(),
            ty: col.source_type.clone(),
            change,
            since,
        });
    }
    news.layouts.push((ti, c.schema.clone()));
    Ok(())
}

/// How a column the stream shows relates to what is recorded (`None`: nothing to record).
fn column_change(cache: &TableCache, name: &str, source_type: &str, ty: &SourceType) -> Option<ColumnChange> {
    match cache.columns.get(name) {
        None => Some(ColumnChange::Added),
        Some(recorded) if recorded.eq_ignore_ascii_case(source_type) => None,
        Some(_) if cache.pending.get(name).map(String::as_str) == Some(source_type) => None,
        Some(recorded) => match compare(&SourceType::parse(recorded), ty) {
            TypeChange::Fits => None,
            TypeChange::Widens if cache.ddl => None,
            TypeChange::Widens => Some(ColumnChange::Widened),
            TypeChange::Incompatible => Some(ColumnChange::Incompatible),
        },
    }
}

/// Values are checked against the recorded column types where those are stricter than the
/// record's own (a DECIMAL(5,2) or VARCHAR(24) from source_ddl for canal-json's bare
/// `decimal`/`varchar`, ENUM members for an index).
pub fn conform(cache: &mut TableCache, c: &mut Change) -> Result<(), String> {
    if cache.columns.is_empty() {
        return Ok(());
    }
    let list = conform_list(cache, &c.schema);
    for (i, ty) in list.iter() {
        let name = &c.schema.columns[*i].name;
        let fix = |v: &mut Value| -> Result<(), String> {
            let conformed = crate::codec::text_values::conform(ty, v)
                .map_err(|e| format!("column `{name}` (recorded as {}): {e}", cache.columns[name]))?;
            *v = conformed;
            Ok(())
        };
        if let Some(row) = c.row.as_mut() {
            fix(&mut row[*i])?;
        }
        if let Some(k) = c.key_names.iter().position(|k| k == name) {
            fix(&mut c.key[k])?;
        }
    }
    Ok(())
}

/// The columns of `layout` whose values must be conformed to a stricter recorded type.
fn conform_list(cache: &mut TableCache, layout: &Arc<RecordSchema>) -> ConformList {
    if let Some((l, list)) = cache.conform.get(&layout.fingerprint) {
        if same(l, layout) {
            return list.clone();
        }
    }
    let mut list = Vec::new();
    for (i, col) in layout.columns.iter().enumerate() {
        let Some(recorded) = cache.columns.get(&col.name) else { continue };
        if recorded.eq_ignore_ascii_case(&col.source_type) {
            continue;
        }
        let ty = SourceType::parse(recorded);
        // Only where the stream's type fits the recorded one: a widening (the replica follows)
        // or an incompatible change (the table stops) keeps its values as they are. With a
        // source_ddl the DDL's types always decide.
        let fits = match compare(&ty, &col.ty) {
            TypeChange::Fits => true,
            TypeChange::Widens => cache.ddl,
            TypeChange::Incompatible => false,
        };
        if fits && crate::codec::text_values::needs_conform(&ty) {
            list.push((i, ty));
        }
    }
    let list = Arc::new(list);
    if cache.conform.len() >= MAX_LAYOUTS {
        cache.conform.clear();
    }
    cache.conform.insert(layout.fingerprint, (layout.clone(), list.clone()));
    list
}

/// The metadata statements a batch's schema news needs, with their parameters, per table
/// index. An incompatible column also stops its table.
pub fn statements(news: &SchemaNews, table_name: impl Fn(usize) -> String) -> Vec<(usize, Statement)> {
    use crate::sql::Stmt;
    use crate::warehouse::db::Bind;
    let mut out = Vec::new();
    for ev in &news.columns {
        let table = table_name(ev.table);
        let args = vec![Bind::Text(table.clone()), Bind::Text(ev.name.clone()), Bind::Text(ev.ty.clone())];
        let with_since = || {
            let mut a = args.clone();
            a.push(Bind::OptI64(ev.since));
            a
        };
        match ev.change {
            ColumnChange::Added => out.push((ev.table, (Stmt::AddSourceColumn, with_since()))),
            ColumnChange::Widened => out.push((ev.table, (Stmt::WidenColumn, with_since()))),
            ColumnChange::Incompatible => {
                let reason = format!(
                    "column `{}` changed upstream to {}, which its replica column cannot take in place; \
                     alter the replica if needed, then run `tidemark resume --table {}`",
                    ev.name, ev.ty, table
                );
                out.push((ev.table, (Stmt::StopColumn, args)));
                let stop = vec![Bind::Text(table), Bind::Text(reason), Bind::OptI64(ev.since)];
                out.push((ev.table, (Stmt::StopTable, stop)));
            }
        }
    }
    for (ti, key) in &news.keys {
        let key = serde_json::to_string(key).unwrap_or_else(|_| "[]".into());
        out.push((*ti, (Stmt::SetKey, vec![Bind::Text(table_name(*ti)), Bind::Text(key)])));
    }
    out
}

/// A metadata statement and its parameters.
pub type Statement = (crate::sql::Stmt, Vec<crate::warehouse::db::Bind>);
