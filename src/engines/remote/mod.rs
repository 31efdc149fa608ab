//! Remote engines: vLLM, SGLang (or any OpenAI-compatible server) behind the same traits as the
//! embedded engine, so the loop never knows which one it drives.
//!
//! - [`completions`]: draft and target over `/v1/completions` ([`crate::backend::StepGenerator`]).
//! - [`prm`]: process reward models over vLLM's `/pooling` (Qwen2.5-Math-PRM style) or the legacy
//!   `/v1/embeddings` value-head route (Skywork), as a [`crate::backend::StepScorer`].
//! - [`router`]: the paper's token-classification router over `/pooling` ([`crate::backend::Router`]).
//! - [`http`]: one role's endpoints: round-robin, fail-over, bounded retries with backoff.
//! - [`tokenizer`]: local tokenization from a `tokenizer.json` where token ids are sent.
//!
//! Why blocking HTTP: the loop is sequential per problem (each step waits for the last), and
//! problems run on their own threads (`--concurrency`); the servers do the batching. A thread per
//! problem in flight costs nothing next to a model call, and keeps the traits synchronous.

pub mod completions;
pub mod http;
pub mod prm;
pub mod router;
pub mod tokenizer;

pub use completions::RemoteGenerator;
pub use http::{Client, RemoteError, RetryPolicy, Route};
pub use prm::{PrmApi, RemotePrm};
pub use router::RemoteRouter;
pub use tokenizer::LocalTokenizer;
