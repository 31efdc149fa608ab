//! Property tests for the rules of issue 15 that have an invariant:
//! - order-insensitive comparison (sets, lists of solutions) is symmetric and ignores order, while
//!   a plain comma list keeps its order;
//! - an equation equals itself rescaled by any non-zero factor and with terms moved across `=`,
//!   and not a neighbouring equation;
//! - a one-variable inequality equals the interval it describes;
//! - evaluation (series, factorials, matrices, functions) never panics, is deterministic and
//!   stays within 100 ms per pair on arbitrary input built from those pieces.

use std::time::{Duration, Instant};

use arbitrage_grader::{answers_equal, grade};
use proptest::prelude::*;

/// A small exact value written in one of several ways.
fn value() -> impl Strategy<Value = (i64, String)> {
    (-30i64..30).prop_flat_map(|n| {
        prop_oneof![
            Just((n, n.to_string())),
            Just((n, format!("\\frac{{{}}}{{2}}", 2 * n))),
            Just((n, format!("{n}.0"))),
        ]
    })
}

fn distinct_values(max: usize) -> impl Strategy<Value = Vec<(i64, String)>> {
    prop::collection::vec(value(), 2..=max).prop_filter("distinct values", |v| {
        let mut ns: Vec<i64> = v.iter().map(|x| x.0).collect();
        ns.sort_unstable();
        ns.windows(2).all(|w| w[0] != w[1])
    })
}

fn set_of(items: &[String]) -> String {
    format!("\\{{{}\\}}", items.join(", "))
}

fn permuted(v: &[(i64, String)], seed: u64) -> Vec<String> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    let mut h = seed | 1;
    for i in (1..idx.len()).rev() {
        h ^= h << 13;
        h ^= h >> 7;
        h ^= h << 17;
        idx.swap(i, (h % (i as u64 + 1)) as usize);
    }
    idx.into_iter().map(|i| v[i].1.clone()).collect()
}

