//! A run over a dataset: problems in order, one at a time by default (latency is per problem at
//! batch size 1, as in the paper) or several in flight against remote engines
//! (`concurrency`), results appended and flushed as each finishes, metrics at the end.
//!
//! - `results.jsonl` is the source of truth. A run into a directory that has one resumes: finished
//!   problems are skipped, and a line cut short by a crash is dropped. `metrics.json` is always
//!   recomputed from the whole file, so resumed runs report every problem exactly once.
//! - `generate` runs also write `steps.jsonl`; its records are written before the problem's result
//!   line, and records of problems with no result line are dropped on resume.

use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::eval::datasets::Problem;
use crate::method::policy::RunType;
use crate::method::speculate::{
    self, Limits, Models, Rule, SolveError, StepSink, Stop, Task, TimeSplit, TraceStep,
};
use crate::types::{Author, PerRole, Usage};

pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot use output directory {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: not a result record")]
    Corrupt {
        path: PathBuf,
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error(
        "{path} holds a `{found}` run; this is a `{wanted}` run. Pass --overwrite to replace it, or choose another --output-dir"
    )]
    Mismatch {
        path: PathBuf,
        found: String,
        wanted: String,
    },
    #[error(transparent)]
    Busy(#[from] DirBusy),
    #[error("interrupted; finished problems are saved and the next run resumes")]
    Interrupted,
    #[error("{0}")]
    Solve(#[from] SolveError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_owned(),
        source,
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct TokenCounts {
    pub draft: u64,
    pub target: u64,
    pub discarded_draft: u64,
    /// Draft tokens the target kept by verification instead of writing them.
    #[serde(default)]
    pub accepted_draft: u64,
}

/// One line of `results.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub format_version: u32,
    pub idx: usize,
    pub run_type: RunType,
    pub threshold: f64,
    pub question: String,
    pub gt: String,
    pub pred: Option<String>,
    pub correct: bool,
    pub latency_s: f64,
    /// The part of `latency_s` replayed from the step cache (measured when first computed).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub replayed_s: f64,
    pub tokens: TokenCounts,
    pub stop: Option<Stop>,
    pub prefill_tokens: PerRole<u64>,
    /// The engine work behind `tokens` and `prefill_tokens`, per role: what the latency model
    /// (`reporting::cost`) prices. Absent from records written before it was counted.
    #[serde(default)]
    pub work: PerRole<Work>,
    pub model_time_s: PerRole<f64>,
    /// Where `latency_s` went.
    #[serde(default)]
    pub time_split_s: TimeSplit,
    pub steps: Vec<TraceStep>,
    /// Set when the problem failed; it then counts as wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Problems the run kept in flight while this one was solved (`--concurrency`). Above 1,
    /// `latency_s` includes waiting for the other problems' share of each decode round.
    #[serde(default = "one")]
    pub in_flight: usize,
}

fn one() -> usize {
    1
}

/// How a role's tokens were read and written (`Usage`'s counts the latency model prices).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// Reads of two tokens or more.
    pub read_calls: u64,
    /// Reads of one token.
    pub one_token_reads: u64,
    /// Context length at each token written, summed.
    pub written_depth: u64,
    /// Calls that verified a proposal.
    pub proposal_calls: u64,
}

impl Work {
    pub fn of(u: &Usage) -> Work {
        Work {
            read_calls: u.read_calls,
            one_token_reads: u.one_token_reads,
            written_depth: u.written_depth,
            proposal_calls: u.proposal_calls,
        }
    }
}

impl ResultRecord {
    /// The record of a problem before (or without) a solution: nothing solved, nothing spent.
    fn unsolved(problem: &Problem, spec: &RunSpec<'_>) -> ResultRecord {
        ResultRecord {
            format_version: FORMAT_VERSION,
            idx: problem.idx,
            run_type: spec.run_type,
            threshold: spec.threshold,
            question: problem.question.clone(),
            gt: problem.gold.clone(),
            pred: None,
            correct: false,
            latency_s: 0.0,
            replayed_s: 0.0,
            tokens: TokenCounts::default(),
            stop: None,
            prefill_tokens: PerRole::default(),
            work: PerRole::default(),
            model_time_s: PerRole::default(),
            time_split_s: TimeSplit::default(),
            steps: Vec::new(),
            error: None,
            in_flight: spec.concurrency.max(1),
        }
    }
}

/// One line of `steps.jsonl` (generate runs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepsLine {
    pub format_version: u32,
    pub idx: usize,
    pub question: String,
    pub feature_names: Vec<String>,
    #[serde(flatten)]
    pub record: speculate::StepRecord,
}

