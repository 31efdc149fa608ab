//! Rollout labels, hidden states, head training and the value-head PRM end to end with the smoke
//! model: `run --run-type generate`, `label`, `train-heads`, then `run --prm value-head`.

mod common;

use std::path::Path;

use arbitrage::backend::StepGenerator;
use arbitrage::eval::labels::{KnownSteps, RolloutSpec, roll_out};
use arbitrage::method::prompts::PromptTemplate;
use arbitrage::method::value_head::HeadFile;
use arbitrage::types::{FinishReason, Sampling, StepOptions, Transcript};
use serde_json::Value;

const PROBLEMS: &str = r#"{"question": "What is 12 + 30?", "answer": "42"}
{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7"}
{"question": "A book costs $5. How much do 6 books cost?", "answer": "30"}
{"question": "What is 9 times 9?", "answer": "81"}
{"question": "Sara had 20 sweets and ate 5. How many are left?", "answer": "15"}
{"question": "What is 100 minus 1?", "answer": "99"}
"#;

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn ok(args: &[&str]) -> String {
    let output = common::arbitrage(args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{args:?}: {stderr}");
    String::from_utf8_lossy(&output.stdout).into_owned() + &stderr
}

/// The `generate` run of the smoke model on `data` into `out` that these tests label.
fn generate_args<'a>(data: &'a Path, out: &'a Path) -> [&'a str; 11] {
    [
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "generate",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        out.to_str().unwrap(),
        "--max-tokens",
        "96",
    ]
}

/// A generate run over the problems, with half of the gold answers replaced by what the run
/// answered, so that both label classes occur.
fn generate(dir: &Path) -> std::path::PathBuf {
    let data = dir.join("problems.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let out = dir.join("gen");
    ok(&generate_args(&data, &out));
    let results = read_jsonl(&out.join("results.jsonl"));
    let rewritten: Vec<String> = results
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            if let (0, Some(pred)) = (i % 2, r["pred"].as_str().map(str::to_owned)) {
                r["gt"] = Value::String(pred);
                r["correct"] = Value::Bool(true);
            }
            serde_json::to_string(&r).unwrap()
        })
        .collect();
    std::fs::write(out.join("results.jsonl"), rewritten.join("\n") + "\n").unwrap();
    out
}

