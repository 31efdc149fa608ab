//! The OpenAI wire format: requests parsed and validated into a [`Generation`], the bodies of
//! answers and stream chunks, and errors as OpenAI-style bodies.
//!
//! A request is parsed leniently (fields the loop cannot use are ignored, as OpenAI clients send
//! many) and validated strictly: a value out of range is refused with the field named, never
//! clamped. The `arbitrage` extension object is strict too: an unknown field there is a typo.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ServerSettings;
use crate::method::policy::{RunType, ThresholdError};
use crate::method::prompts::{ChatMessage, ChatRole};
use crate::method::speculate::{Limits, Rule, Solution, Stop, TraceStep};
use crate::setup::{EarlyRequest, RuleRequest, SetupError, resolve_rule};
use crate::types::{Author, Sampling};

/// An error as the client sees it: a status and `{"error": {message, type, param, code}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub kind: &'static str,
    pub param: Option<String>,
    pub code: Option<&'static str>,
    /// Seconds a refused client should wait (sent as `Retry-After`).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A request the server will not run: 400 `invalid_request_error`.
    pub fn invalid(param: Option<&str>, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
            kind: "invalid_request_error",
            param: param.map(str::to_owned),
            code: None,
            retry_after: None,
        }
    }

    pub fn with_code(mut self, code: &'static str) -> ApiError {
        self.code = Some(code);
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> ApiError {
        self.status = status;
        self
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::invalid(None, message)
            .with_status(StatusCode::NOT_FOUND)
            .with_code("not_found")
    }

    /// The queue is full: 429 with the seconds to wait.
    pub fn queue_full(queue: usize, retry_after: u64) -> ApiError {
        ApiError {
            status: StatusCode::TOO_MANY_REQUESTS,
            message: format!(
                "the server is busy: {queue} requests are already waiting; retry after {retry_after} s"
            ),
            kind: "rate_limit_error",
            param: None,
            code: Some("queue_full"),
            retry_after: Some(retry_after),
        }
    }

    /// The server is shutting down and takes no new work.
    pub fn unavailable(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: Some("unavailable"),
            retry_after: None,
        }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: message.into(),
            kind: "server_error",
            param: None,
            code: None,
            retry_after: None,
        }
    }

    pub fn context_length(endpoint: Endpoint, tokens: usize, window: u32) -> ApiError {
        let param = match endpoint {
            Endpoint::Chat => "messages",
            Endpoint::Completions => "prompt",
        };
        ApiError::invalid(
            Some(param),
            format!(
                "the prompt is {tokens} tokens long and the model's context window holds {window}, with room needed for the answer"
            ),
        )
        .with_code("context_length_exceeded")
    }

    pub fn body(&self) -> Value {
        json!({"error": {
            "message": self.message,
            "type": self.kind,
            "param": self.param,
            "code": self.code,
        }})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, seconds.into());
        }
        response
    }
}

/// Which API a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Chat,
    Completions,
}

impl Endpoint {
    /// The label metrics carry.
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Chat => "chat_completions",
            Endpoint::Completions => "completions",
        }
    }
}

/// A validated request: everything the loop and the answer need.
#[derive(Debug, Clone)]
pub struct Generation {
    pub endpoint: Endpoint,
    /// The model name the client asked for, echoed back.
    pub model: String,
    /// The text the models continue.
    pub prompt: String,
    /// The question alone (a remote PRM and the router read it).
    pub question: String,
    pub rule: Rule,
    pub limits: Limits,
    pub stops: Vec<String>,
    pub stream: bool,
    pub include_usage: bool,
}

#[derive(Debug, Deserialize)]
struct RawChat {
    model: Option<String>,
    messages: Option<Vec<RawMessage>>,
    #[serde(flatten)]
    common: RawCommon,
}

#[derive(Debug, Deserialize)]
struct RawCompletion {
    model: Option<String>,
    prompt: Option<RawPrompt>,
    #[serde(flatten)]
    common: RawCommon,
}

/// Fields both endpoints take.
#[derive(Debug, Deserialize)]
struct RawCommon {
    max_tokens: Option<i64>,
    max_completion_tokens: Option<i64>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    seed: Option<i64>,
    stop: Option<RawStop>,
    stream: Option<bool>,
    stream_options: Option<StreamOptions>,
    n: Option<i64>,
    arbitrage: Option<Extension>,
}

