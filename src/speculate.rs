//! The speculation loop: one problem, step by step, under one run type.
//!
//! The loop only calls what the rule needs: in `rsd` a kept draft step costs the draft and the PRM,
//! never the target; in `router` a kept draft step costs the draft and the router. Every step is
//! traced with the inputs of its decision.

use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::backend::{EngineError, StepGenerator, StepScorer};
use crate::features::{Features, RouterInput, step_features};
use crate::policy::{self, RunType};
use crate::router::Router;
use crate::types::{Author, FinishReason, GeneratedStep, StepOptions, Transcript, Usage};

/// The models a run drives. PRM and router are needed only by the run types that read them.
pub struct Models<'a> {
    pub draft: &'a dyn StepGenerator,
    pub target: &'a dyn StepGenerator,
    pub prm: Option<&'a dyn StepScorer>,
    pub router: Option<&'a dyn Router>,
}

/// Limits on one solution.
#[derive(Debug, Clone)]
pub struct Limits {
    pub step: StepOptions,
    pub max_steps: u32,
    pub max_tokens: u32,
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
    /// Tokens the chosen step took to write.
    pub tokens: u32,
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
    pub fn per_role<T>(&self, f: impl Fn(&Usage) -> T) -> crate::run::PerRole<T> {
        crate::run::PerRole {
            draft: f(&self.draft),
            target: f(&self.target),
            prm: f(&self.prm),
            router: f(&self.router),
        }
    }
}

/// Why a solution ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stop {
    EndOfSequence,
    MaxSteps,
    MaxTokens,
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
    /// Values in the order of `feature_names` (see `crate::features::FEATURE_NAMES`).
    pub features: Features,
    pub draft_tokens: u32,
    pub target_tokens: u32,
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
    pub discarded_draft_tokens: u64,
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

/// A run type and its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rule {
    pub run_type: RunType,
    pub threshold: f64,
}

