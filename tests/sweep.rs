//! `arbitrage sweep` and `arbitrage report` end to end with the smoke model: one row per grid point
//! matching that point's metrics, a repeated sweep replaying every step from the cache with the same
//! text, and a report page that renders in headless Chromium without console errors.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::Value;

const PROBLEMS: &str = r#"{"question": "What is 12 + 30?", "answer": "42"}
{"question": "Tom has 3 apples and buys 4 more. How many apples does he have?", "answer": "7"}
"#;

const POINTS: [&str; 5] = ["draft", "target", "rsd-t0.3", "rsd-t0.9", "router-t0.5"];

struct Sweep {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    out: PathBuf,
    stderr: String,
}

/// The grid of `POINTS`.
const GRID: [&str; 6] = [
    "--run-types",
    "rsd,router",
    "--rsd-thresholds",
    "0.3,0.9",
    "--router-thresholds",
    "0.5",
];

/// A smoke-model sweep of `grid` over `data` into `out`, with further sweep `options`.
fn sweep_args<'a>(
    data: &'a Path,
    out: &'a Path,
    grid: &[&'a str],
    options: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "sweep",
        "--config",
        "configs/smoke.toml",
        "--dataset",
        data.to_str().unwrap(),
    ];
    args.extend(grid);
    args.extend(["--max-tokens", "96", "--output-dir", out.to_str().unwrap()]);
    args.extend(options);
    // Options after `--` reach every point.
    args.extend(["--", "--max-steps", "3"]);
    args
}

fn ok(output: Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "{stderr}");
    stderr
}

/// One sweep over two problems, shared by the tests that only read it.
fn first_sweep() -> &'static Sweep {
    static SWEEP: OnceLock<Sweep> = OnceLock::new();
    SWEEP.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let data = tmp.path().join("problems.jsonl");
        std::fs::write(&data, PROBLEMS).unwrap();
        let out = tmp.path().join("sweep");
        let stderr = ok(common::arbitrage(&sweep_args(&data, &out, &GRID, &[])));
        Sweep {
            _tmp: tmp,
            data,
            out,
            stderr,
        }
    })
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| l.split(',').map(str::to_owned).collect())
        .collect()
}

fn metrics(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("metrics.json")).unwrap()).unwrap()
}

fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// Each result's problem index and step texts.
fn step_texts(results: &[Value]) -> Vec<(u64, Vec<String>)> {
    results
        .iter()
        .map(|r| {
            let steps = r["steps"].as_array().unwrap();
            (
                r["idx"].as_u64().unwrap(),
                steps
                    .iter()
                    .map(|s| s["text"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect()
}

/// "step cache FILE: H calls replayed, M computed" lines printed by the points.
fn cache_lines(stderr: &str) -> Vec<(u64, u64)> {
    stderr
        .lines()
        .filter(|l| l.starts_with("step cache "))
        .map(|l| {
            let numbers: Vec<u64> = l
                .rsplit(':')
                .next()
                .unwrap()
                .split(|c: char| !c.is_ascii_digit())
                .filter_map(|w| w.parse().ok())
                .collect();
            (numbers[0], numbers[1])
        })
        .collect()
}

#[test]
fn sweep_writes_one_row_per_point_that_matches_its_metrics() {
    let s = first_sweep();
    let rows = csv_rows(&s.out.join("sweep.csv"));
    let header = &rows[0];
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let names: Vec<&str> = rows[1..].iter().map(|r| r[col("point")].as_str()).collect();
    assert_eq!(names, POINTS);
    for row in &rows[1..] {
        let m = metrics(&s.out.join(&row[col("point")]));
        assert_eq!(row[col("run_type")], m["run_type"].as_str().unwrap());
        assert_eq!(row[col("n")], "2");
        for r in results(&s.out.join(&row[col("point")])) {
            assert!(
                r["steps"].as_array().unwrap().len() <= 3,
                "--max-steps 3 reached the run"
            );
        }
        for key in ["accuracy", "mean_latency_s", "target_step_fraction"] {
            let v: f64 = row[col(key)].parse().unwrap();
            assert!((v - m[key].as_f64().unwrap()).abs() < 1e-9, "{key}");
        }
        if m["run_type"] == "rsd" || m["run_type"] == "router" {
            let t: f64 = row[col("threshold")].parse().unwrap();
            assert_eq!(t, m["threshold"].as_f64().unwrap());
        } else {
            assert_eq!(row[col("threshold")], "");
        }
    }
    // Every point read the cache, and later points found steps earlier ones had computed
    // (every rule proposes the same first draft step).
    let lines = cache_lines(&s.stderr);
    assert_eq!(lines.len(), POINTS.len(), "{}", s.stderr);
    assert!(lines.iter().map(|l| l.0).sum::<u64>() > 0, "{}", s.stderr);
}

#[test]
fn a_repeated_sweep_replays_every_step_with_identical_text() {
    let s = first_sweep();
    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("again");
    let cache = s.out.join("step-cache.redb");
    let copy = tmp.path().join("cache.redb");
    std::fs::copy(&cache, &copy).unwrap();
    let args = sweep_args(&s.data, &again, &GRID, &["--cache", copy.to_str().unwrap()]);
    let stderr = ok(common::arbitrage(&args));
    let lines = cache_lines(&stderr);
    assert_eq!(lines.len(), POINTS.len(), "{stderr}");
    assert!(
        lines
            .iter()
            .all(|&(hits, computed)| hits > 0 && computed == 0),
        "{stderr}"
    );
    for point in POINTS {
        let before = results(&s.out.join(point));
        let after = results(&again.join(point));
        assert_eq!(step_texts(&before), step_texts(&after), "{point}");
        // Latency is reported at the cost measured the first time: all of it replayed.
        let m = metrics(&again.join(point));
        let latency = m["mean_latency_s"].as_f64().unwrap() * 2.0;
        let replayed = m["replayed_latency_s"].as_f64().unwrap();
        assert!(replayed > 0.0 && replayed <= latency, "{point}: {m}");
        assert!(replayed > 0.9 * latency, "{point}: {replayed} of {latency}");
    }
}

#[test]
fn a_sweep_in_rounds_runs_every_point_on_each_slice_in_turn() {
    let s = first_sweep();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("rounds");
    let stderr = ok(common::arbitrage(&sweep_args(
        &s.data,
        &out,
        &["--run-types", "router", "--router-thresholds", "0.5"],
        // Only the first round starts a point afresh; the second must add to it.
        &["--no-cache", "--rounds", "2", "--overwrite"],
    )));
    let first = stderr.find("round 1/2: problems 0..1").expect(&stderr);
    let second = stderr.find("round 2/2: problems 1..2").expect(&stderr);
    // Every point ran in the first round before any ran in the second.
    let runs: Vec<usize> = stderr
        .match_indices("] router-t0.5")
        .map(|(i, _)| i)
        .collect();
    assert_eq!(runs.len(), 2, "{stderr}");
    assert!(
        first < runs[0] && runs[0] < second && second < runs[1],
        "{stderr}"
    );
    let rows = csv_rows(&out.join("sweep.csv"));
    assert_eq!(rows.len(), 1 + 3, "header and three points: {rows:?}");
    for point in ["draft", "target", "router-t0.5"] {
        let rs = results(&out.join(point));
        let idx: Vec<u64> = rs.iter().map(|r| r["idx"].as_u64().unwrap()).collect();
        assert_eq!(idx, [0, 1], "{point}");
        assert_eq!(metrics(&out.join(point))["n"], 2, "{point}");
    }
    // Greedy baselines write the same text whichever way the problems were split.
    for point in ["draft", "target"] {
        assert_eq!(
            step_texts(&results(&out.join(point))),
            step_texts(&results(&s.out.join(point))),
            "{point}"
        );
    }
}

#[test]
fn the_points_of_a_sweep_decide_exactly_what_separate_runs_decide() {
    // The sweep runs its points in its own process on shared models; separate `arbitrage run`s
    // load their own. Without the step cache both compute every step.
    let s = first_sweep();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("sweep");
    ok(common::arbitrage(&sweep_args(
        &s.data,
        &out,
        &[
            "--run-types",
            "rsd,router",
            "--rsd-thresholds",
            "0.3",
            "--router-thresholds",
            "0.5",
            "--no-baselines",
        ],
        &["--no-cache"],
    )));
    for (point, run_type, threshold) in
        [("rsd-t0.3", "rsd", "0.3"), ("router-t0.5", "router", "0.5")]
    {
        let alone = tmp.path().join(format!("alone-{point}"));
        ok(common::arbitrage(&[
            "run",
            "--config",
            "configs/smoke.toml",
            "--dataset",
            s.data.to_str().unwrap(),
            "--run-type",
            run_type,
            "--threshold",
            threshold,
            "--max-tokens",
            "96",
            "--max-steps",
            "3",
            "--output-dir",
            alone.to_str().unwrap(),
        ]));
        let swept = common::decisions(&results(&out.join(point)));
        assert_eq!(swept.len(), 2, "{point}");
        assert_eq!(swept, common::decisions(&results(&alone)), "{point}");
    }
}

#[test]
fn bad_grids_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("never");
    for (args, needle) in [
        (vec!["--run-types", "rsd", "--thresholds", "1.5"], "1.5"),
        (vec!["--run-types", "draft", "--thresholds", "0.5"], "draft"),
        (vec!["--run-types", "rsd"], "--thresholds"),
        // A range past the dataset is refused before anything is written.
        (
            vec!["--thresholds", "0.5", "--rounds", "2", "--start", "5000"],
            "--start 5000 is past the end",
        ),
    ] {
        let mut all = vec!["sweep", "--dataset", "gsm8k", "--output-dir"];
        all.push(out.to_str().unwrap());
        all.extend(args);
        let output = common::arbitrage(&all);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains(needle), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!out.exists());
    }
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {name}")])
                .output()
                .ok()?;
            found
                .status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&found.stdout).trim()))
        })
}

