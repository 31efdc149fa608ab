//! `arbitrage run`: one run type over a dataset, with results, metrics and a progress bar.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use arbitrage::backend::StepScorer;
use arbitrage::config::{ModelConfig, PrmConfig};
use arbitrage::engines::step_cache::{CachedGenerator, CachedScorer, StepCache};
use arbitrage::eval::run::{self, Metrics, ResultRecord, RunDir, RunEvents, RunSpec};
use arbitrage::method::policy::RunType;
use arbitrage::method::speculate::{Models, TimeSplit, TraceStep};
use arbitrage::setup::{EarlyRequest, ModelPool, RouterSource, RuleRequest, Setup, SetupError};
use arbitrage::types::Author;
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::ConfigArgs;

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Decision rule: draft, target, rsd, oracle, router or generate.
    #[arg(long)]
    run_type: RunType,
    /// Dataset name (gsm8k, math500, ...) or a .jsonl file.
    #[arg(long)]
    dataset: String,
    /// Threshold of the rule (rsd: PRM score; oracle: advantage; router: ŷ). Defaults: rsd 0.7,
    /// oracle 0, router the router file's default.
    #[arg(long, alias = "prm-threshold")]
    threshold: Option<f64>,
    /// Router only: take the threshold from the router file's budget table, which sent about this
    /// fraction of steps to the target when held-out problems were replayed with its own
    /// decisions (the run's set's curve where the router file has one for that set).
    #[arg(long, conflicts_with = "threshold")]
    target_fraction: Option<f64>,
    /// Run at most this many problems (after --start/--end).
    #[arg(long)]
    limit: Option<usize>,
    /// First problem index.
    #[arg(long, default_value_t = 0)]
    start: usize,
    /// One past the last problem index.
    #[arg(long)]
    end: Option<usize>,
    /// Where results.jsonl and metrics.json go (default runs/DATASET/RUN_TYPE[-tTHRESHOLD]).
    #[arg(long)]
    output_dir: Option<PathBuf>,
    /// Start afresh instead of resuming.
    #[arg(long)]
    overwrite: bool,
    /// Directory holding NAME/test.jsonl files.
    #[arg(long, env = "ARBITRAGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Steps per problem (default from the config: 100).
    #[arg(long)]
    max_steps: Option<u32>,
    /// Tokens per problem over all steps (default from the config: 4096).
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The target writes an escalated step from scratch instead of first keeping the draft's
    /// tokens that equal its own greedy choice (same text, more target decoding; for comparison).
    #[arg(long)]
    no_verify: bool,
    /// `router`: decide on a glimpse of each draft step, before the draft finishes it: escalate at
    /// once when the entropy (nats) of any of its first `--early-tokens` tokens reaches this. Kept
    /// glimpses are written on by the draft and routed as usual. Without it, `--target-fraction`
    /// uses the early rule the router file trained for that budget point, if it has one.
    #[arg(long, value_name = "NATS", allow_negative_numbers = true)]
    early_entropy: Option<f32>,
    /// Use no early decision, not even the router file's.
    #[arg(long, conflicts_with = "early_entropy")]
    no_early: bool,
    /// Draft tokens an early decision reads (with --early-entropy).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    early_tokens: u32,
    /// Also print metrics.json on stdout at the end.
    #[arg(long)]
    json: bool,
    /// Print every step as it is decided: who wrote it, the scores it was decided on, its text.
    #[arg(long)]
    show_steps: bool,
    /// Question field of a custom .jsonl file.
    #[arg(long)]
    question_field: Option<String>,
    /// Answer field of a custom .jsonl file.
    #[arg(long)]
    answer_field: Option<String>,
    /// Router file (overrides the config's).
    #[arg(long)]
    router: Option<PathBuf>,
    /// Problems in flight at once. Embedded models hold this many problems each and decode their
    /// steps together (continuous batching); remote servers batch them themselves. More problems
    /// per minute; each problem's latency then includes waiting on the others.
    #[arg(long, default_value_t = 1, env = "ARBITRAGE_CONCURRENCY")]
    concurrency: usize,
    /// Step cache file: greedy steps and PRM scores already computed for the same context are
    /// replayed from it, at the cost measured when they were computed (reported as
    /// `replayed_latency_s`). Off unless given; `arbitrage sweep` turns it on.
    #[arg(long, value_name = "FILE")]
    cache: Option<PathBuf>,
}

