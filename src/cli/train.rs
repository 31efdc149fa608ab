//! `arbitrage train-router`: fit a router on `generate` step records and print its evaluation.

use std::path::PathBuf;

use anyhow::Result;
use arbitrage::eval::train::{self, TrainOptions};
use arbitrage::method::router::{KIND_FEATURES, RouterFile};
use clap::Args;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// steps.jsonl files written by `run --run-type generate` (comma-separated or repeated).
    #[arg(long, required = true, value_delimiter = ',')]
    data: Vec<PathBuf>,
    /// Where to write the router file (JSON).
    #[arg(long)]
    out: PathBuf,
    /// Label y = 1 when the advantage Δ exceeds this margin.
    #[arg(long, default_value_t = 0.0)]
    margin: f32,
    /// Fraction of problems held out for evaluation (split by problem, never by step).
    #[arg(long, default_value_t = 0.2)]
    held_out: f64,
    /// Keep every example instead of down-sampling the majority class.
    #[arg(long)]
    no_balance: bool,
    /// L2 penalty on the standardised weights (strong by default: step data sets are small).
    #[arg(long, default_value_t = 1.0)]
    alpha: f64,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// What Δ is: `prm` (the records' PRM scores), `outcome` (rollout labels from `arbitrage
    /// label`: y = 1 when only the target's step leads to the gold answer) or `value-head` (a
    /// trained head's scores of both steps; give --value-head).
    #[arg(long, default_value = "prm", value_parser = ["prm", "outcome", "value-head"])]
    advantage: String,
    /// Head file for `--advantage value-head`.
    #[arg(long, value_name = "FILE")]
    value_head: Option<PathBuf>,
    /// What a target token costs in draft tokens, for fitting the early decision saved at each
    /// budget point (docs/results.md measured 32 against 19 ms a token on the default pair).
    #[arg(long, default_value_t = 1.7)]
    early_cost_ratio: f64,
    /// What a draft token the target keeps on verification saves, in draft tokens: an early
    /// escalation forgoes the tokens verification would have kept beyond the glimpse. About 1 on
    /// the default pair (35 ms a target token less ~15 to read it in chunks, over ~21 ms a draft
    /// token); 0, the default until timed (docs/router.md), leaves them out as the shipped
    /// router's fit did.
    #[arg(long, default_value_t = 0.0)]
    early_kept_ratio: f64,
    /// Fit no early decisions.
    #[arg(long)]
    no_early: bool,
    /// Use only records that `arbitrage label` labelled (with `--advantage prm`, which needs no
    /// labels): routers trained on different advantages then share their held-out steps.
    #[arg(long)]
    labelled_only: bool,
    /// Also read the PRM's score of the draft step (the records' `prm_score`, from the PRM named
    /// in the metrics.json beside them): runs with this router score every step they route with
    /// that PRM, at RSD's price (issue 27's router that reads what the PRM reads).
    #[arg(long)]
    reads_prm: bool,
    /// With --reads-prm: read this value head's score of the draft step (from the labels' hidden
    /// states) instead of the records' PRM score, so records scored by an older head train a
    /// router for this one. Give the path as runs will give it (`--prm-head`, or the config's
    /// `[prm] head`): the router names its PRM by it.
    #[arg(long, value_name = "HEAD", requires = "reads_prm")]
    prm_head: Option<PathBuf>,
    /// With --prm-head: train only on problems that head was not trained on (its file lists
    /// them). On its own training problems the head is surer than on new ones, and a router fitted
    /// on those scores trusts them more than a run can.
    #[arg(long, requires = "prm_head")]
    prm_unseen_only: bool,
    /// With --prm-head: train and judge on that head's scores out of fold instead: the labelled
    /// problems fall into FOLDS folds, and each fold's steps are scored by a head fitted as
    /// `train-heads` fits one on the other folds' problems. The router keeps every problem and
    /// learns how far a head's score on a new problem goes; runs read the --prm-head head.
    #[arg(
        long,
        value_name = "FOLDS",
        requires = "prm_head",
        conflicts_with = "prm_unseen_only"
    )]
    prm_out_of_fold: Option<usize>,
    /// Held-out splits to evaluate on (seeds --seed, --seed + 1, …): the table then gives each
    /// row's mean and range. The router written is the first split's.
    #[arg(long, default_value_t = 1)]
    splits: usize,
    /// Router files to score on the same held-out steps, next to the new one (the router it
    /// replaces, say); rows are named by the file's stem.
    #[arg(long, value_name = "ROUTER", value_delimiter = ',')]
    compare: Vec<PathBuf>,
    /// Also fit weights of each set's own (data of two sets or more; a set with at least 40
    /// held-out steps): runs on that set score with them, every other run and `serve` with the
    /// pooled weights. For cues that point opposite ways on two sets.
    #[arg(long)]
    per_set_weights: bool,
}

