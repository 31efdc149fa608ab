//! The embedded engine: GGUF models run in-process by llama.cpp (through `llama-cpp-2`).
//!
//! - Every embedded model lives on one runtime thread, which owns each `LlamaModel` with its
//!   context (the context borrows the model and needs `&mut` to decode). Callers talk to it
//!   through a channel; every request carries its own reply channel. One thread, not one per
//!   model: llama.cpp's OpenMP thread team belongs to the thread that decodes, and two teams on
//!   the same cores slowed the draft by 40% once the target had run (measured here: 28 → 17
//!   tok/s for the 0.5B). Models on a CPU run one at a time anyway.
//! - A model holds `slots` problems' contexts in its KV cache, one sequence each (one by default).
//!   Every call brings the whole transcript; [`cache::CacheState`] works out what is already
//!   cached, so a step costs only the tokens the model has not read yet, and a rejected draft step
//!   is removed with `llama_memory_seq_rm` instead of re-reading the context.
//! - Steps are written in rounds: each round decodes one new token for every step in progress on a
//!   model, all slots in one batch (continuous batching, as llama.cpp's server does with
//!   `--parallel`). Steps requested while others are being written join the next round; reading a
//!   context or a proposal runs between rounds. With one problem in flight a round is one token,
//!   exactly the one-at-a-time engine.
//! - Steps end exactly at the separator even when it sits inside a token (Qwen has `".\n\n"`);
//!   the cache then holds exactly the tokens of the kept text.

pub mod batched;
pub mod cache;

use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Instant;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::LlamaToken;

use crate::backend::{EngineError, ForcedTokens, Probe, StepGenerator, TextProbe};
use crate::engines::repetition::RepetitionGuard;
use crate::types::{FinishReason, GeneratedStep, StepOptions, Transcript, Usage};
use cache::{CacheState, Plan, Reuse, TokenId};
use serde::Serialize;

/// How to load and run one GGUF model.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedSettings {
    /// A name for logs and errors (the role, usually).
    pub name: String,
    pub path: PathBuf,
    /// Context window in tokens (prompt plus every step).
    pub n_ctx: u32,
    /// CPU threads for decoding and prefill.
    pub threads: u32,
    /// Largest number of tokens decoded in one llama.cpp batch.
    pub n_batch: u32,
    /// Problems the model holds at once, each in its own part of the KV cache (`n_ctx` tokens
    /// each). Steps of different problems requested at the same time are decoded together, one
    /// batch per token.
    pub slots: u32,
    /// Report the final hidden state in [`Probe::hidden`]. llama.cpp then computes outputs for
    /// every token it reads (logits included), which makes prefill dearer: load a separate
    /// instance for this rather than turning it on for a generating model.
    pub hidden_states: bool,
}

/// What the worker learned about the model when it loaded it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    pub description: String,
    pub n_vocab: i32,
    /// Width of the hidden state.
    pub n_embd: usize,
    pub n_ctx: u32,
    pub n_params: u64,
    pub size_bytes: u64,
}

/// A handle to a model loaded on the runtime thread. Cheap to share between threads; dropping
/// it unloads the model.
pub struct EmbeddedModel {
    id: u64,
    name: String,
    info: ModelInfo,
    requests: Mutex<Sender<RuntimeRequest>>,
    totals: Arc<Mutex<Usage>>,
    rounds: Arc<RoundCounts>,
}

/// Decode rounds a model ran and the steps they carried (steps written together share a round).
#[derive(Debug, Default)]
struct RoundCounts {
    rounds: AtomicU64,
    steps: AtomicU64,
    decode_nanos: AtomicU64,
}

/// How many steps a model decoded together: rounds and the steps they carried.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Batching {
    /// One-token decode rounds of written steps.
    pub rounds: u64,
    /// Steps those rounds carried, over all slots (a step that joined a round to read its context
    /// counts once, however many tokens it read).
    pub steps: u64,
    /// Seconds spent inside those rounds' `llama_decode` calls.
    pub decode_seconds: f64,
}

impl std::ops::Sub for Batching {
    type Output = Batching;
    fn sub(self, earlier: Batching) -> Batching {
        Batching {
            rounds: self.rounds.saturating_sub(earlier.rounds),
            steps: self.steps.saturating_sub(earlier.steps),
            decode_seconds: (self.decode_seconds - earlier.decode_seconds).max(0.0),
        }
    }
}

impl Batching {
    /// Mean steps decoded per round (1 when one problem is in flight at a time).
    pub fn mean_width(&self) -> f64 {
        if self.rounds == 0 {
            0.0
        } else {
            self.steps as f64 / self.rounds as f64
        }
    }
}

/// What the runtime thread is asked to do.
enum RuntimeRequest {
    Load {
        settings: EmbeddedSettings,
        rounds: Arc<RoundCounts>,
        reply: Sender<Result<(u64, ModelInfo), EngineError>>,
    },
    Call {
        model: u64,
        request: Request,
    },
    Unload {
        model: u64,
    },
}

enum Request {
    Generate {
        problem: u64,
        texts: Vec<String>,
        options: StepOptions,
        /// Another model's text for this step, to verify before writing (greedy only).
        proposal: Option<String>,
        reply: Sender<Result<GeneratedStep, EngineError>>,
    },
    Probe {
        problem: u64,
        texts: Vec<String>,
        forced: String,
        candidates: Vec<String>,
        per_token: ForcedTokens,
        reply: Sender<Result<Probe, EngineError>>,
    },
    Tokenize {
        text: String,
        reply: Sender<Vec<TokenId>>,
    },
    Detokenize {
        tokens: Vec<TokenId>,
        reply: Sender<String>,
    },
    ChatPrompt {
        system: Option<String>,
        user: String,
        reply: Sender<Result<String, EngineError>>,
    },
    CachedTokens {
        reply: Sender<(Option<u64>, Vec<TokenId>)>,
    },
    Release {
        problem: u64,
    },
}

fn backend() -> Result<&'static LlamaBackend, EngineError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor at load; keep them in tracing, off unless asked for.
            llama_cpp_2::send_logs_to_tracing(
                llama_cpp_2::LogOptions::default()
                    .with_logs_enabled(std::env::var_os("ARBITRAGE_LLAMA_LOGS").is_some()),
            );
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| EngineError::Llama {
            while_doing: "initialising the backend",
            source: e.clone().into(),
        })
}

