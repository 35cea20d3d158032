//! The fake's REST side.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State as AxState};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{Datelike, NaiveDate};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::{AccountBook, Arrival, FakeOrder, Fault, State, TokenRec};
use crate::KisEnv;
use crate::wire::{parse_date, ymd};

type S = AxState<Arc<State>>;

pub(super) fn router(state: Arc<State>) -> Router {
    Router::new()
        .route("/oauth2/tokenP", post(token))
        .route("/oauth2/Approval", post(approval))
        .route("/oauth2/revokeP", post(revoke))
        .route("/uapi/hashkey", post(hashkey))
        .fallback(api)
        .with_state(state)
}

fn json_response(status: StatusCode, body: &Value, tr_id: &str, tr_cont: &str) -> Response {
    let mut r = (status, body.to_string()).into_response();
    let h = r.headers_mut();
    h.insert("content-type", axum::http::HeaderValue::from_static("application/json; charset=utf-8"));
    if let Ok(v) = axum::http::HeaderValue::from_str(tr_id) {
        h.insert("tr_id", v);
    }
    if let Ok(v) = axum::http::HeaderValue::from_str(tr_cont) {
        h.insert("tr_cont", v);
    }
    r
}

fn oauth_error(status: StatusCode, code: &str, text: &str) -> Response {
    json_response(status, &json!({"error_code": code, "error_description": text}), "", "")
}

fn kis_error(status: StatusCode, code: &str, text: &str) -> (Response, String) {
    (json_response(status, &json!({"rt_cd": "1", "msg_cd": code, "msg1": text}), "", ""), code.to_owned())
}

fn credentials(body: &[u8], secret_field: &str) -> Result<(String, String), Box<Response>> {
    let v: Value = serde_json::from_slice(body).map_err(|_| {
        Box::new(oauth_error(StatusCode::BAD_REQUEST, "EGW00001", "요청 본문이 JSON이 아닙니다 (fake)"))
    })?;
    let key = v.get("appkey").and_then(Value::as_str).unwrap_or("").to_owned();
    let secret = v.get(secret_field).and_then(Value::as_str).unwrap_or("").to_owned();
    if key.trim().is_empty() || key != key.trim() {
        return Err(Box::new(oauth_error(StatusCode::FORBIDDEN, "EGW00103", "유효하지 않은 AppKey입니다.")));
    }
    if secret.trim().is_empty() || secret != secret.trim() {
        return Err(Box::new(oauth_error(StatusCode::FORBIDDEN, "EGW00105", "유효하지 않은 AppSecret입니다.")));
    }
    Ok((key, secret))
}

async fn token(AxState(st): S, body: Bytes) -> Response {
    let (key, _) = match credentials(&body, "appsecret") {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if v_grant(&body).as_deref() != Some("client_credentials") {
        return oauth_error(StatusCode::FORBIDDEN, "EGW00002", "grant_type 이 올바르지 않습니다 (fake)");
    }
    let now = Instant::now();
    let Ok(mut tokens) = st.tokens.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    // The same token within six hours, unless it expired.
    if let Some(rec) = tokens.iter().rev().find(|t| t.app_key == key && !t.expired && now < t.expires_at)
        && now.duration_since(rec.issued_at) < st.cfg.same_token_window
    {
        return token_body(&rec.token, rec.expires_at, now);
    }
    let Ok(mut last) = st.last_issue.lock() else { return StatusCode::INTERNAL_SERVER_ERROR.into_response() };
    if let Some(t) = last.get(&key)
        && now.duration_since(*t) < st.cfg.min_issue_interval
    {
        return oauth_error(StatusCode::FORBIDDEN, "EGW00133", "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)");
    }
    last.insert(key.clone(), now);
    st.issuances.fetch_add(1, Ordering::Relaxed);
    let token = format!("fake.{}.{}", uuid::Uuid::new_v4().simple(), st.issuances.load(Ordering::Relaxed));
    let expires_at = now + st.cfg.token_ttl;
    tokens.push(TokenRec { token: token.clone(), app_key: key, issued_at: now, expires_at, expired: false });
    token_body(&token, expires_at, now)
}

fn v_grant(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body).ok()?.get("grant_type")?.as_str().map(str::to_owned)
}

fn token_body(token: &str, expires_at: Instant, now: Instant) -> Response {
    let left = expires_at.saturating_duration_since(now);
    let kst = crate::utc_now().naive_utc()
        + chrono::Duration::hours(9)
        + chrono::Duration::from_std(left).unwrap_or_default();
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": token,
            "access_token_token_expired": kst.format("%Y-%m-%d %H:%M:%S").to_string(),
            "token_type": "Bearer",
            "expires_in": left.as_secs(),
        }),
        "",
        "",
    )
}

async fn approval(AxState(st): S, body: Bytes) -> Response {
    match credentials(&body, "secretkey") {
        Ok((key, _)) => json_response(StatusCode::OK, &json!({"approval_key": st.ws.issue_approval_key(&key)}), "", ""),
        Err(r) => *r,
    }
}

async fn revoke(AxState(st): S, body: Bytes) -> Response {
    let token = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("token").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default();
    if let Ok(mut tokens) = st.tokens.lock() {
        for t in tokens.iter_mut().filter(|t| t.token == token) {
            t.expired = true;
        }
    }
    json_response(StatusCode::OK, &json!({"code": 200, "message": "접근토큰 폐기에 성공하였습니다"}), "", "")
}

