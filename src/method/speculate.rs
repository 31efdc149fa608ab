//! The speculation loop: one problem, step by step, under one run type.
//!
//! The loop only calls what the rule needs: in `rsd` a kept draft step costs the draft and the PRM,
//! never the target; in `router` a kept draft step costs the draft and the router. Every step is
//! traced with the inputs of its decision.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{EngineError, Router, RouterInput, StepGenerator, StepScorer};
use crate::engines::repetition;
use crate::method::features::{Features, glimpse_features_after, step_features};
use crate::method::policy::{self, EarlyRule, RunType};
use crate::types::{Author, FinishReason, GeneratedStep, StepOptions, Transcript, Usage};

/// The models a run drives. PRM and router are needed only by the run types that read them.
pub struct Models<'a> {
    pub draft: &'a dyn StepGenerator,
    pub target: &'a dyn StepGenerator,
    pub prm: Option<&'a dyn StepScorer>,
    pub router: Option<&'a dyn Router>,
}

/// Limits on one solution, and how an escalated step is written.
#[derive(Debug, Clone)]
pub struct Limits {
    pub step: StepOptions,
    pub max_steps: u32,
    pub max_tokens: u32,
    /// The target verifies the draft's step before writing its own (greedy steps only): it keeps
    /// the draft's tokens while they equal its own greedy choice. The text is the same either way;
    /// only the cost differs.
    pub verify: bool,
}

/// One chosen step and the decision that chose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    pub model: Author,
    pub text: String,
    /// PRM score of the draft step proposed here (kept or rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prm_score: Option<f32>,
    /// PRM score of the target's step, where one was scored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_prm_score: Option<f32>,
    /// The router's ŷ for the proposed draft step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_score: Option<f32>,
    /// The draft step that was proposed and replaced by the target's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_draft_text: Option<String>,
    /// Tokens of the chosen step: written, plus those taken from the draft by verification.
    pub tokens: u32,
    /// Of `tokens`, how many the target took from the rejected draft step by verification: the
    /// step's leading tokens, so its text starts with theirs.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub accepted_tokens: u32,
    /// Sent to the target on a glimpse of the draft's step, before the draft finished it
    /// (`rejected_draft_text` is then that glimpse).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub early: bool,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}

/// Work per role, summed over a problem (or a run).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RoleUsage {
    pub draft: Usage,
    pub target: Usage,
    pub prm: Usage,
    pub router: Usage,
}

impl RoleUsage {
    /// One number per role.
    pub fn per_role<T>(&self, f: impl Fn(&Usage) -> T) -> crate::types::PerRole<T> {
        crate::types::PerRole {
            draft: f(&self.draft),
            target: f(&self.target),
            prm: f(&self.prm),
            router: f(&self.router),
        }
    }
}

/// Where a problem's (or a run's) latency went, in seconds. The parts add up to the latency:
/// `other` is what no model call accounts for (the loop, features, grading is not included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TimeSplit {
    pub draft_decode: f64,
    /// Reading new context (prompt, steps the target wrote).
    pub draft_prefill: f64,
    pub target_decode: f64,
    /// Reading new context, and reading draft steps in one batch to verify them.
    pub target_prefill: f64,
    pub prm: f64,
    pub router: f64,
    pub other: f64,
}

impl TimeSplit {
    /// The split of one solution's latency.
    pub fn of(usage: &RoleUsage, latency_s: f64) -> TimeSplit {
        let decode = |u: &crate::types::Usage| (u.seconds - u.prefill_seconds).max(0.0);
        let mut split = TimeSplit {
            draft_decode: decode(&usage.draft),
            draft_prefill: usage.draft.prefill_seconds,
            target_decode: decode(&usage.target),
            target_prefill: usage.target.prefill_seconds,
            prm: usage.prm.seconds,
            router: usage.router.seconds,
            other: 0.0,
        };
        split.other = latency_s - split.models();
        split
    }

    /// Seconds inside model calls.
    pub fn models(&self) -> f64 {
        self.draft_decode
            + self.draft_prefill
            + self.target_decode
            + self.target_prefill
            + self.prm
            + self.router
    }

    pub fn add(&mut self, o: &TimeSplit) {
        self.draft_decode += o.draft_decode;
        self.draft_prefill += o.draft_prefill;
        self.target_decode += o.target_decode;
        self.target_prefill += o.target_prefill;
        self.prm += o.prm;
        self.router += o.router;
        self.other += o.other;
    }
}

/// Why a solution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    EndOfSequence,
    MaxSteps,
    MaxTokens,
    /// The chosen step fell into a loop: going on would repeat it until the budget runs out.
    Repetition,
}

/// A record for router training: everything known at one step of a `generate` run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub step_index: usize,
    pub previous_steps: Vec<PreviousStep>,
    pub draft_step: String,
    pub target_step: String,
    pub prm_score: f32,
    pub target_prm_score: f32,
    /// Values in the order of `feature_names` (see `crate::method::features::FEATURE_NAMES`).
    pub features: Features,
    pub draft_tokens: u32,
    pub target_tokens: u32,
    /// The draft's log-probability and entropy at each token of its step, for routers that read
    /// part of a step (an early decision reads the first few).
    #[serde(default)]
    pub draft_token_logprobs: Vec<f32>,
    #[serde(default)]
    pub draft_token_entropies: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousStep {
    pub model: Author,
    pub text: String,
}