#[test]
fn labels_heads_and_the_value_head_prm_work_end_to_end() {
    let tmp = tempfile::tempdir().unwrap();
    let run = generate(tmp.path());
    let run_arg = run.to_str().unwrap();
    ok(&[
        "label",
        "--config",
        "configs/smoke.toml",
        "--run",
        run_arg,
        "--rollout-max-tokens",
        "96",
    ]);
    let steps = read_jsonl(&run.join("steps.jsonl"));
    let labels = read_jsonl(&run.join("labels.jsonl"));
    let results = read_jsonl(&run.join("results.jsonl"));
    assert_eq!(labels.len(), steps.len(), "one label line per record");
    for (s, l) in steps.iter().zip(&labels) {
        assert_eq!((&s["idx"], &s["step_index"]), (&l["idx"], &l["step_index"]));
        for key in [
            "draft_hidden",
            "target_hidden_at_draft",
            "target_hidden_at_target",
        ] {
            // 576 f32s in base64.
            assert_eq!(l[key].as_str().unwrap().len(), 3072, "{key}");
        }
        let judge = l["draft_judge"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&judge));
    }
    // The last record's chosen step ends the generate solution, so its rollout is that solution
    // and its label is the solution's grade.
    for r in &results {
        let idx = &r["idx"];
        let last = steps
            .iter()
            .zip(&labels)
            .rfind(|(s, _)| &s["idx"] == idx)
            .unwrap();
        let chose_target =
            last.0["target_prm_score"].as_f64().unwrap() > last.0["prm_score"].as_f64().unwrap();
        let chosen_label = if chose_target {
            &last.1["target_correct"]
        } else {
            &last.1["draft_correct"]
        };
        let trace = r["steps"].as_array().unwrap();
        let ended = !trace.last().unwrap()["text"]
            .as_str()
            .unwrap()
            .ends_with("\n\n");
        if ended {
            assert_eq!(chosen_label, &r["correct"], "problem {idx}");
        }
    }
    // Labelling again has nothing to do and changes nothing.
    let before = std::fs::read_to_string(run.join("labels.jsonl")).unwrap();
    let again = ok(&["label", "--config", "configs/smoke.toml", "--run", run_arg]);
    assert!(again.contains("0 to label"), "{again}");
    assert_eq!(
        std::fs::read_to_string(run.join("labels.jsonl")).unwrap(),
        before
    );

    let heads = tmp.path().join("heads");
    let report = ok(&[
        "train-heads",
        "--run",
        run_arg,
        "--out-dir",
        heads.to_str().unwrap(),
        "--held-out",
        "0.34",
        "--target-model",
        "SmolLM2-135M-Instruct.Q4_1.gguf",
    ]);
    for name in [
        "the records' PRM",
        "target-judge",
        "value head",
        "draft confidence",
    ] {
        assert!(report.contains(name), "{name} missing from:\n{report}");
    }
    let head: Value =
        serde_json::from_str(&std::fs::read_to_string(heads.join("value-head.json")).unwrap())
            .unwrap();
    assert_eq!(head["dim"], 576);
    assert_eq!(head["reads"], "target-hidden");
    // The head a retrain would replace, scored on the same held-out steps.
    let compared = tmp.path().join("compared");
    let report = ok(&[
        "train-heads",
        "--run",
        run_arg,
        "--out-dir",
        compared.to_str().unwrap(),
        "--held-out",
        "0.34",
        "--compare-head",
        heads.join("value-head.json").to_str().unwrap(),
    ]);
    assert!(
        report.contains("value head value-head (compared)")
            && report.contains("RSD on value head value-head (compared)"),
        "{report}"
    );
    // Several runs train together, but never over the same problem twice.
    let twice = common::arbitrage(&[
        "train-heads",
        "--run",
        &format!("{run_arg},{run_arg}"),
        "--out-dir",
        heads.to_str().unwrap(),
    ]);
    assert!(!twice.status.success());
    let err = String::from_utf8_lossy(&twice.stderr);
    assert!(err.contains("is in both"), "{err}");

    // The trained head scores steps in an rsd run.
    let data = tmp.path().join("problems.jsonl");
    let out = tmp.path().join("rsd");
    let head_path = heads.join("value-head.json");
    ok(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "rsd",
        "--threshold",
        "0.5",
        "--prm",
        "value-head",
        "--prm-head",
        head_path.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--limit",
        "2",
        "--output-dir",
        out.to_str().unwrap(),
    ]);
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(
        metrics["prm"]
            .as_str()
            .unwrap_or_default()
            .contains("value-head"),
        "{metrics}"
    );
    for r in read_jsonl(&out.join("results.jsonl")) {
        for s in r["steps"].as_array().unwrap() {
            let score = s["prm_score"].as_f64().unwrap();
            assert!(score > 0.0 && score < 1.0, "{score}");
        }
    }

    // A router that reads this head's scores names the head's weights: the same head at another
    // path serves it, and another head at that path is refused.
    let mut router = common::smoke_router_reading_prm(metrics["prm"].as_str().unwrap());
    router["prm_fingerprint"] = HeadFile::load(&head_path).unwrap().fingerprint().into();
    let router_path = tmp.path().join("router-reads-prm.json");
    std::fs::write(&router_path, router.to_string()).unwrap();
    let moved = tmp.path().join("elsewhere").join("head.json");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::copy(&head_path, &moved).unwrap();
    let run_router = |out: &str| {
        common::arbitrage(&[
            "run",
            "--config",
            "configs/smoke.toml",
            "--run-type",
            "router",
            "--router",
            router_path.to_str().unwrap(),
            "--threshold",
            "0.5",
            "--prm",
            "value-head",
            "--prm-head",
            moved.to_str().unwrap(),
            "--dataset",
            data.to_str().unwrap(),
            "--limit",
            "1",
            "--output-dir",
            tmp.path().join(out).to_str().unwrap(),
        ])
    };
    let output = run_router("router-moved");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut retrained: Value =
        serde_json::from_str(&std::fs::read_to_string(&head_path).unwrap()).unwrap();
    retrained["bias"] = (retrained["bias"].as_f64().unwrap() + 0.5).into();
    std::fs::write(&moved, retrained.to_string()).unwrap();
    let output = run_router("router-retrained");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("reads the scores of the PRM") && stderr.contains("[weights "),
        "{stderr}"
    );
}