/// Checks the file before llama.cpp sees it, so a wrong path or a non-GGUF file gets a plain error.
fn check_model_file(path: &Path) -> Result<(), EngineError> {
    use std::io::Read;
    let load_err = |msg: String| EngineError::Load {
        path: path.to_owned(),
        source: msg.into(),
    };
    let mut file = std::fs::File::open(path).map_err(|e| EngineError::Load {
        path: path.to_owned(),
        source: Box::new(e),
    })?;
    let mut magic = [0u8; 4];
    file.read_exact(&mut magic)
        .map_err(|_| load_err("the file is too short to be a GGUF model".into()))?;
    if &magic != b"GGUF" {
        return Err(load_err(format!(
            "not a GGUF file (starts with {magic:02x?} instead of \"GGUF\")"
        )));
    }
    Ok(())
}

impl EmbeddedModel {
    /// Loads the model on the runtime thread (starting it on first use). Returns once it is ready.
    pub fn load(settings: &EmbeddedSettings) -> Result<Self, EngineError> {
        check_model_file(&settings.path)?;
        let runtime = runtime()?;
        let (reply, answer) = mpsc::channel();
        let gone = || EngineError::WorkerGone {
            model: settings.name.clone(),
        };
        let rounds = Arc::new(RoundCounts::default());
        runtime
            .send(RuntimeRequest::Load {
                settings: settings.clone(),
                rounds: Arc::clone(&rounds),
                reply,
            })
            .map_err(|_| gone())?;
        let (id, info) = answer.recv().map_err(|_| gone())??;
        tracing::info!(model = %settings.name, path = %settings.path.display(), desc = %info.description, "model loaded");
        Ok(EmbeddedModel {
            id,
            name: settings.name.clone(),
            info,
            requests: Mutex::new(runtime),
            totals: Arc::new(Mutex::new(Usage::default())),
            rounds,
        })
    }

    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// Everything this model has done since it was loaded.
    pub fn totals(&self) -> Usage {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The decode rounds of the steps this model wrote since it was loaded.
    pub fn batching(&self) -> Batching {
        Batching {
            rounds: self.rounds.rounds.load(Ordering::Relaxed),
            steps: self.rounds.steps.load(Ordering::Relaxed),
            decode_seconds: self.rounds.decode_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
        }
    }

    fn send(&self, request: Request) -> Result<(), EngineError> {
        self.requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .send(RuntimeRequest::Call {
                model: self.id,
                request,
            })
            .map_err(|_| self.gone())
    }

    fn count(&self, usage: &Usage) {
        self.totals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(usage);
    }

    fn gone(&self) -> EngineError {
        EngineError::WorkerGone {
            model: self.name.clone(),
        }
    }

    fn ask<T>(&self, make: impl FnOnce(Sender<T>) -> Request) -> Result<T, EngineError> {
        let (tx, rx) = mpsc::channel();
        self.send(make(tx))?;
        rx.recv().map_err(|_| self.gone())
    }

    /// Tokenises text the way steps are tokenised (special tokens parsed, no BOS).
    pub fn tokenize(&self, text: &str) -> Result<Vec<TokenId>, EngineError> {
        self.ask(|reply| Request::Tokenize {
            text: text.to_owned(),
            reply,
        })
    }

    /// The text of `tokens`, special tokens included.
    pub fn detokenize(&self, tokens: &[TokenId]) -> Result<String, EngineError> {
        self.ask(|reply| Request::Detokenize {
            tokens: tokens.to_vec(),
            reply,
        })
    }

    /// Renders a system + user message with the chat template stored in the GGUF file, ending
    /// with the opening of the assistant's turn.
    pub fn chat_prompt(&self, system: Option<&str>, user: &str) -> Result<String, EngineError> {
        self.ask(|reply| Request::ChatPrompt {
            system: system.map(str::to_owned),
            user: user.to_owned(),
            reply,
        })?
    }

    /// The problem whose context is cached and the tokens the KV cache holds for it.
    pub fn cached_tokens(&self) -> Result<(Option<u64>, Vec<TokenId>), EngineError> {
        self.ask(|reply| Request::CachedTokens { reply })
    }
}

impl EmbeddedModel {
    fn write_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        proposal: Option<&str>,
    ) -> Result<GeneratedStep, EngineError> {
        let step = self.ask(|reply| Request::Generate {
            problem: transcript.problem,
            texts: texts_of(transcript),
            options: options.clone(),
            proposal: proposal.map(str::to_owned),
            reply,
        })??;
        self.count(&step.usage);
        Ok(step)
    }
}

fn texts_of(transcript: &Transcript<'_>) -> Vec<String> {
    std::iter::once(transcript.prompt.to_owned())
        .chain(transcript.steps.iter().cloned())
        .collect()
}

impl StepGenerator for EmbeddedModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<GeneratedStep, EngineError> {
        self.write_step(transcript, options, None)
    }

    fn verify_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        proposal: &str,
    ) -> Result<GeneratedStep, EngineError> {
        self.write_step(transcript, options, Some(proposal))
    }

    fn release(&self, problem: u64) {
        // A runtime that is gone has nothing left to release.
        let _ = self.send(Request::Release { problem });
    }
}

impl Drop for EmbeddedModel {
    fn drop(&mut self) {
        let requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let _ = requests.send(RuntimeRequest::Unload { model: self.id });
    }
}

impl TextProbe for EmbeddedModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn probe(
        &self,
        transcript: &Transcript<'_>,
        forced: &str,
        candidates: &[&str],
        per_token: ForcedTokens,
    ) -> Result<Probe, EngineError> {
        let probe = self.ask(|reply| Request::Probe {
            problem: transcript.problem,
            texts: texts_of(transcript),
            forced: forced.to_owned(),
            candidates: candidates.iter().map(|c| (*c).to_owned()).collect(),
            per_token,
            reply,
        })??;
        self.count(&probe.usage);
        Ok(probe)
    }
}

fn llama_err<E: std::error::Error + Send + Sync + 'static>(
    while_doing: &'static str,
) -> impl FnOnce(E) -> EngineError {
    move |e| EngineError::Llama {
        while_doing,
        source: Box::new(e),
    }
}

