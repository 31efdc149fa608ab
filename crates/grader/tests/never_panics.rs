//! Property tests: grading never panics, stays fast and is deterministic on arbitrary input.

use std::time::{Duration, Instant};

use arbitrage_grader::{answers_equal, extract_answer, grade};
use proptest::prelude::*;

/// LaTeX-ish fragments that stress the lexer, parser and evaluator when glued together.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\\frac{".to_string()),
        Just("\\sqrt[".to_string()),
        Just("\\boxed{".to_string()),
        Just("}".to_string()),
        Just("{".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("^{".to_string()),
        Just("^".to_string()),
        Just("_".to_string()),
        Just("!".to_string()),
        Just("10^{10^{10}}".to_string()),
        Just("99999!".to_string()),
        Just("\\pm".to_string()),
        Just("\\left(".to_string()),
        Just("\\right)".to_string()),
        Just("\\begin{pmatrix}".to_string()),
        Just("\\end{pmatrix}".to_string()),
        Just("&".to_string()),
        Just("\\\\".to_string()),
        Just("\\text{".to_string()),
        Just("$".to_string()),
        Just("\\sum_{k=1}^{n}".to_string()),
        Just("\\int_0^1".to_string()),
        Just("dx".to_string()),
        Just("=".to_string()),
        Just("<".to_string()),
        Just(",".to_string()),
        Just(";".to_string()),
        Just("%".to_string()),
        Just("\\%".to_string()),
        Just("x".to_string()),
        Just("\\pi".to_string()),
        Just("i".to_string()),
        Just("0".to_string()),
        Just("-".to_string()),
        Just("/".to_string()),
        Just("\\mod".to_string()),
        Just("\\infty".to_string()),
        Just("\\cup".to_string()),
        Just("The answer is ".to_string()),
        Just("#### ".to_string()),
        "[0-9]{1,12}",
        "[0-9]{1,3}\\.[0-9]{1,5}",
        "\\\\[a-z]{1,8}",
        "[a-zA-Z ]{1,6}",
        any::<char>().prop_map(|c| c.to_string()),
    ]
}

fn latexish() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|v| v.concat())
}

/// A well-formed answer: numbers, fractions, radicals, powers, variables and their sums and
/// products, and the structures answers come in (tuples, intervals, sets, inequalities, lists).
fn answer() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (-999i64..1000).prop_map(|n| n.to_string()),
        (0u32..100, 1u32..1000).prop_map(|(a, b)| format!("{a}.{b:03}")),
        (1u32..50, 1u32..50).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
        (2u32..60).prop_map(|n| format!("\\sqrt{{{n}}}")),
        Just("\\pi".to_string()),
        Just("x".to_string()),
        Just("y".to_string()),
    ];
    let expr = leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} + {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} - ({b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a}) \\cdot ({b})")),
            (inner.clone(), 0u32..4).prop_map(|(a, k)| format!("({a})^{{{k}}}")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("\\frac{{{a}}}{{{b}}}")),
        ]
    });
    prop_oneof![
        3 => expr.clone(),
        1 => (expr.clone(), expr.clone()).prop_map(|(a, b)| format!("({a}, {b})")),
        1 => (-50i64..0, 0i64..50).prop_map(|(a, b)| format!("[{a}, {b})")),
        1 => (expr.clone(), expr.clone()).prop_map(|(a, b)| format!("\\{{{a}, {b}\\}}")),
        1 => (-50i64..50).prop_map(|c| format!("x \\le {c}")),
        1 => (expr.clone(), expr).prop_map(|(a, b)| format!("{a}, {b}")),
    ]
}

fn check(gold: &str, pred: &str) -> Result<(), TestCaseError> {
    let t = Instant::now();
    let a = grade(gold, pred);
    let b = grade(gold, pred);
    prop_assert_eq!(a.equal, b.equal);
    prop_assert_eq!(&a.pred, &b.pred);
    prop_assert_eq!(&a.gold, &b.gold);
    let _ = answers_equal(pred, gold);
    let _ = extract_answer(pred);
    prop_assert!(
        t.elapsed() < Duration::from_millis(500),
        "slow: {:?}",
        t.elapsed()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn grade_never_panics_and_is_deterministic_on_latex_like_input(gold in latexish(), pred in latexish()) {
        check(&gold, &pred)?;
    }

    #[test]
    fn grade_never_panics_on_arbitrary_unicode(gold in "\\PC{0,200}", pred in "\\PC{0,400}") {
        check(&gold, &pred)?;
    }

    #[test]
    fn the_boxed_path_never_panics_on_latex_like_input(ans in latexish()) {
        let a = grade(&ans, &format!("so \\boxed{{{ans}}}"));
        let b = grade(&ans, &format!("so \\boxed{{{ans}}}"));
        prop_assert_eq!(a.equal, b.equal);
    }

    #[test]
    fn every_answer_equals_itself_boxed(ans in answer()) {
        let v = grade(&ans, &format!("Therefore the answer is $\\boxed{{{ans}}}$."));
        prop_assert!(v.equal, "{:?} boxed did not equal itself: {:?}", ans, v);
        prop_assert_eq!(v.pred.as_deref(), Some(v.gold.as_str()));
    }

    #[test]
    fn integers_compare_exactly(a in any::<i64>(), b in any::<i64>()) {
        prop_assert_eq!(answers_equal(&a.to_string(), &b.to_string()), a == b);
    }
}

/// A caret right after a degree mark once kept the lexer at the same character forever.
#[test]
fn a_caret_after_a_degree_mark_does_not_hang() {
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for (gold, pred) in [
            ("90", "90°^2"),
            ("\\circ^", "x"),
            ("30^\\circ^\\circ", "30^{\\circ}^"),
            ("1", "\\degree^{2}"),
        ] {
            let _ = grade(gold, pred);
            let _ = answers_equal(pred, gold);
        }
        let _ = done.send(());
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(20)).is_ok(),
        "grading did not finish"
    );
}
