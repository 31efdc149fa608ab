//! `arbitrage label`: outcome labels (and hidden states) for a finished `generate` run, written to
//! `labels.jsonl` beside its `steps.jsonl`. Resumable: problems already labelled are skipped, and
//! each problem's lines are appended and flushed as soon as it is done.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use arbitrage::backend::{StepScorer, TextProbe};
use arbitrage::engines::llama::{EmbeddedModel, EmbeddedSettings};
use arbitrage::eval::labels::{LabelLine, Labeller, ProblemRecords};
use arbitrage::eval::run::StepsLine;
use arbitrage::method::prm::{PrmKind, ProbePrm};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};

use super::ConfigArgs;

#[derive(Debug, Args)]
pub struct LabelArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// A `generate` run's output directory (its steps.jsonl and results.jsonl are read).
    #[arg(long)]
    run: PathBuf,
    /// Tokens a rollout may write after the labelled step; one that has not finished by then
    /// counts as wrong.
    /// GSM8K solutions take 150–300 tokens; a continuation still going after this many is a
    /// runaway.
    #[arg(long, default_value_t = 640)]
    rollout_max_tokens: u64,
    /// Skip reading hidden states (labels and judge scores only).
    #[arg(long)]
    no_hidden: bool,
    /// Skip the `target-judge` scores.
    #[arg(long)]
    no_judge: bool,
    /// Roll nothing out: fill in the hidden states (and judge scores, unless --no-judge) that
    /// labelled lines lack, for a run labelled with --no-hidden. Progress goes to
    /// `labels.jsonl.reads` (resumable); labels.jsonl is rewritten once every problem is done.
    #[arg(long, conflicts_with = "no_hidden")]
    states_only: bool,
    /// Label at most this many problems now.
    #[arg(long)]
    limit: Option<usize>,
    /// Problems labelled at once. Their rollouts share the models' decode rounds (continuous
    /// batching), which raises throughput on the CPU (docs/engine.md); the labels are the same.
    #[arg(long, default_value_t = 1, env = "ARBITRAGE_CONCURRENCY")]
    concurrency: usize,
}

