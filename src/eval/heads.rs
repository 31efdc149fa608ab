//! Step scorers judged on rollout labels: the value-head PRM and the hidden-state router probe are
//! trained here, and every PRM and router input is measured against the same held-out problems.
//!
//! - Data: a `generate` run directory with `steps.jsonl`, `results.jsonl` and the `labels.jsonl`
//!   that `arbitrage label` wrote. Problems are split (by problem, never by step) into training and
//!   held-out parts.
//! - PRMs: step-level ROC-AUC of each score against the step's outcome label (both candidates of
//!   every record, pooled), trajectory-level ROC-AUC of the minimum and the last score along the
//!   `generate` trajectory against its final correctness, and how often Δ = score(target step) −
//!   score(draft step) is positive in each outcome class (a PRM that means "correct" gives Δ > 0
//!   mostly when only the target's step is right).
//! - Routers: the label is the outcome advantage, y = 1 when the target's step leads to the gold
//!   answer and the draft's does not; Spearman ρ against t − d ∈ {−1, 0, 1}, ROC-AUC, and per-class
//!   accuracy at the threshold that balances the two classes' accuracy on the training part.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::eval::labels::LabelLine;
use crate::eval::run::StepsLine;
use crate::eval::train::{TrainError, budget_points, read_jsonl, roc_auc, spearman};
use crate::logistic::{Logistic, fit_logistic};
use crate::method::features::FEATURE_NAMES;
use crate::method::policy;
use crate::method::router::{
    DRAFT_HIDDEN, KIND_HIDDEN_STATE, ROUTER_FORMAT, ROUTER_VERSION, RouterFile,
};
use crate::method::value_head::{HeadFile, HeadInput};

/// One record with its labels.
#[derive(Debug, Clone)]
pub struct LabelledStep {
    pub line: StepsLine,
    pub label: LabelLine,
}

impl LabelledStep {
    /// The `generate` trajectory continued with the target's step.
    pub fn chose_target(&self) -> bool {
        let r = &self.line.record;
        policy::generate_uses_target(r.prm_score, r.target_prm_score)
    }

    fn same_text(&self) -> bool {
        self.line.record.draft_step == self.line.record.target_step
    }
}

/// One problem's labelled records, in step order, and whether its `generate` solution was right.
#[derive(Debug, Clone)]
pub struct LabelledProblem {
    /// The dataset of its run (the `dataset` of the run's metrics.json), where known.
    pub set: Option<String>,
    pub idx: usize,
    pub correct: bool,
    pub steps: Vec<LabelledStep>,
}

/// The problems of a run directory whose records are all labelled.
pub fn read_labelled(run: &Path) -> Result<Vec<LabelledProblem>, TrainError> {
    #[derive(Deserialize)]
    struct Outcome {
        idx: usize,
        correct: bool,
    }
    let steps_path = run.join("steps.jsonl");
    let mut steps: Vec<StepsLine> = read_jsonl(&steps_path)?;
    for (n, line) in steps.iter_mut().enumerate() {
        let features = crate::method::features::complete(
            &line.feature_names,
            &line.record.features.0,
            &line.record.draft_step,
        )
        .map_err(|message| TrainError::Features {
            path: steps_path.clone(),
            line: n + 1,
            message,
        })?;
        line.record.features.0 = features;
        line.feature_names = FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect();
    }
    let set = crate::eval::train::source_sets(std::slice::from_ref(&steps_path))
        .pop()
        .flatten();
    let labels: Vec<LabelLine> = read_jsonl(&run.join("labels.jsonl"))?;
    let outcomes: Vec<Outcome> = read_jsonl(&run.join("results.jsonl"))?;
    let correct: HashMap<usize, bool> = outcomes.iter().map(|o| (o.idx, o.correct)).collect();
    let mut by_key: HashMap<(usize, usize), LabelLine> = labels
        .into_iter()
        .map(|l| ((l.idx, l.step_index), l))
        .collect();
    let mut problems: BTreeMap<usize, Vec<Option<LabelledStep>>> = BTreeMap::new();
    for line in steps {
        let label = by_key.remove(&(line.idx, line.record.step_index));
        problems
            .entry(line.idx)
            .or_default()
            .push(label.map(|label| LabelledStep { line, label }));
    }
    Ok(problems
        .into_iter()
        .filter_map(|(idx, steps)| {
            let correct = *correct.get(&idx)?;
            let mut steps: Vec<LabelledStep> = steps.into_iter().collect::<Option<_>>()?;
            steps.sort_by_key(|s| s.line.record.step_index);
            Some(LabelledProblem {
                set: set.clone(),
                idx,
                correct,
                steps,
            })
        })
        .collect())
}

