//! What `run` and `serve` load from a configuration: the draft and target engines, the PRM, the
//! router, and the limits of a solution. One place, so both commands build the same models from
//! the same flags.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use arbitrage::backend::Router;
use arbitrage::backend::{StepGenerator, StepScorer, TextProbe};
use arbitrage::config::{Config, ModelConfig, PrmConfig, RemoteModelConfig};
use arbitrage::engines::llama::{EmbeddedModel, EmbeddedSettings};
use arbitrage::engines::remote::{
    Client, LocalTokenizer, RemoteGenerator, RemotePrm, RemoteRouter,
};
use arbitrage::method::policy::Budget;
use arbitrage::method::prm::ProbePrm;
use arbitrage::method::router::{FeatureRouter, ProbeRouter, RouterFile};
use arbitrage::method::speculate::{Limits, Models};
use arbitrage::method::value_head::{HeadFile, ValueHeadPrm};

/// The roles a command calls.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    pub draft: bool,
    pub target: bool,
    pub prm: bool,
    /// The draft reports per-token log-probabilities and entropies (the feature router and
    /// `generate` records read them).
    pub draft_logprobs: bool,
}

/// Where the router comes from.
#[derive(Debug, Clone)]
pub enum RouterSource {
    File { file: RouterFile, path: PathBuf },
    Served(RemoteModelConfig),
}

impl RouterSource {
    /// `--router FILE`, else a served router, else the config's router file; `None` when the
    /// configuration has no router.
    pub fn find(config: &Config, flag: Option<&Path>) -> Result<Option<RouterSource>> {
        let path = match (flag, &config.remote_router) {
            (Some(path), _) => path.to_owned(),
            (None, Some(server)) => return Ok(Some(RouterSource::Served(server.clone()))),
            (None, None) => match &config.router_file {
                Some(path) => path.clone(),
                None => return Ok(None),
            },
        };
        Ok(Some(RouterSource::File {
            file: RouterFile::load(&path)?,
            path,
        }))
    }

    pub fn budget(&self) -> Budget<'_> {
        match self {
            RouterSource::File { file, .. } => Budget::File(file),
            RouterSource::Served(_) => Budget::Served,
        }
    }
}

/// Refuses more than one problem in flight when a role the command calls is embedded: the
/// embedded engine runs every model on one thread, one problem at a time.
pub fn check_concurrency(config: &Config, needs: &Needs, concurrency: usize) -> Result<()> {
    if concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    let embedded_in_use: Vec<&str> = [
        ("draft", needs.draft && config.draft.embedded().is_some()),
        ("target", needs.target && config.target.embedded().is_some()),
        (
            "PRM (the stand-in runs on the embedded target)",
            needs.prm && matches!(config.prm, PrmConfig::Embedded(_) | PrmConfig::ValueHead(_)),
        ),
    ]
    .into_iter()
    .filter_map(|(role, embedded)| embedded.then_some(role))
    .collect();
    if concurrency > 1 && !embedded_in_use.is_empty() {
        bail!(
            "--concurrency {concurrency} needs remote engines, but the {} model is embedded: the embedded engine runs every model on one thread, one problem at a time. Serve it (see docs/remote.md) or drop --concurrency",
            embedded_in_use.join(" and ")
        );
    }
    Ok(())
}

/// The config's limits on one solution, with the command's overrides.
pub fn limits(
    config: &Config,
    max_steps: Option<u32>,
    max_tokens: Option<u32>,
    no_verify: bool,
) -> Limits {
    Limits {
        step: config.generation.step.clone(),
        max_steps: max_steps.unwrap_or(config.generation.max_steps),
        max_tokens: max_tokens.unwrap_or(config.generation.max_tokens),
        verify: config.generation.verify && !no_verify,
    }
}

/// The loaded models. The loop borrows them through [`Loaded::models`].
pub struct Loaded {
    draft: Option<Engine>,
    target: Option<Engine>,
    prm: Option<Box<dyn StepScorer>>,
    router: Option<Box<dyn Router>>,
}

