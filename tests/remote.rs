//! The remote back-ends against an in-process fake server that answers the way vLLM and SGLang
//! document: their completion shapes and stop reporting, the PRM's `/pooling` rows and base64
//! embeddings, the router's per-token logits, and faults (500s, 429 with Retry-After, timeouts,
//! resets, malformed JSON). Runs drive the real binary.
//!
//! The fake cluster serves a scripted pair: each model writes "Step k: …" steps and, after three,
//! a final answer. The draft's answer is wrong (a + b + 1), the target's right; the draft's
//! even steps say "guesses", which the PRM scores 0.3 and the router flags (ŷ = sigmoid(2)).

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arbitrage::engines::remote::{Client, RemoteError, RetryPolicy, Route};
use arbitrage_fake_server::{FakeServer, Reply, Request};
use base64::Engine as _;
use serde_json::{Value, json};

const SEP: &str = "\n\n";
const EOS_ID: i64 = 151645;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Flavour {
    Vllm,
    Sglang,
}

/// The scripted step after `prompt` for `model`: (text without separator, ends the solution).
fn script(prompt: &str, model: &str) -> (String, bool) {
    let k = prompt.matches("Step ").count();
    let (a, b) = numbers(prompt);
    if k >= 3 {
        let answer = if model == "draft-model" {
            a + b + 1
        } else {
            a + b
        };
        return (format!("The answer is \\boxed{{{answer}}}."), true);
    }
    let verb = match (model, k % 2) {
        ("draft-model", 1) => "guesses",
        ("draft-model", _) => "works",
        _ => "knows",
    };
    (
        format!("Step {}: {model} {verb} on {a} and {b}.", k + 1),
        false,
    )
}

/// The two numbers of "What is A + B?" in the prompt.
fn numbers(prompt: &str) -> (i64, i64) {
    let q = &prompt[prompt.find("What is ").expect("a scripted question") + 8..];
    let mut it = q
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    let a = it.next().unwrap().parse().unwrap();
    let b = it.next().unwrap().parse().unwrap();
    (a, b)
}

/// Text of ids from tests/data/byte-tokenizer.json: ids below 256 are bytes, then four specials.
fn byte_tokens(ids: &[Value]) -> String {
    let mut bytes = Vec::new();
    for id in ids {
        match id.as_u64().unwrap() {
            b @ 0..=255 => bytes.push(b as u8),
            256 => bytes.extend(b"<|endoftext|>"),
            257 => bytes.extend(b"<extra_0>"),
            258 => bytes.extend(b"<|im_start|>"),
            259 => bytes.extend(b"<|im_end|>"),
            other => panic!("unknown id {other}"),
        }
    }
    String::from_utf8(bytes).unwrap()
}

/// A completion answer in `flavour`'s shape.
fn completion(req: &Value, flavour: Flavour) -> Value {
    let decoded = req["prompt"].as_array().map(|ids| byte_tokens(ids));
    let prompt = decoded
        .as_deref()
        .or(req["prompt"].as_str())
        .expect("a text or token-id prompt");
    let model = req["model"].as_str().unwrap();
    let (text, last) = script(prompt, model);
    let words = text.split(' ').count() as u64 + 1;
    let logprobs = req.get("logprobs").and_then(Value::as_u64).map(|_| {
        let n = words as usize;
        json!({
            "tokens": vec!["w"; n],
            "token_logprobs": (0..n).map(|i| -0.1 * i as f64).collect::<Vec<_>>(),
            "top_logprobs": (0..n).map(|i| json!({"w": -0.1 * i as f64, "v": -3.0})).collect::<Vec<_>>(),
            "text_offset": (0..n).collect::<Vec<_>>(),
        })
    });
    let mut choice =
        json!({"index": 0, "text": text, "logprobs": logprobs, "finish_reason": "stop"});
    match (flavour, last) {
        (Flavour::Vllm, false) => choice["stop_reason"] = json!(SEP),
        (Flavour::Vllm, true) => choice["stop_reason"] = Value::Null,
        (Flavour::Sglang, false) => choice["matched_stop"] = json!(SEP),
        (Flavour::Sglang, true) => choice["matched_stop"] = json!(EOS_ID),
    }
    let prompt_tokens = prompt.split(' ').count() as u64;
    json!({
        "id": "cmpl-1", "object": "text_completion", "created": 0, "model": model,
        "choices": [choice],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": words,
                  "total_tokens": prompt_tokens + words, "prompt_tokens_details": null},
    })
}