/// The runtime thread's sender, started on first use.
fn runtime() -> Result<Sender<RuntimeRequest>, EngineError> {
    static RUNTIME: OnceLock<Result<Mutex<Sender<RuntimeRequest>>, String>> = OnceLock::new();
    let runtime = RUNTIME.get_or_init(|| {
        let backend = backend().map_err(|e| e.to_string())?;
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("llama-runtime".into())
            .spawn(move || run_runtime(backend, rx))
            .map_err(|e| format!("cannot start the llama.cpp runtime thread: {e}"))?;
        Ok(Mutex::new(tx))
    });
    match runtime {
        Ok(tx) => Ok(tx.lock().unwrap_or_else(|e| e.into_inner()).clone()),
        Err(e) => Err(EngineError::Llama {
            while_doing: "starting the runtime",
            source: e.clone().into(),
        }),
    }
}

self_cell::self_cell!(
    /// A loaded model and the context that borrows it.
    struct Loaded {
        owner: LlamaModel,
        #[not_covariant]
        dependent: Worker,
    }
);

fn run_runtime(backend: &'static LlamaBackend, requests: Receiver<RuntimeRequest>) {
    let mut models: std::collections::HashMap<u64, Loaded> = std::collections::HashMap::new();
    let mut next_id = 0u64;
    loop {
        let writing = models
            .values()
            .any(|m| m.with_dependent(|_, worker| !worker.writing.is_empty()));
        // Nothing to decode: wait for a request. Steps being written: take what has arrived (new
        // steps join the next round) and decode on.
        let first = if writing {
            requests.try_recv().ok()
        } else {
            match requests.recv() {
                Ok(request) => Some(request),
                Err(_) => return,
            }
        };
        let arrived = first
            .into_iter()
            .chain(std::iter::from_fn(|| requests.try_recv().ok()));
        for request in arrived {
            handle_runtime_request(backend, &mut models, &mut next_id, request);
        }
        for loaded in models.values_mut() {
            loaded.with_dependent_mut(|model, worker| {
                if !worker.writing.is_empty() {
                    worker.round(model);
                }
            });
        }
    }
}

fn handle_runtime_request(
    backend: &'static LlamaBackend,
    models: &mut std::collections::HashMap<u64, Loaded>,
    next_id: &mut u64,
    request: RuntimeRequest,
) {
    match request {
        RuntimeRequest::Load {
            settings,
            rounds,
            reply,
        } => {
            let result = load(backend, &settings, rounds).map(|(loaded, info)| {
                *next_id += 1;
                models.insert(*next_id, loaded);
                (*next_id, info)
            });
            let _ = reply.send(result);
        }
        RuntimeRequest::Unload { model } => {
            models.remove(&model);
        }
        RuntimeRequest::Call { model, request } => match models.get_mut(&model) {
            // Dropping the request drops its reply channel: the caller sees the worker gone.
            None => drop(request),
            Some(loaded) => {
                loaded.with_dependent_mut(|model, worker| worker.handle(model, request))
            }
        },
    }
}

fn load(
    backend: &'static LlamaBackend,
    settings: &EmbeddedSettings,
    rounds: Arc<RoundCounts>,
) -> Result<(Loaded, ModelInfo), EngineError> {
    let load_err = |e: Box<dyn std::error::Error + Send + Sync>| EngineError::Load {
        path: settings.path.clone(),
        source: e,
    };
    let model = LlamaModel::load_from_file(backend, &settings.path, &LlamaModelParams::default())
        .map_err(|e| load_err(Box::new(e)))?;
    let threads = i32::try_from(settings.threads.max(1)).unwrap_or(i32::MAX);
    let slots = settings.slots.max(1);
    // A decode round carries one token for every slot.
    let n_batch = settings.n_batch.max(slots);
    let loaded = Loaded::try_new(model, |model| {
        // Each sequence gets its own `n_ctx` (llama.cpp splits a non-unified cache evenly).
        let mut params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(settings.n_ctx.saturating_mul(slots)))
            .with_n_seq_max(slots)
            .with_n_batch(n_batch)
            .with_n_ubatch(n_batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        if settings.hidden_states {
            // Per-token states, not a pooled sentence embedding.
            params = params
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::None);
        }
        let ctx = model
            .new_context(backend, params)
            .map_err(|e| load_err(Box::new(e)))?;
        let n_ctx = ctx.n_ctx() as usize / slots as usize;
        Ok::<_, EngineError>(Worker {
            ctx,
            batch: LlamaBatch::new(n_batch as usize, 1),
            n_batch: n_batch as usize,
            n_ctx,
            slots: (0..slots).map(|_| Slot::default()).collect(),
            clock: 0,
            hidden_states: settings.hidden_states,
            writing: Vec::new(),
            rounds,
        })
    })?;
    let info = loaded.with_dependent(|model, worker| ModelInfo {
        description: model
            .meta_val_str("general.name")
            .unwrap_or_else(|_| settings.name.clone()),
        n_vocab: model.n_vocab(),
        n_embd: usize::try_from(model.n_embd()).unwrap_or(0),
        n_ctx: worker.n_ctx as u32,
        n_params: model.n_params(),
        size_bytes: model.size(),
    });
    Ok((loaded, info))
}

/// One model's context and the problems it holds.
struct Worker<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    /// Context window of one slot, in tokens.
    n_ctx: usize,
    /// One problem's context each; a slot's index is its sequence id in the KV cache.
    slots: Vec<Slot>,
    /// Counts slot uses, to find the least recently used one.
    clock: u64,
    hidden_states: bool,
    /// Steps being written, at most one per slot; each gets one token per [`Worker::round`].
    writing: Vec<Writing>,
    rounds: Arc<RoundCounts>,
}

/// A problem's place in the KV cache.
#[derive(Default)]
struct Slot {
    state: CacheState,
    last_used: u64,
}

/// Tokenises a context segment. Special tokens are parsed everywhere (prompts carry chat markup,
/// and a step is tokenised the same way whether it is fed or probed); only the prompt gets a BOS,
/// and only when the model asks for one.
fn tokenize(model: &LlamaModel, text: &str, first: bool) -> Vec<TokenId> {
    let add_bos = first && model.vocab().should_add_bos();
    model
        .vocab()
        .tokenize(text.as_bytes(), add_bos, true)
        .into_iter()
        .map(|t| t.0)
        .collect()
}

