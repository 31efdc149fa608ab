//! Threshold sweeps: the grid of (run type, threshold) points, the `sweep.csv` table they produce,
//! and the arithmetic of trade-off curves (the accuracy–latency frontier and the speed-up of one
//! rule over another at matched accuracy).
//!
//! Running a point is `arbitrage run` into its own directory; this module only names the points
//! and reads what they wrote.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::eval::run::{Metrics, compute_metrics, read_results};
use crate::method::policy::RunType;

/// How a grid point sets its rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting {
    /// Baselines (`draft`, `target`) have no threshold.
    None,
    Threshold(f64),
    /// Router only: the threshold the router file's budget table gives for this target fraction.
    TargetFraction(f64),
}

/// A budget point's asked share of target steps against what its run sent.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetCheck {
    pub point: String,
    pub asked: f64,
    pub sent: f64,
}

impl BudgetCheck {
    /// Whether the run sent more than a third more or less than it asked: a budget table that
    /// does not hold on the problems it ran (issue 27 counts that as a bug to fix).
    pub fn missed(&self) -> bool {
        (self.sent - self.asked).abs() > self.asked / 3.0
    }
}

/// Every point run at a target-step fraction (`router-f0.3`: the name says what it asked), with
/// the fraction it sent, in the order of `rows`.
pub fn budget_checks(rows: &[SweepRow]) -> Vec<BudgetCheck> {
    rows.iter()
        .filter_map(|r| {
            let asked = r
                .point
                .strip_prefix(&format!("{}-f", r.run_type))?
                .parse::<f64>()
                .ok()?;
            Some(BudgetCheck {
                point: r.point.clone(),
                asked,
                sent: r.target_step_fraction,
            })
        })
        .collect()
}

/// One point of the grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    pub run_type: RunType,
    pub setting: Setting,
}

impl Point {
    /// The point's directory under the sweep directory, e.g. `rsd-t0.7`, `router-f0.3`, `target`.
    pub fn dir_name(&self) -> String {
        match self.setting {
            Setting::None => self.run_type.to_string(),
            Setting::Threshold(t) => format!("{}-t{t}", self.run_type),
            Setting::TargetFraction(f) => format!("{}-f{f}", self.run_type),
        }
    }
}

impl fmt::Display for Point {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.dir_name())
    }
}

/// What to sweep.
#[derive(Debug, Clone, Default)]
pub struct Grid {
    pub baselines: Vec<RunType>,
    pub run_types: Vec<RunType>,
    /// Thresholds for run types without their own list.
    pub thresholds: Vec<f64>,
    pub rsd_thresholds: Option<Vec<f64>>,
    pub oracle_thresholds: Option<Vec<f64>>,
    pub router_thresholds: Option<Vec<f64>>,
    pub router_fractions: Vec<f64>,
}

#[derive(Debug, thiserror::Error)]
pub enum GridError {
    #[error(
        "`{0}` is not a swept run type (sweep rsd, oracle and router; draft and target are baselines)"
    )]
    NotSwept(RunType),
    #[error("`{0}` is not a baseline (baselines are draft and target)")]
    NotBaseline(RunType),
    #[error("threshold {value} is out of range for `{run_type}`: expected a value in [{lo}, {hi}]")]
    OutOfRange {
        run_type: RunType,
        value: f64,
        lo: f64,
        hi: f64,
    },
    #[error("target fraction {0} is out of range: expected a value in [0, 1]")]
    Fraction(f64),
    #[error("`{0}` has no thresholds: pass --thresholds or --{0}-thresholds")]
    NoThresholds(RunType),
    #[error("the grid is empty")]
    Empty,
}

