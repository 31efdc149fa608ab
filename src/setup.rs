//! One set-up for every way of running ARBITRAGE: a configuration and a request become a rule
//! and the loaded models it needs. `run`, `serve` (per request) and `sweep` all come through here,
//! so "this run type needs a PRM / a router", the threshold picked for a target-step budget and the
//! early rule are decided in one place.
//!
//! - [`Setup::rule`] resolves a [`RuleRequest`] (run type, threshold or budget, early rule) against
//!   what the configuration offers, and rejects what cannot run with one [`SetupError`].
//! - [`Setup::load`] loads only the roles a set of rules needs ([`Needs`]); the loop borrows them
//!   through [`Loaded::models`].
//!
//! Why loading lives in the library and not in the binary: a program that embeds the library,
//! the server and an in-process sweep must build the very same models from the same
//! configuration as `arbitrage run`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::{EngineError, Router, StepGenerator, StepScorer, TextProbe};
use crate::config::{Config, ModelConfig, PrmConfig, RemoteModelConfig, RemoteSettings};
use crate::engines::llama::{Batching, EmbeddedModel, EmbeddedSettings};
use crate::engines::remote::{Client, LocalTokenizer, RemoteGenerator, RemotePrm, RemoteRouter};
use crate::method::policy::{self, Budget, EarlyRule, RunType, ThresholdError};
use crate::method::prm::ProbePrm;
use crate::method::router::{FeatureRouter, ProbeRouter, RouterError, RouterFile};
use crate::method::speculate::{Limits, Models, Rule};
use crate::method::value_head::{HeadError, HeadFile, ValueHeadPrm};

/// Why a rule cannot run, or its models cannot be loaded. Each names what to change.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "run type `{0}` needs a router: set [router] file (or url) in the config, or pass --router or --router-url"
    )]
    NoRouter(RunType),
    #[error(
        "run type `{0}` needs a PRM, and the embedded PRMs need an embedded target: serve a PRM and set [prm] url (or --prm-url)"
    )]
    NoPrm(RunType),
    #[error(
        "router {router} reads the scores of the PRM {trained:?}, but this run scores with {configured:?}: run with that PRM (--prm, --value-head), or retrain the router on records scored by this one"
    )]
    RouterPrm {
        router: PathBuf,
        trained: String,
        configured: String,
    },
    #[error("`generate` writes router-training records; use `arbitrage run`")]
    NotServable,
    #[error("an early rule applies to run type `router` only, not `{0}`")]
    EarlyNeedsRouter(RunType),
    #[error("an early rule's entropy must be a non-negative number of nats, got {0}")]
    EarlyEntropy(f32),
    #[error("an early rule must read at least one draft token")]
    EarlyTokens,
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    #[error(
        "--concurrency {concurrency} is more than an embedded model holds at once ({MAX_EMBEDDED_SLOTS} problems, each with its own `n_ctx` of KV cache); the {embedded} model is embedded. Lower --concurrency, or serve the model (see docs/remote.md)"
    )]
    Concurrency {
        concurrency: usize,
        embedded: String,
    },
    #[error(
        "cannot load the {role} model; run scripts/fetch-models.sh, or set its `file` in the config"
    )]
    Model {
        role: String,
        #[source]
        source: EngineError,
    },
    #[error(
        "{what} was trained on {dim}-value hidden states, but {model} has {actual}: train it on this model's states"
    )]
    HiddenSize {
        what: String,
        dim: usize,
        model: PathBuf,
        actual: usize,
    },
    #[error("the router file")]
    Router(#[from] RouterError),
    #[error("the value-head PRM (train one with `arbitrage label` and `arbitrage train-heads`)")]
    Head(#[from] HeadError),
    #[error("the {what}")]
    Remote {
        what: String,
        #[source]
        source: EngineError,
    },
    #[error("{0}")]
    Unavailable(String),
}

/// Where the router comes from.
#[derive(Debug, Clone)]
pub enum RouterSource {
    /// Boxed: a router file is large beside a server's address.
    File {
        file: Box<RouterFile>,
        path: PathBuf,
    },
    Served(RemoteModelConfig),
}

impl RouterSource {
    /// `override_file`, else a served router, else the config's router file; `None` when the
    /// configuration has no router.
    pub fn find(
        config: &Config,
        override_file: Option<&Path>,
    ) -> Result<Option<RouterSource>, SetupError> {
        let path = match (override_file, &config.remote_router) {
            (Some(path), _) => path.to_owned(),
            (None, Some(server)) => return Ok(Some(RouterSource::Served(server.clone()))),
            (None, None) => match &config.router_file {
                Some(path) => path.clone(),
                None => return Ok(None),
            },
        };
        Ok(Some(RouterSource::File {
            file: Box::new(RouterFile::load(&path)?),
            path,
        }))
    }

    pub fn budget<'a>(&'a self, set: Option<&'a str>) -> Budget<'a> {
        match self {
            RouterSource::File { file, .. } => Budget::File { file, set },
            RouterSource::Served(_) => Budget::Served,
        }
    }

    /// The early rule the router file fitted for the budget point nearest `fraction` (on `set`'s
    /// own curve where it has one).
    pub fn early_rule(&self, set: Option<&str>, fraction: f64) -> Option<EarlyRule> {
        match self {
            RouterSource::File { file, .. } => file
                .budget_point(set, fraction)
                .and_then(|p| p.early.clone()),
            RouterSource::Served(_) => None,
        }
    }

    /// The threshold at which the router alone sends about `fraction` of the steps, where the
    /// budget point nearest `fraction` found its own threshold with its early rule inside.
    pub fn threshold_without_early(&self, set: Option<&str>, fraction: f64) -> Option<f64> {
        match self {
            RouterSource::File { file, .. } => file
                .budget_point(set, fraction)
                .and_then(|p| p.threshold_without_early),
            RouterSource::Served(_) => None,
        }
    }

    /// The router reads the PRM's score of each draft step it routes (a feature router trained
    /// with `--reads-prm`).
    pub fn reads_prm(&self) -> bool {
        matches!(self, RouterSource::File { file, .. } if file.reads_prm())
    }

    /// The router reads the draft's per-token statistics (a feature router does; a served one
    /// reads text).
    fn reads_draft_statistics(&self) -> bool {
        matches!(self, RouterSource::File { .. })
    }
}

/// What to do about deciding before the draft finishes a step (`router` only).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub enum EarlyRequest {
    /// The router file's rule for the requested target fraction, if there is one.
    #[default]
    FromRouterFile,
    /// No early decision.
    Off,
    /// Escalate when any of the first `tokens` draft tokens has entropy ≥ `min_entropy` nats.
    Entropy { tokens: u32, min_entropy: f32 },
}

