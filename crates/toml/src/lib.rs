//! Reading the operator's TOML files (`airlock.toml`, grant files): where
//! a value came from as `file:line:column`, the one error type every such
//! file reports ([`ConfigError`]), and the checks values share (sizes,
//! positive counts, durations), each with what to write instead.

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

use serde::Deserialize;
use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;
use toml::Spanned;

/// Where TOML text came from, to turn byte spans into `file:line:column`.
pub struct TomlText<'a> {
    /// The whole text.
    pub text: &'a str,
    /// The file (or other origin) it came from.
    pub origin: &'a str,
}

impl TomlText<'_> {
    /// The 1-based line and column of byte `offset`.
    pub fn line_column(&self, offset: usize) -> (usize, usize) {
        line_column(self.text, offset)
    }

    /// A [`ConfigError::Invalid`] at the start of `span`.
    pub fn error(&self, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_column(self.text, span.start);
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line,
            column,
            message: message.into(),
        }
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// An operator configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The text is not a valid configuration.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        /// The file (or other origin).
        origin: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong and what to write instead.
        message: String,
    },
}

impl ConfigError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ConfigError::Read { .. } => "config_unreadable",
            ConfigError::Invalid { .. } => "invalid_config",
        }
    }

    /// The TOML parser's `error`, located in `text` from `origin`.
    pub fn from_toml(error: &toml::de::Error, text: &str, origin: &str) -> Self {
        let span = error.span().unwrap_or(0..0);
        TomlText { text, origin }.error(span, error.message().trim_end().to_string())
    }
}

/// A byte count as written: a number or a string such as `"1MiB"`.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum RawSize {
    /// Bytes.
    Number(i64),
    /// A size with its unit (`"64KiB"`, `"1MB"`).
    Text(String),
}

/// A byte count, or an error saying how to write one.
pub fn size(
    value: &Spanned<RawSize>,
    key: &str,
    source: &TomlText<'_>,
) -> Result<u64, ConfigError> {
    let bad = || {
        source.error(
            value.span(),
            format!(
                "`{key}` must be a byte count: write e.g. `{key} = 1048576` or `{key} = \"1MiB\"`"
            ),
        )
    };
    match value.get_ref() {
        RawSize::Number(n) => u64::try_from(*n).map_err(|_| bad()),
        RawSize::Text(text) => text
            .parse::<bytesize::ByteSize>()
            .map(|s| s.as_u64())
            .map_err(|_| bad()),
    }
}

/// A positive byte count (`default` when absent): `0` is refused.
pub fn positive_size(
    value: Option<Spanned<RawSize>>,
    default: u64,
    key: &str,
    source: &TomlText<'_>,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match size(&value, key, source)? {
        0 => Err(source.error(
            value.span(),
            format!("`{key} = 0` would refuse all traffic: remove the key for the default, or give a positive size"),
        )),
        n => Ok(n),
    }
}

/// A positive count: `0` is refused with why it would be wrong
/// (`consequence`, e.g. "would refuse every call").
pub fn positive_count<T: Copy + Default + PartialEq>(
    value: Option<Spanned<T>>,
    default: T,
    key: &str,
    consequence: &str,
    source: &TomlText<'_>,
) -> Result<T, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if *v.get_ref() == T::default() => Err(source.error(
            v.span(),
            format!(
                "`{key} = 0` {consequence}: leave it out for the default, or give a positive number"
            ),
        )),
        Some(v) => Ok(v.into_inner()),
    }
}

/// The longest duration a timeout may be: longer is a mistake, and a
/// deadline that far off could overflow the clock's arithmetic.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(366 * 24 * 3600);

/// A positive duration (`default` when absent), as `"10s"` or `"500ms"`,
/// at most [`MAX_TIMEOUT`].
pub fn timeout(
    value: Option<Spanned<String>>,
    default: Duration,
    key: &str,
    source: &TomlText<'_>,
) -> Result<Duration, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match humantime::parse_duration(value.get_ref()) {
        Ok(d) if !d.is_zero() && d <= MAX_TIMEOUT => Ok(d),
        Ok(d) if d > MAX_TIMEOUT => Err(source.error(
            value.span(),
            format!("`{key}` is longer than a year: write a shorter duration"),
        )),
        _ => Err(source.error(
            value.span(),
            format!(
                "`{key}` must be a positive duration: write e.g. `{key} = \"10s\"` or `\"500ms\"`"
            ),
        )),
    }
}
