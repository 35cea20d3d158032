//! Scenarios: the list, the editor (a form and a TOML view), versions, diff, restore, sharing,
//! and starting runs.

use super::*;
use haechi_app::FieldProblem;
use haechi_app::paging::Paging;
use haechi_app::scenarios::{self, Access, ListQuery};
use haechi_app::{ScenarioId, spec};

pub(super) const EXAMPLE_SCENARIO: &str = include_str!("../../../../examples/sma_cross.toml");

/// The scenario editor: the form, the TOML view of the same document, and the problems.
pub(super) struct EditorView {
    action: String,
    base_version: Option<i32>,
    schema: String,
    groups: Vec<editor::Group>,
    /// (path, sentence, id of the input), above the form.
    problems: Vec<(String, String, String)>,
    toml: String,
    toml_open: bool,
    /// Edits carry a version message; a new scenario does not.
    with_message: bool,
    submit: &'static str,
    error: Option<&'static str>,
}

/// What the editor shows: values, the TOML text, and the problems found in them.
pub(super) struct EditorInput {
    values: editor::FormValues,
    toml: String,
    problems: Vec<FieldProblem>,
    /// The TOML view was the one submitted.
    from_toml: bool,
}

impl EditorInput {
    /// A stored or example document, with nothing wrong yet.
    fn of_spec(spec: &serde_json::Value) -> EditorInput {
        EditorInput {
            values: editor::FormValues::from_spec(spec),
            toml: spec::to_toml(spec),
            problems: Vec::new(),
            from_toml: false,
        }
    }

    fn view(self, t: &Tr, action: String, base_version: Option<i32>, error: Option<&'static str>) -> EditorView {
        let groups = editor::groups(t, &self.values, &self.problems);
        EditorView {
            problems: editor::summary(t, &self.values, &groups, &self.problems),
            schema: editor::schema(&self.values),
            groups,
            action,
            with_message: base_version.is_some(),
            submit: if base_version.is_some() { msg("scenario.save_version") } else { msg("scenario.create") },
            base_version,
            toml: self.toml,
            toml_open: self.from_toml,
            error,
        }
    }
}

/// A submitted editor: the form's fields or the TOML view's text, validated by the API's
/// own validation. `Err` carries what to show again.
fn submitted(pairs: &[(String, String)]) -> Result<spec::ValidSpec, EditorInput> {
    let field = |name: &str| form_field(pairs, name);
    // The TOML view names itself; a bare `toml` field (a script's post) means the same.
    let toml_view = match field("editor") {
        Some(e) => e == "toml",
        None => field("toml").is_some(),
    };
    if toml_view {
        let text = field("toml").unwrap_or_default().to_owned();
        spec::validate_toml(&text, "scenario.toml").map_err(|problems| EditorInput {
            values: spec::toml_document(&text).map(|d| editor::FormValues::from_spec(&d)).unwrap_or_default(),
            toml: text,
            problems,
            from_toml: true,
        })
    } else {
        let values = editor::FormValues::from_pairs(pairs);
        let spec = values.to_spec();
        spec::validate_json(&spec, "spec").map_err(|problems| EditorInput {
            toml: spec::to_toml(&spec),
            values,
            problems,
            from_toml: false,
        })
    }
}

fn form_field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[derive(Template)]
#[template(path = "portal/scenario_new.html")]
pub(super) struct ScenarioNewPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    editor: EditorView,
}

pub(super) async fn scenario_new_page(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let csrf = session_csrf(&p);
    let example = spec::toml_document(EXAMPLE_SCENARIO).unwrap_or_default();
    let mut input = EditorInput::of_spec(&example);
    // The example's comments explain it; keep them in the TOML view.
    input.toml = EXAMPLE_SCENARIO.to_owned();
    let editor = input.view(&t, "/scenarios/new".into(), None, None);
    let html = ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, editor }.render();
    Ok(page(StatusCode::OK, html, lang_cookie.into_iter().collect()))
}

