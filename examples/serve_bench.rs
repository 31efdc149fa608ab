//! What `arbitrage serve` costs on top of the loop (docs/serve.md records the figures). Both
//! measurements start the release binary next to this example, on loopback only.
//!
//! `load`: the server on remote engines pointing at a fake server that takes a fixed time per
//! call. N = 1, 8, 32 clients each send R requests one after another (run type `draft`, S steps
//! and the final answer each). Every request must be answered or refused with 429; latency
//! p50/p99 and throughput are set against the critical-path bound (each request needs S + 1
//! calls of the fake server's measured time per call), and the overhead per step is what a
//! request took beyond that. A last round sends 32 clients to a server with 8 workers and 8 queue
//! places, so some are refused, cleanly.
//!
//! `first-step`: the embedded smoke model. The time from sending a streamed request to reading
//! its first step, against the loop's own time to its first step run in this process on the same
//! model and prompt, interleaved round by round so both see the same machine load.
//!
//!     cargo build --release --example serve_bench
//!     target/release/examples/serve_bench load [LATENCY_MS STEPS REQUESTS_PER_CLIENT]
//!     target/release/examples/serve_bench first-step [ROUNDS]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arbitrage::config::Config;
use arbitrage::engines::llama::EmbeddedModel;
use arbitrage::engines::remote::{Client, RemoteGenerator, RetryPolicy};
use arbitrage::method::policy::RunType;
use arbitrage::method::prompts::PromptTemplate;
use arbitrage::method::speculate::{
    Limits, Models, NoSink, Rule, StepSink, Task, TraceStep, solve,
};
use arbitrage::types::{Sampling, StepOptions};
use arbitrage_fake_server::{FakeServer, Reply, Request};
use serde_json::{Value, json};

const STEP: &str =
    "We multiply the number of apples by the price of each apple, so 12 × 3 = 36 dollars";
const QUESTION: &str = "Tom has 3 apples and buys 4 more. How many apples does he have?";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let number = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a whole number"))
    };
    match args.first().map(String::as_str) {
        Some("load") => load(
            Duration::from_millis(number(1, 50)),
            number(2, 8) as usize,
            number(3, 8) as usize,
        ),
        Some("first-step") => first_step(number(1, 15) as usize),
        _ => {
            eprintln!("usage: serve_bench load [LATENCY_MS STEPS REQUESTS] | first-step [ROUNDS]");
            std::process::exit(2);
        }
    }
}

/// The repository root and the release binary beside this example.
fn paths() -> (PathBuf, PathBuf) {
    let exe = std::env::current_exe().expect("the example's path");
    let release = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/release/examples/serve_bench");
    let binary = release.join("arbitrage");
    assert!(
        binary.is_file(),
        "{} is missing: cargo build --release",
        binary.display()
    );
    (PathBuf::from(env!("CARGO_MANIFEST_DIR")), binary)
}

