//! Which tokens of a problem's context are already in the KV cache, and what must change.
//!
//! The engine holds one problem's tokens at a time. Each call gives the full transcript as text
//! segments (prompt, step, step, ...); this module decides the token sequence those segments
//! stand for (reusing the exact tokens a model generated for a step, which may differ from a fresh
//! tokenisation of the same text) and how much of the cache can be kept. Pure logic, no llama.cpp.

/// A token id, as llama.cpp numbers them.
pub type TokenId = i32;

/// A text segment of the context and the tokens it is held as.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    pub tokens: Vec<TokenId>,
}

/// The cached state of one problem context.
#[derive(Debug, Default)]
pub struct CacheState {
    problem: Option<u64>,
    /// Tokens whose keys and values are in the KV cache, in position order.
    pub in_kv: Vec<TokenId>,
    /// The segments the context was last made of, with their tokens.
    segments: Vec<Segment>,
}

/// What to do to the KV cache before a call can read the context.
#[derive(Debug, PartialEq)]
pub struct Plan {
    /// Drop every cached position from here on.
    pub keep: usize,
    /// Tokens to decode after `keep` so the cache holds the whole context.
    pub feed: Vec<TokenId>,
    /// Length of the full context (`keep + feed.len()`).
    pub context_len: usize,
    /// True when the cache belonged to another problem and must be cleared first.
    pub clear: bool,
}

/// How a segment's text is turned into tokens when no exact tokens are remembered.
pub trait Tokenize {
    /// `first` is true for the prompt (special tokens parsed, BOS added when the model wants it).
    fn tokenize(&self, text: &str, first: bool) -> Vec<TokenId>;
}

impl<F: Fn(&str, bool) -> Vec<TokenId>> Tokenize for F {
    fn tokenize(&self, text: &str, first: bool) -> Vec<TokenId> {
        self(text, first)
    }
}

/// Which cached positions a call may keep instead of decoding them again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reuse {
    /// Only the context before its last token: the call reads logits at the last context
    /// position and at every `extra` token (generation, verification, per-token log-probs).
    Context,
    /// Everything but the very last token: the call reads only what follows the whole text.
    AllButLast,
}

impl CacheState {
    /// Plans the cache for `texts` followed by `extra` forced tokens (empty for generation).
    /// What `reuse` allows of the cached tokens is kept; the rest is decoded again so its
    /// logits are fresh.
    pub fn plan(
        &mut self,
        problem: u64,
        texts: &[&str],
        extra: &[TokenId],
        reuse: Reuse,
        tok: &impl Tokenize,
    ) -> Plan {
        let clear = self.problem != Some(problem);
        if clear {
            self.problem = Some(problem);
            self.in_kv.clear();
            self.segments.clear();
        }
        let mut segments = Vec::with_capacity(texts.len());
        let mut reusing = true;
        // The next remembered segment to compare with; it runs ahead of `i` where several
        // remembered segments make up one segment of the call.
        let mut next = 0;
        for (i, text) in texts.iter().enumerate() {
            if reusing && let Some((seg, used)) = joined_segment(&self.segments[next..], text) {
                segments.push(seg);
                next += used;
                continue;
            }
            reusing = false;
            segments.push(Segment {
                text: (*text).to_owned(),
                tokens: tok.tokenize(text, i == 0),
            });
        }
        self.segments = segments;
        let mut desired: Vec<TokenId> = self
            .segments
            .iter()
            .flat_map(|s| s.tokens.iter().copied())
            .collect();
        let context_len = desired.len();
        desired.extend_from_slice(extra);
        let common = common_prefix(&self.in_kv, &desired);
        let first_read = match reuse {
            Reuse::Context => context_len,
            Reuse::AllButLast => desired.len(),
        };
        // The first position whose logits the call reads is always decoded again.
        let keep = common.min(first_read.saturating_sub(1));
        Plan {
            keep,
            feed: desired[keep..].to_vec(),
            context_len,
            clear,
        }
    }

    /// Records that the plan was carried out: the cache now holds the planned tokens.
    pub fn applied(&mut self, plan: &Plan) {
        self.in_kv.truncate(plan.keep);
        self.in_kv.extend_from_slice(&plan.feed);
    }

    /// Records a token decoded during generation.
    pub fn decoded(&mut self, token: TokenId) {
        self.in_kv.push(token);
    }

    /// Drops cached positions from `len` on (after a failed decode, or a probe being discarded).
    pub fn truncate(&mut self, len: usize) {
        self.in_kv.truncate(len);
    }

    /// Remembers the exact tokens of a step this model just wrote, so that if the step is kept the
    /// next call finds them in the cache instead of re-tokenising the text.
    pub fn remember_step(&mut self, text: String, tokens: Vec<TokenId>) {
        self.segments.push(Segment { text, tokens });
    }

    /// Forgets everything (another problem takes the cache, or the problem is released).
    pub fn reset(&mut self) {
        *self = CacheState::default();
    }

    pub fn problem(&self) -> Option<u64> {
        self.problem
    }
}

/// The remembered segment with `text`, or the run of remembered segments whose texts make up
/// `text` (a step written in two calls, such as a glimpse and the rest of the step), joined with
/// their exact tokens; and how many remembered segments it used.
fn joined_segment(remembered: &[Segment], text: &str) -> Option<(Segment, usize)> {
    if let Some(seg) = remembered.first().filter(|seg| seg.text == text) {
        return Some((seg.clone(), 1));
    }
    let mut joined = Segment {
        text: String::new(),
        tokens: Vec::new(),
    };
    for (used, seg) in remembered.iter().enumerate() {
        if seg.text.is_empty() || !text[joined.text.len()..].starts_with(&seg.text) {
            return None;
        }
        joined.text.push_str(&seg.text);
        joined.tokens.extend_from_slice(&seg.tokens);
        if joined.text.len() == text.len() {
            return Some((joined, used + 1));
        }
    }
    None
}