/// `exp(z)` for `z ≤ 0`, in a form the compiler vectorises: `2^(z·log2 e)` split into the
/// nearest integer power (built in the exponent bits) and a degree-6 polynomial for the rest
/// (|f| ≤ 0.5). Relative error below 1e-5 down to `z = -80` (the f32 range reduction dominates);
/// below about -87 it returns 2^-126 instead of 0, nothing next to the largest term's 1. Five
/// times faster than the C library's `exp` over a 152k vocabulary (0.11 against 0.56 ms).
#[inline(always)]
fn exp_nonpositive(z: f32) -> f32 {
    let t = (z * std::f32::consts::LOG2_E).max(-126.0);
    let whole = (t + 0.5).floor();
    let f = t - whole;
    let two_f = 1.0
        + f * (std::f32::consts::LN_2
            + f * (0.240_226_5
                + f * (0.055_504_11
                    + f * (0.009_618_129 + f * (0.001_333_355_8 + f * 0.000_154_035_3)))));
    f32::from_bits(((whole as i32 + 127) as u32) << 23) * two_f
}

/// Lanes summed separately, so the loop over the vocabulary vectorises.
const LANES: usize = 16;

/// `Σ exp(l − max)` and `Σ exp(l − max)·(l − max)` over `logits`, with their maximum.
fn exp_sums(logits: &[f32]) -> (f32, f64, f64) {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sums = [0f32; LANES];
    let mut weighted = [0f32; LANES];
    let chunks = logits.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for k in 0..LANES {
            let z = chunk[k] - max;
            let e = exp_nonpositive(z);
            sums[k] += e;
            weighted[k] += e * z;
        }
    }
    let mut sum: f64 = sums.iter().copied().map(f64::from).sum();
    let mut weighted: f64 = weighted.iter().copied().map(f64::from).sum();
    for &l in rest {
        let z = l - max;
        let e = f64::from(exp_nonpositive(z));
        sum += e;
        weighted += e * f64::from(z);
    }
    (max, sum, weighted)
}

/// `log Σ exp(l)` over `logits`.
fn log_sum_exp(logits: &[f32]) -> f32 {
    let (max, sum, _) = exp_sums(logits);
    max + sum.ln() as f32
}

/// Log-probability of `token` and the entropy of the distribution given by `logits`.
fn logprob_and_entropy(logits: &[f32], token: usize) -> (f32, f32) {
    let (max, sum, weighted) = exp_sums(logits);
    let log_sum = sum.ln();
    let logprob = f64::from(logits[token] - max) - log_sum;
    let entropy = log_sum - weighted / sum;
    (logprob as f32, entropy as f32)
}

fn logprob_of(logits: &[f32], token: usize) -> f32 {
    logprob_and_entropy(logits, token).0
}

fn argmax(logits: &[f32]) -> usize {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best
}