/// A server process, killed when dropped.
struct Served {
    child: Child,
    addr: String,
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let (root, binary) = paths();
        let mut child = Command::new(binary)
            .arg("serve")
            .args(["--port", "0"])
            .args(args)
            .current_dir(root)
            .env_remove("ARBITRAGE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start arbitrage serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = loop {
            let line = lines
                .next()
                .expect("the server exited before listening")
                .unwrap();
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on http://".len()..].trim().to_owned();
            }
        };
        std::thread::spawn(move || for _ in lines {});
        Served { child, addr }
    }

    fn health(&self) -> Value {
        let body = ureq::get(&format!("http://{}/health", self.addr))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        serde_json::from_str(&body).unwrap()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

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

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[derive(Default)]
struct Outcomes {
    latencies: Vec<f64>,
    refused: usize,
    lost: Vec<String>,
}

fn load(latency: Duration, steps: usize, per_client: usize) {
    // What the fake server really spent per call (a sleep overshoots on a loaded machine): the
    // bound uses it, so the overhead left is the server's own.
    let served = Arc::new(Mutex::new((0u64, Duration::ZERO)));
    let log = Arc::clone(&served);
    let fake = FakeServer::start(move |r: &Request| {
        let t = Instant::now();
        std::thread::sleep(latency);
        let reply = Reply::ok(answer(&r.json(), steps));
        let mut l = log.lock().unwrap();
        l.0 += 1;
        l.1 += t.elapsed();
        reply
    });
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("remote.toml");
    std::fs::write(
        &config,
        format!(
            r#"[models.draft]
url = ["{url}"]
model = "draft-model"

[models.target]
url = ["{url}"]
model = "target-model"

[generation]
separator = "\n\n"
max_step_tokens = 64
max_tokens = 100000
max_steps = 100
"#,
            url = fake.base_url()
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let calls = steps + 1;
    println!(
        "load: {steps} steps + final answer per request, fake server {} ms per call, run type draft",
        latency.as_millis()
    );
    println!(
        "{:>8} {:>9} {:>8} {:>7} {:>5} {:>9} {:>9} {:>10} {:>10} {:>13}",
        "clients",
        "requests",
        "answered",
        "refused",
        "lost",
        "p50 s",
        "p99 s",
        "req/s",
        "bound/s",
        "overhead/step"
    );
    for clients in [1usize, 8, 32] {
        let server = Served::start(&[
            "--config",
            config,
            "--run-type",
            "draft",
            "--concurrency",
            "32",
            "--queue",
            "32",
        ]);
        round(&server, &served, clients, per_client, calls);
        if clients == 1 {
            let pairs = 16;
            let (alone, through, difference) = paired(&server, &fake, pairs, calls);
            println!(
                "         {pairs} interleaved pairs, one at a time: loop alone p50 {alone:.4} s, through the server p50 {through:.4} s; median paired difference {:+.3} ms per step",
                difference / calls as f64 * 1e3
            );
        }
    }
    println!("refusals: 32 clients, 8 workers, 8 queue places, no retries");
    let server = Served::start(&[
        "--config",
        config,
        "--run-type",
        "draft",
        "--concurrency",
        "8",
        "--queue",
        "8",
    ]);
    round(&server, &served, 32, per_client, calls);
}

/// One request at a time, alternating: the loop on a remote generator in this process, then
/// the same question through the server, `pairs` times. Both see the same machine at nearly the
/// same moment, so the paired difference is the server's own cost even on a busy machine.
/// Returns the medians (loop alone, server) and the median paired difference, in seconds.
fn paired(server: &Served, fake: &FakeServer, pairs: usize, calls: usize) -> (f64, f64, f64) {
    let generator = RemoteGenerator::new(
        "draft",
        Client::new("draft", &[fake.base_url()], RetryPolicy::default(), None),
        "draft-model",
    );
    let models = Models {
        draft: &generator,
        target: &generator,
        prm: None,
        router: None,
    };
    let limits = Limits {
        step: StepOptions {
            separator: Some("\n\n".into()),
            max_tokens: 64,
            stop_loops: true,
            sampling: Sampling::GREEDY,
        },
        max_steps: 100,
        max_tokens: 100_000,
        verify: true,
    };
    let rule = Rule {
        run_type: RunType::Draft,
        threshold: 0.0,
        early: None,
    };
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(120)))
            .build(),
    );
    let url = format!("http://{}/v1/chat/completions", server.addr);
    let direct = |r: usize| {
        let question = format!("Client 0, request {r}: Tom buys 12 apples at 3 dollars each.");
        let prompt = PromptTemplate::Qwen25MathCot.render(&question);
        let task = Task {
            problem: r as u64,
            question: &question,
            prompt: &prompt,
        };
        let t = Instant::now();
        let solution = solve(&models, &task, rule.clone(), &limits, &mut NoSink).unwrap();
        assert_eq!(solution.steps.len(), calls);
        t.elapsed().as_secs_f64()
    };
    let through_server = |r: usize| {
        let body = json!({"messages": [{"role": "user",
            "content": format!("Client 0, request {r}: Tom buys 12 apples at 3 dollars each.")}]});
        let t = Instant::now();
        let text = agent
            .post(&url)
            .header("content-type", "application/json")
            .send(body.to_string())
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap();
        let took = t.elapsed().as_secs_f64();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["arbitrage"]["draft_steps"].as_u64(), Some(calls as u64));
        took
    };
    // Warm both connection pools.
    direct(0);
    through_server(0);
    let (mut alone, mut served, mut differences) = (Vec::new(), Vec::new(), Vec::new());
    for r in 1..=pairs {
        let (a, s) = if r % 2 == 0 {
            let a = direct(r);
            (a, through_server(r))
        } else {
            let s = through_server(r);
            (direct(r), s)
        };
        alone.push(a);
        served.push(s);
        differences.push(s - a);
    }
    for v in [&mut alone, &mut served, &mut differences] {
        v.sort_by(f64::total_cmp);
    }
    (
        percentile(&alone, 0.5),
        percentile(&served, 0.5),
        percentile(&differences, 0.5),
    )
}

