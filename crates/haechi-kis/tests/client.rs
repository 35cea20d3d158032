#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The REST client against the fake KIS server: tokens, pacing, retries, paging, orders, and the
//! real-money guard. Nothing here talks to KIS's own hosts.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use haechi_data::synth::SynthConfig;
use haechi_kis::fake::{FakeKis, FakeKisConfig, Fault, max_in_window};
use haechi_kis::limiter::{LocalLimiter, RateLimiter, RedisLimiter};
use haechi_kis::model::{OrderKind, OrderRequest, ReviseCancel, ReviseCancelRequest, Side};
use haechi_kis::token::MemoryTokenStore;
use haechi_kis::{Credentials, KisClient, KisConfig, KisEnv, KisError, codes};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn market() -> SynthConfig {
    SynthConfig { seed: 7, tickers: 5, from: d(2015, 1, 1), to: d(2024, 12, 31) }
}

async fn fake(env: KisEnv, tweak: impl FnOnce(&mut FakeKisConfig)) -> FakeKis {
    let mut cfg = FakeKisConfig::new(env, market());
    cfg.rate_limit = 10_000;
    tweak(&mut cfg);
    FakeKis::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

fn config(fake: &FakeKis, env: KisEnv, key: &str) -> KisConfig {
    let mut cfg = KisConfig::new(env, Credentials::new(key, "secret-of-the-test").unwrap());
    cfg.base_url = fake.base_url();
    cfg.ws_url = fake.ws_url();
    cfg.account = Some("50012345-01".parse().unwrap());
    cfg.rate_per_sec = 5_000.0;
    cfg.retry_base = Duration::from_millis(10);
    cfg.rate_limit_pause = Duration::from_millis(50);
    cfg
}

fn client(fake: &FakeKis, env: KisEnv) -> KisClient {
    KisClient::builder(config(fake, env, "PSTESTKEY")).build().unwrap()
}

#[tokio::test]
async fn paging_assembles_a_ten_year_daily_history() {
    let fake = fake(KisEnv::Mock, |_| {}).await;
    let c = client(&fake, KisEnv::Mock);
    let ticker = fake.tickers()[0].clone();
    let bars = c.daily_history(&ticker, d(2015, 1, 1), d(2024, 12, 31)).await.unwrap();
    let store = fake.market();
    let slot = store.slot_of(haechi_core::Ticker::parse(&ticker).unwrap()).unwrap();
    let expected: Vec<NaiveDate> =
        (0..store.n_days()).filter(|i| store.raw(slot, *i).is_some()).map(|i| store.dates()[i]).collect();
    assert!(expected.len() > 2_000, "ten years of sessions: {}", expected.len());
    assert_eq!(bars.iter().map(|b| b.date).collect::<Vec<_>>(), expected, "every session once, oldest first");
    let i = store.dates().iter().position(|x| *x == bars[1234].date).unwrap();
    assert_eq!(bars[1234].close, i64::from(store.raw(slot, i).unwrap().close));
    // 100 bars a call: the fewest calls that can carry them.
    let calls = fake.arrivals().iter().filter(|a| a.tr_id == "FHKST03010100").count();
    assert_eq!(calls, expected.len().div_ceil(100) + usize::from(expected.len().is_multiple_of(100)));
    // Weekly bars come from the same TR.
    let weekly = c.chart_page(&ticker, d(2024, 1, 1), d(2024, 12, 31), haechi_kis::model::Period::Week).await.unwrap();
    assert!((50..=53).contains(&weekly.bars.len()), "{}", weekly.bars.len());
    // Ten years of weeks take six pages, and come back whole.
    let weeks =
        c.period_history(&ticker, d(2015, 1, 1), d(2024, 12, 31), haechi_kis::model::Period::Week).await.unwrap();
    assert!((515..=525).contains(&weeks.len()), "{}", weeks.len());
    assert!(weeks.windows(2).all(|w| w[0].date < w[1].date));
    let months =
        c.period_history(&ticker, d(2015, 1, 1), d(2024, 12, 31), haechi_kis::model::Period::Month).await.unwrap();
    assert_eq!(months.len(), 120);
}

#[tokio::test]
async fn a_rate_limit_answer_is_retried_after_a_pause() {
    let fake = fake(KisEnv::Mock, |_| {}).await;
    let c = client(&fake, KisEnv::Mock);
    let ticker = fake.tickers()[0].clone();
    c.quote(&ticker).await.unwrap(); // token and warm connection
    fake.inject(Fault::RateLimit, 2);
    let q = c.quote(&ticker).await.unwrap();
    assert!(q.price > 0);
    let codes_seen: Vec<String> = fake.arrivals().iter().skip(1).map(|a| a.code.clone()).collect();
    assert_eq!(codes_seen, [codes::RATE_LIMIT, codes::RATE_LIMIT, "20310000"]);
    let gaps: Vec<Duration> = fake.arrivals().windows(2).skip(1).map(|w| w[1].at - w[0].at).collect();
    assert!(gaps.iter().all(|g| *g >= Duration::from_millis(35)), "paused after each rate-limit answer: {gaps:?}");

    // A maintenance page (503, HTML) is transient too.
    fake.inject(Fault::Unavailable, 1);
    assert!(c.quote(&ticker).await.is_ok());

    // Past the retry budget the error is KIS's own, typed.
    fake.inject(Fault::RateLimit, 10);
    let err = c.quote(&ticker).await.unwrap_err();
    assert!(err.is_rate_limit(), "{err}");
    assert!(matches!(&err, KisError::Api { msg_cd, status: 500, .. } if msg_cd == codes::RATE_LIMIT), "{err:?}");
}

#[tokio::test]
async fn an_expired_token_is_reissued_once_and_the_call_retried() {
    let fake = fake(KisEnv::Mock, |f| f.min_issue_interval = Duration::from_millis(300)).await;
    let mut cfg = config(&fake, KisEnv::Mock, "PSEXPIRY");
    cfg.min_issue_interval = Duration::from_millis(300);
    let c = KisClient::builder(cfg).build().unwrap();
    let ticker = fake.tickers()[1].clone();
    c.quote(&ticker).await.unwrap();
    assert_eq!(fake.issuances(), 1);
    fake.expire_tokens();
    let q = c.quote(&ticker).await.unwrap();
    assert!(q.price > 0);
    assert_eq!(fake.issuances(), 2, "exactly one re-issue");
    let codes_seen: Vec<String> = fake.arrivals().iter().map(|a| a.code.clone()).collect();
    assert_eq!(codes_seen, ["20310000", codes::TOKEN_EXPIRED, "20310000"]);

    // A token refused again right after re-issuing is not re-issued in a loop: one retry, then
    // KIS's error. (KIS hands back the same token within six hours unless it really expired.)
    tokio::time::sleep(Duration::from_millis(350)).await;
    let before = fake.arrivals().len();
    fake.inject(Fault::ExpiredToken, 5);
    let err = c.quote(&ticker).await.unwrap_err();
    assert!(err.is_token_rejected(), "{err}");
    assert_eq!(fake.arrivals().len() - before, 2, "the call and one retry");
    assert_eq!(fake.issuances(), 2);
}

#[tokio::test]
async fn clients_sharing_a_store_share_one_token() {
    let fake = fake(KisEnv::Mock, |_| {}).await;
    let store = MemoryTokenStore::new();
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = KisClient::builder(config(&fake, KisEnv::Mock, "PSSHARED")).token_store(store.clone()).build().unwrap();
        let t = fake.tickers()[2].clone();
        tasks.push(tokio::spawn(async move { c.quote(&t).await.map(|q| q.price) }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap() > 0);
    }
    assert_eq!(fake.issuances(), 1, "six clients, one issuance");
}

/// Four workers through one shared limiter: the server sees them at the configured rate, never
/// above KIS's limit, and never answers "too fast". With `HAECHI_TEST_REDIS_URL` the limiter is
/// Redis, as between processes.
#[tokio::test]
async fn four_concurrent_workers_stay_under_the_configured_rate() {
    const RATE: f64 = 10.0;
    // The server allows one more than the client's rate, as KIS allows 20 against our 19.
    let fake = fake(KisEnv::Real, |f| f.rate_limit = RATE as u32 + 1).await;
    let limiter: Arc<dyn RateLimiter> = match std::env::var("HAECHI_TEST_REDIS_URL") {
        Ok(url) => RedisLimiter::connect(&url, &format!("test-{}", uuid::Uuid::new_v4()), RATE).await.unwrap(),
        Err(_) => LocalLimiter::new(RATE),
    };
    let store = MemoryTokenStore::new();
    let mut workers = Vec::new();
    for w in 0..4 {
        let mut cfg = config(&fake, KisEnv::Real, "PSRATE");
        cfg.rate_per_sec = RATE;
        let c = KisClient::builder(cfg).token_store(store.clone()).limiter(limiter.clone()).build().unwrap();
        let tickers = fake.tickers();
        workers.push(tokio::spawn(async move {
            for i in 0..10 {
                c.quote(&tickers[(w + i) % tickers.len()]).await.unwrap();
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let arrivals = fake.arrivals();
    assert_eq!(arrivals.len(), 40);
    assert_eq!(fake.rate_limited(), 0, "never over KIS's limit");
    let span = (arrivals[39].at - arrivals[0].at).as_secs_f64();
    let measured = 39.0 / span;
    let busiest = max_in_window(&arrivals, Duration::from_secs(1));
    eprintln!(
        "4 workers: {measured:.2} req/s measured over {span:.2} s, busiest 1-s window {busiest} (configured {RATE}/s)"
    );
    assert!(measured <= RATE * 1.02, "{measured}");
    assert!(measured >= RATE * 0.9, "{measured}");
    assert!(busiest <= RATE as usize + 1, "{busiest}");
}

#[tokio::test]
async fn real_money_orders_need_the_opt_in_and_a_cap_and_are_refused_before_any_request() {
    let fake = fake(KisEnv::Real, |_| {}).await;
    let ticker = fake.tickers()[0].clone();
    let price = fake.market().last_close(0, fake.market().n_days() - 1).unwrap().get();
    let order = OrderRequest { ticker: ticker.clone(), side: Side::Buy, kind: OrderKind::Limit { price }, quantity: 1 };

    let plain = client(&fake, KisEnv::Real);
    let err = plain.order(&order).await.unwrap_err();
    assert!(matches!(err, KisError::RealOrderRefused(_)), "{err}");
    assert!(err.to_string().contains("HAECHI_KIS_ALLOW_REAL_ORDERS"), "{err}");

    let mut opted = config(&fake, KisEnv::Real, "PSTESTKEY");
    opted.allow_real_orders = true;
    let no_cap = KisClient::builder(opted.clone()).build().unwrap();
    assert!(
        matches!(no_cap.order(&order).await, Err(KisError::RealOrderRefused(m)) if m.contains("HAECHI_KIS_MAX_ORDER_VALUE"))
    );
    opted.max_order_value = Some(price - 1);
    let capped = KisClient::builder(opted.clone()).build().unwrap();
    assert!(matches!(capped.order(&order).await, Err(KisError::RealOrderRefused(m)) if m.contains("above the cap")));
    let market_order = OrderRequest { kind: OrderKind::Market, ..order.clone() };
    assert!(matches!(capped.order(&market_order).await, Err(KisError::RealOrderRefused(_))));
    assert!(fake.arrivals().is_empty(), "nothing reached the server");
    assert_eq!(fake.issuances(), 0, "not even a token was asked for");

    opted.max_order_value = Some(price * 2);
    let allowed = KisClient::builder(opted).build().unwrap();
    let ack = allowed.order(&order).await.unwrap();
    assert_eq!(ack.order_no.len(), 10);
    assert_eq!(fake.arrivals().len(), 1);
    assert_eq!(fake.arrivals()[0].tr_id, "TTTC0012U");
}

#[tokio::test]
async fn mock_orders_balance_fills_and_cancel_round_trip() {
    let fake = fake(KisEnv::Mock, |f| f.balance_page_rows = 2).await;
    let c = client(&fake, KisEnv::Mock);
    let tickers = fake.tickers();
    for t in &tickers[..3] {
        let ack = c
            .order(&OrderRequest { ticker: t.clone(), side: Side::Buy, kind: OrderKind::Market, quantity: 3 })
            .await
            .unwrap();
        assert_eq!(ack.branch, "00950");
    }
    assert!(fake.arrivals().iter().all(|a| a.tr_id == "VTTC0012U"));
    // Three holdings over two pages of two: the cursor loop assembles them.
    let bal = c.balance().await.unwrap();
    assert_eq!(bal.holdings.len(), 3);
    assert!(bal.holdings.iter().all(|h| h.quantity == 3 && h.price > 0));
    let spent: i64 = bal.holdings.iter().map(|h| h.purchase_amount).sum();
    assert_eq!(bal.summary.cash, 100_000_000 - spent);
    assert_eq!(fake.arrivals().iter().filter(|a| a.tr_id == "VTTC8434R").count(), 2);

    // A buy limit far below the market rests, and can be cancelled.
    let low =
        OrderRequest { ticker: tickers[0].clone(), side: Side::Buy, kind: OrderKind::Limit { price: 1 }, quantity: 5 };
    let resting = c.order(&low).await.unwrap();
    let cancel = ReviseCancelRequest {
        branch: resting.branch.clone(),
        original_order_no: resting.order_no.clone(),
        action: ReviseCancel::Cancel,
        quantity: None,
    };
    c.revise_cancel(&cancel).await.unwrap();
    // Orders are dated by the KST day they arrived.
    let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
    let orders = c.daily_orders(today - chrono::Duration::days(1), today).await.unwrap();
    assert_eq!(orders.len(), 4);
    let o = orders.iter().find(|o| o.order_no == resting.order_no).unwrap();
    assert_eq!((o.filled_quantity, o.remaining, o.cancelled), (0, 0, true));
    // Cancelling again: KIS's business error, typed, not retried.
    let err = c.revise_cancel(&cancel).await.unwrap_err();
    assert!(matches!(&err, KisError::Api { status: 200, rt_cd, .. } if rt_cd == "1"), "{err:?}");

    let orderable = c.orderable(&tickers[0], OrderKind::Market).await.unwrap();
    assert_eq!(orderable.cash, bal.summary.cash);
    assert!(orderable.cash_only_quantity > 0);
    // Selling more than held is KIS's rejection, not a panic.
    let oversell = OrderRequest { ticker: tickers[1].clone(), side: Side::Sell, kind: OrderKind::Market, quantity: 99 };
    assert!(matches!(c.order(&oversell).await, Err(KisError::Api { .. })));
}

#[tokio::test]
async fn real_only_trs_are_refused_by_the_mock_environment_and_work_on_real() {
    let mock = fake(KisEnv::Mock, |_| {}).await;
    let ticker = mock.tickers()[0].clone();
    let err = client(&mock, KisEnv::Mock).stock_info(&ticker).await.unwrap_err();
    assert_eq!(err.code(), Some(codes::NOT_A_MOCK_TR), "{err}");

    let real = fake(KisEnv::Real, |_| {}).await;
    let c = client(&real, KisEnv::Real);
    let info = c.stock_info(&ticker).await.unwrap();
    assert_eq!(info.ticker, ticker);
    assert!(info.market().is_some());
    assert!(info.listed_on.is_some());
    let fin = c.financials(&ticker, haechi_kis::model::FinancePeriod::Annual).await.unwrap();
    assert_eq!(fin.len(), 5);
    assert!(fin[0].period > fin[4].period, "newest first");
    assert!(
        fin.iter().all(|f| f.revenue > 0.0 && f.total_assets > 0.0 && f.roe != 0.0),
        "three TRs merged: {:?}",
        fin[0]
    );
    let recent = c.recent_bars(&ticker, haechi_kis::model::Period::Day).await.unwrap();
    assert_eq!(recent.len(), 30);
    assert!(matches!(c.quote("999990").await, Err(KisError::UnknownTicker { .. })));
    assert!(matches!(c.quote("12345").await, Err(KisError::InvalidRequest { field: "ticker", .. })));
}

#[tokio::test]
async fn bad_credentials_are_kis_auth_errors() {
    let fake = fake(KisEnv::Mock, |_| {}).await;
    let mut cfg = config(&fake, KisEnv::Mock, "PSTESTKEY");
    cfg.credentials.app_secret = haechi_kis::Secret::new("with-a-newline\n");
    let err = KisClient::builder(cfg).build().unwrap().quote(&fake.tickers()[0]).await.unwrap_err();
    assert!(matches!(&err, KisError::Auth { error_code, status: 403, .. } if error_code == "EGW00105"), "{err:?}");
}

/// REST approval key → WebSocket session → trades on the internal stream, against one fake.
#[tokio::test]
async fn the_quote_feed_runs_on_approval_keys_from_the_rest_client() {
    let fake = fake(KisEnv::Mock, |f| f.ws.tick_interval = Duration::from_millis(20)).await;
    let c = client(&fake, KisEnv::Mock);
    let mut cfg = haechi_kis::ws::FeedConfig::new(fake.ws_url());
    cfg.reconnect_min = Duration::from_millis(100);
    let feed = haechi_kis::ws::QuoteFeed::start(cfg, vec![Arc::new(c)]);
    let mut trades = feed.trades();
    let tickers = fake.tickers();
    for t in &tickers[..2] {
        feed.subscribe(t).await.unwrap();
    }
    let mut seen = std::collections::HashSet::new();
    tokio::time::timeout(Duration::from_secs(5), async {
        while seen.len() < 2 {
            let t = trades.recv().await.unwrap();
            assert!(t.price > 0);
            seen.insert(t.ticker);
        }
    })
    .await
    .unwrap();
    assert_eq!(fake.ws().stats().registrations, 2);
    feed.shutdown().await;
}

/// `WsHubConfig::replay`: the fake plays its own daily bars as intraday sessions. A whole
/// session seen on the feed opens at the bar's open at 09:00, closes at its close at 15:30,
/// stays inside its range, and trades exactly its volume; the days follow the market's own.
#[tokio::test]
async fn the_fake_streams_its_daily_bars_as_intraday_sessions() {
    let replay = haechi_kis::fake::SessionReplay { session: Duration::from_millis(600), steps: 6, sessions_back: 50 };
    let fake = fake(KisEnv::Mock, |f| {
        f.ws.tick_interval = Duration::from_millis(10);
        f.ws.replay = Some(replay);
    })
    .await;
    let c = client(&fake, KisEnv::Mock);
    let mut cfg = haechi_kis::ws::FeedConfig::new(fake.ws_url());
    cfg.reconnect_min = Duration::from_millis(100);
    let feed = haechi_kis::ws::QuoteFeed::start(cfg, vec![Arc::new(c)]);
    let mut trades = feed.trades();
    let ticker = fake.tickers()[0].clone();
    feed.subscribe(&ticker).await.unwrap();
    // Trades by business date, until two whole sessions after the first (partial) one.
    let mut days: std::collections::BTreeMap<NaiveDate, Vec<haechi_kis::frame::Trade>> = Default::default();
    tokio::time::timeout(Duration::from_secs(20), async {
        while days.len() < 3 {
            let t = trades.recv().await.unwrap();
            days.entry(t.business_date).or_default().push(t);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no three sessions in 20 s: {:?}", days.keys().collect::<Vec<_>>()));
    feed.shutdown().await;
    let market = fake.market();
    let slot = market.slot_of(haechi_core::Ticker::parse(&ticker).unwrap()).unwrap();
    let dates: Vec<NaiveDate> = days.keys().copied().collect();
    // The second day seen was played whole: the first may have been joined mid-session.
    let (date, whole) = (dates[1], &days[&dates[1]]);
    let idx = market.dates().binary_search(&date).unwrap();
    assert_eq!(market.dates()[idx - 1], dates[0], "sessions follow the market's calendar");
    assert!(idx + 50 >= market.n_days(), "the replay plays the last 50 days");
    let bar = market.raw(slot, idx).unwrap();
    let times: Vec<String> = whole.iter().map(|t| t.time.format("%H:%M").to_string()).collect();
    assert_eq!(times, ["09:00", "10:35", "12:10", "13:45", "15:20", "15:30"]);
    assert_eq!(whole[0].price, i64::from(bar.open));
    assert_eq!(whole[5].price, i64::from(bar.close));
    assert!(whole.iter().all(|t| (i64::from(bar.low)..=i64::from(bar.high)).contains(&t.price)));
    assert_eq!(whole.iter().map(|t| t.volume).sum::<i64>(), i64::try_from(bar.volume).unwrap());
    assert_eq!(whole[5].acc_volume, i64::try_from(bar.volume).unwrap());
}
