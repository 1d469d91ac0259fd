//! Change records: what every decoder produces and the staging table stores.
//!
//! A decoder turns a Kafka record into a [`RowEvent`] (upstream table, operation, row images).
//! [`RowEvent::into_changes`] applies the key, once, for every format: an update whose key
//! changed becomes a delete of the old key plus an upsert of the new one.

use std::fmt::Write as _;
use std::sync::Arc;

use crate::model::schema::RecordSchema;

/// A column value after decoding: exact text, raw bytes, or SQL NULL.
/// Numbers, decimals, dates and times are text in canonical form; the merge casts them to
/// the replica's types, so no digit is ever rounded through a float.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Null,
    Text(String),
    Bytes(Vec<u8>),
    /// Not sent: the column kept its value (Debezium's placeholder for an unchanged TOASTed
    /// column). Left out of the staged row, so the merge keeps what the replica holds.
    Unchanged,
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// Appends the value as JSON: strings stay strings, bytes become a hex string, NULL is null.
    pub fn write_json(&self, out: &mut String) {
        match self {
            Value::Null | Value::Unchanged => out.push_str("null"),
            Value::Text(s) => write_json_str(out, s),
            Value::Bytes(b) => {
                out.push('"');
                push_hex(out, b);
                out.push('"');
            }
        }
    }
}

pub fn push_hex(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(bytes.len() * 2);
    for b in bytes {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
}

/// Appends `s` as a JSON string literal.
pub fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{:04x}", c as u32);
        } else {
            out.push_str(esc);
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The upstream operation of a change, as staged (`_tm_op`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Insert,
    Update,
    Delete,
}

impl Op {
    pub fn code(self) -> &'static str {
        match self {
            Op::Insert => "c",
            Op::Update => "u",
            Op::Delete => "d",
        }
    }
}

/// One row change as a decoder sees it, before the key is applied.
#[derive(Debug)]
pub struct RowEvent {
    pub source_db: String,
    pub source_table: String,
    pub schema: Arc<RecordSchema>,
    pub op: Op,
    /// The new row image (insert, update), aligned with `schema.columns`.
    pub after: Option<Vec<Value>>,
    /// The old row image (update, delete); `None` entries are columns the record left out.
    pub before: Option<Vec<Option<Value>>>,
    /// The upstream order key when the record carries one: TiDB's commit TSO (PostgreSQL's
    /// LSN for Debezium's Postgres connector). Records without one (TiCDC Avro deletes,
    /// tombstones) are ordered by their position in the partition instead.
    pub commit_ts: Option<u64>,
    /// Upstream commit time, epoch milliseconds, when known (for freshness, not order).
    pub commit_ms: Option<i64>,
    /// Key columns the stream names (canal-json `pkNames`); may be empty.
    pub key_names: Vec<String>,
    /// The record carries only the key columns (TiCDC large-message handle-key-only).
    pub key_only: bool,
}

/// A change ready for staging: one key, one operation, the full row for upserts.
#[derive(Debug, Clone)]
pub struct Change {
    pub op: Op,
    pub schema: Arc<RecordSchema>,
    /// Key column names, in key order.
    pub key_names: Arc<[String]>,
    /// Key values, aligned with `key_names`.
    pub key: Vec<Value>,
    /// Row image aligned with `schema.columns`; `None` for a delete.
    pub row: Option<Vec<Value>>,
    pub commit_ts: Option<u64>,
    pub commit_ms: Option<i64>,
    /// Index of this change among those decoded from one Kafka record.
    pub sub: u16,
}

impl Change {
    pub fn is_delete(&self) -> bool {
        self.op == Op::Delete
    }