pub fn run(args: LabelArgs) -> Result<()> {
    let config = args.config.load()?;
    // The generate run it labels must not be written meanwhile (nor labelled twice at once); a
    // missing directory is left to the reads below to name.
    let _lock = if args.run.is_dir() {
        Some(arbitrage::eval::run::lock_dir(&args.run)?)
    } else {
        None
    };
    let steps_path = args.run.join("steps.jsonl");
    let results_path = args.run.join("results.jsonl");
    let labels_path = args.run.join("labels.jsonl");
    let records = read_records(&steps_path)?;
    let golds = read_golds(&results_path)?;
    if args.states_only {
        return complete_reads(&args, &config, &records, &golds);
    }
    let done = labelled(&labels_path)?;
    let mut todo: Vec<(usize, &Vec<StepsLine>)> = records
        .iter()
        .filter(|(idx, recs)| {
            // Only problems the generate run finished; a problem counts as labelled when every
            // one of its records is.
            golds.contains_key(idx)
                && !recs
                    .iter()
                    .all(|r| done.contains(&(**idx, r.record.step_index)))
        })
        .map(|(idx, recs)| (*idx, recs))
        .collect();
    if let Some(n) = args.limit {
        todo.truncate(n);
    }
    eprintln!(
        "label {}: {} problems with records, {} to label → {}",
        args.run.display(),
        records.len(),
        todo.len(),
        labels_path.display()
    );
    if todo.is_empty() {
        return Ok(());
    }

    arbitrage::setup::check_embedded_concurrency(args.concurrency, &["draft", "target"])?;
    let workers = args.concurrency.min(todo.len());
    let sized = config.with_slots(workers);
    let (Some(target_settings), Some(draft_settings)) =
        (sized.target.embedded(), sized.draft.embedded())
    else {
        bail!("`arbitrage label` runs on the embedded engine: configure `file`s for both models");
    };
    let target = super::load_model(target_settings)?;
    let readers = StateReaders::load(
        target_settings,
        draft_settings,
        &config,
        !args.no_hidden,
        !args.no_judge,
    )?;
    let labeller = Labeller {
        target: &target,
        ..readers.labeller(&config, args.rollout_max_tokens)
    };

    let interrupted = super::run::interrupt_flag()?;
    let mut out = open_to_append(&labels_path)?;
    let bar = problems_bar(todo.len());
    let started = Instant::now();
    let (mut steps, mut rollouts, mut written) = (0usize, 0u64, 0u64);
    let (mut rollout_s, mut probe_s) = (0.0f64, 0.0f64);
    // Workers take problems in order and send each finished problem back; this thread alone
    // writes, so every problem's lines are appended whole and flushed as it finishes.
    let queue = std::sync::Mutex::new(todo.into_iter());
    std::thread::scope(|scope| -> Result<()> {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        for _ in 0..workers {
            let done_tx = done_tx.clone();
            let (queue, labeller, golds, interrupted) = (&queue, &labeller, &golds, &interrupted);
            let config = &config;
            scope.spawn(move || {
                loop {
                    let next = queue.lock().unwrap_or_else(|e| e.into_inner()).next();
                    let Some((idx, recs)) = next else { break };
                    let (prompt, step_records) = prompt_and_records(config, recs);
                    let problem = ProblemRecords {
                        problem: idx as u64,
                        idx,
                        question: &recs[0].question,
                        prompt: &prompt,
                        gold: &golds[&idx],
                        records: &step_records,
                    };
                    let stop = || interrupted.load(Ordering::SeqCst);
                    let labelled = labeller
                        .label_problem(&problem, &stop)
                        .with_context(|| format!("labelling problem {idx}"));
                    let failed = labelled.is_err();
                    if done_tx.send((idx, labelled)).is_err() || failed {
                        break;
                    }
                }
            });
        }
        drop(done_tx);
        for (idx, labelled) in done_rx {
            let labelled = labelled.inspect_err(|_| {
                // The other workers stop at their next record; what they finished is saved.
                interrupted.store(true, Ordering::SeqCst);
            })?;
            let Some((lines, cost)) = labelled else {
                continue;
            };
            append_problem(&mut out, &lines, &labels_path)?;
            steps += lines.len();
            rollouts += cost.rollouts;
            written += cost.written_tokens;
            rollout_s += cost.rollout_seconds;
            probe_s += cost.probe_seconds;
            bar.inc(1);
            let secs = started.elapsed().as_secs_f64();
            let n = bar.position() as f64;
            bar.set_message(format!(
                "{steps} steps · {rollouts} rollouts · {:.0} rollout tokens/problem · {:.1} s/problem wall (per problem: rollouts {:.1}, states and judge {:.1})",
                written as f64 / n,
                secs / n,
                rollout_s / n,
                probe_s / n
            ));
            tracing::info!(
                idx,
                records = lines.len(),
                rollouts = cost.rollouts,
                written_tokens = cost.written_tokens,
                verified_tokens = cost.accepted_tokens,
                rollout_s = cost.rollout_seconds,
                probe_s = cost.probe_seconds,
                "labelled"
            );
        }
        Ok(())
    })?;
    bar.finish();
    if interrupted.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: labelled problems are saved in {}; run again to resume",
            labels_path.display()
        );
    }
    Ok(())
}

/// The models that read hidden states (and the judge, which asks the target's instance).
struct StateReaders {
    target: Arc<EmbeddedModel>,
    /// Read only where hidden states are asked for.
    hidden: bool,
    draft: Option<Arc<EmbeddedModel>>,
    judge: Option<ProbePrm>,
}

impl StateReaders {
    fn load(
        target: &EmbeddedSettings,
        draft: &EmbeddedSettings,
        config: &arbitrage::config::Config,
        hidden: bool,
        judge: bool,
    ) -> Result<StateReaders> {
        let with_states = |s: &EmbeddedSettings, name: &str| -> Result<Arc<EmbeddedModel>> {
            Ok(Arc::new(super::loading(name, || {
                arbitrage::setup::load_hidden_states_model(s, name, None)
            })?))
        };
        let target = with_states(target, "target (hidden states)")?;
        let draft = if hidden {
            Some(with_states(draft, "draft (hidden states)")?)
        } else {
            None
        };
        let judge = judge.then(|| {
            ProbePrm::new(
                target.clone() as Arc<dyn TextProbe>,
                PrmKind::TargetJudge,
                config.prompt,
            )
        });
        Ok(StateReaders {
            target,
            hidden,
            draft,
            judge,
        })
    }

