//! The embedded engine against real llama.cpp with the smoke model: step generation, the KV cache
//! and its rollback, probes and counters.

mod common;

use arbitrage::backend::{ForcedTokens, StepGenerator, TextProbe};
use arbitrage::engines::repetition;
use arbitrage::method::prompts::PromptTemplate;
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
        stop_loops: false,
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
        .probe(
            &t(1, &prompt, &[]),
            &step.text,
            &["Yes", "No"],
            ForcedTokens::Logprobs,
        )
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
        stop_loops: false,
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
        .probe(
            &t(1, &prompt, &steps),
            "Is it right?",
            &["Yes"],
            ForcedTokens::Logprobs,
        )
        .unwrap();
    sum += &probe.usage;
    let totals = model.totals();
    assert_eq!(totals.prefill_tokens, sum.prefill_tokens);
    assert_eq!(totals.generated_tokens, sum.generated_tokens);
    assert!((totals.seconds - sum.seconds).abs() < 1e-9);
}

#[test]
fn a_context_larger_than_the_window_is_an_error_not_a_crash() {
    let mut settings = common::smoke_settings();
    settings.n_ctx = 256;
    let model = arbitrage::engines::llama::EmbeddedModel::load(&settings).unwrap();
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

/// Probability above which a greedy choice cannot flip between llama.cpp's batched and one-token
/// kernels: those differ by up to ~0.25 nats on quantised weights (see the probe test above), and a
/// token at p ≥ 0.6 leads the next by at least ln(0.6 / 0.4) ≈ 0.41 nats.
const CLEAR_CHOICE: f32 = 0.6;

/// Bytes of `step`'s text up to its first near-tie: the tokens before the first one chosen with
/// probability below [`CLEAR_CHOICE`]. Text up to there is the same however the logits were computed.
fn clear_prefix_len(
    model: &arbitrage::engines::llama::EmbeddedModel,
    step: &arbitrage::types::GeneratedStep,
) -> usize {
    let tokens = model.tokenize(&step.text).unwrap();
    let clear = step
        .token_logprobs
        .iter()
        .take_while(|lp| lp.exp() >= CLEAR_CHOICE)
        .count()
        .min(tokens.len());
    model.detokenize(&tokens[..clear]).unwrap().len()
}

fn common_prefix_len(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

/// Verifying `proposal` writes the step plain generation writes and leaves the KV cache as plain
/// generation leaves it, so that the next step reads the same. Verification reads the proposal in
/// one batch, whose kernels differ slightly from one-token decoding: the two steps must agree up
/// to the first near-tie, and wherever the text is the same, everything else must be too.
/// Returns the verified step and whether the text came out identical.
fn verify_matches_plain(
    model: &arbitrage::engines::llama::EmbeddedModel,
    transcript: &Transcript<'_>,
    sep: &StepOptions,
    proposal: &str,
) -> (arbitrage::types::GeneratedStep, bool) {
    let next_after = |step: &str| {
        let mut steps = transcript.steps.to_vec();
        steps.push(step.to_owned());
        model
            .generate_step(&t(transcript.problem, transcript.prompt, &steps), sep)
            .unwrap()
    };
    let plain = model.generate_step(transcript, sep).unwrap();
    let (_, plain_cache) = model.cached_tokens().unwrap();
    let plain_next = next_after(&plain.text);

    let verified = model.verify_step(transcript, sep, proposal).unwrap();
    let (_, verified_cache) = model.cached_tokens().unwrap();
    let same = verified.text == plain.text;
    if !same {
        let agree = common_prefix_len(&verified.text, &plain.text);
        let clear = clear_prefix_len(model, &plain).min(clear_prefix_len(model, &verified));
        assert!(
            agree >= clear,
            "diverged before any near-tie ({agree} < {clear} bytes), proposal {proposal:?}:\n{:?}\n{:?}",
            plain.text,
            verified.text
        );
        return (verified, false);
    }
    assert_eq!(verified.finish, plain.finish);
    assert_eq!(
        verified.usage.generated_tokens + verified.usage.accepted_tokens,
        plain.usage.generated_tokens,
        "proposal {proposal:?}"
    );
    assert_eq!(verified.token_logprobs.len(), plain.token_logprobs.len());
    assert_eq!(verified_cache, plain_cache, "proposal {proposal:?}");
    let verified_next = next_after(&verified.text);
    assert_eq!(
        verified_next.usage.prefill_tokens, plain_next.usage.prefill_tokens,
        "the next step reads the same"
    );
    (verified, true)
}

#[test]
fn verification_reproduces_the_models_own_greedy_step() {
    let model = common::smoke_model();
    let prompt = prompt();
    let sep = options(Some("\n"), 64);
    let mut steps: Vec<String> = Vec::new();
    let (mut identical, mut checked, mut partial_seen) = (0, 0, false);
    for _ in 0..5 {
        let transcript = t(7, &prompt, &steps);
        let own = model.generate_step(&transcript, &sep).unwrap();
        let own_tokens = own.usage.generated_tokens;

        // Full agreement: the tokens are taken without a decode each, up to a near-tie at most.
        // (Plain generation itself can take the other branch of a near-tie when the context's
        // last token was read alone rather than in the prompt's batch, so compare with `own`.)
        let (full, same) = verify_matches_plain(&model, &transcript, &sep, &own.text);
        if full.text == own.text {
            assert_eq!(full.usage.accepted_tokens, own_tokens, "{:?}", own.text);
            assert_eq!(full.usage.generated_tokens, 0);
        } else {
            assert!(full.usage.accepted_tokens > 0);
        }
        identical += usize::from(same);

        // No agreement: nothing is taken.
        let (none, same) =
            verify_matches_plain(&model, &transcript, &sep, "Zebras juggle 9 violins.\n");
        assert_eq!(none.usage.accepted_tokens, 0);
        identical += usize::from(same);

        // Agreement up to a point: the shared beginning is taken, the rest written.
        let words: Vec<&str> = own.text.split_inclusive(' ').collect();
        if words.len() >= 4 {
            let half = words[..words.len() / 2].concat();
            let (partial, same) =
                verify_matches_plain(&model, &transcript, &sep, &format!("{half}zebra violins\n"));
            if same && partial.text == own.text {
                assert!(partial.usage.accepted_tokens >= 1, "{half:?}");
                assert!(partial.usage.accepted_tokens < own_tokens);
                partial_seen = true;
            }
            identical += usize::from(same);
            checked += 1;
        }
        checked += 2;
        steps.push(own.text);
    }
    assert!(
        partial_seen,
        "no step exercised a partial agreement: {steps:?}"
    );
    // Near-ties are the exception: most steps come out identical.
    assert!(
        2 * identical > checked,
        "{identical} of {checked} identical"
    );
}

#[test]
fn verification_cuts_at_a_separator_inside_a_token() {
    let model = common::smoke_model();
    let prompt = prompt();
    // "e" sits inside many word tokens, so the step ends inside the token the model would write.
    let sep = options(Some("e"), 64);
    let mut steps: Vec<String> = Vec::new();
    let mut identical = 0;
    for _ in 0..5 {
        let transcript = t(8, &prompt, &steps);
        let own = model.generate_step(&transcript, &sep).unwrap();
        let (verified, same) = verify_matches_plain(&model, &transcript, &sep, &own.text);
        assert!(verified.text.ends_with('e'));
        identical += usize::from(same);
        // A proposal that runs past the separator is cut where the model's own step ends.
        let (past, same) =
            verify_matches_plain(&model, &transcript, &sep, &format!("{}xyz e", own.text));
        assert!(past.text.ends_with('e'));
        identical += usize::from(same);
        steps.push(own.text);
    }
    assert!(identical >= 6, "{identical} of 10 identical");
}

#[test]
fn verification_of_a_sampled_step_writes_it_plainly() {
    let model = common::smoke_model();
    let prompt = prompt();
    let mut sampled = options(Some("\n"), 32);
    sampled.sampling = Sampling {
        temperature: 0.8,
        top_p: 0.95,
        seed: 3,
    };
    let transcript = t(9, &prompt, &[]);
    let plain = model.generate_step(&transcript, &sampled).unwrap();
    let verified = model
        .verify_step(&transcript, &sampled, &plain.text)
        .unwrap();
    assert_eq!(verified.text, plain.text);
    assert_eq!(verified.usage.accepted_tokens, 0);
}

#[test]
fn a_model_loaded_for_hidden_states_reports_the_state_at_the_last_token() {
    let mut settings = common::smoke_settings();
    settings.hidden_states = true;
    let states = arbitrage::engines::llama::EmbeddedModel::load(&settings).unwrap();
    let plain = common::smoke_model();
    let p = prompt();
    let steps = vec!["In April she sold 48 clips.\n\n".to_owned()];
    let step = "In May she sold 48 / 2 = 24 clips.";

    let first = states
        .probe(&t(1, &p, &steps), step, &[], ForcedTokens::Logprobs)
        .unwrap();
    let hidden = first.hidden.clone().expect("hidden state");
    // SmolLM2-135M's hidden size.
    assert_eq!(hidden.len(), 576);
    assert!(hidden.iter().all(|x| x.is_finite()));
    assert!(hidden.iter().any(|&x| x != 0.0));
    // Reading the same text again from a warm cache (only the step is re-read) and from a cold
    // one (everything is read in one batch) gives the same state, up to kernel rounding (a few
    // percent on quantised weights); a different step gives a clearly different one.
    let cosine = |a: &[f32], b: &[f32]| {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    };
    let warm = states
        .probe(&t(1, &p, &steps), step, &[], ForcedTokens::Logprobs)
        .unwrap();
    let cold = states
        .probe(&t(2, &p, &steps), step, &[], ForcedTokens::Logprobs)
        .unwrap();
    assert!(cold.usage.prefill_tokens > warm.usage.prefill_tokens);
    for other in [&warm, &cold] {
        let c = cosine(other.hidden.as_ref().expect("hidden state"), &hidden);
        assert!(c > 0.995, "cosine {c}");
    }
    let other = states
        .probe(
            &t(1, &p, &steps),
            "So she sold 96 apples in June!",
            &[],
            ForcedTokens::Logprobs,
        )
        .unwrap();
    let c = cosine(&other.hidden.unwrap(), &hidden);
    assert!(c < 0.98, "cosine {c}");
    // A probe that asks only for what follows the text keeps the forced tokens the cache holds:
    // it reads the last one again, or only what was added, and reports the same state.
    let skip = |text: &str, candidates: &[&str]| {
        states
            .probe(&t(1, &p, &steps), text, candidates, ForcedTokens::Skip)
            .unwrap()
    };
    states
        .probe(&t(1, &p, &steps), step, &[], ForcedTokens::Logprobs)
        .unwrap();
    let again = skip(step, &[]);
    assert_eq!(again.usage.prefill_tokens, 1);
    assert!(again.token_logprobs.is_empty());
    let c = cosine(again.hidden.as_ref().expect("hidden state"), &hidden);
    assert!(c > 0.995, "cosine {c}");
    let question = " Is it right?";
    let added = states.tokenize(question).unwrap().len() as u64;
    let asked = skip(&format!("{step}{question}"), &["Yes", "No"]);
    assert!(
        asked.usage.prefill_tokens <= added + 1,
        "{} tokens read for a {added}-token question",
        asked.usage.prefill_tokens
    );
    let cold_asked = states
        .probe(
            &t(3, &p, &steps),
            &format!("{step}{question}"),
            &["Yes", "No"],
            ForcedTokens::Skip,
        )
        .unwrap();
    for (a, b) in asked
        .candidate_logprobs
        .iter()
        .zip(&cold_asked.candidate_logprobs)
    {
        // Probabilities, not log-probabilities: rounding moves a rare token's log-prob by more.
        assert!(a.is_finite() && a < &0.0);
        assert!((a.exp() - b.exp()).abs() < 0.02, "{a} vs {b}");
    }
    // Token log-probabilities are the same with and without hidden states.
    let without = plain
        .probe(&t(1, &p, &steps), step, &[], ForcedTokens::Logprobs)
        .unwrap();
    assert!(without.hidden.is_none());
    assert_eq!(without.token_logprobs.len(), first.token_logprobs.len());
    for (a, b) in without.token_logprobs.iter().zip(&first.token_logprobs) {
        assert!((a - b).abs() < 0.3, "{a} vs {b}");
    }
}

#[test]
fn the_benchmark_measures_prefill_decode_and_probe_reads() {
    let model = common::smoke_model();
    let mut calls = 0;
    let result = arbitrage::eval::bench::run(&model, 64, 48, 8, 2, || calls += 1).unwrap();
    assert_eq!(calls, 6, "three measurements per repetition");
    assert_eq!(result.prefill_runs.len(), 2);
    assert_eq!(result.probe_runs.len(), 2);
    assert!(result.depth >= 60, "depth {}", result.depth);
    assert!(
        (46..=50).contains(&result.prompt_tokens),
        "{}",
        result.prompt_tokens
    );
    assert_eq!(result.decode_tokens, 7);
    for rate in [
        result.prefill_tok_s,
        result.decode_tok_s,
        result.probe_tok_s,
    ] {
        assert!(rate.is_finite() && rate > 0.0, "{result:?}");
    }
}

#[test]
fn a_step_that_falls_into_a_loop_ends_where_the_loop_is_seen() {
    let model = common::smoke_model();
    // A counting pattern the small model carries on, and soon only repeats.
    let prompt = "Write the list again and again:\nx = 0\nx = 0\nx = 0\nx = 0\n".to_owned();
    let unguarded = model
        .generate_step(&t(1, &prompt, &[]), &options(None, 200))
        .unwrap();
    let at = repetition::cut(&unguarded.text)
        .unwrap_or_else(|| panic!("the smoke model did not loop: {:?}", unguarded.text));
    let guarded = model
        .generate_step(
            &t(2, &prompt, &[]),
            &StepOptions {
                stop_loops: true,
                ..options(None, 200)
            },
        )
        .unwrap();
    assert_eq!(guarded.finish, FinishReason::Repetition);
    // Greedy text, cut at the end of the token in which the loop was seen.
    assert!(unguarded.text.starts_with(&guarded.text), "{guarded:?}");
    assert!(
        guarded.text.len() >= at && guarded.text.len() < at + 16,
        "cut at {} bytes, the loop seen at {at}",
        guarded.text.len()
    );
    let written = guarded.usage.generated_tokens;
    assert!(written < unguarded.usage.generated_tokens, "{written}");
    assert_eq!(guarded.token_logprobs.len() as u64, written);
}
