//! TiDB's timestamps (TSO): physical milliseconds since the epoch, shifted left 18 bits, plus a
//! logical counter. Commit ts, watermarks and consistent points are TSOs.

use chrono::{DateTime, Utc};

/// The wall-clock time of a TSO.
pub fn time(tso: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(tso >> 18)
}

/// `2026-12-02 10:00:00.123 UTC`, for logs and `status`.
pub fn describe(tso: i64) -> String {
    match time(tso) {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string(),
        None => format!("TSO {tso}"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn physical_time() {
        // TiCDC's documented example: 429918007904436226 is 2021-12-09 (its physical part).
        assert!(super::describe(429918007904436226).starts_with("2021-12-"), "{}", super::describe(429918007904436226));
    }
}