/// Solves one problem. `interrupted` is polled between steps.
pub fn solve(
    models: &Models<'_>,
    task: &Task<'_>,
    rule: Rule,
    limits: &Limits,
    interrupted: &dyn Fn() -> bool,
) -> Result<Solution, SolveError> {
    let Task {
        problem,
        question,
        prompt,
    } = *task;
    let Rule {
        run_type,
        threshold,
    } = rule;
    let prm = if run_type.needs_prm() {
        Some(models.prm.ok_or(SolveError::Missing(run_type, "PRM"))?)
    } else {
        None
    };
    let router = if run_type == RunType::Router {
        Some(
            models
                .router
                .ok_or(SolveError::Missing(run_type, "router"))?,
        )
    } else {
        None
    };
    let started = Instant::now();
    let mut texts: Vec<String> = Vec::new();
    let mut authors: Vec<Author> = Vec::new();
    let mut out = Solution {
        steps: Vec::new(),
        stop: Stop::MaxSteps,
        latency_s: 0.0,
        replayed_s: 0.0,
        usage: RoleUsage::default(),
        draft_tokens: 0,
        target_tokens: 0,
        discarded_draft_tokens: 0,
        records: Vec::new(),
    };
    let mut written: u64 = 0;
    let result = (|| {
        loop {
            if interrupted() {
                return Err(SolveError::Interrupted);
            }
            let index = texts.len();
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
            let transcript = Transcript {
                problem,
                question,
                prompt,
                steps: &texts,
            };
            let engine = |role: &'static str| {
                move |source| SolveError::Engine {
                    role,
                    step: index + 1,
                    source,
                }
            };

            let mut draft = || -> Result<GeneratedStep, SolveError> {
                let step = models
                    .draft
                    .generate_step(&transcript, &options)
                    .map_err(engine("draft"))?;
                out.usage.draft.add(&step.usage);
                out.draft_tokens += step.usage.generated_tokens;
                Ok(step)
            };
            let target = |out: &mut Solution| -> Result<GeneratedStep, SolveError> {
                let step = models
                    .target
                    .generate_step(&transcript, &options)
                    .map_err(engine("target"))?;
                out.usage.target.add(&step.usage);
                out.target_tokens += step.usage.generated_tokens;
                Ok(step)
            };
            let score = |out: &mut Solution, text: &str| -> Result<f32, SolveError> {
                let prm = prm.expect("checked above for run types that score");
                let scored = prm.score_step(&transcript, text).map_err(engine("PRM"))?;
                out.usage.prm.add(&scored.usage);
                Ok(scored.score)
            };

            let (chosen, trace) = match run_type {
                RunType::Draft => {
                    let d = draft()?;
                    let trace = TraceStep::plain(Author::Draft, &d);
                    (d, trace)
                }
                RunType::Target => {
                    let t = target(&mut out)?;
                    let trace = TraceStep::plain(Author::Target, &t);
                    (t, trace)
                }
                RunType::Rsd => {
                    let d = draft()?;
                    let s = score(&mut out, &d.text)?;
                    if policy::rsd_keeps_draft(s, threshold) {
                        let mut trace = TraceStep::plain(Author::Draft, &d);
                        trace.prm_score = Some(s);
                        (d, trace)
                    } else {
                        let t = target(&mut out)?;
                        let mut trace = TraceStep::plain(Author::Target, &t);
                        trace.prm_score = Some(s);
                        out.discarded_draft_tokens += d.usage.generated_tokens;
                        trace.rejected_draft_text = Some(d.text);
                        (t, trace)
                    }
                }
                RunType::Router => {
                    let d = draft()?;
                    let router = router.expect("checked above");
                    let t0 = Instant::now();
                    let y = router
                        .score(&RouterInput {
                            question,
                            previous_authors: &authors,
                            previous_steps: &texts,
                            step: &d,
                        })
                        .map_err(engine("router"))?;
                    out.usage.router.add(&Usage {
                        seconds: t0.elapsed().as_secs_f64(),
                        ..Usage::default()
                    });
                    if policy::router_escalates(y, threshold) {
                        let t = target(&mut out)?;
                        let mut trace = TraceStep::plain(Author::Target, &t);
                        trace.router_score = Some(y);
                        out.discarded_draft_tokens += d.usage.generated_tokens;
                        trace.rejected_draft_text = Some(d.text);
                        (t, trace)
                    } else {
                        let mut trace = TraceStep::plain(Author::Draft, &d);
                        trace.router_score = Some(y);
                        (d, trace)
                    }
                }
                RunType::Oracle | RunType::Generate => {
                    let d = draft()?;
                    let t = target(&mut out)?;
                    let sd = score(&mut out, &d.text)?;
                    let st = score(&mut out, &t.text)?;
                    let use_target = if run_type == RunType::Oracle {
                        policy::oracle_uses_target(sd, st, threshold)
                    } else {
                        policy::generate_uses_target(sd, st)
                    };
                    if run_type == RunType::Generate {
                        let features = step_features(&RouterInput {
                            question,
                            previous_authors: &authors,
                            previous_steps: &texts,
                            step: &d,
                        });
                        out.records.push(StepRecord {
                            step_index: index,
                            previous_steps: texts
                                .iter()
                                .zip(&authors)
                                .map(|(text, model)| PreviousStep {
                                    model: *model,
                                    text: text.clone(),
                                })
                                .collect(),
                            draft_step: d.text.clone(),
                            target_step: t.text.clone(),
                            prm_score: sd,
                            target_prm_score: st,
                            features,
                            draft_tokens: d.usage.generated_tokens as u32,
                            target_tokens: t.usage.generated_tokens as u32,
                        });
                    }
                    let (chosen, author, rejected) = if use_target {
                        out.discarded_draft_tokens += d.usage.generated_tokens;
                        (t, Author::Target, Some(d.text))
                    } else {
                        (d, Author::Draft, None)
                    };
                    let mut trace = TraceStep::plain(author, &chosen);
                    trace.prm_score = Some(sd);
                    trace.target_prm_score = Some(st);
                    trace.rejected_draft_text = rejected;
                    (chosen, trace)
                }
            };
            written += chosen.usage.generated_tokens;
            let finished = chosen.finish == FinishReason::EndOfSequence;
            texts.push(chosen.text);
            authors.push(trace.model);
            out.steps.push(trace);
            if finished {
                out.stop = Stop::EndOfSequence;
                return Ok(());
            }
        }
    })();
    models.draft.release(problem);
    models.target.release(problem);
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

impl TraceStep {
    fn plain(model: Author, step: &GeneratedStep) -> TraceStep {
        TraceStep {
            model,
            text: step.text.clone(),
            prm_score: None,
            target_prm_score: None,
            router_score: None,
            rejected_draft_text: None,
            tokens: step.usage.generated_tokens as u32,
        }
    }
}
