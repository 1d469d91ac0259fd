//! The one TOML config file: parsing, `${VAR}` interpolation, validation.
//!
//! Unknown keys are rejected (a typo must not silently fall back to a default). Every string
//! value may use `${VAR}` to read an environment variable (`$${` writes a literal `${`).

pub mod patterns;
pub mod redact;

use crate::codec::large_message::{ClaimCheck, Compression};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;

/// Where `tidemark` looks for its config when `--config` is not given.
pub const DEFAULT_CONFIG: &str = "tidemark.toml";
/// The embedded default warehouse: an SQLite file next to the working directory.
pub const DEFAULT_WAREHOUSE: &str = "sqlite://tidemark.db";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub kafka: KafkaConfig,
    #[serde(default)]
    pub warehouse: WarehouseConfig,
    /// A Confluent-compatible Schema Registry (needed by `format = "avro"`).
    pub schema_registry: Option<SchemaRegistryConfig>,
    /// The upstream database `snapshot` and `verify` read (nothing else needs it).
    pub upstream: Option<UpstreamConfig>,
    /// Settings of the scripts `tidemark sql --dialect snowflake` prints.
    #[serde(default)]
    pub snowflake: SnowflakeConfig,
    /// The `run` process itself.
    #[serde(default)]
    pub service: ServiceConfig,
    /// `run`'s HTTP endpoint: /metrics, /healthz, /readyz.
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub tables: Vec<TableConfig>,
    /// Tables named by their topics (see [`patterns`]); [`Config::add_pattern_tables`] adds the
    /// tables they make of the brokers' topics to `tables`.
    #[serde(default)]
    pub table_patterns: Vec<TableConfig>,
    /// The directory relative paths (`source_ddl`) are read from: the config file's.
    #[serde(skip)]
    pub base_dir: PathBuf,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaConfig {
    #[serde(default = "default_bootstrap")]
    pub bootstrap_servers: String,
    #[serde(default = "default_group")]
    pub group_id: String,
    /// Any librdkafka property, passed through verbatim (SASL/TLS, timeouts, ...).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Land a batch once it holds this many Kafka records ...
    #[serde(default = "default_batch_records")]
    pub batch_records: usize,
    /// ... or this many bytes of keys and values ...
    #[serde(default = "default_batch_bytes")]
    pub batch_bytes: usize,
    /// ... or once its first record has waited this long.
    #[serde(default = "default_linger_ms")]
    pub batch_linger_ms: u64,
    /// With `[[table_patterns]]`: how often `run` asks the brokers for new topics.
    #[serde(default = "default_topic_refresh_secs")]
    pub topic_refresh_secs: u64,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            bootstrap_servers: default_bootstrap(),
            group_id: default_group(),
            properties: BTreeMap::new(),
            batch_records: default_batch_records(),
            batch_bytes: default_batch_bytes(),
            batch_linger_ms: default_linger_ms(),
            topic_refresh_secs: default_topic_refresh_secs(),
        }
    }
}

#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WarehouseConfig {
    /// `sqlite://file.db` or `postgres://user:pass@host:5432/db`; default: an SQLite file.
    pub url: Option<String>,
}

impl WarehouseConfig {
    pub fn url(&self) -> &str {
        self.url.as_deref().unwrap_or(DEFAULT_WAREHOUSE)
    }
}

/// `[upstream]`: the database the stream comes from, read by `snapshot` and `verify`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `mysql://user:${PW}@host:4000/db` (TiDB, MySQL, MariaDB); shown with its password masked.
    pub url: redact::SecretUri,
    /// Rows per chunk a snapshot lands and a verify compares (default 10,000).
    #[serde(default = "default_chunk_rows")]
    pub chunk_rows: usize,
}