impl Worker<'_> {
    fn handle(&mut self, model: &LlamaModel, request: Request) {
        // A caller that stopped waiting is not an error here.
        match request {
            Request::Generate {
                problem,
                texts,
                options,
                proposal,
                reply,
            } => match self.begin(
                model,
                problem,
                &texts,
                &options,
                proposal.as_deref(),
                &reply,
            ) {
                // Its context is read in the next round, with the other steps' tokens.
                Ok((writing, _)) if !writing.reading.is_empty() => self.writing.push(writing),
                Ok((writing, fresh)) => self.proceed(model, writing, fresh),
                Err(e) => {
                    let _ = reply.send(Err(e));
                }
            },
            Request::Probe {
                problem,
                texts,
                forced,
                candidates,
                per_token,
                reply,
            } => {
                let _ =
                    reply.send(self.probe(model, problem, &texts, &forced, &candidates, per_token));
            }
            Request::Tokenize { text, reply } => {
                let _ = reply.send(self.tokenize(model, &text, false));
            }
            Request::Detokenize { tokens, reply } => {
                let mut bytes = Vec::new();
                for &t in &tokens {
                    bytes.extend(model.vocab().token_to_piece(LlamaToken(t), true, None));
                }
                let _ = reply.send(String::from_utf8_lossy(&bytes).into_owned());
            }
            Request::ChatPrompt {
                system,
                user,
                reply,
            } => {
                let _ = reply.send(self.chat_prompt(model, system.as_deref(), &user));
            }
            Request::CachedTokens { reply } => {
                let latest = self.slots.iter().max_by_key(|s| s.last_used);
                let _ = reply.send(latest.map_or((None, Vec::new()), |s| {
                    (s.state.problem(), s.state.in_kv.clone())
                }));
            }
            Request::Release { problem } => {
                if let Some(slot) = self.slot_of(problem)
                    && !self.is_writing(slot)
                {
                    self.reset_slot(slot);
                }
            }
        }
    }

    fn tokenize(&self, model: &LlamaModel, text: &str, first: bool) -> Vec<TokenId> {
        tokenize(model, text, first)
    }

    fn piece(&self, model: &LlamaModel, token: TokenId) -> Vec<u8> {
        model.vocab().token_to_piece(LlamaToken(token), false, None)
    }

    fn chat_prompt(
        &self,
        model: &LlamaModel,
        system: Option<&str>,
        user: &str,
    ) -> Result<String, EngineError> {
        let template = model
            .chat_template(None)
            .map_err(llama_err("reading the model's chat template"))?;
        let mut messages = Vec::new();
        if let Some(system) = system {
            messages.push(
                LlamaChatMessage::new("system".into(), system.into())
                    .map_err(llama_err("building the chat prompt"))?,
            );
        }
        messages.push(
            LlamaChatMessage::new("user".into(), user.into())
                .map_err(llama_err("building the chat prompt"))?,
        );
        model
            .apply_chat_template(&template, &messages, true)
            .map_err(llama_err("applying the model's chat template"))
    }

    fn slot_of(&self, problem: u64) -> Option<usize> {
        self.slots
            .iter()
            .position(|s| s.state.problem() == Some(problem))
    }

    fn is_writing(&self, slot: usize) -> bool {
        self.writing.iter().any(|w| w.slot == slot)
    }

    /// The slot holding `problem`'s context, or else the one to give it: an empty slot first,
    /// then the least recently used one that is not writing a step.
    fn slot_for(&mut self, problem: u64) -> Result<usize, EngineError> {
        self.clock += 1;
        let slot = match self.slot_of(problem) {
            Some(slot) if self.is_writing(slot) => {
                return Err(EngineError::Invalid(format!(
                    "problem {problem} already has a step being written on this model"
                )));
            }
            Some(slot) => slot,
            None => (0..self.slots.len())
                .filter(|&s| !self.is_writing(s))
                .min_by_key(|&s| {
                    (
                        self.slots[s].state.problem().is_some(),
                        self.slots[s].last_used,
                    )
                })
                .ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "all {} slots of this model are writing steps: load it with more slots \
                         than problems in flight",
                        self.slots.len()
                    ))
                })?,
        };
        self.slots[slot].last_used = self.clock;
        Ok(slot)
    }

    /// Forgets a slot's problem and its cached positions.
    fn reset_slot(&mut self, slot: usize) {
        self.slots[slot].state.reset();
        // A slot id is always a valid sequence id; removing a whole sequence cannot fail.
        let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
    }

    /// Brings a slot's KV cache to the plan, decoding in batches. Calls `on_logits(position,
    /// logits)` for every fed position at or after `logits_from`. Returns the batch index of the
    /// last position's logits.
    fn feed(
        &mut self,
        slot: usize,
        plan: &Plan,
        logits_from: usize,
        mut on_logits: impl FnMut(usize, &[f32]),
    ) -> Result<i32, EngineError> {
        let needed = plan.keep + plan.feed.len();
        if needed > self.n_ctx {
            return Err(EngineError::ContextFull {
                needed,
                n_ctx: self.n_ctx as u32,
            });
        }
        let seq = slot as i32;
        if plan.clear {
            // The plan has already given the slot's state to this problem.
            let _ = self.ctx.clear_kv_cache_seq(Some(slot as u32), None, None);
            self.slots[slot].state.truncate(plan.keep);
        } else {
            self.forget_from(slot, plan.keep, ROLL_BACK)?;
        }
        let mut last_index = 0;
        let mut pos = plan.keep;
        for chunk in plan.feed.chunks(self.n_batch) {
            self.batch.clear();
            for (i, &token) in chunk.iter().enumerate() {
                let p = pos + i;
                let want = p >= logits_from || p + 1 == needed;
                self.batch
                    .add(LlamaToken(token), p as i32, &[seq], want)
                    .map_err(llama_err("filling a batch"))?;
            }
            if let Err(e) = self.ctx.decode(&mut self.batch) {
                // The cache may hold part of this batch; forget the whole problem to stay exact.
                self.reset_slot(slot);
                return Err(EngineError::Llama {
                    while_doing: "decoding a batch",
                    source: Box::new(e),
                });
            }
            for (i, &token) in chunk.iter().enumerate() {
                let p = pos + i;
                if p >= logits_from {
                    on_logits(p, self.ctx.get_logits_ith(i as i32));
                }
                self.slots[slot].state.decoded(token);
                last_index = i as i32;
            }
            pos += chunk.len();
        }
        Ok(last_index)
    }

    /// Starts writing one step: reads the context (and, with a `proposal`, greedy only, the first
    /// chunk of the proposal's tokens in the same batch) into the problem's slot. Returns the step
    /// and its first token's choice when that came from the model's logits.
    ///
    /// Each proposal token that equals this model's greedy choice is kept without a decode of its
    /// own; from the first disagreement on, the model writes as usual. The cache ends as plain
    /// generation would leave it for the same step (whose greedy choices can differ from plain
    /// generation's only at a near-tie: batched and one-token kernels round apart).
    fn begin(
        &mut self,
        model: &LlamaModel,
        problem: u64,
        texts: &[String],
        options: &StepOptions,
        proposal: Option<&str>,
        reply: &Sender<Result<GeneratedStep, EngineError>>,
    ) -> Result<(Writing, Option<Choice>), EngineError> {
        let start = Instant::now();
        let slot = self.slot_for(problem)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tokenize = |text: &str, first: bool| tokenize(model, text, first);
        let mut proposal_tokens = match proposal {
            Some(text) if options.sampling.is_greedy() && !text.is_empty() => tokenize(text, false),
            _ => Vec::new(),
        };
        // Read in growing chunks: a proposal the target rejects early (most of those it is asked
        // to replace) then costs a few tokens' read, not the whole step's.
        let chunk = VERIFY_FIRST_CHUNK;
        proposal_tokens.truncate(chunk.min(options.max_tokens as usize));
        let state = &mut self.slots[slot].state;
        let mut plan = state.plan(problem, &refs, &proposal_tokens, Reuse::Context, &tokenize);
        if plan.context_len == 0 {
            return Err(EngineError::Invalid("the prompt is empty".into()));
        }
        // A proposal that would not fit is cut so that it never fails a step that plain
        // generation could write.
        let room = self.n_ctx.saturating_sub(plan.context_len + 1);
        if proposal_tokens.len() > room {
            proposal_tokens.truncate(room);
            plan = state.plan(problem, &refs, &proposal_tokens, Reuse::Context, &tokenize);
        }
        let mut choices = Vec::new();
        let logits_from = if proposal_tokens.is_empty() {
            usize::MAX
        } else {
            plan.context_len - 1
        };
        // While other steps are being written, a short read without a proposal joins the next
        // round instead of decoding alone (as llama-server batches a new request's prompt with
        // the other slots' tokens).
        let joins_round = proposal_tokens.is_empty()
            && !plan.clear
            && !self.writing.is_empty()
            && plan.feed.len() <= ROUND_READ_MAX
            && plan.keep + plan.feed.len() <= self.n_ctx
            && self.round_tokens() + plan.feed.len() <= self.n_batch;
        let (logits_index, reading) = if joins_round {
            self.forget_from(slot, plan.keep, ROLL_BACK)?;
            (None, plan.feed.clone())
        } else {
            let index = self.feed(slot, &plan, logits_from, |_, logits| {
                choices.push(greedy_choice(logits));
            })?;
            (Some(index), Vec::new())
        };
        let sampler = (!options.sampling.is_greedy()).then(|| {
            // Seeded per problem and step, so a run gives the same text whatever order it runs in.
            // `texts` is the prompt and the steps so far.
            let seed = options.sampling.step_seed(problem, texts.len() - 1);
            LlamaSampler::chain_simple([
                LlamaSampler::top_p(options.sampling.top_p, 1),
                LlamaSampler::temp(options.sampling.temperature),
                LlamaSampler::dist(seed),
            ])
        });
        let verifying = !proposal_tokens.is_empty();
        let mut writing = Writing {
            slot,
            reply: reply.clone(),
            max_tokens: options.max_tokens as usize,
            separator: options.separator.as_ref().map(|s| s.as_bytes().to_vec()),
            guard: options.stop_loops.then(RepetitionGuard::default),
            proposal: proposal.unwrap_or_default().as_bytes().to_vec(),
            sampler,
            tokens: Vec::new(),
            bytes: Vec::new(),
            logprobs: Vec::new(),
            entropies: Vec::new(),
            pos: plan.context_len,
            usage: {
                let mut usage = Usage {
                    prefill_tokens: plan.feed.len() as u64,
                    proposal_calls: u64::from(verifying),
                    ..Usage::default()
                };
                usage.count_read(plan.feed.len());
                usage
            },
            // Reading input: the context, the proposal, and any re-read of the proposal.
            prefill_seconds: start.elapsed().as_secs_f64(),
            start,
            pending: Pending {
                start: 0,
                tokens: proposal_tokens,
                choices,
            },
            verifying,
            chunk,
            next: 0,
            reading,
        };
        let fresh = match logits_index {
            Some(index) if !verifying => Some(writing.choose(&self.ctx, index)),
            _ => None,
        };
        Ok((writing, fresh))
    }

    /// Takes a step as far as it goes without a decode of its own: it then either waits in
    /// `self.writing` for the next round, or is finished and answered.
    fn proceed(&mut self, model: &LlamaModel, mut writing: Writing, fresh: Option<Choice>) {
        let result = match self.advance(model, &mut writing, fresh) {
            Ok(None) => {
                self.writing.push(writing);
                return;
            }
            Ok(Some(finish)) => self.finish(&mut writing, finish),
            Err(e) => Err(e),
        };
        let _ = writing.reply.send(result);
    }

    /// Tokens the next round decodes.
    fn round_tokens(&self) -> usize {
        self.writing.iter().map(|w| w.reading.len().max(1)).sum()
    }

    /// One decode round: one new token for every step being written (or the context a step just
    /// started must read), all slots in one batch.
    fn round(&mut self, model: &LlamaModel) {
        let writing = std::mem::take(&mut self.writing);
        self.batch.clear();
        let mut filled = Ok(());
        // Each step's logits: the batch index of its last token.
        let mut logits_at = Vec::with_capacity(writing.len());
        let mut n = 0;
        for w in &writing {
            let seq = [w.slot as i32];
            if w.reading.is_empty() {
                filled = filled
                    .and_then(|()| self.batch.add(LlamaToken(w.next), w.pos as i32, &seq, true));
                n += 1;
            } else {
                let first = w.pos - w.reading.len();
                for (i, &token) in w.reading.iter().enumerate() {
                    let last = i + 1 == w.reading.len();
                    filled = filled.and_then(|()| {
                        self.batch
                            .add(LlamaToken(token), (first + i) as i32, &seq, last)
                    });
                }
                n += w.reading.len();
            }
            logits_at.push(n as i32 - 1);
        }
        let decode_started = Instant::now();
        let decoded = filled
            .map_err(|e| ("filling a batch", e.to_string()))
            .and_then(|()| {
                self.ctx
                    .decode(&mut self.batch)
                    .map_err(|e| ("decoding a generated token", e.to_string()))
            });
        let nanos = u64::try_from(decode_started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.rounds.decode_nanos.fetch_add(nanos, Ordering::Relaxed);
        if let Err((while_doing, message)) = decoded {
            for w in writing {
                self.reset_slot(w.slot);
                let _ = w.reply.send(Err(EngineError::Llama {
                    while_doing,
                    source: message.clone().into(),
                }));
            }
            return;
        }
        self.rounds.rounds.fetch_add(1, Ordering::Relaxed);
        self.rounds
            .steps
            .fetch_add(writing.len() as u64, Ordering::Relaxed);
        // Every choice is read before any step goes on: a step that re-reads its proposal
        // decodes again, which overwrites the round's logits.
        let mut choices = Vec::with_capacity(writing.len());
        let mut writing = writing;
        for (w, &index) in writing.iter_mut().zip(&logits_at) {
            if w.reading.is_empty() {
                self.slots[w.slot].state.decoded(w.next);
                w.pos += 1;
            } else {
                for token in std::mem::take(&mut w.reading) {
                    self.slots[w.slot].state.decoded(token);
                }
            }
            choices.push(w.choose(&self.ctx, index));
        }
        for (w, choice) in writing.into_iter().zip(choices) {
            self.proceed(model, w, Some(choice));
        }
    }

    /// Adds tokens to a step until it ends (returning why) or needs a decode (returning `None`,
    /// with the token to decode in `w.next`). `fresh` is the choice read off the last decode's
    /// logits; without it the choice comes from the proposal being verified.
    fn advance(
        &mut self,
        model: &LlamaModel,
        w: &mut Writing,
        mut fresh: Option<Choice>,
    ) -> Result<Option<FinishReason>, EngineError> {
        loop {
            let (token, lp, ent) = match fresh.take() {
                Some(choice) => choice,
                None => w.pending.choices[w.tokens.len() - w.pending.start],
            };
            let index = w.tokens.len();
            let in_cache =
                w.verifying && w.pending.tokens.get(index - w.pending.start) == Some(&token);
            let eog = model.vocab().is_eog(LlamaToken(token));
            let piece = if eog {
                Vec::new()
            } else {
                self.piece(model, token)
            };
            // The proposal's text goes on with this token even where its tokens do not (it was
            // tokenised differently): the token still comes from the proposal.
            let in_text = w.verifying
                && !in_cache
                && !piece.is_empty()
                && w.proposal
                    .get(w.bytes.len()..)
                    .is_some_and(|rest| rest.starts_with(&piece));
            w.logprobs.push(lp);
            w.entropies.push(ent);
            if in_cache || in_text {
                w.usage.accepted_tokens += 1;
            } else {
                w.usage.generated_tokens += 1;
                w.usage.written_depth += w.pos as u64;
            }
            if eog {
                return Ok(Some(FinishReason::EndOfSequence));
            }
            let piece_start = w.bytes.len();
            w.bytes.extend_from_slice(&piece);
            w.tokens.push(token);
            if let Some(sep) = w.separator.as_deref() {
                // The separator can only complete inside the newest piece.
                let from = piece_start.saturating_sub(sep.len().saturating_sub(1));
                if let Some(at) = find(&w.bytes[from..], sep) {
                    let end = from + at + sep.len();
                    if end < w.bytes.len() {
                        // The token runs past the separator: keep the text up to it, and hold the
                        // cut piece as the tokens of that text.
                        w.tokens.pop();
                        w.tokens.extend(tokenize(
                            model,
                            &String::from_utf8_lossy(&w.bytes[piece_start..end]),
                            false,
                        ));
                        w.bytes.truncate(end);
                    }
                    return Ok(Some(FinishReason::Separator));
                }
            }
            if w.guard.as_mut().is_some_and(|g| g.push(&piece)) {
                return Ok(Some(FinishReason::Repetition));
            }
            if w.tokens.len() >= w.max_tokens || w.pos + 1 >= self.n_ctx {
                return Ok(Some(FinishReason::Length));
            }
            if in_cache {
                // Already in the cache at `pos`, and the next choice is already known.
                w.pos += 1;
                continue;
            }
            if in_text {
                // The proposal's tokens read so far are used up, or were tokenised differently:
                // read this token and the next chunk of the proposal, tokenised from here, in one
                // batch, and verify on.
                let rest = &w.proposal[w.bytes.len()..];
                w.chunk = (w.chunk * 2).min(VERIFY_MAX_CHUNK);
                let mut resync = vec![token];
                resync.extend(tokenize(model, &String::from_utf8_lossy(rest), false));
                resync.truncate((w.chunk + 1).min(self.n_ctx.saturating_sub(w.pos + 1).max(1)));
                let replan = Plan {
                    keep: w.pos,
                    context_len: w.pos + resync.len(),
                    feed: resync,
                    clear: false,
                };
                let mut choices = vec![(token, lp, ent)];
                let read_start = Instant::now();
                self.feed(w.slot, &replan, w.pos, |_, logits| {
                    choices.push(greedy_choice(logits))
                })?;
                w.prefill_seconds += read_start.elapsed().as_secs_f64();
                w.usage.prefill_tokens += replan.feed.len() as u64;
                w.usage.count_read(replan.feed.len());
                w.pending = Pending {
                    start: w.tokens.len() - 1,
                    tokens: replan.feed,
                    choices,
                };
                w.pos += 1;
                continue;
            }
            if w.verifying {
                // The first disagreement: the rest of the proposal goes.
                self.forget_from(w.slot, w.pos, UNVERIFIED)?;
                w.verifying = false;
            }
            w.next = token;
            return Ok(None);
        }
    }

    /// The finished step; the slot remembers its exact tokens.
    fn finish(
        &mut self,
        w: &mut Writing,
        finish: FinishReason,
    ) -> Result<GeneratedStep, EngineError> {
        if w.verifying {
            // Plain generation never decodes the step's last token; neither does verification.
            self.forget_from(w.slot, w.pos, UNVERIFIED)?;
        }
        let text = String::from_utf8_lossy(&w.bytes).into_owned();
        self.slots[w.slot]
            .state
            .remember_step(text.clone(), std::mem::take(&mut w.tokens));
        let mut usage = w.usage;
        usage.seconds = w.start.elapsed().as_secs_f64();
        usage.prefill_seconds = w.prefill_seconds;
        Ok(GeneratedStep {
            text,
            finish,
            token_logprobs: std::mem::take(&mut w.logprobs),
            token_entropies: std::mem::take(&mut w.entropies),
            usage,
        })
    }

    /// Drops a slot's cached positions from `pos` on (`while_doing` names why, for the error).
    fn forget_from(
        &mut self,
        slot: usize,
        pos: usize,
        while_doing: &'static str,
    ) -> Result<(), EngineError> {
        self.ctx
            .kv_cache_seq_rm(slot as i32, Some(pos as u32), None)
            .map_err(llama_err(while_doing))?;
        self.slots[slot].state.truncate(pos);
        Ok(())
    }

    fn probe(
        &mut self,
        model: &LlamaModel,
        problem: u64,
        texts: &[String],
        forced: &str,
        candidates: &[String],
        per_token: ForcedTokens,
    ) -> Result<Probe, EngineError> {
        let start = Instant::now();
        let slot = self.slot_for(problem)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let forced_tokens = self.tokenize(model, forced, false);
        let candidate_tokens: Vec<Option<TokenId>> = candidates
            .iter()
            .map(|c| self.tokenize(model, c, false).first().copied())
            .collect();
        let tokenize = |text: &str, first: bool| tokenize(model, text, first);
        let reuse = match per_token {
            ForcedTokens::Logprobs => Reuse::Context,
            ForcedTokens::Skip => Reuse::AllButLast,
        };
        let plan = self.slots[slot]
            .state
            .plan(problem, &refs, &forced_tokens, reuse, &tokenize);
        if plan.context_len == 0 {
            return Err(EngineError::Invalid("the prompt is empty".into()));
        }
        let first = plan.context_len.saturating_sub(1);
        let last = plan.context_len + forced_tokens.len() - 1;
        let logits_from = match per_token {
            ForcedTokens::Logprobs => first,
            ForcedTokens::Skip => last,
        };
        let mut token_logprobs = Vec::new();
        let mut candidate_logprobs = vec![f32::NEG_INFINITY; candidates.len()];
        let last_index = self.feed(slot, &plan, logits_from, |p, logits| {
            if p < last {
                token_logprobs.push(logprob_of(logits, forced_tokens[p - first] as usize));
            } else if !candidates.is_empty() {
                let log_sum = log_sum_exp(logits);
                for (slot, token) in candidate_logprobs.iter_mut().zip(&candidate_tokens) {
                    if let Some(t) = token {
                        *slot = logits[*t as usize] - log_sum;
                    }
                }
            }
        })?;
        let hidden = if self.hidden_states {
            let state = self
                .ctx
                .embeddings_ith(last_index)
                .map_err(llama_err("reading the hidden state"))?;
            Some(state.to_vec())
        } else {
            None
        };
        let seconds = start.elapsed().as_secs_f64();
        Ok(Probe {
            token_logprobs,
            candidate_logprobs,
            hidden,
            usage: {
                let mut usage = Usage {
                    prefill_tokens: plan.feed.len() as u64,
                    seconds,
                    prefill_seconds: seconds,
                    ..Usage::default()
                };
                usage.count_read(plan.feed.len());
                usage
            },
        })
    }
}