/// What a run asks for, before anything is checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRequest {
    pub run_type: RunType,
    /// The rule's threshold; `None` takes the run type's (or the router file's) default.
    pub threshold: Option<f64>,
    /// `router`: the budget table's threshold for this fraction of steps sent to the target.
    pub target_fraction: Option<f64>,
    pub early: EarlyRequest,
    /// The dataset the rule runs on (`gsm8k`, `math500`, ...), where known: a router file with a
    /// budget curve of that set takes `target_fraction`'s threshold from it.
    pub set: Option<String>,
}

impl RuleRequest {
    pub fn new(run_type: RunType) -> Self {
        RuleRequest {
            run_type,
            threshold: None,
            target_fraction: None,
            early: EarlyRequest::default(),
            set: None,
        }
    }
}

/// The roles a set of rules calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Needs {
    pub draft: bool,
    pub target: bool,
    pub prm: bool,
    pub router: bool,
    /// The draft reports per-token log-probabilities and entropies (the feature router and
    /// `generate` records read them).
    pub draft_logprobs: bool,
}

impl Needs {
    /// Both sets of roles.
    pub fn union(self, other: Needs) -> Needs {
        Needs {
            draft: self.draft || other.draft,
            target: self.target || other.target,
            prm: self.prm || other.prm,
            router: self.router || other.router,
            draft_logprobs: self.draft_logprobs || other.draft_logprobs,
        }
    }
}

/// A configuration and the router it points to: everything needed to resolve rules and load
/// models, before anything is loaded.
#[derive(Debug, Clone)]
pub struct Setup {
    pub config: Config,
    pub router: Option<RouterSource>,
}