/// vLLM's `/pooling` answer for the PRM: one [negative, positive] row per `<extra_0>`.
fn prm_pooling(req: &Value) -> Value {
    let input = req["input"].as_str().unwrap();
    let steps: Vec<&str> = input.split("<extra_0>").collect();
    let rows: Vec<Value> = steps[..steps.len() - 1]
        .iter()
        .map(|s| {
            let p = if s.contains("guesses") { 0.3 } else { 0.8 };
            json!([1.0 - p, p])
        })
        .collect();
    json!({"id": "pool-1", "object": "list", "created": 0, "model": req["model"],
           "data": [{"index": 0, "object": "pooling", "data": rows}],
           "usage": {"prompt_tokens": 10, "total_tokens": 10}})
}

/// vLLM's reward runner (`Qwen2ForRewardModel`) for the exported value head: one one-logit row
/// per input token (whitespace words here), as vLLM 0.32 answers with `use_activation: false`;
/// the last is -1 when the text's last step guesses, else 2.
fn reward_pooling(req: &Value) -> Value {
    let input = req["input"].as_str().unwrap();
    let last_step = input.trim_end().rsplit("\n\n").next().unwrap();
    let p = if last_step.contains("guesses") {
        -1.0
    } else {
        2.0
    };
    let n = input.split_whitespace().count();
    let mut rows: Vec<Value> = (0..n - 1).map(|_| json!([0.0])).collect();
    rows.push(json!([p]));
    json!({"id": "pool-2", "object": "list", "created": 0, "model": req["model"],
           "data": [{"index": 0, "object": "pooling", "data": rows}],
           "usage": {"prompt_tokens": n, "total_tokens": n}})
}

/// The router's `/pooling` answer: one row of two logits per (whitespace) token.
fn router_pooling(req: &Value) -> Value {
    let input = req["input"].as_str().unwrap();
    let flagged = input
        .rsplit("Model 0: ")
        .next()
        .unwrap()
        .contains("guesses");
    let n = input.split_whitespace().count();
    let mut rows = vec![json!([0.5, -0.5]); n.max(1)];
    *rows.last_mut().unwrap() = if flagged {
        json!([0.0, 2.0])
    } else {
        json!([2.0, 0.0])
    };
    json!({"id": "pool-2", "object": "list", "created": 0, "model": req["model"],
           "data": [{"index": 0, "object": "pooling", "data": rows}]})
}

/// The legacy embeddings answer for the Skywork PRM: one value per input id, base64 f32.
/// The value at the last id is 2 when the last step (after the last step token, id 10) guesses.
fn prm_embeddings(req: &Value) -> Value {
    let ids: Vec<u8> = req["input"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap().min(255) as u8)
        .collect();
    let body = &ids[..ids.len() - 1];
    let last_step_start = body.iter().rposition(|&b| b == 10).map_or(0, |p| p + 1);
    let last_step = String::from_utf8_lossy(&body[last_step_start..]).into_owned();
    let last = if last_step.contains("guesses") {
        -1.0f32
    } else {
        2.0
    };
    let mut values = vec![0.0f32; ids.len()];
    *values.last_mut().unwrap() = last;
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
    json!({"object": "list", "model": req["model"],
           "data": [{"object": "embedding", "index": 0, "embedding": b64}],
           "usage": {"prompt_tokens": ids.len(), "total_tokens": ids.len()}})
}

/// The whole scripted cluster on one server: routes by path and model name.
fn cluster(flavour: Flavour) -> impl Fn(&Request) -> Reply + Send + Sync + 'static {
    move |r: &Request| {
        let req = r.json();
        match (r.path.as_str(), req["model"].as_str()) {
            ("/v1/completions", _) => Reply::ok(completion(&req, flavour)),
            ("/pooling", Some("prm-model")) => Reply::ok(prm_pooling(&req)),
            ("/pooling", Some("router-model")) => Reply::ok(router_pooling(&req)),
            ("/pooling", Some("reward-model")) => Reply::ok(reward_pooling(&req)),
            ("/v1/embeddings", _) => Reply::ok(prm_embeddings(&req)),
            _ => Reply::status(404, json!({"detail": "Not Found"})),
        }
    }
}

const PROBLEMS: &str = r#"{"question": "What is 12 + 30?", "answer": "42"}
{"question": "What is 3 + 4?", "answer": "7"}
{"question": "What is 5 + 6?", "answer": "11"}
"#;