/// `metrics.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    pub format_version: u32,
    pub run_type: RunType,
    pub threshold: f64,
    pub dataset: String,
    pub n: usize,
    pub accuracy: f64,
    pub mean_latency_s: f64,
    pub p50_latency_s: f64,
    pub p90_latency_s: f64,
    /// Seconds of the latencies above replayed from the step cache: costs measured when the
    /// work was first done, by an earlier run or grid point.
    #[serde(default)]
    pub replayed_latency_s: f64,
    /// Wall-clock seconds of every invocation that contributed, summed.
    pub wall_time_s: f64,
    pub draft_tokens: u64,
    pub target_tokens: u64,
    pub discarded_draft_tokens: u64,
    /// Draft tokens the target kept by verification (not counted in `target_tokens`).
    #[serde(default)]
    pub accepted_draft_tokens: u64,
    pub steps: u64,
    pub target_step_fraction: f64,
    /// Steps sent to the target on a glimpse of the draft's step, before the draft finished it
    /// (`router` with an early rule); counted in `target_step_fraction` too.
    #[serde(default)]
    pub early_steps: u64,
    /// Draft steps kept / draft steps proposed; null when no draft step was proposed.
    pub acceptance_rate: Option<f64>,
    pub prefill_tokens: PerRole<u64>,
    pub model_time_s: PerRole<f64>,
    /// Where the latencies went, summed over problems (divide by `n` for a per-problem mean).
    #[serde(default)]
    pub time_split_s: TimeSplit,
    pub errors: usize,
    /// What scored steps, where the run type uses a PRM (the embedded ones are stand-ins).
    pub prm: Option<String>,
    pub router: Option<String>,
    /// The most problems the run kept in flight (`--concurrency`). At 1 the latencies are the
    /// paper's batch-1 latencies; above 1 they include waiting on the other problems in flight,
    /// and `problems_per_minute` is the throughput figure.
    #[serde(default = "one")]
    pub concurrency: usize,
    /// Problems finished per minute of wall-clock time (`n` over `wall_time_s`).
    #[serde(default)]
    pub problems_per_minute: f64,
}

impl Metrics {
    /// A few lines a person reads at a glance: accuracy, latency, who wrote the steps and where the
    /// time went. The full numbers are in `metrics.json`.
    pub fn summary(&self) -> String {
        let n = self.n.max(1) as f64;
        let correct = (self.accuracy * self.n as f64).round() as usize;
        let t = &self.time_split_s;
        let total = (t.models() + t.other).max(f64::MIN_POSITIVE);
        let pct = |x: f64| format!("{:.0}%", 100.0 * x / total);
        let mut lines = vec![
            format!(
                "accuracy      {:.1}% ({correct}/{}){}",
                100.0 * self.accuracy,
                self.n,
                if self.errors > 0 {
                    format!(", {} failed", self.errors)
                } else {
                    String::new()
                }
            ),
            format!(
                "latency       mean {:.1} s · p50 {:.1} s · p90 {:.1} s per problem",
                self.mean_latency_s, self.p50_latency_s, self.p90_latency_s
            ),
            format!(
                "steps         {} · {:.0}% written by the target{}",
                self.steps,
                100.0 * self.target_step_fraction,
                if self.early_steps > 0 {
                    format!(
                        " ({:.0}% sent on the draft's glimpse)",
                        100.0 * self.early_steps as f64 / self.steps.max(1) as f64
                    )
                } else {
                    String::new()
                }
            ),
            format!(
                "time          draft {} (decode {}, read {}) · target {} (decode {}, read and verify {}) · PRM {} · router {} · other {}",
                pct(t.draft_decode + t.draft_prefill),
                pct(t.draft_decode),
                pct(t.draft_prefill),
                pct(t.target_decode + t.target_prefill),
                pct(t.target_decode),
                pct(t.target_prefill),
                pct(t.prm),
                pct(t.router),
                pct(t.other),
            ),
            format!(
                "tokens        draft {} ({} thrown away, {} kept by the target's verification) · target {}",
                self.draft_tokens,
                self.discarded_draft_tokens,
                self.accepted_draft_tokens,
                self.target_tokens
            ),
        ];
        if self.concurrency > 1 {
            lines.push(format!(
                "in flight     {} problems at once, {:.2} problems per minute (latencies include waiting on the others)",
                self.concurrency, self.problems_per_minute
            ));
        }
        if self.replayed_latency_s > 0.0 {
            lines.push(format!(
                "replayed      {:.1} s per problem from the step cache (costs measured when first computed)",
                self.replayed_latency_s / n
            ));
        }
        lines.join("\n")
    }
}

