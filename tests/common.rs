//! Shared by the integration tests: the smoke model and paths.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use arbitrage::config::Config;
use arbitrage::engines::llama::{EmbeddedModel, EmbeddedSettings};
use serde_json::Value;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The smoke config (SmolLM2-135M in every role). Fails with the fix when the model is missing.
pub fn smoke_config() -> Config {
    let config = Config::from_file(&repo().join("configs/smoke.toml")).expect("configs/smoke.toml");
    assert!(
        config.draft.embedded().expect("embedded").path.is_file(),
        "smoke model {} is missing: run scripts/fetch-models.sh smoke",
        config.draft.embedded().expect("embedded").path.display()
    );
    config
}

/// The smoke model's load settings, to vary (slots, hidden states) before loading.
pub fn smoke_settings() -> EmbeddedSettings {
    smoke_config().draft.embedded().expect("embedded").clone()
}

pub fn smoke_model() -> EmbeddedModel {
    EmbeddedModel::load(&smoke_settings()).expect("load smoke model")
}

/// The smoke router (tests/data/smoke-router.json) reading the score of the PRM named `prm` after
/// its features: a surer PRM, a lower ŷ.
pub fn smoke_router_reading_prm(prm: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("tests/data/smoke-router.json")).unwrap();
    let mut file: Value = serde_json::from_str(&text).unwrap();
    file["features"]
        .as_array_mut()
        .unwrap()
        .push("prm_score".into());
    for (key, value) in [("mean", 0.5), ("scale", 0.2), ("weights", -3.0)] {
        file[key].as_array_mut().unwrap().push(value.into());
    }
    file["prm"] = prm.into();
    file
}

/// Runs the binary from the repository root, without a config from the environment.
pub fn arbitrage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arbitrage"))
        .args(args)
        .current_dir(repo())
        .env_remove("ARBITRAGE_CONFIG")
        .output()
        .expect("run arbitrage")
}

/// What a run decided, without timings: per problem (in `idx` order), each step's author, text,
/// scores and rejected draft, the prediction, verdict, error and token counts.
pub fn decisions(results: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = results
        .iter()
        .map(|r| {
            let steps: Vec<Value> = r["steps"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| {
                    serde_json::json!([
                        s["model"],
                        s["text"],
                        s.get("prm_score"),
                        s.get("router_score"),
                        s.get("rejected_draft_text")
                    ])
                })
                .collect();
            serde_json::json!({"idx": r["idx"], "pred": r["pred"], "correct": r["correct"],
                   "error": r.get("error"), "steps": steps, "tokens": r["tokens"]})
        })
        .collect();
    out.sort_by_key(|r| r["idx"].as_u64());
    out
}
