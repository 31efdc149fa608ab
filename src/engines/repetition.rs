//! Ending a step that has fallen into a loop. Small models, on problems beyond them, repeat a
//! block of text until the token budget runs out (on OlympiadBench 200–249 the 0.5B draft's
//! runaways held 69% of its generation time; on MATH500's training problems about a third of the
//! draft's tokens and a quarter of the target's were in steps at the step limit, most of them
//! loops). A repeating step never reaches an answer, so writing it out only costs time.
//!
//! Two rules. On a step's bytes as they are written: the step ends when its last
//! `max(REPEATS × p, MIN_SPAN)` bytes repeat with a period of `p` bytes, for some
//! `MIN_PERIOD ≤ p ≤ MAX_PERIOD`. Text a solution means to write does not repeat a block of 67 bytes
//! or more three times over, nor a shorter one over 200 bytes. And on whole steps (a loop of
//! steps, each ended by the separator): the solution ends at a step of at least
//! `MIN_REPEATED_STEP` bytes written for the `REPEATS`th time, word for word.

use crate::types::{FinishReason, GeneratedStep};

/// Shortest period looked for, in bytes (shorter ones are runs of one character or two).
pub const MIN_PERIOD: usize = 8;
/// Longest period looked for, in bytes (about 300 tokens).
pub const MAX_PERIOD: usize = 1024;
/// Times the block must be written in a row.
pub const REPEATS: usize = 3;
/// Fewest bytes the repetition must cover, whatever the period.
pub const MIN_SPAN: usize = 200;

/// Shortest step whose repetition counts: short ones (`\]`, "So:") recur in sound solutions.
pub const MIN_REPEATED_STEP: usize = 40;

/// Whether `step`, about to join `earlier` steps, is one the solution has already written
/// `REPEATS - 1` times: a loop of whole steps.
pub fn repeats_earlier_steps(earlier: &[String], step: &str) -> bool {
    step.len() >= MIN_REPEATED_STEP
        && earlier.iter().filter(|s| s.as_str() == step).count() + 1 >= REPEATS
}

/// Watches a step's bytes for a loop. For every period it keeps how many bytes in a row have
/// equalled the byte one period earlier, so each byte costs `MAX_PERIOD` comparisons at most.
#[derive(Debug, Clone)]
pub struct RepetitionGuard {
    bytes: Vec<u8>,
    /// `runs[p - MIN_PERIOD]`: bytes in a row, ending at the newest, that equal the byte `p`
    /// before them.
    runs: Vec<usize>,
}

impl Default for RepetitionGuard {
    fn default() -> Self {
        RepetitionGuard {
            bytes: Vec::new(),
            runs: vec![0; MAX_PERIOD - MIN_PERIOD + 1],
        }
    }
}

impl RepetitionGuard {
    /// Adds the next bytes of the step; true if the step fell into a loop at one of them.
    pub fn push(&mut self, bytes: &[u8]) -> bool {
        let mut looping = false;
        for &b in bytes {
            looping |= self.push_byte(b);
        }
        looping
    }

    fn push_byte(&mut self, b: u8) -> bool {
        self.bytes.push(b);
        let i = self.bytes.len() - 1;
        let mut looping = false;
        for p in MIN_PERIOD..=MAX_PERIOD.min(i) {
            let run = &mut self.runs[p - MIN_PERIOD];
            if self.bytes[i - p] == b {
                *run += 1;
                // The last `run + p` bytes have period p.
                looping |= *run + p >= (REPEATS * p).max(MIN_SPAN);
            } else {
                *run = 0;
            }
        }
        looping
    }
}

/// Where `text` would have been cut, had it been written under the guard: the end of the first
/// byte at which it fires, moved on to a character boundary; `None` if it never fires. For
/// engines that receive a whole step at once (remote servers).
pub fn cut(text: &str) -> Option<usize> {
    let mut guard = RepetitionGuard::default();
    let at = text.as_bytes().iter().position(|&b| guard.push_byte(b))?;
    let mut end = at + 1;
    while !text.is_char_boundary(end) {
        end += 1;
    }
    Some(end)
}

