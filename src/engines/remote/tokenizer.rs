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

#[cfg(test)]
mod tests {
    use super::*;

    /// tests/data/byte-tokenizer.json: one token per byte (ids 0–255 are the byte values), plus
    /// `<|endoftext|>` 256, `<extra_0>` 257, `<|im_start|>` 258, `<|im_end|>` 259.
    fn bytes() -> LocalTokenizer {
        LocalTokenizer::load(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/byte-tokenizer.json"),
        )
        .unwrap()
    }

    #[test]
    fn special_markup_is_one_token_and_text_is_bytes() {
        let t = bytes();
        assert_eq!(t.encode("a\n", false).unwrap(), vec![97, 10]);
        assert_eq!(
            t.encode("<|endoftext|>x<extra_0>", false).unwrap(),
            vec![256, 120, 257]
        );
        assert_eq!(t.token_id("<extra_0>"), Some(257));
    }

    #[test]
    fn a_missing_tokenizer_file_is_named() {
        let err = LocalTokenizer::load(Path::new("/nonexistent/tokenizer.json"))
            .err()
            .unwrap();
        assert!(
            err.to_string().contains("/nonexistent/tokenizer.json"),
            "{err}"
        );
    }
}