    /// `{"k1":"v1",...}` in key order.
    pub fn key_json(&self) -> String {
        let mut out = String::with_capacity(16 * self.key.len() + 2);
        out.push('{');
        for (i, (name, v)) in self.key_names.iter().zip(&self.key).enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(&mut out, name);
            out.push(':');
            v.write_json(&mut out);
        }
        out.push('}');
        out
    }

    /// The first column whose value PostgreSQL cannot store: text holding the NUL character,
    /// or JSON holding its `\u0000` escape (neither text nor jsonb take it).
    pub fn column_with_nul(&self) -> Option<&str> {
        let bad = |v: &Value, json: bool| match v {
            Value::Text(s) => s.contains('\0') || (json && s.contains("\\u0000")),
            _ => false,
        };
        let is_json = |name: &str| {
            self.schema.columns.iter().any(|c| c.name == name && c.ty.kind == crate::model::schema::Kind::Json)
        };
        if let Some((n, _)) = self.key_names.iter().zip(&self.key).find(|(n, v)| bad(v, is_json(n))) {
            return Some(n);
        }
        let row = self.row.as_ref()?;
        self.schema
            .columns
            .iter()
            .zip(row)
            .find(|(c, v)| bad(v, c.ty.kind == crate::model::schema::Kind::Json))
            .map(|(c, _)| c.name.as_str())
    }

    /// Whether the row image leaves columns out ([`Value::Unchanged`]).
    pub fn is_partial(&self) -> bool {
        self.row.as_ref().is_some_and(|r| r.contains(&Value::Unchanged))
    }

    /// The row image as a JSON object, `None` for a delete; unchanged columns left out.
    pub fn row_json(&self) -> Option<String> {
        let row = self.row.as_ref()?;
        let mut out = String::with_capacity(24 * row.len() + 2);
        out.push('{');
        let present = self.schema.columns.iter().zip(row).filter(|(_, v)| **v != Value::Unchanged);
        for (i, (col, v)) in present.enumerate() {
            if i > 0 {
                out.push(',');
            }
            write_json_str(&mut out, &col.name);
            out.push(':');
            v.write_json(&mut out);
        }
        out.push('}');
        Some(out)
    }
}

impl RowEvent {
    /// Applies the key: `key_override` (from the config) wins over the key the stream names.
    pub fn into_changes(self, key_override: Option<&[String]>) -> Result<Vec<Change>, String> {
        let key_names: Vec<String> = match key_override {
            Some(k) => k.to_vec(),
            None => self.key_names.clone(),
        };
        if key_names.is_empty() {
            return Err(format!(
                "{}.{} has no primary key in the stream: set key = [\"col\", ...] for this table",
                self.source_db, self.source_table
            ));
        }
        let mut idx = Vec::with_capacity(key_names.len());
        for k in &key_names {
            let i = self.schema.index_of(k).ok_or_else(|| {
                format!("key column `{k}` is missing from the record of {}.{}", self.source_db, self.source_table)
            })?;
            idx.push(i);
        }
        let key = KeyOf { idx, names: key_names.into() };
        match self.op {
            Op::Insert | Op::Update => self.upserts(&key),
            Op::Delete => {
                let image: Vec<Value> = match (&self.before, &self.after) {
                    (Some(b), _) => b.iter().map(|v| v.clone().unwrap_or(Value::Null)).collect(),
                    (None, Some(a)) => a.clone(),
                    (None, None) => return Err("a delete without the deleted row's key".into()),
                };
                Ok(vec![self.change(&key, Op::Delete, key.of(&image)?, None, 0)])
            }
        }
    }

    /// An insert or update: one upsert, or — when an update changed the key — a delete of the
    /// old key and an upsert of the new one.
    fn upserts(&self, key: &KeyOf) -> Result<Vec<Change>, String> {
        let after = self.after.as_ref().ok_or("an insert or update without a row image")?;
        if self.key_only {
            return Err("the record carries only the key columns (TiCDC large-message \
                        handle-key-only or claim-check): the row cannot be replicated \
                        from the stream alone"
                .into());
        }
        let new_key = key.of(after)?;
        // The old key: columns the record left out of `before` did not change.
        let old_key: Option<Vec<Value>> = match (&self.op, &self.before) {
            (Op::Update, Some(before)) => Some(
                key.idx
                    .iter()
                    .zip(&new_key)
                    .map(|(&i, new)| match before.get(i) {
                        Some(Some(v)) => v.clone(),
                        _ => new.clone(),
                    })
                    .collect(),
            ),
            _ => None,
        };
        let row = Some(after.clone());
        match old_key {
            Some(old) if old != new_key => {
                if old.iter().any(Value::is_null) {
                    return Err("the old key of an update is NULL".into());
                }
                Ok(vec![self.change(key, Op::Delete, old, None, 0), self.change(key, Op::Update, new_key, row, 1)])
            }
            _ => Ok(vec![self.change(key, self.op, new_key, row, 0)]),
        }
    }