/// A token the model chose, its log-probability and the entropy of the distribution it came from.
type Choice = (TokenId, f32, f32);

/// A step being written: what `begin` set up and each round adds to, kept between decode rounds.
struct Writing {
    slot: usize,
    reply: Sender<Result<GeneratedStep, EngineError>>,
    max_tokens: usize,
    separator: Option<Vec<u8>>,
    /// Watches the step for a loop, where the options ask.
    guard: Option<RepetitionGuard>,
    /// The text being verified (empty without a proposal).
    proposal: Vec<u8>,
    sampler: Option<LlamaSampler>,
    tokens: Vec<TokenId>,
    bytes: Vec<u8>,
    logprobs: Vec<f32>,
    entropies: Vec<f32>,
    /// Position of the next token in the slot's sequence.
    pos: usize,
    usage: Usage,
    prefill_seconds: f64,
    start: Instant,
    /// While verifying, the cache holds these proposal tokens from `pos` on.
    pending: Pending,
    verifying: bool,
    /// Proposal tokens the next re-read takes.
    chunk: usize,
    /// The token the next round decodes at `pos`.
    next: TokenId,
    /// Context the next round reads instead (the tokens before `pos`), when the step joined a
    /// round to read it.
    reading: Vec<TokenId>,
}

impl Writing {
    /// This step's next token from the logits at batch index `index` of the last decode.
    fn choose(&mut self, ctx: &LlamaContext<'_>, index: i32) -> Choice {
        let logits = ctx.get_logits_ith(index);
        let token = match self.sampler.as_mut() {
            Some(s) => s.sample(ctx, index).0,
            None => argmax(logits) as TokenId,
        };
        let (lp, ent) = logprob_and_entropy(logits, token as usize);
        (token, lp, ent)
    }
}

