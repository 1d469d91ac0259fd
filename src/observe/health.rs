//! What the service is waiting for: Kafka, the warehouse or the schema registry, each either
//! reachable or down since some time with an error. Every part of the service reports here;
//! a change of state is logged once (not once per record or per retry), and `status`, the
//! instance heartbeat and readiness read it.

use std::collections::BTreeMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::{error, info};

/// Something outside tidemark it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dependency {
    Kafka,
    Warehouse,
    SchemaRegistry,
    /// Where claim-check objects are kept (S3-compatible storage).
    ClaimCheckStorage,
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dependency::Kafka => "Kafka",
            Dependency::Warehouse => "the warehouse",
            Dependency::SchemaRegistry => "the schema registry",
            Dependency::ClaimCheckStorage => "the claim-check storage",
        })
    }
}

/// A dependency that is down.
#[derive(Debug, Clone, Serialize)]
pub struct Down {
    pub dependency: Dependency,
    pub since: DateTime<Utc>,
    pub error: String,
}

impl Dependency {
    /// Its name in metrics and JSON.
    pub fn key(self) -> &'static str {
        match self {
            Dependency::Kafka => "kafka",
            Dependency::Warehouse => "warehouse",
            Dependency::SchemaRegistry => "schema_registry",
            Dependency::ClaimCheckStorage => "claim_check_storage",
        }
    }
}

#[derive(Default)]
pub struct Health {
    down: Mutex<BTreeMap<Dependency, Down>>,
    /// Dependencies that have answered at least once since the start.
    seen: Mutex<std::collections::BTreeSet<Dependency>>,
    /// Tables whose merges are stopped, and why.
    stopped: Mutex<Vec<(String, String)>>,
}

impl Health {
    pub fn new() -> Health {
        Health::default()
    }

    /// Reports `d` failing; logs (once) when it was up. Returns whether it was up.
    pub fn failing(&self, d: Dependency, error: &str) -> bool {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = down.get_mut(&d) {
            state.error = error.to_string();
            return false;
        }
        error!(dependency = %d, error, "{d} is unreachable; waiting for it (retrying with backoff, nothing is committed meanwhile)");
        crate::observe::telemetry::dependency(d.key(), false);
        down.insert(d, Down { dependency: d, since: Utc::now(), error: error.to_string() });
        true
    }

    /// Reports `d` working; logs (once) when it was down.
    pub fn working(&self, d: Dependency) {
        if self.seen.lock().unwrap_or_else(|e| e.into_inner()).insert(d) {
            crate::observe::telemetry::dependency(d.key(), true);
        }
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = down.remove(&d) {
            let secs = (Utc::now() - state.since).num_milliseconds() as f64 / 1000.0;
            info!(dependency = %d, down_s = secs, "{d} is reachable again");
            crate::observe::telemetry::dependency(d.key(), true);
        }
    }

    /// The tables whose merges are stopped now (the heartbeat reads them from the warehouse).
    pub fn set_stopped(&self, tables: Vec<(String, String)>) {
        *self.stopped.lock().unwrap_or_else(|e| e.into_inner()) = tables;
    }

    /// Why the service cannot do its job, if it cannot: `/readyz`. Ready means Kafka and the
    /// warehouse answered since the start and are not down now (the warehouse's migrations
    /// are applied before anything else runs), the registry is not down, and no table is stopped.
    pub fn readiness_problems(&self) -> Vec<String> {
        let mut problems: Vec<String> = self
            .waiting_for()
            .iter()
            .map(|d| format!("{} is unreachable since {} UTC: {}", d.dependency, d.since.format("%H:%M:%S"), d.error))
            .collect();
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for d in [Dependency::Kafka, Dependency::Warehouse] {
            if !seen.contains(&d) && !self.is_down(d) {
                problems.push(format!("{d} has not answered yet"));
            }
        }
        for (table, why) in self.stopped.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            problems.push(format!("table `{table}` is stopped: {why}"));
        }
        problems
    }

    /// Whether `d` has answered since the start.
    pub fn has_answered(&self, d: Dependency) -> bool {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).contains(&d)
    }

    pub fn is_down(&self, d: Dependency) -> bool {
        self.down.lock().unwrap_or_else(|e| e.into_inner()).contains_key(&d)
    }

    /// What the service is waiting for, oldest first.
    pub fn waiting_for(&self) -> Vec<Down> {
        let mut v: Vec<Down> = self.down.lock().unwrap_or_else(|e| e.into_inner()).values().cloned().collect();
        v.sort_by_key(|d| d.since);
        v
    }

    /// One line for humans: `waiting for the warehouse since 12:00:01 (error)`, or `running`.
    pub fn describe(&self) -> String {
        let w = self.waiting_for();
        if w.is_empty() {
            return "running".into();
        }
        w.iter()
            .map(|d| format!("waiting for {} since {} UTC ({})", d.dependency, d.since.format("%H:%M:%S"), d.error))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_change_once() {
        let h = Health::new();
        assert_eq!(h.describe(), "running");
        assert!(h.failing(Dependency::Warehouse, "connection refused"));
        assert!(!h.failing(Dependency::Warehouse, "connection refused again"));
        assert!(h.describe().starts_with("waiting for the warehouse since"), "{}", h.describe());
        assert!(h.describe().ends_with("(connection refused again)"));
        h.working(Dependency::Warehouse);
        assert!(!h.is_down(Dependency::Warehouse));
        assert_eq!(h.describe(), "running");
        assert_eq!(h.readiness_problems(), vec!["Kafka has not answered yet".to_string()]);
        h.working(Dependency::Kafka);
        h.set_stopped(vec![("item".into(), "int → varchar".into())]);
        assert_eq!(h.readiness_problems(), vec!["table `item` is stopped: int → varchar".to_string()]);
        h.set_stopped(vec![]);
        assert!(h.readiness_problems().is_empty());
    }
}
