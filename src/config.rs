//! The run configuration: a TOML file (or the built-in embedded default), parsed and then
//! resolved into [`Config`], the only form the rest of the program accepts.
//!
//! Relative model paths are resolved once, here, against `models.dir`; every key is checked, so a
//! typo is an error that names the key and the file instead of a silently ignored setting.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::llama::EmbeddedSettings;
use crate::prm::PrmKind;
use crate::prompts::PromptTemplate;
use crate::types::{Sampling, StepOptions};

/// The embedded default: Qwen2.5-Coder-0.5B drafts, Qwen2.5-Coder-1.5B is the target.
pub const DEFAULT_CONFIG: &str = include_str!("../configs/default.toml");

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid config {origin}")]
    Parse {
        origin: String,
        #[source]
        source: toml::de::Error,
    },
    #[error("invalid config {origin}: {message}")]
    Invalid { origin: String, message: String },
}

/// The file as written. Every table rejects unknown keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    models: RawModels,
    #[serde(default)]
    engine: RawEngine,
    #[serde(default)]
    generation: RawGeneration,
    #[serde(default)]
    prompt: RawPrompt,
    #[serde(default)]
    prm: RawPrm,
    #[serde(default)]
    router: RawRouter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrm {
    kind: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    /// Router file, relative to the config file (or to the current directory for the default).
    file: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModels {
    /// Directory that relative model files are found in, itself relative to the config file.
    dir: Option<PathBuf>,
    draft: RawModel,
    target: RawModel,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    /// A GGUF file, absolute or relative to `models.dir`.
    file: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    threads: Option<u32>,
    n_ctx: Option<u32>,
    n_batch: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGeneration {
    separator: Option<String>,
    max_step_tokens: Option<u32>,
    max_tokens: Option<u32>,
    max_steps: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    template: Option<String>,
}

/// A model role's resolved engine settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelConfig {
    pub engine: EmbeddedSettings,
}

/// Limits of a whole solution and of each step.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub step: StepOptions,
    /// Tokens over all steps of one problem.
    pub max_tokens: u32,
    pub max_steps: u32,
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Where the configuration came from, for messages.
    pub origin: String,
    pub draft: ModelConfig,
    pub target: ModelConfig,
    pub generation: GenerationConfig,
    pub prompt: PromptTemplate,
    /// The embedded stand-in PRM, run on the target model.
    pub prm: PrmKind,
    /// The router file `router` runs load.
    pub router_file: Option<PathBuf>,
}