/// A finished solution.
#[derive(Debug, Clone)]
pub struct Solution {
    pub steps: Vec<TraceStep>,
    pub stop: Stop,
    pub latency_s: f64,
    /// The part of `latency_s` replayed from the step cache.
    pub replayed_s: f64,
    pub usage: RoleUsage,
    pub draft_tokens: u64,
    pub target_tokens: u64,
    /// Draft tokens written and then not used: those of rejected steps, less what verification
    /// kept.
    pub discarded_draft_tokens: u64,
    /// Draft tokens the target kept by verification instead of writing them.
    pub accepted_draft_tokens: u64,
    /// Filled in `generate` runs only.
    pub records: Vec<StepRecord>,
}

impl Solution {
    pub fn text(&self) -> String {
        self.steps.iter().map(|s| s.text.as_str()).collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    #[error("the {role} model failed at step {step}")]
    Engine {
        role: &'static str,
        step: usize,
        #[source]
        source: EngineError,
    },
    #[error("run type `{0}` needs a {1}, and none is configured")]
    Missing(RunType, &'static str),
    #[error("interrupted")]
    Interrupted,
}

/// The problem being solved.
#[derive(Debug, Clone, Copy)]
pub struct Task<'a> {
    /// Identifies the problem to the engines (their caches are per problem).
    pub problem: u64,
    pub question: &'a str,
    /// The rendered prompt the models continue.
    pub prompt: &'a str,
}

/// A run type, its threshold, and (for `router`) an optional decision before the draft finishes.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub run_type: RunType,
    pub threshold: f64,
    /// `router` only: escalate on a glimpse of the draft's step (see [`EarlyRule`]).
    pub early: Option<EarlyRule>,
}

/// Where the loop reports a problem as it goes, and how it is told to stop: the one channel from
/// the loop to whoever runs it (a run's writer and progress bar, a server's stream).
pub trait StepSink {
    /// A step was decided. `index` counts from 0; `step` is final.
    fn step_decided(&mut self, index: usize, step: &TraceStep) {
        let _ = (index, step);
    }

    /// Asked before every step: `true` stops the problem at this step boundary (Ctrl-C, a
    /// client that went away), and [`solve`] returns [`SolveError::Interrupted`].
    fn should_stop(&mut self) -> bool {
        false
    }
}

/// Reports nothing and never stops.
pub struct NoSink;

impl StepSink for NoSink {}

/// Solves one problem, telling `sink` about every step as it is decided and asking it before
/// every step whether to stop.
pub fn solve(
    models: &Models<'_>,
    task: &Task<'_>,
    rule: Rule,
    limits: &Limits,
    sink: &mut dyn StepSink,
) -> Result<Solution, SolveError> {
    let run_type = rule.run_type;
    if run_type.needs_prm() && models.prm.is_none() {
        return Err(SolveError::Missing(run_type, "PRM"));
    }
    if run_type == RunType::Router && models.router.is_none() {
        return Err(SolveError::Missing(run_type, "router"));
    }
    if run_type == RunType::Router
        && models.router.is_some_and(|r| r.reads_prm())
        && models.prm.is_none()
    {
        return Err(SolveError::Missing(
            run_type,
            "PRM (the router reads its score)",
        ));
    }
    let started = Instant::now();
    let mut history = History::default();
    let mut out = Solution {
        steps: Vec::new(),
        stop: Stop::MaxSteps,
        latency_s: 0.0,
        replayed_s: 0.0,
        usage: RoleUsage::default(),
        draft_tokens: 0,
        target_tokens: 0,
        discarded_draft_tokens: 0,
        accepted_draft_tokens: 0,
        records: Vec::new(),
    };
    let mut written: u64 = 0;
    let result = (|| {
        loop {
            if sink.should_stop() {
                return Err(SolveError::Interrupted);
            }
            let index = history.texts.len();
            if index >= limits.max_steps as usize {
                out.stop = Stop::MaxSteps;
                return Ok(());
            }
            let remaining = u64::from(limits.max_tokens).saturating_sub(written);
            if remaining == 0 {
                out.stop = Stop::MaxTokens;
                return Ok(());
            }
            let mut options = limits.step.clone();
            options.max_tokens = options.max_tokens.min(remaining as u32);
            let at = StepAt {
                models,
                task,
                limits,
                history: &history,
                options,
                index,
            };
            let (chosen, trace) = at.decide(&rule, &mut out)?;
            written += chosen.usage.generated_tokens + chosen.usage.accepted_tokens;
            let finish = if limits.step.stop_loops
                && chosen.finish != FinishReason::EndOfSequence
                && repetition::repeats_earlier_steps(&history.texts, &chosen.text)
            {
                FinishReason::Repetition
            } else {
                chosen.finish
            };
            sink.step_decided(index, &trace);
            history.texts.push(chosen.text);
            history.authors.push(trace.model);
            out.steps.push(trace);
            match finish {
                FinishReason::EndOfSequence => {
                    out.stop = Stop::EndOfSequence;
                    return Ok(());
                }
                FinishReason::Repetition => {
                    out.stop = Stop::Repetition;
                    return Ok(());
                }
                FinishReason::Separator | FinishReason::Length => {}
            }
        }
    })();
    models.draft.release(task.problem);
    models.target.release(task.problem);
    result?;
    // Work replayed from the step cache took (almost) no time now; count it at the cost measured
    // when it was done, so latency means the same with and without the cache.
    let u = &out.usage;
    let replayed = u.draft.replayed_seconds
        + u.target.replayed_seconds
        + u.prm.replayed_seconds
        + u.router.replayed_seconds;
    out.latency_s = started.elapsed().as_secs_f64() + replayed;
    out.replayed_s = replayed;
    Ok(out)
}

