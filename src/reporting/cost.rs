//! Latency from a problem's engine work instead of its clock: the tokens each model wrote, its
//! reads and the tokens they carried, priced with per-token and per-call costs that
//! `arbitrage bench --costs` measured on one sequence at a time.
//!
//! The paper's latency is wall-clock time per problem with one problem in flight. A run with
//! `--concurrency N` gets its accuracy N times sooner, but its clock includes waiting on the
//! other problems' share of each decode round; this model says what each problem would have taken
//! alone, so a sweep can take its accuracy from a batched run and its latency from here
//! (docs/engine.md says how well the model matches measured one-at-a-time runs).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::eval::run::{Metrics, ResultRecord, Work, read_results};
use crate::method::policy::RunType;
use crate::reporting::sweep::SweepRow;

pub const COST_FORMAT_VERSION: u32 = 1;

/// What one engine instance's work costs, one sequence at a time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCosts {
    pub model: String,
    /// A token written `d` tokens deep costs `decode_ms + d * decode_ms_per_depth` milliseconds
    /// (a line through `decodes`).
    pub decode_ms: f64,
    pub decode_ms_per_depth: f64,
    /// A read of `k` tokens (k ≥ 2) costs `read_call_ms + k * read_token_ms` (a line through
    /// `reads`); a read of one token costs what a token written does.
    pub read_call_ms: f64,
    pub read_token_ms: f64,
    /// What verifying a proposal adds to a call beyond its reads and tokens priced as above.
    pub proposal_ms: f64,
    /// The measured decodes: context depth and median milliseconds per token.
    pub decodes: Vec<(u64, f64)>,
    /// The measured reads: tokens read and median milliseconds.
    pub reads: Vec<(u64, f64)>,
}

/// What one role did for a problem: the counts `ModelCosts::seconds` prices.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RoleWork {
    pub written: u64,
    pub read_tokens: u64,
    pub work: Work,
}

impl ModelCosts {
    /// Seconds for `w`.
    pub fn seconds(&self, w: &RoleWork) -> f64 {
        let work = &w.work;
        let mean_depth = if w.written > 0 {
            work.written_depth as f64 / w.written as f64
        } else {
            0.0
        };
        let one_token = self.decode_ms + self.decode_ms_per_depth * mean_depth;
        (w.written as f64 * self.decode_ms
            + work.written_depth as f64 * self.decode_ms_per_depth
            + work.one_token_reads as f64 * one_token
            + work.read_calls as f64 * self.read_call_ms
            + w.read_tokens.saturating_sub(work.one_token_reads) as f64 * self.read_token_ms
            + work.proposal_calls as f64 * self.proposal_ms)
            / 1000.0
    }
}

/// The least-squares line `y = intercept + slope * x` through `points` (flat through one point).
pub fn fit_line(points: &[(u64, f64)]) -> (f64, f64) {
    let n = points.len().max(1) as f64;
    let mean_x = points.iter().map(|p| p.0 as f64).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for &(x, y) in points {
        let dx = x as f64 - mean_x;
        sxy += dx * (y - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (mean_y - slope * mean_x, slope)
}

/// Per-model costs measured in one sitting: `arbitrage bench --costs FILE` writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CostTable {
    pub format_version: u32,
    /// How it was measured (threads, depth, repetitions).
    pub measured: String,
    /// When (seconds since 1970): costs hold for the machine and load of their sitting.
    pub unix_time: u64,
    /// Tokens already in the context at every measurement.
    pub depth: u64,
    pub draft: ModelCosts,
    pub target: ModelCosts,
    /// The target loaded to report hidden states, as `rsd`, `oracle` and `generate` load it for
    /// the value-head PRM that shares it: every token it reads then goes through the output layer.
    pub target_hidden: ModelCosts,
}

#[derive(Debug, thiserror::Error)]
pub enum CostError {
    #[error("cannot read the cost table {path}: {message}")]
    Read { path: PathBuf, message: String },
    #[error(
        "cost table {path} has format_version {found}; this build reads {COST_FORMAT_VERSION} (measure it again with `arbitrage bench --costs`)"
    )]
    Version { path: PathBuf, found: u32 },
    #[error("cannot model problem {idx}'s latency: {reason}")]
    Unpriced { idx: usize, reason: String },
}

