//! The declared conventions of `GradeOptions`: each option changes exactly the verdicts it
//! documents, and the defaults are the documented ones.

use arbitrage_grader::{
    GradeOptions, ListOrder, RelTol, Tolerance, Units, answers_equal, answers_equal_with, grade,
    grade_with,
};

fn with(tolerance: Tolerance, units: Units, list_order: ListOrder) -> GradeOptions {
    GradeOptions {
        tolerance,
        units,
        list_order,
    }
}

fn tol(t: Tolerance) -> GradeOptions {
    GradeOptions {
        tolerance: t,
        ..GradeOptions::DEFAULT
    }
}

#[test]
fn the_defaults_are_rounded_decimals_ignored_units_and_ordered_lists() {
    assert_eq!(
        GradeOptions::default(),
        with(Tolerance::Rounded, Units::Ignore, ListOrder::Ordered)
    );
    for (a, b) in [("0.3333", "\\frac13"), ("12 cm", "12"), ("1, 2", "2, 1")] {
        assert_eq!(
            answers_equal(a, b),
            answers_equal_with(a, b, &GradeOptions::DEFAULT),
            "{a} vs {b}"
        );
    }
}

#[test]
fn exact_tolerance_refuses_a_rounded_decimal_for_an_irrational_value() {
    let exact = tol(Tolerance::Exact);
    assert!(!answers_equal_with("\\frac13", "0.3333", &exact));
    assert!(!answers_equal_with("40\\pi", "125.664", &exact));
    assert!(answers_equal_with("\\sqrt{2}^2", "2", &exact));
    assert!(answers_equal_with("0.5", "\\frac12", &exact));
}

#[test]
fn rounded_tolerance_accepts_the_rounded_value_and_nothing_looser() {
    let rounded = tol(Tolerance::Rounded);
    assert!(answers_equal_with("\\frac13", "0.3333", &rounded));
    assert!(answers_equal_with("40\\pi", "125.664", &rounded));
    assert!(!answers_equal_with("40\\pi", "125.663", &rounded));
    assert!(!answers_equal_with("\\frac13", "0.3", &rounded));
    assert!(!answers_equal_with("0.54", "0.5", &rounded));
    assert!(!answers_equal_with("10000", "10001", &rounded));
}

#[test]
fn relative_tolerance_accepts_any_number_within_it() {
    let qwen = tol(Tolerance::Relative(RelTol::QWEN));
    assert!(answers_equal_with("40\\pi", "125.663", &qwen));
    assert!(answers_equal_with("10000", "10001", &qwen));
    assert!(!answers_equal_with("10000", "10002", &qwen));
    assert!(!answers_equal_with("0.5", "50", &qwen));
    // Exact values past the range of f64 are compared exactly.
    assert!(answers_equal_with("200!", "200! + 1", &qwen));
    assert!(!answers_equal_with("200!", "201!", &qwen));
    let tight = tol(Tolerance::Relative(RelTol::new(1e-12).expect("in range")));
    assert!(!answers_equal_with("40\\pi", "125.663", &tight));
}

#[test]
fn units_must_match_compares_the_unit_words() {
    let strict = with(Tolerance::Rounded, Units::MustMatch, ListOrder::Ordered);
    assert!(answers_equal_with("12 cm", "12\\text{ cm}", &strict));
    assert!(answers_equal_with("5 hours", "5 hour", &strict));
    assert!(answers_equal_with("3 feet", "3 foot", &strict));
    assert!(!answers_equal_with("12 cm", "12 km", &strict));
    assert!(!answers_equal_with("12", "12 cm", &strict));
    assert!(answers_equal_with("\\text{Evelyn}", "Evelyn", &strict));
    // Ignored by default.
    assert!(answers_equal("12 cm", "12 km"));
    assert!(answers_equal("10", "10weeks"));
}

#[test]
fn list_order_any_compares_plain_lists_as_multisets() {
    let any = with(Tolerance::Rounded, Units::Ignore, ListOrder::Any);
    assert!(answers_equal_with("10, 4, -2", "4, 10, -2", &any));
    assert!(!answers_equal_with("10, 4, -2", "4, 10", &any));
    assert!(!answers_equal_with("1, 1, 2", "1, 2, 2", &any));
    assert!(!answers_equal_with("(1, 2)", "(2, 1)", &any));
    assert!(!answers_equal("10, 4, -2", "4, 10, -2"));
}

#[test]
fn grade_with_applies_the_options_after_extraction() {
    let text = "The circumference is about $125.663$ units.";
    assert!(!grade("40\\pi", text).equal);
    assert!(grade_with("40\\pi", text, &tol(Tolerance::Relative(RelTol::QWEN))).equal);
}

#[test]
fn options_round_trip_through_json() {
    let o = with(
        Tolerance::Relative(RelTol::QWEN),
        Units::MustMatch,
        ListOrder::Any,
    );
    let text = serde_json::to_string(&o).expect("serialize");
    assert_eq!(
        text,
        r#"{"tolerance":{"relative":0.0001},"units":"must_match","list_order":"any"}"#
    );
    let back: GradeOptions = serde_json::from_str(&text).expect("deserialize");
    assert_eq!(back, o);
    assert!(serde_json::from_str::<GradeOptions>(r#"{"tolerance":{"relative":2.0}}"#).is_err());
    assert!(serde_json::from_str::<GradeOptions>(r#"{"colour":"red"}"#).is_err());
    let partial: GradeOptions = serde_json::from_str(r#"{"units":"must_match"}"#).expect("ok");
    assert_eq!(partial.tolerance, Tolerance::Rounded);
}
