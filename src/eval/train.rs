//! Router training and evaluation from `generate` step records.
//!
//! - Examples: the draft-side features of each step, the advantage `Δ = target_prm_score −
//!   prm_score`, and the label `y = 1[Δ > margin]` (margin 0, as in the paper).
//! - The held-out split is by problem, never by step: steps of one problem are correlated.
//! - The majority class of the training part is randomly down-sampled to balance (paper default).
//! - The model is `linfa-logistic` logistic regression on standardised features.
//! - Evaluation on the held-out part: Spearman ρ(ŷ, Δ), per-class accuracy, ROC-AUC, next to two
//!   trivial baselines (draft confidence alone, and the draft step's PRM score as RSD uses it).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::eval::trained::{self, TrainedProblem};
use crate::logistic::{Logistic, fit_logistic};
use crate::method::features::FEATURE_NAMES;
use crate::method::policy::EarlyRule;
use crate::method::router::{BudgetPoint, PRM_SCORE, ROUTER_FORMAT, ROUTER_VERSION, RouterFile};
use crate::method::value_head::HeadFile;

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a valid record")]
    Record {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("{path}:{line}: {message}")]
    Features {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{0}")]
    Data(String),
    #[error(transparent)]
    Fit(#[from] crate::logistic::FitError),
}

/// What the router learns to predict: the advantage Δ of the target's step over the draft's.
#[derive(Debug, Clone)]
pub enum Advantage {
    /// The difference of the PRM scores in the records (`target_prm_score − prm_score`).
    Prm,
    /// Outcome labels (`labels.jsonl` beside each `steps.jsonl`): `target_correct −
    /// draft_correct` ∈ {−1, 0, 1}, so y = 1 when only the target's step leads to the gold answer.
    Outcome,
    /// A value head's scores of the two steps, from the labels' hidden states.
    ValueHead(Box<crate::method::value_head::HeadFile>),
}

impl Advantage {
    fn needs_labels(&self) -> bool {
        !matches!(self, Advantage::Prm)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Advantage::Prm => "PRM score difference in the records",
            Advantage::Outcome => "rollout outcome labels (target right, draft wrong)",
            Advantage::ValueHead(_) => "value-head score difference",
        }
    }
}

/// Every non-empty line of a JSONL file, parsed; an error names the file and line.
pub fn read_jsonl<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, TrainError> {
    let file = std::fs::File::open(path).map_err(|e| TrainError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let mut out = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| TrainError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        out.push(serde_json::from_str(&line).map_err(|e| TrainError::Record {
            path: path.to_owned(),
            line: n + 1,
            source: e,
        })?);
    }
    Ok(out)
}

/// Labels of the records in `steps_path`'s directory, by `(idx, step_index)`.
fn labels_beside(
    steps_path: &Path,
) -> Result<std::collections::HashMap<(usize, usize), crate::eval::labels::LabelLine>, TrainError> {
    let labels: Vec<crate::eval::labels::LabelLine> =
        read_jsonl(&steps_path.with_file_name("labels.jsonl"))?;
    Ok(labels
        .into_iter()
        .map(|l| ((l.idx, l.step_index), l))
        .collect())
}

/// The fields of a `steps.jsonl` line that training reads.
#[derive(Debug, Deserialize)]
struct StepLine {
    idx: usize,
    /// Finds the record's labels; hand-written files without labels may leave it out.
    #[serde(default)]
    step_index: usize,
    feature_names: Vec<String>,
    features: Vec<f32>,
    /// Completes the text features of records written before they existed.
    #[serde(default)]
    draft_step: String,
    /// Estimates what the target keeps of the draft's step on verification.
    #[serde(default)]
    target_step: String,
    prm_score: f32,
    target_prm_score: f32,
    /// Absent in records written before early decisions existed.
    #[serde(default)]
    draft_token_entropies: Vec<f32>,
    #[serde(default)]
    draft_token_logprobs: Vec<f32>,
    #[serde(default)]
    draft_tokens: u32,
    #[serde(default)]
    target_tokens: u32,
}

/// One training example.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// (source file, problem idx): the unit of the held-out split.
    pub problem: (usize, usize),
    pub features: Vec<f32>,
    pub draft_score: f32,
    pub advantage: f32,
    /// Rollout labels' verdict, where the record is labelled: 1 when only the target's step leads
    /// to the gold answer, −1 when only the draft's does, 0 otherwise.
    pub outcome: Option<f32>,
    /// Entropies and log-probabilities of the draft's first tokens of the step (up to
    /// [`GLIMPSE_KEPT`]); empty in old records.
    pub glimpse_entropies: Vec<f32>,
    pub glimpse_logprobs: Vec<f32>,
    /// Lengths of the draft's and the target's step in tokens (what an early decision trades).
    pub draft_tokens: u32,
    pub target_tokens: u32,
    /// Draft tokens the target would keep when verifying the whole draft step: the texts'
    /// common prefix (estimated by [`verified_prefix_tokens`]); 0 in records without the
    /// target's step.
    pub verified_prefix: u32,
    /// The step's place in its solution (orders a problem's examples).
    pub step_index: usize,
}

/// How many of a step's first token entropies an example keeps for early-decision baselines.
pub const GLIMPSE_KEPT: usize = 8;

impl Example {
    pub fn label(&self, margin: f32) -> bool {
        self.advantage > margin
    }

    /// ŷ of router `file` for this step, reading the records' PRM score where it reads one.
    pub fn router_score(&self, file: &RouterFile) -> f32 {
        let x = file
            .inputs(&self.features, Some(self.draft_score))
            .expect("a score is given");
        file.predict(&x)
    }

    /// What an early rule reading `tokens` tokens sees of this step; `None` where the step is
    /// finished before that (nothing to decide early) or the record lacks the tokens' statistics.
    pub fn glimpse(&self, tokens: u32) -> Option<[f32; 7]> {
        let k = tokens as usize;
        if self.draft_tokens <= tokens
            || self.glimpse_entropies.len() < k
            || self.glimpse_logprobs.len() < k
        {
            return None;
        }
        let context = |name| {
            crate::method::features::feature_index(name)
                .and_then(|i| self.features.get(i).copied())
                .unwrap_or(0.0)
        };
        Some(crate::method::features::glimpse_features(
            &self.glimpse_logprobs[..k],
            &self.glimpse_entropies[..k],
            [context("log_step_index"), context("target_share")],
        ))
    }
}

/// Reads step records from every file. Advantages other than [`Advantage::Prm`] read the labels
/// beside each file and keep only labelled records.
///
/// With `draft_head`, an example's `draft_score` (what a router that reads the PRM reads) is that
/// value head's score of the target's hidden state at the draft step, from the labels, instead of
/// the score the records carry: records scored by an older head serve a router for a newer one.
pub fn read_examples(
    paths: &[PathBuf],
    advantage: &Advantage,
    draft_head: Option<&HeadFile>,
) -> Result<Vec<Example>, TrainError> {
    let mut out = Vec::new();
    for (source, path) in paths.iter().enumerate() {
        // Labels are needed for every advantage but the records' PRM scores, and read for that one
        // too where they exist: every router is also scored against the outcome labels.
        let labels = if advantage.needs_labels() || path.with_file_name("labels.jsonl").exists() {
            Some(labels_beside(path)?)
        } else {
            None
        };
        let file = std::fs::File::open(path).map_err(|e| TrainError::Read {
            path: path.clone(),
            source: e,
        })?;
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| TrainError::Read {
                path: path.clone(),
                source: e,
            })?;
            if line.trim().is_empty() {
                continue;
            }
            let rec: StepLine = serde_json::from_str(&line).map_err(|e| TrainError::Record {
                path: path.clone(),
                line: n + 1,
                source: e,
            })?;
            let features = crate::method::features::complete(
                &rec.feature_names,
                &rec.features,
                &rec.draft_step,
            )
            .map_err(|message| TrainError::Features {
                path: path.clone(),
                line: n + 1,
                message,
            })?;
            if features.iter().any(|x| !x.is_finite()) {
                return Err(TrainError::Features {
                    path: path.clone(),
                    line: n + 1,
                    message: "feature values are not finite".into(),
                });
            }
            let label = labels
                .as_ref()
                .and_then(|labels| labels.get(&(rec.idx, rec.step_index)));
            let outcome = label.map(|l| {
                f32::from(u8::from(l.target_correct)) - f32::from(u8::from(l.draft_correct))
            });
            let (draft_score, advantage) = match (advantage, &labels) {
                (Advantage::Prm, _) => (rec.prm_score, rec.target_prm_score - rec.prm_score),
                (_, Some(_)) => {
                    let Some(l) = label else {
                        continue;
                    };
                    match advantage {
                        Advantage::ValueHead(head) => {
                            let state = |h: &Option<crate::eval::labels::HiddenState>| {
                                h.as_ref().map(|h| head.predict(&h.0)).ok_or_else(|| {
                                    TrainError::Data(format!(
                                        "{}: labels without hidden states; label again without --no-hidden",
                                        path.display()
                                    ))
                                })
                            };
                            let d = state(&l.target_hidden_at_draft)?;
                            (d, state(&l.target_hidden_at_target)? - d)
                        }
                        _ => (rec.prm_score, outcome.expect("labelled")),
                    }
                }
                (_, None) => unreachable!("labels are read for every advantage but Prm"),
            };
            let draft_score = match draft_head {
                None => draft_score,
                Some(head) => {
                    let state = label.and_then(|l| l.target_hidden_at_draft.as_ref());
                    let Some(state) = state else {
                        return Err(TrainError::Data(format!(
                            "{}:{}: the PRM head scores the target's hidden state at the draft step, and this record has no labelled state (label it, then `label --states-only`)",
                            path.display(),
                            n + 1
                        )));
                    };
                    head.predict(&state.0)
                }
            };
            out.push(Example {
                problem: (source, rec.idx),
                features,
                draft_score,
                advantage,
                outcome,
                glimpse_entropies: rec
                    .draft_token_entropies
                    .iter()
                    .copied()
                    .take(GLIMPSE_KEPT)
                    .collect(),
                glimpse_logprobs: rec
                    .draft_token_logprobs
                    .iter()
                    .copied()
                    .take(GLIMPSE_KEPT)
                    .collect(),
                draft_tokens: rec.draft_tokens,
                target_tokens: rec.target_tokens,
                verified_prefix: verified_prefix_tokens(
                    &rec.draft_step,
                    &rec.target_step,
                    rec.draft_tokens,
                ),
                step_index: rec.step_index,
            });
        }
    }
    Ok(out)
}

/// Draft tokens of `draft_step` that verification by the target would keep, where the target's own
/// step is `target_step`: the length of their common prefix, as a share of the draft step's
/// bytes, times its `draft_tokens` (records keep texts and counts, not the tokens themselves).
pub fn verified_prefix_tokens(draft_step: &str, target_step: &str, draft_tokens: u32) -> u32 {
    if draft_step.is_empty() || target_step.is_empty() {
        return 0;
    }
    let common = draft_step
        .bytes()
        .zip(target_step.bytes())
        .take_while(|(a, b)| a == b)
        .count();
    let share = common as f64 / draft_step.len() as f64;
    (share * f64::from(draft_tokens)).round() as u32
}

/// Splits by problem: about `held_out` of the problems (chosen with `seed`) go to the test side.
pub fn split_by_problem(
    examples: &[Example],
    held_out: f64,
    seed: u64,
) -> (Vec<Example>, Vec<Example>) {
    let problems: BTreeSet<(usize, usize)> = examples.iter().map(|e| e.problem).collect();
    let mut problems: Vec<_> = problems.into_iter().collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    problems.shuffle(&mut rng);
    let n_test = ((problems.len() as f64) * held_out).round() as usize;
    let test: BTreeSet<_> = problems[..n_test.min(problems.len())]
        .iter()
        .copied()
        .collect();
    examples
        .iter()
        .cloned()
        .partition(|e| !test.contains(&e.problem))
}

/// Randomly drops majority-class examples until both classes are the same size.
pub fn balance(examples: &[Example], margin: f32, seed: u64) -> Vec<Example> {
    let (pos, neg): (Vec<_>, Vec<_>) = examples.iter().cloned().partition(|e| e.label(margin));
    let (mut major, minor) = if pos.len() >= neg.len() {
        (pos, neg)
    } else {
        (neg, pos)
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37_79b9);
    major.shuffle(&mut rng);
    major.truncate(minor.len());
    let mut out = minor;
    out.extend(major);
    out.shuffle(&mut rng);
    out
}

/// Average ranks (ties share their mean rank), 1-based.
fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0.0; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        for k in i..=j {
            out[order[k]] = rank;
        }
        i = j + 1;
    }
    out
}

/// Spearman rank correlation; 0 when either side is constant.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    if va == 0.0 || vb == 0.0 {
        0.0
    } else {
        cov / (va * vb).sqrt()
    }
}

/// ROC-AUC of `scores` for `labels` (Mann–Whitney); 0.5 when one class is absent.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> f64 {
    let r = ranks(scores);
    let n_pos = labels.iter().filter(|&&l| l).count() as f64;
    let n_neg = labels.len() as f64 - n_pos;
    if n_pos == 0.0 || n_neg == 0.0 {
        return 0.5;
    }
    let sum_pos: f64 = r
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l)
        .map(|(r, _)| r)
        .sum();
    (sum_pos - n_pos * (n_pos + 1.0) / 2.0) / (n_pos * n_neg)
}