#[derive(Debug, Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// The `arbitrage` extension object: how this request is speculated.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Extension {
    run_type: Option<String>,
    threshold: Option<f64>,
    target_fraction: Option<f64>,
    max_steps: Option<i64>,
}

#[derive(Debug, Deserialize)]
struct RawMessage {
    role: String,
    content: Option<RawContent>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawContent {
    Text(String),
    Parts(Vec<RawPart>),
}

#[derive(Debug, Deserialize)]
struct RawPart {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawStop {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawPrompt {
    One(String),
    Many(Vec<String>),
}

/// The most steps a request may ask for.
pub const MAX_STEPS_LIMIT: i64 = 10_000;
/// OpenAI's limit on stop strings.
pub const MAX_STOPS: usize = 4;

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(
            ApiError::invalid(None, "the request body is empty; send a JSON object")
                .with_code("invalid_json"),
        );
    }
    serde_json::from_slice(body).map_err(|e| {
        let (message, code) = if e.is_syntax() || e.is_eof() {
            (
                format!("the request body is not valid JSON: {e}"),
                "invalid_json",
            )
        } else {
            (
                format!("the request body does not have the expected shape: {e}"),
                "invalid_type",
            )
        };
        ApiError::invalid(None, message).with_code(code)
    })
}

/// Parses and validates a `/v1/chat/completions` body.
pub fn chat_request(body: &[u8], settings: &ServerSettings) -> Result<Generation, ApiError> {
    let raw: RawChat = parse_json(body)?;
    let messages = raw.messages.ok_or_else(|| {
        ApiError::invalid(Some("messages"), "`messages` is required")
            .with_code("missing_required_parameter")
    })?;
    if messages.is_empty() {
        return Err(ApiError::invalid(
            Some("messages"),
            "`messages` is empty; send at least one user message",
        ));
    }
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(i, m)| chat_message(i, m))
        .collect::<Result<Vec<_>, _>>()?;
    let question = messages
        .iter()
        .rev()
        .find(|m| m.role == ChatRole::User)
        .map(|m| m.content.clone())
        .ok_or_else(|| {
            ApiError::invalid(
                Some("messages"),
                "`messages` holds no user message to answer",
            )
        })?;
    let prompt = settings.template.render_chat(&messages);
    common(
        Endpoint::Chat,
        raw.model,
        prompt,
        question,
        raw.common,
        settings,
    )
}

/// Parses and validates a `/v1/completions` body. The prompt is continued as it is, without a
/// chat template.
pub fn completion_request(body: &[u8], settings: &ServerSettings) -> Result<Generation, ApiError> {
    let raw: RawCompletion = parse_json(body)?;
    let prompt = match raw.prompt {
        None => {
            return Err(ApiError::invalid(Some("prompt"), "`prompt` is required")
                .with_code("missing_required_parameter"));
        }
        Some(RawPrompt::One(p)) => p,
        Some(RawPrompt::Many(mut many)) if many.len() == 1 => many.remove(0),
        Some(RawPrompt::Many(_)) => {
            return Err(ApiError::invalid(
                Some("prompt"),
                "only one prompt per request is supported",
            ));
        }
    };
    if prompt.is_empty() {
        return Err(ApiError::invalid(Some("prompt"), "`prompt` is empty"));
    }
    common(
        Endpoint::Completions,
        raw.model,
        prompt.clone(),
        prompt,
        raw.common,
        settings,
    )
}

