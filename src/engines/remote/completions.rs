//! Draft and target over an OpenAI-compatible `/v1/completions` endpoint (vLLM, SGLang,
//! llama.cpp's `llama-server`).
//!
//! - The request always carries `temperature`, `top_p` and `max_tokens` (servers otherwise fill
//!   them from the model's generation config) and `stop` = the step separator; `seed` is sent
//!   when sampling, derived per problem and step like the embedded engine's, so a run gives the
//!   same text whatever order its problems run in.
//! - Servers strip the stop string from the text. The separator is appended back when the
//!   server says it stopped on it, so a step reads exactly as the embedded engine's does.
//!   Which stop fired is read from vLLM's `stop_reason` (the string, a token id, or null for
//!   end of sequence) or SGLang's `matched_stop` (the string, or the end-of-sequence token id).
//!   llama.cpp's `llama-server` reports neither, but says `stop_type` ("eos" or "word") in the
//!   `__verbose` object a request with `"verbose": true` gets back; a server whose answer carries
//!   llama-server's `timings` is asked that way from then on (the first such request is sent
//!   again). A server that says nothing of the kind is read by the text: a non-empty step ended
//!   by `stop` is taken as a separator stop, an empty one as end of sequence.
//! - With a tokenizer configured, the prompt is sent as token ids (the prompt, then each step
//!   tokenised on its own, as the embedded engine feeds them), which keeps the server's prefix
//!   cache exact; otherwise as text.
//! - `logprobs` are requested only when something reads them (the feature router and `generate`
//!   records). Entropies are computed over the returned top-k alternatives, a lower bound on the
//!   full-vocabulary entropy the embedded engine reports.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::{Value, json};

use super::http::{Client, Route};
use super::tokenizer::LocalTokenizer;
use crate::backend::{EngineError, StepGenerator};
use crate::types::{FinishReason, GeneratedStep, StepOptions, Transcript, Usage};

/// A piece of a transcript (the prompt or one step) and its token ids.
type Segment = (String, Vec<u32>);

/// A model behind `/v1/completions`.
pub struct RemoteGenerator {
    name: String,
    client: Client,
    model: String,
    tokenizer: Option<Arc<LocalTokenizer>>,
    /// Top-k alternatives requested per token; `None` requests no logprobs.
    logprobs: Option<u32>,
    /// Token ids of each problem's prompt and steps, so a call tokenises only new text.
    segments: Mutex<HashMap<u64, Vec<Segment>>>,
    warned_unreported_stop: AtomicBool,
    /// Send `"verbose": true`: the server is llama-server, which then says which stop fired.
    ask_verbose: AtomicBool,
}

impl RemoteGenerator {
    pub fn new(name: &str, client: Client, model: &str) -> RemoteGenerator {
        RemoteGenerator {
            name: name.to_owned(),
            client,
            model: model.to_owned(),
            tokenizer: None,
            logprobs: None,
            segments: Mutex::new(HashMap::new()),
            warned_unreported_stop: AtomicBool::new(false),
            ask_verbose: AtomicBool::new(false),
        }
    }

    /// Sends prompts as token ids made by `tokenizer`.
    pub fn with_tokenizer(mut self, tokenizer: Arc<LocalTokenizer>) -> RemoteGenerator {
        self.tokenizer = Some(tokenizer);
        self
    }

    /// Requests the log-probability of each token and of its `top_k` alternatives.
    pub fn with_logprobs(mut self, top_k: u32) -> RemoteGenerator {
        self.logprobs = Some(top_k);
        self
    }

