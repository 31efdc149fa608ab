//! `scripts/timing-guard.py contended`: which problems of a sweep run in rounds must be re-timed,
//! from the guard's samples. The sweep is two points, `a` and `b`, each given problems 0–1 in the
//! first round and problem 2 in the second.

use std::path::Path;
use std::process::Command;

/// One guard sample: each point's count of written rows, other work's CPU, and the pause flag.
fn sample(a: usize, b: Option<usize>, foreign: u32, paused: bool) -> String {
    let done = match b {
        Some(b) => format!(r#"{{"a": {a}, "b": {b}}}"#),
        None => format!(r#"{{"a": {a}}}"#),
    };
    format!(
        r#"{{"t": 0, "sweep_cpu": 199, "foreign_cpu": {foreign}, "paused": {paused}, "done": {done}}}"#
    )
}

/// The first session's samples up to `b`'s first round, with a pause while `b` computed its
/// problem 1.
fn first_round() -> Vec<String> {
    vec![
        sample(0, None, 0, false),    // a: problem 0
        sample(1, None, 0, false),    // a: problem 1
        sample(2, None, 0, false),    // a's round done; b starts
        sample(2, Some(0), 0, false), // b: problem 0
        sample(2, Some(1), 0, false), // b: problem 1
        sample(2, Some(1), 90, true),
        sample(2, Some(2), 0, false), // b's round done; a: problem 2
    ]
}

/// The second session's samples: a's problem 2 (started again), then b's.
fn second_round() -> Vec<String> {
    vec![
        sample(2, Some(2), 0, false),
        sample(3, Some(2), 0, false),
        sample(3, Some(2), 0, false), // b: problem 2
        sample(3, Some(3), 0, false),
    ]
}

/// `contended` over a sweep folder holding both points' rows and the given session logs; its
/// lines, `point idx...`.
fn contended(sessions: &[Vec<String>], options: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    for point in ["a", "b"] {
        std::fs::create_dir(dir.path().join(point)).unwrap();
        std::fs::write(
            dir.path().join(point).join("results.jsonl"),
            "{\"idx\": 0}\n{\"idx\": 1}\n{\"idx\": 2}\n",
        )
        .unwrap();
    }
    let logs: Vec<String> = sessions
        .iter()
        .enumerate()
        .map(|(i, samples)| {
            let path = dir.path().join(format!("guard-{i}.jsonl"));
            std::fs::write(&path, samples.join("\n") + "\n").unwrap();
            path.display().to_string()
        })
        .collect();
    let out = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/timing-guard.py"))
        .arg("contended")
        .arg(dir.path())
        .arg(logs.join(","))
        .args(["a", "b"])
        .args(options)
        .output()
        .expect("python3 runs scripts/timing-guard.py");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn a_pause_marks_only_the_problem_it_stopped() {
    // The pause fell in b's problem 1: a's problem 2, though a still had 2 rows then, is clean.
    assert_eq!(
        contended(&[first_round(), second_round()], &["--no-cache"]),
        "a \nb 1\n"
    );
}

#[test]
fn with_the_step_cache_a_later_point_is_marked_where_it_may_have_replayed() {
    let mut first = first_round();
    first.push(sample(2, Some(2), 30, false)); // other work during a's problem 2, then the stop
    assert_eq!(
        contended(&[first.clone(), second_round()], &["--no-cache"]),
        "a 2\nb 1\n",
        "the stopped attempt's stretch counts with the resumed one"
    );
    assert_eq!(contended(&[first, second_round()], &[]), "a 2\nb 1 2\n");
}

#[test]
fn rows_the_logs_did_not_see_are_marked() {
    // Only the second session's log: every row written before its first sample is unknown.
    assert_eq!(
        contended(&[second_round()], &["--no-cache"]),
        "a 0 1\nb 0 1\n"
    );
}
