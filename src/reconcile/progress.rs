//! Progress of a long read (`snapshot`, `verify`): on a terminal one line redrawn in place —
//! rows, rows/s and the time left against the server's estimate; otherwise a plain line every
//! ten seconds, for logs.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub struct Progress {
    what: String,
    total: u64,
    done: u64,
    /// Rows done before this process started (not counted in its rate).
    resumed: u64,
    started: Instant,
    shown: Instant,
    terminal: bool,
}

impl Progress {
    /// `total`: the server's estimate of the rows (0: unknown); `done`: rows done before (a
    /// resumed snapshot).
    pub fn new(what: impl Into<String>, total: u64, done: u64) -> Progress {
        let now = Instant::now();
        Progress {
            what: what.into(),
            total,
            done,
            resumed: done,
            started: now,
            shown: now,
            terminal: std::io::stderr().is_terminal(),
        }
    }

    pub fn advance(&mut self, rows: u64) {
        self.done += rows;
        let every = if self.terminal { Duration::from_millis(200) } else { Duration::from_secs(10) };
        if self.shown.elapsed() >= every {
            self.shown = Instant::now();
            let line = self.line();
            let mut err = std::io::stderr();
            if self.terminal {
                let _ = write!(err, "\r{line}\x1b[K");
            } else {
                let _ = writeln!(err, "{line}");
            }
        }
    }

    fn line(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = self.done.saturating_sub(self.resumed) as f64 / secs;
        let mut line = format!("{}: {} rows", self.what, self.done);
        if self.total > self.done {
            let pct = 100.0 * self.done as f64 / self.total as f64;
            line.push_str(&format!(" of ~{} ({pct:.0}%)", self.total));
        }
        line.push_str(&format!(", {rate:.0} rows/s"));
        if self.total > self.done && rate > 0.0 {
            let left = (self.total - self.done) as f64 / rate;
            line.push_str(&format!(", ~{}s left", left.ceil() as u64));
        }
        line
    }

    /// Clears the terminal line.
    pub fn finish(&self) {
        if self.terminal {
            let _ = write!(std::io::stderr(), "\r\x1b[K");
        }
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }
}
