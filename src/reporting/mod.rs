//! Sweeps and reports: threshold grids over run types, `sweep.csv`, trade-off frontiers,
//! matched-accuracy speed-ups, plots and the HTML page.

pub mod report;
pub mod sweep;