/// Splits problems: about `held_out` of them (chosen with `seed`) go to the second part.
pub fn split(
    problems: &[LabelledProblem],
    held_out: f64,
    seed: u64,
) -> (Vec<LabelledProblem>, Vec<LabelledProblem>) {
    let mut order: Vec<usize> = (0..problems.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let n_test = ((problems.len() as f64) * held_out).round() as usize;
    let test: std::collections::HashSet<usize> = order[..n_test].iter().copied().collect();
    let (mut train, mut held) = (Vec::new(), Vec::new());
    for (i, p) in problems.iter().enumerate() {
        if test.contains(&i) {
            held.push(p.clone());
        } else {
            train.push(p.clone());
        }
    }
    (train, held)
}

/// A head's training rows at a record: (hidden state, label) pairs.
type HeadRows<'a> = dyn Fn(&LabelledStep) -> Vec<(Vec<f32>, bool)> + 'a;

/// A PRM's two scores at a record: of the draft's step and of the target's.
type PairScore<'a> = dyn Fn(&LabelledStep) -> Option<(f64, f64)> + 'a;

/// Δ > 0 share among records (with two different steps) of one outcome class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Share {
    pub n: usize,
    pub delta_positive: f64,
}

/// How one PRM's scores agree with the outcome labels on held-out problems.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrmReport {
    pub name: String,
    /// Steps scored (both candidates of each record, one when they are the same text).
    pub steps: usize,
    pub step_auc: f64,
    pub trajectories: usize,
    /// ROC-AUC of the minimum (and the last) chosen-step score against final correctness.
    pub trajectory_auc_min: f64,
    pub trajectory_auc_last: f64,
    pub both_correct: Share,
    pub only_target_correct: Share,
    pub only_draft_correct: Share,
    pub both_wrong: Share,
}

fn prm_report(name: &str, problems: &[LabelledProblem], score: &PairScore<'_>) -> PrmReport {
    let (mut scores, mut labels) = (Vec::new(), Vec::new());
    let (mut mins, mut lasts, mut finals) = (Vec::new(), Vec::new(), Vec::new());
    let mut classes: [(usize, usize); 4] = [(0, 0); 4];
    for p in problems {
        let mut chosen = Vec::new();
        for s in &p.steps {
            let Some((sd, st)) = score(s) else { continue };
            scores.push(sd);
            labels.push(s.label.draft_correct);
            if !s.same_text() {
                scores.push(st);
                labels.push(s.label.target_correct);
                let class = match (s.label.draft_correct, s.label.target_correct) {
                    (true, true) => 0,
                    (false, true) => 1,
                    (true, false) => 2,
                    (false, false) => 3,
                };
                classes[class].0 += 1;
                if st > sd {
                    classes[class].1 += 1;
                }
            }
            chosen.push(if s.chose_target() { st } else { sd });
        }
        if chosen.len() == p.steps.len() && !chosen.is_empty() {
            mins.push(chosen.iter().copied().fold(f64::INFINITY, f64::min));
            lasts.push(*chosen.last().expect("not empty"));
            finals.push(p.correct);
        }
    }
    let share = |(n, pos): (usize, usize)| Share {
        n,
        delta_positive: if n == 0 {
            f64::NAN
        } else {
            pos as f64 / n as f64
        },
    };
    PrmReport {
        name: name.to_owned(),
        steps: scores.len(),
        step_auc: roc_auc(&scores, &labels),
        trajectories: finals.len(),
        trajectory_auc_min: roc_auc(&mins, &finals),
        trajectory_auc_last: roc_auc(&lasts, &finals),
        both_correct: share(classes[0]),
        only_target_correct: share(classes[1]),
        only_draft_correct: share(classes[2]),
        both_wrong: share(classes[3]),
    }
}

/// A router input judged on the outcome advantage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouterReport {
    pub name: String,
    pub n: usize,
    pub positives: usize,
    pub spearman_rho: f64,
    pub roc_auc: f64,
    /// Accuracy on held-out steps with y = 0 and y = 1 at `threshold`.
    pub accuracy_class0: f64,
    pub accuracy_class1: f64,
    /// Where the two classes' accuracies meet on the training part.
    pub threshold: f64,
}

/// y = 1: the target's step leads to the gold answer and the draft's does not.
pub fn escalation_helps(s: &LabelledStep) -> bool {
    s.label.target_correct && !s.label.draft_correct
}

fn outcome_advantage(s: &LabelledStep) -> f64 {
    f64::from(u8::from(s.label.target_correct)) - f64::from(u8::from(s.label.draft_correct))
}

fn class_accuracy(scores: &[f64], labels: &[bool], threshold: f64, class: bool) -> f64 {
    let (n, right) = scores
        .iter()
        .zip(labels)
        .filter(|(_, l)| **l == class)
        .fold((0usize, 0usize), |(n, r), (s, _)| {
            (n + 1, r + usize::from((*s >= threshold) == class))
        });
    if n == 0 {
        f64::NAN
    } else {
        right as f64 / n as f64
    }
}

