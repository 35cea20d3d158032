//! The quote feed against the fake KIS WebSocket hub, over real sockets on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use futures_util::{SinkExt as _, StreamExt as _};
use haechi_kis::fake::ws::{WsHub, WsHubConfig, WsStats};
use haechi_kis::frame::{Control, Frame, Trade, parse_frame};
use haechi_kis::ws::{ApprovalSource, FeedConfig, QuoteFeed};
use haechi_kis::{BoxFuture, KisError};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// Approval keys straight from the hub, as the REST fake's `/oauth2/Approval` will hand them out.
/// The first `bogus` keys it hands out are unknown to the hub.
struct HubKeys {
    hub: Arc<WsHub>,
    app_key: String,
    bogus: usize,
    calls: AtomicUsize,
}

impl HubKeys {
    fn new(hub: &Arc<WsHub>, app_key: &str, bogus: usize) -> Arc<HubKeys> {
        Arc::new(HubKeys { hub: hub.clone(), app_key: app_key.to_owned(), bogus, calls: AtomicUsize::new(0) })
    }
}

impl ApprovalSource for HubKeys {
    fn approval_key(&self) -> BoxFuture<'_, Result<String, KisError>> {
        Box::pin(async move {
            let n = self.calls.fetch_add(1, Ordering::SeqCst);
            if n < self.bogus {
                return Ok(format!("expired-key-{n}"));
            }
            Ok(self.hub.issue_approval_key(&self.app_key))
        })
    }
}

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 13).unwrap()
}

async fn start_hub(last_closes: &[(&str, i64)]) -> (Arc<WsHub>, String) {
    let cfg = WsHubConfig {
        tick_interval: Duration::from_millis(30),
        ping_interval: Duration::from_millis(200),
        max_registrations: 41,
        replay: None,
    };
    let closes = last_closes.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect();
    let hub = WsHub::new(cfg, closes, date());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/tryitout", listener.local_addr().unwrap());
    let app = hub.router();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (hub, url)
}

fn start_feed(hub: &Arc<WsHub>, url: &str, sources: usize) -> QuoteFeed {
    let sources = (0..sources).map(|n| HubKeys::new(hub, &format!("key-{n}"), 0)).collect();
    start_feed_with(url, sources)
}

fn start_feed_with(url: &str, sources: Vec<Arc<HubKeys>>) -> QuoteFeed {
    let mut cfg = FeedConfig::new(url);
    cfg.reconnect_min = Duration::from_millis(100);
    cfg.reconnect_max = Duration::from_millis(400);
    cfg.subscribe_pace = Duration::from_millis(2);
    QuoteFeed::start(cfg, sources.into_iter().map(|s| s as Arc<dyn ApprovalSource>).collect())
}

fn tickers(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{:06}", 100_000 + i * 10)).collect()
}

/// The first trade of each wanted ticker; fails naming the tickers still missing.
async fn first_trades(
    rx: &mut broadcast::Receiver<Trade>,
    want: &[String],
    within: Duration,
) -> HashMap<String, Trade> {
    let deadline = Instant::now() + within;
    let want: HashSet<&String> = want.iter().collect();
    let mut got = HashMap::new();
    while got.len() < want.len() {
        match timeout_at(deadline, rx.recv()).await {
            Ok(Ok(t)) => {
                if want.contains(&t.ticker) {
                    got.entry(t.ticker.clone()).or_insert(t);
                }
            }
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
            Ok(Err(broadcast::error::RecvError::Closed)) => panic!("the trade stream closed"),
            Err(_) => {
                let mut missing: Vec<_> = want.iter().filter(|t| !got.contains_key(**t)).collect();
                missing.sort();
                panic!("no trades within {within:?} for {} tickers: {missing:?}", missing.len());
            }
        }
    }
    got
}

