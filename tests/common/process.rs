//! `tidemark run` as a child process, the way it runs in production: its log in a file,
//! stopped by signals (SIGTERM to stop, SIGKILL to crash).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A fresh log file under target/tmp/, kept after the test for reading when it fails.
pub fn log_path(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_file(&p);
    p
}

pub struct Tidemark {
    child: Child,
    pub log: PathBuf,
    /// Where this process's part of the (shared, appended) log starts.
    log_start: u64,
}

impl Tidemark {
    /// `tidemark --config <config> run`, logging to `log` (appended), with `env` added.
    pub fn run(config: &Path, log: &Path, env: &[(&str, &str)]) -> Tidemark {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let log_start = file.metadata().map(|m| m.len()).unwrap_or(0);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidemark"));
        cmd.args(["--config", config.to_str().expect("utf-8 path"), "run"])
            .env("RUST_LOG", "info,librdkafka=warn,sqlx=warn")
            .stdout(Stdio::null())
            .stderr(file);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Tidemark { child: cmd.spawn().expect("spawn tidemark run"), log: log.to_path_buf(), log_start }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -<sig>` (a process that already exited is not an error).
    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status();
    }

    /// The exit status, if it has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("try_wait")
    }

    /// Waits up to `limit` for it to exit.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.try_wait() {
                return Some(s);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Like a crash: SIGKILL, then reaped.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Resident memory, in KiB.
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            })
            .unwrap_or(0)
    }

    /// This process's log lines.
    pub fn log_text(&self) -> String {
        let all = std::fs::read(&self.log).unwrap_or_default();
        String::from_utf8_lossy(all.get(self.log_start as usize..).unwrap_or_default()).into_owned()
    }

    /// The port its HTTP endpoint listens on (configured as `127.0.0.1:0`: the system assigns
    /// it, the log says which).
    pub fn http_port(&mut self, limit: Duration) -> u16 {
        self.wait_for_log("serving /metrics", limit);
        let text = self.log_text();
        let line = text.lines().find(|l| l.contains("serving /metrics")).expect("the line");
        // A JSON line (`"listen":"127.0.0.1:40925"`) or a text one (`listen=127.0.0.1:40925`).
        let rest = line.split("\"listen\":\"").nth(1).or_else(|| line.split("listen=").nth(1));
        rest.and_then(|r| r.split(['"', ' ']).next())
            .and_then(|addr| addr.rsplit(':').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no port in {line:?}"))
    }

    /// Waits until its log shows `what` (it exiting first is a failure).
    pub fn wait_for_log(&mut self, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.log_text().contains(what) {
            assert!(self.try_wait().is_none(), "run exited before logging {what:?}:\n{}", self.log_text());
            assert!(Instant::now() < deadline, "run did not log {what:?} within {limit:?}:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tidemark {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
