//! One role's endpoints behind a retrying JSON client.
//!
//! - Requests start at the next endpoint in turn (round-robin), and a failed attempt fails over
//!   to the next endpoint at once. Only after every endpoint has failed in a round does the
//!   client wait: exponential backoff with jitter, or the server's `Retry-After` when it is longer.
//! - Retried: connection errors, timeouts, resets, 429, 5xx, and a body that is not JSON (a server
//!   dying mid-answer). Not retried: other 4xx and a JSON body of the wrong shape; both are
//!   deterministic, so the error carries the server's message at once.
//! - Attempts are bounded; the final error keeps the last cause.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Timeouts and retry bounds shared by every remote role.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Time to establish a connection.
    pub connect_timeout: Duration,
    /// Time for a whole request, from sending to the last byte of the answer.
    pub request_timeout: Duration,
    /// Attempts per request, fail-overs included (1 means no retry).
    pub max_attempts: u32,
    /// Wait after the first failed round over the endpoints; doubled after each further round.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// The longest `Retry-After` honoured; a server asking for more gets this.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(600),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// The wait before round `round` (1 after the first failed round), before jitter:
    /// `initial · 2^(round-1)`, capped at `max_backoff`.
    pub fn backoff(&self, round: u32) -> Duration {
        let factor = 2u32.saturating_pow(round.saturating_sub(1).min(20));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }

    /// The wait actually taken: the backoff scaled by `jitter` in [0.5, 1] ("equal jitter", so
    /// clients that failed together spread out but never hammer), or the server's `Retry-After`
    /// (capped) when that is longer.
    pub fn delay(&self, round: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let jittered = self.backoff(round).mul_f64(jitter.clamp(0.5, 1.0));
        match retry_after {
            Some(r) => jittered.max(r.min(self.max_retry_after)),
            None => jittered,
        }
    }
}

/// Why a request to a remote engine failed.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        /// The server's own message (its `message`/`detail`/`error` field, else the body).
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("{url} answered with a body that is not JSON ({preview:?})")]
    Malformed {
        url: String,
        preview: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("{url} answered in an unexpected shape: {message}")]
    Shape { url: String, message: String },
    #[error("gave up after {attempts} attempts over {endpoints} endpoint(s)")]
    GaveUp {
        attempts: u32,
        endpoints: usize,
        #[source]
        last: Box<RemoteError>,
    },
}

impl RemoteError {
    /// Whether another attempt could succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            RemoteError::Status { status, .. } => *status == 429 || *status >= 500,
            RemoteError::Transport { source, .. } => !matches!(
                source,
                ureq::Error::BadUri(_)
                    | ureq::Error::InvalidProxyUrl
                    | ureq::Error::RequireHttpsOnly(_)
                    | ureq::Error::BodyExceedsLimit(_)
                    | ureq::Error::Http(_)
            ),
            RemoteError::Malformed { .. } => true,
            RemoteError::Shape { .. } | RemoteError::GaveUp { .. } => false,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self {
            RemoteError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Where a request goes, relative to an endpoint's base URL (which ends in `/v1`).
#[derive(Debug, Clone, Copy)]
pub enum Route<'a> {
    /// Under the base URL: `{base}/completions`.
    V1(&'a str),
    /// Under the server root, for routes outside `/v1` such as vLLM's `/pooling`.
    Root(&'a str),
}

impl Route<'_> {
    fn url(&self, base: &str) -> String {
        match self {
            Route::V1(path) => format!("{base}/{path}"),
            Route::Root(path) => {
                let root = base.strip_suffix("/v1").unwrap_or(base);
                format!("{root}/{path}")
            }
        }
    }
}

type Sleep = dyn Fn(Duration) + Send + Sync;

/// A JSON-over-HTTP client for one role's endpoints.
pub struct Client {
    role: String,
    agent: ureq::Agent,
    endpoints: Vec<String>,
    next: AtomicUsize,
    policy: RetryPolicy,
    api_key: Option<String>,
    sleep: Arc<Sleep>,
    jitter_state: AtomicU64,
}

/// Bodies larger than this are refused (a per-token embedding of a long solution is ~100 KB).
const BODY_LIMIT: u64 = 256 * 1024 * 1024;

impl Client {
    /// `endpoints` are base URLs ending in `/v1` (a trailing `/` is dropped); at least one.
    pub fn new(
        role: &str,
        endpoints: &[String],
        policy: RetryPolicy,
        api_key: Option<String>,
    ) -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(policy.connect_timeout))
            .timeout_global(Some(policy.request_timeout))
            .max_idle_connections(256)
            .max_idle_connections_per_host(64)
            .build();
        assert!(
            !endpoints.is_empty(),
            "a remote {role} needs at least one endpoint"
        );
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64);
        Client {
            role: role.to_owned(),
            agent: ureq::Agent::new_with_config(config),
            endpoints: endpoints
                .iter()
                .map(|e| e.trim_end_matches('/').to_owned())
                .collect(),
            next: AtomicUsize::new(0),
            policy,
            api_key,
            sleep: Arc::new(std::thread::sleep),
            jitter_state: AtomicU64::new(seed | 1),
        }
    }

    /// Replaces how the client waits between rounds (tests record the waits instead).
    pub fn with_sleep(mut self, sleep: impl Fn(Duration) + Send + Sync + 'static) -> Client {
        self.sleep = Arc::new(sleep);
        self
    }

    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// POSTs `body` and reads the answer with `parse`, retrying and failing over as the module
    /// describes. A `parse` error (the answer's shape is wrong) is not retried.
    pub fn post<T>(
        &self,
        route: Route<'_>,
        body: &Value,
        parse: impl Fn(&Value) -> Result<T, String>,
    ) -> Result<T, RemoteError> {
        let payload = serde_json::to_vec(body).expect("a JSON value serialises");
        let n = self.endpoints.len().max(1);
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0u32;
        let mut round_retry_after: Option<Duration> = None;
        loop {
            let base = &self.endpoints[(start + attempt as usize) % n];
            let url = route.url(base);
            let began = Instant::now();
            let result = self.post_once(&url, &payload).and_then(|value| {
                parse(&value).map_err(|message| RemoteError::Shape {
                    url: url.clone(),
                    message,
                })
            });
            attempt += 1;
            let error = match result {
                Ok(value) => {
                    tracing::trace!(role = %self.role, %url, seconds = began.elapsed().as_secs_f64(), "remote call");
                    return Ok(value);
                }
                Err(e) if !e.is_retryable() => return Err(e),
                Err(e) => e,
            };
            if attempt >= self.policy.max_attempts {
                tracing::warn!(role = %self.role, attempts = attempt, error = %chain(&error), "giving up");
                return Err(RemoteError::GaveUp {
                    attempts: attempt,
                    endpoints: n,
                    last: Box::new(error),
                });
            }
            round_retry_after = round_retry_after.max(error.retry_after());
            if (attempt as usize).is_multiple_of(n) {
                let round = attempt / n as u32;
                let wait = self
                    .policy
                    .delay(round, self.jitter(), round_retry_after.take());
                tracing::warn!(role = %self.role, attempt, wait_ms = wait.as_millis() as u64, error = %chain(&error), "retrying after a wait");
                (self.sleep)(wait);
            } else {
                tracing::warn!(role = %self.role, attempt, error = %chain(&error), "failing over to the next endpoint");
            }
        }
    }

    fn post_once(&self, url: &str, payload: &[u8]) -> Result<Value, RemoteError> {
        let mut request = self
            .agent
            .post(url)
            .header("content-type", "application/json");
        if let Some(key) = &self.api_key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let transport = |source| RemoteError::Transport {
            url: url.to_owned(),
            source,
        };
        let mut response = request.send(payload).map_err(transport)?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let bytes = response
            .body_mut()
            .with_config()
            .limit(BODY_LIMIT)
            .read_to_vec()
            .map_err(transport)?;
        if !(200..300).contains(&status) {
            return Err(RemoteError::Status {
                url: url.to_owned(),
                status,
                message: server_message(&bytes),
                retry_after,
            });
        }
        serde_json::from_slice(&bytes).map_err(|source| RemoteError::Malformed {
            url: url.to_owned(),
            preview: preview(&bytes),
            source,
        })
    }

    /// A number in [0.5, 1] (xorshift; quality is irrelevant, spreading clients out is not).
    fn jitter(&self) -> f64 {
        let mut x = self.jitter_state.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.jitter_state.store(x, Ordering::Relaxed);
        0.5 + (x >> 11) as f64 / (1u64 << 53) as f64 / 2.0
    }
}

