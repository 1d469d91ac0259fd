//! The service under demo, in a task of this process, and the demo's progress line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::service::pipeline::ConsumeStats;
use crate::service::scheduler::MergeNotice;
use crate::warehouse::Warehouse;

/// The service under demo, in a task of this process.
pub struct Service {
    task: tokio::task::JoinHandle<Result<ConsumeStats>>,
    stop: watch::Sender<bool>,
    progress: watch::Receiver<ConsumeStats>,
}

impl Service {
    /// Starts the service; after each merge its scheduler sends a notice to `merges` and waits.
    pub fn start(config: &Config, merges: mpsc::Sender<MergeNotice>) -> Service {
        let (stop, stopped) = watch::channel(false);
        let (tx, progress) = watch::channel(Default::default());
        let config = config.clone();
        let task = tokio::spawn(async move {
            crate::service::run(&config, stopped, crate::service::Hooks { progress: Some(tx), merges: Some(merges) })
                .await
        });
        Service { task, stop, progress }
    }

    pub fn landed(&self) -> u64 {
        self.progress.borrow().records
    }

    /// Waits until the service has landed something (it has joined the group and reads).
    pub async fn wait_consuming(&mut self, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while self.landed() == 0 {
            self.check()?;
            if Instant::now() > deadline {
                bail!("the service did not start consuming within {} s", within.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Like `kill -9`: no shutdown, no final commit. Returns what it had landed.
    pub async fn kill(&mut self) -> ConsumeStats {
        self.task.abort();
        let _ = (&mut self.task).await;
        self.progress.borrow().clone()
    }

    pub fn check(&mut self) -> Result<()> {
        if self.task.is_finished() {
            bail!("the service stopped on its own (see the log above)");
        }
        Ok(())
    }

    pub async fn stop(&mut self) -> Result<ConsumeStats> {
        let _ = self.stop.send(true);
        (&mut self.task).await.context("the service task")?
    }
}

/// A progress line on a terminal, plain lines otherwise.
pub struct Progress {
    total: u64,
    tty: bool,
    last: std::cell::Cell<Instant>,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        Progress { total, tty: std::io::stderr().is_terminal(), last: std::cell::Cell::new(Instant::now()) }
    }

    pub async fn update(&self, wh: &Warehouse, changes: u64, service: &Service) {
        let every = if self.tty { Duration::from_millis(250) } else { Duration::from_secs(3) };
        if self.last.get().elapsed() < every {
            return;
        }
        self.last.set(Instant::now());
        let merges = super::check::merge_stats(wh).await.map(|s| s.merges).unwrap_or(0);
        let line =
            format!("  generated {changes}/{}  landed {} records  merges {merges}", self.total, service.landed());
        if self.tty {
            eprint!("\r{line:<78}");
            let _ = std::io::stderr().flush();
        } else {
            eprintln!("{line}");
        }
    }

    pub fn line(&self, text: &str) {
        if self.tty {
            eprint!("\r{:<78}\r", "");
        }
        eprintln!("  {text}");
    }

    pub fn done(&self) {
        if self.tty {
            eprint!("\r{:<78}\r", "");
        }
    }
}
