//! `scripts/timing-guard.py`: which problems of a sweep run in rounds must be re-timed, from the
//! guard's samples (`contended`), and the re-time itself (`retime`). The sweep is two points, `a`
//! and `b`, each given problems 0–1 in the first round and problem 2 in the second.

use std::path::Path;
use std::process::{Command, Output};

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

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/timing-guard.py")
}

/// A sweep folder whose points `a` and `b` hold rows for problems 0, 1 and 2, in that order.
fn sweep() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for point in ["a", "b"] {
        std::fs::create_dir(dir.path().join(point)).unwrap();
        write_rows(dir.path(), point, &[0, 1, 2]);
    }
    dir
}

fn write_rows(sweep: &Path, point: &str, idx: &[usize]) {
    let rows: String = idx.iter().map(|i| format!("{{\"idx\": {i}}}\n")).collect();
    std::fs::write(sweep.join(point).join("results.jsonl"), rows).unwrap();
}

fn read_idx(sweep: &Path, point: &str) -> Vec<u64> {
    std::fs::read_to_string(sweep.join(point).join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["idx"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// Writes each session's samples to a log in `sweep` and returns their paths, comma-separated.
fn logs(sweep: &Path, name: &str, sessions: &[Vec<String>]) -> String {
    let paths: Vec<String> = sessions
        .iter()
        .enumerate()
        .map(|(i, samples)| {
            let path = sweep.join(format!("{name}-{i}.jsonl"));
            std::fs::write(&path, samples.join("\n") + "\n").unwrap();
            path.display().to_string()
        })
        .collect();
    paths.join(",")
}

fn guard(args: &[&str]) -> Output {
    Command::new("python3")
        .arg(script())
        .args(args)
        .output()
        .expect("python3 runs scripts/timing-guard.py")
}

fn stdout(out: Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `contended` over the sweep with the given session logs; its lines, `point idx...`.
fn contended_in(sweep: &Path, sessions: &[Vec<String>], options: &[&str]) -> String {
    let logs = logs(sweep, "guard", sessions);
    let dir = sweep.display().to_string();
    let mut args = vec!["contended", &dir, &logs, "a", "b"];
    args.extend_from_slice(options);
    stdout(guard(&args))
}

fn contended(sessions: &[Vec<String>], options: &[&str]) -> String {
    contended_in(sweep().path(), sessions, options)
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

#[test]
fn the_sweeps_exit_sample_is_not_other_work() {
    // The sweep's last process exits with its parent: nothing shows its last ticks. Logs made
    // before `sweep_exited` took its whole life off the sweep's use instead.
    let ended = |last: &str| {
        let mut second = second_round();
        second.push(last.to_string());
        second.swap(3, 4); // the exit sample is the one that shows b's problem 2 written
        contended(&[first_round(), second], &["--no-cache"])
    };
    let done = r#"{"a": 3, "b": 3}"#;
    assert_eq!(
        ended(&format!(
            r#"{{"t": 0, "sweep_cpu": -12675, "foreign_cpu": 12710, "paused": false, "done": {done}}}"#
        )),
        "a \nb 1\n"
    );
    assert_eq!(
        ended(&format!(
            r#"{{"t": 0, "sweep_cpu": 0, "foreign_cpu": 150, "paused": false, "sweep_exited": true, "done": {done}}}"#
        )),
        "a \nb 1\n"
    );
    assert_eq!(
        ended(&format!(
            r#"{{"t": 0, "sweep_cpu": 0, "foreign_cpu": 150, "paused": false, "done": {done}}}"#
        )),
        "a \nb 1 2\n",
        "other work in an ordinary sample marks the row"
    );
}

#[test]
fn an_exiting_sweep_is_not_charged_its_whole_life() {
    let out = Command::new("python3")
        .arg("-c")
        .arg(
            "import importlib.util, sys\n\
             spec = importlib.util.spec_from_file_location('guard', sys.argv[1])\n\
             guard = importlib.util.module_from_spec(spec)\n\
             spec.loader.exec_module(guard)\n\
             # pid: (name, own ticks, reaped children's ticks, parent)\n\
             prev = {5: ('bash', 10, 0, 1), 10: ('arbitrage', 5000, 0, 5), 20: ('arbitrage', 300, 0, 5)}\n\
             reaped = {5: ('bash', 10, 5040, 1), 20: ('arbitrage', 400, 0, 5)}\n\
             print(guard.own_ticks(prev, reaped, [20], [10, 20]))\n\
             print(guard.own_ticks(prev, {1: ('init', 0, 0, 0)}, [], [10, 20]))\n",
        )
        .arg(script())
        .output()
        .unwrap();
    // Process 10 exits and its parent reaps it: 100 ticks of 20's, 40 of 10's last; then both
    // exit with their parent: no tick of theirs shows, and the sample says the sweep exited.
    assert_eq!(stdout(out), "(140, False)\n(0, True)\n");
}

/// The first pass of a sweep where a pause fell in a's problem 0 and other work in its problem 2.
fn first_pass() -> Vec<Vec<String>> {
    vec![vec![
        sample(0, None, 90, true),
        sample(1, None, 0, false),
        sample(2, None, 0, false),
        sample(2, Some(1), 0, false),
        sample(2, Some(2), 0, false),
        sample(2, Some(2), 30, false),
        sample(3, Some(2), 0, false),
        sample(3, Some(3), 0, false),
    ]]
}

#[test]
fn a_retime_judges_moved_rows_by_their_second_timing_and_the_rest_by_their_first() {
    let dir = sweep();
    let sweep = dir.path();
    let path = sweep.display().to_string();
    assert_eq!(
        contended_in(sweep, &first_pass(), &["--no-cache"]),
        "a 0 2\nb \n"
    );

    // Re-time a's problem 0 only: its row leaves, the first pass's order is kept on record.
    let list = sweep.join("list.txt");
    std::fs::write(&list, "a 0\nb\n").unwrap();
    stdout(guard(&["retime", &path, list.to_str().unwrap()]));
    assert_eq!(read_idx(sweep, "a"), [1, 2]);
    assert_eq!(read_idx(sweep, "b"), [0, 1, 2]);
    let refused = guard(&[
        "contended",
        &path,
        &logs(sweep, "guard", &first_pass()),
        "a",
        "b",
    ]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("retimed-first-rows.jsonl"));
    // `contended` with the first pass's log and the re-time's samples.
    let judged = |retime: Vec<String>| {
        let retime_log = logs(sweep, "retime", &[retime]);
        contended_in(
            sweep,
            &first_pass(),
            &["--no-cache", "--retime-log", &retime_log],
        )
    };
    assert_eq!(
        judged(vec![sample(2, Some(3), 0, false)]),
        "a 0 2\nb \n",
        "a moved row not run again still needs its timing"
    );

    // The sweep's command runs problem 0 again, appending its row.
    write_rows(sweep, "a", &[1, 2, 0]);
    assert_eq!(
        judged(vec![
            sample(2, Some(3), 0, false),
            sample(3, Some(3), 0, false)
        ]),
        "a 2\nb \n",
        "problem 2 was not moved: its first timing, matched by the first pass's order, stands"
    );
    assert_eq!(
        judged(vec![
            sample(2, Some(3), 90, true),
            sample(3, Some(3), 0, false)
        ]),
        "a 0 2\nb \n"
    );

    let again = guard(&["retime", &path, list.to_str().unwrap()]);
    assert!(
        !again.status.success(),
        "a second move would lose the first pass's order"
    );
    assert_eq!(read_idx(sweep, "a"), [1, 2, 0]);
}

#[test]
fn retime_names_a_problem_the_point_has_no_row_for() {
    let dir = sweep();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "b 1 7\n").unwrap();
    let out = guard(&[
        "retime",
        dir.path().to_str().unwrap(),
        list.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("b has no row for problem(s) 7"));
    assert_eq!(read_idx(dir.path(), "b"), [0, 1, 2], "nothing moved");
}

#[test]
fn a_list_with_nothing_to_move_leaves_the_sweep_as_it_was() {
    let dir = sweep();
    let list = dir.path().join("list.txt");
    std::fs::write(&list, "a \n\nb \n").unwrap();
    let path = dir.path().display().to_string();
    stdout(guard(&["retime", &path, list.to_str().unwrap()]));
    assert!(!dir.path().join("retimed-first-rows.jsonl").exists());
    assert_eq!(
        contended_in(
            dir.path(),
            &[first_round(), second_round()],
            &["--no-cache"]
        ),
        "a \nb 1\n",
        "no record of moved rows: contended needs no re-time log"
    );
}
