//! The logistic model every stored classifier uses (router files, early rules, value heads): its
//! fit, its checks, its prediction and its serialised form. It sits below both the loop (which
//! predicts with it) and training (which fits it), so neither depends on the other.

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use ndarray::{Array1, Array2};
use serde::{Deserialize, Serialize};

/// Why a logistic model could not be fitted.
#[derive(Debug, thiserror::Error)]
pub enum FitError {
    #[error("{0}")]
    Data(String),
    #[error("the logistic regression did not fit")]
    Fit(#[source] linfa_logistic::error::Error),
}

/// A logistic model on standardised inputs: `P(y = 1) = σ(w · (x − mean) / scale + bias)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub mean: Vec<f64>,
    pub scale: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl Logistic {
    pub fn predict(&self, x: &[f32]) -> f32 {
        logistic_probability(x, &self.mean, &self.scale, &self.weights, self.bias)
    }

    /// Why the model cannot read `inputs` values, if it cannot.
    pub fn check(&self, inputs: usize) -> Result<(), String> {
        check_logistic(inputs, &self.mean, &self.scale, &self.weights, self.bias)
    }
}

/// What every stored logistic model must satisfy: one mean, scale and weight per input, positive
/// scales, finite values.
pub fn check_logistic(
    inputs: usize,
    mean: &[f64],
    scale: &[f64],
    weights: &[f64],
    bias: f64,
) -> Result<(), String> {
    for (name, len) in [
        ("mean", mean.len()),
        ("scale", scale.len()),
        ("weights", weights.len()),
    ] {
        if len != inputs {
            return Err(format!("`{name}` has {len} values for {inputs} inputs"));
        }
    }
    if scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
        return Err("`scale` values must be positive".into());
    }
    if weights.iter().chain(mean).any(|w| !w.is_finite()) || !bias.is_finite() {
        return Err("weights, means and bias must be finite".into());
    }
    Ok(())
}

/// `σ(w · (x − mean) / scale + bias)`: what every stored logistic model (router file, head file)
/// predicts.
pub fn logistic_probability(
    x: &[f32],
    mean: &[f64],
    scale: &[f64],
    weights: &[f64],
    bias: f64,
) -> f32 {
    let z: f64 = x
        .iter()
        .zip(mean.iter().zip(scale))
        .zip(weights)
        .map(|((&x, (m, s)), w)| (f64::from(x) - m) / s * w)
        .sum::<f64>()
        + bias;
    (1.0 / (1.0 + (-z).exp())) as f32
}

/// Fits an L2-regularised logistic regression (`linfa-logistic`) on standardised `rows`. Inputs
/// that do not vary keep scale 1, so they contribute nothing.
pub fn fit_logistic(rows: &[&[f32]], labels: &[bool], alpha: f64) -> Result<Logistic, FitError> {
    let d = rows.first().map_or(0, |r| r.len());
    if rows.iter().any(|r| r.len() != d) {
        return Err(FitError::Data("training rows differ in length".into()));
    }
    let n = rows.len() as f64;
    let mean: Vec<f64> = (0..d)
        .map(|j| rows.iter().map(|r| f64::from(r[j])).sum::<f64>() / n)
        .collect();
    let scale: Vec<f64> = (0..d)
        .map(|j| {
            let var = rows
                .iter()
                .map(|r| (f64::from(r[j]) - mean[j]).powi(2))
                .sum::<f64>()
                / n;
            if var > 1e-12 { var.sqrt() } else { 1.0 }
        })
        .collect();
    let x = Array2::from_shape_fn((rows.len(), d), |(i, j)| {
        (f64::from(rows[i][j]) - mean[j]) / scale[j]
    });
    let dataset = Dataset::new(x, Array1::from(labels.to_vec()));
    let model = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(200)
        .fit(&dataset)
        .map_err(FitError::Fit)?;
    // linfa calls the larger class "positive"; express the model as P(y = 1).
    let sign = if model.labels().pos.class { 1.0 } else { -1.0 };
    Ok(Logistic {
        mean,
        scale,
        weights: model.params().iter().map(|w| w * sign).collect(),
        bias: model.intercept() * sign,
    })
}
