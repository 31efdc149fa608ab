//! The HTTP path against a real OpenAI-compatible server: llama.cpp's `llama-server` serving
//! the smoke model (SmolLM2-135M) in both roles.
//!
//! The server binary is `$ARBITRAGE_LLAMA_SERVER`, else what `scripts/build-llama-server.sh` built
//! into the target directory (`scripts/test.sh` builds it first). Without one the test fails and
//! says how to build it: a test that cannot run its check must not pass.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

fn server_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("ARBITRAGE_LLAMA_SERVER") {
        return Some(PathBuf::from(p));
    }
    // target/release/arbitrage → target/llama-server/bin/llama-server
    let target = Path::new(env!("CARGO_BIN_EXE_arbitrage"))
        .parent()?
        .parent()?;
    let p = target.join("llama-server/bin/llama-server");
    p.is_file().then_some(p)
}

/// The server process, killed when dropped.
struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts llama-server on a free port and returns once it says it is listening, which it does
/// after loading the model (its log line,
/// read from stderr: no polling).
fn start(binary: &Path, model: &Path) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(binary)
        .args(["-m", model.to_str().unwrap(), "--host", "127.0.0.1"])
        .args([
            "--port",
            &port.to_string(),
            "-t",
            "1",
            "-c",
            "2048",
            "-np",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start llama-server");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut log = Vec::new();
    loop {
        match lines.next() {
            Some(Ok(line)) => {
                let ready = line.contains("listening on http");
                log.push(line);
                if ready {
                    break;
                }
            }
            _ => panic!("llama-server exited before listening:\n{}", log.join("\n")),
        }
    }
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server {
        child,
        url: format!("http://127.0.0.1:{port}/v1"),
    }
}

const PROBLEMS: &str = r#"{"question": "What is 12 + 30?", "answer": "42"}
{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7"}
"#;

fn run(config: &Path, data: &Path, out: &Path, run_type: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec![
        "run",
        "--config",
        config.to_str().unwrap(),
        "--run-type",
        run_type,
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = common::arbitrage(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut results: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    results.sort_by_key(|r| r["idx"].as_u64());
    results
}

#[test]
fn a_run_against_llama_server_writes_steps_that_end_at_the_separator() {
    let binary = server_binary().expect(
        "no llama-server: run scripts/build-llama-server.sh (scripts/test.sh does), or set ARBITRAGE_LLAMA_SERVER",
    );
    let smoke = common::smoke_config();
    let model = &smoke.draft.embedded().expect("embedded").path;
    let server = start(&binary, model);

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("p.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let config = tmp.path().join("remote.toml");
    std::fs::write(
        &config,
        format!(
            "[models.draft]\nurl = {url:?}\nmodel = \"smollm2\"\n[models.target]\nurl = {url:?}\nmodel = \"smollm2\"\n\
             [generation]\nseparator = \"\\n\\n\"\nmax_step_tokens = 64\nmax_tokens = 200\nmax_steps = 6\n\
             [remote]\nrequest_timeout_s = 120\n",
            url = server.url
        ),
    )
    .unwrap();

    // Two problems in flight: the server has two slots.
    let remote = run(
        &config,
        &data,
        &tmp.path().join("remote"),
        "draft",
        &["--concurrency", "2"],
    );
    let embedded = run(
        Path::new("configs/smoke.toml"),
        &data,
        &tmp.path().join("embedded"),
        "draft",
        &[],
    );
    let mut separator_steps = 0;
    for (r, e) in remote.iter().zip(&embedded) {
        assert!(r["error"].is_null(), "{r}");
        let steps = r["steps"].as_array().unwrap();
        assert!(!steps.is_empty());
        // Every step but the last ends at the separator or at the step's token limit, as the
        // embedded engine's do.
        for s in &steps[..steps.len() - 1] {
            let at_separator = s["text"].as_str().unwrap().ends_with("\n\n");
            assert!(at_separator || s["tokens"] == 64, "{s}");
            separator_steps += usize::from(at_separator);
        }
        assert!(r["tokens"]["draft"].as_u64().unwrap() > 0);
        assert!(r["prefill_tokens"]["draft"].as_u64().unwrap() > 0);
        // The first step reads the same prompt in both engines: greedy, it is the same text.
        assert_eq!(r["steps"][0]["text"], e["steps"][0]["text"], "{r}\n{e}");
    }
    assert!(
        separator_steps > 0,
        "some steps ended at the separator: {remote:?}"
    );
    // llama-server does not say in the OpenAI answer whether `stop` was the separator or the end
    // of sequence; the client asks it with `"verbose": true`. A solution that ends by itself must
    // end so, not run on to the step limit.
    let stops = |rs: &[Value]| rs.iter().map(|r| r["stop"].clone()).collect::<Vec<_>>();
    eprintln!(
        "stops: remote {:?}, embedded {:?}",
        stops(&remote),
        stops(&embedded)
    );
    let texts = |r: &Value| {
        r["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["text"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    let mut ended = 0;
    for r in &remote {
        if r["stop"] == "end_of_sequence" {
            ended += 1;
            // Read as a separator stop, the end would get the separator appended and one more
            // (empty) step asked for.
            let last = texts(r).pop().unwrap();
            assert!(
                !last.is_empty() && !last.ends_with("\n\n"),
                "the last step is the model's own end: {:?}",
                texts(r)
            );
        }
    }
    assert!(
        ended > 0,
        "some solutions end by themselves: {:?}",
        stops(&remote)
    );

    // The feature router reads the draft's logprobs in llama-server's chat-style shape.
    let router = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/smoke-router.json");
    let routed = run(
        &config,
        &data,
        &tmp.path().join("router"),
        "router",
        &["--router", router.to_str().unwrap(), "--threshold", "0.5"],
    );
    let scores: Vec<f64> = routed
        .iter()
        .flat_map(|r| r["steps"].as_array().unwrap().clone())
        .map(|s| s["router_score"].as_f64().unwrap())
        .collect();
    assert!(scores.iter().all(|y| (0.0..=1.0).contains(y)), "{scores:?}");
    assert!(
        scores.windows(2).any(|w| w[0] != w[1]),
        "scores vary with the logprobs: {scores:?}"
    );

    // The value head beside a remote target reads its own embedded copy of the model it names:
    // the same scores as on the embedded target that shares the draft's instance.
    let smoke_file = model.file_name().unwrap().to_str().unwrap();
    let dim = 576; // SmolLM2-135M's hidden size
    let head = tmp.path().join("head.json");
    std::fs::write(
        &head,
        serde_json::json!({
            "format": "arbitrage-linear-head", "version": 1, "reads": "target-hidden",
            "model": smoke_file, "dim": dim, "mean": vec![0.0; dim], "scale": vec![1.0; dim],
            "weights": (0..dim).map(|i| (i as f64).sin() * 0.05).collect::<Vec<_>>(), "bias": 0.0,
        })
        .to_string(),
    )
    .unwrap();
    let with_head = tmp.path().join("remote-head.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &with_head,
        format!(
            "[models]\ndir = {:?}\n{text}[prm]\nkind = \"value-head\"\nhead = {:?}\n",
            model.parent().unwrap(),
            head
        ),
    )
    .unwrap();
    let scored = |config: &Path, out: &str| {
        run(
            config,
            &data,
            &tmp.path().join(out),
            "rsd",
            &["--threshold", "0.5", "--max-steps", "2"],
        )
    };
    let remote = scored(&with_head, "rsd-remote");
    let embedded = run(
        Path::new("configs/smoke.toml"),
        &data,
        &tmp.path().join("rsd-embedded"),
        "rsd",
        &[
            "--threshold",
            "0.5",
            "--max-steps",
            "2",
            "--prm",
            "value-head",
            "--prm-head",
            head.to_str().unwrap(),
        ],
    );
    let metrics: Value = serde_json::from_str(
        &std::fs::read_to_string(tmp.path().join("rsd-remote/metrics.json")).unwrap(),
    )
    .unwrap();
    let prm = metrics["prm"].as_str().unwrap();
    assert!(prm.contains(&format!("on its own {smoke_file}")), "{prm}");
    for (r, e) in remote.iter().zip(&embedded) {
        assert!(r["error"].is_null(), "{r}");
        assert_eq!(r["steps"][0]["text"], e["steps"][0]["text"], "{r}\n{e}");
        let (rs, es) = (&r["steps"][0]["prm_score"], &e["steps"][0]["prm_score"]);
        let (rs, es) = (rs.as_f64().expect("scored"), es.as_f64().expect("scored"));
        assert!(
            (rs - es).abs() < 1e-3,
            "remote-target run {rs}, embedded {es}"
        );
    }
}
