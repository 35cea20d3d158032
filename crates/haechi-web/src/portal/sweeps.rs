//! Parameter sweeps in the portal: start one from a scenario, follow it, read its points as a
//! sortable table and a heat map of any metric over two parameters, and open any point as a
//! full report (a run of a new scenario holding exactly that point's values).

use super::*;
use haechi_app::ScenarioId;
use haechi_app::sweeps::{self as app_sweeps, SweepPoint, SweepRequest};
use std::fmt::Write as _;

/// Metrics the page offers: (sort key, label key, higher is better).
const METRICS: [(&str, &str, bool); 8] = [
    ("sharpe", msg("metric.sharpe"), true),
    ("total_return", msg("metric.total_return"), true),
    ("cagr", msg("metric.cagr"), true),
    ("sortino", msg("metric.sortino"), true),
    ("max_drawdown", msg("metric.mdd"), true),
    ("oos_sharpe", msg("sweep.oos_sharpe"), true),
    ("is_sharpe", msg("sweep.is_sharpe"), true),
    ("trade_count", msg("sweep.trade_count"), false),
];

const PER_PAGE: u64 = 50;

fn metric_of(p: &SweepPoint, key: &str) -> Option<f64> {
    match key {
        "sharpe" => p.sharpe,
        "total_return" => Some(p.total_return),
        "cagr" => p.cagr,
        "sortino" => p.sortino,
        "max_drawdown" => Some(p.max_drawdown),
        "oos_sharpe" => p.oos_sharpe,
        "is_sharpe" => p.is_sharpe,
        "trade_count" => Some(f64::from(p.trade_count)),
        _ => None,
    }
}

/// The label of a sort key, for "sorted by".
fn sort_label(key: &str) -> &'static str {
    match key {
        "point" => msg("sweep.point"),
        "total_return" => msg("metric.total_return"),
        "cagr" => msg("metric.cagr"),
        "sharpe" => msg("metric.sharpe"),
        "sortino" => msg("metric.sortino"),
        "max_drawdown" => msg("metric.mdd"),
        "annual_volatility" => msg("metric.volatility"),
        "final_equity" => msg("metric.final_equity"),
        "trade_count" => msg("sweep.trade_count"),
        "win_rate" => msg("metric.win_rate"),
        "turnover" => msg("metric.turnover"),
        "is_return" => msg("sweep.is_return"),
        "is_sharpe" => msg("sweep.is_sharpe"),
        "oos_return" => msg("sweep.oos_return"),
        _ => msg("sweep.oos_sharpe"),
    }
}

fn format_metric(key: &str, v: Option<f64>) -> String {
    match (key, v) {
        (_, None) => "—".to_owned(),
        ("total_return" | "cagr" | "max_drawdown", Some(v)) => format!("{:+.1}%", v * 100.0),
        ("trade_count", Some(v)) => format!("{v:.0}"),
        (_, Some(v)) => format!("{v:.2}"),
    }
}

pub(super) struct PointRow {
    point: i32,
    params: String,
    total_return: String,
    cagr: String,
    sharpe: String,
    mdd: String,
    trades: i32,
    is_sharpe: String,
    oos_sharpe: String,
}

pub(super) struct HeatLine {
    label: String,
    cells: Vec<(String, String, String)>,
}

#[derive(Template)]
#[template(path = "portal/sweep.html")]
pub(super) struct SweepPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    id: i64,
    scenario_id: i64,
    state_key: &'static str,
    running: bool,
    done: i32,
    total: i32,
    grid: Vec<String>,
    error: Option<String>,
    best: Option<String>,
    dsr: Option<String>,
    dsr_luck: Option<String>,
    oos_rank: Option<String>,
    /// (key, label key, selected)
    metrics: Vec<(&'static str, &'static str, bool)>,
    /// (index, path, selected as x, selected as y)
    axes: Vec<(usize, String, bool, bool)>,
    metric_label: &'static str,
    heat_x: Vec<String>,
    heat: Vec<HeatLine>,
    sort_label: &'static str,
    rows: Vec<PointRow>,
    prev: Option<String>,
    next: Option<String>,
}

#[derive(Debug, Default)]
struct SweepQuery {
    metric: Option<String>,
    x: Option<usize>,
    y: Option<usize>,
    sort: Option<String>,
    page: Option<u64>,
}

fn params_of(p: &SweepPoint) -> Vec<(String, serde_json::Value)> {
    serde_json::from_str(&p.params).unwrap_or_default()
}