#[test]
fn report_draws_plots_and_a_page_that_renders_without_console_errors() {
    let s = first_sweep();
    let output = common::arbitrage(&["report", s.out.to_str().unwrap()]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ok(output);
    // The rules side by side at the router's budget (no oracle ran here).
    let md = std::fs::read_to_string(s.out.join("report.md")).unwrap();
    assert!(
        md.contains("| target-step fraction | rsd | router | oracle | oracle ≥ router ≥ rsd |"),
        "{md}"
    );
    assert!(stdout.contains("oracle –"), "{stdout}");
    for stem in ["accuracy-latency", "accuracy-target-fraction"] {
        let png = std::fs::read(s.out.join(format!("{stem}.png"))).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let svg = std::fs::read_to_string(s.out.join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains("<svg") && svg.contains("rsd") && svg.contains("router"));
    }
    let page = s.out.join("report.html");
    assert!(page.is_file());

    let Some(browser) = chromium() else {
        if std::env::var_os("ARBITRAGE_SKIP_BROWSER").is_some() {
            eprintln!("skipping the browser check: ARBITRAGE_SKIP_BROWSER is set");
            return;
        }
        panic!(
            "chromium is needed to check the report page (apt-get install chromium, which \
             scripts/install-deps.sh does); set ARBITRAGE_SKIP_BROWSER=1 to skip"
        );
    };
    let profile = tempfile::tempdir().unwrap();
    let output = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&output.stdout);
    let log = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages: {console:#?}");
    // The script ran: it marked the page and drew the first trace, one box per step.
    assert!(dom.contains("data-ready=\"yes\""), "{dom}");
    let first = &results(&s.out.join(POINTS[0]))[0];
    let steps = first["steps"].as_array().unwrap().len();
    assert_eq!(dom.matches("class=\"step draft\"").count(), steps, "{dom}");
}

/// Seconds the cost table's `costs` (one model's entry) charge for a role's work in a record.
fn priced(costs: &Value, r: &Value, role: &str) -> f64 {
    let f = |k: &str| costs[k].as_f64().unwrap();
    let work = |k: &str| r["work"][role][k].as_u64().unwrap() as f64;
    let written = r["tokens"]
        .get(role)
        .map_or(0.0, |v| v.as_u64().unwrap() as f64);
    let read = r["prefill_tokens"][role].as_u64().unwrap() as f64;
    let mean_depth = if written > 0.0 {
        work("written_depth") / written
    } else {
        0.0
    };
    (written * f("decode_ms")
        + work("written_depth") * f("decode_ms_per_depth")
        + work("one_token_reads") * (f("decode_ms") + f("decode_ms_per_depth") * mean_depth)
        + work("read_calls") * f("read_call_ms")
        + (read - work("one_token_reads")) * f("read_token_ms")
        + work("proposal_calls") * f("proposal_ms"))
        / 1000.0
}

#[test]
fn report_with_a_cost_table_models_each_point_from_its_counts() {
    let s = first_sweep();
    // A copy: the report test writes its page into the shared sweep at the same time.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("sweep");
    std::fs::create_dir(&dir).unwrap();
    std::fs::copy(s.out.join("sweep.csv"), dir.join("sweep.csv")).unwrap();
    for point in POINTS {
        std::fs::create_dir(dir.join(point)).unwrap();
        for file in ["metrics.json", "results.jsonl"] {
            std::fs::copy(s.out.join(point).join(file), dir.join(point).join(file)).unwrap();
        }
    }
    let costs_path = tmp.path().join("costs.json");
    let costs = costs_path.to_str().unwrap();
    ok(common::arbitrage(&[
        "bench",
        "--config",
        "configs/smoke.toml",
        "--costs",
        costs,
        "--depth",
        "32",
        "--reps",
        "1",
        "--decode-tokens",
        "8",
        "--read-sizes",
        "4,16",
    ]));
    let table: Value =
        serde_json::from_str(&std::fs::read_to_string(&costs_path).unwrap()).unwrap();
    for model in ["draft", "target", "target_hidden"] {
        let c = &table[model];
        assert!(c["decode_ms"].as_f64().unwrap() > 0.0, "{table}");
        assert_eq!(c["reads"].as_array().unwrap().len(), 2, "{table}");
        assert_eq!(c["decodes"].as_array().unwrap().len(), 2, "{table}");
    }

    // The same table twice: averaged, it prices as itself.
    let output = common::arbitrage(&[
        "report",
        dir.to_str().unwrap(),
        "--costs",
        costs,
        "--costs",
        costs,
    ]);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    ok(output);
    assert!(
        std::fs::read_to_string(dir.join("report.md"))
            .unwrap()
            .starts_with("Latency: **modelled**"),
    );
    assert!(
        std::fs::read_to_string(dir.join("report.md"))
            .unwrap()
            .contains(", averaged)"),
    );
    for point in POINTS {
        let records = results(&dir.join(point));
        let mut expected = 0.0;
        for r in &records {
            let work = |role: &str, k: &str| r["work"][role][k].as_u64().unwrap();
            // Every read is counted: the stand-in PRM reads once per step it scores.
            let scored = r["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s.get("prm_score").is_some_and(|v| !v.is_null()))
                .count() as u64;
            assert_eq!(
                work("prm", "read_calls") + work("prm", "one_token_reads"),
                scored,
                "{point}: {r}"
            );
            for role in ["draft", "target"] {
                let written = r["tokens"][role].as_u64().unwrap();
                if written > 0 {
                    // Tokens are written after the prompt: deeper than one token on average.
                    assert!(work(role, "written_depth") > written, "{point}: {r}");
                }
            }
            // Only a step written in place of the draft's verifies a proposal.
            let replaced = r["steps"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| {
                    s["model"] == "target"
                        && s.get("rejected_draft_text").is_some_and(|v| !v.is_null())
                })
                .count() as u64;
            assert!(work("target", "proposal_calls") <= replaced, "{point}: {r}");
            // The smoke config's PRM is the target-logprob stand-in: everything is priced on
            // the plain models, the PRM's reads on the target.
            expected += priced(&table["draft"], r, "draft")
                + priced(&table["target"], r, "target")
                + priced(&table["target"], r, "prm");
        }
        expected /= records.len() as f64;
        // "point  in-flight  measured  modelled ...": the modelled mean, in seconds.
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(point))
            .unwrap_or_else(|| panic!("no line for {point}: {stdout}"));
        let modelled: f64 = line
            .split_whitespace()
            .nth(3)
            .unwrap()
            .trim_end_matches('s')
            .parse()
            .unwrap();
        assert!(
            (modelled - expected).abs() < 0.006,
            "{point}: printed {modelled}, computed {expected}: {stdout}"
        );
    }
}