fn is_zero(v: &f64) -> bool {
    *v == 0.0
}

/// Metrics of a set of results.
pub fn compute_metrics(
    results: &[ResultRecord],
    run_type: RunType,
    threshold: f64,
    dataset: &str,
    wall_time_s: f64,
    prm: Option<String>,
    router: Option<String>,
) -> Metrics {
    let n = results.len();
    let latencies: Vec<f64> = results.iter().map(|r| r.latency_s).collect();
    let steps: u64 = results.iter().map(|r| r.steps.len() as u64).sum();
    let target_steps: u64 = results
        .iter()
        .flat_map(|r| &r.steps)
        .filter(|s| s.model == Author::Target)
        .count() as u64;
    let mut prefill = PerRole::<u64>::default();
    let mut time = PerRole::<f64>::default();
    let mut split = TimeSplit::default();
    for r in results {
        split.add(&r.time_split_s);
        prefill.draft += r.prefill_tokens.draft;
        prefill.target += r.prefill_tokens.target;
        prefill.prm += r.prefill_tokens.prm;
        prefill.router += r.prefill_tokens.router;
        time.draft += r.model_time_s.draft;
        time.target += r.model_time_s.target;
        time.prm += r.model_time_s.prm;
        time.router += r.model_time_s.router;
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Metrics {
        format_version: FORMAT_VERSION,
        run_type,
        threshold,
        dataset: dataset.to_owned(),
        n,
        accuracy: ratio(
            results.iter().filter(|r| r.correct).count() as u64,
            n as u64,
        ),
        mean_latency_s: if n == 0 {
            0.0
        } else {
            latencies.iter().sum::<f64>() / n as f64
        },
        p50_latency_s: crate::stats::percentile(&latencies, 0.5),
        p90_latency_s: crate::stats::percentile(&latencies, 0.9),
        replayed_latency_s: results.iter().map(|r| r.replayed_s).sum(),
        wall_time_s,
        draft_tokens: results.iter().map(|r| r.tokens.draft).sum(),
        target_tokens: results.iter().map(|r| r.tokens.target).sum(),
        discarded_draft_tokens: results.iter().map(|r| r.tokens.discarded_draft).sum(),
        accepted_draft_tokens: results.iter().map(|r| r.tokens.accepted_draft).sum(),
        steps,
        target_step_fraction: ratio(target_steps, steps),
        early_steps: results
            .iter()
            .flat_map(|r| &r.steps)
            .filter(|s| s.early)
            .count() as u64,
        // Every run type but `target` proposes a draft step at every step.
        acceptance_rate: (run_type != RunType::Target && steps > 0)
            .then(|| ratio(steps - target_steps, steps)),
        prefill_tokens: prefill,
        model_time_s: time,
        time_split_s: split,
        errors: results.iter().filter(|r| r.error.is_some()).count(),
        prm,
        router,
        concurrency: results.iter().map(|r| r.in_flight).max().unwrap_or(1),
        problems_per_minute: if wall_time_s > 0.0 {
            60.0 * n as f64 / wall_time_s
        } else {
            0.0
        },
    }
}

/// The files of one run directory.
/// Another process writes the directory.
#[derive(Debug, thiserror::Error)]
pub enum DirBusy {
    #[error(
        "{dir} is being written by another arbitrage process{holder}: wait for it to finish or stop it (it resumes where it stopped)"
    )]
    Held { dir: PathBuf, holder: String },
    #[error("cannot lock {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Holds a directory for this process until dropped: appending processes that resume from what
