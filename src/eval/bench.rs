//! Engine throughput: prefill and decode tokens per second, measured the way llama.cpp's own
//! `llama-bench` does (a prompt of `prompt_tokens` read in one go; `decode_tokens` generated one at
//! a time), so the two can be compared side by side. Both can be taken at a context depth, as
//! `llama-bench -d` does: after `depth` tokens already in the cache, the lengths a reasoning loop
//! works at. A third figure reads the same prompt as forced text with a log-probability at every
//! token, as the `target-logprob` stand-in PRM does: next to prefill, what such a probe costs.

use serde::Serialize;

use crate::backend::{EngineError, ForcedTokens, StepGenerator, TextProbe};
use crate::engines::llama::EmbeddedModel;
use crate::eval::run::Work;
use crate::reporting::cost::{ModelCosts, RoleWork, fit_line};
use crate::types::{GeneratedStep, Sampling, StepOptions, Transcript};

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

/// What `model`'s work costs one sequence at a time, for the latency model (`reporting::cost`):
/// milliseconds per token written at each of `decode_depths` (median of `reps` steps of
/// `decode_tokens`), a read of each of `read_sizes` tokens `depth` deep (median milliseconds),
/// a line through each, and what verifying a proposal adds to a step beyond what those price.
/// Every measurement starts a fresh problem whose context was read untimed.
pub fn costs(
    model: &EmbeddedModel,
    depth: usize,
    decode_depths: &[usize],
    decode_tokens: u32,
    read_sizes: &[usize],
    reps: usize,
    mut progress: impl FnMut(),
) -> Result<ModelCosts, EngineError> {
    let short = "Count from 1 to 1000, one number per line:";
    let mut next_problem = 2_000_000_u64;
    // On a fresh problem: `preamble` read untimed, then `text` after it (verifying `proposal`
    // when there is one): the timed call.
    let mut timed = |preamble: &str,
                     text: &str,
                     max_tokens: u32,
                     proposal: Option<&str>|
     -> Result<GeneratedStep, EngineError> {
        let problem = next_problem;
        next_problem += 1;
        let options = |max_tokens| StepOptions {
            separator: None,
            max_tokens,
            sampling: Sampling::GREEDY,
        };
        let transcript = |steps| Transcript {
            problem,
            question: "",
            prompt: preamble,
            steps,
        };
        model.generate_step(&transcript(&[]), &options(1))?;
        let steps = [text.to_owned()];
        let step = match proposal {
            Some(p) => model.verify_step(&transcript(&steps), &options(max_tokens), p),
            None => model.generate_step(&transcript(&steps), &options(max_tokens)),
        };
        model.release(problem);
        step
    };
    let preambles = decode_depths
        .iter()
        .map(|&d| filler(model, d.max(1)))
        .collect::<Result<Vec<_>, _>>()?;
    let preamble = filler(model, depth.max(1))?;
    let texts = read_sizes
        .iter()
        .map(|&k| filler(model, k))
        .collect::<Result<Vec<_>, _>>()?;
    let mut decode_runs = vec![Vec::new(); decode_depths.len()];
    let mut read_runs = vec![Vec::new(); read_sizes.len()];
    for _ in 0..reps {
        for (p, runs) in preambles.iter().zip(&mut decode_runs) {
            let step = timed(p, short, decode_tokens, None)?;
            let u = &step.usage;
            // The first token comes from the read's logits; each later one costs one decode.
            let decoded = u.generated_tokens.saturating_sub(1).max(1);
            let depth = u.written_depth / u.generated_tokens.max(1);
            runs.push((
                depth,
                1000.0 * (u.seconds - u.prefill_seconds) / decoded as f64,
            ));
            progress();
        }
        for (text, runs) in texts.iter().zip(&mut read_runs) {
            let u = timed(&preamble, text, 1, None)?.usage;
            runs.push((u.prefill_tokens, 1000.0 * u.prefill_seconds));
            progress();
        }
    }
    let medians = |runs: &[Vec<(u64, f64)>]| -> Vec<(u64, f64)> {
        runs.iter()
            .map(|r| {
                let ms: Vec<f64> = r.iter().map(|x| x.1).collect();
                (r[0].0, crate::stats::median(&ms))
            })
            .collect()
    };
    let decodes = medians(&decode_runs);
    let reads = medians(&read_runs);
    let (decode_ms, decode_ms_per_depth) = fit_line(&decodes);
    let (read_call_ms, read_token_ms) = fit_line(&reads);
    let mut costs = ModelCosts {
        model: model.info().description.clone(),
        decode_ms,
        decode_ms_per_depth,
        read_call_ms,
        read_token_ms,
        proposal_ms: 0.0,
        decodes,
        reads,
    };
    // Verifying: the model's own greedy step with its second half replaced, so the call keeps the
    // first half by verification, then writes the rest itself. What it took beyond the price of
    // its counted reads and tokens is the proposal's own cost.
    let own = timed(&preamble, short, 32, None)?.text;
    let half = own
        .char_indices()
        .nth(own.chars().count() / 2)
        .map_or(0, |(i, _)| i);
    let proposal = format!("{} zebra umbrella quartz", &own[..half]);
    let mut extra = Vec::new();
    for _ in 0..reps {
        let u = timed(&preamble, short, 32, Some(&proposal))?.usage;
        let priced = costs.seconds(&RoleWork {
            written: u.generated_tokens,
            read_tokens: u.prefill_tokens,
            work: Work {
                proposal_calls: 0,
                ..Work::of(&u)
            },
        });
        extra.push(1000.0 * (u.seconds - priced));
        progress();
    }
    costs.proposal_ms = crate::stats::median(&extra);
    Ok(costs)
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
