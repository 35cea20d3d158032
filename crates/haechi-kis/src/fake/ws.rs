//! The fake KIS WebSocket: approval keys, one session per app key, 41 registrations per session,
//! §6.3 acknowledgements, PINGPONG, and `H0STCNT0` trades: a random walk per ticker, or with
//! [`WsHubConfig::replay`] the fake market's own days played again as intraday sessions
//! ([`haechi_core::intraday`]) on a fast clock, so a session of the daily bars takes minutes.
//!
//! It enforces the rules the real service enforces (spec §5.3, §8), so a client that passes
//! against it does not get refused or blocked by KIS for the same behaviour.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::response::Response;
use axum::routing::get;
use chrono::{Datelike as _, NaiveDate, NaiveDateTime, NaiveTime};
use haechi_core::intraday::{Tick, session_path, step_time};
use haechi_core::{MarketStore, Ticker};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior, interval, interval_at};

use crate::frame::H0STCNT0;

/// Hub settings.
#[derive(Debug, Clone)]
pub struct WsHubConfig {
    /// How often each registered ticker trades.
    pub tick_interval: Duration,
    pub ping_interval: Duration,
    /// Registrations per session before `OPSP0008`.
    pub max_registrations: usize,
    /// Play the market's days as intraday sessions instead of a random walk (needs the market:
    /// [`WsHub::replaying`]).
    pub replay: Option<SessionReplay>,
}

/// How the fake plays its market's days again, every subscriber on one shared clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionReplay {
    /// Wall time of one session (ten minutes for the demo).
    pub session: Duration,
    /// Prints per ticker per session: the opening auction at 09:00, the continuous session to
    /// 15:20, the closing call's print at 15:30.
    pub steps: u32,
    /// The first session played is this many before the market's last day; after the last
    /// day it starts there again.
    pub sessions_back: usize,
}

impl Default for SessionReplay {
    fn default() -> SessionReplay {
        SessionReplay { session: Duration::from_secs(600), steps: 78, sessions_back: 250 }
    }
}

impl Default for WsHubConfig {
    fn default() -> Self {
        WsHubConfig {
            tick_interval: Duration::from_millis(200),
            ping_interval: Duration::from_secs(20),
            max_registrations: 41,
            replay: None,
        }
    }
}

/// What the hub has seen, for tests and the demo's status page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WsStats {
    pub sessions_opened: u64,
    pub open_sessions: usize,
    /// Register (`tr_type` 1) messages received, accepted or not.
    pub subscribe_messages: u64,
    /// Current registrations over all open sessions.
    pub registrations: usize,
    /// Current registrations of each open session, in the order the sessions opened.
    pub session_registrations: Vec<usize>,
    pub pings_sent: u64,
    /// PINGPONG texts echoed verbatim.
    pub pongs_received: u64,
    /// Registrations refused with `OPSP0008`.
    pub refused_max: u64,
    /// Sessions refused with `OPSP8996`.
    pub refused_in_use: u64,
}

/// The WebSocket side of the fake KIS. Shared behind `Arc` by the REST fake, which issues
/// approval keys through it.
#[derive(Debug)]
pub struct WsHub {
    cfg: WsHubConfig,
    last_closes: HashMap<String, i64>,
    business_date: NaiveDate,
    /// The market a replay plays, and when its clock started.
    market: Option<(Arc<MarketStore>, Instant)>,
    state: Mutex<HubState>,
    /// Bumped by [`WsHub::drop_sessions`]; every session watches it.
    drops: watch::Sender<u64>,
    sessions_opened: AtomicU64,
    subscribe_messages: AtomicU64,
    pings_sent: AtomicU64,
    pongs_received: AtomicU64,
    refused_max: AtomicU64,
    refused_in_use: AtomicU64,
}

#[derive(Debug, Default)]
struct HubState {
    /// Approval key → app key.
    approvals: HashMap<String, String>,
    /// Open sessions by id, in opening order.
    sessions: BTreeMap<u64, OpenSession>,
    next_id: u64,
}