fn chat_message(i: usize, m: RawMessage) -> Result<ChatMessage, ApiError> {
    let role = match m.role.as_str() {
        "system" | "developer" => ChatRole::System,
        "user" => ChatRole::User,
        "assistant" => ChatRole::Assistant,
        other => {
            return Err(ApiError::invalid(
                Some(&format!("messages[{i}].role")),
                format!(
                    "unknown role `{other}` in messages[{i}]; expected system, developer, user or assistant"
                ),
            ));
        }
    };
    let param = format!("messages[{i}].content");
    let content = match m.content {
        None => String::new(),
        Some(RawContent::Text(t)) => t,
        Some(RawContent::Parts(parts)) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(t)) => text.push_str(&t),
                    (kind, _) => {
                        return Err(ApiError::invalid(
                            Some(&param),
                            format!("content part of type `{kind}` is not supported; only text is"),
                        ));
                    }
                }
            }
            text
        }
    };
    if role == ChatRole::User && content.trim().is_empty() {
        return Err(ApiError::invalid(
            Some(&param),
            format!("messages[{i}] is an empty user message"),
        ));
    }
    Ok(ChatMessage { role, content })
}

fn out_of_range(param: &str, value: impl std::fmt::Display, range: &str) -> ApiError {
    ApiError::invalid(
        Some(param),
        format!("`{param}` is {value}; it must be {range}"),
    )
}

fn common(
    endpoint: Endpoint,
    model: Option<String>,
    prompt: String,
    question: String,
    raw: RawCommon,
    settings: &ServerSettings,
) -> Result<Generation, ApiError> {
    if let Some(n) = raw.n
        && n != 1
    {
        return Err(ApiError::invalid(
            Some("n"),
            format!("`n` is {n}; only n = 1 is supported"),
        ));
    }
    let mut limits = settings.limits.clone();
    let (max_param, max_tokens) = match (raw.max_completion_tokens, raw.max_tokens) {
        (Some(m), _) => ("max_completion_tokens", Some(m)),
        (None, m) => ("max_tokens", m),
    };
    if let Some(m) = max_tokens {
        let cap = i64::from(settings.context_window.unwrap_or(u32::MAX));
        if !(1..=cap).contains(&m) {
            return Err(out_of_range(max_param, m, &format!("between 1 and {cap}")));
        }
        limits.max_tokens = m as u32;
    }
    let mut sampling: Sampling = limits.step.sampling;
    if let Some(t) = raw.temperature {
        if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
            return Err(out_of_range("temperature", t, "between 0 and 2"));
        }
        sampling.temperature = t as f32;
    }
    if let Some(p) = raw.top_p {
        if !(p.is_finite() && p > 0.0 && p <= 1.0) {
            return Err(out_of_range("top_p", p, "greater than 0 and at most 1"));
        }
        sampling.top_p = p as f32;
    }
    if let Some(s) = raw.seed {
        if !(0..=i64::from(u32::MAX)).contains(&s) {
            return Err(out_of_range(
                "seed",
                s,
                &format!("between 0 and {}", u32::MAX),
            ));
        }
        sampling.seed = s as u32;
    }
    limits.step.sampling = sampling;
    let stops = match raw.stop {
        None => Vec::new(),
        Some(RawStop::One(s)) => vec![s],
        Some(RawStop::Many(v)) => v,
    };
    if stops.len() > MAX_STOPS {
        return Err(ApiError::invalid(
            Some("stop"),
            format!(
                "`stop` has {} strings; at most {MAX_STOPS} are allowed",
                stops.len()
            ),
        ));
    }
    if stops.iter().any(String::is_empty) {
        return Err(ApiError::invalid(
            Some("stop"),
            "`stop` holds an empty string",
        ));
    }
    let ext = raw.arbitrage.unwrap_or_default();
    if let Some(n) = ext.max_steps {
        if !(1..=MAX_STEPS_LIMIT).contains(&n) {
            return Err(out_of_range(
                "arbitrage.max_steps",
                n,
                &format!("between 1 and {MAX_STEPS_LIMIT}"),
            ));
        }
        limits.max_steps = n as u32;
    }
    let rule = rule(&ext, settings)?;
    Ok(Generation {
        endpoint,
        model: model.unwrap_or_else(|| settings.model_name.clone()),
        prompt,
        question,
        rule,
        limits,
        stops,
        stream: raw.stream.unwrap_or(false),
        include_usage: raw.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// The request's rule: the server's, or the run type and threshold the extension asks for.
fn rule(ext: &Extension, settings: &ServerSettings) -> Result<Rule, ApiError> {
    let run_type = match &ext.run_type {
        None => settings.run_type,
        Some(name) => name.parse::<RunType>().map_err(|e| {
            ApiError::invalid(Some("arbitrage.run_type"), e).with_code("unknown_run_type")
        })?,
    };
    let server_default =
        run_type == settings.run_type && ext.threshold.is_none() && ext.target_fraction.is_none();
    if server_default {
        // Checked when the server started.
        return Ok(Rule {
            run_type,
            threshold: settings.threshold,
            early: settings.early.clone(),
        });
    }
    if run_type == RunType::Generate {
        return Err(unavailable(run_type, &SetupError::NotServable));
    }
    let request = RuleRequest {
        run_type,
        threshold: ext.threshold,
        target_fraction: ext.target_fraction,
        early: if settings.use_early_rules {
            EarlyRequest::FromRouterFile
        } else {
            EarlyRequest::Off
        },
        // A request names no dataset: the router file's pooled budget curve.
        set: None,
    };
    resolve_rule(&request, settings.router.as_ref(), settings.has_prm).map_err(|e| match e {
        SetupError::Threshold(ThresholdError::OutOfRange { .. }) => {
            ApiError::invalid(Some("arbitrage.threshold"), e.to_string())
        }
        SetupError::Threshold(_) => {
            ApiError::invalid(Some("arbitrage.target_fraction"), e.to_string())
        }
        e => unavailable(run_type, &e),
    })
}

/// A run type this server cannot run, and why.
fn unavailable(run_type: RunType, why: &SetupError) -> ApiError {
    ApiError::invalid(
        Some("arbitrage.run_type"),
        format!("run type `{run_type}` is not available on this server: {why}"),
    )
}

/// Why an answer ended, as the extension reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    Solved(Stop),
    StopString,
}

impl Ending {
    /// OpenAI's `finish_reason`.
    pub fn finish_reason(self) -> &'static str {
        match self {
            Ending::Solved(Stop::EndOfSequence) | Ending::StopString => "stop",
            // A loop cut short is a truncated answer too.
            Ending::Solved(Stop::MaxSteps | Stop::MaxTokens | Stop::Repetition) => "length",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Ending::Solved(Stop::EndOfSequence) => "end_of_sequence",
            Ending::Solved(Stop::MaxSteps) => "max_steps",
            Ending::Solved(Stop::MaxTokens) => "max_tokens",
            Ending::Solved(Stop::Repetition) => "repetition",
            Ending::StopString => "stop_string",
        }
    }
}