impl Grid {
    /// Every point, baselines first, in a stable order; checks every value.
    pub fn points(&self) -> Result<Vec<Point>, GridError> {
        let mut points = Vec::new();
        for &b in &self.baselines {
            if !matches!(b, RunType::Draft | RunType::Target) {
                return Err(GridError::NotBaseline(b));
            }
            points.push(Point {
                run_type: b,
                setting: Setting::None,
            });
        }
        for &run_type in &self.run_types {
            let own = match run_type {
                RunType::Rsd => &self.rsd_thresholds,
                RunType::Oracle => &self.oracle_thresholds,
                RunType::Router => &self.router_thresholds,
                other => return Err(GridError::NotSwept(other)),
            };
            let thresholds = own.as_ref().unwrap_or(&self.thresholds);
            let fractions: &[f64] = if run_type == RunType::Router {
                &self.router_fractions
            } else {
                &[]
            };
            if thresholds.is_empty() && fractions.is_empty() {
                return Err(GridError::NoThresholds(run_type));
            }
            let (lo, hi) = run_type.threshold_range();
            for &t in thresholds {
                if !(lo..=hi).contains(&t) {
                    return Err(GridError::OutOfRange {
                        run_type,
                        value: t,
                        lo,
                        hi,
                    });
                }
                points.push(Point {
                    run_type,
                    setting: Setting::Threshold(t),
                });
            }
            for &f in fractions {
                if !(0.0..=1.0).contains(&f) {
                    return Err(GridError::Fraction(f));
                }
                points.push(Point {
                    run_type,
                    setting: Setting::TargetFraction(f),
                });
            }
        }
        if points.is_empty() {
            return Err(GridError::Empty);
        }
        // The same point asked for twice runs once.
        let mut seen = std::collections::HashSet::new();
        points.retain(|p| seen.insert(p.dir_name()));
        Ok(points)
    }
}

/// One row of `sweep.csv`: a finished grid point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepRow {
    /// The point's directory, relative to the sweep directory.
    pub point: String,
    pub run_type: RunType,
    /// The threshold the rule ran with (resolved from the budget table for `-f` points); empty
    /// for baselines.
    pub threshold: Option<f64>,
    pub n: usize,
    pub accuracy: f64,
    pub mean_latency_s: f64,
    pub p50_latency_s: f64,
    pub p90_latency_s: f64,
    pub target_step_fraction: f64,
    pub acceptance_rate: Option<f64>,
    pub draft_tokens: u64,
    pub target_tokens: u64,
    pub discarded_draft_tokens: u64,
    /// Draft tokens the target kept by verification.
    #[serde(default)]
    pub accepted_draft_tokens: u64,
    /// Mean seconds per problem in the draft, the target (decode and reads), PRM and router, and
    /// outside model calls; they add up to `mean_latency_s`.
    #[serde(default)]
    pub draft_s: f64,
    #[serde(default)]
    pub target_s: f64,
    #[serde(default)]
    pub scoring_s: f64,
    #[serde(default)]
    pub other_s: f64,
    /// Seconds of the latencies replayed from the step cache (costs measured when first computed).
    pub replayed_latency_s: f64,
    pub errors: usize,
}

