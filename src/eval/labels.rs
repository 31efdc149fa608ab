//! Outcome labels for `generate` records: would a solution continued from this step reach the gold
//! answer? For each record both candidate steps (the draft's and the target's) are labelled by a
//! Monte-Carlo rollout in the manner of Math-Shepherd: the target continues greedily from the step
//! to the end of the solution, and the final answer is graded. A label therefore says "this step
//! leads to a correct solution", whoever wrote it, which is what a PRM should score and what a
//! router should compare.
//!
//! The same pass reads the hidden states that the value-head PRM and the hidden-state router probe
//! are trained on, and the `target-judge` stand-in's scores, so every
//! scorer is compared on the same labels.

use std::collections::HashMap;
use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::backend::{EngineError, ForcedTokens, StepGenerator, StepScorer, TextProbe};
use crate::method::speculate::StepRecord;
use crate::types::{FinishReason, StepOptions, Transcript};

/// Version of the `labels.jsonl` line format.
pub const LABELS_FORMAT_VERSION: u32 = 1;

/// A hidden-state vector, stored as base64 of little-endian `f32`s (a third of the size of a JSON
/// number array, and exact).
#[derive(Clone, PartialEq, Default)]
pub struct HiddenState(pub Vec<f32>);

impl fmt::Debug for HiddenState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HiddenState({} values)", self.0.len())
    }
}

impl Serialize for HiddenState {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes: Vec<u8> = self.0.iter().flat_map(|x| x.to_le_bytes()).collect();
        serializer.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }
}

impl<'de> Deserialize<'de> for HiddenState {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.as_bytes())
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(format!(
                "a hidden state of {} bytes is not a whole number of f32s",
                bytes.len()
            )));
        }
        Ok(HiddenState(
            bytes
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
        ))
    }
}

/// One line of `labels.jsonl`: the labels of one `generate` record, found by `(idx, step_index)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelLine {
    pub format_version: u32,
    pub idx: usize,
    pub step_index: usize,
    /// The target's greedy continuation from the draft's step reaches the gold answer.
    pub draft_correct: bool,
    /// The same from the target's step.
    pub target_correct: bool,
    /// Tokens of each continuation (0 when the step itself ended the solution).
    pub draft_rollout_tokens: u64,
    pub target_rollout_tokens: u64,
    /// `target-judge` stand-in scores of the two steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_judge: Option<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_judge: Option<f32>,
    /// The draft's final hidden state at the last token of its own step (the router probe's input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub draft_hidden: Option<HiddenState>,
    /// The target's final hidden state at the last token of the draft's step and of its own (the
    /// value head's inputs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hidden_at_draft: Option<HiddenState>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hidden_at_target: Option<HiddenState>,
}

/// Steps already known to be the target's greedy choice after a given list of steps: the target
/// steps of a problem's `generate` records, and every step a rollout of the problem wrote. A
/// rollout that reaches one of those lists reuses the step instead of writing it again. That is
/// most of the work: the rollout from a chosen step continues exactly as the rollout from the next
/// record's target step does. (Record steps were written by verification, which agrees with plain
/// greedy decoding except at near-ties.)
#[derive(Debug, Default)]
pub struct KnownSteps {
    after: HashMap<Vec<String>, String>,
    /// Every known step with the step before it, in the order learnt: where a rollout that has
    /// left the known lists looks for a proposal to verify.
    followers: Vec<(String, String)>,
}

/// How alike two steps must be (shared words over the longer step's words) before what followed
/// one is proposed after the other.
const PROPOSAL_MIN_LIKENESS: f64 = 0.5;

impl KnownSteps {
    pub fn insert(&mut self, previous: Vec<String>, target_step: String) {
        if let Some(last) = previous.last() {
            self.followers.push((last.clone(), target_step.clone()));
        }
        self.after.insert(previous, target_step);
    }

    pub fn get(&self, previous: &[String]) -> Option<&str> {
        self.after.get(previous).map(String::as_str)
    }