/// The run's events on the terminal: a progress bar, each step as it is decided
/// (`--show-steps`), and Ctrl-C as the signal to stop.
struct Progress {
    bar: ProgressBar,
    show_steps: bool,
    interrupted: Arc<AtomicBool>,
}

impl RunEvents for Progress {
    fn step_decided(&self, idx: usize, index: usize, step: &TraceStep) {
        if !self.show_steps {
            return;
        }
        let mut line = format!("problem {idx} step {} [{}]", index + 1, step.model.as_str());
        for (name, score) in [
            ("prm", step.prm_score),
            ("target prm", step.target_prm_score),
            ("router", step.router_score),
        ] {
            if let Some(score) = score {
                line.push_str(&format!(" {name} {score:.3}"));
            }
        }
        if step.early {
            line.push_str(" early");
        }
        if step.accepted_tokens > 0 {
            line.push_str(&format!(" kept {} draft tokens", step.accepted_tokens));
        }
        line.push_str(&format!(": {}", one_line(&step.text, 120)));
        self.bar.suspend(|| eprintln!("{line}"));
    }

    fn should_stop(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    fn problem_finished(&self, _result: &ResultRecord, all: &[ResultRecord]) {
        let correct = all.iter().filter(|r| r.correct).count();
        let steps = all.iter().map(|r| r.steps.len()).sum::<usize>().max(1);
        let target = all
            .iter()
            .flat_map(|r| &r.steps)
            .filter(|s| s.model == Author::Target)
            .count();
        let mut split = TimeSplit::default();
        for r in all {
            split.add(&r.time_split_s);
        }
        let total = (split.models() + split.other).max(f64::MIN_POSITIVE);
        self.bar.set_message(format!(
            "acc {:.1}% · target steps {:.0}% · {:.1} s/problem (draft {:.0}%, target {:.0}%)",
            100.0 * correct as f64 / all.len().max(1) as f64,
            100.0 * target as f64 / steps as f64,
            total / all.len().max(1) as f64,
            100.0 * (split.draft_decode + split.draft_prefill) / total,
            100.0 * (split.target_decode + split.target_prefill) / total,
        ));
        self.bar.inc(1);
    }
}

/// `text` on one line, cut to about `width` characters.
fn one_line(text: &str, width: usize) -> String {
    let flat = text.trim().replace('\n', " ⏎ ");
    match flat.char_indices().nth(width) {
        Some((cut, _)) => format!("{}…", &flat[..cut]),
        None => flat,
    }
}

/// Where a router run's threshold and weights came from, when the router file has a budget curve
/// or weights of the run's own set (otherwise the pooled ones, which need no note).
fn curve_note(setup: &Setup, args: &RunArgs, set: &str, own_weights: bool) -> String {
    let curve = match (&setup.router, args.target_fraction, args.threshold) {
        (Some(RouterSource::File { file, .. }), Some(fraction), None) => file
            .budget_curve(Some(set))
            .1
            .map(|set| format!("the budget curve of {set} at {fraction}")),
        _ => None,
    };
    let weights = own_weights.then(|| format!("the weights of {set}"));
    match (weights, curve) {
        (Some(w), Some(c)) => format!(" ({w}, {c})"),
        (Some(one), None) | (None, Some(one)) => format!(" ({one})"),
        (None, None) => String::new(),
    }
}

impl RunArgs {
    /// The rule this command asks for, on the dataset named `set`.
    fn rule_request(&self, set: &str) -> RuleRequest {
        RuleRequest {
            set: Some(set.to_owned()),
            run_type: self.run_type,
            threshold: self.threshold,
            target_fraction: self.target_fraction,
            early: match self.early_entropy {
                Some(min_entropy) => EarlyRequest::Entropy {
                    tokens: self.early_tokens,
                    min_entropy,
                },
                None if self.no_early => EarlyRequest::Off,
                None => EarlyRequest::FromRouterFile,
            },
        }
    }
}

pub fn run(args: RunArgs) -> Result<()> {
    let interrupted = interrupt_flag()?;
    let json = args.json;
    match run_point(&args, &mut ModelPool::default(), &interrupted)? {
        Finished::Done(metrics) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&metrics)?);
            }
            Ok(())
        }
        Finished::Interrupted => std::process::exit(130),
    }
}

