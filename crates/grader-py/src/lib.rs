//! Python bindings of `arbitrage-grader`: `verify` for one pair, `verify_batch` for many pairs
//! across threads with the GIL released, the verdict together with what was extracted, and the
//! declared conventions of `GradeOptions`.
//!
//! - **Bad input is a Python exception, never a crash.** A non-string raises `TypeError` (from
//!   PyO3's argument conversion), a string with lone surrogates `UnicodeEncodeError`, a string over
//!   [`MAX_INPUT_BYTES`] `ValueError`, an unknown convention `ValueError`. Every call into the
//!   grader runs under `catch_unwind`, so a bug in the grader would surface as `RuntimeError`
//!   naming the pair rather than abort the interpreter.
//! - **Batches run without the GIL.** The strings are copied out of Python first, then graded on
//!   rayon's pool (or a pool of `threads` workers), so other Python threads keep running.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use arbitrage_grader::{GradeOptions, ListOrder, Tolerance, Units};
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use rayon::prelude::*;

/// Longest string accepted, in UTF-8 bytes. The grader reads only the last 64 KiB of a solution;
/// anything this long is a caller's mistake (a whole file passed as one answer).
const MAX_INPUT_BYTES: usize = 16 * 1024 * 1024;

/// The conventions a grading call follows (see docs/grading.md).
#[pyclass(frozen, eq, name = "GradeOptions", module = "arbitrage_grader")]
#[derive(Clone, PartialEq)]
struct GradeOptionsPy {
    inner: GradeOptions,
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

#[pymethods]
impl GradeOptionsPy {
    #[new]
    #[pyo3(signature = (tolerance = "rounded", units = "ignore", list_order = "ordered"))]
    fn new(tolerance: &str, units: &str, list_order: &str) -> PyResult<Self> {
        Ok(GradeOptionsPy {
            inner: GradeOptions {
                tolerance: tolerance.parse::<Tolerance>().map_err(value_error)?,
                units: units.parse::<Units>().map_err(value_error)?,
                list_order: list_order.parse::<ListOrder>().map_err(value_error)?,
            },
        })
    }

    /// `"exact"`, `"rounded"` or `"relative:REL"`.
    #[getter]
    fn tolerance(&self) -> String {
        self.inner.tolerance.to_string()
    }

    /// `"ignore"` or `"must-match"`.
    #[getter]
    fn units(&self) -> String {
        self.inner.units.to_string()
    }

    /// `"ordered"` or `"any"`.
    #[getter]
    fn list_order(&self) -> String {
        self.inner.list_order.to_string()
    }

    fn __repr__(&self) -> String {
        format!(
            "GradeOptions(tolerance='{}', units='{}', list_order='{}')",
            self.tolerance(),
            self.units(),
            self.list_order()
        )
    }
}

/// The verdict on one pair: whether the prediction equals the gold answer, the gold as compared
/// and the answer extracted from the prediction (`None` when none was found).
#[pyclass(frozen, module = "arbitrage_grader")]
struct Verdict {
    #[pyo3(get)]
    equal: bool,
    #[pyo3(get)]
    gold: String,
    #[pyo3(get)]
    pred: Option<String>,
}

#[pymethods]
impl Verdict {
    fn __bool__(&self) -> bool {
        self.equal
    }

