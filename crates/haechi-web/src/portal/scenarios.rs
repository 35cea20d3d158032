//! Scenarios: the list, the TOML editor, versions, diff, restore, sharing, and starting runs.

use super::*;

pub(super) const EXAMPLE_SCENARIO: &str = include_str!("../../../../examples/sma_cross.toml");

#[derive(Template)]
#[template(path = "portal/scenario_new.html")]
pub(super) struct ScenarioNewPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    toml: &'a str,
    /// (field path, message) from the API's own validation.
    problems: Vec<(String, String)>,
}

pub(super) async fn scenario_new_page(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let csrf = session_csrf(&p);
    let html =
        ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, toml: EXAMPLE_SCENARIO, problems: Vec::new() }
            .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

#[derive(Debug, Deserialize)]
pub(super) struct ScenarioForm {
    #[serde(default)]
    toml: String,
}

/// Validates with the API's scenario validation (every problem at once) and stores version 1.
pub(super) async fn scenario_create(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ScenarioForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::spec::validate_toml(&f.toml, "scenario.toml") {
        Ok(valid) => match crate::routes::scenarios::create_scenario_from(
            &state,
            &client,
            &p,
            valid,
            "created in the portal".into(),
        )
        .await
        {
            Ok((s, _)) => Redirect::to(&format!("/scenarios/{}?created=1", s.id)).into_response(),
            Err(e) => e.into_response(),
        },
        Err(problems) => {
            let csrf = session_csrf(&p);
            let problems = problems.into_iter().map(|e| (e.field, e.message)).collect();
            let html =
                ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, toml: &f.toml, problems }.render();
            page(StatusCode::UNPROCESSABLE_ENTITY, html, Vec::new())
        }
    }
}

pub(super) struct VersionRow {
    version: i32,
    when: String,
    message: String,
}

pub(super) struct DiffRow {
    path: String,
    op: &'static str,
    before: String,
    after: String,
}

pub(super) struct DiffView {
    title: String,
    rows: Vec<DiffRow>,
}

#[derive(Template)]
#[template(path = "portal/scenario.html")]
pub(super) struct ScenarioPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    id: i64,
    name: String,
    strategy: String,
    version: i32,
    toml: String,
    created: bool,
    owner: bool,
    versions: Vec<VersionRow>,
    diff: Option<DiffView>,
    problems: Vec<(String, String)>,
    error: Option<&'static str>,
    share_emails: String,
    share_analysts: bool,
    share_error: Option<String>,
    share_saved: bool,
}

