//! Bootstrap intervals for a sweep's figures: how far each accuracy, latency and comparison of the
//! report could move on another draw of problems of the same kind.
//!
//! On 100 problems one problem is a point of accuracy, and the comparisons the report makes
//! (router against RSD at matched accuracy, oracle ≥ router ≥ rsd, the router at a budget) rest
//! on gaps of a few points. A sweep runs every point on the same problems, so the problems are
//! drawn together for every point (a paired bootstrap): a gap between two points keeps the
//! problems they share, which is what makes it readable at all.

use std::collections::{BTreeMap, BTreeSet};

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::eval::run::ResultRecord;
use crate::method::policy::RunType;
use crate::reporting::report::{
    JUDGED_BUDGET, at_budgets, escape, router_at_judged_budget, router_over_rsd,
};
use crate::reporting::sweep::{SweepRow, accuracy_at_fraction};
use crate::types::Author;

/// Draws of the problems behind every interval.
pub const RESAMPLES: usize = 2000;
/// The draws' seed: a report is the same every time it is made from the same outputs (the docs'
/// tables are checked by remaking them). `StdRng`'s stream is fixed within a `rand` version, which
/// Cargo.lock pins.
pub const SEED: u64 = 27;

/// What the report's figures read of one problem at one point.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProblemOutcome {
    pub correct: bool,
    pub latency_s: f64,
    pub steps: u64,
    pub target_steps: u64,
}

impl ProblemOutcome {
    /// Read as `compute_metrics` reads it: a failed problem counts as wrong (its record says so).
    pub fn of(r: &ResultRecord) -> ProblemOutcome {
        ProblemOutcome {
            correct: r.correct,
            latency_s: r.latency_s,
            steps: r.steps.len() as u64,
            target_steps: r.steps.iter().filter(|s| s.model == Author::Target).count() as u64,
        }
    }
}

/// Every point's outcomes on the problems that every point finished, in one order.
#[derive(Debug, Clone)]
pub struct PairedOutcomes {
    /// The problems' indices in the dataset.
    pub problems: Vec<usize>,
    /// The sweep's rows, in its order; a draw replaces their accuracy, latency and step share.
    pub rows: Vec<SweepRow>,
    /// `outcomes[point][k]` is point's outcome on `problems[k]`.
    pub outcomes: Vec<Vec<ProblemOutcome>>,
    /// Problems some point finished and another did not, left out of every draw.
    pub left_out: usize,
}

impl PairedOutcomes {
    /// From every point's results (in the rows' order), keeping the problems all points share.
    pub fn new(rows: Vec<SweepRow>, results: &[Vec<ResultRecord>]) -> PairedOutcomes {
        let by_point: Vec<BTreeMap<usize, ProblemOutcome>> = results
            .iter()
            .map(|records| {
                records
                    .iter()
                    .map(|r| (r.idx, ProblemOutcome::of(r)))
                    .collect()
            })
            .collect();
        let all: BTreeSet<usize> = by_point.iter().flat_map(|m| m.keys().copied()).collect();
        let problems: Vec<usize> = all
            .iter()
            .copied()
            .filter(|idx| by_point.iter().all(|m| m.contains_key(idx)))
            .collect();
        let outcomes = by_point
            .iter()
            .map(|m| problems.iter().map(|idx| m[idx]).collect())
            .collect();
        PairedOutcomes {
            left_out: all.len() - problems.len(),
            problems,
            rows,
            outcomes,
        }
    }

