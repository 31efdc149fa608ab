//! Reports of a sweep: the trade-off plots (PNG and SVG, drawn with `plotters`) and a static HTML
//! page with the plots, the table, the matched-accuracy speed-up, the rules side by side at matched
//! budgets (does oracle ≥ router ≥ rsd hold?) and a per-problem trace view.
//!
//! Everything here reads what a sweep wrote (`sweep.csv` and each point's `results.jsonl`); nothing
//! runs a model.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;
use serde::Serialize;

use crate::eval::run::{ResultRecord, read_results};
use crate::method::policy::RunType;
use crate::reporting::sweep::{
    AtBudget, CurvePoint, MatchedSpeedup, SweepRow, at_router_budgets, matched_speedups,
};

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot write {path}: {message}")]
    Write { path: PathBuf, message: String },
    #[error(
        "no TrueType font found for the plots (looked at {looked}); install fonts-dejavu-core or set ARBITRAGE_FONT to a .ttf file"
    )]
    NoFont { looked: String },
    #[error("cannot read the results of point {point}")]
    Results {
        point: String,
        #[source]
        source: crate::eval::run::RunError,
    },
}

/// Fonts tried in order after `$ARBITRAGE_FONT` (Debian/Ubuntu, Fedora, Arch, macOS).
const FONT_PATHS: [&str; 6] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf",
    "/Library/Fonts/Arial.ttf",
];

/// Plotters measures text with a registered font, for SVG as well as PNG; register one once.
fn ensure_font() -> Result<(), ReportError> {
    static FONT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = FONT.get_or_init(|| {
        let candidates: Vec<PathBuf> = std::env::var_os("ARBITRAGE_FONT")
            .map(PathBuf::from)
            .into_iter()
            .chain(FONT_PATHS.iter().map(PathBuf::from))
            .collect();
        for path in &candidates {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            // Plotters keeps registered fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                return Ok(());
            }
        }
        Err(candidates
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", "))
    });
    result
        .clone()
        .map_err(|looked| ReportError::NoFont { looked })
}

/// The x axis of a plot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XAxis {
    MeanLatency,
    TargetFraction,
}

impl XAxis {
    fn of(self, row: &SweepRow) -> f64 {
        match self {
            XAxis::MeanLatency => row.mean_latency_s,
            XAxis::TargetFraction => row.target_step_fraction * 100.0,
        }
    }

    fn label(self) -> &'static str {
        match self {
            XAxis::MeanLatency => "mean latency per problem (s)",
            XAxis::TargetFraction => "steps written by the target (%)",
        }
    }

    /// The file stem of the plot.
    pub fn stem(self) -> &'static str {
        match self {
            XAxis::MeanLatency => "accuracy-latency",
            XAxis::TargetFraction => "accuracy-target-fraction",
        }
    }
}

fn colour(run_type: RunType) -> RGBColor {
    match run_type {
        RunType::Router => RGBColor(31, 119, 180),
        RunType::Rsd => RGBColor(214, 94, 14),
        RunType::Oracle => RGBColor(44, 160, 44),
        RunType::Target => RGBColor(20, 20, 20),
        _ => RGBColor(127, 127, 127),
    }
}

const CURVES: [RunType; 3] = [RunType::Router, RunType::Rsd, RunType::Oracle];

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    rows: &[SweepRow],
    x: XAxis,
    title: &str,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(e)?;
    let xs: Vec<f64> = rows.iter().map(|r| x.of(r)).collect();
    let ys: Vec<f64> = rows.iter().map(|r| r.accuracy * 100.0).collect();
    let span = |v: &[f64], floor: f64| {
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min).min(floor);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let pad = ((hi - lo) * 0.08).max(1.0);
        ((lo - pad).max(0.0), hi + pad)
    };
    let (x0, x1) = span(&xs, f64::INFINITY);
    let (y0, y1) = span(&ys, f64::INFINITY);
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(60)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc(x.label())
        .y_desc("accuracy (%)")
        .label_style(("sans-serif", 15))
        .light_line_style(RGBColor(238, 238, 238))
        .draw()
        .map_err(e)?;
    for run_type in CURVES {
        let mut points: Vec<(f64, f64)> = rows
            .iter()
            .filter(|r| r.run_type == run_type)
            .map(|r| (x.of(r), r.accuracy * 100.0))
            .collect();
        if points.is_empty() {
            continue;
        }
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let c = colour(run_type);
        chart
            .draw_series(LineSeries::new(points.clone(), c.stroke_width(2)))
            .map_err(e)?
            .label(run_type.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2)));
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, c.filled())))
            .map_err(e)?;
    }
    for row in rows.iter().filter(|r| !CURVES.contains(&r.run_type)) {
        let c = colour(row.run_type);
        let p = (x.of(row), row.accuracy * 100.0);
        let label = Text::new(
            row.run_type.name().to_owned(),
            (9, -6),
            ("sans-serif", 15).into_font().color(&c),
        );
        chart
            .draw_series(std::iter::once(
                EmptyElement::at(p) + TriangleMarker::new((0, 0), 8, c.filled()) + label,
            ))
            .map_err(e)?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(e)?;
    root.present().map_err(e)
}

