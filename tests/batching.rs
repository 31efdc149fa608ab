//! Several problems in one embedded model at once (continuous batching), against real llama.cpp
//! with the smoke model: steps written together equal steps written alone, slots are reused, and
//! the rounds really carry several sequences.

mod common;

use std::sync::{Arc, Barrier};
use std::thread;

use arbitrage::backend::{ForcedTokens, StepGenerator, TextProbe};
use arbitrage::engines::llama::{EmbeddedModel, EmbeddedSettings};
use arbitrage::method::prompts::PromptTemplate;
use arbitrage::types::{FinishReason, GeneratedStep, Sampling, StepOptions, Transcript};

const QUESTIONS: [&str; 4] = [
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?",
    "Weng earns $12 an hour for babysitting. Yesterday, she just did 50 minutes of babysitting. How much did she earn?",
    "Betty is saving money for a new wallet which costs $100. Betty has only half of the money she needs. Her parents decided to give her $15 for that purpose, and her grandparents twice as much as her parents. How much more money does Betty need to buy the wallet?",
    "James writes a 3-page letter to 2 different friends twice a week. How many pages does he write a year?",
];

/// Every other step is asked as a verification of this text, so proposals are read, partly kept
/// and cut off while other problems decode.
const PROPOSAL: &str = "So the total is 48 + 24 = 72.\n";

fn settings(slots: u32) -> EmbeddedSettings {
    let mut settings = common::smoke_settings();
    settings.slots = slots;
    settings
}

fn options(sampling: Sampling) -> StepOptions {
    StepOptions {
        separator: Some("\n".into()),
        max_tokens: 40,
        stop_loops: true,
        sampling,
    }
}

/// Problem `n`'s solution, step by step: its steps, as the engine returned them.
fn solve(model: &EmbeddedModel, n: usize) -> Vec<GeneratedStep> {
    let problem = 100 + n as u64;
    let prompt = PromptTemplate::Qwen25MathCot.render(QUESTIONS[n]);
    // One problem samples, so per-slot samplers are covered too.
    let sampling = if n == 3 {
        Sampling {
            temperature: 0.8,
            top_p: 0.95,
            seed: 7,
        }
    } else {
        Sampling::GREEDY
    };
    let mut texts: Vec<String> = Vec::new();
    let mut steps = Vec::new();
    for k in 0..6 {
        let transcript = Transcript {
            problem,
            question: QUESTIONS[n],
            prompt: &prompt,
            steps: &texts,
        };
        let step = if k % 2 == 1 {
            model.verify_step(&transcript, &options(sampling), PROPOSAL)
        } else {
            model.generate_step(&transcript, &options(sampling))
        }
        .unwrap_or_else(|e| panic!("problem {n}, step {k}: {e}"));
        let done = step.finish != FinishReason::Separator;
        texts.push(step.text.clone());
        steps.push(step);
        if done {
            break;
        }
    }
    steps
}

fn texts(steps: &[GeneratedStep]) -> Vec<&str> {
    steps.iter().map(|s| s.text.as_str()).collect()
}

#[test]
fn problems_written_together_equal_problems_written_alone() {
    let alone: Vec<Vec<GeneratedStep>> = {
        let model = EmbeddedModel::load(&settings(1)).expect("load");
        let solutions = (0..QUESTIONS.len()).map(|n| solve(&model, n)).collect();
        assert!(
            (model.batching().mean_width() - 1.0).abs() < 1e-9,
            "one problem at a time decodes one token per round: {:?}",
            model.batching()
        );
        solutions
    };

    let model = Arc::new(EmbeddedModel::load(&settings(4)).expect("load with 4 slots"));
    let start = Arc::new(Barrier::new(QUESTIONS.len()));
    let together: Vec<Vec<GeneratedStep>> = (0..QUESTIONS.len())
        .map(|n| {
            let (model, start) = (Arc::clone(&model), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                solve(&model, n)
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|h| h.join().expect("worker"))
        .collect();

    for (n, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(texts(a), texts(b), "problem {n}'s steps");
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert_eq!(x.finish, y.finish, "problem {n} step {k}");
            assert_eq!(
                (
                    x.usage.prefill_tokens,
                    x.usage.generated_tokens,
                    x.usage.accepted_tokens
                ),
                (
                    y.usage.prefill_tokens,
                    y.usage.generated_tokens,
                    y.usage.accepted_tokens
                ),
                "problem {n} step {k}: tokens read, written and kept"
            );
            assert_eq!(x.token_logprobs.len(), y.token_logprobs.len());
            for (p, q) in x.token_logprobs.iter().zip(&y.token_logprobs) {
                assert!(
                    (p - q).abs() < 1e-2,
                    "problem {n} step {k}: log-probabilities {p} and {q}"
                );
            }
        }
    }
    let batching = model.batching();
    assert!(
        batching.mean_width() > 1.5,
        "four problems in flight shared rounds: {batching:?}"
    );
}

/// Problem `n` (of [`QUESTIONS`], its prompt in `prompts`) after `steps`.
fn transcript<'a>(prompts: &'a [String], n: usize, steps: &'a [String]) -> Transcript<'a> {
    Transcript {
        problem: n as u64,
        question: QUESTIONS[n],
        prompt: &prompts[n],
        steps,
    }
}

#[test]
fn a_slot_is_reused_by_the_least_recently_used_problem_and_a_returning_problem_reads_again() {
    let model = EmbeddedModel::load(&settings(2)).expect("load with 2 slots");
    let prompts: Vec<String> = QUESTIONS
        .iter()
        .map(|q| PromptTemplate::Qwen25MathCot.render(q))
        .collect();
    let greedy = options(Sampling::GREEDY);
    let step = |n: usize, steps: &[String]| {
        model
            .generate_step(&transcript(&prompts, n, steps), &greedy)
            .expect("step")
    };
    let first0 = step(0, &[]);
    let first1 = step(1, &[]);
    // Both fit: each problem's next step reads only its own new tokens.
    let again0 = step(0, std::slice::from_ref(&first0.text));
    assert!(
        again0.usage.prefill_tokens <= 2,
        "problem 0 kept its slot: read {} tokens",
        again0.usage.prefill_tokens
    );
    // A third problem takes the least recently used slot (problem 1's).
    step(2, &[]);
    let again1 = step(1, std::slice::from_ref(&first1.text));
    assert!(
        again1.usage.prefill_tokens > first1.usage.prefill_tokens,
        "problem 1 lost its slot and reads its prompt and step again: {} tokens",
        again1.usage.prefill_tokens
    );
    // Problem 1's return took the least recently used slot then, problem 0's: problem 2 still
    // has its slot.
    let probe = model
        .probe(&transcript(&prompts, 2, &[]), "So", &[], ForcedTokens::Skip)
        .expect("probe");
    assert!(
        probe.usage.prefill_tokens <= 2,
        "problem 2 kept its slot: read {} tokens",
        probe.usage.prefill_tokens
    );

    // And what the slots hold is right: the steps equal a one-slot model's.
    drop(model);
    let single = EmbeddedModel::load(&settings(1)).expect("load");
    let alone = single
        .generate_step(
            &transcript(&prompts, 1, std::slice::from_ref(&first1.text)),
            &greedy,
        )
        .expect("step");
    assert_eq!(again1.text, alone.text);
}

#[test]
fn each_slot_holds_a_full_context_window() {
    let mut s = settings(3);
    s.n_ctx = 512;
    let model = EmbeddedModel::load(&s).expect("load");
    assert_eq!(
        model.info().n_ctx,
        512,
        "n_ctx is per problem, whatever the number of slots"
    );
}
