//! The demo's upstream: a TPC-C-like workload written as TiCDC writes canal-json, plus the
//! generator's own model of the upstream tables to compare the replicas with.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::model::change::{write_json_str, Value};

/// An upstream table: TiCDC's view of it.
pub struct Spec {
    pub db: &'static str,
    pub table: &'static str,
    pub topic: String,
    /// (name, canal-json mysqlType, canal-json sqlType)
    pub columns: Vec<(&'static str, &'static str, i32)>,
    /// Indexes of the primary-key columns.
    pub key: Vec<usize>,
    pub ddl: &'static str,
}

pub fn item() -> Spec {
    Spec {
        db: "tpcc",
        table: "item",
        topic: "tidb_tpcc_item".into(),
        columns: vec![
            ("i_id", "int", 4),
            ("i_im_id", "int", 4),
            ("i_name", "varchar", 12),
            ("i_price", "decimal", 3),
            ("i_data", "varchar", 12),
        ],
        key: vec![0],
        ddl: "CREATE TABLE `item` (`i_id` int NOT NULL, `i_im_id` int, `i_name` varchar(24), \
              `i_price` decimal(5,2), `i_data` varchar(50), PRIMARY KEY (`i_id`))",
    }
}

/// TPC-C `orders`, plus two columns that exercise binary values and BIGINT UNSIGNED.
pub fn orders() -> Spec {
    Spec {
        db: "tpcc",
        table: "orders",
        topic: "tidb_tpcc_orders".into(),
        columns: vec![
            ("o_id", "int", 4),
            ("o_d_id", "tinyint", -6),
            ("o_w_id", "smallint", 5),
            ("o_c_id", "int", 4),
            ("o_entry_d", "datetime", 93),
            ("o_carrier_id", "int", 4),
            ("o_ol_cnt", "tinyint", -6),
            ("o_all_local", "tinyint", -6),
            ("o_note", "varbinary", 2004),
            ("o_checksum", "bigint unsigned", 3),
        ],
        key: vec![2, 1, 0],
        ddl: "CREATE TABLE `orders` (`o_id` int NOT NULL, `o_d_id` tinyint NOT NULL, `o_w_id` smallint NOT NULL, \
              `o_c_id` int, `o_entry_d` datetime, `o_carrier_id` int, `o_ol_cnt` tinyint, `o_all_local` tinyint, \
              `o_note` varbinary(16), `o_checksum` bigint unsigned, PRIMARY KEY (`o_w_id`, `o_d_id`, `o_id`))",
    }
}

/// splitmix64: small, seedable, good enough for a workload.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// A DATETIME value of 2026, as TiCDC writes it.
    pub fn datetime(&mut self) -> String {
        let (month, day, hour, minute, second) =
            (1 + self.below(12), 1 + self.below(28), self.below(24), self.below(60), self.below(60));
        format!("2026-{month:02}-{day:02} {hour:02}:{minute:02}:{second:02}")
    }
}

/// TiDB-style commit timestamps: physical milliseconds << 18 | logical, strictly increasing.
struct Clock {
    ms: u64,
    logical: u64,
}

impl Clock {
    fn next(&mut self) -> u64 {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0);
        if now > self.ms {
            self.ms = now;
            self.logical = 0;
        } else {
            self.logical += 1;
        }
        (self.ms << 18) | self.logical
    }
}

/// One Kafka record to produce.
pub struct Message {
    pub topic: String,
    pub partition: i32,
    pub payload: Vec<u8>,
}

#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub changes: u64,
    pub inserts: u64,
    pub updates: u64,
    pub deletes: u64,
    pub unknown_deletes: u64,
    pub key_changes: u64,
    pub resent: u64,
    pub watermarks: u64,
    pub ddl: u64,
}

/// A table upstream: its spec and its current rows (the model).
pub struct Upstream {
    pub spec: Spec,
    /// Key (as text, key order) → row.
    pub rows: BTreeMap<Vec<String>, Vec<Value>>,
    next_id: i64,
}

