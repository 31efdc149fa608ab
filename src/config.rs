//! The run configuration: a TOML file (or the built-in embedded default), parsed and then
//! resolved into [`Config`], the only form the rest of the program accepts.
//!
//! Relative model paths are resolved once, here, against `models.dir`; every key is checked, so a
//! typo is an error that names the key and the file instead of a silently ignored setting.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engines::llama::EmbeddedSettings;
use crate::engines::remote::{PrmApi, RetryPolicy};
use crate::method::prm::PrmKind;
use crate::method::prompts::PromptTemplate;
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
    #[serde(default)]
    remote: RawRemote,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrm {
    kind: Option<String>,
    /// `kind = "value-head"`: the head file, relative to the config file.
    head: Option<PathBuf>,
    /// Remote PRM: base URL(s) ending in `/v1`.
    url: Option<OneOrMany>,
    model: Option<String>,
    /// `pooling` (default) or `embeddings`.
    api: Option<String>,
    /// A `tokenizer.json`, relative to the config file.
    tokenizer: Option<PathBuf>,
    /// Embeddings API: the BOS text put before the problem.
    bos: Option<String>,
    /// Embeddings API: the token put after each step.
    step_token: Option<String>,
    api_key_env: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRouter {
    /// Router file, relative to the config file (or to the current directory for the default).
    file: Option<PathBuf>,
    /// Remote router: base URL(s) ending in `/v1`.
    url: Option<OneOrMany>,
    model: Option<String>,
    api_key_env: Option<String>,
}

/// A string or a list of strings (`url = "http://h:8000/v1"` or `url = ["…", "…"]`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRemote {
    connect_timeout_s: Option<f64>,
    request_timeout_s: Option<f64>,
    max_attempts: Option<u32>,
    initial_backoff_ms: Option<u64>,
    max_backoff_ms: Option<u64>,
    max_retry_after_s: Option<f64>,
    logprobs: Option<u32>,
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
    /// A GGUF file, absolute or relative to `models.dir` (embedded engine).
    file: Option<PathBuf>,
    /// Base URL(s) ending in `/v1` (remote engine).
    url: Option<OneOrMany>,
    /// The model name the server serves.
    model: Option<String>,
    /// A `tokenizer.json`, relative to the config file: prompts are then sent as token ids.
    tokenizer: Option<PathBuf>,
    /// The environment variable holding a bearer token for the endpoints.
    api_key_env: Option<String>,
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
    /// End a step that falls into a loop (default true).
    stop_loops: Option<bool>,
    max_tokens: Option<u32>,
    max_steps: Option<u32>,
    temperature: Option<f32>,
    top_p: Option<f32>,
    seed: Option<u32>,
    /// The target verifies a rejected draft step before writing its own (default true).
    verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    template: Option<String>,
}

/// A model role's resolved engine: a GGUF file run here, or a remote server.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Embedded(EmbeddedSettings),
    Remote(RemoteModelConfig),
}

impl ModelConfig {
    pub fn embedded(&self) -> Option<&EmbeddedSettings> {
        match self {
            ModelConfig::Embedded(e) => Some(e),
            ModelConfig::Remote(_) => None,
        }
    }

    pub fn remote(&self) -> Option<&RemoteModelConfig> {
        match self {
            ModelConfig::Remote(r) => Some(r),
            ModelConfig::Embedded(_) => None,
        }
    }
}

/// A remote endpoint set and the model name sent to it.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteModelConfig {
    /// Base URLs ending in `/v1`; requests go round-robin and fail over.
    pub endpoints: Vec<String>,
    pub model: String,
    /// Generation: send prompts as token ids made with this `tokenizer.json`.
    pub tokenizer: Option<PathBuf>,
    pub api_key: Option<String>,
}

/// `prm.kind` of the value-head PRM.
pub const VALUE_HEAD: &str = "value-head";

/// The PRM: an embedded stand-in or value head, or a served PRM.
#[derive(Debug, Clone, PartialEq)]
pub enum PrmConfig {
    Embedded(PrmKind),
    /// A value head (`arbitrage train-heads`) on the embedded target's hidden state.
    ValueHead(PathBuf),
    Remote(RemotePrmConfig),
}

#[derive(Debug, Clone, PartialEq)]
pub struct RemotePrmConfig {
    pub server: RemoteModelConfig,
    pub api: PrmApi,
    pub bos: String,
    pub step_token: String,
}