async fn hashkey(body: Bytes) -> Response {
    use sha2::Digest as _;
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return kis_error(StatusCode::BAD_REQUEST, "EGW00001", "요청 본문이 JSON이 아닙니다 (fake)").0;
    };
    let hash = hex::encode(sha2::Sha256::digest(&body));
    json_response(StatusCode::OK, &json!({"JsonBody": v, "HASH": hash}), "", "")
}

/// The path's TR ids: real and mock for account TRs, one for quotations; and whether the mock
/// environment offers it.
fn route_of(path: &str) -> Option<(&'static [&'static str], bool)> {
    Some(match path {
        "/uapi/domestic-stock/v1/quotations/inquire-price" => (&["FHKST01010100"], true),
        "/uapi/domestic-stock/v1/quotations/inquire-daily-itemchartprice" => (&["FHKST03010100"], true),
        "/uapi/domestic-stock/v1/quotations/inquire-daily-price" => (&["FHKST01010400"], true),
        "/uapi/domestic-stock/v1/quotations/search-stock-info" => (&["CTPF1002R"], false),
        "/uapi/domestic-stock/v1/finance/financial-ratio" => (&["FHKST66430300"], false),
        "/uapi/domestic-stock/v1/finance/income-statement" => (&["FHKST66430200"], false),
        "/uapi/domestic-stock/v1/finance/balance-sheet" => (&["FHKST66430100"], false),
        "/uapi/domestic-stock/v1/trading/order-cash" => (
            &["TTTC0012U", "TTTC0011U", "VTTC0012U", "VTTC0011U", "TTTC0802U", "TTTC0801U", "VTTC0802U", "VTTC0801U"],
            true,
        ),
        "/uapi/domestic-stock/v1/trading/order-rvsecncl" => {
            (&["TTTC0013U", "VTTC0013U", "TTTC0803U", "VTTC0803U"], true)
        }
        "/uapi/domestic-stock/v1/trading/inquire-balance" => (&["TTTC8434R", "VTTC8434R"], true),
        "/uapi/domestic-stock/v1/trading/inquire-psbl-order" => (&["TTTC8908R", "VTTC8908R"], true),
        "/uapi/domestic-stock/v1/trading/inquire-daily-ccld" => (
            &["TTTC0081R", "CTSC9215R", "VTTC0081R", "VTSC9215R", "TTTC8001R", "VTTC8001R", "CTSC9115R", "VTSC9115R"],
            true,
        ),
        _ => return None,
    })
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("").trim()
}

async fn api(
    AxState(st): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: Bytes,
) -> Response {
    if !st.cfg.latency.is_zero() {
        tokio::time::sleep(st.cfg.latency).await;
    }
    let at = Instant::now();
    let path = uri.path().to_owned();
    let tr_id = header(&headers, "tr_id").to_owned();
    let app_key = header(&headers, "appkey").to_owned();
    let (resp, code) = answer(&st, &method, &path, &headers, q.as_deref().unwrap_or(""), &body, at);
    if let Ok(mut a) = st.arrivals.lock() {
        if a.len() >= 2 * super::ARRIVALS_KEPT {
            a.drain(..super::ARRIVALS_KEPT);
        }
        a.push(Arrival { at, path, tr_id, app_key, code });
    }
    st.requests.fetch_add(1, Ordering::Relaxed);
    resp
}

