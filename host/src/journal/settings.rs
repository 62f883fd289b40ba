//! The `[journal]` table of `airlock.toml`: the commit contract.
//!
//! ```toml
//! [journal]
//! commit = "batched"      # or "each" (the default)
//! batch_window = "5ms"    # batched only: the longest an entry waits
//! batch_entries = 256     # batched only: the most entries uncommitted
//! ```

use super::{Batching, CommitMode};
use crate::toml_file::{ConfigError, TomlText, positive_count, timeout};
use serde::Deserialize;
use std::time::Duration;
use toml::Spanned;

/// The longest batching window accepted: a crash loses up to a window.
const MAX_WINDOW: Duration = Duration::from_secs(1);

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawJournal {
    commit: Option<Spanned<String>>,
    batch_window: Option<Spanned<String>>,
    batch_entries: Option<Spanned<usize>>,
}

impl RawJournal {
    /// Checks the table.
    pub(crate) fn into_mode(self, source: &TomlText<'_>) -> Result<CommitMode, ConfigError> {
        let batched = match &self.commit {
            None => false,
            Some(commit) => match commit.get_ref().as_str() {
                "each" => false,
                "batched" => true,
                other => {
                    return Err(source.error(
                        commit.span(),
                        format!(
                            "`commit = \"{other}\"` is not a commit mode: write \"each\" (an outcome waits for its entry's commit) or \"batched\" (entries committed in groups; a crash may lose the last window)"
                        ),
                    ));
                }
            },
        };
        if !batched {
            let stray = self
                .batch_window
                .as_ref()
                .map(|w| ("batch_window", w.span()))
                .or(self
                    .batch_entries
                    .as_ref()
                    .map(|e| ("batch_entries", e.span())));
            if let Some((key, span)) = stray {
                return Err(source.error(
                    span,
                    format!("`{key}` applies only with `commit = \"batched\"`: set that, or remove the key"),
                ));
            }
            return Ok(CommitMode::Each);
        }
        let defaults = Batching::default();
        let window_span = self.batch_window.as_ref().map(Spanned::span);
        let window = timeout(self.batch_window, defaults.window, "batch_window", source)?;
        if let Some(span) = window_span.filter(|_| window > MAX_WINDOW) {
            return Err(source.error(
                span,
                "`batch_window` may be at most 1s: a crash loses up to one window of acknowledged entries",
            ));
        }
        let entries = positive_count(
            self.batch_entries,
            defaults.entries,
            "batch_entries",
            "would leave no room to queue an entry",
            source,
        )?;
        Ok(CommitMode::Batched(Batching { window, entries }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(text: &str) -> Result<CommitMode, String> {
        let raw: RawJournal = toml::from_str(text).map_err(|e| e.to_string())?;
        raw.into_mode(&TomlText {
            text,
            origin: "airlock.toml",
        })
        .map_err(|e| e.to_string())
    }

    #[test]
    fn modes_and_their_mistakes() {
        assert_eq!(mode(""), Ok(CommitMode::Each));
        assert_eq!(mode("commit = \"each\""), Ok(CommitMode::Each));
        assert_eq!(
            mode("commit = \"batched\""),
            Ok(CommitMode::Batched(Batching::default()))
        );
        assert_eq!(
            mode("commit = \"batched\"\nbatch_window = \"2ms\"\nbatch_entries = 16"),
            Ok(CommitMode::Batched(Batching {
                window: Duration::from_millis(2),
                entries: 16
            }))
        );
        for (text, says) in [
            ("commit = \"sometimes\"", "not a commit mode"),
            ("batch_entries = 8", "only with `commit = \"batched\"`"),
            ("commit = \"each\"\nbatch_window = \"1ms\"", "only with"),
            ("commit = \"batched\"\nbatch_window = \"5s\"", "at most 1s"),
            (
                "commit = \"batched\"\nbatch_window = \"0s\"",
                "positive duration",
            ),
            ("commit = \"batched\"\nbatch_entries = 0", "no room"),
        ] {
            let error = mode(text).expect_err(text);
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
