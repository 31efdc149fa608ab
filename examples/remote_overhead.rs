//! What the remote back-end itself costs, against a fake server (docs/remote.md records the
//! figures):
//!
//! 1. Client cost per step: `RemoteGenerator::generate_step` against a server that answers at
//!    once, on a growing transcript (request built, JSON over loopback HTTP, answer parsed), and
//!    the same without HTTP (request built + answer parsed).
//! 2. Concurrency: `run::run` over P problems of S steps each against a server that takes L ms
//!    per step, at several `--concurrency` values, compared with the critical-path lower bound
//!    `ceil(P / N) · (S + 1) · L` (each worker solves its problems one after another; S steps
//!    and the final answer), with L the server's measured time per call.
//!
//!     cargo run --release --example remote_overhead [-- STEPS_FOR_COST PROBLEMS STEPS LATENCY_MS]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbitrage::backend::StepGenerator;
use arbitrage::engines::remote::completions::parse_completion;
use arbitrage::engines::remote::{Client, RemoteGenerator, RetryPolicy};
use arbitrage::eval::datasets::Problem;
use arbitrage::eval::run::{self, RunDir, RunEvents, RunSpec};
use arbitrage::method::policy::RunType;
use arbitrage::method::speculate::{Limits, Models};
use arbitrage::types::{Sampling, StepOptions, Transcript};
use arbitrage_fake_server::{FakeServer, Reply, Request};
use serde_json::{Value, json};

const STEP: &str =
    "We multiply the number of apples by the price of each apple, so 12 × 3 = 36 dollars";

/// A vLLM-shaped completion: a ~25-token step, or the final answer after `steps` steps.
fn answer(req: &Value, steps: usize) -> Value {
    let prompt = req["prompt"].as_str().unwrap_or("");
    let done = prompt.matches(STEP).count() >= steps;
    let (text, reason) = if done {
        ("The answer is \\boxed{36}.", Value::Null)
    } else {
        (STEP, json!("\n\n"))
    };
    json!({"id": "cmpl", "object": "text_completion", "created": 0, "model": "m",
        "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop", "stop_reason": reason}],
        "usage": {"prompt_tokens": prompt.len() / 4, "completion_tokens": 25, "total_tokens": 0}})
}

fn options() -> StepOptions {
    StepOptions {
        separator: Some("\n\n".into()),
        max_tokens: 256,
        // The same tokens on both sides, loops or not.
        stop_loops: false,
        sampling: Sampling::GREEDY,
    }
}

fn generator(url: String) -> RemoteGenerator {
    RemoteGenerator::new(
        "draft",
        Client::new("draft", &[url], RetryPolicy::default(), None),
        "m",
    )
}

fn client_cost(steps: usize) {
    let server = FakeServer::start(move |r: &Request| Reply::ok(answer(&r.json(), usize::MAX)));
    let g = generator(server.base_url());
    let prompt = format!(
        "<|im_start|>system\nPlease reason step by step.<|im_end|>\n<|im_start|>user\n{}<|im_end|>\n<|im_start|>assistant\n",
        "Tom buys 12 apples at 3 dollars each. ".repeat(8)
    );
    let mut texts: Vec<String> = Vec::new();
    // Warm the connection pool.
    let t = Transcript {
        problem: 0,
        question: "q",
        prompt: &prompt,
        steps: &texts,
    };
    g.generate_step(&t, &options()).unwrap();
    let cpu_start = thread_cpu();
    let started = Instant::now();
    let mut parse_time = Duration::ZERO;
    for i in 0..steps {
        // Keep transcripts at a realistic length: restart after 40 steps (about 1,000 tokens).
        if i % 40 == 0 {
            texts.clear();
        }
        let t = Transcript {
            problem: 0,
            question: "q",
            prompt: &prompt,
            steps: &texts,
        };
        let step = g.generate_step(&t, &options()).unwrap();
        let p0 = Instant::now();
        let body = g.request(&t, &options()).unwrap();
        let parsed = parse_completion(&answer(&body, usize::MAX), Some("\n\n")).unwrap();
        parse_time += p0.elapsed();
        assert_eq!(parsed.step.text, step.text);
        texts.push(step.text);
    }
    let cpu = match (cpu_start, thread_cpu()) {
        (Some(a), Some(b)) => Some((b - a) / steps as f64 * 1e3),
        _ => None,
    };
    let per_step = started.elapsed().as_secs_f64() / steps as f64 * 1e3;
    let build_parse = parse_time.as_secs_f64() / steps as f64 * 1e3;
    println!(
        "client cost per step against an instant server ({steps} steps): {per_step:.3} ms wall"
    );
    match cpu {
        Some(ms) => {
            println!("  CPU time of the calling thread per step (request, HTTP, parse): {ms:.3} ms")
        }
        _ => println!("  (thread CPU time not available on this system)"),
    }
    println!("  building the request and parsing the answer alone, no HTTP: {build_parse:.3} ms");
}

