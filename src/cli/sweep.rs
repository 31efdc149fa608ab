//! `arbitrage sweep`: the grid of run types × thresholds, each point an `arbitrage run` in its own
//! directory (so each resumes on its own), sharing one step cache, then `sweep.csv`. The points
//! run in this process with `arbitrage run`'s own code and options, and share loaded models
//! between consecutive points that need the same roles.

use std::ffi::OsString;
use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arbitrage::eval::run::Metrics;
use arbitrage::method::policy::RunType;
use arbitrage::reporting::sweep::{Grid, Point, Setting, SweepRow, round_slices, write_table};
use arbitrage::setup::ModelPool;
use clap::Args;

use super::run::Finished;

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Configuration file (TOML); without it the embedded default models are used.
    #[arg(long, env = "ARBITRAGE_CONFIG")]
    config: Option<PathBuf>,
    /// Embedded PRM for every point: target-logprob, target-judge or value-head.
    #[arg(long, value_parser = ["target-logprob", "target-judge", "value-head"])]
    prm: Option<String>,
    /// Head file of `--prm value-head`.
    #[arg(long, value_name = "FILE")]
    prm_head: Option<PathBuf>,
    /// Run types to sweep (rsd, oracle, router), comma-separated; `--run-types` with no value
    /// sweeps none (the baselines alone).
    #[arg(long, value_delimiter = ',', num_args = 0.., default_value = "rsd,router")]
    run_types: Vec<RunType>,
    /// Thresholds for every swept run type without its own list, comma-separated.
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    thresholds: Vec<f64>,
    /// Thresholds for rsd (PRM score of the draft step, in [0, 1]).
    #[arg(long, value_delimiter = ',')]
    rsd_thresholds: Option<Vec<f64>>,
    /// Thresholds for oracle (advantage of the target's step, in [-1, 1]).
    #[arg(long, value_delimiter = ',', allow_negative_numbers = true)]
    oracle_thresholds: Option<Vec<f64>>,
    /// Thresholds for router (ŷ, in [0, 1]).
    #[arg(long, value_delimiter = ',')]
    router_thresholds: Option<Vec<f64>>,
    /// Router points set by target-step fraction instead, read from the router file's budget table.
    #[arg(long, value_delimiter = ',')]
    router_fractions: Vec<f64>,
    /// Baselines run once each.
    #[arg(long, value_delimiter = ',', default_value = "draft,target")]
    baselines: Vec<RunType>,
    /// Skip the baselines.
    #[arg(long, conflicts_with = "baselines")]
    no_baselines: bool,
    /// Dataset name (gsm8k, math500, ...) or a .jsonl file.
    #[arg(long)]
    dataset: String,
    /// Problems per point (after --start/--end).
    #[arg(long)]
    limit: Option<usize>,
    /// First problem index.
    #[arg(long)]
    start: Option<usize>,
    /// One past the last problem index.
    #[arg(long)]
    end: Option<usize>,
    /// Directory holding NAME/test.jsonl files.
    #[arg(long, env = "ARBITRAGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Steps per problem (default from the config: 100).
    #[arg(long)]
    max_steps: Option<u32>,
    /// Tokens per problem over all steps (default from the config: 4096).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// Question field of a custom .jsonl file.
    #[arg(long)]
    question_field: Option<String>,
    /// Answer field of a custom .jsonl file.
    #[arg(long)]
    answer_field: Option<String>,
    /// Router file (overrides the config's).
    #[arg(long)]
    router: Option<PathBuf>,
    /// Where the points and sweep.csv go (default runs/sweeps/DATASET).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Rerun every point from scratch (the step cache is kept; add --no-cache for fresh timings).
    #[arg(long)]
    overwrite: bool,
    /// Step cache file (default OUTPUT_DIR/step-cache.redb).
    #[arg(long, value_name = "FILE", conflicts_with = "no_cache")]
    cache: Option<PathBuf>,
    /// Compute every step afresh: latencies are then all measured in this sweep.
    #[arg(long)]
    no_cache: bool,
    /// Run the problems in this many consecutive slices, every point on a slice before the next
    /// (with --no-cache, for latencies compared side by side on a machine whose speed drifts).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    rounds: u32,
    /// Further `arbitrage run` options for every point, after `--` (e.g. `-- --target-url
    /// http://gpu:8001/v1 --target-model target --concurrency 8`).
    #[arg(last = true, value_name = "RUN_OPTIONS")]
    run_args: Vec<String>,
}

