//! The risk dashboard: the score and its components, the active playbook rules, and the
//! threat events with their evidence, each acknowledged by the user.

use super::*;
use haechi_app::guard;

pub(super) struct EventRow {
    id: i64,
    kind: String,
    severity: String,
    kind_key: String,
    severity_key: String,
    evidence: String,
    first: String,
    last: String,
    seen: i32,
    acknowledged: bool,
}

#[derive(Template)]
#[template(path = "portal/risk.html")]
pub(super) struct RiskPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    score: u32,
    level: &'static str,
    components: Vec<(&'static str, u32)>,
    active_rules: Vec<String>,
    updated: String,
    events: Vec<EventRow>,
}

pub(super) async fn risk_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let v = guard::risk(state.app(), &p).await?;
    let component = |k: &str| v.components.get(k).copied().unwrap_or(0);
    let events = v
        .events
        .into_iter()
        .map(|e| EventRow {
            id: e.id,
            kind_key: format!("risk.kind.{}", e.kind),
            severity_key: format!("risk.severity.{}", e.severity),
            kind: e.kind,
            severity: e.severity,
            evidence: e
                .evidence
                .iter()
                .map(|(k, v)| format!("{k} = {}", (v * 10_000.0).round() / 10_000.0))
                .collect::<Vec<_>>()
                .join(", "),
            first: kst(e.first_seen_ms),
            last: kst(e.last_seen_ms),
            seen: e.seen,
            acknowledged: e.acknowledged_at_ms.is_some(),
        })
        .collect();
    let csrf = session_csrf(&p);
    let html = RiskPage {
        level: match v.score {
            0..30 => "risk.level.low",
            30..60 => "risk.level.elevated",
            _ => "risk.level.high",
        },
        score: v.score,
        components: vec![
            ("risk.component.market", component("market")),
            ("risk.component.portfolio", component("portfolio")),
            ("risk.component.news", component("news")),
            ("risk.component.security", component("security")),
        ],
        active_rules: v.active_rules,
        updated: v.updated_at_ms.map(kst).unwrap_or_default(),
        events,
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
    }
    .render()?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}

pub(super) async fn risk_event_ack(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    guard::acknowledge(state.app(), &p, &meta, id).await?;
    Ok(Redirect::to("/risk").into_response())
}
