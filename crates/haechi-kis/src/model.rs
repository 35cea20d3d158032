//! Typed requests and responses. Parsers take the whole response body, read only the fields
//! Haechi uses, and ignore the rest, so fields KIS adds later break nothing.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::wire::{FieldError, Fields};

type Result<T> = std::result::Result<T, FieldError>;

fn object<'a>(body: &'a Value, name: &str) -> Result<&'a Map<String, Value>> {
    body.get(name).and_then(Value::as_object).ok_or_else(|| FieldError(format!("{name}: missing or not an object")))
}

/// An array output; KIS sometimes sends a one-element array where an object is documented and
/// the reverse, and pads arrays with empty objects, which are skipped.
fn rows<'a>(body: &'a Value, name: &str) -> Result<Vec<&'a Map<String, Value>>> {
    match body.get(name) {
        Some(Value::Array(a)) => Ok(a
            .iter()
            .filter_map(Value::as_object)
            .filter(|o| o.values().any(|v| v.as_str().is_some_and(|s| !s.trim().is_empty())))
            .collect()),
        Some(Value::Object(o)) => Ok(vec![o]),
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(FieldError(format!("{name}: not an array"))),
    }
}

/// Current price (`FHKST01010100`, `inquire-price`).
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    pub ticker: String,
    pub price: i64,
    pub change: i64,
    pub change_sign: String,
    pub change_pct: f64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub volume: i64,
    pub traded_value: i64,
    pub upper_limit: i64,
    pub lower_limit: i64,
    pub base_price: i64,
    pub tick_size: i64,
    pub listed_shares: i64,
    /// 억원.
    pub market_cap_eok: i64,
    pub per: f64,
    pub pbr: f64,
    pub eps: f64,
    pub bps: f64,
    pub market_name: String,
    pub sector_name: String,
    /// `iscd_stat_cls_code`: 51 관리종목 … 58 거래정지.
    pub status_code: String,
    pub halted: bool,
}

/// # Errors
/// A field that is present but unreadable.
pub fn parse_quote(body: &Value) -> Result<Quote> {
    let f = Fields::new(object(body, "output")?, "output");
    Ok(Quote {
        ticker: f.text("stck_shrn_iscd").to_owned(),
        price: f.int("stck_prpr")?,
        change: f.int("prdy_vrss")?,
        change_sign: f.text("prdy_vrss_sign").to_owned(),
        change_pct: f.dec("prdy_ctrt")?,
        open: f.int("stck_oprc")?,
        high: f.int("stck_hgpr")?,
        low: f.int("stck_lwpr")?,
        volume: f.int("acml_vol")?,
        traded_value: f.int("acml_tr_pbmn")?,
        upper_limit: f.int("stck_mxpr")?,
        lower_limit: f.int("stck_llam")?,
        base_price: f.int("stck_sdpr")?,
        tick_size: f.int("aspr_unit")?,
        listed_shares: f.int("lstn_stcn")?,
        market_cap_eok: f.int("hts_avls")?,
        per: f.dec("per")?,
        pbr: f.dec("pbr")?,
        eps: f.dec("eps")?,
        bps: f.dec("bps")?,
        market_name: f.text("rprs_mrkt_kor_name").to_owned(),
        sector_name: f.text("bstp_kor_isnm").to_owned(),
        status_code: f.text("iscd_stat_cls_code").to_owned(),
        halted: f.yes("temp_stop_yn"),
    })
}

/// Bar period for the chart TRs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Year,
}

impl Period {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Period::Day => "D",
            Period::Week => "W",
            Period::Month => "M",
            Period::Year => "Y",
        }
    }
}

/// One period bar. Prices are KIS's adjusted prices unless asked otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodBar {
    pub date: NaiveDate,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub traded_value: i64,
    /// `flng_cls_code`: `00` none, `01` ex-rights, `02` ex-dividend, …
    pub ex_code: String,
    /// `mod_yn`: no trade yet today.
    pub no_trade_yet: bool,
}

