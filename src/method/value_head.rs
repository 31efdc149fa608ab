//! Linear heads on a model's hidden state, and the value-head PRM built on one.
//!
//! The reference PRM (Skywork's) is a language model with a linear value head on the last hidden
//! state at each step's end. The embedded value head does the same on a model we have: the
//! target's final hidden state at the last token of a step, read by llama.cpp, through a logistic
//! head trained here on rollout outcome labels (`arbitrage label`, then `arbitrage train-heads`).
//! The hidden-state router probe is the same kind of head on the draft's state.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::backend::{EngineError, ForcedTokens, Scored, StepScorer, TextProbe};
use crate::logistic::{Logistic, logistic_probability};
use crate::types::Transcript;

pub const HEAD_FORMAT: &str = "arbitrage-linear-head";
pub const HEAD_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    #[error("cannot read head file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("head file {path} is not valid JSON for a linear head")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("head file {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot write head file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Whose hidden state a head reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HeadInput {
    /// The target's state at the end of the scored step (the value-head PRM).
    TargetHidden,
    /// The draft's state at the end of its own step (the router probe).
    DraftHidden,
}

/// A logistic head on a hidden state, as saved by `train-heads`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeadFile {
    pub format: String,
    pub version: u32,
    pub reads: HeadInput,
    /// The weights file whose states it was trained on (file name); a different model's states
    /// mean nothing to it.
    pub model: String,
    pub dim: usize,
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
    /// How it was trained; free-form.
    #[serde(default)]
    pub training: serde_json::Value,
    /// Held-out evaluation; free-form.
    #[serde(default)]
    pub evaluation: serde_json::Value,
}

impl HeadFile {
    pub fn new(reads: HeadInput, model: &str, fit: Logistic) -> HeadFile {
        HeadFile {
            format: HEAD_FORMAT.into(),
            version: HEAD_VERSION,
            reads,
            model: model.to_owned(),
            dim: fit.weights.len(),
            mean: fit.mean,
            scale: fit.scale,
            weights: fit.weights,
            bias: fit.bias,
            training: serde_json::Value::Null,
            evaluation: serde_json::Value::Null,
        }
    }

    pub fn load(path: &Path) -> Result<HeadFile, HeadError> {
        let text = std::fs::read_to_string(path).map_err(|source| HeadError::Read {
            path: path.to_owned(),
            source,
        })?;
        let head: HeadFile = serde_json::from_str(&text).map_err(|source| HeadError::Parse {
            path: path.to_owned(),
            source,
        })?;
        head.check().map_err(|message| HeadError::Invalid {
            path: path.to_owned(),
            message,
        })?;
        Ok(head)
    }

    pub fn save(&self, path: &Path) -> Result<(), HeadError> {
        let text = serde_json::to_string_pretty(self).expect("a head serialises");
        std::fs::write(path, text + "\n").map_err(|source| HeadError::Write {
            path: path.to_owned(),
            source,
        })
    }

    fn check(&self) -> Result<(), String> {
        if self.format != HEAD_FORMAT {
            return Err(format!(
                "`format` is {:?}, expected {HEAD_FORMAT:?}",
                self.format
            ));
        }
        if self.version != HEAD_VERSION {
            return Err(format!(
                "`version` {} is not supported (this build reads {HEAD_VERSION})",
                self.version
            ));
        }
        crate::logistic::check_logistic(self.dim, &self.mean, &self.scale, &self.weights, self.bias)
    }

    pub fn logistic(&self) -> Logistic {
        Logistic {
            mean: self.mean.clone(),
            scale: self.scale.clone(),
            weights: self.weights.clone(),
            bias: self.bias,
        }
    }