#[allow(clippy::too_many_arguments)]
// Stays whole: one match arm per KIS endpoint the fake serves, like a routing table.
fn answer(
    st: &State,
    method: &Method,
    path: &str,
    h: &HeaderMap,
    query: &str,
    body: &[u8],
    now: Instant,
) -> (Response, String) {
    let Some((tr_ids, on_mock)) = route_of(path) else {
        return (StatusCode::NOT_FOUND.into_response(), "404".into());
    };
    for name in ["authorization", "appkey", "appsecret", "tr_id"] {
        if header(h, name).is_empty() {
            return kis_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "EGW00002",
                &format!("필수 헤더 {name} 이(가) 없습니다 (fake)"),
            );
        }
    }
    let app_key = header(h, "appkey");
    // The per-second limit comes before anything else, as at KIS's gateway.
    {
        let Ok(mut windows) = st.windows.lock() else {
            return (StatusCode::INTERNAL_SERVER_ERROR.into_response(), "500".into());
        };
        let w = windows.entry(app_key.to_owned()).or_default();
        while w.front().is_some_and(|t| now.duration_since(*t) >= std::time::Duration::from_secs(1)) {
            w.pop_front();
        }
        if w.len() >= st.cfg.rate_limit as usize {
            st.rate_limited.fetch_add(1, Ordering::Relaxed);
            return kis_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::codes::RATE_LIMIT,
                "초당 거래건수를 초과하였습니다.",
            );
        }
        w.push_back(now);
    }
    if let Some(fault) = st.faults.lock().ok().and_then(|mut f| f.pop_front()) {
        return match fault {
            Fault::RateLimit => kis_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                crate::codes::RATE_LIMIT,
                "초당 거래건수를 초과하였습니다.",
            ),
            Fault::ExpiredToken => {
                kis_error(StatusCode::INTERNAL_SERVER_ERROR, crate::codes::TOKEN_EXPIRED, "기간이 만료된 token 입니다.")
            }
            Fault::Unavailable => (
                (StatusCode::SERVICE_UNAVAILABLE, "<html><body>점검 중입니다</body></html>").into_response(),
                "503".into(),
            ),
        };
    }
    let bearer = header(h, "authorization");
    let token = bearer.strip_prefix("Bearer ").or_else(|| bearer.strip_prefix("bearer ")).unwrap_or("");
    {
        let Ok(tokens) = st.tokens.lock() else {
            return (StatusCode::INTERNAL_SERVER_ERROR.into_response(), "500".into());
        };
        match tokens.iter().find(|t| t.token == token) {
            None => {
                return kis_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::codes::TOKEN_INVALID,
                    "유효하지 않은 token 입니다.",
                );
            }
            Some(t) if t.app_key != app_key => {
                return kis_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::codes::TOKEN_INVALID,
                    "유효하지 않은 token 입니다.",
                );
            }
            Some(t) if t.expired || now >= t.expires_at => {
                return kis_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    crate::codes::TOKEN_EXPIRED,
                    "기간이 만료된 token 입니다.",
                );
            }
            Some(_) => {}
        }
    }
    let tr_id = header(h, "tr_id");
    if !tr_ids.contains(&tr_id) {
        return kis_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "OPSQ0002",
            &format!("없는 서비스 코드 입니다: {tr_id} (fake)"),
        );
    }
    let mock = st.cfg.env == KisEnv::Mock;
    let real_only_id = tr_id.starts_with('T') || tr_id.starts_with("CTSC");
    if mock && (!on_mock || real_only_id) {
        return kis_error(StatusCode::INTERNAL_SERVER_ERROR, crate::codes::NOT_A_MOCK_TR, "모의투자 TR 이 아닙니다.");
    }
    if !mock && tr_id.starts_with('V') {
        return kis_error(StatusCode::INTERNAL_SERVER_ERROR, "EGW02004", "실전투자 TR 이 아닙니다. (fake)");
    }
    let q = Query::parse(query);
    let is_post = *method == Method::POST;
    let result = match path.rsplit('/').next().unwrap_or("") {
        "inquire-price" if !is_post => price(st, &q),
        "inquire-daily-itemchartprice" if !is_post => chart(st, &q),
        "inquire-daily-price" if !is_post => recent(st, &q),
        "search-stock-info" if !is_post => stock_info(st, &q),
        "financial-ratio" | "income-statement" | "balance-sheet" if !is_post => finance(st, path, &q),
        "order-cash" if is_post => order_cash(st, app_key, tr_id, body),
        "order-rvsecncl" if is_post => revise_cancel(st, app_key, body),
        "inquire-balance" if !is_post => balance(st, app_key, &q, header(h, "tr_cont")),
        "inquire-psbl-order" if !is_post => orderable(st, app_key, &q),
        "inquire-daily-ccld" if !is_post => daily_fills(st, app_key, &q, header(h, "tr_cont")),
        _ => Err(("OPSQ0001", format!("{method} is not served at this path (fake)"))),
    };
    match result {
        Ok((mut body, tr_cont)) => {
            let (code, text) = success(mock, path);
            if let Some(o) = body.as_object_mut() {
                o.insert("rt_cd".into(), json!("0"));
                o.insert("msg_cd".into(), json!(code));
                o.insert("msg1".into(), json!(text));
            }
            (json_response(StatusCode::OK, &body, tr_id, tr_cont), code.to_owned())
        }
        // Business rejections come with HTTP 200, as at KIS.
        Err((code, text)) => {
            let (r, c) = kis_error(StatusCode::OK, code, &text);
            (r, c)
        }
    }
}

fn success(mock: bool, path: &str) -> (&'static str, &'static str) {
    match (mock, path.ends_with("order-cash") || path.ends_with("order-rvsecncl")) {
        (true, true) => ("40600000", "모의투자 주문이 완료 되었습니다."),
        (true, false) => ("20310000", "모의투자 조회가 완료되었습니다.                          "),
        (false, true) => ("APBK0013", "주문 전송 완료 되었습니다."),
        (false, false) => ("MCA00000", "정상처리 되었습니다."),
    }
}

type Answer = Result<(Value, &'static str), (&'static str, String)>;

/// Query parameters by lowercased name: KIS accepts either case.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(q: &str) -> Query {
        Query(
            url::form_urlencoded::parse(q.as_bytes()).map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned())).collect(),
        )
    }
    fn get(&self, k: &str) -> &str {
        self.0.get(&k.to_ascii_lowercase()).map_or("", |s| s.as_str())
    }
}