#[test]
fn a_run_being_written_is_neither_labelled_nor_resumed_meanwhile() {
    let tmp = tempfile::tempdir().unwrap();
    let run = generate(tmp.path());
    // This process holds the run, as a generate run still writing it would.
    let held = arbitrage::eval::run::lock_dir(&run).unwrap();
    let pid = std::process::id();
    let refused = |args: &[&str]| {
        let output = common::arbitrage(args);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains("being written by another arbitrage process")
                && stderr.contains(&format!("(pid {pid})")),
            "{stderr}"
        );
    };
    let run_arg = run.to_str().unwrap();
    refused(&["label", "--config", "configs/smoke.toml", "--run", run_arg]);
    refused(&[
        "label",
        "--config",
        "configs/smoke.toml",
        "--run",
        run_arg,
        "--states-only",
    ]);
    assert!(!run.join("labels.jsonl").exists());
    refused(&generate_args(&tmp.path().join("problems.jsonl"), &run));
    // Once it is let go, labelling goes ahead.
    drop(held);
    ok(&[
        "label",
        "--config",
        "configs/smoke.toml",
        "--run",
        run_arg,
        "--limit",
        "1",
    ]);
    assert!(run.join("labels.jsonl").exists());
}

#[test]
fn labelling_several_problems_at_once_gives_the_same_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let run = generate(tmp.path());
    let copy = tmp.path().join("gen-together");
    std::fs::create_dir(&copy).unwrap();
    for file in ["steps.jsonl", "results.jsonl", "metrics.json"] {
        std::fs::copy(run.join(file), copy.join(file)).unwrap();
    }
    let label = |dir: &Path, concurrency: &str| {
        ok(&[
            "label",
            "--config",
            "configs/smoke.toml",
            "--run",
            dir.to_str().unwrap(),
            "--rollout-max-tokens",
            "96",
            "--concurrency",
            concurrency,
        ])
    };
    label(&run, "1");
    label(&copy, "3");
    let by_step = |dir: &Path| {
        let mut lines = read_jsonl(&dir.join("labels.jsonl"));
        lines.sort_by_key(|l| (l["idx"].as_u64(), l["step_index"].as_u64()));
        lines
    };
    let (alone, together) = (by_step(&run), by_step(&copy));
    assert_eq!(alone.len(), read_jsonl(&run.join("steps.jsonl")).len());
    assert_eq!(alone, together);
}

#[test]
fn a_head_for_another_model_is_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let head = tmp.path().join("head.json");
    let dim = 8;
    let text = serde_json::json!({
        "format": "arbitrage-linear-head", "version": 1, "reads": "target-hidden",
        "model": "other.gguf", "dim": dim, "mean": vec![0.0; dim], "scale": vec![1.0; dim],
        "weights": vec![0.1; dim], "bias": 0.0
    });
    std::fs::write(&head, text.to_string()).unwrap();
    let data = tmp.path().join("problems.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "rsd",
        "--prm",
        "value-head",
        "--prm-head",
        head.to_str().unwrap(),
        "--dataset",
        data.to_str().unwrap(),
        "--limit",
        "1",
        "--output-dir",
        tmp.path().join("out").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("trained on 8-value hidden states, but"),
        "{stderr}"
    );
    // A missing head file names itself.
    let output = common::arbitrage(&[
        "run",
        "--config",
        "configs/smoke.toml",
        "--run-type",
        "rsd",
        "--prm",
        "value-head",
        "--prm-head",
        "no/such/head.json",
        "--dataset",
        data.to_str().unwrap(),
        "--output-dir",
        tmp.path().join("out2").to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("no/such/head.json"), "{stderr}");
}

/// A hidden-state router file for the smoke model's 576-value states, with weights that make
/// ŷ depend on the state.
fn hidden_state_router(dim: usize) -> Value {
    serde_json::json!({
        "format": "arbitrage-router", "version": 1, "kind": "hidden-state",
        "features": ["draft_hidden"], "mean": vec![0.0; dim], "scale": vec![1.0; dim],
        "weights": (0..dim).map(|i| if i % 2 == 0 { 0.05 } else { -0.05 }).collect::<Vec<f64>>(),
        "bias": 0.0, "default_threshold": 0.5,
        "budget": [{"target_fraction": 0.5, "threshold": 0.5}]
    })
}