    /// The rows on a draw of problems (positions in `problems`, repeats allowed): accuracy, mean
    /// latency and target-step fraction as `compute_metrics` computes them on those problems.
    pub fn rows_on(&self, draw: &[usize]) -> Vec<SweepRow> {
        self.rows
            .iter()
            .zip(&self.outcomes)
            .map(|(row, outcomes)| {
                let (mut correct, mut latency, mut steps, mut target_steps) = (0u64, 0.0, 0, 0);
                for &k in draw {
                    let o = &outcomes[k];
                    correct += u64::from(o.correct);
                    latency += o.latency_s;
                    steps += o.steps;
                    target_steps += o.target_steps;
                }
                let n = draw.len().max(1) as f64;
                SweepRow {
                    n: draw.len(),
                    accuracy: correct as f64 / n,
                    mean_latency_s: latency / n,
                    target_step_fraction: if steps == 0 {
                        0.0
                    } else {
                        target_steps as f64 / steps as f64
                    },
                    ..row.clone()
                }
            })
            .collect()
    }
}

/// A figure on all the problems and the middle 95% of it over the draws.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
    /// Draws on which the figure does not exist (no accuracy both curves reach, say).
    pub undefined: usize,
}

impl Interval {
    /// `None` when the figure does not exist on all the problems or on any draw.
    fn of(estimate: Option<f64>, draws: &[Option<f64>]) -> Option<Interval> {
        let values: Vec<f64> = draws.iter().flatten().copied().collect();
        let estimate = estimate?;
        if values.is_empty() {
            return None;
        }
        Some(Interval {
            estimate,
            low: crate::stats::percentile(&values, 0.025),
            high: crate::stats::percentile(&values, 0.975),
            undefined: draws.len() - values.len(),
        })
    }
}

/// One point's figures with their intervals; the comparisons with the target are paired.
#[derive(Debug, Clone, PartialEq)]
pub struct PointIntervals {
    pub point: String,
    pub accuracy: Interval,
    pub mean_latency_s: Interval,
    /// Accuracy minus the target's (`None` for the target itself, or without one).
    pub accuracy_minus_target: Option<Interval>,
    /// Mean latency over the target's.
    pub latency_over_target: Option<Interval>,
}

/// How often an expected order holds at one share of target steps.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrderOdds {
    pub fraction: f64,
    /// Share of the draws, among those with both curves at this share, where router ≥ rsd.
    pub router_over_rsd: Option<f64>,
    /// Likewise oracle ≥ router.
    pub oracle_over_router: Option<f64>,
}

/// The report's figures with their intervals.
#[derive(Debug, Clone, PartialEq)]
pub struct Intervals {
    pub resamples: usize,
    pub seed: u64,
    pub problems: usize,
    pub left_out: usize,
    pub points: Vec<PointIntervals>,
    /// The router's lowest and highest speed-up over RSD at matched accuracy, over the accuracies
    /// both reach (the report's speed-up table, summed up by its two ends).
    pub speedup_lowest: Option<Interval>,
    pub speedup_highest: Option<Interval>,
    /// The router's accuracy at [`JUDGED_BUDGET`] and how far it is from the draft's accuracy to
    /// the target's.
    pub judged_accuracy: Option<Interval>,
    pub judged_share: Option<Interval>,
    pub order: Vec<OrderOdds>,
}