/// The steps chosen so far and who wrote them.
#[derive(Debug, Default)]
struct History {
    texts: Vec<String>,
    authors: Vec<Author>,
}

/// Everything one step is decided with. Its methods are the loop's parts: proposing (the
/// draft), scoring and routing, continuing (the target), and `decide`, which strings them
/// together per run type around the pure rules of [`policy`].
struct StepAt<'a> {
    models: &'a Models<'a>,
    task: &'a Task<'a>,
    limits: &'a Limits,
    history: &'a History,
    options: StepOptions,
    index: usize,
}

impl StepAt<'_> {
    fn transcript(&self) -> Transcript<'_> {
        Transcript {
            problem: self.task.problem,
            question: self.task.question,
            prompt: self.task.prompt,
            steps: &self.history.texts,
        }
    }

    fn failed(&self, role: &'static str) -> impl FnOnce(EngineError) -> SolveError {
        let step = self.index + 1;
        move |source| SolveError::Engine { role, step, source }
    }

    /// One call to the draft, counted.
    fn draft_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        out: &mut Solution,
    ) -> Result<GeneratedStep, SolveError> {
        let step = self
            .models
            .draft
            .generate_step(transcript, options)
            .map_err(self.failed("draft"))?;
        out.usage.draft.add(&step.usage);
        out.draft_tokens += step.usage.generated_tokens;
        Ok(step)
    }

    /// Proposing: the draft writes its whole step.
    fn propose(&self, out: &mut Solution) -> Result<GeneratedStep, SolveError> {
        self.draft_step(&self.transcript(), &self.options, out)
    }

    /// Proposing, with an early exit: the draft writes at most `tokens` tokens of its step.
    fn glimpse(&self, tokens: u32, out: &mut Solution) -> Result<GeneratedStep, SolveError> {
        let mut options = self.options.clone();
        options.max_tokens = options.max_tokens.min(tokens.max(1));
        self.draft_step(&self.transcript(), &options, out)
    }

    /// The draft writes on from a kept glimpse to the end of its step.
    fn finish_glimpse(
        &self,
        glimpse: GeneratedStep,
        out: &mut Solution,
    ) -> Result<GeneratedStep, SolveError> {
        let mut steps = self.history.texts.clone();
        steps.push(glimpse.text.clone());
        let mut options = self.options.clone();
        options.max_tokens = options
            .max_tokens
            .saturating_sub(glimpse.usage.generated_tokens as u32);
        if options.max_tokens == 0 {
            return Ok(glimpse);
        }
        let transcript = Transcript {
            steps: &steps,
            ..self.transcript()
        };
        let rest = self.draft_step(&transcript, &options, out)?;
        Ok(join_steps(glimpse, rest, options.separator.as_deref()))
    }

    /// Continuing: the target writes the step. When it replaces a draft step (whole or a
    /// glimpse), it verifies that first and keeps the tokens it agrees with.
    fn target_step(
        &self,
        replaced: Option<&GeneratedStep>,
        out: &mut Solution,
    ) -> Result<GeneratedStep, SolveError> {
        let target = self.models.target;
        let step = match replaced {
            Some(d) if self.limits.verify => {
                target.verify_step(&self.transcript(), &self.options, &d.text)
            }
            _ => target.generate_step(&self.transcript(), &self.options),
        }
        .map_err(self.failed("target"))?;
        out.usage.target.add(&step.usage);
        out.target_tokens += step.usage.generated_tokens;
        Ok(step)
    }

    fn score(&self, text: &str, out: &mut Solution) -> Result<f32, SolveError> {
        let prm = self.models.prm.expect("checked before the loop");
        let scored = prm
            .score_step(&self.transcript(), text)
            .map_err(self.failed("PRM"))?;
        out.usage.prm.add(&scored.usage);
        Ok(scored.score)
    }

    fn router_input<'s>(
        &'s self,
        step: &'s GeneratedStep,
        prm_score: Option<f32>,
    ) -> RouterInput<'s> {
        RouterInput {
            problem: self.task.problem,
            prompt: self.task.prompt,
            question: self.task.question,
            previous_authors: &self.history.authors,
            previous_steps: &self.history.texts,
            step,
            prm_score,
        }
    }

    /// The router's ŷ for `step`, and the PRM's score of it where the router reads one (paid
    /// for as RSD pays for it).
    fn route(
        &self,
        step: &GeneratedStep,
        out: &mut Solution,
    ) -> Result<(f32, Option<f32>), SolveError> {
        let router = self.models.router.expect("checked before the loop");
        let prm_score = if router.reads_prm() {
            Some(self.score(&step.text, out)?)
        } else {
            None
        };
        let t0 = Instant::now();
        let y = router
            .score(&self.router_input(step, prm_score))
            .map_err(self.failed("router"))?;
        out.usage.router.add(&Usage {
            seconds: t0.elapsed().as_secs_f64(),
            ..Usage::default()
        });
        Ok((y, prm_score))
    }

    /// The target replaces the draft's (whole or partial) step `d`.
    fn escalate(
        &self,
        d: GeneratedStep,
        out: &mut Solution,
        mark: impl FnOnce(&mut TraceStep),
    ) -> Result<(GeneratedStep, TraceStep), SolveError> {
        let t = self.target_step(Some(&d), out)?;
        let mut trace = TraceStep::plain(Author::Target, &t);
        mark(&mut trace);
        out.replaced(d, &t, &mut trace);
        Ok((t, trace))
    }

    /// Decides one step under `rule`: the chosen step and its trace.
    fn decide(
        &self,
        rule: &Rule,
        out: &mut Solution,
    ) -> Result<(GeneratedStep, TraceStep), SolveError> {
        let threshold = rule.threshold;
        match rule.run_type {
            RunType::Draft => {
                let d = self.propose(out)?;
                let trace = TraceStep::plain(Author::Draft, &d);
                Ok((d, trace))
            }
            RunType::Target => {
                let t = self.target_step(None, out)?;
                let trace = TraceStep::plain(Author::Target, &t);
                Ok((t, trace))
            }
            RunType::Rsd => {
                let d = self.propose(out)?;
                let s = self.score(&d.text, out)?;
                if policy::rsd_keeps_draft(s, threshold) {
                    let mut trace = TraceStep::plain(Author::Draft, &d);
                    trace.prm_score = Some(s);
                    Ok((d, trace))
                } else {
                    self.escalate(d, out, |trace| trace.prm_score = Some(s))
                }
            }
            RunType::Router => {
                let d = match &rule.early {
                    Some(early) => {
                        let glimpse = self.glimpse(early.tokens, out)?;
                        let cut_short = glimpse.finish == FinishReason::Length
                            && glimpse.usage.generated_tokens < u64::from(self.options.max_tokens);
                        if cut_short
                            && policy::early_escalates(
                                early,
                                &glimpse_features_after(&glimpse, &self.history.authors),
                            )
                        {
                            return self.escalate(glimpse, out, |trace| trace.early = true);
                        }
                        if cut_short {
                            self.finish_glimpse(glimpse, out)?
                        } else {
                            glimpse
                        }
                    }
                    None => self.propose(out)?,
                };
                let (y, prm_score) = self.route(&d, out)?;
                let mark = |trace: &mut TraceStep| {
                    trace.router_score = Some(y);
                    trace.prm_score = prm_score;
                };
                if policy::router_escalates(y, threshold) {
                    self.escalate(d, out, mark)
                } else {
                    let mut trace = TraceStep::plain(Author::Draft, &d);
                    mark(&mut trace);
                    Ok((d, trace))
                }
            }
            RunType::Oracle | RunType::Generate => {
                let d = self.propose(out)?;
                let t = self.target_step(Some(&d), out)?;
                let sd = self.score(&d.text, out)?;
                let st = self.score(&t.text, out)?;
                let use_target = if rule.run_type == RunType::Oracle {
                    policy::oracle_uses_target(sd, st, threshold)
                } else {
                    policy::generate_uses_target(sd, st)
                };
                if rule.run_type == RunType::Generate {
                    out.records.push(self.record(&d, &t, sd, st));
                }
                let (chosen, mut trace) = if use_target {
                    let mut trace = TraceStep::plain(Author::Target, &t);
                    out.replaced(d, &t, &mut trace);
                    (t, trace)
                } else {
                    let trace = TraceStep::plain(Author::Draft, &d);
                    (d, trace)
                };
                trace.prm_score = Some(sd);
                trace.target_prm_score = Some(st);
                Ok((chosen, trace))
            }
        }
    }

    /// A `generate` record: both steps, both scores, and what a router would have read.
    fn record(&self, d: &GeneratedStep, t: &GeneratedStep, sd: f32, st: f32) -> StepRecord {
        StepRecord {
            step_index: self.index,
            previous_steps: self
                .history
                .texts
                .iter()
                .zip(&self.history.authors)
                .map(|(text, model)| PreviousStep {
                    model: *model,
                    text: text.clone(),
                })
                .collect(),
            draft_step: d.text.clone(),
            target_step: t.text.clone(),
            prm_score: sd,
            target_prm_score: st,
            features: step_features(&self.router_input(d, None)),
            draft_tokens: d.usage.generated_tokens as u32,
            target_tokens: (t.usage.generated_tokens + t.usage.accepted_tokens) as u32,
            draft_token_logprobs: d.token_logprobs.clone(),
            draft_token_entropies: d.token_entropies.clone(),
        }
    }
}