#[test]
fn a_hidden_state_router_routes_on_the_drafts_state() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("problems.jsonl");
    std::fs::write(&data, PROBLEMS).unwrap();
    let router = tmp.path().join("router.json");
    std::fs::write(&router, hidden_state_router(576).to_string()).unwrap();
    let out = tmp.path().join("out");
    let run = |router: &Path, out: &Path| {
        common::arbitrage(&[
            "run",
            "--config",
            "configs/smoke.toml",
            "--run-type",
            "router",
            "--router",
            router.to_str().unwrap(),
            "--threshold",
            "0.5",
            "--dataset",
            data.to_str().unwrap(),
            "--limit",
            "2",
            "--max-tokens",
            "64",
            "--output-dir",
            out.to_str().unwrap(),
        ])
    };
    let output = run(&router, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut scores = Vec::new();
    for r in read_jsonl(&out.join("results.jsonl")) {
        for s in r["steps"].as_array().unwrap() {
            let y = s["router_score"].as_f64().unwrap();
            assert!(y > 0.0 && y < 1.0, "{y}");
            // The rule: escalated exactly when ŷ ≥ 0.5.
            assert_eq!(s["model"] == "target", y >= 0.5, "{s}");
            scores.push(y);
        }
    }
    assert!(
        scores.iter().any(|&y| (y - scores[0]).abs() > 1e-4),
        "ŷ does not depend on the step: {scores:?}"
    );
    let metrics: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("metrics.json")).unwrap()).unwrap();
    assert!(
        metrics["router"]
            .as_str()
            .unwrap_or_default()
            .contains("hidden-state router"),
        "{metrics}"
    );

    // A router trained on another model's states is refused before anything runs.
    std::fs::write(&router, hidden_state_router(896).to_string()).unwrap();
    let output = run(&router, &tmp.path().join("out2"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("trained on 896-value hidden states, but"),
        "{stderr}"
    );
}

/// Plain greedy stepping from `steps` within the spec's budgets, without any known steps.
fn greedy_steps(
    model: &dyn StepGenerator,
    spec: &RolloutSpec<'_>,
    mut steps: Vec<String>,
) -> Vec<String> {
    let mut used = 0u64;
    while used < spec.max_tokens && steps.len() < spec.max_steps {
        let mut o = spec.options.clone();
        o.max_tokens = o.max_tokens.min((spec.max_tokens - used).max(1) as u32);
        let transcript = Transcript {
            problem: spec.problem,
            question: spec.question,
            prompt: spec.prompt,
            steps: &steps,
        };
        let step = model.generate_step(&transcript, &o).unwrap();
        used += step.usage.generated_tokens;
        let finish = step.finish;
        steps.push(step.text);
        if finish != FinishReason::Separator {
            break;
        }
    }
    steps
}

/// A rollout that leaves the known lists verifies the steps that followed an alike step, and
/// writes exactly what plain greedy stepping writes. (The proposals here are the greedy steps
/// themselves, keyed under a reworded first step, so they are all kept unless the batched read
/// meets a near-tie, which this problem does not.)
#[test]
fn a_rollout_with_proposals_writes_the_plain_greedy_continuation() {
    let model = common::smoke_model();
    let question = "Tom has 3 apples and buys 4 more. How many apples does he have?";
    let prompt = PromptTemplate::Qwen25MathCot.render(question);
    let options = StepOptions {
        separator: Some("\n".into()),
        max_tokens: 48,
        stop_loops: true,
        sampling: Sampling::GREEDY,
    };
    let spec = |problem| RolloutSpec {
        problem,
        question,
        prompt: &prompt,
        options: &options,
        max_tokens: 96,
        max_steps: 6,
    };
    let first = "Tom starts with 3 apples.\n".to_owned();
    let plain = greedy_steps(&model, &spec(1), vec![first.clone()]);
    assert!(plain.len() > 2, "{plain:?}");

    let mut known = KnownSteps::default();
    let mut reworded = vec!["Tom starts with 3 apples!\n".to_owned()];
    for step in &plain[1..] {
        known.insert(reworded.clone(), step.clone());
        reworded.push(format!("{step} "));
    }
    let rollout = roll_out(&model, &spec(2), vec![first], &mut known).unwrap();
    assert_eq!(rollout.text, plain.concat());
    assert!(
        rollout.accepted_tokens > 0 && rollout.accepted_tokens == rollout.written_tokens,
        "{rollout:?}"
    );
}

