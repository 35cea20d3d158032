//! Paper trading in the portal: the account list, an account page (cash, positions with live
//! P&L, open orders with cancel and modify, fills, the equity at each close) and the order
//! ticket, which shows the ticker's tick and band and words every refusal in the page's
//! language. The page follows the account's event stream and refreshes when it changes.

use super::*;
use haechi_app::paper::{self as app_paper, OrderRequest, Placed};
use haechi_db::OrderFilter;
use report::won;

pub(super) struct AccountRow {
    id: i64,
    name: String,
    equity: String,
    profit: String,
    profit_class: &'static str,
    ret: String,
    state_key: &'static str,
}

#[derive(Template)]
#[template(path = "portal/accounts.html")]
pub(super) struct AccountsPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    rows: Vec<AccountRow>,
    error: Option<String>,
}

pub(super) struct PositionRow {
    ticker: String,
    name: String,
    quantity: String,
    reserved: i64,
    cost: String,
    last: String,
    value: String,
    pnl: String,
    pnl_class: &'static str,
}

pub(super) struct OrderRow {
    id: i64,
    ticker: String,
    side_key: &'static str,
    kind_key: &'static str,
    price: String,
    price_raw: String,
    quantity: i64,
    filled: i64,
    session: String,
    state_key: &'static str,
    reason: String,
}

pub(super) struct FillRow {
    ticker: String,
    side_key: &'static str,
    quantity: i64,
    price: String,
    commission: String,
    tax: String,
    trade_date: String,
    settlement: String,
}

/// The order ticket's facts for the chosen ticker.
pub(super) struct TicketFacts {
    ticker: String,
    name: String,
    session: String,
    band: String,
    tick: String,
    last: String,
}

#[derive(Template)]
#[template(path = "portal/paper_account.html")]
pub(super) struct AccountPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    id: i64,
    version: i64,
    name: String,
    open: bool,
    halted: bool,
    loss_halt: Option<String>,
    cash: String,
    reserved: String,
    available: String,
    equity: String,
    profit: String,
    profit_class: &'static str,
    ret: String,
    market_mode_key: &'static str,
    market_phase_key: String,
    order_session: String,
    progress: Option<String>,
    positions: Vec<PositionRow>,
    open_orders: Vec<OrderRow>,
    orders: Vec<OrderRow>,
    fills: Vec<FillRow>,
    chart: String,
    /// (label key, value) of the performance figures, once a session has closed.
    performance: Vec<(&'static str, String)>,
    ticket: Option<TicketFacts>,
    ticket_error: Option<String>,
    notice: Option<String>,
    error: Option<String>,
    confirm_needed: bool,
    form: TicketForm,
    /// Mirroring to the KIS mock account: offered here, on, and the mirrored orders.
    mirror_available: bool,
    mirror_on: bool,
    mirror_rows: Vec<MirrorRow>,
}

/// A mirrored order as the account page lists it.
#[derive(Debug)]
pub(super) struct MirrorRow {
    order_id: i64,
    state_key: String,
    broker_order_no: String,
    kis_filled: String,
    detail: String,
}

/// What the ticket form holds (kept after a refusal or a request to confirm).
#[derive(Debug, Default, Clone, Deserialize)]
pub(super) struct TicketForm {
    #[serde(default)]
    ticker: String,
    #[serde(default)]
    side: String,
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    quantity: String,
    #[serde(default)]
    confirm: Option<String>,
}

fn signed_won(v: i64) -> String {
    if v > 0 { format!("+{}", won(v)) } else { won(v) }
}

fn class_of(v: i64) -> &'static str {
    match v.cmp(&0) {
        std::cmp::Ordering::Greater => "up",
        std::cmp::Ordering::Less => "down",
        std::cmp::Ordering::Equal => "",
    }
}

fn state_key(s: &str) -> &'static str {
    match s {
        "accepted" => msg("order.state.accepted"),
        "partially_filled" => msg("order.state.partially_filled"),
        "filled" => msg("order.state.filled"),
        "cancelled" => msg("order.state.cancelled"),
        "expired" => msg("order.state.expired"),
        _ => msg("order.state.rejected"),
    }
}

fn side_key(s: &str) -> &'static str {
    if s == "sell" { msg("order.sell") } else { msg("order.buy") }
}

/// A refusal's words in the page's language (every code the API can answer has an entry).
fn reason_text(t: &Tr, code: &str) -> String {
    t.lookup(&format!("order.reason.{code}")).unwrap_or(code).to_owned()
}