pub fn key_of(spec: &Spec, row: &[Value]) -> Vec<String> {
    spec.key
        .iter()
        .map(|&i| match &row[i] {
            Value::Text(s) => s.clone(),
            Value::Bytes(b) => {
                let mut s = String::new();
                crate::model::change::push_hex(&mut s, b);
                s
            }
            Value::Null | Value::Unchanged => String::new(),
        })
        .collect()
}

/// One row change upstream, in commit order: the model's history, so that the demo can check a
/// replica against upstream *as of* the point a merge reports.
pub struct Applied {
    pub table: usize,
    pub ts: u64,
    pub key: Vec<String>,
    /// The row after the change; `None`: deleted.
    pub row: Option<Vec<Value>>,
}

/// The generator: each step is one upstream transaction.
pub struct Workload {
    rng: Rng,
    clock: Clock,
    pub tables: Vec<Upstream>,
    pub partitions: i32,
    pub counts: Counts,
    /// The last messages of each (table, partition), for TiCDC-style re-sends.
    recent: HashMap<(usize, i32), VecDeque<Vec<u8>>>,
    steps: u64,
    /// Changes not yet taken by [`Workload::take_until`].
    pub history: VecDeque<Applied>,
}

impl Workload {
    pub fn new(seed: u64, partitions: i32) -> Workload {
        Workload {
            rng: Rng::new(seed),
            clock: Clock { ms: 0, logical: 0 },
            tables: vec![
                Upstream { spec: item(), rows: BTreeMap::new(), next_id: 1 },
                Upstream { spec: orders(), rows: BTreeMap::new(), next_id: 3001 },
            ],
            partitions,
            counts: Counts::default(),
            recent: HashMap::new(),
            steps: 0,
            history: VecDeque::new(),
        }
    }

    /// The CREATE TABLE statements, as TiCDC sends DDL: on partition 0 of each topic.
    pub fn ddl(&mut self) -> Vec<Message> {
        let ts = self.clock.next();
        self.counts.ddl += self.tables.len() as u64;
        self.tables
            .iter()
            .map(|t| Message { topic: t.spec.topic.clone(), partition: 0, payload: ddl_message(&t.spec, ts) })
            .collect()
    }

    /// A watermark, broadcast to every partition of every topic.
    pub fn watermark(&mut self) -> Vec<Message> {
        let ts = self.clock.next();
        let mut out = Vec::new();
        for t in &self.tables {
            for p in 0..self.partitions {
                out.push(Message { topic: t.spec.topic.clone(), partition: p, payload: watermark_message(ts) });
                self.counts.watermarks += 1;
            }
        }
        out
    }

    /// One upstream transaction (one or two messages), sometimes followed by a re-sent run.
    pub fn step(&mut self) -> Vec<Message> {
        self.steps += 1;
        let ti = if self.rng.chance(40) { 0 } else { 1 };
        let mut out = self.change(ti);
        if self.rng.below(300) == 0 {
            out.extend(self.resend());
        }
        out
    }