fn default_chunk_rows() -> usize {
    10_000
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// `host:port` to serve /metrics (Prometheus), /healthz and /readyz on, e.g.
    /// `127.0.0.1:9464` (`0.0.0.0:9464` in a container). Unset: no HTTP endpoint.
    pub listen: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// After SIGTERM or SIGINT: how long `run` may take to land what it read, commit offsets and
    /// finish a merge in flight. Past it, it exits anyway: what was read and not landed stays
    /// uncommitted and is read again by the next run; a merge cut short rolls back.
    #[serde(default = "default_shutdown_timeout_s")]
    pub shutdown_timeout_s: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig { shutdown_timeout_s: default_shutdown_timeout_s() }
    }
}

fn default_shutdown_timeout_s() -> u64 {
    30
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnowflakeConfig {
    /// The warehouse the merge tasks run on; default: serverless tasks.
    pub task_warehouse: Option<String>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SchemaRegistryConfig {
    /// `https://registry.example:8081`
    pub url: String,
    /// Basic auth, as Confluent Cloud needs (API key and secret).
    pub username: Option<String>,
    pub password: Option<String>,
    /// Per request.
    #[serde(default = "default_registry_timeout_ms")]
    pub timeout_ms: u64,
    /// A schema id the registry did not have (after a few retries) is remembered as missing for
    /// this long — its records become dead letters meanwhile — and then asked for again.
    #[serde(default = "default_missing_id_ttl_secs")]
    pub missing_id_ttl_secs: u64,
}

fn default_registry_timeout_ms() -> u64 {
    10_000
}

fn default_missing_id_ttl_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default)]
    pub format: Format,
    /// Cron with seconds: `sec min hour day-of-month month day-of-week [year]`.
    #[serde(default = "default_schedule")]
    pub schedule: String,
    /// What to do with a record that cannot be decoded or keyed.
    #[serde(default)]
    pub on_error: OnError,
    /// Time zone TiCDC rendered TIMESTAMP columns in (its `--tz`): `UTC` or a fixed offset
    /// like `+08:00`. TIMESTAMP values are converted to UTC with it, so they keep their instant.
    #[serde(default = "default_tz")]
    pub source_timezone: String,
    /// Whether merges wait for the stream's watermarks (see [`Watermarks`]).
    #[serde(default)]
    pub watermarks: Watermarks,
    /// Put every table in this consistency group (see [`TableConfig::group`]).
    pub group: Option<String>,
    /// Debezium's `unavailable.value.placeholder`: a value equal to it is "unchanged".
    #[serde(default = "default_unavailable_value")]
    pub unavailable_value: String,
    /// TiCDC's `large-message-handle-compression`: every value is compressed so.
    #[serde(default)]
    pub large_message_compression: Compression,
    /// Where claim-check objects are read (`file:///path`): TiCDC's `claim-check-storage-uri`.
    pub claim_check_storage: Option<redact::SecretUri>,
    /// TiCDC's `claim-check-raw-value`.
    #[serde(default)]
    pub claim_check_raw_value: bool,
}

