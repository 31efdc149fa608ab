//! Engine throughput: prefill and decode tokens per second, measured the way llama.cpp's own
//! `llama-bench` does (a prompt of `prompt_tokens` read in one go; `decode_tokens` generated one at
//! a time), so the two can be compared side by side. Both can be taken at a context depth, as
//! `llama-bench -d` does: after `depth` tokens already in the cache, the lengths a reasoning loop
//! works at. A third figure reads the same prompt as forced text with a log-probability at every
//! token, as the `target-logprob` stand-in PRM does: next to prefill, what such a probe costs.

use serde::Serialize;

use crate::backend::{EngineError, ForcedTokens, StepGenerator, TextProbe};
use crate::engines::llama::EmbeddedModel;
use crate::types::{Sampling, StepOptions, Transcript};

#[derive(Debug, Clone, Serialize)]
pub struct BenchResult {
    pub model: String,
    /// Tokens already in the context before each measurement.
    pub depth: u64,
    pub prompt_tokens: u64,
    pub decode_tokens: u64,
    /// Median over repetitions.
    pub prefill_tok_s: f64,
    pub decode_tok_s: f64,
    /// The prompt read as a probe's forced text, with a log-probability at every token.
    pub probe_tok_s: f64,
    pub prefill_runs: Vec<f64>,
    pub decode_runs: Vec<f64>,
    pub probe_runs: Vec<f64>,
}

const FILLER_UNIT: &str =
    "The quick brown fox jumps over the lazy dog while seven wizards count twelve boxes. ";

/// About `tokens` tokens of filler text without a tokenizer at hand (one token a word, roughly):
/// for measurements that report the depth they actually got.
pub fn filler_text(tokens: usize) -> String {
    FILLER_UNIT
        .split_inclusive(' ')
        .cycle()
        .take(tokens)
        .collect()
}

/// Text that tokenises to roughly one token per word, repeated to the wanted length.
fn filler(model: &EmbeddedModel, tokens: usize) -> Result<String, EngineError> {
    let unit = FILLER_UNIT;
    let per_unit = model.tokenize(unit)?.len().max(1);
    let mut text = unit.repeat(tokens / per_unit + 1);
    // Trim to the exact length by cutting words.
    while model.tokenize(&text)?.len() > tokens {
        let cut = text.trim_end().rfind(' ').unwrap_or(0);
        text.truncate(cut);
    }
    Ok(text)
}

/// Runs `reps` repetitions of each measurement on fresh problem contexts, `depth` tokens deep.
pub fn run(
    model: &EmbeddedModel,
    depth: usize,
    prompt_tokens: usize,
    decode_tokens: u32,
    reps: usize,
    mut progress: impl FnMut(),
) -> Result<BenchResult, EngineError> {
    let long = filler(model, prompt_tokens)?;
    let short = "Count from 1 to 1000, one number per line:";
    // The context the measured tokens follow, read (untimed) in a call of its own.
    let preamble = if depth > 0 {
        filler(model, depth)?
    } else {
        String::new()
    };
    let mut measured_depth = 0;
    let mut deepen = |problem: u64| -> Result<(), EngineError> {
        if preamble.is_empty() {
            return Ok(());
        }
        let read = model.generate_step(
            &Transcript {
                problem,
                question: "",
                prompt: &preamble,
                steps: &[],
            },
            &StepOptions {
                separator: None,
                max_tokens: 1,
                sampling: Sampling::GREEDY,
            },
        )?;
        measured_depth = read.usage.prefill_tokens;
        Ok(())
    };
    let no_stop = |max_tokens| StepOptions {
        separator: None,
        max_tokens,
        sampling: Sampling::GREEDY,
    };
    let mut prefill_runs = Vec::new();
    let mut decode_runs = Vec::new();
    let mut probe_runs = Vec::new();
    let mut measured_prompt = 0;
    let mut measured_decode = 0;
    for rep in 0..reps {
        let problem = 1_000_000 + 3 * rep as u64;
        deepen(problem)?;
        let (prompt, steps) = at_depth(&preamble, &long);
        let step = model.generate_step(
            &Transcript {
                problem,
                question: "",
                prompt,
                steps: &steps,
            },
            &no_stop(1),
        )?;
        measured_prompt = step.usage.prefill_tokens;
        prefill_runs.push(step.usage.prefill_tokens as f64 / step.usage.prefill_seconds);
        model.release(problem);
        progress();

        deepen(problem + 1)?;
        let (prompt, steps) = at_depth(&preamble, short);
        let step = model.generate_step(
            &Transcript {
                problem: problem + 1,
                question: "",
                prompt,
                steps: &steps,
            },
            &no_stop(decode_tokens),
        )?;
        // The first token comes from the prompt's logits; each later one costs one decode.
        let decoded = step.usage.generated_tokens.saturating_sub(1);
        measured_decode = decoded;
        decode_runs.push(decoded as f64 / (step.usage.seconds - step.usage.prefill_seconds));
        model.release(problem + 1);
        progress();

        // The probe reads `long` after the preamble (or after an empty-step prompt at depth 0:
        // a probe needs a context to follow).
        let context = if preamble.is_empty() {
            short
        } else {
            &preamble
        };
        deepen(problem + 2)?;
        let probe = model.probe(
            &Transcript {
                problem: problem + 2,
                question: "",
                prompt: context,
                steps: &[],
            },
            &long,
            &[],
            ForcedTokens::Logprobs,
        )?;
        probe_runs.push(probe.token_logprobs.len() as f64 / probe.usage.seconds);
        model.release(problem + 2);
        progress();
    }
    Ok(BenchResult {
        model: model.info().description.clone(),
        depth: measured_depth,
        prompt_tokens: measured_prompt,
        decode_tokens: measured_decode,
        prefill_tok_s: crate::stats::median(&prefill_runs),
        decode_tok_s: crate::stats::median(&decode_runs),
        probe_tok_s: crate::stats::median(&probe_runs),
        prefill_runs,
        decode_runs,
        probe_runs,
    })
}

