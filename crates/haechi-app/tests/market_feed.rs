//! Paper orders matched on the fake KIS's `H0STCNT0` stream: the fake plays its daily bars as
//! intraday sessions (two seconds each), the KIS quote feed carries them, and the matcher
//! fills, expires and closes exactly as the bars allow. SQLite by default; MariaDB when
//! `HAECHI_TEST_MYSQL_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod common;

use chrono::NaiveDate;
use common::meta;
use haechi_app::market_feed::{self, FeedOptions, KisTrades};
use haechi_app::paging::Paging;
use haechi_app::paper::{self, OrderRequest, Placed};
use haechi_app::{App, AppSettings};
use haechi_core::Ticker;
use haechi_data::synth::SynthConfig;
use haechi_db::OrderFilter;
use haechi_kis::fake::{FakeKis, FakeKisConfig, SessionReplay};
use haechi_kis::{Credentials, KisClient, KisConfig, KisEnv};
use haechi_paper::session::Phase;
use std::sync::Arc;
use std::time::Duration;

const STEPS: u32 = 6;

fn limit(ticker: &str, price: i64, quantity: i64) -> OrderRequest {
    OrderRequest {
        ticker: ticker.into(),
        side: "buy".into(),
        kind: "limit".into(),
        price: Some(price),
        quantity,
        confirm: false,
        client_order_id: None,
    }
}

