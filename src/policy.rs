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
/// tokens (a glimpse), and the step goes to the target at once when the draft was unsure of them.
/// A step headed for the target then costs those few draft tokens, not a whole draft step; a
/// kept glimpse is written on by the draft and routed as usual. GlimpRouter (arXiv 2601.05110)
/// routes on the entropy of a step's first token alone; `tokens = 1` is that rule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EarlyRule {
    /// Draft tokens written before deciding (at least 1).
    pub tokens: u32,
    /// Escalate when the largest entropy (nats) over those tokens reaches this.
    pub min_entropy: f32,
}

/// Whether a glimpse (the entropies of the draft's first tokens of a step) sends the step to the
/// target at once.
pub fn early_escalates(rule: &EarlyRule, glimpse_entropies: &[f32]) -> bool {
    glimpse_entropies
        .iter()
        .take(rule.tokens as usize)
        .any(|&h| h >= rule.min_entropy)
}

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
    /// A router file, with its default threshold and (maybe) its budget table.
    File(&'a crate::router::RouterFile),
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
        (None, Some(f), Budget::File(file)) => {
            if !(0.0..=1.0).contains(&f) {
                return Err(ThresholdError::FractionOutOfRange(f));
            }
            file.threshold_for_fraction(f)
                .ok_or(ThresholdError::NoBudgetTable)?
        }
        (None, None, Budget::File(file)) if run_type == RunType::Router => file.default_threshold,
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
    fn early_rule_reads_only_the_glimpse() {
        let rule = EarlyRule {
            tokens: 2,
            min_entropy: 1.0,
        };
        assert!(early_escalates(&rule, &[0.2, 1.0]));
        assert!(
            !early_escalates(&rule, &[0.2, 0.9, 3.0]),
            "the third token is past the glimpse"
        );
        assert!(!early_escalates(&rule, &[]));
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