/// What the scenario page shows besides the stored document: an edit to keep, its problems.
pub(super) struct PageState {
    toml: Option<String>,
    problems: Vec<(String, String)>,
    error: Option<&'static str>,
    status: StatusCode,
    /// The sharing form as submitted, with what was wrong in it.
    share: Option<(String, bool, String)>,
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn scenario_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    id: i64,
    q: Option<&str>,
    extra: PageState,
    cookies: Vec<HeaderValue>,
) -> Response {
    let (s, access) = match crate::routes::scenarios::readable(state, p, id, false).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let v = match crate::routes::scenarios::current(state, &s).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let history = match state.db().scenario_versions(s.id).await {
        Ok(list) => list,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let spec: serde_json::Value = serde_json::from_str(&v.spec).unwrap_or_default();
    let param = |k: &str| {
        q.and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned()))
    };
    let diff = param("diff").and_then(|d| d.parse::<i32>().ok()).and_then(|from| {
        let old = history.iter().find(|h| h.version == from)?;
        let before: serde_json::Value = serde_json::from_str(&old.spec).unwrap_or_default();
        let show = |v: &Option<serde_json::Value>| v.as_ref().map_or_else(String::new, |v| v.to_string());
        Some(DiffView {
            title: t.fill("scenario.diff_title", &[("from", &from.to_string()), ("to", &v.version.to_string())]),
            rows: crate::spec::diff(&before, &spec)
                .into_iter()
                .map(|c| DiffRow {
                    op: match c.op {
                        "added" => msg("scenario.op.added"),
                        "removed" => msg("scenario.op.removed"),
                        _ => msg("scenario.op.changed"),
                    },
                    before: show(&c.before),
                    after: show(&c.after),
                    path: c.path,
                })
                .collect(),
        })
    });
    let (share_emails, share_analysts, share_error) = match extra.share {
        Some((emails, analysts, error)) => (emails, analysts, Some(error)),
        None if access == haechi_db::Access::Owner => match state.db().scenario_shares(s.id).await {
            Ok(users) => {
                (users.into_iter().map(|u| u.email).collect::<Vec<_>>().join("\n"), s.shared_with_analysts, None)
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => (String::new(), false, None),
    };
    let csrf = session_csrf(p);
    let html = ScenarioPage {
        share_emails,
        share_analysts,
        share_error,
        share_saved: param("shared").as_deref() == Some("1"),
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        id: s.id,
        name: s.name.clone(),
        strategy: s.strategy.clone(),
        version: s.current_version,
        toml: extra.toml.unwrap_or_else(|| crate::spec::to_toml(&spec)),
        created: param("created").as_deref() == Some("1"),
        owner: access == haechi_db::Access::Owner,
        versions: history
            .iter()
            .map(|h| VersionRow { version: h.version, when: kst(h.created_at), message: h.message.clone() })
            .collect(),
        diff,
        problems: extra.problems,
        error: extra.error,
    }
    .render();
    page(extra.status, html, cookies)
}

pub(super) async fn scenario_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let extra = PageState { toml: None, problems: Vec::new(), error: None, status: StatusCode::OK, share: None };
    scenario_render(&state, t, &p, id, q.as_deref(), extra, lang_cookie.into_iter().collect()).await
}

#[derive(Debug, Deserialize)]
pub(super) struct EditForm {
    #[serde(default)]
    toml: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    base_version: Option<i32>,
}

/// Saves an edit as the next version, with the API's validation and its stale-save guard.
pub(super) async fn scenario_edit(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<EditForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let outcome = match crate::spec::validate_toml(&f.toml, "scenario.toml") {
        Err(problems) => Err(PageState {
            toml: Some(f.toml.clone()),
            problems: problems.into_iter().map(|e| (e.field, e.message)).collect(),
            error: None,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            share: None,
        }),
        Ok(valid) => match crate::routes::scenarios::save_edit(
            &state,
            &client,
            &p,
            id,
            valid,
            f.message.trim().to_owned(),
            f.base_version,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(ApiError::Conflict(_)) => Err(PageState {
                toml: Some(f.toml.clone()),
                problems: Vec::new(),
                error: Some(msg("scenario.stale")),
                status: StatusCode::CONFLICT,
                share: None,
            }),
            Err(e) => return e.into_response(),
        },
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/scenarios/{id}")).into_response(),
        Err(extra) => scenario_render(&state, t, &p, id, None, extra, Vec::new()).await,
    }
}

