//! ARBITRAGE: step-level speculative reasoning.
//!
//! A fast draft model proposes each reasoning step; a decision rule (a PRM threshold, an oracle,
//! or a learned router) decides whether the stronger target model should write that step instead.
//!
//! Modules, in the direction data flows:
//! - [`types`]: plain data shared by every part (steps, usage, sampling).
//! - [`backend`]: the traits the loop drives — a model that writes a step, a text probe.
//! - [`llama`]: the embedded engine (llama.cpp on a worker thread, KV cache per problem).
//! - [`config`]: the TOML configuration, validated.
//! - [`prompts`]: prompt templates.
//! - [`datasets`]: benchmark files and their field mappings.
//! - [`bench`]: engine throughput measurement.

pub mod backend;
pub mod bench;
pub mod config;
pub mod datasets;
pub mod llama;
pub mod prompts;
pub mod types;
