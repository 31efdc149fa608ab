//! Process reward models served remotely.
//!
//! - `pooling`: a Qwen2.5-Math-PRM style token-classification model behind vLLM's `/pooling`.
//!   The input is the model's chat format with each step followed by `<extra_0>`; vLLM's step
//!   pooler answers one `[negative, positive]` row per `<extra_0>`, and the newest step's score
//!   is the positive-class probability of the last row. Rows that are logits rather than
//!   probabilities (they do not sum to 1) are put through a softmax first. With a tokenizer
//!   configured, a per-token answer (one row per input token) is read at the last `<extra_0>`.
//! - `embeddings`: the Skywork value-head PRM as the reference implementation serves it, through
//!   the legacy `/v1/embeddings` route with one value per input token. The input is token ids
//!   built here (BOS + problem + "\n", then each step's tokens followed by the step token's id),
//!   and the score is the sigmoid of the value at the last step token. Values come as floats
//!   (`encoding_format: "float"` is requested) or as base64 little-endian f32.
//! - `reward`: a value-head PRM served by vLLM's reward runner (`Qwen2ForRewardModel`, one
//!   sigmoid value per token on `/pooling`), such as the embedded value head exported by
//!   `scripts/export_value_head_prm.py`. Its input is exactly what the generator read: the
//!   prompt, the steps so far and the scored step (text, or token ids with a tokenizer, each
//!   piece tokenised on its own as the embedded engine does); the score is the sigmoid of the
//!   value at the last token. The logit is asked for (`use_activation: false`) and the sigmoid
//!   applied here: vLLM 0.32's `/pooling` returns logits for `token_classify` unless asked for the
//!   activation, whatever the model's `problem_type`, so reading logits works either way.

use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use serde_json::{Value, json};

use super::http::{Client, Route};
use super::tokenizer::LocalTokenizer;
use crate::backend::{EngineError, Scored, StepScorer};
use crate::types::{Transcript, Usage};

/// Which remote API serves the PRM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrmApi {
    Pooling,
    Embeddings,
    Reward,
}

impl std::str::FromStr for PrmApi {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pooling" => Ok(PrmApi::Pooling),
            "embeddings" => Ok(PrmApi::Embeddings),
            "reward" => Ok(PrmApi::Reward),
            other => Err(format!(
                "unknown PRM API `{other}` (known: pooling, embeddings, reward)"
            )),
        }
    }
}

impl std::fmt::Display for PrmApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrmApi::Pooling => "pooling",
            PrmApi::Embeddings => "embeddings",
            PrmApi::Reward => "reward",
        })
    }
}

/// The Qwen2.5-Math-PRM step tag.
pub const QWEN_STEP_TAG: &str = "<extra_0>";
const QWEN_PRM_SYSTEM: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// A PRM behind a remote endpoint.
pub struct RemotePrm {
    name: String,
    client: Client,
    model: String,
    api: PrmApi,
    tokenizer: Option<Arc<LocalTokenizer>>,
    /// The generation separator that ends each step; stripped before the PRM sees a step.
    separator: String,
    /// Embeddings API: text prepended to the problem (the tokenizer's BOS token).
    bos: String,
    /// Embeddings API: the token placed after each step.
    step_token: String,
}

impl RemotePrm {
    /// `tokenizer` is required for `embeddings` and optional for `pooling`.
    pub fn new(
        client: Client,
        model: &str,
        api: PrmApi,
        tokenizer: Option<Arc<LocalTokenizer>>,
        separator: &str,
    ) -> Result<RemotePrm, EngineError> {
        if api == PrmApi::Embeddings && tokenizer.is_none() {
            return Err(EngineError::Invalid(
                "the `embeddings` PRM API needs a tokenizer (`[prm] tokenizer`): its input is token ids".into(),
            ));
        }
        Ok(RemotePrm {
            name: format!("{model} ({api} PRM at {})", client.endpoints().join(", ")),
            client,
            model: model.to_owned(),
            api,
            tokenizer,
            separator: separator.to_owned(),
            bos: "<|endoftext|>".to_owned(),
            step_token: "\n".to_owned(),
        })
    }