/// Proposal tokens the first verification batch reads; each further batch reads twice as many, up
/// to [`VERIFY_MAX_CHUNK`]. On the default pair the target keeps only ~10% of the tokens of the
/// draft steps it is asked to replace (most disagree within a few tokens), and a batch costs about
/// a decode plus a prefill-rate share per token.
const VERIFY_FIRST_CHUNK: usize = 4;

/// Why [`Worker::forget_from`] drops cached positions, for its error.
const ROLL_BACK: &str = "removing rolled-back tokens from the KV cache";
const UNVERIFIED: &str = "removing unverified tokens from the KV cache";

/// Longest context read that joins a decode round rather than running alone: a step's start reads
/// its own last token, or the other model's step (tens of tokens).
const ROUND_READ_MAX: usize = 64;
const VERIFY_MAX_CHUNK: usize = 64;

/// Proposal tokens read into the cache for verification, and the model's greedy choice at each.
struct Pending {
    /// Index, among the step's tokens, of `tokens[0]`.
    start: usize,
    tokens: Vec<TokenId>,
    /// `choices[k]`: the greedy token at step index `start + k` (with its log-probability and the
    /// entropy there), read off the batch; one more than `tokens` where the batch allows.
    choices: Vec<(TokenId, f32, f32)>,
}