impl CostTable {
    pub fn load(path: &Path) -> Result<CostTable, CostError> {
        let read = |message: String| CostError::Read {
            path: path.to_owned(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| read(e.to_string()))?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| read(e.to_string()))?;
        let found = value.get("format_version").and_then(|v| v.as_u64());
        if found != Some(u64::from(COST_FORMAT_VERSION)) {
            return Err(CostError::Version {
                path: path.to_owned(),
                found: found.unwrap_or(0) as u32,
            });
        }
        serde_json::from_value(value).map_err(|e| read(e.to_string()))
    }

    /// The mean of tables measured in one sitting (before and after a sweep, say): every cost
    /// averaged, every measured point kept. `None` for no tables.
    pub fn average(tables: &[CostTable]) -> Option<CostTable> {
        let first = tables.first()?;
        let mean = |of: &dyn Fn(&CostTable) -> &ModelCosts| {
            let all: Vec<&ModelCosts> = tables.iter().map(of).collect();
            let avg = |f: &dyn Fn(&ModelCosts) -> f64| {
                all.iter().map(|c| f(c)).sum::<f64>() / all.len() as f64
            };
            ModelCosts {
                model: all[0].model.clone(),
                decode_ms: avg(&|c| c.decode_ms),
                decode_ms_per_depth: avg(&|c| c.decode_ms_per_depth),
                read_call_ms: avg(&|c| c.read_call_ms),
                read_token_ms: avg(&|c| c.read_token_ms),
                proposal_ms: avg(&|c| c.proposal_ms),
                decodes: all.iter().flat_map(|c| c.decodes.clone()).collect(),
                reads: all.iter().flat_map(|c| c.reads.clone()).collect(),
            }
        };
        Some(CostTable {
            format_version: COST_FORMAT_VERSION,
            measured: tables
                .iter()
                .map(|t| t.measured.as_str())
                .collect::<Vec<_>>()
                .join("; "),
            unix_time: first.unix_time,
            depth: first.depth,
            draft: mean(&|t| &t.draft),
            target: mean(&|t| &t.target),
            target_hidden: mean(&|t| &t.target_hidden),
        })
    }

    /// Which costs price a run's target and PRM work. `prm` is the PRM's description in the run's
    /// metrics (`Metrics::prm`): a run type that needs none still pays for one it names (a
    /// router that reads the PRM's score).
    pub fn pricing(&self, run_type: RunType, prm: Option<&str>) -> Result<Pricing<'_>, String> {
        if !run_type.needs_prm() && prm.is_none() {
            return Ok(Pricing {
                draft: &self.draft,
                target: &self.target,
                prm: None,
            });
        }
        match prm {
            // The value head reads the target instance it shares, loaded with hidden states.
            Some(p) if p.starts_with("value-head") => Ok(Pricing {
                draft: &self.draft,
                target: &self.target_hidden,
                prm: Some(&self.target_hidden),
            }),
            // The stand-in reads forced text on the target.
            Some(p) if p.starts_with("target-logprob") => Ok(Pricing {
                draft: &self.draft,
                target: &self.target,
                prm: Some(&self.target),
            }),
            other => Err(format!(
                "the PRM {} is not an embedded one this table measured",
                other.unwrap_or("(none named)")
            )),
        }
    }
}

/// The costs that price one run's roles.
#[derive(Debug, Clone, Copy)]
pub struct Pricing<'a> {
    pub draft: &'a ModelCosts,
    pub target: &'a ModelCosts,
    pub prm: Option<&'a ModelCosts>,
}

