//! What tidemark cannot order: in a stream without watermarks, a key's changes are ordered by
//! commit ts and, within a partition, by offset — exact only when every change of a key goes to
//! one partition (TiCDC's index-value or table dispatch). One key seen on two partitions of a
//! topic means it does not (the `ts` or `columns` dispatcher, or a topic whose partitions
//! changed): a lagging partition can then hand an older change in after a newer one. Said
//! once per table, recorded for `status` and the metrics.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

/// Keys remembered per landing process before the memory starts again.
const MAX_KEYS: usize = 200_000;

#[derive(Default)]
pub struct KeyPartitions {
    /// (table index, hash of the key) → the partition it was last seen on.
    seen: HashMap<(usize, u64), i32>,
    /// Tables already warned about.
    warned: HashSet<usize>,
}

impl KeyPartitions {
    /// A change of table `ti`'s key on `partition`: the other partition the key was seen on, the
    /// first time a table shows one.
    pub fn observe(&mut self, ti: usize, key_json: &str, partition: i32) -> Option<i32> {
        if self.warned.contains(&ti) {
            return None;
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key_json.hash(&mut h);
        if self.seen.len() >= MAX_KEYS {
            self.seen.clear();
        }
        match self.seen.insert((ti, h.finish()), partition) {
            Some(other) if other != partition => Some(other),
            _ => None,
        }
    }

    /// The table's warning is recorded: no more checks for it.
    pub fn warned(&mut self, ti: usize) {
        self.warned.insert(ti);
        self.seen.retain(|(t, _), _| *t != ti);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_on_two_partitions_is_said_once() {
        let mut k = KeyPartitions::default();
        assert_eq!(k.observe(0, r#"{"id":"1"}"#, 0), None);
        assert_eq!(k.observe(0, r#"{"id":"1"}"#, 0), None);
        assert_eq!(k.observe(1, r#"{"id":"1"}"#, 3), None, "another table's key");
        assert_eq!(k.observe(0, r#"{"id":"1"}"#, 2), Some(0));
        k.warned(0);
        assert_eq!(k.observe(0, r#"{"id":"1"}"#, 5), None);
    }
}