pub fn run(args: SweepArgs) -> Result<()> {
    let grid = Grid {
        baselines: if args.no_baselines {
            Vec::new()
        } else {
            args.baselines.clone()
        },
        run_types: args.run_types.clone(),
        thresholds: args.thresholds.clone(),
        rsd_thresholds: args.rsd_thresholds.clone(),
        oracle_thresholds: args.oracle_thresholds.clone(),
        router_thresholds: args.router_thresholds.clone(),
        router_fractions: args.router_fractions.clone(),
    };
    let points = grid.points()?;
    let dataset_label = Path::new(&args.dataset).file_stem().map_or_else(
        || args.dataset.clone(),
        |s| s.to_string_lossy().into_owned(),
    );
    // Checked before anything is written: a bad range leaves no output directory behind.
    let (rounds_start, slices) = if args.rounds > 1 {
        let dataset = super::resolve_dataset(
            &args.dataset,
            args.data_dir.as_deref(),
            args.question_field.as_deref(),
            args.answer_field.as_deref(),
        )?;
        let range = super::problem_range(
            dataset.load()?.len(),
            args.start.unwrap_or(0),
            args.end,
            args.limit,
        )?;
        (
            range.start,
            round_slices(range.start, range.end, args.rounds as usize),
        )
    } else {
        (0, Vec::new())
    };
    let out = args
        .output_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/sweeps").join(&dataset_label));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let _lock = arbitrage::eval::run::lock_dir(&out)?;
    let cache = (!args.no_cache).then(|| {
        args.cache
            .clone()
            .unwrap_or_else(|| out.join("step-cache.redb"))
    });
    // Points run in this process, one after another, on models kept between points that need
    // the same roles.
    let interrupted = super::run::interrupt_flag()?;
    let mut pool = ModelPool::default();
    let table = out.join("sweep.csv");

    eprintln!(
        "sweep: {} points on {} → {}{}",
        points.len(),
        args.dataset,
        out.display(),
        match &cache {
            Some(c) => format!(" (step cache {})", c.display()),
            None => " (no step cache: every latency measured now)".into(),
        }
    );
    let rounds: Vec<Option<Range<usize>>> = if slices.is_empty() {
        vec![None]
    } else {
        slices.into_iter().map(Some).collect()
    };
    let mut rows: Vec<Option<SweepRow>> = vec![None; points.len()];
    for (r, slice) in rounds.iter().enumerate() {
        if let Some(slice) = slice {
            eprintln!(
                "round {}/{}: problems {}..{}",
                r + 1,
                rounds.len(),
                slice.start,
                slice.end
            );
        }
        for (i, point) in points.iter().enumerate() {
            let dir = out.join(point.dir_name());
            eprintln!("[{}/{}] {point}", i + 1, points.len());
            let mut argv: Vec<OsString> = vec!["run".into()];
            push(&mut argv, ["--run-type", point.run_type.name()]);
            push(&mut argv, ["--dataset", &args.dataset]);
            argv.push("--output-dir".into());
            argv.push(dir.clone().into());
            match point.setting {
                Setting::None => {}
                Setting::Threshold(t) => push(&mut argv, ["--threshold", &t.to_string()]),
                Setting::TargetFraction(f) => {
                    push(&mut argv, ["--target-fraction", &f.to_string()]);
                }
            }
            // A round asks for every problem up to the end of its slice: those of earlier rounds
            // are already finished and skipped, and the point's metrics cover them all. Only the
            // first round may start a point afresh.
            let upto = slice.as_ref().map(|s| rounds_start..s.end);
            forward(&mut argv, &args, cache.as_deref(), upto.as_ref(), r == 0);
            let point_args = super::run::point_args(&argv)?;
            let finished = super::run::run_point(&point_args, &mut pool, &interrupted)
                .with_context(|| {
                    format!("point {point} failed; its directory is {}", dir.display())
                })?;
            if let Finished::Interrupted = finished {
                // The point saved what it finished; the sweep stops with it.
                write_table(&table, &finished_rows(&rows))?;
                eprintln!("interrupted: run the same command again to resume");
                std::process::exit(130);
            }
            let done = row(point, &dir)?;
            eprintln!(
                "  {point}: accuracy {:.1}%, mean latency {:.1} s, target steps {:.0}% ({} problems)",
                done.accuracy * 100.0,
                done.mean_latency_s,
                done.target_step_fraction * 100.0,
                done.n
            );
            rows[i] = Some(done);
            write_table(&table, &finished_rows(&rows))?;
        }
    }
    eprintln!(
        "plots and the HTML page: arbitrage report {}",
        out.display()
    );
    println!("{}", table.display());
    Ok(())
}

