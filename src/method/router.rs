//! Routers: given the context and a proposed draft step, the probability ŷ that the target would
//! write a better step. The loop escalates when ŷ ≥ threshold.
//!
//! The embedded router is a logistic regression, stored as a versioned, self-describing JSON file
//! (inputs, standardisation, weights, how it was trained, its evaluation, and a threshold per
//! target-step budget). Its input is either the draft-side features of [`crate::method::features`]
//! (`kind = "logistic"`), optionally followed by the PRM's score of the draft step (what RSD reads,
//! at RSD's price: a router that knows where the PRM is unsure of itself), or the draft's final
//! hidden state at the end of its step (`kind = "hidden-state"`, a linear probe, read from the
//! draft instance, loaded to report hidden states).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::{Router, RouterInput};
use crate::logistic::Logistic;
use crate::method::features::{FEATURE_NAMES, step_features};

pub const ROUTER_FORMAT: &str = "arbitrage-router";
pub const ROUTER_VERSION: u32 = 1;
/// `kind` of a router over the draft-side features.
pub const KIND_FEATURES: &str = "logistic";
/// `kind` of a linear probe on the draft's hidden state.
pub const KIND_HIDDEN_STATE: &str = "hidden-state";
/// The single input name of a hidden-state router.
pub const DRAFT_HIDDEN: &str = "draft_hidden";
/// The input name of the PRM's score of the draft step, which a logistic router may read after
/// its features (`RouterFile::prm` names the PRM).
pub const PRM_SCORE: &str = "prm_score";

#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("cannot read router file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("router file {path} is not valid")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("router file {path}: {message}")]
    Mismatch { path: PathBuf, message: String },
    #[error("cannot write router file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// A point of the budget curve: escalating when ŷ ≥ `threshold` sent about `target_fraction`
/// of held-out steps to the target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BudgetPoint {
    pub target_fraction: f64,
    pub threshold: f64,
    /// An early decision trained against the router at this threshold (`train-router`), used
    /// by `run` at this point unless told otherwise; absent where none saved time in training.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub early: Option<crate::method::policy::EarlyRule>,
    /// Where the point has an early rule, `threshold` was found with the rule inside (rule and
    /// router together send `target_fraction`); this is the threshold at which the router alone
    /// does, for runs without the rule (`--no-early`, or an entropy rule of the user's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threshold_without_early: Option<f64>,
}

/// The router file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouterFile {
    pub format: String,
    pub version: u32,
    /// `"logistic"` (over `features`) or `"hidden-state"` (over the draft's hidden state;
    /// `features` is then `["draft_hidden"]` and the vectors have the hidden size).
    pub kind: String,
    pub features: Vec<String>,
    /// Standardisation applied before the weights: `(x - mean) / scale`.
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// The threshold `run` uses when none is given.
    pub default_threshold: f64,
    #[serde(default)]
    pub budget: Vec<BudgetPoint>,
    /// Budget curves of single sets, by dataset name (`gsm8k`, `math500`, ...), fitted on each
    /// set's own held-out steps. ŷ is distributed differently on different sets (MATH steps are
    /// longer and less certain than GSM8K's, so a pooled threshold sends more of them), so a run
    /// on a set named here takes its `--target-fraction` threshold and early rule from that
    /// set's curve; every other run uses `budget`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub budget_by_set: BTreeMap<String, Vec<BudgetPoint>>,
    /// Weights of single sets, by dataset name (`train-router --per-set-weights`), over the same
    /// inputs: a cue can point opposite ways on two sets (the value head's score of the draft
    /// step marks where the target helps on GSM8K, and hopeless problems on MATH), which one
    /// pooled weight averages away. A run on a set named here scores with them
    /// ([`RouterFile::for_set`]); every other run, and `serve`, with the pooled weights. Each set
    /// here has its own budget curve, calibrated with these weights.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub weights_by_set: BTreeMap<String, Logistic>,
    /// The PRM whose score of the draft step a `"logistic"` router reads as its last input
    /// (`features` then end with `"prm_score"`): the name its training records carried. A run
    /// must score with the same PRM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prm: Option<String>,
    /// That PRM's [`StepScorer::fingerprint`](crate::backend::StepScorer::fingerprint) where it
    /// was known at training (a value head given to `train-router --prm-head`): a run's PRM must
    /// then have the same one, wherever its file lies, and not only the same name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prm_fingerprint: Option<String>,
    /// How it was trained (data, sizes, options); free-form.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Held-out evaluation; free-form.
    #[serde(default)]
    pub evaluation: serde_json::Value,
}

