//! The step cache: work a sweep has already paid for, kept on disk and replayed.
//!
//! With greedy decoding a model's next step depends only on the text it continues, and a score only
//! on the text it reads. Grid points of a sweep share their first steps (every `rsd` threshold
//! proposes the same first draft step), so [`CachedGenerator`] and [`CachedScorer`] wrap any
//! [`StepGenerator`] / [`StepScorer`] and look each call up by (model identity, options, exact
//! context text) in a [`redb`] file before calling through.
//!
//! A replayed call returns the usage measured when it was first computed, marked in
//! [`Usage::replayed_seconds`] so the loop can report latency as if the work had been done now and
//! say how much of it was replayed. Sampled (non-greedy) calls are never cached: their output is not
//! a function of the context alone.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{Database, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::backend::{EngineError, Scored, StepGenerator, StepScorer};
use crate::types::{GeneratedStep, StepOptions, Transcript, Usage};

const STEPS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("steps-v1");

#[derive(Debug, thiserror::Error)]
#[error("step cache {path}: {message}")]
pub struct CacheError {
    pub path: PathBuf,
    pub message: String,
}

/// Hits and misses since the cache was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
}

/// An on-disk map from a call's exact inputs to its output and measured cost.
pub struct StepCache {
    db: Database,
    path: PathBuf,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl StepCache {
    /// Opens the cache file, creating it (and its directory) if needed.
    pub fn open(path: &Path) -> Result<Arc<StepCache>, CacheError> {
        let error = |message: String| CacheError {
            path: path.to_owned(),
            message,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| error(format!("cannot create {}: {e}", dir.display())))?;
        }
        let db = Database::create(path).map_err(|e| error(e.to_string()))?;
        Ok(Arc::new(StepCache {
            db,
            path: path.to_owned(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        }))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    fn engine_error(&self, e: impl std::fmt::Display) -> EngineError {
        EngineError::Invalid(format!("step cache {}: {e}", self.path.display()))
    }

    fn get<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, EngineError> {
        let txn = self.db.begin_read().map_err(|e| self.engine_error(e))?;
        let table = match txn.open_table(STEPS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(self.engine_error(e)),
        };
        let Some(bytes) = table.get(key).map_err(|e| self.engine_error(e))? else {
            return Ok(None);
        };
        // An entry this version cannot read is a miss, recomputed and overwritten.
        Ok(serde_json::from_slice(bytes.value()).ok())
    }

    fn put<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), EngineError> {
        let bytes = serde_json::to_vec(value).map_err(|e| self.engine_error(e))?;
        let txn = self.db.begin_write().map_err(|e| self.engine_error(e))?;
        {
            let mut table = txn.open_table(STEPS).map_err(|e| self.engine_error(e))?;
            table
                .insert(key, bytes.as_slice())
                .map_err(|e| self.engine_error(e))?;
        }
        txn.commit().map_err(|e| self.engine_error(e))
    }

    /// Looks `key` up, or computes, stores and returns it. `usage_of` reaches the usage inside a
    /// value so a replay can be marked.
    fn get_or_compute<T: Serialize + DeserializeOwned>(
        &self,
        key: &[u8],
        usage_of: impl Fn(&mut T) -> &mut Usage,
        compute: impl FnOnce() -> Result<T, EngineError>,
    ) -> Result<T, EngineError> {
        if let Some(mut value) = self.get::<T>(key)? {
            self.hits.fetch_add(1, Ordering::Relaxed);
            let usage = usage_of(&mut value);
            usage.replayed_calls = 1;
            usage.replayed_seconds = usage.seconds;
            return Ok(value);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        let value = compute()?;
        self.put(key, &value)?;
        Ok(value)
    }
}

/// The exact inputs of a call, as the cache key. Field order is part of the format.
#[derive(Serialize)]
struct Key<'a> {
    kind: &'static str,
    identity: &'a str,
    options: Option<&'a StepOptions>,
    prompt: &'a str,
    steps: &'a [String],
    step: Option<&'a str>,
}

impl Key<'_> {
    fn bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("keys are plain strings")
    }
}

/// A generator whose greedy steps are looked up in a [`StepCache`] first.
pub struct CachedGenerator<'a> {
    inner: &'a dyn StepGenerator,
    identity: String,
    cache: Arc<StepCache>,
}

impl<'a> CachedGenerator<'a> {
    /// `identity` must change whenever the model would write differently (model file, engine).
    pub fn new(inner: &'a dyn StepGenerator, identity: String, cache: Arc<StepCache>) -> Self {
        CachedGenerator {
            inner,
            identity,
            cache,
        }
    }
}

impl StepGenerator for CachedGenerator<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn generate_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
    ) -> Result<GeneratedStep, EngineError> {
        if !options.sampling.is_greedy() {
            return self.inner.generate_step(transcript, options);
        }
        let key = Key {
            kind: "generate",
            identity: &self.identity,
            options: Some(options),
            prompt: transcript.prompt,
            steps: transcript.steps,
            step: None,
        };
        self.cache.get_or_compute(
            &key.bytes(),
            |s: &mut GeneratedStep| &mut s.usage,
            || self.inner.generate_step(transcript, options),
        )
    }

    fn verify_step(
        &self,
        transcript: &Transcript<'_>,
        options: &StepOptions,
        proposal: &str,
    ) -> Result<GeneratedStep, EngineError> {
        if !options.sampling.is_greedy() {
            return self.inner.verify_step(transcript, options, proposal);
        }
        // The text equals the unverified step's, but the cost does not: its own entry.
        let key = Key {
            kind: "verify",
            identity: &self.identity,
            options: Some(options),
            prompt: transcript.prompt,
            steps: transcript.steps,
            step: Some(proposal),
        };
        self.cache.get_or_compute(
            &key.bytes(),
            |s: &mut GeneratedStep| &mut s.usage,
            || self.inner.verify_step(transcript, options, proposal),
        )
    }

    fn release(&self, problem: u64) {
        self.inner.release(problem);
    }
}