/// a directory holds (`run`, `label`, `sweep`) would interleave and lose lines if two wrote it
/// at once. An advisory lock on `DIR/.arbitrage.lock`, released by the system when the process
/// ends however it ends, so no stale lock outlives a crash; the file names the holder's pid.
pub fn lock_dir(dir: &Path) -> Result<File, DirBusy> {
    let path = dir.join(".arbitrage.lock");
    let error = |source| DirBusy::Io {
        path: path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(error)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(fs::TryLockError::WouldBlock) => {
            let holder = fs::read_to_string(&path)
                .ok()
                .and_then(|t| t.trim().parse::<u32>().ok())
                .map_or_else(String::new, |pid| format!(" (pid {pid})"));
            return Err(DirBusy::Held {
                dir: dir.to_owned(),
                holder,
            });
        }
        Err(fs::TryLockError::Error(e)) => return Err(error(e)),
    }
    // The holder's pid, for the message another process gives; the lock is what counts.
    file.set_len(0).map_err(error)?;
    write!(file, "{}", std::process::id()).map_err(error)?;
    Ok(file)
}

pub struct RunDir {
    pub dir: PathBuf,
    results_path: PathBuf,
    steps_path: PathBuf,
    results: File,
    steps: Option<File>,
    /// Results already in the file, in order.
    pub done: Vec<ResultRecord>,
    previous_wall_time_s: f64,
    /// Held while the directory is open ([`lock_dir`]).
    _lock: File,
}

impl RunDir {
    /// Opens (resuming) or creates the run directory.
    pub fn open(
        dir: &Path,
        run_type: RunType,
        threshold: f64,
        overwrite: bool,
    ) -> Result<RunDir, RunError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let lock = lock_dir(dir)?;
        let results_path = dir.join("results.jsonl");
        let steps_path = dir.join("steps.jsonl");
        let metrics_path = dir.join("metrics.json");
        if overwrite {
            for path in [&results_path, &steps_path, &metrics_path] {
                match fs::remove_file(path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(RunError::Io {
                            path: path.clone(),
                            source: e,
                        });
                    }
                }
            }
        }
        let mut done = read_results(&results_path)?;
        // A problem that failed (a server down longer than the retries, say) is solved again:
        // resuming must not keep a failure that a second try may not repeat.
        let failed = done.iter().filter(|r| r.error.is_some()).count();
        if failed > 0 {
            done.retain(|r| r.error.is_none());
            rewrite_results(&results_path, &done)?;
            tracing::warn!(path = %results_path.display(), failed, "problems that failed are run again");
        }
        if let Some(first) = done.first() {
            let same = first.run_type == run_type
                && (!run_type.uses_threshold() || first.threshold == threshold);
            if !same {
                return Err(RunError::Mismatch {
                    path: results_path,
                    found: format!("{} (threshold {})", first.run_type, first.threshold),
                    wanted: format!("{run_type} (threshold {threshold})"),
                });
            }
        }
        let previous_wall_time_s = fs::read_to_string(&metrics_path)
            .ok()
            .and_then(|t| serde_json::from_str::<Metrics>(&t).ok())
            .map_or(0.0, |m| m.wall_time_s);
        let steps = if run_type == RunType::Generate {
            let finished: std::collections::HashSet<usize> = done.iter().map(|r| r.idx).collect();
            keep_finished_steps(&steps_path, &finished)?;
            Some(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&steps_path)
                    .map_err(io(&steps_path))?,
            )
        } else {
            None
        };
        let results = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&results_path)
            .map_err(io(&results_path))?;
        Ok(RunDir {
            dir: dir.to_owned(),
            results_path,
            steps_path,
            results,
            steps,
            done,
            previous_wall_time_s,
            _lock: lock,
        })
    }

    pub fn is_done(&self, idx: usize) -> bool {
        self.done.iter().any(|r| r.idx == idx)
    }

    /// Appends a finished problem (its step records first) and flushes both files to disk.
    pub fn append(&mut self, result: ResultRecord, steps: &[StepsLine]) -> Result<(), RunError> {
        if let Some(file) = &mut self.steps {
            let mut buf = String::new();
            for line in steps {
                buf.push_str(&serde_json::to_string(line).expect("step record serialises"));
                buf.push('\n');
            }
            file.write_all(buf.as_bytes())
                .map_err(io(&self.steps_path))?;
            file.sync_data().map_err(io(&self.steps_path))?;
        }
        let line = serde_json::to_string(&result).expect("result serialises") + "\n";
        self.results
            .write_all(line.as_bytes())
            .map_err(io(&self.results_path))?;
        self.results.sync_data().map_err(io(&self.results_path))?;
        self.done.push(result);
        Ok(())
    }

    /// Writes `metrics.json` (atomically: a temporary file renamed into place).
    pub fn write_metrics(&self, metrics: &Metrics) -> Result<(), RunError> {
        let path = self.dir.join("metrics.json");
        let tmp = self.dir.join("metrics.json.tmp");
        let text = serde_json::to_string_pretty(metrics).expect("metrics serialise") + "\n";
        fs::write(&tmp, text).map_err(io(&tmp))?;
        fs::rename(&tmp, &path).map_err(io(&path))
    }

    pub fn previous_wall_time_s(&self) -> f64 {
        self.previous_wall_time_s
    }
}

