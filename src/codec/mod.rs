//! Wire formats: one decoder per format turns a Kafka record into row events.

pub mod avro;
pub mod canal_json;
pub mod debezium;
pub mod debezium_avro;
pub mod large_message;
pub mod numbers;
pub mod open_protocol;
pub mod registry;
pub mod s3;
pub mod simple;
pub mod text_values;

use std::sync::Arc;

use crate::config::Format;
use crate::model::change::RowEvent;
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
    /// A claim-check reference: the whole message is the object this location names.
    ClaimCheck { location: String },
}

/// A Kafka record's key and value.
pub type KeyValue<'a> = (Option<&'a [u8]>, Option<&'a [u8]>);

/// A decoder for one format, with the state it keeps between records.
pub enum Decoder {
    CanalJson(canal_json::CanalJsonDecoder),
    Avro(avro::AvroDecoder),
    Debezium(debezium::DebeziumDecoder),
    Simple(simple::SimpleDecoder),
    OpenProtocol(open_protocol::OpenProtocolDecoder),
    DebeziumAvro(debezium_avro::DebeziumAvroDecoder),
}

impl Decoder {
    /// `registry`: needed by Avro (the config refuses Avro without one).
    pub fn new(
        format: Format,
        ctx: ValueContext,
        registry: Option<Arc<registry::Registry>>,
    ) -> anyhow::Result<Decoder> {
        Ok(match format {
            Format::CanalJson => Decoder::CanalJson(canal_json::CanalJsonDecoder::new(ctx)),
            Format::Debezium => Decoder::Debezium(debezium::DebeziumDecoder::new(ctx)),
            Format::Simple => Decoder::Simple(simple::SimpleDecoder::new(ctx)),
            Format::OpenProtocol => Decoder::OpenProtocol(open_protocol::OpenProtocolDecoder::new(ctx)),
            Format::DebeziumAvro => Decoder::DebeziumAvro(debezium_avro::DebeziumAvroDecoder::new(
                ctx,
                registry.ok_or_else(|| anyhow::anyhow!("format = \"debezium-avro\" needs a [schema_registry]"))?,
            )),
            Format::Avro => Decoder::Avro(avro::AvroDecoder::new(
                ctx,
                registry.ok_or_else(|| anyhow::anyhow!("format = \"avro\" needs a [schema_registry]"))?,
            )),
        })
    }

    /// Fetches what decoding `records` needs from elsewhere (Avro writer schemas). An error
    /// means "try the batch again later", never "this record is bad".
    pub async fn prefetch(&mut self, records: Vec<KeyValue<'_>>) -> anyhow::Result<()> {
        let ids = || -> Vec<u32> {
            records
                .iter()
                .flat_map(|(k, v)| [*k, *v])
                .flatten()
                .filter_map(|b| avro::frame(b).ok().map(|(id, _)| id))
                .collect()
        };
        match self {
            Decoder::Avro(d) => d.prefetch(ids()).await?,
            Decoder::DebeziumAvro(d) => d.prefetch(ids()).await?,
            _ => {}
        }
        Ok(())
    }

    /// Decodes one record; the error text goes to the dead-letter table. `hints`: the table's
    /// recorded column types, for formats whose records may not carry them (Debezium without
    /// its schema part; TiCDC's simple protocol before its table's BOOTSTRAP).
    pub fn decode(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        hints: Option<&debezium::Hints>,
    ) -> Result<Decoded, String> {
        match self {
            Decoder::CanalJson(d) => d.decode(value.unwrap_or_default()),
            Decoder::Avro(d) => d.decode(key, value),
            Decoder::Debezium(d) => d.decode(key, value, hints),
            Decoder::Simple(d) => d.decode(value.unwrap_or_default(), hints),
            Decoder::OpenProtocol(d) => d.decode(key, value),
            Decoder::DebeziumAvro(d) => d.decode(key, value, hints),
        }
    }
}