/// How well a score predicts the advantage on held-out steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub name: String,
    pub n: usize,
    pub spearman_rho: f64,
    pub roc_auc: f64,
    /// Accuracy on steps with y = 0 and y = 1, predicting 1 when the score ≥ `threshold`.
    pub accuracy_class0: f64,
    pub accuracy_class1: f64,
    pub threshold: f64,
}

pub fn evaluate(
    name: &str,
    scores: &[f64],
    examples: &[Example],
    margin: f32,
    threshold: f64,
) -> Evaluation {
    let labels: Vec<bool> = examples.iter().map(|e| e.label(margin)).collect();
    let adv: Vec<f64> = examples.iter().map(|e| f64::from(e.advantage)).collect();
    let acc = |class: bool| {
        let idx: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        if idx.is_empty() {
            return f64::NAN;
        }
        idx.iter()
            .filter(|&&i| (scores[i] >= threshold) == class)
            .count() as f64
            / idx.len() as f64
    };
    Evaluation {
        name: name.to_owned(),
        n: examples.len(),
        spearman_rho: spearman(scores, &adv),
        roc_auc: roc_auc(scores, &labels),
        accuracy_class0: acc(false),
        accuracy_class1: acc(true),
        threshold,
    }
}

/// A score of held-out steps to evaluate, and the threshold its per-class accuracy reads.
struct Scorer {
    name: String,
    /// The name of its row against the outcome labels; `None`: no such row.
    short: Option<String>,
    threshold: f64,
    scores: Vec<f64>,
}

/// Every scorer on the held-out steps `keep` selects: against Δ, then, where the rollout labels
/// say something else for some step, against them (so routers trained on different advantages
/// compare on one truth). `suffix` ends every row's name.
fn evaluate_scorers(
    scorers: &[Scorer],
    eval_on: &[Example],
    keep: impl Fn(&Example) -> bool,
    suffix: &str,
    margin: f32,
) -> Vec<Evaluation> {
    let kept: Vec<usize> = (0..eval_on.len()).filter(|&i| keep(&eval_on[i])).collect();
    let steps: Vec<Example> = kept.iter().map(|&i| eval_on[i].clone()).collect();
    let mut rows: Vec<Evaluation> = scorers
        .iter()
        .map(|s| {
            let scores: Vec<f64> = kept.iter().map(|&i| s.scores[i]).collect();
            evaluate(
                &format!("{}{suffix}", s.name),
                &scores,
                &steps,
                margin,
                s.threshold,
            )
        })
        .collect();
    if steps
        .iter()
        .any(|e| e.outcome.is_some_and(|o| o != e.advantage))
    {
        let labelled: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|&i| eval_on[i].outcome.is_some())
            .collect();
        let outcome_steps: Vec<Example> = labelled
            .iter()
            .map(|&i| Example {
                advantage: eval_on[i].outcome.expect("kept only labelled steps"),
                ..eval_on[i].clone()
            })
            .collect();
        for s in scorers {
            let Some(short) = &s.short else { continue };
            let scores: Vec<f64> = labelled.iter().map(|&i| s.scores[i]).collect();
            rows.push(evaluate(
                &format!("{short}, against outcome labels{suffix}"),
                &scores,
                &outcome_steps,
                0.0,
                s.threshold,
            ));
        }
    }
    rows
}

/// Training options.
#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub margin: f32,
    pub held_out: f64,
    pub balance: bool,
    pub seed: u64,
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    /// Fit an early decision for every budget point at these costs; `None` fits none.
    pub early_costs: Option<EarlyCosts>,
    /// Keep only records that rollout labels cover, so that routers trained on different
    /// advantages are held out and scored on the same steps.
    pub labelled_only: bool,
    /// Other routers, by name, scored on the same held-out steps (the router a retrain replaces,
    /// say); each must read a prefix of this build's features.
    #[serde(skip)]
    pub compare: Vec<(String, RouterFile)>,
    /// Read the records' PRM score of the draft step after the features (a router priced like
    /// RSD's read of the PRM).
    pub reads_prm: bool,
    /// The value head whose score the router reads instead of the records' (scored from the
    /// labels' hidden states; [`read_examples`]), with the PRM description a run with it gives.
    #[serde(skip)]
    pub prm_head: Option<(String, HeadFile)>,
    /// Read the `prm_head` head's score out of fold instead ([`crate::eval::heads::out_of_fold_value_scores`]):
    /// each record scored by a head fitted as it was on the other folds' problems (0: off).
    pub prm_folds: usize,
    /// Train only on problems the `prm_head` head was not trained on (its scores of those are
    /// what a run meets).
    pub prm_unseen_only: bool,
    /// Fit weights of each set's own beside the pooled ones (`RouterFile::weights_by_set`), for
    /// the sets with a budget curve of their own.
    pub per_set_weights: bool,
}

/// The result of a training run: the router file and what it was evaluated on.
pub struct Trained {
    pub file: RouterFile,
    pub evaluations: Vec<Evaluation>,
    /// The early decision fitted at each budget point, on training and held-out steps.
    pub early: Vec<EarlyReport>,
    pub train_size: usize,
    pub test_size: usize,
    /// Held-out steps left out of the evaluation because the `--prm-head` head or a compared
    /// router was trained on their problems ([`trained`]).
    pub left_out: usize,
    pub positives: usize,
    pub examples: usize,
    pub arithmetic: ArithmeticSummary,
    /// Every evaluation row over the held-out splits `train_files` was asked for (one split:
    /// the rows above).
    pub splits: Vec<SplitSummary>,
}

/// How the arithmetic check of the draft's steps relates to the labels: the evidence behind the
/// two arithmetic features, printed by `train-router` (docs/router.md).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ArithmeticSummary {
    pub steps: usize,
    /// Steps with at least one equation the check could evaluate.
    pub checked: usize,
    /// Steps with at least one wrong equation.
    pub flagged: usize,
    /// Outcome-labelled steps with a wrong equation, and those where only the target's step leads
    /// to the gold answer.
    pub flagged_labelled: usize,
    pub flagged_helped: usize,
    /// The same for the other labelled steps.
    pub rest_labelled: usize,
    pub rest_helped: usize,
}

impl ArithmeticSummary {
    pub fn of(examples: &[Example]) -> Self {
        let at = |name| crate::method::features::feature_index(name).expect("a feature");
        let (checked_at, errors_at) = (at("arithmetic_checked"), at("arithmetic_errors"));
        let mut out = Self {
            steps: examples.len(),
            ..Self::default()
        };
        for e in examples {
            let flagged = e.features[errors_at] > 0.0;
            out.checked += usize::from(e.features[checked_at] > 0.0);
            out.flagged += usize::from(flagged);
            if let Some(outcome) = e.outcome {
                let helped = usize::from(outcome > 0.0);
                if flagged {
                    out.flagged_labelled += 1;
                    out.flagged_helped += helped;
                } else {
                    out.rest_labelled += 1;
                    out.rest_helped += helped;
                }
            }
        }
        out
    }
}

/// Thresholds that send 5%, 10%, … 95% of the steps scored `y_hat` (held-out ŷ) to the target.
pub fn budget_points(y_hat: &[f64]) -> Vec<BudgetPoint> {
    (1..20)
        .map(|k| {
            let fraction = f64::from(k) / 20.0;
            BudgetPoint {
                target_fraction: fraction,
                threshold: crate::stats::percentile(y_hat, 1.0 - fraction).clamp(0.0, 1.0),
                early: None,
                threshold_without_early: None,
            }
        })
        .collect()
}

/// One step of a replay ([`replay_with_early`]): the step as a run meets it, the router's
/// decision on the whole step, and whether the early rule sent it to the target on its glimpse.
#[derive(Debug, Clone)]
pub struct ReplayedStep {
    pub step: Example,
    pub router_escalates: bool,
    pub early: bool,
}

impl ReplayedStep {
    /// Whether the target writes the step.
    pub fn sent(&self) -> bool {
        self.router_escalates || self.early
    }
}

/// `steps` as a router at `threshold` would meet them, with its decision on each: every problem's
/// steps are replayed in order and `target_share` (the share of earlier steps the target wrote)
/// is that of the replayed decisions, not the recorded one. Problems in order of their key,
/// steps in order of their index.
pub fn replay(file: &RouterFile, steps: &[&Example], threshold: f64) -> Vec<(Example, bool)> {
    replay_with_early(file, steps, threshold, None)
        .into_iter()
        .map(|r| (r.step, r.router_escalates))
        .collect()
}

/// [`replay`] with `early` deciding on each step's glimpse first, as a run does: a step it sends
/// to the target counts in the later steps' `target_share` like one the router sends. Both the
/// router and a learned rule's glimpse model read that share, so a rule's escalations raise the
/// escalations after them; a replay without the rule never sees that feedback.
pub fn replay_with_early(
    file: &RouterFile,
    steps: &[&Example],
    threshold: f64,
    early: Option<&EarlyRule>,
) -> Vec<ReplayedStep> {
    let at = FEATURE_NAMES
        .iter()
        .position(|n| *n == "target_share")
        .filter(|&i| i < file.draft_feature_count());
    let mut by_problem: BTreeMap<(usize, usize), Vec<&Example>> = BTreeMap::new();
    for e in steps {
        by_problem.entry(e.problem).or_default().push(e);
    }
    let mut out = Vec::with_capacity(steps.len());
    for problem in by_problem.values_mut() {
        problem.sort_by_key(|e| e.step_index);
        let mut sent = 0usize;
        for (k, e) in problem.iter().enumerate() {
            let mut e = (*e).clone();
            if let Some(at) = at {
                e.features[at] = if k == 0 { 0.0 } else { sent as f32 / k as f32 };
            }
            let early = early.is_some_and(|rule| {
                e.glimpse(rule.tokens)
                    .is_some_and(|g| crate::method::policy::early_escalates(rule, &g))
            });
            let router_escalates =
                crate::method::policy::router_escalates(e.router_score(file), threshold);
            let step = ReplayedStep {
                step: e,
                router_escalates,
                early,
            };
            sent += usize::from(step.sent());
            out.push(step);
        }
    }
    out
}

/// Share of `steps` the router sends to the target at `threshold`, replayed ([`replay`]).
pub fn replayed_share(file: &RouterFile, steps: &[&Example], threshold: f64) -> f64 {
    replayed_share_with_early(file, steps, threshold, None)
}

/// Share of `steps` sent to the target by the router at `threshold` and `early` together,
/// replayed ([`replay_with_early`]).
pub fn replayed_share_with_early(
    file: &RouterFile,
    steps: &[&Example],
    threshold: f64,
    early: Option<&EarlyRule>,
) -> f64 {
    let sent = replay_with_early(file, steps, threshold, early)
        .iter()
        .filter(|r| r.sent())
        .count();
    sent as f64 / steps.len().max(1) as f64
}

/// Thresholds that send 5%, 10%, … 95% of `steps` to the target when the router's own
/// decisions make the context ([`replayed_share`]). The records come from `generate`, whose
/// trajectories keep the target's step about 60% of the time: read as they were recorded, the
/// context says "the target wrote most steps so far" at every budget, and a router at a small
/// budget, whose context says the opposite, sends far fewer steps than its point promised
/// (GSM8K 0–29: 6% at 0.15).
pub fn replayed_budget_points(file: &RouterFile, steps: &[&Example]) -> Vec<BudgetPoint> {
    (1..20)
        .map(|k| {
            let fraction = f64::from(k) / 20.0;
            BudgetPoint {
                target_fraction: fraction,
                threshold: threshold_sending(file, steps, fraction, None),
                early: None,
                threshold_without_early: None,
            }
        })
        .collect()
}

/// The router threshold at which the router and `early` together send `fraction` of `steps`
/// to the target, replayed; found by bisection.
fn threshold_sending(
    file: &RouterFile,
    steps: &[&Example],
    fraction: f64,
    early: Option<&EarlyRule>,
) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..40 {
        let mid = (lo + hi) / 2.0;
        if replayed_share_with_early(file, steps, mid, early) > fraction {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

/// What an early decision trades, in units of a draft token's decode.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EarlyCosts {
    /// A token the target writes.
    pub target_token: f64,
    /// A draft token the target keeps on verification: it saves the target's decode of that
    /// token, less reading it. An early escalation leaves only the glimpse to verify, so the
    /// rest of what the target would have kept is paid at this price.
    pub kept_token: f64,
}

/// What an early decision did on a set of steps, judged against the router's own decisions on
/// the whole steps at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EarlyOutcome {
    pub steps: usize,
    /// Steps the rule sent to the target on the glimpse.
    pub fired: usize,
    /// Of those, steps the router escalates too (the rest it would have kept).
    pub agreed: usize,
    /// Steps the router escalates.
    pub escalated: usize,
    /// Steps sent to the target that the router alone would not have sent: the rule's firings
    /// on steps the router keeps and, in a replay, the router's escalations that the rule's own
    /// raise of `target_share` brings about.
    pub added: usize,
    /// Draft-token decodes saved per step: the rest of each step caught early, less the target
    /// tokens paid for steps the router would have kept and the verified tokens forgone on
    /// steps it escalates (both at [`EarlyCosts`]).
    pub saved_per_step: f64,
}

/// An early rule fitted at one budget point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EarlyReport {
    pub target_fraction: f64,
    pub threshold: f64,
    /// `None` where no rule saved time on the training steps.
    pub rule: Option<EarlyRule>,
    pub train: Option<EarlyOutcome>,
    pub held_out: Option<EarlyOutcome>,
    /// A decision from the context alone, before the draft writes anything: escalate when the
    /// router escalated the previous step. On held-out steps; evaluated, not shipped.
    pub context_only: EarlyOutcome,
}