fn slot_of(st: &State, ticker: &str) -> Option<usize> {
    haechi_core::Ticker::parse(ticker).ok().and_then(|t| st.market.slot_of(t))
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

/// Bars of `slot` on sessions `lo..=hi` that have one.
fn bars(st: &State, slot: usize, lo: usize, hi: usize) -> Vec<(NaiveDate, haechi_core::RawBar, i64)> {
    let dates = st.market.dates();
    let mut out = Vec::new();
    let mut prev = if lo > 0 { st.market.last_close(slot, lo - 1).map_or(0, |p| p.get()) } else { 0 };
    for (day, date) in dates.iter().enumerate().take(hi + 1).skip(lo) {
        if let Some(b) = st.market.raw(slot, day) {
            out.push((*date, b, prev));
            prev = i64::from(b.close);
        }
    }
    out
}

fn sign(change: i64) -> &'static str {
    match change.cmp(&0) {
        std::cmp::Ordering::Greater => "2",
        std::cmp::Ordering::Equal => "3",
        std::cmp::Ordering::Less => "5",
    }
}

fn pct(change: i64, base: i64) -> String {
    if base == 0 { "0.00".into() } else { format!("{:.2}", change as f64 * 100.0 / base as f64) }
}

fn snapshot(st: &State, slot: usize) -> Value {
    let today = st.today;
    let last = bars(st, slot, today.saturating_sub(5), today);
    let (date, b, prev) = last.last().copied().unwrap_or((NaiveDate::MIN, haechi_core::RawBar::default(), 0));
    let inst = st.market.instrument(slot);
    let close = i64::from(b.close);
    let market = inst.market;
    let band = if prev > 0 {
        haechi_core::Price::new(prev).map(|p| haechi_core::krx::price_band(date, market, p))
    } else {
        None
    };
    json!({
        "stck_shrn_iscd": inst.ticker.as_str(),
        "hts_kor_isnm": inst.name,
        "stck_prpr": s(close),
        "prdy_vrss": s(close - prev),
        "prdy_vrss_sign": sign(close - prev),
        "prdy_ctrt": pct(close - prev, prev),
        "stck_prdy_clpr": s(prev),
        "stck_oprc": s(b.open),
        "stck_hgpr": s(b.high),
        "stck_lwpr": s(b.low),
        "acml_vol": s(b.volume),
        "acml_tr_pbmn": s(i128::from(b.volume) * i128::from(b.close)),
        "stck_mxpr": s(band.map_or(0, |b| b.upper.get())),
        "stck_llam": s(band.map_or(0, |b| b.lower.get())),
        "stck_sdpr": s(prev),
        "aspr_unit": s(haechi_core::krx::tick_size(date, market, close.max(1))),
        "lstn_stcn": "10000000",
        "hts_avls": s(close / 10),
        "per": "12.50", "pbr": "1.10", "eps": s(close / 12), "bps": s(close * 10 / 11),
        "rprs_mrkt_kor_name": market.to_string(),
        "bstp_kor_isnm": inst.sector,
        "iscd_stat_cls_code": "55",
        "temp_stop_yn": "N",
    })
}

fn unknown_snapshot() -> Value {
    json!({"stck_shrn_iscd": "", "hts_kor_isnm": "", "stck_prpr": "0", "prdy_vrss": "0", "prdy_vrss_sign": "3", "prdy_ctrt": "0.00"})
}

fn price(st: &State, q: &Query) -> Answer {
    let output = slot_of(st, q.get("FID_INPUT_ISCD")).map_or_else(unknown_snapshot, |slot| snapshot(st, slot));
    Ok((json!({"output": output}), ""))
}

fn bar_row(date: NaiveDate, b: &haechi_core::RawBar, prev: i64) -> Value {
    let close = i64::from(b.close);
    json!({
        "stck_bsop_date": ymd(date),
        "stck_clpr": s(close),
        "stck_oprc": s(b.open),
        "stck_hgpr": s(b.high),
        "stck_lwpr": s(b.low),
        "acml_vol": s(b.volume),
        "acml_tr_pbmn": s(i128::from(b.volume) * i128::from(b.close)),
        "flng_cls_code": "00",
        "prtt_rate": "0.00",
        "mod_yn": "N",
        "prdy_vrss_sign": sign(close - prev),
        "prdy_vrss": s(close - prev),
        "revl_issu_reas": "",
    })
}

fn session_range(st: &State, from: NaiveDate, to: NaiveDate) -> Option<(usize, usize)> {
    let dates = st.market.dates();
    let lo = st.market.session_at_or_after(from);
    let hi = dates.partition_point(|d| *d <= to);
    (lo < hi).then(|| (lo, hi - 1))
}

fn chart(st: &State, q: &Query) -> Answer {
    let (Some(from), Some(to)) = (parse_date(q.get("FID_INPUT_DATE_1")), parse_date(q.get("FID_INPUT_DATE_2"))) else {
        return Err(("OPCODE-1", "FID_INPUT_DATE_1/2 must be YYYYMMDD (fake)".into()));
    };
    let Some(slot) = slot_of(st, q.get("FID_INPUT_ISCD")) else {
        return Ok((json!({"output1": unknown_snapshot(), "output2": []}), ""));
    };
    let period = q.get("FID_PERIOD_DIV_CODE");
    let rows: Vec<Value> = match session_range(st, from, to) {
        None => Vec::new(),
        Some((lo, hi)) => {
            let daily = bars(st, slot, lo, hi);
            let grouped = match period {
                "D" => daily,
                "W" | "M" | "Y" => group(&daily, period),
                _ => return Err(("OPCODE-1", format!("FID_PERIOD_DIV_CODE {period:?} is not D, W, M or Y (fake)"))),
            };
            grouped.iter().rev().take(st.cfg.chart_page_rows).map(|(d, b, p)| bar_row(*d, b, *p)).collect()
        }
    };
    Ok((json!({"output1": snapshot(st, slot), "output2": rows}), ""))
}