/// Draws one plot as `DIR/STEM.svg` and `DIR/STEM.png`.
pub fn plot(dir: &Path, rows: &[SweepRow], x: XAxis, title: &str) -> Result<(), ReportError> {
    ensure_font()?;
    let size = (860, 560);
    let svg = dir.join(format!("{}.svg", x.stem()));
    render(
        &SVGBackend::new(&svg, size).into_drawing_area(),
        &svg,
        rows,
        x,
        title,
    )?;
    let png = dir.join(format!("{}.png", x.stem()));
    render(
        &BitMapBackend::new(&png, size).into_drawing_area(),
        &png,
        rows,
        x,
        title,
    )
}

/// [`draw`] on one backend, its error naming the file.
fn render<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    path: &Path,
    rows: &[SweepRow],
    x: XAxis,
    title: &str,
) -> Result<(), ReportError> {
    draw(area, rows, x, title).map_err(|message| ReportError::Write {
        path: path.to_owned(),
        message,
    })
}

/// The curve of one run type: (mean latency, accuracy) per point.
pub fn curve(rows: &[SweepRow], run_type: RunType) -> Vec<CurvePoint> {
    rows.iter()
        .filter(|r| r.run_type == run_type)
        .map(|r| CurvePoint {
            latency: r.mean_latency_s,
            accuracy: r.accuracy,
        })
        .collect()
}

/// `router`'s speed-up over `rsd` at every accuracy both reach.
pub fn router_over_rsd(rows: &[SweepRow]) -> Vec<MatchedSpeedup> {
    matched_speedups(&curve(rows, RunType::Rsd), &curve(rows, RunType::Router))
}

/// The budget the router's accuracy is judged at (issue 13: at 30% of steps on the target, at
/// least halfway from the draft's accuracy to the target's).
pub const JUDGED_BUDGET: f64 = 0.3;

/// `rsd`, `router` and `oracle` at every router point's share of target steps and at
/// [`JUDGED_BUDGET`].
pub fn at_budgets(rows: &[SweepRow]) -> Vec<AtBudget> {
    at_router_budgets(rows, &[JUDGED_BUDGET])
}

/// The router's interpolated accuracy at [`JUDGED_BUDGET`], with how far it goes from the
/// draft's accuracy to the target's (0 at the draft, 1 at the target; `None` where the two tie);
/// `None` without a router curve there or without both baselines.
pub fn router_at_judged_budget(rows: &[SweepRow]) -> Option<(f64, Option<f64>)> {
    let baseline = |t: RunType| rows.iter().find(|r| r.run_type == t).map(|r| r.accuracy);
    let (draft, target) = (baseline(RunType::Draft)?, baseline(RunType::Target)?);
    let router =
        crate::reporting::sweep::accuracy_at_fraction(rows, RunType::Router, JUDGED_BUDGET)?;
    Some((
        router,
        (target != draft).then(|| (router - draft) / (target - draft)),
    ))
}

/// An accuracy as a percentage, or "–" where a rule has none.
pub fn percent(a: Option<f64>) -> String {
    a.map_or_else(|| "–".into(), |a| format!("{:.1}%", a * 100.0))
}

/// The router at [`JUDGED_BUDGET`] in one sentence, for every form of the report.
pub fn judged_budget_sentence(rows: &[SweepRow]) -> Option<String> {
    let (accuracy, Some(share)) = router_at_judged_budget(rows)? else {
        return None;
    };
    Some(format!(
        "Router at {:.0}% of steps on the target: {:.1}%, {:.0}% of the way from the draft's accuracy to the target's.",
        JUDGED_BUDGET * 100.0,
        accuracy * 100.0,
        share * 100.0
    ))
}