fn default_unavailable_value() -> String {
    crate::codec::text_values::DEBEZIUM_UNAVAILABLE_VALUE.into()
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            format: Format::default(),
            schedule: default_schedule(),
            on_error: OnError::default(),
            source_timezone: default_tz(),
            watermarks: Watermarks::default(),
            group: None,
            unavailable_value: default_unavailable_value(),
            large_message_compression: Compression::None,
            claim_check_storage: None,
            claim_check_raw_value: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableConfig {
    /// The replica table in the warehouse (in a pattern: its template, default `{1}`).
    #[serde(default)]
    pub name: String,
    /// The Kafka topic TiCDC writes this table to (`tidb_{schema}_{table}`).
    pub topic: String,
    /// `db.table` upstream; only needed when one topic carries several tables.
    pub source: Option<String>,
    pub format: Option<Format>,
    /// Key columns; only needed when the stream carries no key information.
    pub key: Option<Vec<String>>,
    pub schedule: Option<String>,
    pub on_error: Option<OnError>,
    /// The upstream `CREATE TABLE` (a file, relative to the config file): exact types and key.
    pub source_ddl: Option<String>,
    /// Snowflake scripts: the table the Kafka connector writes the topic to (default: the
    /// connector's own naming, the topic in upper case).
    pub raw_table: Option<String>,
    pub watermarks: Option<Watermarks>,
    /// Tables of one group are merged together, in one transaction, up to one common point: the
    /// warehouse holds them as of one upstream TSO (with watermarks).
    pub group: Option<String>,
    pub large_message_compression: Option<Compression>,
    pub claim_check_storage: Option<redact::SecretUri>,
    pub claim_check_raw_value: Option<bool>,
    /// The `[[table_patterns]]` expression that made this entry, if one did.
    #[serde(skip)]
    pub pattern: Option<String>,
}

/// Whether a table's merges wait for its stream's watermarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Watermarks {
    /// Once a watermark has landed from the table's topic, merges apply only changes up to the
    /// minimum watermark over its partitions.
    #[default]
    Auto,
    /// Merges wait for watermarks from every partition, even before the first one arrives.
    Required,
    /// Merges ignore watermarks (per-key order by commit ts, then offset).
    Off,
}

