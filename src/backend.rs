//! The interfaces the speculation loop drives: a model that writes a step, a scorer, a router,
//! and the probes a scorer needs. Embedded (llama.cpp) and remote (OpenAI-compatible) engines both implement
//! them, so the loop never knows which one it runs.

use crate::types::{Author, GeneratedStep, StepOptions, Transcript, Usage};

/// Errors any engine can report. Each keeps its cause.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model file {path} could not be loaded")]
    Load {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the context needs {needed} tokens but the model's context window holds {n_ctx}")]
    ContextFull { needed: usize, n_ctx: u32 },
    #[error("llama.cpp failed while {while_doing}")]
    Llama {
        while_doing: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the engine worker for {model} has stopped")]
    WorkerGone { model: String },
    #[error("{0}")]
    Invalid(String),
    #[error("the remote {role} engine failed")]
    Remote {
        role: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("tokenizer {path} could not be used")]
    Tokenizer {
        path: std::path::PathBuf,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// A model that continues a transcript by one step.
pub trait StepGenerator: Send + Sync {
    /// A short name for logs and errors.
    fn name(&self) -> &str;

    /// Write the next step after `transcript`. The engine may reuse whatever it already processed
    /// for the same problem; the returned text is what the model wrote, ending at the separator.
    fn generate_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<GeneratedStep, EngineError>;

    /// Write the next step greedily after reading `proposal`, another model's text for this step,
    /// in one batch: keep its longest prefix that equals this model's own greedy choice token by
    /// token, and write on from the first disagreement. The step is the one [`generate_step`]
    /// would write; `usage.accepted_tokens` counts the tokens taken from `proposal`, which cost a
    /// batched read instead of a decode each.
    ///
    /// Engines that cannot verify (and sampled steps, whose tokens are not a function of the
    /// context) write the step themselves: the default.
    ///
    /// [`generate_step`]: StepGenerator::generate_step
    fn verify_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        proposal: &str,
    ) -> Result<GeneratedStep, EngineError> {
        let _ = proposal;
        self.generate_step(transcript, options)
    }

    /// The problem is finished; cached state for it can go.
    fn release(&self, problem: u64);
}

/// The result of reading forced text after a transcript.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// Log-probability of each token of the forced text.
    pub token_logprobs: Vec<f32>,
    /// Log-probability of each requested candidate as the token that follows the forced text.
    pub candidate_logprobs: Vec<f32>,
    /// The model's final hidden state at the last token read, from engines loaded to report it.
    pub hidden: Option<Vec<f32>>,
    pub usage: Usage,
}

/// Whether a probe reports a log-probability for each token of the forced text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForcedTokens {
    /// `Probe::token_logprobs` holds one per forced token.
    Logprobs,
    /// Only what follows the text (candidates, the hidden state) is read; `token_logprobs` is
    /// empty. An engine may then keep forced tokens it already holds instead of reading them
    /// again, and skips a softmax over the vocabulary per token.
    Skip,
}

/// A model that can read forced text and report log-probabilities; what a stand-in PRM needs.
pub trait TextProbe: Send + Sync {
    fn name(&self) -> &str;

    /// Read `forced` after `transcript` and report (as `per_token` asks) its token
    /// log-probabilities, and the log-probabilities of each of `candidates` (their first token)
    /// coming next.
    fn probe(
        &self,
        transcript: &Transcript<'_>,
        forced: &str,
        candidates: &[&str],
        per_token: ForcedTokens,
    ) -> Result<Probe, EngineError>;
}

/// A scored step, with what scoring it cost.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scored {
    pub score: f32,
    pub usage: Usage,
}

/// Something that scores a step in context: a process reward model or a stand-in for one.
pub trait StepScorer: Send + Sync {
    /// The name recorded in metrics, e.g. `"target-logprob (stand-in PRM)"`.
    fn name(&self) -> &str;

    /// What identifies its scores beyond the name, where the name cannot: a value head's
    /// [`HeadFile::fingerprint`](crate::method::value_head::HeadFile::fingerprint), the same
    /// wherever the file lies. A router that reads a PRM's scores is checked against it.
    fn fingerprint(&self) -> Option<&str> {
        None
    }

    /// Score `step` as the next step after `transcript`; higher is better, in [0, 1].
    fn score_step(&self, transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError>;
}

/// What the router sees of a proposed draft step.
#[derive(Debug, Clone, Copy)]
pub struct RouterInput<'a> {
    /// The problem as the engines know it, and the rendered prompt (routers that read the
    /// context with a model need them).
    pub problem: u64,
    pub prompt: &'a str,
    pub question: &'a str,
    /// Who wrote each earlier step.
    pub previous_authors: &'a [Author],
    pub previous_steps: &'a [String],
    pub step: &'a GeneratedStep,
    /// The PRM's score of `step`, where the router reads it ([`Router::reads_prm`]).
    pub prm_score: Option<f32>,
}

/// Something that predicts whether the target would write a better step.
pub trait Router: Send + Sync {
    fn name(&self) -> &str;
    /// ŷ in [0, 1]. Fails only where the router is a remote model.
    fn score(&self, input: &RouterInput<'_>) -> Result<f32, EngineError>;
    /// Whether it reads the PRM's score of the draft step: the loop then scores every step it
    /// routes, at RSD's price, and passes the score in [`RouterInput::prm_score`].
    fn reads_prm(&self) -> bool {
        false
    }
}