#[derive(Debug, Default)]
struct OpenSession {
    /// Bound by the first message with a known approval key.
    app_key: Option<String>,
    registrations: usize,
}

/// A ticker's price when the hub has no previous close for it.
const DEFAULT_PRICE: i64 = 10_000;
/// PINGPONG texts a session remembers, to recognise an echo.
const PINGS_REMEMBERED: usize = 8;

impl WsHub {
    /// `last_closes`: previous closes per ticker, where each ticker's walk starts.
    #[must_use]
    pub fn new(cfg: WsHubConfig, last_closes: HashMap<String, i64>, business_date: NaiveDate) -> Arc<WsHub> {
        Arc::new(WsHub::build(cfg, last_closes, business_date, None))
    }

    fn build(
        cfg: WsHubConfig,
        last_closes: HashMap<String, i64>,
        business_date: NaiveDate,
        market: Option<(Arc<MarketStore>, Instant)>,
    ) -> WsHub {
        WsHub {
            cfg,
            last_closes,
            business_date,
            market,
            state: Mutex::new(HubState::default()),
            drops: watch::Sender::new(0),
            sessions_opened: AtomicU64::new(0),
            subscribe_messages: AtomicU64::new(0),
            pings_sent: AtomicU64::new(0),
            pongs_received: AtomicU64::new(0),
            refused_max: AtomicU64::new(0),
            refused_in_use: AtomicU64::new(0),
        }
    }

    /// A hub over `market`: its last closes start the random walks, and with
    /// [`WsHubConfig::replay`] its days are played again, the clock starting now.
    #[must_use]
    pub fn replaying(cfg: WsHubConfig, market: Arc<MarketStore>) -> Arc<WsHub> {
        let today = market.n_days().saturating_sub(1);
        let last_closes = (0..market.n_instruments())
            .filter_map(|slot| {
                let c = market.last_close(slot, today)?;
                Some((market.instrument(slot).ticker.as_str().to_owned(), c.get()))
            })
            .collect();
        let business_date = market.dates().last().copied().unwrap_or_default();
        Arc::new(WsHub::build(cfg, last_closes, business_date, Some((market, Instant::now()))))
    }

    /// Where the replay's clock is: the day (an index into the market's days) and the step of
    /// that day's session. `None` without a replay.
    #[must_use]
    pub fn replay_position(&self) -> Option<(usize, u32)> {
        let (r, (market, started)) = (self.cfg.replay?, self.market.as_ref()?);
        let steps = r.steps.max(haechi_core::intraday::MIN_STEPS);
        let per_step = (r.session / steps).max(Duration::from_millis(1));
        let n = u64::try_from(started.elapsed().as_nanos() / per_step.as_nanos()).unwrap_or(u64::MAX);
        let days = market.n_days().max(1);
        let first = days.saturating_sub(r.sessions_back.max(1));
        let span = (days - first) as u64;
        let day = first + usize::try_from((n / u64::from(steps)) % span).unwrap_or(0);
        Some((day, u32::try_from(n % u64::from(steps)).unwrap_or(0)))
    }

    /// A new approval key for `app_key` (what `/oauth2/Approval` answers). Every key issued stays
    /// valid; sessions are bound to the app key behind it.
    #[must_use]
    pub fn issue_approval_key(&self, app_key: &str) -> String {
        let key = uuid::Uuid::new_v4().to_string();
        self.lock().approvals.insert(key.clone(), app_key.to_owned());
        key
    }