    fn prompt(&self, transcript: &Transcript<'_>) -> Result<Value, EngineError> {
        let Some(tokenizer) = &self.tokenizer else {
            let mut text = transcript.prompt.to_owned();
            for step in transcript.steps {
                text.push_str(step);
            }
            return Ok(Value::String(text));
        };
        // Take this problem's segments out, so other problems are not held up while this one
        // tokenises (a problem is solved by one thread at a time).
        let mut segments = self
            .segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&transcript.problem)
            .unwrap_or_default();
        let texts =
            std::iter::once(transcript.prompt).chain(transcript.steps.iter().map(String::as_str));
        let mut ids = Vec::new();
        for (i, text) in texts.enumerate() {
            let reusable = segments.get(i).is_some_and(|(t, _)| t == text);
            if !reusable {
                segments.truncate(i);
                // Only the prompt gets the tokenizer's special tokens (a BOS where the model has one).
                segments.push((text.to_owned(), tokenizer.encode(text, i == 0)?));
            }
            ids.extend_from_slice(&segments[i].1);
        }
        segments.truncate(transcript.steps.len() + 1);
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(transcript.problem, segments);
        Ok(json!(ids))
    }

    /// The request body for one step.
    pub fn request(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<Value, EngineError> {
        let sampling = options.sampling;
        let mut body = json!({
            "model": self.model,
            "prompt": self.prompt(transcript)?,
            "max_tokens": options.max_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "n": 1,
            "stream": false,
        });
        if let Some(sep) = &options.separator {
            body["stop"] = json!([sep]);
        }
        if !sampling.is_greedy() {
            body["seed"] = json!(sampling.step_seed(transcript.problem, transcript.steps.len()));
        }
        if let Some(k) = self.logprobs {
            body["logprobs"] = json!(k);
        }
        Ok(body)
    }
}

impl StepGenerator for RemoteGenerator {
    fn name(&self) -> &str {
        &self.name
    }

    fn generate_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<GeneratedStep, EngineError> {
        let started = Instant::now();
        let mut body = self.request(transcript, options)?;
        if self.ask_verbose.load(Ordering::Relaxed) {
            body["verbose"] = json!(true);
        }
        let separator = options.separator.as_deref();
        let post = |body: &Value| {
            self.client
                .post(Route::V1("completions"), body, |v| {
                    parse_completion(v, separator)
                })
                .map_err(|source| EngineError::Remote {
                    role: self.name.clone(),
                    source: Box::new(source),
                })
        };
        let mut parsed = post(&body)?;
        if parsed.stop_unreported
            && parsed.from_llama_server
            && !self.ask_verbose.swap(true, Ordering::Relaxed)
        {
            // llama-server: ask again the way that reports the stop (its prefix cache makes the
            // repeat cheap), and ask every later request that way.
            body["verbose"] = json!(true);
            parsed = post(&body)?;
        }
        if parsed.stop_unreported && !self.warned_unreported_stop.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                model = %self.name,
                "the server does not say which stop fired (no `stop_reason` or `matched_stop`); \
                 a non-empty step ended by `stop` is taken as ending at the separator"
            );
        }
        let mut step = parsed.step;
        if options.stop_loops {
            // The server wrote the loop out; the step ends where the embedded engine's would.
            crate::engines::repetition::cut_step(&mut step);
        }
        step.usage.seconds = started.elapsed().as_secs_f64();
        Ok(step)
    }

    fn release(&self, problem: u64) {
        self.segments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&problem);
    }
}

/// How a server reported the stop that ended a `"stop"` finish.
#[derive(Debug, Clone, PartialEq)]
pub enum StopReport {
    /// Neither `stop_reason` nor `matched_stop` is present.
    Unreported,
    /// Reported as null: end of sequence (vLLM).
    Null,
    /// A stop string matched.
    Text(String),
    /// A stop token id matched (SGLang reports the end-of-sequence token this way).
    Token(i64),
}

/// Reads llama-server's `__verbose.stop_type` (with `stopping_word`), present when the request
/// asked for `"verbose": true`.
pub fn llama_server_stop(answer: &Value) -> StopReport {
    match answer
        .pointer("/__verbose/stop_type")
        .and_then(Value::as_str)
    {
        Some("eos") => StopReport::Null,
        Some("word") => match answer
            .pointer("/__verbose/stopping_word")
            .and_then(Value::as_str)
        {
            Some(word) => StopReport::Text(word.to_owned()),
            None => StopReport::Unreported,
        },
        _ => StopReport::Unreported,
    }
}