/// CPU seconds a process has used (user + system), from /proc.
fn process_cpu(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// `clients` threads send `per_client` requests each, one after another; prints what happened.
fn round(
    server: &Served,
    served: &Mutex<(u64, Duration)>,
    clients: usize,
    per_client: usize,
    calls: usize,
) {
    let cpu_before = process_cpu(server.child.id());
    *served.lock().unwrap() = (0, Duration::ZERO);
    let outcomes = Arc::new(Mutex::new(Outcomes::default()));
    let url = format!("http://{}/v1/chat/completions", server.addr);
    let started = Instant::now();
    std::thread::scope(|scope| {
        for c in 0..clients {
            let outcomes = Arc::clone(&outcomes);
            let url = url.clone();
            scope.spawn(move || {
                let agent = ureq::Agent::new_with_config(
                    ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(120)))
                        .build(),
                );
                for r in 0..per_client {
                    let body = json!({"messages": [{"role": "user",
                        "content": format!("Client {c}, request {r}: Tom buys 12 apples at 3 dollars each.")}]});
                    let t = Instant::now();
                    let result = agent
                        .post(&url)
                        .header("content-type", "application/json")
                        .send(body.to_string())
                        .map_err(|e| e.to_string())
                        .and_then(|mut resp| {
                            let status = resp.status().as_u16();
                            let retry = resp.headers().contains_key("retry-after");
                            let text = resp
                                .body_mut()
                                .read_to_string()
                                .map_err(|e| e.to_string())?;
                            Ok((status, retry, text))
                        });
                    let took = t.elapsed().as_secs_f64();
                    let mut o = outcomes.lock().unwrap();
                    match result {
                        Ok((200, _, text)) => {
                            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                            if v["arbitrage"]["draft_steps"].as_u64() == Some(calls as u64) {
                                o.latencies.push(took);
                            } else {
                                o.lost.push(format!("unexpected answer: {text}"));
                            }
                        }
                        Ok((429, true, text))
                            if serde_json::from_str::<Value>(&text)
                                .is_ok_and(|v| v["error"]["code"] == "queue_full") =>
                        {
                            o.refused += 1
                        }
                        Ok((status, _, text)) => o.lost.push(format!("{status}: {text}")),
                        Err(e) => o.lost.push(e),
                    }
                }
            });
        }
    });
    let wall = started.elapsed().as_secs_f64();
    let cpu = match (cpu_before, process_cpu(server.child.id())) {
        (Some(a), Some(b)) => b - a,
        _ => f64::NAN,
    };
    let o = outcomes.lock().unwrap();
    let (count, total) = *served.lock().unwrap();
    let per_call = total.as_secs_f64() / count.max(1) as f64;
    let mut sorted = o.latencies.clone();
    sorted.sort_by(f64::total_cmp);
    let answered = sorted.len();
    let (p50, p99) = if sorted.is_empty() {
        (f64::NAN, f64::NAN)
    } else {
        (percentile(&sorted, 0.5), percentile(&sorted, 0.99))
    };
    let critical = calls as f64 * per_call;
    let throughput = answered as f64 / wall;
    // Each client sends its requests back to back: at best it finishes one per critical path.
    let bound = clients as f64 / critical;
    let overhead_ms = (p50 - critical) / calls as f64 * 1e3;
    println!(
        "{:>8} {:>9} {:>8} {:>7} {:>5} {:>9.4} {:>9.4} {:>10.2} {:>10.2} {:>10.3} ms",
        clients,
        clients * per_client,
        answered,
        o.refused,
        o.lost.len(),
        p50,
        p99,
        throughput,
        bound,
        overhead_ms
    );
    println!(
        "         fake server {:.2} ms per call; critical path {:.4} s; throughput {:.1}% of the bound",
        per_call * 1e3,
        critical,
        100.0 * throughput / bound
    );
    let steps_served = (o.latencies.len() * calls).max(1);
    println!(
        "         server process CPU {:.3} ms per step served (HTTP in and out, loop, remote client)",
        cpu / steps_served as f64 * 1e3
    );
    for e in o.lost.iter().take(3) {
        println!("         lost: {e}");
    }
    assert!(o.lost.is_empty(), "requests were lost");
    assert_eq!(answered + o.refused, clients * per_client);
}

