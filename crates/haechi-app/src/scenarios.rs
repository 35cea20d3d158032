//! Investment scenarios: immutable versions, diff and restore, soft delete, duplicate,
//! read-only sharing, and TOML import/export.
//!
//! Authorisation: a scenario is visible to its owner and to the users it is shared with
//! (read-only); anyone else gets [`AppError::NotFound`], so ids reveal nothing. Only the owner
//! changes it.

use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult, FieldProblem};
use crate::paging::{PageOf, Paging};
use crate::principal::Principal;
use crate::rbac::Permission;
use crate::spec::{self, Change, ValidSpec};
use crate::{App, Role, RunState, ScenarioId, UserId};
pub use haechi_db::{Access, Scenario, ScenarioVersion};
use haechi_db::{NewVersion, ScenarioQuery, ScenarioScope};
use serde_json::{Value, json};

const MAX_MESSAGE: usize = 500;
const MAX_NAME: usize = 200;
/// Search text longer than this is ignored rather than sent to the database.
const MAX_SEARCH: usize = 200;

fn is_analyst(p: &Principal) -> bool {
    p.role() == Role::Analyst
}

/// The scenario if the caller may read it (live, or the owner's deleted one when
/// `allow_deleted`).
///
/// # Errors
/// [`AppError::NotFound`] when it does not exist or the caller may not see it.
pub async fn readable(app: &App, p: &Principal, id: ScenarioId, allow_deleted: bool) -> AppResult<(Scenario, Access)> {
    p.require(Permission::Simulate)?;
    match app.db().scenario_for(id.get(), p.id().get(), is_analyst(p)).await? {
        Some((s, a)) if allow_deleted || s.deleted_at.is_none() => Ok((s, a)),
        _ => Err(AppError::NotFound),
    }
}

/// The scenario if the caller owns it; readers get [`AppError::Forbidden`], strangers
/// [`AppError::NotFound`].
///
/// # Errors
/// As above.
pub async fn owned(app: &App, p: &Principal, id: ScenarioId, allow_deleted: bool) -> AppResult<Scenario> {
    match readable(app, p, id, allow_deleted).await? {
        (s, Access::Owner) => Ok(s),
        (_, Access::Reader) => Err(AppError::Forbidden("this scenario is shared with you read-only")),
    }
}

/// The scenario's current version.
///
/// # Errors
/// [`AppError::Internal`] if the version row is missing (it never should be).
pub async fn current(app: &App, s: &Scenario) -> AppResult<ScenarioVersion> {
    app.db().scenario_version(s.id, s.current_version).await?.ok_or_else(|| {
        AppError::internal("scenario version", format!("scenario {} lost version {}", s.id, s.current_version))
    })
}

/// A scenario with its current version, as the caller may see it.
#[derive(Debug, Clone)]
pub struct ScenarioDoc {
    pub scenario: Scenario,
    pub access: Access,
    pub version: ScenarioVersion,
}

impl ScenarioDoc {
    /// The version's document (the stored JSON is valid by construction).
    #[must_use]
    pub fn spec(&self) -> Value {
        serde_json::from_str(&self.version.spec).unwrap_or(Value::Null)
    }
}

/// Largest scenario document accepted, in bytes of JSON (a real one is a few KiB).
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// Validates a scenario document on a blocking thread, so a large document costs a worker
/// thread, never the async threads that answer everyone else.
///
/// # Errors
/// [`AppError::Invalid`] with the problems.
pub async fn validate_off_thread(doc: Value, message: Option<String>) -> AppResult<(ValidSpec, String)> {
    tokio::task::spawn_blocking(move || validate(&doc, message.as_deref()))
        .await
        .map_err(|e| AppError::internal("scenario validation task", e))?
}