/// A router to compare, named by its file's stem; it must read draft-side features.
fn compared_router(path: &std::path::Path) -> Result<(String, RouterFile)> {
    let file = RouterFile::load(path)?;
    if file.kind != KIND_FEATURES {
        anyhow::bail!(
            "--compare {}: a {:?} router reads a hidden state the step records do not carry; compare feature routers only",
            path.display(),
            file.kind
        );
    }
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    Ok((name, file))
}

pub fn run(args: TrainArgs) -> Result<()> {
    if args.splits == 0 {
        anyhow::bail!("--splits must be at least 1");
    }
    if !(0.0..1.0).contains(&args.held_out) {
        anyhow::bail!("--held-out must be in [0, 1), got {}", args.held_out);
    }
    let options = TrainOptions {
        margin: args.margin,
        held_out: args.held_out,
        balance: !args.no_balance,
        seed: args.seed,
        alpha: args.alpha,
        early_costs: (!args.no_early).then_some(train::EarlyCosts {
            target_token: args.early_cost_ratio,
            kept_token: args.early_kept_ratio,
        }),
        labelled_only: args.labelled_only,
        reads_prm: args.reads_prm,
        per_set_weights: args.per_set_weights,
        prm_unseen_only: args.prm_unseen_only,
        prm_folds: args.prm_out_of_fold.unwrap_or(0),
        prm_head: match &args.prm_head {
            Some(path) => Some((
                arbitrage::method::value_head::ValueHeadPrm::describe(path, "target"),
                arbitrage::method::value_head::HeadFile::load(path)?,
            )),
            None => None,
        },
        compare: args
            .compare
            .iter()
            .map(|path| compared_router(path))
            .collect::<Result<_>>()?,
    };
    if !(args.early_cost_ratio.is_finite() && args.early_cost_ratio > 0.0) {
        anyhow::bail!(
            "--early-cost-ratio must be a positive number, got {}",
            args.early_cost_ratio
        );
    }
    if !(args.early_kept_ratio.is_finite() && args.early_kept_ratio >= 0.0) {
        anyhow::bail!(
            "--early-kept-ratio must be a number ≥ 0, got {}",
            args.early_kept_ratio
        );
    }
    let advantage = match (args.advantage.as_str(), &args.value_head) {
        ("value-head", _) if args.reads_prm => anyhow::bail!(
            "--reads-prm reads the records' PRM scores; with --advantage value-head the draft's score would be another head's (use --advantage outcome)"
        ),
        ("value-head", Some(path)) => train::Advantage::ValueHead(Box::new(
            arbitrage::method::value_head::HeadFile::load(path)?,
        )),
        ("value-head", None) => anyhow::bail!("--advantage value-head needs --value-head FILE"),
        (_, Some(_)) => anyhow::bail!("--value-head applies to --advantage value-head"),
        ("outcome", None) => train::Advantage::Outcome,
        _ => train::Advantage::Prm,
    };
    let started = std::time::Instant::now();
    let trained = train::train_files(&args.data, &advantage, &options, args.splits, &args.out)
        .map_err(|e| anyhow::anyhow!(e))?;
    eprintln!("Δ: {}", advantage.describe());
    eprintln!(
        "{} examples ({} with Δ > {}), trained on {} (balanced: {}), evaluated on {} held-out steps, in {:.1}s",
        trained.examples,
        trained.positives,
        args.margin,
        trained.train_size,
        options.balance,
        trained.test_size,
        started.elapsed().as_secs_f64()
    );
    if trained.left_out > 0 {
        eprintln!(
            "  (and {} held-out steps left out: the --prm-head head or a compared router was trained on their problems)",
            trained.left_out
        );
    }
    for (name, other) in &options.compare {
        if let Some(caveat) = arbitrage::eval::trained::unlisted_caveat(name, &other.training) {
            eprintln!("  {caveat}");
        }
    }
    let a = trained.arithmetic;
    eprintln!(
        "arithmetic check: {} of {} draft steps have an equation it can evaluate, {} a wrong one",
        a.checked, a.steps, a.flagged
    );
    if a.flagged_labelled > 0 && a.rest_labelled > 0 {
        eprintln!(
            "  only the target's step leads to gold on {} of {} labelled steps with a wrong equation ({:.1}%), {} of {} others ({:.1}%)",
            a.flagged_helped,
            a.flagged_labelled,
            100.0 * a.flagged_helped as f64 / a.flagged_labelled as f64,
            a.rest_helped,
            a.rest_labelled,
            100.0 * a.rest_helped as f64 / a.rest_labelled as f64
        );
    }
    if args.splits > 1 {
        println!(
            "{:<60} {:>7} {:>8} {:>13} {:>8} {:>8}   (means over {} held-out splits)",
            "scorer", "n", "AUC", "AUC range", "acc y=0", "acc y=1", args.splits
        );
        for e in &trained.splits {
            println!(
                "{:<60} {:>7.1} {:>8.3} {:>6.3}–{:<6.3} {:>7.1}% {:>7.1}%",
                e.name,
                e.mean_n,
                e.mean_auc,
                e.min_auc,
                e.max_auc,
                100.0 * e.mean_accuracy_class0,
                100.0 * e.mean_accuracy_class1
            );
        }
    } else {
        println!(
            "{:<60} {:>6} {:>8} {:>8} {:>8} {:>8}",
            "scorer", "n", "rho", "AUC", "acc y=0", "acc y=1"
        );
        for e in &trained.evaluations {
            println!(
                "{:<60} {:>6} {:>8.3} {:>8.3} {:>7.1}% {:>7.1}%",
                e.name,
                e.n,
                e.spearman_rho,
                e.roc_auc,
                100.0 * e.accuracy_class0,
                100.0 * e.accuracy_class1
            );
        }
        println!(
            "{:<60} {:>6} {:>8.3} {:>8} {:>7.1}% {:>7.1}%",
            "paper, 2-class router (for reference)", "", 0.151, "", 70.0, 73.0
        );
    }

    if !trained.early.is_empty() {
        println!(
            "\nearly decisions (escalate on the glimpse; judged against the router's decisions on whole steps)"
        );
        println!(
            "{:>8} {:>9} {:>16} | {:>33} | {:>33} | {:>27}",
            "fraction",
            "threshold",
            "rule",
            "train: fired/agreed +added, saved",
            "held out: fired/agreed +added, saved",
            "context only, held out"
        );
        let outcome = |o: &Option<train::EarlyOutcome>| match o {
            Some(o) => format!(
                "{}/{} +{} of {}, {:+.1}",
                o.fired, o.agreed, o.added, o.steps, o.saved_per_step
            ),
            None => "–".to_owned(),
        };
        for r in trained.early.iter().filter(|r| {
            [0.15, 0.3, 0.45, 0.6]
                .iter()
                .any(|f| (r.target_fraction - f).abs() < 1e-9)
        }) {
            let rule = r
                .rule
                .as_ref()
                .map_or("none".to_owned(), ToString::to_string);
            println!(
                "{:>8.2} {:>9.3} {:>16} | {:>33} | {:>33} | {:>27}",
                r.target_fraction,
                r.threshold,
                rule,
                outcome(&r.train),
                outcome(&r.held_out),
                outcome(&Some(r.context_only))
            );
        }
        println!(
            "(saved: draft-token decodes per step, net of target tokens at {}× for early escalations the router would not have made and of verified draft tokens forgone at {}× on those it would; context only: escalate when the router escalated the previous step, before the draft writes)",
            args.early_cost_ratio, args.early_kept_ratio
        );
    }
    if !trained.file.budget_by_set.is_empty() {
        println!(
            "\nbudget curves by set (thresholds that send 15% / 30% / 45% / 60% of each set's held-out steps)"
        );
        let curves = std::iter::once(("pooled", &trained.file.budget)).chain(
            trained
                .file
                .budget_by_set
                .iter()
                .map(|(set, curve)| (set.as_str(), curve)),
        );
        for (set, curve) in curves {
            let at = |f: f64| {
                curve
                    .iter()
                    .find(|p| (p.target_fraction - f).abs() < 1e-9)
                    .map_or("–".to_owned(), |p| format!("{:.3}", p.threshold))
            };
            println!(
                "{set:<16} {} / {} / {} / {}",
                at(0.15),
                at(0.3),
                at(0.45),
                at(0.6)
            );
        }
    }
    if args.per_set_weights {
        let own: Vec<&str> = trained
            .file
            .weights_by_set
            .keys()
            .map(String::as_str)
            .collect();
        println!(
            "\nweights of their own: {} (other sets and serve: the pooled weights)",
            if own.is_empty() {
                "none (too little data of each set)".to_owned()
            } else {
                own.join(", ")
            }
        );
    }
    eprintln!("router written to {}", args.out.display());
    Ok(())
}
