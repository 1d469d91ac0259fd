//! What every stage reports while the service runs: [`health`] (which dependency it waits for,
//! which table is stopped) and [`telemetry`] (Prometheus metrics). `service::http` serves both.

pub mod health;
pub mod telemetry;