impl Config {
    /// Loads a config file. Relative paths in it are relative to the file's directory.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::from_toml(&text, &path.display().to_string(), Some(base))
    }

    /// The built-in embedded default.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Config::from_toml(DEFAULT_CONFIG, "(built-in default)", None)
    }

    /// Parses config text. Without `base` (the built-in default) the models directory is
    /// `$ARBITRAGE_MODELS_DIR`, else `models/` in the current directory.
    pub fn from_toml(text: &str, origin: &str, base: Option<&Path>) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|source| ConfigError::Parse {
            origin: origin.to_owned(),
            source,
        })?;
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.to_owned(),
            message,
        };
        let models_dir = match (&raw.models.dir, base) {
            (Some(dir), Some(base)) => base.join(dir),
            (Some(dir), None) => dir.clone(),
            (None, _) => std::env::var_os("ARBITRAGE_MODELS_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("models")),
        };
        let threads = match raw.engine.threads {
            Some(0) => return Err(invalid("`engine.threads` must be at least 1".into())),
            Some(n) => n,
            None => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        };
        let n_ctx = raw.engine.n_ctx.unwrap_or(8192);
        if n_ctx < 256 {
            return Err(invalid(format!(
                "`engine.n_ctx` must be at least 256, got {n_ctx}"
            )));
        }
        let n_batch = raw.engine.n_batch.unwrap_or(512);
        if n_batch == 0 {
            return Err(invalid("`engine.n_batch` must be at least 1".into()));
        }
        let model = |role: &str, raw: &RawModel| ModelConfig {
            engine: EmbeddedSettings {
                name: role.to_owned(),
                path: models_dir.join(&raw.file),
                n_ctx,
                threads,
                n_batch,
            },
        };
        let g = &raw.generation;
        let temperature = g.temperature.unwrap_or(0.0);
        if !(0.0..=5.0).contains(&temperature) {
            return Err(invalid(format!(
                "`generation.temperature` must be in [0, 5], got {temperature}"
            )));
        }
        let top_p = g.top_p.unwrap_or(1.0);
        if !(top_p > 0.0 && top_p <= 1.0) {
            return Err(invalid(format!(
                "`generation.top_p` must be in (0, 1], got {top_p}"
            )));
        }
        let separator = g.separator.clone().unwrap_or_else(|| "\n\n".to_owned());
        if separator.is_empty() {
            return Err(invalid("`generation.separator` must not be empty".into()));
        }
        let max_step_tokens = g.max_step_tokens.unwrap_or(512);
        if max_step_tokens == 0 {
            return Err(invalid(
                "`generation.max_step_tokens` must be at least 1".into(),
            ));
        }
        let template_name = raw.prompt.template.as_deref().unwrap_or("qwen25-math-cot");
        let prompt = template_name
            .parse::<PromptTemplate>()
            .map_err(|e| invalid(format!("`prompt.template`: {e}")))?;
        let prm = raw
            .prm
            .kind
            .as_deref()
            .unwrap_or("target-logprob")
            .parse::<PrmKind>()
            .map_err(|e| invalid(format!("`prm.kind`: {e}")))?;
        let router_file = raw.router.file.map(|f| match base {
            Some(base) => base.join(f),
            None => f,
        });
        Ok(Config {
            origin: origin.to_owned(),
            prm,
            router_file,
            draft: model("draft", &raw.models.draft),
            target: model("target", &raw.models.target),
            generation: GenerationConfig {
                step: StepOptions {
                    separator: Some(separator),
                    max_tokens: max_step_tokens,
                    sampling: Sampling {
                        temperature,
                        top_p,
                        seed: g.seed.unwrap_or(0),
                    },
                },
                max_tokens: g.max_tokens.unwrap_or(4096),
                max_steps: g.max_steps.unwrap_or(100),
            },
            prompt,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[models.draft]\nfile = \"d.gguf\"\n[models.target]\nfile = \"/abs/t.gguf\"\n";

    #[test]
    fn the_built_in_default_parses() {
        let c = Config::embedded_default().unwrap();
        assert!(
            c.draft
                .engine
                .path
                .ends_with("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        );
        assert_eq!(c.generation.step.separator.as_deref(), Some("\n\n"));
    }

    #[test]
    fn relative_files_resolve_against_the_config_directory() {
        let toml = MINIMAL.to_string();
        let toml = toml.replace(
            "[models.draft]",
            "[models]\ndir = \"../weights\"\n[models.draft]",
        );
        let c = Config::from_toml(&toml, "x", Some(Path::new("/etc/arb"))).unwrap();
        assert_eq!(c.draft.engine.path, Path::new("/etc/arb/../weights/d.gguf"));
        assert_eq!(c.target.engine.path, Path::new("/abs/t.gguf"));
    }

    #[test]
    fn an_unknown_key_is_named_in_the_error() {
        let toml = format!("{MINIMAL}[engine]\nthreds = 2\n");
        let err = Config::from_toml(&toml, "cfg.toml", None).unwrap_err();
        let chain = format!("{err}: {}", std::error::Error::source(&err).unwrap());
        assert!(chain.contains("threds"), "{chain}");
        assert!(chain.contains("cfg.toml"), "{chain}");
    }

    #[test]
    fn an_out_of_range_value_is_named_with_its_bound() {
        let toml = format!("{MINIMAL}[generation]\ntop_p = 0.0\n");
        let err = Config::from_toml(&toml, "cfg.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("generation.top_p"), "{err}");
    }

    #[test]
    fn an_unknown_prompt_template_is_an_error() {
        let toml = format!("{MINIMAL}[prompt]\ntemplate = \"nope\"\n");
        let err = Config::from_toml(&toml, "cfg.toml", None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("nope"), "{err}");
    }
}
