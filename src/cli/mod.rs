//! Arguments, subcommands and everything printed.

mod bench;
mod grade;
mod heads;
mod label;
mod report;
mod run;
mod serve;
mod steps;
mod sweep;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};
use arbitrage::config::{Config, PrmConfig, RemoteOverrides, VALUE_HEAD};
use arbitrage::engines::remote::PrmApi;
use clap::{Args, Parser, Subcommand};

/// Step-level speculative reasoning: a draft model writes each step, a target model is called
/// only when it is likely to write a better one.
#[derive(Debug, Parser)]
#[command(name = "arbitrage", version, about, max_term_width = 100)]
pub struct Cli {
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a decision rule over a dataset: results.jsonl, metrics.json (and steps.jsonl).
    Run(run::RunArgs),
    /// Label a generate run's steps by rollouts (and read hidden states): labels.jsonl.
    Label(label::LabelArgs),
    /// Train the value-head PRM and router probe on labelled records; compare every scorer.
    TrainHeads(heads::HeadsArgs),
    /// Train a router on generate-run step records.
    TrainRouter(train::TrainArgs),
    /// Grade answer pairs, or re-grade a finished run.
    Grade(grade::GradeArgs),
    /// Serve the loop behind an OpenAI-compatible HTTP API (chat and completions, streaming).
    Serve(serve::ServeArgs),
    /// Solve one problem with one model and print its solution step by step.
    Steps(steps::StepsArgs),
    /// Measure prefill and decode tokens/s of the configured models.
    Bench(bench::BenchArgs),
    /// Run a grid of run types × thresholds (plus baselines) and write sweep.csv.
    Sweep(sweep::SweepArgs),
    /// Plot a sweep's curves and write its HTML page with traces.
    Report(report::ReportArgs),
}

/// Options shared by commands that load models.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Configuration file (TOML); without it the embedded default models are used.
    #[arg(long, env = "ARBITRAGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Embedded PRM, overriding the config's: target-logprob, target-judge or value-head.
    #[arg(long, value_parser = ["target-logprob", "target-judge", "value-head"])]
    pub prm: Option<String>,
    /// Head file of `--prm value-head` (default: prms/value-head.json).
    #[arg(long, value_name = "FILE")]
    pub prm_head: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// Remote engines, overriding the config: a role given a URL is served remotely, the others
/// stay as configured.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Draft server base URL(s) ending in /v1, comma-separated (several: round-robin, fail-over).
    #[arg(long, value_delimiter = ',', env = "ARBITRAGE_DRAFT_URL")]
    pub draft_url: Option<Vec<String>>,
    /// Target server base URL(s) ending in /v1, comma-separated.
    #[arg(long, value_delimiter = ',', env = "ARBITRAGE_TARGET_URL")]
    pub target_url: Option<Vec<String>>,
    /// PRM server base URL(s) ending in /v1, comma-separated.
    #[arg(long, value_delimiter = ',', env = "ARBITRAGE_PRM_URL")]
    pub prm_url: Option<Vec<String>>,
    /// Router server base URL(s) ending in /v1, comma-separated.
    #[arg(long, value_delimiter = ',', env = "ARBITRAGE_ROUTER_URL")]
    pub router_url: Option<Vec<String>>,
    /// Model name sent to the draft server.
    #[arg(long, env = "ARBITRAGE_DRAFT_MODEL")]
    pub draft_model: Option<String>,
    /// Model name sent to the target server.
    #[arg(long, env = "ARBITRAGE_TARGET_MODEL")]
    pub target_model: Option<String>,
    /// Model name sent to the PRM server.
    #[arg(long, env = "ARBITRAGE_PRM_MODEL")]
    pub prm_model: Option<String>,
    /// Model name sent to the router server.
    #[arg(long, env = "ARBITRAGE_ROUTER_MODEL")]
    pub router_model: Option<String>,
    /// How the remote PRM is served: pooling (vLLM /pooling, Qwen2.5-Math-PRM style),
    /// embeddings (legacy /v1/embeddings value head, Skywork style) or reward (vLLM's reward
    /// runner, one value per token: the exported value head).
    #[arg(long, value_parser = ["pooling", "embeddings", "reward"])]
    pub prm_api: Option<String>,
}

