//! ARBITRAGE: step-level speculative reasoning.
//!
//! A fast draft model proposes each reasoning step; a decision rule (a PRM threshold, an oracle,
//! or a learned router) decides whether the stronger target model should write that step instead.
//!
//! Layers, each depending only on those above it (see docs/architecture.md):
//! - [`types`], [`backend`], [`logistic`], [`stats`]: plain data, the traits the loop drives (a
//!   model that writes a step, a scorer, a router, a text probe), the logistic model every stored
//!   classifier uses, and order statistics.
//! - [`engines`]: the back-ends behind the traits: embedded llama.cpp, remote servers, the step
//!   cache, scripted models for tests.
//! - [`method`]: the loop and its rules: policy, speculation, features, routers, PRMs, prompts.
//! - [`config`], [`setup`]: the validated configuration, and the one place that turns a
//!   configuration and a request into loaded models and a rule.
//! - [`eval`]: runs over datasets, labels, training, benchmarks.
//! - [`reporting`]: sweeps, curves, plots.
//! - [`serve`]: the loop behind an OpenAI-compatible HTTP API.

pub mod backend;
pub mod config;
pub mod engines;
pub mod eval;
pub mod logistic;
pub mod method;
pub mod reporting;
pub mod serve;
pub mod setup;
pub mod stats;
pub mod types;
