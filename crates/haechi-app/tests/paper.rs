//! Paper trading through the use cases, with the market time moved by the test: KRX hours,
//! each fail-safe, price-time matching on prints (a replayed print fills nothing twice), a
//! replayed session, ownership, and the ledger under 1,000 concurrent orders. SQLite by
//! default; MariaDB when `HAECHI_TEST_MYSQL_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::{NaiveDate, NaiveTime};
use haechi_app::accounts::{self, Reauth, Registration};
use haechi_app::paper::{self, Limits, OrderRequest, Placed, PrintIn};
use haechi_app::{Account, App, AppError, AppSettings, ManualClock, Principal, RequestMeta, Role, Services};
use haechi_core::store::{Instrument, RawBar, StoreBuilder};
use haechi_core::{Market, Price, Ticker, Won};
use haechi_db::testkit::TestDb;
use haechi_db::{LogQuery, OrderFilter};
use haechi_objects::testkit::{TestObjects, TestObjectsGuard};
use haechi_paper::session::kst_ms;
use std::collections::BTreeMap;
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";
const SAMSUNG: &str = "005930";
const KAKAO: &str = "035720";

struct Fixture {
    app: App,
    clock: ManualClock,
    _db: TestDb,
    _objects: TestObjectsGuard,
    _queue_dir: tempfile::TempDir,
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 1, day).unwrap()
}

fn at(day: u32, h: u32, m: u32) -> i64 {
    kst_ms(d(day), NaiveTime::from_hms_opt(h, m, 0).unwrap())
}

/// Two names over four sessions (2–5 January 2024); the exchange calendar says so too.
async fn fixture() -> Fixture {
    let db = TestDb::new().await.expect("test database (is HAECHI_TEST_MYSQL_URL reachable?)");
    let (objects, guard) = TestObjects::local();
    let queue_dir = tempfile::tempdir().unwrap();
    let queue = haechi_jobs::Queue::connect(&haechi_jobs::QueueConfig::Sqlite { path: queue_dir.path().join("q.db") })
        .await
        .unwrap();
    let mut b = StoreBuilder::new(vec![d(2), d(3), d(4), d(5)]).unwrap();
    b.exchange_calendar(haechi_core::calendar::TradingCalendar::new(vec![d(2), d(3), d(4), d(5)])).unwrap();
    let bar = |c: u32, v: u64| RawBar { open: c, high: c + c / 50, low: c - c / 50, close: c, volume: v };
    let inst =
        |t: &str, m| Instrument { ticker: Ticker::parse(t).unwrap(), name: t.into(), market: m, sector: String::new() };
    b.add(inst(SAMSUNG, Market::Kospi), (0..4).map(|i| (i, bar(70_000, 1_000_000)))).unwrap();
    b.add(inst(KAKAO, Market::Kosdaq), (0..4).map(|i| (i, bar(50_000, 500_000)))).unwrap();
    haechi_jobs::market::load_store_into_db(&db.db, &b.build(), "test", true, "paper tests").await.unwrap();
    let clock = ManualClock::at(at(4, 10, 0));
    let services =
        Services { db: db.db.clone(), objects, queue, events: haechi_jobs::run_events(), market: Default::default() };
    let app = App::with_clock(services, AppSettings::default(), Arc::new(clock.clone()));
    Fixture { app, clock, _db: db, _objects: guard, _queue_dir: queue_dir }
}

fn meta() -> RequestMeta {
    RequestMeta { ip: "192.0.2.7".into(), request_id: "test".into(), user_agent: "test".into() }
}

async fn user(app: &App, email: &str, role: Role) -> Principal {
    let new = Registration { email: email.into(), display_name: "테스트".into(), password: PASSWORD.into(), role };
    let a = accounts::register(app, &meta(), new).await.unwrap();
    let row = app.db().user_by_email(&a.email).await.unwrap().unwrap();
    Principal::local(Account::from(&row))
}

fn limit(ticker: &str, side: &str, price: i64, quantity: i64) -> OrderRequest {
    OrderRequest {
        ticker: ticker.into(),
        side: side.into(),
        kind: "limit".into(),
        price: Some(price),
        quantity,
        confirm: false,
        client_order_id: None,
    }
}

