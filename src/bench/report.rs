//! The bench's figures: each measurement's runs, and the table it prints.

/// One measurement's runs.
#[derive(Debug, Default, Clone)]
pub struct Runs(pub Vec<f64>);

impl Runs {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn median(&self) -> f64 {
        let mut v = self.0.clone();
        v.sort_by(|a, b| a.total_cmp(b));
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// The median of the run-by-run ratios `self / other` (each ratio from one run).
    pub fn ratio_to(&self, other: &Runs) -> f64 {
        Runs(self.0.iter().zip(&other.0).map(|(a, b)| a / b).collect()).median()
    }

    pub fn list(&self, f: impl Fn(f64) -> String) -> String {
        self.0.iter().map(|x| f(*x)).collect::<Vec<_>>().join(", ")
    }

    /// Every run, as `{:.0}`.
    pub fn whole(&self) -> String {
        self.list(|x| format!("{x:.0}"))
    }

    /// Every run, as `{:.2}`.
    pub fn hundredths(&self) -> String {
        self.list(|x| format!("{x:.2}"))
    }
}

/// What a ratio row is held to: a target, or only a note on what the row shows.
pub enum Goal {
    AtLeast(f64),
    Note(&'static str),
}

#[derive(Debug)]
pub struct Report {
    rows: Vec<[String; 6]>,
    pub details: Vec<String>,
    /// Every target met so far.
    pub met: bool,
}

impl Default for Report {
    fn default() -> Report {
        Report { rows: Vec::new(), details: Vec::new(), met: true }
    }
}

impl Report {
    pub fn row(&mut self, what: &str, tidemark: String, limit: String, ratio: String, target: &str, met: Option<bool>) {
        let mark = match met {
            Some(true) => "met",
            Some(false) => {
                self.met = false;
                "MISSED"
            }
            None => "",
        };
        self.rows.push([what.into(), tidemark, limit, ratio, target.into(), mark.into()]);
    }

    /// A row of tidemark against its limit: `ratio` (the median of each run's own ratio) held to
    /// `goal`.
    pub fn versus(&mut self, what: &str, tidemark: String, limit: String, ratio: f64, goal: Goal) {
        match goal {
            Goal::AtLeast(t) => {
                self.row(what, tidemark, limit, format!("{ratio:.2}"), &format!("≥ {t:.2}"), Some(ratio >= t))
            }
            Goal::Note(note) => self.row(what, tidemark, limit, format!("{ratio:.2}"), note, None),
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = String::from(
            "| measurement | tidemark | limit | tidemark / limit | target | |\n|---|---|---|---|---|---|\n",
        );
        for r in &self.rows {
            out.push_str(&format!("| {} |\n", r.join(" | ")));
        }
        out
    }
}
