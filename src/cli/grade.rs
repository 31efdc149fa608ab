//! `arbitrage grade`: answer equivalence for pairs, or re-grading a finished run.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arbitrage::run::{self, RunDir};
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
}

#[derive(Deserialize)]
struct Pair {
    gold: String,
    pred: String,
}

pub fn run(args: GradeArgs) -> Result<()> {
    if let Some(path) = args.pairs {
        return grade_pairs(&path);
    }
    let path = args.results.expect("clap requires one input");
    regrade(&path)
}

fn grade_pairs(path: &PathBuf) -> Result<()> {
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
        let verdict = arbitrage_grader::grade(&pair.gold, &pair.pred);
        serde_json::to_writer(&mut out, &verdict)?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

fn regrade(path: &PathBuf) -> Result<()> {
    let mut results = run::read_results(path)?;
    if results.is_empty() {
        bail!("{} holds no results", path.display());
    }
    let mut changed = 0;
    for r in &mut results {
        let text: String = r.steps.iter().map(|s| s.text.as_str()).collect();
        let verdict = arbitrage_grader::grade(&r.gt, &text);
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
