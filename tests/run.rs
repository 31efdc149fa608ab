//! `arbitrage run` end to end with the smoke model: every run type obeys its rule in the trace,
//! metrics add up from the results, and an interrupted run resumes without losing or repeating
//! a problem.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const PROBLEMS: &str = r#"{"question": "What is 12 + 30?", "answer": "42"}
{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7"}
{"question": "A book costs $5. How much do 6 books cost?", "answer": "30"}
"#;

fn dataset(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("problems.jsonl");
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `run_type` over the three problems and returns (results, metrics).
fn run(run_type: &str, extra: &[&str]) -> (Vec<Value>, Value, PathBuf, tempfile::TempDir) {
    let (results, metrics, out, tmp, _) = run_with_stderr(run_type, extra);
    (results, metrics, out, tmp)
}

/// [`run`], with what the run printed on stderr.
fn run_with_stderr(
    run_type: &str,
    extra: &[&str],
) -> (Vec<Value>, Value, PathBuf, tempfile::TempDir, String) {
    let tmp = tempfile::tempdir().unwrap();
    let data = dataset(tmp.path(), PROBLEMS);
    let out = tmp.path().join("out");
    let mut args = vec![
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        run_type,
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = common::arbitrage(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    let results = read_jsonl(&out.join("results.jsonl"));
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    (results, metrics, out, tmp, stderr)
}

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn steps(r: &Value) -> &Vec<Value> {
    r["steps"].as_array().unwrap()
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap()
}

/// Tokens the target wrote for kept steps: the only target work rsd and router may do.
fn target_step_tokens(r: &Value) -> u64 {
    steps(r)
        .iter()
        .filter(|s| s["model"] == "target")
        .map(|s| s["tokens"].as_u64().unwrap())
        .sum()
}

fn check_metrics_add_up(results: &[Value], metrics: &Value) {
    let n = results.len() as f64;
    assert_eq!(f(&metrics["n"]), n);
    let correct = results.iter().filter(|r| r["correct"] == true).count() as f64;
    assert!((f(&metrics["accuracy"]) - correct / n).abs() < 1e-12);
    let mean = results.iter().map(|r| f(&r["latency_s"])).sum::<f64>() / n;
    assert!((f(&metrics["mean_latency_s"]) - mean).abs() < 1e-9);
    let all: Vec<&Value> = results.iter().flat_map(steps).collect();
    let target = all.iter().filter(|s| s["model"] == "target").count() as f64;
    assert!((f(&metrics["target_step_fraction"]) - target / all.len() as f64).abs() < 1e-12);
    for r in results {
        // Every second of a problem is accounted for: model parts per role, and the rest.
        let split = &r["time_split_s"];
        let part = |k: &str| f(&split[k]);
        let latency = f(&r["latency_s"]);
        let models: f64 = [
            "draft_decode",
            "draft_prefill",
            "target_decode",
            "target_prefill",
            "prm",
            "router",
        ]
        .iter()
        .map(|k| part(k))
        .sum();
        assert!(
            (models + part("other") - latency).abs() <= 0.02 * latency,
            "{split}"
        );
        assert!(
            part("other") >= -1e-9 && part("other") <= 0.25 * latency + 0.05,
            "{split} of {latency}"
        );
        for role in ["draft", "target"] {
            let both = part(&format!("{role}_decode")) + part(&format!("{role}_prefill"));
            assert!(
                (both - f(&r["model_time_s"][role])).abs() < 1e-9,
                "{role}: {split}"
            );
        }
    }
    for key in ["draft", "target", "discarded_draft", "accepted_draft"] {
        let sum: u64 = results
            .iter()
            .map(|r| r["tokens"][key].as_u64().unwrap())
            .sum();
        let metric = format!("{key}_tokens");
        assert_eq!(metrics[&metric].as_u64().unwrap(), sum, "{metric}");
    }
    for role in ["draft", "target", "prm", "router"] {
        let sum: u64 = results
            .iter()
            .map(|r| r["prefill_tokens"][role].as_u64().unwrap())
            .sum();
        assert_eq!(
            metrics["prefill_tokens"][role].as_u64().unwrap(),
            sum,
            "prefill {role}"
        );
        let time: f64 = results.iter().map(|r| f(&r["model_time_s"][role])).sum();
        assert!(
            (f(&metrics["model_time_s"][role]) - time).abs() < 1e-9,
            "time {role}"
        );
    }
    for key in [
        "run_type",
        "threshold",
        "dataset",
        "p50_latency_s",
        "p90_latency_s",
        "wall_time_s",
        "acceptance_rate",
    ] {
        assert!(metrics.get(key).is_some(), "metrics lack {key}");
    }
    for r in results {
        for key in ["idx", "question", "gt", "pred", "correct", "latency_s"] {
            assert!(r.get(key).is_some(), "result lacks {key}");
        }
    }
}

#[test]
fn draft_runs_use_only_the_draft() {
    let (results, metrics, _, _tmp) = run("draft", &[]);
    assert_eq!(results.len(), 3);
    for r in &results {
        assert!(steps(r).iter().all(|s| s["model"] == "draft"));
        assert_eq!(r["tokens"]["target"], 0);
        assert_eq!(r["prefill_tokens"]["target"], 0);
    }
    assert_eq!(f(&metrics["acceptance_rate"]), 1.0);
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn target_runs_use_only_the_target() {
    let (results, metrics, _, _tmp) = run("target", &[]);
    for r in &results {
        assert!(steps(r).iter().all(|s| s["model"] == "target"));
        assert_eq!(r["tokens"]["draft"], 0);
    }
    assert!(metrics["acceptance_rate"].is_null());
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn rsd_keeps_exactly_the_draft_steps_that_reach_the_threshold() {
    let threshold = 0.6;
    let (results, metrics, _, _tmp) = run("rsd", &["--threshold", "0.6"]);
    let mut seen = BTreeMap::new();
    for r in &results {
        for s in steps(r) {
            let score = f(&s["prm_score"]);
            *seen
                .entry(s["model"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
            if s["model"] == "draft" {
                assert!(score >= threshold, "{s}");
                assert!(s.get("rejected_draft_text").is_none());
            } else {
                assert!(score < threshold, "{s}");
                assert!(
                    s["rejected_draft_text"].is_string(),
                    "a target step follows a rejected draft"
                );
            }
        }
        // The target wrote only the steps it was asked for: kept draft steps cost it nothing.
        assert_eq!(
            r["tokens"]["target"].as_u64().unwrap()
                + r["tokens"]["accepted_draft"].as_u64().unwrap(),
            target_step_tokens(r)
        );
        assert!(r["prefill_tokens"]["prm"].as_u64().unwrap() > 0);
    }
    assert_eq!(
        seen.len(),
        2,
        "the threshold should split the steps: {seen:?}"
    );
    assert_eq!(metrics["threshold"], threshold);
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn router_runs_call_neither_the_prm_nor_the_target_on_kept_steps() {
    let threshold = 0.5;
    let (results, metrics, _, _tmp) = run("router", &["--threshold", "0.5"]);
    let mut models = BTreeMap::new();
    for r in &results {
        assert_eq!(r["prefill_tokens"]["prm"], 0);
        assert_eq!(f(&r["model_time_s"]["prm"]), 0.0);
        for s in steps(r) {
            assert!(s.get("prm_score").is_none(), "no PRM in router runs");
            let y = f(&s["router_score"]);
            assert!((0.0..=1.0).contains(&y));
            assert_eq!(s["model"] == "target", y >= threshold, "{s}");
            *models
                .entry(s["model"].as_str().unwrap().to_owned())
                .or_insert(0) += 1;
        }
        assert_eq!(
            r["tokens"]["target"].as_u64().unwrap()
                + r["tokens"]["accepted_draft"].as_u64().unwrap(),
            target_step_tokens(r)
        );
    }
    assert!(
        metrics["router"]
            .as_str()
            .unwrap()
            .contains("smoke-router.json")
    );
    eprintln!("router decisions: {models:?}");
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn problems_in_flight_together_on_embedded_models_are_decided_as_one_at_a_time() {
    for (run_type, extra) in [("rsd", vec!["--threshold", "0.5"]), ("router", vec![])] {
        let (alone, alone_metrics, _, _tmp) = run(run_type, &extra);
        let mut together_args = extra.clone();
        together_args.extend(["--concurrency", "3"]);
        let (together, metrics, _, _tmp2, stderr) = run_with_stderr(run_type, &together_args);
        assert!(
            stderr.contains("rounds        draft") && stderr.contains("steps, "),
            "the summary says how full the decode rounds were: {stderr}"
        );
        assert_eq!(
            common::decisions(&alone),
            common::decisions(&together),
            "{run_type}: the same steps, scores and answers with 3 problems in flight"
        );
        assert_eq!(alone_metrics["concurrency"], 1);
        assert_eq!(
            metrics["concurrency"], 3,
            "metrics say how the run was made"
        );
        assert!(together.iter().all(|r| r["in_flight"] == 3));
        assert!(f(&metrics["problems_per_minute"]) > 0.0);
        check_metrics_add_up(&together, &metrics);
    }
}

/// Step texts and authors of every problem.
fn trace(results: &[Value]) -> Vec<Vec<(String, String)>> {
    results
        .iter()
        .map(|r| {
            steps(r)
                .iter()
                .map(|s| {
                    (
                        s["model"].as_str().unwrap().to_owned(),
                        s["text"].as_str().unwrap().to_owned(),
                    )
                })
                .collect()
        })
        .collect()
}

#[test]
fn verification_changes_the_cost_of_escalated_steps_not_their_text() {
    // One model in every role: the target agrees with nearly every draft token it reads.
    for (run_type, threshold) in [("rsd", "0.6"), ("router", "0.5")] {
        let (verified, vm, _, _t1) = run(run_type, &["--threshold", threshold]);
        let (plain, pm, _, _t2) = run(run_type, &["--threshold", threshold, "--no-verify"]);
        assert_eq!(pm["accepted_draft_tokens"], 0);
        let rejected: u64 = plain
            .iter()
            .map(|r| r["tokens"]["discarded_draft"].as_u64().unwrap())
            .sum();
        assert!(rejected > 0, "{run_type}: the test needs escalated steps");
        // Most of what the target wrote in the plain run, it took from the draft in the other.
        let accepted = vm["accepted_draft_tokens"].as_u64().unwrap();
        let written = vm["target_tokens"].as_u64().unwrap();
        assert!(
            accepted > written,
            "{run_type}: {accepted} taken, {written} written"
        );
        for r in &verified {
            for s in steps(r).iter().filter(|s| s["model"] == "target") {
                let taken = s
                    .get("accepted_tokens")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                assert!(taken <= s["tokens"].as_u64().unwrap());
                let draft = s["rejected_draft_text"].as_str().unwrap();
                if taken > 0 {
                    // The kept tokens are the beginning of the draft's step.
                    let text = s["text"].as_str().unwrap();
                    assert_eq!(text.chars().next(), draft.chars().next(), "{s}");
                }
            }
        }
        // The same text either way, but where batched and one-token kernels split a near-tie.
        let (a, b) = (trace(&verified), trace(&plain));
        let same = a.iter().zip(&b).filter(|(x, y)| x == y).count();
        eprintln!(
            "{run_type}: {same} of {} problems with identical traces",
            a.len()
        );
        assert!(
            2 * same >= a.len(),
            "{run_type}: {same} of {} identical",
            a.len()
        );
        check_metrics_add_up(&verified, &vm);
        check_metrics_add_up(&plain, &pm);
    }
}

#[test]
fn an_early_decision_escalates_on_the_glimpse_and_otherwise_changes_nothing() {
    let (plain, _, _, _t1) = run("router", &["--threshold", "0.5"]);
    // An entropy no token reaches: every glimpse is kept and written on, as if never cut.
    let (never, nm, _, _t2) = run("router", &["--threshold", "0.5", "--early-entropy", "1000"]);
    assert_eq!(trace(&never), trace(&plain));
    for (a, b) in never.iter().zip(&plain) {
        for (x, y) in steps(a).iter().zip(steps(b)) {
            assert_eq!(x["router_score"], y["router_score"]);
            assert!(x.get("early").is_none());
        }
    }
    check_metrics_add_up(&never, &nm);

    // Entropy 0: every step the glimpse did not finish goes to the target on its first token.
    let (always, am, _, _t3) = run(
        "router",
        &[
            "--threshold",
            "0.5",
            "--early-entropy",
            "0",
            "--early-tokens",
            "2",
        ],
    );
    let mut early = 0;
    for r in &always {
        for s in steps(r) {
            if s["early"] == true {
                early += 1;
                assert_eq!(s["model"], "target");
                assert!(
                    s.get("router_score").is_none(),
                    "decided before routing: {s}"
                );
                let glimpse = s["rejected_draft_text"].as_str().unwrap();
                assert!(
                    !glimpse.is_empty() && glimpse.len() <= s["text"].as_str().unwrap().len() + 64
                );
            } else {
                // Only a step the glimpse itself finished is routed.
                assert!(s["tokens"].as_u64().unwrap() <= 2, "{s}");
            }
        }
        // A glimpse is two draft tokens at most.
        let target_steps = steps(r).iter().filter(|s| s["model"] == "target").count() as u64;
        assert!(r["tokens"]["draft"].as_u64().unwrap() <= 2 * steps(r).len() as u64);
        assert!(target_steps > 0);
    }
    assert!(early > 0);
    check_metrics_add_up(&always, &am);
}

#[test]
fn oracle_takes_the_target_step_exactly_when_its_advantage_exceeds_the_threshold() {
    // The smoke config uses one model in both roles, so advantages are near zero: a negative
    // threshold makes the rule pick the target on ties, which exercises both branches' bookkeeping.
    let threshold = -0.01;
    let (results, metrics, _, _tmp) = run("oracle", &["--threshold=-0.01"]);
    for r in &results {
        for s in steps(r) {
            let delta = f(&s["target_prm_score"]) - f(&s["prm_score"]);
            assert_eq!(s["model"] == "target", delta > threshold, "{s}");
        }
    }
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn generate_runs_dump_one_record_per_step_with_both_scores() {
    let (results, metrics, out, _tmp) = run("generate", &[]);
    let records = read_jsonl(&out.join("steps.jsonl"));
    let total: usize = results.iter().map(|r| steps(r).len()).sum();
    assert_eq!(records.len(), total);
    for rec in &records {
        let (sd, st) = (f(&rec["prm_score"]), f(&rec["target_prm_score"]));
        assert!((0.0..=1.0).contains(&sd) && (0.0..=1.0).contains(&st));
        assert_eq!(
            rec["features"].as_array().unwrap().len(),
            rec["feature_names"].as_array().unwrap().len()
        );
        assert!(rec["draft_step"].is_string() && rec["target_step"].is_string());
    }
    for r in &results {
        for s in steps(r) {
            let better = f(&s["target_prm_score"]) > f(&s["prm_score"]);
            assert_eq!(s["model"] == "target", better);
        }
    }
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn a_killed_run_resumes_with_every_problem_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let many: String = (0..8)
        .map(|i| {
            format!(
                "{{\"question\": \"What is {i} + {i}?\", \"answer\": \"{}\"}}\n",
                2 * i
            )
        })
        .collect();
    let data = dataset(tmp.path(), &many);
    let out = tmp.path().join("out");
    let args = [
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "draft",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let mut child = Command::new(env!("CARGO_BIN_EXE_arbitrage"))
        .args(args)
        .current_dir(common::repo())
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let results = out.join("results.jsonl");
    // Kill it once some, not all, problems are written.
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run finished before it could be killed: {status}");
        }
        let lines = std::fs::read_to_string(&results)
            .map(|t| t.lines().count())
            .unwrap_or(0);
        if lines >= 2 {
            break;
        }
        std::thread::yield_now();
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let before = read_jsonl(&results).len();
    assert!(before < 8, "killed after {before} problems");

    let output = common::arbitrage(&args);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let idx: Vec<u64> = read_jsonl(&results)
        .iter()
        .map(|r| r["idx"].as_u64().unwrap())
        .collect();
    let mut sorted = idx.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        (0..8).collect::<Vec<_>>(),
        "each problem exactly once: {idx:?}"
    );
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert_eq!(metrics["n"], 8);
}

#[test]
fn show_steps_prints_every_step_as_it_is_decided_with_its_scores() {
    let (results, _, _, _tmp, stderr) = run_with_stderr(
        "rsd",
        &[
            "--threshold",
            "0.5",
            "--max-steps",
            "3",
            "--max-tokens",
            "96",
            "--show-steps",
        ],
    );
    let mut shown = 0;
    for r in &results {
        for (i, s) in steps(r).iter().enumerate() {
            // Every rsd step carries its PRM score.
            assert!(s["prm_score"].is_number());
            let line = format!(
                "problem {} step {} [{}] prm ",
                r["idx"],
                i + 1,
                s["model"].as_str().unwrap()
            );
            assert!(stderr.contains(&line), "{line} missing from:\n{stderr}");
            shown += 1;
        }
    }
    assert_eq!(stderr.matches("] prm ").count(), shown, "{stderr}");
}

#[test]
fn a_run_that_does_not_route_never_reads_the_router_file() {
    // The smoke config with its router file pointing nowhere: only `router` runs may fail on it.
    let tmp = tempfile::tempdir().unwrap();
    let smoke = std::fs::read_to_string(common::repo().join("configs/smoke.toml")).unwrap();
    let models = common::repo().join("models");
    let config = smoke
        .replace(
            "dir = \"../models\"",
            &format!("dir = {:?}", models.to_str().unwrap()),
        )
        .replace(
            "../tests/data/smoke-router.json",
            "/nonexistent/router.json",
        );
    let config_path = tmp.path().join("no-router.toml");
    std::fs::write(&config_path, config).unwrap();
    let data = dataset(tmp.path(), PROBLEMS);
    let run = |run_type: &str| {
        let out = tmp.path().join(run_type);
        common::arbitrage(&[
            "run",
            "--config",
            config_path.to_str().unwrap(),
            "--run-type",
            run_type,
            "--dataset",
            data.to_str().unwrap(),
            "--limit",
            "1",
            "--max-steps",
            "2",
            "--output-dir",
            out.to_str().unwrap(),
        ])
    };
    let draft = run("draft");
    assert!(
        draft.status.success(),
        "{}",
        String::from_utf8_lossy(&draft.stderr)
    );
    let router = run("router");
    let stderr = String::from_utf8_lossy(&router.stderr);
    assert!(!router.status.success());
    assert!(stderr.contains("/nonexistent/router.json"), "{stderr}");
}

#[test]
fn bad_input_is_a_clear_error_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let bad = dataset(
        tmp.path(),
        "{\"question\": \"ok\", \"answer\": \"1\"}\n{\"question\": \n",
    );
    let out = tmp.path().join("out");
    let base = [
        "run",
        "--config",
        "configs/smoke.toml",
        "--output-dir",
        out.to_str().unwrap(),
    ];
    let cases: Vec<(Vec<&str>, Vec<String>)> = vec![
        (
            vec!["--run-type", "draft", "--dataset", bad.to_str().unwrap()],
            vec![format!("{}:2", bad.display())],
        ),
        (
            vec!["--run-type", "draft", "--dataset", "no_such_set"],
            vec!["no_such_set".into(), "gsm8k".into()],
        ),
        (
            vec!["--run-type", "speculate", "--dataset", "gsm8k"],
            vec!["speculate".into()],
        ),
        (
            vec![
                "--run-type",
                "rsd",
                "--early-entropy",
                "1",
                "--dataset",
                "gsm8k",
            ],
            vec!["--early-entropy".into(), "router".into()],
        ),
        (
            vec![
                "--run-type",
                "router",
                "--early-entropy",
                "-1",
                "--dataset",
                "gsm8k",
            ],
            vec!["--early-entropy".into(), "-1".into()],
        ),
        (
            vec![
                "--run-type",
                "rsd",
                "--threshold",
                "1.5",
                "--dataset",
                bad.to_str().unwrap(),
            ],
            vec!["1.5".into(), "[0, 1]".into()],
        ),
        (
            vec![
                "--run-type",
                "router",
                "--router",
                "/nonexistent/r.json",
                "--dataset",
                bad.to_str().unwrap(),
            ],
            vec!["/nonexistent/r.json".into()],
        ),
    ];
    for (extra, needles) in cases {
        let mut args = base.to_vec();
        args.extend(extra.iter());
        let output = common::arbitrage(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} should fail");
        assert!(!stderr.contains("panicked"), "{stderr}");
        for n in &needles {
            assert!(
                stderr.contains(n.as_str()),
                "{args:?}: stderr lacks {n:?}: {stderr}"
            );
        }
        assert!(
            !out.join("results.jsonl").exists(),
            "{args:?} wrote results"
        );
    }
}

#[test]
fn a_budget_point_runs_the_early_rule_trained_for_it_unless_told_not_to() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/data/smoke-router.json").unwrap())
            .unwrap();
    file["budget"] = serde_json::json!([
        {"target_fraction": 0.3, "threshold": 0.5, "early": {"tokens": 2, "min_entropy": 0.0},
         "threshold_without_early": 0.7},
        {"target_fraction": 0.6, "threshold": 0.5}
    ]);
    let router = tmp.path().join("router.json");
    std::fs::write(&router, file.to_string()).unwrap();
    let router = router.to_str().unwrap();
    let early_steps = |results: &[Value]| -> usize {
        results
            .iter()
            .flat_map(|r| steps(r).iter())
            .filter(|s| s["early"] == true)
            .count()
    };
    let (with_rule, m1, _, _t1) = run("router", &["--router", router, "--target-fraction", "0.3"]);
    assert!(
        early_steps(&with_rule) > 0,
        "the point's rule decides early"
    );
    check_metrics_add_up(&with_rule, &m1);
    assert_eq!(m1["threshold"], 0.5);
    // Without the point's rule, the router alone takes the threshold that sends the fraction.
    for (extra, threshold) in [
        (vec!["--target-fraction", "0.3", "--no-early"], 0.7),
        (vec!["--target-fraction", "0.6"], 0.5),
        (vec!["--threshold", "0.5"], 0.5),
    ] {
        let mut args = vec!["--router", router];
        args.extend(extra.iter().copied());
        let (results, metrics, _, _t) = run("router", &args);
        assert_eq!(early_steps(&results), 0, "{extra:?}");
        assert_eq!(metrics["threshold"], threshold, "{extra:?}");
    }
}

#[test]
fn a_target_fraction_on_a_set_with_its_own_budget_curve_takes_that_curve_s_threshold() {
    let tmp = tempfile::tempdir().unwrap();
    let mut file: Value =
        serde_json::from_str(&std::fs::read_to_string("tests/data/smoke-router.json").unwrap())
            .unwrap();
    file["budget"] = serde_json::json!([{"target_fraction": 0.3, "threshold": 0.2}]);
    // The test's problems file is `problems.jsonl`: its set is `problems`.
    file["budget_by_set"] = serde_json::json!({
        "problems": [{"target_fraction": 0.3, "threshold": 0.8}],
        "other": [{"target_fraction": 0.3, "threshold": 0.05}]
    });
    let router = tmp.path().join("router.json");
    std::fs::write(&router, file.to_string()).unwrap();
    let router = router.to_str().unwrap();
    let (_, metrics, _, _t, stderr) =
        run_with_stderr("router", &["--router", router, "--target-fraction", "0.3"]);
    assert_eq!(metrics["threshold"], 0.8, "{stderr}");
    assert!(
        stderr.contains("threshold 0.8 (the budget curve of problems at 0.3)"),
        "{stderr}"
    );
    // An explicit threshold is the threshold, whatever the curves say.
    let (_, metrics, _, _t) = run("router", &["--router", router, "--threshold", "0.4"]);
    assert_eq!(metrics["threshold"], 0.4);

    // Weights of the set's own: ŷ = σ(5) on every step of this set, so all go to the target.
    let n = file["weights"].as_array().unwrap().len();
    file["weights_by_set"] = serde_json::json!({
        "problems": {"mean": vec![0.0; n], "scale": vec![1.0; n], "weights": vec![0.0; n], "bias": 5.0}
    });
    std::fs::write(router, file.to_string()).unwrap();
    let (results, metrics, _, _t, stderr) =
        run_with_stderr("router", &["--router", router, "--target-fraction", "0.3"]);
    assert!(
        stderr.contains(
            "threshold 0.8 (the weights of problems, the budget curve of problems at 0.3)"
        ),
        "{stderr}"
    );
    for s in results.iter().flat_map(steps) {
        assert!((f(&s["router_score"]) - 0.9933).abs() < 1e-3, "{s}");
        assert_eq!(s["model"], "target", "{s}");
    }
    check_metrics_add_up(&results, &metrics);
}

#[test]
fn a_router_that_reads_the_prm_pays_for_its_score_of_every_routed_step() {
    let (rsd, rsd_metrics, _, _t0) = run("rsd", &["--threshold", "0.5"]);
    let prm = rsd_metrics["prm"].as_str().unwrap().to_owned();
    let tmp = tempfile::tempdir().unwrap();
    let mut file = common::smoke_router_reading_prm(&prm);
    let router = tmp.path().join("router.json");
    std::fs::write(&router, file.to_string()).unwrap();
    let router = router.to_str().unwrap();

    let (results, metrics, _, _t1) = run("router", &["--router", router, "--threshold", "0.5"]);
    assert_eq!(metrics["prm"], prm.as_str());
    for r in &results {
        assert!(r["prefill_tokens"]["prm"].as_u64().unwrap() > 0, "{r}");
        for s in steps(r) {
            let score = f(&s["prm_score"]);
            assert!((0.0..=1.0).contains(&score), "{s}");
            assert_eq!(s["model"] == "target", f(&s["router_score"]) >= 0.5, "{s}");
        }
        // The first step is the draft's first step in both runs, read by the same PRM.
        let first = r["idx"].clone();
        let same = rsd.iter().find(|x| x["idx"] == first).unwrap();
        assert_eq!(steps(r)[0]["prm_score"], steps(same)[0]["prm_score"]);
    }
    check_metrics_add_up(&results, &metrics);

    // Another PRM's scores would mean nothing to it: a clear error before any problem runs.
    file["prm"] = "value-head another.json on target".into();
    let other = tmp.path().join("other.json");
    std::fs::write(&other, file.to_string()).unwrap();
    let data = dataset(tmp.path(), PROBLEMS);
    let out = tmp.path().join("out");
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "router",
        "--router",
        other.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("reads the scores of the PRM") && stderr.contains("another.json"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    assert!(written.is_empty(), "{written}");
}
