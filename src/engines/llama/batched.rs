//! What decoding several sequences in one `llama_decode` costs on this machine: the measurement
//! that decides whether continuous batching pays on a CPU (issue 26).
//!
//! One context holds `max(widths)` sequences, each first given the same `depth` tokens of context
//! (read untimed). Then, for each width N, `tokens` rounds of one `llama_decode` carrying one new
//! token for each of N sequences are timed, each sequence fed its own greedy choice, as a batched
//! server's decode rounds do. Tokens per second counts all N sequences' tokens.
//!
//! It loads its own model and runs on the calling thread: nothing else may be loaded in the
//! process while it runs (one llama.cpp thread team at a time; see the module above).

use std::num::NonZeroU32;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;
use serde::Serialize;

use super::{EmbeddedSettings, argmax, backend, check_model_file, llama_err, tokenize};
use crate::backend::EngineError;

/// One width's figures.
#[derive(Debug, Clone, Serialize)]
pub struct BatchedDecode {
    /// Sequences decoded together (one new token each per `llama_decode`).
    pub sequences: usize,
    /// Tokens of context each sequence held before the timed rounds.
    pub depth: usize,
    /// Rounds timed per repetition.
    pub rounds: usize,
    /// Median over repetitions of all sequences' tokens per second.
    pub tok_s: f64,
    /// Median milliseconds of one `llama_decode` call.
    pub ms_per_decode: f64,
    pub runs_tok_s: Vec<f64>,
}

/// Measures batched decoding at each width in `widths`, `reps` times each, interleaved (width 1,
/// 2, …, then again) so that drift on a shared machine touches every width alike.
pub fn measure(
    settings: &EmbeddedSettings,
    context_text: &str,
    widths: &[usize],
    rounds: usize,
    reps: usize,
    mut progress: impl FnMut(),
) -> Result<Vec<BatchedDecode>, EngineError> {
    check_model_file(&settings.path)?;
    let backend = backend()?;
    let load_err = |e: Box<dyn std::error::Error + Send + Sync>| EngineError::Load {
        path: settings.path.clone(),
        source: e,
    };
    let model = LlamaModel::load_from_file(backend, &settings.path, &LlamaModelParams::default())
        .map_err(|e| load_err(Box::new(e)))?;
    let widest = widths.iter().copied().max().unwrap_or(1).max(1);
    let context = tokenize(&model, context_text, true);
    let depth = context.len();
    let per_sequence = depth + rounds + 8;
    let threads = i32::try_from(settings.threads.max(1)).unwrap_or(i32::MAX);
    let n_batch = settings.n_batch.max(widest as u32);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new((per_sequence * widest) as u32))
        .with_n_batch(n_batch)
        .with_n_ubatch(n_batch)
        .with_n_seq_max(widest as u32)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    let mut ctx = model
        .new_context(backend, params)
        .map_err(|e| load_err(Box::new(e)))?;
    let mut batch = LlamaBatch::new(n_batch.max(depth as u32) as usize, widest as i32);
    let decode = |ctx: &mut llama_cpp_2::context::LlamaContext<'_>,
                  batch: &mut LlamaBatch<'_>,
                  while_doing: &'static str| {
        ctx.decode(batch).map_err(|e| EngineError::Llama {
            while_doing,
            source: Box::new(e),
        })
    };

    // The context of every sequence, read one sequence at a time; the first greedy token of each.
    let mut first_token = Vec::with_capacity(widest);
    for seq in 0..widest {
        batch.clear();
        for (i, &token) in context.iter().enumerate() {
            batch
                .add(LlamaToken(token), i as i32, &[seq as i32], i + 1 == depth)
                .map_err(llama_err("filling a batch"))?;
        }
        decode(&mut ctx, &mut batch, "reading the context")?;
        first_token.push(argmax(ctx.get_logits_ith(batch.n_tokens() - 1)) as i32);
    }

    let mut runs: Vec<Vec<f64>> = vec![Vec::new(); widths.len()];
    let mut decode_ms: Vec<Vec<f64>> = vec![Vec::new(); widths.len()];
    for _ in 0..reps {
        for (w, &width) in widths.iter().enumerate() {
            let mut next: Vec<i32> = first_token[..width].to_vec();
            let started = Instant::now();
            for round in 0..rounds {
                batch.clear();
                for (seq, &token) in next.iter().enumerate() {
                    batch
                        .add(
                            LlamaToken(token),
                            (depth + round) as i32,
                            &[seq as i32],
                            true,
                        )
                        .map_err(llama_err("filling a batch"))?;
                }
                decode(&mut ctx, &mut batch, "decoding a round")?;
                for (seq, token) in next.iter_mut().enumerate() {
                    *token = argmax(ctx.get_logits_ith(seq as i32)) as i32;
                }
            }
            let seconds = started.elapsed().as_secs_f64();
            runs[w].push((width * rounds) as f64 / seconds);
            decode_ms[w].push(1000.0 * seconds / rounds as f64);
            // Back to the shared depth for the next measurement.
            for seq in 0..width {
                ctx.clear_kv_cache_seq(Some(seq as u32), Some(depth as u32), None)
                    .map_err(llama_err("removing the timed tokens"))?;
            }
            progress();
        }
    }
    Ok(widths
        .iter()
        .zip(runs.into_iter().zip(decode_ms))
        .map(|(&sequences, (runs_tok_s, ms))| BatchedDecode {
            sequences,
            depth,
            rounds,
            tok_s: crate::stats::median(&runs_tok_s),
            ms_per_decode: crate::stats::median(&ms),
            runs_tok_s,
        })
        .collect())
}