    fn change(&mut self, ti: usize) -> Vec<Message> {
        let ts = self.clock.next();
        self.counts.changes += 1;
        let roll = self.rng.below(100);
        let live = self.tables[ti].rows.len() as u64;
        let mut msgs = Vec::new();
        if live < 20 || roll < 45 {
            let row = self.new_row(ti, None);
            self.counts.inserts += 1;
            msgs.push(self.emit(ti, "INSERT", &row, None, ts));
            self.set(ti, ts, row);
        } else if roll < 50 {
            // A delete of a key the table never had: must not create a row of NULLs.
            let mut row = self.new_row(ti, None);
            let id = 900_000_000 + self.rng.below(1_000_000) as i64;
            row[self.tables[ti].spec.key[self.tables[ti].spec.key.len() - 1]] = Value::Text(id.to_string());
            self.counts.unknown_deletes += 1;
            msgs.push(self.emit(ti, "DELETE", &row, None, ts));
        } else {
            let old = self.pick(ti);
            let old_key = key_of(&self.tables[ti].spec, &old);
            if roll < 80 {
                let mut row = self.new_row(ti, Some(&old));
                for &k in &self.tables[ti].spec.key {
                    row[k] = old[k].clone();
                }
                self.counts.updates += 1;
                msgs.push(self.emit(ti, "UPDATE", &row, Some(&old), ts));
                self.set(ti, ts, row);
            } else if roll < 90 {
                self.counts.deletes += 1;
                msgs.push(self.emit(ti, "DELETE", &old, None, ts));
                self.delete(ti, ts, old_key);
            } else {
                // The key changes. TiCDC (since v6.5, and always for clustered primary keys)
                // splits the UPDATE into a DELETE of the old key and an INSERT of the new one,
                // same commit ts, each on its own key's partition. Unsplit UPDATEs
                // (output-raw-change-event) go to the new key's partition; the demo sends those
                // only where both keys share a partition, since across partitions TiCDC itself
                // no longer orders the old key's delete after its earlier changes (tiflow #11297).
                let row = self.new_row(ti, Some(&old));
                self.counts.key_changes += 1;
                let same = index_value_partition(&self.tables[ti].spec, &row, self.partitions)
                    == index_value_partition(&self.tables[ti].spec, &old, self.partitions);
                if same && roll < 95 {
                    msgs.push(self.emit(ti, "UPDATE", &row, Some(&old), ts));
                } else {
                    msgs.push(self.emit(ti, "DELETE", &old, None, ts));
                    msgs.push(self.emit(ti, "INSERT", &row, None, ts));
                }
                self.delete(ti, ts, old_key);
                self.set(ti, ts, row);
            }
        }
        msgs
    }

    /// Upstream writes `row` at `ts`.
    fn set(&mut self, ti: usize, ts: u64, row: Vec<Value>) {
        let key = key_of(&self.tables[ti].spec, &row);
        self.history.push_back(Applied { table: ti, ts, key: key.clone(), row: Some(row.clone()) });
        self.tables[ti].rows.insert(key, row);
    }

    /// Upstream deletes `key` at `ts`.
    fn delete(&mut self, ti: usize, ts: u64, key: Vec<String>) {
        self.tables[ti].rows.remove(&key);
        self.history.push_back(Applied { table: ti, ts, key, row: None });
    }

    /// The changes committed at or before `ts` not taken yet, oldest first.
    pub fn take_until(&mut self, ts: u64) -> Vec<Applied> {
        let n = self.history.iter().take_while(|a| a.ts <= ts).count();
        self.history.drain(..n).collect()
    }

    /// An existing row; a fifth of the time one of a few hot keys, so that one key changes
    /// several times between merges.
    fn pick(&mut self, ti: usize) -> Vec<Value> {
        let rows = &self.tables[ti].rows;
        let n = rows.len() as u64;
        let i = if self.rng.chance(20) { self.rng.below(n.min(10)) } else { self.rng.below(n) };
        rows.values().nth(i as usize).cloned().unwrap_or_default()
    }

