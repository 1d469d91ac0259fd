//! `tidemark` child processes of the bench — so their memory is their own — with their
//! configs, and a PostgreSQL database of the bench's own for each measurement.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use minijinja::Value as TmplValue;
use sqlx::Connection;

use super::order_line::TABLE;
use super::BenchArgs;
use crate::sql::dialect::Dialect;
use crate::sql::{safe, BenchStmt, Sql, TableCtx, BENCH_TEMPLATES};

/// A config for the child processes.
/// `brokers`: the bootstrap servers it consumes from.
pub fn write_config(
    args: &BenchArgs,
    brokers: &str,
    topic: &str,
    url: &str,
    group: &str,
    schedule: &str,
) -> Result<PathBuf> {
    let path = args.dir.join(format!("{group}.toml"));
    std::fs::write(
        &path,
        format!(
            "[kafka]\nbootstrap_servers = {:?}\ngroup_id = {group:?}\n\
             [kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
             [warehouse]\nurl = {url:?}\n[defaults]\nschedule = {schedule:?}\n\
             [[tables]]\nname = {TABLE:?}\ntopic = {topic:?}\n",
            brokers
        ),
    )
    .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// A child `tidemark` process and its peak resident set, sampled until it exits.
pub struct Measured {
    pub child: Child,
    peak_kib: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
}

impl Measured {
    pub fn spawn(config: &Path, args: &[&str], log: &Path) -> Result<Measured> {
        let exe = std::env::current_exe().context("finding the tidemark binary")?;
        let log = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = Command::new(exe)
            .args(["--log-format", "text", "--config"])
            .arg(config)
            .args(args)
            .env("RUST_LOG", "info,librdkafka=warn,sqlx=warn,tidemark::merge=debug,tidemark::land=debug")
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .context("starting a tidemark child process")?;
        let (peak_kib, done) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let (pid, peak, stop) = (child.id(), peak_kib.clone(), done.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Some(kib) = vm_hwm(pid) {
                    peak.fetch_max(kib, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok(Measured { child, peak_kib, done })
    }

    pub fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Waits for the child to exit by itself.
    pub async fn wait(&mut self) -> Result<std::process::ExitStatus> {
        let status = loop {
            if let Some(s) = self.child.try_wait()? {
                break s;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        self.done.store(true, Ordering::Relaxed);
        Ok(status)
    }

    pub fn terminate(&mut self) -> Result<()> {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait()?.is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("a tidemark child did not stop within 60 s of SIGTERM");
            }
            if let Some(kib) = vm_hwm(self.child.id()) {
                self.peak_kib.fetch_max(kib, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.done.store(true, Ordering::Relaxed);
        Ok(())
    }
}

impl Drop for Measured {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The peak resident set of a process, KiB.
fn vm_hwm(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// A database of its own on the bench's PostgreSQL server.
pub struct PgDb {
    admin: String,
    name: String,
    pub url: String,
}

impl PgDb {
    pub async fn create(admin: &str, what: &str) -> Result<PgDb> {
        let name = format!("tidemark_bench_{}_{what}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .with_context(|| format!("connecting to PostgreSQL at {}", crate::config::redact::redact_url(admin)))?;
        let sql = Sql::with_sets(Dialect::Postgres, &[BENCH_TEMPLATES]);
        let db = [("b", TmplValue::from(name.as_str()))];
        for stmt in [BenchStmt::DropDatabase, BenchStmt::CreateDatabase] {
            let text = sql.render(stmt, &TableCtx::bare("-"), &db)?;
            sqlx::raw_sql(safe(text)).execute(&mut conn).await.with_context(|| format!("creating database {name}"))?;
        }
        let base = admin.split('?').next().unwrap_or(admin);
        let base = base.rsplit_once('/').map(|(b, _)| b).unwrap_or(base);
        Ok(PgDb { admin: admin.to_string(), url: format!("{base}/{name}"), name })
    }

    pub async fn drop_db(self) {
        let sql = Sql::with_sets(Dialect::Postgres, &[BENCH_TEMPLATES]);
        let Ok(text) = sql.render(BenchStmt::DropDatabase, &TableCtx::bare("-"), &[("b", TmplValue::from(self.name))])
        else {
            return;
        };
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.admin).await {
            let _ = sqlx::raw_sql(safe(text)).execute(&mut conn).await;
        }
    }
}
