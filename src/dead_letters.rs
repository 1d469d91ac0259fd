//! `tidemark dead-letters`: the records tidemark could not decode or key, with where they came
//! from, why, and their raw bytes — read from the warehouse, so it works from any machine.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use base64::Engine;
use serde::Serialize;

use crate::db::Bind;
use crate::warehouse::Warehouse;

#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    pub id: i64,
    /// UTC.
    pub created_at: String,
    /// The table the record was for, when that was known.
    pub table: Option<String>,
    pub topic: String,
    pub partition: i64,
    pub offset: i64,
    pub error: String,
    /// The Kafka key and value exactly as read, base64.
    pub key_base64: Option<String>,
    pub value_base64: Option<String>,
}

/// The newest `limit` dead letters of `table` (`Some("")`: records no table took; `None`: all).
pub async fn list(wh: &Warehouse, table: Option<&str>, limit: i64) -> Result<Vec<DeadLetter>> {
    let rows = wh
        .pool
        .fetch(wh.sql.fixed("dead_letters_list")?, &[Bind::OptText(table.map(str::to_string)), Bind::I64(limit)])
        .await
        .context("reading _tidemark_dead_letters")?;
    let b64 = |c: &crate::db::Cell| match c {
        crate::db::Cell::Bytes(b) => Some(base64::engine::general_purpose::STANDARD.encode(b)),
        _ => None,
    };
    Ok(rows
        .iter()
        .map(|r| DeadLetter {
            id: r[0].as_i64().unwrap_or(0),
            created_at: r[1].to_text().unwrap_or_default(),
            table: r[2].to_text(),
            topic: r[3].to_text().unwrap_or_default(),
            partition: r[4].as_i64().unwrap_or(0),
            offset: r[5].as_i64().unwrap_or(0),
            error: r[6].to_text().unwrap_or_default(),
            key_base64: b64(&r[7]),
            value_base64: b64(&r[8]),
        })
        .collect())
}

/// For terminals: one block per dead letter, the value's start shown as escaped text.
pub fn render(letters: &[DeadLetter]) -> String {
    let mut out = String::new();
    if letters.is_empty() {
        out.push_str("no dead letters\n");
    }
    for d in letters {
        let _ = writeln!(
            out,
            "#{} {} UTC  {} partition {} offset {}  table {}",
            d.id,
            d.created_at,
            d.topic,
            d.partition,
            d.offset,
            d.table.as_deref().unwrap_or("(none)")
        );
        let _ = writeln!(out, "  error: {}", d.error);
        let _ = writeln!(out, "  key:   {}", preview(d.key_base64.as_deref()));
        let _ = writeln!(out, "  value: {}", preview(d.value_base64.as_deref()));
    }
    out
}

/// The first bytes as escaped text (`null` for none), with the full length.
fn preview(b64: Option<&str>) -> String {
    let Some(bytes) = b64.and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok()) else {
        return "null".into();
    };
    let shown: String = bytes.iter().take(120).flat_map(|b| std::ascii::escape_default(*b)).map(char::from).collect();
    let more = if bytes.len() > 120 { "…" } else { "" };
    format!("{shown}{more} ({} bytes)", bytes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn previews_escape_bytes() {
        let b = base64::engine::general_purpose::STANDARD.encode(b"{\"a\":\x00\xff");
        assert_eq!(preview(Some(&b)), "{\\\"a\\\":\\x00\\xff (7 bytes)");
        assert_eq!(preview(None), "null");
    }
}