/// The heat map: one line per value of the y parameter, one cell per value of the x parameter;
/// a cell shows the best value of the metric over the other parameters' values.
fn heat_map(
    points: &[SweepPoint],
    axes: &[String],
    x: usize,
    y: usize,
    key: &str,
    higher_better: bool,
) -> (Vec<String>, Vec<HeatLine>) {
    // Each point's parameter values, parsed once.
    let values: Vec<Vec<String>> =
        points.iter().map(|p| params_of(p).into_iter().map(|(_, v)| v.to_string()).collect()).collect();
    let value_at = |k: usize, i: usize| values[k].get(i).cloned().unwrap_or_default();
    // One parameter: a single line (x == y), whose label is empty.
    let row_at = |k: usize| if x == y { String::new() } else { value_at(k, y) };
    let mut xs: Vec<String> = Vec::new();
    let mut ys: Vec<String> = Vec::new();
    let mut col: HashMap<String, usize> = HashMap::new();
    let mut row: HashMap<String, usize> = HashMap::new();
    for k in 0..points.len() {
        let (vx, vy) = (value_at(k, x), row_at(k));
        if !col.contains_key(&vx) {
            col.insert(vx.clone(), xs.len());
            xs.push(vx);
        }
        if !row.contains_key(&vy) {
            row.insert(vy.clone(), ys.len());
            ys.push(vy);
        }
    }
    let better = |a: f64, b: f64| if higher_better { a > b } else { a < b };
    let mut grid: Vec<Vec<Option<f64>>> = vec![vec![None; xs.len()]; ys.len()];
    for (k, p) in points.iter().enumerate() {
        let Some(v) = metric_of(p, key) else { continue };
        let (Some(&i), Some(&j)) = (row.get(&row_at(k)), col.get(&value_at(k, x))) else {
            continue;
        };
        let cell = &mut grid[i][j];
        if cell.is_none_or(|c| better(v, c)) {
            *cell = Some(v);
        }
    }
    // Colour by rank: the best third of cells up, the worst third down, three shades each.
    let mut all: Vec<f64> = grid.iter().flatten().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let class = |v: f64| {
        if all.len() < 2 {
            return "h-none".to_owned();
        }
        let rank = all.partition_point(|a| *a < v) as f64 / (all.len() - 1) as f64;
        let rank = if higher_better { rank } else { 1.0 - rank };
        let level = ((rank - 0.5).abs() * 6.0).ceil().clamp(1.0, 3.0) as u8;
        format!("h-{}-{level}", if rank >= 0.5 { "up" } else { "down" })
    };
    let lines = ys
        .iter()
        .zip(&grid)
        .map(|(label, row)| HeatLine {
            label: label.clone(),
            cells: row
                .iter()
                .zip(&xs)
                .map(|(v, xl)| match v {
                    Some(v) => {
                        let at = if x == y {
                            format!("{}={xl}", axes[x])
                        } else {
                            format!("{}={xl}, {}={label}", axes[x], axes[y])
                        };
                        (format_metric(key, Some(*v)), class(*v), at)
                    }
                    None => (String::new(), "h-none".to_owned(), String::new()),
                })
                .collect(),
        })
        .collect();
    (xs, lines)
}

