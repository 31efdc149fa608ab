//! Declared grading conventions: where evaluation suites legitimately disagree, the grader does
//! not guess; the caller picks, and the defaults are written down.
//!
//! - **Numeric tolerance** ([`Tolerance`]): is `125.663` the answer `40\pi`? Is `10001` the answer
//!   `10000`? Suites differ (docs/grading.md has the table).
//! - **Units** ([`Units`]): is `12 cm` the answer `12 km`?
//! - **Order of plain lists** ([`ListOrder`]): is `4, 10, -2` the answer `10, 4, -2`?
//!
//! Each option is parsed from text (`"exact"`, `"rounded"`, `"relative"`, …) by `FromStr`, so the
//! command line, a configuration file and the Python package share one spelling and one error.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How two numbers are compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tolerance {
    /// Exact values (integers, fractions, terminating decimals) must be identical; irrational
    /// values agree to 1e-9 relative. A decimal never stands for a value it only approximates:
    /// `0.3333` ≠ `\frac13`.
    Exact,
    /// As [`Tolerance::Exact`], and a decimal written with two or more places also equals a value
    /// that is not a terminating decimal (`\frac13`, `40\pi`, `\sqrt2`) when it is that value
    /// rounded to the places shown: `0.3333` = `\frac13`, `125.664` = `40\pi`. It must not
    /// equate two terminating values (`16386.20` ≠ `16386.17`, `0.5` ≠ `0.54`), a decimal with
    /// one place (`0.3` ≠ `\frac13`), a wrong last digit (`0.34` ≠ `\frac13`) or a truncation
    /// (`125.663` ≠ `40\pi`, which [`Tolerance::Relative`] accepts).
    Rounded,
    /// Two numbers within this relative distance are equal, exact or not:
    /// `|a - b| ≤ rel · max(|a|, |b|)`. Qwen2.5-Math's and ToRA's graders use 1e-4, under which
    /// `10000` = `10001`.
    Relative(RelTol),
}

/// A relative tolerance, checked to lie in (0, 0.5).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct RelTol(f64);

impl RelTol {
    /// The tolerance Qwen2.5-Math's evaluation uses.
    pub const QWEN: RelTol = RelTol(1e-4);

    pub fn new(rel: f64) -> Result<RelTol, OptionsError> {
        if rel.is_finite() && rel > 0.0 && rel < 0.5 {
            Ok(RelTol(rel))
        } else {
            Err(OptionsError::RelTol(rel))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for RelTol {
    type Error = OptionsError;
    fn try_from(rel: f64) -> Result<Self, Self::Error> {
        RelTol::new(rel)
    }
}

impl From<RelTol> for f64 {
    fn from(r: RelTol) -> f64 {
        r.0
    }
}

/// What a unit written after a number means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Units {
    /// Units are dropped: `12 cm` = `12` = `12 km`.
    Ignore,
    /// The units written on the two sides must be the same, word for word after folding case and
    /// a plural `s`: `12 cm` = `12\text{ cm}`, `5 hours` = `5 hour`, but `12 cm` ≠ `12 km` and
    /// `12 cm` ≠ `12`. There is no conversion (`1 m` ≠ `100 cm`).
    MustMatch,
}

/// How a plain comma list of values (`10, 4, -2`, no brackets) compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListOrder {
    /// In the written order, like a tuple: `10, 4, -2` ≠ `4, 10, -2`. Lists whose items are
    /// joined by "and"/"or", structured items (tuples, intervals), `±` branches and repeated labels
    /// are alternatives and compare in any order whatever this says.
    Ordered,
    /// As a multiset: `10, 4, -2` = `4, 10, -2` (but not `4, 10`). Tuples `( … )` stay ordered.
    Any,
}

/// The conventions one grading call follows. The default is [`GradeOptions::DEFAULT`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GradeOptions {
    pub tolerance: Tolerance,
    pub units: Units,
    pub list_order: ListOrder,
}

