//! The binary on bad input: a clear message naming the culprit, a non-zero exit, no panic.

mod common;

use std::path::Path;
use std::process::Output;

fn fails_with(out: &Output, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "expected failure, stderr: {stderr}");
    assert!(!stderr.contains("panicked"), "panic: {stderr}");
    for needle in needles {
        assert!(stderr.contains(needle), "stderr lacks {needle:?}: {stderr}");
    }
}

/// A one-problem dataset, so model errors are reached without ../shared/data.
fn one_problem(dir: &Path) -> String {
    let path = dir.join("q.jsonl");
    std::fs::write(
        &path,
        "{\"question\": \"What is 2 + 3?\", \"answer\": \"5\"}\n",
    )
    .unwrap();
    path.display().to_string()
}

fn config_with_model(dir: &Path, model: &Path) -> std::path::PathBuf {
    let path = dir.join("c.toml");
    std::fs::write(
        &path,
        format!(
            "[models.draft]\nfile = {:?}\n[models.target]\nfile = {:?}\n",
            model.display().to_string(),
            model.display().to_string()
        ),
    )
    .unwrap();
    path
}

#[test]
fn a_missing_model_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = config_with_model(dir.path(), &dir.path().join("absent.gguf"));
    let data = one_problem(dir.path());
    let out = common::arbitrage(&[
        "steps",
        "--config",
        config.to_str().unwrap(),
        "--dataset",
        &data,
    ]);
    fails_with(&out, &["absent.gguf", "fetch-models"]);
}

#[test]
fn a_file_that_is_not_gguf_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.gguf");
    std::fs::write(&model, b"<html>not a model</html>").unwrap();
    let config = config_with_model(dir.path(), &model);
    let data = one_problem(dir.path());
    let out = common::arbitrage(&[
        "steps",
        "--config",
        config.to_str().unwrap(),
        "--dataset",
        &data,
    ]);
    fails_with(&out, &["model.gguf", "not a GGUF file"]);
}

#[test]
fn a_truncated_gguf_is_an_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let full = std::fs::read(
        common::smoke_config()
            .draft
            .embedded()
            .expect("embedded")
            .path
            .clone(),
    )
    .unwrap();
    let model = dir.path().join("truncated.gguf");
    std::fs::write(&model, &full[..full.len() / 3]).unwrap();
    let config = config_with_model(dir.path(), &model);
    let data = one_problem(dir.path());
    let out = common::arbitrage(&[
        "steps",
        "--config",
        config.to_str().unwrap(),
        "--dataset",
        &data,
    ]);
    fails_with(&out, &["truncated.gguf"]);
}

#[test]
fn an_unreadable_config_is_named() {
    let out = common::arbitrage(&["steps", "--config", "/nonexistent/arb.toml"]);
    fails_with(&out, &["/nonexistent/arb.toml"]);
}

#[test]
fn an_unknown_config_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[models.draft]\nfile = \"a\"\n[models.target]\nfile = \"b\"\n[engine]\nthreds = 2\n",
    )
    .unwrap();
    let out = common::arbitrage(&["steps", "--config", path.to_str().unwrap()]);
    fails_with(&out, &["c.toml", "threds"]);
}

#[test]
fn steps_prints_a_solution_with_the_smoke_model() {
    let data = tempfile::tempdir().unwrap();
    let file = one_problem(data.path());
    let out = common::arbitrage(&[
        "steps",
        "--config",
        "configs/smoke.toml",
        "--dataset",
        &file,
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("── step 1"), "{stdout}");
    assert!(stdout.contains("tokens generated"), "{stdout}");
}

#[test]
fn grade_pairs_prints_one_verdict_per_line_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"gold\": \"50\", \"pred\": \"0.5\"}\n{\"gold\": \"\\\\frac{1}{2}\", \"pred\": \"The answer is \\\\boxed{0.5}.\"}\n",
    )
    .unwrap();
    let out = common::arbitrage(&["grade", "--pairs", pairs.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), 2);
    assert_eq!(verdicts[0]["equal"], false);
    assert_eq!(verdicts[1]["equal"], true);
}

#[test]
fn output_piped_into_a_reader_that_stops_early_ends_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    // Far more verdicts than a pipe buffers, so the writer is still writing when the reader
    // goes away (as `arbitrage grade --pairs F | head -1`).
    std::fs::write(
        &pairs,
        "{\"gold\": \"1\", \"pred\": \"1\"}\n".repeat(20_000),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbitrage"))
        .args(["grade", "--pairs", pairs.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.contains("\"equal\":true"), "{first}");
    // The reader is gone (its end of the pipe dropped with the BufReader).
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
    }
}

#[test]
fn grade_pairs_names_a_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = dir.path().join("pairs.jsonl");
    std::fs::write(
        &pairs,
        "{\"gold\": \"1\", \"pred\": \"1\"}\n{\"gold\": 1}\n",
    )
    .unwrap();
    let out = common::arbitrage(&["grade", "--pairs", pairs.to_str().unwrap()]);
    fails_with(&out, &[&format!("{}:2", pairs.display())]);
}

#[test]
fn a_value_head_beside_a_remote_target_names_the_model_file_it_lacks() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head.json");
    std::fs::write(
        &head,
        serde_json::json!({
            "format": "arbitrage-linear-head", "version": 1, "reads": "target-hidden",
            "model": "absent-target.gguf", "dim": 2, "mean": [0.0, 0.0], "scale": [1.0, 1.0],
            "weights": [0.5, -0.5], "bias": 0.0,
        })
        .to_string(),
    )
    .unwrap();
    let data = one_problem(dir.path());
    // Nothing listens there: the run must stop before any request, at loading the head's model.
    let out = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "rsd",
        "--dataset",
        &data,
        "--output-dir",
        dir.path().join("out").to_str().unwrap(),
        "--target-url",
        "http://127.0.0.1:9/v1",
        "--target-model",
        "target",
        "--prm",
        "value-head",
        "--prm-head",
        head.to_str().unwrap(),
    ]);
    fails_with(
        &out,
        &["absent-target.gguf", "head.json", "the target is remote"],
    );
}