    /// A row with a new key (unless `like` is given, whose key the caller decides).
    fn new_row(&mut self, ti: usize, like: Option<&[Value]>) -> Vec<Value> {
        let id = self.tables[ti].next_id;
        self.tables[ti].next_id += 1;
        let r = &mut self.rng;
        let t = |s: String| Value::Text(s);
        match ti {
            0 => {
                let data = match r.below(10) {
                    0 => Value::Null,
                    1 => t(String::new()),
                    2 => t(format!("quote ' \" back\\slash {}", r.below(1000))),
                    3 => t(format!("naïve café 😀 {}", r.below(1000))),
                    _ => t(format!("data-{:x}", r.next_u64())),
                };
                vec![
                    t(id.to_string()),
                    t((1 + r.below(10_000)).to_string()),
                    t(format!("item-{}", r.below(100_000))),
                    t(format!("{}.{:02}", r.below(1000), r.below(100))),
                    data,
                ]
            }
            _ => {
                let (w, d) = match like {
                    Some(old) => (old[2].clone(), old[1].clone()),
                    None => (t((1 + r.below(4)).to_string()), t((1 + r.below(10)).to_string())),
                };
                let note: Vec<u8> = (0..r.below(17))
                    .map(|i| {
                        if i == 0 {
                            0
                        } else if i == 1 {
                            255
                        } else {
                            r.below(256) as u8
                        }
                    })
                    .collect();
                vec![
                    t(id.to_string()),
                    d,
                    w,
                    t((1 + r.below(3000)).to_string()),
                    t(r.datetime()),
                    if r.chance(30) { Value::Null } else { t((1 + r.below(10)).to_string()) },
                    t((5 + r.below(11)).to_string()),
                    t(r.below(2).to_string()),
                    // NULL next to empty bytes: the replica must keep them apart.
                    if r.chance(10) { Value::Null } else { Value::Bytes(note) },
                    t(if r.chance(20) { (u64::MAX - r.below(1000)).to_string() } else { r.next_u64().to_string() }),
                ]
            }
        }
    }

    fn emit(&mut self, ti: usize, kind: &str, row: &[Value], old: Option<&[Value]>, ts: u64) -> Message {
        let spec = &self.tables[ti].spec;
        let payload = dml_message(spec, kind, row, old, ts);
        // index-value dispatch: the partition of the row's (new) key.
        let partition = index_value_partition(spec, row, self.partitions);
        let recent = self.recent.entry((ti, partition)).or_default();
        recent.push_back(payload.clone());
        if recent.len() > 64 {
            recent.pop_front();
        }
        Message { topic: spec.topic.clone(), partition, payload }
    }

    /// TiCDC after a restart: a run of the last messages of one partition, sent again.
    fn resend(&mut self) -> Vec<Message> {
        let ti = self.rng.below(self.tables.len() as u64) as usize;
        let p = self.rng.below(self.partitions as u64) as i32;
        let Some(recent) = self.recent.get(&(ti, p)) else { return Vec::new() };
        let n = (5 + self.rng.below(40) as usize).min(recent.len());
        let run: Vec<Message> = recent
            .iter()
            .skip(recent.len() - n)
            .map(|m| Message { topic: self.tables[ti].spec.topic.clone(), partition: p, payload: m.clone() })
            .collect();
        self.counts.resent += run.len() as u64;
        run
    }
}

/// TiCDC's index-value dispatcher: a hash of the table and its key values.
pub fn index_value_partition(spec: &Spec, row: &[Value], partitions: i32) -> i32 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut feed = |b: &[u8]| {
        for x in b {
            h ^= *x as u64;
            h = h.wrapping_mul(0x100000001b3);
        }
    };
    feed(spec.db.as_bytes());
    feed(spec.table.as_bytes());
    for &k in &spec.key {
        feed(spec.columns[k].0.as_bytes());
        if let Value::Text(s) = &row[k] {
            feed(s.as_bytes());
        }
    }
    (h % partitions.max(1) as u64) as i32
}

fn json_value(out: &mut String, v: &Value) {
    match v {
        Value::Null | Value::Unchanged => out.push_str("null"),
        Value::Text(s) => write_json_str(out, s),
        // canal-json: each byte as the code point U+0000..U+00FF.
        Value::Bytes(b) => write_json_str(out, &b.iter().map(|&x| x as char).collect::<String>()),
    }
}

fn json_row(out: &mut String, spec: &Spec, row: &[Value]) {
    out.push_str("[{");
    for (i, ((name, _, _), v)) in spec.columns.iter().zip(row).enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_str(out, name);
        out.push(':');
        json_value(out, v);
    }
    out.push_str("}]");
}

