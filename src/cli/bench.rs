//! `arbitrage bench`: prefill and decode tokens/s for each configured model.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use arbitrage::reporting::cost::{COST_FORMAT_VERSION, CostTable, ModelCosts};
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
    /// Instead of prefill and decode, time one `llama_decode` carrying one new token for each of
    /// N sequences, for every N listed (e.g. `1,2,4,8`), `--depth` tokens deep and
    /// `--decode-tokens` rounds: whether batching several problems pays on these cores.
    #[arg(long, value_delimiter = ',')]
    batch: Vec<usize>,
    /// Instead, measure what the latency model prices (`arbitrage report --costs`) and write it
    /// to this JSON file: per token written and per read of `--read-sizes` tokens, one sequence,
    /// `--depth` tokens deep, for the draft, the target, and the target with hidden states.
    #[arg(long, value_name = "FILE")]
    costs: Option<PathBuf>,
    /// Read lengths `--costs` measures (tokens); reads in a run are mostly a step or a prompt.
    #[arg(long, value_delimiter = ',', default_value = "16,64,256")]
    read_sizes: Vec<usize>,
    /// Context depths `--costs` measures writing at (tokens): a token written deeper costs more.
    #[arg(long, value_delimiter = ',', default_value = "128,1024")]
    decode_depths: Vec<usize>,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let config = args.config.load()?;
    if args.reps == 0 {
        anyhow::bail!("--reps must be at least 1");
    }
    if let Some(path) = &args.costs {
        return run_costs(&args, &config, path);
    }
    if !args.batch.is_empty() {
        return run_batched(&args, &config);
    }
    if !args.json {
        println!(
            "{:<8} {:<40} {:>6} {:>8} {:>12} {:>8} {:>12} {:>10}",
            "role", "model", "depth", "prompt", "prefill t/s", "decode", "decode t/s", "probe t/s"
        );
    }
    for role in &args.roles {
        let mut settings = embedded_settings(&config, role)?;
        settings.hidden_states = args.hidden_states;
        let model = super::load_model(&settings)?;
        let bar = indicatif::ProgressBar::new(3 * args.reps as u64)
            .with_message(format!("benchmarking {role}"));
        let result = arbitrage::eval::bench::run(
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

/// `bench --costs FILE`: the latency model's cost table.
fn run_costs(args: &BenchArgs, config: &arbitrage::config::Config, path: &Path) -> Result<()> {
    if args.read_sizes.len() < 2 || args.read_sizes.contains(&0) {
        anyhow::bail!("--read-sizes: give at least two lengths, each at least 1 token");
    }
    if args.decode_depths.is_empty() {
        anyhow::bail!("--decode-depths: give at least one depth");
    }
    // All three load at once and take turns, repetition by repetition, so that a machine whose
    // speed drifts during the measurement moves every model's costs alike.
    let instances = [("draft", false), ("target", false), ("target", true)];
    let models = instances
        .iter()
        .map(|&(role, hidden_states)| {
            let mut settings = embedded_settings(config, role)?;
            settings.hidden_states = hidden_states;
            super::load_model(&settings)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut benches = models
        .iter()
        .enumerate()
        .map(|(i, model)| {
            arbitrage::eval::bench::CostBench::new(
                model,
                args.depth,
                &args.decode_depths,
                args.decode_tokens,
                &args.read_sizes,
                2_000_000 + 1_000_000 * i as u64,
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    let bar = indicatif::ProgressBar::new((args.reps * benches.len()) as u64)
        .with_message("measuring costs");
    for _ in 0..args.reps {
        for bench in &mut benches {
            bench.rep()?;
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let list = |points: &[(u64, f64)], unit: &str| {
        points
            .iter()
            .map(|(k, ms)| format!("{k}: {ms:.1} {unit}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut costs = Vec::new();
    for (bench, (role, hidden)) in benches.into_iter().zip(instances) {
        let c = bench.finish();
        let what = if hidden {
            format!("{role} with hidden states")
        } else {
            role.to_owned()
        };
        println!(
            "{what:<26} written {:.2} ms/token + {:.4} ms per context token ({}); \
             read {:.1} ms + {:.2} ms/token ({}); proposal {:+.1} ms",
            c.decode_ms,
            c.decode_ms_per_depth,
            list(&c.decodes, "ms/token deep"),
            c.read_call_ms,
            c.read_token_ms,
            list(&c.reads, "ms for tokens"),
            c.proposal_ms
        );
        costs.push(c);
    }
    let [draft, target, target_hidden]: [ModelCosts; 3] =
        costs.try_into().expect("three instances measured");
    let threads = embedded_settings(config, "target")?.threads;
    let table = CostTable {
        format_version: COST_FORMAT_VERSION,
        measured: format!(
            "arbitrage bench --costs, {threads} threads, {} reps, writing {:?} deep, reads of {:?} tokens {} deep",
            args.reps, args.decode_depths, args.read_sizes, args.depth
        ),
        unix_time: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        depth: args.depth as u64,
        draft,
        target,
        target_hidden,
    };
    std::fs::write(path, serde_json::to_string_pretty(&table)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}

/// `bench --batch`: total decode tokens/s with N sequences in one batch, per role.
fn run_batched(args: &BenchArgs, config: &arbitrage::config::Config) -> Result<()> {
    if args.batch.contains(&0) {
        anyhow::bail!("--batch: every width must be at least 1");
    }
    if !args.json {
        println!(
            "{:<8} {:>6} {:>6} {:>8} {:>10} {:>12} {:>10}",
            "role", "seqs", "depth", "rounds", "tok/s", "ms/decode", "vs 1 seq"
        );
    }
    for role in &args.roles {
        let settings = embedded_settings(config, role)?;
        let context = arbitrage::eval::bench::filler_text(args.depth.max(1));
        let bar = indicatif::ProgressBar::new((args.reps * args.batch.len()) as u64)
            .with_message(format!("batched decode, {role}"));
        let results = arbitrage::engines::llama::batched::measure(
            &settings,
            &context,
            &args.batch,
            args.decode_tokens as usize,
            args.reps,
            || bar.inc(1),
        )?;
        bar.finish_and_clear();
        let single = results.iter().find(|r| r.sequences == 1).map(|r| r.tok_s);
        for result in &results {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({"role": role, "threads": settings.threads, "batched": result})
                );
            } else {
                let ratio =
                    single.map_or("–".to_owned(), |s| format!("{:.2}x", result.tok_s / s));
                println!(
                    "{:<8} {:>6} {:>6} {:>8} {:>10.1} {:>12.1} {:>10}",
                    role,
                    result.sequences,
                    result.depth,
                    result.rounds,
                    result.tok_s,
                    result.ms_per_decode,
                    ratio
                );
            }
        }
    }
    Ok(())
}

fn embedded_settings(
    config: &arbitrage::config::Config,
    role: &str,
) -> Result<arbitrage::engines::llama::EmbeddedSettings> {
    let model_config = match role {
        "draft" => &config.draft,
        "target" => &config.target,
        other => anyhow::bail!("unknown role `{other}` in --roles (expected draft or target)"),
    };
    let Some(settings) = model_config.embedded() else {
        anyhow::bail!(
            "the {role} model is remote; `bench` measures embedded models (see docs/remote.md for the remote overhead benchmark)"
        );
    };
    Ok(settings.clone())
}
