//! TiCDC's `open-protocol` (`reference/ticdc-formats.md` §4.2; TiCDC's docs).
//!
//! Batched: the key is an 8-byte big-endian version (1) then `[8-byte length][key JSON]` per
//! event; the value `[8-byte length][value JSON]` per event. Key JSON `{"ts", "scm", "tbl", "t"}`:
//! `t` 1 a row change, 2 a DDL (`{"q": query}`), 3 a resolved ts (a watermark; no value). Row
//! value `{"u": columns}` (insert, update; `"p"`: the old values) or `{"d": columns}` (delete:
//! the handle key, or every column with old value), each column `{"t": type code, "h": handle,
//! "f": flags, "v": value}`. Values: numbers as JSON numbers, DECIMAL/times as strings,
//! TEXT/BLOB base64, VARBINARY/BINARY Go-escaped (`\x89PNG\r\n`), ENUM/SET/BIT integers.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use serde_json::{Map, Value as Json};

use super::large_message::Compression;
use super::text_values::{from_text, ValueContext};
use super::Decoded;
use crate::model::change::{Op, RowEvent, Value};
use crate::model::schema::{Column, RecordSchema, SourceType};

/// Column layouts kept (by their names, types and flags) before the cache starts again.
const MAX_LAYOUTS: usize = 1024;

const BINARY_FLAG: u64 = 0x01;
const HANDLE_KEY_FLAG: u64 = 0x02;
const UNSIGNED_FLAG: u64 = 0x80;

#[derive(Debug)]
struct Layout {
    schema: Arc<RecordSchema>,
    types: Vec<SourceType>,
    /// How each column's string values are encoded.
    encodings: Vec<Encoding>,
    key: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Plain,
    Base64,
    /// Go's quoted-string escapes, without the quotes (VARBINARY, BINARY).
    GoEscaped,
}

#[derive(Default)]
pub struct OpenProtocolDecoder {
    ctx: ValueContext,
    layouts: HashMap<String, Arc<Layout>>,
}

impl OpenProtocolDecoder {
    pub fn new(ctx: ValueContext) -> OpenProtocolDecoder {
        OpenProtocolDecoder { ctx, layouts: HashMap::new() }
    }

    pub fn decode(&mut self, key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Decoded, String> {
        let key = key.ok_or("an open-protocol message without a key")?;
        let (version, rest) = key.split_at_checked(8).ok_or("an open-protocol key shorter than its version")?;
        let version = i64::from_be_bytes(version.try_into().map_err(|_| "a bad version")?);
        if version != 1 {
            return Err(format!("open-protocol version {version}: tidemark reads version 1"));
        }
        let keys = frames(rest).map_err(|e| format!("key: {e}"))?;
        let values = match value {
            Some(v) if !v.is_empty() => frames(v).map_err(|e| format!("value: {e}"))?,
            _ => Vec::new(),
        };
        let mut rows = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            let k: Json = serde_json::from_slice(k).map_err(|e| format!("event {i}: key is not JSON: {e}"))?;
            let ts = k.get("ts").and_then(Json::as_u64).filter(|&t| t > 0);
            let text = |f: &str| k.get(f).and_then(Json::as_str).unwrap_or_default().to_string();
            let v = values.get(i).copied().unwrap_or_default();
            match k.get("t").and_then(Json::as_i64) {
                Some(3) => return Ok(ts.map_or(Decoded::Rows(Vec::new()), |ts| Decoded::Watermark { ts })),
                Some(2) => {
                    let v: Json = serde_json::from_slice(v).map_err(|e| format!("DDL value is not JSON: {e}"))?;
                    let sql = v.get("q").and_then(Json::as_str).unwrap_or_default().to_string();
                    return Ok(Decoded::Ddl { db: text("scm"), table: text("tbl"), sql, commit_ts: ts });
                }
                Some(1) => {
                    if k.get("ccl").and_then(Json::as_str).is_some_and(|c| !c.is_empty()) {
                        return Err("an open-protocol claim-check reference (ccl) that was not resolved".into());
                    }
                    let only_key = k.get("ohk").and_then(Json::as_bool).unwrap_or(false);
                    let v: Json =
                        serde_json::from_slice(v).map_err(|e| format!("event {i}: value is not JSON: {e}"))?;
                    rows.push(
                        self.row(text("scm"), text("tbl"), ts, only_key, &v).map_err(|e| format!("event {i}: {e}"))?,
                    );
                }
                other => return Err(format!("event {i}: unknown open-protocol event type {other:?}")),
            }
        }
        Ok(Decoded::Rows(rows))
    }

