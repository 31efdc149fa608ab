//! Arguments, subcommands and everything printed.

mod bench;
mod grade;
mod report;
mod run;
mod steps;
mod sweep;
mod train;

use std::path::PathBuf;

use anyhow::{Context, Result};
use arbitrage::config::Config;
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
    /// Train a router on generate-run step records.
    TrainRouter(train::TrainArgs),
    /// Grade answer pairs, or re-grade a finished run.
    Grade(grade::GradeArgs),
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
}

impl ConfigArgs {
    pub fn load(&self) -> Result<Config> {
        match &self.config {
            Some(path) => Config::from_file(path).map_err(Into::into),
            None => Config::embedded_default().context("the built-in default config is broken"),
        }
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
        Command::Grade(args) => grade::run(args),
        Command::TrainRouter(args) => train::run(args),
        Command::Steps(args) => steps::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Report(args) => report::run(args),
    }
}

/// Loads a model with a spinner, since the larger ones take seconds.
pub fn load_model(
    settings: &arbitrage::llama::EmbeddedSettings,
) -> Result<arbitrage::llama::EmbeddedModel> {
    let spinner = indicatif::ProgressBar::new_spinner().with_message(format!(
        "loading {} model {}",
        settings.name,
        settings.path.display()
    ));
    spinner.enable_steady_tick(std::time::Duration::from_millis(120));
    let result = arbitrage::llama::EmbeddedModel::load(settings);
    spinner.finish_and_clear();
    result.with_context(|| {
        format!(
            "cannot load the {} model; run scripts/fetch-models.sh, or set its `file` in the config",
            settings.name
        )
    })
}