/// Weekly, monthly or yearly bars from daily ones, dated by their last session.
fn group(daily: &[(NaiveDate, haechi_core::RawBar, i64)], period: &str) -> Vec<(NaiveDate, haechi_core::RawBar, i64)> {
    let key = |d: NaiveDate| match period {
        "W" => d.iso_week().year() * 100 + d.iso_week().week() as i32,
        "M" => d.year() * 100 + d.month() as i32,
        _ => d.year(),
    };
    let mut out: Vec<(NaiveDate, haechi_core::RawBar, i64)> = Vec::new();
    let mut last_key = None;
    for (d, b, prev) in daily {
        if last_key == Some(key(*d))
            && let Some(g) = out.last_mut()
        {
            g.0 = *d;
            g.1.high = g.1.high.max(b.high);
            g.1.low = g.1.low.min(b.low);
            g.1.close = b.close;
            g.1.volume += b.volume;
        } else {
            out.push((*d, *b, *prev));
            last_key = Some(key(*d));
        }
    }
    out
}

fn recent(st: &State, q: &Query) -> Answer {
    let Some(slot) = slot_of(st, q.get("FID_INPUT_ISCD")) else { return Ok((json!({"output": []}), "")) };
    let today = st.today;
    let daily = bars(st, slot, today.saturating_sub(200), today);
    let period = q.get("FID_PERIOD_DIV_CODE");
    let series = if period == "D" { daily } else { group(&daily, period) };
    let rows: Vec<Value> = series
        .iter()
        .rev()
        .take(30)
        .map(|(d, b, prev)| {
            let close = i64::from(b.close);
            json!({
                "stck_bsop_date": ymd(*d), "stck_oprc": s(b.open), "stck_hgpr": s(b.high), "stck_lwpr": s(b.low),
                "stck_clpr": s(close), "acml_vol": s(b.volume), "prdy_vrss": s(close - prev), "prdy_vrss_sign": sign(close - prev),
                "prdy_ctrt": pct(close - prev, *prev), "hts_frgn_ehrt": "12.34", "frgn_ntby_qty": "0", "flng_cls_code": "00",
                "acml_prtt_rate": "1.00"
            })
        })
        .collect();
    Ok((json!({"output": rows}), ""))
}

fn stock_info(st: &State, q: &Query) -> Answer {
    let Some(slot) = slot_of(st, q.get("PDNO")) else {
        return Err(("MCA05918", "종목코드 오류입니다.".into()));
    };
    let inst = st.market.instrument(slot);
    let first = (0..st.market.n_days()).find(|d| st.market.raw(slot, *d).is_some()).map(|d| st.market.dates()[d]);
    let listed = first.map(ymd).unwrap_or_default();
    let (market_id, kospi_date, kosdaq_date) = match inst.market {
        haechi_core::Market::Kosdaq => ("KSQ", String::new(), listed),
        haechi_core::Market::Konex => ("KNX", String::new(), String::new()),
        _ => ("STK", listed, String::new()),
    };
    Ok((
        json!({"output": {
            "pdno": format!("00000A{}", inst.ticker.as_str()),
            "prdt_type_cd": "300",
            "prdt_name": inst.name,
            "prdt_abrv_name": inst.name,
            "prdt_eng_name": format!("HAECHI SYNTH {}", inst.ticker.as_str()),
            "mket_id_cd": market_id,
            "std_pdno": format!("KR7{}003", inst.ticker.as_str()),
            "lstg_stqt": "10000000",
            "papr": "500",
            "scts_mket_lstg_dt": kospi_date,
            "kosdaq_mket_lstg_dt": kosdaq_date,
            "lstg_abol_dt": "",
            "idx_bztp_lcls_cd_name": inst.sector,
            "idx_bztp_mcls_cd_name": inst.sector,
            "idx_bztp_scls_cd_name": "",
            "std_idst_clsf_cd_name": inst.sector,
            "tr_stop_yn": "N",
            "admn_item_yn": "N",
        }}),
        "",
    ))
}

