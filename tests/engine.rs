//! The embedded engine against real llama.cpp with the smoke model: step generation, the KV cache
//! and its rollback, probes and counters.

mod common;

use arbitrage::backend::{StepGenerator, TextProbe};
use arbitrage::prompts::PromptTemplate;
use arbitrage::types::{FinishReason, Sampling, StepOptions, Transcript, Usage};

const QUESTION: &str = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?";

fn prompt() -> String {
    PromptTemplate::Qwen25MathCot.render(QUESTION)
}

fn options(separator: Option<&str>, max_tokens: u32) -> StepOptions {
    StepOptions {
        separator: separator.map(str::to_owned),
        max_tokens,
        sampling: Sampling::GREEDY,
    }
}

fn t<'a>(problem: u64, prompt: &'a str, steps: &'a [String]) -> Transcript<'a> {
    Transcript {
        problem,
        question: "",
        prompt,
        steps,
    }
}

#[test]
fn step_by_step_generation_equals_one_shot_greedy_generation() {
    let model = common::smoke_model();
    let prompt = prompt();
    let budget = 160u32;

    let whole = model
        .generate_step(&t(1, &prompt, &[]), &options(None, budget))
        .unwrap();
    let (_, one_shot_cache) = model.cached_tokens().unwrap();

    // SmolLM2 writes one line per step; "\n" exercises the same path as "\n\n" does for Qwen.
    let mut steps: Vec<String> = Vec::new();
    let mut used = 0u32;
    loop {
        let step = model
            .generate_step(&t(2, &prompt, &steps), &options(Some("\n"), budget - used))
            .unwrap();
        used += step.usage.generated_tokens as u32;
        let finish = step.finish;
        steps.push(step.text);
        if finish != FinishReason::Separator || used >= budget {
            break;
        }
    }
    let (_, stepwise_cache) = model.cached_tokens().unwrap();

    assert!(
        steps.len() >= 3,
        "the test needs several steps, got {steps:?}"
    );
    assert_eq!(steps.concat(), whole.text);
    assert_eq!(used as u64, whole.usage.generated_tokens);
    assert_eq!(
        stepwise_cache, one_shot_cache,
        "the caches hold the same tokens"
    );
}

#[test]
fn a_rejected_step_leaves_the_cache_as_before() {
    let model = common::smoke_model();
    let prompt = prompt();
    let sep = options(Some("\n\n"), 64);
    let first = model.generate_step(&t(1, &prompt, &[]), &sep).unwrap();
    let steps = vec![first.text.clone()];
    let proposed = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
    let (_, after_proposal) = model.cached_tokens().unwrap();

    // The proposal is rejected: the same context is asked again (as when the target regenerates).
    let again = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
    let (_, after_again) = model.cached_tokens().unwrap();
    assert_eq!(again.text, proposed.text);
    assert_eq!(after_again, after_proposal);
    assert_eq!(
        again.usage.prefill_tokens, 1,
        "only the last context token is read again"
    );
}

#[test]
fn a_step_written_by_another_model_is_prefilled_once() {
    let model = common::smoke_model();
    let prompt = prompt();
    let sep = options(Some("\n\n"), 64);
    let first = model.generate_step(&t(1, &prompt, &[]), &sep).unwrap();
    let prompt_tokens = model.tokenize(&prompt).unwrap().len() as u64;
    // The prompt is read once (plus a BOS token for models that want one).
    assert!(
        first.usage.prefill_tokens == prompt_tokens
            || first.usage.prefill_tokens == prompt_tokens + 1
    );

    let foreign = "Let me check the arithmetic once more.\n\n".to_owned();
    let foreign_tokens = model.tokenize(&foreign).unwrap().len() as u64;
    let steps = vec![first.text.clone(), foreign];
    let next = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
    // The kept step's last sampled token is decoded with the next call, then the foreign step.
    assert_eq!(next.usage.prefill_tokens, 1 + foreign_tokens);
    let steps = vec![steps[0].clone(), steps[1].clone(), next.text.clone()];
    let after = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
    assert_eq!(after.usage.prefill_tokens, 1, "nothing is read twice");
}

#[test]
fn a_separator_inside_a_token_ends_the_step_exactly_there() {
    let model = common::smoke_model();
    let prompt = prompt();
    // "e" sits inside many word tokens (" sell", " twelve"), so cuts fall mid-token.
    let sep = options(Some("e"), 64);
    let mut steps: Vec<String> = Vec::new();
    for _ in 0..6 {
        let step = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
        assert_eq!(step.finish, FinishReason::Separator);
        assert!(step.text.ends_with('e'), "{:?}", step.text);
        assert_eq!(step.text.matches('e').count(), 1, "{:?}", step.text);
        steps.push(step.text);
    }
    // Read the context once more: the cache must spell exactly prompt + kept steps.
    let _ = model.generate_step(&t(1, &prompt, &steps), &sep).unwrap();
    let (_, cached) = model.cached_tokens().unwrap();
    let text = model.detokenize(&cached).unwrap();
    let expected = format!("{prompt}{}", steps.concat());
    assert!(
        text.contains(&expected),
        "cache text {text:?}\nexpected {expected:?}"
    );
    let tail = &text[text.find(&expected).unwrap() + expected.len()..];
    assert!(
        !tail.contains('e') || tail.ends_with('e') && tail.matches('e').count() == 1,
        "{tail:?}"
    );
}