/// A chart page (`FHKST03010100`): the instrument snapshot and up to 100 bars, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartPage {
    pub ticker: String,
    pub name: String,
    /// Current price; `0` means KIS does not know the code.
    pub price: i64,
    pub bars: Vec<PeriodBar>,
}

/// # Errors
/// A field that is present but unreadable.
pub fn parse_chart_page(body: &Value) -> Result<ChartPage> {
    let info = Fields::new(object(body, "output1")?, "output1");
    let mut bars = Vec::new();
    for (i, row) in rows(body, "output2")?.into_iter().enumerate() {
        let at = format!("output2[{i}]");
        let f = Fields::new(row, &at);
        bars.push(PeriodBar {
            date: f.date("stck_bsop_date")?,
            open: f.int("stck_oprc")?,
            high: f.int("stck_hgpr")?,
            low: f.int("stck_lwpr")?,
            close: f.int("stck_clpr")?,
            volume: f.int("acml_vol")?,
            traded_value: f.int("acml_tr_pbmn")?,
            ex_code: f.text("flng_cls_code").to_owned(),
            no_trade_yet: f.yes("mod_yn"),
        });
    }
    Ok(ChartPage {
        ticker: info.text("stck_shrn_iscd").to_owned(),
        name: info.text("hts_kor_isnm").to_owned(),
        price: info.int("stck_prpr")?,
        bars,
    })
}

/// One of the last 30 periods (`FHKST01010400`, `inquire-daily-price`).
#[derive(Debug, Clone, PartialEq)]
pub struct RecentBar {
    pub date: NaiveDate,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    pub close: i64,
    pub volume: i64,
    pub change: i64,
    pub change_pct: f64,
    pub foreign_ratio: f64,
}

/// # Errors
/// A field that is present but unreadable.
pub fn parse_recent_bars(body: &Value) -> Result<Vec<RecentBar>> {
    rows(body, "output")?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("output[{i}]");
            let f = Fields::new(row, &at);
            Ok(RecentBar {
                date: f.date("stck_bsop_date")?,
                open: f.int("stck_oprc")?,
                high: f.int("stck_hgpr")?,
                low: f.int("stck_lwpr")?,
                close: f.int("stck_clpr")?,
                volume: f.int("acml_vol")?,
                change: f.int("prdy_vrss")?,
                change_pct: f.dec("prdy_ctrt")?,
                foreign_ratio: f.dec("hts_frgn_ehrt")?,
            })
        })
        .collect()
}

/// Stock basic information (`CTPF1002R`, `search-stock-info`).
#[derive(Debug, Clone, PartialEq)]
pub struct StockInfo {
    pub ticker: String,
    pub name: String,
    pub short_name: String,
    pub english_name: String,
    /// `mket_id_cd`: `STK` KOSPI, `KSQ` KOSDAQ, `KNX` KONEX.
    pub market_id: String,
    pub isin: String,
    pub listed_shares: i64,
    pub par_value: i64,
    pub listed_on: Option<NaiveDate>,
    pub delisted_on: Option<NaiveDate>,
    /// Large / middle / small sector names.
    pub sector: [String; 3],
    pub industry: String,
    pub halted: bool,
    pub administrative: bool,
}

impl StockInfo {
    /// Haechi's market name for `market_id`, `None` for markets Haechi does not trade.
    #[must_use]
    pub fn market(&self) -> Option<&'static str> {
        match self.market_id.as_str() {
            "STK" => Some("KOSPI"),
            "KSQ" => Some("KOSDAQ"),
            "KNX" => Some("KONEX"),
            _ => None,
        }
    }
}