    /// `GET /tryitout` and `/tryitout/{tr_id}` (KIS's older path form), upgraded to a WebSocket.
    /// The router has its state applied, so it merges into any `Router<()>`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new().route("/tryitout", get(upgrade)).route("/tryitout/{tr_id}", get(upgrade)).with_state(self.clone())
    }

    /// Test hook: the server closes every open session, as KIS does on maintenance or a network
    /// fault, so clients must reconnect.
    pub fn drop_sessions(&self) {
        self.drops.send_modify(|n| *n += 1);
    }

    #[must_use]
    pub fn stats(&self) -> WsStats {
        let st = self.lock();
        let session_registrations: Vec<usize> = st.sessions.values().map(|s| s.registrations).collect();
        WsStats {
            sessions_opened: self.sessions_opened.load(Ordering::Relaxed),
            open_sessions: st.sessions.len(),
            subscribe_messages: self.subscribe_messages.load(Ordering::Relaxed),
            registrations: session_registrations.iter().sum(),
            session_registrations,
            pings_sent: self.pings_sent.load(Ordering::Relaxed),
            pongs_received: self.pongs_received.load(Ordering::Relaxed),
            refused_max: self.refused_max.load(Ordering::Relaxed),
            refused_in_use: self.refused_in_use.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_session(&self) -> u64 {
        self.sessions_opened.fetch_add(1, Ordering::Relaxed);
        let mut st = self.lock();
        st.next_id += 1;
        let id = st.next_id;
        st.sessions.insert(id, OpenSession::default());
        id
    }

    /// Releases the session's app key and registrations; safe to call twice.
    fn close_session(&self, id: u64) {
        self.lock().sessions.remove(&id);
    }

    async fn serve(self: Arc<Self>, mut socket: WebSocket) {
        let id = self.open_session();
        let mut drops = self.drops.subscribe();
        let mut ticks = interval(self.cfg.tick_interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Skip);
        let mut pings = interval_at(Instant::now() + self.cfg.ping_interval, self.cfg.ping_interval);
        let mut session = ServerSession { id, regs: BTreeMap::new(), recent_pings: VecDeque::new() };
        loop {
            tokio::select! {
                msg = socket.recv() => match msg {
                    None | Some(Err(_) | Ok(Message::Close(_))) => break,
                    Some(Ok(Message::Text(text))) => {
                        let (reply, close) = self.on_client_text(&mut session, text.as_str());
                        if let Some(reply) = reply
                            && socket.send(Message::text(reply)).await.is_err()
                        {
                            break;
                        }
                        if close {
                            self.close_session(id);
                            let _ = socket.send(close_message("ALREADY IN USE")).await;
                            break;
                        }
                    }
                    Some(Ok(_)) => {}
                },
                _ = ticks.tick() => {
                    let frames = self.due_frames(&mut session);
                    let mut failed = false;
                    for frame in frames {
                        if socket.send(Message::text(frame)).await.is_err() {
                            failed = true;
                            break;
                        }
                    }
                    if failed {
                        break;
                    }
                }
                _ = pings.tick() => {
                    let ping = format!(
                        r#"{{"header":{{"tr_id":"PINGPONG","datetime":"{}"}}}}"#,
                        kst_now().format("%Y%m%d%H%M%S")
                    );
                    if session.recent_pings.len() == PINGS_REMEMBERED {
                        session.recent_pings.pop_front();
                    }
                    session.recent_pings.push_back(ping.clone());
                    if socket.send(Message::text(ping)).await.is_err() {
                        break;
                    }
                    self.pings_sent.fetch_add(1, Ordering::Relaxed);
                }
                _ = drops.changed() => {
                    // Released before the close goes out, so a client reconnecting at once is not
                    // refused as a second session of its own app key.
                    self.close_session(id);
                    let _ = socket.send(close_message("SESSION DROPPED")).await;
                    break;
                }
            }
        }
        self.close_session(id);
    }

    /// The trade frames a session owes its registrations now: one per ticker per tick of the
    /// random walk, or a replay's print for each ticker whose step came since the last one sent
    /// (a ticker registered mid-session starts at the current step, as a live feed would).
    fn due_frames(&self, session: &mut ServerSession) -> Vec<String> {
        let Some((day, step)) = self.replay_position() else {
            let now = kst_now();
            return session
                .regs
                .values_mut()
                .flatten()
                .map(|sim| format!("0|{H0STCNT0}|001|{}", sim.next_record(now.time(), self.business_date)))
                .collect();
        };
        let (Some((market, _)), Some(r)) = (self.market.as_ref(), self.cfg.replay) else { return Vec::new() };
        let mut frames = Vec::new();
        for ((_, ticker), sim) in &mut session.regs {
            let Some(sim) = sim else { continue };
            if sim.replay.as_ref().is_some_and(|p| (p.day, p.step) == (day, step)) {
                continue;
            }
            if sim.replay.as_ref().is_none_or(|p| p.day != day) {
                let Some(play) = DayPlay::new(market, ticker, day, r.steps) else { continue };
                *sim = TickerSim::new(ticker, play.prev_close);
                sim.replay = Some(play);
            }
            let Some(play) = sim.replay.as_mut() else { continue };
            play.step = step;
            let Some(tick) = play.path.get(step as usize).copied() else { continue };
            let date = play.date;
            let time = step_time(step, r.steps);
            let record = sim.record(time, date, tick.price.get(), i64::try_from(tick.volume).unwrap_or(i64::MAX));
            frames.push(format!("0|{H0STCNT0}|001|{record}"));
        }
        frames
    }

    /// The answer to one client text, and whether the session must then close.
    fn on_client_text(&self, session: &mut ServerSession, text: &str) -> (Option<String>, bool) {
        let Ok(msg) = serde_json::from_str::<Value>(text) else {
            return (Some(control("", "", "1", None, "JSON PARSING ERROR", None)), false);
        };
        let header = &msg["header"];
        let tr_id = str_at(&header["tr_id"]);
        if tr_id == "PINGPONG" {
            if session.recent_pings.iter().any(|p| p == text) {
                self.pongs_received.fetch_add(1, Ordering::Relaxed);
            }
            return (None, false);
        }
        let input = &msg["body"]["input"];
        let (tr_id, tr_key) = (str_at(&input["tr_id"]), str_at(&input["tr_key"]));
        let tr_type = str_at(&header["tr_type"]);
        if tr_type == "1" {
            self.subscribe_messages.fetch_add(1, Ordering::Relaxed);
        }

        let mut st = self.lock();
        // KIS's code for a bad approval key is not known (spec §6.3), so only the text is sent.
        let Some(app_key) = st.approvals.get(str_at(&header["approval_key"])).cloned() else {
            return (Some(control(tr_id, tr_key, "1", None, "INVALID APPROVAL KEY", None)), false);
        };
        let bound_elsewhere =
            st.sessions.iter().any(|(sid, s)| *sid != session.id && s.app_key.as_deref() == Some(&app_key));
        let Some(me) = st.sessions.get_mut(&session.id) else {
            // Dropped by drop_sessions while this message was in flight; the close follows.
            return (None, false);
        };
        if me.app_key.is_none() {
            if bound_elsewhere {
                self.refused_in_use.fetch_add(1, Ordering::Relaxed);
                let reply = control(tr_id, tr_key, "1", Some("OPSP8996"), "ALREADY IN USE appkey", None);
                return (Some(reply), true);
            }
            me.app_key = Some(app_key);
        }

        let reg = (tr_id.to_owned(), tr_key.to_owned());
        let reply = match tr_type {
            "1" if session.regs.contains_key(&reg) => {
                control(tr_id, tr_key, "0", Some("OPSP0002"), "ALREADY IN SUBSCRIBE", Some(cipher()))
            }
            "1" if session.regs.len() >= self.cfg.max_registrations => {
                self.refused_max.fetch_add(1, Ordering::Relaxed);
                control(tr_id, tr_key, "1", Some("OPSP0008"), "MAX SUBSCRIBE OVER", None)
            }
            "1" => {
                let sim = (tr_id == H0STCNT0).then(|| {
                    let close = self.last_closes.get(tr_key).copied().unwrap_or(DEFAULT_PRICE);
                    TickerSim::new(tr_key, close)
                });
                session.regs.insert(reg, sim);
                control(tr_id, tr_key, "0", Some("OPSP0000"), "SUBSCRIBE SUCCESS", Some(cipher()))
            }
            "2" if session.regs.remove(&reg).is_some() => {
                control(tr_id, tr_key, "0", Some("OPSP0001"), "UNSUBSCRIBE SUCCESS", None)
            }
            "2" => control(tr_id, tr_key, "1", Some("OPSP0003"), "UNSUBSCRIBE ERROR(not found!)", None),
            _ => control(tr_id, tr_key, "1", None, "INVALID TR_TYPE", None),
        };
        me.registrations = session.regs.len();
        (Some(reply), false)
    }
}

async fn upgrade(State(hub): State<Arc<WsHub>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| hub.serve(socket))
}