fn first_step(rounds: usize) {
    let (root, _) = paths();
    let config = Config::from_file(&root.join("configs/smoke.toml")).expect("configs/smoke.toml");
    let settings = config
        .draft
        .embedded()
        .expect("the smoke config is embedded");
    let model = EmbeddedModel::load(settings).expect("the smoke model");
    let server = Served::start(&["--config", "configs/smoke.toml", "--run-type", "draft"]);
    let prompt = config.prompt.render(QUESTION);
    let models = Models {
        draft: &model,
        target: &model,
        prm: None,
        router: None,
    };
    let limits = Limits {
        step: config.generation.step.clone(),
        max_steps: config.generation.max_steps,
        max_tokens: config.generation.max_tokens,
        verify: true,
    };
    let rule = Rule {
        run_type: RunType::Draft,
        threshold: 0.0,
        early: None,
    };
    let direct = |problem: u64| -> f64 {
        let started = Instant::now();
        /// Notes when the first step was decided, and stops there, as the server does when the
        /// client leaves.
        struct FirstStep {
            started: Instant,
            at: Option<f64>,
        }
        impl StepSink for FirstStep {
            fn step_decided(&mut self, _: usize, _: &TraceStep) {
                self.at.get_or_insert(self.started.elapsed().as_secs_f64());
            }
            fn should_stop(&mut self) -> bool {
                self.at.is_some()
            }
        }
        let task = Task {
            problem,
            question: QUESTION,
            prompt: &prompt,
        };
        let mut first = FirstStep { started, at: None };
        let _ = solve(&models, &task, rule.clone(), &limits, &mut first);
        first.at.expect("a first step")
    };
    let streamed = || -> f64 {
        let body = json!({"messages": [{"role": "user", "content": QUESTION}], "stream": true})
            .to_string();
        let started = Instant::now();
        let mut stream = TcpStream::connect(&server.addr).unwrap();
        write!(
            stream,
            "POST /v1/chat/completions HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            server.addr,
            body.len()
        )
        .unwrap();
        let mut reader = BufReader::new(&stream);
        let mut line = String::new();
        loop {
            line.clear();
            assert!(reader.read_line(&mut line).unwrap() > 0, "the stream ended");
            if line.starts_with("data: ") {
                break;
            }
        }
        let took = started.elapsed().as_secs_f64();
        drop(reader);
        drop(stream);
        // The server stops the request at its next step; wait so rounds never overlap.
        while server.health()["in_flight"] != 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        took
    };
    // Warm both (first-call allocations, page cache) before timing.
    direct(1_000_000);
    streamed();
    let mut loop_s = Vec::new();
    let mut server_s = Vec::new();
    let mut ratios = Vec::new();
    for r in 0..rounds {
        let (d, s) = if r % 2 == 0 {
            let d = direct(r as u64);
            (d, streamed())
        } else {
            let s = streamed();
            (direct(r as u64), s)
        };
        loop_s.push(d);
        server_s.push(s);
        ratios.push(s / d);
    }
    for v in [&mut loop_s, &mut server_s, &mut ratios] {
        v.sort_by(f64::total_cmp);
    }
    println!(
        "first step, smoke model, run type draft, {rounds} interleaved rounds (median [p10, p90]):"
    );
    let show = |v: &[f64]| {
        format!(
            "{:.1} ms [{:.1}, {:.1}]",
            percentile(v, 0.5) * 1e3,
            percentile(v, 0.1) * 1e3,
            percentile(v, 0.9) * 1e3
        )
    };
    println!(
        "  loop in this process, call to first step:     {}",
        show(&loop_s)
    );
    println!(
        "  server, request sent to first chunk read:     {}",
        show(&server_s)
    );
    println!(
        "  per-round ratio server / loop: median {:.3} [p10 {:.3}, p90 {:.3}]; ratio of medians {:.3}",
        percentile(&ratios, 0.5),
        percentile(&ratios, 0.1),
        percentile(&ratios, 0.9),
        percentile(&server_s, 0.5) / percentile(&loop_s, 0.5)
    );
}