/// The `arbitrage` object of an answer: the rule, who wrote each step, and what it cost.
pub fn summary(
    g: &Generation,
    steps: &[TraceStep],
    ending: Ending,
    solution: Option<&Solution>,
    with_steps: bool,
) -> Value {
    let target = steps.iter().filter(|s| s.model == Author::Target).count();
    let mut out = json!({
        "run_type": g.rule.run_type.name(),
        "threshold": g.rule.threshold,
        "draft_steps": steps.len() - target,
        "target_steps": target,
        "target_step_fraction": if steps.is_empty() { 0.0 } else { target as f64 / steps.len() as f64 },
        "stop": ending.label(),
    });
    if with_steps {
        out["steps"] = json!(steps);
    }
    if let Some(s) = solution {
        out["latency_s"] = json!(s.latency_s);
        out["tokens"] = json!({
            "draft": s.draft_tokens,
            "target": s.target_tokens,
            "discarded_draft": s.discarded_draft_tokens,
        });
    }
    out
}

/// OpenAI's `usage` object.
pub fn usage(prompt_tokens: usize, steps: &[TraceStep]) -> Value {
    let completion: u64 = steps.iter().map(|s| u64::from(s.tokens)).sum();
    json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens as u64 + completion,
    })
}

/// The `arbitrage` object of one streamed step: its number, author and the decision's inputs.
pub fn step_extension(index: usize, step: &TraceStep) -> Value {
    let mut v = json!({
        "step": index,
        "model": step.model,
        "tokens": step.tokens,
    });
    for (key, score) in [
        ("prm_score", step.prm_score),
        ("target_prm_score", step.target_prm_score),
        ("router_score", step.router_score),
    ] {
        if let Some(s) = score {
            v[key] = json!(s);
        }
    }
    v
}

