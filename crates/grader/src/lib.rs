//! Math answer grading: extraction, normalisation, equivalence.
//!
//! - [`extract`]: final-answer extraction from solution texts.
//! - [`normalize`]: string clean-up before parsing.
//! - [`parse`]: LaTeX → expression tree.
//! - [`value`] / [`eval`]: exact and numeric evaluation with size caps.
//! - [`equiv`]: answer shapes and equivalence.
//! - [`gold`]: per-dataset gold answers.

pub mod equiv;
pub mod eval;
pub mod extract;
pub mod gold;
pub mod matrix;
pub mod normalize;
pub mod parse;
pub mod value;

use serde::Serialize;

pub use equiv::answers_equal;
pub use extract::extract_answer;
pub use gold::{Dataset, GoldError, gold_answer};

/// Result of grading one prediction.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub equal: bool,
    /// The gold answer as compared (extracted and cleaned).
    pub gold: String,
    /// The answer extracted from the prediction, `None` if nothing was found.
    pub pred: Option<String>,
}

/// Grade a prediction (bare answer or whole solution) against a gold answer.
pub fn grade(gold: &str, pred_text: &str) -> Verdict {
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
    let pred = extract_answer(pred_text);
    let equal = pred.as_deref().is_some_and(|p| answers_equal(&g_clean, p));
    Verdict {
        equal,
        gold: g_clean,
        pred: pred.map(|p| normalize::clean_answer(&p)),
    }
}
