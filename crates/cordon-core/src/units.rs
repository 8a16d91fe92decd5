//! Byte sizes (`50MiB`) and durations (`1h`) as written in policies.

use std::fmt;
use std::time::Duration;

/// Why a size or duration could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum UnitError {
    /// No leading number.
    #[error("`{0}` is not a {1}")]
    NotANumber(String, &'static str),
    /// A unit that is not one of the known ones.
    #[error("unknown {kind} unit `{unit}` in `{text}`")]
    UnknownUnit {
        /// `byte` or `time`.
        kind: &'static str,
        /// The unit as written.
        unit: String,
        /// The whole value.
        text: String,
        /// The units accepted.
        known: &'static str,
    },
    /// A duration without a unit.
    #[error("`{0}` needs a unit: s, m, h or d")]
    MissingUnit(String),
    /// Too large for 64 bits.
    #[error("{1} `{0}` is too large")]
    Overflow(String, &'static str),
}

/// The leading whole number of `text` and the (trimmed) unit after it.
fn number_and_unit(text: &str) -> Option<(u64, &str)> {
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    Some((number.parse().ok()?, unit.trim()))
}

/// A byte count written with an optional unit: `1000`, `10KB`, `50MiB`, `2GiB`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(pub u64);

const BYTE_UNITS: &[(&str, u64)] = &[
    ("TiB", 1 << 40),
    ("GiB", 1 << 30),
    ("MiB", 1 << 20),
    ("KiB", 1 << 10),
    ("TB", 1_000_000_000_000),
    ("GB", 1_000_000_000),
    ("MB", 1_000_000),
    ("KB", 1_000),
    ("kB", 1_000),
    ("B", 1),
];

impl ByteSize {
    /// Parse `text`; the error says what was expected.
    ///
    /// # Errors
    /// When the number is missing, the unit unknown, or the value overflows.
    pub fn parse(text: &str) -> Result<ByteSize, UnitError> {
        let text = text.trim();
        let (number, unit) = number_and_unit(text)
            .ok_or_else(|| UnitError::NotANumber(text.to_string(), "byte size"))?;
        let multiplier = if unit.is_empty() {
            1
        } else {
            BYTE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, m)| *m)
                .ok_or_else(|| UnitError::UnknownUnit {
                    kind: "byte",
                    unit: unit.to_string(),
                    text: text.to_string(),
                    known: "B, KB, MB, GB, TB, KiB, MiB, GiB, TiB",
                })?
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| UnitError::Overflow(text.to_string(), "byte size"))
    }
}

impl fmt::Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, multiplier) in BYTE_UNITS {
            if self.0 != 0 && self.0.is_multiple_of(*multiplier) && *name != "kB" {
                return write!(f, "{}{name}", self.0 / multiplier);
            }
        }
        write!(f, "{}", self.0)
    }
}

/// A duration written as a number and a unit: `30s`, `5m`, `1h`, `7d`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window(pub Duration);

const TIME_UNITS: &[(&str, u64)] = &[("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)];

impl Window {
    /// Parse `text`; the error says what was expected.
    ///
    /// # Errors
    /// When the number or unit is missing or unknown, or the value overflows.
    pub fn parse(text: &str) -> Result<Window, UnitError> {
        let text = text.trim();
        let (number, unit) = number_and_unit(text)
            .ok_or_else(|| UnitError::NotANumber(text.to_string(), "duration"))?;
        let seconds = TIME_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, s)| *s)
            .ok_or_else(|| UnitError::MissingUnit(text.to_string()))?;
        number
            .checked_mul(seconds)
            .map(|s| Window(Duration::from_secs(s)))
            .ok_or_else(|| UnitError::Overflow(text.to_string(), "duration"))
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        for (name, unit) in TIME_UNITS {
            if secs != 0 && secs.is_multiple_of(*unit) {
                return write!(f, "{}{name}", secs / unit);
            }
        }
        write!(f, "{secs}s")
    }
}