/// The threshold among `scores` where the accuracies on both classes are closest.
fn balanced_threshold(scores: &[f64], labels: &[bool]) -> f64 {
    let mut candidates: Vec<f64> = scores.to_vec();
    candidates.sort_by(f64::total_cmp);
    candidates.dedup();
    candidates
        .into_iter()
        .min_by(|&a, &b| {
            let gap = |t: f64| {
                (class_accuracy(scores, labels, t, true) - class_accuracy(scores, labels, t, false))
                    .abs()
            };
            gap(a).total_cmp(&gap(b))
        })
        .unwrap_or(0.5)
}

fn router_report(
    name: &str,
    train: &[LabelledProblem],
    test: &[LabelledProblem],
    score: &dyn Fn(&LabelledStep) -> Option<f64>,
) -> RouterReport {
    let collect = |problems: &[LabelledProblem]| {
        let (mut s, mut y, mut adv) = (Vec::new(), Vec::new(), Vec::new());
        for step in problems.iter().flat_map(|p| &p.steps) {
            if let Some(x) = score(step) {
                s.push(x);
                y.push(escalation_helps(step));
                adv.push(outcome_advantage(step));
            }
        }
        (s, y, adv)
    };
    let (train_s, train_y, _) = collect(train);
    let (s, y, adv) = collect(test);
    let threshold = balanced_threshold(&train_s, &train_y);
    RouterReport {
        name: name.to_owned(),
        n: s.len(),
        positives: y.iter().filter(|&&l| l).count(),
        spearman_rho: spearman(&s, &adv),
        roc_auc: roc_auc(&s, &y),
        accuracy_class0: class_accuracy(&s, &y, threshold, false),
        accuracy_class1: class_accuracy(&s, &y, threshold, true),
        threshold,
    }
}

/// The regularisation strengths tried for a head; the best on an inner split of the training
/// problems is refitted on all of them.
pub const ALPHAS: [f64; 5] = [0.1, 1.0, 10.0, 100.0, 1000.0];

/// Fits a head on `rows` of problems `train`, choosing alpha on an inner held-out fifth by
/// ROC-AUC. Returns the fit and the chosen alpha.
fn fit_head(
    train: &[LabelledProblem],
    rows: &HeadRows<'_>,
    seed: u64,
) -> Result<(Logistic, f64), TrainError> {
    let gather = |problems: &[LabelledProblem]| {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for s in problems.iter().flat_map(|p| &p.steps) {
            for (v, l) in rows(s) {
                x.push(v);
                y.push(l);
            }
        }
        (x, y)
    };
    let one_class = |y: &[bool]| y.iter().all(|&l| l) || y.iter().all(|&l| !l);
    let (x, y) = gather(train);
    if x.is_empty() || one_class(&y) {
        return Err(TrainError::Data(
            "the training problems give a single label class; label more problems".into(),
        ));
    }
    let (inner_train, inner_test) = split(train, 0.2, seed ^ 0x5eed);
    let (xt, yt) = gather(&inner_train);
    let (xv, yv) = gather(&inner_test);
    // Too few problems to choose on: the middle strength.
    let mut best = (f64::NEG_INFINITY, ALPHAS[2]);
    if !one_class(&yt) && !one_class(&yv) {
        for alpha in ALPHAS {
            let fit = fit_logistic(&refs(&xt), &yt, alpha)?;
            let scores: Vec<f64> = xv.iter().map(|v| f64::from(fit.predict(v))).collect();
            let auc = roc_auc(&scores, &yv);
            if auc > best.0 {
                best = (auc, alpha);
            }
        }
    }
    Ok((fit_logistic(&refs(&x), &y, best.1)?, best.1))
}

fn refs(x: &[Vec<f32>]) -> Vec<&[f32]> {
    x.iter().map(Vec::as_slice).collect()
}

/// The value head's training rows of a record: the target's state at the end of each candidate
/// step, labelled by whether that step leads to the gold answer (the target's step only where its
/// text differs from the draft's). The record must carry both states.
fn value_head_rows(s: &LabelledStep) -> Vec<(Vec<f32>, bool)> {
    let state = |h| hidden(h).expect("the caller checked the states").to_vec();
    let mut rows = vec![(
        state(&s.label.target_hidden_at_draft),
        s.label.draft_correct,
    )];
    if !s.same_text() {
        rows.push((
            state(&s.label.target_hidden_at_target),
            s.label.target_correct,
        ));
    }
    rows
}

/// A record's key across runs: its set, problem and step.
pub type StepKey = (Option<String>, usize, usize);