/// Validates a scenario document given as JSON (field paths under `spec`) and a version
/// message, reporting every problem at once.
///
/// # Errors
/// [`AppError::Invalid`] with the problems.
pub fn validate(doc: &Value, message: Option<&str>) -> AppResult<(ValidSpec, String)> {
    let size = doc.to_string().len();
    if size > MAX_DOCUMENT_BYTES {
        return Err(AppError::invalid("spec", format!("is {size} bytes; at most {MAX_DOCUMENT_BYTES} are accepted")));
    }
    let message = message.unwrap_or("").trim().to_owned();
    let mut errs = match spec::validate_json(doc, "spec") {
        Ok(valid) if message.chars().count() <= MAX_MESSAGE => return Ok((valid, message)),
        Ok(_) => Vec::new(),
        Err(e) => e,
    };
    if message.chars().count() > MAX_MESSAGE {
        errs.push(FieldProblem::new("message", format!("must be at most {MAX_MESSAGE} characters")));
    }
    Err(AppError::Invalid(errs))
}

fn new_version(v: ValidSpec, author: UserId, message: String) -> AppResult<NewVersion> {
    if v.scenario.name.chars().count() > MAX_NAME {
        return Err(AppError::invalid("spec.name", format!("must be at most {MAX_NAME} characters")));
    }
    Ok(NewVersion {
        name: v.scenario.name.clone(),
        description: v.scenario.description.clone(),
        strategy: v.scenario.strategy.name().to_owned(),
        spec: v.json,
        author_id: author.get(),
        message,
    })
}

/// Which scenarios to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Text searched in names and descriptions.
    pub search: Option<String>,
    /// `all` (default: owned and shared with the caller), `owned` or `shared`.
    pub scope: Option<String>,
    pub strategy: Option<String>,
    /// The caller's bin instead.
    pub deleted: bool,
}

/// Lists scenarios the caller owns or that are shared with them, newest change first.
///
/// # Errors
/// [`AppError::Invalid`] at `scope` for an unknown scope.
pub async fn list(app: &App, p: &Principal, q: ListQuery, paging: Paging) -> AppResult<PageOf<(Scenario, Access)>> {
    p.require(Permission::Simulate)?;
    let scope = match q.scope.as_deref() {
        None | Some("all") => ScenarioScope::All,
        Some("owned") => ScenarioScope::Owned,
        Some("shared") => ScenarioScope::Shared,
        Some(_) => return Err(AppError::invalid("scope", "must be all, owned or shared")),
    };
    let query = ScenarioQuery {
        viewer_id: p.id().get(),
        viewer_is_analyst: is_analyst(p),
        scope,
        search: q.search.filter(|s| s.len() <= MAX_SEARCH),
        strategy: q.strategy,
        deleted: q.deleted,
        page: paging.page,
        per_page: paging.per_page,
    };
    let res = app.db().list_scenarios(&query).await?;
    let me = p.id().get();
    let items = res
        .items
        .into_iter()
        .map(|s| {
            let access = if s.owner_id == me { Access::Owner } else { Access::Reader };
            (s, access)
        })
        .collect();
    Ok(PageOf { items, total: res.total, page: paging.page, per_page: paging.per_page })
}

/// Refuses to store `adding` more bytes for the caller past the stored-bytes quota.
///
/// # Errors
/// [`AppError::Quota`] naming the usage and the limit.
pub async fn ensure_storage(app: &App, p: &Principal, adding: usize) -> AppResult<()> {
    let limit = app.settings().max_stored_bytes;
    let used = app.db().stored_bytes(p.id().get()).await?;
    let after = used.saturating_add(u64::try_from(adding).unwrap_or(u64::MAX));
    if after > limit || (adding == 0 && used >= limit) {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        return Err(AppError::Quota(format!(
            "your scenarios and run reports take {:.1} MiB of your {:.1} MiB; delete finished runs \
             (DELETE /api/v1/runs/{{id}}) or scenarios in the bin (POST /api/v1/scenarios/{{id}}/purge) to free space",
            mib(used),
            mib(limit)
        )));
    }
    Ok(())
}