/// Deterministic statements: revenue grows from a per-ticker base, margins vary by year.
fn finance(st: &State, path: &str, q: &Query) -> Answer {
    let ticker = q.get("fid_input_iscd");
    let Some(slot) = slot_of(st, ticker) else { return Ok((json!({"output": []}), "")) };
    let quarterly = q.get("FID_DIV_CLS_CODE") == "1";
    let last_year = st.market.dates().last().map_or(2024, |d| d.year()) - 1;
    let seed = slot as f64 + 1.0;
    let mut rows = Vec::new();
    let periods: Vec<(i32, u32)> = if quarterly {
        (0..8).map(|i| (last_year - i / 4, [12, 9, 6, 3][i as usize % 4])).collect()
    } else {
        (0..5).map(|i| (last_year - i, 12)).collect()
    };
    for (k, (y, m)) in periods.iter().enumerate() {
        let growth = 1.0 + 0.03 * ((seed + *y as f64).sin());
        let revenue = (1000.0 * seed).mul_add(1.0, 0.0) * growth.powi(*y - 2000) / (if quarterly { 4.0 } else { 1.0 });
        let op = revenue * (0.08 + 0.04 * ((seed * 3.0 + *y as f64).cos()));
        let net = op * 0.75;
        let assets = revenue * 1.6;
        let liab = assets * 0.45;
        let equity = assets - liab;
        let row = match path.rsplit('/').next().unwrap_or("") {
            "financial-ratio" => json!({
                "stac_yymm": format!("{y}{m:02}"), "grs": format!("{:.2}", (growth - 1.0) * 100.0),
                "bsop_prfi_inrt": format!("{:.2}", (k as f64 - 2.0) * 1.5), "ntin_inrt": format!("{:.2}", (k as f64 - 2.0) * 1.2),
                "roe_val": format!("{:.2}", net / equity * 100.0), "eps": format!("{:.0}", net * 10.0), "sps": format!("{:.0}", revenue * 10.0),
                "bps": format!("{:.0}", equity * 10.0), "rsrv_rate": "1500.00", "lblt_rate": format!("{:.2}", liab / equity * 100.0),
            }),
            "income-statement" => json!({
                "stac_yymm": format!("{y}{m:02}"), "sale_account": format!("{revenue:.2}"), "sale_cost": format!("{:.2}", revenue * 0.6),
                "sale_totl_prfi": format!("{:.2}", revenue * 0.4), "bsop_prti": format!("{op:.2}"), "op_prfi": format!("{op:.2}"),
                "thtr_ntin": format!("{net:.2}"),
            }),
            _ => json!({
                "stac_yymm": format!("{y}{m:02}"), "total_aset": format!("{assets:.2}"), "total_lblt": format!("{liab:.2}"),
                "total_cptl": format!("{equity:.2}"), "cpfn": "50.00",
            }),
        };
        rows.push(row);
    }
    Ok((json!({"output": rows}), ""))
}

fn body_field(v: &Value, k: &str) -> Result<String, (&'static str, String)> {
    match v.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(_) => Err(("OPSQ0003", format!("{k} must be a string (fake)"))),
        None => Err(("OPSQ0003", format!("{k} is missing (fake; POST body keys are uppercase)"))),
    }
}

fn account_key(app_key: &str, v: &Value) -> Result<String, (&'static str, String)> {
    let cano = body_field(v, "CANO")?;
    let prdt = body_field(v, "ACNT_PRDT_CD")?;
    if cano.len() != 8 || prdt.len() != 2 {
        return Err(("OPSQ0003", "CANO must be 8 digits and ACNT_PRDT_CD 2 (fake)".into()));
    }
    Ok(format!("{app_key}/{cano}-{prdt}"))
}

fn kst_time() -> String {
    (crate::utc_now() + chrono::Duration::hours(9)).format("%H%M%S").to_string()
}

fn order_cash(st: &State, app_key: &str, tr_id: &str, body: &[u8]) -> Answer {
    let v: Value = serde_json::from_slice(body).map_err(|_| ("OPSQ0003", "body is not JSON (fake)".to_owned()))?;
    let acct = account_key(app_key, &v)?;
    let ticker = body_field(&v, "PDNO")?;
    let kind = body_field(&v, "ORD_DVSN")?;
    let qty: i64 =
        body_field(&v, "ORD_QTY")?.parse().map_err(|_| ("OPSQ0003", "ORD_QTY is not a number (fake)".to_owned()))?;
    let price: i64 =
        body_field(&v, "ORD_UNPR")?.parse().map_err(|_| ("OPSQ0003", "ORD_UNPR is not a number (fake)".to_owned()))?;
    let Some(slot) = slot_of(st, &ticker) else { return Err(("MCA05918", "종목코드 오류입니다.".into())) };
    if qty <= 0 {
        return Err(("APBK0918", "주문수량을 확인하세요.".into()));
    }
    let last = st.market.last_close(slot, st.today).map_or(0, |p| p.get());
    let buy = tr_id.ends_with("12U") || tr_id.ends_with("02U");
    let (limit, market) = match kind.as_str() {
        "00" if price > 0 => (price, false),
        "01" => (last, true),
        _ => return Err(("APBK0919", "주문구분 또는 단가를 확인하세요.".into())),
    };
    // A limit away from the market rests; otherwise it fills at once at the better price.
    let fills = market || (buy && limit >= last) || (!buy && limit <= last);
    let fill_price = if market {
        last
    } else if buy {
        limit.min(last)
    } else {
        limit.max(last)
    };
    let Ok(mut books) = st.accounts.lock() else { return Err(("OPSQ9999", "internal (fake)".into())) };
    let book =
        books.entry(acct).or_insert_with(|| AccountBook { cash: st.cfg.starting_cash, ..AccountBook::default() });
    if buy && limit * qty > book.cash {
        return Err(("APBK0952", "주문가능금액을 초과 했습니다".into()));
    }
    if !buy && book.holdings.get(&ticker).map_or(0, |h| h.0) < qty {
        return Err(("APBK0400", "주문 가능한 수량을 초과하였습니다.".into()));
    }
    let order_no = st.next_order.fetch_add(1, Ordering::Relaxed);
    let time = kst_time();
    let mut o = FakeOrder {
        // KIS dates an order by the (KST) day it arrived, whatever the market data's last day.
        day: (crate::utc_now() + chrono::Duration::hours(9)).date_naive(),
        order_no,
        original: 0,
        ticker: ticker.clone(),
        buy,
        quantity: qty,
        price: if market { 0 } else { limit },
        filled: 0,
        fill_price: 0,
        cancelled: 0,
        time: time.clone(),
    };
    if fills {
        o.filled = qty;
        o.fill_price = fill_price;
        settle(book, &ticker, buy, qty, fill_price);
    }
    book.orders.push(o);
    Ok((json!({"output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": format!("{order_no:010}"), "ORD_TMD": time}}), ""))
}