/// Reads vLLM's `stop_reason`, else SGLang's `matched_stop`.
pub fn stop_report(choice: &Value) -> StopReport {
    let field = choice
        .get("stop_reason")
        .or_else(|| choice.get("matched_stop"));
    match field {
        None => StopReport::Unreported,
        Some(Value::Null) => StopReport::Null,
        Some(Value::String(s)) => StopReport::Text(s.clone()),
        Some(Value::Number(n)) => StopReport::Token(n.as_i64().unwrap_or(-1)),
        Some(other) => StopReport::Text(other.to_string()),
    }
}

/// Why the step ended, from `finish_reason` and the stop report.
pub fn finish_of(
    finish_reason: Option<&str>,
    report: &StopReport,
    separator: Option<&str>,
    text: &str,
) -> Result<FinishReason, String> {
    match finish_reason {
        Some("length") => Ok(FinishReason::Length),
        Some("stop") => Ok(match report {
            StopReport::Text(s) if Some(s.as_str()) == separator => FinishReason::Separator,
            StopReport::Text(_) | StopReport::Null | StopReport::Token(_) => {
                FinishReason::EndOfSequence
            }
            StopReport::Unreported if separator.is_some() && !text.is_empty() => {
                FinishReason::Separator
            }
            StopReport::Unreported => FinishReason::EndOfSequence,
        }),
        Some(other) => Err(format!(
            "`finish_reason` is {other:?}, expected \"stop\" or \"length\""
        )),
        None => Err("`finish_reason` is missing or null".into()),
    }
}

/// A parsed completion.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedCompletion {
    pub step: GeneratedStep,
    pub stop_unreported: bool,
    /// The answer came from llama.cpp's `llama-server`, which says which stop fired only when
    /// asked with `"verbose": true`.
    pub from_llama_server: bool,
}