/// Stores a validated scenario as version 1, owned by the caller.
///
/// # Errors
/// [`AppError::Invalid`] for a name too long.
pub async fn create(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    valid: ValidSpec,
    message: String,
) -> AppResult<ScenarioDoc> {
    p.require(Permission::Simulate)?;
    let limit = app.settings().max_scenarios;
    if app.db().count_owned_scenarios(p.id().get()).await? >= u64::from(limit) {
        return Err(AppError::Quota(format!("at most {limit} scenarios per user; move some to the bin first")));
    }
    let message = if message.is_empty() { "created".into() } else { message };
    let nv = new_version(valid, p.id(), message)?;
    ensure_storage(app, p, nv.spec.len()).await?;
    let (s, v) = app.db().create_scenario(p.id().get(), nv).await?;
    record(app, meta, "scenario_created", Some(p.id()), Some(p.id()), json!({"scenario": s.id})).await;
    Ok(ScenarioDoc { scenario: s, access: Access::Owner, version: v })
}

/// Creates a scenario from a TOML file; syntax errors name `scenario.toml:line:column`.
///
/// # Errors
/// [`AppError::Invalid`] with every problem.
pub async fn import_toml(app: &App, meta: &RequestMeta, p: &Principal, body: &[u8]) -> AppResult<ScenarioDoc> {
    p.require(Permission::Simulate)?;
    if body.len() > MAX_DOCUMENT_BYTES {
        let n = body.len();
        return Err(AppError::invalid("body", format!("is {n} bytes; at most {MAX_DOCUMENT_BYTES} are accepted")));
    }
    let text =
        std::str::from_utf8(body).map_err(|_| AppError::invalid("body", "the file is not UTF-8 text"))?.to_owned();
    let valid = tokio::task::spawn_blocking(move || spec::validate_toml(&text, "scenario.toml"))
        .await
        .map_err(|e| AppError::internal("scenario validation task", e))?
        .map_err(AppError::Invalid)?;
    create(app, meta, p, valid, "imported from TOML".into()).await
}

/// A scenario with its current document.
///
/// # Errors
/// [`AppError::NotFound`] when the caller may not read it.
pub async fn get(app: &App, p: &Principal, id: ScenarioId) -> AppResult<ScenarioDoc> {
    let (scenario, access) = readable(app, p, id, false).await?;
    let version = current(app, &scenario).await?;
    Ok(ScenarioDoc { scenario, access, version })
}

/// Saves a validated document as the owner's next version; `base_version` guards against
/// overwriting someone's newer save.
///
/// # Errors
/// [`AppError::Conflict`] when a newer version was saved since `base_version`.
pub async fn save(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: ScenarioId,
    valid: ValidSpec,
    message: String,
    base_version: Option<i32>,
) -> AppResult<ScenarioDoc> {
    let s = owned(app, p, id, false).await?;
    let nv = new_version(valid, p.id(), if message.is_empty() { "edited".into() } else { message })?;
    ensure_storage(app, p, nv.spec.len()).await?;
    let (s, v) = app.db().add_scenario_version(s.id, base_version, nv).await?;
    let detail = json!({"scenario": s.id, "version": v.version});
    record(app, meta, "scenario_updated", Some(p.id()), Some(p.id()), detail).await;
    Ok(ScenarioDoc { scenario: s, access: Access::Owner, version: v })
}

/// Moves a scenario to the owner's bin, or (`deleted = false`) back out of it.
///
/// # Errors
/// [`AppError::NotFound`] / [`AppError::Forbidden`] as for [`owned`].
pub async fn set_deleted(app: &App, meta: &RequestMeta, p: &Principal, id: ScenarioId, deleted: bool) -> AppResult<()> {
    let s = owned(app, p, id, !deleted).await?;
    app.db().set_scenario_deleted(s.id, deleted).await?;
    let event = if deleted { "scenario_deleted" } else { "scenario_undeleted" };
    record(app, meta, event, Some(p.id()), Some(p.id()), json!({"scenario": s.id})).await;
    Ok(())
}

