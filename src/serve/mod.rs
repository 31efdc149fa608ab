//! `arbitrage serve`: the speculation loop behind the OpenAI chat and completions API.
//!
//! - [`api`]: the wire format. Requests are parsed and validated into a [`api::Generation`];
//!   errors are OpenAI-style bodies with a 4xx/5xx status.
//! - [`answer`]: decided steps become the text a client sees (stop strings cut it).
//! - [`queue`]: a bounded queue and the worker threads that run the loop.
//! - [`metrics`]: the Prometheus metrics.
//! - [`http`]: routes, streaming, graceful shutdown.
//!
//! Why it is shaped this way:
//! - The loop is blocking code driving engines, so it runs on `--concurrency` worker threads,
//!   never on the async runtime. Embedded models then hold that many problems and decode their
//!   steps together; remote servers batch them themselves.
//! - The queue is bounded: when it is full a request is refused at once with `429` and
//!   `Retry-After`, instead of waiting behind an unbounded backlog.
//! - Each request talks to its worker over a channel. A client that goes away drops the
//!   receiving end; the loop polls that between steps, stops, and frees the problem's KV cache.
//!   A stop string ends a request the same way.

pub mod answer;
pub mod api;
pub mod http;
pub mod metrics;
pub mod queue;

use crate::method::policy::RunType;
use crate::method::prompts::PromptTemplate;
use crate::method::speculate::{Limits, Models};

/// The loaded models a server runs the loop on.
pub trait ModelSet: Send + Sync {
    fn models(&self) -> Models<'_>;
    /// Tokens of `text` as the models read it, where a tokenizer is at hand (embedded models).
    fn count_tokens(&self, text: &str) -> Option<usize>;
}

/// What a server is configured with: the defaults a request may override and the bounds it
/// must stay within.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// The name `/v1/models` lists and responses carry.
    pub model_name: String,
    pub run_type: RunType,
    pub threshold: f64,
    /// The default rule's early decision (a `router` default set by target fraction).
    pub early: Option<crate::method::policy::EarlyRule>,
    /// Requests that set a target fraction use the router file's early rule for it.
    pub use_early_rules: bool,
    pub has_prm: bool,
    /// The router the server loaded, if any (requests choose thresholds and early rules by it).
    pub router: Option<crate::setup::RouterSource>,
    /// Default limits and sampling of a solution.
    pub limits: Limits,
    pub template: PromptTemplate,
    /// The embedded models' context window; prompts longer than it are refused.
    pub context_window: Option<u32>,
    /// Worker threads: requests solved at once.
    pub concurrency: usize,
    /// Requests that may wait for a worker; more are refused with 429.
    pub queue: usize,
    pub max_body_bytes: usize,
}
