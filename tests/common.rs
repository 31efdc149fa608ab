//! Shared by the integration tests: the smoke model and paths.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

use arbitrage::config::Config;
use arbitrage::engines::llama::EmbeddedModel;

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

pub fn smoke_model() -> EmbeddedModel {
    EmbeddedModel::load(smoke_config().draft.embedded().expect("embedded"))
        .expect("load smoke model")
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