impl Loaded {
    /// Loads the roles in `needs`, and the router when `router` is given.
    ///
    /// A head that reads a model's hidden states (the value-head PRM on the target, a
    /// hidden-state router on the draft) shares that model's instance, loaded to report them: the
    /// generator reads every token the head needs anyway, so a second instance would read them
    /// twice. The price is llama.cpp's output layer at every token the shared instance reads
    /// (about +14% on the target's prefill, nothing on decoding).
    pub fn load(config: &Config, needs: &Needs, router: Option<RouterSource>) -> Result<Loaded> {
        if !needs.draft && !needs.target {
            bail!("a command needs the draft or the target model");
        }
        let value_head = match &config.prm {
            PrmConfig::ValueHead(path) if needs.prm => {
                if config.target.embedded().is_none() {
                    bail!(
                        "the value-head PRM reads the embedded target's hidden states, and the target is remote"
                    );
                }
                let head = HeadFile::load(path).context(
                    "the value-head PRM (train one with `arbitrage label` and `arbitrage train-heads`)",
                )?;
                Some((head, path.clone()))
            }
            _ => None,
        };
        let probe_router = match &router {
            Some(RouterSource::File { file, path }) if file.reads_hidden_state() => {
                if config.draft.embedded().is_none() {
                    bail!(
                        "router {} reads the embedded draft's hidden states, and the draft is remote",
                        path.display()
                    );
                }
                Some((file.weights.len(), format!("router {}", path.display())))
            }
            _ => None,
        };
        let head_states = value_head
            .as_ref()
            .map(|(head, path)| (head.dim, format!("value head {}", path.display())));
        // The same file in both roles (the smoke config) shares one loaded model.
        let same_file = match (config.draft.embedded(), config.target.embedded()) {
            (Some(ds), Some(ts)) => needs.draft && *ds == renamed(ts, "draft"),
            _ => false,
        };
        let draft = if needs.draft {
            let states = if same_file {
                probe_router.as_ref().or(head_states.as_ref())
            } else {
                probe_router.as_ref()
            };
            Some(Engine::load(
                &config.draft,
                "draft",
                config,
                needs.draft_logprobs,
                states,
            )?)
        } else {
            None
        };
        let target = if needs.target {
            match &draft {
                Some(Engine::Embedded(d)) if same_file => Some(Engine::Embedded(Arc::clone(d))),
                _ => Some(Engine::load(
                    &config.target,
                    "target",
                    config,
                    false,
                    head_states.as_ref(),
                )?),
            }
        } else {
            None
        };
        let prm = match value_head {
            Some((head, path)) => {
                let Some(Engine::Embedded(t)) = &target else {
                    bail!("the value-head PRM needs the target model");
                };
                let model: Arc<dyn TextProbe> = t.clone();
                Some(Box::new(ValueHeadPrm::new(model, &head, &path)) as Box<dyn StepScorer>)
            }
            None if needs.prm => Some(load_prm(config, target.as_ref())?),
            None => None,
        };
        let router: Option<Box<dyn Router>> = match router {
            Some(RouterSource::File { file, path }) if file.reads_hidden_state() => {
                let Some(Engine::Embedded(d)) = draft.as_ref().or(target.as_ref()) else {
                    bail!("router {} needs the draft model", path.display());
                };
                Some(Box::new(ProbeRouter::new(d.clone(), file, &path)))
            }
            Some(RouterSource::File { file, path }) => {
                Some(Box::new(FeatureRouter::new(file, &path)))
            }
            Some(RouterSource::Served(server)) => Some(Box::new(RemoteRouter::new(
                Client::new(
                    "router",
                    &server.endpoints,
                    config.remote.retry.clone(),
                    server.api_key.clone(),
                ),
                &server.model,
            ))),
            None => None,
        };
        Ok(Loaded {
            draft,
            target,
            prm,
            router,
        })
    }