    /// A labeller reading with these models; its rollouts run on the target's instance here,
    /// unless the caller gives another.
    fn labeller(
        &self,
        config: &arbitrage::config::Config,
        rollout_max_tokens: u64,
    ) -> Labeller<'_> {
        Labeller {
            target: self.target.as_ref(),
            target_states: self
                .hidden
                .then_some(self.target.as_ref() as &dyn TextProbe),
            draft_states: self.draft.as_deref().map(|m| m as &dyn TextProbe),
            judge: self.judge.as_ref().map(|j| j as &dyn StepScorer),
            options: config.generation.step.clone(),
            rollout_max_tokens,
            max_steps: config.generation.max_steps as usize,
        }
    }
}

/// `label --states-only`: the reads labelled lines lack, problem by problem, into
/// `labels.jsonl.reads`; then labels.jsonl is rewritten with them (through a temporary file).
fn complete_reads(
    args: &LabelArgs,
    config: &arbitrage::config::Config,
    records: &BTreeMap<usize, Vec<StepsLine>>,
    golds: &HashMap<usize, String>,
) -> Result<()> {
    let labels_path = args.run.join("labels.jsonl");
    let partial_path = args.run.join("labels.jsonl.reads");
    let mut by_problem: BTreeMap<usize, Vec<LabelLine>> = BTreeMap::new();
    for (n, line) in lines_of(&labels_path)? {
        let l: LabelLine = serde_json::from_str(&line)
            .with_context(|| format!("{}:{n}: not a label line", labels_path.display()))?;
        by_problem.entry(l.idx).or_default().push(l);
    }
    let mut completed: BTreeMap<usize, Vec<LabelLine>> = BTreeMap::new();
    if partial_path.exists() {
        for (n, line) in lines_of(&partial_path)? {
            let l: LabelLine = serde_json::from_str(&line)
                .with_context(|| format!("{}:{n}: not a label line", partial_path.display()))?;
            completed.entry(l.idx).or_default().push(l);
        }
    }
    let (Some(target_settings), Some(draft_settings)) =
        (config.target.embedded(), config.draft.embedded())
    else {
        bail!("`arbitrage label` runs on the embedded engine: configure `file`s for both models");
    };
    let readers = StateReaders::load(
        target_settings,
        draft_settings,
        config,
        true,
        !args.no_judge,
    )?;
    let labeller = readers.labeller(config, args.rollout_max_tokens);
    let mut todo: Vec<(usize, &Vec<LabelLine>)> = by_problem
        .iter()
        .filter(|(idx, lines)| {
            !completed.contains_key(idx) && lines.iter().any(|l| labeller.lacks_reads(l))
        })
        .map(|(idx, lines)| (*idx, lines))
        .collect();
    let lacking = todo.len();
    if let Some(n) = args.limit {
        todo.truncate(n);
    }
    eprintln!(
        "label --states-only {}: {} labelled problems, {lacking} lack reads, {} read now → {}",
        args.run.display(),
        by_problem.len(),
        todo.len(),
        partial_path.display()
    );
    let interrupted = super::run::interrupt_flag()?;
    let mut out = open_to_append(&partial_path)?;
    let bar = problems_bar(todo.len());
    let mut seconds = 0.0;
    for (idx, lines) in todo {
        let (Some(recs), Some(gold)) = (records.get(&idx), golds.get(&idx)) else {
            bail!(
                "{}: problem {idx} is labelled but has no record in steps.jsonl or result in results.jsonl",
                labels_path.display()
            );
        };
        let (prompt, step_records) = prompt_and_records(config, recs);
        let problem = ProblemRecords {
            problem: idx as u64,
            idx,
            question: &recs[0].question,
            prompt: &prompt,
            gold,
            records: &step_records,
        };
        let stop = || interrupted.load(Ordering::SeqCst);
        let Some((lines, cost)) = labeller
            .complete_reads(&problem, lines, &stop)
            .with_context(|| format!("reading the states of problem {idx}"))?
        else {
            break;
        };
        append_problem(&mut out, &lines, &partial_path)?;
        completed.insert(idx, lines);
        seconds += cost.probe_seconds;
        bar.inc(1);
        bar.set_message(format!("{:.1} s/problem", seconds / bar.position() as f64));
    }
    bar.finish();
    if interrupted.load(Ordering::SeqCst) {
        eprintln!(
            "interrupted: finished problems are saved in {}; run again to resume",
            partial_path.display()
        );
        return Ok(());
    }
    // Every line of labels.jsonl, with its problem's completed lines where there are some.
    let merged = args.run.join("labels.jsonl.tmp");
    {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(&merged)
                .with_context(|| format!("creating {}", merged.display()))?,
        );
        for (idx, lines) in &by_problem {
            for line in completed.get(idx).unwrap_or(lines) {
                serde_json::to_writer(&mut file, line)?;
                file.write_all(b"\n")?;
            }
        }
        file.into_inner()
            .map_err(|e| e.into_error())
            .and_then(|f| f.sync_all())
            .with_context(|| format!("writing {}", merged.display()))?;
    }
    std::fs::rename(&merged, &labels_path)
        .with_context(|| format!("replacing {}", labels_path.display()))?;
    std::fs::remove_file(&partial_path)
        .with_context(|| format!("removing {}", partial_path.display()))?;
    eprintln!("{} now carries the reads", labels_path.display());
    Ok(())
}