fn settle(book: &mut AccountBook, ticker: &str, buy: bool, qty: i64, price: i64) {
    let h = book.holdings.entry(ticker.to_owned()).or_insert((0, 0));
    if buy {
        book.cash -= qty * price;
        h.0 += qty;
        h.1 += qty * price;
    } else {
        book.cash += qty * price;
        let avg = if h.0 > 0 { h.1 / h.0 } else { 0 };
        h.0 -= qty;
        h.1 -= avg * qty;
    }
    if h.0 == 0 {
        book.holdings.remove(ticker);
    }
}

fn revise_cancel(st: &State, app_key: &str, body: &[u8]) -> Answer {
    let v: Value = serde_json::from_slice(body).map_err(|_| ("OPSQ0003", "body is not JSON (fake)".to_owned()))?;
    let acct = account_key(app_key, &v)?;
    let orig: u64 = body_field(&v, "ORGN_ODNO")?
        .trim()
        .parse()
        .map_err(|_| ("OPSQ0003", "ORGN_ODNO is not a number (fake)".to_owned()))?;
    let action = body_field(&v, "RVSE_CNCL_DVSN_CD")?;
    let all = body_field(&v, "QTY_ALL_ORD_YN")? == "Y";
    let qty: i64 = body_field(&v, "ORD_QTY")?.parse().unwrap_or(0);
    let new_price: i64 = body_field(&v, "ORD_UNPR")?.parse().unwrap_or(0);
    let Ok(mut books) = st.accounts.lock() else { return Err(("OPSQ9999", "internal (fake)".into())) };
    let Some(book) = books.get_mut(&acct) else {
        return Err(("40330000", "정정/취소할 주문이 없습니다.".into()));
    };
    let Some(o) = book.orders.iter_mut().find(|o| o.order_no == orig) else {
        return Err(("40330000", "정정/취소할 주문이 없습니다.".into()));
    };
    let open = o.quantity - o.filled - o.cancelled;
    let take = if all { open } else { qty.min(open) };
    if take <= 0 {
        return Err(("40330000", "정정/취소할 수량이 없습니다.".into()));
    }
    o.cancelled += take;
    let mut replacement = o.clone();
    let order_no = st.next_order.fetch_add(1, Ordering::Relaxed);
    let time = kst_time();
    if action == "01" {
        replacement.order_no = order_no;
        replacement.original = orig;
        replacement.quantity = take;
        replacement.price = new_price;
        replacement.filled = 0;
        replacement.cancelled = 0;
        replacement.time = time.clone();
        book.orders.push(replacement);
    }
    Ok((json!({"output": {"KRX_FWDG_ORD_ORGNO": "00950", "ODNO": format!("{order_no:010}"), "ORD_TMD": time}}), ""))
}

fn acct_from_query(app_key: &str, q: &Query) -> Result<String, (&'static str, String)> {
    let (cano, prdt) = (q.get("CANO"), q.get("ACNT_PRDT_CD"));
    if cano.len() != 8 || prdt.len() != 2 {
        return Err(("OPSQ0003", "CANO must be 8 digits and ACNT_PRDT_CD 2 (fake)".into()));
    }
    Ok(format!("{app_key}/{cano}-{prdt}"))
}

/// Page number from the opaque cursor the fake handed out (space-padded like KIS's).
fn page_of(q: &Query, tr_cont: &str) -> usize {
    if tr_cont != "N" {
        return 0;
    }
    q.get("CTX_AREA_NK100").trim().strip_prefix("PAGE").and_then(|p| p.parse().ok()).unwrap_or(0)
}

fn cursor(page: usize) -> String {
    format!("{:<100}", format!("PAGE{page}"))
}