    /// The draft's generator (the target's when only the target is loaded).
    pub fn draft(&self) -> &dyn StepGenerator {
        self.draft
            .as_ref()
            .or(self.target.as_ref())
            .expect("one model is loaded")
            .generator()
    }

    /// The target's generator (the draft's when only the draft is loaded).
    pub fn target(&self) -> &dyn StepGenerator {
        self.target
            .as_ref()
            .or(self.draft.as_ref())
            .expect("one model is loaded")
            .generator()
    }

    pub fn prm(&self) -> Option<&dyn StepScorer> {
        self.prm.as_deref()
    }

    pub fn router(&self) -> Option<&dyn Router> {
        self.router.as_deref()
    }

    pub fn models(&self) -> Models<'_> {
        Models {
            draft: self.draft(),
            target: self.target(),
            prm: self.prm(),
            router: self.router(),
        }
    }

    /// The embedded draft model, where the draft is embedded (its tokenizer counts prompts).
    pub fn embedded_draft(&self) -> Option<&EmbeddedModel> {
        match self.draft.as_ref().or(self.target.as_ref())? {
            Engine::Embedded(m) => Some(m),
            Engine::Remote(_) => None,
        }
    }

    /// The smallest context window of the embedded generators, if any is embedded.
    pub fn context_window(&self) -> Option<u32> {
        [&self.draft, &self.target]
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Engine::Embedded(m) => Some(m.info().n_ctx),
                Engine::Remote(_) => None,
            })
            .min()
    }
}

/// The PRM the config describes. The embedded stand-in runs on the embedded target.
fn load_prm(config: &Config, target: Option<&Engine>) -> Result<Box<dyn StepScorer>> {
    Ok(match &config.prm {
        PrmConfig::Embedded(kind) => {
            let Some(Engine::Embedded(t)) = target else {
                bail!(
                    "the embedded stand-in PRM runs on an embedded target, and the target is remote. Serve a PRM and set [prm] url (or --prm-url)"
                );
            };
            Box::new(ProbePrm::new(t.clone(), *kind, config.prompt))
        }
        PrmConfig::ValueHead(_) => {
            bail!("the value-head PRM is built on the target that `Loaded::load` loads")
        }
        PrmConfig::Remote(p) => {
            let tokenizer = match &p.server.tokenizer {
                Some(path) => Some(Arc::new(
                    LocalTokenizer::load(path).context("the PRM tokenizer")?,
                )),
                None => None,
            };
            let client = Client::new(
                "PRM",
                &p.server.endpoints,
                config.remote.retry.clone(),
                p.server.api_key.clone(),
            );
            let separator = config.generation.step.separator.clone().unwrap_or_default();
            Box::new(
                RemotePrm::new(client, &p.server.model, p.api, tokenizer, &separator)?
                    .with_skywork_tokens(&p.bos, &p.step_token),
            )
        }
    })
}

/// A loaded model role.
enum Engine {
    Embedded(Arc<EmbeddedModel>),
    Remote(Box<RemoteGenerator>),
}

impl Engine {
    /// `states`: load the embedded model to report hidden states, for a head of that size.
    fn load(
        model: &ModelConfig,
        role: &str,
        config: &Config,
        logprobs: bool,
        states: Option<&(usize, String)>,
    ) -> Result<Engine> {
        Ok(match model {
            ModelConfig::Embedded(settings) => Engine::Embedded(Arc::new(match states {
                Some((dim, what)) => {
                    super::load_hidden_states_model(settings, role, Some((*dim, what)))?
                }
                None => super::load_model(settings)?,
            })),
            ModelConfig::Remote(server) => Engine::Remote(Box::new(super::remote_generator(
                role,
                server,
                &config.remote,
                logprobs,
            )?)),
        })
    }

    fn generator(&self) -> &dyn StepGenerator {
        match self {
            Engine::Embedded(m) => m.as_ref(),
            Engine::Remote(g) => g.as_ref(),
        }
    }
}

fn renamed(settings: &EmbeddedSettings, name: &str) -> EmbeddedSettings {
    let mut s = settings.clone();
    s.name = name.to_owned();
    s
}