struct ServerSession {
    id: u64,
    /// (tr_id, tr_key) → the trade generator for `H0STCNT0` registrations.
    regs: BTreeMap<(String, String), Option<TickerSim>>,
    recent_pings: VecDeque<String>,
}

fn close_message(reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame { code: close_code::AWAY, reason: reason.into() }))
}

fn str_at(v: &Value) -> &str {
    v.as_str().unwrap_or("")
}

/// An AES IV (16 characters) and key (32 characters), as KIS sends with every ack.
fn cipher() -> (String, String) {
    let iv = uuid::Uuid::new_v4().simple().to_string();
    (iv[..16].to_owned(), uuid::Uuid::new_v4().simple().to_string())
}

/// A §6.3 control message.
fn control(
    tr_id: &str,
    tr_key: &str,
    rt_cd: &str,
    msg_cd: Option<&str>,
    msg1: &str,
    cipher: Option<(String, String)>,
) -> String {
    let mut body = json!({ "rt_cd": rt_cd, "msg1": msg1 });
    if let Some(code) = msg_cd {
        body["msg_cd"] = json!(code);
    }
    if let Some((iv, key)) = cipher {
        body["output"] = json!({ "iv": iv, "key": key });
    }
    json!({ "header": { "tr_id": tr_id, "tr_key": tr_key, "encrypt": "N" }, "body": body }).to_string()
}