/// Deletes a scenario from the owner's bin for good: its versions, shares, runs and their
/// reports. Frees what it took from the stored-bytes quota.
///
/// # Errors
/// [`AppError::NotFound`] when it is not the caller's; [`AppError::Conflict`] when it is not
/// in the bin, or one of its runs is still queued or running.
pub async fn purge(app: &App, meta: &RequestMeta, p: &Principal, id: ScenarioId) -> AppResult<()> {
    let s = owned(app, p, id, true).await?;
    let not_binned =
        || AppError::Conflict("only a scenario in the bin can be deleted for good; delete it first".into());
    if s.deleted_at.is_none() {
        return Err(not_binned());
    }
    for st in [RunState::Queued, RunState::Running] {
        let q = haechi_db::RunQuery {
            scenario_id: Some(s.id),
            state: Some(st.as_str().into()),
            per_page: 1,
            ..Default::default()
        };
        if app.db().list_runs(&q).await?.total > 0 {
            return Err(AppError::Conflict(
                "a run of this scenario is still queued or running; cancel it first".into(),
            ));
        }
    }
    let prefixes = app.db().purge_scenario(s.id).await?.ok_or_else(not_binned)?;
    let runs = prefixes.len();
    for prefix in prefixes {
        // The rows are gone, so the quota is freed; an object left behind is only garbage.
        if let Err(e) = app.objects().delete_prefix(&prefix).await {
            tracing::warn!(%prefix, error = %e, "a purged run's report could not be removed");
        }
    }
    record(app, meta, "scenario_purged", Some(p.id()), Some(p.id()), json!({"scenario": s.id, "runs": runs})).await;
    Ok(())
}

/// Copies a scenario the caller can read into a new one they own (version 1).
///
/// # Errors
/// [`AppError::NotFound`] when the caller may not read it.
pub async fn duplicate(app: &App, meta: &RequestMeta, p: &Principal, id: ScenarioId) -> AppResult<ScenarioDoc> {
    let doc = get(app, p, id).await?;
    let mut spec = doc.spec();
    let name: String = format!("{} (사본 copy)", doc.scenario.name).chars().take(MAX_NAME).collect();
    spec["name"] = Value::String(name);
    let valid = spec::validate_json(&spec, "spec").map_err(AppError::Invalid)?;
    let message = format!("copied from scenario {} version {}", doc.scenario.id, doc.version.version);
    create(app, meta, p, valid, message).await
}

/// A scenario's versions, newest first.
///
/// # Errors
/// [`AppError::NotFound`] when the caller may not read it.
pub async fn versions(app: &App, p: &Principal, id: ScenarioId) -> AppResult<Vec<ScenarioVersion>> {
    let (s, _) = readable(app, p, id, false).await?;
    Ok(app.db().scenario_versions(s.id).await?)
}

/// One version with its document.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown version or a scenario the caller may not read.
pub async fn version(app: &App, p: &Principal, id: ScenarioId, version: i32) -> AppResult<ScenarioVersion> {
    let (s, _) = readable(app, p, id, false).await?;
    app.db().scenario_version(s.id, version).await?.ok_or(AppError::NotFound)
}

/// What changed from version `from` to `to` (default: current), field by field.
///
/// # Errors
/// [`AppError::NotFound`] for an unknown version.
pub async fn diff(
    app: &App,
    p: &Principal,
    id: ScenarioId,
    from: i32,
    to: Option<i32>,
) -> AppResult<(i32, Vec<Change>)> {
    let (s, _) = readable(app, p, id, false).await?;
    let to = to.unwrap_or(s.current_version);
    let a = app.db().scenario_version(s.id, from).await?.ok_or(AppError::NotFound)?;
    let b = app.db().scenario_version(s.id, to).await?.ok_or(AppError::NotFound)?;
    let parse = |v: &ScenarioVersion| serde_json::from_str(&v.spec).unwrap_or(Value::Null);
    Ok((to, spec::diff(&parse(&a), &parse(&b))))
}