fn market(ticker: &str, side: &str, quantity: i64) -> OrderRequest {
    OrderRequest { kind: "market".into(), price: None, ..limit(ticker, side, 0, quantity) }
}

fn accepted(p: Placed) -> haechi_db::PaperOrderRow {
    match p {
        Placed::Accepted(o) => o,
        other => panic!("not accepted: {other:?}"),
    }
}

fn refused(p: &Placed) -> &'static str {
    match p {
        Placed::Rejected { code, .. } | Placed::NeedsConfirmation { code, .. } => code,
        Placed::Accepted(o) => panic!("accepted: {o:?}"),
    }
}

fn print(ticker: &str, session: u32, price: i64, volume: u64, n: u32) -> PrintIn {
    PrintIn {
        ticker: Ticker::parse(ticker).unwrap(),
        session: d(session),
        price: Price::new(price).unwrap(),
        volume,
        auction: false,
        key: format!("{}:{ticker}:{n}", session),
    }
}

#[tokio::test]
async fn orders_follow_krx_hours_on_the_injected_clock() {
    let f = fixture().await;
    let p = user(&f.app, "hours@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "시간", 10_000_000).await.unwrap().id;
    let phase = |h, m, day| {
        f.clock.set_ms(at(day, h, m));
        let app = f.app.clone();
        async move {
            let v = paper::market_time(&app).await.unwrap();
            (v.phase.as_str(), v.order_session)
        }
    };
    assert_eq!(phase(8, 30, 4).await, ("before_open", d(4)));
    assert_eq!(phase(9, 0, 4).await, ("continuous", d(4)));
    assert_eq!(phase(15, 25, 4).await, ("closing_call", d(4)));
    assert_eq!(phase(15, 31, 4).await, ("after_close", d(5)));
    // Saturday the 6th: closed; after the calendar's end, Monday the 8th is the next session.
    assert_eq!(phase(10, 0, 6).await, ("closed", NaiveDate::from_ymd_opt(2024, 1, 8).unwrap()));
    // An order after the close is for the next session, banded on today's close.
    f.clock.set_ms(at(4, 15, 45));
    let o = accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "buy", 70_000, 1)).await.unwrap());
    assert_eq!(o.session, 20240105);
    // The band for the 5th is 70,000 ± 30%: 91,000 is the upper limit, 91,100 beyond it.
    let over = paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "buy", 91_100, 1)).await.unwrap();
    assert_eq!(refused(&over), "outside_price_limit");
    accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "buy", 91_000, 1)).await.unwrap());
    // A print of the 4th does not touch orders for the 5th.
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 4, 60_000, 100, 1)).await.unwrap(), 0);
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 5, 69_900, 100, 1)).await.unwrap(), 2);
}