/// Out-of-fold value-head scores of every draft step of `problems`: the problems fall into
/// `folds` folds (shuffled with `seed`), and each fold's steps are scored by a head fitted on the
/// other folds as `train-heads` fits one (alpha chosen on an inner fifth). A head scores its own
/// training steps more surely than new ones; these scores are what a head meets on problems it
/// has not seen, for a router to learn how far to trust it.
pub fn out_of_fold_value_scores(
    problems: &[LabelledProblem],
    folds: usize,
    seed: u64,
) -> Result<HashMap<StepKey, f32>, TrainError> {
    if folds < 2 || problems.len() < folds {
        return Err(TrainError::Data(format!(
            "out-of-fold scores need at least 2 folds and a problem in each ({folds} folds, {} problems)",
            problems.len()
        )));
    }
    if let Some(p) = problems.iter().find(|p| {
        p.steps.iter().any(|s| {
            s.label.target_hidden_at_draft.is_none() || s.label.target_hidden_at_target.is_none()
        })
    }) {
        return Err(TrainError::Data(format!(
            "problem {} ({}) has records without the target's hidden states; read them with `label --states-only`",
            p.idx,
            p.set.as_deref().unwrap_or("no set")
        )));
    }
    let mut order: Vec<usize> = (0..problems.len()).collect();
    order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
    let mut fold_of = vec![0; problems.len()];
    for (k, &i) in order.iter().enumerate() {
        fold_of[i] = k % folds;
    }
    let mut scores = HashMap::new();
    for fold in 0..folds {
        let train: Vec<LabelledProblem> = (0..problems.len())
            .filter(|&i| fold_of[i] != fold)
            .map(|i| problems[i].clone())
            .collect();
        let (head, _) = fit_head(&train, &value_head_rows, seed)?;
        for i in (0..problems.len()).filter(|&i| fold_of[i] == fold) {
            let p = &problems[i];
            for s in &p.steps {
                let state = hidden(&s.label.target_hidden_at_draft).expect("checked above");
                scores.insert(
                    (p.set.clone(), p.idx, s.line.record.step_index),
                    head.predict(state),
                );
            }
        }
    }
    Ok(scores)
}

/// Everything `train-heads` measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadsReport {
    pub data: String,
    pub train_problems: usize,
    pub test_problems: usize,
    /// Held-out problems left out because the compared head was trained on them.
    pub left_out_problems: usize,
    pub train_records: usize,
    pub test_records: usize,
    /// Share of records whose draft (target) step leads to the gold answer, all problems.
    pub draft_correct_rate: f64,
    pub target_correct_rate: f64,
    /// Records where the target's step is right and the draft's is not, all problems.
    pub escalation_helps_rate: f64,
    pub value_head_alpha: Option<f64>,
    pub router_probe_alpha: Option<f64>,
    pub prms: Vec<PrmReport>,
    pub routers: Vec<RouterReport>,
}

/// Heads trained by [`train_heads`].
pub struct Heads {
    pub value_head: Option<HeadFile>,
    /// The hidden-state router, as a router file `run --router` loads.
    pub router_probe: Option<RouterFile>,
    pub report: HeadsReport,
}

fn hidden(h: &Option<crate::eval::labels::HiddenState>) -> Option<&[f32]> {
    h.as_ref().map(|h| h.0.as_slice())
}