/// A glimpse and the rest of the step written after it, as one step. Each call ends at the
/// separator on its own, so only a separator split across the two (rare: the glimpse ends inside
/// it) is found here; the step then ends there and the rest is dropped.
fn join_steps(
    glimpse: GeneratedStep,
    rest: GeneratedStep,
    separator: Option<&str>,
) -> GeneratedStep {
    let mut joined = GeneratedStep {
        text: glimpse.text + &rest.text,
        finish: rest.finish,
        token_logprobs: [glimpse.token_logprobs, rest.token_logprobs].concat(),
        token_entropies: [glimpse.token_entropies, rest.token_entropies].concat(),
        usage: glimpse.usage,
    };
    joined.usage.add(&rest.usage);
    if let Some(sep) = separator.filter(|s| s.len() > 1) {
        let boundary = joined.text.len() - rest.text.len();
        let from = boundary.saturating_sub(sep.len() - 1);
        if let Some(at) = joined.text[from..].find(sep) {
            let end = from + at + sep.len();
            if end < joined.text.len() && joined.text.is_char_boundary(end) {
                joined.text.truncate(end);
                joined.finish = FinishReason::Separator;
            }
        }
    }
    joined
}

impl Solution {
    /// The target's step `t` replaced the draft's `d`: what of `d` was thrown away, and what
    /// the target kept of it by verification.
    fn replaced(&mut self, d: GeneratedStep, t: &GeneratedStep, trace: &mut TraceStep) {
        let accepted = t.usage.accepted_tokens;
        self.accepted_draft_tokens += accepted;
        self.discarded_draft_tokens += d.usage.generated_tokens.saturating_sub(accepted);
        trace.accepted_tokens = accepted as u32;
        trace.rejected_draft_text = Some(d.text);
    }
}