    /// Embeddings API: the BOS text and the step token (defaults `<|endoftext|>` and `"\n"`).
    pub fn with_skywork_tokens(mut self, bos: &str, step_token: &str) -> RemotePrm {
        self.bos = bos.to_owned();
        self.step_token = step_token.to_owned();
        self
    }

    fn steps<'s>(&'s self, transcript: &'s Transcript<'_>, step: &'s str) -> Vec<&'s str> {
        transcript
            .steps
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(step))
            .map(|s| s.strip_suffix(self.separator.as_str()).unwrap_or(s).trim())
            .collect()
    }

    fn engine_err(&self) -> impl Fn(super::RemoteError) -> EngineError + '_ {
        move |source| EngineError::Remote {
            role: "PRM".into(),
            source: Box::new(source),
        }
    }

    /// The score and the prompt tokens the server read (from its `usage`, else 0).
    fn score_pooling(
        &self,
        transcript: &Transcript<'_>,
        step: &str,
    ) -> Result<(f32, u64), EngineError> {
        let steps = self.steps(transcript, step);
        let text = qwen_prm_input(transcript.question, &steps);
        let tag_position = match &self.tokenizer {
            Some(t) => {
                let id = t.token_id(QWEN_STEP_TAG).ok_or_else(|| {
                    EngineError::Invalid(format!(
                        "tokenizer {} has no {QWEN_STEP_TAG} token",
                        t.path().display()
                    ))
                })?;
                t.encode(&text, false)?.iter().rposition(|&x| x == id)
            }
            None => None,
        };
        let body = json!({"model": self.model, "input": text, "encoding_format": "float"});
        self.client
            .post(Route::Root("pooling"), &body, |v| {
                let rows = pooling_rows(v)?;
                let row = if rows.len() == steps.len() {
                    rows.last()
                } else if let Some(pos) = tag_position {
                    rows.get(pos)
                } else {
                    return Err(format!(
                        "expected one row per {QWEN_STEP_TAG} ({} steps), got {} rows; a per-token \
                         answer needs `[prm] tokenizer` to find the step tags",
                        steps.len(),
                        rows.len()
                    ));
                };
                let row = row.ok_or("no row at the last step tag")?;
                Ok((positive_probability(row)?, prompt_tokens(v)))
            })
            .map_err(self.engine_err())
    }

    /// The value at the last token of the transcript with the step appended.
    fn score_reward(
        &self,
        transcript: &Transcript<'_>,
        step: &str,
    ) -> Result<(f32, u64), EngineError> {
        let input = match &self.tokenizer {
            Some(t) => {
                let mut ids = t.encode(transcript.prompt, true)?;
                for s in transcript.steps.iter().map(String::as_str).chain([step]) {
                    ids.extend(t.encode(s, false)?);
                }
                json!(ids)
            }
            None => {
                let mut text = transcript.prompt.to_owned();
                for s in transcript.steps {
                    text.push_str(s);
                }
                text.push_str(step);
                json!(text)
            }
        };
        let body = json!({"model": self.model, "input": input, "task": "token_classify",
            "use_activation": false, "encoding_format": "float"});
        self.client
            .post(Route::Root("pooling"), &body, |v| {
                let rows = pooling_rows(v)?;
                let last = rows
                    .last()
                    .and_then(|r| r.last())
                    .ok_or("the answer has no per-token values")?;
                Ok((sigmoid(*last), prompt_tokens(v)))
            })
            .map_err(self.engine_err())
    }

    fn score_embeddings(
        &self,
        transcript: &Transcript<'_>,
        step: &str,
    ) -> Result<(f32, u64), EngineError> {
        let tokenizer = self.tokenizer.as_ref().expect("checked in new()");
        let steps = self.steps(transcript, step);
        let ids = skywork_input(
            tokenizer,
            &self.bos,
            transcript.question,
            &steps,
            &self.step_token,
        )?;
        let last = ids.len() - 1;
        let body = json!({"model": self.model, "input": [ids], "encoding_format": "float"});
        self.client
            .post(Route::V1("embeddings"), &body, |v| {
                let values = embedding_values(v)?;
                let value = values.get(last).ok_or_else(|| {
                    format!(
                        "the embedding has {} values for {} input tokens",
                        values.len(),
                        last + 1
                    )
                })?;
                Ok((sigmoid(*value), prompt_tokens(v)))
            })
            .map_err(self.engine_err())
    }
}