    fn change(&self, key: &KeyOf, op: Op, values: Vec<Value>, row: Option<Vec<Value>>, sub: u16) -> Change {
        Change {
            op,
            schema: self.schema.clone(),
            key_names: key.names.clone(),
            key: values,
            row,
            commit_ts: self.commit_ts,
            commit_ms: self.commit_ms,
            sub,
        }
    }
}

/// Where a row image's key columns are.
struct KeyOf {
    /// Column index of each key column, in key order.
    idx: Vec<usize>,
    names: Arc<[String]>,
}

impl KeyOf {
    /// The key of a row image; a NULL key column is an error.
    fn of(&self, row: &[Value]) -> Result<Vec<Value>, String> {
        self.idx
            .iter()
            .zip(self.names.iter())
            .map(|(&i, name)| match row.get(i) {
                Some(Value::Null) | None => Err(format!("key column `{name}` is NULL")),
                Some(Value::Unchanged) => Err(format!("key column `{name}` is sent as unchanged (a placeholder)")),
                Some(v) => Ok(v.clone()),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::schema::Column;

    fn schema() -> Arc<RecordSchema> {
        RecordSchema::new(vec![Column::new("id", "int"), Column::new("name", "varchar")])
    }

    fn t(s: &str) -> Value {
        Value::Text(s.into())
    }

    #[test]
    fn json_escaping_is_exact() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\n\u{1}é😀");
        assert_eq!(s, r#""a\"b\\c\n\u0001é😀""#);
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\n\u{1}é😀");
        let mut b = String::new();
        Value::Bytes(vec![0, 0xff, 0x10]).write_json(&mut b);
        assert_eq!(b, "\"00ff10\"");
    }

    #[test]
    fn update_changing_the_key_splits() {
        let ev = RowEvent {
            source_db: "d".into(),
            source_table: "t".into(),
            schema: schema(),
            op: Op::Update,
            after: Some(vec![t("2"), t("x")]),
            before: Some(vec![Some(t("1")), None]),
            commit_ts: Some(7),
            commit_ms: None,
            key_names: vec!["id".into()],
            key_only: false,
        };
        let c = ev.into_changes(None).unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!((c[0].op, c[0].key_json(), c[0].row_json()), (Op::Delete, r#"{"id":"1"}"#.into(), None));
        assert_eq!(c[1].op, Op::Update);
        assert_eq!(c[1].key_json(), r#"{"id":"2"}"#);
        assert_eq!(c[1].row_json().unwrap(), r#"{"id":"2","name":"x"}"#);
        assert_eq!((c[0].sub, c[1].sub), (0, 1));
    }

    #[test]
    fn partial_old_image_keeps_the_key() {
        let ev = RowEvent {
            source_db: "d".into(),
            source_table: "t".into(),
            schema: schema(),
            op: Op::Update,
            after: Some(vec![t("1"), t("y")]),
            before: Some(vec![None, Some(t("x"))]),
            commit_ts: None,
            commit_ms: None,
            key_names: vec!["id".into()],
            key_only: false,
        };
        let c = ev.into_changes(None).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].op, Op::Update);
    }

    #[test]
    fn missing_key_is_an_error_unless_configured() {
        let ev = || RowEvent {
            source_db: "d".into(),
            source_table: "t".into(),
            schema: schema(),
            op: Op::Insert,
            after: Some(vec![t("1"), Value::Null]),
            before: None,
            commit_ts: None,
            commit_ms: None,
            key_names: vec![],
            key_only: false,
        };
        assert!(ev().into_changes(None).unwrap_err().contains("set key"));
        let c = ev().into_changes(Some(&["id".to_string()])).unwrap();
        assert_eq!(c[0].key_json(), r#"{"id":"1"}"#);
        assert!(ev().into_changes(Some(&["nope".to_string()])).is_err());
        assert!(ev().into_changes(Some(&["name".to_string()])).unwrap_err().contains("NULL"));
    }
}