fn common_prefix(a: &[TokenId], b: &[TokenId]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One token per byte; the prompt gets a BOS of 0.
    fn bytes(text: &str, first: bool) -> Vec<TokenId> {
        let mut v: Vec<TokenId> = if first { vec![0] } else { vec![] };
        v.extend(text.bytes().map(TokenId::from));
        v
    }

    fn run(state: &mut CacheState, problem: u64, texts: &[&str]) -> Plan {
        let plan = state.plan(problem, texts, &[], Reuse::Context, &bytes);
        state.applied(&plan);
        plan
    }

    #[test]
    fn a_new_problem_decodes_its_whole_prompt() {
        let mut s = CacheState::default();
        let plan = run(&mut s, 1, &["ab"]);
        assert!(plan.clear);
        assert_eq!(plan.keep, 0);
        assert_eq!(plan.feed, vec![0, 97, 98]);
    }

    #[test]
    fn a_step_by_the_other_model_is_the_only_thing_decoded() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        let plan = run(&mut s, 1, &["ab", "cd"]);
        assert!(!plan.clear);
        assert_eq!(plan.keep, 3);
        assert_eq!(plan.feed, vec![99, 100]);
    }

    #[test]
    fn an_unchanged_context_redecodes_only_its_last_token() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        let plan = run(&mut s, 1, &["ab"]);
        assert_eq!(plan.keep, 2);
        assert_eq!(plan.feed, vec![98]);
    }

    #[test]
    fn a_rejected_own_step_is_rolled_back() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        // The model wrote "xy" (tokens 7, 8): 7 was decoded, 8 sampled last and not yet decoded.
        s.decoded(7);
        s.remember_step("xy".into(), vec![7, 8]);
        let plan = run(&mut s, 1, &["ab", "cd"]);
        assert_eq!(plan.keep, 3, "the rejected step's tokens are dropped");
        assert_eq!(plan.feed, vec![99, 100]);
    }

    #[test]
    fn a_step_written_in_two_calls_reuses_the_tokens_of_both() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        // A glimpse of the step, then the rest of it, each remembered with its own tokens.
        s.decoded(7);
        s.remember_step("x".into(), vec![7]);
        run(&mut s, 1, &["ab", "x"]);
        s.decoded(8);
        s.remember_step("yz".into(), vec![8, 9]);
        let plan = run(&mut s, 1, &["ab", "xyz", "w"]);
        assert_eq!(
            plan.keep, 5,
            "prompt and both parts' decoded tokens are kept"
        );
        assert_eq!(plan.feed, vec![9, i32::from(b'w')]);
        // A text the parts do not spell exactly is tokenised afresh.
        let plan = run(&mut s, 1, &["ab", "xyq"]);
        assert_eq!(plan.keep, 3);
        assert_eq!(plan.feed, b"xyq".map(i32::from).to_vec());
    }

    #[test]
    fn a_kept_own_step_reuses_its_generated_tokens() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        s.decoded(7);
        // Generated tokens differ from a byte tokenisation of the text: they must be reused as is.
        s.remember_step("xy".into(), vec![7, 8]);
        let plan = run(&mut s, 1, &["ab", "xy"]);
        assert_eq!(plan.keep, 4);
        assert_eq!(
            plan.feed,
            vec![8],
            "only the last sampled token is left to decode"
        );
    }

    #[test]
    fn another_problem_clears_the_cache() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        let plan = run(&mut s, 2, &["ab"]);
        assert!(plan.clear);
        assert_eq!(plan.keep, 0);
    }

    #[test]
    fn forced_tokens_after_a_cached_context_are_decoded_from_the_last_context_token() {
        let mut s = CacheState::default();
        run(&mut s, 1, &["ab"]);
        let plan = s.plan(1, &["ab"], &[5, 6], Reuse::Context, &bytes);
        assert_eq!(plan.keep, 2);
        assert_eq!(plan.feed, vec![98, 5, 6]);
        assert_eq!(plan.context_len, 3);
    }

    #[test]
    fn a_call_that_reads_only_the_end_keeps_cached_forced_tokens() {
        let mut s = CacheState::default();
        let first = s.plan(1, &["ab"], &[5, 6], Reuse::Context, &bytes);
        s.applied(&first);
        // The same forced tokens and one more: only the new one is decoded.
        let plan = s.plan(1, &["ab"], &[5, 6, 7], Reuse::AllButLast, &bytes);
        assert_eq!(plan.keep, 5);
        assert_eq!(plan.feed, vec![7]);
        // Nothing new: the last token is still decoded again, for its logits.
        s.applied(&plan);
        let plan = s.plan(1, &["ab"], &[5, 6, 7], Reuse::AllButLast, &bytes);
        assert_eq!(plan.keep, 5);
        assert_eq!(plan.feed, vec![7]);
        // Where the forced tokens differ, what differs is decoded.
        let plan = s.plan(1, &["ab"], &[5, 9, 7], Reuse::AllButLast, &bytes);
        assert_eq!(
            plan.keep, 4,
            "the prompt (3 tokens) and the first forced token"
        );
        assert_eq!(plan.feed, vec![9, 7]);
    }
}