    fn row(
        &mut self,
        db: String,
        table: String,
        ts: Option<u64>,
        only_key: bool,
        v: &Json,
    ) -> Result<RowEvent, String> {
        let cols = |k: &str| v.get(k).and_then(Json::as_object);
        let (op, image, old) = match (cols("u"), cols("d")) {
            (Some(u), _) => (if cols("p").is_some() { Op::Update } else { Op::Insert }, u, cols("p")),
            (None, Some(d)) => (Op::Delete, d, None),
            _ => return Err("a row event without `u` or `d`".into()),
        };
        let layout = self.layout(image)?;
        let values = self.values(&layout, image)?;
        let (after, before) = match op {
            Op::Delete => (None, Some(values)),
            _ => {
                let before = match old {
                    Some(p) => {
                        let old_layout = self.layout(p)?;
                        let old_values = self.values(&old_layout, p)?;
                        // Aligned with the new image's columns.
                        Some(
                            layout
                                .schema
                                .columns
                                .iter()
                                .map(|c| old_layout.schema.index_of(&c.name).and_then(|i| old_values[i].clone()))
                                .collect(),
                        )
                    }
                    None => None,
                };
                (Some(values.into_iter().map(|v| v.unwrap_or(Value::Null)).collect()), before)
            }
        };
        Ok(RowEvent {
            source_db: db,
            source_table: table,
            schema: layout.schema.clone(),
            op,
            after,
            before,
            commit_ts: ts,
            commit_ms: ts.map(|t| (t >> 18) as i64),
            key_names: layout.key.clone(),
            key_only: only_key,
        })
    }

    /// The layout of a column map: names in order, each with its type code and flags.
    fn layout(&mut self, cols: &Map<String, Json>) -> Result<Arc<Layout>, String> {
        let mut signature = String::new();
        for (name, c) in cols {
            let code = c.get("t").and_then(Json::as_u64).unwrap_or(0);
            let flags = c.get("f").and_then(Json::as_u64).unwrap_or(0);
            let handle = c.get("h").and_then(Json::as_bool).unwrap_or(false);
            signature.push_str(&format!("{name}\u{0}{code}\u{0}{flags}\u{0}{handle}\u{1}"));
        }
        if let Some(l) = self.layouts.get(&signature) {
            return Ok(l.clone());
        }
        let mut columns = Vec::new();
        let mut types = Vec::new();
        let mut encodings = Vec::new();
        let mut key = Vec::new();
        for (name, c) in cols {
            let code = c.get("t").and_then(Json::as_u64).ok_or_else(|| format!("column `{name}` without a type"))?;
            let flags = c.get("f").and_then(Json::as_u64).unwrap_or(0);
            let (text, encoding) = column_type(code, flags);
            if c.get("h").and_then(Json::as_bool).unwrap_or(false) || flags & HANDLE_KEY_FLAG != 0 {
                key.push(name.clone());
            }
            types.push(SourceType::parse(&text));
            encodings.push(encoding);
            columns.push(Column::new(name.clone(), text));
        }
        if self.layouts.len() >= MAX_LAYOUTS {
            self.layouts.clear();
        }
        let layout = Arc::new(Layout { schema: RecordSchema::new(columns), types, encodings, key });
        self.layouts.insert(signature, layout.clone());
        Ok(layout)
    }