/// The rows of the points that have run so far, in grid order.
fn finished_rows(rows: &[Option<SweepRow>]) -> Vec<SweepRow> {
    rows.iter().flatten().cloned().collect()
}

/// Appends flags and their values to an argument list.
fn push<const N: usize>(argv: &mut Vec<OsString>, items: [&str; N]) {
    argv.extend(items.iter().map(OsString::from));
}

/// The `arbitrage run` options every point shares; `range` replaces the problem range in a
/// round, and `--overwrite` only reaches a point's first run.
fn forward(
    argv: &mut Vec<OsString>,
    args: &SweepArgs,
    cache: Option<&Path>,
    range: Option<&Range<usize>>,
    first_round: bool,
) {
    if let Some(c) = &args.config {
        argv.push("--config".into());
        argv.push(c.into());
    }
    let (limit, start, end) = match range {
        Some(s) => (None, Some(s.start), Some(s.end)),
        None => (args.limit, args.start, args.end),
    };
    for (flag, value) in [
        ("--limit", limit.map(|v| v.to_string())),
        ("--start", start.map(|v| v.to_string())),
        ("--end", end.map(|v| v.to_string())),
        ("--max-steps", args.max_steps.map(|v| v.to_string())),
        ("--max-tokens", args.max_tokens.map(|v| v.to_string())),
        ("--question-field", args.question_field.clone()),
        ("--answer-field", args.answer_field.clone()),
        ("--prm", args.prm.clone()),
    ] {
        if let Some(v) = value {
            push(argv, [flag, &v]);
        }
    }
    for (flag, path) in [
        ("--data-dir", args.data_dir.as_deref()),
        ("--router", args.router.as_deref()),
        ("--prm-head", args.prm_head.as_deref()),
        ("--cache", cache),
    ] {
        if let Some(p) = path {
            argv.push(flag.into());
            argv.push(p.into());
        }
    }
    if args.overwrite && first_round {
        argv.push("--overwrite".into());
    }
    argv.extend(args.run_args.iter().map(OsString::from));
}

fn row(point: &Point, dir: &Path) -> Result<SweepRow> {
    let path = dir.join("metrics.json");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let metrics: Metrics =
        serde_json::from_str(&text).with_context(|| format!("invalid {}", path.display()))?;
    Ok(SweepRow::new(&point.dir_name(), &metrics))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        sweep: SweepArgs,
    }

    fn run_types(argv: &[&str]) -> Vec<RunType> {
        let argv = ["sweep", "--dataset", "gsm8k"].iter().chain(argv);
        Cli::try_parse_from(argv).unwrap().sweep.run_types
    }

    #[test]
    fn run_types_default_to_rsd_and_router_and_may_be_none() {
        assert_eq!(run_types(&[]), [RunType::Rsd, RunType::Router]);
        assert_eq!(run_types(&["--run-types", "oracle"]), [RunType::Oracle]);
        assert!(run_types(&["--run-types"]).is_empty());
        assert!(run_types(&["--run-types", "--start", "5"]).is_empty());
    }
}
