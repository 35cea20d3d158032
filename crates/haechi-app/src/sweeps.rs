//! Parameter sweeps on the server: a scenario version over a grid of its numeric fields, run as
//! chunk jobs on the queue by any number of workers, each point stored once.
//!
//! A sweep is visible to its owner and to whoever may read its scenario; only the owner starts
//! one. Every problem with the grid is reported before anything is queued.

use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult, FieldProblem};
use crate::paging::{PageOf, Paging};
use crate::principal::Principal;
use crate::rbac::Permission;
use crate::{App, ScenarioId, scenarios};
use haechi_db::{NewSweep, state};
pub use haechi_db::{SWEEP_SORTS, Sweep, SweepPoint};
use haechi_jobs::sweeps::chunks;
use haechi_sim::scenario::{Document, Format};
use haechi_sim::sweep;
use serde_json::json;

/// The in-sample share when none is given.
pub const DEFAULT_IN_SAMPLE: f64 = 0.7;
/// Longest grid, all axes' text together: ranges keep any real grid far below it.
pub const MAX_GRID_BYTES: usize = 16 * 1024;

/// What starting a sweep needs.
#[derive(Debug, Clone)]
pub struct SweepRequest {
    /// Axes as `FIELD=LO..HI:STEP` or `FIELD=A,B,C`.
    pub grid: Vec<String>,
    pub in_sample: Option<f64>,
    /// The scenario version (default: the current one).
    pub version: Option<i32>,
}

/// Checks the grid against the scenario version and queues the sweep's chunks.
///
/// # Errors
/// [`AppError::Invalid`] listing every problem with the grid (field `grid[i]` for an axis,
/// `grid` for the points); [`AppError::Conflict`] without market data; [`AppError::Quota`]
/// over the owner's active runs and sweeps; [`AppError::Internal`] when the queue refuses
/// (the sweep is then marked failed).
pub async fn start(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: ScenarioId,
    req: SweepRequest,
) -> AppResult<Sweep> {
    let s = scenarios::owned(app, p, id, false).await?;
    let version = req.version.unwrap_or(s.current_version);
    let Some(v) = app.db().scenario_version(s.id, version).await? else {
        return Err(AppError::invalid("version", format!("version {version} does not exist")));
    };
    let in_sample = req.in_sample.unwrap_or(DEFAULT_IN_SAMPLE);
    if !(in_sample > 0.0 && in_sample < 1.0) {
        return Err(AppError::invalid("in_sample", format!("must be between 0 and 1 (exclusive), found {in_sample}")));
    }
    // The grid is stored as text (MySQL TEXT holds 64 KiB): a longer one is refused here.
    let length: usize = req.grid.iter().map(String::len).sum();
    if length > MAX_GRID_BYTES {
        return Err(AppError::invalid("grid", format!("the grid is {length} bytes long; at most {MAX_GRID_BYTES}")));
    }
    let mut problems = Vec::new();
    let mut axes = Vec::new();
    for (i, g) in req.grid.iter().enumerate() {
        match sweep::parse_axis(g) {
            Ok(a) => axes.push(a),
            Err(e) => problems.push(FieldProblem::new(format!("grid[{i}]"), e)),
        }
    }
    if !problems.is_empty() {
        return Err(AppError::Invalid(problems));
    }
    let doc = Document::parse(&v.spec, Format::Json, "scenario")
        .map_err(|e| AppError::Conflict(format!("the stored scenario is not valid: {e}")))?;
    // Up to 100,000 validations: off the async threads.
    let checked = tokio::task::spawn_blocking(move || sweep::check(&doc, &axes, Vec::new()))
        .await
        .map_err(|e| AppError::internal("checking a grid", e))?;
    let total = match checked {
        Ok(n) => n,
        Err(e) => {
            return Err(AppError::Invalid(e.problems.into_iter().map(|m| FieldProblem::new("grid", m)).collect()));
        }
    };
    let Some(data) = app.db().data_version().await? else {
        return Err(AppError::Conflict("no market data is loaded yet (run `haechi data load`)".into()));
    };
    let limit = app.settings().max_active_runs;
    if app.db().count_active_sweeps(p.id().get()).await? >= u64::from(limit) {
        return Err(AppError::Quota(format!(
            "at most {limit} sweeps may be queued or running at once; wait for one to finish"
        )));
    }
    let grid = serde_json::to_string(&req.grid).map_err(|e| AppError::internal("storing a grid", e))?;
    let points = i32::try_from(total).map_err(|e| AppError::internal("counting points", e))?;
    let new = NewSweep {
        owner_id: p.id().get(),
        scenario_id: s.id,
        scenario_version: version,
        data_version: data.id,
        grid,
        in_sample,
        points_total: points,
    };
    let sw = app.db().create_sweep(new).await?;
    for job in chunks(sw.id, points as u32) {
        if let Err(e) = app.queue().enqueue(job).await {
            let _ = app.db().end_sweep(sw.id, state::FAILED, None, Some("the job queue is unavailable".into())).await;
            return Err(AppError::internal("enqueueing a sweep", e));
        }
    }
    let detail = json!({"sweep": sw.id, "scenario": s.id, "version": version, "points": total});
    record(app, meta, "sweep_created", Some(p.id()), Some(p.id()), detail).await;
    Ok(sw)
}