#[tokio::test]
async fn each_fail_safe_refuses_with_its_code_and_is_audited() {
    let f = fixture().await;
    let p = user(&f.app, "safe@example.com", Role::Investor).await;
    let admin = user(&f.app, "admin@example.com", Role::Admin).await;
    let acct = paper::open(&f.app, &meta(), &p, "안전", 10_000_000).await.unwrap().id;
    let limits = Limits {
        max_order_value: Some(Won(1_000_000)),
        max_orders_per_day: Some(4),
        daily_loss_limit: None,
        confirm_above: Some(Won(500_000)),
        duplicate_window_secs: 5,
    };
    paper::configure(&f.app, &meta(), &p, acct, None, Some(limits)).await.unwrap();
    let m = meta();
    let place = |r: OrderRequest| paper::place(&f.app, &m, &p, acct, r);
    // 15 × 70,000 = 1,050,000 > 1,000,000.
    assert_eq!(refused(&place(limit(SAMSUNG, "buy", 70_000, 15)).await.unwrap()), "max_order_value");
    // Confirming does not lift a limit.
    let big = OrderRequest { confirm: true, ..limit(SAMSUNG, "buy", 70_000, 15) };
    assert_eq!(refused(&place(big).await.unwrap()), "max_order_value");
    // 8 × 70,000 = 560,000 > 500,000: asked to confirm, nothing stored; confirmed, accepted.
    assert_eq!(refused(&place(limit(SAMSUNG, "buy", 70_000, 8)).await.unwrap()), "confirm_large");
    accepted(place(OrderRequest { confirm: true, ..limit(SAMSUNG, "buy", 70_000, 8) }).await.unwrap());
    // The same small order twice within five seconds: the second needs a confirmation.
    accepted(place(limit(KAKAO, "buy", 50_000, 1)).await.unwrap());
    f.clock.advance_ms(3_000);
    assert_eq!(refused(&place(limit(KAKAO, "buy", 50_000, 1)).await.unwrap()), "confirm_duplicate");
    f.clock.advance_ms(3_000);
    accepted(place(limit(KAKAO, "buy", 50_000, 1)).await.unwrap());
    accepted(place(limit(KAKAO, "buy", 49_950, 1)).await.unwrap());
    // Four accepted today: the fifth is over the daily count.
    assert_eq!(refused(&place(limit(KAKAO, "buy", 49_900, 1)).await.unwrap()), "max_orders_per_day");
    paper::configure(&f.app, &meta(), &p, acct, None, Some(Limits { max_orders_per_day: None, ..limits }))
        .await
        .unwrap();
    // The owner's halt, then the site's (an investor may not set it).
    paper::set_halt(&f.app, &meta(), &p, acct, true).await.unwrap();
    assert_eq!(refused(&place(limit(KAKAO, "buy", 49_900, 1)).await.unwrap()), "account_halted");
    paper::set_halt(&f.app, &meta(), &p, acct, false).await.unwrap();
    assert!(matches!(paper::set_site_halt(&f.app, &meta(), &p, true).await, Err(AppError::Forbidden(_))));
    paper::set_site_halt(&f.app, &meta(), &admin, true).await.unwrap();
    assert_eq!(refused(&place(limit(KAKAO, "sell", 49_900, 1)).await.unwrap()), "site_halted");
    paper::set_site_halt(&f.app, &meta(), &admin, false).await.unwrap();
    accepted(place(limit(KAKAO, "buy", 49_850, 1)).await.unwrap());
    // Refusals are stored as rejected orders with their reason, and every one is audited.
    let all =
        paper::orders(&f.app, &p, acct, OrderFilter::All, haechi_app::paging::Paging::new(None, Some(200)).unwrap())
            .await
            .unwrap();
    let reasons: Vec<&str> = all.items.iter().filter_map(|o| o.reason.as_deref()).collect();
    for code in ["max_order_value", "max_orders_per_day", "account_halted", "site_halted"] {
        assert!(reasons.contains(&code), "{code} not stored: {reasons:?}");
    }
    let audited = |event: &str| {
        let q = LogQuery { kind: Some(event.into()), per_page: 100, ..LogQuery::default() };
        let db = f.app.db().clone();
        async move { db.audit_entries(&q).await.unwrap().total }
    };
    assert_eq!(audited("paper_order_rejected").await, 5);
    assert_eq!(audited("paper_order_unconfirmed").await, 2);
    assert_eq!(audited("paper_order_placed").await, 5);
    assert_eq!(audited("paper_account_halted").await, 1);
    assert_eq!(audited("site_trading_halted").await, 1);
}