/// The figures of the report on all the problems, and their 95% intervals over `resamples` draws
/// of as many problems, with replacement, the same problems for every point.
pub fn intervals(paired: &PairedOutcomes, resamples: usize, seed: u64) -> Intervals {
    let n = paired.problems.len();
    let all: Vec<usize> = (0..n).collect();
    let full = paired.rows_on(&all);
    let mut rng = StdRng::seed_from_u64(seed);
    // Without problems there is nothing to draw: every figure is then `None`.
    let draws: Vec<Vec<SweepRow>> = if n == 0 {
        Vec::new()
    } else {
        (0..resamples)
            .map(|_| {
                let draw: Vec<usize> = (0..n).map(|_| rng.random_range(0..n)).collect();
                paired.rows_on(&draw)
            })
            .collect()
    };

    let target = |rows: &[SweepRow]| rows.iter().position(|r| r.run_type == RunType::Target);
    let per_point = |f: &dyn Fn(&[SweepRow], usize) -> Option<f64>, i: usize| {
        let values: Vec<Option<f64>> = draws.iter().map(|rows| f(rows, i)).collect();
        Interval::of(f(&full, i), &values)
    };
    let points = full
        .iter()
        .enumerate()
        .filter_map(|(i, row)| {
            let is_target = row.run_type == RunType::Target;
            let against_target = |f: fn(&SweepRow, &SweepRow) -> f64| {
                let g =
                    move |rows: &[SweepRow], i: usize| target(rows).map(|t| f(&rows[i], &rows[t]));
                if is_target { None } else { per_point(&g, i) }
            };
            Some(PointIntervals {
                point: row.point.clone(),
                accuracy: per_point(&|rows, i| Some(rows[i].accuracy), i)?,
                mean_latency_s: per_point(&|rows, i| Some(rows[i].mean_latency_s), i)?,
                accuracy_minus_target: against_target(|p, t| p.accuracy - t.accuracy),
                latency_over_target: against_target(|p, t| p.mean_latency_s / t.mean_latency_s),
            })
        })
        .collect();

    let figure = |f: &dyn Fn(&[SweepRow]) -> Option<f64>| {
        let values: Vec<Option<f64>> = draws.iter().map(|rows| f(rows)).collect();
        Interval::of(f(&full), &values)
    };
    // The speed-up table is made once per draw, for both its ends.
    let speedup_ends = |rows: &[SweepRow]| {
        let speedups = router_over_rsd(rows)
            .into_iter()
            .map(|m| m.speedup)
            .filter(|s| s.is_finite());
        speedups.fold(None, |ends: Option<(f64, f64)>, s| {
            Some(ends.map_or((s, s), |(lo, hi)| (lo.min(s), hi.max(s))))
        })
    };
    let ends: Vec<Option<(f64, f64)>> = draws.iter().map(|rows| speedup_ends(rows)).collect();
    let full_ends = speedup_ends(&full);
    let end = |pick: fn((f64, f64)) -> f64| {
        let values: Vec<Option<f64>> = ends.iter().map(|e| e.map(pick)).collect();
        Interval::of(full_ends.map(pick), &values)
    };
    let order = at_budgets(&full)
        .iter()
        .filter(|b| b.router.is_some())
        .map(|b| {
            let odds = |upper: RunType, lower: RunType| {
                let held: Vec<bool> = draws
                    .iter()
                    .filter_map(|rows| {
                        let u = accuracy_at_fraction(rows, upper, b.fraction)?;
                        let l = accuracy_at_fraction(rows, lower, b.fraction)?;
                        Some(u >= l)
                    })
                    .collect();
                (!held.is_empty())
                    .then(|| held.iter().filter(|&&h| h).count() as f64 / held.len() as f64)
            };
            OrderOdds {
                fraction: b.fraction,
                router_over_rsd: odds(RunType::Router, RunType::Rsd),
                oracle_over_router: odds(RunType::Oracle, RunType::Router),
            }
        })
        .collect();
    Intervals {
        resamples: draws.len(),
        seed,
        problems: n,
        left_out: paired.left_out,
        points,
        speedup_lowest: end(|(lo, _)| lo),
        speedup_highest: end(|(_, hi)| hi),
        // Also on draws where the baselines tie, where only the share has no value.
        judged_accuracy: figure(&|rows: &[SweepRow]| router_at_judged_budget(rows).map(|j| j.0)),
        judged_share: figure(&|rows: &[SweepRow]| router_at_judged_budget(rows).and_then(|j| j.1)),
        order,
    }
}

/// `estimate [low, high]` with `scale` and `decimals`, and the unit after the bracket.
fn show(i: &Interval, scale: f64, decimals: usize, unit: &str) -> String {
    let v = |x: f64| format!("{:.*}", decimals, x * scale).replace('-', "−");
    format!("{}{unit} [{}, {}]", v(i.estimate), v(i.low), v(i.high))
}