#[test]
fn probing_a_greedy_step_reproduces_its_logprobs() {
    let model = common::smoke_model();
    let prompt = prompt();
    let step = model
        .generate_step(&t(1, &prompt, &[]), &options(Some("\n\n"), 48))
        .unwrap();
    let probe = model
        .probe(&t(1, &prompt, &[]), &step.text, &["Yes", "No"])
        .unwrap();
    let forced = model.tokenize(&step.text).unwrap().len();
    assert_eq!(probe.token_logprobs.len(), forced);
    assert_eq!(
        forced,
        step.token_logprobs.len(),
        "the greedy step re-tokenises to itself"
    );
    let diffs: Vec<f32> = probe
        .token_logprobs
        .iter()
        .zip(&step.token_logprobs)
        .map(|(a, b)| (a - b).abs())
        .collect();
    // Batched and one-token decodes use different kernels on quantised weights: close, not equal.
    let mean = diffs.iter().sum::<f32>() / diffs.len() as f32;
    assert!(diffs.iter().all(|d| *d < 0.25) && mean < 0.05, "{diffs:?}");
    assert!(
        probe
            .candidate_logprobs
            .iter()
            .all(|lp| lp.is_finite() && *lp <= 0.0)
    );
    // After the probe, the forced text is rolled back out of the cache. (The regenerated text may
    // differ at a near-tie: the last prompt token is re-decoded alone, not inside a batch.)
    let again = model
        .generate_step(&t(1, &prompt, &[]), &options(Some("\n\n"), 48))
        .unwrap();
    let (_, cached) = model.cached_tokens().unwrap();
    let cached_text = model.detokenize(&cached).unwrap();
    let after_prompt = &cached_text[cached_text.find(&prompt).unwrap() + prompt.len()..];
    assert!(
        again.text.starts_with(after_prompt),
        "{after_prompt:?} vs {:?}",
        again.text
    );
}

#[test]
fn seeded_sampling_is_reproducible_and_differs_from_greedy() {
    let model = common::smoke_model();
    let prompt = prompt();
    let sampled = |seed| StepOptions {
        separator: None,
        max_tokens: 40,
        sampling: Sampling {
            temperature: 1.2,
            top_p: 0.95,
            seed,
        },
    };
    let a = model
        .generate_step(&t(1, &prompt, &[]), &sampled(7))
        .unwrap();
    let b = model
        .generate_step(&t(2, &prompt, &[]), &sampled(7))
        .unwrap();
    let a2 = model
        .generate_step(&t(1, &prompt, &[]), &sampled(7))
        .unwrap();
    let greedy = model
        .generate_step(&t(1, &prompt, &[]), &options(None, 40))
        .unwrap();
    assert_eq!(a.text, a2.text, "same seed, same problem, same text");
    assert_ne!(a.text, greedy.text);
    assert_ne!(a.text, b.text, "the seed is mixed with the problem id");
}

#[test]
fn counters_add_up() {
    let model = common::smoke_model();
    let prompt = prompt();
    let mut sum = Usage::default();
    let mut steps: Vec<String> = Vec::new();
    for _ in 0..3 {
        let step = model
            .generate_step(&t(1, &prompt, &steps), &options(Some("\n\n"), 32))
            .unwrap();
        assert_eq!(
            step.usage.generated_tokens as usize,
            step.token_logprobs.len()
        );
        assert_eq!(step.token_logprobs.len(), step.token_entropies.len());
        assert!(step.usage.prefill_seconds <= step.usage.seconds);
        sum += &step.usage;
        steps.push(step.text);
    }
    let probe = model
        .probe(&t(1, &prompt, &steps), "Is it right?", &["Yes"])
        .unwrap();
    sum += &probe.usage;
    let totals = model.totals();
    assert_eq!(totals.prefill_tokens, sum.prefill_tokens);
    assert_eq!(totals.generated_tokens, sum.generated_tokens);
    assert!((totals.seconds - sum.seconds).abs() < 1e-9);
}

#[test]
fn a_context_larger_than_the_window_is_an_error_not_a_crash() {
    let mut settings = common::smoke_config()
        .draft
        .embedded()
        .expect("embedded")
        .clone();
    settings.n_ctx = 256;
    let model = arbitrage::llama::EmbeddedModel::load(&settings).unwrap();
    let long = "word ".repeat(2000);
    let err = model
        .generate_step(&t(1, &long, &[]), &options(None, 8))
        .unwrap_err();
    assert!(err.to_string().contains("context window"), "{err}");
    // The engine still works afterwards.
    let ok = model
        .generate_step(&t(2, &prompt(), &[]), &options(None, 4))
        .unwrap();
    assert_eq!(ok.usage.generated_tokens, 4);
}
