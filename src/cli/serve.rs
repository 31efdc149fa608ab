//! `arbitrage serve`: the configured models behind an OpenAI-compatible HTTP API.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use arbitrage::engines::remote::LocalTokenizer;
use arbitrage::method::policy::RunType;
use arbitrage::method::speculate::Models;
use arbitrage::serve::http::Server;
use arbitrage::serve::{ModelSet, ServerSettings};
use arbitrage::setup::{EarlyRequest, Loaded, Needs, RouterSource, RuleRequest, Setup, SetupError};
use clap::Args;

use super::ConfigArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", env = "ARBITRAGE_HOST")]
    host: String,
    /// Port to listen on (0: any free port; the address is printed on stderr).
    #[arg(long, default_value_t = 8000, env = "ARBITRAGE_PORT")]
    port: u16,
    /// Default decision rule (draft, target, rsd, oracle, router); a request can ask for another.
    /// Default: router when a router is configured, else rsd.
    #[arg(long)]
    run_type: Option<RunType>,
    /// Default threshold of the rule (rsd: PRM score; oracle: advantage; router: ŷ).
    #[arg(long, alias = "prm-threshold")]
    threshold: Option<f64>,
    /// Router only: the threshold that sent about this fraction of steps to the target when
    /// held-out problems were replayed with the router's own decisions, with the early rule the
    /// router file fitted for it (as for requests that set `arbitrage.target_fraction`).
    #[arg(long, conflicts_with = "threshold")]
    target_fraction: Option<f64>,
    /// Use no early decision, not even the router file's.
    #[arg(long)]
    no_early: bool,
    /// Router file (overrides the config's).
    #[arg(long)]
    router: Option<PathBuf>,
    /// Requests solved at once. Embedded models hold this many problems each and decode their
    /// steps together (continuous batching); remote servers batch them themselves.
    #[arg(long, default_value_t = 1, env = "ARBITRAGE_CONCURRENCY")]
    concurrency: usize,
    /// Requests that may wait for a worker; more are refused with 429 and Retry-After.
    #[arg(long, default_value_t = 16, env = "ARBITRAGE_QUEUE")]
    queue: usize,
    /// Default steps per answer (default from the config).
    #[arg(long)]
    max_steps: Option<u32>,
    /// Default tokens per answer (default from the config); a request's max_tokens overrides it.
    #[arg(long)]
    max_tokens: Option<u32>,
    /// The target writes an escalated step from scratch instead of first verifying the draft's.
    #[arg(long)]
    no_verify: bool,
    /// The model name /v1/models lists.
    #[arg(long, default_value = "arbitrage", env = "ARBITRAGE_SERVED_MODEL_NAME")]
    served_model_name: String,
    /// Largest request body in bytes; larger ones get 413.
    #[arg(long, default_value_t = 1 << 20)]
    max_body_bytes: usize,
}

/// The loaded models, as the server's workers see them, and the remote draft's tokenizer when
/// the config names one (prompts are then counted with it).
struct Served {
    loaded: Loaded,
    remote_tokenizer: Option<LocalTokenizer>,
}

impl ModelSet for Served {
    fn models(&self) -> Models<'_> {
        self.loaded.models()
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        if let Some(model) = self.loaded.embedded_draft() {
            return model.tokenize(text).ok().map(|t| t.len());
        }
        let tokenizer = self.remote_tokenizer.as_ref()?;
        tokenizer.encode(text, true).ok().map(|t| t.len())
    }
}

pub fn run(args: ServeArgs) -> Result<()> {
    let setup = Setup::new(args.config.load()?, args.router.as_deref())?;
    let config = &setup.config;
    let run_type = args.run_type.unwrap_or(if setup.router.is_some() {
        RunType::Router
    } else {
        RunType::Rsd
    });
    if run_type == RunType::Generate {
        return Err(SetupError::NotServable.into());
    }
    let rule = setup
        .rule(&RuleRequest {
            run_type,
            threshold: args.threshold,
            target_fraction: args.target_fraction,
            early: if args.no_early {
                EarlyRequest::Off
            } else {
                EarlyRequest::FromRouterFile
            },
            set: None,
        })
        .context("--run-type / --threshold / --target-fraction")?;
    // A request may ask for any run type, so the server loads every role it can: the PRM where
    // one can score, the router where there is one.
    let has_prm = setup.has_prm();
    let needs = Needs {
        draft: true,
        target: true,
        prm: has_prm,
        router: setup.router.is_some(),
        draft_logprobs: matches!(setup.router, Some(RouterSource::File { .. })),
    };
    setup.check_concurrency(&needs, args.concurrency)?;
    let loaded = super::loading("models", || setup.load(&needs, args.concurrency))
        .context("loading the models")?;
    let remote_tokenizer = match config.draft.remote().and_then(|r| r.tokenizer.as_ref()) {
        Some(path) => Some(LocalTokenizer::load(path).context("the draft tokenizer")?),
        None => None,
    };
    let threshold = rule.threshold;
    let settings = ServerSettings {
        model_name: args.served_model_name,
        run_type,
        threshold,
        early: rule.early,
        use_early_rules: !args.no_early,
        has_prm,
        router: setup.router.clone(),
        limits: setup.limits(args.max_steps, args.max_tokens, args.no_verify),
        template: config.prompt,
        context_window: loaded.context_window(),
        concurrency: args.concurrency,
        queue: args.queue,
        max_body_bytes: args.max_body_bytes,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((args.host.as_str(), args.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", args.host, args.port))?;
        let addr = listener.local_addr()?;
        let server = Server::start(
            Arc::new(Served {
                loaded,
                remote_tokenizer,
            }),
            settings.clone(),
        )
        .context("starting the workers")?;
        eprintln!(
            "{run_type}{} with {} worker(s), queue {}; listening on http://{addr}",
            if run_type.uses_threshold() {
                format!(" at threshold {threshold}")
            } else {
                String::new()
            },
            settings.concurrency,
            settings.queue,
        );
        server.run(listener, shutdown_signal()).await?;
        eprintln!("stopped: in-flight requests were answered");
        anyhow::Ok(())
    })
}

/// Resolves on Ctrl-C or SIGTERM. A second signal exits at once.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    eprintln!("shutting down: finishing in-flight requests (signal again to exit now)");
    tokio::spawn(async {
        let _ = tokio::signal::ctrl_c().await;
        std::process::exit(130);
    });
}