/// Polls the hub until `ok` holds; fails with the last stats.
async fn hub_until(hub: &WsHub, what: &str, within: Duration, ok: impl Fn(&WsStats) -> bool) -> WsStats {
    let deadline = Instant::now() + within;
    loop {
        let stats = hub.stats();
        if ok(&stats) {
            return stats;
        }
        if Instant::now() >= deadline {
            panic!("hub never reached {what} within {within:?}: {stats:?}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn trades_of_every_subscribed_ticker_arrive_parsed() {
    let (hub, url) = start_hub(&[("005930", 58_700), ("000660", 201_000)]).await;
    let feed = start_feed(&hub, &url, 1);
    let mut rx = feed.trades();
    let want: Vec<String> = ["005930", "000660", "035420"].map(str::to_owned).to_vec();
    for t in &want {
        feed.subscribe(t).await.unwrap();
    }
    let got = first_trades(&mut rx, &want, Duration::from_secs(3)).await;
    for (ticker, t) in &got {
        assert_eq!(&t.ticker, ticker);
        assert!(t.price > 0 && t.volume > 0 && t.acc_volume >= t.volume, "{t:?}");
        assert_eq!(t.business_date, date());
    }
    // The walk starts from the previous close (±30 % limits), or 10,000 won without one.
    assert!((41_090..=76_310).contains(&got["005930"].price), "{:?}", got["005930"]);
    assert!((140_700..=261_300).contains(&got["000660"].price), "{:?}", got["000660"]);
    assert!((7_000..=13_000).contains(&got["035420"].price), "{:?}", got["035420"]);

    let err = feed.subscribe("5930").await.unwrap_err();
    assert!(matches!(err, KisError::InvalidRequest { field: "ticker", .. }), "{err}");
    // Subscribing again sends nothing; the fourth ticker's registration shows the queue moved on.
    feed.subscribe("005930").await.unwrap();
    feed.subscribe("051910").await.unwrap();
    let stats = hub_until(&hub, "4 registrations", Duration::from_secs(2), |s| s.registrations == 4).await;
    assert_eq!(stats.subscribe_messages, 4, "{stats:?}");

    feed.unsubscribe("000660").await.unwrap();
    hub_until(&hub, "3 registrations", Duration::from_secs(2), |s| s.registrations == 3).await;
    let status = feed.status();
    assert_eq!((status.sessions_connected, status.reconnects), (1, 0), "{status:?}");
    assert!(status.frames > 0 && status.parse_errors == 0, "{status:?}");

    feed.shutdown().await;
    hub_until(&hub, "no open session", Duration::from_secs(2), |s| s.open_sessions == 0).await;
}

#[tokio::test]
async fn pingpong_is_echoed_and_the_session_stays_open() {
    let (hub, url) = start_hub(&[]).await;
    let feed = start_feed(&hub, &url, 1);
    feed.subscribe("005930").await.unwrap();
    // Pings every 200 ms: three echoes take about 0.6 s.
    let stats = hub_until(&hub, "3 PINGPONG echoes", Duration::from_secs(3), |s| s.pongs_received >= 3).await;
    assert_eq!((stats.sessions_opened, stats.open_sessions), (1, 1), "{stats:?}");
    assert!(stats.pongs_received <= stats.pings_sent, "{stats:?}");
    let status = feed.status();
    assert_eq!((status.sessions_connected, status.reconnects), (1, 0), "{status:?}");
    feed.shutdown().await;
}

#[tokio::test]
async fn a_dropped_session_reconnects_and_resubscribes_every_ticker() {
    let (hub, url) = start_hub(&[]).await;
    let keys = HubKeys::new(&hub, "key-0", 0);
    let feed = start_feed_with(&url, vec![keys.clone()]);
    let want = tickers(5);
    let mut rx = feed.trades();
    for t in &want {
        feed.subscribe(t).await.unwrap();
    }
    first_trades(&mut rx, &want, Duration::from_secs(2)).await;
    hub_until(&hub, "5 registrations", Duration::from_secs(2), |s| s.registrations == 5).await;

    hub.drop_sessions();
    // Once the feed has counted a reconnect, the old connection is gone: later trades are new.
    let deadline = Instant::now() + Duration::from_secs(2);
    while feed.status().reconnects == 0 {
        assert!(Instant::now() < deadline, "no reconnect: {:?}", feed.status());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut after = feed.trades();
    first_trades(&mut after, &want, Duration::from_secs(3)).await;

    let stats = hub.stats();
    assert!(stats.sessions_opened >= 2 && stats.subscribe_messages >= 10, "{stats:?}");
    assert_eq!((stats.open_sessions, stats.registrations), (1, 5), "{stats:?}");
    assert!(feed.status().reconnects >= 1);
    assert_eq!(keys.calls.load(Ordering::SeqCst), 1, "an approval key is good for 23 h, so it is reused");
    feed.shutdown().await;
}

#[tokio::test]
async fn a_feed_refused_as_a_second_session_of_its_app_key_gets_in_once_the_first_closes() {
    let (hub, url) = start_hub(&[]).await;
    let first = start_feed(&hub, &url, 1);
    first.subscribe("005930").await.unwrap();
    hub_until(&hub, "the first feed registered", Duration::from_secs(2), |s| s.registrations == 1).await;

    let second = start_feed(&hub, &url, 1);
    let mut rx = second.trades();
    second.subscribe("000660").await.unwrap();
    hub_until(&hub, "two refusals", Duration::from_secs(3), |s| s.refused_in_use >= 2).await;
    assert_eq!(second.status().subscriptions, 0);

    first.shutdown().await;
    first_trades(&mut rx, &["000660".to_owned()], Duration::from_secs(3)).await;
    let stats = hub.stats();
    assert_eq!((stats.open_sessions, stats.registrations), (1, 1), "{stats:?}");
    second.shutdown().await;
}

#[tokio::test]
async fn a_refused_approval_key_is_replaced() {
    let (hub, url) = start_hub(&[]).await;
    let keys = HubKeys::new(&hub, "key-0", 1);
    let feed = start_feed_with(&url, vec![keys.clone()]);
    let mut rx = feed.trades();
    feed.subscribe("005930").await.unwrap();
    first_trades(&mut rx, &["005930".to_owned()], Duration::from_secs(3)).await;
    assert_eq!(keys.calls.load(Ordering::SeqCst), 2);
    assert!(feed.status().reconnects >= 1);
    feed.shutdown().await;
}

#[tokio::test]
async fn tickers_beyond_one_sessions_41_spread_over_app_keys() {
    let (hub, url) = start_hub(&[]).await;
    let feed = start_feed(&hub, &url, 2);
    let want = tickers(60);
    let mut rx = feed.trades();
    for t in &want {
        feed.subscribe(t).await.unwrap();
    }
    first_trades(&mut rx, &want, Duration::from_secs(4)).await;
    let stats = hub_until(&hub, "60 registrations", Duration::from_secs(2), |s| s.registrations == 60).await;
    assert_eq!(stats.open_sessions, 2, "{stats:?}");
    assert!(stats.session_registrations.iter().all(|n| *n <= 41), "{stats:?}");
    assert_eq!(stats.refused_max, 0, "{stats:?}");
    assert_eq!(feed.status().subscriptions, 60);
    feed.shutdown().await;
}

#[tokio::test]
async fn the_42nd_ticker_of_a_single_session_is_refused_before_sending() {
    let (hub, url) = start_hub(&[]).await;
    let feed = start_feed(&hub, &url, 1);
    let all = tickers(42);
    for t in &all[..41] {
        feed.subscribe(t).await.unwrap();
    }
    hub_until(&hub, "41 registrations", Duration::from_secs(3), |s| s.registrations == 41).await;

    let err = feed.subscribe(&all[41]).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, KisError::InvalidRequest { field: "ticker", .. }), "{msg}");
    assert!(msg.contains("all 1 sessions hold 41 registrations"), "{msg}");

    // A message for the 42nd would have been queued ahead of this unsubscribe and sent first.
    feed.unsubscribe(&all[0]).await.unwrap();
    let stats = hub_until(&hub, "40 registrations", Duration::from_secs(2), |s| s.registrations == 40).await;
    assert_eq!((stats.subscribe_messages, stats.refused_max), (41, 0), "{stats:?}");

    // The freed place takes the ticker refused before.
    feed.subscribe(&all[41]).await.unwrap();
    hub_until(&hub, "41 registrations again", Duration::from_secs(2), |s| s.registrations == 41).await;
    feed.shutdown().await;
}

type Raw = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn raw(url: &str) -> Raw {
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

async fn send(ws: &mut Raw, approval_key: &str, tr_type: &str, ticker: &str) {
    let msg = serde_json::json!({
        "header": {"approval_key": approval_key, "custtype": "P", "tr_type": tr_type, "content-type": "utf-8"},
        "body": {"input": {"tr_id": "H0STCNT0", "tr_key": ticker}},
    });
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

/// The next control message other than PINGPONG, skipping data frames; `None` once the server
/// has closed the session.
async fn next_control(ws: &mut Raw) -> Option<Control> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match timeout_at(deadline, ws.next()).await.expect("no message within 2 s") {
            None | Some(Err(_) | Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(text))) => {
                if let Frame::Control(c) = parse_frame(&text).unwrap()
                    && !c.is_pingpong
                {
                    return Some(c);
                }
            }
            Some(Ok(_)) => {}
        }
    }
}

async fn next_data(ws: &mut Raw) -> String {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match timeout_at(deadline, ws.next()).await.expect("no data within 2 s") {
            Some(Ok(Message::Text(text))) if text.starts_with('0') => return text.to_string(),
            Some(Ok(_)) => {}
            other => panic!("session ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_hub_refuses_a_second_session_of_the_same_app_key() {
    let (hub, url) = start_hub(&[]).await;
    let mut first = raw(&url).await;
    send(&mut first, &hub.issue_approval_key("key-A"), "1", "005930").await;
    let ack = next_control(&mut first).await.unwrap();
    assert_eq!(ack.msg_cd.as_deref(), Some("OPSP0000"), "{ack:?}");

    // Another approval key, but for the same app key.
    let mut second = raw(&url).await;
    send(&mut second, &hub.issue_approval_key("key-A"), "1", "000660").await;
    let refused = next_control(&mut second).await.unwrap();
    assert_eq!((refused.rt_cd.as_deref(), refused.msg_cd.as_deref()), (Some("1"), Some("OPSP8996")), "{refused:?}");
    assert!(next_control(&mut second).await.is_none(), "the refused session must be closed");

    // Another app key is welcome, and the first session keeps streaming.
    let mut other = raw(&url).await;
    send(&mut other, &hub.issue_approval_key("key-B"), "1", "000660").await;
    assert_eq!(next_control(&mut other).await.unwrap().msg_cd.as_deref(), Some("OPSP0000"));
    assert!(next_data(&mut first).await.starts_with("0|H0STCNT0|001|005930^"));
    let stats = hub_until(&hub, "2 open sessions", Duration::from_secs(2), |s| s.open_sessions == 2).await;
    assert_eq!((stats.refused_in_use, stats.sessions_opened), (1, 3), "{stats:?}");
}

#[tokio::test]
async fn the_hub_answers_registrations_as_kis_does() {
    let (hub, url) = start_hub(&[]).await;
    let mut ws = raw(&url).await;

    send(&mut ws, "not-a-key", "1", "005930").await;
    let c = next_control(&mut ws).await.unwrap();
    assert_eq!((c.rt_cd.as_deref(), c.msg1.as_deref()), (Some("1"), Some("INVALID APPROVAL KEY")), "{c:?}");

    let key = hub.issue_approval_key("key-A");
    let all = tickers(42);
    for t in &all[..41] {
        send(&mut ws, &key, "1", t).await;
        let c = next_control(&mut ws).await.unwrap();
        assert_eq!((c.msg_cd.as_deref(), c.tr_key.as_deref()), (Some("OPSP0000"), Some(t.as_str())), "{c:?}");
        assert_eq!((c.iv.map(|v| v.len()), c.key.map(|k| k.len())), (Some(16), Some(32)));
    }
    send(&mut ws, &key, "1", &all[41]).await;
    let c = next_control(&mut ws).await.unwrap();
    assert_eq!((c.rt_cd.as_deref(), c.msg_cd.as_deref()), (Some("1"), Some("OPSP0008")), "{c:?}");

    send(&mut ws, &key, "1", &all[0]).await;
    assert_eq!(next_control(&mut ws).await.unwrap().msg_cd.as_deref(), Some("OPSP0002"));
    send(&mut ws, &key, "2", &all[0]).await;
    assert_eq!(next_control(&mut ws).await.unwrap().msg_cd.as_deref(), Some("OPSP0001"));

    let stats = hub.stats();
    assert_eq!((stats.registrations, stats.refused_max, stats.subscribe_messages), (40, 1, 44), "{stats:?}");
}