/// Validates with the API's scenario validation (every problem at once) and stores version 1.
pub(super) async fn scenario_create(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    match submitted(&pairs) {
        Ok(valid) => {
            let doc = scenarios::create(state.app(), &meta, &p, valid, "created in the portal".into()).await?;
            Ok(Redirect::to(&format!("/scenarios/{}?created=1", doc.scenario.id)).into_response())
        }
        Err(input) => {
            let csrf = session_csrf(&p);
            let editor = input.view(&t, "/scenarios/new".into(), None, None);
            let html = ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, editor }.render();
            Ok(page(StatusCode::UNPROCESSABLE_ENTITY, html, Vec::new()))
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
    /// The document, for readers who cannot edit it.
    toml: String,
    /// The editor, for the owner.
    editor: Option<EditorView>,
    created: bool,
    owner: bool,
    versions: Vec<VersionRow>,
    diff: Option<DiffView>,
    share_emails: String,
    share_analysts: bool,
    share_error: Option<String>,
    share_saved: bool,
    /// The sweep form: axes (one per line), in-sample share, problems.
    sweep_grid: String,
    sweep_in_sample: String,
    sweep_problems: Vec<String>,
    sweeps: Vec<(i64, String, i32, i32)>,
}

/// What the scenario page shows besides the stored document: an edit to keep, its problems.
pub(super) struct PageState {
    pub(super) edit: Option<EditorInput>,
    pub(super) error: Option<&'static str>,
    pub(super) status: StatusCode,
    /// The sharing form as submitted, with what was wrong in it.
    pub(super) share: Option<(String, bool, String)>,
    /// The sweep form as submitted, with its problems.
    pub(super) sweep: Option<(String, String, Vec<String>)>,
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
) -> UiResult {
    let doc = scenarios::get(state.app(), p, ScenarioId(id)).await?;
    let history = scenarios::versions(state.app(), p, ScenarioId(id)).await?;
    let (s, access, v) = (doc.scenario, doc.access, doc.version);
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
            rows: spec::diff(&before, &spec)
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
        None if access == Access::Owner => {
            let shared = scenarios::shares(state.app(), p, ScenarioId(id)).await?;
            (shared.emails.join("\n"), shared.analysts, None)
        }
        None => (String::new(), false, None),
    };
    let (sweep_grid, sweep_in_sample, sweep_problems) = extra.sweep.unwrap_or_else(|| {
        (example_grid(spec["strategy"]["type"].as_str().unwrap_or("")).to_owned(), "0.7".to_owned(), Vec::new())
    });
    let sweeps = if access == Access::Owner {
        haechi_app::sweeps::list_for_scenario(state.app(), p, ScenarioId(s.id))
            .await?
            .into_iter()
            .map(|w| (w.id, w.state, w.points_done, w.points_total))
            .collect()
    } else {
        Vec::new()
    };
    let csrf = session_csrf(p);
    let owner = access == Access::Owner;
    let editor = owner.then(|| {
        extra.edit.unwrap_or_else(|| EditorInput::of_spec(&spec)).view(
            &t,
            format!("/scenarios/{}/edit", s.id),
            Some(s.current_version),
            extra.error,
        )
    });
    let html = ScenarioPage {
        editor,
        share_emails,
        share_analysts,
        share_error,
        share_saved: param("shared").as_deref() == Some("1"),
        sweep_grid,
        sweep_in_sample,
        sweep_problems,
        sweeps,
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        id: s.id,
        name: s.name.clone(),
        strategy: strategy_label(&t, &s.strategy),
        version: s.current_version,
        toml: spec::to_toml(&spec),
        created: param("created").as_deref() == Some("1"),
        owner,
        versions: history
            .iter()
            .map(|h| VersionRow { version: h.version, when: kst(h.created_at), message: h.message.clone() })
            .collect(),
        diff,
    }
    .render();
    Ok(page(extra.status, html, cookies))
}

pub(super) async fn scenario_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let extra = PageState { edit: None, error: None, status: StatusCode::OK, share: None, sweep: None };
    scenario_render(&state, t, &p, id, q.as_deref(), extra, lang_cookie.into_iter().collect()).await
}

