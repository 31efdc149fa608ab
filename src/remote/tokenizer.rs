//! Local tokenization for the remote back-ends, from a Hugging Face `tokenizer.json`: the
//! Skywork PRM's input is token ids built here, and generation can send prompts as token ids.

use std::path::{Path, PathBuf};

use crate::backend::EngineError;

/// A `tokenizer.json` loaded with the `tokenizers` crate.
pub struct LocalTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl LocalTokenizer {
    pub fn load(path: &Path) -> Result<LocalTokenizer, EngineError> {
        let inner =
            tokenizers::Tokenizer::from_file(path).map_err(|source| EngineError::Tokenizer {
                path: path.to_owned(),
                source,
            })?;
        Ok(LocalTokenizer {
            inner,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Token ids of `text`; special-token markup in the text is recognised. `add_special` adds
    /// what the tokenizer's post-processor adds (a BOS, for models that use one).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>, EngineError> {
        self.inner
            .encode(text, add_special)
            .map(|e| e.get_ids().to_vec())
            .map_err(|source| EngineError::Tokenizer {
                path: self.path.clone(),
                source,
            })
    }

    /// The id of a token written out, e.g. `"<extra_0>"`.
    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }
}