/// Timeouts, retries and logprobs for every remote role.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSettings {
    pub retry: RetryPolicy,
    /// Top-k alternatives requested per token where logprobs are needed.
    pub logprobs: u32,
}

/// Limits of a whole solution and of each step.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationConfig {
    pub step: StepOptions,
    /// Tokens over all steps of one problem.
    pub max_tokens: u32,
    pub max_steps: u32,
    /// The target verifies a rejected draft step before writing its own.
    pub verify: bool,
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
    /// The PRM: the embedded stand-in (run on the target model) or a served one.
    pub prm: PrmConfig,
    /// The router file `router` runs load.
    pub router_file: Option<PathBuf>,
    /// A router served remotely (instead of a router file).
    pub remote_router: Option<RemoteModelConfig>,
    pub remote: RemoteSettings,
    /// Where embedded models live and how they load (`models.dir`, `[engine]`): for the roles
    /// above and for a model no role names (the value head's own model beside a remote target).
    pub embedded: EmbeddedDefaults,
}

/// `models.dir` and `[engine]`: what every embedded model is loaded with.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddedDefaults {
    pub models_dir: PathBuf,
    pub n_ctx: u32,
    pub threads: u32,
    pub n_batch: u32,
}

impl EmbeddedDefaults {
    /// The settings of the model file `file` (in `models_dir`), named `name` in logs.
    pub fn settings(&self, name: &str, file: &Path) -> EmbeddedSettings {
        EmbeddedSettings {
            name: name.to_owned(),
            path: self.models_dir.join(file),
            n_ctx: self.n_ctx,
            threads: self.threads,
            n_batch: self.n_batch,
            slots: 1,
            hidden_states: false,
        }
    }
}

impl Config {
    /// The same configuration with every embedded model holding `slots` problems at once.
    pub fn with_slots(&self, slots: usize) -> Config {
        let mut config = self.clone();
        for model in [&mut config.draft, &mut config.target] {
            if let ModelConfig::Embedded(settings) = model {
                settings.slots = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
            }
        }
        config
    }
}