    /// A fingerprint of what the head computes (its model, size and every parameter), as 16 hex
    /// digits: two copies of a head at different paths share it, and a retrained head at the
    /// same path does not. A router that reads this head's scores names it, so that a run
    /// scoring with another head is refused. FNV-1a over the parameters' bits: stable across
    /// builds and platforms (std's hasher is not), and no collision-resistance is asked of it.
    pub fn fingerprint(&self) -> String {
        let mut hash = 0xcbf2_9ce4_8422_2325_u64;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                hash = (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        eat(self.model.as_bytes());
        eat(&(self.dim as u64).to_le_bytes());
        for part in [&self.mean, &self.scale, &self.weights] {
            for x in part {
                eat(&x.to_bits().to_le_bytes());
            }
        }
        eat(&self.bias.to_bits().to_le_bytes());
        format!("{hash:016x}")
    }

    /// P(label = 1) for a hidden state of length `dim`.
    pub fn predict(&self, hidden: &[f32]) -> f32 {
        logistic_probability(hidden, &self.mean, &self.scale, &self.weights, self.bias)
    }
}

/// The value-head PRM: reads the step with a model loaded to report hidden states and scores the
/// state at its last token.
pub struct ValueHeadPrm {
    model: Arc<dyn TextProbe>,
    head: Logistic,
    dim: usize,
    name: String,
    fingerprint: String,
}

impl ValueHeadPrm {
    pub fn new(model: Arc<dyn TextProbe>, head: &HeadFile, path: &Path) -> Self {
        let name = Self::describe(path, model.name());
        ValueHeadPrm {
            model,
            head: head.logistic(),
            dim: head.dim,
            name,
            fingerprint: head.fingerprint(),
        }
    }
}

impl ValueHeadPrm {
    /// The name a head file at `path`, read on the model named `model`, scores under: what
    /// metrics record, and what a router that reads the PRM names.
    pub fn describe(path: &Path, model: &str) -> String {
        format!(
            "value-head {} on {model} (trained here on rollout labels)",
            path.display()
        )
    }
}

impl StepScorer for ValueHeadPrm {
    fn name(&self) -> &str {
        &self.name
    }

    fn fingerprint(&self) -> Option<&str> {
        Some(&self.fingerprint)
    }

    fn score_step(&self, transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError> {
        let probe = self
            .model
            .probe(transcript, step, &[], ForcedTokens::Skip)?;
        let Some(hidden) = probe.hidden else {
            return Err(EngineError::Invalid(format!(
                "the value head needs hidden states, and {} was not loaded to report them",
                self.model.name()
            )));
        };
        if hidden.len() != self.dim {
            return Err(EngineError::Invalid(format!(
                "the value head was trained on {}-value hidden states; {} gives {}",
                self.dim,
                self.model.name(),
                hidden.len()
            )));
        }
        Ok(Scored {
            score: self.head.predict(&hidden),
            usage: probe.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head() -> HeadFile {
        HeadFile::new(
            HeadInput::TargetHidden,
            "m.gguf",
            Logistic {
                mean: vec![0.0, 1.0],
                scale: vec![1.0, 2.0],
                weights: vec![2.0, -1.0],
                bias: 0.5,
            },
        )
    }

    #[test]
    fn a_saved_head_loads_back_and_predicts_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.json");
        let h = head();
        h.save(&path).unwrap();
        let back = HeadFile::load(&path).unwrap();
        assert_eq!(back, h);
        // z = 2·1 − 1·(3 − 1)/2 + 0.5 = 1.5
        let p = back.predict(&[1.0, 3.0]);
        assert!((p - 1.0 / (1.0 + (-1.5f32).exp())).abs() < 1e-6, "{p}");
    }

    #[test]
    fn a_fingerprint_follows_the_parameters_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let h = head();
        let (a, b) = (dir.path().join("a.json"), dir.path().join("b.json"));
        h.save(&a).unwrap();
        // The same head written by hand, without the free-form fields: the same fingerprint.
        let mut bare = serde_json::to_value(&h).unwrap();
        bare.as_object_mut().unwrap().remove("training");
        std::fs::write(&b, bare.to_string()).unwrap();
        let fingerprint = HeadFile::load(&a).unwrap().fingerprint();
        assert_eq!(fingerprint.len(), 16);
        assert_eq!(HeadFile::load(&b).unwrap().fingerprint(), fingerprint);
        // Any parameter moved, or another model's states: another fingerprint.
        let mut moved = h.clone();
        moved.weights[1] = -1.0 + 1e-12;
        let mut other_model = h.clone();
        other_model.model = "n.gguf".into();
        let mut other_bias = h.clone();
        other_bias.bias = -0.5;
        for changed in [moved, other_model, other_bias] {
            assert_ne!(changed.fingerprint(), fingerprint);
        }
    }

    #[test]
    fn a_head_whose_lengths_disagree_names_the_field() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.json");
        let mut h = head();
        h.weights.push(1.0);
        std::fs::write(&path, serde_json::to_string(&h).unwrap()).unwrap();
        let err = HeadFile::load(&path).unwrap_err().to_string();
        assert!(err.contains("`weights` has 3 values for 2 inputs"), "{err}");
        assert!(err.contains("h.json"), "{err}");
    }
}