impl Setup {
    /// `router_file` overrides the configuration's router.
    pub fn new(config: Config, router_file: Option<&Path>) -> Result<Setup, SetupError> {
        let router = RouterSource::find(&config, router_file)?;
        Ok(Setup { config, router })
    }

    /// The set-up of a run on the dataset `set`: a router file with weights of that set's own
    /// scores with them ([`RouterFile::for_set`]).
    pub fn for_set(self, set: &str) -> Setup {
        let router = self.router.map(|source| match source {
            RouterSource::File { file, path } => RouterSource::File {
                file: Box::new(file.for_set(Some(set))),
                path,
            },
            served => served,
        });
        Setup { router, ..self }
    }

    /// A set-up that offers no router: for runs whose rule does not route, so that a router file
    /// they never read cannot stop them.
    pub fn without_router(config: Config) -> Setup {
        Setup {
            config,
            router: None,
        }
    }

    /// Whether a PRM can score here: the stand-ins run on an embedded target; the value head
    /// runs on the target or, beside a remote target, on its own copy of its model.
    pub fn has_prm(&self) -> bool {
        match self.config.prm {
            PrmConfig::Embedded(_) => self.config.target.embedded().is_some(),
            PrmConfig::ValueHead(_) | PrmConfig::Remote(_) => true,
        }
    }

    /// The rule `request` asks for, or why it cannot run with this configuration.
    pub fn rule(&self, request: &RuleRequest) -> Result<Rule, SetupError> {
        resolve_rule(request, self.router.as_ref(), self.has_prm())
    }

    /// The roles `run_type` calls.
    pub fn needs(&self, run_type: RunType) -> Needs {
        let router = run_type == RunType::Router;
        Needs {
            draft: run_type != RunType::Target,
            target: run_type != RunType::Draft,
            prm: run_type.needs_prm()
                || router && self.router.as_ref().is_some_and(RouterSource::reads_prm),
            router,
            draft_logprobs: run_type == RunType::Generate
                || router
                    && self
                        .router
                        .as_ref()
                        .is_some_and(RouterSource::reads_draft_statistics),
        }
    }