impl RouterFile {
    pub fn load(path: &Path) -> Result<RouterFile, RouterError> {
        let text = std::fs::read_to_string(path).map_err(|source| RouterError::Read {
            path: path.to_owned(),
            source,
        })?;
        let file: RouterFile =
            serde_json::from_str(&text).map_err(|source| RouterError::Parse {
                path: path.to_owned(),
                source,
            })?;
        file.check().map_err(|message| RouterError::Mismatch {
            path: path.to_owned(),
            message,
        })?;
        Ok(file)
    }

    pub fn save(&self, path: &Path) -> Result<(), RouterError> {
        let text = serde_json::to_string_pretty(self).expect("router file serialises");
        std::fs::write(path, text + "\n").map_err(|source| RouterError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.format != ROUTER_FORMAT {
            return Err(format!(
                "`format` is {:?}, expected {ROUTER_FORMAT:?}",
                self.format
            ));
        }
        if self.version != ROUTER_VERSION {
            return Err(format!(
                "`version` {} is not supported (this build reads {ROUTER_VERSION})",
                self.version
            ));
        }
        let n = match self.kind.as_str() {
            KIND_FEATURES => {
                // A router trained before features were added reads the ones it knows: new
                // features only ever join at the end (before the PRM's score, if it reads one).
                let draft_side = &self.features[..self.draft_feature_count()];
                let known_prefix = !draft_side.is_empty()
                    && draft_side.len() <= FEATURE_NAMES.len()
                    && draft_side.iter().zip(FEATURE_NAMES).all(|(a, b)| a == b);
                if !known_prefix {
                    return Err(format!(
                        "trained on features {:?}, but this build computes {:?}{}; retrain the router",
                        self.features,
                        FEATURE_NAMES,
                        if self.reads_prm() {
                            format!(" (then {PRM_SCORE:?})")
                        } else {
                            String::new()
                        }
                    ));
                }
                match (self.reads_prm(), &self.prm) {
                    (true, None) => {
                        return Err(format!(
                            "reads {PRM_SCORE:?} but does not name its PRM (`prm`)"
                        ));
                    }
                    (false, Some(prm)) => {
                        return Err(format!(
                            "names a PRM ({prm:?}) but does not read {PRM_SCORE:?}"
                        ));
                    }
                    _ => {}
                }
                if self.prm.is_none() && self.prm_fingerprint.is_some() {
                    return Err("has a `prm_fingerprint` but names no PRM (`prm`)".into());
                }
                self.features.len()
            }
            KIND_HIDDEN_STATE => {
                if self.features != [DRAFT_HIDDEN] {
                    return Err(format!(
                        "a hidden-state router reads {DRAFT_HIDDEN:?}, not {:?}",
                        self.features
                    ));
                }
                self.weights.len()
            }
            other => {
                return Err(format!(
                    "`kind` {other:?} is not supported (expected {KIND_FEATURES:?} or {KIND_HIDDEN_STATE:?})"
                ));
            }
        };
        crate::logistic::check_logistic(n, &self.mean, &self.scale, &self.weights, self.bias)?;
        for (set, model) in &self.weights_by_set {
            if self.kind != KIND_FEATURES {
                return Err(format!(
                    "`weights_by_set` needs a {KIND_FEATURES:?} router, not {:?}",
                    self.kind
                ));
            }
            crate::logistic::check_logistic(
                n,
                &model.mean,
                &model.scale,
                &model.weights,
                model.bias,
            )
            .map_err(|e| format!("`weights_by_set` of {set}: {e}"))?;
            if !self.budget.is_empty() && !self.budget_by_set.contains_key(set) {
                return Err(format!(
                    "`weights_by_set` has {set} but `budget_by_set` has no curve of it: its --target-fraction thresholds would be the pooled weights'"
                ));
            }
        }
        let curves = std::iter::once(("", &self.budget))
            .chain(self.budget_by_set.iter().map(|(set, b)| (set.as_str(), b)));
        for (set, budget) in curves {
            let of_set = if set.is_empty() {
                String::new()
            } else {
                format!(" of {set}")
            };
            for point in budget {
                if let Some(t) = point.threshold_without_early
                    && !(0.0..=1.0).contains(&t)
                {
                    return Err(format!(
                        "budget point {}{of_set}: `threshold_without_early` {t} is outside [0, 1]",
                        point.target_fraction
                    ));
                }
                if let Some(rule) = &point.early {
                    rule.check().map_err(|e| {
                        format!("budget point {}{of_set}: {e}", point.target_fraction)
                    })?;
                }
            }
        }
        if !(0.0..=1.0).contains(&self.default_threshold) {
            return Err(format!(
                "`default_threshold` {} is outside [0, 1]",
                self.default_threshold
            ));
        }
        Ok(())
    }

    /// The router a run on `set` uses: the set's own weights in place of the pooled ones where
    /// the file has them (and then none by set, so that the copy scores every input alike); the
    /// budget curves are kept, since [`RouterFile::budget_curve`] already picks by set.
    pub fn for_set(&self, set: Option<&str>) -> RouterFile {
        let mut file = self.clone();
        if let Some(model) = set.and_then(|s| file.weights_by_set.remove(s)) {
            (file.mean, file.scale, file.weights, file.bias) =
                (model.mean, model.scale, model.weights, model.bias);
        }
        file.weights_by_set.clear();
        file
    }

    /// Whether a run on `set` scores with weights of that set's own.
    pub fn has_weights_of(&self, set: &str) -> bool {
        self.weights_by_set.contains_key(set)
    }

    /// ŷ for a feature vector.
    pub fn predict(&self, features: &[f32]) -> f32 {
        crate::logistic::logistic_probability(
            features,
            &self.mean,
            &self.scale,
            &self.weights,
            self.bias,
        )
    }

    pub fn reads_hidden_state(&self) -> bool {
        self.kind == KIND_HIDDEN_STATE
    }

    /// Whether it reads the PRM's score of the draft step after its features.
    pub fn reads_prm(&self) -> bool {
        self.kind == KIND_FEATURES && self.features.last().map(String::as_str) == Some(PRM_SCORE)
    }

    /// Its inputs: its share of the draft-side `features` (a prefix, for a router trained before
    /// later features joined), then the PRM's score of the step where it reads one (`None` when
    /// it does and no score is given).
    pub fn inputs(&self, features: &[f32], prm_score: Option<f32>) -> Option<Vec<f32>> {
        let mut x = features[..self.draft_feature_count().min(features.len())].to_vec();
        if self.reads_prm() {
            x.push(prm_score?);
        }
        Some(x)
    }

    /// How many of its inputs are draft-side features.
    pub fn draft_feature_count(&self) -> usize {
        self.features.len() - usize::from(self.reads_prm())
    }

    /// The threshold that sent about `fraction` of held-out steps to the target: of `set`'s
    /// own steps where the file has a curve for it ([`RouterFile::budget_curve`]).
    pub fn threshold_for_fraction(&self, set: Option<&str>, fraction: f64) -> Option<f64> {
        self.budget_point(set, fraction).map(|p| p.threshold)
    }

    /// The budget curve a run on `set` uses, and the set it was fitted on (`None`: the pooled
    /// curve, for sets the file has no curve of and for requests that name no set).
    pub fn budget_curve(&self, set: Option<&str>) -> (&[BudgetPoint], Option<&str>) {
        match set.and_then(|s| self.budget_by_set.get_key_value(s)) {
            Some((name, curve)) if !curve.is_empty() => (curve, Some(name.as_str())),
            _ => (&self.budget, None),
        }
    }

    /// The budget point nearest to `fraction` on `set`'s curve.
    pub fn budget_point(&self, set: Option<&str>, fraction: f64) -> Option<&BudgetPoint> {
        self.budget_curve(set).0.iter().min_by(|a, b| {
            (a.target_fraction - fraction)
                .abs()
                .total_cmp(&(b.target_fraction - fraction).abs())
        })
    }
}

/// A router file in use.
pub struct FeatureRouter {
    file: RouterFile,
    name: String,
}

impl FeatureRouter {
    pub fn new(file: RouterFile, path: &Path) -> Self {
        FeatureRouter {
            name: format!("logistic router {}", path.display()),
            file,
        }
    }