fn date(n: i32) -> String {
    haechi_jobs::market::day_from_number(n).map(|d| d.to_string()).unwrap_or_default()
}

fn order_row(t: &Tr, o: &haechi_db::PaperOrderRow) -> OrderRow {
    OrderRow {
        id: o.id,
        ticker: o.ticker.clone(),
        side_key: side_key(&o.side),
        kind_key: if o.kind == "limit" { msg("order.limit") } else { msg("order.market") },
        price: o.limit_price.map_or_else(|| "—".to_owned(), won),
        price_raw: o.limit_price.map(|p| p.to_string()).unwrap_or_default(),
        quantity: o.quantity,
        filled: o.filled,
        session: date(o.session),
        state_key: state_key(&o.state),
        reason: o.reason.as_deref().map(|c| reason_text(t, c)).unwrap_or_default(),
    }
}

/// Equity at each close as a small line chart (numbers only: nothing to escape).
fn equity_chart(points: &[(String, i64)], start: i64, title: &str) -> String {
    if points.is_empty() {
        return String::new();
    }
    let (w, h, pad) = (640.0_f64, 160.0_f64, 8.0_f64);
    let mut all: Vec<i64> = points.iter().map(|p| p.1).collect();
    all.push(start);
    let (lo, hi) = (*all.iter().min().unwrap_or(&0) as f64, *all.iter().max().unwrap_or(&1) as f64);
    let span = (hi - lo).max(1.0);
    let n = points.len().max(2) as f64 - 1.0;
    let xy = |i: usize, v: i64| {
        let x = pad + (w - 2.0 * pad) * if points.len() == 1 { 0.5 } else { i as f64 / n };
        let y = pad + (h - 2.0 * pad) * (1.0 - (v as f64 - lo) / span);
        (x, y)
    };
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p.1);
            format!("{x:.1},{y:.1}")
        })
        .collect();
    let (_, base) = xy(0, start);
    let dots: String = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p.1);
            format!("<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"3\"><title>{} ₩{}</title></circle>", p.0, won(p.1))
        })
        .collect();
    format!(
        "<svg viewBox=\"0 0 {w} {h}\" role=\"img\" aria-label=\"{}\" class=\"chart\" id=\"paper-equity\">\
         <line x1=\"0\" x2=\"{w}\" y1=\"{base:.1}\" y2=\"{base:.1}\" class=\"baseline\" stroke=\"#bbb\" stroke-dasharray=\"4 4\"/>\
         <polyline fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\" points=\"{}\"/>{dots}</svg>",
        askama_escape(title),
        line.join(" ")
    )
}

fn askama_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub(super) async fn accounts_page(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    let (t, lang_cookie) = language(raw.as_deref(), &headers);
    accounts_render(&state, t, &p, None, lang_cookie).await
}

async fn accounts_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    error: Option<String>,
    lang_cookie: Option<HeaderValue>,
) -> UiResult {
    let rows = app_paper::list(state.app(), p)
        .await?
        .iter()
        .map(|a| AccountRow {
            id: a.account.id,
            name: a.account.name.clone(),
            equity: won(a.equity),
            profit: signed_won(a.profit),
            profit_class: class_of(a.profit),
            ret: format!("{:+.2}%", a.return_pct),
            state_key: if a.account.state == "open" { msg("paper.state.open") } else { msg("paper.state.closed") },
        })
        .collect();
    let csrf = session_csrf(p);
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let html = AccountsPage { t, user: Some(NavUser::of(p)), csrf: &csrf, rows, error }.render();
    Ok(page(status, html, lang_cookie.into_iter().collect()))
}

#[derive(Debug, Deserialize)]
pub(super) struct OpenForm {
    name: String,
    cash: String,
}