fn undefined_note(i: &Interval, resamples: usize) -> String {
    if i.undefined == 0 {
        String::new()
    } else {
        format!(" (undefined on {} of {resamples} draws)", i.undefined)
    }
}

/// The intervals' text, one form for Markdown and HTML: an opening line, the per-point table,
/// sentences, and the order table.
struct Rendered {
    opening: String,
    points: Vec<[String; 5]>,
    sentences: Vec<String>,
    order: Vec<[String; 3]>,
}

const POINT_HEADER: [&str; 5] = [
    "point",
    "accuracy",
    "mean latency (s)",
    "accuracy − target's (points)",
    "latency ÷ target's",
];
const ORDER_HEADER: [&str; 3] = [
    "target-step fraction",
    "draws with router ≥ rsd",
    "draws with oracle ≥ router",
];

fn render(iv: &Intervals) -> Rendered {
    let opening = format!(
        "Intervals: 95% paired bootstrap, {} draws of the {} problems every point finished (the same problems for every point; seed {}){}.",
        iv.resamples,
        iv.problems,
        iv.seed,
        if iv.left_out > 0 {
            format!(
                "; {} problems some point did not finish are left out, so estimates can differ from the table above",
                iv.left_out
            )
        } else {
            String::new()
        }
    );
    let or_dash = |i: &Option<Interval>, f: &dyn Fn(&Interval) -> String| {
        i.as_ref().map_or_else(|| "–".into(), f)
    };
    let points = iv
        .points
        .iter()
        .map(|p| {
            [
                p.point.clone(),
                show(&p.accuracy, 100.0, 1, "%"),
                show(&p.mean_latency_s, 1.0, 1, ""),
                or_dash(&p.accuracy_minus_target, &|i| show(i, 100.0, 1, "")),
                or_dash(&p.latency_over_target, &|i| show(i, 1.0, 2, "×")),
            ]
        })
        .collect();
    let mut sentences = Vec::new();
    if let (Some(low), Some(high)) = (&iv.speedup_lowest, &iv.speedup_highest) {
        sentences.push(format!(
            "Router over RSD at matched accuracy: lowest {}{}, highest {}{}.",
            show(low, 1.0, 2, "×"),
            undefined_note(low, iv.resamples),
            show(high, 1.0, 2, "×"),
            undefined_note(high, iv.resamples),
        ));
    }
    if let Some(accuracy) = &iv.judged_accuracy {
        let share = iv.judged_share.as_ref().map_or_else(String::new, |share| {
            format!(
                ", {} of the way from the draft's accuracy to the target's{}",
                show(share, 100.0, 0, "%"),
                undefined_note(share, iv.resamples)
            )
        });
        sentences.push(format!(
            "Router at {:.0}% of steps on the target: {}{share}.",
            JUDGED_BUDGET * 100.0,
            show(accuracy, 100.0, 1, "%"),
        ));
    }
    let odds = |o: Option<f64>| o.map_or_else(|| "–".into(), |o| format!("{:.0}%", o * 100.0));
    let order = iv
        .order
        .iter()
        .map(|o| {
            [
                format!("{:.2}", o.fraction),
                odds(o.router_over_rsd),
                odds(o.oracle_over_router),
            ]
        })
        .collect();
    Rendered {
        opening,
        points,
        sentences,
        order,
    }
}

fn markdown_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let line = |cells: &[&str]| format!("| {} |\n", cells.join(" | "));
    let mut s = line(&header);
    s.push_str(&format!("|{}\n", "---|".repeat(N)));
    for row in rows {
        s.push_str(&line(&row.each_ref().map(String::as_str)));
    }
    s
}

/// The intervals as Markdown, for the end of `report.md`.
pub fn markdown(iv: &Intervals) -> String {
    let r = render(iv);
    let mut s = format!("\n{}\n\n", r.opening);
    s.push_str(&markdown_table(POINT_HEADER, &r.points));
    for sentence in &r.sentences {
        s.push_str(&format!("\n{sentence}\n"));
    }
    if !r.order.is_empty() {
        s.push('\n');
        s.push_str(&markdown_table(ORDER_HEADER, &r.order));
    }
    s
}

