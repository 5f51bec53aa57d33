//! Lengths of time as users write them — `"2s"`, `"1h30m"`, `"1d"`, `"1w"`, `"1mo"` — parsed by
//! rask before Polars sees them, so a typo is an error that names the units instead of a
//! panic inside a task. Time windows (`rolling("2s")`) and resample rules (`resample("1d")`)
//! are built from them.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A length of time: whole calendar months plus a fixed number of nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// Calendar months (`mo`, `q` = 3, `y` = 12).
    pub months: i64,
    /// Fixed nanoseconds (`ns` … `w`).
    pub nanos: i64,
}

/// The units a span may be written in, with their length (months, nanoseconds).
const UNITS: [(&str, i64, i64); 11] = [
    ("ns", 0, 1),
    ("us", 0, 1_000),
    ("ms", 0, 1_000_000),
    ("s", 0, 1_000_000_000),
    ("m", 0, 60_000_000_000),
    ("h", 0, 3_600_000_000_000),
    ("d", 0, 86_400_000_000_000),
    ("w", 0, 7 * 86_400_000_000_000),
    ("mo", 1, 0),
    ("q", 3, 0),
    ("y", 12, 0),
];

const UNIT_LIST: &str = "ns, us, ms, s, m, h, d, w, mo, q, y";

impl Span {
    /// Parses `"<count><unit>"` repeated (`"1h30m"`), with the units of Polars' durations.
    /// `what` names the argument in errors (`"the window of rolling"`).
    pub fn parse(text: &str, what: &str) -> Result<Span> {
        let bad = |reason: String| {
            Error::Invalid(format!(
                "{what} {text:?} is not a length of time: {reason}; write a count and a unit, \
                 such as \"2s\", \"1h30m\", \"1d\" or \"1mo\" (units: {UNIT_LIST})"
            ))
        };
        let mut span = Span { months: 0, nanos: 0 };
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad("it is empty".into()));
        }
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(bad(format!("{rest:?} does not start with a count")));
            }
            let count: i64 = rest[..digits]
                .parse()
                .map_err(|_| bad(format!("{} is too large", &rest[..digits])))?;
            rest = &rest[digits..];
            let letters = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            let unit = &rest[..letters];
            let (_, months, nanos) = UNITS
                .iter()
                .find(|(name, _, _)| *name == unit)
                .ok_or_else(|| bad(format!("{unit:?} is not a unit")))?;
            let overflow = || bad("it is too long".into());
            span.months = count
                .checked_mul(*months)
                .and_then(|m| m.checked_add(span.months))
                .ok_or_else(overflow)?;
            span.nanos = count
                .checked_mul(*nanos)
                .and_then(|n| n.checked_add(span.nanos))
                .ok_or_else(overflow)?;
            rest = &rest[letters..];
        }
        if span.months == 0 && span.nanos == 0 {
            return Err(bad("it is zero".into()));
        }
        if span.months != 0 && span.nanos != 0 {
            return Err(bad("it mixes calendar months with fixed units".into()));
        }
        Ok(span)
    }

    /// The span as Polars writes durations, in the largest unit that divides it (`"2d"`,
    /// `"90m"`, `"3mo"`): a date column takes whole days.
    pub fn polars(self) -> String {
        if self.months != 0 {
            return format!("{}mo", self.months);
        }
        let (name, length) = ["d", "h", "m", "s", "ms", "us", "ns"]
            .iter()
            .map(|n| UNITS.iter().find(|(u, _, _)| u == n).expect("a unit"))
            .map(|(name, _, nanos)| (*name, *nanos))
            .find(|(_, nanos)| self.nanos % nanos == 0)
            .expect("every span is whole nanoseconds");
        format!("{}{name}", self.nanos / length)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_parse_with_polars_units_and_reject_typos() {
        assert_eq!(Span::parse("2s", "w").unwrap(), Span { months: 0, nanos: 2_000_000_000 });
        assert_eq!(Span::parse("1h30m", "w").unwrap().nanos, 5_400_000_000_000);
        assert_eq!(Span::parse("1q", "w").unwrap(), Span { months: 3, nanos: 0 });
        assert_eq!(Span::parse("1w", "w").unwrap().polars(), "7d");
        assert_eq!(Span::parse("1h30m", "w").unwrap().polars(), "90m");
        assert_eq!(Span::parse("1500ms", "w").unwrap().polars(), "1500ms");
        for bad in ["", "2", "s", "2 secs", "0d", "1mo1d", "99999999999999999999s"] {
            let message = Span::parse(bad, "the window").unwrap_err().to_string();
            assert!(message.contains("units: ns"), "{bad:?}: {message}");
        }
    }
}
