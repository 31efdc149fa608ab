//! Run types and their decision rules. Each rule is a pure function of the scores and the
//! threshold, so it can be tested on its own and traced with its inputs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunType {
    /// Always keep the draft step.
    Draft,
    /// Always use the target.
    Target,
    /// Reward-guided speculative decoding: keep the draft step when its PRM score ≥ threshold.
    Rsd,
    /// Both steps scored; the target's is used when its advantage exceeds the threshold.
    Oracle,
    /// ARBITRAGE: escalate when the router's ŷ ≥ threshold.
    Router,
    /// Router training data: both steps and both scores at every step, the better one kept.
    Generate,
}

impl RunType {
    pub const ALL: [RunType; 6] = [
        RunType::Draft,
        RunType::Target,
        RunType::Rsd,
        RunType::Oracle,
        RunType::Router,
        RunType::Generate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            RunType::Draft => "draft",
            RunType::Target => "target",
            RunType::Rsd => "rsd",
            RunType::Oracle => "oracle",
            RunType::Router => "router",
            RunType::Generate => "generate",
        }
    }

    /// Whether the rule reads a threshold at all.
    pub fn uses_threshold(self) -> bool {
        matches!(self, RunType::Rsd | RunType::Oracle | RunType::Router)
    }

    /// The range a threshold must lie in: scores are in [0, 1], advantages in [-1, 1].
    pub fn threshold_range(self) -> (f64, f64) {
        match self {
            RunType::Oracle => (-1.0, 1.0),
            _ => (0.0, 1.0),
        }
    }

    /// The default threshold: RSD's paper default 0.7, oracle 0 (any advantage), router 0.5.
    pub fn default_threshold(self) -> f64 {
        match self {
            RunType::Rsd => 0.7,
            RunType::Router => 0.5,
            _ => 0.0,
        }
    }

    pub fn needs_prm(self) -> bool {
        matches!(self, RunType::Rsd | RunType::Oracle | RunType::Generate)
    }
}

impl fmt::Display for RunType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for RunType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunType::ALL
            .into_iter()
            .find(|r| r.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown run type `{s}` (known: {})",
                    RunType::ALL.map(RunType::name).join(", ")
                )
            })
    }
}

/// RSD keeps the draft step when the PRM likes it enough.
pub fn rsd_keeps_draft(draft_score: f32, threshold: f64) -> bool {
    f64::from(draft_score) >= threshold
}

/// The oracle uses the target step when its advantage is above the threshold.
pub fn oracle_uses_target(draft_score: f32, target_score: f32, threshold: f64) -> bool {
    f64::from(target_score) - f64::from(draft_score) > threshold
}

/// The router escalates when ŷ reaches the threshold.
pub fn router_escalates(y_hat: f32, threshold: f64) -> bool {
    f64::from(y_hat) >= threshold
}

/// Escalating before the draft finishes its step: the draft writes only its first `tokens`
/// tokens (a glimpse), and the step goes to the target at once when the glimpse says the router
/// would escalate it. A step headed for the target then costs those few draft tokens, not a whole
/// draft step; a kept glimpse is written on by the draft and routed as usual. GlimpRouter (arXiv
/// 2601.05110) routes on the entropy of a step's first token alone; `tokens = 1` with
/// [`EarlyTest::Entropy`] is that rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EarlyRule {
    /// Draft tokens written before deciding (at least 1).
    pub tokens: u32,
    #[serde(flatten)]
    pub test: EarlyTest,
}

/// What an early rule reads of the glimpse's features
/// ([`crate::method::features::GLIMPSE_FEATURE_NAMES`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EarlyTest {
    /// A logistic model over all of them, fitted to the router's decisions on whole steps:
    /// escalate when it gives at least `min_probability`.
    Learned {
        glimpse_model: crate::logistic::Logistic,
        min_probability: f32,
    },
    /// Escalate when the largest entropy (nats) over the glimpse reaches `min_entropy`.
    Entropy { min_entropy: f32 },
}

impl EarlyRule {
    /// The largest-entropy rule.
    pub fn entropy(tokens: u32, min_entropy: f32) -> Self {
        EarlyRule {
            tokens,
            test: EarlyTest::Entropy { min_entropy },
        }
    }

    /// Why the rule cannot be used, if it cannot (a router file's rules are checked on load).
    pub fn check(&self) -> Result<(), String> {
        if self.tokens == 0 {
            return Err("an early rule must read at least one token".into());
        }
        match &self.test {
            EarlyTest::Entropy { min_entropy } if !min_entropy.is_finite() => {
                Err("an early rule's `min_entropy` must be finite".into())
            }
            EarlyTest::Learned {
                glimpse_model,
                min_probability,
            } => glimpse_model
                .check(crate::method::features::GLIMPSE_FEATURE_NAMES.len())
                .and_then(|()| {
                    (0.0..=1.0)
                        .contains(min_probability)
                        .then_some(())
                        .ok_or_else(|| "an early rule's `min_probability` must be in [0, 1]".into())
                })
                .map_err(|e| format!("early rule: {e}")),
            EarlyTest::Entropy { .. } => Ok(()),
        }
    }
}

