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

/// The stress form's fields, as typed (numbers are parsed when the scenario is built, so a
/// bad one is a problem shown at the form, not a failed request).
#[derive(Debug, Default)]
pub(super) struct StressQuery {
    replay: String,
    /// `market_gap`, `sector_crash`, `limit_down_streak`, `volatility_spike`, `liquidity_freeze`.
    shock: String,
    /// A fall in percent (−10 for −10%).
    pct: String,
    sector: String,
    /// Tickers separated by commas or spaces.
    tickers: String,
    days: String,
    k: String,
    factor: String,
}

impl StressQuery {
    fn parse(raw: Option<&str>) -> Self {
        let mut q = StressQuery::default();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            let v = v.trim().to_owned();
            match k.as_ref() {
                "replay" => q.replay = v,
                "shock" => q.shock = v,
                "pct" => q.pct = v,
                "sector" => q.sector = v,
                "tickers" => q.tickers = v,
                "days" => q.days = v,
                "k" => q.k = v,
                "factor" => q.factor = v,
                _ => {}
            }
        }
        q
    }

    /// The scenario asked for, `None` for the empty form, or the field that is not a number.
    fn scenario(&self) -> Result<Option<guard::StressScenario>, (&'static str, String)> {
        let num = |field: &'static str, v: &str| -> Result<f64, (&'static str, String)> {
            v.parse::<f64>().map_err(|_| (field, format!("\"{v}\" is not a number")))
        };
        let days = || -> Result<u32, (&'static str, String)> {
            self.days.parse::<u32>().map_err(|_| ("days", format!("\"{}\" is not a whole number of days", self.days)))
        };
        if !self.replay.is_empty() {
            return Ok(Some(guard::StressScenario::Replay(self.replay.clone())));
        }
        let shock = match self.shock.as_str() {
            "" => return Ok(None),
            "market_gap" => guard::Shock::MarketGap { pct: num("pct", &self.pct)? / 100.0 },
            "sector_crash" => {
                guard::Shock::SectorCrash { sector: self.sector.clone(), pct: num("pct", &self.pct)? / 100.0 }
            }
            "limit_down_streak" => guard::Shock::LimitDownStreak {
                tickers: self.tickers.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_owned).collect(),
                days: days()?,
            },
            "volatility_spike" => {
                guard::Shock::VolatilitySpike { k: num("k", &self.k)?, days: days()?, daily_vol: 0.01 }
            }
            "liquidity_freeze" => guard::Shock::LiquidityFreeze { factor: num("factor", &self.factor)? },
            other => return Err(("shock", format!("unknown shock \"{other}\""))),
        };
        Ok(Some(guard::StressScenario::Shock(shock)))
    }
}

pub(super) struct StressRow {
    ticker: String,
    before: String,
    after: String,
    worst: String,
    exit: String,
    path: &'static str,
}

pub(super) struct StressView {
    scenario: String,
    as_of: String,
    before: String,
    after: String,
    worst: String,
    worst_loss: String,
    end_return: String,
    path: String,
    rows: Vec<StressRow>,
}

#[derive(Template)]
#[template(path = "portal/stress.html")]
pub(super) struct StressPage {
    t: Tr,
    user: Option<NavUser>,
    csrf: String,
    id: i64,
    replays: Vec<&'static str>,
    q_replay: String,
    q_shock: String,
    q_pct: String,
    q_sector: String,
    q_tickers: String,
    q_days: String,
    q_k: String,
    q_factor: String,
    problems: Vec<String>,
    result: Option<StressView>,
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

/// The stress test page of a paper account: the form, and the result when it was submitted
/// (a GET: a stress test reads and changes nothing).
pub(super) async fn account_stress(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    let (t, lang_cookie) = language(raw.as_deref(), &headers);
    let q = StressQuery::parse(raw.as_deref());
    // The account is the caller's or a 404 page, before anything else.
    haechi_app::paper::owned(state.app(), &p, id).await?;
    let mut problems = Vec::new();
    let mut result = None;
    let scenario = match q.scenario() {
        Ok(s) => s,
        Err((field, message)) => {
            problems.push(format!("{field}: {message}"));
            None
        }
    };
    if let Some(s) = scenario {
        match guard::stress(state.app(), &p, id, s).await {
            Ok(r) => {
                let x = &r.result;
                result = Some(StressView {
                    scenario: r.scenario.clone(),
                    as_of: r.as_of.to_string(),
                    before: super::report::won(x.equity_before),
                    after: super::report::won(x.equity_after),
                    worst: super::report::won(x.equity_worst),
                    worst_loss: pct(x.worst_loss),
                    end_return: pct(x.end_return),
                    path: if x.path.len() <= 15 {
                        x.path.iter().map(|v| super::report::won(*v)).collect::<Vec<_>>().join(" → ")
                    } else {
                        // A year of days is a wall of numbers: the lowest point and the end say it.
                        let (worst_day, worst) =
                            x.path.iter().enumerate().min_by_key(|(_, v)| **v).map_or((0, 0), |(d, v)| (d, *v));
                        t.fill(
                            "stress.path_long",
                            &[
                                ("days", &(x.path.len() - 1).to_string()),
                                ("worst_day", &worst_day.to_string()),
                                ("worst", &super::report::won(worst)),
                                ("last", &super::report::won(x.equity_after)),
                            ],
                        )
                    },
                    rows: x
                        .positions
                        .iter()
                        .map(|p| StressRow {
                            ticker: p.ticker.clone(),
                            before: super::report::won(p.value_before),
                            after: super::report::won(p.value_after),
                            worst: super::report::won(p.value_worst),
                            exit: p.days_to_exit.map(|d| format!("{d:.1}")).unwrap_or_default(),
                            path: p.path,
                        })
                        .collect(),
                });
            }
            Err(haechi_app::AppError::Invalid(list)) => {
                problems = list.iter().map(|e| format!("{}: {}", e.field, t.problem(e))).collect();
            }
            Err(e) => return Err(e.into()),
        }
    }
    let html = StressPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: session_csrf(&p),
        id,
        replays: guard::stress_replays(),
        q_replay: q.replay,
        q_shock: q.shock,
        q_pct: q.pct,
        q_sector: q.sector,
        q_tickers: q.tickers,
        q_days: q.days,
        q_k: q.k,
        q_factor: q.factor,
        problems,
        result,
    }
    .render()?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}