fn many_problems(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!(
                "{{\"question\": \"What is {i} + {}?\", \"answer\": \"{}\"}}\n",
                i * 2,
                i * 3
            )
        })
        .collect()
}

/// A remote config for every role at `urls`, with fast retries and a short request timeout.
fn config(dir: &Path, urls: &[String], extra: &str) -> PathBuf {
    let list = format!(
        "[{}]",
        urls.iter()
            .map(|u| format!("{u:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let text = format!(
        r#"[models.draft]
url = {list}
model = "draft-model"

[models.target]
url = {list}
model = "target-model"

[generation]
separator = "\n\n"
max_step_tokens = 64
max_tokens = 1000
max_steps = 10

[prompt]
template = "qwen25-math-cot"

[prm]
url = {list}
model = "prm-model"

[remote]
connect_timeout_s = 1
request_timeout_s = 0.5
max_attempts = 8
initial_backoff_ms = 1
max_backoff_ms = 4
{extra}
"#
    );
    let path = dir.join("remote.toml");
    std::fs::write(&path, text).unwrap();
    path
}

struct RunOutput {
    results: Vec<Value>,
    metrics: Value,
    stderr: String,
    _tmp: tempfile::TempDir,
}

fn run_with(
    urls: &[String],
    problems: &str,
    run_type: &str,
    extra_config: &str,
    args: &[&str],
) -> RunOutput {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("problems.jsonl");
    std::fs::write(&data, problems).unwrap();
    let cfg = config(tmp.path(), urls, extra_config);
    let out = tmp.path().join("out");
    let mut all = vec![
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--run-type",
        run_type,
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let output = common::arbitrage(&all);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let mut results: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    results.sort_by_key(|r| r["idx"].as_u64());
    let metrics =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    RunOutput {
        results,
        metrics,
        stderr,
        _tmp: tmp,
    }
}

fn run(server: &FakeServer, run_type: &str, args: &[&str]) -> RunOutput {
    run_with(&[server.base_url()], PROBLEMS, run_type, "", args)
}

#[test]
fn a_vllm_draft_run_ends_steps_at_the_separator_and_the_solution_at_end_of_sequence() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let out = run(&server, "draft", &[]);
    let r = &out.results[0];
    let steps = r["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 4, "{r}");
    for s in &steps[..3] {
        assert!(s["text"].as_str().unwrap().ends_with(SEP), "{s}");
    }
    assert_eq!(steps[3]["text"], "The answer is \\boxed{43}.");
    assert_eq!(r["stop"], "end_of_sequence");
    assert_eq!(r["pred"], "43");
    assert_eq!(r["correct"], false);
    // Token counts come from the servers' usage.
    assert_eq!(r["tokens"]["draft"], 9 + 9 + 9 + 5);
    assert!(r["prefill_tokens"]["draft"].as_u64().unwrap() > 0);

    // What was sent: sampling always, stop = separator, the growing prompt, no logprobs or seed.
    let requests = server.requests();
    let first = requests[0].json();
    assert_eq!(first["temperature"], 0.0);
    assert_eq!(first["top_p"], 1.0);
    assert_eq!(first["max_tokens"], 64);
    assert_eq!(first["stop"], json!([SEP]));
    assert_eq!(first["model"], "draft-model");
    assert!(first.get("seed").is_none() && first.get("logprobs").is_none());
    let second = requests[1].json();
    assert!(
        second["prompt"]
            .as_str()
            .unwrap()
            .ends_with("Step 1: draft-model works on 12 and 30.\n\n"),
        "{second}"
    );
}

#[test]
fn with_a_tokenizer_the_prompt_is_sent_as_token_ids_and_the_run_is_unchanged() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let text = run(&server, "rsd", &["--threshold", "0.5"]);
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/byte-tokenizer.json");
    let extra = format!(
        "[models.draft]\nurl = {url:?}\nmodel = \"draft-model\"\ntokenizer = {t:?}\n",
        url = server.base_url(),
        t = tokenizer.to_str().unwrap()
    );
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(config(tmp.path(), &[server.base_url()], "")).unwrap();
    let base = base.replace(
        &format!(
            "[models.draft]\nurl = [{:?}]\nmodel = \"draft-model\"\n",
            server.base_url()
        ),
        &extra,
    );
    assert!(base.contains("tokenizer"), "{base}");
    let cfg = tmp.path().join("ids.toml");
    std::fs::write(&cfg, base).unwrap();
    let data = tmp.path().join("p.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let out_dir = tmp.path().join("out");
    let before = server.requests().len();
    let output = common::arbitrage(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--run-type",
        "rsd",
        "--threshold",
        "0.5",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut results: Vec<Value> = std::fs::read_to_string(out_dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    results.sort_by_key(|r| r["idx"].as_u64());
    assert_eq!(
        common::decisions(&results),
        common::decisions(&text.results)
    );
    // The draft's prompts were ids (chat markup as single special tokens), the target's text.
    let sent: Vec<Value> = server.requests()[before..]
        .iter()
        .map(Request::json)
        .filter(|r| r.get("prompt").is_some())
        .collect();
    let draft = sent.iter().find(|r| r["model"] == "draft-model").unwrap();
    let ids = draft["prompt"].as_array().expect("token ids");
    assert_eq!(ids[0], 258, "<|im_start|> is one token");
    assert!(
        sent.iter()
            .filter(|r| r["model"] == "target-model")
            .all(|r| r["prompt"].is_string())
    );
}

#[test]
fn sglang_shaped_answers_give_the_same_run_as_vllm_shaped_ones() {
    let vllm = FakeServer::start(cluster(Flavour::Vllm));
    let sglang = FakeServer::start(cluster(Flavour::Sglang));
    for run_type in ["draft", "target", "rsd"] {
        let a = run(&vllm, run_type, &[]);
        let b = run(&sglang, run_type, &[]);
        assert_eq!(
            common::decisions(&a.results),
            common::decisions(&b.results),
            "{run_type}"
        );
    }
    let target = run(&sglang, "target", &[]);
    assert!(target.results.iter().all(|r| r["correct"] == true));
}

#[test]
fn rsd_with_a_pooling_prm_sends_low_scoring_draft_steps_to_the_target() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let out = run(&server, "rsd", &["--threshold", "0.5"]);
    let steps = out.results[0]["steps"].as_array().unwrap();
    // Step 2 "guesses" (PRM 0.3): rejected, the target rewrites it; the others are kept.
    let authors: Vec<&str> = steps.iter().map(|s| s["model"].as_str().unwrap()).collect();
    assert_eq!(authors, ["draft", "target", "draft", "draft"], "{steps:?}");
    assert!((steps[1]["prm_score"].as_f64().unwrap() - 0.3).abs() < 1e-6);
    assert!((steps[0]["prm_score"].as_f64().unwrap() - 0.8).abs() < 1e-6);
    assert!(
        steps[1]["rejected_draft_text"]
            .as_str()
            .unwrap()
            .contains("guesses")
    );
    // The PRM read the question and the steps in Qwen2.5-Math-PRM's format.
    let prm = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/pooling")
        .unwrap()
        .json();
    let input = prm["input"].as_str().unwrap();
    assert!(
        input.contains("<|im_start|>user\nWhat is 12 + 30?<|im_end|>"),
        "{input}"
    );
    assert!(
        input.ends_with("works on 12 and 30.<extra_0><|im_end|>\n"),
        "{input}"
    );
    assert!(out.metrics["prm"].as_str().unwrap().contains("prm-model"));
    // The PRM's work is read from its answers' usage (10 prompt tokens each here).
    let prm_calls = server.count("/pooling") as u64;
    assert_eq!(
        out.metrics["prefill_tokens"]["prm"].as_u64().unwrap(),
        10 * prm_calls
    );
}

#[test]
fn a_served_value_head_reads_the_transcript_and_scores_the_last_token() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let out = run(
        &server,
        "rsd",
        &[
            "--threshold",
            "0.5",
            "--prm-url",
            &server.base_url(),
            "--prm-model",
            "reward-model",
            "--prm-api",
            "reward",
        ],
    );
    let steps = out.results[0]["steps"].as_array().unwrap();
    let authors: Vec<&str> = steps.iter().map(|s| s["model"].as_str().unwrap()).collect();
    assert_eq!(authors, ["draft", "target", "draft", "draft"], "{steps:?}");
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert!((steps[0]["prm_score"].as_f64().unwrap() - sigmoid(2.0)).abs() < 1e-6);
    assert!((steps[1]["prm_score"].as_f64().unwrap() - sigmoid(-1.0)).abs() < 1e-6);
    // Its input is what the generator read (the prompt and the steps, separators kept) plus
    // the scored step, asked per token.
    let first = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/pooling")
        .unwrap()
        .json();
    assert_eq!(first["task"], "token_classify");
    assert_eq!(first["use_activation"], false);
    let input = first["input"].as_str().unwrap();
    let draft = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/completions")
        .unwrap()
        .json();
    let prompt = draft["prompt"].as_str().unwrap();
    assert_eq!(
        input,
        format!("{prompt}Step 1: draft-model works on 12 and 30.\n\n")
    );
    assert!(out.metrics["prm"].as_str().unwrap().contains("reward PRM"));
}

#[test]
fn the_skywork_prm_reads_base64_values_at_the_last_step_token() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let tokenizer = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/byte-tokenizer.json");
    let extra = format!(
        "\n[prm]\nurl = {:?}\nmodel = \"prm-model\"\napi = \"embeddings\"\ntokenizer = {:?}\nstep_token = \"\\n\"\n",
        server.base_url(),
        tokenizer.to_str().unwrap()
    );
    // The [prm] table above replaces the pooling one: drop it from the base config.
    let tmp = tempfile::tempdir().unwrap();
    let base = std::fs::read_to_string(config(tmp.path(), &[server.base_url()], "")).unwrap();
    let base = base.replace(
        &format!(
            "[prm]\nurl = [{:?}]\nmodel = \"prm-model\"\n",
            server.base_url()
        ),
        "",
    );
    let cfg = tmp.path().join("skywork.toml");
    std::fs::write(&cfg, format!("{base}{extra}")).unwrap();
    let data = tmp.path().join("p.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let out_dir = tmp.path().join("out");
    let output = common::arbitrage(&[
        "run",
        "--config",
        cfg.to_str().unwrap(),
        "--run-type",
        "rsd",
        "--threshold",
        "0.5",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let result: Value = serde_json::from_str(
        std::fs::read_to_string(out_dir.join("results.jsonl"))
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    let steps = result["steps"].as_array().unwrap();
    let sigmoid = |x: f64| 1.0 / (1.0 + (-x).exp());
    assert!(
        (steps[0]["prm_score"].as_f64().unwrap() - sigmoid(2.0)).abs() < 1e-6,
        "{steps:?}"
    );
    assert!(
        (steps[1]["prm_score"].as_f64().unwrap() - sigmoid(-1.0)).abs() < 1e-6,
        "{steps:?}"
    );
    assert_eq!(steps[1]["model"], "target");

    // The input ids: BOS, the problem, "\n", then each step without its separator and the step
    // token (id 10 in the byte tokenizer).
    let req = server
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/embeddings")
        .unwrap()
        .json();
    assert_eq!(req["encoding_format"], "float");
    let ids: Vec<u64> = req["input"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect();
    let mut expected = vec![256u64];
    expected.extend("What is 12 + 30?\n".bytes().map(u64::from));
    expected.extend(
        "Step 1: draft-model works on 12 and 30."
            .bytes()
            .map(u64::from),
    );
    expected.push(10);
    assert_eq!(ids, expected);
}

#[test]
fn a_served_router_escalates_the_steps_it_flags() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let extra =
        "[router]\nurl = \"URL\"\nmodel = \"router-model\"\n".replace("URL", &server.base_url());
    let out = run_with(
        &[server.base_url()],
        PROBLEMS,
        "router",
        &extra,
        &["--threshold", "0.5"],
    );
    let steps = out.results[0]["steps"].as_array().unwrap();
    let authors: Vec<&str> = steps.iter().map(|s| s["model"].as_str().unwrap()).collect();
    assert_eq!(authors, ["draft", "target", "draft", "draft"], "{steps:?}");
    let y = steps[1]["router_score"].as_f64().unwrap();
    assert!((y - 1.0 / (1.0 + (-2.0f64).exp())).abs() < 1e-6, "{y}");
    assert!(steps[0]["router_score"].as_f64().unwrap() < 0.5);
    // The router read the annotated steps; the draft was not asked for logprobs (a served router
    // does not read them), and the PRM was never called.
    let requests = server.requests();
    let routed: Vec<Value> = requests
        .iter()
        .filter(|r| r.path == "/pooling")
        .map(Request::json)
        .collect();
    assert!(routed.iter().all(|r| r["model"] == "router-model"));
    let third = routed[2]["input"].as_str().unwrap();
    assert!(
        third.starts_with("What is 12 + 30?\n\nModel 0: Step 1:"),
        "{third}"
    );
    assert!(
        third.contains("\n\nModel 1: Step 2: target-model knows"),
        "{third}"
    );
    assert!(
        requests
            .iter()
            .filter(|r| r.path == "/v1/completions")
            .all(|r| r.json().get("logprobs").is_none())
    );
}

#[test]
fn a_feature_router_on_a_remote_draft_gets_logprobs_and_generate_records_them() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let router = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smoke-router.json");
    let out = run(&server, "router", &["--router", router.to_str().unwrap()]);
    assert!(out.results[0]["steps"][0]["router_score"].is_number());
    let drafts: Vec<Value> = server
        .requests()
        .iter()
        .map(Request::json)
        .filter(|r| r["model"] == "draft-model")
        .collect();
    assert!(drafts.iter().all(|r| r["logprobs"] == 5), "{:?}", drafts[0]);
}

/// Serves `inner`, but answers some requests with a fault first: every third request gets the
/// next fault of the list, in turn.
fn faulty(
    inner: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    faults: Vec<Reply>,
) -> (FakeServer, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let injected = Arc::new(AtomicUsize::new(0));
    let (c, i) = (Arc::clone(&count), Arc::clone(&injected));
    let server = FakeServer::start(move |r| {
        let n = c.fetch_add(1, Ordering::SeqCst);
        if n % 3 == 1 {
            let k = i.fetch_add(1, Ordering::SeqCst);
            return faults[k % faults.len()].clone();
        }
        inner(r)
    });
    (server, injected)
}

#[test]
fn transient_faults_are_retried_and_the_run_matches_a_clean_one() {
    let clean = FakeServer::start(cluster(Flavour::Vllm));
    let faults = vec![
        Reply::status(500, json!({"object": "error", "message": "engine hiccup"})),
        Reply::status(429, json!({"error": {"message": "slow down"}}))
            .with_header("Retry-After", "0"),
        Reply::Reset,
        Reply::Raw {
            status: 200,
            body: b"{\"choices\": [".to_vec(),
        },
        Reply::status(503, json!({"detail": "loading"})),
        Reply::Hang,
    ];
    let (server, injected) = faulty(cluster(Flavour::Vllm), faults);
    for run_type in ["rsd", "oracle"] {
        let a = run(&clean, run_type, &["--threshold", "0.5"]);
        let b = run(&server, run_type, &["--threshold", "0.5"]);
        assert_eq!(
            common::decisions(&a.results),
            common::decisions(&b.results),
            "{run_type}"
        );
        assert_eq!(b.metrics["errors"], 0);
        assert!(
            b.stderr.is_empty() || !b.stderr.contains("problem failed"),
            "{}",
            b.stderr
        );
    }
    assert!(
        injected.load(Ordering::SeqCst) >= 6,
        "every fault kind was injected"
    );
}

#[test]
fn a_persistent_fault_fails_that_problem_with_the_error_recorded_not_the_run() {
    let server = FakeServer::start(|r: &Request| {
        let req = r.json();
        if req["prompt"]
            .as_str()
            .is_some_and(|p| p.contains("What is 3 + 4?"))
        {
            return Reply::status(
                500,
                json!({"object": "error", "message": "CUDA out of memory"}),
            );
        }
        cluster(Flavour::Vllm)(r)
    });
    let out = run(&server, "draft", &[]);
    assert_eq!(out.results.len(), 3);
    let failed = &out.results[1];
    let error = failed["error"].as_str().expect("the error is recorded");
    assert!(error.contains("draft"), "{error}");
    assert!(error.contains("gave up after 8 attempts"), "{error}");
    assert!(error.contains("HTTP 500: CUDA out of memory"), "{error}");
    assert_eq!(failed["correct"], false);
    assert!(out.results[0]["error"].is_null() && out.results[2]["error"].is_null());
    assert_eq!(out.metrics["errors"], 1);
    assert_eq!(out.metrics["n"], 3);
}

#[test]
fn a_resumed_run_solves_again_the_problems_that_failed() {
    // The server fails one problem until it is told to recover, as a server that was down.
    let healthy = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&healthy);
    let server = FakeServer::start(move |r: &Request| {
        let req = r.json();
        if !flag.load(Ordering::SeqCst)
            && req["prompt"]
                .as_str()
                .is_some_and(|p| p.contains("What is 3 + 4?"))
        {
            return Reply::status(503, json!({"detail": "down"}));
        }
        cluster(Flavour::Vllm)(r)
    });
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("problems.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let cfg = config(tmp.path(), &[server.base_url()], "");
    let out = tmp.path().join("out");
    let run = || {
        let output = common::arbitrage(&[
            "run",
            "--config",
            cfg.to_str().unwrap(),
            "--run-type",
            "draft",
            "--dataset",
            data.to_str().unwrap(),
            "--output-dir",
            out.to_str().unwrap(),
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let lines: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let metrics: Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap())
                .unwrap();
        (lines, metrics)
    };
    let (first, metrics) = run();
    assert_eq!(metrics["errors"], 1);
    let failed: Vec<&Value> = first.iter().filter(|r| !r["error"].is_null()).collect();
    assert_eq!(failed.len(), 1);
    let failed_idx = failed[0]["idx"].clone();

    healthy.store(true, Ordering::SeqCst);
    let (second, metrics) = run();
    assert_eq!(metrics["errors"], 0);
    assert_eq!(metrics["n"], 3);
    let mut idx: Vec<u64> = second.iter().map(|r| r["idx"].as_u64().unwrap()).collect();
    idx.sort();
    assert_eq!(idx, [0, 1, 2], "every problem exactly once");
    let retried = second.iter().find(|r| r["idx"] == failed_idx).unwrap();
    assert!(retried["error"].is_null(), "{retried}");
    // The problems that had finished were kept, not solved again.
    for r in first.iter().filter(|r| r["error"].is_null()) {
        assert!(second.contains(r), "{r} was solved again");
    }
}

#[test]
fn a_client_error_is_not_retried_and_keeps_the_servers_message() {
    let server = FakeServer::start(|_: &Request| {
        Reply::status(
            400,
            json!({"object": "error", "type": "BadRequestError",
            "message": "This model's maximum context length is 2048 tokens.", "code": 400}),
        )
    });
    let out = run_with(
        &[server.base_url()],
        "{\"question\": \"What is 1 + 1?\", \"answer\": \"2\"}\n",
        "draft",
        "",
        &[],
    );
    let error = out.results[0]["error"].as_str().unwrap();
    assert!(
        error.contains("HTTP 400: This model's maximum context length is 2048 tokens."),
        "{error}"
    );
    assert_eq!(server.count("/v1/completions"), 1, "a 400 is not retried");
}

#[test]
fn a_dead_endpoint_fails_over_and_live_ones_share_the_load() {
    // A port that refuses connections: bound, then closed.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/v1", l.local_addr().unwrap())
    };
    let a = FakeServer::start(cluster(Flavour::Vllm));
    let b = FakeServer::start(cluster(Flavour::Sglang));
    let reference = run(
        &FakeServer::start(cluster(Flavour::Vllm)),
        "rsd",
        &["--threshold", "0.5"],
    );
    let out = run_with(
        &[dead, a.base_url(), b.base_url()],
        PROBLEMS,
        "rsd",
        "",
        &["--threshold", "0.5"],
    );
    assert_eq!(
        common::decisions(&out.results),
        common::decisions(&reference.results)
    );
    assert_eq!(out.metrics["errors"], 0);
    let (na, nb) = (a.requests().len(), b.requests().len());
    assert!(
        na > 0 && nb > 0,
        "both live endpoints served requests: {na} {nb}"
    );
}

#[test]
fn concurrent_problems_give_the_same_results_as_one_at_a_time() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let problems = many_problems(12);
    let one = run_with(
        &[server.base_url()],
        &problems,
        "rsd",
        "",
        &["--threshold", "0.5"],
    );
    let four = run_with(
        &[server.base_url()],
        &problems,
        "rsd",
        "",
        &["--threshold", "0.5", "--concurrency", "4"],
    );
    assert_eq!(four.results.len(), 12);
    assert_eq!(
        common::decisions(&one.results),
        common::decisions(&four.results)
    );
    assert!(
        four.results
            .iter()
            .all(|r| r["latency_s"].as_f64().unwrap() > 0.0)
    );
}

#[test]
fn more_problems_in_flight_than_an_embedded_model_holds_is_refused_with_the_reason() {
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "draft",
        "--dataset",
        "gsm8k",
        "--concurrency",
        "33",
        "--limit",
        "1",
    ]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--concurrency 33 is more than an embedded model holds at once"),
        "{stderr}"
    );
    assert!(stderr.contains("draft"), "{stderr}");
}

#[test]
fn flags_make_a_role_remote_and_name_a_missing_model() {
    let server = FakeServer::start(cluster(Flavour::Vllm));
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("p.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let url = server.base_url();
    let out_dir = tmp.path().join("out");
    // The smoke config is embedded; --draft-url makes the draft remote. A draft run loads nothing else.
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "draft",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out_dir.to_str().unwrap(),
        "--limit",
        "1",
        "--draft-url",
        &url,
        "--draft-model",
        "draft-model",
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(server.count("/v1/completions") >= 4);
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "draft",
        "--dataset",
        data.to_str().unwrap(),
        "--draft-url",
        &url,
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--draft-url needs --draft-model"),
        "{stderr}"
    );
}

// The client on its own: waits are recorded instead of slept.

fn client(urls: &[String], policy: RetryPolicy) -> (Client, Arc<Mutex<Vec<Duration>>>) {
    let waits = Arc::new(Mutex::new(Vec::new()));
    let w = Arc::clone(&waits);
    let client =
        Client::new("test", urls, policy, None).with_sleep(move |d| w.lock().unwrap().push(d));
    (client, waits)
}

#[test]
fn retry_after_is_honoured_between_rounds() {
    let n = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&n);
    let server = FakeServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::status(429, json!({"message": "busy"})).with_header("Retry-After", "3")
        } else {
            Reply::ok(json!({"ok": true}))
        }
    });
    let policy = RetryPolicy {
        initial_backoff: Duration::from_millis(10),
        ..RetryPolicy::default()
    };
    let (client, waits) = client(&[server.base_url()], policy);
    let v = client
        .post(Route::V1("x"), &json!({}), |v| Ok(v.clone()))
        .unwrap();
    assert_eq!(v, json!({"ok": true}));
    assert_eq!(*waits.lock().unwrap(), vec![Duration::from_secs(3)]);
}