/// Korea Standard Time, which KIS stamps everything in; UTC+9 all year.
fn kst_now() -> NaiveDateTime {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let secs = i64::try_from(secs).unwrap_or(0) + 9 * 3600;
    chrono::DateTime::from_timestamp(secs, 0).map(|d| d.naive_utc()).unwrap_or_default()
}

/// KRX price ticks (the 2023 unified table): (prices below, tick).
const KRX_TICKS: [(i64, i64); 6] = [(2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500)];

fn tick_size(price: i64) -> i64 {
    KRX_TICKS.iter().find(|(below, _)| price < *below).map_or(1_000, |(_, tick)| *tick)
}

fn to_tick(price: i64) -> i64 {
    price - price.rem_euclid(tick_size(price))
}

fn to_tick_up(price: i64) -> i64 {
    let down = to_tick(price);
    if down < price { down + tick_size(down) } else { down }
}

/// One ticker's session: a random walk on KRX ticks within the ±30 % daily limits.
#[derive(Debug)]
struct TickerSim {
    ticker: String,
    prev_close: i64,
    upper: i64,
    lower: i64,
    price: i64,
    open: i64,
    high: i64,
    low: i64,
    open_time: Option<NaiveTime>,
    high_time: NaiveTime,
    low_time: NaiveTime,
    acc_volume: i64,
    acc_value: i64,
    buy_count: i64,
    sell_count: i64,
    buy_volume: i64,
    sell_volume: i64,
    rng: u64,
    /// The day a replay is playing for this ticker.
    replay: Option<DayPlay>,
}

/// One ticker's replayed day.
#[derive(Debug)]
struct DayPlay {
    day: usize,
    date: NaiveDate,
    prev_close: i64,
    path: Vec<Tick>,
    /// The last step sent.
    step: u32,
}

