//! The ARBITRAGE method: the speculation loop and everything a decision reads.
//!
//! - [`policy`]: run types and their pure decision rules (thresholds, early rules, budgets).
//! - [`speculate`]: the loop for one problem: propose, score or route, escalate, trace.
//! - [`features`], [`arithmetic`], [`router`]: the draft-side features and the routers that read
//!   them (a feature router, a hidden-state probe; a served router lives in the engines).
//! - [`prm`], [`value_head`]: the embedded process reward models.
//! - [`prompts`]: the prompt templates the models continue.

pub mod arithmetic;
pub mod features;
pub mod policy;
pub mod prm;
pub mod prompts;
pub mod router;
pub mod speculate;
pub mod value_head;
