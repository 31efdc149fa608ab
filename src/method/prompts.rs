//! Prompt templates: how a question becomes the text a model continues.
//!
//! The templates are written out here rather than taken from each GGUF file so that draft and
//! target read byte-identical prompts (their steps are appended to the same transcript), and so
//! the prompt matches the reference evaluation (`qwen25-math-cot`) whatever model is loaded.

use std::fmt;
use std::str::FromStr;

/// The Qwen2.5-Math chain-of-thought instruction.
pub const COT_SYSTEM: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// Who wrote a message of a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatRole {
    System,
    User,
    Assistant,
}

impl ChatRole {
    pub fn name(self) -> &'static str {
        match self {
            ChatRole::System => "system",
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub role: ChatRole,
    pub content: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptTemplate {
    /// ChatML with the Qwen2.5-Math CoT system prompt (the reference default).
    Qwen25MathCot,
    /// Llama-3 chat format with the same instruction. The BOS token is left to the tokenizer.
    Llama3MathCot,
}

impl PromptTemplate {
    pub const NAMES: [&'static str; 2] = ["qwen25-math-cot", "llama3-math-cot"];

    pub fn name(self) -> &'static str {
        match self {
            PromptTemplate::Qwen25MathCot => "qwen25-math-cot",
            PromptTemplate::Llama3MathCot => "llama3-math-cot",
        }
    }

    pub fn render(self, question: &str) -> String {
        let question = question.trim();
        match self {
            PromptTemplate::Qwen25MathCot => format!(
                "<|im_start|>system\n{COT_SYSTEM}<|im_end|>\n<|im_start|>user\n{question}<|im_end|>\n<|im_start|>assistant\n"
            ),
            PromptTemplate::Llama3MathCot => format!(
                "<|start_header_id|>system<|end_header_id|>\n\n{COT_SYSTEM}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n{question}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
            ),
        }
    }
}

impl PromptTemplate {
    /// Renders a conversation in the template's chat format and opens the assistant's turn.
    /// Without a system message the template's own instruction is the system message, so a
    /// single user message renders exactly as [`render`](PromptTemplate::render) renders it.
    pub fn render_chat(self, messages: &[ChatMessage]) -> String {
        let mut out = String::new();
        if !messages.iter().any(|m| m.role == ChatRole::System) {
            self.push_turn(&mut out, ChatRole::System, COT_SYSTEM);
        }
        for m in messages {
            self.push_turn(&mut out, m.role, m.content.trim());
        }
        match self {
            PromptTemplate::Qwen25MathCot => out.push_str("<|im_start|>assistant\n"),
            PromptTemplate::Llama3MathCot => {
                out.push_str("<|start_header_id|>assistant<|end_header_id|>\n\n")
            }
        }
        out
    }

    fn push_turn(self, out: &mut String, role: ChatRole, content: &str) {
        let role = role.name();
        match self {
            PromptTemplate::Qwen25MathCot => {
                out.push_str(&format!("<|im_start|>{role}\n{content}<|im_end|>\n"))
            }
            PromptTemplate::Llama3MathCot => out.push_str(&format!(
                "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>"
            )),
        }
    }
}

impl fmt::Display for PromptTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for PromptTemplate {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "qwen25-math-cot" => Ok(PromptTemplate::Qwen25MathCot),
            "llama3-math-cot" => Ok(PromptTemplate::Llama3MathCot),
            other => Err(format!(
                "unknown prompt template `{other}` (known: {})",
                PromptTemplate::NAMES.join(", ")
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qwen_template_is_chatml_with_the_cot_instruction() {
        let p = PromptTemplate::Qwen25MathCot.render(" 1+1? ");
        assert_eq!(
            p,
            "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n<|im_start|>user\n1+1?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn one_user_message_renders_as_the_question_prompt() {
        for name in PromptTemplate::NAMES {
            let template: PromptTemplate = name.parse().unwrap();
            let chat = template.render_chat(&[ChatMessage {
                role: ChatRole::User,
                content: " 1+1? ".into(),
            }]);
            assert_eq!(chat, template.render(" 1+1? "), "{name}");
        }
    }

    #[test]
    fn a_system_message_replaces_the_instruction_and_turns_keep_their_order() {
        let p = PromptTemplate::Qwen25MathCot.render_chat(&[
            ChatMessage {
                role: ChatRole::System,
                content: "Be brief.".into(),
            },
            ChatMessage {
                role: ChatRole::User,
                content: "2+2?".into(),
            },
            ChatMessage {
                role: ChatRole::Assistant,
                content: "4".into(),
            },
            ChatMessage {
                role: ChatRole::User,
                content: "And 3+3?".into(),
            },
        ]);
        assert_eq!(
            p,
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n<|im_start|>user\nAnd 3+3?<|im_end|>\n<|im_start|>assistant\n"
        );
    }

    #[test]
    fn names_round_trip() {
        for name in PromptTemplate::NAMES {
            assert_eq!(name.parse::<PromptTemplate>().unwrap().name(), name);
        }
    }
}
