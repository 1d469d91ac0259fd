//! Which configured table a record belongs to.

use crate::codec::large_message::{ClaimCheck, Compression};
use std::collections::HashMap;

use crate::config::{Format, OnError, Table};

/// The configured tables, by topic.
pub struct Router {
    pub tables: Vec<Table>,
    by_topic: HashMap<String, Vec<usize>>,
}

impl Router {
    pub fn new(tables: Vec<Table>) -> Router {
        let mut by_topic: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, t) in tables.iter().enumerate() {
            by_topic.entry(t.topic.clone()).or_default().push(i);
        }
        Router { tables, by_topic }
    }

    pub fn topics(&self) -> Vec<String> {
        let mut t: Vec<String> = self.by_topic.keys().cloned().collect();
        t.sort();
        t
    }

    /// The tables `topic` feeds (by index).
    pub fn candidates(&self, topic: &str) -> &[usize] {
        self.by_topic.get(topic).map(Vec::as_slice).unwrap_or_default()
    }

    /// The table of a change of upstream `db.table` read from `topic`.
    pub fn route(&self, topic: &str, db: &str, table: &str) -> Result<usize, String> {
        let c = self.candidates(topic);
        // A tombstone names no table: it belongs to its topic's table.
        if db.is_empty() && table.is_empty() {
            return match c {
                [only] => Ok(*only),
                _ => {
                    Err(format!("a record naming no table (a tombstone?) on topic {topic}, which feeds several tables"))
                }
            };
        }
        if let [only] = c {
            match &self.tables[*only].source {
                None => return Ok(*only),
                Some((d, t)) if d == db && t == table => return Ok(*only),
                Some(_) => {}
            }
        }
        c.iter()
            .copied()
            .find(|&i| matches!(&self.tables[i].source, Some((d, t)) if d == db && t == table))
            .ok_or_else(|| format!("a change of {db}.{table} on topic {topic}, which no configured table takes"))
    }

    /// A record that could not be routed stops the service if any table of its topic says so.
    pub fn on_error(&self, topic: &str) -> OnError {
        if self.candidates(topic).iter().any(|&i| self.tables[i].on_error == OnError::Stop) {
            OnError::Stop
        } else {
            OnError::DeadLetter
        }
    }

    /// The wire format of `topic` (its tables share one).
    pub fn format(&self, topic: &str) -> Format {
        self.candidates(topic).first().map(|&i| self.tables[i].format).unwrap_or_default()
    }

    /// How the topic's large messages come: its values' compression, its claim-check storage.
    pub fn large_messages(&self, topic: &str) -> (Compression, Option<&ClaimCheck>) {
        match self.candidates(topic).first() {
            Some(&i) => (self.tables[i].compression, self.tables[i].claim_check.as_ref()),
            None => (Compression::None, None),
        }
    }
}