/// Each budget point's asked and sent share of target steps in one sentence, naming the points
/// that miss by more than a third; `None` without budget points.
pub fn budget_check_sentence(rows: &[SweepRow]) -> Option<String> {
    let checks = crate::reporting::sweep::budget_checks(rows);
    if checks.is_empty() {
        return None;
    }
    let parts: Vec<String> = checks
        .iter()
        .map(|c| {
            format!(
                "{} sent {:.0}% of steps to the target for {:.0}% asked{}",
                c.point,
                c.sent * 100.0,
                c.asked * 100.0,
                if c.missed() {
                    " (off by more than a third)"
                } else {
                    ""
                }
            )
        })
        .collect();
    Some(format!("Budget points: {}.", parts.join("; ")))
}

/// What the trace view shows of one point.
#[derive(Serialize)]
struct TracePoint<'a> {
    point: &'a str,
    results: &'a [ResultRecord],
}

/// Every row's `results.jsonl` in `dir`, each sorted by problem: what the trace view and the
/// intervals read, read once.
pub fn read_point_results(
    dir: &Path,
    rows: &[SweepRow],
) -> Result<Vec<Vec<ResultRecord>>, ReportError> {
    rows.iter()
        .map(|row| {
            let path = dir.join(&row.point).join("results.jsonl");
            let mut results = read_results(&path).map_err(|source| ReportError::Results {
                point: row.point.clone(),
                source,
            })?;
            results.sort_by_key(|r| r.idx);
            Ok(results)
        })
        .collect()
}

/// Writes `report.html` in `dir`: plots (referenced, next to it), table, speed-up, the
/// intervals where given, and traces (`results`: [`read_point_results`]).
pub fn write_html(
    dir: &Path,
    title: &str,
    rows: &[SweepRow],
    results: &[Vec<ResultRecord>],
    intervals: Option<&crate::reporting::intervals::Intervals>,
) -> Result<PathBuf, ReportError> {
    let traces: Vec<TracePoint> = rows
        .iter()
        .zip(results)
        .map(|(row, results)| TracePoint {
            point: &row.point,
            results,
        })
        .collect();
    // A script element ends at the first `</`; JSON allows `<\/` for it.
    let data = serde_json::to_string(&traces)
        .expect("results serialise")
        .replace("</", "<\\/");
    let mut html = String::new();
    html.push_str(&format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{}</title>\n<style>{STYLE}</style></head><body>\n<h1>{}</h1>\n",
        escape(title),
        escape(title)
    ));
    html.push_str("<p class=\"note\">Latency is wall-clock seconds per problem, one problem at a time; where a point replayed steps from the step cache, their cost is the one measured when they were first computed (column <em>replayed s</em>).</p>\n");
    html.push_str("<div class=\"plots\">");
    for x in [XAxis::MeanLatency, XAxis::TargetFraction] {
        html.push_str(&format!(
            "<a href=\"{0}.svg\"><img src=\"{0}.png\" alt=\"{1}\" width=\"860\" height=\"560\"></a>",
            x.stem(),
            x.label()
        ));
    }
    html.push_str("</div>\n");
    html.push_str(&table_html(rows));
    html.push_str(&speedup_html(&router_over_rsd(rows)));
    html.push_str(&budget_html(rows));
    if let Some(intervals) = intervals {
        html.push_str(&crate::reporting::intervals::html(intervals));
    }
    html.push_str(
        "<h2>Traces</h2>\n<div class=\"pick\"><label>point <select id=\"point\"></select></label> \
         <label>problem <select id=\"problem\"></select></label></div>\n<div id=\"trace\"></div>\n",
    );
    html.push_str(&format!(
        "<script id=\"data\" type=\"application/json\">{data}</script>\n<script>{SCRIPT}</script>\n</body></html>\n"
    ));
    let path = dir.join("report.html");
    std::fs::write(&path, html).map_err(|e| ReportError::Write {
        path: path.clone(),
        message: e.to_string(),
    })?;
    Ok(path)
}