impl StepScorer for RemotePrm {
    fn name(&self) -> &str {
        &self.name
    }

    fn score_step(&self, transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError> {
        let started = Instant::now();
        let (score, prefill_tokens) = match self.api {
            PrmApi::Pooling => self.score_pooling(transcript, step)?,
            PrmApi::Embeddings => self.score_embeddings(transcript, step)?,
            PrmApi::Reward => self.score_reward(transcript, step)?,
        };
        let seconds = started.elapsed().as_secs_f64();
        Ok(Scored {
            score,
            usage: Usage {
                prefill_tokens,
                seconds,
                prefill_seconds: seconds,
                ..Usage::default()
            },
        })
    }
}

/// `usage.prompt_tokens` of an answer, less any cached prefix the server reports.
fn prompt_tokens(v: &Value) -> u64 {
    let read = |p: &str| v.pointer(p).and_then(Value::as_u64).unwrap_or(0);
    read("/usage/prompt_tokens").saturating_sub(read("/usage/prompt_tokens_details/cached_tokens"))
}

/// Qwen2.5-Math-PRM's input: its chat format, each step followed by `<extra_0>`.
pub fn qwen_prm_input(question: &str, steps: &[&str]) -> String {
    let mut answer = String::new();
    for s in steps {
        answer.push_str(s);
        answer.push_str(QWEN_STEP_TAG);
    }
    format!(
        "<|im_start|>system\n{QWEN_PRM_SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n\
         <|im_start|>assistant\n{answer}<|im_end|>\n"
    )
}

/// The Skywork PRM's input ids: BOS + problem + "\n", then each step's tokens and the step
/// token's id.
pub fn skywork_input(
    tokenizer: &LocalTokenizer,
    bos: &str,
    question: &str,
    steps: &[&str],
    step_token: &str,
) -> Result<Vec<u32>, EngineError> {
    let step_id = *tokenizer
        .encode(step_token, false)?
        .last()
        .ok_or_else(|| EngineError::Invalid(format!("step token {step_token:?} has no tokens")))?;
    let mut ids = tokenizer.encode(&format!("{bos}{question}\n"), false)?;
    for s in steps {
        ids.extend(tokenizer.encode(s, false)?);
        ids.push(step_id);
    }
    Ok(ids)
}

/// The rows of a `/pooling` answer: `data[0].data` as a list of number rows (a flat list is
/// one row).
pub fn pooling_rows(v: &Value) -> Result<Vec<Vec<f64>>, String> {
    let data = v
        .pointer("/data/0/data")
        .ok_or("no `data[0].data` in the answer")?;
    let numbers = |row: &Value| -> Result<Vec<f64>, String> {
        row.as_array()
            .ok_or("a row of `data[0].data` is not a list")?
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| "a value is not a number".to_owned())
            })
            .collect()
    };
    match data.as_array() {
        Some(rows) if rows.first().is_some_and(Value::is_array) => {
            rows.iter().map(numbers).collect()
        }
        Some(_) => Ok(vec![numbers(data)?]),
        None => Err("`data[0].data` is not a list".into()),
    }
}

/// P(positive) from a row: the row as probabilities when it is one (values in [0, 1] summing
/// to 1), else the softmax of its last two values (logits).
pub fn positive_probability(row: &[f64]) -> Result<f32, String> {
    if row.len() < 2 {
        return Err(format!("a row has {} values; need 2 classes", row.len()));
    }
    let sum: f64 = row.iter().sum();
    if row.iter().all(|p| (0.0..=1.0).contains(p)) && (sum - 1.0).abs() < 1e-3 {
        return Ok(row[row.len() - 1] as f32);
    }
    Ok(softmax_last_two(row))
}

