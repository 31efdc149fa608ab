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
                stop_loops: false,
            },
        )?;
        measured_depth = read.usage.prefill_tokens;
        Ok(())
    };
    let no_stop = |max_tokens| StepOptions {
        separator: None,
        max_tokens,
        sampling: Sampling::GREEDY,
        // Costs are timed over fixed token counts, loops or not.
        stop_loops: false,
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
/// milliseconds per token written at each of several depths (steps of `decode_tokens`), a read
/// of each of several lengths, a line through each, and what verifying a proposal adds to a step
/// beyond what those price. Each [`CostBench::rep`] runs every measurement once, each on a fresh
/// problem whose context was read untimed, so that benches of several models can take turns and
/// share the machine's drift; [`CostBench::finish`] takes the medians.
pub struct CostBench<'a> {
    model: &'a EmbeddedModel,
    decode_tokens: u32,
    /// Contexts the decodes follow, one per depth.
    preambles: Vec<String>,
    /// The context reads and proposals follow.
    preamble: String,
    /// Texts to read, one per length.
    texts: Vec<String>,
    /// The model's own greedy step with its second half replaced.
    proposal: String,
    next_problem: u64,
    decode_runs: Vec<Vec<(u64, f64)>>,
    read_runs: Vec<Vec<(u64, f64)>>,
    proposal_runs: Vec<crate::types::Usage>,
}

const COUNT: &str = "Count from 1 to 1000, one number per line:";

impl<'a> CostBench<'a> {
    /// `first_problem` keeps the problems of benches sharing a model apart.
    pub fn new(
        model: &'a EmbeddedModel,
        depth: usize,
        decode_depths: &[usize],
        decode_tokens: u32,
        read_sizes: &[usize],
        first_problem: u64,
    ) -> Result<CostBench<'a>, EngineError> {
        let mut bench = CostBench {
            model,
            decode_tokens,
            preambles: decode_depths
                .iter()
                .map(|&d| filler(model, d.max(1)))
                .collect::<Result<_, _>>()?,
            preamble: filler(model, depth.max(1))?,
            texts: read_sizes
                .iter()
                .map(|&k| filler(model, k))
                .collect::<Result<_, _>>()?,
            proposal: String::new(),
            next_problem: first_problem,
            decode_runs: vec![Vec::new(); decode_depths.len()],
            read_runs: vec![Vec::new(); read_sizes.len()],
            proposal_runs: Vec::new(),
        };
        // The proposal: the call keeps its first half by verification, then writes the rest.
        let preamble = bench.preamble.clone();
        let own = bench.timed(&preamble, COUNT, 32, None)?.text;
        let half = own
            .char_indices()
            .nth(own.chars().count() / 2)
            .map_or(0, |(i, _)| i);
        bench.proposal = format!("{} zebra umbrella quartz", &own[..half]);
        Ok(bench)
    }

    /// On a fresh problem: `preamble` read untimed, then `text` after it (verifying `proposal`
    /// when there is one): the timed call.
    fn timed(
        &mut self,
        preamble: &str,
        text: &str,
        max_tokens: u32,
        proposal: Option<&str>,
    ) -> Result<GeneratedStep, EngineError> {
        let problem = self.next_problem;
        self.next_problem += 1;
        let options = |max_tokens| StepOptions {
            separator: None,
            max_tokens,
            sampling: Sampling::GREEDY,
            stop_loops: false,
        };
        let transcript = |steps| Transcript {
            problem,
            question: "",
            prompt: preamble,
            steps,
        };
        self.model.generate_step(&transcript(&[]), &options(1))?;
        let steps = [text.to_owned()];
        let step = match proposal {
            Some(p) => self
                .model
                .verify_step(&transcript(&steps), &options(max_tokens), p),
            None => self
                .model
                .generate_step(&transcript(&steps), &options(max_tokens)),
        };
        self.model.release(problem);
        step
    }

    /// Every measurement once.
    pub fn rep(&mut self) -> Result<(), EngineError> {
        for i in 0..self.preambles.len() {
            let preamble = self.preambles[i].clone();
            let u = self
                .timed(&preamble, COUNT, self.decode_tokens, None)?
                .usage;
            // The first token comes from the read's logits; each later one costs one decode.
            let decoded = u.generated_tokens.saturating_sub(1).max(1);
            let depth = u.written_depth / u.generated_tokens.max(1);
            self.decode_runs[i].push((
                depth,
                1000.0 * (u.seconds - u.prefill_seconds) / decoded as f64,
            ));
        }
        let preamble = self.preamble.clone();
        for i in 0..self.texts.len() {
            let text = self.texts[i].clone();
            let u = self.timed(&preamble, &text, 1, None)?.usage;
            self.read_runs[i].push((u.prefill_tokens, 1000.0 * u.prefill_seconds));
        }
        let proposal = self.proposal.clone();
        let u = self.timed(&preamble, COUNT, 32, Some(&proposal))?.usage;
        self.proposal_runs.push(u);
        Ok(())
    }

    /// The medians, the lines through them, and the proposal's own cost against those.
    pub fn finish(self) -> ModelCosts {
        let medians = |runs: &[Vec<(u64, f64)>]| -> Vec<(u64, f64)> {
            runs.iter()
                .filter(|r| !r.is_empty())
                .map(|r| {
                    let ms: Vec<f64> = r.iter().map(|x| x.1).collect();
                    (r[0].0, crate::stats::median(&ms))
                })
                .collect()
        };
        let decodes = medians(&self.decode_runs);
        let reads = medians(&self.read_runs);
        let (decode_ms, decode_ms_per_depth) = fit_line(&decodes);
        let (read_call_ms, read_token_ms) = fit_line(&reads);
        let mut costs = ModelCosts {
            model: self.model.info().description.clone(),
            decode_ms,
            decode_ms_per_depth,
            read_call_ms,
            read_token_ms,
            proposal_ms: 0.0,
            decodes,
            reads,
        };
        let extra: Vec<f64> = self
            .proposal_runs
            .iter()
            .map(|u| {
                let priced = costs.seconds(&RoleWork {
                    written: u.generated_tokens,
                    read_tokens: u.prefill_tokens,
                    work: Work {
                        proposal_calls: 0,
                        ..Work::of(u)
                    },
                });
                1000.0 * (u.seconds - priced)
            })
            .collect();
        costs.proposal_ms = crate::stats::median(&extra);
        costs
    }
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