fn html_table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let cells = |tag: &str, row: &[&str]| {
        row.iter()
            .map(|c| format!("<{tag}>{}</{tag}>", escape(c)))
            .collect::<String>()
    };
    let mut s = format!(
        "<table><thead><tr>{}</tr></thead><tbody>\n",
        cells("th", &header)
    );
    for row in rows {
        s.push_str(&format!(
            "<tr>{}</tr>\n",
            cells("td", &row.each_ref().map(String::as_str))
        ));
    }
    s.push_str("</tbody></table>\n");
    s
}

/// The intervals as a section of `report.html`.
pub fn html(iv: &Intervals) -> String {
    let r = render(iv);
    let mut s = format!(
        "<h2>How far the figures could move</h2>\n<p>{}</p>\n",
        escape(&r.opening)
    );
    s.push_str(&html_table(POINT_HEADER, &r.points));
    for sentence in &r.sentences {
        s.push_str(&format!("<p>{}</p>\n", escape(sentence)));
    }
    if !r.order.is_empty() {
        s.push_str(&html_table(ORDER_HEADER, &r.order));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eval::run::compute_metrics;
    use crate::eval::run::tests::record;

    /// One point's records on problems `0..n`: `correct(k)` says which it solves, problem `k`
    /// takes `latency + k / 100` seconds and has `target_steps` of its 4 steps by the target.
    fn point(
        run_type: RunType,
        n: usize,
        latency: f64,
        target_steps: usize,
        correct: impl Fn(usize) -> bool,
    ) -> Vec<ResultRecord> {
        let models: Vec<Author> = (0..4)
            .map(|s| {
                if s < target_steps {
                    Author::Target
                } else {
                    Author::Draft
                }
            })
            .collect();
        (0..n)
            .map(|k| ResultRecord {
                run_type,
                ..record(k, correct(k), latency + k as f64 * 0.01, &models)
            })
            .collect()
    }

    fn sweep(points: Vec<(&str, Vec<ResultRecord>)>) -> PairedOutcomes {
        let rows = points
            .iter()
            .map(|(name, records)| {
                let m = compute_metrics(records, records[0].run_type, 0.5, "t", 1.0, None, None);
                SweepRow::new(name, &m)
            })
            .collect();
        let results: Vec<Vec<ResultRecord>> = points.into_iter().map(|(_, r)| r).collect();
        PairedOutcomes::new(rows, &results)
    }

    #[test]
    fn all_problems_every_point_finished_give_the_metrics_figures() {
        let router = point(RunType::Router, 10, 3.0, 1, |k| k % 3 == 0);
        let mut target = point(RunType::Target, 11, 5.0, 4, |k| k % 2 == 0);
        target.swap(0, 7);
        let paired = sweep(vec![("target", target.clone()), ("router", router.clone())]);
        assert_eq!(paired.problems, (0..10).collect::<Vec<_>>());
        assert_eq!(paired.left_out, 1);
        let rows = paired.rows_on(&(0..10).collect::<Vec<_>>());
        target.retain(|r| r.idx < 10);
        for (row, records) in rows.iter().zip([&target, &router]) {
            let m = compute_metrics(records, records[0].run_type, 0.5, "t", 1.0, None, None);
            assert_eq!(row.n, m.n);
            assert_eq!(row.accuracy, m.accuracy);
            assert!((row.mean_latency_s - m.mean_latency_s).abs() < 1e-12);
            assert_eq!(row.target_step_fraction, m.target_step_fraction);
        }
    }

    #[test]
    fn an_accuracy_of_half_on_a_hundred_problems_is_about_ten_points_either_way() {
        let paired = sweep(vec![(
            "draft",
            point(RunType::Draft, 100, 2.0, 0, |k| k % 2 == 0),
        )]);
        let iv = intervals(&paired, RESAMPLES, SEED);
        let accuracy = iv.points[0].accuracy;
        assert_eq!(accuracy.estimate, 0.5);
        // The binomial standard error is 5 points: ±9.8 at 95%.
        assert!((0.38..=0.43).contains(&accuracy.low), "{accuracy:?}");
        assert!((0.57..=0.62).contains(&accuracy.high), "{accuracy:?}");
        assert_eq!(
            iv,
            intervals(&paired, RESAMPLES, SEED),
            "same seed, same figures"
        );
    }

    #[test]
    fn points_are_drawn_on_the_same_problems() {
        // The router solves what RSD solves and one problem more: a one-point lead that an
        // unpaired draw would reverse on about half the draws, and a paired one never does.
        let n = 100;
        let paired = sweep(vec![
            ("draft", point(RunType::Draft, n, 2.0, 0, |k| k < 10)),
            ("target", point(RunType::Target, n, 8.0, 4, |k| k < 60)),
            ("router-f0.3", point(RunType::Router, n, 3.0, 1, |k| k < 41)),
            ("rsd-t0.5", point(RunType::Rsd, n, 6.0, 1, |k| k < 40)),
        ]);
        let iv = intervals(&paired, RESAMPLES, SEED);
        let router = &iv.points[2];
        let rsd = &iv.points[3];
        assert!(router.accuracy.low < rsd.accuracy.estimate, "{router:?}");
        assert!(rsd.accuracy.high > router.accuracy.estimate, "{rsd:?}");
        // At the router's 25% of steps and at the judged 30%, where both curves interpolate
        // towards the target: the router's lead holds on every draw at both.
        let fractions: Vec<f64> = iv.order.iter().map(|o| o.fraction).collect();
        assert_eq!(fractions, [0.25, 0.3]);
        assert!(iv.order.iter().all(|o| o.router_over_rsd == Some(1.0)));
        assert!(iv.order.iter().all(|o| o.oracle_over_router.is_none()));
        let gap = router.accuracy_minus_target.unwrap();
        assert!((gap.estimate + 0.19).abs() < 1e-12, "{gap:?}");
        assert!(gap.high < 0.0 && gap.low > -0.35, "{gap:?}");
        // Both curves reach RSD's 40%: RSD at its only point, the router at its cheapest.
        let lowest = iv.speedup_lowest.unwrap();
        assert!((lowest.estimate - 6.495 / 3.495).abs() < 1e-9, "{lowest:?}");
        assert!(iv.points.iter().all(|p| p.accuracy.undefined == 0));
        let judged = iv.judged_share.unwrap();
        assert!(judged.low < judged.estimate && judged.estimate < judged.high);
        let text = markdown(&iv);
        assert!(text.contains("| target | 60.0% ["), "{text}");
        assert!(text.contains("| router-f0.3 | 41.0% ["), "{text}");
        assert!(text.contains("−19.0 ["), "{text}");
        assert!(text.contains("| 0.25 | 100% | – |"), "{text}");
        let page = html(&iv);
        assert!(
            page.contains("<tr><td>router-f0.3</td><td>41.0% ["),
            "{page}"
        );
        assert!(
            page.contains("<td>0.25</td><td>100%</td><td>–</td>"),
            "{page}"
        );
    }

    #[test]
    fn no_problems_in_common_gives_no_figures() {
        let mut rsd = point(RunType::Rsd, 3, 1.0, 1, |_| true);
        for r in &mut rsd {
            r.idx += 10;
        }
        let paired = sweep(vec![
            ("draft", point(RunType::Draft, 3, 1.0, 0, |_| true)),
            ("rsd", rsd),
        ]);
        let iv = intervals(&paired, 50, SEED);
        assert_eq!((iv.problems, iv.left_out, iv.resamples), (0, 6, 0));
        assert!(iv.points.is_empty() && iv.speedup_lowest.is_none());
    }
}