    fn __repr__(&self, py: Python<'_>) -> PyResult<String> {
        let repr = |s: &str| -> PyResult<String> {
            Ok(pyo3::types::PyString::new(py, s).repr()?.to_string())
        };
        let pred = match &self.pred {
            Some(p) => repr(p)?,
            None => "None".to_string(),
        };
        Ok(format!(
            "Verdict(equal={}, gold={}, pred={pred})",
            if self.equal { "True" } else { "False" },
            repr(&self.gold)?
        ))
    }
}

impl From<arbitrage_grader::Verdict> for Verdict {
    fn from(v: arbitrage_grader::Verdict) -> Self {
        Verdict {
            equal: v.equal,
            gold: v.gold,
            pred: v.pred,
        }
    }
}

fn check_len(what: &str, s: &str) -> PyResult<()> {
    if s.len() > MAX_INPUT_BYTES {
        return Err(PyValueError::new_err(format!(
            "{what} is {} bytes; at most {MAX_INPUT_BYTES} are accepted",
            s.len()
        )));
    }
    Ok(())
}

/// The options of a call: `options` (or the defaults) with any convention given by keyword
/// replacing its field.
fn resolve(
    options: Option<&GradeOptionsPy>,
    tolerance: Option<&str>,
    units: Option<&str>,
    list_order: Option<&str>,
) -> PyResult<GradeOptions> {
    let mut o = options.map_or(GradeOptions::DEFAULT, |o| o.inner);
    if let Some(t) = tolerance {
        o.tolerance = t.parse().map_err(value_error)?;
    }
    if let Some(u) = units {
        o.units = u.parse().map_err(value_error)?;
    }
    if let Some(l) = list_order {
        o.list_order = l.parse().map_err(value_error)?;
    }
    Ok(o)
}

/// Grade one pair, turning a panic into an error message that names the pair.
fn grade_one(gold: &str, pred: &str, o: &GradeOptions) -> Result<Verdict, String> {
    catch_unwind(AssertUnwindSafe(|| {
        arbitrage_grader::grade_with(gold, pred, o)
    }))
    .map(Verdict::from)
    .map_err(|_| {
        let head: String = gold.chars().take(80).collect();
        format!("the grader panicked on the pair with gold {head:?}")
    })
}

/// Grade one prediction (a bare answer or a whole solution) against a gold answer.
#[pyfunction]
#[pyo3(signature = (gold, pred, *, options = None, tolerance = None, units = None, list_order = None))]
fn verify(
    py: Python<'_>,
    gold: &str,
    pred: &str,
    options: Option<&GradeOptionsPy>,
    tolerance: Option<&str>,
    units: Option<&str>,
    list_order: Option<&str>,
) -> PyResult<Verdict> {
    check_len("gold", gold)?;
    check_len("pred", pred)?;
    let o = resolve(options, tolerance, units, list_order)?;
    // Long solutions take milliseconds: let other Python threads run meanwhile.
    let v = if pred.len() > 4096 {
        py.detach(|| grade_one(gold, pred, &o))
    } else {
        grade_one(gold, pred, &o)
    };
    v.map_err(PyRuntimeError::new_err)
}

/// Grade many pairs across threads without the GIL; verdicts come back in input order.
#[pyfunction]
#[pyo3(signature = (golds, preds, *, options = None, threads = None))]
fn verify_batch(
    py: Python<'_>,
    golds: Vec<String>,
    preds: Vec<String>,
    options: Option<&GradeOptionsPy>,
    threads: Option<usize>,
) -> PyResult<Vec<Verdict>> {
    if golds.len() != preds.len() {
        return Err(PyValueError::new_err(format!(
            "golds has {} items and preds {}; they must be as long",
            golds.len(),
            preds.len()
        )));
    }
    for (i, (g, p)) in golds.iter().zip(&preds).enumerate() {
        check_len(&format!("golds[{i}]"), g)?;
        check_len(&format!("preds[{i}]"), p)?;
    }
    if threads == Some(0) {
        return Err(PyValueError::new_err("threads must be at least 1"));
    }
    let o = options.map_or(GradeOptions::DEFAULT, |o| o.inner);
    let run = || -> Vec<Result<Verdict, String>> {
        golds
            .par_iter()
            .zip(preds.par_iter())
            .map(|(g, p)| grade_one(g, p, &o))
            .collect()
    };
    let results = py.detach(|| match threads {
        None => Ok(run()),
        // One worker: this thread, no pool.
        Some(1) => Ok(golds
            .iter()
            .zip(&preds)
            .map(|(g, p)| grade_one(g, p, &o))
            .collect()),
        Some(n) => pool(n).map(|pool| pool.install(run)),
    });
    let results = results.map_err(PyRuntimeError::new_err)?;
    results
        .into_iter()
        .enumerate()
        .map(|(i, r)| r.map_err(|e| PyRuntimeError::new_err(format!("pair {i}: {e}"))))
        .collect()
}

/// A pool of `n` workers, built on first use and kept: a reward function calls `verify_batch`
/// with the same `threads` many times, and building a pool costs more than a small batch.
fn pool(n: usize) -> Result<Arc<rayon::ThreadPool>, String> {
    static POOLS: Mutex<Vec<(usize, Arc<rayon::ThreadPool>)>> = Mutex::new(Vec::new());
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, p)) = pools.iter().find(|(k, _)| *k == n) {
        return Ok(Arc::clone(p));
    }
    let p = rayon::ThreadPoolBuilder::new()
        .num_threads(n)
        .build()
        .map(Arc::new)
        .map_err(|e| format!("cannot start {n} threads: {e}"))?;
    pools.push((n, Arc::clone(&p)));
    Ok(p)
}

/// The final answer of a solution text (boxed, marked, or last), `None` when there is none.
#[pyfunction]
fn extract_answer(text: &str) -> PyResult<Option<String>> {
    check_len("text", text)?;
    catch_unwind(|| arbitrage_grader::extract_answer(text))
        .map_err(|_| PyRuntimeError::new_err("the grader panicked on this text"))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Verdict>()?;
    m.add_class::<GradeOptionsPy>()?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(verify_batch, m)?)?;
    m.add_function(wrap_pyfunction!(extract_answer, m)?)?;
    m.add("MAX_INPUT_BYTES", MAX_INPUT_BYTES)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