    fn values(&self, layout: &Layout, cols: &Map<String, Json>) -> Result<Vec<Option<Value>>, String> {
        layout
            .schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, col)| {
                let v = cols.get(&col.name).and_then(|c| c.get("v")).unwrap_or(&Json::Null);
                self.value(v, &layout.types[i], layout.encodings[i])
                    .map(Some)
                    .map_err(|e| format!("column `{}` ({}): {e}", col.name, col.source_type))
            })
            .collect()
    }

    fn value(&self, v: &Json, ty: &SourceType, encoding: Encoding) -> Result<Value, String> {
        match v {
            Json::Null => Ok(Value::Null),
            Json::String(s) => match encoding {
                Encoding::Base64 => {
                    let bytes =
                        base64::engine::general_purpose::STANDARD.decode(s).map_err(|e| format!("not base64: {e}"))?;
                    match ty.kind {
                        crate::model::schema::Kind::Bytes => Ok(Value::Bytes(bytes)),
                        _ => from_text(
                            ty,
                            &String::from_utf8(bytes).map_err(|_| "TEXT that is not UTF-8")?,
                            &self.ctx,
                            false,
                        ),
                    }
                }
                Encoding::GoEscaped => Ok(Value::Bytes(go_unescape(s)?)),
                Encoding::Plain => from_text(ty, s, &self.ctx, false),
            },
            Json::Number(n) => from_text(ty, &n.to_string(), &self.ctx, false),
            Json::Bool(b) => from_text(ty, if *b { "1" } else { "0" }, &self.ctx, false),
            other => Err(format!("unexpected value {other}")),
        }
    }
}

/// `[8-byte big-endian length][bytes]` repeated.
/// Reads a claim-check object's key and value by its location.
pub type Claimed<'a> = &'a dyn Fn(&str) -> Result<(Vec<u8>, Vec<u8>), String>;

/// An open-protocol message with TiCDC's large-message handling undone, framed as before:
/// each event's value decompressed (`large-message-handle-compression` compresses every
/// event's value inside the framing, DDLs' too), and each claim-check reference (`ccl` in its
/// key) replaced by the event its object holds — `claimed(location)` gives the object's key
/// (a version and one key frame) and value (one value frame, compressed like any).
pub fn resolve_large(
    key: &[u8],
    value: Option<&[u8]>,
    compression: Compression,
    claimed: Claimed<'_>,
) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (version, rest) = key.split_at_checked(8).ok_or("an open-protocol key shorter than its version")?;
    let keys = frames(rest).map_err(|e| format!("key: {e}"))?;
    let values = match value {
        Some(v) if !v.is_empty() => frames(v).map_err(|e| format!("value: {e}"))?,
        _ => Vec::new(),
    };
    let (mut key_out, mut value_out) = (version.to_vec(), Vec::new());
    let mut push = |k: &[u8], v: Option<Vec<u8>>| {
        key_out.extend_from_slice(&(k.len() as i64).to_be_bytes());
        key_out.extend_from_slice(k);
        if let Some(v) = v {
            value_out.extend_from_slice(&(v.len() as i64).to_be_bytes());
            value_out.extend_from_slice(&v);
        }
    };
    for (i, k) in keys.iter().enumerate() {
        let v = values.get(i).copied();
        match claim_check_location(k) {
            Some(location) => {
                let (ok, ov) = claimed(&location)?;
                let okeys = ok.get(8..).map(frames).transpose().map_err(|e| format!("{location}: key: {e}"))?;
                let ovalues = frames(&ov).map_err(|e| format!("{location}: value: {e}"))?;
                let (Some([k]), [v]) = (okeys.as_deref(), ovalues.as_slice()) else {
                    return Err(format!("claim-check object {location} holds no single event"));
                };
                push(k, Some(compression.decompress(v)?));
            }
            None => push(k, v.filter(|v| !v.is_empty()).map(|v| compression.decompress(v)).transpose()?),
        }
    }
    Ok((key_out, value_out))
}

/// The claim-check location an event's key names (`ccl`), if it is a reference.
fn claim_check_location(key: &[u8]) -> Option<String> {
    if !key.windows(5).any(|w| w == b"\"ccl\"") {
        return None;
    }
    let k: Json = serde_json::from_slice(key).ok()?;
    k.get("ccl").and_then(Json::as_str).filter(|c| !c.is_empty()).map(str::to_string)
}

