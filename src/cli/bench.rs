//! `arbitrage bench`: prefill and decode tokens/s for each configured model.

use anyhow::Result;
use clap::Args;

use super::ConfigArgs;

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Tokens already in the context before each measurement (llama-bench's -d): a reasoning
    /// loop reads and writes a few hundred tokens deep.
    #[arg(long, default_value_t = 0)]
    depth: usize,
    /// Prompt length for the prefill measurement (llama-bench's -p).
    #[arg(long, default_value_t = 512)]
    prompt_tokens: usize,
    /// Tokens generated for the decode measurement (llama-bench's -n).
    #[arg(long, default_value_t = 128)]
    decode_tokens: u32,
    /// Repetitions; the median is reported.
    #[arg(long, default_value_t = 5)]
    reps: usize,
    /// Which models: draft, target or both.
    #[arg(long, value_delimiter = ',', default_value = "draft,target")]
    roles: Vec<String>,
    /// Load the models as the value-head PRM and `label` do, reporting hidden states (llama.cpp
    /// then computes outputs at every token read): measures what that costs.
    #[arg(long)]
    hidden_states: bool,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let config = args.config.load()?;
    if !args.json {
        println!(
            "{:<8} {:<40} {:>6} {:>8} {:>12} {:>8} {:>12} {:>10}",
            "role", "model", "depth", "prompt", "prefill t/s", "decode", "decode t/s", "probe t/s"
        );
    }
    for role in &args.roles {
        let model_config = match role.as_str() {
            "draft" => &config.draft,
            "target" => &config.target,
            other => anyhow::bail!("unknown role `{other}` in --roles (expected draft or target)"),
        };
        let Some(settings) = model_config.embedded() else {
            anyhow::bail!(
                "the {role} model is remote; `bench` measures embedded models (see docs/remote.md for the remote overhead benchmark)"
            );
        };
        let mut settings = settings.clone();
        settings.hidden_states = args.hidden_states;
        let model = super::load_model(&settings)?;
        let bar = indicatif::ProgressBar::new(3 * args.reps as u64)
            .with_message(format!("benchmarking {role}"));
        let result = arbitrage::bench::run(
            &model,
            args.depth,
            args.prompt_tokens,
            args.decode_tokens,
            args.reps,
            || bar.inc(1),
        )?;
        bar.finish_and_clear();
        if args.json {
            println!(
                "{}",
                serde_json::json!({"role": role, "threads": settings.threads, "hidden_states": args.hidden_states, "result": result})
            );
        } else {
            println!(
                "{:<8} {:<40} {:>6} {:>8} {:>12.1} {:>8} {:>12.1} {:>10.1}",
                if args.hidden_states {
                    format!("{role}+h")
                } else {
                    role.clone()
                },
                result.model,
                result.depth,
                result.prompt_tokens,
                result.prefill_tok_s,
                result.decode_tokens,
                result.decode_tok_s,
                result.probe_tok_s
            );
        }
    }
    Ok(())
}
