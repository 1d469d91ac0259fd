//! The benchmark's upstream: TPC-C `order_line` (10 columns) as TiCDC writes it in canal-json.
//!
//! A replica of `rows` rows holds keys `0..rows`; the changes are 60% inserts of new keys, 30%
//! updates and 10% deletes of existing keys, skewed: 80% of them hit the hottest 10% of keys.
//! Probes for freshness use warehouse id 0, which no other row has.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::demo::workload::{dml_message, index_value_partition, watermark_message, Rng, Spec};
use crate::model::change::Value;

pub const TABLE: &str = "order_line";

pub fn spec(topic: &str) -> Spec {
    Spec {
        db: "tpcc",
        table: TABLE,
        topic: topic.to_string(),
        columns: vec![
            ("ol_o_id", "int", 4),
            ("ol_d_id", "tinyint", -6),
            ("ol_w_id", "smallint", 5),
            ("ol_number", "tinyint", -6),
            ("ol_i_id", "int", 4),
            ("ol_supply_w_id", "smallint", 5),
            ("ol_delivery_d", "datetime", 93),
            ("ol_quantity", "tinyint", -6),
            ("ol_amount", "decimal", 3),
            ("ol_dist_info", "char", 1),
        ],
        key: vec![2, 1, 0, 3],
        ddl: "",
    }
}

/// Key index → (o_id, d_id, w_id, number): unique, and the same mapping the replica fill uses.
fn key_of(k: u64) -> [u64; 4] {
    [k / 1000, 1 + (k / 10) % 10, 1 + k % 10, 1 + (k / 100) % 10]
}

/// One upstream change, ready to produce.
pub struct Change {
    pub partition: i32,
    pub payload: Vec<u8>,
    /// Upstream commit time, epoch ms.
    pub commit_ms: u64,
}

pub struct Generator {
    spec: Spec,
    rng: Rng,
    partitions: i32,
    /// Keys `0..rows` exist before the changes; new keys count up from `rows`.
    rows: u64,
    next_key: u64,
    /// Synthetic commit clock for preloaded changes (ms, logical); `None`: the real clock.
    synthetic: Option<(u64, u64)>,
    last_ts: u64,
    probes: u64,
}

impl Generator {
    pub fn new(topic: &str, rows: u64, partitions: i32, seed: u64, synthetic: bool) -> Generator {
        Generator {
            spec: spec(topic),
            rng: Rng::new(seed),
            partitions,
            rows,
            next_key: rows,
            synthetic: synthetic.then_some((1_790_000_000_000, 0)),
            last_ts: 0,
            probes: 0,
        }
    }

    fn ts(&mut self) -> (u64, u64) {
        let ms = match &mut self.synthetic {
            // A thousand changes per synthetic millisecond.
            Some((ms, n)) => {
                *n += 1;
                if *n % 1000 == 0 {
                    *ms += 1;
                }
                *ms
            }
            None => SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0),
        };
        let ts = (ms << 18).max(self.last_ts + 1);
        self.last_ts = ts;
        (ts, ts >> 18)
    }

    fn row(&mut self, key: [u64; 4]) -> Vec<Value> {
        let r = &mut self.rng;
        let t = |s: String| Value::Text(s);
        vec![
            t(key[0].to_string()),
            t(key[1].to_string()),
            t(key[2].to_string()),
            t(key[3].to_string()),
            t((1 + r.below(100_000)).to_string()),
            t((1 + r.below(10)).to_string()),
            if r.chance(30) { Value::Null } else { t(r.datetime()) },
            t((1 + r.below(10)).to_string()),
            t(format!("{}.{:02}", r.below(10_000), r.below(100))),
            t(format!("{:024x}", r.next_u64() as u128 * 0x9E37_79B9)),
        ]
    }

    /// An existing key, skewed: 80% from the hottest tenth.
    fn existing(&mut self) -> u64 {
        let hot = (self.rows / 10).max(1);
        if self.rng.chance(80) {
            self.rng.below(hot)
        } else {
            self.rng.below(self.rows.max(1))
        }
    }

    fn message(&mut self, kind: &str, row: &[Value]) -> Change {
        let (ts, commit_ms) = self.ts();
        Change {
            partition: index_value_partition(&self.spec, row, self.partitions),
            payload: dml_message(&self.spec, kind, row, (kind == "UPDATE").then_some(row), ts),
            commit_ms,
        }
    }

    /// The next change: 60% inserts, 30% updates, 10% deletes.
    pub fn next_change(&mut self) -> Change {
        let roll = self.rng.below(100);
        if roll < 60 || self.rows == 0 {
            let k = self.next_key;
            self.next_key += 1;
            let row = self.row(key_of(k));
            self.message("INSERT", &row)
        } else {
            let k = self.existing();
            let row = self.row(key_of(k));
            self.message(if roll < 90 { "UPDATE" } else { "DELETE" }, &row)
        }
    }

    /// A watermark at the current commit clock, one per partition, as TiCDC sends about once a
    /// second.
    pub fn watermarks(&mut self) -> Vec<Change> {
        let (ts, commit_ms) = self.ts();
        (0..self.partitions).map(|partition| Change { partition, payload: watermark_message(ts), commit_ms }).collect()
    }

    /// A probe: an insert of a key of warehouse 0, whose visibility the bench watches.
    /// Returns the change and the probe's o_id.
    pub fn probe(&mut self) -> (Change, u64) {
        self.probes += 1;
        let id = self.probes;
        let row = self.row([id, 1, 0, 1]);
        (self.message("INSERT", &row), id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::canal_json::CanalJsonDecoder;
    use crate::codec::Decoded;

    #[test]
    fn changes_decode_with_the_mix_asked_for() {
        let mut g = Generator::new("t", 1000, 4, 1, true);
        let mut dec = CanalJsonDecoder::default();
        let (mut ins, mut upd, mut del) = (0, 0, 0);
        for _ in 0..10_000 {
            let c = g.next_change();
            assert!((0..4).contains(&c.partition));
            match dec.decode(&c.payload).unwrap() {
                Decoded::Rows(mut r) => {
                    let ch = r.remove(0).into_changes(None).unwrap();
                    match ch[0].op.code() {
                        "c" => ins += 1,
                        "u" => upd += 1,
                        _ => del += 1,
                    }
                }
                other => panic!("{other:?}"),
            }
        }
        assert!((5500..6500).contains(&ins) && (2500..3500).contains(&upd) && (700..1300).contains(&del));
        assert_ne!(key_of(5), key_of(6));
    }
}
