//! The draft-side features a router reads: statistics the draft produced while writing the step
//! and cheap cues from its text, including whether its arithmetic checks out. Computing them needs
//! neither the target nor the PRM.

use serde::{Deserialize, Serialize};

use crate::backend::RouterInput;
use crate::method::arithmetic;
use crate::types::{Author, FinishReason, GeneratedStep};

/// Feature names, in the order [`step_features`] returns them. Router files list the names they
/// were trained on, and loading checks them against this list.
pub const FEATURE_NAMES: [&str; 14] = [
    "mean_logprob",
    "min_logprob",
    "low_prob_share",
    "mean_entropy",
    "max_entropy",
    "log_tokens",
    "log_step_index",
    "target_share",
    "has_boxed",
    "equals_count",
    "digit_share",
    "ends_solution",
    "arithmetic_checked",
    "arithmetic_errors",
];

/// The trailing features that depend on the step's text alone, so that records written before
/// they existed can be completed from their `draft_step` (see [`complete`]).
const TEXT_ONLY_TAIL: [&str; 2] = ["arithmetic_checked", "arithmetic_errors"];

fn text_only_tail(text: &str) -> [f32; 2] {
    let check = arithmetic::check(text);
    [check.checked as f32, check.errors as f32]
}

/// A record's features in this build's order. Records that carry an older prefix of
/// [`FEATURE_NAMES`] lacking only text features are completed from the draft step's text; any
/// other difference is an error (the message says what differs).
pub fn complete(names: &[String], values: &[f32], draft_step: &str) -> Result<Vec<f32>, String> {
    if names == FEATURE_NAMES {
        return Ok(values.to_vec());
    }
    let known = FEATURE_NAMES.len() - TEXT_ONLY_TAIL.len();
    let is_prefix = names.len() >= known
        && names.len() < FEATURE_NAMES.len()
        && names.iter().zip(FEATURE_NAMES).all(|(a, b)| a == b);
    if !is_prefix || values.len() != names.len() {
        return Err(format!(
            "records carry features {names:?}, this build computes {FEATURE_NAMES:?}; regenerate the data"
        ));
    }
    let tail = text_only_tail(draft_step);
    let mut out = values.to_vec();
    out.extend_from_slice(&tail[names.len() - known..]);
    Ok(out)
}

/// Named feature values, as stored in `steps.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Features(pub Vec<f32>);

pub fn step_features(input: &RouterInput<'_>) -> Features {
    let lp = &input.step.token_logprobs;
    let text = &input.step.text;
    let chars = text.chars().count().max(1) as f32;
    let [
        mean_logprob,
        min_logprob,
        low_prob_share,
        mean_entropy,
        max_entropy,
    ] = token_stats(lp, &input.step.token_entropies);
    let [log_step_index, target_share] = context_stats(input.previous_authors);
    let [arithmetic_checked, arithmetic_errors] = text_only_tail(text);
    Features(vec![
        mean_logprob,
        min_logprob,
        low_prob_share,
        mean_entropy,
        max_entropy,
        (lp.len() as f32).ln_1p(),
        log_step_index,
        target_share,
        f32::from(u8::from(text.contains("\\boxed"))),
        text.matches('=').count() as f32,
        text.chars().filter(char::is_ascii_digit).count() as f32 / chars,
        f32::from(u8::from(input.step.finish == FinishReason::EndOfSequence)),
        arithmetic_checked,
        arithmetic_errors,
    ])
}

/// Mean and minimum log-probability, share of tokens below probability ½, mean and largest
/// entropy (nats) of a step's tokens, or of its first few.
fn token_stats(logprobs: &[f32], entropies: &[f32]) -> [f32; 5] {
    let mean = |v: &[f32]| {
        if v.is_empty() {
            0.0
        } else {
            v.iter().sum::<f32>() / v.len() as f32
        }
    };
    let n = logprobs.len().max(1) as f32;
    [
        mean(logprobs),
        logprobs.iter().copied().fold(0.0, f32::min),
        logprobs.iter().filter(|&&l| l < 0.5f32.ln()).count() as f32 / n,
        mean(entropies),
        entropies.iter().copied().fold(0.0, f32::max),
    ]
}

/// `ln(1 + steps so far)` and the share of them the target wrote.
fn context_stats(previous_authors: &[Author]) -> [f32; 2] {
    let prev = previous_authors.len();
    let target_prev = previous_authors
        .iter()
        .filter(|a| **a == Author::Target)
        .count();
    [
        (prev as f32).ln_1p(),
        if prev == 0 {
            0.0
        } else {
            target_prev as f32 / prev as f32
        },
    ]
}

