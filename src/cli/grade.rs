//! `arbitrage grade`: answer equivalence for pairs, or re-grading a finished run.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arbitrage::eval::run::{self, RunDir};
use arbitrage_grader::{GradeOptions, ListOrder, Tolerance, Units};
use clap::Args;
use serde::Deserialize;

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["pairs", "results"])))]
pub struct GradeArgs {
    /// JSONL of {"gold": ..., "pred": ...}; prints one verdict per line.
    #[arg(long)]
    pairs: Option<PathBuf>,
    /// A run's results.jsonl: re-grade every problem and rewrite it and metrics.json.
    #[arg(long)]
    results: Option<PathBuf>,
    #[command(flatten)]
    conventions: ConventionArgs,
}

/// The grading conventions where evaluation suites differ (docs/grading.md has the table).
#[derive(Debug, Args)]
pub struct ConventionArgs {
    /// Numeric tolerance: `exact`; `rounded` (a decimal of 2+ places also equals a
    /// non-terminating value it rounds to); `relative[:REL]` (any numbers within REL, 1e-4 if
    /// not given, as Qwen2.5-Math's grader).
    #[arg(long, env = "ARBITRAGE_GRADE_TOLERANCE", default_value = "rounded")]
    tolerance: Tolerance,
    /// Units after numbers: `ignore` (dropped), or `must-match` (the same unit words on both
    /// sides).
    #[arg(long, env = "ARBITRAGE_GRADE_UNITS", default_value = "ignore")]
    units: Units,
    /// Plain comma lists (`10, 4, -2`): `ordered` like a tuple, or `any` as multisets.
    #[arg(long, env = "ARBITRAGE_GRADE_LIST_ORDER", default_value = "ordered")]
    list_order: ListOrder,
}

impl ConventionArgs {
    fn options(&self) -> GradeOptions {
        GradeOptions {
            tolerance: self.tolerance,
            units: self.units,
            list_order: self.list_order,
        }
    }
}

#[derive(Deserialize)]
struct Pair {
    gold: String,
    pred: String,
}

pub fn run(args: GradeArgs) -> Result<()> {
    let options = args.conventions.options();
    eprintln!(
        "grading with tolerance {}, units {}, list order {}",
        options.tolerance, options.units, options.list_order
    );
    if let Some(path) = args.pairs {
        return grade_pairs(&path, &options);
    }
    let Some(path) = args.results else {
        bail!("give --pairs or --results");
    };
    regrade(&path, &options)
}

fn grade_pairs(path: &PathBuf, options: &GradeOptions) -> Result<()> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let pair: Pair = serde_json::from_str(&line).with_context(|| {
            format!(
                "{}:{}: expected {{\"gold\": string, \"pred\": string}}",
                path.display(),
                n + 1
            )
        })?;
        let verdict = arbitrage_grader::grade_with(&pair.gold, &pair.pred, options);
        serde_json::to_writer(&mut out, &verdict)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn regrade(path: &PathBuf, options: &GradeOptions) -> Result<()> {
    let mut results = run::read_results(path)?;
    if results.is_empty() {
        bail!("{} holds no results", path.display());
    }
    let mut changed = 0;
    for r in &mut results {
        let text: String = r.steps.iter().map(|s| s.text.as_str()).collect();
        let verdict = arbitrage_grader::grade_with(&r.gt, &text, options);
        if verdict.equal != r.correct {
            changed += 1;
        }
        r.correct = verdict.equal && r.error.is_none();
        r.pred = verdict.pred;
    }
    let dir = path
        .parent()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    let old: Option<run::Metrics> = std::fs::read_to_string(dir.join("metrics.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let tmp = path.with_extension("jsonl.tmp");
    let mut text = String::new();
    for r in &results {
        text.push_str(&serde_json::to_string(r)?);
        text.push('\n');
    }
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot replace {}", path.display()))?;
    let first = &results[0];
    let metrics = run::compute_metrics(
        &results,
        first.run_type,
        first.threshold,
        old.as_ref().map_or("unknown", |m| m.dataset.as_str()),
        old.as_ref().map_or(0.0, |m| m.wall_time_s),
        old.as_ref().and_then(|m| m.prm.clone()),
        old.as_ref().and_then(|m| m.router.clone()),
    );
    let rundir = RunDir::open(&dir, first.run_type, first.threshold, false)?;
    rundir.write_metrics(&metrics)?;
    eprintln!(
        "re-graded {} problems ({changed} verdicts changed); accuracy {:.4}",
        results.len(),
        metrics.accuracy
    );
    println!("{}", serde_json::to_string_pretty(&metrics)?);
    Ok(())
}
