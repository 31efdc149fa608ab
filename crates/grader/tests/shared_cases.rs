//! Agreement with the labelled cases in `shared/grading` (skipped when the folder is absent).

use std::path::PathBuf;

use arbitrage_grader::{grade, parse, value};
use serde_json::Value;

fn shared_dir() -> PathBuf {
    match std::env::var_os("ARBITRAGE_SHARED_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"),
    }
}

fn read_jsonl(name: &str) -> Option<Vec<Value>> {
    let path = shared_dir().join("grading").join(name);
    let Ok(text) = std::fs::read_to_string(&path) else {
        eprintln!(
            "SKIP: {} not found (set ARBITRAGE_SHARED_DIR to the shared folder)",
            path.display()
        );
        return None;
    };
    Some(
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).expect("valid JSON line"))
            .collect(),
    )
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
fn answer_pairs_agree_with_expected_labels_on_at_least_95_percent() {
    let Some(rows) = read_jsonl("answer_pairs.jsonl") else {
        return;
    };
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
    assert!(pct >= 95.0, "agreement {pct:.1}% below 95%");
}

#[test]
fn latex_values_match_to_1e9_relative_on_at_least_95_percent() {
    let Some(rows) = read_jsonl("latex_values.jsonl") else {
        return;
    };
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
    assert!(pct >= 95.0, "latex_values {pct:.1}% below 95%");
}

fn value_of(n: &parse::Node) -> Option<f64> {
    let env = Default::default();
    let v = arbitrage_grader::eval::eval(n, &env).ok()?;
    let c = v.approx_checked().ok()?;
    let _ = value::C64::real(0.0);
    c.is_real().then_some(c.re)
}
