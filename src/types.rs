//! Plain data shared by every part: who wrote a step, why generation stopped, what a call cost.
//! No I/O and no engine types here, so the loop, the back-ends and the file formats can all use it.

use serde::{Deserialize, Serialize};

/// Numbers per model role.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct PerRole<T> {
    pub draft: T,
    pub target: T,
    pub prm: T,
    pub router: T,
}

/// Which model wrote a step. Serialised as `"draft"` / `"target"`, the names the trace format uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Author {
    Draft,
    Target,
}

impl Author {
    /// `"draft"` or `"target"`, as the trace format writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Author::Draft => "draft",
            Author::Target => "target",
        }
    }

    /// The annotation the paper's router reads in front of earlier steps.
    pub fn router_tag(self) -> &'static str {
        match self {
            Author::Draft => "Model 0: ",
            Author::Target => "Model 1: ",
        }
    }
}

/// Why a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The step separator was produced; the step text ends with it.
    Separator,
    /// The model produced an end-of-generation token; the solution is complete.
    EndOfSequence,
    /// The per-step or total token budget ran out.
    Length,
    /// The step fell into a loop ([`crate::engines::repetition`]); the text ends where it was
    /// seen, and the solution ends with it.
    Repetition,
}

/// What one engine call cost. Summed per role into the run metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Tokens the model had to read as input (prompt, steps written by the other model, probes).
    pub prefill_tokens: u64,
    /// Reads of two tokens or more (one batch each): a read's cost is a fixed part per call plus
    /// a part per token, so the latency model (`reporting::cost`) needs both counts.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub read_calls: u64,
    /// Reads of one token (the step's last token, read when the same model goes on): they cost
    /// what a token written does. Also counted in `prefill_tokens`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub one_token_reads: u64,
    /// The context length at each token sampled, summed over `generated_tokens`: a token written
    /// deep in the context costs more.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub written_depth: u64,
    /// Calls that verified a proposal (another model's step).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub proposal_calls: u64,
    /// Tokens the model sampled.
    pub generated_tokens: u64,
    /// Tokens of another model's proposal that this model read and kept because each equals its
    /// own greedy choice (verification). Also counted in `prefill_tokens`; not in
    /// `generated_tokens`.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub accepted_tokens: u64,
    /// Wall-clock seconds spent inside the engine.
    pub seconds: f64,
    /// The part of `seconds` spent reading input (the rest is spent sampling).
    pub prefill_seconds: f64,
    /// Calls answered from the step cache instead of the engine.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub replayed_calls: u64,
    /// The part of `seconds` replayed from the step cache: measured when the work was first done,
    /// not spent now.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub replayed_seconds: f64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl Usage {
    /// Counts a read of `tokens` tokens (none: nothing to count).
    pub fn count_read(&mut self, tokens: usize) {
        match tokens {
            0 => {}
            1 => self.one_token_reads += 1,
            _ => self.read_calls += 1,
        }
    }

    pub fn add(&mut self, other: &Usage) {
        self.prefill_tokens += other.prefill_tokens;
        self.read_calls += other.read_calls;
        self.one_token_reads += other.one_token_reads;
        self.written_depth += other.written_depth;
        self.proposal_calls += other.proposal_calls;
        self.generated_tokens += other.generated_tokens;
        self.accepted_tokens += other.accepted_tokens;
        self.seconds += other.seconds;
        self.prefill_seconds += other.prefill_seconds;
        self.replayed_calls += other.replayed_calls;
        self.replayed_seconds += other.replayed_seconds;
    }
}

impl std::ops::AddAssign<&Usage> for Usage {
    fn add_assign(&mut self, rhs: &Usage) {
        self.add(rhs);
    }
}

/// One step written by a model, with the statistics the router reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedStep {
    /// The step text. Ends with the separator when `finish` is `Separator`.
    pub text: String,
    pub finish: FinishReason,
    /// Natural-log probability of each sampled token under the model (temperature 1).
    pub token_logprobs: Vec<f32>,
    /// Entropy (nats) of the model's next-token distribution at each sampled position.
    pub token_entropies: Vec<f32>,
    pub usage: Usage,
}

/// The context a model continues: a templated prompt followed by the steps chosen so far.
///
/// `problem` identifies the open problem so an engine can keep that problem's cache warm; the
/// full text is always given, so an engine that lost its cache can rebuild it.
#[derive(Debug, Clone, Copy)]
pub struct Transcript<'a> {
    pub problem: u64,
    /// The question as asked, without the prompt template (a remote PRM formats it its own way).
    pub question: &'a str,
    pub prompt: &'a str,
    pub steps: &'a [String],
}

/// How to sample.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub seed: u32,
}

impl Sampling {
    pub const GREEDY: Sampling = Sampling {
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
    };

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0
    }

    /// The sampler seed of one step: per problem and step, so a run gives the same text whatever
    /// order its problems run in, and embedded and remote engines seed alike.
    pub fn step_seed(&self, problem: u64, steps_so_far: usize) -> u32 {
        self.seed
            .wrapping_add((problem as u32).wrapping_mul(1_000_003))
            .wrapping_add(steps_so_far as u32 + 1)
    }

    /// The sampling whose [`step_seed`](Sampling::step_seed) for `problem` is what `self`'s is for
    /// problem 0: a server numbers its requests as problems (the engines' caches are per problem),
    /// and the same request with the same seed must write the same text whatever its number.
    pub fn seeded_as_problem_zero(self, problem: u64) -> Sampling {
        Sampling {
            seed: self
                .seed
                .wrapping_sub((problem as u32).wrapping_mul(1_000_003)),
            ..self
        }
    }
}

/// Limits and stop condition for one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOptions {
    /// Text that ends a step; `None` generates until end of sequence or `max_tokens`.
    pub separator: Option<String>,
    pub max_tokens: u32,
    pub sampling: Sampling,
    /// End a step that falls into a loop ([`crate::engines::repetition`]).
    pub stop_loops: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_numbered_as_any_problem_gets_the_step_seeds_of_problem_zero() {
        let sampling = Sampling {
            temperature: 0.7,
            top_p: 0.9,
            seed: 42,
        };
        for problem in [0, 1, 17, u64::from(u32::MAX) + 5] {
            let shifted = sampling.seeded_as_problem_zero(problem);
            for step in 0..4 {
                assert_eq!(
                    shifted.step_seed(problem, step),
                    sampling.step_seed(0, step)
                );
            }
        }
    }
}