impl SweepRow {
    pub fn new(point: &str, m: &Metrics) -> SweepRow {
        let t = &m.time_split_s;
        let n = m.n.max(1) as f64;
        SweepRow {
            point: point.to_owned(),
            run_type: m.run_type,
            threshold: m.run_type.uses_threshold().then_some(m.threshold),
            n: m.n,
            accuracy: m.accuracy,
            mean_latency_s: m.mean_latency_s,
            p50_latency_s: m.p50_latency_s,
            p90_latency_s: m.p90_latency_s,
            target_step_fraction: m.target_step_fraction,
            acceptance_rate: m.acceptance_rate,
            draft_tokens: m.draft_tokens,
            target_tokens: m.target_tokens,
            discarded_draft_tokens: m.discarded_draft_tokens,
            accepted_draft_tokens: m.accepted_draft_tokens,
            draft_s: (t.draft_decode + t.draft_prefill) / n,
            target_s: (t.target_decode + t.target_prefill) / n,
            scoring_s: (t.prm + t.router) / n,
            other_s: t.other / n,
            replayed_latency_s: m.replayed_latency_s,
            errors: m.errors,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct TableError {
    pub path: PathBuf,
    pub message: String,
}

/// Writes `sweep.csv` whole (it is small), through a temporary file so a reader never sees half.
pub fn write_table(path: &Path, rows: &[SweepRow]) -> Result<(), TableError> {
    let error = |message: String| TableError {
        path: path.to_owned(),
        message,
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    for row in rows {
        w.serialize(row).map_err(|e| error(e.to_string()))?;
    }
    let bytes = w.into_inner().map_err(|e| error(e.to_string()))?;
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, bytes).map_err(|e| error(e.to_string()))?;
    std::fs::rename(&tmp, path).map_err(|e| error(e.to_string()))
}

/// Reads `sweep.csv`; a bad row is an error naming its line.
pub fn read_table(path: &Path) -> Result<Vec<SweepRow>, TableError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| TableError {
        path: path.to_owned(),
        message: e.to_string(),
    })?;
    r.deserialize()
        .enumerate()
        .map(|(i, row)| {
            row.map_err(|e| TableError {
                path: path.to_owned(),
                // Line 1 is the header.
                message: format!("line {}: {e}", i + 2),
            })
        })
        .collect()
}

/// A point's row rebuilt from its `results.jsonl` (every problem's record), not from its
/// `metrics.json` or `sweep.csv`: how committed evidence is checked against the tables made from
/// it. `metrics.json` supplies only what records do not carry (dataset, wall time, scorer names).
pub fn recompute_row(sweep_dir: &Path, point: &str) -> Result<SweepRow, TableError> {
    let dir = sweep_dir.join(point);
    let results = dir.join("results.jsonl");
    let error = |path: &Path, message: String| TableError {
        path: path.to_owned(),
        message,
    };
    let records = read_results(&results).map_err(|e| error(&results, e.to_string()))?;
    let Some(first) = records.first() else {
        return Err(error(&results, "no records".into()));
    };
    let metrics_path = dir.join("metrics.json");
    let old: Metrics = std::fs::read_to_string(&metrics_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|m| error(&metrics_path, m))?;
    let metrics = compute_metrics(
        &records,
        first.run_type,
        first.threshold,
        &old.dataset,
        old.wall_time_s,
        old.prm,
        old.router,
    );
    Ok(SweepRow::new(point, &metrics))
}

/// The problems `start..end` cut into `rounds` consecutive slices of near-equal size (the first ones
/// one larger), none empty: with `--rounds`, every point runs slice one, then every point slice
/// two, and so on, so that a machine that speeds up or slows down over the hours touches every
/// point alike instead of whichever ran last.
pub fn round_slices(start: usize, end: usize, rounds: usize) -> Vec<std::ops::Range<usize>> {
    let n = end.saturating_sub(start);
    let rounds = rounds.clamp(1, n.max(1));
    let (size, larger) = (n / rounds, n % rounds);
    let mut from = start;
    (0..rounds)
        .map(|r| {
            let to = from + size + usize::from(r < larger);
            let slice = from..to;
            from = to;
            slice
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// A point of a trade-off curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub latency: f64,
    pub accuracy: f64,
}

/// The points no other point beats: sorted by latency, each more accurate than every cheaper one.
pub fn frontier(points: &[CurvePoint]) -> Vec<CurvePoint> {
    let mut sorted = points.to_vec();
    sorted.sort_by(|a, b| {
        a.latency
            .total_cmp(&b.latency)
            .then(b.accuracy.total_cmp(&a.accuracy))
    });
    let mut out: Vec<CurvePoint> = Vec::new();
    for p in sorted {
        if out.last().is_none_or(|last| p.accuracy > last.accuracy) {
            out.push(p);
        }
    }
    out
}

/// The latency a curve needs to reach `accuracy`, interpolating linearly along its frontier.
/// `None` when no point reaches it. Below the cheapest point's accuracy, that point's latency (no
/// extrapolation).
pub fn latency_at_accuracy(points: &[CurvePoint], accuracy: f64) -> Option<f64> {
    let f = frontier(points);
    let first = f.first()?;
    if accuracy <= first.accuracy {
        return Some(first.latency);
    }
    f.windows(2).find_map(|w| {
        let (a, b) = (w[0], w[1]);
        (accuracy > a.accuracy && accuracy <= b.accuracy).then(|| {
            let t = (accuracy - a.accuracy) / (b.accuracy - a.accuracy);
            a.latency + t * (b.latency - a.latency)
        })
    })
}

/// The accuracy a run type reaches when a share `fraction` of its steps go to the target,
/// interpolated linearly between its points sorted by that share. `draft` (share 0) and `target`
/// (share 1) end every curve where the table has them, since every rule becomes one of them at its
/// extreme threshold; outside the points, and for a run type without points, there is no value.
pub fn accuracy_at_fraction(rows: &[SweepRow], run_type: RunType, fraction: f64) -> Option<f64> {
    if !rows.iter().any(|r| r.run_type == run_type) {
        return None;
    }
    let ends = rows
        .iter()
        .filter(|r| matches!(r.run_type, RunType::Draft | RunType::Target));
    let mut points: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| r.run_type == run_type)
        .chain(ends)
        .map(|r| (r.target_step_fraction, r.accuracy))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    if let Some(&(_, accuracy)) = points.iter().find(|p| p.0 == fraction) {
        return Some(accuracy);
    }
    points.windows(2).find_map(|w| {
        let ((f0, a0), (f1, a1)) = (w[0], w[1]);
        (f0 < fraction && fraction < f1).then(|| a0 + (fraction - f0) / (f1 - f0) * (a1 - a0))
    })
}

/// `rsd`, `router` and `oracle` at one share of target steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AtBudget {
    pub fraction: f64,
    pub rsd: Option<f64>,
    pub router: Option<f64>,
    pub oracle: Option<f64>,
}

impl AtBudget {
    /// Where the expected order oracle ≥ router ≥ rsd fails, in words ("holds" when it does not).
    /// The oracle escalates on the PRM's advantage with the target's step in hand, so it bounds
    /// what a router trained on that advantage can do at a budget; RSD reads only the draft's
    /// score.
    pub fn order(&self) -> String {
        let below = |a: Option<f64>, b: Option<f64>| matches!((a, b), (Some(a), Some(b)) if a < b);
        let fails: Vec<&str> = [
            (below(self.oracle, self.router), "router > oracle"),
            (below(self.router, self.rsd), "rsd > router"),
            (below(self.oracle, self.rsd), "rsd > oracle"),
        ]
        .into_iter()
        .filter_map(|(fails, what)| fails.then_some(what))
        .collect();
        if fails.is_empty() {
            "holds".into()
        } else {
            fails.join(", ")
        }
    }
}

/// The three rules compared at every share of target steps a `router` point ran at, and at
/// `also` (the budget a goal names), from the lowest share to the highest.
pub fn at_router_budgets(rows: &[SweepRow], also: &[f64]) -> Vec<AtBudget> {
    let mut fractions: Vec<f64> = rows
        .iter()
        .filter(|r| r.run_type == RunType::Router)
        .map(|r| r.target_step_fraction)
        .collect();
    // A share within half a printed digit of a measured one would add a row that reads the same
    // with an interpolated value: the measured one stays.
    for &f in also {
        if fractions.iter().all(|g| (f - g).abs() >= 0.005) {
            fractions.push(f);
        }
    }
    fractions.sort_by(f64::total_cmp);
    fractions
        .into_iter()
        .map(|fraction| AtBudget {
            fraction,
            rsd: accuracy_at_fraction(rows, RunType::Rsd, fraction),
            router: accuracy_at_fraction(rows, RunType::Router, fraction),
            oracle: accuracy_at_fraction(rows, RunType::Oracle, fraction),
        })
        .collect()
}

/// How much faster `fast` reaches an accuracy than `slow`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MatchedSpeedup {
    pub accuracy: f64,
    pub slow_latency: f64,
    pub fast_latency: f64,
    /// `slow_latency / fast_latency`: above 1 when `fast` is faster.
    pub speedup: f64,
    /// The accuracy is below every point of that curve, so its latency is its cheapest point's:
    /// an upper bound, not an interpolation.
    pub slow_clamped: bool,
    pub fast_clamped: bool,
}

