//! Math answer grading: extraction, normalisation, equivalence.
//!
//! - [`extract`]: final-answer extraction from solution texts.
//! - [`normalize`]: string clean-up before parsing.
//! - [`parse`]: LaTeX → expression tree.
//! - [`value`] / [`eval`]: exact and numeric evaluation with size caps.
//! - [`equiv`]: answer shapes and equivalence.
//! - [`gold`]: per-dataset gold answers.
//! - [`options`]: the declared conventions ([`GradeOptions`]) where evaluation suites differ.

pub mod equiv;
pub mod eval;
pub mod extract;
pub mod gold;
pub mod matrix;
pub mod normalize;
pub mod options;
pub mod parse;
pub mod value;

use serde::Serialize;

pub use equiv::{answers_equal, answers_equal_with};
pub use extract::extract_answer;
pub use gold::{Dataset, GoldError, gold_answer};
pub use options::{GradeOptions, ListOrder, OptionsError, RelTol, Tolerance, Units};

/// Result of grading one prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub equal: bool,
    /// The gold answer as compared (extracted and cleaned).
    pub gold: String,
    /// The answer extracted from the prediction, `None` if nothing was found.
    pub pred: Option<String>,
}

/// Grade a prediction (bare answer or whole solution) against a gold answer, under the default
/// conventions ([`GradeOptions::DEFAULT`]).
pub fn grade(gold: &str, pred_text: &str) -> Verdict {
    grade_with(gold, pred_text, &GradeOptions::DEFAULT)
}

/// Grade a prediction against a gold answer under the conventions `options`.
pub fn grade_with(gold: &str, pred_text: &str, options: &GradeOptions) -> Verdict {
    let g = extract::extract_gold(gold);
    let g_clean = normalize::clean_answer(&g);
    if let Some(letter) = extract::gold_choice(&g_clean) {
        let p = extract::extract_choice(pred_text);
        return Verdict {
            equal: p == Some(letter),
            gold: letter.to_string(),
            pred: p.map(String::from),
        };
    }
    let mut pred = extract_answer(pred_text);
    let mut equal = pred
        .as_deref()
        .is_some_and(|p| answers_equal_with(&g_clean, p, options));
    // A multi-part gold answered one box per part, with prose between the boxes.
    if !equal
        && let Some(n) = gold_parts(&g_clean)
        && let Some(joined) = extract::last_boxes(pred_text, n)
        && answers_equal_with(&g_clean, &joined, options)
    {
        equal = true;
        pred = Some(joined);
    }
    Verdict {
        equal,
        gold: g_clean,
        pred: pred.map(|p| normalize::clean_answer(&p)),
    }
}

/// The number of parts of a gold answer written as a plain list (`3, 5`, `x = 1; y = 2`), or
/// `None` for a single answer or a bracketed structure.
fn gold_parts(gold: &str) -> Option<usize> {
    match parse::parse(gold).ok()? {
        parse::Node::List(items) if items.len() >= 2 => Some(items.len()),
        _ => None,
    }
}