#[tokio::test]
async fn the_daily_loss_limit_halts_buys_until_the_next_session_or_a_fresh_sign_in() {
    let f = fixture().await;
    let p = user(&f.app, "loss@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "손실", 10_000_000).await.unwrap().id;
    accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "buy", 70_000, 100)).await.unwrap());
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 4, 70_000, 1_000, 1)).await.unwrap(), 1);
    let limits = Limits { daily_loss_limit: Some(Won(200_000)), duplicate_window_secs: 0, ..Limits::default() };
    paper::configure(&f.app, &meta(), &p, acct, None, Some(limits)).await.unwrap();
    // The price falls 3,000 won: 100 shares lose 300,000 (plus the commission paid).
    let quote = |last: i64, session: i32| haechi_db::QuoteRow {
        ticker: SAMSUNG.into(),
        session,
        prev_close: 70_000,
        last,
        volume: 0,
        updated_at: 0,
    };
    f.app.db().upsert_quotes(&[quote(67_000, 20240104)]).await.unwrap();
    let m = meta();
    let buy = || paper::place(&f.app, &m, &p, acct, limit(KAKAO, "buy", 50_000, 1));
    assert_eq!(refused(&buy().await.unwrap()), "daily_loss_halt");
    // Once tripped, the halt holds for the session even if the price comes back.
    f.app.db().upsert_quotes(&[quote(70_000, 20240104)]).await.unwrap();
    assert_eq!(refused(&buy().await.unwrap()), "daily_loss_halt");
    let snap = paper::snapshot(&f.app, &p, acct).await.unwrap();
    assert_eq!(snap.summary.account.loss_halt_session.as_deref(), Some("2024-01-04"));
    // Selling out of it stays possible.
    accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "sell", 67_000, 10)).await.unwrap());
    // Lifting it needs the password again.
    let wrong = Reauth { password: "not the password!", totp_code: None, recovery_code: None };
    assert!(paper::lift_loss_halt(&f.app, &meta(), &p, acct, wrong).await.is_err());
    assert_eq!(refused(&buy().await.unwrap()), "daily_loss_halt");
    let right = Reauth { password: PASSWORD, totp_code: None, recovery_code: None };
    paper::lift_loss_halt(&f.app, &meta(), &p, acct, right).await.unwrap();
    accepted(buy().await.unwrap());
    // The next session measures from its own opening equity (the close just recorded).
    let acct2 = paper::open(&f.app, &meta(), &p, "손실2", 10_000_000).await.unwrap().id;
    accepted(paper::place(&f.app, &meta(), &p, acct2, limit(SAMSUNG, "buy", 70_000, 100)).await.unwrap());
    paper::apply_print(&f.app, &print(SAMSUNG, 4, 70_000, 1_000, 2)).await.unwrap();
    paper::configure(&f.app, &meta(), &p, acct2, None, Some(limits)).await.unwrap();
    f.app.db().upsert_quotes(&[quote(67_000, 20240104)]).await.unwrap();
    let buy2 = || paper::place(&f.app, &m, &p, acct2, limit(KAKAO, "buy", 50_000, 1));
    assert_eq!(refused(&buy2().await.unwrap()), "daily_loss_halt");
    paper::close_session(&f.app, d(4)).await.unwrap();
    f.clock.set_ms(at(5, 9, 30));
    accepted(buy2().await.unwrap());
}