impl Watermarks {
    /// Whether merges are gated, given whether the table's stream carries watermarks.
    pub fn gates(self, watermarked: bool) -> bool {
        match self {
            Watermarks::Off => false,
            Watermarks::Required => true,
            Watermarks::Auto => watermarked,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Deserialize)]
pub enum Format {
    /// TiCDC `protocol=canal-json`.
    #[default]
    #[serde(rename = "canal-json")]
    CanalJson,
    /// TiCDC `protocol=avro`: Confluent wire format and a Schema Registry.
    #[serde(rename = "avro")]
    Avro,
    /// Debezium's JSON envelope (TiCDC `protocol=debezium`, Debezium's own connectors).
    #[serde(rename = "debezium")]
    Debezium,
    /// TiCDC `protocol=simple` (JSON encoding).
    #[serde(rename = "simple")]
    Simple,
    /// TiCDC `protocol=open-protocol`: batched key/value frames.
    #[serde(rename = "open-protocol")]
    OpenProtocol,
    /// Debezium's envelope in Avro (Confluent's AvroConverter; TiCDC's debezium protocol in Avro).
    #[serde(rename = "debezium-avro")]
    DebeziumAvro,
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Format::CanalJson => f.write_str("canal-json"),
            Format::Avro => f.write_str("avro"),
            Format::Debezium => f.write_str("debezium"),
            Format::Simple => f.write_str("simple"),
            Format::OpenProtocol => f.write_str("open-protocol"),
            Format::DebeziumAvro => f.write_str("debezium-avro"),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnError {
    /// Land the raw record in the dead-letter table and go on.
    #[default]
    DeadLetter,
    /// Stop the service with the error; nothing after the bad record is committed.
    Stop,
}

fn default_bootstrap() -> String {
    "127.0.0.1:9092".into()
}
fn default_group() -> String {
    "tidemark".into()
}
fn default_batch_records() -> usize {
    20_000
}
fn default_batch_bytes() -> usize {
    32 << 20
}
fn default_linger_ms() -> u64 {
    200
}
fn default_topic_refresh_secs() -> u64 {
    10
}
fn default_schedule() -> String {
    "*/5 * * * * *".into()
}
fn default_tz() -> String {
    "UTC".into()
}

/// A table's effective settings: its own values, else `[defaults]`.
#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    pub topic: String,
    pub source: Option<(String, String)>,
    pub format: Format,
    pub key: Option<Vec<String>>,
    pub schedule: cron::Schedule,
    pub schedule_text: String,
    pub on_error: OnError,
    pub source_ddl: Option<PathBuf>,
    pub raw_table: Option<String>,
    pub watermarks: Watermarks,
    /// Its consistency group, if any.
    pub group: Option<String>,
    /// How its topic's values are compressed (TiCDC's large-message-handle-compression).
    pub compression: Compression,
    /// Where its claim-check objects are read, if configured.
    pub claim_check: Option<ClaimCheck>,
}

impl Config {
    /// Reads `path`; a missing file is an error unless `allow_missing` (then: all defaults).
    pub fn load(path: &Path, allow_missing: bool) -> Result<Config> {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        match std::fs::read_to_string(path) {
            Ok(text) => Config::parse(&text)
                .map(|c| Config { base_dir: base, ..c })
                .with_context(|| format!("config {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && allow_missing => Config::parse(""),
            Err(e) => Err(anyhow!(e)).with_context(|| {
                format!("cannot read config {} (pass --config FILE, or create {DEFAULT_CONFIG})", path.display())
            }),
        }
    }

    pub fn parse(text: &str) -> Result<Config> {
        // First pass on the raw text: unknown keys and wrong types are reported with their
        // line and column. Interpolated values are always strings, so this pass is exact.
        toml::from_str::<Config>(text).map_err(|e| anyhow!("{}", e.to_string().trim_end()))?;
        let mut value: toml::Value = toml::from_str(text)?;
        interpolate(&mut value, &mut String::new())?;
        let config: Config = value.try_into()?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        let mut names = std::collections::HashSet::new();
        for t in &self.tables {
            if t.name.is_empty() || t.topic.is_empty() {
                bail!("[[tables]] entries need a non-empty name and topic");
            }
            if !names.insert(t.name.as_str()) {
                bail!("table `{}` is configured twice", t.name);
            }
        }
        patterns::check(&self.table_patterns)?;
        parse_offset(&self.defaults.source_timezone)?;
        let tables = self.tables()?;
        for t in &tables {
            let Some(g) = &t.group else { continue };
            if let Some(o) = tables.iter().find(|o| o.group.as_ref() == Some(g) && o.schedule_text != t.schedule_text) {
                bail!(
                    "tables `{}` and `{}` of group `{g}` have different schedules: a group merges on one schedule",
                    t.name,
                    o.name
                );
            }
        }
        for t in self.tables()? {
            // Several tables on one topic must say which upstream table each one is.
            let shared = self.tables.iter().filter(|o| o.topic == t.topic).count() > 1;
            if shared && t.source.is_none() {
                bail!("topic `{}` feeds several tables: give each of them source = \"db.table\"", t.topic);
            }
        }
        Ok(())
    }

    /// Whether some tables are named by their topics (`[[table_patterns]]`): then the brokers'
    /// topics say which tables there are.
    pub fn has_patterns(&self) -> bool {
        !self.table_patterns.is_empty()
    }

    /// Adds the tables `[[table_patterns]]` make of `topics` (those not added yet); returns
    /// their names.
    pub fn add_pattern_tables(&mut self, topics: &[String]) -> Result<Vec<String>> {
        let made = patterns::tables_for(&self.table_patterns, &self.tables, topics)?;
        let names = made.iter().map(|t| t.name.clone()).collect();
        self.tables.extend(made);
        self.validate()?;
        Ok(names)
    }

    /// Every configured table with its effective settings.
    pub fn tables(&self) -> Result<Vec<Table>> {
        self.tables.iter().map(|t| self.resolve(t)).collect()
    }

    pub fn table(&self, name: &str) -> Result<Table> {
        let t = self.tables.iter().find(|t| t.name == name).ok_or_else(|| {
            let known: Vec<&str> = self.tables.iter().map(|t| t.name.as_str()).collect();
            anyhow!(
                "table `{name}` is not in the config (configured: {})",
                if known.is_empty() { "none".to_string() } else { known.join(", ") }
            )
        })?;
        self.resolve(t)
    }

    fn resolve(&self, t: &TableConfig) -> Result<Table> {
        let schedule_text = t.schedule.clone().unwrap_or_else(|| self.defaults.schedule.clone());
        let schedule = cron::Schedule::from_str(&schedule_text).map_err(|e| {
            anyhow!(
                "table `{}`: schedule `{schedule_text}` is not a cron expression with seconds \
                 (sec min hour day month weekday): {e}",
                t.name
            )
        })?;
        let source = match &t.source {
            None => None,
            Some(s) => {
                let (db, table) =
                    s.split_once('.').ok_or_else(|| anyhow!("table `{}`: source `{s}` must be `db.table`", t.name))?;
                Some((db.to_string(), table.to_string()))
            }
        };
        if let Some(key) = &t.key {
            if key.is_empty() {
                bail!("table `{}`: key must name at least one column", t.name);
            }
        }
        Ok(Table {
            name: t.name.clone(),
            topic: t.topic.clone(),
            source,
            format: t.format.unwrap_or(self.defaults.format),
            key: t.key.clone(),
            schedule,
            schedule_text,
            on_error: t.on_error.unwrap_or(self.defaults.on_error),
            source_ddl: t.source_ddl.as_ref().map(|p| self.base_dir.join(p)),
            raw_table: t.raw_table.clone(),
            watermarks: t.watermarks.unwrap_or(self.defaults.watermarks),
            group: t.group.clone().or_else(|| self.defaults.group.clone()),
            compression: t.large_message_compression.unwrap_or(self.defaults.large_message_compression),
            claim_check: match t.claim_check_storage.as_ref().or(self.defaults.claim_check_storage.as_ref()) {
                None => None,
                Some(uri) => Some(
                    ClaimCheck::new(&uri.0, t.claim_check_raw_value.unwrap_or(self.defaults.claim_check_raw_value))
                        .map_err(|e| anyhow!("table `{}`: {e}", t.name))?,
                ),
            },
        })
    }

    /// What reading Avro records needs: a `[schema_registry]` (`run`, `check`; `sql` reads the
    /// schema from a source_ddl or the warehouse as well).
    pub fn require_registry(&self) -> Result<()> {
        if self.schema_registry.is_none() {
            if let Some(t) = self.tables()?.iter().find(|t| matches!(t.format, Format::Avro | Format::DebeziumAvro)) {
                bail!("table `{}` is format = \"{}\": configure [schema_registry] url = \"...\"", t.name, t.format);
            }
        }
        Ok(())
    }

    /// How values are read: the source time zone, Debezium's placeholder.
    pub fn value_context(&self) -> crate::codec::ValueContext {
        crate::codec::ValueContext {
            source_offset_secs: self.source_offset_secs(),
            unavailable_value: self.defaults.unavailable_value.as_str().into(),
        }
    }

    /// Source time zone as seconds east of UTC.
    pub fn source_offset_secs(&self) -> i32 {
        parse_offset(&self.defaults.source_timezone).unwrap_or(0)
    }

    /// The merge units: each group (its tables, in config order), then each table of no group.
    pub fn merge_units(&self) -> Result<Vec<Vec<Table>>> {
        let mut units: Vec<Vec<Table>> = Vec::new();
        for t in self.tables()? {
            let same = t.group.as_ref().and_then(|g| units.iter_mut().find(|u| u[0].group.as_ref() == Some(g)));
            match same {
                Some(unit) => unit.push(t),
                None => units.push(vec![t]),
            }
        }
        Ok(units)
    }

    pub fn default_path() -> PathBuf {
        PathBuf::from(DEFAULT_CONFIG)
    }
}

/// Whether a librdkafka property holds a secret (its value is never shown).
pub fn is_secret_property(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    ["password", "secret", "sasl.oauthbearer.config", "ssl.key.pem", "ssl_key", "token"].iter().any(|s| k.contains(s))
}

// Debug output (in logs, errors, panics) never shows a secret.
impl std::fmt::Debug for KafkaConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let props: BTreeMap<&str, &str> = self
            .properties
            .iter()
            .map(|(k, v)| (k.as_str(), if is_secret_property(k) { "***" } else { v.as_str() }))
            .collect();
        f.debug_struct("KafkaConfig")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field("group_id", &self.group_id)
            .field("properties", &props)
            .field("batch_records", &self.batch_records)
            .field("batch_bytes", &self.batch_bytes)
            .field("batch_linger_ms", &self.batch_linger_ms)
            .finish()
    }
}

impl std::fmt::Debug for WarehouseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WarehouseConfig")
            .field("url", &self.url.as_deref().map(crate::config::redact::redact_url))
            .finish()
    }
}

