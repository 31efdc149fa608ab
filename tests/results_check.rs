//! The tables in docs/results.md that rest on committed outputs are recomputed from those outputs
//! by `scripts/check-results.py` (through `arbitrage report --recompute`): the docs agree with
//! the evidence today, and a figure changed by hand is caught.

use std::path::Path;
use std::process::{Command, Output};

fn check(doc: &Path) -> Output {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    Command::new("python3")
        .arg(repo.join("scripts/check-results.py"))
        .arg("--bin")
        .arg(env!("CARGO_BIN_EXE_arbitrage"))
        .arg(doc)
        .output()
        .expect("python3 runs scripts/check-results.py")
}

fn untar(archive: &Path, into: &Path) {
    let status = Command::new("tar")
        .arg("xzf")
        .arg(archive)
        .arg("-C")
        .arg(into)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar xzf {}", archive.display());
}

/// Every block of `doc` recomputes to what the doc says, and there is at least one.
fn assert_matches(doc: &str) {
    let out = check(&Path::new(env!("CARGO_MANIFEST_DIR")).join(doc));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains(": matches"), "{stdout}");
    assert!(stdout.contains(", 0 differ"), "{stdout}");
}

#[test]
fn the_results_tables_match_their_committed_outputs() {
    assert_matches("docs/results.md");
}

/// docs/engine.md's block prices a batched sweep with cost tables: `report --costs` from the
/// archive, options and all.
#[test]
fn the_engine_doc_s_modelled_table_matches_its_committed_outputs() {
    assert_matches("docs/engine.md");
}

#[test]
fn a_figure_edited_by_hand_is_caught() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(repo.join("docs/results.md")).unwrap();
    let start = text
        .find("<!-- recompute:")
        .expect("docs/results.md has a recompute block");
    // The first accuracy in the block's table, one tenth of a point higher.
    let pct = start
        + text[start..]
            .find("% |")
            .expect("a percentage in the block");
    let digit = pct - 1;
    let bumped = match text.as_bytes()[digit] {
        b'9' => '8',
        d => char::from(d + 1),
    };
    let edited = format!("{}{bumped}{}", &text[..digit], &text[digit + 1..]);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("results.md");
    std::fs::write(&doc, edited).unwrap();

    let out = check(&doc);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("differs from the recomputed report"),
        "{stderr}"
    );
    assert!(stderr.contains(&format!("{}:", doc.display())), "{stderr}");
}

#[test]
fn a_sweep_packed_as_evidence_gives_the_same_table() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    untar(
        &repo.join("evidence/bench/latency-model-2026-12-06.tar.gz"),
        dir.path(),
    );
    let archive = dir.path().join("packed.tar.gz");
    let packed = Command::new("python3")
        .arg(repo.join("scripts/evidence-pack.py"))
        .arg(
            dir.path()
                .join("latency-model-v3-gsm8k-50-80/one-at-a-time"),
        )
        .arg(&archive)
        .args(["--command", "scripts/bench-latency-model.sh 50 80"])
        .output()
        .unwrap();
    assert!(
        packed.status.success(),
        "{}",
        String::from_utf8_lossy(&packed.stderr)
    );
    assert!(String::from_utf8_lossy(&packed.stdout).contains("5 points"));

    // The docs' block of that sweep, fenced with the new archive instead of the committed one.
    let text = std::fs::read_to_string(repo.join("docs/results.md")).unwrap();
    let start = text
        .find("<!-- recompute: evidence/bench/latency-model-2026-12-06.tar.gz latency-model-v3-gsm8k-50-80/one-at-a-time -->")
        .expect("docs/results.md has the block of the latency model's sweep");
    let body_start = start + text[start..].find("-->\n").unwrap() + 4;
    let end = body_start + text[body_start..].find("<!-- /recompute -->").unwrap();
    let doc = dir.path().join("doc.md");
    std::fs::write(
        &doc,
        format!(
            "<!-- recompute: {} one-at-a-time -->\n{}<!-- /recompute -->\n",
            archive.display(),
            &text[body_start..end]
        ),
    )
    .unwrap();
    let out = check(&doc);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A sweep still running is packed only when asked (`--unfinished`), and what comes out of the
/// archive is what the sweep resumes from: every point's results as they were.
#[test]
fn an_unfinished_sweep_is_packed_only_when_asked_and_unpacks_whole() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    untar(
        &repo.join("evidence/bench/latency-model-2026-12-06.tar.gz"),
        dir.path(),
    );
    let sweep = dir
        .path()
        .join("latency-model-v3-gsm8k-50-80/one-at-a-time");
    std::fs::remove_file(sweep.join("sweep.csv")).unwrap();
    std::fs::write(sweep.join("sessions.log"), "session 1: a test\n").unwrap();
    let archive = dir.path().join("in-progress/one-at-a-time.tar.gz");
    let pack = |unfinished: bool| {
        let mut command = Command::new("python3");
        command
            .arg(repo.join("scripts/evidence-pack.py"))
            .arg(&sweep)
            .arg(&archive)
            .args(["--command", "scripts/bench-latency-model.sh 50 80"]);
        if unfinished {
            command.arg("--unfinished");
        }
        command.output().unwrap()
    };
    let refused = pack(false);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--unfinished"));
    assert!(!archive.exists());
    let packed = pack(true);
    assert!(
        packed.status.success(),
        "{}",
        String::from_utf8_lossy(&packed.stderr)
    );

    let next = dir.path().join("next-machine");
    std::fs::create_dir(&next).unwrap();
    untar(&archive, &next);
    let mut points = 0;
    for entry in std::fs::read_dir(&sweep).unwrap() {
        let point = entry.unwrap().path();
        if point.join("results.jsonl").is_file() {
            let copy = next.join("one-at-a-time").join(point.file_name().unwrap());
            assert_eq!(
                std::fs::read(point.join("results.jsonl")).unwrap(),
                std::fs::read(copy.join("results.jsonl")).unwrap()
            );
            points += 1;
        }
    }
    assert_eq!(points, 5);
    assert_eq!(
        std::fs::read_to_string(next.join("one-at-a-time/sessions.log")).unwrap(),
        "session 1: a test\n"
    );
}
