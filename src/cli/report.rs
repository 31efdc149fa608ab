//! `arbitrage report DIR`: plots, HTML page and the matched-accuracy speed-up of a finished sweep.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arbitrage::reporting::cost::{CostTable, ModelledPoint, model_point};
use arbitrage::reporting::intervals::{self, PairedOutcomes};
use arbitrage::reporting::report::{
    XAxis, at_budgets, budget_check_sentence, judged_budget_sentence, markdown, percent, plot,
    read_point_results, router_over_rsd, write_html,
};
use arbitrage::reporting::sweep::{SweepRow, read_table, recompute_row};
use clap::Args;
use serde_json::Value;

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// A sweep's output directory (holding sweep.csv and one directory per point).
    dir: PathBuf,
    /// Title of the plots and the page (default: the directory's name).
    #[arg(long)]
    title: Option<String>,
    /// Take every point's latency from the latency model with this cost table (`arbitrage bench
    /// --costs`) instead of its clock: what each problem would have taken alone. For sweeps run
    /// with several problems in flight; on one run one at a time it checks the model. Given more
    /// than once (tables of one sitting, before and after the sweep), the costs are averaged.
    #[arg(long, value_name = "FILE")]
    costs: Vec<PathBuf>,
    /// Rebuild every point's figures from its `results.jsonl` (each problem's record) instead of
    /// reading them from `sweep.csv`: how committed evidence is checked against the tables in the
    /// docs (`scripts/check-results.py`). Points whose `sweep.csv` row differs are named.
    #[arg(long)]
    recompute: bool,
    /// Add 95% intervals to report.md: every figure and comparison again over 2,000 draws of the
    /// problems (the same draw for every point), so that a gap of a few points can be read
    /// against what another set of problems of the same kind could give. Measured latencies
    /// only (not with --costs).
    #[arg(long, conflicts_with = "costs")]
    intervals: bool,
}