impl RemoteArgs {
    fn overrides(&self) -> Result<RemoteOverrides> {
        Ok(RemoteOverrides {
            draft_url: self.draft_url.clone(),
            target_url: self.target_url.clone(),
            prm_url: self.prm_url.clone(),
            router_url: self.router_url.clone(),
            draft_model: self.draft_model.clone(),
            target_model: self.target_model.clone(),
            prm_model: self.prm_model.clone(),
            router_model: self.router_model.clone(),
            prm_api: self
                .prm_api
                .as_deref()
                .map(str::parse::<PrmApi>)
                .transpose()
                .map_err(anyhow::Error::msg)?,
        })
    }
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config> {
        let config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::embedded_default().context("the built-in default config is broken")?,
        };
        let mut config = config.with_overrides(&self.remote.overrides()?)?;
        match (self.prm.as_deref(), &self.prm_head) {
            (Some(VALUE_HEAD), head) => {
                config.prm = PrmConfig::ValueHead(
                    head.clone()
                        .unwrap_or_else(|| PathBuf::from("prms/value-head.json")),
                );
            }
            (Some(kind), None) => {
                config.prm = PrmConfig::Embedded(kind.parse().map_err(anyhow::Error::msg)?);
            }
            (Some(_), Some(_)) => anyhow::bail!("--prm-head applies to --prm value-head"),
            (None, Some(head)) => {
                if !matches!(config.prm, PrmConfig::ValueHead(_)) {
                    anyhow::bail!("--prm-head applies to --prm value-head");
                }
                config.prm = PrmConfig::ValueHead(head.clone());
            }
            (None, None) => {}
        }
        Ok(config)
    }
}

pub fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::env::var_os("NO_COLOR").is_none())
        .init();
}

pub fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::Label(args) => label::run(args),
        Command::TrainHeads(args) => heads::run(args),
        Command::Serve(args) => serve::run(args),
        Command::Grade(args) => grade::run(args),
        Command::TrainRouter(args) => train::run(args),
        Command::Steps(args) => steps::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Report(args) => report::run(args),
    }
}

/// Finds a dataset by name or file, as `run` and `sweep` take it.
pub fn resolve_dataset(
    dataset: &str,
    data_dir_flag: Option<&std::path::Path>,
    question_field: Option<&str>,
    answer_field: Option<&str>,
) -> Result<arbitrage::eval::datasets::Dataset> {
    Ok(arbitrage::eval::datasets::Dataset::resolve(
        dataset,
        arbitrage::eval::datasets::data_dir(data_dir_flag).as_deref(),
        question_field,
        answer_field,
    )?)
}

/// The problems `--start`, `--end` and `--limit` select from a dataset of `len` problems.
pub fn problem_range(
    len: usize,
    start: usize,
    end: Option<usize>,
    limit: Option<usize>,
) -> Result<std::ops::Range<usize>> {
    let mut end = end.unwrap_or(len).min(len);
    if start > end {
        anyhow::bail!("--start {start} is past the end ({end})");
    }
    if let Some(limit) = limit {
        end = end.min(start + limit);
    }
    Ok(start..end)
}

/// Runs `load` behind a spinner on stderr: loading models takes seconds.
pub fn loading<T>(what: &str, load: impl FnOnce() -> T) -> T {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!("loading {what}"));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = load();
    spinner.finish_and_clear();
    result
}

/// Loads one embedded model behind a spinner.
pub fn load_model(
    settings: &arbitrage::engines::llama::EmbeddedSettings,
) -> Result<arbitrage::engines::llama::EmbeddedModel> {
    let what = format!("{} model {}", settings.name, settings.path.display());
    Ok(loading(&what, || {
        arbitrage::setup::load_embedded(settings)
    })?)
}