/// Ends a step received whole (from a server) where the guard would have ended it while it was
/// written: the text is cut, the finish is [`FinishReason::Repetition`], and the per-token
/// statistics keep the share of tokens the kept text had (servers do not say where tokens
/// start). Its usage stays what the server wrote.
pub fn cut_step(step: &mut GeneratedStep) {
    let Some(end) = cut(&step.text) else {
        return;
    };
    let keep = |n: usize| (n * end).div_ceil(step.text.len().max(1));
    let (lp, ent) = (
        keep(step.token_logprobs.len()),
        keep(step.token_entropies.len()),
    );
    step.token_logprobs.truncate(lp);
    step.token_entropies.truncate(ent);
    step.text.truncate(end);
    step.finish = FinishReason::Repetition;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The naive rule, for checking the guard against.
    fn loops_at_end(bytes: &[u8]) -> bool {
        let n = bytes.len();
        (MIN_PERIOD..=MAX_PERIOD).any(|p| {
            let span = (REPEATS * p).max(MIN_SPAN);
            span <= n && (n - span..n - p).all(|i| bytes[i] == bytes[i + p])
        })
    }

    /// `n` bytes of letters with no period (a linear congruential sequence).
    fn aperiodic(n: usize) -> String {
        let mut x: u32 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                char::from(b'a' + ((x >> 16) % 26) as u8)
            })
            .collect()
    }

    #[test]
    fn a_block_written_over_and_over_is_cut_once_it_has_repeated_enough() {
        let block = "\\[\n-x^2 + 8x - 100 = 0\n\\]\n";
        let text = format!("Expanding:\n{}", block.repeat(40));
        let end = cut(&text).expect("a loop");
        // A 25-byte block: cut once 200 bytes are periodic. The lead-in's last byte, a newline,
        // is the block's last too, so the periodic span starts one byte before the loop.
        assert_eq!(end, "Expanding:\n".len() - 1 + 200);
        // A long block needs three copies.
        let long = aperiodic(150);
        let text = format!("So {}", long.repeat(4));
        assert_eq!(cut(&text), Some(3 + 3 * long.len()));
    }

    #[test]
    fn solutions_that_only_look_alike_are_not_cut() {
        // Numbered steps with the same wording and different numbers.
        let text: String = (1..40)
            .map(|k| {
                format!(
                    "{k}. **Removal {k}:** the remaining marbles are 3 red and {} blue.\n",
                    40 - k
                )
            })
            .collect();
        assert_eq!(cut(&text), None);
        // A run of one character shorter than the span (longer ones are loops too).
        assert_eq!(cut(&format!("x = 1{}", "0".repeat(150))), None);
        assert_eq!(cut(&format!("x = 1{}", "0".repeat(300))), Some(5 + 200));
        // Two copies of a long block are a quotation, not a loop.
        assert_eq!(cut(&aperiodic(300).repeat(2)), None);
    }

    #[test]
    fn the_cut_falls_on_a_character_boundary() {
        let text = "αβγδεζηθ ".repeat(40);
        let end = cut(&text).expect("a loop");
        assert!(text.is_char_boundary(end));
        assert!(end < text.len());
    }

    #[test]
    fn a_long_step_written_a_third_time_is_a_loop_and_a_short_one_is_not() {
        let long = "We can use the fact that p(x) is an algebraic expression.\n\n".to_owned();
        let other = "Therefore the sum of the roots is 7, by Vieta's formulas.\n\n".to_owned();
        let earlier = vec![long.clone(), other.clone(), long.clone()];
        assert!(repeats_earlier_steps(&earlier, &long));
        assert!(!repeats_earlier_steps(&earlier, &other));
        assert!(!repeats_earlier_steps(&earlier[..2], &long));
        let short = "\\]\n\n".to_owned();
        assert!(!repeats_earlier_steps(
            &[short.clone(), short.clone()],
            &short
        ));
    }

    #[test]
    fn a_step_received_whole_is_cut_where_it_would_have_ended() {
        let text = format!(
            "Expanding:\n{}",
            "\\[\n-x^2 + 8x - 100 = 0\n\\]\n".repeat(40)
        );
        let mut step = GeneratedStep {
            text: text.clone(),
            finish: FinishReason::Length,
            token_logprobs: vec![-0.1; 400],
            token_entropies: vec![0.2; 400],
            usage: crate::types::Usage {
                generated_tokens: 400,
                ..Default::default()
            },
        };
        cut_step(&mut step);
        assert_eq!(step.finish, FinishReason::Repetition);
        assert_eq!(step.text, text[..cut(&text).unwrap()]);
        assert_eq!(
            step.token_logprobs.len(),
            (400 * step.text.len()).div_ceil(text.len())
        );
        assert_eq!(step.token_entropies.len(), step.token_logprobs.len());
        assert_eq!(step.usage.generated_tokens, 400);
        // A step with no loop is left as it came.
        let mut plain = GeneratedStep {
            text: "So 4.\n\n".into(),
            finish: FinishReason::Separator,
            token_logprobs: vec![-0.1; 3],
            token_entropies: vec![],
            usage: Default::default(),
        };
        let before = plain.clone();
        cut_step(&mut plain);
        assert_eq!(plain, before);
    }

    proptest! {
        #[test]
        fn the_guard_fires_exactly_where_the_naive_rule_first_holds(
            seed in proptest::collection::vec(0u8..4, 1..40),
            copies in 1usize..30,
            tail in proptest::collection::vec(0u8..4, 0..60),
        ) {
            // Texts over a tiny alphabet, mostly periodic, so the rule often holds.
            let mut bytes: Vec<u8> = seed.iter().cycle().take(seed.len() * copies).copied().collect();
            bytes.extend(&tail);
            let mut guard = RepetitionGuard::default();
            for n in 1..=bytes.len() {
                let fired = guard.push(&bytes[n - 1..n]);
                prop_assert_eq!(fired, loops_at_end(&bytes[..n]), "at {}", n);
            }
        }
    }
}