/// Saves an edit (the form or the TOML view) as the next version, with the API's validation and
/// its stale-save guard.
pub(super) async fn scenario_edit(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    let message = form_field(&pairs, "message").unwrap_or_default().trim().to_owned();
    let base_version = form_field(&pairs, "base_version").and_then(|v| v.trim().parse::<i32>().ok());
    let outcome = match submitted(&pairs) {
        Err(input) => Err(PageState {
            edit: Some(input),
            error: None,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            share: None,
            sweep: None,
        }),
        Ok(valid) => {
            // Kept to show again if the save is refused as stale.
            let spec: serde_json::Value = serde_json::from_str(&valid.json).unwrap_or_default();
            match scenarios::save(state.app(), &meta, &p, ScenarioId(id), valid, message, base_version).await {
                Ok(_) => Ok(()),
                Err(AppError::Conflict(_)) => Err(PageState {
                    edit: Some(EditorInput {
                        from_toml: form_field(&pairs, "editor") == Some("toml"),
                        ..EditorInput::of_spec(&spec)
                    }),
                    error: Some(msg("scenario.stale")),
                    status: StatusCode::CONFLICT,
                    share: None,
                    sweep: None,
                }),
                Err(e) => return Err(e.into()),
            }
        }
    };
    match outcome {
        Ok(()) => Ok(Redirect::to(&format!("/scenarios/{id}")).into_response()),
        Err(extra) => scenario_render(&state, t, &p, id, None, extra, Vec::new()).await,
    }
}

pub(super) async fn scenario_restore(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path((id, version)): axum::extract::Path<(i64, i32)>,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    scenarios::restore(state.app(), &meta, &p, ScenarioId(id), version).await?;
    Ok(Redirect::to(&format!("/scenarios/{id}")).into_response())
}

pub(super) async fn scenario_run(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let run = haechi_app::runs::start(state.app(), &meta, &p, ScenarioId(id), None).await?;
    Ok(Redirect::to(&format!("/runs/{}", run.id)).into_response())
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
    /// (value, label, selected)
    strategies: Vec<(&'static str, String, bool)>,
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
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let params: HashMap<String, String> =
        q.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let get = |k: &str| params.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (search, strategy, scope) = (get("q"), get("strategy"), get("scope"));
    let page_no: u64 = get("page").parse().unwrap_or(0);
    let query = ListQuery {
        // An unknown scope in a hand-edited address shows everything rather than an error.
        scope: matches!(scope.as_str(), "owned" | "shared").then(|| scope.clone()),
        search: (!search.is_empty()).then(|| search.clone()),
        strategy: (!strategy.is_empty()).then(|| strategy.clone()),
        deleted: false,
    };
    let found = scenarios::list(state.app(), &p, query, Paging::new(Some(page_no), Some(SCENARIO_ROWS))?).await?;
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
            .map(|(s, access)| ScenarioRow {
                shared: access == Access::Reader,
                id: s.id,
                name: s.name,
                strategy: strategy_label(&t, &s.strategy),
                version: s.current_version,
                updated: kst(s.updated_at),
            })
            .collect(),
        strategies: ["buy_and_hold", "sma_cross", "momentum_rotation", "rebalance", "rsi_reversion"]
            .into_iter()
            .map(|v| (v, strategy_label(&t, v), v == strategy))
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
    Ok(page(StatusCode::OK, html, lang_cookie.into_iter().collect()))
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
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
    Form(f): Form<ShareForm>,
) -> UiResult {
    let (t, _) = language(q.as_deref(), &headers);
    let emails: Vec<String> =
        f.emails.split(['\n', ',', ';']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    let analysts = f.analysts.as_deref() == Some("true");
    let want = scenarios::Shares { emails: emails.clone(), analysts };
    match scenarios::set_shares(state.app(), &meta, &p, ScenarioId(id), &want).await {
        Ok(()) => Ok(Redirect::to(&format!("/scenarios/{id}?shared=1#sharing")).into_response()),
        Err(AppError::Invalid(problems)) => {
            let bad: Vec<String> = problems
                .iter()
                .filter_map(|e| e.field.strip_prefix("emails[")?.strip_suffix(']')?.parse::<usize>().ok())
                .filter_map(|i| emails.get(i).cloned())
                .collect();
            let error = t.fill("share.unknown", &[("list", &bad.join(", "))]);
            let extra = PageState {
                edit: None,
                error: None,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                share: Some((f.emails.clone(), analysts, error)),
                sweep: None,
            };
            scenario_render(&state, t, &p, id, None, extra, Vec::new()).await
        }
        Err(e) => Err(e.into()),
    }
}

/// A grid to start from, for the scenario's strategy.
fn example_grid(strategy: &str) -> &'static str {
    match strategy {
        "sma_cross" => "strategy.fast=5..50:5\nstrategy.slow=60..150:10",
        "momentum_rotation" => "strategy.lookback=60..240:30\nstrategy.top_n=5..30:5",
        "rsi_reversion" => "strategy.oversold=20..35:5\nstrategy.overbought=65..80:5",
        _ => "execution.slippage_bps=0..20:5",
    }
}