/// A whole (non-streamed) answer.
pub fn completion_body(
    g: &Generation,
    id: &str,
    created: u64,
    text: &str,
    finish_reason: &str,
    usage: Value,
    extension: Value,
) -> Value {
    let choice = match g.endpoint {
        Endpoint::Chat => json!({
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "logprobs": null,
            "finish_reason": finish_reason,
        }),
        Endpoint::Completions => json!({
            "index": 0,
            "text": text,
            "logprobs": null,
            "finish_reason": finish_reason,
        }),
    };
    json!({
        "id": id,
        "object": match g.endpoint { Endpoint::Chat => "chat.completion", Endpoint::Completions => "text_completion" },
        "created": created,
        "model": g.model,
        "choices": [choice],
        "usage": usage,
        "arbitrage": extension,
    })
}

/// One stream chunk carrying `text` (and the role, in the first chat chunk).
pub fn chunk_body(
    g: &Generation,
    id: &str,
    created: u64,
    text: Option<&str>,
    first: bool,
    finish_reason: Option<&str>,
    extension: Value,
) -> Value {
    let choice = match g.endpoint {
        Endpoint::Chat => {
            let mut delta = json!({});
            if first {
                delta["role"] = json!("assistant");
            }
            if let Some(t) = text {
                delta["content"] = json!(t);
            }
            json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason})
        }
        Endpoint::Completions => json!({
            "index": 0,
            "text": text.unwrap_or(""),
            "logprobs": null,
            "finish_reason": finish_reason,
        }),
    };
    json!({
        "id": id,
        "object": chunk_object(g.endpoint),
        "created": created,
        "model": g.model,
        "choices": [choice],
        "arbitrage": extension,
    })
}

/// The last chunk when usage was asked for: no choices, the usage.
pub fn usage_chunk(g: &Generation, id: &str, created: u64, usage: Value) -> Value {
    json!({
        "id": id,
        "object": chunk_object(g.endpoint),
        "created": created,
        "model": g.model,
        "choices": [],
        "usage": usage,
    })
}

