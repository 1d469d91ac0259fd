//! Crash points for the fault tests: the process aborts — no unwinding, no shutdown, like
//! `kill -9` — at a named point of the pipeline, so a test can crash it exactly between two
//! steps whose order the correctness contract depends on.
//!
//! `TIDEMARK_FAILPOINTS="land.committed=3"` aborts the 3rd time `land.committed` is reached.
//! Unset (always, outside tests) every point costs one initialised-once check.
//!
//! The points: `land.written` (staging rows written, landing transaction not committed),
//! `land.committed` (landing committed, Kafka offsets not yet committed), `merge.applied`
//! (replica changed, staging not yet cleaned, transaction open), `merge.committed` (merge
//! committed, its lock not yet released), `snapshot.chunk_landed` (a snapshot chunk and its
//! progress committed), `snapshot.before_done` (every chunk landed, the snapshot not yet
//! recorded as done).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

static POINTS: OnceLock<Option<Mutex<HashMap<String, u64>>>> = OnceLock::new();

/// Counts a pass through `name`; aborts the process when the configured count is reached.
pub fn hit(name: &str) {
    let Some(points) = POINTS.get_or_init(|| parse(std::env::var("TIDEMARK_FAILPOINTS").ok().as_deref())) else {
        return;
    };
    let mut points = points.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(left) = points.get_mut(name) {
        *left = left.saturating_sub(1);
        if *left == 0 {
            eprintln!("tidemark: failpoint {name} reached: aborting");
            std::process::abort();
        }
    }
}

fn parse(spec: Option<&str>) -> Option<Mutex<HashMap<String, u64>>> {
    let spec = spec.filter(|s| !s.trim().is_empty())?;
    let points = spec
        .split(',')
        .filter_map(|p| {
            let (name, n) = p.split_once('=').unwrap_or((p, "1"));
            Some((name.trim().to_string(), n.trim().parse::<u64>().ok()?.max(1)))
        })
        .collect();
    Some(Mutex::new(points))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_points_and_counts() {
        assert!(parse(None).is_none() && parse(Some(" ")).is_none());
        let p = parse(Some("land.committed=3, merge.applied")).unwrap().into_inner().unwrap();
        assert_eq!(p.get("land.committed"), Some(&3));
        assert_eq!(p.get("merge.applied"), Some(&1));
    }
}