/// Tallies a decision taken before the draft finishes its step, against the router's decisions
/// `escalated` on the whole steps. `reads[i]` is `None` where the decision keeps the draft
/// writing step `i`, else the draft tokens read before deciding (the glimpse). The decision spares
/// the rest of the step; a step the router would have kept is then paid for with the target's
/// step, and on a step it escalates too, the target can keep no more of the draft's step than
/// was read.
fn tally_early(
    steps: &[&Example],
    escalated: &[bool],
    costs: EarlyCosts,
    reads: impl IntoIterator<Item = Option<u32>>,
) -> EarlyOutcome {
    let mut outcome = EarlyOutcome {
        steps: steps.len(),
        fired: 0,
        agreed: 0,
        escalated: escalated.iter().filter(|&&e| e).count(),
        added: 0,
        saved_per_step: 0.0,
    };
    let mut saved = 0.0;
    for ((e, &router_escalates), read) in steps.iter().zip(escalated).zip(reads) {
        let Some(glimpse) = read else {
            continue;
        };
        outcome.fired += 1;
        saved += f64::from(e.draft_tokens.saturating_sub(glimpse));
        if router_escalates {
            outcome.agreed += 1;
            saved -= costs.kept_token * f64::from(e.verified_prefix.saturating_sub(glimpse));
        } else {
            saved -= costs.target_token * f64::from(e.target_tokens);
        }
    }
    outcome.added = outcome.fired - outcome.agreed;
    if !steps.is_empty() {
        outcome.saved_per_step = saved / steps.len() as f64;
    }
    outcome
}

/// The context-only rule "escalate when the router escalated the previous step", scored like an
/// early rule whose glimpse is empty: a step it catches saves the whole draft step.
pub fn context_only_outcome(
    steps: &[&Example],
    escalated: &[bool],
    costs: EarlyCosts,
) -> EarlyOutcome {
    let by_place: std::collections::HashMap<((usize, usize), usize), bool> = steps
        .iter()
        .zip(escalated)
        .map(|(e, &esc)| ((e.problem, e.step_index), esc))
        .collect();
    let reads = steps.iter().map(|e| {
        let previous = e
            .step_index
            .checked_sub(1)
            .and_then(|i| by_place.get(&(e.problem, i)));
        (previous == Some(&true)).then_some(0)
    });
    tally_early(steps, escalated, costs, reads)
}

/// Where `rule` decides on a step's glimpse, the tokens it reads.
fn early_read(rule: &EarlyRule, e: &Example) -> Option<u32> {
    e.glimpse(rule.tokens)
        .filter(|g| crate::method::policy::early_escalates(rule, g))
        .map(|_| rule.tokens)
}

/// Scores `rule` on `steps`, where `escalated[i]` is the router's decision on the whole step, in
/// the context the records carry.
pub fn early_outcome(
    rule: &EarlyRule,
    steps: &[&Example],
    escalated: &[bool],
    costs: EarlyCosts,
) -> EarlyOutcome {
    tally_early(
        steps,
        escalated,
        costs,
        steps.iter().map(|e| early_read(rule, e)),
    )
}

/// Scores `rule` beside the router at `threshold` in a replay with the rule inside
/// ([`replay_with_early`]): its firings and the router's decisions are those of a run, and
/// `added` counts every step sent beyond what the router alone sends in its own replay
/// (`sent_alone` of them).
fn replayed_outcome(
    file: &RouterFile,
    rule: &EarlyRule,
    steps: &[&Example],
    threshold: f64,
    sent_alone: usize,
    costs: EarlyCosts,
) -> EarlyOutcome {
    let replayed = replay_with_early(file, steps, threshold, Some(rule));
    let sent = replayed.iter().filter(|r| r.sent()).count();
    let met: Vec<&Example> = replayed.iter().map(|r| &r.step).collect();
    let escalated: Vec<bool> = replayed.iter().map(|r| r.router_escalates).collect();
    let reads = replayed.iter().map(|r| r.early.then_some(rule.tokens));
    EarlyOutcome {
        added: sent.saturating_sub(sent_alone),
        ..tally_early(&met, &escalated, costs, reads)
    }
}

/// [`replayed_outcome`] where the router alone's share is not known yet.
pub fn replayed_early_outcome(
    file: &RouterFile,
    rule: &EarlyRule,
    steps: &[&Example],
    threshold: f64,
    costs: EarlyCosts,
) -> EarlyOutcome {
    let sent_alone = replay(file, steps, threshold)
        .iter()
        .filter(|(_, escalate)| *escalate)
        .count();
    replayed_outcome(file, rule, steps, threshold, sent_alone, costs)
}

/// Glimpse lengths an entropy rule may read.
const EARLY_TOKENS: [u32; 4] = [1, 2, 4, 8];

/// Glimpse lengths a learned rule may read: one token says too little to learn from.
const LEARNED_EARLY_TOKENS: [u32; 2] = [4, 8];

/// L2 strength of a learned early rule's model (few inputs, a thousand-odd steps).
const EARLY_ALPHA: f64 = 1.0;

/// Early escalations the router would not have made, as a share of all steps, that a fitted
/// rule may add. An early rule should save the draft's work on steps the router escalates, not
/// move the operating point: unbounded, the fit at generous budgets picks "escalate every step"
/// (on the default pair the target alone is cheaper than the draft writing and discarding).
pub const EARLY_MAX_EXTRA: f64 = 0.05;

/// The early rule that saves the most on `steps` against the router's decisions `escalated`
/// (in the context the records carry), adding at most [`EARLY_MAX_EXTRA`] of the steps as
/// escalations the router would not have made; `None` when none saves anything. Candidates are
/// the largest-entropy rule at every glimpse length and threshold, and a logistic model of the
/// router's decision from the glimpse's features at every threshold; a learned rule is kept only
/// where it saves strictly more.
pub fn fit_early_rule(
    steps: &[&Example],
    escalated: &[bool],
    costs: EarlyCosts,
) -> Option<(EarlyRule, EarlyOutcome)> {
    best_early_rule(early_candidates(steps, escalated), steps.len(), |rule| {
        early_outcome(rule, steps, escalated, costs)
    })
}

/// [`fit_early_rule`] beside the router at `threshold`, each candidate judged in a replay with
/// itself inside ([`replay_with_early`]), so that the cap on added escalations holds with the
/// feedback a run has: on MATH500's design slice a rule fitted without it sent 26% of steps on
/// top of the router's 16% at a 30% point, its first-step escalations making the context "the
/// target wrote everything so far", on which it fired again.
pub fn fit_early_rule_replayed(
    file: &RouterFile,
    steps: &[&Example],
    threshold: f64,
    costs: EarlyCosts,
) -> Option<(EarlyRule, EarlyOutcome)> {
    let (met, escalated): (Vec<Example>, Vec<bool>) =
        replay(file, steps, threshold).into_iter().unzip();
    let met: Vec<&Example> = met.iter().collect();
    let sent_alone = escalated.iter().filter(|&&e| e).count();
    best_early_rule(early_candidates(&met, &escalated), steps.len(), |rule| {
        replayed_outcome(file, rule, steps, threshold, sent_alone, costs)
    })
}

/// Of `candidates`, the one that saves the most per step as `judge` scores it, adding at most
/// [`EARLY_MAX_EXTRA`] of the `steps` steps; `None` when none saves anything.
fn best_early_rule(
    candidates: Vec<EarlyRule>,
    steps: usize,
    judge: impl Fn(&EarlyRule) -> EarlyOutcome,
) -> Option<(EarlyRule, EarlyOutcome)> {
    let mut best: Option<(EarlyRule, EarlyOutcome)> = None;
    for rule in candidates {
        let outcome = judge(&rule);
        if outcome.added as f64 <= EARLY_MAX_EXTRA * steps as f64
            && outcome.saved_per_step > best.as_ref().map_or(0.0, |(_, o)| o.saved_per_step)
        {
            best = Some((rule, outcome));
        }
    }
    best
}

/// The early rules worth judging on `steps` whose whole-step decisions are `escalated`: the
/// largest-entropy rule at every glimpse length and threshold, then a logistic model of the
/// decision from the glimpse's features at every threshold.
fn early_candidates(steps: &[&Example], escalated: &[bool]) -> Vec<EarlyRule> {
    let mut candidates = Vec::new();
    for tokens in EARLY_TOKENS {
        let glimpse_max: Vec<f32> = steps
            .iter()
            .filter_map(|e| e.glimpse(tokens))
            .map(|g| g[4])
            .collect();
        for min_entropy in candidate_thresholds(glimpse_max) {
            candidates.push(EarlyRule::entropy(tokens, min_entropy));
        }
    }
    for tokens in LEARNED_EARLY_TOKENS {
        let (rows, labels): (Vec<[f32; 7]>, Vec<bool>) = steps
            .iter()
            .zip(escalated)
            .filter_map(|(e, &esc)| Some((e.glimpse(tokens)?, esc)))
            .unzip();
        // A model needs both decisions among the steps it can decide early.
        if !(labels.contains(&true) && labels.contains(&false)) {
            continue;
        }
        let row_refs: Vec<&[f32]> = rows.iter().map(|r| &r[..]).collect();
        let Ok(model) = fit_logistic(&row_refs, &labels, EARLY_ALPHA) else {
            continue;
        };
        let probabilities = rows.iter().map(|r| model.predict(r)).collect();
        for min_probability in candidate_thresholds(probabilities) {
            candidates.push(EarlyRule {
                tokens,
                test: crate::method::policy::EarlyTest::Learned {
                    glimpse_model: model.clone(),
                    min_probability,
                },
            });
        }
    }
    candidates
}

/// Thresholds worth trying on `values`: the observed values (each one fires on the values at or
/// above it), thinned to at most 200.
fn candidate_thresholds(mut values: Vec<f32>) -> Vec<f32> {
    values.sort_by(f32::total_cmp);
    values.dedup();
    let stride = values.len().div_ceil(200).max(1);
    values.into_iter().step_by(stride).collect()
}