/// Reads the finished results, dropping a last line cut short by a crash.
pub fn read_results(path: &Path) -> Result<Vec<ResultRecord>, RunError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(RunError::Io {
                path: path.to_owned(),
                source: e,
            });
        }
    };
    // Only newline-terminated lines were completely written.
    let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    if complete < bytes.len() {
        tracing::warn!(path = %path.display(), "dropping an incomplete last line left by an interrupted run");
        let file = OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(io(path))?;
        file.set_len(complete as u64).map_err(io(path))?;
    }
    let mut out = Vec::new();
    for (n, line) in bytes[..complete].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let record = serde_json::from_slice(line).map_err(|source| RunError::Corrupt {
            path: path.to_owned(),
            line: n + 1,
            source,
        })?;
        out.push(record);
    }
    Ok(out)
}

/// Replaces `path` with `records`, one line each, through a temporary file renamed over it, so
/// a crash leaves either the old file or the new one.
fn rewrite_results(path: &Path, records: &[ResultRecord]) -> Result<(), RunError> {
    let mut text = String::new();
    for record in records {
        text.push_str(&serde_json::to_string(record).expect("result serialises"));
        text.push('\n');
    }
    let tmp = path.with_extension("jsonl.tmp");
    fs::write(&tmp, text).map_err(io(&tmp))?;
    fs::rename(&tmp, path).map_err(io(path))
}

/// Drops step records of problems that have no result line (written just before a crash).
fn keep_finished_steps(
    path: &Path,
    finished: &std::collections::HashSet<usize>,
) -> Result<(), RunError> {
    let Ok(file) = File::open(path) else {
        return Ok(());
    };
    let mut kept = String::new();
    let mut dropped = 0usize;
    for line in BufReader::new(file).lines() {
        let line = line.map_err(io(path))?;
        let idx = serde_json::from_str::<serde_json::Value>(&line)
            .ok()
            .and_then(|v| v.get("idx").and_then(serde_json::Value::as_u64));
        match idx {
            Some(i) if finished.contains(&(i as usize)) => {
                kept.push_str(&line);
                kept.push('\n');
            }
            _ => dropped += 1,
        }
    }
    if dropped > 0 {
        tracing::warn!(path = %path.display(), dropped, "dropping step records of unfinished problems");
        fs::write(path, kept).map_err(io(path))?;
    }
    Ok(())
}

/// Settings of one run.
pub struct RunSpec<'a> {
    pub run_type: RunType,
    pub threshold: f64,
    pub dataset_name: &'a str,
    pub limits: Limits,
    pub render_prompt: &'a (dyn Fn(&str) -> String + Sync),
    pub prm_name: Option<String>,
    pub router_name: Option<String>,
    /// `router` only: the decision on a glimpse of the draft's step, if any.
    pub early: Option<crate::method::policy::EarlyRule>,
    /// Problems in flight at once (remote engines; 1 for the embedded engine).
    pub concurrency: usize,
}

/// What a run reports as it goes, and how it is told to stop: the binary turns it into a progress
/// bar and live steps, and stops on Ctrl-C. Steps arrive from the workers' threads as they are
/// decided, problems in the order they finish (after their `results.jsonl` line is written).
pub trait RunEvents: Sync {
    fn problem_started(&self, _idx: usize) {}
    /// Step `index` of problem `idx` was decided.
    fn step_decided(&self, _idx: usize, _index: usize, _step: &TraceStep) {}
    fn problem_finished(&self, _result: &ResultRecord, _all: &[ResultRecord]) {}
    /// Asked before every step of every problem: `true` stops each problem at its next step
    /// boundary and the run with everything finished saved ([`RunError::Interrupted`]).
    fn should_stop(&self) -> bool {
        false
    }
}

