//! The suite's report: one row per case, one column per language.

use std::fmt::Write as _;

/// Pass or the reason a cell failed, by case then language.
pub struct Matrix {
    languages: Vec<String>,
    rows: Vec<(String, Vec<Result<(), String>>)>,
}

impl Matrix {
    pub fn new(languages: &[&str]) -> Self {
        Self {
            languages: languages.iter().map(|l| l.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Records `lang`'s verdict on `case` (rows appear in first-seen order).
    pub fn record(&mut self, case: &str, lang: &str, verdict: Result<(), String>) {
        let column = self
            .languages
            .iter()
            .position(|l| l == lang)
            .expect("a known language");
        if self.rows.last().is_none_or(|(name, _)| name != case) {
            let empty = self
                .languages
                .iter()
                .map(|_| Err("not run".into()))
                .collect();
            self.rows.push((case.to_string(), empty));
        }
        if let Some((_, cells)) = self.rows.last_mut() {
            cells[column] = verdict;
        }
    }

    pub fn all_passed(&self) -> bool {
        self.rows
            .iter()
            .all(|(_, cells)| cells.iter().all(Result::is_ok))
    }

    /// The table: `ok` or `FAIL` per cell.
    pub fn render(&self) -> String {
        let width = self
            .rows
            .iter()
            .map(|(n, _)| n.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut out = format!("{:width$}", "case");
        for lang in &self.languages {
            let _ = write!(out, "  {lang:>6}");
        }
        out.push('\n');
        for (name, cells) in &self.rows {
            let _ = write!(out, "{name:width$}");
            for cell in cells {
                let _ = write!(out, "  {:>6}", if cell.is_ok() { "ok" } else { "FAIL" });
            }
            out.push('\n');
        }
        out
    }

    /// Every failing cell with its reason.
    pub fn failures(&self) -> String {
        let mut out = String::new();
        for (name, cells) in &self.rows {
            for (lang, cell) in self.languages.iter().zip(cells) {
                if let Err(why) = cell {
                    let _ = writeln!(out, "{name} [{lang}]: {why}");
                }
            }
        }
        out
    }
}