fn chunk_object(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Chat => "chat.completion.chunk",
        Endpoint::Completions => "text_completion",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::method::prompts::PromptTemplate;
    use crate::setup::RouterSource;
    use crate::types::StepOptions;

    fn settings() -> ServerSettings {
        ServerSettings {
            model_name: "arbitrage".into(),
            run_type: RunType::Rsd,
            threshold: 0.4,
            early: None,
            use_early_rules: true,
            has_prm: true,
            router: None,
            limits: Limits {
                step: StepOptions {
                    separator: Some("\n\n".into()),
                    max_tokens: 64,
                    stop_loops: true,
                    sampling: Sampling::GREEDY,
                },
                max_steps: 8,
                max_tokens: 160,
                verify: true,
            },
            template: PromptTemplate::Qwen25MathCot,
            context_window: Some(2048),
            concurrency: 1,
            queue: 4,
            max_body_bytes: 1 << 20,
        }
    }

    fn chat(body: Value) -> Result<Generation, ApiError> {
        chat_request(body.to_string().as_bytes(), &settings())
    }

    #[test]
    fn a_target_fraction_brings_the_router_files_early_rule_for_it() {
        let early = crate::method::policy::EarlyRule::entropy(4, 1.2);
        let mut file = crate::method::router::tests::sample();
        file.budget[0].early = Some(early.clone());
        let mut settings = settings();
        settings.router = Some(RouterSource::File {
            file: Box::new(file),
            path: "router.json".into(),
        });
        let rule_for = |settings: &ServerSettings, ext: Value| {
            let body = json!({"messages": [{"role": "user", "content": "1+1?"}], "arbitrage": ext});
            chat_request(body.to_string().as_bytes(), settings)
                .unwrap()
                .rule
        };
        let by_fraction = json!({"run_type": "router", "target_fraction": 0.2});
        let rule = rule_for(&settings, by_fraction.clone());
        assert_eq!((rule.threshold, rule.early), (0.7, Some(early)));
        // Another budget point has no rule; a threshold or another run type takes none.
        for ext in [
            json!({"run_type": "router", "target_fraction": 0.5}),
            json!({"run_type": "router", "threshold": 0.7}),
            json!({"run_type": "rsd"}),
        ] {
            assert_eq!(rule_for(&settings, ext.clone()).early, None, "{ext}");
        }
        // A server started with --no-early uses none.
        settings.use_early_rules = false;
        assert_eq!(rule_for(&settings, by_fraction).early, None);
    }

    #[test]
    fn a_plain_request_takes_the_servers_rule_and_limits() {
        let g = chat(json!({"messages": [{"role": "user", "content": "1+1?"}]})).unwrap();
        assert_eq!(g.rule.run_type, RunType::Rsd);
        assert_eq!(g.rule.threshold, 0.4);
        assert_eq!(g.limits.max_tokens, 160);
        assert_eq!(g.prompt, PromptTemplate::Qwen25MathCot.render("1+1?"));
        assert_eq!(g.question, "1+1?");
        assert!(!g.stream);
    }

    #[test]
    fn the_extension_overrides_run_type_and_threshold_and_a_new_run_type_gets_its_default() {
        let g = chat(json!({"messages": [{"role": "user", "content": "q"}],
            "arbitrage": {"run_type": "oracle", "threshold": -0.2, "max_steps": 3}}))
        .unwrap();
        assert_eq!((g.rule.run_type, g.rule.threshold), (RunType::Oracle, -0.2));
        assert_eq!(g.limits.max_steps, 3);
        let g = chat(json!({"messages": [{"role": "user", "content": "q"}],
            "arbitrage": {"run_type": "draft"}}))
        .unwrap();
        assert_eq!(g.rule.run_type, RunType::Draft);
    }

    #[test]
    fn each_bad_field_is_refused_with_its_name() {
        let user = json!([{"role": "user", "content": "q"}]);
        for (body, param) in [
            (json!({}), "messages"),
            (json!({"messages": []}), "messages"),
            (
                json!({"messages": [{"role": "wizard", "content": "q"}]}),
                "messages[0].role",
            ),
            (
                json!({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}),
                "messages[0].content",
            ),
            (json!({"messages": user, "temperature": 3.5}), "temperature"),
            (json!({"messages": user, "top_p": 0}), "top_p"),
            (json!({"messages": user, "max_tokens": 0}), "max_tokens"),
            (json!({"messages": user, "max_tokens": 4096}), "max_tokens"),
            (json!({"messages": user, "seed": -1}), "seed"),
            (json!({"messages": user, "n": 2}), "n"),
            (
                json!({"messages": user, "stop": ["a", "b", "c", "d", "e"]}),
                "stop",
            ),
            (
                json!({"messages": user, "arbitrage": {"run_type": "fastest"}}),
                "arbitrage.run_type",
            ),
            (
                json!({"messages": user, "arbitrage": {"run_type": "router"}}),
                "arbitrage.run_type",
            ),
            (
                json!({"messages": user, "arbitrage": {"run_type": "generate"}}),
                "arbitrage.run_type",
            ),
            (
                json!({"messages": user, "arbitrage": {"threshold": 1.5}}),
                "arbitrage.threshold",
            ),
            (
                json!({"messages": user, "arbitrage": {"target_fraction": 0.3}}),
                "arbitrage.target_fraction",
            ),
            (
                json!({"messages": user, "arbitrage": {"max_steps": 0}}),
                "arbitrage.max_steps",
            ),
        ] {
            let err = chat(body.clone()).expect_err(&body.to_string());
            assert_eq!(err.status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(err.param.as_deref(), Some(param), "{body}: {err}");
        }
    }

    #[test]
    fn malformed_json_and_wrong_types_are_refused_without_a_param() {
        for body in [&b"{not json"[..], b"", b"[1, 2]", br#"{"messages": "hi"}"#] {
            let err = chat_request(body, &settings()).unwrap_err();
            assert_eq!(err.status, StatusCode::BAD_REQUEST);
            assert!(err.code.is_some());
        }
        let err = chat(json!({"messages": [{"role": "user", "content": "q"}],
            "arbitrage": {"treshold": 0.3}}))
        .unwrap_err();
        assert!(err.message.contains("treshold"), "{err}");
    }
}