impl MatchedSpeedup {
    /// Prefixes for the slow latency, the fast latency and the speed-up: `"≤ "` / `"≥ "` where the
    /// value rests on a curve's cheapest point and is a bound, `""` where it is interpolated.
    pub fn marks(&self) -> [&'static str; 3] {
        let latency = |clamped: bool| if clamped { "≤ " } else { "" };
        let speedup = match (self.slow_clamped, self.fast_clamped) {
            (true, false) => "≤ ",
            (false, true) => "≥ ",
            _ => "",
        };
        [
            latency(self.slow_clamped),
            latency(self.fast_clamped),
            speedup,
        ]
    }
}

/// The speed-up at every accuracy on either frontier that both curves reach, from the lowest to
/// the highest (the last is the highest accuracy both reach).
pub fn matched_speedups(slow: &[CurvePoint], fast: &[CurvePoint]) -> Vec<MatchedSpeedup> {
    let reach = |c: &[CurvePoint]| c.iter().map(|p| p.accuracy).fold(f64::NAN, f64::max);
    let top = reach(slow).min(reach(fast));
    if top.is_nan() {
        return Vec::new();
    }
    let mut levels: Vec<f64> = frontier(slow)
        .into_iter()
        .chain(frontier(fast))
        .map(|p| p.accuracy)
        .filter(|a| *a <= top)
        .collect();
    levels.sort_by(f64::total_cmp);
    levels.dedup();
    levels
        .into_iter()
        .filter_map(|accuracy| {
            let slow_latency = latency_at_accuracy(slow, accuracy)?;
            let fast_latency = latency_at_accuracy(fast, accuracy)?;
            let below = |c: &[CurvePoint]| c.iter().all(|p| accuracy < p.accuracy);
            Some(MatchedSpeedup {
                accuracy,
                slow_latency,
                fast_latency,
                speedup: slow_latency / fast_latency,
                slow_clamped: below(slow),
                fast_clamped: below(fast),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(latency: f64, accuracy: f64) -> CurvePoint {
        CurvePoint { latency, accuracy }
    }

    #[test]
    fn rounds_cover_the_range_once_in_order() {
        assert_eq!(
            round_slices(0, 50, 5),
            vec![0..10, 10..20, 20..30, 30..40, 40..50]
        );
        assert_eq!(round_slices(3, 10, 3), vec![3..6, 6..8, 8..10]);
        // More rounds than problems: one problem a round. No problems: no rounds.
        assert_eq!(round_slices(0, 2, 5), vec![0..1, 1..2]);
        assert!(round_slices(4, 4, 3).is_empty());
        assert_eq!(round_slices(0, 7, 0), vec![0..7]);
    }

    proptest::proptest! {
        #[test]
        fn rounds_partition_the_range(start in 0usize..100, n in 0usize..200, rounds in 0usize..30) {
            let slices = round_slices(start, start + n, rounds);
            let flat: Vec<usize> = slices.iter().flat_map(|s| s.clone()).collect();
            proptest::prop_assert_eq!(flat, (start..start + n).collect::<Vec<_>>());
            let sizes: Vec<usize> = slices.iter().map(|s| s.len()).collect();
            if let (Some(max), Some(min)) = (sizes.iter().max(), sizes.iter().min()) {
                proptest::prop_assert!(max - min <= 1);
            }
        }
    }

    #[test]
    fn frontier_drops_dominated_points() {
        let f = frontier(&[p(30.0, 0.5), p(10.0, 0.3), p(20.0, 0.25), p(40.0, 0.5)]);
        assert_eq!(f, vec![p(10.0, 0.3), p(30.0, 0.5)]);
    }

    #[test]
    fn latency_interpolates_along_the_frontier() {
        let curve = [p(10.0, 0.3), p(30.0, 0.5), p(20.0, 0.2)];
        assert_eq!(latency_at_accuracy(&curve, 0.4), Some(20.0));
        assert_eq!(latency_at_accuracy(&curve, 0.5), Some(30.0));
        assert_eq!(latency_at_accuracy(&curve, 0.1), Some(10.0));
        assert_eq!(latency_at_accuracy(&curve, 0.51), None);
        assert_eq!(latency_at_accuracy(&[], 0.1), None);
    }

    #[test]
    fn matched_speedup_on_a_hand_made_table() {
        // RSD reaches 0.6 at 40 s (between 0.5@30 and 0.7@50); the router at 20 s
        // (between 0.4@10 and 0.6@20): 2x. At 0.7 (the highest both reach): 50 vs 25 s.
        let rsd = [p(30.0, 0.5), p(50.0, 0.7)];
        let router = [p(10.0, 0.4), p(20.0, 0.6), p(30.0, 0.8)];
        let s = matched_speedups(&rsd, &router);
        let at = |a: f64| s.iter().find(|m| (m.accuracy - a).abs() < 1e-12).copied();
        let m = at(0.6).unwrap();
        assert!((m.slow_latency - 40.0).abs() < 1e-9);
        assert!((m.fast_latency - 20.0).abs() < 1e-9);
        assert!((m.speedup - 2.0).abs() < 1e-9);
        let top = s.last().unwrap();
        assert!((top.accuracy - 0.7).abs() < 1e-12);
        assert!((top.fast_latency - 25.0).abs() < 1e-9);
        assert!((top.speedup - 2.0).abs() < 1e-9);
        // 0.4 is below RSD's cheapest point: its latency there is a bound.
        let low = at(0.4).unwrap();
        assert!(low.slow_clamped && !low.fast_clamped);
        assert_eq!(low.marks(), ["≤ ", "", "≤ "]);
        assert_eq!(low.slow_latency, 30.0);
        assert!(!m.slow_clamped && !m.fast_clamped);
        // 0.8 is beyond RSD's reach: not matched.
        assert!(at(0.8).is_none());
        assert!(matched_speedups(&rsd, &[]).is_empty());
    }

    #[test]
    fn grid_names_points_and_rejects_bad_values() {
        let grid = Grid {
            baselines: vec![RunType::Draft, RunType::Target],
            run_types: vec![RunType::Rsd, RunType::Router],
            thresholds: vec![0.5, 0.7],
            router_fractions: vec![0.3],
            ..Grid::default()
        };
        let names: Vec<String> = grid.points().unwrap().iter().map(Point::dir_name).collect();
        assert_eq!(
            names,
            [
                "draft",
                "target",
                "rsd-t0.5",
                "rsd-t0.7",
                "router-t0.5",
                "router-t0.7",
                "router-f0.3"
            ]
        );
        let bad = Grid {
            run_types: vec![RunType::Rsd],
            thresholds: vec![1.5],
            ..Grid::default()
        };
        assert!(bad.points().unwrap_err().to_string().contains("1.5"));
        let oracle = Grid {
            run_types: vec![RunType::Oracle],
            oracle_thresholds: Some(vec![-0.2]),
            ..Grid::default()
        };
        assert_eq!(oracle.points().unwrap()[0].dir_name(), "oracle-t-0.2");
        let target = Grid {
            run_types: vec![RunType::Target],
            ..Grid::default()
        };
        assert!(target.points().is_err());
        assert!(Grid::default().points().is_err());
    }

    #[test]
    fn table_round_trips_and_names_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sweep.csv");
        let row = SweepRow {
            point: "rsd-t0.7".into(),
            run_type: RunType::Rsd,
            threshold: Some(0.7),
            n: 3,
            accuracy: 2.0 / 3.0,
            mean_latency_s: 1.5,
            p50_latency_s: 1.0,
            p90_latency_s: 2.5,
            target_step_fraction: 0.25,
            acceptance_rate: Some(0.75),
            draft_tokens: 10,
            target_tokens: 5,
            discarded_draft_tokens: 2,
            accepted_draft_tokens: 4,
            draft_s: 0.5,
            target_s: 0.75,
            scoring_s: 0.125,
            other_s: 0.125,
            replayed_latency_s: 0.5,
            errors: 0,
        };
        let baseline = SweepRow {
            point: "target".into(),
            run_type: RunType::Target,
            threshold: None,
            acceptance_rate: None,
            ..row.clone()
        };
        write_table(&path, &[row.clone(), baseline.clone()]).unwrap();
        assert_eq!(read_table(&path).unwrap(), vec![row, baseline]);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("rsd,", "nonsense,", 1)).unwrap();
        let err = read_table(&path).unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
    }

    /// A finished point with only what the budget comparison reads.
    fn at(run_type: RunType, fraction: f64, accuracy: f64) -> SweepRow {
        SweepRow {
            point: format!("{run_type}-{fraction}"),
            run_type,
            threshold: None,
            n: 50,
            accuracy,
            mean_latency_s: 1.0,
            p50_latency_s: 1.0,
            p90_latency_s: 1.0,
            target_step_fraction: fraction,
            acceptance_rate: None,
            draft_tokens: 0,
            target_tokens: 0,
            discarded_draft_tokens: 0,
            accepted_draft_tokens: 0,
            draft_s: 0.0,
            target_s: 0.0,
            scoring_s: 0.0,
            other_s: 0.0,
            replayed_latency_s: 0.0,
            errors: 0,
        }
    }

    #[test]
    fn budget_points_are_checked_against_the_fraction_their_name_asked() {
        let named = |point: &str, run_type, sent| SweepRow {
            point: point.into(),
            ..at(run_type, sent, 0.5)
        };
        let grid = Point {
            run_type: RunType::Router,
            setting: Setting::TargetFraction(0.15),
        };
        let rows = [
            named("draft", RunType::Draft, 0.0),
            named("router-t0.5", RunType::Router, 0.4),
            named(&grid.dir_name(), RunType::Router, 0.06),
            named("router-f0.3", RunType::Router, 0.21),
            named("router-f0.45", RunType::Router, 0.55),
        ];
        let checks = budget_checks(&rows);
        let summary: Vec<(&str, f64, bool)> = checks
            .iter()
            .map(|c| (c.point.as_str(), c.asked, c.missed()))
            .collect();
        // GSM8K's unseen problems before the replayed calibration: 6% for 15% misses by more
        // than a third (9 points, 5 allowed); 21% for 30% and 55% for 45% stay within a third.
        assert_eq!(
            summary,
            [
                ("router-f0.15", 0.15, true),
                ("router-f0.3", 0.3, false),
                ("router-f0.45", 0.45, false)
            ]
        );
        let sentence = crate::reporting::report::budget_check_sentence(&rows).unwrap();
        assert!(
            sentence.contains(
                "router-f0.15 sent 6% of steps to the target for 15% asked (off by more than a third); router-f0.3 sent 21%"
            ),
            "{sentence}"
        );
        assert_eq!(
            crate::reporting::report::budget_check_sentence(&rows[..2]),
            None
        );
    }

    #[test]
    fn accuracy_at_a_budget_interpolates_between_the_baselines_and_the_points() {
        let rows = [
            at(RunType::Draft, 0.0, 0.2),
            at(RunType::Target, 1.0, 0.6),
            at(RunType::Router, 0.5, 0.5),
            at(RunType::Rsd, 0.25, 0.3),
        ];
        let close = |a: Option<f64>, b: f64| a.is_some_and(|a| (a - b).abs() < 1e-12);
        assert!(close(
            accuracy_at_fraction(&rows, RunType::Router, 0.5),
            0.5
        ));
        assert!(close(
            accuracy_at_fraction(&rows, RunType::Router, 0.25),
            0.35
        ));
        assert!(close(
            accuracy_at_fraction(&rows, RunType::Router, 0.75),
            0.55
        ));
        assert!(close(accuracy_at_fraction(&rows, RunType::Rsd, 0.5), 0.4));
        // The baselines' line alone says nothing of a rule that did not run.
        assert_eq!(accuracy_at_fraction(&rows, RunType::Oracle, 0.5), None);
        assert_eq!(
            accuracy_at_fraction(&rows[2..], RunType::Router, 0.25),
            None
        );
        assert_eq!(accuracy_at_fraction(&rows[2..], RunType::Oracle, 0.5), None);
    }

    #[test]
    fn the_budget_comparison_names_where_the_order_fails() {
        let rows = [
            at(RunType::Draft, 0.0, 0.2),
            at(RunType::Target, 1.0, 0.6),
            at(RunType::Router, 0.3, 0.4),
            at(RunType::Router, 0.6, 0.5),
            at(RunType::Rsd, 0.3, 0.3),
            at(RunType::Rsd, 0.6, 0.55),
            at(RunType::Oracle, 0.3, 0.45),
            at(RunType::Oracle, 0.6, 0.58),
        ];
        let b = at_router_budgets(&rows, &[0.298, 0.45]);
        let fractions: Vec<f64> = b.iter().map(|b| b.fraction).collect();
        assert_eq!(
            fractions,
            [0.3, 0.45, 0.6],
            "the measured 0.3 stays, 0.298 goes"
        );
        assert_eq!(b[0].order(), "holds");
        assert_eq!(b[2].order(), "rsd > router");
        let broken = AtBudget {
            fraction: 0.3,
            rsd: Some(0.5),
            router: Some(0.4),
            oracle: Some(0.3),
        };
        assert_eq!(
            broken.order(),
            "router > oracle, rsd > router, rsd > oracle"
        );
        let partial = AtBudget {
            oracle: None,
            ..broken
        };
        assert_eq!(partial.order(), "rsd > router");
    }
}