/// The claim-check locations an open-protocol message's events name.
pub fn claim_check_locations(key: &[u8]) -> Vec<String> {
    key.get(8..)
        .and_then(|rest| frames(rest).ok())
        .unwrap_or_default()
        .into_iter()
        .filter_map(claim_check_location)
        .collect()
}

fn frames(mut b: &[u8]) -> Result<Vec<&[u8]>, String> {
    let mut out = Vec::new();
    while !b.is_empty() {
        let (len, rest) = b.split_at_checked(8).ok_or("a truncated length")?;
        let len = i64::from_be_bytes(len.try_into().map_err(|_| "a bad length")?);
        let len = usize::try_from(len).map_err(|_| format!("a negative length {len}"))?;
        let (frame, rest) = rest.split_at_checked(len).ok_or_else(|| format!("a frame of {len} bytes is truncated"))?;
        out.push(frame);
        b = rest;
    }
    Ok(out)
}

/// A type code and flags → (MySQL type text, how string values are encoded).
fn column_type(code: u64, flags: u64) -> (String, Encoding) {
    let binary = flags & BINARY_FLAG != 0;
    let unsigned = if flags & UNSIGNED_FLAG != 0 { " unsigned" } else { "" };
    let (text, encoding) = match code {
        1 => (format!("tinyint{unsigned}"), Encoding::Plain),
        2 => (format!("smallint{unsigned}"), Encoding::Plain),
        3 => (format!("int{unsigned}"), Encoding::Plain),
        4 => ("float".into(), Encoding::Plain),
        5 => ("double".into(), Encoding::Plain),
        7 => ("timestamp".into(), Encoding::Plain),
        8 => (format!("bigint{unsigned}"), Encoding::Plain),
        9 => (format!("mediumint{unsigned}"), Encoding::Plain),
        10 | 14 => ("date".into(), Encoding::Plain),
        11 => ("time".into(), Encoding::Plain),
        12 => ("datetime".into(), Encoding::Plain),
        13 => ("year".into(), Encoding::Plain),
        15 | 253 if binary => ("varbinary".into(), Encoding::GoEscaped),
        15 | 253 => ("varchar".into(), Encoding::Plain),
        16 => ("bit(64)".into(), Encoding::Plain),
        245 => ("json".into(), Encoding::Plain),
        246 => ("decimal".into(), Encoding::Plain),
        247 => ("enum".into(), Encoding::Plain),
        248 => ("set".into(), Encoding::Plain),
        249..=252 if binary => ("longblob".into(), Encoding::Base64),
        249..=252 => ("longtext".into(), Encoding::Base64),
        254 if binary => ("binary".into(), Encoding::GoEscaped),
        254 => ("char".into(), Encoding::Plain),
        _ => ("text".into(), Encoding::Plain),
    };
    (text, encoding)
}