    /// Checks the number of problems in flight: at least one, and no more than an embedded model
    /// in `needs` holds at once (each problem in flight takes a slot of its KV cache).
    pub fn check_concurrency(&self, needs: &Needs, concurrency: usize) -> Result<(), SetupError> {
        let config = &self.config;
        let embedded: Vec<&str> = [
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
        check_embedded_concurrency(concurrency, &embedded)
    }

    /// The configuration's limits on one solution, with a command's overrides.
    pub fn limits(
        &self,
        max_steps: Option<u32>,
        max_tokens: Option<u32>,
        no_verify: bool,
    ) -> Limits {
        let generation = &self.config.generation;
        Limits {
            step: generation.step.clone(),
            max_steps: max_steps.unwrap_or(generation.max_steps),
            max_tokens: max_tokens.unwrap_or(generation.max_tokens),
            verify: generation.verify && !no_verify,
        }
    }

    /// Loads the roles in `needs` (the router only when `needs.router`).
    ///
    /// A head that reads a model's hidden states (the value-head PRM on the target, a
    /// hidden-state router on the draft) shares that model's instance, loaded to report them: the
    /// generator reads every token the head needs anyway, so a second instance would read them
    /// twice. The price is llama.cpp's output layer at every token the shared instance reads
    /// (about +14% on the target's prefill, nothing on decoding).
    ///
    /// Embedded models hold `slots` problems at once, each in its own part of the KV cache: one
    /// per problem in flight.
    pub fn load(&self, needs: &Needs, slots: usize) -> Result<Loaded, SetupError> {
        let config = &self.config.with_slots(slots);
        if !needs.draft && !needs.target {
            return Err(SetupError::Unavailable(
                "a run needs the draft or the target model".into(),
            ));
        }
        let router = if needs.router {
            self.router.clone()
        } else {
            None
        };
        let value_head = match &config.prm {
            PrmConfig::ValueHead(path) if needs.prm => Some((HeadFile::load(path)?, path.clone())),
            _ => None,
        };
        // Beside a remote target the head reads its own embedded copy of the model it was
        // trained on (the file its `model` names, in `models.dir`): the served target's hidden
        // states are not on offer over the OpenAI API.
        let head_model = match &value_head {
            Some((head, path)) if needs.target && config.target.embedded().is_none() => {
                let name = format!("its own {}", head.model);
                let mut settings = config.embedded.settings(&name, Path::new(&head.model));
                settings.slots = u32::try_from(slots.max(1)).unwrap_or(u32::MAX);
                if !settings.path.is_file() {
                    return Err(SetupError::Unavailable(format!(
                        "the value head {} reads the hidden states of {}, which is not in {}: the target is remote, so the head runs on its own copy of that model (fetch it there, or serve the head: docs/remote.md)",
                        path.display(),
                        head.model,
                        config.embedded.models_dir.display()
                    )));
                }
                let what = format!("value head {}", path.display());
                Some(load_hidden_states_model(
                    &settings,
                    &name,
                    Some((head.dim, &what)),
                )?)
            }
            _ => None,
        };
        let probe_router = match &router {
            Some(RouterSource::File { file, path }) if file.reads_hidden_state() => {
                if config.draft.embedded().is_none() {
                    return Err(SetupError::Unavailable(format!(
                        "router {} reads the embedded draft's hidden states, and the draft is remote",
                        path.display()
                    )));
                }
                Some((file.weights.len(), format!("router {}", path.display())))
            }
            _ => None,
        };
        let head_states = value_head
            .as_ref()
            .filter(|_| head_model.is_none())
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
                &config.remote,
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
                    &config.remote,
                    false,
                    head_states.as_ref(),
                )?),
            }
        } else {
            None
        };
        let prm = match value_head {
            Some((head, path)) if head_model.is_some() => {
                let model: Arc<dyn TextProbe> = Arc::new(head_model.expect("matched just above"));
                Some(Box::new(ValueHeadPrm::new(model, &head, &path)) as Box<dyn StepScorer>)
            }
            Some((head, path)) => {
                let Some(Engine::Embedded(t)) = &target else {
                    return Err(SetupError::Unavailable(
                        "the value-head PRM needs the target model".into(),
                    ));
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
                    return Err(SetupError::Unavailable(format!(
                        "router {} needs the draft model",
                        path.display()
                    )));
                };
                Some(Box::new(ProbeRouter::new(d.clone(), *file, &path)))
            }
            Some(RouterSource::File { file, path }) => {
                if let (Some(trained), Some(prm)) = (&file.prm, &prm) {
                    check_router_prm(&path, trained, file.prm_fingerprint.as_deref(), &**prm)?;
                }
                Some(Box::new(FeatureRouter::new(*file, &path)))
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
}

/// Whether a run's PRM is the one whose scores a router was trained to read: the same weights
/// where the router names them (a value head's fingerprint, wherever its file lies), otherwise
/// the same name.
fn check_router_prm(
    router: &Path,
    trained: &str,
    trained_fingerprint: Option<&str>,
    prm: &dyn StepScorer,
) -> Result<(), SetupError> {
    let same = match trained_fingerprint {
        Some(wanted) => prm.fingerprint() == Some(wanted),
        None => trained == prm.name(),
    };
    if same {
        return Ok(());
    }
    let with_fingerprint = |name: &str, fingerprint: Option<&str>| match fingerprint {
        Some(f) => format!("{name} [weights {f}]"),
        None => name.to_owned(),
    };
    Err(SetupError::RouterPrm {
        router: router.to_owned(),
        trained: with_fingerprint(trained, trained_fingerprint),
        configured: with_fingerprint(prm.name(), prm.fingerprint()),
    })
}

/// The rule `request` asks for, given the router a configuration points to and whether a PRM can
/// score there; or why it cannot run. `serve` calls it per request, `Setup::rule` per run.
pub fn resolve_rule(
    request: &RuleRequest,
    router: Option<&RouterSource>,
    has_prm: bool,
) -> Result<Rule, SetupError> {
    let run_type = request.run_type;
    if run_type == RunType::Router && router.is_none() {
        return Err(SetupError::NoRouter(run_type));
    }
    let router_reads_prm =
        run_type == RunType::Router && router.is_some_and(RouterSource::reads_prm);
    if (run_type.needs_prm() || router_reads_prm) && !has_prm {
        return Err(SetupError::NoPrm(run_type));
    }
    if let EarlyRequest::Entropy {
        tokens,
        min_entropy,
    } = request.early
    {
        if run_type != RunType::Router {
            return Err(SetupError::EarlyNeedsRouter(run_type));
        }
        if !(min_entropy.is_finite() && min_entropy >= 0.0) {
            return Err(SetupError::EarlyEntropy(min_entropy));
        }
        if tokens == 0 {
            return Err(SetupError::EarlyTokens);
        }
    }
    let set = request.set.as_deref();
    let budget = router.map_or(Budget::NoRouter, |r| r.budget(set));
    let mut threshold =
        policy::choose_threshold(run_type, request.threshold, request.target_fraction, budget)?;
    // A budget point's threshold was found with the point's early rule sending steps too: a run
    // without that rule takes the threshold at which the router alone sends the fraction.
    if let (Some(router), Some(fraction), None) =
        (router, request.target_fraction, request.threshold)
        && run_type == RunType::Router
        && request.early != EarlyRequest::FromRouterFile
        && let Some(alone) = router.threshold_without_early(set, fraction)
    {
        threshold = alone;
    }
    let early = match (request.early, router, request.target_fraction) {
        (
            EarlyRequest::Entropy {
                tokens,
                min_entropy,
            },
            _,
            _,
        ) => Some(EarlyRule::entropy(tokens, min_entropy)),
        // A file's early rule belongs to the budget point it was fitted at: only a rule
        // chosen by budget, not by an explicit threshold, uses it.
        (EarlyRequest::FromRouterFile, Some(router), Some(fraction))
            if run_type == RunType::Router && request.threshold.is_none() =>
        {
            router.early_rule(set, fraction)
        }
        _ => None,
    };
    Ok(Rule {
        run_type,
        threshold,
        early,
    })
}

/// The most problems an embedded model holds at once (`--concurrency`): each takes `n_ctx` of KV
/// cache, and on a CPU the batch stops paying well before this (docs/engine.md).
pub const MAX_EMBEDDED_SLOTS: usize = 32;

/// Checks a number of problems in flight: at least one, and, where `embedded` names the embedded
/// roles the work runs on, no more than [`MAX_EMBEDDED_SLOTS`].
pub fn check_embedded_concurrency(concurrency: usize, embedded: &[&str]) -> Result<(), SetupError> {
    if concurrency == 0 {
        return Err(SetupError::Unavailable(
            "--concurrency must be at least 1".into(),
        ));
    }
    if concurrency > MAX_EMBEDDED_SLOTS && !embedded.is_empty() {
        return Err(SetupError::Concurrency {
            concurrency,
            embedded: embedded.join(" and "),
        });
    }
    Ok(())
}

/// Loads one embedded model.
pub fn load_embedded(settings: &EmbeddedSettings) -> Result<EmbeddedModel, SetupError> {
    EmbeddedModel::load(settings).map_err(|source| SetupError::Model {
        role: settings.name.clone(),
        source,
    })
}

/// Loads an embedded model that reports hidden states (for a head, named `name`); with
/// `trained_on`, checks that the head was trained on states of this size.
pub fn load_hidden_states_model(
    settings: &EmbeddedSettings,
    name: &str,
    trained_on: Option<(usize, &str)>,
) -> Result<EmbeddedModel, SetupError> {
    let mut states = renamed(settings, name);
    states.hidden_states = true;
    let model = load_embedded(&states)?;
    if let Some((dim, what)) = trained_on
        && model.info().n_embd != dim
    {
        return Err(SetupError::HiddenSize {
            what: what.to_owned(),
            dim,
            model: settings.path.clone(),
            actual: model.info().n_embd,
        });
    }
    Ok(model)
}

/// A generator for a served role, with its local tokenizer where one is configured.
pub fn remote_generator(
    role: &str,
    server: &RemoteModelConfig,
    settings: &RemoteSettings,
    logprobs: bool,
) -> Result<RemoteGenerator, SetupError> {
    let client = Client::new(
        role,
        &server.endpoints,
        settings.retry.clone(),
        server.api_key.clone(),
    );
    let mut generator = RemoteGenerator::new(role, client, &server.model);
    if let Some(path) = &server.tokenizer {
        let tokenizer = LocalTokenizer::load(path).map_err(|source| SetupError::Remote {
            what: format!("{role} tokenizer"),
            source,
        })?;
        generator = generator.with_tokenizer(Arc::new(tokenizer));
    }
    if logprobs {
        generator = generator.with_logprobs(settings.logprobs);
    }
    Ok(generator)
}

/// The loaded models. The loop borrows them through [`Loaded::models`].
pub struct Loaded {
    draft: Option<Engine>,
    target: Option<Engine>,
    prm: Option<Box<dyn StepScorer>>,
    router: Option<Box<dyn Router>>,
}

impl Loaded {
    /// The draft's generator (the target's when only the target is loaded).
    pub fn draft(&self) -> &dyn StepGenerator {
        self.draft
            .as_ref()
            .or(self.target.as_ref())
            .expect("`Setup::load` loads the draft or the target")
            .generator()
    }

    /// The target's generator (the draft's when only the draft is loaded).
    pub fn target(&self) -> &dyn StepGenerator {
        self.target
            .as_ref()
            .or(self.draft.as_ref())
            .expect("`Setup::load` loads the draft or the target")
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

    /// The decode rounds of each embedded generator since it was loaded, by role.
    pub fn batching(&self) -> Vec<(&'static str, Batching)> {
        [("draft", &self.draft), ("target", &self.target)]
            .into_iter()
            .filter_map(|(role, engine)| match engine {
                Some(Engine::Embedded(m)) => Some((role, m.batching())),
                _ => None,
            })
            .collect()
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
fn load_prm(config: &Config, target: Option<&Engine>) -> Result<Box<dyn StepScorer>, SetupError> {
    Ok(match &config.prm {
        PrmConfig::Embedded(kind) => {
            let Some(Engine::Embedded(t)) = target else {
                return Err(SetupError::Unavailable(
                    "the embedded stand-in PRM runs on an embedded target, and the target is remote. Serve a PRM and set [prm] url (or --prm-url)".into(),
                ));
            };
            Box::new(ProbePrm::new(t.clone(), *kind, config.prompt))
        }
        PrmConfig::ValueHead(_) => {
            return Err(SetupError::Unavailable(
                "the value-head PRM is built on the target that `Setup::load` loads".into(),
            ));
        }
        PrmConfig::Remote(p) => {
            let tokenizer = match &p.server.tokenizer {
                Some(path) => Some(Arc::new(LocalTokenizer::load(path).map_err(|source| {
                    SetupError::Remote {
                        what: "PRM tokenizer".into(),
                        source,
                    }
                })?)),
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
                RemotePrm::new(client, &p.server.model, p.api, tokenizer, &separator)
                    .map_err(|source| SetupError::Remote {
                        what: "PRM".into(),
                        source,
                    })?
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
        remote: &RemoteSettings,
        logprobs: bool,
        states: Option<&(usize, String)>,
    ) -> Result<Engine, SetupError> {
        Ok(match model {
            ModelConfig::Embedded(settings) => Engine::Embedded(Arc::new(match states {
                Some((dim, what)) => {
                    load_hidden_states_model(settings, role, Some((*dim, what.as_str())))?
                }
                None => load_embedded(settings)?,
            })),
            ModelConfig::Remote(server) => {
                Engine::Remote(Box::new(remote_generator(role, server, remote, logprobs)?))
            }
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

/// Loaded models kept between runs that share one configuration (the points of a sweep): a run
/// that needs the same roles as the last one reuses its models; one that needs others drops them
/// first, so no more is held than one run would hold, and every run's models are loaded exactly
/// as a separate `arbitrage run` would load them.
#[derive(Default)]
pub struct ModelPool {
    held: Option<((Needs, usize), Loaded)>,
}

impl ModelPool {
    /// The models for `needs` with `slots` problems each, loaded with `load` unless the last
    /// run's serve.
    pub fn get(
        &mut self,
        needs: Needs,
        slots: usize,
        load: impl FnOnce() -> Result<Loaded, SetupError>,
    ) -> Result<&Loaded, SetupError> {
        let key = (needs, slots);
        if self.held.as_ref().is_none_or(|(held, _)| *held != key) {
            // Drop first: two sets of models must not be held at once.
            self.held = None;
            self.held = Some((key, load()?));
        }
        Ok(&self.held.as_ref().expect("just loaded").1)
    }
}