fn balance(st: &State, app_key: &str, q: &Query, tr_cont: &str) -> Answer {
    let acct = acct_from_query(app_key, q)?;
    let Ok(mut books) = st.accounts.lock() else { return Err(("OPSQ9999", "internal (fake)".into())) };
    let book =
        books.entry(acct).or_insert_with(|| AccountBook { cash: st.cfg.starting_cash, ..AccountBook::default() });
    let page = page_of(q, tr_cont);
    let rows_per = st.cfg.balance_page_rows.max(1);
    let all: Vec<Value> = book
        .holdings
        .iter()
        .map(|(t, (qty, cost))| {
            let price = slot_of(st, t).and_then(|s| st.market.last_close(s, st.today)).map_or(0, |p| p.get());
            let value = price * qty;
            json!({
                "pdno": t, "prdt_name": slot_of(st, t).map(|s| st.market.instrument(s).name.clone()).unwrap_or_default(),
                "hldg_qty": s(qty), "ord_psbl_qty": s(qty), "pchs_avg_pric": format!("{:.4}", *cost as f64 / *qty as f64),
                "pchs_amt": s(cost), "prpr": s(price), "evlu_amt": s(value), "evlu_pfls_amt": s(value - cost),
                "evlu_pfls_rt": pct(value - cost, *cost),
            })
        })
        .collect();
    let securities: i64 = book
        .holdings
        .iter()
        .map(|(t, (qty, _))| {
            slot_of(st, t).and_then(|s| st.market.last_close(s, st.today)).map_or(0, |p| p.get()) * qty
        })
        .sum();
    let more = (page + 1) * rows_per < all.len();
    let rows: Vec<Value> = all.into_iter().skip(page * rows_per).take(rows_per).collect();
    Ok((
        json!({
            "ctx_area_fk100": cursor(0),
            "ctx_area_nk100": if more { cursor(page + 1) } else { cursor(0) },
            "output1": rows,
            "output2": [{
                "dnca_tot_amt": s(book.cash), "nxdy_excc_amt": s(book.cash), "prvs_rcdl_excc_amt": s(book.cash),
                "scts_evlu_amt": s(securities), "tot_evlu_amt": s(securities + book.cash), "nass_amt": s(securities + book.cash),
            }],
        }),
        if more { "M" } else { "D" },
    ))
}

fn orderable(st: &State, app_key: &str, q: &Query) -> Answer {
    let acct = acct_from_query(app_key, q)?;
    let Some(slot) = slot_of(st, q.get("PDNO")) else {
        return Err(("MCA05918", "종목코드 오류입니다.".into()));
    };
    let Ok(mut books) = st.accounts.lock() else { return Err(("OPSQ9999", "internal (fake)".into())) };
    let book =
        books.entry(acct).or_insert_with(|| AccountBook { cash: st.cfg.starting_cash, ..AccountBook::default() });
    let asked: i64 = q.get("ORD_UNPR").parse().unwrap_or(0);
    let price = if asked > 0 { asked } else { st.market.last_close(slot, st.today).map_or(1, |p| p.get()) };
    let qty = book.cash / price.max(1);
    Ok((
        json!({"output": {
            "ord_psbl_cash": s(book.cash), "nrcvb_buy_amt": s(qty * price), "nrcvb_buy_qty": s(qty),
            "max_buy_amt": s(qty * price), "max_buy_qty": s(qty), "psbl_qty_calc_unpr": s(price),
        }}),
        "",
    ))
}

fn daily_fills(st: &State, app_key: &str, q: &Query, tr_cont: &str) -> Answer {
    let acct = acct_from_query(app_key, q)?;
    let (Some(from), Some(to)) = (parse_date(q.get("INQR_STRT_DT")), parse_date(q.get("INQR_END_DT"))) else {
        return Err(("OPSQ0003", "INQR_STRT_DT/INQR_END_DT must be YYYYMMDD (fake)".into()));
    };
    let Ok(books) = st.accounts.lock() else { return Err(("OPSQ9999", "internal (fake)".into())) };
    let orders: Vec<&FakeOrder> = books
        .get(&acct)
        .map(|b| b.orders.iter().filter(|o| o.day >= from && o.day <= to).rev().collect())
        .unwrap_or_default();
    let page = page_of(q, tr_cont);
    let rows_per = st.cfg.fills_page_rows.max(1);
    let more = (page + 1) * rows_per < orders.len();
    let rows: Vec<Value> = orders
        .iter()
        .skip(page * rows_per)
        .take(rows_per)
        .map(|o| {
            json!({
                "ord_dt": ymd(o.day), "ord_gno_brno": "00950", "odno": format!("{:010}", o.order_no),
                "orgn_odno": if o.original > 0 { format!("{:010}", o.original) } else { String::new() },
                "sll_buy_dvsn_cd": if o.buy { "02" } else { "01" }, "pdno": o.ticker, "ord_qty": s(o.quantity),
                "ord_unpr": s(o.price), "ord_tmd": o.time, "tot_ccld_qty": s(o.filled), "avg_prvs": s(o.fill_price),
                "tot_ccld_amt": s(o.filled * o.fill_price), "rmn_qty": s(o.quantity - o.filled - o.cancelled),
                "cnc_cfrm_qty": s(o.cancelled), "cncl_yn": if o.cancelled > 0 { "Y" } else { "N" },
            })
        })
        .collect();
    let filled: i64 = orders.iter().map(|o| o.filled).sum();
    Ok((
        json!({
            "ctx_area_fk100": cursor(0),
            "ctx_area_nk100": if more { cursor(page + 1) } else { cursor(0) },
            "output1": rows,
            "output2": {"tot_ord_qty": s(orders.iter().map(|o| o.quantity).sum::<i64>()), "tot_ccld_qty": s(filled),
                        "tot_ccld_amt": s(orders.iter().map(|o| o.filled * o.fill_price).sum::<i64>()), "prsm_tlex_smtl": "0", "pchs_avg_pric": "0"},
        }),
        if more { "M" } else { "D" },
    ))
}
