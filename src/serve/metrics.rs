//! The server's Prometheus metrics, in a registry the server owns (no global state), rendered
//! in the text format at `GET /metrics`. docs/serve.md lists them.

use std::time::Duration;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts,
    Registry, TextEncoder,
};

use crate::method::speculate::Solution;
use crate::types::Author;

/// Every metric the server keeps.
pub struct Metrics {
    registry: Registry,
    /// Answered requests by endpoint and HTTP status (499: the client went away first).
    pub requests: IntCounterVec,
    pub queue_depth: IntGauge,
    /// Requests a worker is solving now.
    pub in_flight: IntGauge,
    /// How each loop ended: finished, interrupted (client gone or a stop string), failed.
    pub solves: IntCounterVec,
    pub steps: IntCounterVec,
    /// Steps written by the target over all steps served.
    pub target_step_fraction: Gauge,
    pub request_target_fraction: Histogram,
    /// Time to decide one step, by its author.
    pub step_seconds: HistogramVec,
    /// From a request's arrival to its last byte, by endpoint.
    pub request_seconds: HistogramVec,
    /// From a request's arrival to its first step being sent.
    pub first_step_seconds: Histogram,
    /// Time a worker spent on a request, from taking it to its last step.
    pub solve_seconds: Histogram,
    /// Tokens by role (draft, target, prm) and kind (prefill, generated).
    pub tokens: IntCounterVec,
}

const LATENCY_BUCKETS: [f64; 16] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 600.0,
];

impl Metrics {
    pub fn new() -> Metrics {
        let registry =
            Registry::new_custom(Some("arbitrage".into()), None).expect("a valid registry prefix");
        let requests = IntCounterVec::new(
            Opts::new(
                "requests_total",
                "Answered requests by endpoint and HTTP status",
            ),
            &["endpoint", "status"],
        )
        .expect("valid metric");
        let queue_depth =
            IntGauge::new("queue_depth", "Requests waiting for a worker").expect("valid metric");
        let in_flight =
            IntGauge::new("requests_in_flight", "Requests being solved").expect("valid metric");
        let solves = IntCounterVec::new(
            Opts::new(
                "solves_total",
                "Speculation loops by outcome: finished, interrupted, failed",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let steps = IntCounterVec::new(
            Opts::new("steps_total", "Decided steps by the model that wrote them"),
            &["author"],
        )
        .expect("valid metric");
        let target_step_fraction = Gauge::new(
            "target_step_fraction",
            "Steps written by the target over all steps served",
        )
        .expect("valid metric");
        let request_target_fraction = Histogram::with_opts(
            HistogramOpts::new(
                "request_target_step_fraction",
                "Per finished request: steps written by the target over its steps",
            )
            .buckets(vec![0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]),
        )
        .expect("valid metric");
        let step_seconds = HistogramVec::new(
            HistogramOpts::new("step_seconds", "Time to decide one step, by its author")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["author"],
        )
        .expect("valid metric");
        let request_seconds = HistogramVec::new(
            HistogramOpts::new(
                "request_seconds",
                "From a request's arrival to its last byte, by endpoint",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["endpoint"],
        )
        .expect("valid metric");
        let first_step_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "first_step_seconds",
                "From a request's arrival to its first step being sent",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let solve_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "solve_seconds",
                "Time a worker spent on a request, from taking it to its last step",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
        )
        .expect("valid metric");
        let tokens = IntCounterVec::new(
            Opts::new(
                "tokens_total",
                "Tokens of finished requests by role (draft, target, prm) and kind (prefill, generated)",
            ),
            &["role", "kind"],
        )
        .expect("valid metric");
        for c in [
            Box::new(requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(queue_depth.clone()),
            Box::new(in_flight.clone()),
            Box::new(solves.clone()),
            Box::new(steps.clone()),
            Box::new(target_step_fraction.clone()),
            Box::new(request_target_fraction.clone()),
            Box::new(step_seconds.clone()),
            Box::new(request_seconds.clone()),
            Box::new(first_step_seconds.clone()),
            Box::new(solve_seconds.clone()),
            Box::new(tokens.clone()),
        ] {
            registry.register(c).expect("metric names are unique");
        }
        Metrics {
            registry,
            requests,
            queue_depth,
            in_flight,
            solves,
            steps,
            target_step_fraction,
            request_target_fraction,
            step_seconds,
            request_seconds,
            first_step_seconds,
            solve_seconds,
            tokens,
        }
    }

    /// A step was decided after `took`.
    pub fn step(&self, author: Author, took: Duration) {
        let label = author_label(author);
        self.steps.with_label_values(&[label]).inc();
        self.step_seconds
            .with_label_values(&[label])
            .observe(took.as_secs_f64());
        let draft = self.steps.with_label_values(&["draft"]).get();
        let target = self.steps.with_label_values(&["target"]).get();
        self.target_step_fraction
            .set(target as f64 / (draft + target).max(1) as f64);
    }

    /// A loop finished with `solution`.
    pub fn solved(&self, solution: &Solution) {
        self.solves.with_label_values(&["finished"]).inc();
        let target = solution
            .steps
            .iter()
            .filter(|s| s.model == Author::Target)
            .count();
        if !solution.steps.is_empty() {
            self.request_target_fraction
                .observe(target as f64 / solution.steps.len() as f64);
        }
        let u = &solution.usage;
        for (role, usage) in [("draft", &u.draft), ("target", &u.target), ("prm", &u.prm)] {
            self.tokens
                .with_label_values(&[role, "prefill"])
                .inc_by(usage.prefill_tokens);
            self.tokens
                .with_label_values(&[role, "generated"])
                .inc_by(usage.generated_tokens);
        }
    }

    pub fn request(&self, endpoint: &str, status: u16, took: Duration) {
        self.requests
            .with_label_values(&[endpoint, &status.to_string()])
            .inc();
        self.request_seconds
            .with_label_values(&[endpoint])
            .observe(took.as_secs_f64());
    }

    /// Mean seconds a worker spent on a request, once any was solved.
    pub fn mean_solve_seconds(&self) -> Option<f64> {
        let count = self.solve_seconds.get_sample_count();
        (count > 0).then(|| self.solve_seconds.get_sample_sum() / count as f64)
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut out)
            .expect("text encoding into memory cannot fail");
        String::from_utf8(out).expect("the text format is UTF-8")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

fn author_label(author: Author) -> &'static str {
    match author {
        Author::Draft => "draft",
        Author::Target => "target",
    }
}
