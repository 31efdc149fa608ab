//! Agreement per category on `tests/data/generalisation.jsonl`: our own labelled cases for the
//! kinds of answers issue 15 names (extraction from free text, structured answers, relations,
//! matrices, units and words, evaluation).
//!
//! Each line is `{"category", "gold", "pred", "expected", "reason"}`; `pred` may be a bare answer
//! or a whole solution, as for `grade`. The cases were written for this crate from how datasets and
//! models phrase answers. They are a check that the rules generalise, so every category must agree
//! on every case: a disagreement is printed with its reason and fails the test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arbitrage_grader::grade;
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    category: String,
    gold: String,
    pred: String,
    expected: bool,
    reason: String,
    /// The issue the case was written for (absent: issue 15).
    #[serde(default)]
    issue: Option<u32>,
}

impl Case {
    /// The category as reported: issue 29's kinds are prefixed with `29:`.
    fn kind(&self) -> String {
        match self.issue {
            Some(n) => format!("{n}:{}", self.category),
            None => self.category.clone(),
        }
    }
}

fn cases() -> Vec<Case> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/generalisation.jsonl"
    );
    let text = std::fs::read_to_string(path).expect("tests/data/generalisation.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("line {}: {e}", i + 1)))
        .collect()
}

#[test]
fn every_category_agrees_with_its_labels() {
    let cases = cases();
    let mut per: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut spent: BTreeMap<String, Duration> = BTreeMap::new();
    let mut report = Vec::new();
    let mut times = Vec::new();
    for (i, c) in cases.iter().enumerate() {
        let start = Instant::now();
        let v = grade(&c.gold, &c.pred);
        let took = start.elapsed();
        times.push((took, i + 1));
        *spent.entry(c.kind()).or_default() += took;
        let e = per.entry(c.kind()).or_default();
        e.1 += 1;
        if v.equal == c.expected {
            e.0 += 1;
        } else {
            report.push(format!(
                "line {} [{}] expected {}: {} | gold {:?} → {:?} | pred {:?} → {:?}",
                i + 1,
                c.kind(),
                c.expected,
                c.reason,
                c.gold,
                v.gold,
                c.pred,
                v.pred
            ));
        }
        assert!(
            took < Duration::from_millis(100),
            "line {}: {took:?} for {:?} vs {:?}",
            i + 1,
            c.gold,
            c.pred
        );
    }
    let (mut agree, mut total) = (0, 0);
    for (cat, (a, n)) in &per {
        println!(
            "{cat:<12} {a:>3}/{n:<3} = {:.1}%   mean {:.1?} per pair",
            100.0 * *a as f64 / *n as f64,
            spent[cat.as_str()] / *n as u32
        );
        agree += a;
        total += n;
    }
    println!(
        "{:<12} {agree:>3}/{total:<3} = {:.1}%",
        "all",
        100.0 * agree as f64 / total as f64
    );
    times.sort_unstable_by(|a, b| b.cmp(a));
    let slowest: Vec<String> = times
        .iter()
        .take(5)
        .map(|(t, line)| format!("line {line} {t:.1?}"))
        .collect();
    println!("slowest pairs: {}", slowest.join(", "));
    for line in &report {
        println!("  DISAGREE {line}");
    }
    assert!(report.is_empty(), "{} disagreements", report.len());
}

#[test]
fn every_category_has_cases_of_both_verdicts() {
    let cases = cases();
    let mut seen: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for c in &cases {
        let e = seen.entry(c.kind()).or_default();
        if c.expected {
            e.0 = true;
        } else {
            e.1 = true;
        }
        assert!(!c.reason.trim().is_empty(), "a case without a reason");
    }
    for (cat, (yes, no)) in seen {
        assert!(yes && no, "{cat}: needs both equal and not-equal cases");
    }
}
