//! The paper's router served remotely: a token-classification model behind vLLM's `/pooling`,
//! read as the softmax over the last two logits at the last token.
//!
//! Its input is the question, then every earlier step annotated with who wrote it
//! (`"Model 0: "` draft, `"Model 1: "` target), then the proposed draft step, annotated as the
//! draft's: `question + "\n\n" + "Model 0: " + step 1 + "Model 1: " + step 2 + … + "Model 0: " +
//! draft step`. A router model served this way must be trained on that format.

use std::time::Instant;

use serde_json::json;

use super::http::{Client, Route};
use super::prm::{pooling_rows, positive_probability};
use crate::backend::{EngineError, Router, RouterInput};
use crate::types::Author;

pub struct RemoteRouter {
    name: String,
    client: Client,
    model: String,
}

impl RemoteRouter {
    pub fn new(client: Client, model: &str) -> RemoteRouter {
        RemoteRouter {
            name: format!(
                "{model} (remote router at {})",
                client.endpoints().join(", ")
            ),
            client,
            model: model.to_owned(),
        }
    }
}

/// The annotated text the router reads.
pub fn router_input(input: &RouterInput<'_>) -> String {
    let mut text = format!("{}\n\n", input.question);
    for (author, step) in input.previous_authors.iter().zip(input.previous_steps) {
        text.push_str(author.router_tag());
        text.push_str(step);
    }
    text.push_str(Author::Draft.router_tag());
    text.push_str(&input.step.text);
    text
}

impl Router for RemoteRouter {
    fn name(&self) -> &str {
        &self.name
    }

    fn score(&self, input: &RouterInput<'_>) -> Result<f32, EngineError> {
        let started = Instant::now();
        let body =
            json!({"model": self.model, "input": router_input(input), "encoding_format": "float"});
        let y = self
            .client
            .post(Route::Root("pooling"), &body, |v| {
                let rows = pooling_rows(v)?;
                let last = rows.last().ok_or("the answer has no rows")?;
                positive_probability(last)
            })
            .map_err(|source| EngineError::Remote {
                role: "router".into(),
                source: Box::new(source),
            })?;
        tracing::trace!(
            seconds = started.elapsed().as_secs_f64(),
            y,
            "remote router"
        );
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, GeneratedStep, Usage};

    #[test]
    fn earlier_steps_are_annotated_with_their_author() {
        let step = GeneratedStep {
            text: "So 4.\n\n".into(),
            finish: FinishReason::Separator,
            token_logprobs: vec![],
            token_entropies: vec![],
            usage: Usage::default(),
        };
        let steps = ["a\n\n".to_owned(), "b\n\n".to_owned()];
        let text = router_input(&RouterInput {
            problem: 0,
            prompt: "",
            question: "Q?",
            previous_authors: &[Author::Draft, Author::Target],
            previous_steps: &steps,
            step: &step,
            prm_score: None,
        });
        assert_eq!(text, "Q?\n\nModel 0: a\n\nModel 1: b\n\nModel 0: So 4.\n\n");
    }
}