/// Reads a `/v1/completions` answer into a step (time not yet set).
pub fn parse_completion(v: &Value, separator: Option<&str>) -> Result<ParsedCompletion, String> {
    let choice = v
        .pointer("/choices/0")
        .ok_or("no `choices[0]` in the answer")?;
    let mut text = choice
        .get("text")
        .and_then(Value::as_str)
        .ok_or("`choices[0].text` is missing or not a string")?
        .to_owned();
    let report = match stop_report(choice) {
        StopReport::Unreported => llama_server_stop(v),
        reported => reported,
    };
    let finish = finish_of(
        choice.get("finish_reason").and_then(Value::as_str),
        &report,
        separator,
        &text,
    )?;
    if finish == FinishReason::Separator {
        let sep = separator.expect("a separator finish has a separator");
        // Servers strip the stop string; one asked to keep it (vLLM's
        // `include_stop_str_in_output`) already ends with it.
        if !text.ends_with(sep) {
            text.push_str(sep);
        }
    }
    let (token_logprobs, token_entropies) = match choice.get("logprobs") {
        None | Some(Value::Null) => (Vec::new(), Vec::new()),
        Some(lp) => parse_logprobs(lp)?,
    };
    let usage = v.get("usage");
    let count = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
    let prompt_tokens = count("prompt_tokens").unwrap_or(0);
    let cached = usage
        .and_then(|u| u.pointer("/prompt_tokens_details/cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    let generated = count("completion_tokens").unwrap_or(token_logprobs.len() as u64);
    Ok(ParsedCompletion {
        stop_unreported: report == StopReport::Unreported && finish != FinishReason::Length,
        // Only llama-server reports `timings`.
        from_llama_server: v.get("timings").is_some(),
        step: GeneratedStep {
            text,
            finish,
            token_logprobs,
            token_entropies,
            usage: Usage {
                prefill_tokens: prompt_tokens.saturating_sub(cached),
                generated_tokens: generated,
                ..Usage::default()
            },
        },
    })
}

/// Token log-probabilities and top-k entropies, from either shape servers use for completions:
/// the legacy `{"token_logprobs": [..], "top_logprobs": [{token: lp}, ..]}` (vLLM, SGLang) or
/// the chat-style `{"content": [{"logprob", "top_logprobs": [{"token", "logprob"}]}]}`
/// (llama-server).
pub fn parse_logprobs(lp: &Value) -> Result<(Vec<f32>, Vec<f32>), String> {
    let mut logprobs = Vec::new();
    let mut entropies = Vec::new();
    if let Some(values) = lp.get("token_logprobs").and_then(Value::as_array) {
        for v in values {
            // The first token of an echoed prompt has null; completions have none.
            logprobs.push(v.as_f64().unwrap_or(0.0) as f32);
        }
        if let Some(tops) = lp.get("top_logprobs").and_then(Value::as_array) {
            for top in tops {
                let values: Vec<f64> = top
                    .as_object()
                    .map(|m| m.values().filter_map(Value::as_f64).collect())
                    .unwrap_or_default();
                entropies.push(top_k_entropy(&values));
            }
        }
    } else if let Some(content) = lp.get("content").and_then(Value::as_array) {
        for entry in content {
            let l = entry
                .get("logprob")
                .and_then(Value::as_f64)
                .ok_or("a `logprobs.content` entry has no `logprob`")?;
            logprobs.push(l as f32);
            if let Some(top) = entry.get("top_logprobs").and_then(Value::as_array) {
                let values: Vec<f64> = top
                    .iter()
                    .filter_map(|t| t.get("logprob").and_then(Value::as_f64))
                    .collect();
                entropies.push(top_k_entropy(&values));
            }
        }
    } else {
        return Err("`logprobs` has neither `token_logprobs` nor `content`".into());
    }
    if !entropies.is_empty() && entropies.len() != logprobs.len() {
        entropies.clear();
    }
    Ok((logprobs, entropies))
}

/// `-Σ p ln p` over the given alternatives (natural-log probabilities): the entropy of the
/// distribution restricted to them, without renormalising.
pub fn top_k_entropy(logprobs: &[f64]) -> f32 {
    logprobs
        .iter()
        .filter(|l| l.is_finite())
        .map(|&l| -l.exp() * l)
        .sum::<f64>() as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEP: Option<&str> = Some("\n\n");

    #[test]
    fn vllm_stop_on_the_separator_gets_the_separator_back() {
        let v = json!({"choices": [{"index": 0, "text": "x = 2.", "logprobs": null,
            "finish_reason": "stop", "stop_reason": "\n\n"}],
            "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}});
        let p = parse_completion(&v, SEP).unwrap();
        assert_eq!(p.step.text, "x = 2.\n\n");
        assert_eq!(p.step.finish, FinishReason::Separator);
        assert_eq!(p.step.usage.prefill_tokens, 30);
        assert_eq!(p.step.usage.generated_tokens, 5);
        assert!(!p.stop_unreported);
    }

    #[test]
    fn llama_servers_verbose_stop_type_tells_end_of_sequence_from_the_separator() {
        let eos = json!({"choices": [{"text": "\\boxed{4}", "finish_reason": "stop"}],
            "timings": {}, "__verbose": {"stop_type": "eos", "stopping_word": ""}});
        let p = parse_completion(&eos, Some("\n\n")).unwrap();
        assert_eq!(p.step.finish, FinishReason::EndOfSequence);
        assert_eq!(p.step.text, "\\boxed{4}");
        assert!(!p.stop_unreported && p.from_llama_server);
        let word = json!({"choices": [{"text": "Step one.", "finish_reason": "stop"}],
            "timings": {}, "__verbose": {"stop_type": "word", "stopping_word": "\n\n"}});
        let p = parse_completion(&word, Some("\n\n")).unwrap();
        assert_eq!(p.step.finish, FinishReason::Separator);
        assert_eq!(p.step.text, "Step one.\n\n");
        // Without `__verbose` llama-server says nothing of the stop, and is recognised.
        let bare = json!({"choices": [{"text": "Step one.", "finish_reason": "stop"}],
            "timings": {}});
        let p = parse_completion(&bare, Some("\n\n")).unwrap();
        assert!(p.stop_unreported && p.from_llama_server);
    }

    #[test]
    fn vllm_null_stop_reason_is_end_of_sequence() {
        let v = json!({"choices": [{"text": "\\boxed{4}", "finish_reason": "stop", "stop_reason": null}]});
        let p = parse_completion(&v, SEP).unwrap();
        assert_eq!(p.step.text, "\\boxed{4}");
        assert_eq!(p.step.finish, FinishReason::EndOfSequence);
    }

    #[test]
    fn sglang_integer_matched_stop_is_end_of_sequence() {
        let v =
            json!({"choices": [{"text": "done", "finish_reason": "stop", "matched_stop": 151645}]});
        assert_eq!(
            parse_completion(&v, SEP).unwrap().step.finish,
            FinishReason::EndOfSequence
        );
        let v =
            json!({"choices": [{"text": "more", "finish_reason": "stop", "matched_stop": "\n\n"}]});
        let p = parse_completion(&v, SEP).unwrap();
        assert_eq!(p.step.finish, FinishReason::Separator);
        assert_eq!(p.step.text, "more\n\n");
    }

    #[test]
    fn a_length_finish_keeps_the_text_as_is() {
        let v =
            json!({"choices": [{"text": "abc", "finish_reason": "length", "stop_reason": null}]});
        let p = parse_completion(&v, SEP).unwrap();
        assert_eq!(
            (p.step.text.as_str(), p.step.finish),
            ("abc", FinishReason::Length)
        );
    }

    #[test]
    fn an_unreported_stop_is_read_by_the_text() {
        let v = json!({"choices": [{"text": "step", "finish_reason": "stop"}]});
        let p = parse_completion(&v, SEP).unwrap();
        assert_eq!(p.step.finish, FinishReason::Separator);
        assert!(p.stop_unreported);
        let v = json!({"choices": [{"text": "", "finish_reason": "stop"}]});
        assert_eq!(
            parse_completion(&v, SEP).unwrap().step.finish,
            FinishReason::EndOfSequence
        );
    }

    #[test]
    fn a_kept_stop_string_is_not_doubled() {
        let v =
            json!({"choices": [{"text": "a\n\n", "finish_reason": "stop", "stop_reason": "\n\n"}]});
        assert_eq!(parse_completion(&v, SEP).unwrap().step.text, "a\n\n");
    }

    #[test]
    fn cached_prompt_tokens_are_not_counted_as_prefill() {
        let v = json!({"choices": [{"text": "a", "finish_reason": "length"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 1,
                      "prompt_tokens_details": {"cached_tokens": 96}}});
        assert_eq!(
            parse_completion(&v, SEP).unwrap().step.usage.prefill_tokens,
            4
        );
    }

    #[test]
    fn an_aborted_or_missing_finish_is_an_error_naming_the_field() {
        let v = json!({"choices": [{"text": "a", "finish_reason": "abort"}]});
        assert!(
            parse_completion(&v, SEP)
                .unwrap_err()
                .contains("finish_reason")
        );
        let v = json!({"choices": []});
        assert!(parse_completion(&v, SEP).unwrap_err().contains("choices"));
    }

    #[test]
    fn both_logprob_shapes_give_logprobs_and_top_k_entropies() {
        let legacy = json!({"tokens": ["a", "b"], "token_logprobs": [-0.1, -2.0],
            "top_logprobs": [{"a": -0.1, "c": -2.4}, {"b": -2.0, "d": -0.2}], "text_offset": [0, 1]});
        let (lp, ent) = parse_logprobs(&legacy).unwrap();
        assert_eq!(lp, vec![-0.1, -2.0]);
        let h0 = top_k_entropy(&[-0.1, -2.4]);
        assert!((ent[0] - h0).abs() < 1e-6 && h0 > 0.0);
        let content = json!({"content": [{"id": 1, "token": "a", "logprob": -0.1, "bytes": [97],
            "top_logprobs": [{"id": 1, "token": "a", "logprob": -0.1}, {"id": 2, "token": "c", "logprob": -2.4}]}]});
        let (lp2, ent2) = parse_logprobs(&content).unwrap();
        assert_eq!(lp2, vec![-0.1]);
        assert!((ent2[0] - h0).abs() < 1e-6);
    }

    #[test]
    fn a_certain_token_has_zero_entropy() {
        assert_eq!(top_k_entropy(&[0.0]), 0.0);
        assert!((top_k_entropy(&[0.5f64.ln(), 0.5f64.ln()]) - 2f32.ln()).abs() < 1e-6);
    }
}