/// # Errors
/// A field that is present but unreadable.
pub fn parse_stock_info(body: &Value) -> Result<StockInfo> {
    let f = Fields::new(object(body, "output")?, "output");
    let listed = match f.opt_date("scts_mket_lstg_dt")? {
        Some(d) => Some(d),
        None => f.opt_date("kosdaq_mket_lstg_dt")?,
    };
    Ok(StockInfo {
        // KIS pads the code (`00000A005930`): the stock code is the last six characters.
        ticker: {
            let p = f.text("pdno");
            p.get(p.len().saturating_sub(6)..).unwrap_or(p).to_owned()
        },
        name: f.text("prdt_name").to_owned(),
        short_name: f.text("prdt_abrv_name").to_owned(),
        english_name: f.text("prdt_eng_name").to_owned(),
        market_id: f.text("mket_id_cd").to_owned(),
        isin: f.text("std_pdno").to_owned(),
        listed_shares: f.int("lstg_stqt")?,
        par_value: f.won_rounded("papr")?,
        listed_on: listed,
        delisted_on: f.opt_date("lstg_abol_dt")?,
        sector: [
            f.text("idx_bztp_lcls_cd_name").to_owned(),
            f.text("idx_bztp_mcls_cd_name").to_owned(),
            f.text("idx_bztp_scls_cd_name").to_owned(),
        ],
        industry: f.text("std_idst_clsf_cd_name").to_owned(),
        halted: f.yes("tr_stop_yn"),
        administrative: f.yes("admn_item_yn"),
    })
}

/// Annual or quarterly statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinancePeriod {
    Annual,
    Quarterly,
}

impl FinancePeriod {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            FinancePeriod::Annual => "0",
            FinancePeriod::Quarterly => "1",
        }
    }
}

/// One fiscal period's figures from the three finance TRs. Amounts are 억원 as KIS sends them
/// (fractions kept); ratios are percent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FinancialRow {
    /// `stac_yymm`, such as `202412`.
    pub period: String,
    pub revenue: f64,
    pub operating_profit: f64,
    pub net_income: f64,
    pub total_assets: f64,
    pub total_liabilities: f64,
    pub total_equity: f64,
    pub revenue_growth: f64,
    pub operating_profit_growth: f64,
    pub net_income_growth: f64,
    pub roe: f64,
    pub eps: f64,
    pub bps: f64,
    pub debt_ratio: f64,
}

/// Rows of `financial-ratio` (`FHKST66430300`).
///
/// # Errors
/// A field that is present but unreadable.
pub fn parse_financial_ratios(body: &Value) -> Result<Vec<FinancialRow>> {
    rows(body, "output")?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("output[{i}]");
            let f = Fields::new(row, &at);
            Ok(FinancialRow {
                period: period_of(&f)?,
                revenue_growth: f.dec("grs")?,
                operating_profit_growth: f.dec("bsop_prfi_inrt")?,
                net_income_growth: f.dec("ntin_inrt")?,
                roe: f.dec("roe_val")?,
                eps: f.dec("eps")?,
                bps: f.dec("bps")?,
                debt_ratio: f.dec("lblt_rate")?,
                ..FinancialRow::default()
            })
        })
        .collect()
}

/// Rows of `income-statement` (`FHKST66430200`): only revenue, operating profit and net income.
///
/// # Errors
/// A field that is present but unreadable.
pub fn parse_income_statements(body: &Value) -> Result<Vec<FinancialRow>> {
    rows(body, "output")?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("output[{i}]");
            let f = Fields::new(row, &at);
            Ok(FinancialRow {
                period: period_of(&f)?,
                revenue: f.dec("sale_account")?,
                operating_profit: f.dec("bsop_prti")?,
                net_income: f.dec("thtr_ntin")?,
                ..FinancialRow::default()
            })
        })
        .collect()
}

/// Rows of `balance-sheet` (`FHKST66430100`).
///
/// # Errors
/// A field that is present but unreadable.
pub fn parse_balance_sheets(body: &Value) -> Result<Vec<FinancialRow>> {
    rows(body, "output")?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("output[{i}]");
            let f = Fields::new(row, &at);
            Ok(FinancialRow {
                period: period_of(&f)?,
                total_assets: f.dec("total_aset")?,
                total_liabilities: f.dec("total_lblt")?,
                total_equity: f.dec("total_cptl")?,
                ..FinancialRow::default()
            })
        })
        .collect()
}

fn period_of(f: &Fields<'_>) -> Result<String> {
    let p = f.text("stac_yymm");
    let ok = p.len() == 6
        && p.bytes().all(|b| b.is_ascii_digit())
        && matches!(&p[4..], "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08" | "09" | "10" | "11" | "12");
    if ok { Ok(p.to_owned()) } else { Err(FieldError(format!("stac_yymm: {p:?} is not YYYYMM"))) }
}

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Buy,
    Sell,
}