impl GradeOptions {
    /// Rounded decimals accepted for non-terminating values, units ignored, plain lists ordered:
    /// what the most used suites do (the table in docs/grading.md).
    pub const DEFAULT: GradeOptions = GradeOptions {
        tolerance: Tolerance::Rounded,
        units: Units::Ignore,
        list_order: ListOrder::Ordered,
    };
}

impl Default for GradeOptions {
    fn default() -> Self {
        GradeOptions::DEFAULT
    }
}

/// A convention given as text that is not one of its spellings, or a tolerance out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OptionsError {
    #[error("unknown {what} {given:?} (expected one of: {expected})")]
    Unknown {
        what: &'static str,
        given: String,
        expected: &'static str,
    },
    #[error("relative tolerance {0} must be > 0 and < 0.5")]
    RelTol(f64),
}

fn unknown(what: &'static str, given: &str, expected: &'static str) -> OptionsError {
    OptionsError::Unknown {
        what,
        given: given.to_string(),
        expected,
    }
}

/// `exact`, `rounded`, `relative` (at [`RelTol::QWEN`]) or `relative:REL` (`relative:1e-6`).
impl FromStr for Tolerance {
    type Err = OptionsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: &str = "exact, rounded, relative, relative:REL";
        let t = s.trim().to_ascii_lowercase();
        match t.as_str() {
            "exact" => Ok(Tolerance::Exact),
            "rounded" => Ok(Tolerance::Rounded),
            "relative" => Ok(Tolerance::Relative(RelTol::QWEN)),
            _ => match t.strip_prefix("relative:") {
                Some(r) => match r.trim().parse::<f64>() {
                    Ok(rel) => Ok(Tolerance::Relative(RelTol::new(rel)?)),
                    Err(_) => Err(unknown("tolerance", s, EXPECTED)),
                },
                None => Err(unknown("tolerance", s, EXPECTED)),
            },
        }
    }
}

impl fmt::Display for Tolerance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tolerance::Exact => f.write_str("exact"),
            Tolerance::Rounded => f.write_str("rounded"),
            Tolerance::Relative(r) => write!(f, "relative:{}", r.get()),
        }
    }
}

impl FromStr for Units {
    type Err = OptionsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('-', "_").as_str() {
            "ignore" => Ok(Units::Ignore),
            "must_match" | "match" => Ok(Units::MustMatch),
            _ => Err(unknown("units convention", s, "ignore, must-match")),
        }
    }
}

impl fmt::Display for Units {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Units::Ignore => "ignore",
            Units::MustMatch => "must-match",
        })
    }
}

impl FromStr for ListOrder {
    type Err = OptionsError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ordered" => Ok(ListOrder::Ordered),
            "any" => Ok(ListOrder::Any),
            _ => Err(unknown("list order", s, "ordered, any")),
        }
    }
}

impl fmt::Display for ListOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ListOrder::Ordered => "ordered",
            ListOrder::Any => "any",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_spelling_parses_back_to_itself() {
        for t in [
            Tolerance::Exact,
            Tolerance::Rounded,
            Tolerance::Relative(RelTol::QWEN),
        ] {
            assert_eq!(t.to_string().parse::<Tolerance>(), Ok(t));
        }
        for u in [Units::Ignore, Units::MustMatch] {
            assert_eq!(u.to_string().parse::<Units>(), Ok(u));
        }
        for o in [ListOrder::Ordered, ListOrder::Any] {
            assert_eq!(o.to_string().parse::<ListOrder>(), Ok(o));
        }
    }

    #[test]
    fn a_tolerance_out_of_range_names_the_bound() {
        let e = "relative:2".parse::<Tolerance>().unwrap_err();
        assert_eq!(e.to_string(), "relative tolerance 2 must be > 0 and < 0.5");
        assert!("relative:-1".parse::<Tolerance>().is_err());
        assert!("relative:NaN".parse::<Tolerance>().is_err());
        let e = "close".parse::<Tolerance>().unwrap_err();
        assert!(e.to_string().contains("exact, rounded"), "{e}");
    }
}