impl fmt::Display for EarlyRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.test {
            EarlyTest::Entropy { min_entropy } => {
                write!(f, "H(first {}) ≥ {min_entropy:.2}", self.tokens)
            }
            EarlyTest::Learned {
                min_probability, ..
            } => write!(f, "P(first {}) ≥ {min_probability:.2}", self.tokens),
        }
    }
}

/// Whether a glimpse sends the step to the target at once. `glimpse` holds the features
/// ([`crate::method::features::glimpse_features`]) of the draft's first `rule.tokens` tokens.
pub fn early_escalates(rule: &EarlyRule, glimpse: &[f32; 7]) -> bool {
    match &rule.test {
        EarlyTest::Entropy { min_entropy } => glimpse[MAX_ENTROPY] >= *min_entropy,
        EarlyTest::Learned {
            glimpse_model,
            min_probability,
        } => glimpse_model.predict(glimpse) >= *min_probability,
    }
}

/// Where the largest entropy sits among the glimpse's features.
const MAX_ENTROPY: usize = 4;

/// Data generation keeps the better-scored step (the target's only when strictly better).
pub fn generate_uses_target(draft_score: f32, target_score: f32) -> bool {
    target_score > draft_score
}

/// What a router offers for choosing a threshold by target fraction.
#[derive(Debug, Clone, Copy)]
pub enum Budget<'a> {
    /// No router is configured.
    NoRouter,
    /// A served router: it has no budget table.
    Served,
    /// A router file, with its default threshold and (maybe) its budget curves, and the set the
    /// run is on (which picks that set's curve where the file has one).
    File {
        file: &'a crate::method::router::RouterFile,
        set: Option<&'a str>,
    },
}

/// Why a threshold could not be chosen. The messages name the values, not the flags, so `run`
/// (flags) and `serve` (request fields) can both show them.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ThresholdError {
    #[error("a target fraction applies to run type `router` only, not `{0}`")]
    FractionNeedsRouter(RunType),
    #[error(
        "a target fraction is read from a router file's budget table; a served router has none: give a threshold"
    )]
    ServedRouterHasNoBudget,
    #[error("run type `router` needs a router, and none is configured")]
    NoRouter,
    #[error("target fraction {0} is out of range: expected a value in [0, 1]")]
    FractionOutOfRange(f64),
    #[error("the router file has no budget table: give a threshold")]
    NoBudgetTable,
    #[error(
        "threshold {threshold} is out of range for `{run_type}`: expected a value in [{lo}, {hi}]"
    )]
    OutOfRange {
        threshold: f64,
        run_type: RunType,
        lo: f64,
        hi: f64,
    },
}