pub(super) async fn sweep_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(raw.as_deref(), &headers);
    let param = |k: &str| {
        raw.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned())
        })
    };
    let q = SweepQuery {
        metric: param("metric"),
        x: param("x").and_then(|v| v.parse().ok()),
        y: param("y").and_then(|v| v.parse().ok()),
        sort: param("sort"),
        page: param("page").and_then(|v| v.parse().ok()),
    };
    let csrf = session_csrf(&p);
    let (sw, all) = app_sweeps::all_points(state.app(), &p, id).await?;
    let grid: Vec<String> = serde_json::from_str(&sw.grid).unwrap_or_default();
    let axes: Vec<String> = grid.iter().map(|g| g.split('=').next().unwrap_or("").trim().to_owned()).collect();
    let key = q.metric.as_deref().filter(|m| METRICS.iter().any(|(k, ..)| k == m)).unwrap_or("sharpe");
    let (_, metric_label, higher) = METRICS.iter().copied().find(|(k, ..)| *k == key).unwrap_or(METRICS[0]);
    let x = q.x.filter(|x| *x < axes.len()).unwrap_or(0);
    let y = q.y.filter(|y| *y < axes.len() && *y != x).unwrap_or(if x == 0 && axes.len() > 1 { 1 } else { 0 });
    let (heat_x, heat) = if all.is_empty() || axes.is_empty() {
        (Vec::new(), Vec::new())
    } else {
        heat_map(&all, &axes, x, y, key, higher)
    };
    let sort =
        q.sort.clone().filter(|s| app_sweeps::SWEEP_SORTS.contains(&s.as_str())).unwrap_or_else(|| key.to_owned());
    let page_no = q.page.unwrap_or(0);
    let paging = haechi_app::paging::Paging::new(Some(page_no), Some(PER_PAGE))?;
    let (_, listed) = app_sweeps::points(state.app(), &p, id, Some(&sort), None, paging).await?;
    let rows = listed
        .items
        .iter()
        .map(|pt| PointRow {
            point: pt.point,
            params: params_of(pt).iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "),
            total_return: format_metric("total_return", Some(pt.total_return)),
            cagr: format_metric("cagr", pt.cagr),
            sharpe: format_metric("sharpe", pt.sharpe),
            mdd: format_metric("max_drawdown", Some(pt.max_drawdown)),
            trades: pt.trade_count,
            is_sharpe: format_metric("is_sharpe", pt.is_sharpe),
            oos_sharpe: format_metric("oos_sharpe", pt.oos_sharpe),
        })
        .collect();
    let link = |n: u64| {
        let mut s = format!("/sweeps/{id}?metric={key}&x={x}&y={y}&sort={sort}");
        let _ = write!(s, "&page={n}");
        s
    };
    let prev = (page_no > 0).then(|| link(page_no - 1));
    let next = ((page_no + 1) * PER_PAGE < listed.total).then(|| link(page_no + 1));
    let best: Option<haechi_jobs::sweeps::BestPoint> = sw.best.as_deref().and_then(|b| serde_json::from_str(b).ok());
    let best_text = best.as_ref().map(|b| {
        let params: Vec<(String, serde_json::Value)> = serde_json::from_value(b.params.clone()).unwrap_or_default();
        let list = params.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ");
        format!("#{} {list} · {} {}", b.point, t.get("metric.sharpe"), format_metric("sharpe", b.sharpe))
    });
    let dsr = best.as_ref().and_then(|b| b.deflated_sharpe).map(|d| format!("{:.1}%", d.probability * 100.0));
    let dsr_luck = best.as_ref().and_then(|b| b.deflated_sharpe).map(|d| {
        t.fill(
            "sweep.dsr_luck",
            &[("trials", &d.trials.to_string()), ("luck", &format!("{:.2}", d.expected_max_sharpe * 252f64.sqrt()))],
        )
    });
    let oos_rank = best.as_ref().map(|b| {
        t.fill(
            "sweep.oos_rank",
            &[("rank", &b.in_sample_best_oos_rank.to_string()), ("total", &sw.points_total.to_string())],
        )
    });
    let running = sw.state == "queued" || sw.state == "running";
    let html = SweepPage {
        state_key: runs::state_key(&sw.state),
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        id: sw.id,
        scenario_id: sw.scenario_id,
        running,
        done: sw.points_done,
        total: sw.points_total,
        grid,
        error: sw.error.clone(),
        best: best_text,
        dsr,
        dsr_luck,
        oos_rank,
        metrics: METRICS.iter().map(|(k, l, _)| (*k, *l, *k == key)).collect(),
        axes: axes.iter().enumerate().map(|(i, a)| (i, a.clone(), i == x, i == y)).collect(),
        metric_label,
        heat_x,
        heat,
        sort_label: sort_label(&sort),
        rows,
        prev,
        next,
    }
    .render();
    Ok(page(StatusCode::OK, html, lang_cookie.into_iter().collect()))
}

#[derive(Debug, Deserialize)]
pub(super) struct SweepForm {
    grid: String,
    in_sample: Option<String>,
}

/// Starts a sweep from the scenario page's form; problems go back to the scenario page.
pub(super) async fn scenario_sweep(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
    Form(f): Form<SweepForm>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    let grid: Vec<String> = f.grid.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect();
    let in_sample = match f.in_sample.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match s.parse::<f64>() {
            Ok(v) => Some(v),
            Err(_) => Some(f64::NAN),
        },
    };
    let req = SweepRequest { grid, in_sample, version: None };
    match app_sweeps::start(state.app(), &meta, &p, ScenarioId(id), req).await {
        Ok(sw) => Ok(Redirect::to(&format!("/sweeps/{}", sw.id)).into_response()),
        Err(AppError::Invalid(problems)) => {
            let list: Vec<String> = problems.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            let extra = PageState {
                edit: None,
                error: None,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                share: None,
                sweep: Some((f.grid.clone(), f.in_sample.clone().unwrap_or_default(), list)),
            };
            scenario_render(&state, t, &p, id, None, extra, Vec::new()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// Opens a grid point as a full report.
pub(super) async fn sweep_point_run(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path((id, point)): axum::extract::Path<(i64, i32)>,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let run = app_sweeps::run_point(state.app(), &meta, &p, id, point).await?;
    Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
}