/// A canal-json DML message, fields in TiCDC's order.
pub fn dml_message(spec: &Spec, kind: &str, row: &[Value], old: Option<&[Value]>, ts: u64) -> Vec<u8> {
    let mut o = String::with_capacity(512);
    o.push_str("{\"id\":0,\"database\":");
    write_json_str(&mut o, spec.db);
    o.push_str(",\"table\":");
    write_json_str(&mut o, spec.table);
    o.push_str(",\"pkNames\":[");
    for (i, &k) in spec.key.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_json_str(&mut o, spec.columns[k].0);
    }
    o.push_str(&format!(
        "],\"isDdl\":false,\"type\":\"{kind}\",\"es\":{},\"ts\":{},\"sql\":\"\",\"sqlType\":{{",
        ts >> 18,
        (ts >> 18) + 3
    ));
    for (i, (name, _, code)) in spec.columns.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_json_str(&mut o, name);
        o.push_str(&format!(":{code}"));
    }
    o.push_str("},\"mysqlType\":{");
    for (i, (name, ty, _)) in spec.columns.iter().enumerate() {
        if i > 0 {
            o.push(',');
        }
        write_json_str(&mut o, name);
        o.push(':');
        write_json_str(&mut o, ty);
    }
    o.push_str("},\"data\":");
    json_row(&mut o, spec, row);
    o.push_str(",\"old\":");
    match old {
        Some(old) => json_row(&mut o, spec, old),
        None => o.push_str("null"),
    }
    o.push_str(&format!(",\"_tidb\":{{\"commitTs\":{ts}}}}}"));
    o.into_bytes()
}

fn ddl_message(spec: &Spec, ts: u64) -> Vec<u8> {
    let mut sql = String::new();
    write_json_str(&mut sql, spec.ddl);
    format!(
        "{{\"id\":0,\"database\":\"{}\",\"table\":\"{}\",\"pkNames\":null,\"isDdl\":true,\"type\":\"CREATE\",\"es\":{},\"ts\":{},\"sql\":{sql},\"sqlType\":null,\"mysqlType\":null,\"data\":null,\"old\":null,\"_tidb\":{{\"commitTs\":{ts}}}}}",
        spec.db,
        spec.table,
        ts >> 18,
        (ts >> 18) + 3
    )
    .into_bytes()
}

/// TiCDC canal-json's watermark (`enable-tidb-extension=true`).
pub fn watermark_message(ts: u64) -> Vec<u8> {
    format!(
        "{{\"id\":0,\"database\":\"\",\"table\":\"\",\"pkNames\":null,\"isDdl\":false,\"type\":\"TIDB_WATERMARK\",\"es\":{},\"ts\":{},\"sql\":\"\",\"sqlType\":null,\"mysqlType\":null,\"data\":null,\"old\":null,\"_tidb\":{{\"watermarkTs\":{ts}}}}}",
        ts >> 18,
        (ts >> 18) + 3
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::canal_json::CanalJsonDecoder;
    use crate::codec::Decoded;

    #[test]
    fn generated_messages_decode_back_to_the_model() {
        let mut w = Workload::new(7, 4);
        let mut dec = CanalJsonDecoder::default();
        for m in w.ddl() {
            assert!(matches!(dec.decode(&m.payload).unwrap(), Decoded::Ddl { .. }));
        }
        for m in w.watermark() {
            assert!(matches!(dec.decode(&m.payload).unwrap(), Decoded::Watermark { .. }));
        }
        for _ in 0..2000 {
            for m in w.step() {
                match dec.decode(&m.payload).unwrap() {
                    Decoded::Rows(mut r) => {
                        r.remove(0).into_changes(None).unwrap();
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(w.counts.key_changes > 0 && w.counts.unknown_deletes > 0 && w.counts.resent > 0);
    }
}
