//! Gold answers for every record of every benchmark file in the repository's `data/` (or
//! `$ARBITRAGE_DATA_DIR`) can be read, and each grades equal to itself when boxed in a solution.
//! Sets the repository does not ship are skipped when absent.

use std::path::PathBuf;

use arbitrage_grader::{Dataset, equiv, gold_answer, grade, normalize};

fn data_dir() -> PathBuf {
    match std::env::var_os("ARBITRAGE_DATA_DIR") {
        Some(d) => PathBuf::from(d),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data"),
    }
}

#[test]
fn every_dataset_gold_answer_is_read_and_matches_itself_boxed() {
    let dir = data_dir();
    assert!(dir.is_dir(), "no data folder at {}", dir.display());
    let verbose = std::env::var_os("GRADER_VERBOSE").is_some();
    for ds in Dataset::ALL {
        let path = dir.join(ds.name()).join("test.jsonl");
        let Ok(text) = std::fs::read_to_string(&path) else {
            eprintln!("SKIP: {}", path.display());
            continue;
        };
        let (mut n, mut same, mut parsed) = (0, 0, 0);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let rec: serde_json::Value = serde_json::from_str(line).expect("json");
            let gold = gold_answer(ds.name(), &rec).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
            // The gold as the grader reads it, boxed in a solution the way a model would write it.
            let g = grade(&gold, "").gold;
            let v = grade(&gold, &format!("Thus the result is $\\boxed{{{g}}}$."));
            if v.equal {
                same += 1;
            } else if verbose {
                println!(
                    "  {}: not equal to itself: {gold:?} -> {:?}",
                    ds.name(),
                    v.pred
                );
            }
            if !equiv::readings(&normalize::clean_answer(&gold)).is_empty() {
                parsed += 1;
            } else if verbose {
                println!("  {}: unparsed gold {gold:?}", ds.name());
            }
        }
        println!(
            "{:>14}: {n} golds, {same} self-equal, {parsed} parsed",
            ds.name()
        );
        assert!(
            same as f64 >= 0.99 * n as f64,
            "{}: only {same}/{n} self-equal",
            ds.name()
        );
    }
}
