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
}

impl std::fmt::Display for Dependency {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dependency::Kafka => "Kafka",
            Dependency::Warehouse => "the warehouse",
            Dependency::SchemaRegistry => "the schema registry",
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

#[derive(Default)]
pub struct Health {
    down: Mutex<BTreeMap<Dependency, Down>>,
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
        down.insert(d, Down { dependency: d, since: Utc::now(), error: error.to_string() });
        true
    }

    /// Reports `d` working; logs (once) when it was down.
    pub fn working(&self, d: Dependency) {
        let mut down = self.down.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = down.remove(&d) {
            let secs = (Utc::now() - state.since).num_milliseconds() as f64 / 1000.0;
            info!(dependency = %d, down_s = secs, "{d} is reachable again");
        }
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
    }
}