/// The table and the speed-ups as Markdown, for pasting into docs.
pub fn markdown(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "| point | run type | threshold | n | accuracy | mean latency (s) | p50 (s) | p90 (s) | target-step fraction | draft (s) | target (s) | PRM + router (s) | other (s) | draft tokens | target tokens | discarded draft tokens | draft tokens kept by verification | replayed (s) |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {:.1}% | {:.1} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {} | {:.0} |\n",
            r.point,
            r.run_type,
            r.threshold.map_or_else(|| "–".into(), |t| format!("{t:.3}")),
            r.n,
            r.accuracy * 100.0,
            r.mean_latency_s,
            r.p50_latency_s,
            r.p90_latency_s,
            r.target_step_fraction,
            r.draft_s,
            r.target_s,
            r.scoring_s,
            r.other_s,
            r.draft_tokens,
            r.target_tokens,
            r.discarded_draft_tokens,
            r.accepted_draft_tokens,
            r.replayed_latency_s
        ));
    }
    let speedups = router_over_rsd(rows);
    if !speedups.is_empty() {
        s.push_str("\n| accuracy | rsd latency (s) | router latency (s) | router speed-up |\n|---|---|---|---|\n");
        for m in &speedups {
            let [slow, fast, speedup] = m.marks();
            s.push_str(&format!(
                "| {:.1}% | {slow}{:.1} | {fast}{:.1} | {speedup}{:.2}× |\n",
                m.accuracy * 100.0,
                m.slow_latency,
                m.fast_latency,
                m.speedup
            ));
        }
    }
    let budgets = at_budgets(rows);
    if budgets.iter().any(|b| b.router.is_some()) {
        s.push_str("\n| target-step fraction | rsd | router | oracle | oracle ≥ router ≥ rsd |\n|---|---|---|---|---|\n");
        for b in &budgets {
            s.push_str(&format!(
                "| {:.2} | {} | {} | {} | {} |\n",
                b.fraction,
                percent(b.rsd),
                percent(b.router),
                percent(b.oracle),
                b.order()
            ));
        }
    }
    for sentence in [judged_budget_sentence(rows), budget_check_sentence(rows)]
        .into_iter()
        .flatten()
    {
        s.push_str(&format!("\n{sentence}\n"));
    }
    s
}

fn budget_html(rows: &[SweepRow]) -> String {
    let budgets = at_budgets(rows);
    if !budgets.iter().any(|b| b.router.is_some()) {
        return String::new();
    }
    let mut s = String::from(
        "<h2>At matched budgets</h2>\n<p>Accuracy of each rule at the same share of steps written by the target, interpolated linearly along its accuracy-vs-share curve (the draft alone ends every curve at 0, the target alone at 1). The oracle escalates on the PRM's advantage with the target's step in hand, so it should bound the router; RSD reads only the draft step's score.</p>\n\
         <table><thead><tr><th>target-step fraction</th><th>rsd</th><th>router</th><th>oracle</th><th>oracle ≥ router ≥ rsd</th></tr></thead><tbody>\n",
    );
    for b in &budgets {
        s.push_str(&format!(
            "<tr><td>{:.2}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            b.fraction,
            percent(b.rsd),
            percent(b.router),
            percent(b.oracle),
            escape(&b.order())
        ));
    }
    s.push_str("</tbody></table>\n");
    for sentence in [judged_budget_sentence(rows), budget_check_sentence(rows)]
        .into_iter()
        .flatten()
    {
        s.push_str(&format!("<p>{}</p>\n", escape(&sentence)));
    }
    s
}

fn table_html(rows: &[SweepRow]) -> String {
    let mut s = String::from(
        "<h2>Points</h2>\n<table><thead><tr><th>point</th><th>run type</th><th>threshold</th><th>n</th>\
         <th>accuracy</th><th>mean latency s</th><th>p50 s</th><th>p90 s</th><th>target steps</th>\
         <th>draft s</th><th>target s</th><th>PRM + router s</th><th>other s</th>\
         <th>draft tokens</th><th>target tokens</th><th>discarded draft</th><th>kept by verification</th><th>replayed s</th></tr></thead><tbody>\n",
    );
    for r in rows {
        s.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.1}</td><td>{:.1}</td>\
             <td>{:.1}</td><td>{:.0}%</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td><td>{:.1}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>\n",
            escape(&r.point),
            r.run_type,
            r.threshold.map_or_else(|| "–".into(), |t| format!("{t:.3}")),
            r.n,
            r.accuracy * 100.0,
            r.mean_latency_s,
            r.p50_latency_s,
            r.p90_latency_s,
            r.target_step_fraction * 100.0,
            r.draft_s,
            r.target_s,
            r.scoring_s,
            r.other_s,
            r.draft_tokens,
            r.target_tokens,
            r.discarded_draft_tokens,
            r.accepted_draft_tokens,
            r.replayed_latency_s
        ));
    }
    s.push_str("</tbody></table>\n");
    s
}