/// Trains and evaluates a router on `examples`.
pub fn train(
    examples: &[Example],
    sources: &[PathBuf],
    options: &TrainOptions,
) -> Result<Trained, TrainError> {
    let positives = examples.iter().filter(|e| e.label(options.margin)).count();
    if positives == 0 || positives == examples.len() {
        return Err(TrainError::Data(format!(
            "all {} examples have the same label (Δ > {}: {positives}); the router needs both classes",
            examples.len(),
            options.margin
        )));
    }
    let (mut train_part, mut test_part) =
        split_by_problem(examples, options.held_out, options.seed);
    // Judged on problems that the files it is judged with did not train on: the head whose
    // scores it reads, and the routers it is compared with (where they list their problems).
    let held_out_steps = test_part.len();
    let mut trained_elsewhere: Vec<TrainedProblem> = options
        .compare
        .iter()
        .flat_map(|(_, other)| trained::listed(&other.training))
        .collect();
    // Out-of-fold scores are of heads that never saw the step's problem.
    if let (Some((_, head)), true, 0) = (&options.prm_head, options.reads_prm, options.prm_folds) {
        trained_elsewhere.extend(trained::listed(&head.training));
    }
    let sets = source_sets(sources);
    let set_of = |e: &Example| sets.get(e.problem.0).and_then(Option::as_deref);
    test_part.retain(|e| !trained::contains(&trained_elsewhere, set_of(e), e.problem.1));
    // On its own training problems the head is surer than on new ones: a router fitted on those
    // scores would trust them more than a run can.
    if options.prm_unseen_only {
        let Some((_, head)) = options.prm_head.as_ref().filter(|_| options.reads_prm) else {
            return Err(TrainError::Data(
                "--prm-unseen-only leaves out the problems of the --prm-head head (with --reads-prm)".into(),
            ));
        };
        let head_problems = trained::listed(&head.training);
        if head_problems.is_empty() {
            return Err(TrainError::Data(
                "--prm-unseen-only: the --prm-head head lists no training problems".into(),
            ));
        }
        train_part.retain(|e| !trained::contains(&head_problems, set_of(e), e.problem.1));
    }
    if held_out_steps > 0 && test_part.is_empty() {
        return Err(TrainError::Data(
            "every held-out step is of a problem that the --prm-head head or a compared router was trained on; hold out more (--held-out)".into(),
        ));
    }
    let fit_on = if options.balance {
        balance(&train_part, options.margin, options.seed)
    } else {
        train_part.clone()
    };
    let labels: Vec<bool> = fit_on.iter().map(|e| e.label(options.margin)).collect();
    if labels.iter().all(|&l| l) || labels.iter().all(|&l| !l) {
        return Err(TrainError::Data(
            "the training part has a single class; add data or lower --held-out".into(),
        ));
    }
    // A router that reads the PRM reads the records' score of the draft step after its features.
    let with_prm = |e: &Example| {
        let mut x = e.features.clone();
        if options.reads_prm {
            x.push(e.draft_score);
        }
        x
    };
    // A router that reads the PRM names it: a head given here by its fingerprint too.
    let (prm, prm_fingerprint) = match (&options.prm_head, options.reads_prm) {
        (Some((name, head)), true) => (Some(name.clone()), Some(head.fingerprint())),
        (None, true) => (Some(records_prm(sources)?), None),
        (_, false) => (None, None),
    };
    let inputs: Vec<Vec<f32>> = fit_on.iter().map(with_prm).collect();
    let rows: Vec<&[f32]> = inputs.iter().map(Vec::as_slice).collect();
    let Logistic {
        mean,
        scale,
        weights,
        bias,
    } = fit_logistic(&rows, &labels, options.alpha)?;

    let mut file = RouterFile {
        format: ROUTER_FORMAT.into(),
        version: ROUTER_VERSION,
        kind: "logistic".into(),
        features: FEATURE_NAMES
            .iter()
            .copied()
            .chain(options.reads_prm.then_some(PRM_SCORE))
            .map(str::to_owned)
            .collect(),
        mean,
        scale,
        weights,
        bias,
        default_threshold: 0.5,
        budget: Vec::new(),
        budget_by_set: BTreeMap::new(),
        weights_by_set: BTreeMap::new(),
        prm,
        prm_fingerprint,
        training: serde_json::Value::Null,
        evaluation: serde_json::Value::Null,
    };
    let eval_on = if test_part.is_empty() {
        &train_part
    } else {
        &test_part
    };
    let distinct: BTreeSet<&str> = sets.iter().flatten().map(String::as_str).collect();
    if options.per_set_weights {
        if distinct.len() < 2 {
            return Err(TrainError::Data(format!(
                "--per-set-weights needs data of two sets or more; these are of {distinct:?}"
            )));
        }
        for set in &distinct {
            let held_out = eval_on.iter().filter(|e| set_of(e) == Some(*set)).count();
            let (rows, labels): (Vec<&[f32]>, Vec<bool>) = fit_on
                .iter()
                .zip(&inputs)
                .zip(&labels)
                .filter(|((e, _), _)| set_of(e) == Some(*set))
                .map(|((_, x), &y)| (x.as_slice(), y))
                .unzip();
            let positives = labels.iter().filter(|&&y| y).count();
            // Its weights need a curve of its own (fitted below with them), and both classes.
            if held_out < MIN_SET_CURVE_STEPS || positives == 0 || positives == labels.len() {
                tracing::warn!(
                    set,
                    held_out_steps = held_out,
                    training_steps = labels.len(),
                    positives,
                    "too little data for weights of its own; runs on it use the pooled weights"
                );
                continue;
            }
            let fit = fit_logistic(&rows, &labels, options.alpha)?;
            file.weights_by_set.insert((*set).to_owned(), fit);
        }
    }
    // Every file scores each step with the weights of the step's set, where it has its own.
    let by_source = |f: &RouterFile| -> Vec<RouterFile> {
        sets.iter().map(|s| f.for_set(s.as_deref())).collect()
    };
    let score_with = |base: &RouterFile, files: &[RouterFile], e: &Example| {
        f64::from(e.router_score(files.get(e.problem.0).unwrap_or(base)))
    };
    let file_by_source = by_source(&file);
    let y_hat: Vec<f64> = eval_on
        .iter()
        .map(|e| score_with(&file, &file_by_source, e))
        .collect();
    // Baselines, oriented so that higher means "escalate".
    let mean_lp = FEATURE_NAMES
        .iter()
        .position(|n| *n == "mean_logprob")
        .expect("feature exists");
    let confidence: Vec<f64> = eval_on
        .iter()
        .map(|e| 1.0 - f64::from(e.features[mean_lp]).exp())
        .collect();
    let prm: Vec<f64> = eval_on
        .iter()
        .map(|e| 1.0 - f64::from(e.draft_score))
        .collect();
    // Baseline thresholds at their median, so both classes are predicted about equally often.
    let median = |v: &[f64]| crate::stats::percentile(v, 0.5);
    let mut scorers = vec![
        Scorer {
            name: "router (logistic)".into(),
            short: Some("router".into()),
            threshold: file.default_threshold,
            scores: y_hat.clone(),
        },
        Scorer {
            name: "draft confidence (1 - exp mean logprob)".into(),
            short: Some("draft confidence".into()),
            threshold: median(&confidence),
            scores: confidence,
        },
        Scorer {
            name: "draft PRM score (1 - score, as RSD)".into(),
            short: None,
            threshold: median(&prm),
            scores: prm,
        },
    ];
    for (name, other) in &options.compare {
        let other_by_source = by_source(other);
        let scores = eval_on
            .iter()
            .map(|e| score_with(other, &other_by_source, e))
            .collect();
        scorers.push(Scorer {
            name: format!("{name} (compared)"),
            short: Some(name.clone()),
            threshold: other.default_threshold,
            scores,
        });
    }
    let mut evaluations = evaluate_scorers(&scorers, eval_on, |_| true, "", options.margin);
    // Early decisions read only a glimpse of the step: the largest entropy of its first k tokens
    // (k = 1 is GlimpRouter's rule). Only records that carry token entropies can say.
    if eval_on.iter().all(|e| !e.glimpse_entropies.is_empty()) && !eval_on.is_empty() {
        for k in [1usize, 2, 4, 8] {
            let glimpse: Vec<f64> = eval_on
                .iter()
                .map(|e| {
                    e.glimpse_entropies
                        .iter()
                        .take(k)
                        .fold(0.0f64, |m, &h| m.max(f64::from(h)))
                })
                .collect();
            evaluations.push(evaluate(
                &format!("early: max entropy of the first {k} draft token(s)"),
                &glimpse,
                eval_on,
                options.margin,
                median(&glimpse),
            ));
        }
    }
    // Each set's held-out steps on their own, where the data hold several: a pooled AUC can hide
    // a set the router does not serve.
    let eval_sets: BTreeSet<&str> = eval_on.iter().filter_map(set_of).collect();
    if eval_sets.len() > 1 {
        for set in &eval_sets {
            evaluations.extend(evaluate_scorers(
                &scorers,
                eval_on,
                |e| set_of(e) == Some(*set),
                &format!(" · {set}"),
                options.margin,
            ));
        }
    }
    let eval_refs: Vec<&Example> = eval_on.iter().collect();
    file.budget = replayed_budget_points(&file, &eval_refs);
    let train_steps: Vec<&Example> = train_part.iter().collect();
    let eval_steps: Vec<&Example> = eval_on.iter().collect();
    let mut early = Vec::new();
    if let Some(costs) = options.early_costs
        && let Some((points, reports)) =
            fit_early_points(&file, &file.budget, &train_steps, &eval_steps, costs)
    {
        file.budget = points;
        early = reports;
    }
    // One curve per set where the data hold several: ŷ is distributed differently on each.
    let mut early_by_set = BTreeMap::new();
    if distinct.len() > 1 {
        for set in distinct {
            let in_set = |e: &Example| set_of(e) == Some(set);
            // The pooled router's held-out steps of this set, replayed on their own.
            let set_eval: Vec<&Example> = eval_on.iter().filter(|e| in_set(e)).collect();
            let problems = set_eval.iter().map(|e| e.problem).collect::<BTreeSet<_>>();
            if set_eval.len() < MIN_SET_CURVE_STEPS || problems.len() < MIN_SET_CURVE_PROBLEMS {
                tracing::warn!(
                    set,
                    held_out_steps = set_eval.len(),
                    held_out_problems = problems.len(),
                    "too few held-out problems for a budget curve of its own; runs on it use the pooled curve"
                );
                continue;
            }
            let set_train: Vec<&Example> = train_part.iter().filter(|e| in_set(e)).collect();
            let set_file = file.for_set(Some(set));
            let mut points = replayed_budget_points(&set_file, &set_eval);
            if let Some(costs) = options.early_costs
                && let Some((fitted, reports)) =
                    fit_early_points(&set_file, &points, &set_train, &set_eval, costs)
            {
                points = fitted;
                early_by_set.insert(set.to_owned(), reports);
            }
            file.budget_by_set.insert(set.to_owned(), points);
        }
    }
    let per_source: BTreeMap<usize, usize> = examples.iter().fold(BTreeMap::new(), |mut m, e| {
        *m.entry(e.problem.0).or_insert(0) += 1;
        m
    });
    let arithmetic = ArithmeticSummary::of(examples);
    file.training = serde_json::json!({
        "data": sources.iter().enumerate().map(|(i, p)| serde_json::json!({"path": p.display().to_string(), "steps": per_source.get(&i).copied().unwrap_or(0)})).collect::<Vec<_>>(),
        "examples": examples.len(),
        "positives": positives,
        "problems": trained::to_json(
            train_part
                .iter()
                .map(|e| (set_of(e), e.problem.1))
                .collect::<BTreeSet<_>>()
        ),
        "train_examples": fit_on.len(),
        "test_examples": test_part.len(),
        "options": options,
        "model": "linfa-logistic, L2-regularised, standardised features",
        "early": early,
        "early_by_set": early_by_set,
        "sets": sets,
        "arithmetic": arithmetic,
    });
    file.evaluation = serde_json::to_value(&evaluations).expect("evaluations serialise");
    Ok(Trained {
        file,
        evaluations,
        early,
        train_size: fit_on.len(),
        test_size: test_part.len(),
        left_out: held_out_steps - test_part.len(),
        positives,
        examples: examples.len(),
        arithmetic,
        splits: Vec::new(),
    })
}

/// Held-out steps a set needs for a budget curve of its own (`RouterFile::budget_by_set`): at
/// fewer, its 5% points rest on a step or two.
pub const MIN_SET_CURVE_STEPS: usize = 40;

/// Held-out problems a set needs for a budget curve of its own. A problem's steps rise and fall
/// together (a hard problem's drafts are all unsure), so a curve on a few problems is a curve on
/// a few draws: GSM8K's, on 14 held-out problems (93 steps), sent 26% of steps for 15% asked on
/// GSM8K's design slice (docs/router.md, "The budget points on the design slices").
pub const MIN_SET_CURVE_PROBLEMS: usize = 25;

/// The dataset each source's records came from: the `dataset` of the `metrics.json` that
/// `run --run-type generate` wrote beside its steps.jsonl (`None` where there is none).
pub fn source_sets(sources: &[PathBuf]) -> Vec<Option<String>> {
    sources
        .iter()
        .map(|path| source_metric(path, "dataset"))
        .collect()
}

/// A string of the `metrics.json` beside a steps.jsonl.
fn source_metric(path: &Path, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(path.with_file_name("metrics.json")).ok()?;
    let metrics: serde_json::Value = serde_json::from_str(&text).ok()?;
    metrics.get(key)?.as_str().map(str::to_owned)
}

/// The PRM that scored every source's records (the `prm` of the `metrics.json` beside each), for
/// a router that reads its scores: one PRM, or an error that names the sources.
fn records_prm(sources: &[PathBuf]) -> Result<String, TrainError> {
    let prms: BTreeSet<Option<String>> = sources
        .iter()
        .map(|path| source_metric(path, "prm"))
        .collect();
    match prms.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(prm)] => Ok(prm.clone()),
        [None] | [] => Err(TrainError::Data(format!(
            "--reads-prm needs the PRM that scored the records: no `prm` in the metrics.json beside {sources:?}"
        ))),
        several => Err(TrainError::Data(format!(
            "--reads-prm needs one PRM's scores, and the records of {sources:?} were scored by {several:?}"
        ))),
    }
}

/// Fits an early decision at every point of a budget curve, on `train_steps` against the
/// router's decisions at each point's threshold, and reports it on `eval_steps` too. Returns
/// the points with their rules, and the reports; `None` without training steps.
fn fit_early_points(
    file: &RouterFile,
    points: &[BudgetPoint],
    train_steps: &[&Example],
    eval_steps: &[&Example],
    costs: EarlyCosts,
) -> Option<(Vec<BudgetPoint>, Vec<EarlyReport>)> {
    if train_steps.is_empty() {
        return None;
    }
    // The early rule is fitted against the router's decisions at each point, each candidate in a
    // replay with itself inside (both the router and a learned glimpse read `target_share`). The
    // point's threshold is then found again with the rule inside, so that the two together send
    // the point's share of the held-out steps. A rule that no longer saves at that threshold (it
    // has taken over the router's escalations, on a small budget) is dropped.
    let mut points = points.to_vec();
    let mut reports = Vec::new();
    for point in &mut points {
        let mut train = None;
        if let Some((rule, _)) = fit_early_rule_replayed(file, train_steps, point.threshold, costs)
        {
            let threshold = threshold_sending(file, eval_steps, point.target_fraction, Some(&rule));
            let outcome = replayed_early_outcome(file, &rule, train_steps, threshold, costs);
            if outcome.saved_per_step > 0.0 {
                point.threshold_without_early = Some(point.threshold);
                point.threshold = threshold;
                point.early = Some(rule);
                train = Some(outcome);
            }
        }
        let (eval, eval_decisions): (Vec<Example>, Vec<bool>) =
            replay(file, eval_steps, point.threshold)
                .into_iter()
                .unzip();
        let eval: Vec<&Example> = eval.iter().collect();
        let eval_sent_alone = eval_decisions.iter().filter(|&&e| e).count();
        reports.push(EarlyReport {
            target_fraction: point.target_fraction,
            threshold: point.threshold,
            rule: point.early.clone(),
            train,
            held_out: point.early.as_ref().map(|rule| {
                replayed_outcome(
                    file,
                    rule,
                    eval_steps,
                    point.threshold,
                    eval_sent_alone,
                    costs,
                )
            }),
            context_only: context_only_outcome(&eval, &eval_decisions, costs),
        });
    }
    Some((points, reports))
}

