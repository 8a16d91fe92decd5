//! Byte sizes (`50MiB`) and durations (`1h`) as written in policies.

use std::fmt;
use std::time::Duration;

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
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let (number, unit) =
            number_and_unit(text).ok_or_else(|| format!("`{text}` is not a byte size"))?;
        let multiplier = if unit.is_empty() {
            1
        } else {
            BYTE_UNITS
                .iter()
                .find(|(name, _)| *name == unit)
                .map(|(_, m)| *m)
                .ok_or_else(|| format!("unknown byte unit `{unit}` in `{text}`"))?
        };
        number
            .checked_mul(multiplier)
            .map(ByteSize)
            .ok_or_else(|| format!("byte size `{text}` is too large"))
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
    pub fn parse(text: &str) -> Result<Window, String> {
        let text = text.trim();
        let (number, unit) =
            number_and_unit(text).ok_or_else(|| format!("`{text}` is not a duration"))?;
        let seconds = TIME_UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, s)| *s)
            .ok_or_else(|| format!("`{text}` needs a unit: s, m, h or d"))?;
        number
            .checked_mul(seconds)
            .map(|s| Window(Duration::from_secs(s)))
            .ok_or_else(|| format!("duration `{text}` is too large"))
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