/// A scorer whose scores are looked up in a [`StepCache`] first.
pub struct CachedScorer<'a> {
    inner: &'a dyn StepScorer,
    identity: String,
    cache: Arc<StepCache>,
}

impl<'a> CachedScorer<'a> {
    /// `identity` must change whenever the scorer would score differently.
    pub fn new(inner: &'a dyn StepScorer, identity: String, cache: Arc<StepCache>) -> Self {
        CachedScorer {
            inner,
            identity,
            cache,
        }
    }
}

impl StepScorer for CachedScorer<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn score_step(&self, transcript: &Transcript<'_>, step: &str) -> Result<Scored, EngineError> {
        let key = Key {
            kind: "score",
            identity: &self.identity,
            options: None,
            prompt: transcript.prompt,
            steps: transcript.steps,
            step: Some(step),
        };
        self.cache.get_or_compute(
            &key.bytes(),
            |s: &mut Scored| &mut s.usage,
            || self.inner.score_step(transcript, step),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{FinishReason, Sampling};
    use std::sync::Mutex;

    /// Counts the calls that reach it and answers with the length of its context.
    struct Counting {
        calls: Mutex<u32>,
    }

    impl StepGenerator for Counting {
        fn name(&self) -> &str {
            "counting"
        }
        fn generate_step(
            &self,
            transcript: &Transcript<'_>,
            _options: &StepOptions,
        ) -> Result<GeneratedStep, EngineError> {
            *self.calls.lock().unwrap() += 1;
            Ok(GeneratedStep {
                text: format!("{} steps so far\n\n", transcript.steps.len()),
                finish: FinishReason::Separator,
                token_logprobs: vec![-0.25, -1.5],
                token_entropies: vec![0.5, 0.125],
                usage: Usage {
                    generated_tokens: 2,
                    seconds: 0.75,
                    ..Usage::default()
                },
            })
        }
        fn release(&self, _problem: u64) {}
    }

    fn options(temperature: f32) -> StepOptions {
        StepOptions {
            separator: Some("\n\n".into()),
            max_tokens: 64,
            stop_loops: true,
            sampling: Sampling {
                temperature,
                ..Sampling::GREEDY
            },
        }
    }

    #[test]
    fn replays_identical_steps_with_their_recorded_cost() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache.redb");
        let inner = Counting {
            calls: Mutex::new(0),
        };
        let steps = vec!["a\n\n".to_string()];
        let transcript = Transcript {
            question: "",
            problem: 1,
            prompt: "p",
            steps: &steps,
        };
        let first = {
            let cache = StepCache::open(&path).unwrap();
            let g = CachedGenerator::new(&inner, "m".into(), cache.clone());
            let first = g.generate_step(&transcript, &options(0.0)).unwrap();
            assert_eq!(cache.stats(), CacheStats { hits: 0, misses: 1 });
            assert_eq!(first.usage.replayed_calls, 0);
            first
        };
        // Reopened: the entry survived on disk.
        let cache = StepCache::open(&path).unwrap();
        let g = CachedGenerator::new(&inner, "m".into(), cache.clone());
        let again = g.generate_step(&transcript, &options(0.0)).unwrap();
        assert_eq!(*inner.calls.lock().unwrap(), 1);
        assert_eq!(again.text, first.text);
        assert_eq!(again.token_logprobs, first.token_logprobs);
        assert_eq!(again.usage.seconds, 0.75);
        assert_eq!(again.usage.replayed_seconds, 0.75);
        assert_eq!(again.usage.replayed_calls, 1);
        assert_eq!(cache.stats(), CacheStats { hits: 1, misses: 0 });

        // A different model identity, context or option is a different entry.
        let other = CachedGenerator::new(&inner, "m2".into(), cache.clone());
        other.generate_step(&transcript, &options(0.0)).unwrap();
        let longer = vec!["a\n\n".to_string(), "b\n\n".to_string()];
        g.generate_step(
            &Transcript {
                steps: &longer,
                ..transcript
            },
            &options(0.0),
        )
        .unwrap();
        assert_eq!(*inner.calls.lock().unwrap(), 3);
    }

    #[test]
    fn sampled_steps_are_never_cached() {
        let dir = tempfile::tempdir().unwrap();
        let cache = StepCache::open(&dir.path().join("c.redb")).unwrap();
        let inner = Counting {
            calls: Mutex::new(0),
        };
        let g = CachedGenerator::new(&inner, "m".into(), cache.clone());
        let transcript = Transcript {
            question: "",
            problem: 1,
            prompt: "p",
            steps: &[],
        };
        g.generate_step(&transcript, &options(0.7)).unwrap();
        g.generate_step(&transcript, &options(0.7)).unwrap();
        assert_eq!(*inner.calls.lock().unwrap(), 2);
        assert_eq!(cache.stats(), CacheStats::default());
    }

    #[test]
    fn an_unwritable_location_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, "x").unwrap();
        let err = StepCache::open(&file.join("cache.redb")).err().unwrap();
        assert!(err.to_string().contains("not-a-dir"), "{err}");
    }
}