impl DayPlay {
    fn new(market: &MarketStore, ticker: &str, day: usize, steps: u32) -> Option<DayPlay> {
        let slot = market.slot_of(Ticker::parse(ticker).ok()?)?;
        let bar = market.raw(slot, day)?;
        let date = *market.dates().get(day)?;
        let prev_close =
            day.checked_sub(1).and_then(|d| market.last_close(slot, d)).map_or(i64::from(bar.open), |p| p.get());
        let seed = u64::try_from(date.num_days_from_ce()).unwrap_or(0) ^ slot as u64;
        let path = session_path(date, market.instrument(slot).market, bar, steps, seed);
        Some(DayPlay { day, date, prev_close, path, step: u32::MAX })
    }
}

impl TickerSim {
    fn new(ticker: &str, prev_close: i64) -> TickerSim {
        let prev_close = to_tick(prev_close.max(1));
        // FNV-1a of the code: each ticker walks its own, repeatable path.
        let seed =
            ticker.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
        TickerSim {
            ticker: ticker.to_owned(),
            prev_close,
            upper: to_tick(prev_close * 13 / 10),
            lower: to_tick_up(prev_close * 7 / 10).max(1),
            price: prev_close,
            open: prev_close,
            high: prev_close,
            low: prev_close,
            open_time: None,
            high_time: NaiveTime::MIN,
            low_time: NaiveTime::MIN,
            acc_volume: 0,
            acc_value: 0,
            buy_count: 0,
            sell_count: 0,
            buy_volume: 0,
            sell_volume: 0,
            rng: seed | 1,
            replay: None,
        }
    }

    /// xorshift64: cheap, deterministic, good enough for a price walk.
    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    fn below(&mut self, n: u64) -> i64 {
        i64::try_from(self.next_u64() % n).unwrap_or(0)
    }

    /// The random walk's next trade as the 46 `^`-joined fields of §6.6.
    fn next_record(&mut self, time: NaiveTime, date: NaiveDate) -> String {
        if self.open_time.is_some() {
            let steps = self.below(5) - 2;
            self.price = to_tick(self.price + steps * tick_size(self.price)).clamp(self.lower, self.upper);
        }
        let volume = 1 + self.below(300);
        self.record(time, date, self.price, volume)
    }