fn accepted(p: Placed) -> haechi_db::PaperOrderRow {
    match p {
        Placed::Accepted(o) => o,
        other => panic!("not accepted: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_fill_expire_and_close_on_the_fake_kis_stream() {
    let synth = SynthConfig {
        seed: 11,
        tickers: 6,
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
    };
    let replay = SessionReplay { session: Duration::from_secs(2), steps: STEPS, sessions_back: 30 };
    let mut cfg = FakeKisConfig::new(KisEnv::Real, synth);
    cfg.ws.tick_interval = Duration::from_millis(20);
    cfg.ws.replay = Some(replay);
    let fake = FakeKis::start(cfg, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();

    // The platform over the same market the fake serves.
    let platform = common::platform(&synth).await;
    let store = &platform.store;
    let app = App::new(platform.services.clone(), AppSettings::default());
    let p = common::investor(&app, "feed@example.com").await;
    let acct = paper::open(&app, &meta(), &p, "피드 계좌", 100_000_000).await.unwrap().id;

    // The session after the one the fake is playing: orders are placed for it before it opens,
    // early in the current one, so the feed is registered before the next one's opening print.
    let day = loop {
        let (day, step) = fake.ws().replay_position().unwrap();
        if step <= 1 {
            break day;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let n = store.n_days();
    assert!(day + 2 < n, "the replay started 30 days before the end, it is at {day} of {n}");
    let next = day + 1;
    let session = store.dates()[next];
    paper::set_market_state(&app, "feed", session, Phase::BeforeOpen, 0, 1).await.unwrap();
    let tradable: Vec<(Ticker, haechi_core::store::RawBar, haechi_core::Market)> = store
        .instruments()
        .iter()
        .enumerate()
        .filter_map(|(slot, i)| store.raw(slot, next).filter(|b| b.volume > 1_000).map(|b| (i.ticker, b, i.market)))
        .take(3)
        .collect();
    assert_eq!(tradable.len(), 3, "three names trade on {session}");
    let [(a_t, a_bar, _), (b_t, b_bar, _), (c_t, c_bar, c_market)] = [tradable[0], tradable[1], tradable[2]];
    let market_buy = OrderRequest { kind: "market".into(), price: None, ..limit(a_t.as_str(), 0, 10) };
    let m = accepted(paper::place(&app, &meta(), &p, acct, market_buy).await.unwrap());
    // At the day's low: the path touches it, so it fills there (or better, at the open).
    let at_low =
        accepted(paper::place(&app, &meta(), &p, acct, limit(b_t.as_str(), i64::from(b_bar.low), 7)).await.unwrap());
    // One tick under the low: never reached, expires at the close.
    let under = i64::from(c_bar.low) - haechi_core::krx::tick_size(session, c_market, i64::from(c_bar.low) - 1);
    let never = paper::place(&app, &meta(), &p, acct, limit(c_t.as_str(), under, 5)).await.unwrap();
    assert_eq!(m.session, haechi_jobs::market::day_number(session));

    // The matcher on the KIS feed, as `haechi market` runs it.
    let mut kis = KisConfig::new(KisEnv::Real, Credentials::new("PSFEEDTESTKEY", "secret-of-the-test").unwrap());
    kis.base_url = fake.base_url();
    kis.ws_url = fake.ws_url();
    let client = KisClient::builder(kis).build().unwrap();
    let mut feed_cfg = haechi_kis::ws::FeedConfig::new(fake.ws_url());
    feed_cfg.reconnect_min = Duration::from_millis(100);
    let (feed, trades) = KisTrades::new(haechi_kis::ws::QuoteFeed::start(feed_cfg, vec![Arc::new(client)]));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let opts = FeedOptions { resync: Duration::from_millis(100), close_grace: Duration::from_secs(30) };
    let matcher = tokio::spawn(market_feed::run(app.clone(), feed, trades, opts, stop_rx));

    // The session is closed once the next one's first trade arrives: its equity is recorded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let equity = loop {
        let e = paper::equity(&app, &p, acct).await.unwrap();
        if let Some(row) = e.iter().find(|r| r.session == haechi_jobs::market::day_number(session)) {
            break row.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "{session} not closed in 30 s: {e:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = stop_tx.send(true);
    matcher.await.unwrap().unwrap();

    let orders = paper::orders(&app, &p, acct, OrderFilter::All, Paging::new(None, None).unwrap()).await.unwrap();
    let by_id = |id: i64| orders.items.iter().find(|o| o.id == id).unwrap().clone();
    let fills = paper::fills(&app, &p, acct, Paging::new(None, None).unwrap()).await.unwrap().items;
    let fills_of = |id: i64| fills.iter().filter(|f| f.order_id == id).collect::<Vec<_>>();
    // The market buy filled whole at the opening auction's print: the bar's open.
    assert_eq!(by_id(m.id).state, "filled", "{orders:?}");
    assert_eq!(fills_of(m.id).iter().map(|f| (f.price, f.quantity)).collect::<Vec<_>>(), [(i64::from(a_bar.open), 10)]);
    // The limit at the low filled, at its limit or better, never outside the day's range.
    assert_eq!(by_id(at_low.id).state, "filled", "{orders:?}");
    for f in fills_of(at_low.id) {
        assert!(f.price <= i64::from(b_bar.low).max(i64::from(b_bar.open)) && f.price >= i64::from(b_bar.low), "{f:?}");
    }
    assert_eq!(fills_of(at_low.id).iter().map(|f| f.quantity).sum::<i64>(), 7);
    // The one under the low never traded and expired with the session.
    let Placed::Accepted(never) = never else { panic!("{never:?}") };
    assert_eq!((by_id(never.id).state.as_str(), by_id(never.id).filled), ("expired", 0));
    // The ledger: cash = start − what the fills cost; nothing reserved once all is done;
    // equity at the close = cash + the positions at the close.
    let snap = paper::snapshot(&app, &p, acct).await.unwrap();
    let spent: i64 = fills.iter().map(|f| f.amount + f.commission + f.tax).sum();
    assert_eq!(snap.summary.account.cash, 100_000_000 - spent);
    assert_eq!(snap.summary.account.reserved, 0);
    let held = 10 * i64::from(a_bar.close) + 7 * i64::from(b_bar.close);
    assert_eq!(equity.equity, snap.summary.account.cash + held, "{equity:?}");
    // Orders placed now are for the feed's session (the fake's replayed days), not the wall
    // clock's: the market state follows the trades.
    let view = paper::market_time(&app).await.unwrap();
    assert_eq!(view.mode, "feed");
    assert!(view.order_session > session && view.order_session <= *store.dates().last().unwrap(), "{view:?}");
    // The watched names and the pilot were registered.
    assert!(fake.ws().stats().subscribe_messages >= 3);
}