    /// A guess at the target's next step after `previous`, for it to verify: the known step that
    /// followed the step most like `previous`'s last (the latest such on a tie). Rollouts from a
    /// draft step usually rejoin the record's solution in different words, and the step after a
    /// near-identical step is often written token for token the same; verification keeps only the
    /// tokens the target would write itself, and a guess it rejects at once costs a small batch.
    pub fn proposal(&self, previous: &[String]) -> Option<&str> {
        let last = previous.last()?;
        let mut best: Option<(f64, &str)> = None;
        for (before, step) in &self.followers {
            let likeness = word_likeness(before, last);
            if likeness >= PROPOSAL_MIN_LIKENESS && best.is_none_or(|(b, _)| likeness >= b) {
                best = Some((likeness, step));
            }
        }
        best.map(|(_, step)| step)
    }
}

/// Distinct words two texts share, over the distinct words of the longer: 1 for the same words.
fn word_likeness(a: &str, b: &str) -> f64 {
    fn words(t: &str) -> std::collections::HashSet<&str> {
        t.split_whitespace().collect()
    }
    let (a, b) = (words(a), words(b));
    let longer = a.len().max(b.len());
    if longer == 0 {
        return 0.0;
    }
    a.intersection(&b).count() as f64 / longer as f64
}

/// Where a rollout starts and how far it may go.
pub struct RolloutSpec<'a> {
    pub problem: u64,
    pub question: &'a str,
    pub prompt: &'a str,
    pub options: &'a StepOptions,
    /// Tokens the continuation may write before it counts as unfinished (and so wrong).
    pub max_tokens: u64,
    pub max_steps: usize,
}

/// A finished continuation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// The whole solution: the starting steps and the continuation.
    pub text: String,
    /// Tokens of the continuation, written or reused.
    pub tokens: u64,
    /// Of `tokens`, those the target wrote now (the rest came from [`KnownSteps`]).
    pub written_tokens: u64,
    /// Of `written_tokens`, those it kept from a verified [`KnownSteps::proposal`] (a batched read
    /// each instead of a decode).
    pub accepted_tokens: u64,
    /// It ended with an end-of-sequence token rather than a budget or a loop.
    pub finished: bool,
}

/// A step is the last of its solution when it does not end with the separator: the model ended
/// the sequence (or ran out of budget) inside it.
pub fn ends_solution(step: &str, options: &StepOptions) -> bool {
    match &options.separator {
        Some(sep) => !step.ends_with(sep.as_str()),
        None => true,
    }
}

/// Continues `steps` greedily with `target` until it ends the solution or a budget runs out.
pub fn roll_out(
    target: &dyn StepGenerator,
    spec: &RolloutSpec<'_>,
    mut steps: Vec<String>,
    known: &mut KnownSteps,
) -> Result<Rollout, EngineError> {
    let mut tokens = 0u64;
    let mut written = 0u64;
    let mut accepted = 0u64;
    let mut finished = steps.last().is_some_and(|s| ends_solution(s, spec.options));
    // A step that fell into a loop ends the rollout unfinished, as the budget would have.
    let mut looping = false;
    while !finished && !looping && tokens < spec.max_tokens && steps.len() < spec.max_steps {
        let step = if let Some(text) = known.get(&steps) {
            let text = text.to_owned();
            finished = ends_solution(&text, spec.options);
            // A reused step's length in tokens is not recorded; a word count stands in for the
            // budget check only.
            tokens += text.split_whitespace().count() as u64;
            text
        } else {
            let mut options = spec.options.clone();
            options.max_tokens = options
                .max_tokens
                .min(spec.max_tokens.saturating_sub(tokens).max(1) as u32);
            let transcript = Transcript {
                problem: spec.problem,
                question: spec.question,
                prompt: spec.prompt,
                steps: &steps,
            };
            let proposal = known.proposal(&steps).map(str::to_owned);
            let step = match &proposal {
                Some(p) => target.verify_step(&transcript, &options, p)?,
                None => target.generate_step(&transcript, &options)?,
            };
            let n = step.usage.generated_tokens + step.usage.accepted_tokens;
            tokens += n;
            written += n;
            accepted += step.usage.accepted_tokens;
            finished = step.finish == FinishReason::EndOfSequence;
            looping = step.finish == FinishReason::Repetition;
            // A step cut by the token budget is not what the model writes there unbudgeted; one
            // cut in a loop would read as a finished solution when reused.
            if !matches!(step.finish, FinishReason::Length | FinishReason::Repetition) {
                known.insert(steps.clone(), step.text.clone());
            }
            step.text
        };
        looping |= spec.options.stop_loops
            && !finished
            && crate::engines::repetition::repeats_earlier_steps(&steps, &step);
        steps.push(step);
    }
    Ok(Rollout {
        text: steps.concat(),
        tokens,
        written_tokens: written,
        accepted_tokens: accepted,
        finished,
    })
}