    /// A trade of `volume` shares at `price` as the 46 `^`-joined fields of §6.6, the day's
    /// open, high, low and accumulated figures carried on.
    fn record(&mut self, time: NaiveTime, date: NaiveDate, price: i64, volume: i64) -> String {
        self.price = price;
        let open_time = *self.open_time.get_or_insert(time);
        if self.acc_volume == 0 {
            (self.open, self.high, self.low, self.high_time, self.low_time) = (price, price, price, time, time);
        }
        if price > self.high {
            (self.high, self.high_time) = (price, time);
        }
        if price < self.low {
            (self.low, self.low_time) = (price, time);
        }
        let buy = self.below(2) == 0;
        self.acc_volume += volume;
        self.acc_value += price * volume;
        if buy {
            self.buy_count += 1;
            self.buy_volume += volume;
        } else {
            self.sell_count += 1;
            self.sell_volume += volume;
        }
        // A buyer-initiated trade takes the ask, a seller-initiated one hits the bid.
        let (ask1, bid1) = if buy { (price, price - tick_size(price - 1)) } else { (price + tick_size(price), price) };
        let change = price - self.prev_close;
        let sign = if price >= self.upper {
            "1"
        } else if price <= self.lower {
            "4"
        } else {
            vs_sign(change)
        };
        let pct = |num: i64, den: i64| if den == 0 { 0.0 } else { num as f64 * 100.0 / den as f64 };
        let hm = |t: NaiveTime| t.format("%H%M%S").to_string();
        let fields: [String; 46] = [
            self.ticker.clone(),
            hm(time),
            price.to_string(),
            sign.to_owned(),
            change.to_string(),
            format!("{:.2}", pct(change, self.prev_close)),
            format!("{:.2}", self.acc_value as f64 / self.acc_volume as f64),
            self.open.to_string(),
            self.high.to_string(),
            self.low.to_string(),
            ask1.to_string(),
            bid1.to_string(),
            volume.to_string(),
            self.acc_volume.to_string(),
            self.acc_value.to_string(),
            self.sell_count.to_string(),
            self.buy_count.to_string(),
            (self.buy_count - self.sell_count).to_string(),
            format!("{:.2}", pct(self.buy_volume, self.sell_volume)),
            self.sell_volume.to_string(),
            self.buy_volume.to_string(),
            (if buy { "1" } else { "5" }).to_owned(),
            format!("{:.2}", pct(self.buy_volume, self.acc_volume)),
            "0.00".to_owned(),
            hm(open_time),
            vs_sign(price - self.open).to_owned(),
            (price - self.open).to_string(),
            hm(self.high_time),
            vs_sign(price - self.high).to_owned(),
            (price - self.high).to_string(),
            hm(self.low_time),
            vs_sign(price - self.low).to_owned(),
            (price - self.low).to_string(),
            date.format("%Y%m%d").to_string(),
            "20".to_owned(),
            "N".to_owned(),
            (1 + self.below(20_000)).to_string(),
            (1 + self.below(20_000)).to_string(),
            (100_000 + self.below(900_000)).to_string(),
            (100_000 + self.below(900_000)).to_string(),
            "0.00".to_owned(),
            "0".to_owned(),
            "0.00".to_owned(),
            "0".to_owned(),
            String::new(),
            self.open.to_string(),
        ];
        fields.join("^")
    }
}

/// `PRDY_VRSS_SIGN`-style sign of a difference: 2 up, 3 unchanged, 5 down.
fn vs_sign(diff: i64) -> &'static str {
    match diff.signum() {
        1 => "2",
        0 => "3",
        _ => "5",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::frame::{TradeSide, parse_frame, parse_trades};

    #[test]
    fn generated_records_parse_and_stay_on_krx_ticks_within_limits() {
        let date = NaiveDate::from_ymd_opt(2025, 6, 13).unwrap();
        let mut sim = TickerSim::new("005930", 58_700);
        let mut acc = 0;
        let mut prices = std::collections::BTreeSet::new();
        for s in 0..2_000u32 {
            let time = NaiveTime::from_num_seconds_from_midnight_opt(9 * 3600 + s, 0).unwrap();
            let text = format!("0|H0STCNT0|001|{}", sim.next_record(time, date));
            let crate::frame::Frame::Data(frame) = parse_frame(&text).unwrap() else { panic!("{text}") };
            assert_eq!(frame.records[0].len(), 46);
            let t = parse_trades(&frame).unwrap().remove(0);
            assert_eq!((t.ticker.as_str(), t.business_date, t.time), ("005930", date, time));
            assert_eq!(t.price % tick_size(t.price), 0, "{text}");
            assert!((41_090..=76_310).contains(&t.price), "{text}");
            assert!(t.low <= t.price && t.price <= t.high, "{text}");
            assert_eq!(t.change, t.price - 58_700);
            assert!(t.volume >= 1 && t.acc_volume == acc + t.volume);
            acc = t.acc_volume;
            match t.side {
                TradeSide::Buy => assert_eq!(t.ask1, t.price),
                TradeSide::Sell => assert_eq!(t.bid1, t.price),
                other => panic!("side {other:?}"),
            }
            prices.insert(t.price);
        }
        assert!(prices.len() > 10, "the walk should move: {prices:?}");
    }

    #[test]
    fn tick_sizes_follow_the_krx_table() {
        assert_eq!([tick_size(1_999), tick_size(2_000), tick_size(58_700), tick_size(500_000)], [1, 5, 100, 1_000]);
        assert_eq!(to_tick(58_749), 58_700);
    }
}