/// The threshold of a rule: the one given, else the router file's for a target fraction, else
/// the default (the router file's own for `router`, else [`RunType::default_threshold`]).
pub fn choose_threshold(
    run_type: RunType,
    threshold: Option<f64>,
    target_fraction: Option<f64>,
    budget: Budget<'_>,
) -> Result<f64, ThresholdError> {
    if target_fraction.is_some() && run_type != RunType::Router {
        return Err(ThresholdError::FractionNeedsRouter(run_type));
    }
    let chosen = match (threshold, target_fraction, budget) {
        (Some(t), _, _) => t,
        (None, Some(_), Budget::Served) => return Err(ThresholdError::ServedRouterHasNoBudget),
        (None, Some(_), Budget::NoRouter) => return Err(ThresholdError::NoRouter),
        (None, Some(f), Budget::File { file, set }) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(ThresholdError::FractionOutOfRange(f));
            }
            file.threshold_for_fraction(set, f)
                .ok_or(ThresholdError::NoBudgetTable)?
        }
        (None, None, Budget::File { file, .. }) if run_type == RunType::Router => {
            file.default_threshold
        }
        (None, None, _) => run_type.default_threshold(),
    };
    let (lo, hi) = run_type.threshold_range();
    // NaN fails the range check too.
    if run_type.uses_threshold() && !(lo..=hi).contains(&chosen) || !chosen.is_finite() {
        return Err(ThresholdError::OutOfRange {
            threshold: chosen,
            run_type,
            lo,
            hi,
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_fraction_outside_router_or_without_a_budget_is_refused() {
        assert_eq!(
            choose_threshold(RunType::Rsd, None, Some(0.3), Budget::NoRouter),
            Err(ThresholdError::FractionNeedsRouter(RunType::Rsd))
        );
        assert_eq!(
            choose_threshold(RunType::Router, None, Some(0.3), Budget::Served),
            Err(ThresholdError::ServedRouterHasNoBudget)
        );
    }

    #[test]
    fn thresholds_are_checked_against_the_run_types_range() {
        assert_eq!(
            choose_threshold(RunType::Rsd, None, None, Budget::NoRouter),
            Ok(0.7)
        );
        assert_eq!(
            choose_threshold(RunType::Oracle, Some(-0.5), None, Budget::NoRouter),
            Ok(-0.5)
        );
        assert!(matches!(
            choose_threshold(RunType::Rsd, Some(-0.5), None, Budget::NoRouter),
            Err(ThresholdError::OutOfRange { .. })
        ));
        assert!(choose_threshold(RunType::Router, Some(f64::NAN), None, Budget::Served).is_err());
    }

    #[test]
    fn rsd_keeps_a_draft_step_scoring_exactly_the_threshold() {
        assert!(rsd_keeps_draft(0.7, 0.7f32 as f64));
        assert!(!rsd_keeps_draft(0.69, 0.7));
    }

    #[test]
    fn oracle_needs_a_strictly_larger_advantage() {
        assert!(!oracle_uses_target(0.5, 0.6, 0.1f32 as f64 + 1e-6));
        assert!(oracle_uses_target(0.5, 0.7, 0.1));
        assert!(
            !oracle_uses_target(0.5, 0.5, 0.0),
            "no advantage, no target"
        );
        assert!(
            oracle_uses_target(0.5, 0.4, -0.2),
            "a negative threshold tolerates a worse target"
        );
    }

    #[test]
    fn router_escalates_at_the_threshold() {
        assert!(router_escalates(0.5, 0.5));
        assert!(!router_escalates(0.49, 0.5));
    }

    #[test]
    fn an_entropy_rule_reads_the_glimpse_s_largest_entropy() {
        assert_eq!(
            crate::method::features::GLIMPSE_FEATURE_NAMES[MAX_ENTROPY],
            "max_entropy"
        );
        let rule = EarlyRule::entropy(2, 1.0);
        let glimpse =
            |lp: &[f32], h: &[f32]| crate::method::features::glimpse_features(lp, h, [0.0; 2]);
        assert!(early_escalates(&rule, &glimpse(&[-0.1, -0.1], &[0.2, 1.0])));
        assert!(!early_escalates(
            &rule,
            &glimpse(&[-0.1, -0.1], &[0.2, 0.9])
        ));
        assert_eq!(rule.to_string(), "H(first 2) ≥ 1.00");
    }

    #[test]
    fn a_learned_rule_escalates_where_its_model_reaches_the_probability() {
        // A model that reads only the mean log-probability: unsure glimpses escalate.
        let mut weights = vec![0.0; 7];
        weights[0] = -4.0;
        let rule = EarlyRule {
            tokens: 4,
            test: EarlyTest::Learned {
                glimpse_model: crate::logistic::Logistic {
                    mean: vec![-0.5; 7],
                    scale: vec![1.0; 7],
                    weights,
                    bias: 0.0,
                },
                min_probability: 0.7,
            },
        };
        rule.check().unwrap();
        let glimpse =
            |lp: f32| crate::method::features::glimpse_features(&[lp; 4], &[0.5; 4], [1.0, 0.5]);
        assert!(early_escalates(&rule, &glimpse(-2.0)));
        assert!(!early_escalates(&rule, &glimpse(-0.1)));
        assert_eq!(rule.to_string(), "P(first 4) ≥ 0.70");
    }

    #[test]
    fn early_rules_read_back_in_both_forms_and_bad_ones_are_refused() {
        let old: EarlyRule = serde_json::from_str(r#"{"tokens": 4, "min_entropy": 1.17}"#).unwrap();
        assert_eq!(old, EarlyRule::entropy(4, 1.17));
        let learned = EarlyRule {
            tokens: 8,
            test: EarlyTest::Learned {
                glimpse_model: crate::logistic::Logistic {
                    mean: vec![0.0; 7],
                    scale: vec![1.0; 7],
                    weights: vec![0.5; 7],
                    bias: -1.0,
                },
                min_probability: 0.6,
            },
        };
        let text = serde_json::to_string(&learned).unwrap();
        assert_eq!(serde_json::from_str::<EarlyRule>(&text).unwrap(), learned);
        assert!(EarlyRule::entropy(0, 1.0).check().is_err());
        let mut short = learned.clone();
        if let EarlyTest::Learned { glimpse_model, .. } = &mut short.test {
            glimpse_model.weights.pop();
        }
        assert!(short.check().unwrap_err().contains("early rule"));
        let mut odd = learned;
        if let EarlyTest::Learned {
            min_probability, ..
        } = &mut odd.test
        {
            *min_probability = 1.5;
        }
        assert!(odd.check().unwrap_err().contains("min_probability"));
    }

    #[test]
    fn generate_keeps_the_draft_on_ties() {
        assert!(!generate_uses_target(0.5, 0.5));
        assert!(generate_uses_target(0.5, 0.51));
    }

    #[test]
    fn run_type_names_round_trip() {
        for r in RunType::ALL {
            assert_eq!(r.name().parse::<RunType>().unwrap(), r);
        }
        assert!(
            "speculative"
                .parse::<RunType>()
                .unwrap_err()
                .contains("rsd")
        );
    }
}
