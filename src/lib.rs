//! ARBITRAGE: step-level speculative reasoning.
//!
//! A fast draft model proposes each reasoning step; a decision rule (a PRM threshold, an oracle,
//! or a learned router) decides whether the stronger target model should write that step instead.
//!
//! Modules, in the direction data flows:
//! - [`types`]: plain data shared by every part (steps, usage, sampling).
//! - [`backend`]: the traits the loop drives — a model that writes a step, a text probe.
//! - [`llama`]: the embedded engine (llama.cpp on a worker thread, KV cache per problem).
//! - [`remote`]: remote engines (vLLM, SGLang): generation, PRM and router over HTTP.
//! - [`config`]: the TOML configuration, validated.
//! - [`prompts`]: prompt templates.
//! - [`datasets`]: benchmark files and their field mappings.
//! - [`prm`]: stand-in process reward models on the embedded engine.
//! - [`arithmetic`]: checks the `expression = result` equations a step writes.
//! - [`features`], [`router`]: the draft-side features and the router that reads them.
//! - [`policy`]: run types and their pure decision rules.
//! - [`speculate`]: the speculation loop for one problem.
//! - [`step_cache`]: finished steps and scores on disk, replayed by sweeps.
//! - [`run`]: a run over a dataset: results, resume, metrics.
//! - [`serve`]: the loop behind an OpenAI-compatible HTTP API.
//! - [`sweep`]: threshold grids, `sweep.csv`, trade-off frontiers and matched-accuracy speed-ups.
//! - [`report`]: plots and the HTML page of a sweep.
//! - [`labels`]: outcome labels for `generate` records by rollouts, and the hidden states read
//!   with them.
//! - [`value_head`]: linear heads on hidden states; the value-head PRM.
//! - [`heads`]: training heads on labels and judging every PRM and router input against them.
//! - [`train`]: router training and evaluation from `generate` records.
//! - [`bench`]: engine throughput measurement.

pub mod arithmetic;
pub mod backend;
pub mod bench;
pub mod config;
pub mod datasets;
pub mod features;
pub mod heads;
pub mod labels;
pub mod llama;
pub mod policy;
pub mod prm;
pub mod prompts;
pub mod remote;
pub mod report;
pub mod router;
pub mod run;
pub mod scripted;
pub mod serve;
pub mod speculate;
pub mod step_cache;
pub mod sweep;
pub mod train;
pub mod types;
pub mod value_head;