    pub fn file(&self) -> &RouterFile {
        &self.file
    }
}

impl Router for FeatureRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, input: &RouterInput<'_>) -> Result<f32, crate::backend::EngineError> {
        let x = self
            .file
            .inputs(&step_features(input).0, input.prm_score)
            .ok_or_else(|| {
                crate::backend::EngineError::Invalid(format!(
                    "{} reads the PRM's score of the draft step, and none was given",
                    self.name
                ))
            })?;
        Ok(self.file.predict(&x))
    }

    fn reads_prm(&self) -> bool {
        self.file.reads_prm()
    }
}

/// A hidden-state router: reads the draft's step with a draft instance that reports hidden states
/// and scores the state at its last token.
pub struct ProbeRouter {
    model: std::sync::Arc<dyn crate::backend::TextProbe>,
    file: RouterFile,
    name: String,
}

impl ProbeRouter {
    pub fn new(
        model: std::sync::Arc<dyn crate::backend::TextProbe>,
        file: RouterFile,
        path: &Path,
    ) -> Self {
        ProbeRouter {
            name: format!("hidden-state router {} on {}", path.display(), model.name()),
            model,
            file,
        }
    }
}

impl Router for ProbeRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, input: &RouterInput<'_>) -> Result<f32, crate::backend::EngineError> {
        let transcript = crate::types::Transcript {
            problem: input.problem,
            question: input.question,
            prompt: input.prompt,
            steps: input.previous_steps,
        };
        let probe = self.model.probe(
            &transcript,
            &input.step.text,
            &[],
            crate::backend::ForcedTokens::Skip,
        )?;
        match probe.hidden {
            Some(h) if h.len() == self.file.weights.len() => Ok(self.file.predict(&h)),
            Some(h) => Err(crate::backend::EngineError::Invalid(format!(
                "the router was trained on {}-value hidden states; {} gives {}",
                self.file.weights.len(),
                self.model.name(),
                h.len()
            ))),
            None => Err(crate::backend::EngineError::Invalid(format!(
                "the hidden-state router needs hidden states, and {} was not loaded to report them",
                self.model.name()
            ))),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> RouterFile {
        let n = FEATURE_NAMES.len();
        RouterFile {
            format: ROUTER_FORMAT.into(),
            version: ROUTER_VERSION,
            kind: "logistic".into(),
            features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            mean: vec![0.0; n],
            scale: vec![1.0; n],
            weights: vec![0.0; n],
            bias: 0.0,
            default_threshold: 0.5,
            budget: vec![
                BudgetPoint {
                    target_fraction: 0.2,
                    threshold: 0.7,
                    early: None,
                    threshold_without_early: None,
                },
                BudgetPoint {
                    target_fraction: 0.5,
                    threshold: 0.5,
                    early: None,
                    threshold_without_early: None,
                },
            ],
            budget_by_set: BTreeMap::new(),
            weights_by_set: BTreeMap::new(),
            prm: None,
            prm_fingerprint: None,
            training: serde_json::json!({"examples": 0}),
            evaluation: serde_json::Value::Null,
        }
    }

    #[test]
    fn a_router_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        sample().save(&path).unwrap();
        assert_eq!(RouterFile::load(&path).unwrap(), sample());
    }

    #[test]
    fn a_router_with_other_features_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut file = sample();
        file.features[0] = "something_else".into();
        file.save(&path).unwrap();
        let err = RouterFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("retrain") && err.contains("r.json"), "{err}");
    }

    #[test]
    fn a_router_trained_on_fewer_features_reads_those() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        let mut file = sample();
        let n = FEATURE_NAMES.len() - 2;
        file.features.truncate(n);
        file.mean.truncate(n);
        file.scale.truncate(n);
        file.weights = vec![1.0; n];
        file.save(&path).unwrap();
        let loaded = RouterFile::load(&path).unwrap();
        let mut features = vec![0.0; FEATURE_NAMES.len()];
        let before = loaded.predict(&features);
        features[n] = 5.0;
        features[n + 1] = 5.0;
        assert_eq!(loaded.predict(&features), before);
        features[0] = 1.0;
        assert!(loaded.predict(&features) > before);
    }

    #[test]
    fn a_router_that_reads_the_prm_takes_its_score_after_its_features_and_names_the_prm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        // Trained before the last two features joined, then the PRM's score.
        let mut file = sample();
        let n = FEATURE_NAMES.len() - 2;
        file.features.truncate(n);
        file.features.push(PRM_SCORE.into());
        file.mean = vec![0.0; n + 1];
        file.scale = vec![1.0; n + 1];
        file.weights = vec![0.0; n + 1];
        file.weights[n] = -2.0;
        file.prm = Some("value-head h.json on target".into());
        file.save(&path).unwrap();
        let loaded = RouterFile::load(&path).unwrap();
        assert!(loaded.reads_prm());
        assert_eq!(loaded.draft_feature_count(), n);
        let features = vec![0.5; FEATURE_NAMES.len()];
        assert_eq!(loaded.inputs(&features, None), None);
        let x = loaded.inputs(&features, Some(0.9)).unwrap();
        assert_eq!((x.len(), x[n]), (n + 1, 0.9));
        // A surer PRM, a lower ŷ.
        let y = |score| loaded.predict(&loaded.inputs(&features, Some(score)).unwrap());
        assert!(y(0.9) < y(0.1));
        assert!(!sample().reads_prm());
        assert_eq!(
            sample().inputs(&features, None).unwrap().len(),
            FEATURE_NAMES.len()
        );

        // The score without the PRM's name, or a name without the score, is refused.
        for (mut bad, what) in [
            (loaded.clone(), "does not name its PRM"),
            (sample(), "does not read"),
        ] {
            if bad.reads_prm() {
                bad.prm = None;
            } else {
                bad.prm = Some("x".into());
            }
            bad.save(&path).unwrap();
            let err = RouterFile::load(&path).unwrap_err().to_string();
            assert!(err.contains(what) && err.contains("r.json"), "{err}");
        }
        // A head's fingerprint without the PRM's name is refused too.
        let mut bad = sample();
        bad.prm_fingerprint = Some("0123456789abcdef".into());
        bad.save(&path).unwrap();
        let err = RouterFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("`prm_fingerprint` but names no PRM"), "{err}");
    }

    #[test]
    fn a_corrupt_router_file_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        std::fs::write(&path, "{\"format\": ").unwrap();
        let err = RouterFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("r.json"), "{err}");
    }

    #[test]
    fn zero_weights_predict_one_half_and_budget_picks_the_nearest_point() {
        let f = sample();
        assert_eq!(f.predict(&[1.0; FEATURE_NAMES.len()]), 0.5);
        assert_eq!(f.threshold_for_fraction(None, 0.25), Some(0.7));
        assert_eq!(f.threshold_for_fraction(None, 0.45), Some(0.5));
    }

    #[test]
    fn a_set_with_its_own_curve_takes_its_thresholds_from_it() {
        let mut f = sample();
        f.budget_by_set.insert(
            "math500".into(),
            vec![BudgetPoint {
                target_fraction: 0.3,
                threshold: 0.9,
                early: Some(crate::method::policy::EarlyRule::entropy(4, 1.0)),
                threshold_without_early: Some(0.8),
            }],
        );
        assert_eq!(f.threshold_for_fraction(Some("math500"), 0.25), Some(0.9));
        assert_eq!(f.budget_curve(Some("math500")).1, Some("math500"));
        assert!(
            f.budget_point(Some("math500"), 0.3)
                .unwrap()
                .early
                .is_some()
        );
        // Sets without a curve, and requests naming none, use the pooled one.
        assert_eq!(f.threshold_for_fraction(Some("gsm8k"), 0.25), Some(0.7));
        assert_eq!(f.threshold_for_fraction(None, 0.25), Some(0.7));
        assert_eq!(f.budget_curve(Some("gsm8k")).1, None);

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        f.save(&path).unwrap();
        assert_eq!(RouterFile::load(&path).unwrap(), f);
        f.budget_by_set.get_mut("math500").unwrap()[0].early =
            Some(crate::method::policy::EarlyRule::entropy(0, 1.0));
        let err = f.check().unwrap_err();
        assert!(err.contains("budget point 0.3 of math500"), "{err}");
        f.budget_by_set.get_mut("math500").unwrap()[0].early = None;
        f.budget_by_set.get_mut("math500").unwrap()[0].threshold_without_early = Some(1.5);
        let err = f.check().unwrap_err();
        assert!(
            err.contains("budget point 0.3 of math500") && err.contains("threshold_without_early"),
            "{err}"
        );
    }

    #[test]
    fn a_run_on_a_set_with_weights_of_its_own_scores_with_them() {
        let n = FEATURE_NAMES.len();
        let mut f = sample();
        f.weights[0] = 1.0;
        let mut math = Logistic {
            mean: vec![0.0; n],
            scale: vec![1.0; n],
            weights: vec![0.0; n],
            bias: 0.0,
        };
        math.weights[0] = -1.0;
        f.weights_by_set.insert("math500".into(), math);
        f.budget_by_set.insert("math500".into(), f.budget.clone());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.json");
        f.save(&path).unwrap();
        let loaded = RouterFile::load(&path).unwrap();
        assert_eq!(loaded, f);
        let mut x = vec![0.0; n];
        x[0] = 2.0;
        // The first feature raises ŷ on other sets and lowers it on MATH500.
        let math_run = loaded.for_set(Some("math500"));
        assert!(math_run.predict(&x) < 0.5 && math_run.weights_by_set.is_empty());
        assert_eq!(math_run.budget_by_set, f.budget_by_set);
        for other in [Some("gsm8k"), None] {
            assert!(loaded.for_set(other).predict(&x) > 0.5);
        }
        assert!(loaded.has_weights_of("math500") && !loaded.has_weights_of("gsm8k"));

        // Weights without a curve of the set would take the pooled thresholds: refused.
        let mut bad = f.clone();
        bad.budget_by_set.clear();
        let err = bad.check().unwrap_err();
        assert!(err.contains("no curve of it"), "{err}");
        // Weights of the wrong length name the set.
        let mut bad = f.clone();
        bad.weights_by_set.get_mut("math500").unwrap().weights.pop();
        let err = bad.check().unwrap_err();
        assert!(err.contains("`weights_by_set` of math500"), "{err}");
    }

    #[test]
    fn a_budget_point_s_bad_early_rule_is_refused_with_its_point() {
        let mut f = sample();
        f.budget[0].early = Some(crate::method::policy::EarlyRule::entropy(0, 1.0));
        let err = f.check().unwrap_err();
        assert!(
            err.contains("budget point") && err.contains("at least one token"),
            "{err}"
        );
        f.budget[0].early = Some(crate::method::policy::EarlyRule::entropy(4, 1.0));
        assert!(f.check().is_ok());
    }

    #[test]
    fn a_hidden_state_router_needs_its_single_input_and_equal_lengths() {
        let mut f = sample();
        f.kind = KIND_HIDDEN_STATE.into();
        f.features = vec![DRAFT_HIDDEN.into()];
        f.mean = vec![0.0; 4];
        f.scale = vec![1.0; 4];
        f.weights = vec![0.5; 4];
        assert!(f.check().is_ok());
        assert!(f.reads_hidden_state());
        f.scale.pop();
        assert_eq!(f.check().unwrap_err(), "`scale` has 3 values for 4 inputs");
        f.scale.push(1.0);
        f.features = vec!["mean_logprob".into()];
        assert!(f.check().unwrap_err().contains("reads \"draft_hidden\""));
        f.kind = "forest".into();
        assert!(f.check().unwrap_err().contains("not supported"));
    }
}