/// Command-line overrides of the remote settings: a role given a URL becomes remote.
#[derive(Debug, Clone, Default)]
pub struct RemoteOverrides {
    pub draft_url: Option<Vec<String>>,
    pub target_url: Option<Vec<String>>,
    pub prm_url: Option<Vec<String>>,
    pub router_url: Option<Vec<String>>,
    pub draft_model: Option<String>,
    pub target_model: Option<String>,
    pub prm_model: Option<String>,
    pub router_model: Option<String>,
    pub prm_api: Option<PrmApi>,
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
        let embedded = EmbeddedDefaults {
            models_dir,
            n_ctx,
            threads,
            n_batch,
        };
        let relative = |p: PathBuf| match base {
            Some(base) => base.join(p),
            None => p,
        };
        let model = |role: &str, raw: &RawModel| -> Result<ModelConfig, ConfigError> {
            let key = |k: &str| format!("`models.{role}.{k}`");
            match (&raw.file, &raw.url) {
                (Some(_), Some(_)) => Err(invalid(format!(
                    "{} and {} both given: a model is either a file run here or a server",
                    key("file"),
                    key("url")
                ))),
                (None, None) => Err(invalid(format!(
                    "`models.{role}` needs `file` (a GGUF model) or `url` (a server)"
                ))),
                (Some(file), None) => {
                    for (k, given) in [
                        ("model", raw.model.is_some()),
                        ("tokenizer", raw.tokenizer.is_some()),
                        ("api_key_env", raw.api_key_env.is_some()),
                    ] {
                        if given {
                            return Err(invalid(format!(
                                "{} applies to a remote model (`url`), not to a `file`",
                                key(k)
                            )));
                        }
                    }
                    Ok(ModelConfig::Embedded(embedded.settings(role, file)))
                }
                (None, Some(url)) => Ok(ModelConfig::Remote(remote_model(
                    &format!("models.{role}"),
                    url.clone().into_vec(),
                    raw.model.clone(),
                    raw.tokenizer.clone().map(relative),
                    raw.api_key_env.as_deref(),
                    origin,
                )?)),
            }
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
        let p = raw.prm;
        let prm = match p.url {
            None => {
                for (k, given) in [
                    ("model", p.model.is_some()),
                    ("api", p.api.is_some()),
                    ("tokenizer", p.tokenizer.is_some()),
                    ("bos", p.bos.is_some()),
                    ("step_token", p.step_token.is_some()),
                    ("api_key_env", p.api_key_env.is_some()),
                ] {
                    if given {
                        return Err(invalid(format!(
                            "`prm.{k}` applies to a remote PRM: set `prm.url` too"
                        )));
                    }
                }
                match (p.kind.as_deref().unwrap_or("target-logprob"), p.head) {
                    (VALUE_HEAD, Some(head)) => PrmConfig::ValueHead(relative(head)),
                    (VALUE_HEAD, None) => {
                        return Err(invalid(
                            "`prm.kind = \"value-head\"` needs `prm.head`, the head file `arbitrage train-heads` wrote".into(),
                        ));
                    }
                    (_, Some(_)) => {
                        return Err(invalid(
                            "`prm.head` applies to `prm.kind = \"value-head\"`".into(),
                        ));
                    }
                    (kind, None) => PrmConfig::Embedded(
                        kind.parse::<PrmKind>()
                            .map_err(|e| invalid(format!("`prm.kind`: {e}, value-head")))?,
                    ),
                }
            }
            Some(url) => {
                if p.kind.is_some() || p.head.is_some() {
                    return Err(invalid(
                        "`prm.kind` names an embedded stand-in; a remote PRM (`prm.url`) takes `api` instead".into(),
                    ));
                }
                let api = p
                    .api
                    .as_deref()
                    .unwrap_or("pooling")
                    .parse::<PrmApi>()
                    .map_err(|e| invalid(format!("`prm.api`: {e}")))?;
                let server = remote_model(
                    "prm",
                    url.into_vec(),
                    p.model,
                    p.tokenizer.map(relative),
                    p.api_key_env.as_deref(),
                    origin,
                )?;
                if api == PrmApi::Embeddings && server.tokenizer.is_none() {
                    return Err(invalid(
                        "`prm.api = \"embeddings\"` needs `prm.tokenizer` (a tokenizer.json): its input is token ids".into(),
                    ));
                }
                PrmConfig::Remote(RemotePrmConfig {
                    server,
                    api,
                    bos: p.bos.unwrap_or_else(|| "<|endoftext|>".to_owned()),
                    step_token: p.step_token.unwrap_or_else(|| "\n".to_owned()),
                })
            }
        };
        let r = raw.router;
        if r.file.is_some() && r.url.is_some() {
            return Err(invalid(
                "`router.file` and `router.url` both given: a router is a file or a server".into(),
            ));
        }
        if r.url.is_none() && (r.model.is_some() || r.api_key_env.is_some()) {
            return Err(invalid(
                "`router.model` and `router.api_key_env` apply to a remote router: set `router.url` too".into(),
            ));
        }
        let remote_router = match r.url {
            Some(url) => Some(remote_model(
                "router",
                url.into_vec(),
                r.model,
                None,
                r.api_key_env.as_deref(),
                origin,
            )?),
            None => None,
        };
        let router_file = r.file.map(relative);
        let rr = raw.remote;
        let defaults = RetryPolicy::default();
        let seconds = |key: &str, v: Option<f64>, default: std::time::Duration| match v {
            None => Ok(default),
            Some(s) if s.is_finite() && s > 0.0 => Ok(std::time::Duration::from_secs_f64(s)),
            Some(s) => Err(invalid(format!(
                "`remote.{key}` must be a positive number of seconds, got {s}"
            ))),
        };
        let retry = RetryPolicy {
            connect_timeout: seconds(
                "connect_timeout_s",
                rr.connect_timeout_s,
                defaults.connect_timeout,
            )?,
            request_timeout: seconds(
                "request_timeout_s",
                rr.request_timeout_s,
                defaults.request_timeout,
            )?,
            max_attempts: match rr.max_attempts {
                Some(0) => return Err(invalid("`remote.max_attempts` must be at least 1".into())),
                Some(n) => n,
                None => defaults.max_attempts,
            },
            initial_backoff: rr
                .initial_backoff_ms
                .map_or(defaults.initial_backoff, std::time::Duration::from_millis),
            max_backoff: rr
                .max_backoff_ms
                .map_or(defaults.max_backoff, std::time::Duration::from_millis),
            max_retry_after: seconds(
                "max_retry_after_s",
                rr.max_retry_after_s,
                defaults.max_retry_after,
            )?,
        };
        let logprobs = rr.logprobs.unwrap_or(5);
        if logprobs == 0 {
            return Err(invalid(
                "`remote.logprobs` must be at least 1 (the router reads token log-probabilities)"
                    .into(),
            ));
        }
        Ok(Config {
            origin: origin.to_owned(),
            prm,
            router_file,
            remote_router,
            remote: RemoteSettings { retry, logprobs },
            draft: model("draft", &raw.models.draft)?,
            target: model("target", &raw.models.target)?,
            embedded,
            generation: GenerationConfig {
                step: StepOptions {
                    separator: Some(separator),
                    max_tokens: max_step_tokens,
                    stop_loops: g.stop_loops.unwrap_or(true),
                    sampling: Sampling {
                        temperature,
                        top_p,
                        seed: g.seed.unwrap_or(0),
                    },
                },
                max_tokens: g.max_tokens.unwrap_or(4096),
                max_steps: g.max_steps.unwrap_or(100),
                verify: g.verify.unwrap_or(true),
            },
            prompt,
        })
    }
}

