//! Sweeps and reports: threshold grids over run types, `sweep.csv`, trade-off frontiers,
//! matched-accuracy speed-ups, plots and the HTML page, bootstrap intervals on the problems, and
//! the latency model that prices a batched run's problems as if each had run alone.

pub mod cost;
pub mod intervals;
pub mod report;
pub mod sweep;