/// CPU seconds the calling thread has run (Linux: /proc/thread-self/schedstat, in ns). Wall time
/// on a shared machine includes waiting for a core; this does not.
fn thread_cpu() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: f64 = text.split_whitespace().next()?.parse().ok()?;
    Some(ns / 1e9)
}

struct Quiet;
impl RunEvents for Quiet {}

fn concurrency(problems: usize, steps: usize, latency: Duration) {
    // What the server really spent per call (a sleep overshoots on a loaded machine): the
    // bound below uses it, so the overhead is the client's and the run loop's alone.
    let served = Arc::new(Mutex::new((0u64, Duration::ZERO)));
    let log = Arc::clone(&served);
    let server = FakeServer::start(move |r: &Request| {
        let t = Instant::now();
        std::thread::sleep(latency);
        let reply = Reply::ok(answer(&r.json(), steps));
        let mut l = log.lock().unwrap();
        l.0 += 1;
        l.1 += t.elapsed();
        reply
    });
    let g = generator(server.base_url());
    let problems: Vec<Problem> = (0..problems)
        .map(|idx| Problem {
            idx,
            question: format!("Problem {idx}: Tom buys 12 apples at 3 dollars each."),
            answer: "36".into(),
            gold: "36".into(),
            record: Value::Null,
        })
        .collect();
    let render = |q: &str| format!("<|im_start|>user\n{q}<|im_end|>\n<|im_start|>assistant\n");
    let calls = steps + 1; // S steps and the final answer
    println!(
        "\n{} problems × {calls} calls × {} ms per call (draft run type):",
        problems.len(),
        latency.as_millis()
    );
    println!(
        "{:>11} {:>10} {:>12} {:>9} {:>15} {:>15}",
        "concurrency", "wall s", "lower bound", "overhead", "mean latency s", "server ms/call"
    );
    for n in [1usize, 2, 4, 8, 16] {
        let dir = tempfile::tempdir().unwrap();
        let mut run_dir = RunDir::open(dir.path(), RunType::Draft, 0.0, true).unwrap();
        let models = Models {
            draft: &g,
            target: &g,
            prm: None,
            router: None,
        };
        let spec = RunSpec {
            run_type: RunType::Draft,
            threshold: 0.0,
            dataset_name: "bench",
            limits: Limits {
                step: options(),
                max_steps: 100,
                max_tokens: 100_000,
                verify: true,
            },
            render_prompt: &render,
            prm_name: None,
            router_name: None,
            early: None,
            concurrency: n,
        };
        *served.lock().unwrap() = (0, Duration::ZERO);
        let started = Instant::now();
        let metrics = run::run(&models, &spec, &problems, &mut run_dir, &Quiet).unwrap();
        let wall = started.elapsed().as_secs_f64();
        assert_eq!(metrics.errors, 0);
        let (count, total) = *served.lock().unwrap();
        let per_call = total.as_secs_f64() / count.max(1) as f64;
        let rounds = problems.len().div_ceil(n);
        let bound = (rounds * calls) as f64 * per_call;
        println!(
            "{n:>11} {wall:>10.3} {bound:>12.3} {:>8.1}% {:>15.3} {:>15.2}",
            (wall / bound - 1.0) * 100.0,
            metrics.mean_latency_s,
            per_call * 1e3
        );
    }
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("a number"))
        .collect();
    let arg = |i: usize, d: usize| args.get(i).copied().unwrap_or(d);
    client_cost(arg(0, 2000));
    concurrency(
        arg(1, 32),
        arg(2, 8),
        Duration::from_millis(arg(3, 20) as u64),
    );
}