/// The order types a practice platform needs (`ORD_DVSN` `00` and `01`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderKind {
    /// 지정가 at `price`.
    Limit { price: i64 },
    /// 시장가.
    Market,
}

impl OrderKind {
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            OrderKind::Limit { .. } => "00",
            OrderKind::Market => "01",
        }
    }
    #[must_use]
    pub fn price(self) -> i64 {
        match self {
            OrderKind::Limit { price } => price,
            OrderKind::Market => 0,
        }
    }
}

/// A cash order (`order-cash`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRequest {
    pub ticker: String,
    pub side: Side,
    pub kind: OrderKind,
    pub quantity: i64,
}

/// What KIS returns for an accepted order: keep both to revise or cancel it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderAck {
    /// `KRX_FWDG_ORD_ORGNO`, the order branch.
    pub branch: String,
    /// `ODNO`.
    pub order_no: String,
    /// `ORD_TMD`, `HHMMSS`.
    pub time: String,
}

/// # Errors
/// A missing order number.
pub fn parse_order_ack(body: &Value) -> Result<OrderAck> {
    let f = Fields::new(object(body, "output")?, "output");
    let order_no = f.text("ODNO");
    if order_no.is_empty() {
        return Err(FieldError("output.ODNO: missing".into()));
    }
    Ok(OrderAck {
        branch: f.text("KRX_FWDG_ORD_ORGNO").to_owned(),
        order_no: order_no.to_owned(),
        time: f.text("ORD_TMD").to_owned(),
    })
}

/// Revise or cancel (`order-rvsecncl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviseCancelRequest {
    pub branch: String,
    pub original_order_no: String,
    pub action: ReviseCancel,
    /// `None`: the whole remaining quantity (`QTY_ALL_ORD_YN=Y`).
    pub quantity: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviseCancel {
    Revise(OrderKind),
    Cancel,
}

/// A holding in the balance.
#[derive(Debug, Clone, PartialEq)]
pub struct Holding {
    pub ticker: String,
    pub name: String,
    pub quantity: i64,
    pub sellable: i64,
    pub average_price: i64,
    pub purchase_amount: i64,
    pub price: i64,
    pub value: i64,
    pub profit: i64,
    pub profit_pct: f64,
}

/// Account totals from the balance.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BalanceSummary {
    /// D+0 cash deposit.
    pub cash: i64,
    /// D+2 cash.
    pub cash_d2: i64,
    pub securities_value: i64,
    pub total_value: i64,
    pub net_assets: i64,
}

/// The balance, every page assembled.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Balance {
    pub holdings: Vec<Holding>,
    pub summary: BalanceSummary,
}

/// One page of `inquire-balance`.
///
/// # Errors
/// A field that is present but unreadable.
pub fn parse_balance_page(body: &Value) -> Result<Balance> {
    let mut holdings = Vec::new();
    for (i, row) in rows(body, "output1")?.into_iter().enumerate() {
        let at = format!("output1[{i}]");
        let f = Fields::new(row, &at);
        holdings.push(Holding {
            ticker: f.text("pdno").to_owned(),
            name: f.text("prdt_name").to_owned(),
            quantity: f.int("hldg_qty")?,
            sellable: f.int("ord_psbl_qty")?,
            average_price: f.won_rounded("pchs_avg_pric")?,
            purchase_amount: f.int("pchs_amt")?,
            price: f.int("prpr")?,
            value: f.int("evlu_amt")?,
            profit: f.int("evlu_pfls_amt")?,
            profit_pct: f.dec("evlu_pfls_rt")?,
        });
    }
    let summary = match rows(body, "output2")?.first() {
        Some(row) => {
            let f = Fields::new(row, "output2[0]");
            BalanceSummary {
                cash: f.int("dnca_tot_amt")?,
                cash_d2: f.int("prvs_rcdl_excc_amt")?,
                securities_value: f.int("scts_evlu_amt")?,
                total_value: f.int("tot_evlu_amt")?,
                net_assets: f.int("nass_amt")?,
            }
        }
        None => BalanceSummary::default(),
    };
    Ok(Balance { holdings, summary })
}

