//! Agreement with the labelled cases of established graders' public test suites, copied into
//! `tests/data/` (`answer_pairs.jsonl`, `latex_values.jsonl`; source and licence in
//! `tests/data/README.md`). A missing file fails the test: it ships with the crate.

use arbitrage_grader::{grade, parse, value};
use serde_json::Value;

fn read_jsonl(name: &str) -> Vec<Value> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} ships with the crate: {e}", path.display()));
    let rows: Vec<Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| serde_json::from_str(l).unwrap_or_else(|e| panic!("{name}:{}: {e}", i + 1)))
        .collect();
    assert!(!rows.is_empty(), "{} is empty", path.display());
    rows
}

fn short(s: &str) -> String {
    let s = s.replace('\n', "\\n");
    if s.chars().count() > 90 {
        format!("{}…", s.chars().take(90).collect::<String>())
    } else {
        s
    }
}

#[test]
fn answer_pairs_agree_with_expected_labels_on_163_of_164() {
    let rows = read_jsonl("answer_pairs.jsonl");
    let mut agree = 0;
    let mut report = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let gold = r["gold"].as_str().unwrap_or_default();
        let pred = r["pred"].as_str().unwrap_or_default();
        let expected = r["expected"].as_bool().unwrap_or_default();
        let v = grade(gold, pred);
        if v.equal == expected {
            agree += 1;
        } else {
            report.push(format!(
                "line {}: expected {expected}, got {} | gold {:?} → {:?} | pred {:?} → {:?} | {}",
                i + 1,
                v.equal,
                short(gold),
                v.gold,
                short(pred),
                v.pred,
                r["source"].as_str().unwrap_or_default()
            ));
        }
    }
    let pct = 100.0 * agree as f64 / rows.len() as f64;
    println!("answer_pairs agreement: {agree}/{} = {pct:.1}%", rows.len());
    for line in &report {
        println!("  DISAGREE {line}");
    }
    // 163 of 164 agree; the one left is a policy difference (docs/grading.md, line 18).
    assert!(
        agree >= 163,
        "agreement {agree}/{} fell below 163",
        rows.len()
    );
}

#[test]
fn latex_values_match_to_1e9_relative_on_169_of_172() {
    let rows = read_jsonl("latex_values.jsonl");
    let mut ok = 0;
    let mut report = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let latex = r["latex"].as_str().unwrap_or_default();
        let want_s = r["value"].as_str().unwrap_or_default();
        let got = parse::parse(latex).ok().and_then(|n| value_of(&n));
        let pass = match (want_s.parse::<f64>(), got) {
            (Ok(w), Some(g)) => {
                (g - w).abs() <= 1e-9 * w.abs().max(1e-300) || (w == 0.0 && g.abs() < 1e-12)
            }
            _ => false,
        };
        if pass {
            ok += 1;
        } else {
            report.push(format!(
                "line {}: {latex:?} want {want_s} got {got:?}",
                i + 1
            ));
        }
    }
    let pct = 100.0 * ok as f64 / rows.len() as f64;
    println!("latex_values: {ok}/{} = {pct:.1}%", rows.len());
    for line in &report {
        println!("  MISMATCH {line}");
    }
    // 169 of 172 match; the three left are sympy quirks (docs/grading.md).
    assert!(ok >= 169, "latex_values {ok}/{} fell below 169", rows.len());
}

fn value_of(n: &parse::Node) -> Option<f64> {
    let env = Default::default();
    let v = arbitrage_grader::eval::eval(n, &env).ok()?;
    let c = v.approx_checked().ok()?;
    let _ = value::C64::real(0.0);
    c.is_real().then_some(c.re)
}