/// What an early decision reads of a glimpse (the draft's first few tokens of a step), in the
/// order [`glimpse_features`] returns them: the token statistics of [`FEATURE_NAMES`] over the
/// glimpse, and the context's.
pub const GLIMPSE_FEATURE_NAMES: [&str; 7] = [
    "mean_logprob",
    "min_logprob",
    "low_prob_share",
    "mean_entropy",
    "max_entropy",
    "log_step_index",
    "target_share",
];

/// The glimpse's features. `context` is `[log_step_index, target_share]` as in
/// [`FEATURE_NAMES`]: recomputed from the authors at run time, read from a record in training.
pub fn glimpse_features(logprobs: &[f32], entropies: &[f32], context: [f32; 2]) -> [f32; 7] {
    let [a, b, c, d, e] = token_stats(logprobs, entropies);
    [a, b, c, d, e, context[0], context[1]]
}

/// [`glimpse_features`] of a glimpse written after the steps of `previous_authors`.
pub fn glimpse_features_after(step: &GeneratedStep, previous_authors: &[Author]) -> [f32; 7] {
    glimpse_features(
        &step.token_logprobs,
        &step.token_entropies,
        context_stats(previous_authors),
    )
}

/// Where a named feature sits in [`FEATURE_NAMES`].
pub fn feature_index(name: &str) -> Option<usize> {
    FEATURE_NAMES.iter().position(|n| *n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Usage;

    /// The router's features of `step`, written after steps by `authors`.
    fn router_features(step: &GeneratedStep, authors: &[Author]) -> Vec<f32> {
        let steps = vec!["a\n\n".to_owned(); authors.len()];
        step_features(&RouterInput {
            problem: 0,
            prompt: "",
            question: "q",
            previous_authors: authors,
            previous_steps: &steps,
            step,
            prm_score: None,
        })
        .0
    }

    #[test]
    fn features_follow_the_named_order() {
        let step = GeneratedStep {
            text: "So x = 4, and \\boxed{4}.\n\n".into(),
            finish: FinishReason::Separator,
            token_logprobs: vec![-0.1, -2.0, -0.3, -0.1],
            token_entropies: vec![0.5, 1.5, 0.2, 0.2],
            usage: Usage::default(),
        };
        let f = router_features(&step, &[Author::Draft, Author::Target]);
        assert_eq!(f.len(), FEATURE_NAMES.len());
        let get = |name| f[feature_index(name).unwrap()];
        assert!((get("mean_logprob") + 0.625).abs() < 1e-6);
        assert_eq!(get("min_logprob"), -2.0);
        assert_eq!(get("low_prob_share"), 0.25);
        assert_eq!(get("max_entropy"), 1.5);
        assert_eq!(get("target_share"), 0.5);
        assert_eq!(get("has_boxed"), 1.0);
        assert_eq!(get("equals_count"), 1.0);
        assert_eq!(get("ends_solution"), 0.0);
        assert_eq!(get("arithmetic_checked"), 0.0);
    }

    #[test]
    fn a_glimpse_reads_the_same_statistics_as_the_router() {
        let step = GeneratedStep {
            text: "We have 3 + 4".into(),
            finish: FinishReason::Length,
            token_logprobs: vec![-0.1, -1.2, -0.05, -0.7],
            token_entropies: vec![0.4, 1.9, 0.1, 0.8],
            usage: Usage::default(),
        };
        let authors = [Author::Target, Author::Draft, Author::Draft];
        let router = router_features(&step, &authors);
        let glimpse = glimpse_features_after(&step, &authors);
        for (name, value) in GLIMPSE_FEATURE_NAMES.iter().zip(glimpse) {
            assert_eq!(value, router[feature_index(name).unwrap()], "{name}");
        }
        // What training rebuilds from a record's first tokens and its context features.
        let context = ["log_step_index", "target_share"].map(|n| router[feature_index(n).unwrap()]);
        assert_eq!(
            glimpse_features(&step.token_logprobs, &step.token_entropies, context),
            glimpse
        );
    }

    #[test]
    fn older_records_are_completed_from_their_text() {
        let old: Vec<String> = FEATURE_NAMES[..12]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        let values = vec![0.5; 12];
        let f = complete(&old, &values, "So \\(3 \\times 4 = 13\\) and 2 + 2 = 4.").unwrap();
        assert_eq!(f.len(), FEATURE_NAMES.len());
        assert_eq!(&f[..12], &values[..]);
        assert_eq!(&f[12..], &[2.0, 1.0]);
        let current: Vec<String> = FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect();
        assert_eq!(complete(&current, &f, "").unwrap(), f);
        let mut renamed = old.clone();
        renamed[3] = "something_else".into();
        let err = complete(&renamed, &values, "").unwrap_err();
        assert!(err.contains("something_else"), "{err}");
        assert!(complete(&old[..11], &values[..11], "").is_err());
    }
}