/// A problem's prompt and its `generate` records, as [`ProblemRecords`] borrows them.
fn prompt_and_records(
    config: &arbitrage::config::Config,
    recs: &[StepsLine],
) -> (String, Vec<arbitrage::method::speculate::StepRecord>) {
    let prompt = config.prompt.render(&recs[0].question);
    (prompt, recs.iter().map(|r| r.record.clone()).collect())
}

/// A label file opened to append to (created if absent).
fn open_to_append(path: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))
}

fn problems_bar(len: usize) -> ProgressBar {
    ProgressBar::new(len as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} problems · {elapsed} · {msg}")
            .expect("static template"),
    )
}

/// Appends one problem's label lines whole and flushes them.
fn append_problem(out: &mut std::fs::File, lines: &[LabelLine], path: &Path) -> Result<()> {
    for line in lines {
        serde_json::to_writer(&mut *out, line)?;
        out.write_all(b"\n")?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// `steps.jsonl` grouped by problem, in step order.
fn read_records(path: &Path) -> Result<BTreeMap<usize, Vec<StepsLine>>> {
    let mut by_problem: BTreeMap<usize, Vec<StepsLine>> = BTreeMap::new();
    for (n, line) in lines_of(path)? {
        let rec: StepsLine = serde_json::from_str(&line)
            .with_context(|| format!("{}:{n}: not a generate step record", path.display()))?;
        by_problem.entry(rec.idx).or_default().push(rec);
    }
    for recs in by_problem.values_mut() {
        recs.sort_by_key(|r| r.record.step_index);
    }
    Ok(by_problem)
}

/// Gold answers of the finished problems, from `results.jsonl`.
fn read_golds(path: &Path) -> Result<HashMap<usize, String>> {
    #[derive(serde::Deserialize)]
    struct ResultGold {
        idx: usize,
        gt: String,
    }
    let mut golds = HashMap::new();
    for (n, line) in lines_of(path)? {
        let r: ResultGold = serde_json::from_str(&line)
            .with_context(|| format!("{}:{n}: not a result record", path.display()))?;
        golds.insert(r.idx, r.gt);
    }
    Ok(golds)
}

/// `(idx, step_index)` of every labelled record so far; a missing file is an empty set.
fn labelled(path: &Path) -> Result<HashSet<(usize, usize)>> {
    if !path.exists() {
        return Ok(HashSet::new());
    }
    let mut done = HashSet::new();
    for (n, line) in lines_of(path)? {
        let l: LabelLine = serde_json::from_str(&line)
            .with_context(|| format!("{}:{n}: not a label line", path.display()))?;
        done.insert((l.idx, l.step_index));
    }
    Ok(done)
}

/// Non-empty lines with their 1-based numbers.
fn lines_of(path: &Path) -> Result<Vec<(usize, String)>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if !line.trim().is_empty() {
            out.push((i + 1, line));
        }
    }
    Ok(out)
}