/// Convenience for the CLI: read, train, save.
pub fn train_files(
    paths: &[PathBuf],
    advantage: &Advantage,
    options: &TrainOptions,
    splits: usize,
    out: &Path,
) -> Result<Trained, Box<dyn std::error::Error + Send + Sync>> {
    let head = options.prm_head.as_ref().map(|(_, head)| head);
    let mut examples = read_examples(paths, advantage, head)?;
    if options.labelled_only {
        examples.retain(|e| e.outcome.is_some());
    }
    if examples.is_empty() {
        return Err(format!("no labelled records in {paths:?}").into());
    }
    if options.prm_folds > 0 {
        out_of_fold_prm_scores(&mut examples, paths, options)?;
    }
    let mut trained = train(&examples, paths, options)?;
    // Further splits only evaluate: the router written is the first split's.
    let mut runs = vec![trained.evaluations.clone()];
    for k in 1..splits.max(1) as u64 {
        let seeded = TrainOptions {
            seed: options.seed + k,
            ..options.clone()
        };
        runs.push(train(&examples, paths, &seeded)?.evaluations);
    }
    trained.splits = summarise_splits(&runs);
    if splits > 1 {
        trained.file.training["splits"] =
            serde_json::to_value(&trained.splits).expect("summaries serialise");
    }
    trained.file.save(out)?;
    Ok(trained)
}

/// Replaces every example's PRM score by the `--prm-head` head's score out of fold, fitted on
/// the labelled problems of the runs beside `paths`; examples of problems not wholly labelled
/// have none and are left out.
fn out_of_fold_prm_scores(
    examples: &mut Vec<Example>,
    paths: &[PathBuf],
    options: &TrainOptions,
) -> Result<(), TrainError> {
    if options.prm_head.is_none() || !options.reads_prm {
        return Err(TrainError::Data(
            "out-of-fold PRM scores are the --prm-head head's (with --reads-prm)".into(),
        ));
    }
    let mut problems = Vec::new();
    for path in paths {
        let run = match (path.file_name(), path.parent()) {
            (Some(name), Some(run)) if name == "steps.jsonl" => run,
            _ => {
                return Err(TrainError::Data(format!(
                    "{}: out-of-fold PRM scores read a run directory's steps.jsonl, labels.jsonl and results.jsonl",
                    path.display()
                )));
            }
        };
        problems.extend(crate::eval::heads::read_labelled(run)?);
    }
    let scores =
        crate::eval::heads::out_of_fold_value_scores(&problems, options.prm_folds, options.seed)?;
    let sets = source_sets(paths);
    let before = examples.len();
    examples.retain_mut(|e| {
        let key = (sets[e.problem.0].clone(), e.problem.1, e.step_index);
        scores.get(&key).map(|&s| e.draft_score = s).is_some()
    });
    if examples.len() < before {
        tracing::warn!(
            left_out = before - examples.len(),
            "records of problems not wholly labelled have no out-of-fold score"
        );
    }
    Ok(())
}

/// One evaluation row over several held-out splits (seeds): with one set of steps held out an
/// AUC moves by ±0.05 or more when the positives number a few dozen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SplitSummary {
    pub name: String,
    pub splits: usize,
    pub mean_n: f64,
    pub mean_auc: f64,
    pub min_auc: f64,
    pub max_auc: f64,
    pub mean_accuracy_class0: f64,
    pub mean_accuracy_class1: f64,
}

/// Rows by name, in the first split's order; a row some split lacks (a set with no held-out
/// steps there, say) is summarised over the splits that have it.
pub fn summarise_splits(runs: &[Vec<Evaluation>]) -> Vec<SplitSummary> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    first
        .iter()
        .map(|row| {
            let rows: Vec<&Evaluation> = runs
                .iter()
                .filter_map(|run| run.iter().find(|e| e.name == row.name))
                .collect();
            let k = rows.len() as f64;
            let mean = |f: fn(&Evaluation) -> f64| rows.iter().map(|e| f(e)).sum::<f64>() / k;
            SplitSummary {
                name: row.name.clone(),
                splits: rows.len(),
                mean_n: mean(|e| e.n as f64),
                mean_auc: mean(|e| e.roc_auc),
                min_auc: rows.iter().map(|e| e.roc_auc).fold(f64::INFINITY, f64::min),
                max_auc: rows
                    .iter()
                    .map(|e| e.roc_auc)
                    .fold(f64::NEG_INFINITY, f64::max),
                mean_accuracy_class0: mean(|e| e.accuracy_class0),
                mean_accuracy_class1: mean(|e| e.accuracy_class1),
            }
        })
        .collect()
}