impl TraceStep {
    fn plain(model: Author, step: &GeneratedStep) -> TraceStep {
        TraceStep {
            model,
            text: step.text.clone(),
            prm_score: None,
            target_prm_score: None,
            router_score: None,
            rejected_draft_text: None,
            tokens: (step.usage.generated_tokens + step.usage.accepted_tokens) as u32,
            accepted_tokens: 0,
            early: false,
        }
    }
}

#[cfg(test)]
mod tests {
    //! The loop's rules on scripted models: which model is asked for what, which step is kept,
    //! what is traced and counted. Draft steps start with `d`, target steps with `t`.

    use super::*;
    use crate::engines::scripted::{Call, ScriptedScorer, ScriptedWriter};
    use crate::types::Sampling;

    const DRAFT: [&str; 3] = ["d1 x\n\n", "d2 y z\n\n", "d3 \\boxed{1}"];
    const TARGET: [&str; 3] = ["t1 x\n\n", "t2 y w\n\n", "t3 \\boxed{2}"];

    fn draft() -> ScriptedWriter {
        ScriptedWriter::new("draft", &DRAFT)
    }

    fn target() -> ScriptedWriter {
        ScriptedWriter::new("target", &TARGET)
    }

    fn limits() -> Limits {
        Limits {
            step: StepOptions {
                separator: Some("\n\n".into()),
                max_tokens: 100,
                stop_loops: true,
                sampling: Sampling::GREEDY,
            },
            max_steps: 100,
            max_tokens: 1000,
            verify: true,
        }
    }