impl Pricing<'_> {
    /// What `record`'s problem would have taken alone: the sum of its models' work. The router's
    /// features and the loop's own bookkeeping are not priced (milliseconds per problem).
    pub fn latency(&self, record: &ResultRecord) -> Result<f64, CostError> {
        let unpriced = |reason: &str| CostError::Unpriced {
            idx: record.idx,
            reason: reason.to_owned(),
        };
        if record.error.is_some() {
            return Err(unpriced("it failed"));
        }
        let roles = record_work(record);
        // Only the embedded engine counts its work: a role that read or wrote without counts ran
        // on a server (whose costs no table here measured) or before the counts existed.
        let counted = |w: &RoleWork| {
            (w.work.read_calls + w.work.one_token_reads > 0 || w.read_tokens == 0)
                && (w.work.written_depth > 0 || w.written == 0)
        };
        if !roles.iter().all(counted) {
            return Err(unpriced(
                "its record has no read counts for a model that worked (a remote model, or a record written before they were counted)",
            ));
        }
        let [draft, target, prm] = roles;
        let mut seconds = self.draft.seconds(&draft) + self.target.seconds(&target);
        if prm != RoleWork::default() {
            let costs = self
                .prm
                .ok_or_else(|| unpriced("it read with a PRM the table cannot price"))?;
            seconds += costs.seconds(&prm);
        }
        Ok(seconds)
    }
}

/// Modelled against measured latency over the problems of one run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Check {
    pub n: usize,
    pub measured_mean_s: f64,
    pub modelled_mean_s: f64,
    /// Median over problems of |modelled / measured − 1|.
    pub median_problem_error: f64,
}

impl Check {
    /// Relative error of the modelled mean.
    pub fn mean_error(&self) -> f64 {
        self.modelled_mean_s / self.measured_mean_s - 1.0
    }
}

/// What the draft, the target and the PRM did for `record`'s problem.
pub fn record_work(record: &ResultRecord) -> [RoleWork; 3] {
    let (w, reads) = (&record.work, &record.prefill_tokens);
    [
        RoleWork {
            written: record.tokens.draft,
            read_tokens: reads.draft,
            work: w.draft,
        },
        RoleWork {
            written: record.tokens.target,
            read_tokens: reads.target,
            work: w.target,
        },
        RoleWork {
            written: 0,
            read_tokens: reads.prm,
            work: w.prm,
        },
    ]
}

/// A sweep point with its latencies modelled, and how the model compares with its clock.
#[derive(Debug, Clone)]
pub struct ModelledPoint {
    /// The point's row with mean, p50 and p90 latency and the per-role seconds modelled (nothing
    /// is left for `other_s`, and nothing is replayed).
    pub row: SweepRow,
    pub check: Check,
    /// Problems in flight, the most any of the point's problems shared the engine with.
    pub max_in_flight: usize,
}

/// Models the latencies of the sweep point `row`, reading its `results.jsonl` and `metrics.json`
/// under `sweep_dir`.
pub fn model_point(
    sweep_dir: &Path,
    row: &SweepRow,
    table: &CostTable,
) -> Result<ModelledPoint, CostError> {
    let dir = sweep_dir.join(&row.point);
    let read = |path: PathBuf, message: String| CostError::Read { path, message };
    let metrics_path = dir.join("metrics.json");
    let metrics: Metrics = std::fs::read_to_string(&metrics_path)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
        .map_err(|m| read(metrics_path.clone(), m))?;
    let results_path = dir.join("results.jsonl");
    let records =
        read_results(&results_path).map_err(|e| read(results_path.clone(), e.to_string()))?;
    let pricing = table
        .pricing(metrics.run_type, metrics.prm.as_deref())
        .map_err(|m| read(metrics_path.clone(), m))?;
    let modelled = modelled(&records, &pricing)?;
    let check = check(&records, &modelled);
    let latencies: Vec<f64> = modelled.values().copied().collect();
    let n = latencies.len().max(1) as f64;
    let mean_role = |costs: &ModelCosts, role: usize| {
        records
            .iter()
            .filter(|r| r.error.is_none())
            .map(|r| costs.seconds(&record_work(r)[role]))
            .sum::<f64>()
            / n
    };
    let mut row = row.clone();
    row.mean_latency_s = latencies.iter().sum::<f64>() / n;
    row.p50_latency_s = crate::stats::median(&latencies);
    row.p90_latency_s = crate::stats::percentile(&latencies, 0.9);
    row.draft_s = mean_role(pricing.draft, 0);
    row.target_s = mean_role(pricing.target, 1);
    row.scoring_s = pricing.prm.map_or(0.0, |prm| mean_role(prm, 2));
    row.other_s = 0.0;
    row.replayed_latency_s = 0.0;
    Ok(ModelledPoint {
        row,
        check,
        max_in_flight: records.iter().map(|r| r.in_flight).max().unwrap_or(1),
    })
}

