//! `arbitrage train-heads`: train the value-head PRM and the hidden-state router probe on a
//! labelled `generate` run, and print how every PRM and router input agrees with the outcome labels
//! on held-out problems.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arbitrage::eval::heads::{self, HeadsReport};
use clap::Args;

#[derive(Debug, Args)]
pub struct HeadsArgs {
    /// `generate` run directories labelled by `arbitrage label` (comma-separated or repeated;
    /// several data runs can cover disjoint problem ranges in parallel).
    #[arg(long, required = true, value_delimiter = ',')]
    run: Vec<PathBuf>,
    /// Where value-head.json, router-probe.json and heads-report.json go.
    #[arg(long)]
    out_dir: PathBuf,
    /// Fraction of problems held out for evaluation (split by problem).
    #[arg(long, default_value_t = 0.3)]
    held_out: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Draft and target weights file names, recorded in the heads (default: from the run's
    /// configuration is not known here, so name them).
    #[arg(long, default_value = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")]
    draft_model: String,
    #[arg(long, default_value = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf")]
    target_model: String,
    /// A value head to score on the same held-out steps, next to the new one (the head a retrain
    /// replaces, say); it must read the same target's hidden states.
    #[arg(long, value_name = "HEAD")]
    compare_head: Option<PathBuf>,
}

pub fn run(args: HeadsArgs) -> Result<()> {
    if !(0.0..1.0).contains(&args.held_out) || args.held_out == 0.0 {
        bail!("--held-out must be in (0, 1), got {}", args.held_out);
    }
    let mut problems = Vec::new();
    let mut seen: std::collections::HashMap<(Option<String>, usize), &PathBuf> =
        std::collections::HashMap::new();
    for run in &args.run {
        for p in heads::read_labelled(run)? {
            // The same problem in two runs would sit on both sides of the held-out split.
            // Problems of different sets may share an index.
            if let Some(other) = seen.insert((p.set.clone(), p.idx), run) {
                bail!(
                    "problem {} is in both {} and {}: give runs over disjoint problems",
                    p.idx,
                    other.display(),
                    run.display()
                );
            }
            problems.push(p);
        }
    }
    let data = args
        .run
        .iter()
        .map(|r| r.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if problems.len() < 4 {
        bail!(
            "{data} has {} fully labelled problems; run `arbitrage label --run DIR` first",
            problems.len(),
        );
    }
    let compare = match &args.compare_head {
        Some(path) => Some((
            path.file_stem().map_or_else(
                || path.display().to_string(),
                |s| s.to_string_lossy().into_owned(),
            ),
            arbitrage::method::value_head::HeadFile::load(path)?,
        )),
        None => None,
    };
    if let Some(caveat) = compare
        .as_ref()
        .and_then(|(name, head)| arbitrage::eval::trained::unlisted_caveat(name, &head.training))
    {
        eprintln!("{caveat}");
    }
    let trained = heads::train_heads(
        &data,
        &problems,
        args.held_out,
        args.seed,
        (&args.draft_model, &args.target_model),
        compare.as_ref().map(|(name, head)| (name.as_str(), head)),
    )?;
    std::fs::create_dir_all(&args.out_dir)
        .with_context(|| format!("creating {}", args.out_dir.display()))?;
    let (vh_path, probe_path, report_path) = heads::default_paths(&args.out_dir);
    if let Some(h) = &trained.value_head {
        h.save(&vh_path)?;
    }
    if let Some(h) = &trained.router_probe {
        h.save(&probe_path)?;
    }
    std::fs::write(
        &report_path,
        serde_json::to_string_pretty(&trained.report)? + "\n",
    )
    .with_context(|| format!("writing {}", report_path.display()))?;
    print_report(&trained.report);
    for (path, written) in [
        (&vh_path, trained.value_head.is_some()),
        (&probe_path, trained.router_probe.is_some()),
        (&report_path, true),
    ] {
        if written {
            eprintln!("wrote {}", path.display());
        }
    }
    Ok(())
}

fn print_report(r: &HeadsReport) {
    println!(
        "data {}: {} train problems ({} records), {} held out ({} records)",
        r.data, r.train_problems, r.train_records, r.test_problems, r.test_records
    );
    if r.left_out_problems > 0 {
        println!(
            "  (and {} held-out problems left out: the compared head was trained on them)",
            r.left_out_problems
        );
    }
    println!(
        "labels: draft step leads to gold {:.1}%, target step {:.1}%, only the target's {:.1}%",
        100.0 * r.draft_correct_rate,
        100.0 * r.target_correct_rate,
        100.0 * r.escalation_helps_rate
    );
    println!();
    println!(
        "{:<64} {:>6} {:>8} {:>6} {:>8} {:>8} | Δ>0 when: both ok / only target / only draft / both wrong",
        "PRM", "steps", "step AUC", "traj", "AUC min", "AUC last"
    );
    for p in &r.prms {
        let s = |x: heads::Share| format!("{:.0}% ({})", 100.0 * x.delta_positive, x.n);
        println!(
            "{:<64} {:>6} {:>8.3} {:>6} {:>8.3} {:>8.3} | {} / {} / {} / {}",
            p.name,
            p.steps,
            p.step_auc,
            p.trajectories,
            p.trajectory_auc_min,
            p.trajectory_auc_last,
            s(p.both_correct),
            s(p.only_target_correct),
            s(p.only_draft_correct),
            s(p.both_wrong)
        );
    }
    println!();
    println!(
        "{:<72} {:>5} {:>4} {:>8} {:>7} {:>7} {:>7}",
        "router input (y = only the target's step leads to gold)",
        "n",
        "y=1",
        "ρ",
        "AUC",
        "acc y=0",
        "acc y=1"
    );
    for x in &r.routers {
        println!(
            "{:<72} {:>5} {:>4} {:>8.3} {:>7.3} {:>6.1}% {:>6.1}%",
            x.name,
            x.n,
            x.positives,
            x.spearman_rho,
            x.roc_auc,
            100.0 * x.accuracy_class0,
            100.0 * x.accuracy_class1
        );
    }
}