/// A problem's steps, reported to the run's events.
struct ProblemSink<'a> {
    idx: usize,
    events: &'a dyn RunEvents,
    halted: &'a (dyn Fn() -> bool + Sync),
}

impl StepSink for ProblemSink<'_> {
    fn step_decided(&mut self, index: usize, step: &TraceStep) {
        self.events.step_decided(self.idx, index, step);
    }

    fn should_stop(&mut self) -> bool {
        (self.halted)()
    }
}

/// Runs `problems` not yet in `dir`, then writes the metrics. Stops early, with everything
/// finished saved, when `interrupted` turns true.
///
/// `spec.concurrency` workers take problems in order, each solving one at a time; this thread
/// appends each result as it arrives (so `results.jsonl` is in finishing order, one line per
/// problem, and a resumed run skips by `idx`). Each problem's latency is measured by its own
/// solve, from its first step to its last.
pub fn run(
    models: &Models<'_>,
    spec: &RunSpec<'_>,
    problems: &[Problem],
    dir: &mut RunDir,
    events: &dyn RunEvents,
) -> Result<Metrics, RunError> {
    let started = Instant::now();
    let todo: Vec<&Problem> = problems.iter().filter(|p| !dir.is_done(p.idx)).collect();
    let workers = spec.concurrency.clamp(1, todo.len().max(1));
    let next = AtomicUsize::new(0);
    // Set when the run must stop: interrupted, or a problem showed the run cannot work at all.
    let stop = AtomicBool::new(false);
    let halted = || stop.load(Ordering::SeqCst) || events.should_stop();
    let mut outcome: Result<(), RunError> = Ok(());
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<Message>();
        for _ in 0..workers {
            let tx = tx.clone();
            let (next, todo, halted) = (&next, &todo, &halted);
            scope.spawn(move || {
                loop {
                    if halted() {
                        return;
                    }
                    let Some(problem) = todo.get(next.fetch_add(1, Ordering::SeqCst)) else {
                        return;
                    };
                    if tx.send(Message::Started(problem.idx)).is_err() {
                        return;
                    }
                    let mut sink = ProblemSink {
                        idx: problem.idx,
                        events,
                        halted,
                    };
                    let solved = solve_problem(models, spec, problem, &mut sink);
                    if tx.send(Message::Finished(Box::new(solved))).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for message in rx {
            let solved = match message {
                Message::Started(idx) => {
                    events.problem_started(idx);
                    continue;
                }
                Message::Finished(solved) => *solved,
            };
            if outcome.is_err() {
                // Stopping: work still in flight is not recorded.
                continue;
            }
            let (record, steps) = match solved {
                Ok(done) => done,
                Err(SolveError::Interrupted) => {
                    stop.store(true, Ordering::SeqCst);
                    outcome = Err(RunError::Interrupted);
                    continue;
                }
                // A run that cannot work at all stops; one problem failing does not.
                Err(e) => {
                    stop.store(true, Ordering::SeqCst);
                    outcome = Err(e.into());
                    continue;
                }
            };
            if let Err(e) = dir.append(record, &steps) {
                stop.store(true, Ordering::SeqCst);
                outcome = Err(e);
                continue;
            }
            let last = dir.done.last().expect("just appended");
            events.problem_finished(last, &dir.done);
        }
    });
    // Interrupted between problems: nothing in flight reported it.
    if outcome.is_ok() && events.should_stop() && !problems.iter().all(|p| dir.is_done(p.idx)) {
        outcome = Err(RunError::Interrupted);
    }
    if let Err(e @ RunError::Solve(_)) = outcome {
        return Err(e);
    }
    // Metrics cover exactly the requested problems that are finished.
    let wanted: std::collections::HashSet<usize> = problems.iter().map(|p| p.idx).collect();
    let finished: Vec<ResultRecord> = dir
        .done
        .iter()
        .filter(|r| wanted.contains(&r.idx))
        .cloned()
        .collect();
    let metrics = compute_metrics(
        &finished,
        spec.run_type,
        spec.threshold,
        spec.dataset_name,
        dir.previous_wall_time_s() + started.elapsed().as_secs_f64(),
        spec.prm_name.clone(),
        spec.router_name.clone(),
    );
    dir.write_metrics(&metrics)?;
    outcome.map(|()| metrics)
}

enum Message {
    Started(usize),
    Finished(Box<Result<(ResultRecord, Vec<StepsLine>), SolveError>>),
}

/// Solves one problem into its result record and step records. A failed problem is a record
/// with its error; only an interruption or a run that cannot work at all is an `Err`.
fn solve_problem(
    models: &Models<'_>,
    spec: &RunSpec<'_>,
    problem: &Problem,
    sink: &mut dyn StepSink,
) -> Result<(ResultRecord, Vec<StepsLine>), SolveError> {
    let prompt = (spec.render_prompt)(&problem.question);
    let task = Task {
        problem: problem.idx as u64,
        question: &problem.question,
        prompt: &prompt,
    };
    let rule = Rule {
        run_type: spec.run_type,
        threshold: spec.threshold,
        early: spec
            .early
            .clone()
            .filter(|_| spec.run_type == RunType::Router),
    };
    let mut record = ResultRecord::unsolved(problem, spec);
    match speculate::solve(models, &task, rule, &spec.limits, sink) {
        Ok(solution) => {
            let verdict = arbitrage_grader::grade(&problem.gold, &solution.text());
            let steps = solution
                .records
                .iter()
                .map(|r| StepsLine {
                    format_version: FORMAT_VERSION,
                    idx: problem.idx,
                    question: problem.question.clone(),
                    feature_names: crate::method::features::FEATURE_NAMES
                        .iter()
                        .map(|s| (*s).to_owned())
                        .collect(),
                    record: r.clone(),
                })
                .collect();
            let u = &solution.usage;
            record.pred = verdict.pred;
            record.correct = verdict.equal;
            record.latency_s = solution.latency_s;
            record.replayed_s = solution.replayed_s;
            record.tokens = TokenCounts {
                draft: solution.draft_tokens,
                target: solution.target_tokens,
                discarded_draft: solution.discarded_draft_tokens,
                accepted_draft: solution.accepted_draft_tokens,
            };
            record.stop = Some(solution.stop);
            record.prefill_tokens = u.per_role(|u| u.prefill_tokens);
            record.work = u.per_role(Work::of);
            record.model_time_s = u.per_role(|u| u.seconds);
            record.time_split_s = TimeSplit::of(u, solution.latency_s);
            record.steps = solution.steps;
            Ok((record, steps))
        }
        Err(e @ (SolveError::Interrupted | SolveError::Missing(..))) => Err(e),
        Err(e) => {
            tracing::warn!(idx = problem.idx, error = %error_chain(&e), "problem failed");
            record.error = Some(error_chain(&e));
            Ok((record, Vec::new()))
        }
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cause = c.source();
    }
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A finished problem with one step per entry of `models` (also used by the reports' tests).
    pub(crate) fn record(
        idx: usize,
        correct: bool,
        latency: f64,
        models: &[Author],
    ) -> ResultRecord {
        ResultRecord {
            format_version: FORMAT_VERSION,
            idx,
            run_type: RunType::Rsd,
            threshold: 0.5,
            question: "q".into(),
            gt: "1".into(),
            pred: Some("1".into()),
            correct,
            latency_s: latency,
            replayed_s: 0.0,
            tokens: TokenCounts {
                draft: 10,
                target: 5,
                discarded_draft: 2,
                accepted_draft: 3,
            },
            stop: Some(Stop::EndOfSequence),
            prefill_tokens: PerRole {
                draft: 1,
                target: 2,
                prm: 3,
                router: 0,
            },
            work: PerRole::default(),
            model_time_s: PerRole {
                draft: 0.5,
                target: 0.25,
                prm: 0.125,
                router: 0.0,
            },
            time_split_s: TimeSplit {
                draft_decode: 0.25,
                draft_prefill: 0.25,
                target_decode: 0.125,
                target_prefill: 0.125,
                prm: 0.125,
                router: 0.0,
                other: latency - 0.875,
            },
            steps: models
                .iter()
                .map(|m| TraceStep {
                    model: *m,
                    text: "s".into(),
                    prm_score: None,
                    target_prm_score: None,
                    router_score: None,
                    rejected_draft_text: None,
                    tokens: 1,
                    accepted_tokens: 0,
                    early: false,
                })
                .collect(),
            error: None,
            in_flight: 1,
        }
    }

    #[test]
    fn metrics_add_up_from_results() {
        use Author::*;
        let results = [
            record(0, true, 1.0, &[Draft, Target]),
            record(1, false, 3.0, &[Draft, Draft]),
        ];
        let m = compute_metrics(&results, RunType::Rsd, 0.5, "gsm8k", 9.0, None, None);
        assert_eq!(m.n, 2);
        assert_eq!(m.accuracy, 0.5);
        assert_eq!(m.mean_latency_s, 2.0);
        assert_eq!(m.target_step_fraction, 0.25);
        assert_eq!(m.acceptance_rate, Some(0.75));
        assert_eq!(m.draft_tokens, 20);
        assert_eq!(m.prefill_tokens.prm, 6);
        assert_eq!(m.accepted_draft_tokens, 6);
        assert!((m.time_split_s.models() + m.time_split_s.other - 4.0).abs() < 1e-9);
        let summary = m.summary();
        assert!(summary.contains("accuracy      50.0% (1/2)"), "{summary}");
        assert!(
            summary.contains("4 · 25% written by the target\n"),
            "{summary}"
        );
        assert_eq!(m.early_steps, 0);
        // A step sent on the glimpse is counted and said.
        let mut early = results.clone();
        early[0].steps[1].early = true;
        let m_early = compute_metrics(&early, RunType::Router, 0.5, "gsm8k", 9.0, None, None);
        assert_eq!(m_early.early_steps, 1);
        assert!(
            m_early
                .summary()
                .contains("4 · 25% written by the target (25% sent on the draft's glimpse)"),
            "{}",
            m_early.summary()
        );
        // 0.25 + 0.25 of 2.0 per problem is draft time.
        assert!(
            summary.contains("draft 25% (decode 12%, read 12%)"),
            "{summary}"
        );
        assert_eq!(m.model_time_s.draft, 1.0);
    }

    #[test]
    fn a_line_cut_short_by_a_crash_is_dropped_on_resume() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good = serde_json::to_string(&record(0, true, 1.0, &[Author::Draft])).unwrap();
        fs::write(&path, format!("{good}\n{}", &good[..good.len() / 2])).unwrap();
        let results = read_results(&path).unwrap();
        assert_eq!(results.len(), 1);
        assert_eq!(fs::read_to_string(&path).unwrap(), format!("{good}\n"));
    }

    #[test]
    fn a_corrupt_middle_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let good = serde_json::to_string(&record(0, true, 1.0, &[Author::Draft])).unwrap();
        fs::write(&path, format!("{good}\n{{oops\n{good}\n")).unwrap();
        let err = read_results(&path).unwrap_err().to_string();
        assert!(err.contains("results.jsonl:2"), "{err}");
    }

    #[test]
    fn a_directory_is_written_by_one_process_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let held = RunDir::open(dir.path(), RunType::Draft, 0.0, false).unwrap();
        // Another open of the same directory, as a second process would make it.
        let err = RunDir::open(dir.path(), RunType::Draft, 0.0, false)
            .err()
            .unwrap()
            .to_string();
        let pid = std::process::id();
        assert!(
            err.contains("being written by another arbitrage process")
                && err.contains(&format!("(pid {pid})")),
            "{err}"
        );
        assert!(matches!(lock_dir(dir.path()), Err(DirBusy::Held { .. })));
        // Released with its holder, crash or not.
        drop(held);
        RunDir::open(dir.path(), RunType::Draft, 0.0, false).unwrap();
    }

    #[test]
    fn resuming_a_different_run_type_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let good = serde_json::to_string(&record(0, true, 1.0, &[Author::Draft])).unwrap();
        fs::write(dir.path().join("results.jsonl"), format!("{good}\n")).unwrap();
        let err = RunDir::open(dir.path(), RunType::Router, 0.5, false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("--overwrite"), "{err}");
        assert!(RunDir::open(dir.path(), RunType::Router, 0.5, true).is_ok());
    }
}
