//! `arbitrage steps`: one model, one problem, printed step by step. The quickest way to see what
//! a model writes and what each step costs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use arbitrage::backend::StepGenerator;
use arbitrage::config::ModelConfig;
use arbitrage::eval::datasets::{Dataset, data_dir};
use arbitrage::types::{FinishReason, Transcript, Usage};
use clap::{Args, ValueEnum};

use super::ConfigArgs;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Role {
    Draft,
    Target,
}

#[derive(Debug, Args)]
pub struct StepsArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Dataset name (e.g. gsm8k) or a .jsonl file.
    #[arg(long, default_value = "gsm8k")]
    dataset: String,
    /// Index of the problem in the dataset.
    #[arg(long, default_value_t = 0)]
    index: usize,
    /// Which configured model writes the solution.
    #[arg(long, value_enum, default_value = "draft")]
    role: Role,
    /// Directory holding NAME/test.jsonl files.
    #[arg(long, env = "ARBITRAGE_DATA_DIR")]
    data_dir: Option<PathBuf>,
}

pub fn run(args: StepsArgs) -> Result<()> {
    let config = args.config.load()?;
    let dataset = Dataset::resolve(
        &args.dataset,
        data_dir(args.data_dir.as_deref()).as_deref(),
        None,
        None,
    )?;
    let problems = dataset.load()?;
    let Some(problem) = problems.get(args.index) else {
        bail!(
            "{} has {} problems; --index {} is out of range",
            dataset.path.display(),
            problems.len(),
            args.index
        );
    };
    let (name, model_config) = match args.role {
        Role::Draft => ("draft", &config.draft),
        Role::Target => ("target", &config.target),
    };
    let model: Box<dyn StepGenerator> = match model_config {
        ModelConfig::Embedded(settings) => Box::new(super::load_model(settings)?),
        ModelConfig::Remote(server) => Box::new(arbitrage::setup::remote_generator(
            name,
            server,
            &config.remote,
            true,
        )?),
    };
    let prompt = config.prompt.render(&problem.question);
    println!(
        "problem {} of {}:\n{}\nreference answer: {}\n",
        problem.idx, dataset.name, problem.question, problem.answer
    );
    let mut steps: Vec<String> = Vec::new();
    let mut total = Usage::default();
    let mut tokens = 0u32;
    let started = std::time::Instant::now();
    loop {
        let mut options = config.generation.step.clone();
        options.max_tokens = options
            .max_tokens
            .min(config.generation.max_tokens.saturating_sub(tokens));
        if options.max_tokens == 0 || steps.len() >= config.generation.max_steps as usize {
            println!("(stopped at the step or token limit)");
            break;
        }
        let step = model
            .generate_step(
                &Transcript {
                    problem: 0,
                    question: &problem.question,
                    prompt: &prompt,
                    steps: &steps,
                },
                &options,
            )
            .with_context(|| format!("generating step {}", steps.len() + 1))?;
        tokens += step.usage.generated_tokens as u32;
        total += &step.usage;
        let mean_lp =
            step.token_logprobs.iter().sum::<f32>() / step.token_logprobs.len().max(1) as f32;
        println!(
            "── step {} · {} tokens · read {} · {:.2}s · mean logprob {:.2}",
            steps.len() + 1,
            step.usage.generated_tokens,
            step.usage.prefill_tokens,
            step.usage.seconds,
            mean_lp
        );
        println!("{}", step.text.trim_end());
        let done = step.finish == FinishReason::EndOfSequence;
        steps.push(step.text);
        if done {
            break;
        }
    }
    println!(
        "\n{} steps, {} tokens generated, {} read, {:.1}s ({:.1} tok/s overall)",
        steps.len(),
        total.generated_tokens,
        total.prefill_tokens,
        started.elapsed().as_secs_f64(),
        total.generated_tokens as f64 / total.seconds.max(1e-9)
    );
    Ok(())
}