fn log_read(usage: crate::types::Usage, what: &str) {
    tracing::debug!(
        what,
        tokens = usage.prefill_tokens,
        seconds = usage.seconds,
        "read for labels"
    );
}

/// Whether a rollout's answer is the gold one. An unfinished rollout counts as wrong: it gave no
/// answer within its budget.
pub fn rollout_correct(rollout: &Rollout, gold: &str) -> bool {
    rollout.finished && arbitrage_grader::grade(gold, &rollout.text).equal
}

/// What labelling needs: the target to roll out with, and optionally the hidden-state readers and
/// the judge.
pub struct Labeller<'a> {
    pub target: &'a dyn StepGenerator,
    /// A target instance loaded with hidden states (value-head inputs).
    pub target_states: Option<&'a dyn TextProbe>,
    /// A draft instance loaded with hidden states (router-probe input).
    pub draft_states: Option<&'a dyn TextProbe>,
    /// The `target-judge` stand-in, scored on both steps for comparison.
    pub judge: Option<&'a dyn StepScorer>,
    pub options: StepOptions,
    pub rollout_max_tokens: u64,
    pub max_steps: usize,
}

/// One problem to label: its `generate` records, in step order.
pub struct ProblemRecords<'a> {
    pub problem: u64,
    pub idx: usize,
    pub question: &'a str,
    pub prompt: &'a str,
    pub gold: &'a str,
    pub records: &'a [StepRecord],
}

/// What labelling a problem cost.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LabelCost {
    pub rollouts: u64,
    /// Tokens the target wrote for rollouts (reused known steps excluded).
    pub written_tokens: u64,
    /// Of those, tokens kept from verified proposals.
    pub accepted_tokens: u64,
    /// Seconds spent on rollouts, and on reading hidden states and judge scores.
    pub rollout_seconds: f64,
    pub probe_seconds: f64,
}