/// The sweep if the caller may read it.
///
/// # Errors
/// [`AppError::NotFound`] when it does not exist or the caller may not see it.
pub async fn get(app: &App, p: &Principal, id: i64) -> AppResult<Sweep> {
    p.require(Permission::Simulate)?;
    let sw = app.db().sweep_by_id(id).await?.ok_or(AppError::NotFound)?;
    if sw.owner_id == p.id().get() {
        return Ok(sw);
    }
    scenarios::readable(app, p, ScenarioId(sw.scenario_id), false).await.map(|_| sw)
}

/// The caller's latest sweeps of one of their scenarios (at most 10, newest first).
///
/// # Errors
/// As [`scenarios::owned`].
pub async fn list_for_scenario(app: &App, p: &Principal, id: ScenarioId) -> AppResult<Vec<Sweep>> {
    let s = scenarios::owned(app, p, id, false).await?;
    let mine = app.db().list_sweeps(p.id().get(), 200).await?;
    Ok(mine.into_iter().filter(|w| w.scenario_id == s.id).take(10).collect())
}

/// Which way to sort points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Asc,
    Desc,
}

/// A page of a sweep's points sorted by a metric ([`SWEEP_SORTS`]): a metric best (largest)
/// first unless [`Order::Asc`], `point` in grid order unless [`Order::Desc`].
///
/// # Errors
/// As [`get`]; [`AppError::Invalid`] at `sort` for an unknown metric.
pub async fn points(
    app: &App,
    p: &Principal,
    id: i64,
    sort: Option<&str>,
    order: Option<Order>,
    paging: Paging,
) -> AppResult<(Sweep, PageOf<SweepPoint>)> {
    let ascending = order == Some(Order::Asc);
    let explicit_desc = order == Some(Order::Desc);
    let sw = get(app, p, id).await?;
    let sort = sort.unwrap_or("point");
    // By point, grid order unless `desc` is asked for; by a metric, best (largest) first.
    let descending = if sort == "point" { explicit_desc } else { !ascending };
    let offset = paging.page * paging.per_page;
    let Some(page) = app.db().sweep_points(sw.id, sort, descending, offset, paging.per_page).await? else {
        return Err(AppError::invalid("sort", format!("unknown metric {sort:?}; one of {}", SWEEP_SORTS.join(", "))));
    };
    Ok((sw, PageOf { items: page.items, total: page.total, page: paging.page, per_page: paging.per_page }))
}

/// Every point (for a heat map), in grid order.
///
/// # Errors
/// As [`get`].
pub async fn all_points(app: &App, p: &Principal, id: i64) -> AppResult<(Sweep, Vec<SweepPoint>)> {
    let sw = get(app, p, id).await?;
    let points = app.db().all_sweep_points(sw.id).await?;
    Ok((sw, points))
}

/// Opens a grid point as a full report: a new scenario of the caller's, named after the sweep's
/// scenario and the point (`… · strategy.fast=10, strategy.slow=60`), holding exactly the
/// point's values, and a run of it. Returns the queued run.
///
/// # Errors
/// As [`get`]; [`AppError::NotFound`] for a point the sweep does not have; as
/// [`scenarios::create`] and [`crate::runs::start`] (quotas, no market data).
pub async fn run_point(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: i64,
    point: i32,
) -> AppResult<crate::runs::Run> {
    let sw = get(app, p, id).await?;
    let stored = app.db().all_sweep_points(sw.id).await?;
    let row = stored.iter().find(|r| r.point == point).ok_or(AppError::NotFound)?;
    let v = app
        .db()
        .scenario_version(sw.scenario_id, sw.scenario_version)
        .await?
        .ok_or_else(|| AppError::Conflict("the sweep's scenario version no longer exists".into()))?;
    let mut spec: serde_json::Value =
        serde_json::from_str(&v.spec).map_err(|e| AppError::internal("reading a stored scenario", e))?;
    let params: Vec<(String, serde_json::Value)> =
        serde_json::from_str(&row.params).map_err(|e| AppError::internal("reading a sweep point", e))?;
    let mut label = Vec::new();
    for (path, value) in &params {
        set_path(&mut spec, path, value.clone());
        label.push(format!("{path}={value}"));
    }
    let name = spec["name"].as_str().unwrap_or("sweep").to_owned();
    spec["name"] = json!(format!("{name} · {}", label.join(", ")).chars().take(200).collect::<String>());
    let valid = crate::spec::validate_json(&spec, "spec").map_err(AppError::Invalid)?;
    let message = format!("sweep #{} point {point}", sw.id);
    let doc = scenarios::create(app, meta, p, valid, message).await?;
    crate::runs::start(app, meta, p, ScenarioId(doc.scenario.id), None).await
}

/// Sets a dotted path in a JSON document, creating objects on the way.
fn set_path(doc: &mut serde_json::Value, path: &str, value: serde_json::Value) {
    let mut node = doc;
    let keys: Vec<&str> = path.split('.').collect();
    for (i, key) in keys.iter().enumerate() {
        if !node.is_object() {
            *node = json!({});
        }
        let Some(map) = node.as_object_mut() else { return };
        if i + 1 == keys.len() {
            map.insert((*key).to_owned(), value);
            return;
        }
        node = map.entry((*key).to_owned()).or_insert_with(|| json!({}));
    }
}