pub fn run(args: ReportArgs) -> Result<()> {
    let table = args.dir.join("sweep.csv");
    if !table.is_file() {
        bail!(
            "{} not found: `arbitrage report` reads the directory `arbitrage sweep` wrote",
            table.display()
        );
    }
    let mut rows = read_table(&table)?;
    if rows.is_empty() {
        bail!("{} has no finished points yet", table.display());
    }
    if args.recompute {
        let recomputed = rows
            .iter()
            .map(|row| recompute_row(&args.dir, &row.point))
            .collect::<Result<Vec<_>, _>>()?;
        for (old, new) in rows.iter().zip(&recomputed) {
            let fields = differing_fields(old, new);
            if !fields.is_empty() {
                eprintln!(
                    "{}: sweep.csv differs from what results.jsonl gives in {}; using the latter",
                    old.point,
                    fields.join(", ")
                );
            }
        }
        rows = recomputed;
    }
    let mut latency_note = String::new();
    let tables = args
        .costs
        .iter()
        .map(|path| CostTable::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    if let Some(costs) = CostTable::average(&tables) {
        let points = rows
            .iter()
            .map(|row| model_point(&args.dir, row, &costs))
            .collect::<Result<Vec<_>, _>>()?;
        print_model_check(&points);
        let files = args
            .costs
            .iter()
            .map(|p| format!("`{}`", p.display()))
            .collect::<Vec<_>>()
            .join(" and ");
        let averaged = if tables.len() > 1 { ", averaged" } else { "" };
        latency_note = format!(
            "Latency: **modelled**, not measured: each problem's tokens written (and how deep), \
             reads, proposals verified and PRM reads per model, priced with the costs in {files} \
             ({}{averaged}), as if it had run alone.\n\n",
            costs.measured
        );
        rows = points.into_iter().map(|p| p.row).collect();
    }
    let title = args.title.clone().unwrap_or_else(|| {
        let name = args.dir.canonicalize().unwrap_or_else(|_| args.dir.clone());
        name.file_name()
            .map_or_else(|| "sweep".into(), |n| n.to_string_lossy().into_owned())
    });
    for (x, what) in [
        (XAxis::MeanLatency, "accuracy vs latency"),
        (XAxis::TargetFraction, "accuracy vs target steps"),
    ] {
        plot(&args.dir, &rows, x, &format!("{title}: {what}"))
            .with_context(|| format!("plotting {what}"))?;
    }
    let results = read_point_results(&args.dir, &rows)?;
    let found = args.intervals.then(|| {
        let paired = PairedOutcomes::new(rows.clone(), &results);
        intervals::intervals(&paired, intervals::RESAMPLES, intervals::SEED)
    });
    let intervals_text = found.as_ref().map(intervals::markdown).unwrap_or_default();
    let page = write_html(&args.dir, &title, &rows, &results, found.as_ref())?;
    let summary = args.dir.join("report.md");
    std::fs::write(&summary, latency_note + &markdown(&rows) + &intervals_text)
        .with_context(|| format!("cannot write {}", summary.display()))?;

    println!(
        "{:<16} {:>9} {:>9} {:>10} {:>8}",
        "point", "accuracy", "latency", "target st", "replayed"
    );
    for r in &rows {
        println!(
            "{:<16} {:>8.1}% {:>8.1}s {:>9.0}% {:>7.0}s",
            r.point,
            r.accuracy * 100.0,
            r.mean_latency_s,
            r.target_step_fraction * 100.0,
            r.replayed_latency_s
        );
    }
    let speedups = router_over_rsd(&rows);
    if speedups.is_empty() {
        println!("router over rsd: no accuracy reached by both curves");
    }
    for m in &speedups {
        let note = match (m.slow_clamped, m.fast_clamped) {
            (true, false) => " (at most: rsd has no point this low)",
            (false, true) => " (at least: router has no point this low)",
            _ => "",
        };
        println!(
            "router over rsd at {:.1}% accuracy: {:.2}× ({:.1} s vs {:.1} s){note}",
            m.accuracy * 100.0,
            m.speedup,
            m.fast_latency,
            m.slow_latency
        );
    }
    for b in at_budgets(&rows).iter().filter(|b| b.router.is_some()) {
        println!(
            "at {:.0}% target steps: rsd {}, router {}, oracle {} (oracle ≥ router ≥ rsd: {})",
            b.fraction * 100.0,
            percent(b.rsd),
            percent(b.router),
            percent(b.oracle),
            b.order()
        );
    }
    for sentence in [judged_budget_sentence(&rows), budget_check_sentence(&rows)]
        .into_iter()
        .flatten()
    {
        println!("{sentence}");
    }
    print!("{intervals_text}");
    for x in [XAxis::MeanLatency, XAxis::TargetFraction] {
        println!("{}", args.dir.join(format!("{}.png", x.stem())).display());
    }
    println!("{}", page.display());
    println!("{}", summary.display());
    Ok(())
}

/// Modelled against measured latency per point. The comparison means something for points whose
/// problems ran one at a time; the ratio column compares each point's latency relative to the
/// target's, modelled against measured, which is what a speed-up figure rests on.
fn print_model_check(points: &[ModelledPoint]) {
    let target = points
        .iter()
        .find(|p| p.row.run_type == arbitrage::method::policy::RunType::Target);
    println!(
        "{:<16} {:>9} {:>10} {:>10} {:>8} {:>14} {:>14}",
        "point", "in flight", "measured", "modelled", "error", "per problem", "vs target"
    );
    for p in points {
        let ratio_error = target
            .filter(|t| t.check.n > 0 && p.max_in_flight == 1 && t.max_in_flight == 1)
            .map_or("–".to_owned(), |t| {
                let measured = p.check.measured_mean_s / t.check.measured_mean_s;
                let modelled = p.check.modelled_mean_s / t.check.modelled_mean_s;
                format!("{:+.1}%", 100.0 * (modelled / measured - 1.0))
            });
        println!(
            "{:<16} {:>9} {:>9.2}s {:>9.2}s {:>+7.1}% {:>13.1}% {:>14}",
            p.row.point,
            p.max_in_flight,
            p.check.measured_mean_s,
            p.check.modelled_mean_s,
            100.0 * p.check.mean_error(),
            100.0 * p.check.median_problem_error,
            ratio_error
        );
    }
}

/// The fields in which two rows of one point differ, beyond the last bits of a float (a sum
/// taken in another order, as a run in rounds does).
fn differing_fields(a: &SweepRow, b: &SweepRow) -> Vec<String> {
    let (Ok(Value::Object(a)), Ok(Value::Object(b))) =
        (serde_json::to_value(a), serde_json::to_value(b))
    else {
        return vec!["(unreadable)".into()];
    };
    a.iter()
        .filter(|(key, x)| {
            let y = &b[key.as_str()];
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() > 1e-9 * x.abs().max(y.abs()).max(1.0),
                _ => *x != y,
            }
        })
        .map(|(key, x)| format!("{key} ({x} → {})", b[key.as_str()]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_differ_by_field_not_by_last_bits() {
        let row = |latency: f64, n: usize| SweepRow {
            point: "rsd-t0.6".into(),
            run_type: arbitrage::method::policy::RunType::Rsd,
            threshold: Some(0.6),
            n,
            accuracy: 0.5,
            mean_latency_s: latency,
            p50_latency_s: 1.0,
            p90_latency_s: 2.0,
            target_step_fraction: 0.5,
            acceptance_rate: None,
            draft_tokens: 1,
            target_tokens: 2,
            discarded_draft_tokens: 0,
            accepted_draft_tokens: 0,
            draft_s: 0.0,
            target_s: 0.0,
            scoring_s: 0.0,
            other_s: 0.0,
            replayed_latency_s: 0.0,
            errors: 0,
        };
        assert!(
            differing_fields(&row(12.440066349166669, 30), &row(12.440066349166667, 30)).is_empty()
        );
        assert_eq!(
            differing_fields(&row(12.4, 30), &row(12.5, 29)),
            ["mean_latency_s (12.4 → 12.5)", "n (30 → 29)"]
        );
    }
}
