//! `tidemark dead-letters`: the records tidemark could not decode or key, with where they came
//! from, why, and their raw bytes — read from the warehouse, so it works from any machine.

use std::fmt::Write as _;

use anyhow::{Context, Result};
use base64::Engine;
use serde::Serialize;

use crate::from_row;
use crate::sql::Stmt;
use crate::warehouse::db::Bind;
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

/// A row of `dead_letters_list`.
struct Row {
    id: i64,
    created_at: String,
    table_name: Option<String>,
    topic: String,
    kafka_partition: i64,
    kafka_offset: i64,
    error: String,
    kafka_key: Option<Vec<u8>>,
    kafka_value: Option<Vec<u8>>,
}
from_row!(Row { id, created_at, table_name, topic, kafka_partition, kafka_offset, error, kafka_key, kafka_value });

/// The newest `limit` dead letters of `table` (`Some("")`: records no table took; `None`: all).
pub async fn list(wh: &Warehouse, table: Option<&str>, limit: i64) -> Result<Vec<DeadLetter>> {
    let rows: Vec<Row> = wh
        .pool
        .fetch_as(wh.sql.fixed(Stmt::DeadLettersList)?, &[Bind::OptText(table.map(str::to_string)), Bind::I64(limit)])
        .await
        .context("reading _tidemark_dead_letters")?;
    let b64 = |b: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(b);
    Ok(rows
        .into_iter()
        .map(|r| DeadLetter {
            id: r.id,
            created_at: r.created_at,
            table: r.table_name,
            topic: r.topic,
            partition: r.kafka_partition,
            offset: r.kafka_offset,
            error: r.error,
            key_base64: r.kafka_key.map(b64),
            value_base64: r.kafka_value.map(b64),
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
