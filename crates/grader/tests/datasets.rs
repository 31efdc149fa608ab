//! Gold answers of the benchmark sets the repository ships in `data/`: every record of gsm8k
//! (1319), math500 (500), olympiadbench (675) and svamp (1000), 3494 records in all, yields a gold
//! answer, and every gold grades equal to itself boxed in a solution. A shipped set that is
//! missing fails the test; the sets the repository does not ship (aime24, amc23, minerva_math,
//! asdiv, mawps, college_math) are not covered here.

use std::path::PathBuf;

use arbitrage_grader::{Dataset, equiv, gold_answer, grade, normalize};

/// The sets in `data/` (see `data/README.md`), with their record counts.
const SHIPPED: [(Dataset, usize); 4] = [
    (Dataset::Gsm8k, 1319),
    (Dataset::Math500, 500),
    (Dataset::OlympiadBench, 675),
    (Dataset::Svamp, 1000),
];

/// The repository's own `data/` (not `$ARBITRAGE_DATA_DIR`: this test is about what ships).
fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data")
}

#[test]
fn every_shipped_dataset_gold_answer_is_read_and_matches_itself_boxed() {
    let dir = data_dir();
    assert!(dir.is_dir(), "no data folder at {}", dir.display());
    let verbose = std::env::var_os("GRADER_VERBOSE").is_some();
    let mut total = 0;
    for (ds, count) in SHIPPED {
        let path = dir.join(ds.name()).join("test.jsonl");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{} ships in data/: {e}", path.display()));
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
        assert_eq!(n, count, "{}: record count", ds.name());
        assert_eq!(
            same,
            n,
            "{}: golds not equal to themselves boxed",
            ds.name()
        );
        total += n;
    }
    assert_eq!(total, 3494);
}

/// A set added to `data/` must be added to [`SHIPPED`], so that this test covers it.
#[test]
fn every_set_in_the_data_folder_is_covered() {
    let dir = data_dir();
    for ds in Dataset::ALL {
        let present = dir.join(ds.name()).join("test.jsonl").is_file();
        let covered = SHIPPED.iter().any(|(s, _)| *s == ds);
        assert!(
            !present || covered,
            "{} is in {} but not in SHIPPED",
            ds.name(),
            dir.display()
        );
    }
}
