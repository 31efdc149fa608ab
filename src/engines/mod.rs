//! Engine back-ends: what writes a step and what reads forced text, behind the traits of
//! [`crate::backend`]. The loop never knows which one it drives.
//!
//! - [`llama`]: the embedded engine (llama.cpp on one runtime thread, a KV cache per problem).
//! - [`remote`]: OpenAI-compatible servers (vLLM, SGLang): generation, PRM and router over HTTP.
//! - [`repetition`]: the guard that ends a step which has fallen into a loop.
//! - [`step_cache`]: wrappers that replay finished greedy steps and scores from disk (sweeps).
//! - [`scripted`]: deterministic models for tests of the loop's rules.

pub mod llama;
pub mod remote;
pub mod repetition;
pub mod scripted;
pub mod step_cache;