/// A rollout whose step falls into a loop ends there, unfinished (so wrong), without writing the
/// rest of its budget; the looping step is not kept for reuse.
#[test]
fn a_rollout_that_falls_into_a_loop_ends_unfinished_at_the_loop() {
    let model = common::smoke_model();
    let prompt = "Write the list again and again:\nx = 0\nx = 0\nx = 0\nx = 0\n";
    let options = StepOptions {
        separator: Some("\n\n".into()),
        max_tokens: 200,
        stop_loops: true,
        sampling: Sampling::GREEDY,
    };
    let spec = RolloutSpec {
        problem: 1,
        question: "",
        prompt,
        options: &options,
        max_tokens: 400,
        max_steps: 6,
    };
    let mut known = KnownSteps::default();
    let rollout = roll_out(&model, &spec, Vec::new(), &mut known).unwrap();
    assert!(!rollout.finished, "{rollout:?}");
    assert!(rollout.written_tokens < 200, "{rollout:?}");
    assert!(
        arbitrage::engines::repetition::cut(&rollout.text).is_some(),
        "{rollout:?}"
    );
    assert!(known.get(&[]).is_none());
}

/// Labels written without hidden states get them later without a rollout, the same as a run that
/// read them at once; an interrupted pass resumes from `labels.jsonl.reads`.
#[test]
fn states_read_afterwards_equal_states_read_with_the_labels() {
    let tmp = tempfile::tempdir().unwrap();
    let whole = generate(tmp.path());
    let later = tmp.path().join("later");
    std::fs::create_dir_all(&later).unwrap();
    for file in ["steps.jsonl", "results.jsonl", "metrics.json"] {
        std::fs::copy(whole.join(file), later.join(file)).unwrap();
    }
    let label = |run: &Path, extra: &[&str]| {
        let mut args = vec![
            "label",
            "--config",
            "configs/smoke.toml",
            "--run",
            run.to_str().unwrap(),
            "--rollout-max-tokens",
            "96",
        ];
        args.extend_from_slice(extra);
        ok(&args)
    };
    label(&whole, &[]);
    label(&later, &["--no-hidden", "--no-judge"]);
    let bare = read_jsonl(&later.join("labels.jsonl"));
    assert!(bare.iter().all(|l| l["target_hidden_at_draft"].is_null()));
    // An interrupted pass left the first problem's completed lines behind: they are taken as
    // they are, and one more problem is read now (--limit 1), the rest on a later call.
    let full = read_jsonl(&whole.join("labels.jsonl"));
    let first = &full[0]["idx"];
    let problems: std::collections::BTreeSet<String> =
        full.iter().map(|l| l["idx"].to_string()).collect();
    let partial: Vec<String> = full
        .iter()
        .filter(|l| &l["idx"] == first)
        .map(|l| serde_json::to_string(l).unwrap())
        .collect();
    std::fs::write(later.join("labels.jsonl.reads"), partial.join("\n") + "\n").unwrap();
    let report = label(&later, &["--states-only", "--limit", "1"]);
    assert!(
        report.contains(&format!("{} lack reads", problems.len() - 1)),
        "{report}"
    );
    let with_states = |labels: &[Value]| {
        labels
            .iter()
            .filter(|l| !l["target_hidden_at_draft"].is_null())
            .map(|l| l["idx"].to_string())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    };
    assert_eq!(with_states(&read_jsonl(&later.join("labels.jsonl"))), 2);
    assert!(!later.join("labels.jsonl.reads").exists());
    let report = label(&later, &["--states-only"]);
    assert!(report.contains("now carries the reads"), "{report}");
    assert!(!later.join("labels.jsonl.reads").exists());
    assert_eq!(
        read_jsonl(&later.join("labels.jsonl")),
        read_jsonl(&whole.join("labels.jsonl"))
    );
    // Nothing left to read: a third call changes nothing.
    let again = label(&later, &["--states-only"]);
    assert!(again.contains("0 lack reads"), "{again}");
}