fn speedup_html(speedups: &[MatchedSpeedup]) -> String {
    let mut s = String::from("<h2>Router over RSD at matched accuracy</h2>\n");
    if speedups.is_empty() {
        s.push_str(
            "<p>No accuracy is reached by both curves (or one of them has no points).</p>\n",
        );
        return s;
    }
    s.push_str(
        "<p>Latency each rule needs to reach an accuracy, interpolated linearly along its frontier \
         (the points no cheaper point beats). Below a curve's cheapest point that point's latency is used, an upper bound marked ≤ (and the speed-up is then a bound too).</p>\n\
         <table><thead><tr><th>accuracy</th><th>rsd s</th><th>router s</th><th>speed-up</th></tr></thead><tbody>\n",
    );
    for m in speedups {
        let [slow, fast, speedup] = m.marks();
        s.push_str(&format!(
            "<tr><td>{:.1}%</td><td>{slow}{:.1}</td><td>{fast}{:.1}</td><td>{speedup}{:.2}×</td></tr>\n",
            m.accuracy * 100.0,
            m.slow_latency,
            m.fast_latency,
            m.speedup
        ));
    }
    s.push_str("</tbody></table>\n");
    s
}

pub(crate) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}\
td:first-child,th:first-child{text-align:left}.note{color:#555}.plots img{max-width:100%;height:auto}\
.step{white-space:pre-wrap;border-left:5px solid;padding:.4em .8em;margin:.4em 0;font-family:ui-monospace,monospace;font-size:13px}\
.step.draft{border-color:#7f7f7f;background:#f4f4f4}.step.target{border-color:#1f77b4;background:#eaf2fa}\
.from-draft{background:#e3e3e3;border-bottom:2px dotted #7f7f7f}.rejected{white-space:pre-wrap;color:#8a4b2a;text-decoration:line-through;font-size:12px;margin-top:.3em}\
.scores{font-family:system-ui,sans-serif;font-size:12px;color:#555}.ok{color:#2a7d2a}.bad{color:#b22}";

/// Fills the two pickers from the embedded data and renders the chosen trace with DOM text nodes
/// (never innerHTML), so model output cannot inject markup.
const SCRIPT: &str = r#"
(function () {
  const data = JSON.parse(document.getElementById('data').textContent);
  const pointSel = document.getElementById('point');
  const problemSel = document.getElementById('problem');
  const out = document.getElementById('trace');
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function fmt(v) { return typeof v === 'number' ? v.toFixed(3) : null; }
  data.forEach(function (p, i) { pointSel.appendChild(new Option(p.point, i)); });
  function fillProblems() {
    problemSel.textContent = '';
    const p = data[pointSel.value];
    if (!p) return;
    p.results.forEach(function (r, i) {
      problemSel.appendChild(new Option('#' + r.idx + (r.correct ? ' ✓' : ' ✗'), i));
    });
  }
  function render() {
    out.textContent = '';
    const p = data[pointSel.value];
    const r = p && p.results[problemSel.value];
    if (!r) return;
    out.appendChild(el('p', null, r.question));
    const verdict = el('p', r.correct ? 'ok' : 'bad',
      'gold ' + r.gt + ' · answer ' + (r.pred === null ? '(none)' : r.pred) +
      ' · ' + (r.correct ? 'correct' : 'wrong') + ' · ' + r.latency_s.toFixed(1) + ' s' +
      (r.error ? ' · error: ' + r.error : ''));
    out.appendChild(verdict);
    r.steps.forEach(function (s, i) {
      const box = el('div', 'step ' + s.model);
      const scores = ['step ' + (i + 1), s.model];
      if (fmt(s.prm_score)) scores.push('draft PRM ' + fmt(s.prm_score));
      if (fmt(s.target_prm_score)) scores.push('target PRM ' + fmt(s.target_prm_score));
      if (fmt(s.router_score)) scores.push('router ŷ ' + fmt(s.router_score));
      if (s.accepted_tokens) scores.push(s.accepted_tokens + ' of ' + s.tokens + ' tokens kept from the draft (shaded)');
      box.appendChild(el('div', 'scores', scores.join(' · ')));
      const text = el('div', null);
      // Verification keeps a prefix of the draft's step: the text both steps start with.
      let kept = 0;
      if (s.accepted_tokens && s.rejected_draft_text) {
        const a = Array.from(s.text), b = Array.from(s.rejected_draft_text);
        while (kept < a.length && kept < b.length && a[kept] === b[kept]) kept++;
        text.appendChild(el('span', 'from-draft', a.slice(0, kept).join('')));
        text.appendChild(document.createTextNode(a.slice(kept).join('')));
      } else {
        text.textContent = s.text;
      }
      box.appendChild(text);
      if (s.rejected_draft_text) {
        box.appendChild(el('div', 'rejected', s.rejected_draft_text));
      }
      out.appendChild(box);
    });
  }
  pointSel.addEventListener('change', function () { fillProblems(); render(); });
  problemSel.addEventListener('change', render);
  fillProblems();
  render();
  document.body.dataset.ready = 'yes';
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup() {
        assert_eq!(
            escape("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