/// The greedy token of `logits`, its log-probability and the distribution's entropy.
fn greedy_choice(logits: &[f32]) -> (TokenId, f32, f32) {
    let token = argmax(logits);
    let (lp, ent) = logprob_and_entropy(logits, token);
    (token as TokenId, lp, ent)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logprobs_of_a_uniform_distribution_are_minus_log_n() {
        let (lp, ent) = logprob_and_entropy(&[1.0; 4], 2);
        assert!((lp + 4f32.ln()).abs() < 1e-6);
        assert!((ent - 4f32.ln()).abs() < 1e-6);
    }

    /// The same sums in f64 with the C library's `exp`, as the reference.
    fn exact(logits: &[f32], token: usize) -> (f64, f64) {
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let (mut sum, mut weighted) = (0f64, 0f64);
        for &l in logits {
            let z = f64::from(l - max);
            sum += z.exp();
            weighted += z.exp() * z;
        }
        let log_sum = sum.ln();
        (
            f64::from(logits[token] - max) - log_sum,
            log_sum - weighted / sum,
        )
    }

    proptest::proptest! {
        #[test]
        fn the_fast_softmax_matches_the_exact_one(
            logits in proptest::collection::vec(-40f32..40.0, 1..300),
            pick in 0usize..300,
        ) {
            let token = pick % logits.len();
            let (lp, ent) = logprob_and_entropy(&logits, token);
            let (want_lp, want_ent) = exact(&logits, token);
            proptest::prop_assert!((f64::from(lp) - want_lp).abs() < 1e-4 * (1.0 + want_lp.abs()));
            proptest::prop_assert!((f64::from(ent) - want_ent).abs() < 1e-4 * (1.0 + want_ent));
            let from_lse = f64::from(logits[token] - log_sum_exp(&logits));
            proptest::prop_assert!((from_lse - want_lp).abs() < 1e-4 * (1.0 + want_lp.abs()));
        }
    }

    #[test]
    fn the_fast_exp_is_close_and_underflows_to_almost_zero() {
        for i in 0..=160_000 {
            let z = -(i as f32) * 0.0005;
            let (got, want) = (f64::from(exp_nonpositive(z)), f64::from(z).exp());
            assert!(
                (got - want).abs() <= 1e-5 * want,
                "exp({z}) = {got}, want {want}"
            );
        }
        assert_eq!(exp_nonpositive(0.0), 1.0);
        assert!(exp_nonpositive(-1000.0) < 1.2e-38);
        assert_eq!(exp_nonpositive(f32::NEG_INFINITY), exp_nonpositive(-1000.0));
    }

    #[test]
    fn argmax_picks_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.0, 3.0, 3.0, 1.0]), 1);
    }

    #[test]
    fn find_locates_a_separator_split_across_pieces() {
        assert_eq!(find(b"ab.\n\ncd", b"\n\n"), Some(3));
        assert_eq!(find(b"ab", b""), None);
    }
}
