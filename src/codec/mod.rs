//! Wire formats: one decoder per format turns a Kafka record into row events.

pub mod canal_json;
pub mod text_values;

use crate::change::RowEvent;
use crate::config::Format;
pub use text_values::ValueContext;

/// What one Kafka record holds.
#[derive(Debug)]
pub enum Decoded {
    /// Row changes (canal-json: exactly one).
    Rows(Vec<RowEvent>),
    /// A DDL statement: logged, never a replica row.
    Ddl { db: String, table: String, sql: String, commit_ts: Option<u64> },
    /// A resolved-ts marker: every change with a smaller commit ts has been sent.
    Watermark { ts: u64 },
}

/// A decoder for one format, with the state it keeps between records.
pub enum Decoder {
    CanalJson(canal_json::CanalJsonDecoder),
}

impl Decoder {
    pub fn new(format: Format, ctx: ValueContext) -> Decoder {
        match format {
            Format::CanalJson => Decoder::CanalJson(canal_json::CanalJsonDecoder::new(ctx)),
        }
    }

    /// Decodes one record; the error text goes to the dead-letter table.
    pub fn decode(&mut self, _key: Option<&[u8]>, value: Option<&[u8]>) -> Result<Decoded, String> {
        match self {
            Decoder::CanalJson(d) => d.decode(value.unwrap_or_default()),
        }
    }
}
