//! Pairs graded per second over `tests/data/answer_pairs.jsonl`, repeated.
//! Run: `cargo bench -p arbitrage-grader --bench throughput` (env `GRADER_BENCH_SECS` = minimum
//! measuring time, default 3, `GRADER_BENCH_PAIRS` = another JSONL file of
//! `{"gold", "pred", "expected"}` rows). Prints one JSON line.

use std::path::PathBuf;
use std::time::Instant;

use arbitrage_grader::grade;

fn main() {
    let path = std::env::var_os("GRADER_BENCH_PAIRS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/answer_pairs.jsonl")
        });
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let pairs: Vec<(String, String, bool)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("json line");
            (
                v["gold"].as_str().unwrap_or_default().to_string(),
                v["pred"].as_str().unwrap_or_default().to_string(),
                v["expected"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    let agree = pairs
        .iter()
        .filter(|(g, p, e)| grade(g, p).equal == *e)
        .count();
    let min_secs: f64 = std::env::var("GRADER_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let start = Instant::now();
    let mut graded = 0usize;
    let mut equal = 0usize;
    let mut reps = 0usize;
    while start.elapsed().as_secs_f64() < min_secs {
        for (g, p, _) in &pairs {
            equal += usize::from(std::hint::black_box(grade(g, p)).equal);
        }
        graded += pairs.len();
        reps += 1;
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"grader\":\"arbitrage-grader\",\"pairs\":{},\"repeats\":{reps},\"graded\":{graded},\"seconds\":{secs:.3},\"pairs_per_sec\":{:.1},\"agree\":{agree},\"agreement\":{:.4},\"equal_checksum\":{equal}}}",
        pairs.len(),
        graded as f64 / secs,
        agree as f64 / pairs.len() as f64
    );
}