/// Makes `version` current again as a new version (history is never rewritten).
///
/// # Errors
/// [`AppError::Invalid`] when the old version no longer passes today's validation.
pub async fn restore(
    app: &App,
    meta: &RequestMeta,
    p: &Principal,
    id: ScenarioId,
    version: i32,
) -> AppResult<ScenarioDoc> {
    let s = owned(app, p, id, false).await?;
    let old = app.db().scenario_version(s.id, version).await?.ok_or(AppError::NotFound)?;
    let doc: Value = serde_json::from_str(&old.spec).map_err(|e| AppError::internal("stored scenario", e))?;
    // Re-validated: rules may have tightened since the old version was saved.
    let valid = spec::validate_json(&doc, "spec").map_err(AppError::Invalid)?;
    let nv = new_version(valid, p.id(), format!("restored version {version}"))?;
    ensure_storage(app, p, nv.spec.len()).await?;
    let (s, v) = app.db().add_scenario_version(s.id, None, nv).await?;
    let detail = json!({"scenario": s.id, "from_version": version, "version": v.version});
    record(app, meta, "scenario_restored", Some(p.id()), Some(p.id()), detail).await;
    Ok(ScenarioDoc { scenario: s, access: Access::Owner, version: v })
}

/// The current version as a TOML file: (file name, text).
///
/// # Errors
/// [`AppError::NotFound`] when the caller may not read it.
pub async fn export_toml(app: &App, p: &Principal, id: ScenarioId) -> AppResult<(String, String)> {
    let doc = get(app, p, id).await?;
    let (s, v) = (&doc.scenario, &doc.version);
    let text = format!("# {} — version {}\n{}", s.name.replace('\n', " "), v.version, spec::to_toml(&doc.spec()));
    Ok((format!("scenario-{}-v{}.toml", s.id, v.version), text))
}

/// Who a scenario is shared with, read-only.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shares {
    pub emails: Vec<String>,
    /// Every analyst may read it.
    pub analysts: bool,
}

/// Lists who the scenario is shared with. Owner only.
///
/// # Errors
/// As for [`owned`].
pub async fn shares(app: &App, p: &Principal, id: ScenarioId) -> AppResult<Shares> {
    let s = owned(app, p, id, false).await?;
    let users = app.db().scenario_shares(s.id).await?;
    Ok(Shares { emails: users.into_iter().map(|u| u.email).collect(), analysts: s.shared_with_analysts })
}

/// Replaces the scenario's readers; unknown emails are `emails[i]` problems and nothing
/// changes then.
///
/// # Errors
/// [`AppError::Invalid`] with every unknown email.
pub async fn set_shares(app: &App, meta: &RequestMeta, p: &Principal, id: ScenarioId, req: &Shares) -> AppResult<()> {
    let s = owned(app, p, id, false).await?;
    if req.emails.len() > 100 {
        return Err(AppError::invalid("emails", "at most 100 users"));
    }
    let mut ids = Vec::new();
    let mut errs = Vec::new();
    for (i, email) in req.emails.iter().enumerate() {
        let norm = email.trim().to_lowercase();
        match app.db().user_by_email(&norm).await? {
            Some(u) if u.id == p.id().get() => errs.push(FieldProblem::new(format!("emails[{i}]"), "that is you")),
            Some(u) if !ids.contains(&u.id) => ids.push(u.id),
            Some(_) => {}
            None => errs.push(FieldProblem::new(format!("emails[{i}]"), format!("no user with the email {norm:?}"))),
        }
    }
    if !errs.is_empty() {
        return Err(AppError::Invalid(errs));
    }
    app.db().set_scenario_shares(s.id, &ids, req.analysts).await?;
    let detail = json!({"scenario": s.id, "users": ids, "analysts": req.analysts});
    record(app, meta, "scenario_shared", Some(p.id()), Some(p.id()), detail).await;
    Ok(())
}