#[tokio::test]
async fn prints_fill_in_price_time_priority_and_a_replayed_print_fills_nothing_twice() {
    let f = fixture().await;
    let p = user(&f.app, "match@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "체결", 10_000_000).await.unwrap().id;
    let m = meta();
    let place = |r: OrderRequest| paper::place(&f.app, &m, &p, acct, r);
    let a = accepted(place(limit(SAMSUNG, "buy", 70_000, 30)).await.unwrap());
    let b = accepted(place(limit(SAMSUNG, "buy", 70_100, 30)).await.unwrap());
    let c = accepted(place(market(SAMSUNG, "buy", 30)).await.unwrap());
    let low = accepted(place(limit(SAMSUNG, "buy", 69_000, 30)).await.unwrap());
    // 70,000 reaches a, b and the market order, not 69,000; 70 shares go to c, b, then 10 to a.
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 4, 70_000, 70, 1)).await.unwrap(), 3);
    // The same print again (the matcher restarted after a crash): nothing more.
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 4, 70_000, 70, 1)).await.unwrap(), 0);
    let get = |id| paper::order(&f.app, &p, id);
    let (a, b, c, low) =
        (get(a.id).await.unwrap(), get(b.id).await.unwrap(), get(c.id).await.unwrap(), get(low.id).await.unwrap());
    assert_eq!((c.filled, c.state.as_str()), (30, "filled"));
    assert_eq!((b.filled, b.state.as_str()), (30, "filled"));
    assert_eq!((a.filled, a.state.as_str()), (10, "partially_filled"));
    assert_eq!((low.filled, low.state.as_str()), (0, "accepted"));
    let fills = f.app.db().all_paper_fills(acct).await.unwrap();
    // A limit buy fills at its limit; the market order at the print.
    let price_of = |id| fills.iter().find(|x| x.order_id == id).unwrap().price;
    assert_eq!((price_of(a.id), price_of(b.id), price_of(c.id)), (70_000, 70_100, 70_000));
    // Cash = start − Σ (amount + commission); the position is the sum of its fills.
    let snap = paper::snapshot(&f.app, &p, acct).await.unwrap();
    let spent: i64 = fills.iter().map(|x| x.amount + x.commission).sum();
    assert_eq!(snap.summary.account.cash, 10_000_000 - spent);
    assert_eq!(snap.positions[0].quantity, 70);
    // Cancel frees the rest of a's reservation and all of low's; the close expires nothing left.
    paper::cancel(&f.app, &meta(), &p, a.id).await.unwrap();
    let modified = paper::modify(&f.app, &meta(), &p, low.id, Some(69_500), Some(5)).await.unwrap();
    let replacement = accepted(modified);
    assert_eq!(get(low.id).await.unwrap().state, "cancelled");
    paper::close_session(&f.app, d(4)).await.unwrap();
    assert_eq!(get(replacement.id).await.unwrap().state, "expired");
    let snap = paper::snapshot(&f.app, &p, acct).await.unwrap();
    assert_eq!(snap.summary.account.reserved, 0);
    let equity = paper::equity(&f.app, &p, acct).await.unwrap();
    assert_eq!(equity.len(), 1);
    assert_eq!(equity[0].equity, snap.summary.account.cash + 70 * 70_000);
    // Performance uses the run report's definitions: one session, its return from the start.
    let (sessions, perf) = paper::performance(&f.app, &p, acct).await.unwrap();
    assert_eq!(sessions, 1);
    assert!((perf.total_return - (equity[0].equity as f64 / 10_000_000.0 - 1.0)).abs() < 1e-12);
    assert!(perf.max_drawdown <= 0.0);
    // Selling: the tax follows the settlement date's schedule (KOSPI 2024: 0.03% + 0.15%).
    f.clock.set_ms(at(5, 9, 30));
    accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "sell", 71_000, 70)).await.unwrap());
    assert_eq!(paper::apply_print(&f.app, &print(SAMSUNG, 5, 71_000, 1_000, 1)).await.unwrap(), 1);
    let sale = f.app.db().all_paper_fills(acct).await.unwrap().pop().unwrap();
    assert_eq!(sale.amount, 4_970_000);
    assert_eq!(sale.tax, 4_970_000 * 18 / 10_000);
    assert_eq!(sale.settlement_date, 20240109, "T+2 skips the weekend");
    assert!(paper::positions(&f.app, &p, acct).await.unwrap().is_empty());
    // The run report of the account: the same figures, and the round trip the fills make.
    paper::close_session(&f.app, d(5)).await.unwrap();
    let r = paper::report(&f.app, &p, acct).await.unwrap();
    let equity = paper::equity(&f.app, &p, acct).await.unwrap();
    assert_eq!(r.scenario.strategy.name(), "manual");
    assert_eq!(r.equity_curve.len(), 2);
    assert_eq!(r.summary.final_equity.get(), equity[1].equity);
    let (_, perf) = paper::performance(&f.app, &p, acct).await.unwrap();
    assert!((r.summary.returns.total_return - perf.total_return).abs() < 1e-12);
    assert_eq!(r.summary.trade_count, 4, "three buys and the sale");
    assert_eq!(r.trades.len(), 1, "one round trip: 70 shares bought on the 4th, sold on the 5th");
    assert_eq!((r.trades[0].quantity, r.trades[0].ticker.as_str()), (70, SAMSUNG));
    let snap = paper::snapshot(&f.app, &p, acct).await.unwrap();
    assert_eq!(r.summary.commissions.get(), snap.summary.account.commissions);
    assert!(r.positions.is_empty());
}