/// `arbitrage run`'s options for one point of a sweep, parsed from the arguments a separate
/// `arbitrage run` would be given (the same flags, defaults and environment variables). Metrics
/// are not printed on stdout: a sweep writes its own table.
pub fn point_args(argv: &[std::ffi::OsString]) -> Result<RunArgs> {
    #[derive(clap::Parser)]
    #[command(name = "arbitrage run")]
    struct Point {
        #[command(flatten)]
        run: RunArgs,
    }
    let mut point =
        <Point as clap::Parser>::try_parse_from(argv).context("the options of a sweep point")?;
    point.run.json = false;
    Ok(point.run)
}

/// How a run ended.
pub enum Finished {
    Done(Box<Metrics>),
    /// Stopped by Ctrl-C, with every finished problem saved.
    Interrupted,
}

/// A flag that turns true on Ctrl-C (a second Ctrl-C exits at once). Installed once a process.
pub fn interrupt_flag() -> Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            // A second Ctrl-C: the user does not want to wait for anything.
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

/// One run, on models from `pool` (a sweep keeps them between its points).
pub fn run_point(
    args: &RunArgs,
    pool: &mut ModelPool,
    interrupted: &Arc<AtomicBool>,
) -> Result<Finished> {
    let config = args.config.load()?;
    let run_type = args.run_type;
    let dataset = super::resolve_dataset(
        &args.dataset,
        args.data_dir.as_deref(),
        args.question_field.as_deref(),
        args.answer_field.as_deref(),
    )?;
    // Only a routing rule reads the router file, with the weights of the run's set where it has
    // its own.
    let setup = if run_type == RunType::Router {
        Setup::new(config, args.router.as_deref())?
    } else {
        Setup::without_router(config)
    };
    let own_weights = matches!(&setup.router, Some(RouterSource::File { file, .. }) if file.has_weights_of(&dataset.name));
    let setup = setup.for_set(&dataset.name);
    let config = &setup.config;
    let rule = setup.rule(&args.rule_request(&dataset.name)).map_err(|e| {
        // Name the flag that asked for what cannot run.
        let flag = match e {
            SetupError::EarlyNeedsRouter(_)
            | SetupError::EarlyEntropy(_)
            | SetupError::EarlyTokens => Some("--early-entropy / --early-tokens"),
            SetupError::Threshold(_) => Some("--threshold / --target-fraction"),
            _ => None,
        };
        match flag {
            Some(flag) => anyhow::Error::new(e).context(flag),
            None => e.into(),
        }
    })?;
    let needs = setup.needs(run_type);
    setup.check_concurrency(&needs, args.concurrency)?;
    let threshold = rule.threshold;
    let early = rule.early.clone();

    let early_note = early
        .as_ref()
        .map_or(String::new(), |rule| format!(", early rule {rule}"));

    let all = dataset.load()?;
    let problems = all[super::problem_range(all.len(), args.start, args.end, args.limit)?].to_vec();

    let output_dir = args.output_dir.clone().unwrap_or_else(|| {
        let name = if run_type.uses_threshold() {
            format!("{run_type}-t{threshold}")
        } else {
            run_type.to_string()
        };
        PathBuf::from("runs").join(&dataset.name).join(name)
    });
    let mut dir = RunDir::open(&output_dir, run_type, threshold, args.overwrite)?;
    let todo = problems.iter().filter(|p| !dir.is_done(p.idx)).count();

    // Load only the models the run type calls.
    let loaded = pool
        .get(needs, args.concurrency, || {
            super::loading("models", || setup.load(&needs, args.concurrency))
        })
        .with_context(|| format!("loading the models of run type `{run_type}`"))?;
    let draft_gen = loaded.draft();
    let target_gen = loaded.target();
    let prm_scorer = loaded.prm();
    let cache = match &args.cache {
        Some(path) => Some(StepCache::open(path)?),
        None => None,
    };
    let cached = cache.as_ref().map(|cache| {
        let draft = CachedGenerator::new(draft_gen, model_identity(&config.draft), cache.clone());
        let target =
            CachedGenerator::new(target_gen, model_identity(&config.target), cache.clone());
        let prm = prm_scorer.map(|p| {
            let identity = match &config.prm {
                // The stand-in runs on the target model.
                PrmConfig::Embedded(_) => format!(
                    "{}|{}|{}",
                    p.name(),
                    model_identity(&config.target),
                    config.prompt
                ),
                // A retrained head must not replay the old one's scores.
                PrmConfig::ValueHead(_) => format!(
                    "value-head|{}|{}",
                    p.fingerprint().unwrap_or_default(),
                    model_identity(&config.target)
                ),
                PrmConfig::Remote(r) => format!("remote:{}:{}", r.server.model, r.api),
            };
            CachedScorer::new(p, identity, cache.clone())
        });
        (draft, target, prm)
    });
    let models = match &cached {
        Some((draft, target, prm)) => Models {
            draft,
            target,
            prm: prm.as_ref().map(|p| p as &dyn StepScorer),
            router: loaded.router(),
        },
        None => loaded.models(),
    };

    let limits = setup.limits(args.max_steps, args.max_tokens, args.no_verify);
    let template = config.prompt;
    let render = move |q: &str| template.render(q);
    let spec = RunSpec {
        run_type,
        threshold,
        dataset_name: &dataset.name,
        limits,
        render_prompt: &render,
        prm_name: prm_scorer.map(|p| p.name().to_owned()),
        router_name: loaded.router().map(|r| r.name().to_owned()),
        early,
        concurrency: args.concurrency,
    };

    eprintln!(
        "{run_type} on {} ({} problems, {} to do{}{early_note}) → {}",
        dataset.name,
        problems.len(),
        todo,
        if run_type.uses_threshold() {
            format!(
                ", threshold {threshold}{}",
                curve_note(&setup, args, &dataset.name, own_weights)
            )
        } else {
            String::new()
        },
        output_dir.display()
    );
    let bar = ProgressBar::new(todo as u64).with_style(
        ProgressStyle::with_template(
            "{bar:30} {pos}/{len} [{elapsed_precise} < {eta_precise}] {msg}",
        )
        .expect("valid template"),
    );
    let progress = Progress {
        bar,
        show_steps: args.show_steps,
        interrupted: Arc::clone(interrupted),
    };
    let rounds_before = loaded.batching();
    let outcome = run::run(&models, &spec, &problems, &mut dir, &progress);
    progress.bar.finish_and_clear();
    if let Some(cache) = &cache {
        let stats = cache.stats();
        eprintln!(
            "step cache {}: {} calls replayed, {} computed",
            cache.path().display(),
            stats.hits,
            stats.misses
        );
    }
    let metrics = match outcome {
        Ok(m) => m,
        Err(run::RunError::Interrupted) => {
            eprintln!(
                "interrupted: finished problems are saved in {}; run again to resume",
                output_dir.display()
            );
            return Ok(Finished::Interrupted);
        }
        Err(e) => return Err(e.into()),
    };
    eprintln!("{}", metrics.summary());
    if args.concurrency > 1 {
        // How full the rounds were: below `--concurrency` when steps wait on reads, probes or the
        // other model, or when fewer problems are left than slots.
        let rounds: Vec<String> = loaded
            .batching()
            .into_iter()
            .zip(&rounds_before)
            .map(|((role, now), (_, before))| {
                let b = now - *before;
                format!(
                    "{role} {} rounds of {:.2} steps, {:.0} ms each in llama_decode",
                    b.rounds,
                    b.mean_width(),
                    1e3 * b.decode_seconds / b.rounds.max(1) as f64
                )
            })
            .collect();
        if !rounds.is_empty() {
            eprintln!("rounds        {}", rounds.join(" · "));
        }
    }
    eprintln!(
        "full metrics  {}",
        output_dir.join("metrics.json").display()
    );
    Ok(Finished::Done(Box::new(metrics)))
}

/// What makes a model write what it writes: the weights file by name and size, or the model a
/// server serves by name. Keys the step cache, so a replaced model never replays the old one's
/// steps.
fn model_identity(model: &ModelConfig) -> String {
    match model {
        ModelConfig::Embedded(settings) => {
            let size = std::fs::metadata(&settings.path).map_or(0, |m| m.len());
            let file = settings.path.file_name().map_or_else(
                || settings.path.display().to_string(),
                |f| f.to_string_lossy().into_owned(),
            );
            format!("embedded:{file}:{size}")
        }
        ModelConfig::Remote(server) => format!("remote:{}", server.model),
    }
}
