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
    fn every_answer_equals_itself_boxed(ans in latexish()) {
        // Not a correctness claim for garbage, only that the boxed path does not panic.
        let _ = grade(&ans, &format!("so \\boxed{{{ans}}}"));
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