/// Trains the value head and the router probe on `problems` (where they carry hidden states) and
/// measures every scorer on the held-out part.
pub fn train_heads(
    data: &str,
    problems: &[LabelledProblem],
    held_out: f64,
    seed: u64,
    models: (&str, &str),
    compare: Option<(&str, &HeadFile)>,
) -> Result<Heads, TrainError> {
    let (train, mut test) = split(problems, held_out, seed);
    // The compared head is judged on problems it did not train on, and so is the new one, on the
    // same steps.
    let held = test.len();
    if let Some((_, head)) = compare {
        let trained_on = crate::eval::trained::listed(&head.training);
        test.retain(|p| !crate::eval::trained::contains(&trained_on, p.set.as_deref(), p.idx));
        if held > 0 && test.is_empty() {
            return Err(TrainError::Data(
                "every held-out problem is one the compared head was trained on; hold out more (--held-out)".into(),
            ));
        }
    }
    let all = || problems.iter().flat_map(|p| &p.steps);
    let n_all = all().count().max(1) as f64;
    let rate = |f: &dyn Fn(&LabelledStep) -> bool| all().filter(|s| f(s)).count() as f64 / n_all;

    let has_target_states = all().all(|s| {
        s.label.target_hidden_at_draft.is_some() && s.label.target_hidden_at_target.is_some()
    });
    let value_head = if has_target_states && !train.is_empty() {
        Some(fit_head(&train, &value_head_rows, seed)?)
    } else {
        None
    };
    let has_draft_states = all().all(|s| s.label.draft_hidden.is_some());
    // With one model in both roles (the smoke set-up) the target never differs from the draft,
    // and there is no router to learn.
    let helps = train
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| escalation_helps(s));
    let both_classes = helps.count() > 0
        && train
            .iter()
            .flat_map(|p| &p.steps)
            .any(|s| !escalation_helps(s));
    let router_probe = if has_draft_states && both_classes {
        let rows = |s: &LabelledStep| {
            vec![(
                hidden(&s.label.draft_hidden).expect("checked").to_vec(),
                escalation_helps(s),
            )]
        };
        Some(fit_head(&train, &rows, seed)?)
    } else {
        None
    };
    // Issue 27's router that reads what the PRM reads: a probe for the advantage itself on the
    // target's state at the end of the draft's step (the read RSD's value head makes), where the
    // value head is a probe for correctness on the same state. Evaluated, not written.
    let advantage_probe = if has_target_states && both_classes {
        let rows = |s: &LabelledStep| {
            vec![(
                hidden(&s.label.target_hidden_at_draft)
                    .expect("checked")
                    .to_vec(),
                escalation_helps(s),
            )]
        };
        Some(fit_head(&train, &rows, seed)?)
    } else {
        None
    };
    let feature_rows: Vec<&[f32]> = train
        .iter()
        .flat_map(|p| &p.steps)
        .map(|s| s.line.record.features.0.as_slice())
        .collect();
    let feature_labels: Vec<bool> = train
        .iter()
        .flat_map(|p| &p.steps)
        .map(escalation_helps)
        .collect();
    let feature_router = if feature_labels.iter().any(|&l| l) && feature_labels.iter().any(|&l| !l)
    {
        Some(fit_logistic(&feature_rows, &feature_labels, 1.0)?)
    } else {
        None
    };

    let vh = |s: &LabelledStep, fit: &Logistic| -> Option<(f64, f64)> {
        Some((
            f64::from(fit.predict(hidden(&s.label.target_hidden_at_draft)?)),
            f64::from(fit.predict(hidden(&s.label.target_hidden_at_target)?)),
        ))
    };
    let compared = compare.map(|(name, head)| (name, head.logistic()));
    let mean_lp = FEATURE_NAMES
        .iter()
        .position(|n| *n == "mean_logprob")
        .expect("feature exists");
    // Every scorer on `test`, its rows' names ending with `suffix`.
    let reports_on = |test: &[LabelledProblem], suffix: &str| {
        let mut prms = vec![prm_report(
            &format!("the records' PRM (the run's --prm){suffix}"),
            test,
            &|s: &LabelledStep| {
                Some((
                    f64::from(s.line.record.prm_score),
                    f64::from(s.line.record.target_prm_score),
                ))
            },
        )];
        if all().all(|s| s.label.draft_judge.is_some() && s.label.target_judge.is_some()) {
            prms.push(prm_report(
                &format!("target-judge (stand-in){suffix}"),
                test,
                &|s: &LabelledStep| {
                    Some((
                        f64::from(s.label.draft_judge?),
                        f64::from(s.label.target_judge?),
                    ))
                },
            ));
        }
        if let Some((fit, _)) = &value_head {
            prms.push(prm_report(
                &format!("value head (target hidden state, trained here){suffix}"),
                test,
                &|s: &LabelledStep| vh(s, fit),
            ));
        }

        if let Some((name, fit)) = &compared {
            prms.push(prm_report(
                &format!("value head {name} (compared){suffix}"),
                test,
                &|s: &LabelledStep| vh(s, fit),
            ));
        }
        let mut routers = Vec::new();
        if let Some(fit) = &feature_router {
            routers.push(router_report(
                &format!("feature router (draft features, logistic){suffix}"),
                &train,
                test,
                &|s: &LabelledStep| Some(f64::from(fit.predict(&s.line.record.features.0))),
            ));
        }
        if let Some((fit, _)) = &advantage_probe {
            routers.push(router_report(
                &format!(
                    "advantage probe (target state at the draft step's end, logistic){suffix}"
                ),
                &train,
                test,
                &|s: &LabelledStep| {
                    Some(f64::from(
                        fit.predict(hidden(&s.label.target_hidden_at_draft)?),
                    ))
                },
            ));
        }
        if let Some((fit, _)) = &router_probe {
            routers.push(router_report(
                &format!("hidden-state probe (draft state at step end, logistic){suffix}"),
                &train,
                test,
                &|s: &LabelledStep| Some(f64::from(fit.predict(hidden(&s.label.draft_hidden)?))),
            ));
        }
        routers.push(router_report(
            &format!("draft confidence alone (1 - exp mean logprob){suffix}"),
            &train,
            test,
            &|s: &LabelledStep| Some(1.0 - f64::from(s.line.record.features.0[mean_lp]).exp()),
        ));
        routers.push(router_report(
            &format!("RSD: 1 - the records' PRM score of the draft step{suffix}"),
            &train,
            test,
            &|s: &LabelledStep| Some(1.0 - f64::from(s.line.record.prm_score)),
        ));
        if let Some((fit, _)) = &value_head {
            routers.push(router_report(
                &format!("RSD on the value head: 1 - value of the draft step{suffix}"),
                &train,
                test,
                &|s: &LabelledStep| vh(s, fit).map(|(d, _)| 1.0 - d),
            ));
            routers.push(router_report(
                &format!("oracle Δ on the value head (needs the target's step){suffix}"),
                &train,
                test,
                &|s: &LabelledStep| vh(s, fit).map(|(d, t)| t - d),
            ));
        }
        if let Some((name, fit)) = &compared {
            routers.push(router_report(
                &format!("RSD on value head {name} (compared){suffix}"),
                &train,
                test,
                &|s: &LabelledStep| vh(s, fit).map(|(d, _)| 1.0 - d),
            ));
        }
        (prms, routers)
    };
    if let Some((name, head)) = compare {
        let dim = all()
            .find_map(|s| hidden(&s.label.target_hidden_at_draft))
            .map(<[f32]>::len);
        if dim.is_some_and(|d| d != head.weights.len()) {
            return Err(TrainError::Data(format!(
                "the value head {name} reads {}-value states, and these records' states have {}",
                head.weights.len(),
                dim.unwrap_or(0)
            )));
        }
    }
    let (mut prms, mut routers) = reports_on(&test, "");
    // Each set's held-out problems on their own, where they come from several.
    let sets: std::collections::BTreeSet<&str> =
        test.iter().filter_map(|p| p.set.as_deref()).collect();
    if sets.len() > 1 {
        for set in sets {
            let part: Vec<LabelledProblem> = test
                .iter()
                .filter(|p| p.set.as_deref() == Some(set))
                .cloned()
                .collect();
            let (p, r) = reports_on(&part, &format!(" · {set}"));
            prms.extend(p);
            routers.extend(r);
        }
    }

    let count = |ps: &[LabelledProblem]| ps.iter().map(|p| p.steps.len()).sum::<usize>();
    let report = HeadsReport {
        data: data.to_owned(),
        train_problems: train.len(),
        test_problems: test.len(),
        left_out_problems: held - test.len(),
        train_records: count(&train),
        test_records: count(&test),
        draft_correct_rate: rate(&|s| s.label.draft_correct),
        target_correct_rate: rate(&|s| s.label.target_correct),
        escalation_helps_rate: rate(&escalation_helps),
        value_head_alpha: value_head.as_ref().map(|(_, a)| *a),
        router_probe_alpha: router_probe.as_ref().map(|(_, a)| *a),
        prms,
        routers,
    };
    let training = serde_json::json!({
        "data": data,
        "problems": crate::eval::trained::to_json(train.iter().map(|p| (p.set.as_deref(), p.idx))),
        "records": report.train_records,
        "labels": "greedy target rollouts graded against the gold answer (arbitrage label)",
        "model": "linfa-logistic, L2-regularised, standardised inputs, alpha chosen on an inner fifth",
    });
    let head = |fit: Option<(Logistic, f64)>, reads, model: &str, name: &str| {
        fit.map(|(fit, alpha)| {
            let mut h = HeadFile::new(reads, model, fit);
            let mut t = training.clone();
            t["alpha"] = serde_json::json!(alpha);
            h.training = t;
            h.evaluation = serde_json::json!(
                report
                    .prms
                    .iter()
                    .map(|p| serde_json::to_value(p).expect("serialises"))
                    .chain(
                        report
                            .routers
                            .iter()
                            .map(|r| serde_json::to_value(r).expect("serialises"))
                    )
                    .filter(|v| {
                        v["name"]
                            .as_str()
                            .is_some_and(|n| n.contains(name) && !n.contains("(compared)"))
                    })
                    .collect::<Vec<_>>()
            );
            h
        })
    };
    let router_probe = router_probe.map(|(fit, alpha)| {
        let y_hat: Vec<f64> = test
            .iter()
            .flat_map(|p| &p.steps)
            .filter_map(|s| hidden(&s.label.draft_hidden).map(|h| f64::from(fit.predict(h))))
            .collect();
        let mut t = training.clone();
        t["alpha"] = serde_json::json!(alpha);
        t["model"] = serde_json::json!(format!(
            "{} (the draft's final hidden state at the end of its step, from {})",
            t["model"].as_str().unwrap_or_default(),
            models.0
        ));
        t["label"] =
            serde_json::json!("y = 1 when only the target's step leads to the gold answer");
        RouterFile {
            format: ROUTER_FORMAT.into(),
            version: ROUTER_VERSION,
            kind: KIND_HIDDEN_STATE.into(),
            features: vec![DRAFT_HIDDEN.into()],
            mean: fit.mean,
            scale: fit.scale,
            weights: fit.weights,
            bias: fit.bias,
            default_threshold: 0.5,
            budget: budget_points(&y_hat),
            budget_by_set: BTreeMap::new(),
            weights_by_set: BTreeMap::new(),
            prm: None,
            prm_fingerprint: None,
            training: t,
            evaluation: serde_json::json!(
                report
                    .routers
                    .iter()
                    .map(|r| serde_json::to_value(r).expect("serialises"))
                    .collect::<Vec<_>>()
            ),
        }
    });
    Ok(Heads {
        value_head: head(value_head, HeadInput::TargetHidden, models.1, "value"),
        router_probe,
        report,
    })
}