/// Checks a remote role's settings: at least one `http(s)://` URL, and a model name.
fn remote_model(
    key: &str,
    endpoints: Vec<String>,
    model: Option<String>,
    tokenizer: Option<PathBuf>,
    api_key_env: Option<&str>,
    origin: &str,
) -> Result<RemoteModelConfig, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        origin: origin.to_owned(),
        message,
    };
    if endpoints.is_empty() {
        return Err(invalid(format!("`{key}.url` lists no endpoint")));
    }
    for url in &endpoints {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(format!(
                "`{key}.url`: {url:?} is not an http:// or https:// URL"
            )));
        }
    }
    let model = model.filter(|m| !m.is_empty()).ok_or_else(|| {
        invalid(format!(
            "`{key}.model` is required with `{key}.url`: the model name the server serves"
        ))
    })?;
    let api_key = match api_key_env {
        None => None,
        Some(var) => Some(std::env::var(var).map_err(|_| {
            invalid(format!(
                "`{key}.api_key_env` names ${var}, which is not set"
            ))
        })?),
    };
    Ok(RemoteModelConfig {
        endpoints,
        model,
        tokenizer,
        api_key,
    })
}

impl Config {
    /// Applies command-line overrides. A role given a URL becomes remote (its model name from the
    /// flag, else from the config when the role was remote already); a model name alone changes
    /// the name sent to a role that is remote.
    pub fn with_overrides(mut self, o: &RemoteOverrides) -> Result<Config, ConfigError> {
        let origin = format!("{} with command-line overrides", self.origin);
        let invalid = |message: String| ConfigError::Invalid {
            origin: origin.clone(),
            message,
        };
        fn role(
            current: Option<&RemoteModelConfig>,
            url: &Option<Vec<String>>,
            model: &Option<String>,
            name: &str,
            origin: &str,
        ) -> Result<Option<RemoteModelConfig>, ConfigError> {
            let invalid = |message: String| ConfigError::Invalid {
                origin: origin.to_owned(),
                message,
            };
            match (url, current) {
                (None, None) if model.is_some() => Err(invalid(format!(
                    "--{name}-model applies to a remote {name}: give --{name}-url too (or `url` in the config)"
                ))),
                (None, None) => Ok(None),
                (None, Some(cur)) => {
                    let mut cur = cur.clone();
                    if let Some(m) = model {
                        cur.model = m.clone();
                    }
                    Ok(Some(cur))
                }
                (Some(urls), cur) => {
                    let model = model
                        .clone()
                        .or_else(|| cur.map(|c| c.model.clone()))
                        .ok_or_else(|| invalid(format!("--{name}-url needs --{name}-model: the model name the server serves")))?;
                    let mut r = remote_model(name, urls.clone(), Some(model), None, None, origin)?;
                    if let Some(cur) = cur {
                        r.tokenizer = cur.tokenizer.clone();
                        r.api_key = cur.api_key.clone();
                    }
                    Ok(Some(r))
                }
            }
        }
        if let Some(r) = role(
            self.draft.remote(),
            &o.draft_url,
            &o.draft_model,
            "draft",
            &origin,
        )? {
            self.draft = ModelConfig::Remote(r);
        }
        if let Some(r) = role(
            self.target.remote(),
            &o.target_url,
            &o.target_model,
            "target",
            &origin,
        )? {
            self.target = ModelConfig::Remote(r);
        }
        let current_prm = match &self.prm {
            PrmConfig::Remote(p) => Some(p.clone()),
            PrmConfig::Embedded(_) | PrmConfig::ValueHead(_) => None,
        };
        if let Some(server) = role(
            current_prm.as_ref().map(|p| &p.server),
            &o.prm_url,
            &o.prm_model,
            "prm",
            &origin,
        )? {
            let mut p = current_prm.unwrap_or(RemotePrmConfig {
                server: server.clone(),
                api: PrmApi::Pooling,
                bos: "<|endoftext|>".to_owned(),
                step_token: "\n".to_owned(),
            });
            p.server = server;
            if let Some(api) = o.prm_api {
                p.api = api;
            }
            if p.api == PrmApi::Embeddings && p.server.tokenizer.is_none() {
                return Err(invalid("the `embeddings` PRM API needs `[prm] tokenizer` in the config: its input is token ids".into()));
            }
            self.prm = PrmConfig::Remote(p);
        } else if o.prm_api.is_some() {
            return Err(invalid("--prm-api applies to a remote PRM: give --prm-url too (or `[prm] url` in the config)".into()));
        }
        if let Some(r) = role(
            self.remote_router.as_ref(),
            &o.router_url,
            &o.router_model,
            "router",
            &origin,
        )? {
            self.remote_router = Some(r);
            self.router_file = None;
        }
        Ok(self)
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
                .embedded()
                .unwrap()
                .path
                .ends_with("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")
        );
        assert_eq!(c.generation.step.separator.as_deref(), Some("\n\n"));
    }

    #[test]
    fn the_built_in_default_prm_is_the_shipped_head_on_the_default_target() {
        use crate::method::value_head::{HeadFile, HeadInput};
        let c = Config::embedded_default().unwrap();
        let PrmConfig::ValueHead(path) = &c.prm else {
            panic!("the default PRM is {:?}", c.prm)
        };
        let head = HeadFile::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        assert_eq!(head.reads, HeadInput::TargetHidden);
        let target = c.target.embedded().unwrap().path.file_name().unwrap();
        assert_eq!(head.model, target.to_str().unwrap());
    }

    #[test]
    fn relative_files_resolve_against_the_config_directory() {
        let toml = MINIMAL.to_string();
        let toml = toml.replace(
            "[models.draft]",
            "[models]\ndir = \"../weights\"\n[models.draft]",
        );
        let c = Config::from_toml(&toml, "x", Some(Path::new("/etc/arb"))).unwrap();
        assert_eq!(
            c.draft.embedded().unwrap().path,
            Path::new("/etc/arb/../weights/d.gguf")
        );
        assert_eq!(c.target.embedded().unwrap().path, Path::new("/abs/t.gguf"));
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

    const REMOTE: &str = "[models.draft]\nurl = \"http://d:8000/v1\"\nmodel = \"D\"\n\
        [models.target]\nurl = [\"http://t1:8001/v1\", \"http://t2:8001/v1\"]\nmodel = \"T\"\n";

    fn err(toml: &str) -> String {
        let e = Config::from_toml(toml, "cfg.toml", None).unwrap_err();
        match std::error::Error::source(&e) {
            Some(s) => format!("{e}: {s}"),
            None => e.to_string(),
        }
    }

    #[test]
    fn a_role_with_a_url_is_remote_with_every_endpoint() {
        let c = Config::from_toml(REMOTE, "x", None).unwrap();
        let t = c.target.remote().unwrap();
        assert_eq!(t.endpoints, ["http://t1:8001/v1", "http://t2:8001/v1"]);
        assert_eq!(t.model, "T");
        assert_eq!(c.draft.remote().unwrap().endpoints, ["http://d:8000/v1"]);
        assert_eq!(c.prm, PrmConfig::Embedded(PrmKind::TargetLogprob));
    }

    #[test]
    fn remote_keys_are_checked_and_named() {
        assert!(
            err(&REMOTE.replace("model = \"D\"\n", ""))
                .contains("`models.draft.model` is required")
        );
        assert!(
            err(&REMOTE.replace("url = \"http://d:8000/v1\"", "url = \"d:8000\""))
                .contains("not an http")
        );
        assert!(
            err(&REMOTE.replace("model = \"D\"", "model = \"D\"\nfile = \"x.gguf\""))
                .contains("both given")
        );
        assert!(err(&format!("{REMOTE}[models.extra]\n")).contains("extra"));
        assert!(err(&format!("{REMOTE}[remote]\nretries = 3\n")).contains("retries"));
        assert!(
            err(&format!("{REMOTE}[remote]\nrequest_timeout_s = 0\n"))
                .contains("remote.request_timeout_s")
        );
        assert!(
            err(&format!("{REMOTE}[prm]\nmodel = \"P\"\n"))
                .contains("`prm.model` applies to a remote PRM")
        );
        assert!(
            err(&format!(
                "{REMOTE}[prm]\nurl = \"http://p/v1\"\nmodel = \"P\"\napi = \"embeddings\"\n"
            ))
            .contains("needs `prm.tokenizer`")
        );
        assert!(
            err(&format!(
                "{REMOTE}[router]\nfile = \"r.json\"\nurl = \"http://r/v1\"\nmodel = \"R\"\n"
            ))
            .contains("both given")
        );
    }

    #[test]
    fn a_remote_prm_and_router_resolve_with_their_defaults() {
        let toml = format!(
            "{REMOTE}[prm]\nurl = \"http://p/v1\"\nmodel = \"P\"\ntokenizer = \"tok.json\"\n[router]\nurl = \"http://r/v1\"\nmodel = \"R\"\n[remote]\nmax_attempts = 2\n"
        );
        let c = Config::from_toml(&toml, "x", Some(Path::new("/etc/arb"))).unwrap();
        let PrmConfig::Remote(p) = &c.prm else {
            panic!("{:?}", c.prm)
        };
        assert_eq!(p.api, PrmApi::Pooling);
        assert_eq!(
            p.server.tokenizer.as_deref(),
            Some(Path::new("/etc/arb/tok.json"))
        );
        assert_eq!(c.remote_router.as_ref().unwrap().model, "R");
        assert_eq!(c.remote.retry.max_attempts, 2);
    }

    #[test]
    fn flags_override_the_config_role_by_role() {
        let c = Config::from_toml(MINIMAL, "x", None).unwrap();
        let o = RemoteOverrides {
            target_url: Some(vec!["http://t:1/v1".into()]),
            target_model: Some("T".into()),
            ..RemoteOverrides::default()
        };
        let c = c.with_overrides(&o).unwrap();
        assert!(
            c.draft.embedded().is_some(),
            "the draft stays as configured"
        );
        assert_eq!(c.target.remote().unwrap().model, "T");

        let c = Config::from_toml(REMOTE, "x", None).unwrap();
        let o = RemoteOverrides {
            draft_model: Some("D2".into()),
            prm_url: Some(vec!["http://p/v1".into()]),
            prm_model: Some("P".into()),
            ..RemoteOverrides::default()
        };
        let c = c.with_overrides(&o).unwrap();
        assert_eq!(c.draft.remote().unwrap().model, "D2");
        assert!(matches!(&c.prm, PrmConfig::Remote(p) if p.api == PrmApi::Pooling));

        let bad = |o: RemoteOverrides| {
            Config::from_toml(MINIMAL, "x", None)
                .unwrap()
                .with_overrides(&o)
                .unwrap_err()
                .to_string()
        };
        assert!(
            bad(RemoteOverrides {
                draft_url: Some(vec!["http://d/v1".into()]),
                ..Default::default()
            })
            .contains("--draft-url needs --draft-model")
        );
        assert!(
            bad(RemoteOverrides {
                router_model: Some("R".into()),
                ..Default::default()
            })
            .contains("--router-model applies to a remote router")
        );
        assert!(
            bad(RemoteOverrides {
                prm_api: Some(PrmApi::Embeddings),
                ..Default::default()
            })
            .contains("--prm-api applies to a remote PRM")
        );
    }

    #[test]
    fn every_shipped_config_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("configs");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                Config::from_file(&path).unwrap_or_else(|e| panic!("{}: {e:?}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 4, "{n} configs");
        let c = Config::from_file(&dir.join("remote-vllm.toml")).unwrap();
        assert!(c.draft.remote().is_some() && c.target.remote().is_some());
        assert!(matches!(c.prm, PrmConfig::Remote(_)) && c.remote_router.is_some());
    }
}