pub(super) async fn account_open(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    headers: HeaderMap,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<OpenForm>,
) -> UiResult {
    let (t, _) = language(None, &headers);
    let cash: i64 = match f.cash.replace([',', ' '], "").parse() {
        Ok(c) => c,
        Err(_) => {
            return accounts_render(&state, t, &p, Some(t.get("paper.cash_invalid").to_owned()), None).await;
        }
    };
    match app_paper::open(state.app(), &meta, &p, &f.name, cash).await {
        Ok(a) => Ok(Redirect::to(&format!("/accounts/{}", a.id)).into_response()),
        Err(AppError::Invalid(problems)) => {
            let msg = problems.iter().map(|x| format!("{}: {}", x.field, t.problem(x))).collect::<Vec<_>>().join(" · ");
            accounts_render(&state, t, &p, Some(msg), None).await
        }
        Err(AppError::Quota(q)) => accounts_render(&state, t, &p, Some(q), None).await,
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn account_view(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    let (t, lang_cookie) = language(raw.as_deref(), &headers);
    let param = |k: &str| {
        raw.as_deref().and_then(|q| {
            url::form_urlencoded::parse(q.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned())
        })
    };
    let notice = match param("done").as_deref() {
        Some("placed") => Some(t.get("paper.notice.placed").to_owned()),
        Some("cancelled") => Some(t.get("paper.notice.cancelled").to_owned()),
        Some("modified") => Some(t.get("paper.notice.modified").to_owned()),
        Some("halted") => Some(t.get("paper.notice.halted").to_owned()),
        Some("resumed") => Some(t.get("paper.notice.resumed").to_owned()),
        Some("reset") => Some(t.get("paper.notice.reset").to_owned()),
        Some("lifted") => Some(t.get("paper.notice.lifted").to_owned()),
        Some("mirror_on") => Some(t.get("paper.notice.mirror_on").to_owned()),
        Some("mirror_off") => Some(t.get("paper.notice.mirror_off").to_owned()),
        _ => None,
    };
    let error = param("refused").map(|code| reason_text(&t, &code));
    let form = TicketForm { ticker: param("ticker").unwrap_or_default(), ..TicketForm::default() };
    let html = account_render(&state, &t, &p, id, form, notice, error, false).await?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}

#[allow(clippy::too_many_arguments)]
async fn account_render(
    state: &AppState,
    t: &Tr,
    p: &Principal,
    id: i64,
    form: TicketForm,
    notice: Option<String>,
    error: Option<String>,
    confirm_needed: bool,
) -> Result<String, UiError> {
    let app = state.app();
    let snap = app_paper::snapshot(app, p, id).await?;
    let a = &snap.summary.account;
    let paging = haechi_app::paging::Paging::new(Some(0), Some(30))?;
    let open =
        app_paper::orders(app, p, id, OrderFilter::Open, haechi_app::paging::Paging::new(Some(0), Some(200))?).await?;
    let recent = app_paper::orders(app, p, id, OrderFilter::Closed, paging).await?;
    let fills = app_paper::fills(app, p, id, paging).await?;
    let equity = app_paper::equity(app, p, id).await?;
    let (closes, perf) = app_paper::performance(app, p, id).await?;
    let mirror = app_paper::mirror(app, p, id).await?;
    let pct = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{:+.2}%", v * 100.0));
    let num = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"));
    let performance = if closes == 0 {
        Vec::new()
    } else {
        vec![
            (msg("metric.total_return"), pct(Some(perf.total_return))),
            (msg("metric.cagr"), pct(perf.cagr)),
            (msg("metric.volatility"), pct(perf.annual_volatility).trim_start_matches('+').to_owned()),
            (msg("metric.sharpe"), num(perf.sharpe)),
            (msg("metric.sortino"), num(perf.sortino)),
            (msg("metric.mdd"), pct(Some(perf.max_drawdown))),
        ]
    };
    let (ticket, ticket_error) = if form.ticker.trim().is_empty() {
        (None, None)
    } else {
        match app_paper::ticket_info(app, &form.ticker).await {
            Ok(i) => (
                Some(TicketFacts {
                    ticker: i.ticker,
                    name: i.name,
                    session: i.session.to_string(),
                    band: match (i.lower, i.upper) {
                        (Some(l), Some(u)) => format!("{} ~ {}", won(l), won(u)),
                        _ => "—".into(),
                    },
                    tick: i.tick.map_or_else(|| "—".into(), won),
                    last: i.last.or(i.base).map_or_else(|| "—".into(), won),
                }),
                None,
            ),
            Err(AppError::Invalid(pr)) => (None, pr.first().map(|x| t.problem(x))),
            Err(e) => return Err(e.into()),
        }
    };
    let csrf = session_csrf(p);
    let page = AccountPage {
        t: *t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        id,
        version: a.version,
        name: a.name.clone(),
        open: a.state == "open",
        halted: a.halted,
        loss_halt: a.loss_halt_session.clone(),
        cash: won(a.cash),
        reserved: won(a.reserved),
        available: won(a.available),
        equity: won(snap.summary.equity),
        profit: signed_won(snap.summary.profit),
        profit_class: class_of(snap.summary.profit),
        ret: format!("{:+.2}%", snap.summary.return_pct),
        market_mode_key: match snap.market.mode {
            "replay" => msg("paper.market.replay"),
            "feed" => msg("paper.market.feed"),
            _ => msg("paper.market.live"),
        },
        market_phase_key: format!("paper.phase.{}", snap.market.phase.as_str()),
        order_session: snap.market.order_session.to_string(),
        progress: snap.market.progress.map(|x| format!("{:.0}%", x * 100.0)),
        positions: snap
            .positions
            .iter()
            .map(|x| PositionRow {
                ticker: x.ticker.clone(),
                name: x.name.clone(),
                quantity: won(x.quantity),
                reserved: x.reserved,
                cost: won(x.cost),
                last: x.last.map_or_else(|| "—".into(), won),
                value: won(x.value),
                pnl: signed_won(x.unrealized),
                pnl_class: class_of(x.unrealized),
            })
            .collect(),
        open_orders: open.items.iter().map(|o| order_row(t, o)).collect(),
        orders: recent.items.iter().map(|o| order_row(t, o)).collect(),
        fills: fills
            .items
            .iter()
            .map(|f| FillRow {
                ticker: f.ticker.clone(),
                side_key: side_key(&f.side),
                quantity: f.quantity,
                price: won(f.price),
                commission: won(f.commission),
                tax: won(f.tax),
                trade_date: date(f.trade_date),
                settlement: date(f.settlement_date),
            })
            .collect(),
        chart: equity_chart(
            &equity.iter().map(|e| (date(e.session), e.equity)).collect::<Vec<_>>(),
            a.starting_cash,
            t.get("paper.equity_chart"),
        ),
        performance,
        ticket,
        ticket_error,
        notice,
        error,
        confirm_needed,
        form,
        mirror_available: mirror.available,
        mirror_on: mirror.enabled,
        mirror_rows: mirror
            .orders
            .into_iter()
            .take(50)
            .map(|m| MirrorRow {
                order_id: m.order_id,
                state_key: format!("paper.mirror_state.{}", m.state),
                broker_order_no: m.broker_order_no.unwrap_or_default(),
                kis_filled: m.kis_filled.map_or_else(|| "—".into(), won),
                detail: m.detail.unwrap_or_default(),
            })
            .collect(),
    };
    page.render().map_err(|e| UiError::from(ApiError::Internal(format!("template: {e}"))))
}

pub(super) async fn order_submit(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    headers: HeaderMap,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<TicketForm>,
) -> UiResult {
    let (t, _) = language(None, &headers);
    let parse = |s: &str| s.replace([',', ' '], "").parse::<i64>();
    let price = if f.kind == "market" || f.price.trim().is_empty() { None } else { parse(&f.price).ok().or(Some(-1)) };
    let req = OrderRequest {
        ticker: f.ticker.trim().to_owned(),
        side: f.side.clone(),
        kind: f.kind.clone(),
        price,
        quantity: parse(&f.quantity).unwrap_or(0),
        confirm: f.confirm.is_some(),
        client_order_id: None,
    };
    let rerender = |notice: Option<String>, error: Option<String>, confirm: bool| {
        let (state, p, f) = (state.clone(), p.clone(), f.clone());
        async move {
            let status = if error.is_some() || confirm { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
            let html = account_render(&state, &t, &p, id, f, notice, error, confirm).await?;
            Ok::<_, UiError>(super::page(status, Ok(html), Vec::new()))
        }
    };
    match app_paper::place(state.app(), &meta, &p, id, req).await {
        Ok(Placed::Accepted(_)) => Ok(Redirect::to(&format!("/accounts/{id}?done=placed")).into_response()),
        Ok(Placed::Rejected { code, .. }) => rerender(None, Some(reason_text(&t, code)), false).await,
        Ok(Placed::NeedsConfirmation { code, .. }) => rerender(None, Some(reason_text(&t, code)), true).await,
        Err(AppError::Invalid(problems)) => {
            let msg = problems.iter().map(|x| format!("{}: {}", x.field, t.problem(x))).collect::<Vec<_>>().join(" · ");
            rerender(None, Some(msg), false).await
        }
        Err(AppError::Conflict(c)) => rerender(None, Some(c), false).await,
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn order_cancel(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(order): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    let o = app_paper::order(state.app(), &p, order).await?;
    match app_paper::cancel(state.app(), &meta, &p, order).await {
        Ok(_) => Ok(Redirect::to(&format!("/accounts/{}?done=cancelled", o.account_id)).into_response()),
        // Filled meanwhile: the page shows what happened.
        Err(AppError::Conflict(_)) => Ok(Redirect::to(&format!("/accounts/{}", o.account_id)).into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct ModifyForm {
    #[serde(default)]
    price: String,
    #[serde(default)]
    quantity: String,
}

pub(super) async fn order_modify(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(order): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<ModifyForm>,
) -> UiResult {
    let o = app_paper::order(state.app(), &p, order).await?;
    let num = |s: &str| {
        let s = s.replace([',', ' '], "");
        if s.is_empty() { None } else { Some(s.parse::<i64>().unwrap_or(-1)) }
    };
    let price = if o.kind == "market" { None } else { num(&f.price).filter(|p| Some(*p) != o.limit_price) };
    let quantity = num(&f.quantity).filter(|q| *q != o.quantity - o.filled);
    let to = |q: String| Ok(Redirect::to(&format!("/accounts/{}{q}", o.account_id)).into_response());
    match app_paper::modify(state.app(), &meta, &p, order, price, quantity).await {
        Ok(Placed::Accepted(_)) => to("?done=modified".into()),
        Ok(Placed::Rejected { code, .. } | Placed::NeedsConfirmation { code, .. }) => to(format!("?refused={code}")),
        Err(AppError::Invalid(_)) => to("?refused=invalid_modification".into()),
        Err(AppError::Conflict(_)) => to(String::new()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct HaltForm {
    halted: String,
}

pub(super) async fn account_halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<HaltForm>,
) -> UiResult {
    let halted = f.halted == "1";
    app_paper::set_halt(state.app(), &meta, &p, id, halted).await?;
    let done = if halted { "halted" } else { "resumed" };
    Ok(Redirect::to(&format!("/accounts/{id}?done={done}")).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct LiftForm {
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp_code: String,
}

/// Lifts the daily loss halt after the password (and code) again; a wrong one is said on the
/// page, by name.
pub(super) async fn account_lift_loss_halt(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<LiftForm>,
) -> UiResult {
    let proof = haechi_app::accounts::Reauth {
        password: &f.password,
        totp_code: Some(f.totp_code.trim()).filter(|c| !c.is_empty()),
        recovery_code: None,
    };
    match app_paper::lift_loss_halt(state.app(), &meta, &p, id, proof).await {
        Ok(()) => Ok(Redirect::to(&format!("/accounts/{id}?done=lifted")).into_response()),
        Err(AppError::Invalid(_)) => Ok(Redirect::to(&format!("/accounts/{id}?refused=reauth")).into_response()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct MirrorForm {
    enabled: String,
}

/// Turns mirroring to the KIS mock account on or off.
pub(super) async fn account_mirror(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
    Form(f): Form<MirrorForm>,
) -> UiResult {
    let on = f.enabled == "1";
    app_paper::set_mirror(state.app(), &meta, &p, id, on).await?;
    let done = if on { "mirror_on" } else { "mirror_off" };
    Ok(Redirect::to(&format!("/accounts/{id}?done={done}")).into_response())
}

/// The account's performance on the run report's page: the same charts, metrics, monthly
/// returns, round trips and positions, from its equity at each close and its fills.
pub(super) async fn account_report(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    let (t, lang_cookie) = language(raw.as_deref(), &headers);
    let r = app_paper::report(state.app(), &p, id).await?;
    let header = super::RunHeader {
        id,
        state: "succeeded".into(),
        progress: 1.0,
        heading: Some(format!("{} · {}", r.scenario.name, t.get("paper.report"))),
        base: format!("/accounts/{id}/report"),
        note: Some(t.get("paper.report_note").to_owned()),
        show_orders: false,
    };
    let csrf = session_csrf(&p);
    let html = super::render_run_page(
        t,
        Some(NavUser::of(&p)),
        &csrf,
        &header,
        Some(std::sync::Arc::new(r)),
        super::runs::page_param(raw.as_deref()),
    )
    .map_err(|e| UiError::from(ApiError::Internal(format!("template: {e}"))))?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}

/// The account report's round trips as CSV.
pub(super) async fn account_report_csv(
    State(state): State<AppState>,
    axum::extract::Path((id, file)): axum::extract::Path<(i64, String)>,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    if file != "trades.csv" {
        return Err(ApiError::NotFound.into());
    }
    let r = app_paper::report(state.app(), &p, id).await?;
    let mut resp = super::report::trades_csv(&r).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"account-{id}-trades.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

pub(super) async fn account_reset(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    Signed(p, ..): Signed<Trade>,
) -> UiResult {
    app_paper::reset(state.app(), &meta, &p, id, None).await?;
    Ok(Redirect::to(&format!("/accounts/{id}?done=reset")).into_response())
}
