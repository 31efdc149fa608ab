//! Scripted models: a deterministic step writer, scorer and router that implement the engines'
//! traits, so the speculation loop's rules can be tested without GGUF files, and a test can say
//! exactly which steps each model writes and how each is scored.
//!
//! - A token is a whitespace-separated word (with the whitespace after it); the separator counts
//!   as part of the word it ends. `"a b\n\n"` is two tokens.
//! - [`ScriptedWriter`] writes the `i`-th step of its script as step `i` of any problem; the last
//!   one ends the solution. A step longer than the call's token limit is cut there (`Length`).
//!   A transcript whose last step lacks the separator is a glimpse: the writer continues that
//!   step from where it was cut. Verification keeps the proposal's leading words that equal the script's, as the embedded
//!   engine keeps tokens equal to its greedy choice.
//! - Every call costs `seconds_per_token` of *reported* time per token read or written (nothing
//!   sleeps), and is recorded, so a test can assert which model was asked for what.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::backend::{EngineError, Router, RouterInput, Scored, StepGenerator, StepScorer};
use crate::types::{FinishReason, GeneratedStep, StepOptions, Transcript, Usage};

/// Ends every step of a script but the last.
pub const SEPARATOR: &str = "\n\n";

/// One call a scripted model answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `generate_step` at step `index` (0-based) with a token limit.
    Generate {
        index: usize,
        max_tokens: u32,
    },
    /// `verify_step` at step `index` of a proposal.
    Verify {
        index: usize,
        proposal: String,
    },
    /// `score_step` / `score` of a step's text.
    Score {
        text: String,
    },
    Release {
        problem: u64,
    },
}

/// The words of `text` as tokens: each word with the whitespace that follows it.
pub fn tokens(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = false;
    for (i, c) in text.char_indices() {
        if c.is_whitespace() {
            in_space = true;
        } else if in_space {
            out.push(&text[start..i]);
            start = i;
            in_space = false;
        }
    }
    if start < text.len() {
        out.push(&text[start..]);
    }
    out
}

/// A step writer that writes the same script for every problem.
#[derive(Debug)]
pub struct ScriptedWriter {
    name: String,
    steps: Vec<String>,
    seconds_per_token: f64,
    /// The entropy reported at every token of a step, by step index (default 0.5 nats).
    entropies: HashMap<usize, f32>,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedWriter {
    /// `steps[i]` is written as step `i`; each but the last should end with the separator.
    pub fn new(name: &str, steps: &[&str]) -> Self {
        ScriptedWriter {
            name: name.to_owned(),
            steps: steps.iter().map(|s| (*s).to_owned()).collect(),
            seconds_per_token: 0.0,
            entropies: HashMap::new(),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// Reports `entropy` nats at every token of step `index` (what an early rule reads).
    pub fn entropy_at(mut self, index: usize, entropy: f32) -> Self {
        self.entropies.insert(index, entropy);
        self
    }

    /// Reports this many seconds for every token read or written.
    pub fn seconds_per_token(mut self, seconds: f64) -> Self {
        self.seconds_per_token = seconds;
        self
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn record(&self, call: Call) {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(call);
        }
    }

    /// The step a call writes, and how many of its tokens the transcript already holds: a last
    /// step without the separator is a glimpse the caller wants continued.
    fn position(transcript: &Transcript<'_>) -> (usize, usize) {
        match transcript.steps.last() {
            Some(last) if !last.ends_with(SEPARATOR) => {
                (transcript.steps.len() - 1, tokens(last).len())
            }
            _ => (transcript.steps.len(), 0),
        }
    }

    /// Step `index` of the script from token `skip` on, cut to `max_tokens`, with `accepted`
    /// leading tokens taken from a proposal and `read` tokens read first.
    fn write(
        &self,
        (index, skip): (usize, usize),
        max_tokens: u32,
        accepted: usize,
        read: usize,
    ) -> Result<GeneratedStep, EngineError> {
        let Some(step) = self.steps.get(index) else {
            return Err(EngineError::Invalid(format!(
                "{} has no step {index} in its script ({} steps)",
                self.name,
                self.steps.len()
            )));
        };
        let all = tokens(step);
        let words = &all[skip.min(all.len())..];
        let limit = (max_tokens as usize).max(1);
        let (kept, finish) = if words.len() > limit {
            (&words[..limit], FinishReason::Length)
        } else if index + 1 == self.steps.len() {
            (words, FinishReason::EndOfSequence)
        } else {
            (words, FinishReason::Separator)
        };
        let accepted = accepted.min(kept.len());
        let generated = kept.len() - accepted;
        let prefill_seconds = read as f64 * self.seconds_per_token;
        let mut usage = Usage {
            prefill_tokens: read as u64,
            generated_tokens: generated as u64,
            accepted_tokens: accepted as u64,
            seconds: prefill_seconds + generated as f64 * self.seconds_per_token,
            prefill_seconds,
            ..Usage::default()
        };
        usage.count_read(read);
        Ok(GeneratedStep {
            text: kept.concat(),
            finish,
            token_logprobs: vec![-0.1; generated],
            token_entropies: vec![self.entropies.get(&index).copied().unwrap_or(0.5); generated],
            usage,
        })
    }
}

impl StepGenerator for ScriptedWriter {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<GeneratedStep, EngineError> {
        let at = Self::position(transcript);
        self.record(Call::Generate {
            index: at.0,
            max_tokens: options.max_tokens,
        });
        self.write(at, options.max_tokens, 0, 1)
    }

    fn verify_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        proposal: &str,
    ) -> Result<GeneratedStep, EngineError> {
        let at = Self::position(transcript);
        self.record(Call::Verify {
            index: at.0,
            proposal: proposal.to_owned(),
        });
        let own = self.steps.get(at.0).map(|s| tokens(s)).unwrap_or_default();
        let proposed = tokens(proposal);
        let agreed = own
            .iter()
            .zip(&proposed)
            .take_while(|(a, b)| a == b)
            .count();
        self.write(at, options.max_tokens, agreed, proposed.len())
    }

    fn release(&self, problem: u64) {
        self.record(Call::Release { problem });
    }
}

/// Scores by the step's text: a fixed score per text, `default` for any other.
#[derive(Debug)]
pub struct ScriptedScorer {
    name: String,
    scores: HashMap<String, f32>,
    default: f32,
    calls: Mutex<Vec<Call>>,
}

impl ScriptedScorer {
    pub fn new(name: &str, scores: &[(&str, f32)], default: f32) -> Self {
        ScriptedScorer {
            name: name.to_owned(),
            scores: scores.iter().map(|(t, s)| ((*t).to_owned(), *s)).collect(),
            default,
            calls: Mutex::new(Vec::new()),
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn lookup(&self, text: &str) -> f32 {
        if let Ok(mut calls) = self.calls.lock() {
            calls.push(Call::Score {
                text: text.to_owned(),
            });
        }
        self.scores.get(text).copied().unwrap_or(self.default)
    }
}

impl StepScorer for ScriptedScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_step(&self, _transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError> {
        Ok(Scored {
            score: self.lookup(step),
            usage: Usage {
                prefill_tokens: tokens(step).len() as u64,
                read_calls: 1,
                ..Usage::default()
            },
        })
    }
}

impl Router for ScriptedScorer {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, input: &RouterInput<'_>) -> Result<f32, EngineError> {
        Ok(self.lookup(&input.step.text))
    }
}