impl Labeller<'_> {
    /// Labels every record of one problem. `interrupted` is polled between records.
    pub fn label_problem(
        &self,
        p: &ProblemRecords<'_>,
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<(Vec<LabelLine>, LabelCost)>, EngineError> {
        let mut known = KnownSteps::default();
        for r in p.records {
            known.insert(
                r.previous_steps.iter().map(|s| s.text.clone()).collect(),
                r.target_step.clone(),
            );
        }
        let spec = RolloutSpec {
            problem: p.problem,
            question: p.question,
            prompt: p.prompt,
            options: &self.options,
            max_tokens: self.rollout_max_tokens,
            max_steps: self.max_steps,
        };
        let mut cost = LabelCost::default();
        let mut lines = Vec::with_capacity(p.records.len());
        for r in p.records {
            if interrupted() {
                return Ok(None);
            }
            let previous: Vec<String> = r.previous_steps.iter().map(|s| s.text.clone()).collect();
            let rollouts_started = std::time::Instant::now();
            let mut outcome = |step: &str| -> Result<(bool, u64), EngineError> {
                let mut steps = previous.clone();
                steps.push(step.to_owned());
                let rollout = roll_out(self.target, &spec, steps, &mut known)?;
                cost.rollouts += 1;
                cost.written_tokens += rollout.written_tokens;
                cost.accepted_tokens += rollout.accepted_tokens;
                Ok((rollout_correct(&rollout, p.gold), rollout.tokens))
            };
            let (draft_correct, draft_rollout_tokens) = outcome(&r.draft_step)?;
            let (target_correct, target_rollout_tokens) = if r.target_step == r.draft_step {
                (draft_correct, draft_rollout_tokens)
            } else {
                outcome(&r.target_step)?
            };
            cost.rollout_seconds += rollouts_started.elapsed().as_secs_f64();
            let probes_started = std::time::Instant::now();
            let reads = self.read(p, r)?;
            lines.push(LabelLine {
                format_version: LABELS_FORMAT_VERSION,
                idx: p.idx,
                step_index: r.step_index,
                draft_correct,
                target_correct,
                draft_rollout_tokens,
                target_rollout_tokens,
                ..reads
            });
            cost.probe_seconds += probes_started.elapsed().as_secs_f64();
        }
        self.target.release(p.problem);
        Ok(Some((lines, cost)))
    }

    /// What this labeller reads at record `r` besides the rollouts: hidden states and judge
    /// scores (each `None` where it has no reader). The label fields are left false and 0.
    fn read(&self, p: &ProblemRecords<'_>, r: &StepRecord) -> Result<LabelLine, EngineError> {
        let previous: Vec<String> = r.previous_steps.iter().map(|s| s.text.clone()).collect();
        let transcript = Transcript {
            problem: p.problem,
            question: p.question,
            prompt: p.prompt,
            steps: &previous,
        };
        let state = |probe: Option<&dyn TextProbe>, step: &str| {
            probe
                .map(|m| m.probe(&transcript, step, &[], ForcedTokens::Skip))
                .transpose()
                .map(|p| {
                    p.and_then(|p| {
                        log_read(p.usage, "hidden state");
                        p.hidden
                    })
                    .map(HiddenState)
                })
        };
        let judge = |step: &str| {
            self.judge
                .map(|j| j.score_step(&transcript, step))
                .transpose()
                .map(|s| {
                    s.map(|s| {
                        log_read(s.usage, "judge");
                        s.score
                    })
                })
        };
        // Each step's hidden state is read before its judge question, which then only adds the
        // question to what the cache holds.
        let draft_hidden = state(self.draft_states, &r.draft_step)?;
        let target_hidden_at_draft = state(self.target_states, &r.draft_step)?;
        let draft_judge = judge(&r.draft_step)?;
        let target_hidden_at_target = state(self.target_states, &r.target_step)?;
        let target_judge = judge(&r.target_step)?;
        Ok(LabelLine {
            format_version: LABELS_FORMAT_VERSION,
            idx: p.idx,
            step_index: r.step_index,
            draft_correct: false,
            target_correct: false,
            draft_rollout_tokens: 0,
            target_rollout_tokens: 0,
            draft_judge,
            target_judge,
            draft_hidden,
            target_hidden_at_draft,
            target_hidden_at_target,
        })
    }

    /// Whether `line` lacks something this labeller reads.
    pub fn lacks_reads(&self, line: &LabelLine) -> bool {
        let states = self.target_states.is_some()
            && (line.target_hidden_at_draft.is_none() || line.target_hidden_at_target.is_none());
        let draft = self.draft_states.is_some() && line.draft_hidden.is_none();
        let judge =
            self.judge.is_some() && (line.draft_judge.is_none() || line.target_judge.is_none());
        states || draft || judge
    }

    /// Fills in what one problem's label `lines` lack of this labeller's reads (hidden states,
    /// judge scores), without rolling out again: for runs labelled with `--no-hidden` or
    /// `--no-judge`. Lines are matched to `p.records` by step; the labels are kept as they are.
    pub fn complete_reads(
        &self,
        p: &ProblemRecords<'_>,
        lines: &[LabelLine],
        interrupted: &dyn Fn() -> bool,
    ) -> Result<Option<(Vec<LabelLine>, LabelCost)>, EngineError> {
        let started = std::time::Instant::now();
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            if interrupted() {
                return Ok(None);
            }
            let record = p.records.iter().find(|r| r.step_index == line.step_index);
            let Some(r) = record.filter(|_| self.lacks_reads(line)) else {
                out.push(line.clone());
                continue;
            };
            let read = self.read(p, r)?;
            out.push(LabelLine {
                draft_judge: line.draft_judge.or(read.draft_judge),
                target_judge: line.target_judge.or(read.target_judge),
                draft_hidden: line.draft_hidden.clone().or(read.draft_hidden),
                target_hidden_at_draft: line
                    .target_hidden_at_draft
                    .clone()
                    .or(read.target_hidden_at_draft),
                target_hidden_at_target: line
                    .target_hidden_at_target
                    .clone()
                    .or(read.target_hidden_at_target),
                ..line.clone()
            });
        }
        let cost = LabelCost {
            probe_seconds: started.elapsed().as_secs_f64(),
            ..LabelCost::default()
        };
        Ok(Some((out, cost)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_states_round_trip_exactly() {
        let h = HiddenState(vec![0.0, -1.5, f32::MIN_POSITIVE, 1e30, 3.25]);
        let json = serde_json::to_string(&h).unwrap();
        let back: HiddenState = serde_json::from_str(&json).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn a_hidden_state_with_a_partial_float_is_rejected() {
        let json = format!(
            "\"{}\"",
            base64::engine::general_purpose::STANDARD.encode([1u8, 2, 3, 4, 5])
        );
        let err = serde_json::from_str::<HiddenState>(&json).unwrap_err();
        assert!(err.to_string().contains("whole number of f32s"), "{err}");
    }

    #[test]
    fn a_step_without_the_separator_ends_the_solution() {
        let options = StepOptions {
            separator: Some("\n\n".into()),
            max_tokens: 10,
            stop_loops: true,
            sampling: crate::types::Sampling::GREEDY,
        };
        assert!(!ends_solution("Add 2 and 3.\n\n", &options));
        assert!(ends_solution("So the answer is \\boxed{5}.", &options));
    }

    #[test]
    fn a_proposal_follows_the_most_alike_step_and_the_latest_on_a_tie() {
        let mut known = KnownSteps::default();
        known.insert(
            vec!["She sold 48 clips.\n\n".into()],
            "Half of 48 is 24.\n\n".into(),
        );
        known.insert(vec!["Add them up.\n\n".into()], "48 + 24 = 72.\n\n".into());
        let after = |known: &KnownSteps, last: &str| {
            known
                .proposal(&["Question.".into(), last.into()])
                .map(str::to_owned)
        };
        // Three of the four words of the longer step are shared.
        assert_eq!(
            after(&known, "She sold 48 clips!\n\n").as_deref(),
            Some("Half of 48 is 24.\n\n")
        );
        assert_eq!(
            after(&known, "Add them up.\n\n").as_deref(),
            Some("48 + 24 = 72.\n\n")
        );
        assert_eq!(after(&known, "Something else entirely.\n\n"), None);
        assert_eq!(known.proposal(&[]), None);
        known.insert(vec!["Add them up.\n\n".into()], "So 72.\n\n".into());
        assert_eq!(
            after(&known, "Add them up.\n\n").as_deref(),
            Some("So 72.\n\n")
        );
    }

    #[test]
    fn word_likeness_counts_distinct_shared_words_over_the_longer_text() {
        assert_eq!(word_likeness("a b c", "a b c"), 1.0);
        assert_eq!(word_likeness("a b c d", "a b"), 0.5);
        assert_eq!(word_likeness("a a a", "a"), 1.0);
        assert_eq!(word_likeness("", ""), 0.0);
    }
}