#[test]
fn backoff_grows_per_round_and_attempts_are_bounded() {
    let server = FakeServer::start(|_| Reply::status(503, json!({"message": "down"})));
    let policy = RetryPolicy {
        max_attempts: 4,
        initial_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(1),
        ..RetryPolicy::default()
    };
    let (client, waits) = client(&[server.base_url()], policy);
    let err = client
        .post(Route::V1("x"), &json!({}), |v| Ok(v.clone()))
        .unwrap_err();
    assert!(
        matches!(err, RemoteError::GaveUp { attempts: 4, .. }),
        "{err:?}"
    );
    assert_eq!(server.requests().len(), 4);
    let waits = waits.lock().unwrap().clone();
    assert_eq!(
        waits.len(),
        3,
        "a wait between attempts, none after the last"
    );
    for (w, base) in waits.iter().zip([100u64, 200, 400]) {
        let base = Duration::from_millis(base);
        assert!(*w >= base / 2 && *w <= base, "{w:?} for a {base:?} backoff");
    }
}

#[test]
fn fail_over_is_immediate_and_waits_come_after_a_full_round() {
    let down = FakeServer::start(|_| Reply::status(502, json!({"message": "bad gateway"})));
    let up = FakeServer::start(|_| Reply::ok(json!({"served": "up"})));
    let (client, waits) = client(&[down.base_url(), up.base_url()], RetryPolicy::default());
    for _ in 0..4 {
        let v = client
            .post(Route::V1("x"), &json!({}), |v| Ok(v.clone()))
            .unwrap();
        assert_eq!(v["served"], "up");
    }
    assert!(
        waits.lock().unwrap().is_empty(),
        "one endpoint was always up"
    );
    // Round-robin: half the requests started at the dead endpoint and failed over.
    assert_eq!(down.requests().len(), 2);
    assert_eq!(up.requests().len(), 4);
}

#[test]
fn a_timeout_is_retried_and_a_wrong_shape_is_not() {
    let n = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&n);
    let server = FakeServer::start(move |_| {
        if c.fetch_add(1, Ordering::SeqCst) == 0 {
            Reply::Hang
        } else {
            Reply::ok(json!({"choices": []}))
        }
    });
    let policy = RetryPolicy {
        request_timeout: Duration::from_millis(200),
        ..RetryPolicy::default()
    };
    let (client, _) = client(&[server.base_url()], policy);
    let err = client
        .post(Route::V1("completions"), &json!({}), |v| {
            arbitrage::engines::remote::completions::parse_completion(v, Some(SEP))
        })
        .unwrap_err();
    assert_eq!(
        n.load(Ordering::SeqCst),
        2,
        "the hang was retried, the bad shape was not"
    );
    let RemoteError::Shape { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(message.contains("choices"), "{message}");
}