/// Go's `strconv.Quote` escapes (without the quotes) back to bytes.
fn go_unescape(s: &str) -> Result<Vec<u8>, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    let hex = |h: &[u8]| -> Result<u32, String> {
        std::str::from_utf8(h)
            .ok()
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("bad escape in `{s}`"))
    };
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        let c = *b.get(i + 1).ok_or_else(|| format!("a trailing backslash in `{s}`"))?;
        i += 2;
        let simple = match c {
            b'a' => Some(7),
            b'b' => Some(8),
            b'f' => Some(12),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(11),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            b'\'' => Some(b'\''),
            _ => None,
        };
        if let Some(x) = simple {
            out.push(x);
            continue;
        }
        let take = |n: usize| b.get(i..i + n).ok_or_else(|| format!("a short escape in `{s}`"));
        match c {
            b'x' => {
                out.push(hex(take(2)?)? as u8);
                i += 2;
            }
            b'u' | b'U' => {
                let n = if c == b'u' { 4 } else { 8 };
                let ch = char::from_u32(hex(take(n)?)?).ok_or_else(|| format!("bad escape in `{s}`"))?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                i += n;
            }
            b'0'..=b'7' => {
                let digits = b.get(i - 1..i + 2).ok_or_else(|| format!("a short escape in `{s}`"))?;
                let v = u32::from_str_radix(std::str::from_utf8(digits).unwrap_or("x"), 8)
                    .map_err(|_| format!("bad escape in `{s}`"))?;
                out.push(u8::try_from(v).map_err(|_| format!("bad escape in `{s}`"))?);
                i += 2;
            }
            other => return Err(format!("unknown escape `\\{}` in `{s}`", other as char)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed_key(keys: &[&str]) -> Vec<u8> {
        let mut out = 1i64.to_be_bytes().to_vec();
        for k in keys {
            out.extend_from_slice(&(k.len() as i64).to_be_bytes());
            out.extend_from_slice(k.as_bytes());
        }
        out
    }

    fn framed_value(values: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in values {
            out.extend_from_slice(&(v.len() as i64).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        }
        out
    }

    fn rows(d: Decoded) -> Vec<RowEvent> {
        match d {
            Decoded::Rows(r) => r,
            other => panic!("expected rows, got {other:?}"),
        }
    }

    /// TiCDC's docs' event stream (logs 1, 2, 5–12, 13), batched two rows per message.
    #[test]
    fn the_docs_event_stream() {
        let mut d = OpenProtocolDecoder::default();
        let ddl = d
            .decode(
                Some(&framed_key(&[r#"{"ts":415508856908021766,"scm":"test","tbl":"t1","t":2}"#])),
                Some(&framed_value(&[r#"{"q":"CREATE TABLE test.t1(id int primary key, val varchar(16))","t":3}"#])),
            )
            .unwrap();
        assert!(matches!(ddl, Decoded::Ddl { commit_ts: Some(415508856908021766), .. }));
        let resolved = d.decode(Some(&framed_key(&[r#"{"ts":415508856908021766,"t":3}"#])), None).unwrap();
        assert!(matches!(resolved, Decoded::Watermark { ts: 415508856908021766 }));
        let k = r#"{"ts":415508878783938562,"scm":"test","tbl":"t1","t":1}"#;
        let batch = d
            .decode(
                Some(&framed_key(&[k, k])),
                Some(&framed_value(&[
                    r#"{"u":{"id":{"t":3,"h":true,"v":1},"val":{"t":15,"v":"aa"}}}"#,
                    r#"{"d":{"id":{"t":3,"h":true,"v":2}}}"#,
                ])),
            )
            .unwrap();
        let evs = rows(batch);
        assert_eq!(evs.len(), 2);
        assert_eq!(
            (evs[0].op, evs[0].commit_ts, evs[0].key_names.clone()),
            (Op::Insert, Some(415508878783938562), vec!["id".to_string()])
        );
        assert_eq!(evs[0].after.clone().unwrap(), vec![Value::Text("1".into()), Value::Text("aa".into())]);
        let del = evs.into_iter().nth(1).unwrap().into_changes(None).unwrap();
        assert_eq!((del[0].op, del[0].key_json()), (Op::Delete, r#"{"id":"2"}"#.to_string()));
    }

    #[test]
    fn binary_text_and_unsigned_values() {
        let mut d = OpenProtocolDecoder::default();
        let k = r#"{"ts":5,"scm":"s","tbl":"t","t":1}"#;
        let v = r#"{"u":{"id":{"t":8,"h":true,"f":155,"v":18446744073709551615},"vb":{"t":15,"f":1,"v":"\\x89PNG\\r\\n\\x1a\\n"},"tx":{"t":252,"f":0,"v":"5rWL6K+VdGV4dA=="},"bl":{"t":252,"f":1,"v":"AAE="}},"p":{"id":{"t":8,"h":true,"f":155,"v":18446744073709551615}}}"#;
        let ev = rows(d.decode(Some(&framed_key(&[k])), Some(&framed_value(&[v]))).unwrap()).remove(0);
        assert_eq!(ev.op, Op::Update);
        assert_eq!(
            ev.after.unwrap(),
            vec![
                Value::Text("18446744073709551615".into()),
                Value::Bytes(b"\x89PNG\r\n\x1a\n".to_vec()),
                Value::Text("测试text".into()),
                Value::Bytes(vec![0, 1]),
            ]
        );
        assert!(d.decode(Some(&[0, 0, 0, 0, 0, 0, 0, 2]), None).unwrap_err().contains("version 2"));
    }
}