/// Paths `train-heads` writes by default.
pub fn default_paths(out_dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    (
        out_dir.join("value-head.json"),
        out_dir.join("router-probe.json"),
        out_dir.join("heads-report.json"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::labels::HiddenState;
    use crate::method::features::Features;
    use crate::method::speculate::StepRecord;
    use rand::RngExt;

    /// A problem of `n` records whose hidden states carry the label in their first value.
    fn problem(idx: usize, n: usize, rng: &mut rand::rngs::StdRng) -> LabelledProblem {
        let state = |good: bool, rng: &mut rand::rngs::StdRng| {
            let mut v: Vec<f32> = (0..6).map(|_| rng.random_range(-1.0..1.0)).collect();
            v[0] = if good { 1.0 } else { -1.0 } + rng.random_range(-0.5..0.5);
            HiddenState(v)
        };
        let steps = (0..n)
            .map(|k| {
                let (d, t) = (rng.random_bool(0.5), rng.random_bool(0.6));
                let record = StepRecord {
                    step_index: k,
                    previous_steps: Vec::new(),
                    draft_step: format!("draft {k}"),
                    target_step: format!("target {k}"),
                    prm_score: 0.5,
                    // Δ > 0 exactly when only the target's step is right.
                    target_prm_score: if t && !d { 0.9 } else { 0.1 },
                    features: Features(vec![0.0; FEATURE_NAMES.len()]),
                    draft_tokens: 3,
                    target_tokens: 3,
                    draft_token_logprobs: Vec::new(),
                    draft_token_entropies: Vec::new(),
                };
                LabelledStep {
                    line: StepsLine {
                        format_version: 1,
                        idx,
                        question: String::new(),
                        feature_names: Vec::new(),
                        record,
                    },
                    label: LabelLine {
                        format_version: 1,
                        idx,
                        step_index: k,
                        draft_correct: d,
                        target_correct: t,
                        draft_rollout_tokens: 1,
                        target_rollout_tokens: 1,
                        draft_judge: None,
                        target_judge: None,
                        draft_hidden: Some(state(t && !d, rng)),
                        target_hidden_at_draft: Some(state(d, rng)),
                        target_hidden_at_target: Some(state(t, rng)),
                    },
                }
            })
            .collect();
        LabelledProblem {
            set: None,
            idx,
            correct: rng.random_bool(0.5),
            steps,
        }
    }

    #[test]
    fn out_of_fold_scores_never_read_their_own_problem_s_labels() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut problems: Vec<_> = (0..30).map(|i| problem(i, 6, &mut rng)).collect();
        let scores = out_of_fold_value_scores(&problems, 5, 3).unwrap();
        assert_eq!(scores.len(), 30 * 6);
        // The states carry the draft step's correctness: the scores rank by it.
        let (s, y): (Vec<f64>, Vec<bool>) = problems
            .iter()
            .flat_map(|p| p.steps.iter().map(move |st| (p.idx, st)))
            .map(|(idx, st)| {
                (
                    f64::from(scores[&(None, idx, st.line.record.step_index)]),
                    st.label.draft_correct,
                )
            })
            .unzip();
        assert!(roc_auc(&s, &y) > 0.9, "{}", roc_auc(&s, &y));
        // Problem 0's labels flipped: the heads of the other folds change, the one that scores
        // problem 0 never saw it, so its scores stay as they were.
        for st in &mut problems[0].steps {
            st.label.draft_correct = !st.label.draft_correct;
            st.label.target_correct = !st.label.target_correct;
        }
        let flipped = out_of_fold_value_scores(&problems, 5, 3).unwrap();
        for k in 0..6 {
            assert_eq!(flipped[&(None, 0, k)], scores[&(None, 0, k)]);
        }
        assert!(
            (1..30).any(|i| flipped[&(None, i, 0)] != scores[&(None, i, 0)]),
            "the other folds' heads saw the flip"
        );
        // A record without the states names its problem.
        problems[3].steps[2].label.target_hidden_at_target = None;
        let err = out_of_fold_value_scores(&problems, 5, 3)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("problem 3") && err.contains("--states-only"),
            "{err}"
        );
        assert!(out_of_fold_value_scores(&problems[..3], 5, 3).is_err());
    }

    #[test]
    fn heads_learn_a_signal_in_the_states_and_shares_count_by_class() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let problems: Vec<_> = (0..40).map(|i| problem(i, 6, &mut rng)).collect();
        let heads = train_heads("synthetic", &problems, 0.3, 1, ("d", "t"), None).unwrap();
        let r = &heads.report;
        assert_eq!(r.train_problems + r.test_problems, 40);
        let vh = r
            .prms
            .iter()
            .find(|p| p.name.starts_with("value head"))
            .unwrap();
        assert!(vh.step_auc > 0.9, "{vh:?}");
        // The stand-in's Δ was built to be positive exactly in the "only target" class.
        let lp = &r.prms[0];
        assert_eq!(lp.only_target_correct.delta_positive, 1.0);
        assert_eq!(lp.both_correct.delta_positive, 0.0);
        assert_eq!(lp.only_draft_correct.delta_positive, 0.0);
        let probe = r
            .routers
            .iter()
            .find(|x| x.name.starts_with("hidden-state"))
            .unwrap();
        assert!(probe.roc_auc > 0.9, "{probe:?}");
        // The target's state at the draft step says only whether the draft's step is right here,
        // and y = 1 needs the target's step right too: the advantage probe reads part of it.
        let advantage = r
            .routers
            .iter()
            .find(|x| x.name.starts_with("advantage probe"))
            .unwrap();
        assert!(
            advantage.n == probe.n && advantage.roc_auc > 0.55,
            "{advantage:?}"
        );
        assert_eq!(heads.value_head.unwrap().dim, 6);
        let router = heads.router_probe.unwrap();
        assert_eq!(router.kind, KIND_HIDDEN_STATE);
        assert_eq!(router.weights.len(), 6);
        assert!(!router.budget.is_empty());
    }

    #[test]
    fn each_set_is_reported_on_its_own_and_a_compared_head_on_the_same_steps() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        // Two sets over the same indices.
        let problems: Vec<_> = ["gsm8k", "math500"]
            .iter()
            .flat_map(|set| {
                (0..30)
                    .map(|i| LabelledProblem {
                        set: Some((*set).to_owned()),
                        ..problem(i, 6, &mut rng)
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let first = train_heads("two sets", &problems, 0.3, 1, ("d", "t"), None).unwrap();
        let head = first.value_head.unwrap();
        let again = train_heads(
            "two sets",
            &problems,
            0.3,
            1,
            ("d", "t"),
            Some(("before", &head)),
        )
        .unwrap();
        let auc = |name: &str| {
            let p = again
                .report
                .prms
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("no row {name:?}"));
            (p.steps, p.step_auc)
        };
        let trained = "value head (target hidden state, trained here)";
        let (n, _) = auc(trained);
        let (n_gsm8k, gsm8k) = auc(&format!("{trained} · gsm8k"));
        let (n_math, math) = auc(&format!("{trained} · math500"));
        assert_eq!(n_gsm8k + n_math, n);
        assert!(gsm8k > 0.8 && math > 0.8, "{gsm8k} {math}");
        // The same head, compared: the same figures on the same steps.
        assert_eq!(
            auc("value head before (compared) · math500"),
            (n_math, math)
        );
        assert!(
            again
                .report
                .routers
                .iter()
                .any(|r| r.name == "RSD on value head before (compared) · gsm8k")
        );
        // The head lists its training problems, none of them held out here.
        assert_eq!(
            crate::eval::trained::listed(&head.training).len(),
            first.report.train_problems
        );
        assert_eq!(again.report.left_out_problems, 0);
        // A compared head trained on a held-out problem is judged without it, and so is the new
        // one: math500's problem, not gsm8k's of the same index.
        let (_, test) = split(&problems, 0.3, 1);
        let held = test
            .iter()
            .find(|p| p.set.as_deref() == Some("math500"))
            .unwrap();
        let mut seen = head.clone();
        seen.training["problems"] = crate::eval::trained::to_json([(Some("math500"), held.idx)]);
        let without = train_heads(
            "two sets",
            &problems,
            0.3,
            1,
            ("d", "t"),
            Some(("seen", &seen)),
        )
        .unwrap()
        .report;
        assert_eq!(without.left_out_problems, 1);
        assert_eq!(without.test_problems, again.report.test_problems - 1);
        let steps_of =
            |r: &HeadsReport, name: &str| r.prms.iter().find(|p| p.name == name).map(|p| p.steps);
        assert_eq!(
            steps_of(&without, &format!("{trained} · math500")),
            // Each record gives the head two steps to score: the draft's and the target's.
            Some(n_math - 2 * held.steps.len())
        );
        assert_eq!(
            steps_of(&without, &format!("{trained} · gsm8k")),
            Some(n_gsm8k)
        );
        // A head of another size is refused.
        let mut other = head.clone();
        other.weights.push(0.0);
        other.mean.push(0.0);
        other.scale.push(1.0);
        other.dim += 1;
        let err = train_heads(
            "two sets",
            &problems,
            0.3,
            1,
            ("d", "t"),
            Some(("x", &other)),
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("x") && err.contains("7"), "{err}");
    }

    #[test]
    fn the_split_is_by_problem_and_repeatable() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let problems: Vec<_> = (0..10).map(|i| problem(i, 2, &mut rng)).collect();
        let (a, b) = split(&problems, 0.3, 5);
        let (c, _) = split(&problems, 0.3, 5);
        assert_eq!((a.len(), b.len()), (7, 3));
        let ids = |v: &[LabelledProblem]| v.iter().map(|p| p.idx).collect::<Vec<_>>();
        assert_eq!(ids(&a), ids(&c));
        assert!(ids(&a).iter().all(|i| !ids(&b).contains(i)));
    }
}
