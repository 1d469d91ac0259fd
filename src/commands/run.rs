//! `tidemark run`: the service until SIGINT/SIGTERM, its shutdown bounded by
//! `[service] shutdown_timeout_s`.

use std::process::ExitCode;

use anyhow::Result;

use crate::config::Config;

pub async fn run(config: &Config) -> Result<ExitCode> {
    let shutdown = crate::service::signals()?;
    let mut told = shutdown.clone();
    let limit = std::time::Duration::from_secs(config.service.shutdown_timeout_s);
    let service = crate::service::run(config, shutdown, Default::default());
    tokio::pin!(service);
    // Stopping is bounded: once told to stop, the service has `limit` to finish.
    let overdue = async {
        let _ = told.wait_for(|stop| *stop).await;
        tokio::time::sleep(limit).await;
    };
    tokio::select! {
        r = &mut service => r.map(|_| ExitCode::SUCCESS),
        _ = overdue => {
            tracing::warn!(
                timeout_s = limit.as_secs(),
                "shutdown did not finish in time: exiting anyway; records read but not landed are read again \
                 by the next run, a merge cut short rolls back"
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