/// An error and its causes on one line, for the logs.
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

/// `Retry-After` in seconds (the HTTP-date form is not used by inference servers).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
}

/// The server's explanation in an error body: OpenAI's `{"error": {"message"}}`, vLLM's
/// `{"message"}`, FastAPI's `{"detail"}`, else the start of the body.
pub fn server_message(body: &[u8]) -> String {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        let candidates = [
            v.pointer("/error/message"),
            v.get("message"),
            v.get("detail"),
            v.get("error"),
        ];
        for c in candidates.into_iter().flatten() {
            match c {
                Value::String(s) => return s.clone(),
                Value::Null => {}
                other => return other.to_string(),
            }
        }
    }
    preview(body)
}

fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(200).collect();
    if text.chars().count() > 200 {
        s.push('…');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_round_up_to_the_cap() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            ..RetryPolicy::default()
        };
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(350));
        assert_eq!(p.backoff(40), Duration::from_millis(350));
    }

    #[test]
    fn a_longer_retry_after_wins_over_the_backoff_but_is_capped() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
            ..RetryPolicy::default()
        };
        assert_eq!(p.delay(1, 1.0, None), Duration::from_millis(100));
        assert_eq!(p.delay(1, 0.5, None), Duration::from_millis(50));
        assert_eq!(
            p.delay(1, 1.0, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            p.delay(1, 1.0, Some(Duration::from_secs(3600))),
            Duration::from_secs(5)
        );
        assert_eq!(
            p.delay(1, 1.0, Some(Duration::ZERO)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn retry_after_is_read_in_seconds() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
    }

    #[test]
    fn the_servers_message_is_found_in_each_error_shape() {
        assert_eq!(
            server_message(br#"{"error": {"message": "bad model", "type": "x"}}"#),
            "bad model"
        );
        assert_eq!(
            server_message(br#"{"object": "error", "message": "too long", "code": 400}"#),
            "too long"
        );
        assert_eq!(server_message(br#"{"detail": "Not Found"}"#), "Not Found");
        assert_eq!(server_message(b"plain text"), "plain text");
    }

    #[test]
    fn only_transient_failures_are_retried() {
        let status = |status| RemoteError::Status {
            url: "u".into(),
            status,
            message: String::new(),
            retry_after: None,
        };
        assert!(status(429).is_retryable());
        assert!(status(500).is_retryable());
        assert!(status(503).is_retryable());
        assert!(!status(400).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(
            !RemoteError::Shape {
                url: "u".into(),
                message: String::new()
            }
            .is_retryable()
        );
    }

    #[test]
    fn routes_resolve_under_v1_or_the_server_root() {
        assert_eq!(
            Route::V1("completions").url("http://h:1/v1"),
            "http://h:1/v1/completions"
        );
        assert_eq!(
            Route::Root("pooling").url("http://h:1/v1"),
            "http://h:1/pooling"
        );
    }
}
