//! Evaluation and training, offline: runs over datasets and everything learned from them.
//!
//! - [`datasets`]: benchmark files and their field mappings.
//! - [`run`]: a run over a dataset: `results.jsonl`, resume, `metrics.json`.
//! - [`labels`]: outcome labels for `generate` records by rollouts, with hidden states.
//! - [`heads`], [`train`]: the value-head PRM, the router and its early rules, fitted and judged.
//! - [`trained`]: which problems a trained file learned from, left out of figures that judge it.
//! - [`bench`]: engine throughput.

pub mod bench;
pub mod datasets;
pub mod heads;
pub mod labels;
pub mod run;
pub mod train;
pub mod trained;
