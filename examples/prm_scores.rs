//! Scores every step of finished runs with the PRM a configuration names, one JSON line per
//! step on stdout: `{"file", "idx", "step", "score", "seconds"}`. Used to compare the embedded
//! value head with the same head served by vLLM (scripts/vllm-cpu-prm-compare.py; figures in
//! docs/remote.md): run it once with each configuration on the same results files.
//!
//!     cargo run --release --example prm_scores -- CONFIG RESULTS.jsonl...
//!
//! Each step is scored in its context (the prompt and the steps before it), as a run scores a
//! proposed step; a problem's steps are scored in order, so an embedded model keeps the
//! problem's tokens in its cache and reads each step once.

use std::path::Path;
use std::time::Instant;

use arbitrage::config::Config;
use arbitrage::setup::{Needs, Setup};
use arbitrage::types::Transcript;
use serde_json::{Value, json};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((config, files)) = args.split_first() else {
        anyhow::bail!("usage: prm_scores CONFIG RESULTS.jsonl...");
    };
    let config = Config::from_file(Path::new(config))?;
    let template = config.prompt;
    let setup = Setup::new(config, None)?;
    let loaded = setup.load(
        &Needs {
            target: true,
            prm: true,
            ..Needs::default()
        },
        1,
    )?;
    let prm = loaded
        .prm()
        .ok_or_else(|| anyhow::anyhow!("the configuration has no PRM"))?;
    eprintln!("prm_scores: {}", prm.name());
    let mut problem = 0u64;
    for file in files {
        for line in std::fs::read_to_string(file)?.lines() {
            let r: Value = serde_json::from_str(line)?;
            let question = r["question"].as_str().unwrap_or_default();
            let prompt = template.render(question);
            let texts: Vec<String> = r["steps"]
                .as_array()
                .map(|s| {
                    s.iter()
                        .map(|s| s["text"].as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default();
            problem += 1;
            for (i, step) in texts.iter().enumerate() {
                let transcript = Transcript {
                    problem,
                    question,
                    prompt: &prompt,
                    steps: &texts[..i],
                };
                let started = Instant::now();
                let scored = prm.score_step(&transcript, step)?;
                println!(
                    "{}",
                    json!({"file": file, "idx": r["idx"], "step": i, "score": scored.score,
                           "seconds": started.elapsed().as_secs_f64()})
                );
            }
        }
    }
    Ok(())
}