/// Random but valid examples, for tests.
#[doc(hidden)]
pub fn synthetic_examples(n_problems: usize, steps: usize, seed: u64) -> Vec<Example> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut out = Vec::new();
    for p in 0..n_problems {
        for _ in 0..steps {
            let conf: f32 = rng.random_range(-2.0..0.0);
            let noise: f32 = rng.random_range(-0.3..0.3);
            let mut features = vec![0.0; FEATURE_NAMES.len()];
            features[0] = conf;
            features[5] = rng.random_range(1.0..4.0);
            out.push(Example {
                problem: (0, p),
                features,
                draft_score: conf.exp(),
                advantage: -conf * 0.3 - 0.25 + noise,
                outcome: None,
                glimpse_entropies: Vec::new(),
                glimpse_logprobs: Vec::new(),
                draft_tokens: 0,
                target_tokens: 0,
                verified_prefix: 0,
                step_index: 0,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::policy::EarlyTest;

    #[test]
    fn the_arithmetic_summary_counts_flagged_steps_and_their_labels() {
        let mut examples = synthetic_examples(1, 4, 0);
        let at = |name| crate::method::features::feature_index(name).unwrap();
        for (e, (checked, errors, outcome)) in examples.iter_mut().zip([
            (2.0, 1.0, Some(1.0)),
            (1.0, 1.0, Some(0.0)),
            (1.0, 0.0, Some(1.0)),
            (0.0, 0.0, None),
        ]) {
            e.features[at("arithmetic_checked")] = checked;
            e.features[at("arithmetic_errors")] = errors;
            e.outcome = outcome;
        }
        let a = ArithmeticSummary::of(&examples);
        assert_eq!((a.steps, a.checked, a.flagged), (4, 3, 2));
        assert_eq!((a.flagged_labelled, a.flagged_helped), (2, 1));
        assert_eq!((a.rest_labelled, a.rest_helped), (1, 1));
    }

    /// The steps.jsonl path of a run directory `name` under `dir` whose metrics.json is
    /// `metrics` (the file itself is not needed: examples are built in memory).
    fn source_with_metrics(dir: &Path, name: &str, metrics: &str) -> PathBuf {
        let run = dir.join(name);
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("metrics.json"), metrics).unwrap();
        run.join("steps.jsonl")
    }

    /// Two sources named by the metrics.json beside them: gsm8k, then math500.
    fn two_set_sources(dir: &Path) -> Vec<PathBuf> {
        ["gsm8k", "math500"]
            .iter()
            .map(|set| source_with_metrics(dir, set, &format!(r#"{{"dataset": "{set}"}}"#)))
            .collect()
    }

    /// Examples of two sets, gsm8k then math500 (`two_set_sources`' order), each `(problems,
    /// steps)`; `on_math` reshapes every math500 example.
    fn two_set_examples(
        gsm8k: (usize, usize),
        math: (usize, usize),
        on_math: impl Fn(&mut Example),
    ) -> Vec<Example> {
        let mut v = synthetic_examples(gsm8k.0, gsm8k.1, 5);
        let mut math = synthetic_examples(math.0, math.1, 6);
        for e in &mut math {
            e.problem.0 = 1;
            on_math(e);
        }
        v.extend(math);
        v
    }

    /// What the tests train with unless they say otherwise.
    fn synthetic_options() -> TrainOptions {
        TrainOptions {
            margin: 0.0,
            held_out: 0.25,
            balance: true,
            seed: 1,
            alpha: 1e-3,
            early_costs: None,
            labelled_only: false,
            compare: Vec::new(),
            reads_prm: false,
            prm_head: None,
            per_set_weights: false,
            prm_unseen_only: false,
            prm_folds: 0,
        }
    }

    fn ex(problem: usize, adv: f32) -> Example {
        Example {
            problem: (0, problem),
            features: vec![0.0; FEATURE_NAMES.len()],
            draft_score: 0.5,
            advantage: adv,
            outcome: None,
            glimpse_entropies: Vec::new(),
            glimpse_logprobs: Vec::new(),
            draft_tokens: 0,
            target_tokens: 0,
            verified_prefix: 0,
            step_index: 0,
        }
    }

    #[test]
    fn labels_follow_the_margin() {
        assert!(ex(0, 0.1).label(0.0));
        assert!(!ex(0, 0.0).label(0.0), "no advantage is class 0");
        assert!(!ex(0, 0.1).label(0.2));
    }

    #[test]
    fn outcome_advantage_reads_the_labels_beside_the_records_and_skips_unlabelled_ones() {
        let names = serde_json::to_string(&FEATURE_NAMES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let steps: String = (0..3)
            .map(|k| {
                format!(
                    "{{\"idx\": 5, \"step_index\": {k}, \"feature_names\": {names}, \"features\": {:?}, \"prm_score\": 0.9, \"target_prm_score\": 0.1}}\n",
                    [0.5f32; FEATURE_NAMES.len()]
                )
            })
            .collect();
        std::fs::write(&path, steps).unwrap();
        let label = |k: usize, d: bool, t: bool| {
            format!(
                "{{\"format_version\": 1, \"idx\": 5, \"step_index\": {k}, \"draft_correct\": {d}, \"target_correct\": {t}, \"draft_rollout_tokens\": 0, \"target_rollout_tokens\": 0}}\n"
            )
        };
        std::fs::write(
            dir.path().join("labels.jsonl"),
            label(0, false, true) + &label(2, true, false),
        )
        .unwrap();
        let examples =
            read_examples(std::slice::from_ref(&path), &Advantage::Outcome, None).unwrap();
        let adv: Vec<f32> = examples.iter().map(|e| e.advantage).collect();
        // Step 1 has no label; the PRM scores (which say the opposite) are not read.
        assert_eq!(adv, [1.0, -1.0]);
        let err = read_examples(
            std::slice::from_ref(&dir.path().join("nowhere").join("steps.jsonl")),
            &Advantage::Outcome,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("labels.jsonl"), "{err}");
    }

    #[test]
    fn a_prm_head_scores_the_draft_step_from_the_labels_states() {
        let names = serde_json::to_string(&FEATURE_NAMES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let steps: String = (0..2)
            .map(|k| {
                format!(
                    "{{\"idx\": 5, \"step_index\": {k}, \"feature_names\": {names}, \"features\": {:?}, \"prm_score\": 0.5, \"target_prm_score\": 0.5}}\n",
                    [0.5f32; FEATURE_NAMES.len()]
                )
            })
            .collect();
        std::fs::write(&path, steps).unwrap();
        let state =
            |v: Vec<f32>| serde_json::to_string(&crate::eval::labels::HiddenState(v)).unwrap();
        let label = |k: usize, hidden: &str| {
            format!(
                "{{\"format_version\": 1, \"idx\": 5, \"step_index\": {k}, \"draft_correct\": false, \"target_correct\": true, \"draft_rollout_tokens\": 0, \"target_rollout_tokens\": 0{hidden}}}\n"
            )
        };
        let with_states = |a: f32| format!(", \"target_hidden_at_draft\": {}", state(vec![a, -a]));
        std::fs::write(
            dir.path().join("labels.jsonl"),
            label(0, &with_states(1.0)) + &label(1, &with_states(-1.0)),
        )
        .unwrap();
        let head = HeadFile::new(
            crate::method::value_head::HeadInput::TargetHidden,
            "t",
            crate::logistic::Logistic {
                mean: vec![0.0, 0.0],
                scale: vec![1.0, 1.0],
                weights: vec![2.0, 0.0],
                bias: 0.0,
            },
        );
        let scores = |head| -> Vec<f32> {
            read_examples(std::slice::from_ref(&path), &Advantage::Outcome, head)
                .unwrap()
                .iter()
                .map(|e| e.draft_score)
                .collect()
        };
        assert_eq!(scores(None), [0.5, 0.5]);
        let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
        let scored = scores(Some(&head));
        assert!(
            (scored[0] - sigmoid(2.0)).abs() < 1e-6 && (scored[1] - sigmoid(-2.0)).abs() < 1e-6,
            "{scored:?}"
        );
        // A label without the state cannot be scored: the error says how to read it.
        std::fs::write(
            dir.path().join("labels.jsonl"),
            label(0, "") + &label(1, ""),
        )
        .unwrap();
        let err = read_examples(
            std::slice::from_ref(&path),
            &Advantage::Outcome,
            Some(&head),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--states-only") && err.contains("steps.jsonl:1"),
            "{err}"
        );
    }

    #[test]
    fn out_of_fold_prm_scores_replace_the_records_and_leave_out_unfinished_problems() {
        let names = serde_json::to_string(&FEATURE_NAMES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let (mut steps, mut labels, mut results) = (String::new(), String::new(), String::new());
        let state =
            |v: Vec<f32>| serde_json::to_string(&crate::eval::labels::HiddenState(v)).unwrap();
        for idx in 0..13 {
            for k in 0..2 {
                steps.push_str(&format!(
                    "{{\"format_version\": 1, \"idx\": {idx}, \"question\": \"q\", \"step_index\": {k}, \"previous_steps\": [], \"feature_names\": {names}, \"features\": {:?}, \"prm_score\": 0.5, \"target_prm_score\": 0.5, \"draft_step\": \"d\", \"target_step\": \"t\", \"draft_tokens\": 1, \"target_tokens\": 1}}\n",
                    [0.5f32; FEATURE_NAMES.len()]
                ));
                let (d, t) = ((idx + k) % 2 == 0, (idx + k) % 3 == 0);
                let at = |good: bool| {
                    let a = if good { 1.0 } else { -1.0 } + (idx * 2 + k) as f32 / 100.0;
                    state(vec![a, -a])
                };
                labels.push_str(&format!(
                    "{{\"format_version\": 1, \"idx\": {idx}, \"step_index\": {k}, \"draft_correct\": {d}, \"target_correct\": {t}, \"draft_rollout_tokens\": 0, \"target_rollout_tokens\": 0, \"target_hidden_at_draft\": {}, \"target_hidden_at_target\": {}}}\n",
                    at(d),
                    at(t)
                ));
            }
            // Problem 12 has no result line: not finished, so not a problem the heads read.
            if idx < 12 {
                results.push_str(&format!("{{\"idx\": {idx}, \"correct\": false}}\n"));
            }
        }
        std::fs::write(&path, steps).unwrap();
        std::fs::write(dir.path().join("labels.jsonl"), labels).unwrap();
        std::fs::write(dir.path().join("results.jsonl"), results).unwrap();
        let head = HeadFile::new(
            crate::method::value_head::HeadInput::TargetHidden,
            "t",
            crate::logistic::Logistic {
                mean: vec![0.0, 0.0],
                scale: vec![1.0, 1.0],
                weights: vec![1.0, 0.0],
                bias: 0.0,
            },
        );
        let options = TrainOptions {
            reads_prm: true,
            prm_head: Some(("value-head h.json".into(), head)),
            prm_folds: 3,
            ..synthetic_options()
        };
        let mut examples =
            read_examples(std::slice::from_ref(&path), &Advantage::Outcome, None).unwrap();
        assert_eq!(examples.len(), 26);
        out_of_fold_prm_scores(&mut examples, std::slice::from_ref(&path), &options).unwrap();
        let expected = crate::eval::heads::out_of_fold_value_scores(
            &crate::eval::heads::read_labelled(dir.path()).unwrap(),
            3,
            options.seed,
        )
        .unwrap();
        assert_eq!(examples.len(), 24);
        for e in &examples {
            assert_eq!(e.draft_score, expected[&(None, e.problem.1, e.step_index)]);
        }
        // The states say whether the draft's step is right, and the fold heads learned it.
        let right: Vec<bool> = examples
            .iter()
            .map(|e| (e.problem.1 + e.step_index) % 2 == 0)
            .collect();
        let scores: Vec<f64> = examples.iter().map(|e| f64::from(e.draft_score)).collect();
        assert!(
            roc_auc(&scores, &right) > 0.9,
            "{}",
            roc_auc(&scores, &right)
        );

        // Only a head given with --reads-prm is scored out of fold, from a run directory's files.
        let err = out_of_fold_prm_scores(
            &mut examples.clone(),
            std::slice::from_ref(&path),
            &TrainOptions {
                reads_prm: false,
                ..options.clone()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("--prm-head"), "{err}");
        let renamed = dir.path().join("records.jsonl");
        std::fs::copy(&path, &renamed).unwrap();
        let err = out_of_fold_prm_scores(&mut examples, &[renamed], &options)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("records.jsonl") && err.contains("run directory"),
            "{err}"
        );
    }

    #[test]
    fn labelled_only_keeps_the_records_the_labels_cover() {
        let names = serde_json::to_string(&FEATURE_NAMES).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let (mut steps, mut labels) = (String::new(), String::new());
        for idx in 0..20 {
            for k in 0..3 {
                let x = (idx * 3 + k) as f32 / 60.0;
                let up = (idx + k) % 2 == 0;
                steps.push_str(&format!(
                    "{{\"idx\": {idx}, \"step_index\": {k}, \"feature_names\": {names}, \"features\": {:?}, \"prm_score\": 0.5, \"target_prm_score\": {}}}\n",
                    [x; FEATURE_NAMES.len()],
                    if up { 0.9 } else { 0.1 }
                ));
                // Every other problem is labelled.
                if idx % 2 == 0 {
                    labels.push_str(&format!(
                        "{{\"format_version\": 1, \"idx\": {idx}, \"step_index\": {k}, \"draft_correct\": {}, \"target_correct\": true, \"draft_rollout_tokens\": 0, \"target_rollout_tokens\": 0}}\n",
                        !up
                    ));
                }
            }
        }
        std::fs::write(&path, steps).unwrap();
        std::fs::write(dir.path().join("labels.jsonl"), labels).unwrap();
        let out = dir.path().join("router.json");
        let options = |labelled_only| TrainOptions {
            balance: false,
            alpha: 1.0,
            labelled_only,
            ..synthetic_options()
        };
        let all = train_files(
            std::slice::from_ref(&path),
            &Advantage::Prm,
            &options(false),
            1,
            &out,
        );
        assert_eq!(all.unwrap().examples, 60);
        let labelled = train_files(
            std::slice::from_ref(&path),
            &Advantage::Prm,
            &options(true),
            1,
            &out,
        );
        assert_eq!(labelled.unwrap().examples, 30);
    }

    #[test]
    fn a_hand_made_steps_file_gives_labels_by_advantage_and_balances() {
        let names = serde_json::to_string(&FEATURE_NAMES).unwrap();
        let line = |idx: usize, d: f32, t: f32| {
            format!(
                "{{\"idx\": {idx}, \"feature_names\": {names}, \"features\": {:?}, \"prm_score\": {d}, \"target_prm_score\": {t}, \"draft_step\": \"x\"}}\n",
                [0.5f32; FEATURE_NAMES.len()]
            )
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        let text = [
            line(0, 0.9, 0.8),
            line(0, 0.5, 0.7),
            line(1, 0.6, 0.6),
            line(1, 0.2, 0.9),
            line(2, 0.7, 0.3),
        ]
        .concat();
        std::fs::write(&path, text).unwrap();
        let examples = read_examples(std::slice::from_ref(&path), &Advantage::Prm, None).unwrap();
        let labels: Vec<bool> = examples.iter().map(|e| e.label(0.0)).collect();
        assert_eq!(
            labels,
            [false, true, false, true, false],
            "y = 1 exactly when the target scores higher"
        );
        assert!((examples[3].advantage - 0.7).abs() < 1e-6);
        assert_eq!(examples[4].problem, (0, 2));
        let balanced = balance(&examples, 0.0, 3);
        assert_eq!(balanced.len(), 4);
        assert_eq!(balanced.iter().filter(|e| e.label(0.0)).count(), 2);

        std::fs::write(&path, format!("{}{{\"idx\": 1}}\n", line(0, 0.1, 0.2))).unwrap();
        let err = read_examples(std::slice::from_ref(&path), &Advantage::Prm, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps.jsonl:2"), "{err}");
    }

    #[test]
    fn balancing_down_samples_the_majority_class() {
        let mut v: Vec<Example> = (0..10).map(|i| ex(i, -0.1)).collect();
        v.extend((0..3).map(|i| ex(i, 0.2)));
        let b = balance(&v, 0.0, 1);
        assert_eq!(b.len(), 6);
        assert_eq!(b.iter().filter(|e| e.label(0.0)).count(), 3);
    }

    #[test]
    fn the_split_never_puts_one_problem_on_both_sides() {
        let v = synthetic_examples(40, 5, 3);
        let (train, test) = split_by_problem(&v, 0.25, 9);
        let a: BTreeSet<_> = train.iter().map(|e| e.problem).collect();
        let b: BTreeSet<_> = test.iter().map(|e| e.problem).collect();
        assert!(a.is_disjoint(&b));
        assert_eq!(b.len(), 10);
        assert_eq!(train.len() + test.len(), v.len());
    }

    #[test]
    fn spearman_and_auc_on_known_cases() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
        assert_eq!(spearman(&[1.0, 1.0], &[1.0, 2.0]), 0.0);
        assert_eq!(roc_auc(&[0.1, 0.9], &[false, true]), 1.0);
        assert_eq!(roc_auc(&[0.5, 0.5], &[false, true]), 0.5);
    }

    #[test]
    fn a_learnable_signal_is_learned() {
        let v = synthetic_examples(200, 6, 5);
        let opts = synthetic_options();
        let trained = train(&v, &[PathBuf::from("synthetic")], &opts).unwrap();
        let router = &trained.evaluations[0];
        assert!(router.spearman_rho > 0.5, "{router:?}");
        assert!(router.roc_auc > 0.8, "{router:?}");
        assert!(
            trained
                .file
                .budget
                .windows(2)
                .all(|w| w[0].threshold >= w[1].threshold),
            "more budget, lower threshold"
        );
    }

    #[test]
    fn a_set_of_few_held_out_problems_uses_the_pooled_curve() {
        let dir = tempfile::tempdir().unwrap();
        let sources = two_set_sources(dir.path());
        // 300 gsm8k problems hold out about 75; 60 math500 problems about 15, with more steps
        // between them than a set needs.
        let v = two_set_examples((300, 6), (60, 12), |_| {});
        let trained = train(&v, &sources, &synthetic_options()).unwrap();
        assert_eq!(
            trained.file.budget_by_set.keys().collect::<Vec<_>>(),
            ["gsm8k"]
        );
        assert_eq!(
            trained.file.threshold_for_fraction(Some("math500"), 0.3),
            trained.file.threshold_for_fraction(None, 0.3)
        );
    }

    #[test]
    fn each_set_gets_a_budget_curve_that_holds_on_its_own_steps() {
        // Two sources named by the metrics.json beside them; the second set's drafts are less
        // sure of themselves, so the router scores its steps higher.
        let dir = tempfile::tempdir().unwrap();
        let sources = two_set_sources(dir.path());
        assert_eq!(
            source_sets(&sources),
            [Some("gsm8k".to_owned()), Some("math500".to_owned())]
        );
        let v = two_set_examples((150, 6), (150, 6), |e| e.features[0] -= 1.0);
        let trained = train(&v, &sources, &synthetic_options()).unwrap();
        let file = &trained.file;
        assert_eq!(
            file.budget_by_set.keys().collect::<Vec<_>>(),
            ["gsm8k", "math500"]
        );
        let sent = |set: usize, threshold: f64| {
            let steps: Vec<&Example> = v.iter().filter(|e| e.problem.0 == set).collect();
            let sent = steps
                .iter()
                .filter(|e| f64::from(file.predict(&e.features)) >= threshold)
                .count();
            sent as f64 / steps.len() as f64
        };
        let pooled = file.threshold_for_fraction(None, 0.3).unwrap();
        let math_own = file.threshold_for_fraction(Some("math500"), 0.3).unwrap();
        let gsm8k_own = file.threshold_for_fraction(Some("gsm8k"), 0.3).unwrap();
        assert!(
            math_own > pooled && pooled > gsm8k_own,
            "{math_own} {pooled} {gsm8k_own}"
        );
        // The pooled threshold sends far more than 30% of the less sure set; its own, about 30%.
        assert!(sent(1, pooled) > 0.45, "{}", sent(1, pooled));
        assert!(
            (sent(1, math_own) - 0.3).abs() < 0.1,
            "{}",
            sent(1, math_own)
        );
        assert!(
            (sent(0, gsm8k_own) - 0.3).abs() < 0.1,
            "{}",
            sent(0, gsm8k_own)
        );
    }

    #[test]
    fn a_cue_that_points_opposite_ways_on_two_sets_is_learned_per_set() {
        let dir = tempfile::tempdir().unwrap();
        let sources = two_set_sources(dir.path());
        // On MATH500 the first feature is mirrored: there a surer draft is the one the target
        // would have improved, as the value head's score is on MATH (docs/router.md).
        let v = two_set_examples((150, 6), (150, 6), |e| e.features[0] = -2.0 - e.features[0]);
        let auc = |t: &Trained, set: &str| {
            let name = format!("router (logistic) · {set}");
            t.evaluations
                .iter()
                .find(|r| r.name == name)
                .unwrap_or_else(|| panic!("no row {name}"))
                .roc_auc
        };
        let pooled = train(&v, &sources, &synthetic_options()).unwrap();
        assert!(pooled.file.weights_by_set.is_empty());
        let per_set = train(
            &v,
            &sources,
            &TrainOptions {
                per_set_weights: true,
                ..synthetic_options()
            },
        )
        .unwrap();
        let file = &per_set.file;
        assert_eq!(
            file.weights_by_set.keys().collect::<Vec<_>>(),
            ["gsm8k", "math500"]
        );
        let (w_gsm8k, w_math) = (
            file.weights_by_set["gsm8k"].weights[0],
            file.weights_by_set["math500"].weights[0],
        );
        assert!(w_gsm8k < 0.0 && w_math > 0.0, "{w_gsm8k} {w_math}");
        for set in ["gsm8k", "math500"] {
            assert!(auc(&per_set, set) > 0.75, "{set}: {}", auc(&per_set, set));
        }
        // One weight serves one set and fails the other.
        assert!(
            auc(&pooled, "gsm8k").min(auc(&pooled, "math500")) < 0.6,
            "{} {}",
            auc(&pooled, "gsm8k"),
            auc(&pooled, "math500")
        );
        // Each set's curve is calibrated with its own weights.
        let math_run = file.for_set(Some("math500"));
        let threshold = math_run
            .threshold_for_fraction(Some("math500"), 0.3)
            .unwrap();
        let steps: Vec<&Example> = v.iter().filter(|e| e.problem.0 == 1).collect();
        let sent = steps
            .iter()
            .filter(|e| f64::from(math_run.predict(&e.features)) >= threshold)
            .count() as f64
            / steps.len() as f64;
        assert!((sent - 0.3).abs() < 0.1, "{sent}");

        // Data of one set cannot have weights by set.
        let one_set: Vec<Example> = v.iter().filter(|e| e.problem.0 == 0).cloned().collect();
        let err = train(
            &one_set,
            &sources[..1],
            &TrainOptions {
                per_set_weights: true,
                ..synthetic_options()
            },
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("two sets or more"), "{err}");
    }

    #[test]
    fn budget_points_hold_when_the_routers_own_decisions_make_the_context() {
        let at = FEATURE_NAMES
            .iter()
            .position(|n| *n == "target_share")
            .unwrap();
        // Records as `generate` writes them: after the first step, 60% of earlier steps are the
        // target's, whatever a router would have done.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let steps: Vec<Example> = (0..200)
            .flat_map(|p| {
                let mut v = Vec::new();
                for k in 0..8 {
                    let mut e = ex(p, 0.0);
                    e.step_index = k;
                    e.features[0] = rng.random_range(-2.0..0.0);
                    e.features[at] = if k == 0 { 0.0 } else { 0.6 };
                    v.push(e);
                }
                v
            })
            .collect();
        let refs: Vec<&Example> = steps.iter().collect();
        // A router that escalates unsure steps, and more readily after escalations.
        let mut file = crate::method::router::tests::sample();
        file.weights[0] = -1.0;
        file.weights[at] = 3.0;
        file.scale[0] = 0.5;
        file.mean[0] = -1.0;
        file.scale[at] = 0.3;
        file.mean[at] = 0.5;
        let recorded: Vec<f64> = steps
            .iter()
            .map(|e| f64::from(file.predict(&e.features)))
            .collect();
        for point in budget_points(&recorded)
            .iter()
            .filter(|p| [0.15, 0.3].contains(&p.target_fraction))
        {
            // Calibrated on the recorded context, the router sends far fewer steps.
            let sent = replayed_share(&file, &refs, point.threshold);
            assert!(sent < 0.6 * point.target_fraction, "{point:?}: {sent}");
        }
        for point in replayed_budget_points(&file, &refs)
            .iter()
            .filter(|p| [0.15, 0.3, 0.45].contains(&p.target_fraction))
        {
            let sent = replayed_share(&file, &refs, point.threshold);
            assert!(
                (sent - point.target_fraction).abs() < 0.02,
                "{point:?}: {sent}"
            );
        }
    }

    #[test]
    fn a_replay_takes_the_context_from_its_own_decisions() {
        let at = FEATURE_NAMES
            .iter()
            .position(|n| *n == "target_share")
            .unwrap();
        // ŷ = σ(10 · share − 5): nothing escalates until something has.
        let mut file = crate::method::router::tests::sample();
        file.weights[at] = 10.0;
        file.bias = -5.0;
        let steps: Vec<Example> = (0..3)
            .map(|k| {
                let mut e = ex(0, 0.0);
                e.step_index = k;
                e.features[at] = 0.6;
                e
            })
            .collect();
        let refs: Vec<&Example> = steps.iter().collect();
        assert_eq!(replayed_share(&file, &refs, 0.5), 0.0);
        // A first escalation (σ(−5) ≈ 0.0067) makes every later step's share 1.
        assert_eq!(replayed_share(&file, &refs, 0.005), 1.0);
    }

    #[test]
    fn splits_are_summarised_by_row_over_the_splits_that_have_it() {
        let row = |name: &str, n: usize, auc: f64| Evaluation {
            name: name.to_owned(),
            n,
            spearman_rho: 0.0,
            roc_auc: auc,
            accuracy_class0: 0.5,
            accuracy_class1: auc,
            threshold: 0.5,
        };
        let runs = vec![
            vec![row("router", 10, 0.6), row("router · math500", 4, 0.5)],
            vec![row("router", 12, 0.8)],
            vec![row("router · math500", 6, 0.7), row("router", 11, 0.7)],
        ];
        let summary = summarise_splits(&runs);
        assert_eq!(summary.len(), 2);
        let router = &summary[0];
        assert_eq!((router.name.as_str(), router.splits), ("router", 3));
        assert!((router.mean_auc - 0.7).abs() < 1e-12 && (router.mean_n - 11.0).abs() < 1e-12);
        assert_eq!((router.min_auc, router.max_auc), (0.6, 0.8));
        let math = &summary[1];
        assert_eq!(math.splits, 2);
        assert!(
            (math.mean_auc - 0.6).abs() < 1e-12 && (math.mean_accuracy_class1 - 0.6).abs() < 1e-12
        );
        assert!(summarise_splits(&[]).is_empty());
    }

    #[test]
    fn a_router_that_reads_the_prm_learns_from_the_records_scores_and_names_their_prm() {
        let dir = tempfile::tempdir().unwrap();
        let run = |name: &str, metrics: &str| source_with_metrics(dir.path(), name, metrics);
        let scored = run("a", r#"{"dataset": "gsm8k", "prm": "value-head h.json"}"#);
        // The signal is in the PRM's score of the draft step alone.
        let mut v = synthetic_examples(150, 6, 5);
        for e in &mut v {
            e.features[0] = 0.0;
        }
        let options = TrainOptions {
            reads_prm: true,
            ..synthetic_options()
        };
        let with = train(&v, std::slice::from_ref(&scored), &options).unwrap();
        let without = train(&v, std::slice::from_ref(&scored), &synthetic_options()).unwrap();
        let auc = |t: &Trained| t.evaluations[0].roc_auc;
        assert!(
            auc(&with) > 0.75 && auc(&without) < 0.6,
            "{} {}",
            auc(&with),
            auc(&without)
        );
        let file = &with.file;
        assert!(file.reads_prm());
        assert_eq!(file.prm.as_deref(), Some("value-head h.json"));
        // The records name their PRM only: a run is matched by that name.
        assert_eq!(file.prm_fingerprint, None);
        assert_eq!(file.features.len(), FEATURE_NAMES.len() + 1);
        let dir2 = tempfile::tempdir().unwrap();
        file.save(&dir2.path().join("r.json")).unwrap();
        RouterFile::load(&dir2.path().join("r.json")).unwrap();

        // Scored by a head given here instead, the router names that head's weights.
        let head = HeadFile::new(
            crate::method::value_head::HeadInput::TargetHidden,
            "t",
            crate::logistic::Logistic {
                mean: vec![0.0],
                scale: vec![1.0],
                weights: vec![1.0],
                bias: 0.0,
            },
        );
        let fingerprint = head.fingerprint();
        let with_head = TrainOptions {
            prm_head: Some(("value-head new.json on target".into(), head)),
            ..options.clone()
        };
        let trained = train(&v, std::slice::from_ref(&scored), &with_head).unwrap();
        assert_eq!(
            trained.file.prm.as_deref(),
            Some("value-head new.json on target")
        );
        assert_eq!(trained.file.prm_fingerprint, Some(fingerprint));
        assert_eq!(trained.left_out, 0);

        // Held-out problems the head was trained on are left out of the evaluation: those of
        // its set (the run's is gsm8k), and bare indices of any set; another set's are kept.
        let problems = |part: &[Example]| -> Vec<usize> {
            let ids: BTreeSet<usize> = part.iter().map(|e| e.problem.1).collect();
            ids.into_iter().collect()
        };
        let (fitted, held) = split_by_problem(&v, with_head.held_out, with_head.seed);
        let (fitted, held) = (problems(&fitted), problems(&held));
        let steps_of = |idx: usize| v.iter().filter(|e| e.problem.1 == idx).count();
        let mut head = with_head.prm_head.clone().unwrap();
        head.1.training = serde_json::json!({"problems": [
            {"set": "gsm8k", "idx": held[0]}, held[1], {"set": "math500", "idx": held[2]}
        ]});
        let left_out = TrainOptions {
            prm_head: Some(head.clone()),
            ..with_head.clone()
        };
        let trained_left_out = train(&v, std::slice::from_ref(&scored), &left_out).unwrap();
        assert_eq!(
            trained_left_out.left_out,
            steps_of(held[0]) + steps_of(held[1])
        );
        assert_eq!(
            trained_left_out.test_size + trained_left_out.left_out,
            trained.test_size
        );
        // Scores out of fold are of heads that never saw the problem: none is left out.
        let out_of_fold = TrainOptions {
            prm_folds: 3,
            ..left_out.clone()
        };
        let trained_out_of_fold = train(&v, std::slice::from_ref(&scored), &out_of_fold).unwrap();
        assert_eq!(trained_out_of_fold.left_out, 0);
        // Trained only on problems the head did not see: those it lists leave the training part.
        let mut seen = head.clone();
        seen.1.training = serde_json::json!({"problems": &fitted[..3]});
        let unseen_only = |head| TrainOptions {
            prm_head: head,
            prm_unseen_only: true,
            ..with_head.clone()
        };
        let trained_unseen =
            train(&v, std::slice::from_ref(&scored), &unseen_only(Some(seen))).unwrap();
        let listed = trained::listed(&trained_unseen.file.training);
        assert_eq!(listed.len(), fitted.len() - 3);
        for idx in &fitted[..3] {
            assert!(!trained::contains(&listed, Some("gsm8k"), *idx), "{idx}");
        }
        let err = train(&v, std::slice::from_ref(&scored), &unseen_only(None))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--prm-unseen-only"), "{err}");

        // All of them: nothing is left to judge it on.
        head.1.training = serde_json::json!({ "problems": held });
        let all = TrainOptions {
            prm_head: Some(head),
            ..with_head
        };
        let err = train(&v, std::slice::from_ref(&scored), &all)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--prm-head head or a compared router"),
            "{err}"
        );

        // Records of two PRMs, or of an unnamed one, cannot train it.
        let other = run("b", r#"{"dataset": "gsm8k", "prm": "target-logprob"}"#);
        let unnamed = run("c", r#"{"dataset": "gsm8k"}"#);
        for sources in [vec![scored.clone(), other], vec![unnamed]] {
            let err = train(&v, &sources, &options).err().unwrap().to_string();
            assert!(err.contains("--reads-prm"), "{err}");
        }
    }

    #[test]
    fn each_set_is_evaluated_on_its_own_steps_and_a_compared_router_on_the_same_ones() {
        let dir = tempfile::tempdir().unwrap();
        let sources = two_set_sources(dir.path());
        // On the second set the feature says nothing: its Δ is shuffled across steps.
        let mut v = synthetic_examples(150, 6, 5);
        let mut math = synthetic_examples(150, 6, 6);
        let mut advantages: Vec<f32> = math.iter().map(|e| e.advantage).collect();
        advantages.shuffle(&mut rand::rngs::StdRng::seed_from_u64(7));
        for (e, a) in math.iter_mut().zip(advantages) {
            e.problem.0 = 1;
            e.advantage = a;
        }
        v.extend(math);
        let first = train(&v, &sources, &synthetic_options()).unwrap();
        let options = TrainOptions {
            compare: vec![("before".to_owned(), first.file.clone())],
            ..synthetic_options()
        };
        let trained = train(&v, &sources, &options).unwrap();
        let auc = |name: &str| {
            let row = trained
                .evaluations
                .iter()
                .find(|e| e.name == name)
                .unwrap_or_else(|| panic!("no row {name:?}"));
            (row.n, row.roc_auc)
        };
        let (n_all, _) = auc("router (logistic)");
        let (n_gsm8k, gsm8k) = auc("router (logistic) · gsm8k");
        let (n_math, math) = auc("router (logistic) · math500");
        assert_eq!(n_gsm8k + n_math, n_all);
        assert!(gsm8k > 0.7, "{gsm8k}");
        assert!((math - 0.5).abs() < 0.1, "{math}");
        // The same router compared with itself: the same rows, step for step.
        assert_eq!(auc("before (compared) · gsm8k"), (n_gsm8k, gsm8k));
        assert_eq!(auc("before (compared) · math500"), (n_math, math));
        // It lists the problems it trained on, by set: none of them is held out here.
        let opts = synthetic_options();
        let (fitted, _) = split_by_problem(&v, opts.held_out, opts.seed);
        let set_name = |source: usize| ["gsm8k", "math500"][source].to_owned();
        let expected: BTreeSet<(Option<String>, usize)> = fitted
            .iter()
            .map(|e| (Some(set_name(e.problem.0)), e.problem.1))
            .collect();
        let listed: BTreeSet<_> = trained::listed(&first.file.training).into_iter().collect();
        assert_eq!(listed, expected);
        assert_eq!(trained.left_out, 0);
    }

    #[test]
    fn a_router_is_also_scored_against_outcome_labels_where_they_differ_from_its_delta() {
        let opts = synthetic_options();
        let names = |v: &[Example]| -> Vec<String> {
            train(v, &[], &opts)
                .unwrap()
                .evaluations
                .into_iter()
                .map(|e| e.name)
                .collect()
        };
        let mut v = synthetic_examples(80, 6, 5);
        assert!(!names(&v).iter().any(|n| n.contains("outcome")));
        // Labels that agree with Δ's sign on every other problem; the rest stay unlabelled.
        for e in v.iter_mut().filter(|e| e.problem.1 % 2 == 0) {
            e.outcome = Some(if e.advantage > 0.0 { 1.0 } else { 0.0 });
        }
        let trained = train(&v, &[], &opts).unwrap();
        let row = trained
            .evaluations
            .iter()
            .find(|e| e.name == "router, against outcome labels")
            .expect("scored against the labels");
        // Only the labelled half of the held-out steps.
        assert!(row.n > 0 && row.n < trained.test_size, "{row:?}");
        assert!(row.roc_auc > 0.7, "{row:?}");
        assert!(names(&v).contains(&"draft confidence, against outcome labels".to_owned()));
        // Labels equal to Δ add nothing the first rows do not say.
        for e in &mut v {
            e.outcome = Some(e.advantage);
        }
        assert!(!names(&v).iter().any(|n| n.contains("outcome")));
    }

    #[test]
    fn one_class_only_is_a_clear_error() {
        let v: Vec<Example> = (0..10).map(|i| ex(i, -0.5)).collect();
        let opts = TrainOptions {
            held_out: 0.2,
            ..synthetic_options()
        };
        let err = train(&v, &[], &opts).err().unwrap().to_string();
        assert!(err.contains("same label"), "{err}");
    }

    const COSTS: EarlyCosts = EarlyCosts {
        target_token: 1.7,
        kept_token: 1.0,
    };

    /// A step of `draft` tokens (the target writes `target`) whose first tokens have entropy `h`.
    fn glimpsed(h: f32, draft: u32, target: u32) -> Example {
        Example {
            glimpse_entropies: vec![h; GLIMPSE_KEPT],
            glimpse_logprobs: vec![-0.5; GLIMPSE_KEPT],
            draft_tokens: draft,
            target_tokens: target,
            ..ex(0, 0.0)
        }
    }

    #[test]
    fn an_early_rule_is_fitted_where_the_glimpse_foretells_escalation() {
        // Uncertain starts are the steps the router escalates.
        let mut steps: Vec<Example> = (0..40).map(|_| glimpsed(0.2, 50, 40)).collect();
        steps.extend((0..10).map(|_| glimpsed(2.0, 50, 40)));
        let refs: Vec<&Example> = steps.iter().collect();
        let escalated: Vec<bool> = steps.iter().map(|e| e.glimpse_entropies[0] > 1.0).collect();
        let (rule, outcome) = fit_early_rule(&refs, &escalated, COSTS).expect("a rule saves time");
        let EarlyTest::Entropy { min_entropy } = rule.test else {
            panic!("the largest entropy alone separates the steps: {rule:?}");
        };
        assert!(min_entropy > 0.2 && min_entropy <= 2.0, "{rule:?}");
        assert_eq!((outcome.fired, outcome.agreed), (10, 10));
        // Each caught step saves the draft tokens after the glimpse.
        let want = 10.0 * f64::from(50 - rule.tokens) / 50.0;
        assert!((outcome.saved_per_step - want).abs() < 1e-9, "{outcome:?}");
    }

    #[test]
    fn a_learned_early_rule_reads_what_the_largest_entropy_misses() {
        // Every glimpse has the same entropies; the steps the router escalates start with
        // unlikely tokens.
        let steps: Vec<Example> = (0..60)
            .map(|i| Example {
                glimpse_logprobs: vec![if i % 3 == 0 { -2.5 } else { -0.2 }; GLIMPSE_KEPT],
                problem: (0, i),
                ..glimpsed(0.8, 60, 40)
            })
            .collect();
        let refs: Vec<&Example> = steps.iter().collect();
        let escalated: Vec<bool> = (0..60).map(|i| i % 3 == 0).collect();
        let (rule, outcome) = fit_early_rule(&refs, &escalated, COSTS).expect("a rule saves time");
        assert!(matches!(rule.test, EarlyTest::Learned { .. }), "{rule:?}");
        assert_eq!((outcome.fired, outcome.agreed), (20, 20));
        // The rule survives its trip through a router file.
        let text = serde_json::to_string(&rule).unwrap();
        assert_eq!(serde_json::from_str::<EarlyRule>(&text).unwrap(), rule);
    }

    #[test]
    fn no_early_rule_where_the_glimpse_says_nothing_or_steps_are_too_short() {
        // The same entropy everywhere: any rule fires on kept steps as often as on escalated ones.
        let steps: Vec<Example> = (0..50).map(|_| glimpsed(1.0, 50, 40)).collect();
        let refs: Vec<&Example> = steps.iter().collect();
        let escalated: Vec<bool> = (0..50).map(|i| i % 2 == 0).collect();
        assert_eq!(fit_early_rule(&refs, &escalated, COSTS), None);
        // Steps no longer than any glimpse cannot be decided early.
        let short: Vec<Example> = (0..50)
            .map(|i| glimpsed(f32::from(i % 2 == 0), 1, 40))
            .collect();
        let refs: Vec<&Example> = short.iter().collect();
        assert_eq!(fit_early_rule(&refs, &escalated, COSTS), None);
    }

    #[test]
    fn a_fitted_rule_adds_few_escalations_the_router_would_not_make() {
        // Long draft steps, short target ones: escalating everything would "save" the most.
        let steps: Vec<Example> = (0..100)
            .map(|i| glimpsed(if i < 20 { 2.0 } else { 0.1 * (i % 10) as f32 }, 200, 20))
            .collect();
        let refs: Vec<&Example> = steps.iter().collect();
        let escalated: Vec<bool> = (0..100).map(|i| i < 20).collect();
        let (_, outcome) = fit_early_rule(&refs, &escalated, COSTS).expect("a rule");
        assert!(
            (outcome.fired - outcome.agreed) as f64 <= EARLY_MAX_EXTRA * 100.0,
            "{outcome:?}"
        );
        assert_eq!(outcome.agreed, 20);
    }

    #[test]
    fn an_early_escalation_pays_for_the_verified_tokens_it_forgoes() {
        // The router escalates the uncertain starts; verification would keep `kept` tokens of
        // each of those 50-token draft steps.
        let steps = |kept: u32| -> Vec<Example> {
            (0..50)
                .map(|i| Example {
                    verified_prefix: if i < 10 { kept } else { 0 },
                    ..glimpsed(if i < 10 { 2.0 } else { 0.2 }, 50, 40)
                })
                .collect()
        };
        let escalated: Vec<bool> = (0..50).map(|i| i < 10).collect();
        let few = steps(2);
        let refs: Vec<&Example> = few.iter().collect();
        let (rule, outcome) = fit_early_rule(&refs, &escalated, COSTS).expect("a rule");
        // Nothing kept beyond a 2-token glimpse is forgone.
        assert_eq!(outcome.agreed, 10);
        let want = 10.0 * f64::from(50u32.saturating_sub(rule.tokens)) / 50.0;
        assert!(
            outcome.saved_per_step <= want + 1e-9,
            "{rule:?} {outcome:?}"
        );
        // Verification would keep almost the whole step: deciding early loses more than it saves.
        let most = steps(48);
        let refs: Vec<&Example> = most.iter().collect();
        let costly = EarlyCosts {
            kept_token: 1.2,
            ..COSTS
        };
        assert_eq!(fit_early_rule(&refs, &escalated, costly), None);
        let rule = EarlyRule::entropy(4, 1.0);
        let o = early_outcome(&rule, &refs, &escalated, costly);
        let want = 10.0 * (46.0 - 1.2 * 44.0) / 50.0;
        assert!((o.saved_per_step - want).abs() < 1e-9, "{o:?}");
    }

    #[test]
    fn the_verified_prefix_is_the_common_start_in_draft_tokens() {
        assert_eq!(verified_prefix_tokens("abcd\n\n", "abcd\n\n", 3), 3);
        assert_eq!(verified_prefix_tokens("abcdefgh", "abcdxxxx", 10), 5);
        assert_eq!(verified_prefix_tokens("abc", "xbc", 3), 0);
        assert_eq!(
            verified_prefix_tokens("abc", "", 3),
            0,
            "old records lack the target's step"
        );
        // A target step that stops inside the draft's keeps only what they share.
        assert_eq!(verified_prefix_tokens("abcdef", "abc", 6), 3);
    }

    #[test]
    fn the_context_only_rule_follows_the_previous_decision_of_the_same_problem() {
        let step = |problem: usize, step_index: usize| Example {
            problem: (0, problem),
            step_index,
            ..glimpsed(0.0, 30, 20)
        };
        let steps = [step(1, 0), step(1, 1), step(1, 2), step(2, 0), step(2, 1)];
        let refs: Vec<&Example> = steps.iter().collect();
        // Problem 1: escalated, escalated, kept; problem 2 starts kept, then escalated.
        let escalated = [true, true, false, false, true];
        let costs = EarlyCosts {
            target_token: 1.5,
            ..COSTS
        };
        let o = context_only_outcome(&refs, &escalated, costs);
        assert_eq!((o.fired, o.agreed, o.escalated), (2, 1, 3));
        // One whole draft step saved, one paid for with the target's step.
        assert!((o.saved_per_step - (30.0 + 30.0 - 1.5 * 20.0) / 5.0).abs() < 1e-9);
    }

    /// Steps of 150 problems as `generate` records them (60% of earlier steps the target's),
    /// with a router that escalates first steps and unsure steps, and more readily after
    /// escalations; each glimpse's log-probabilities foretell the step's unsureness.
    fn self_feeding_steps_and_router() -> (Vec<Example>, RouterFile) {
        let at = |name| crate::method::features::feature_index(name).unwrap();
        let (unsure, step_at, share_at) = (0, at("log_step_index"), at("target_share"));
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut steps = Vec::new();
        for p in 0..150 {
            for k in 0..8 {
                let u: f32 = rng.random_range(-2.0..0.0);
                let mut e = glimpsed(0.5, 60, 40);
                e.problem = (0, p);
                e.step_index = k;
                e.features[unsure] = u;
                e.features[step_at] = (k as f32).ln_1p();
                e.features[share_at] = if k == 0 { 0.0 } else { 0.6 };
                e.glimpse_logprobs = vec![u + rng.random_range(-0.3..0.3); GLIMPSE_KEPT];
                steps.push(e);
            }
        }
        let mut file = crate::method::router::tests::sample();
        for (i, w, mean, scale) in [
            (unsure, -1.0, -1.0, 0.5),
            (share_at, 3.0, 0.5, 0.3),
            (step_at, -1.5, 1.0, 0.6),
        ] {
            file.weights[i] = w;
            file.mean[i] = mean;
            file.scale[i] = scale;
        }
        (steps, file)
    }

    #[test]
    fn an_early_rule_that_feeds_its_own_context_is_fitted_with_the_feedback() {
        let (steps, file) = self_feeding_steps_and_router();
        let refs: Vec<&Example> = steps.iter().collect();
        let curve = replayed_budget_points(&file, &refs);
        let at_fraction = |f: f64| {
            curve
                .iter()
                .find(|p| (p.target_fraction - f).abs() < 1e-9)
                .unwrap()
                .clone()
        };
        let point = at_fraction(0.3);
        let alone = replayed_share(&file, &refs, point.threshold);
        let (met, escalated): (Vec<Example>, Vec<bool>) =
            replay(&file, &refs, point.threshold).into_iter().unzip();
        let met: Vec<&Example> = met.iter().collect();
        let (blind, _) = fit_early_rule(&met, &escalated, COSTS).expect("a rule");
        let blind_share = replayed_share_with_early(&file, &refs, point.threshold, Some(&blind));
        let (rule, outcome) =
            fit_early_rule_replayed(&file, &refs, point.threshold, COSTS).expect("a rule");
        let share = replayed_share_with_early(&file, &refs, point.threshold, Some(&rule));
        // Fitted against the recorded decisions, the rule's first-step escalations make the
        // context "the target wrote everything" and it fires on; the point misses by over a third.
        assert!(blind_share > 0.4, "{blind}: {blind_share}");
        // Fitted with itself in the replay, it adds no more than its cap and still saves.
        assert!(share - alone <= EARLY_MAX_EXTRA + 1e-9, "{rule}: {share}");
        assert!(outcome.added as f64 <= EARLY_MAX_EXTRA * steps.len() as f64);
        assert!(
            outcome.saved_per_step > 0.0 && outcome.agreed > 0,
            "{outcome:?}"
        );
        // A budget point with its rule sends the point's share, rule and router together, and
        // keeps a rule only where it still saves at the threshold found with it inside.
        let (points, reports) =
            fit_early_points(&file, &[at_fraction(0.05), point], &refs, &refs, COSTS)
                .expect("training steps");
        assert!(points[1].early.is_some(), "{reports:?}");
        for (point, report) in points.iter().zip(&reports) {
            let share =
                replayed_share_with_early(&file, &refs, point.threshold, point.early.as_ref());
            assert!(
                (share - point.target_fraction).abs() < 0.01,
                "{point:?}: {share}"
            );
            assert_eq!(report.threshold, point.threshold);
            if point.early.is_some() {
                assert!(report.train.unwrap().saved_per_step > 0.0, "{report:?}");
                // Without its rule the router alone sends the point's share at the old threshold.
                let alone = point.threshold_without_early.expect("kept beside the rule");
                let share = replayed_share(&file, &refs, alone);
                assert!(
                    (share - point.target_fraction).abs() < 0.01,
                    "{point:?}: {share}"
                );
            }
        }
    }
}