/// Modelled latency per problem, keyed by problem index.
pub fn modelled(
    records: &[ResultRecord],
    pricing: &Pricing<'_>,
) -> Result<BTreeMap<usize, f64>, CostError> {
    records
        .iter()
        .filter(|r| r.error.is_none())
        .map(|r| Ok((r.idx, pricing.latency(r)?)))
        .collect()
}

/// How close the model comes to `records`' own clocks (meaningful when they ran one at a time).
pub fn check(records: &[ResultRecord], modelled: &BTreeMap<usize, f64>) -> Check {
    let pairs: Vec<(f64, f64)> = records
        .iter()
        .filter_map(|r| modelled.get(&r.idx).map(|m| (r.latency_s, *m)))
        .collect();
    if pairs.is_empty() {
        return Check::default();
    }
    let n = pairs.len();
    let errors: Vec<f64> = pairs.iter().map(|(t, m)| (m / t - 1.0).abs()).collect();
    Check {
        n,
        measured_mean_s: pairs.iter().map(|p| p.0).sum::<f64>() / n as f64,
        modelled_mean_s: pairs.iter().map(|p| p.1).sum::<f64>() / n as f64,
        median_problem_error: crate::stats::median(&errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn costs(decode_ms: f64, call: f64, per_token: f64) -> ModelCosts {
        ModelCosts {
            model: "m".into(),
            decode_ms,
            decode_ms_per_depth: 0.01,
            read_call_ms: call,
            read_token_ms: per_token,
            proposal_ms: 7.0,
            decodes: Vec::new(),
            reads: Vec::new(),
        }
    }

    fn table() -> CostTable {
        CostTable {
            format_version: COST_FORMAT_VERSION,
            measured: "test".into(),
            unix_time: 0,
            depth: 300,
            draft: costs(20.0, 10.0, 1.0),
            target: costs(35.0, 20.0, 3.0),
            target_hidden: costs(36.0, 25.0, 4.0),
        }
    }

    #[test]
    fn the_line_goes_through_exact_points() {
        let (call, per_token) = fit_line(&[(16, 50.0), (64, 98.0), (256, 290.0)]);
        assert!((per_token - 1.0).abs() < 1e-9);
        assert!((call - 34.0).abs() < 1e-9);
        assert_eq!(fit_line(&[(8, 3.0)]), (3.0, 0.0));
    }

    #[test]
    fn each_kind_of_work_is_priced() {
        let c = costs(20.0, 10.0, 1.0);
        let w = RoleWork {
            written: 10,
            read_tokens: 103,
            work: Work {
                read_calls: 2,
                one_token_reads: 3,
                written_depth: 10 * 400,
                proposal_calls: 1,
            },
        };
        // 10 tokens 400 deep at 20 + 0.01 × 400 ms, three one-token reads at the same, two reads
        // of the other 100 tokens, one proposal.
        let ms = 10.0 * 24.0 + 3.0 * 24.0 + (2.0 * 10.0 + 100.0) + 7.0;
        assert!((c.seconds(&w) - ms / 1000.0).abs() < 1e-12);
    }

    #[test]
    fn value_head_runs_are_priced_on_the_hidden_state_target() {
        let t = table();
        let p = t
            .pricing(
                RunType::Rsd,
                Some("value-head prms/value-head.json on target"),
            )
            .unwrap();
        assert_eq!(p.target, &t.target_hidden);
        assert_eq!(p.prm, Some(&t.target_hidden));
        let p = t.pricing(RunType::Router, None).unwrap();
        assert_eq!(p.target, &t.target);
        assert!(p.prm.is_none());
        // A router that reads the value head pays for it as RSD does.
        let p = t
            .pricing(RunType::Router, Some("value-head h.json on target"))
            .unwrap();
        assert_eq!(
            (p.target, p.prm),
            (&t.target_hidden, Some(&t.target_hidden))
        );
        let e = t
            .pricing(RunType::Oracle, Some("remote PRM prm at http://x"))
            .unwrap_err();
        assert!(e.contains("remote PRM prm"), "{e}");
    }

    fn record(idx: usize, latency: f64, reads: [u64; 3], read_tokens: [u64; 3]) -> ResultRecord {
        serde_json::from_value(serde_json::json!({
            "format_version": 1, "idx": idx, "run_type": "rsd", "threshold": 0.5,
            "question": "q", "gt": "1", "pred": "1", "correct": true, "latency_s": latency,
            "tokens": {"draft": 100, "target": 50, "discarded_draft": 0, "accepted_draft": 0},
            "stop": "end_of_sequence",
            "prefill_tokens": {"draft": read_tokens[0], "target": read_tokens[1], "prm": read_tokens[2], "router": 0},
            "work": {
                "draft": {"read_calls": reads[0], "one_token_reads": 0, "written_depth": 100 * 300, "proposal_calls": 0},
                "target": {"read_calls": reads[1], "one_token_reads": 0, "written_depth": 50 * 300, "proposal_calls": 0},
                "prm": {"read_calls": reads[2], "one_token_reads": 0, "written_depth": 0, "proposal_calls": 0},
                "router": {"read_calls": 0, "one_token_reads": 0, "written_depth": 0, "proposal_calls": 0}
            },
            "model_time_s": {"draft": 0.0, "target": 0.0, "prm": 0.0, "router": 0.0},
            "steps": []
        }))
        .unwrap()
    }

    #[test]
    fn a_problem_costs_what_its_models_did() {
        let t = table();
        let p = t.pricing(RunType::Rsd, Some("value-head h.json")).unwrap();
        let r = record(3, 5.0, [2, 3, 4], [100, 60, 80]);
        // draft 100 × (20 + 0.01 × 300) + 2 × 10 + 100 × 1; target (hidden) 50 × (36 + 0.01 ×
        // 300) + 3 × 25 + 60 × 4; PRM (hidden) 4 × 25 + 80 × 4.
        let expected = (2420.0 + 2265.0 + 420.0) / 1000.0;
        assert!((p.latency(&r).unwrap() - expected).abs() < 1e-12);

        let old = record(4, 5.0, [0, 0, 0], [100, 60, 80]);
        let e = p.latency(&old).unwrap_err().to_string();
        assert!(e.contains("problem 4") && e.contains("read counts"), "{e}");
        // A remote model reports tokens but no work: it is refused, not priced as an embedded one.
        let mut remote = record(6, 5.0, [2, 3, 4], [100, 60, 80]);
        remote.work.target.written_depth = 0;
        let e = p.latency(&remote).unwrap_err().to_string();
        assert!(e.contains("problem 6") && e.contains("remote model"), "{e}");

        let mut failed = record(5, 1.0, [0, 0, 0], [100, 0, 0]);
        failed.error = Some("boom".into());
        let m = modelled(&[r.clone(), failed], &p).unwrap();
        assert_eq!(m.keys().copied().collect::<Vec<_>>(), vec![3]);
        let c = check(&[r], &m);
        assert_eq!(c.n, 1);
        assert!((c.mean_error() - (expected / 5.0 - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn tables_of_one_sitting_average() {
        let (a, mut b) = (table(), table());
        b.draft.decode_ms = 30.0;
        b.draft.decodes = vec![(100, 30.0)];
        let m = CostTable::average(&[a, b]).unwrap();
        assert_eq!(m.draft.decode_ms, 25.0);
        assert_eq!(m.draft.decodes, vec![(100, 30.0)]);
        assert_eq!(m.target, table().target);
        assert!(CostTable::average(&[]).is_none());
    }

    #[test]
    fn a_table_of_another_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("costs.json");
        let mut v = serde_json::to_value(table()).unwrap();
        v["format_version"] = 7.into();
        std::fs::write(&path, v.to_string()).unwrap();
        let e = CostTable::load(&path).unwrap_err().to_string();
        assert!(
            e.contains("costs.json") && e.contains("format_version 7"),
            "{e}"
        );
        std::fs::write(&path, serde_json::to_string(&table()).unwrap()).unwrap();
        assert_eq!(CostTable::load(&path).unwrap(), table());
    }
}