/// A sign-carrying coefficient term like `+ 3x` or `- \frac{1}{2}y`.
fn term(c: i64, d: i64, var: &str) -> String {
    let sign = if c * d < 0 { "-" } else { "+" };
    let (c, d) = (c.abs(), d.abs());
    if d == 1 {
        format!(" {sign} {c}{var}")
    } else {
        format!(" {sign} \\frac{{{c}}}{{{d}}}{var}")
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn set_comparison_is_symmetric_and_ignores_order(v in distinct_values(6), seed in any::<u64>()) {
        let a = set_of(&v.iter().map(|x| x.1.clone()).collect::<Vec<_>>());
        let b = set_of(&permuted(&v, seed));
        prop_assert!(answers_equal(&a, &b), "{a} vs {b}");
        prop_assert!(answers_equal(&b, &a), "{b} vs {a}");
        // One element fewer: unequal both ways.
        let fewer = set_of(&permuted(&v, seed)[1..]);
        prop_assert_eq!(answers_equal(&a, &fewer), answers_equal(&fewer, &a));
        prop_assert!(!answers_equal(&a, &fewer), "{a} vs {fewer}");
    }

    #[test]
    fn lists_of_tuples_ignore_order_and_keep_each_tuple_ordered(
        v in distinct_values(5),
        seed in any::<u64>(),
    ) {
        let pairs: Vec<(i64, String)> = v
            .iter()
            .map(|(n, s)| (*n, format!("({s}, {})", n + 100)))
            .collect();
        let a: Vec<String> = pairs.iter().map(|p| p.1.clone()).collect();
        let b = permuted(&pairs, seed);
        prop_assert!(answers_equal(&a.join(", "), &b.join(", ")));
        prop_assert!(answers_equal(&b.join(", "), &a.join(", ")));
        let swapped: Vec<String> = v.iter().map(|(n, s)| format!("({}, {s})", n + 100)).collect();
        prop_assert!(!answers_equal(&a.join(", "), &swapped.join(", ")));
    }

    #[test]
    fn a_plain_comma_list_equals_a_reordering_only_when_it_is_the_same_order(
        v in distinct_values(5),
        seed in any::<u64>(),
    ) {
        let a: Vec<String> = v.iter().map(|x| x.1.clone()).collect();
        let b = permuted(&v, seed);
        let same_order = a == b;
        prop_assert_eq!(answers_equal(&a.join(", "), &b.join(", ")), same_order);
        prop_assert_eq!(answers_equal(&b.join(", "), &a.join(", ")), same_order);
        // Joined by "and", the same items are alternatives.
        let alternatives = a.join(" \\text{ and } ");
        prop_assert!(answers_equal(&alternatives, &b.join(", ")), "{alternatives}");
    }

    #[test]
    fn an_equation_equals_itself_rescaled_by_a_nonzero_factor(
        a in -9i64..10, b in -9i64..10, c in -9i64..10,
        k in prop_oneof![-7i64..-1, 2i64..8], kd in 1i64..5,
        quadratic in any::<bool>(),
    ) {
        prop_assume!(a != 0 && b != 0);
        let x = if quadratic { "x^2" } else { "x" };
        let lhs = format!("{a}{x}{}{}", term(b, 1, "y"), term(c, 1, ""));
        let eq = format!("{lhs} = 0");
        let scaled = format!(
            "{}{x}{}{} = 0",
            if k * a < 0 { format!("-\\frac{{{}}}{{{kd}}}", (k * a).abs()) } else { format!("\\frac{{{}}}{{{kd}}}", k * a) },
            term(k * b, kd, "y"),
            term(k * c, kd, ""),
        );
        prop_assert!(answers_equal(&eq, &scaled), "{eq} vs {scaled}");
        prop_assert!(answers_equal(&scaled, &eq), "{scaled} vs {eq}");
        // Moving the y-term to the right-hand side changes nothing.
        let moved = format!("{a}{x}{} = {}y", term(c, 1, ""), -b);
        prop_assert!(answers_equal(&eq, &moved), "{eq} vs {moved}");
        // A neighbouring equation (constant off by one) is another curve.
        let other = format!("{a}{x}{}{} = 0", term(b, 1, "y"), term(c + 1, 1, ""));
        prop_assert!(!answers_equal(&eq, &other), "{eq} vs {other}");
    }

    #[test]
    fn a_line_solved_for_y_equals_its_general_form(
        m in -9i64..10, md in 1i64..5, q in -9i64..10, k in prop_oneof![-5i64..-1, 1i64..6],
    ) {
        // y = (m/md) x + q  ⟺  k m x - k md y + k md q = 0
        let slope = if m < 0 { format!("-\\frac{{{}}}{{{md}}}", -m) } else { format!("\\frac{{{m}}}{{{md}}}") };
        let solved = format!("y = {slope} x + {q}");
        let general = format!("{}x{}{} = 0", k * m, term(-k * md, 1, "y"), term(k * md * q, 1, ""));
        prop_assert!(answers_equal(&solved, &general), "{solved} vs {general}");
        let shifted = format!("y = {slope} x + {}", q + 1);
        prop_assert!(!answers_equal(&shifted, &general), "{shifted} vs {general}");
    }

    #[test]
    fn a_quadratic_inequality_equals_the_interval_it_describes(
        r1 in -9i64..10, gap in 1i64..8, outside in any::<bool>(), strict in any::<bool>(),
    ) {
        let r2 = r1 + gap;
        // (x - r1)(x - r2) is negative between the roots.
        let op = match (outside, strict) {
            (false, true) => "<",
            (false, false) => "\\le",
            (true, true) => ">",
            (true, false) => "\\ge",
        };
        let ineq = format!("x^2 - {}x + {} {op} 0", r1 + r2, r1 * r2);
        let (lo, hi) = if strict { ("(", ")") } else { ("[", "]") };
        let set = if outside {
            let (c1, c2) = if strict { (")", "(") } else { ("]", "[") };
            format!("(-\\infty, {r1}{c1} \\cup {c2}{r2}, \\infty)")
        } else {
            format!("{lo}{r1}, {r2}{hi}")
        };
        prop_assert!(answers_equal(&set, &ineq), "{set} vs {ineq}");
        prop_assert!(answers_equal(&ineq, &set), "{ineq} vs {set}");
        let shifted = if outside {
            format!("(-\\infty, {}) \\cup ({r2}, \\infty)", r1 - 1)
        } else {
            format!("{lo}{r1}, {}{hi}", r2 + 1)
        };
        prop_assert!(!answers_equal(&shifted, &ineq), "{shifted} vs {ineq}");
    }
}

/// Pieces of the evaluation rules: series, factorials, number theory, hyperbolic functions,
/// matrices, mixed numbers, magnitudes.
fn eval_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\\sum_{n=1}^{\\infty}".to_string()),
        Just("\\sum_{n\\ge0}".to_string()),
        Just("\\sum_{k=0}^{10^{9}}".to_string()),
        Just("\\frac{1}{n!}".to_string()),
        Just("\\frac{(-1)^n}{n}".to_string()),
        Just("n^{n}".to_string()),
        Just("!!".to_string()),
        Just("!".to_string()),
        Just("3000".to_string()),
        Just("100!".to_string()),
        Just("1E-32".to_string()),
        Just("1E300".to_string()),
        Just("\\gcd(".to_string()),
        Just("\\operatorname{lcm}(".to_string()),
        Just("\\max\\{".to_string()),
        Just("\\}".to_string()),
        Just("\\mod".to_string()),
        Just("\\sinh".to_string()),
        Just("\\operatorname{arcosh}".to_string()),
        Just("\\tanh^{-1}".to_string()),
        Just("\\coth".to_string()),
        Just("-3\\frac12".to_string()),
        Just("876,123".to_string()),
        Just("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}".to_string()),
        Just("\\begin{vmatrix} 0 & 1 \\\\ 1 & 0 \\end{vmatrix}".to_string()),
        Just("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}".to_string()),
        Just("^{-1}".to_string()),
        Just("^{32}".to_string()),
        Just("^T".to_string()),
        Just("I".to_string()),
        Just("+".to_string()),
        Just("-".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        Just("=".to_string()),
        Just("<".to_string()),
        Just("\\cup".to_string()),
        Just("x".to_string()),
        Just(" and ".to_string()),
        Just(" percentage".to_string()),
        Just(" cm".to_string()),
        "[0-9]{1,4}",
    ]
}

fn eval_soup() -> impl Strategy<Value = String> {
    prop::collection::vec(eval_fragment(), 1..14).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_is_deterministic_and_stays_under_100ms(
        a in eval_soup(),
        b in eval_soup(),
    ) {
        let start = Instant::now();
        let v1 = grade(&a, &b).equal;
        let took = start.elapsed();
        prop_assert!(took < Duration::from_millis(100), "{took:?} for {a:?} vs {b:?}");
        prop_assert_eq!(v1, grade(&a, &b).equal);
    }
}