    const TASK: Task<'static> = Task {
        problem: 7,
        question: "q",
        prompt: "p",
    };

    fn rule(run_type: RunType, threshold: f64) -> Rule {
        Rule {
            run_type,
            threshold,
            early: None,
        }
    }

    fn authors(solution: &Solution) -> Vec<Author> {
        solution.steps.iter().map(|s| s.model).collect()
    }

    fn generations(calls: &[Call]) -> usize {
        calls
            .iter()
            .filter(|c| matches!(c, Call::Generate { .. } | Call::Verify { .. }))
            .count()
    }

    fn solve_with(
        draft: &ScriptedWriter,
        target: &ScriptedWriter,
        prm: Option<&ScriptedScorer>,
        router: Option<&ScriptedScorer>,
        rule: Rule,
        limits: &Limits,
    ) -> Result<Solution, SolveError> {
        let models = Models {
            draft,
            target,
            prm: prm.map(|p| p as &dyn StepScorer),
            router: router.map(|r| r as &dyn Router),
        };
        solve(&models, &TASK, rule, limits, &mut NoSink)
    }

    /// A writer whose step `looping` falls into a loop.
    struct Looping {
        inner: ScriptedWriter,
        looping: usize,
    }

    impl Looping {
        fn mark(&self, transcript: &Transcript<'_>, mut step: GeneratedStep) -> GeneratedStep {
            if transcript.steps.len() == self.looping {
                step.finish = FinishReason::Repetition;
            }
            step
        }
    }

    impl StepGenerator for Looping {
        fn name(&self) -> &str {
            self.inner.name()
        }

        fn generate_step(
            &self,
            transcript: &Transcript<'_>,
            options: &StepOptions,
        ) -> Result<GeneratedStep, EngineError> {
            let step = self.inner.generate_step(transcript, options)?;
            Ok(self.mark(transcript, step))
        }

        fn verify_step(
            &self,
            transcript: &Transcript<'_>,
            options: &StepOptions,
            proposal: &str,
        ) -> Result<GeneratedStep, EngineError> {
            let step = self.inner.verify_step(transcript, options, proposal)?;
            Ok(self.mark(transcript, step))
        }

        fn release(&self, problem: u64) {
            self.inner.release(problem);
        }
    }

    #[test]
    fn a_kept_step_that_fell_into_a_loop_ends_the_solution_and_an_escalated_one_does_not() {
        let d = Looping {
            inner: draft(),
            looping: 1,
        };
        let t = target();
        let models = Models {
            draft: &d,
            target: &t,
            prm: None,
            router: None,
        };
        let s = solve(
            &models,
            &TASK,
            rule(RunType::Draft, 0.0),
            &limits(),
            &mut NoSink,
        )
        .unwrap();
        assert_eq!(s.stop, Stop::Repetition);
        assert_eq!(s.steps.len(), 2);
        // The router sends the looping step to the target, whose step goes on.
        let router = ScriptedScorer::new("router", &[(DRAFT[1], 0.9)], 0.0);
        let models = Models {
            router: Some(&router),
            ..models
        };
        let s = solve(
            &models,
            &TASK,
            rule(RunType::Router, 0.5),
            &limits(),
            &mut NoSink,
        )
        .unwrap();
        assert_eq!(s.stop, Stop::EndOfSequence);
        assert_eq!(authors(&s), [Author::Draft, Author::Target, Author::Draft]);
    }

    #[test]
    fn a_long_step_chosen_a_third_time_ends_the_solution_where_loops_are_stopped() {
        let long = "we use the fact that the sum of the angles is one hundred and eighty\n\n";
        let script = [long, "so x is 3\n\n", long, long, long, "\\boxed{3}"];
        let (d, t) = (ScriptedWriter::new("draft", &script), target());
        let s = solve_with(&d, &t, None, None, rule(RunType::Draft, 0.0), &limits()).unwrap();
        assert_eq!(s.stop, Stop::Repetition);
        assert_eq!(s.steps.len(), 4);
        let written_out = Limits {
            step: StepOptions {
                stop_loops: false,
                ..limits().step
            },
            ..limits()
        };
        let d = ScriptedWriter::new("draft", &script);
        let s = solve_with(&d, &t, None, None, rule(RunType::Draft, 0.0), &written_out).unwrap();
        assert_eq!((s.stop, s.steps.len()), (Stop::EndOfSequence, 6));
    }

    #[test]
    fn a_draft_run_never_calls_the_target_and_ends_at_the_end_of_sequence() {
        let (d, t) = (draft(), target());
        let s = solve_with(&d, &t, None, None, rule(RunType::Draft, 0.0), &limits()).unwrap();
        assert_eq!(s.text(), DRAFT.concat());
        assert_eq!(s.stop, Stop::EndOfSequence);
        assert_eq!(generations(&t.calls()), 0);
        assert_eq!(s.draft_tokens, 7);
        assert_eq!(s.target_tokens, 0);
    }

    #[test]
    fn a_target_run_never_calls_the_draft() {
        let (d, t) = (draft(), target());
        let s = solve_with(&d, &t, None, None, rule(RunType::Target, 0.0), &limits()).unwrap();
        assert_eq!(s.text(), TARGET.concat());
        assert_eq!(authors(&s), vec![Author::Target; 3]);
        assert_eq!(generations(&d.calls()), 0);
        assert_eq!(s.target_tokens, 7);
    }

    #[test]
    fn rsd_keeps_a_draft_step_scored_at_the_threshold_and_sends_one_below_it_to_the_target() {
        let (d, t) = (draft(), target());
        let prm = ScriptedScorer::new("prm", &[(DRAFT[0], 0.5), (DRAFT[1], 0.25)], 0.9);
        let s = solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits()).unwrap();
        assert_eq!(authors(&s), [Author::Draft, Author::Target, Author::Draft]);
        assert_eq!(s.text(), [DRAFT[0], TARGET[1], DRAFT[2]].concat());
        let scores: Vec<_> = s.steps.iter().map(|st| st.prm_score).collect();
        assert_eq!(scores, [Some(0.5), Some(0.25), Some(0.9)]);
        assert_eq!(s.steps[1].rejected_draft_text.as_deref(), Some(DRAFT[1]));
        assert!(s.steps.iter().all(|st| st.target_prm_score.is_none()));
    }

    #[test]
    fn rsd_calls_the_target_only_for_the_steps_it_rejects_and_scores_only_draft_steps() {
        let (d, t) = (draft(), target());
        let prm = ScriptedScorer::new("prm", &[(DRAFT[1], 0.1)], 0.9);
        solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits()).unwrap();
        let target_calls: Vec<_> = t
            .calls()
            .into_iter()
            .filter(|c| !matches!(c, Call::Release { .. }))
            .collect();
        assert_eq!(
            target_calls,
            [Call::Verify {
                index: 1,
                proposal: DRAFT[1].into()
            }]
        );
        let scored: Vec<_> = prm.calls();
        assert_eq!(
            scored,
            DRAFT
                .iter()
                .map(|text| Call::Score {
                    text: (*text).into()
                })
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn verification_counts_agreed_tokens_as_accepted_and_only_the_rest_as_discarded() {
        // The target's second step shares its first two words with the draft's.
        let d = draft();
        let t = ScriptedWriter::new("target", &["t1 x\n\n", "d2 y w\n\n", "t3 \\boxed{2}"]);
        let prm = ScriptedScorer::new("prm", &[(DRAFT[1], 0.0)], 1.0);
        let s = solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits()).unwrap();
        let escalated = &s.steps[1];
        assert_eq!(escalated.text, "d2 y w\n\n");
        assert_eq!(escalated.accepted_tokens, 2);
        assert_eq!(escalated.tokens, 3);
        assert_eq!(s.accepted_draft_tokens, 2);
        assert_eq!(s.discarded_draft_tokens, 1, "of d2's 3 tokens, 2 were kept");
        assert_eq!(s.target_tokens, 1, "the target wrote one token itself");
        assert_eq!(s.draft_tokens, 7);
    }

    #[test]
    fn without_verification_the_target_writes_the_whole_step_and_every_draft_token_is_discarded() {
        let d = draft();
        let t = ScriptedWriter::new("target", &["t1 x\n\n", "d2 y w\n\n", "t3 \\boxed{2}"]);
        let prm = ScriptedScorer::new("prm", &[(DRAFT[1], 0.0)], 1.0);
        let limits = Limits {
            verify: false,
            ..limits()
        };
        let s = solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits).unwrap();
        assert_eq!(s.steps[1].text, "d2 y w\n\n");
        assert_eq!(s.steps[1].accepted_tokens, 0);
        assert_eq!(s.discarded_draft_tokens, 3);
        assert_eq!(s.target_tokens, 3);
        assert!(t.calls().iter().all(|c| !matches!(c, Call::Verify { .. })));
    }

    /// A router that reads only the PRM's score: ŷ = 1 − score.
    struct PrmReader;

    impl Router for PrmReader {
        fn name(&self) -> &str {
            "prm reader"
        }

        fn score(&self, input: &RouterInput<'_>) -> Result<f32, EngineError> {
            Ok(1.0 - input.prm_score.expect("the loop passes the score"))
        }

        fn reads_prm(&self) -> bool {
            true
        }
    }

    #[test]
    fn a_router_that_reads_the_prm_is_given_its_score_of_every_routed_step() {
        let (d, t) = (draft(), target());
        let prm = ScriptedScorer::new("prm", &[(DRAFT[0], 0.2)], 0.9);
        let models = Models {
            draft: &d,
            target: &t,
            prm: Some(&prm),
            router: Some(&PrmReader),
        };
        let s = solve(
            &models,
            &TASK,
            rule(RunType::Router, 0.5),
            &limits(),
            &mut NoSink,
        )
        .unwrap();
        assert_eq!(authors(&s), [Author::Target, Author::Draft, Author::Draft]);
        let scores: Vec<_> = s
            .steps
            .iter()
            .map(|st| (st.prm_score, st.router_score))
            .collect();
        assert_eq!(
            scores,
            [
                (Some(0.2), Some(0.8)),
                (Some(0.9), Some(1.0 - 0.9)),
                (Some(0.9), Some(1.0 - 0.9))
            ]
        );
        // One read of the PRM per routed step.
        assert_eq!(prm.calls().len(), 3);
        let without = Models {
            prm: None,
            ..models
        };
        let err = solve(
            &without,
            &TASK,
            rule(RunType::Router, 0.5),
            &limits(),
            &mut NoSink,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("PRM (the router reads its score)"), "{err}");
    }

    #[test]
    fn the_router_escalates_at_its_threshold_keeps_below_it_and_needs_no_prm() {
        let (d, t) = (draft(), target());
        let router = ScriptedScorer::new("router", &[(DRAFT[0], 0.5), (DRAFT[1], 0.49)], 0.0);
        let s = solve_with(
            &d,
            &t,
            None,
            Some(&router),
            rule(RunType::Router, 0.5),
            &limits(),
        )
        .unwrap();
        assert_eq!(authors(&s), [Author::Target, Author::Draft, Author::Draft]);
        let scores: Vec<_> = s.steps.iter().map(|st| st.router_score).collect();
        assert_eq!(scores, [Some(0.5), Some(0.49), Some(0.0)]);
        assert!(s.steps.iter().all(|st| st.prm_score.is_none()));
        assert_eq!(s.steps[0].rejected_draft_text.as_deref(), Some(DRAFT[0]));
        assert_eq!(generations(&t.calls()), 1);
    }

    #[test]
    fn the_oracle_uses_the_target_only_when_its_advantage_is_above_the_threshold() {
        let (d, t) = (draft(), target());
        // Step 1: advantage exactly 0.125 (not above); step 2: 0.25 (above); step 3: negative.
        let prm = ScriptedScorer::new(
            "prm",
            &[
                (DRAFT[0], 0.25),
                (TARGET[0], 0.375),
                (DRAFT[1], 0.25),
                (TARGET[1], 0.5),
                (DRAFT[2], 0.75),
                (TARGET[2], 0.5),
            ],
            0.0,
        );
        let s = solve_with(
            &d,
            &t,
            Some(&prm),
            None,
            rule(RunType::Oracle, 0.125),
            &limits(),
        )
        .unwrap();
        assert_eq!(authors(&s), [Author::Draft, Author::Target, Author::Draft]);
        assert_eq!(s.steps[1].prm_score, Some(0.25));
        assert_eq!(s.steps[1].target_prm_score, Some(0.5));
        assert_eq!(
            generations(&t.calls()),
            3,
            "the oracle asks the target every step"
        );
    }

    #[test]
    fn generate_keeps_the_strictly_better_step_and_writes_one_record_per_step() {
        let (d, t) = (draft(), target());
        let prm = ScriptedScorer::new(
            "prm",
            &[(DRAFT[0], 0.5), (TARGET[0], 0.5), (TARGET[1], 0.75)],
            0.25,
        );
        let s = solve_with(
            &d,
            &t,
            Some(&prm),
            None,
            rule(RunType::Generate, 0.0),
            &limits(),
        )
        .unwrap();
        assert_eq!(authors(&s), [Author::Draft, Author::Target, Author::Draft]);
        assert_eq!(s.records.len(), 3);
        let second = &s.records[1];
        assert_eq!(second.step_index, 1);
        assert_eq!(second.draft_step, DRAFT[1]);
        assert_eq!(second.target_step, TARGET[1]);
        assert_eq!((second.prm_score, second.target_prm_score), (0.25, 0.75));
        assert_eq!(
            second.previous_steps,
            [PreviousStep {
                model: Author::Draft,
                text: DRAFT[0].into()
            }]
        );
        assert_eq!(s.records[2].previous_steps[1].model, Author::Target);
    }

    #[test]
    fn a_run_type_missing_its_scorer_fails_before_any_model_is_called() {
        for (run_type, missing) in [
            (RunType::Rsd, "PRM"),
            (RunType::Oracle, "PRM"),
            (RunType::Generate, "PRM"),
            (RunType::Router, "router"),
        ] {
            let (d, t) = (draft(), target());
            let err = solve_with(&d, &t, None, None, rule(run_type, 0.5), &limits()).unwrap_err();
            assert!(matches!(err, SolveError::Missing(rt, m) if rt == run_type && m == missing));
            assert!(d.calls().is_empty() && t.calls().is_empty());
        }
    }

    fn early(tokens: u32, min_entropy: f32) -> Rule {
        Rule {
            run_type: RunType::Router,
            threshold: 0.5,
            early: Some(EarlyRule::entropy(tokens, min_entropy)),
        }
    }

    #[test]
    fn an_early_rule_sends_a_step_to_the_target_on_a_glimpse_without_asking_the_router() {
        // Step 2's tokens are uncertain: the rule fires after one token of it.
        let (d, t) = (draft().entropy_at(1, 3.0), target());
        let router = ScriptedScorer::new("router", &[], 0.0);
        let s = solve_with(&d, &t, None, Some(&router), early(1, 2.0), &limits()).unwrap();
        assert_eq!(authors(&s), [Author::Draft, Author::Target, Author::Draft]);
        let escalated = &s.steps[1];
        assert!(escalated.early);
        assert_eq!(escalated.rejected_draft_text.as_deref(), Some("d2 "));
        assert_eq!(escalated.router_score, None);
        assert_eq!(
            router.calls().len(),
            2,
            "the router read only the kept steps"
        );
        assert_eq!(
            s.discarded_draft_tokens, 1,
            "only the glimpse is thrown away"
        );
        assert!(d.calls().contains(&Call::Generate {
            index: 1,
            max_tokens: 1
        }));
    }

    #[test]
    fn a_glimpse_the_early_rule_keeps_is_written_on_by_the_draft_and_routed_as_a_whole_step() {
        let (d, t) = (draft(), target());
        let router = ScriptedScorer::new("router", &[], 0.0);
        let s = solve_with(&d, &t, None, Some(&router), early(1, 2.0), &limits()).unwrap();
        assert_eq!(s.text(), DRAFT.concat());
        assert_eq!(authors(&s), vec![Author::Draft; 3]);
        let routed: Vec<_> = router.calls();
        assert_eq!(
            routed,
            DRAFT
                .iter()
                .map(|text| Call::Score {
                    text: (*text).into()
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(s.draft_tokens, 7, "glimpse and rest add up to the step");
        assert_eq!(generations(&t.calls()), 0);
    }

    #[test]
    fn the_step_limit_stops_a_solution_after_that_many_steps() {
        let (d, t) = (draft(), target());
        let limits = Limits {
            max_steps: 2,
            ..limits()
        };
        let s = solve_with(&d, &t, None, None, rule(RunType::Draft, 0.0), &limits).unwrap();
        assert_eq!(s.steps.len(), 2);
        assert_eq!(s.stop, Stop::MaxSteps);
    }

    #[test]
    fn the_token_limit_cuts_the_last_step_and_stops_the_solution() {
        let (d, t) = (draft(), target());
        // 2 + 3 tokens fit; the third step gets the one token left.
        let limits = Limits {
            max_tokens: 6,
            ..limits()
        };
        let s = solve_with(&d, &t, None, None, rule(RunType::Draft, 0.0), &limits).unwrap();
        assert_eq!(s.steps.len(), 3);
        assert_eq!(s.steps[2].text, "d3 ");
        assert_eq!(s.stop, Stop::MaxTokens);
        assert!(d.calls().contains(&Call::Generate {
            index: 2,
            max_tokens: 1
        }));
    }

    #[test]
    fn an_engine_failure_names_the_role_and_the_step_and_releases_both_models() {
        // The target's script has one step: asking it for the second fails.
        let d = draft();
        let t = ScriptedWriter::new("target", &["t1 x\n\n"]);
        let prm = ScriptedScorer::new("prm", &[(DRAFT[1], 0.0)], 1.0);
        let err = solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits())
            .map(|s| s.text())
            .unwrap_err();
        assert!(
            matches!(
                err,
                SolveError::Engine {
                    role: "target",
                    step: 2,
                    ..
                }
            ),
            "{err:?}"
        );
        for calls in [d.calls(), t.calls()] {
            assert_eq!(calls.last(), Some(&Call::Release { problem: 7 }));
        }
    }

    #[test]
    fn the_sink_sees_every_step_and_can_stop_the_loop_at_the_next_step_boundary() {
        let (d, t) = (draft(), target());
        let models = Models {
            draft: &d,
            target: &t,
            prm: None,
            router: None,
        };
        /// Sees every step, and asks to stop once it has seen two.
        #[derive(Default)]
        struct StopAfterTwo(Vec<(usize, String)>);
        impl StepSink for StopAfterTwo {
            fn step_decided(&mut self, index: usize, step: &TraceStep) {
                self.0.push((index, step.text.clone()));
            }
            fn should_stop(&mut self) -> bool {
                self.0.len() >= 2
            }
        }
        let mut sink = StopAfterTwo::default();
        let err = solve(
            &models,
            &TASK,
            rule(RunType::Draft, 0.0),
            &limits(),
            &mut sink,
        )
        .unwrap_err();
        assert_eq!(
            sink.0,
            [(0, DRAFT[0].to_owned()), (1, DRAFT[1].to_owned())],
            "the sink saw each step as it was decided"
        );
        assert!(matches!(err, SolveError::Interrupted));
        assert_eq!(
            generations(&d.calls()),
            2,
            "two steps were written before the stop"
        );
    }

    #[test]
    fn the_models_reported_time_is_split_by_role_and_the_parts_add_up_to_the_latency() {
        let d = draft().seconds_per_token(0.001);
        let t = target().seconds_per_token(0.003);
        let prm = ScriptedScorer::new("prm", &[(DRAFT[1], 0.0)], 1.0);
        let s = solve_with(&d, &t, Some(&prm), None, rule(RunType::Rsd, 0.5), &limits()).unwrap();
        // Draft: 3 calls reading 1 token each and writing 7; target: one verification reading
        // the 3 draft tokens, keeping none and writing 3.
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let split = TimeSplit::of(&s.usage, 1.0);
        assert!(close(split.draft_prefill, 0.003), "{split:?}");
        assert!(close(split.draft_decode, 0.007), "{split:?}");
        assert!(close(split.target_prefill, 0.009), "{split:?}");
        assert!(close(split.target_decode, 0.009), "{split:?}");
        assert!(close(split.models() + split.other, 1.0));
    }
}