pub(super) async fn scenario_restore(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path((id, version)): axum::extract::Path<(i64, i32)>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::scenarios::restore_version(&state, &client, &p, id, version).await {
        Ok(_) => Redirect::to(&format!("/scenarios/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) async fn scenario_run(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::runs::start_run(&state, &client, &p, id, None).await {
        Ok(run) => Redirect::to(&format!("/runs/{}", run.id)).into_response(),
        Err(e) => e.into_response(),
    }
}

pub(super) struct ScenarioRow {
    id: i64,
    name: String,
    strategy: String,
    version: i32,
    updated: String,
    shared: bool,
}

#[derive(Template)]
#[template(path = "portal/scenarios.html")]
pub(super) struct ScenarioListPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    q: String,
    /// (value, selected)
    strategies: Vec<(&'static str, bool)>,
    /// (value, label key, selected)
    scopes: Vec<(&'static str, &'static str, bool)>,
    total: String,
    rows: Vec<ScenarioRow>,
    prev: Option<String>,
    next: Option<String>,
}

pub(super) const SCENARIO_ROWS: u64 = 25;

/// The user's scenarios and those shared with them, searchable and filtered (the API's query).
pub(super) async fn scenario_list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let params: HashMap<String, String> =
        q.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let get = |k: &str| params.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (search, strategy, scope) = (get("q"), get("strategy"), get("scope"));
    let page_no: u64 = get("page").parse().unwrap_or(0);
    let query = haechi_db::ScenarioQuery {
        viewer_id: p.user.id,
        viewer_is_analyst: p.role == crate::rbac::Role::Analyst,
        scope: match scope.as_str() {
            "owned" => haechi_db::ScenarioScope::Owned,
            "shared" => haechi_db::ScenarioScope::Shared,
            _ => haechi_db::ScenarioScope::All,
        },
        search: (!search.is_empty()).then(|| search.clone()),
        strategy: (!strategy.is_empty()).then(|| strategy.clone()),
        deleted: false,
        page: page_no,
        per_page: SCENARIO_ROWS,
    };
    let found = match state.db().list_scenarios(&query).await {
        Ok(pg) => pg,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let link = |pg: u64| {
        let mut u = url::form_urlencoded::Serializer::new(String::from("/scenarios?"));
        for (k, v) in [("q", &search), ("strategy", &strategy), ("scope", &scope)] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("page", &pg.to_string());
        u.finish()
    };
    let csrf = session_csrf(&p);
    let html = ScenarioListPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        total: t.fill("admin.total", &[("n", &found.total.to_string())]),
        prev: (page_no > 0).then(|| link(page_no - 1)),
        next: ((page_no + 1) * SCENARIO_ROWS < found.total).then(|| link(page_no + 1)),
        rows: found
            .items
            .into_iter()
            .map(|s| ScenarioRow {
                shared: s.owner_id != p.user.id,
                id: s.id,
                name: s.name,
                strategy: s.strategy,
                version: s.current_version,
                updated: kst(s.updated_at),
            })
            .collect(),
        strategies: ["buy_and_hold", "sma_cross", "momentum_rotation", "rebalance", "rsi_reversion"]
            .into_iter()
            .map(|v| (v, v == strategy))
            .collect(),
        scopes: [
            ("all", msg("scenarios.scope_all")),
            ("owned", msg("scenarios.scope_owned")),
            ("shared", msg("scenarios.scope_shared")),
        ]
        .into_iter()
        .map(|(v, k)| (v, k, v == scope || (scope.is_empty() && v == "all")))
        .collect(),
        q: search,
    }
    .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

#[derive(Debug, Deserialize)]
pub(super) struct ShareForm {
    #[serde(default)]
    emails: String,
    #[serde(default)]
    analysts: Option<String>,
}

/// Replaces the scenario's readers; unknown emails are named and nothing changes.
pub(super) async fn scenario_shares(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ShareForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let emails: Vec<String> =
        f.emails.split(['\n', ',', ';']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    let analysts = f.analysts.as_deref() == Some("true");
    let req = crate::routes::scenarios::Shares { emails: emails.clone(), analysts };
    match crate::routes::scenarios::set_shares(&state, &client, &p, id, &req).await {
        Ok(()) => Redirect::to(&format!("/scenarios/{id}?shared=1#sharing")).into_response(),
        Err(ApiError::Validation(problems)) => {
            let bad: Vec<String> = problems
                .iter()
                .filter_map(|e| e.field.strip_prefix("emails[")?.strip_suffix(']')?.parse::<usize>().ok())
                .filter_map(|i| emails.get(i).cloned())
                .collect();
            let error = t.fill("share.unknown", &[("list", &bad.join(", "))]);
            let extra = PageState {
                toml: None,
                problems: Vec::new(),
                error: None,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                share: Some((f.emails.clone(), analysts, error)),
            };
            scenario_render(&state, t, &p, id, None, extra, Vec::new()).await
        }
        Err(e) => e.into_response(),
    }
}