/// How much can be bought (`inquire-psbl-order`). Cash-only figures exclude 미수 credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orderable {
    pub cash: i64,
    pub cash_only_amount: i64,
    pub cash_only_quantity: i64,
    pub max_amount: i64,
    pub max_quantity: i64,
}

/// # Errors
/// A field that is present but unreadable.
pub fn parse_orderable(body: &Value) -> Result<Orderable> {
    let f = Fields::new(object(body, "output")?, "output");
    Ok(Orderable {
        cash: f.int("ord_psbl_cash")?,
        cash_only_amount: f.int("nrcvb_buy_amt")?,
        cash_only_quantity: f.int("nrcvb_buy_qty")?,
        max_amount: f.int("max_buy_amt")?,
        max_quantity: f.int("max_buy_qty")?,
    })
}

/// One order of the day with its fills (`inquire-daily-ccld`).
#[derive(Debug, Clone, PartialEq)]
pub struct DailyOrder {
    pub date: NaiveDate,
    pub order_no: String,
    pub original_order_no: String,
    pub side: Option<Side>,
    pub ticker: String,
    pub quantity: i64,
    pub price: i64,
    pub time: String,
    pub filled_quantity: i64,
    pub average_fill_price: i64,
    pub filled_amount: i64,
    pub remaining: i64,
    pub cancelled: bool,
}

/// One page of `inquire-daily-ccld`.
///
/// # Errors
/// A field that is present but unreadable.
pub fn parse_daily_orders(body: &Value) -> Result<Vec<DailyOrder>> {
    rows(body, "output1")?
        .into_iter()
        .enumerate()
        .map(|(i, row)| {
            let at = format!("output1[{i}]");
            let f = Fields::new(row, &at);
            Ok(DailyOrder {
                date: f.date("ord_dt")?,
                order_no: f.text("odno").to_owned(),
                original_order_no: f.text("orgn_odno").to_owned(),
                side: match f.text("sll_buy_dvsn_cd") {
                    "01" => Some(Side::Sell),
                    "02" => Some(Side::Buy),
                    _ => None,
                },
                ticker: f.text("pdno").to_owned(),
                quantity: f.int("ord_qty")?,
                price: f.int("ord_unpr")?,
                time: f.text("ord_tmd").to_owned(),
                filled_quantity: f.int("tot_ccld_qty")?,
                average_fill_price: f.won_rounded("avg_prvs")?,
                filled_amount: f.int("tot_ccld_amt")?,
                remaining: f.int("rmn_qty")?,
                cancelled: f.yes("cncl_yn"),
            })
        })
        .collect()
}

/// The `tokenP` answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub access_token: String,
    /// From `access_token_token_expired` (KST), not from `expires_in`: the two disagree.
    pub expires_at_ms: i64,
}

/// # Errors
/// A missing token or an unreadable expiry.
pub fn parse_token(body: &Value) -> Result<IssuedToken> {
    let obj = body.as_object().ok_or_else(|| FieldError("token answer is not an object".into()))?;
    let f = Fields::new(obj, "tokenP");
    let token = f.text("access_token");
    if token.is_empty() {
        return Err(FieldError("tokenP.access_token: missing".into()));
    }
    let expiry = f.text("access_token_token_expired");
    let expires_at_ms = match chrono::NaiveDateTime::parse_from_str(expiry, "%Y-%m-%d %H:%M:%S") {
        // KST is UTC+9 without daylight saving.
        Ok(kst) => kst.and_utc().timestamp_millis() - 9 * 3_600_000,
        Err(_) => {
            let secs = f.int("expires_in")?;
            if secs <= 0 {
                return Err(FieldError(format!("tokenP.access_token_token_expired: {expiry:?} is not a time")));
            }
            crate::now_ms() + secs * 1000
        }
    };
    Ok(IssuedToken { access_token: token.to_owned(), expires_at_ms })
}
