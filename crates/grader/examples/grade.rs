//! Grade one pair from the command line and print the verdict with the parse of each side:
//! `cargo run -p arbitrage-grader --example grade -- GOLD PRED`.

use arbitrage_grader::{equiv, eval, grade, parse};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [gold, pred] = args.as_slice() else {
        eprintln!("usage: grade GOLD PRED");
        std::process::exit(2);
    };
    let v = grade(gold, pred);
    println!("{}", serde_json::to_string(&v).unwrap_or_default());
    for side in [Some(v.gold.as_str()), v.pred.as_deref()]
        .into_iter()
        .flatten()
    {
        let tree = parse::parse(side);
        println!("{side:?}\n  parse: {tree:?}");
        if let Ok(n) = &tree {
            println!("  value: {:?}", eval::eval(n, &Default::default()));
        }
        for r in equiv::readings(side) {
            println!("  reading: {r:?}");
        }
    }
}