/// What `model`'s work costs one sequence at a time, `depth` tokens deep, for the latency model
/// (`reporting::cost`): milliseconds per token written (median of `reps` runs of
/// `decode_tokens`), and a read of each of `read_sizes` tokens (median milliseconds, then a line
/// through them). Each measurement starts from a fresh problem whose preamble was read untimed.
pub fn costs(
    model: &EmbeddedModel,
    depth: usize,
    decode_tokens: u32,
    read_sizes: &[usize],
    reps: usize,
    mut progress: impl FnMut(),
) -> Result<crate::reporting::cost::ModelCosts, EngineError> {
    let preamble = filler(model, depth.max(1))?;
    let short = "Count from 1 to 1000, one number per line:";
    let mut next_problem = 2_000_000_u64;
    // A fresh problem with the preamble read, then `text` after it: the timed call.
    let mut timed = |text: &str, max_tokens: u32| -> Result<crate::types::Usage, EngineError> {
        let problem = next_problem;
        next_problem += 1;
        let transcript = |steps: &[String]| -> Result<crate::types::Usage, EngineError> {
            let step = model.generate_step(
                &Transcript {
                    problem,
                    question: "",
                    prompt: &preamble,
                    steps,
                },
                &StepOptions {
                    separator: None,
                    max_tokens,
                    sampling: Sampling::GREEDY,
                },
            )?;
            Ok(step.usage)
        };
        transcript(&[])?;
        let usage = transcript(&[text.to_owned()]);
        model.release(problem);
        usage
    };
    let mut decode_runs = Vec::new();
    let mut read_runs = vec![Vec::new(); read_sizes.len()];
    let texts = read_sizes
        .iter()
        .map(|&k| filler(model, k))
        .collect::<Result<Vec<_>, _>>()?;
    for _ in 0..reps {
        let usage = timed(short, decode_tokens)?;
        // The first token comes from the read's logits; each later one costs one decode.
        let decoded = usage.generated_tokens.saturating_sub(1).max(1);
        decode_runs.push(1000.0 * (usage.seconds - usage.prefill_seconds) / decoded as f64);
        progress();
        for (text, runs) in texts.iter().zip(&mut read_runs) {
            let usage = timed(text, 1)?;
            runs.push((usage.prefill_tokens, 1000.0 * usage.prefill_seconds));
            progress();
        }
    }
    let reads = read_runs
        .iter()
        .map(|runs| {
            let ms: Vec<f64> = runs.iter().map(|r| r.1).collect();
            (runs[0].0, crate::stats::median(&ms))
        })
        .collect();
    Ok(crate::reporting::cost::ModelCosts::fit_reads(
        model.info().description.clone(),
        crate::stats::median(&decode_runs),
        reads,
    ))
}

/// The transcript of `text` read after `preamble`: the preamble is the prompt (already cached by
/// the untimed call) and `text` a step after it, so only `text` is read in the timed call.
fn at_depth<'a>(preamble: &'a str, text: &'a str) -> (&'a str, Vec<String>) {
    if preamble.is_empty() {
        (text, Vec::new())
    } else {
        (preamble, vec![text.to_owned()])
    }
}
