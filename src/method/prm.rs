//! Process-reward scoring on the embedded engine: stand-ins for a PRM, built on a local model.
//!
//! No PRM weights are available to this project's machines, so the embedded default scores a step
//! with the target model itself. Both signals are named stand-ins everywhere they are reported:
//! - `target-logprob`: the geometric-mean probability the target gives the step's tokens,
//!   `exp(mean log p)`. Nearly free with KV reuse: the target must read a kept step anyway before it
//!   can write a later one, and the probe leaves exactly that in its cache.
//! - `target-judge`: the target is asked "Is the last step correct? Answer Yes or No." after the
//!   step, and `P(Yes) / (P(Yes) + P(No))` is the score. The question is rolled back afterwards.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use crate::backend::{EngineError, ForcedTokens, Scored, StepScorer, TextProbe};
use crate::method::prompts::PromptTemplate;
use crate::types::Transcript;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrmKind {
    TargetLogprob,
    TargetJudge,
}

impl PrmKind {
    pub const NAMES: [&'static str; 2] = ["target-logprob", "target-judge"];

    pub fn name(self) -> &'static str {
        match self {
            PrmKind::TargetLogprob => "target-logprob",
            PrmKind::TargetJudge => "target-judge",
        }
    }
}

impl fmt::Display for PrmKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PrmKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "target-logprob" => Ok(PrmKind::TargetLogprob),
            "target-judge" => Ok(PrmKind::TargetJudge),
            other => Err(format!(
                "unknown PRM `{other}` (known: {})",
                PrmKind::NAMES.join(", ")
            )),
        }
    }
}

/// A stand-in PRM that reads the step with a local model.
pub struct ProbePrm {
    model: Arc<dyn TextProbe>,
    kind: PrmKind,
    template: PromptTemplate,
    name: String,
}

impl ProbePrm {
    pub fn new(model: Arc<dyn TextProbe>, kind: PrmKind, template: PromptTemplate) -> Self {
        let name = format!("{kind} (stand-in PRM on {})", model.name());
        ProbePrm {
            model,
            kind,
            template,
            name,
        }
    }
}

/// The judge question appended after a step, closing the assistant turn first.
fn judge_suffix(template: PromptTemplate) -> &'static str {
    match template {
        PromptTemplate::Qwen25MathCot => {
            "<|im_end|>\n<|im_start|>user\nIs the last step correct? Answer Yes or No.<|im_end|>\n<|im_start|>assistant\n"
        }
        PromptTemplate::Llama3MathCot => {
            "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nIs the last step correct? Answer Yes or No.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
        }
    }
}

/// `exp(mean)` of token log-probabilities; an empty step scores 0.
pub fn geometric_mean_probability(logprobs: &[f32]) -> f32 {
    if logprobs.is_empty() {
        return 0.0;
    }
    (logprobs.iter().map(|&l| f64::from(l)).sum::<f64>() / logprobs.len() as f64).exp() as f32
}

/// `P(yes) / (P(yes) + P(no))` from log-probabilities; 0.5 when neither is possible.
pub fn yes_share(yes: f32, no: f32) -> f32 {
    let (y, n) = (f64::from(yes).exp(), f64::from(no).exp());
    if y + n > 0.0 {
        (y / (y + n)) as f32
    } else {
        0.5
    }
}

impl StepScorer for ProbePrm {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_step(&self, transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError> {
        match self.kind {
            PrmKind::TargetLogprob => {
                let probe = self
                    .model
                    .probe(transcript, step, &[], ForcedTokens::Logprobs)?;
                Ok(Scored {
                    score: geometric_mean_probability(&probe.token_logprobs),
                    usage: probe.usage,
                })
            }
            PrmKind::TargetJudge => {
                let forced = format!("{step}{}", judge_suffix(self.template));
                let probe =
                    self.model
                        .probe(transcript, &forced, &["Yes", "No"], ForcedTokens::Skip)?;
                let score = yes_share(probe.candidate_logprobs[0], probe.candidate_logprobs[1]);
                Ok(Scored {
                    score,
                    usage: probe.usage,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certain_step_scores_one() {
        assert!((geometric_mean_probability(&[0.0, 0.0]) - 1.0).abs() < 1e-6);
        assert!((geometric_mean_probability(&[-2f32.ln(); 3]) - 0.5).abs() < 1e-6);
        assert_eq!(geometric_mean_probability(&[]), 0.0);
    }

    #[test]
    fn the_judge_score_is_the_share_of_yes() {
        assert!((yes_share(0.5f32.ln(), 0.5f32.ln()) - 0.5).abs() < 1e-6);
        assert!((yes_share(0.3f32.ln(), 0.1f32.ln()) - 0.75).abs() < 1e-6);
        assert_eq!(yes_share(f32::NEG_INFINITY, f32::NEG_INFINITY), 0.5);
    }
}