impl std::fmt::Debug for SchemaRegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistryConfig")
            .field("url", &crate::config::redact::redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout_ms", &self.timeout_ms)
            .field("missing_id_ttl_secs", &self.missing_id_ttl_secs)
            .finish()
    }
}

/// Seconds east of UTC as `+HH:MM`.
pub fn format_offset(secs: i32) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.unsigned_abs();
    format!("{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

/// `UTC`, `Z`, `+08:00`, `-0530`, `+8` → seconds east of UTC.
pub fn parse_offset(tz: &str) -> Result<i32> {
    let t = tz.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" || t.eq_ignore_ascii_case("etc/utc") {
        return Ok(0);
    }
    let bad = || {
        anyhow!(
            "source_timezone `{tz}`: use `UTC` or a fixed offset like `+08:00` \
             (named zones with daylight saving are not supported)"
        )
    };
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = match rest.split_once(':') {
        Some((h, m)) => (h, m),
        None if rest.len() == 4 => rest.split_at(2),
        None => (rest, "0"),
    };
    let h: i32 = h.parse().map_err(|_| bad())?;
    let m: i32 = m.parse().map_err(|_| bad())?;
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    Ok(sign * (h * 3600 + m * 60))
}

/// Replaces `${VAR}` in every string of the document, in place. `path` names the key for errors.
fn interpolate(value: &mut toml::Value, path: &mut String) -> Result<()> {
    match value {
        toml::Value::String(s) if s.contains('$') => {
            *s = expand(s).with_context(|| format!("in `{path}`"))?;
        }
        toml::Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                interpolate(item, path)?;
                path.truncate(len);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                interpolate(v, path)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn expand(s: &str) -> Result<String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = tail.strip_prefix("${") {
            let end = after.find('}').ok_or_else(|| anyhow!("unterminated `${{` (write `$${{` for a literal)"))?;
            let name = &after[..end];
            if name.is_empty() {
                bail!("empty `${{}}`");
            }
            let v = std::env::var(name)
                .map_err(|_| anyhow!("environment variable `{name}` is not set (export it, or edit the config)"))?;
            out.push_str(&v);
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUE_EXAMPLE: &str = r#"
[kafka]
bootstrap_servers = "127.0.0.1:9092"
group_id = "tidemark"

[warehouse]
url = "sqlite://tidemark.db"

[defaults]
format = "canal-json"
schedule = "*/5 * * * * *"

[[tables]]
name = "item"
topic = "tidb_tpcc_item"
"#;

    #[test]
    fn issue_example_parses() {
        let c = Config::parse(ISSUE_EXAMPLE).unwrap();
        assert_eq!(c.kafka.bootstrap_servers, "127.0.0.1:9092");
        let t = c.table("item").unwrap();
        assert_eq!(t.topic, "tidb_tpcc_item");
        assert_eq!(t.format, Format::CanalJson);
        assert_eq!(t.schedule_text, "*/5 * * * * *");
        assert_eq!(c.warehouse.url(), "sqlite://tidemark.db");
    }

    #[test]
    fn empty_config_uses_embedded_defaults() {
        let c = Config::parse("").unwrap();
        assert_eq!(c.warehouse.url(), DEFAULT_WAREHOUSE);
        assert!(c.tables.is_empty());
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_place() {
        let err = Config::parse("[kafka]\nbootstrap_server = \"x\"\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("bootstrap_server"), "{msg}");
        assert!(msg.contains("line 2"), "{msg}");
        let err = Config::parse("[[tables]]\nname='a'\ntopic='t'\nshedule='x'\n").unwrap_err();
        assert!(format!("{err:#}").contains("shedule"));
    }

    #[test]
    fn env_interpolation() {
        std::env::set_var("TIDEMARK_TEST_PW", "s3cr\"et");
        let c = Config::parse(
            "[warehouse]\nurl = \"postgres://u:${TIDEMARK_TEST_PW}@h/db\"\n\
             [kafka.properties]\n\"sasl.password\" = \"${TIDEMARK_TEST_PW}\"\nliteral = \"$${HOME}\"\n",
        )
        .unwrap();
        assert_eq!(c.warehouse.url(), "postgres://u:s3cr\"et@h/db");
        assert_eq!(c.kafka.properties["sasl.password"], "s3cr\"et");
        assert_eq!(c.kafka.properties["literal"], "${HOME}");
        let err = Config::parse("[warehouse]\nurl = \"${TIDEMARK_SURELY_UNSET_VAR}\"\n").unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("TIDEMARK_SURELY_UNSET_VAR") && msg.contains("warehouse.url"), "{msg}");
    }

    #[test]
    fn per_table_overrides_and_bad_schedules() {
        let c = Config::parse("[[tables]]\nname='a'\ntopic='t'\nschedule='0 * * * * *'\nkey=['id']\non_error='stop'\n")
            .unwrap();
        let t = c.table("a").unwrap();
        assert_eq!(t.schedule_text, "0 * * * * *");
        assert_eq!(t.key.as_deref(), Some(&["id".to_string()][..]));
        assert_eq!(t.on_error, OnError::Stop);
        assert!(Config::parse("[[tables]]\nname='a'\ntopic='t'\nschedule='every minute'\n").is_err());
        assert!(c.table("nope").unwrap_err().to_string().contains("configured: a"));
    }

    #[test]
    fn shared_topics_need_sources() {
        let two = "[[tables]]\nname='a'\ntopic='t'\n[[tables]]\nname='b'\ntopic='t'\n";
        assert!(Config::parse(two).is_err());
        let ok = "[[tables]]\nname='a'\ntopic='t'\nsource='db.a'\n[[tables]]\nname='b'\ntopic='t'\nsource='db.b'\n";
        let c = Config::parse(ok).unwrap();
        assert_eq!(c.table("b").unwrap().source, Some(("db".into(), "b".into())));
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("UTC").unwrap(), 0);
        assert_eq!(parse_offset("+08:00").unwrap(), 8 * 3600);
        assert_eq!(parse_offset("-0530").unwrap(), -(5 * 3600 + 30 * 60));
        assert!(parse_offset("Asia/Shanghai").is_err());
    }
}

#[cfg(test)]
mod shipped {
    use super::*;

    /// The sample config in deploy/ parses with the real parser (its variables set).
    #[test]
    fn deploy_config_is_valid() {
        for (k, v) in [
            ("KAFKA_BOOTSTRAP", "kafka:9092"),
            ("PGUSER", "tidemark"),
            ("PGPASSWORD", "secret"),
            ("PGHOST", "db"),
            ("PGPORT", "5432"),
            ("PGDATABASE", "replica"),
        ] {
            std::env::set_var(k, v);
        }
        let text = include_str!("../../deploy/tidemark.toml");
        let c = Config::parse(text).expect("deploy/tidemark.toml");
        assert_eq!(c.kafka.bootstrap_servers, "kafka:9092");
        assert_eq!(c.table("item").unwrap().topic, "tidb_tpcc_item");
        assert_eq!(c.warehouse.url(), "postgres://tidemark:secret@db:5432/replica");
        assert_eq!(c.http.listen.as_deref(), Some("127.0.0.1:9464"));
    }
}