#[tokio::test]
async fn accounts_and_orders_are_their_owners_alone() {
    let f = fixture().await;
    let owner = user(&f.app, "owner@example.com", Role::Investor).await;
    let other = user(&f.app, "other@example.com", Role::Investor).await;
    let auditor = user(&f.app, "auditor@example.com", Role::Auditor).await;
    let acct = paper::open(&f.app, &meta(), &owner, "내 계좌", 5_000_000).await.unwrap().id;
    let o = accepted(paper::place(&f.app, &meta(), &owner, acct, limit(SAMSUNG, "buy", 70_000, 1)).await.unwrap());
    assert!(matches!(paper::snapshot(&f.app, &other, acct).await, Err(AppError::NotFound)));
    assert!(matches!(paper::order(&f.app, &other, o.id).await, Err(AppError::NotFound)));
    assert!(matches!(paper::cancel(&f.app, &meta(), &other, o.id).await, Err(AppError::NotFound)));
    let r = paper::place(&f.app, &meta(), &other, acct, limit(SAMSUNG, "buy", 70_000, 1)).await;
    assert!(matches!(r, Err(AppError::NotFound)), "{r:?}");
    assert!(matches!(paper::reset(&f.app, &meta(), &other, acct, None).await, Err(AppError::NotFound)));
    assert!(paper::list(&f.app, &other).await.unwrap().is_empty());
    // Auditors review; they do not trade.
    assert!(matches!(paper::open(&f.app, &meta(), &auditor, "x", 5_000_000).await, Err(AppError::Forbidden(_))));
    // Bad input names its field, and stores nothing.
    let Err(AppError::Invalid(p)) = paper::open(&f.app, &meta(), &owner, " ", 10).await else { panic!() };
    let fields: Vec<&str> = p.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, ["name", "cash"]);
    let bad = OrderRequest { side: "short".into(), ..limit("12345", "x", -5, 0) };
    let Err(AppError::Invalid(p)) = paper::place(&f.app, &meta(), &owner, acct, bad).await else { panic!() };
    let fields: Vec<&str> = p.iter().map(|x| x.field.as_str()).collect();
    assert_eq!(fields, ["ticker", "side", "price", "quantity"]);
    let unknown = paper::place(&f.app, &meta(), &owner, acct, limit("999999", "buy", 1_000, 1)).await;
    let Err(AppError::Invalid(p)) = unknown else { panic!("{unknown:?}") };
    assert_eq!(p[0].field, "ticker");
    assert_eq!(
        paper::orders(&f.app, &owner, acct, OrderFilter::All, haechi_app::paging::Paging::new(None, None).unwrap())
            .await
            .unwrap()
            .total,
        1
    );
}