/// Softmax over the last two values, read at the second: the router's ŷ.
pub fn softmax_last_two(row: &[f64]) -> f32 {
    let (a, b) = (row[row.len() - 2], row[row.len() - 1]);
    (1.0 / (1.0 + (a - b).exp())) as f32
}

/// The values of a `/v1/embeddings` answer: `data[0].embedding`, floats or base64 f32 (LE).
pub fn embedding_values(v: &Value) -> Result<Vec<f64>, String> {
    let e = v
        .pointer("/data/0/embedding")
        .ok_or("no `data[0].embedding` in the answer")?;
    match e {
        Value::Array(values) => values
            .iter()
            .map(|x| {
                x.as_f64()
                    .ok_or_else(|| "an embedding value is not a number".to_owned())
            })
            .collect(),
        Value::String(b64) => decode_f32_base64(b64),
        _ => Err("`data[0].embedding` is neither a list nor a base64 string".into()),
    }
}

/// Base64 of little-endian f32 values, as OpenAI-compatible servers send `encoding_format: "base64"`.
pub fn decode_f32_base64(text: &str) -> Result<Vec<f64>, String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| format!("the base64 embedding does not decode: {e}"))?;
    if bytes.len() % 4 != 0 {
        return Err(format!(
            "the base64 embedding has {} bytes, not a whole number of f32 values",
            bytes.len()
        ));
    }
    Ok(bytes
        .chunks_exact(4)
        .map(|c| f64::from(f32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect())
}

pub fn sigmoid(x: f64) -> f32 {
    (1.0 / (1.0 + (-x).exp())) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qwen_prm_input_tags_every_step() {
        let s = qwen_prm_input("What is 1+1?", &["1+1 = 2.", "\\boxed{2}"]);
        assert!(s.contains("<|im_start|>user\nWhat is 1+1?<|im_end|>"));
        assert!(s.ends_with("assistant\n1+1 = 2.<extra_0>\\boxed{2}<extra_0><|im_end|>\n"));
        assert_eq!(s.matches(QWEN_STEP_TAG).count(), 2);
    }

    #[test]
    fn probability_rows_are_read_as_is_and_logit_rows_through_a_softmax() {
        assert_eq!(positive_probability(&[0.25, 0.75]).unwrap(), 0.75);
        let p = positive_probability(&[0.0, 2.0]).unwrap();
        assert!((p - 1.0 / (1.0 + (-2f32).exp())).abs() < 1e-6);
        assert!(positive_probability(&[1.0]).is_err());
    }

    #[test]
    fn pooling_rows_accept_a_list_of_rows_or_one_flat_row() {
        let v =
            json!({"data": [{"index": 0, "object": "pooling", "data": [[0.9, 0.1], [0.2, 0.8]]}]});
        assert_eq!(
            pooling_rows(&v).unwrap(),
            vec![vec![0.9, 0.1], vec![0.2, 0.8]]
        );
        let v = json!({"data": [{"data": [0.3, 0.7]}]});
        assert_eq!(pooling_rows(&v).unwrap(), vec![vec![0.3, 0.7]]);
        assert!(pooling_rows(&json!({"data": []})).is_err());
    }

    #[test]
    fn base64_embeddings_decode_as_little_endian_f32() {
        let values = [1.5f32, -0.25, 3.0];
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        let v = json!({"data": [{"object": "embedding", "index": 0, "embedding": b64}]});
        assert_eq!(embedding_values(&v).unwrap(), vec![1.5, -0.25, 3.0]);
        let v = json!({"data": [{"embedding": [0.5, 2.0]}]});
        assert_eq!(embedding_values(&v).unwrap(), vec![0.5, 2.0]);
        assert!(decode_f32_base64("AAA=").unwrap_err().contains("bytes"));
    }

    #[test]
    fn sigmoid_of_zero_is_one_half() {
        assert_eq!(sigmoid(0.0), 0.5);
        assert!(sigmoid(10.0) > 0.9999);
    }
}
