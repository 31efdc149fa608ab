//! `arbitrage serve` end to end: the real binary with the smoke model on an ephemeral port,
//! driven over HTTP. Streamed answers add up to non-streamed ones, request overrides change the
//! rule, bad input gets OpenAI-style errors, a client that leaves frees the worker, a full queue
//! refuses with 429, and SIGTERM drains what is in flight.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// A server process; killed when dropped.
struct Server {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    /// Starts `arbitrage serve --config configs/smoke.toml --port 0 EXTRA...` and waits for the
    /// address it prints.
    fn start(extra: &[&str]) -> Server {
        Server::start_with("configs/smoke.toml", extra)
    }

    fn start_with(config: &str, extra: &[&str]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arbitrage"))
            .args(["serve", "--config", config, "--port", "0"])
            .args(extra)
            .current_dir(common::repo())
            .env_remove("ARBITRAGE_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start arbitrage serve");
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut seen = String::new();
        let addr = loop {
            let Some(Ok(line)) = lines.next() else {
                let _ = child.kill();
                panic!("the server exited before listening: {seen}");
            };
            seen.push_str(&line);
            seen.push('\n');
            if let Some(at) = line.find("listening on http://") {
                break line[at + "listening on http://".len()..].trim().to_owned();
            }
        };
        // Keep reading stderr so the pipe never fills, and keep it for failure messages.
        let stderr = Arc::new(Mutex::new(seen));
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Server {
            child,
            addr,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(300)))
                .build(),
        )
    }

    /// POSTs raw bytes; returns status, Retry-After and body text.
    fn post_raw(&self, path: &str, body: &[u8]) -> (u16, Option<String>, String) {
        let mut response = Server::agent()
            .post(&self.url(path))
            .header("content-type", "application/json")
            .send(body)
            .expect("the server answers");
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let text = response
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .unwrap();
        (response.status().as_u16(), retry_after, text)
    }

    fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let (status, _, text) = self.post_raw(path, body.to_string().as_bytes());
        let value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {text}\n{}", self.log()));
        (status, value)
    }

    fn get(&self, path: &str) -> String {
        Server::agent()
            .get(&self.url(path))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .unwrap()
    }

    /// The value of one sample line of /metrics (0 when absent).
    fn metric(&self, sample: &str) -> f64 {
        self.get("/metrics")
            .lines()
            .find_map(|l| l.strip_prefix(sample)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits for a condition on the server's state, polling, with a deadline.
    fn wait_until(&self, what: &str, ok: impl Fn(&Server) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(120);
        while !ok(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting until {what}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn health(&self) -> Value {
        serde_json::from_str(&self.get("/health")).unwrap()
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends a request on a raw connection and returns it unread (the client can leave at will).
    fn open(&self, path: &str, body: &Value) -> TcpStream {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        let body = body.to_string();
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .unwrap();
        stream
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads a raw streamed response until its first `data:` line (the first decided step).
fn first_data_line(stream: &TcpStream) -> String {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            reader.read_line(&mut line).unwrap() > 0,
            "the stream ended early"
        );
        if line.starts_with("data: ") {
            return line;
        }
    }
}

/// The `data:` payloads of an SSE body.
fn sse_data(body: &str) -> Vec<String> {
    body.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

fn user(text: &str) -> Value {
    json!([{"role": "user", "content": text}])
}

/// A prompt with no natural end: the model counts on until the token budget runs out, so a
/// request over it takes many steps.
fn endless(max_tokens: u32, stream: bool) -> Value {
    json!({
        "prompt": "1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,",
        "max_tokens": max_tokens,
        "stream": stream,
        "arbitrage": {"run_type": "draft", "max_steps": 1000},
    })
}

#[test]
fn streamed_chunks_add_up_to_the_non_streamed_answer_for_the_same_seed() {
    let server = Server::start(&[]);
    let request = json!({
        "model": "arbitrage",
        "messages": user("Tom has 3 apples and buys 4 more. How many apples does he have?"),
        "temperature": 0.8,
        "seed": 7,
        "arbitrage": {"run_type": "rsd", "threshold": 0.5},
    });
    let (status, whole) = server.post("/v1/chat/completions", &request);
    assert_eq!(status, 200, "{whole}");
    let text = whole["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(!text.is_empty());
    let steps = whole["arbitrage"]["steps"].as_array().unwrap();
    let joined: String = steps.iter().map(|s| s["text"].as_str().unwrap()).collect();
    assert_eq!(joined, text, "the extension's steps are the answer");
    assert_eq!(whole["arbitrage"]["run_type"], "rsd");
    assert!(steps.iter().all(|s| s["prm_score"].is_number()));
    let completion_tokens: u64 = steps.iter().map(|s| s["tokens"].as_u64().unwrap()).sum();
    assert_eq!(whole["usage"]["completion_tokens"], completion_tokens);
    assert!(whole["usage"]["prompt_tokens"].as_u64().unwrap() > 10);

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let (status, _, body) =
        server.post_raw("/v1/chat/completions", streamed.to_string().as_bytes());
    assert_eq!(status, 200, "{body}");
    let events = sse_data(&body);
    assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let content: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(content, text, "streamed pieces add up to the whole answer");
    // One chunk per decided step, numbered in order, naming its author.
    let step_chunks: Vec<&Value> = chunks
        .iter()
        .filter(|c| c["arbitrage"]["step"].is_u64())
        .collect();
    assert_eq!(step_chunks.len(), steps.len());
    for (i, (chunk, step)) in step_chunks.iter().zip(steps).enumerate() {
        assert_eq!(chunk["arbitrage"]["step"], i);
        assert_eq!(chunk["arbitrage"]["model"], step["model"]);
    }
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(
        finish["choices"][0]["finish_reason"],
        whole["choices"][0]["finish_reason"]
    );
    assert_eq!(
        finish["arbitrage"]["target_step_fraction"],
        whole["arbitrage"]["target_step_fraction"]
    );
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(usage["usage"], whole["usage"]);

    let models: Value = serde_json::from_str(&server.get("/v1/models")).unwrap();
    assert_eq!(models["data"][0]["id"], "arbitrage");
    let metrics = server.get("/metrics");
    for name in [
        "arbitrage_requests_total{endpoint=\"chat_completions\",status=\"200\"} 2",
        "arbitrage_steps_total{author=\"draft\"}",
        "arbitrage_step_seconds_bucket",
        "arbitrage_request_seconds_bucket",
        "arbitrage_first_step_seconds_count 2",
        "arbitrage_target_step_fraction",
        "arbitrage_tokens_total{kind=\"generated\",role=\"draft\"}",
        "arbitrage_queue_depth 0",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }
}

#[test]
fn completions_continue_the_raw_prompt_and_stop_strings_cut_the_answer() {
    let server = Server::start(&[]);
    let request = json!({"prompt": "1, 2, 3, 4, 5,", "max_tokens": 40,
        "arbitrage": {"run_type": "draft"}});
    let (status, whole) = server.post("/v1/completions", &request);
    assert_eq!(status, 200, "{whole}");
    assert_eq!(whole["object"], "text_completion");
    let text = whole["choices"][0]["text"].as_str().unwrap().to_owned();
    assert!(text.contains('7'), "the model counts on: {text:?}");
    assert_eq!(whole["choices"][0]["finish_reason"], "length");

    // Cut at the first "7": the text before it, finish_reason stop, streamed or not.
    let cut = &text[..text.find('7').unwrap()];
    let mut stopped = request.clone();
    stopped["stop"] = json!(["7"]);
    let (_, whole) = server.post("/v1/completions", &stopped);
    assert_eq!(whole["choices"][0]["text"], cut);
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    assert_eq!(whole["arbitrage"]["stop"], "stop_string");
    stopped["stream"] = json!(true);
    let (_, _, body) = server.post_raw("/v1/completions", stopped.to_string().as_bytes());
    let pieces: String = sse_data(&body)
        .iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["choices"][0]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(pieces, cut);
}

#[test]
fn request_overrides_choose_the_run_type_and_threshold() {
    // A router file with a budget table, so a target fraction picks a threshold.
    let tmp = tempfile::tempdir().unwrap();
    let mut router: Value = serde_json::from_str(
        &std::fs::read_to_string(common::repo().join("tests/data/smoke-router.json")).unwrap(),
    )
    .unwrap();
    router["budget"] = json!([
        {"threshold": 0.9, "target_fraction": 0.1},
        {"threshold": 0.25, "target_fraction": 0.3},
        {"threshold": 0.05, "target_fraction": 0.8},
    ]);
    let router_path = tmp.path().join("router.json");
    std::fs::write(&router_path, router.to_string()).unwrap();
    let server = Server::start(&["--router", router_path.to_str().unwrap()]);
    let ask = |ext: Value| {
        let (status, v) = server.post(
            "/v1/chat/completions",
            &json!({"messages": user("What is 12 + 30?"), "max_tokens": 48, "arbitrage": ext}),
        );
        assert_eq!(status, 200, "{v}");
        v["arbitrage"].clone()
    };
    let authors = |ext: &Value| -> Vec<String> {
        ext["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["model"].as_str().unwrap().to_owned())
            .collect()
    };

    let default = ask(json!({}));
    assert_eq!(
        (default["run_type"].clone(), default["threshold"].clone()),
        (json!("router"), json!(0.5))
    );
    let target = ask(json!({"run_type": "target"}));
    assert!(authors(&target).iter().all(|a| a == "target"));
    assert_eq!(target["target_step_fraction"], 1.0);
    let draft = ask(json!({"run_type": "draft"}));
    assert!(authors(&draft).iter().all(|a| a == "draft"));
    // RSD at threshold 0 keeps every draft step; at 1 it sends every step to the target.
    let keep = ask(json!({"run_type": "rsd", "threshold": 0.0}));
    assert!(authors(&keep).iter().all(|a| a == "draft"));
    let escalate = ask(json!({"run_type": "rsd", "threshold": 1.0}));
    assert!(authors(&escalate).iter().all(|a| a == "target"));
    // Router: always escalating at ŷ ≥ 0, never at a threshold above every ŷ.
    let all = ask(json!({"threshold": 0.0}));
    assert!(authors(&all).iter().all(|a| a == "target"));
    let fraction = ask(json!({"target_fraction": 0.3}));
    assert_eq!(fraction["threshold"], 0.25);
}

#[test]
fn bad_input_gets_an_openai_error_and_the_server_keeps_serving() {
    let server = Server::start(&["--max-body-bytes", "4096"]);
    let long_prompt = "word ".repeat(3000);
    let cases: Vec<(&str, Vec<u8>, u16, Option<&str>)> = vec![
        ("invalid JSON", b"{\"messages\": [".to_vec(), 400, None),
        (
            "missing messages",
            br#"{"model": "arbitrage"}"#.to_vec(),
            400,
            Some("messages"),
        ),
        (
            "empty messages",
            br#"{"messages": []}"#.to_vec(),
            400,
            Some("messages"),
        ),
        (
            "unknown role",
            json!({"messages": [{"role": "narrator", "content": "hi"}]})
                .to_string()
                .into_bytes(),
            400,
            Some("messages[0].role"),
        ),
        (
            "temperature out of range",
            json!({"messages": user("hi"), "temperature": -1})
                .to_string()
                .into_bytes(),
            400,
            Some("temperature"),
        ),
        (
            "max_tokens out of range",
            json!({"messages": user("hi"), "max_tokens": 0})
                .to_string()
                .into_bytes(),
            400,
            Some("max_tokens"),
        ),
        (
            "unknown run type",
            json!({"messages": user("hi"), "arbitrage": {"run_type": "fastest"}})
                .to_string()
                .into_bytes(),
            400,
            Some("arbitrage.run_type"),
        ),
        (
            "a target fraction without a budget table",
            json!({"messages": user("hi"), "arbitrage": {"target_fraction": 0.3}})
                .to_string()
                .into_bytes(),
            400,
            Some("arbitrage.target_fraction"),
        ),
        (
            "oversized body",
            json!({"messages": user(&"x".repeat(8192))})
                .to_string()
                .into_bytes(),
            413,
            None,
        ),
    ];
    for (what, body, status, param) in cases {
        let (got, _, text) = server.post_raw("/v1/chat/completions", &body);
        assert_eq!(got, status, "{what}: {text}");
        let v: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"));
        let error = &v["error"];
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}: {v}"
        );
        assert!(error["type"].is_string(), "{what}: {v}");
        assert_eq!(error["param"].as_str(), param, "{what}: {v}");
    }

    // A prompt longer than the context window (2048 tokens): refused before the loop runs.
    // It needs a larger body limit than the rest, so it goes to a second server.
    let roomy = Server::start(&[]);
    for (path, body, param) in [
        (
            "/v1/chat/completions",
            json!({"messages": user(&long_prompt)}),
            "messages",
        ),
        ("/v1/completions", json!({"prompt": long_prompt}), "prompt"),
    ] {
        let (status, v) = roomy.post(path, &body);
        assert_eq!(status, 400, "{v}");
        assert_eq!(v["error"]["code"], "context_length_exceeded");
        assert_eq!(v["error"]["param"], param);
    }

    let (status, v) = server.post("/v1/nothing", &json!({}));
    assert_eq!(
        (status, v["error"]["code"].clone()),
        (404, json!("not_found"))
    );
    let (status, v) = server.post(
        "/v1/chat/completions",
        &json!({"messages": user("What is 2 + 3?"), "max_tokens": 16}),
    );
    assert_eq!(status, 200, "still serving after bad input: {v}");
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[test]
fn a_client_that_disconnects_stops_its_request_and_frees_the_worker() {
    let server = Server::start(&["--queue", "1"]);
    // Streaming: leave after the first step.
    let stream = server.open("/v1/completions", &endless(2000, true));
    first_data_line(&stream);
    drop(stream);
    // The next request waits for the one worker, so it is answered only once the first stops.
    let (status, v) = server.post("/v1/completions", &endless(16, false));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        server.metric("arbitrage_solves_total{outcome=\"interrupted\"}"),
        1.0
    );
    assert_eq!(
        server.metric("arbitrage_requests_total{endpoint=\"completions\",status=\"499\"}"),
        1.0
    );

    // Not streaming: leave while the worker is on it.
    let waiting = server.open("/v1/completions", &endless(2000, false));
    server.wait_until("the request runs", |s| s.health()["in_flight"] == 1);
    drop(waiting);
    server.wait_until("the worker is free", |s| s.health()["in_flight"] == 0);
    assert_eq!(
        server.metric("arbitrage_solves_total{outcome=\"interrupted\"}"),
        2.0
    );
    assert_eq!(
        server.metric("arbitrage_solves_total{outcome=\"finished\"}"),
        1.0
    );
}

#[test]
fn a_full_queue_answers_429_with_retry_after() {
    let server = Server::start(&["--queue", "1"]);
    let running = server.open("/v1/completions", &endless(2000, true));
    first_data_line(&running);
    let waiting = server.open("/v1/completions", &endless(2000, true));
    server.wait_until("one request waits", |s| s.health()["queue_depth"] == 1);
    let (status, retry_after, text) =
        server.post_raw("/v1/completions", endless(16, false).to_string().as_bytes());
    assert_eq!(status, 429, "{text}");
    let seconds: u64 = retry_after.expect("Retry-After").parse().unwrap();
    assert!(seconds >= 1);
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"]["code"], "queue_full");
    // Both clients leave: the running request stops at its next step, the waiting one is
    // skipped, and the server is free again.
    drop(running);
    drop(waiting);
    server.wait_until("the queue is empty and the worker idle", |s| {
        let h = s.health();
        h["queue_depth"] == 0 && h["in_flight"] == 0
    });
    let (status, v) = server.post("/v1/completions", &endless(16, false));
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        server.metric("arbitrage_requests_total{endpoint=\"completions\",status=\"429\"}"),
        1.0
    );
}

#[test]
fn sigterm_lets_the_request_in_flight_finish_then_exits() {
    let mut server = Server::start(&[]);
    let stream = server.open("/v1/completions", &endless(256, true));
    first_data_line(&stream);
    let pid = server.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let mut rest = String::new();
    BufReader::new(&stream).read_to_string(&mut rest).unwrap();
    assert!(rest.contains("data: [DONE]"), "the stream was cut: {rest}");
    let status = server.child.wait().unwrap();
    assert!(status.success(), "exit {status}: {}", server.log());
}

#[test]
fn remote_engines_serve_several_requests_at_once() {
    use arbitrage_fake_server::{FakeServer, Reply, Request};
    const CLIENTS: usize = 4;
    // Every call waits until CLIENTS calls are inside the fake server at once (or a deadline
    // passes), and the most seen at once is kept: one request at a time would show 1.
    let inside = Arc::new((Mutex::new((0usize, 0usize)), Condvar::new()));
    let gate = Arc::clone(&inside);
    let fake = FakeServer::start(move |r: &Request| {
        let (lock, changed) = &*gate;
        let mut state = lock.lock().unwrap();
        state.0 += 1;
        state.1 = state.1.max(state.0);
        changed.notify_all();
        let deadline = Instant::now() + Duration::from_secs(3);
        while state.1 < CLIENTS && Instant::now() < deadline {
            state = changed
                .wait_timeout(state, Duration::from_millis(100))
                .unwrap()
                .0;
        }
        state.0 -= 1;
        drop(state);
        let prompt = r.json()["prompt"].as_str().unwrap_or("").to_owned();
        let done = prompt.contains("Step two.");
        let text = if done {
            "The answer is 7."
        } else if prompt.contains("Step one.") {
            "Step two.\n\n"
        } else {
            "Step one.\n\n"
        };
        Reply::ok(
            json!({"id": "c", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": text, "logprobs": null, "finish_reason": "stop",
                "stop_reason": if done { Value::Null } else { json!("\n\n") }}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}}),
        )
    });
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("remote.toml");
    std::fs::write(
        &config,
        format!(
            "[models.draft]\nurl = [\"{url}\"]\nmodel = \"d\"\n[models.target]\nurl = [\"{url}\"]\nmodel = \"t\"\n",
            url = fake.base_url()
        ),
    )
    .unwrap();
    let server = Server::start_with(
        config.to_str().unwrap(),
        &["--run-type", "draft", "--concurrency", &CLIENTS.to_string()],
    );
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let server = &server;
                scope.spawn(move || {
                    server.post(
                        "/v1/chat/completions",
                        &json!({"messages": user(&format!("Question {i}"))}),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert_eq!(
            v["choices"][0]["message"]["content"],
            "Step one.\n\nStep two.\n\nThe answer is 7."
        );
    }
    assert_eq!(
        inside.0.lock().unwrap().1,
        CLIENTS,
        "requests ran one at a time"
    );
}

#[test]
fn embedded_workers_answer_clients_at_once_as_one_worker_would() {
    const CLIENTS: usize = 3;
    let ask = |server: &Server, i: usize| {
        server.post(
            "/v1/chat/completions",
            &json!({"messages": user(&format!("What is {i} + 30?")), "max_tokens": 48}),
        )
    };
    let one = Server::start(&["--run-type", "draft"]);
    let alone: Vec<(u16, Value)> = (0..CLIENTS).map(|i| ask(&one, i)).collect();
    drop(one);
    let several = Server::start(&["--run-type", "draft", "--concurrency", &CLIENTS.to_string()]);
    let together: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|i| {
                let several = &several;
                scope.spawn(move || ask(several, i))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for ((a_status, a), (t_status, t)) in alone.iter().zip(&together) {
        assert_eq!((*a_status, *t_status), (200, 200), "{a}\n{t}");
        assert_eq!(
            a["choices"][0]["message"]["content"], t["choices"][0]["message"]["content"],
            "the smoke model writes the same answer in a shared round"
        );
    }
}

#[test]
fn more_workers_than_an_embedded_model_holds_is_refused_with_the_reason() {
    let out = common::arbitrage(&[
        "serve",
        "--config",
        "configs/smoke.toml",
        "--concurrency",
        "33",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("--concurrency 33 is more than an embedded model holds at once"),
        "{stderr}"
    );
}

#[test]
fn a_remote_drafts_tokenizer_counts_the_prompt_tokens() {
    use arbitrage_fake_server::{FakeServer, Reply, Request};
    let fake = FakeServer::start(|_: &Request| {
        Reply::ok(
            json!({"id": "c", "object": "text_completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "text": "The answer is 7.", "logprobs": null,
                "finish_reason": "stop", "stop_reason": null}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6}}),
        )
    });
    let tokenizer = common::repo().join("tests/data/byte-tokenizer.json");
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("remote.toml");
    std::fs::write(
        &config,
        format!(
            "[models.draft]\nurl = [\"{url}\"]\nmodel = \"d\"\ntokenizer = {t:?}\n[models.target]\nurl = [\"{url}\"]\nmodel = \"t\"\n",
            url = fake.base_url(),
            t = tokenizer.to_str().unwrap()
        ),
    )
    .unwrap();
    let server = Server::start_with(config.to_str().unwrap(), &["--run-type", "draft"]);
    let (status, v) = server.post(
        "/v1/chat/completions",
        &json!({"messages": user("What is 3 + 4?")}),
    );
    assert_eq!(status, 200, "{v}");
    // The draft was sent the prompt as token ids from the same tokenizer.
    let sent = fake.requests()[0].json()["prompt"]
        .as_array()
        .unwrap()
        .len();
    assert!(sent > 10);
    assert_eq!(v["usage"]["prompt_tokens"], sent);
}