#[tokio::test]
async fn a_replayed_session_fills_orders_and_records_the_close() {
    let f = fixture().await;
    let p = user(&f.app, "replay@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "재생", 10_000_000).await.unwrap().id;
    let opts = haechi_app::market_replay::ReplayOptions {
        session: std::time::Duration::from_millis(400),
        steps: 8,
        sessions_back: 2,
    };
    // The replay starts two sessions before the end: the 4th.
    let session = haechi_app::market_replay::prime(&f.app, &opts).await.unwrap();
    assert_eq!(session, d(4));
    let view = paper::market_time(&f.app).await.unwrap();
    assert_eq!((view.mode, view.order_session), ("replay", d(4)));
    let m = accepted(paper::place(&f.app, &meta(), &p, acct, market(SAMSUNG, "buy", 10)).await.unwrap());
    // Below the day's low (68,600): stays open and expires at the close.
    let never = accepted(paper::place(&f.app, &meta(), &p, acct, limit(SAMSUNG, "buy", 60_000, 10)).await.unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(haechi_app::market_replay::run(f.app.clone(), opts, stop_rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while paper::equity(&f.app, &p, acct).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the replayed session never closed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    task.await.unwrap().unwrap();
    let m = paper::order(&f.app, &p, m.id).await.unwrap();
    assert_eq!((m.filled, m.state.as_str()), (10, "filled"));
    // The opening print is the day's open.
    assert_eq!(f.app.db().all_paper_fills(acct).await.unwrap()[0].price, 70_000);
    assert_eq!(paper::order(&f.app, &p, never.id).await.unwrap().state, "expired");
    let eq = paper::equity(&f.app, &p, acct).await.unwrap();
    assert_eq!(eq[0].session, 20240104);
    // The replay has moved on to the 5th.
    assert_eq!(paper::market_time(&f.app).await.unwrap().order_session, d(5));
}

/// A closed session queues a guard scan of each account; the scan of a concentrated account
/// raises a critical concentration event (on that account), scores it, and a second scan of the
/// same close folds into the event instead of raising another.
#[tokio::test]
async fn a_closed_session_queues_a_guard_scan_that_flags_a_concentrated_account() {
    let f = fixture().await;
    let p = user(&f.app, "guard@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "집중", 10_000_000).await.unwrap().id;
    let opts = haechi_app::market_replay::ReplayOptions {
        session: std::time::Duration::from_millis(400),
        steps: 8,
        sessions_back: 2,
    };
    haechi_app::market_replay::prime(&f.app, &opts).await.unwrap();
    // 100 × 70,000 of 10,000,000: 70% in one name.
    accepted(paper::place(&f.app, &meta(), &p, acct, market(SAMSUNG, "buy", 100)).await.unwrap());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(haechi_app::market_replay::run(f.app.clone(), opts, stop_rx));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while paper::equity(&f.app, &p, acct).await.unwrap().is_empty() {
        assert!(std::time::Instant::now() < deadline, "the replayed session never closed");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let _ = stop_tx.send(true);
    task.await.unwrap().unwrap();
    let queued = f.app.queue().stats(haechi_jobs::queues::GUARD).await.unwrap();
    assert!(queued.pending >= 1, "{queued:?}");
    // What the worker runs for that job.
    let scan = haechi_app::guard::scan_paper_account(&f.app, &meta(), acct, d(4)).await.unwrap();
    assert_eq!(scan.new_events.len(), 1, "{scan:?}");
    let risk = haechi_app::guard::risk(&f.app, &p).await.unwrap();
    let e = &risk.events[0];
    assert_eq!((e.kind.as_str(), e.severity.as_str()), ("concentration", "critical"));
    assert_eq!(e.subject, format!("account:{acct}"));
    assert!((e.evidence["portfolio.max_weight"] - 0.7).abs() < 0.01, "{e:?}");
    assert_eq!(risk.components["portfolio"], 60);
    assert_eq!(risk.score, 60);
    let again = haechi_app::guard::scan_paper_account(&f.app, &meta(), acct, d(4)).await.unwrap();
    assert!(again.new_events.is_empty());
    assert_eq!(haechi_app::guard::risk(&f.app, &p).await.unwrap().events[0].seen, 2);
    // Another user sees none of it, and cannot stress the account.
    let other = user(&f.app, "other@example.com", Role::Investor).await;
    assert!(haechi_app::guard::risk(&f.app, &other).await.unwrap().events.is_empty());
    use haechi_app::guard::{Shock, StressScenario, stress};
    let gap = StressScenario::Shock(Shock::MarketGap { pct: -0.1 });
    assert!(matches!(stress(&f.app, &other, acct, gap.clone()).await, Err(AppError::NotFound)));
    // A 10% gap takes 10% of the 100 shares' value; the cash stays.
    let r = stress(&f.app, &p, acct, gap).await.unwrap();
    let shares = r.result.positions[0].value_before;
    assert_eq!(r.result.positions[0].ticker, SAMSUNG);
    assert_eq!(r.result.equity_before - r.result.equity_after, shares / 10);
    // A replay needs the index over the window, which this market lacks: the field says so.
    let e = stress(&f.app, &p, acct, StressScenario::Replay("2022".into())).await.unwrap_err();
    let AppError::Invalid(problems) = e else { panic!("{e:?}") };
    assert_eq!(problems[0].field, "replay");
    let e = stress(&f.app, &p, acct, StressScenario::Replay("1929".into())).await.unwrap_err();
    assert!(matches!(e, AppError::Invalid(ref p) if p[0].message.contains("unknown replay")), "{e:?}");
}

/// 1,000 orders from 50 concurrent clients on one account, with prints matching meanwhile: the
/// ledger holds (cash ≥ 0, reserved = Σ open buys' reservations, each position = Σ its fills,
/// each holding's promised shares = Σ open sells, cash = start − buys + sells, no fill twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_concurrent_orders_keep_the_ledger() {
    let f = fixture().await;
    let p = user(&f.app, "load@example.com", Role::Investor).await;
    let acct = paper::open(&f.app, &meta(), &p, "부하", 100_000_000).await.unwrap().id;
    let limits = Limits { duplicate_window_secs: 0, max_orders_per_day: None, ..Limits::default() };
    paper::configure(&f.app, &meta(), &p, acct, None, Some(limits)).await.unwrap();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let printer = {
        let (app, done) = (f.app.clone(), done.clone());
        tokio::spawn(async move {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let (t, px) =
                    if n % 2 == 0 { (SAMSUNG, 69_800 + (n % 5) * 100) } else { (KAKAO, 49_800 + (n % 5) * 50) };
                paper::apply_print(&app, &print(t, 4, px, 25, n as u32)).await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
        })
    };
    let mut clients = Vec::new();
    for c in 0..50_i64 {
        let (app, p) = (f.app.clone(), p.clone());
        clients.push(tokio::spawn(async move {
            let mut accepted = 0;
            for i in 0..20_i64 {
                let k = c * 20 + i;
                let t = if k % 2 == 0 { SAMSUNG } else { KAKAO };
                let base = if t == SAMSUNG { 70_000 } else { 50_000 };
                // One tick either side of the base: 100 won in both names' bands at 50,000+.
                let tick = 100;
                let req = match k % 5 {
                    0 => market(t, "buy", 1 + k % 7),
                    1 | 2 => limit(t, "buy", base + (k % 3 - 1) * tick, 1 + k % 9),
                    _ => limit(t, "sell", base + (k % 3 - 1) * tick, 1 + k % 4),
                };
                match paper::place(&app, &meta(), &p, acct, req).await.unwrap() {
                    Placed::Accepted(o) => {
                        accepted += 1;
                        if k % 7 == 0 {
                            // Some orders are cancelled at once (a fill may win the race).
                            match paper::cancel(&app, &meta(), &p, o.id).await {
                                Ok(_) | Err(AppError::Conflict(_)) => {}
                                Err(e) => panic!("{e:?}"),
                            }
                        }
                    }
                    // Sells beyond the shares held, buys beyond the cash left: refused, never overdrawn.
                    Placed::Rejected { code, .. } => {
                        assert!(["insufficient_shares", "insufficient_cash"].contains(&code), "{code}");
                    }
                    Placed::NeedsConfirmation { code, .. } => panic!("{code}"),
                }
            }
            accepted
        }));
    }
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    printer.await.unwrap();
    assert!(total > 500, "only {total} accepted");
    let db = f.app.db();
    let account = db.paper_account(acct).await.unwrap().unwrap();
    let orders = db.paper_orders(acct, OrderFilter::All, 0, 2_000).await.unwrap();
    assert_eq!(orders.total, 1_000);
    let fills = db.all_paper_fills(acct).await.unwrap();
    assert!(!fills.is_empty());
    assert!(account.cash >= 0 && account.reserved >= 0 && account.reserved <= account.cash);
    let open_reserved: i64 =
        orders.items.iter().filter(|o| haechi_db::OPEN_STATES.contains(&o.state.as_str())).map(|o| o.reserved).sum();
    assert_eq!(account.reserved, open_reserved, "reserved = Σ open orders' reservations");
    let flow: i64 = fills
        .iter()
        .map(|x| if x.side == "buy" { -(x.amount + x.commission) } else { x.amount - x.commission - x.tax })
        .sum();
    assert_eq!(account.cash, 100_000_000 + flow, "cash = start − buys + sells");
    let mut held: BTreeMap<String, i64> = BTreeMap::new();
    let mut per_order: BTreeMap<i64, i64> = BTreeMap::new();
    let mut keys = std::collections::BTreeSet::new();
    for x in &fills {
        *held.entry(x.ticker.clone()).or_default() += if x.side == "buy" { x.quantity } else { -x.quantity };
        *per_order.entry(x.order_id).or_default() += x.quantity;
        assert!(keys.insert((x.order_id, x.print_key.clone())), "a print filled an order twice");
    }
    for o in &orders.items {
        assert_eq!(o.filled, per_order.get(&o.id).copied().unwrap_or(0), "order {} filled = Σ its fills", o.id);
        assert!(o.filled <= o.quantity);
    }
    let holdings = db.paper_holdings(acct).await.unwrap();
    for t in [SAMSUNG, KAKAO] {
        let h = holdings.iter().find(|h| h.ticker == t);
        assert_eq!(h.map_or(0, |h| h.quantity), held.get(t).copied().unwrap_or(0), "{t}: position = Σ fills");
        let promised: i64 = orders
            .items
            .iter()
            .filter(|o| o.ticker == t && o.side == "sell" && haechi_db::OPEN_STATES.contains(&o.state.as_str()))
            .map(|o| o.quantity - o.filled)
            .sum();
        assert_eq!(h.map_or(0, |h| h.reserved), promised, "{t}: promised shares = Σ open sells");
        assert!(h.is_none_or(|h| h.reserved <= h.quantity));
    }
}
