//! The `H0STCNT0` quote feed: KIS WebSocket sessions that keep their registrations across
//! disconnects and publish every trade on one broadcast channel.
//!
//! KIS allows one session per app key and 41 registrations per session (spec §5.3), so the feed
//! runs one session per [`ApprovalSource`] and spreads tickers over them. Reconnects back off
//! from [`FeedConfig::reconnect_min`] because KIS may block an IP or app key that reconnects or
//! resubscribes in tight loops.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::frame::{self, Control, Frame, H0STCNT0, Trade};
use crate::{BoxFuture, KisError};

/// Where a session gets its approval key.
pub trait ApprovalSource: Send + Sync + 'static {
    /// A WebSocket approval key for one app key (POST /oauth2/Approval, done by the REST client).
    fn approval_key(&self) -> BoxFuture<'_, Result<String, KisError>>;
}

/// Feed settings; [`FeedConfig::new`] fills KIS-safe defaults.
#[derive(Debug, Clone)]
pub struct FeedConfig {
    pub ws_url: String,
    /// `P`: individual.
    pub custtype: String,
    /// Registrations per session: KIS refuses the 42nd with `OPSP0008`.
    pub per_session_limit: usize,
    /// First reconnect delay, doubling per failed attempt. KIS may block IPs that reconnect in
    /// tight loops, so keep it at 5 s or more against the real service.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// Between two subscribe messages of one session, as KIS's own client paces them.
    pub subscribe_pace: Duration,
    /// A session that receives nothing (not even PINGPONG) for this long is taken as dead: a
    /// half-open TCP connection would otherwise wait forever.
    pub idle_timeout: Duration,
    /// Trades a slow [`QuoteFeed::trades`] receiver may fall behind before it loses some.
    pub trade_buffer: usize,
}

impl FeedConfig {
    #[must_use]
    pub fn new(ws_url: impl Into<String>) -> FeedConfig {
        FeedConfig {
            ws_url: ws_url.into(),
            custtype: "P".to_owned(),
            per_session_limit: 41,
            reconnect_min: Duration::from_secs(5),
            reconnect_max: Duration::from_secs(60),
            subscribe_pace: Duration::from_millis(50),
            // The PINGPONG interval is unknown (§10); three times the longest guess.
            idle_timeout: Duration::from_secs(180),
            trade_buffer: 8192,
        }
    }
}

/// A snapshot of the feed's health.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeedStatus {
    pub sessions_connected: usize,
    /// Reconnect attempts since the start, over all sessions.
    pub reconnects: u64,
    /// Registrations KIS has acknowledged and not since refused or dropped.
    pub subscriptions: usize,
    /// Data frames received.
    pub frames: u64,
    /// Frames that could not be read; each was skipped.
    pub parse_errors: u64,
}

/// The real-time trade feed. Dropping it closes the sessions too; [`QuoteFeed::shutdown`] also
/// waits for them.
pub struct QuoteFeed {
    shared: Arc<Shared>,
    sessions: Vec<SessionHandle>,
    trades: broadcast::Sender<Trade>,
}

struct SessionHandle {
    cmds: mpsc::UnboundedSender<Command>,
    task: JoinHandle<()>,
}

impl fmt::Debug for QuoteFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QuoteFeed").field("sessions", &self.sessions.len()).field("status", &self.status()).finish()
    }
}

/// A session re-reads the assignment when it handles a command, so a burst of subscribe and
/// unsubscribe calls for one ticker ends in the last call's state, whatever the order.
#[derive(Debug)]
enum Command {
    Sync(String),
    Shutdown,
}

impl QuoteFeed {
    /// One session per approval source (KIS allows one WebSocket session per app key, 41
    /// registrations each), so capacity = sources × per_session_limit. Sessions connect at once
    /// and keep reconnecting until shut down. Must be called within a Tokio runtime.
    #[must_use]
    pub fn start(cfg: FeedConfig, sources: Vec<Arc<dyn ApprovalSource>>) -> QuoteFeed {
        let cfg = Arc::new(cfg);
        let (trades, _) = broadcast::channel(cfg.trade_buffer.max(1));
        let shared = Arc::new(Shared {
            assignments: Mutex::new(Assignments {
                session_of: HashMap::new(),
                tickers: vec![BTreeSet::new(); sources.len()],
            }),
            sessions: (0..sources.len()).map(|_| SessionStats::default()).collect(),
            per_session_limit: cfg.per_session_limit,
            reconnects: AtomicU64::new(0),
            frames: AtomicU64::new(0),
            parse_errors: AtomicU64::new(0),
        });
        let sessions = sources
            .into_iter()
            .enumerate()
            .map(|(idx, source)| {
                let (tx, rx) = mpsc::unbounded_channel();
                let session = Session {
                    idx,
                    cfg: cfg.clone(),
                    source,
                    shared: shared.clone(),
                    trades: trades.clone(),
                    cmds: rx,
                    key: None,
                };
                SessionHandle { cmds: tx, task: tokio::spawn(session.run()) }
            })
            .collect();
        QuoteFeed { shared, sessions, trades }
    }

    /// Registers `ticker` on the session with the fewest registrations; sent at once when that
    /// session is connected, otherwise when it reconnects. Subscribing twice is a no-op.
    ///
    /// # Errors
    /// `InvalidRequest` for a malformed code, or when every session is full; nothing is sent.
    pub async fn subscribe(&self, ticker: &str) -> Result<(), KisError> {
        check_ticker(ticker)?;
        let idx = {
            let mut a = self.shared.assignments();
            if a.session_of.contains_key(ticker) {
                return Ok(());
            }
            let limit = self.shared.per_session_limit;
            let free = a.tickers.iter().enumerate().filter(|(_, t)| t.len() < limit).min_by_key(|(_, t)| t.len());
            let Some((idx, _)) = free else {
                let problem = if a.tickers.is_empty() {
                    format!("cannot register {ticker}: the feed has no sessions (no approval sources)")
                } else {
                    format!(
                        "cannot register {ticker}: all {} sessions hold {limit} registrations; \
                         each additional app key adds {limit}",
                        a.tickers.len()
                    )
                };
                return Err(KisError::InvalidRequest { field: "ticker", problem });
            };
            a.tickers[idx].insert(ticker.to_owned());
            a.session_of.insert(ticker.to_owned(), idx);
            idx
        };
        self.notify(idx, ticker);
        Ok(())
    }

    /// Unregisters `ticker`; a ticker not subscribed is a no-op.
    ///
    /// # Errors
    /// `InvalidRequest` for a malformed code.
    pub async fn unsubscribe(&self, ticker: &str) -> Result<(), KisError> {
        check_ticker(ticker)?;
        let idx = {
            let mut a = self.shared.assignments();
            let Some(idx) = a.session_of.remove(ticker) else { return Ok(()) };
            a.tickers[idx].remove(ticker);
            idx
        };
        self.notify(idx, ticker);
        Ok(())
    }

    fn notify(&self, idx: usize, ticker: &str) {
        // A send fails only once the session task has ended, i.e. after shutdown began; a session
        // that reconnects registers whatever is assigned to it anyway.
        if self.sessions[idx].cmds.send(Command::Sync(ticker.to_owned())).is_err() {
            tracing::debug!(session = idx, ticker, "KIS feed session has ended; change not sent");
        }
    }

    /// Every trade of every subscribed ticker, in arrival order per session. A receiver that falls
    /// more than [`FeedConfig::trade_buffer`] behind gets `Lagged` and skips ahead.
    #[must_use]
    pub fn trades(&self) -> broadcast::Receiver<Trade> {
        self.trades.subscribe()
    }

    #[must_use]
    pub fn status(&self) -> FeedStatus {
        let s = &self.shared;
        FeedStatus {
            sessions_connected: s.sessions.iter().filter(|x| x.connected.load(Ordering::Relaxed)).count(),
            reconnects: s.reconnects.load(Ordering::Relaxed),
            subscriptions: s.registered_total(),
            frames: s.frames.load(Ordering::Relaxed),
            parse_errors: s.parse_errors.load(Ordering::Relaxed),
        }
    }

    /// Closes every session with a WebSocket close and waits for the session tasks to end.
    pub async fn shutdown(self) {
        for s in &self.sessions {
            // An error means the task has already ended, which is what is wanted.
            let _ = s.cmds.send(Command::Shutdown);
        }
        for (idx, s) in self.sessions.into_iter().enumerate() {
            if let Err(e) = s.task.await {
                tracing::warn!(session = idx, error = %e, "KIS feed session task failed");
            }
        }
    }
}

fn check_ticker(ticker: &str) -> Result<(), KisError> {
    if ticker.len() == 6 && ticker.bytes().all(|b| b.is_ascii_digit() || b.is_ascii_uppercase()) {
        Ok(())
    } else {
        Err(KisError::InvalidRequest {
            field: "ticker",
            problem: format!("{ticker:?} is not a 6-character stock code of digits and capital letters"),
        })
    }
}

struct Shared {
    assignments: Mutex<Assignments>,
    sessions: Vec<SessionStats>,
    per_session_limit: usize,
    reconnects: AtomicU64,
    frames: AtomicU64,
    parse_errors: AtomicU64,
}

/// Which session each ticker belongs to: the feed's intent, which sessions reconcile KIS with.
struct Assignments {
    session_of: HashMap<String, usize>,
    tickers: Vec<BTreeSet<String>>,
}

#[derive(Default)]
struct SessionStats {
    connected: AtomicBool,
    registered: AtomicUsize,
}

impl Shared {
    fn assignments(&self) -> MutexGuard<'_, Assignments> {
        // The lock is never held across a panic-prone call, and the sets stay consistent anyway.
        self.assignments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_assigned(&self, idx: usize, ticker: &str) -> bool {
        self.assignments().tickers[idx].contains(ticker)
    }

    fn registered_total(&self) -> usize {
        self.sessions.iter().map(|s| s.registered.load(Ordering::Relaxed)).sum()
    }

    fn set_registered(&self, idx: usize, n: usize) {
        self.sessions[idx].registered.store(n, Ordering::Relaxed);
        metrics::gauge!("haechi_kis_ws_subscriptions").set(self.registered_total() as f64);
    }
}

/// Approval keys are valid 24 h (§2.4); renewing an hour early avoids presenting one that
/// expires mid-resubscription.
const KEY_MAX_AGE: Duration = Duration::from_secs(23 * 3600);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A session that stayed up this long was healthy: its loss restarts the backoff.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

struct Session {
    idx: usize,
    cfg: Arc<FeedConfig>,
    source: Arc<dyn ApprovalSource>,
    shared: Arc<Shared>,
    trades: broadcast::Sender<Trade>,
    cmds: mpsc::UnboundedReceiver<Command>,
    key: Option<(String, Instant)>,
}

enum End {
    Shutdown,
    Lost { healthy: bool },
}

/// What a received text asks the session to do.
enum Action {
    Continue,
    Echo,
    /// `new_key`: the approval key was refused, so the next connection fetches another.
    Reconnect {
        new_key: bool,
    },
}

/// One connection's view of KIS's registrations.
#[derive(Default)]
struct Conn {
    /// Registered by a message sent on this connection and not unregistered since.
    sent: HashSet<String>,
    /// Acknowledged by KIS.
    registered: HashSet<String>,
    queue: VecDeque<String>,
    queued: HashSet<String>,
    acked: bool,
}

impl Conn {
    fn enqueue(&mut self, ticker: String) {
        if self.queued.insert(ticker.clone()) {
            self.queue.push_back(ticker);
        }
    }
}

impl Session {
    async fn run(mut self) {
        let mut delay = self.cfg.reconnect_min;
        let mut first = true;
        loop {
            if !first {
                tracing::info!(session = self.idx, ?delay, "KIS feed reconnecting after a pause");
                if self.unless_shutdown(tokio::time::sleep(delay)).await.is_none() {
                    return;
                }
                self.shared.reconnects.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("haechi_kis_ws_reconnects_total").increment(1);
                delay = delay.saturating_mul(2).min(self.cfg.reconnect_max).max(self.cfg.reconnect_min);
            }
            first = false;
            match self.connect_and_stream().await {
                End::Shutdown => return,
                End::Lost { healthy: true } => delay = self.cfg.reconnect_min,
                End::Lost { healthy: false } => {}
            }
        }
    }

    /// Runs `fut` unless the feed shuts down first. Subscription changes arriving meanwhile need
    /// no handling: the next connection registers whatever is assigned then.
    async fn unless_shutdown<F: Future>(&mut self, fut: F) -> Option<F::Output> {
        tokio::pin!(fut);
        loop {
            tokio::select! {
                out = &mut fut => return Some(out),
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => return None,
                    Some(Command::Sync(_)) => {}
                },
            }
        }
    }

    async fn approval_key(&mut self) -> Option<Result<String, KisError>> {
        if let Some((key, at)) = &self.key
            && at.elapsed() < KEY_MAX_AGE
        {
            return Some(Ok(key.clone()));
        }
        let source = self.source.clone();
        let fetched = self.unless_shutdown(source.approval_key()).await?;
        if let Ok(key) = &fetched {
            self.key = Some((key.clone(), Instant::now()));
        }
        Some(fetched)
    }

    async fn connect_and_stream(&mut self) -> End {
        let idx = self.idx;
        let key = match self.approval_key().await {
            None => return End::Shutdown,
            Some(Ok(key)) => key,
            Some(Err(e)) => {
                tracing::warn!(session = idx, error = %e, "no KIS WebSocket approval key");
                return End::Lost { healthy: false };
            }
        };
        let url = self.cfg.ws_url.clone();
        let connect = tokio::time::timeout(CONNECT_TIMEOUT, tokio_tungstenite::connect_async(url.as_str()));
        let mut ws = match self.unless_shutdown(connect).await {
            None => return End::Shutdown,
            Some(Ok(Ok((ws, _)))) => ws,
            Some(Ok(Err(e))) => {
                tracing::warn!(session = idx, url = %self.cfg.ws_url, error = %e, "KIS WebSocket connect failed");
                return End::Lost { healthy: false };
            }
            Some(Err(_)) => {
                tracing::warn!(session = idx, url = %self.cfg.ws_url, "KIS WebSocket connect timed out");
                return End::Lost { healthy: false };
            }
        };
        tracing::info!(session = idx, "KIS WebSocket connected");
        self.shared.sessions[idx].connected.store(true, Ordering::Relaxed);
        let started = Instant::now();
        let mut conn = Conn::default();
        let assigned: Vec<String> = self.shared.assignments().tickers[idx].iter().cloned().collect();
        for t in assigned {
            conn.enqueue(t);
        }
        let end = self.stream(&mut ws, &key, &mut conn).await;
        self.shared.sessions[idx].connected.store(false, Ordering::Relaxed);
        self.shared.set_registered(idx, 0);
        match end {
            End::Shutdown => {
                close(&mut ws).await;
                End::Shutdown
            }
            End::Lost { .. } => End::Lost { healthy: conn.acked || started.elapsed() >= HEALTHY_AFTER },
        }
    }

    async fn stream(&mut self, ws: &mut Socket, key: &str, conn: &mut Conn) -> End {
        let idx = self.idx;
        let lost = End::Lost { healthy: false };
        let mut next_send = Instant::now();
        let mut last_rx = Instant::now();
        loop {
            tokio::select! {
                () = sleep_until(next_send), if !conn.queue.is_empty() => {
                    let Some(ticker) = conn.queue.pop_front() else { continue };
                    conn.queued.remove(&ticker);
                    let want = self.shared.is_assigned(idx, &ticker);
                    if want == conn.sent.contains(&ticker) {
                        continue;
                    }
                    let text = subscribe_message(key, &self.cfg.custtype, want, &ticker);
                    if let Err(e) = ws.send(Message::text(text)).await {
                        tracing::warn!(session = idx, error = %e, "KIS WebSocket send failed");
                        return lost;
                    }
                    tracing::debug!(session = idx, ticker, register = want, "KIS registration sent");
                    if want {
                        conn.sent.insert(ticker);
                    } else {
                        conn.sent.remove(&ticker);
                        conn.registered.remove(&ticker);
                        self.shared.set_registered(idx, conn.registered.len());
                    }
                    next_send = Instant::now() + self.cfg.subscribe_pace;
                }
                msg = ws.next() => {
                    last_rx = Instant::now();
                    match msg {
                        None => {
                            tracing::info!(session = idx, "KIS WebSocket closed");
                            return lost;
                        }
                        Some(Err(e)) => {
                            tracing::warn!(session = idx, error = %e, "KIS WebSocket failed");
                            return lost;
                        }
                        Some(Ok(Message::Text(text))) => match self.on_text(&text, conn) {
                            Action::Continue => {}
                            Action::Echo => {
                                // KIS drops sessions that do not answer; the wrappers' verbatim text
                                // echo is the answer known to work (§6.5).
                                if let Err(e) = ws.send(Message::Text(text)).await {
                                    tracing::warn!(session = idx, error = %e, "KIS PINGPONG echo failed");
                                    return lost;
                                }
                            }
                            Action::Reconnect { new_key } => {
                                if new_key {
                                    self.key = None;
                                }
                                close(ws).await;
                                return lost;
                            }
                        },
                        Some(Ok(Message::Close(frame))) => {
                            // Reading on lets tungstenite send the close reply; the stream ends next.
                            tracing::info!(session = idx, ?frame, "KIS closed the WebSocket");
                        }
                        // Tungstenite answers WebSocket pings itself; KIS sends no binary frames.
                        Some(Ok(_)) => {}
                    }
                }
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => return End::Shutdown,
                    Some(Command::Sync(ticker)) => conn.enqueue(ticker),
                },
                () = sleep_until(last_rx + self.cfg.idle_timeout) => {
                    tracing::warn!(session = idx, idle = ?self.cfg.idle_timeout, "KIS WebSocket silent; reconnecting");
                    return lost;
                }
            }
        }
    }

    fn on_text(&self, text: &str, conn: &mut Conn) -> Action {
        match frame::parse_frame(text) {
            Ok(Frame::Data(data)) => {
                self.shared.frames.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("haechi_kis_ws_frames_total", "tr_id" => data.tr_id.to_owned()).increment(1);
                // Other TRs are not this feed's business; counted above so they show up.
                if data.tr_id == H0STCNT0 {
                    match frame::parse_trades(&data) {
                        Ok(trades) => {
                            for t in trades {
                                // No receiver is not an error: nobody listens yet.
                                let _ = self.trades.send(t);
                            }
                        }
                        Err(e) => self.parse_error(&e, text),
                    }
                }
                Action::Continue
            }
            Ok(Frame::Control(c)) => self.on_control(c, conn),
            Err(e) => {
                self.parse_error(&e, text);
                Action::Continue
            }
        }
    }

    fn parse_error(&self, e: &frame::FrameError, text: &str) {
        let n = self.shared.parse_errors.fetch_add(1, Ordering::Relaxed) + 1;
        // A format change would fail every frame, several a second per ticker: log the first few
        // and then a sample, with the running count.
        if n <= 10 || n.is_multiple_of(1000) {
            let sample: String = text.chars().take(200).collect();
            tracing::warn!(session = self.idx, error = %e, parse_errors = n, frame = %sample, "unreadable KIS frame skipped");
        }
    }

    fn on_control(&self, c: Control, conn: &mut Conn) -> Action {
        let idx = self.idx;
        if c.is_pingpong {
            return Action::Echo;
        }
        let ticker = c.tr_key.clone().unwrap_or_default();
        let msg1 = c.msg1.as_deref().unwrap_or("");
        match c.msg_cd.as_deref() {
            Some("OPSP0000" | "OPSP0002") => {
                conn.acked = true;
                conn.registered.insert(ticker);
                self.shared.set_registered(idx, conn.registered.len());
            }
            Some("OPSP0001") => {
                conn.registered.remove(&ticker);
                self.shared.set_registered(idx, conn.registered.len());
            }
            Some("OPSP0008") => {
                // Left in `sent` so it is not retried until the next connection: retrying at once
                // would be the subscribe loop KIS blocks for.
                tracing::warn!(session = idx, ticker, msg1, "KIS refused the registration: MAX SUBSCRIBE OVER");
                conn.registered.remove(&ticker);
                self.shared.set_registered(idx, conn.registered.len());
            }
            Some("OPSP8996") => {
                tracing::warn!(
                    session = idx,
                    msg1,
                    "KIS: the app key is in use by another session; reconnecting later"
                );
                return Action::Reconnect { new_key: false };
            }
            _ if msg1.to_ascii_uppercase().contains("INVALID APPROVAL") => {
                tracing::warn!(session = idx, msg1, "KIS rejected the approval key; fetching a new one");
                return Action::Reconnect { new_key: true };
            }
            _ if !c.is_success() => {
                tracing::warn!(session = idx, tr_id = %c.tr_id, ticker, msg_cd = ?c.msg_cd, msg1, "KIS refused a request");
            }
            _ => {
                tracing::debug!(session = idx, tr_id = %c.tr_id, ticker, msg_cd = ?c.msg_cd, msg1, "KIS control message")
            }
        }
        Action::Continue
    }
}

async fn close(ws: &mut Socket) {
    let closing = async {
        if ws.close(None).await.is_ok() {
            // Wait for the server's close reply so the session ends on both sides.
            while let Some(Ok(_)) = ws.next().await {}
        }
    };
    if tokio::time::timeout(CLOSE_TIMEOUT, closing).await.is_err() {
        tracing::debug!("KIS WebSocket close handshake timed out");
    }
}

#[derive(serde::Serialize)]
struct SubscribeMessage<'a> {
    header: SubscribeHeader<'a>,
    body: SubscribeBody<'a>,
}

#[derive(serde::Serialize)]
struct SubscribeHeader<'a> {
    approval_key: &'a str,
    custtype: &'a str,
    tr_type: &'a str,
    #[serde(rename = "content-type")]
    content_type: &'a str,
}

#[derive(serde::Serialize)]
struct SubscribeBody<'a> {
    input: SubscribeInput<'a>,
}

#[derive(serde::Serialize)]
struct SubscribeInput<'a> {
    tr_id: &'a str,
    tr_key: &'a str,
}

/// The §6.2 message: `tr_type` 1 registers, 2 unregisters.
fn subscribe_message(approval_key: &str, custtype: &str, register: bool, ticker: &str) -> String {
    let msg = SubscribeMessage {
        header: SubscribeHeader {
            approval_key,
            custtype,
            tr_type: if register { "1" } else { "2" },
            content_type: "utf-8",
        },
        body: SubscribeBody { input: SubscribeInput { tr_id: H0STCNT0, tr_key: ticker } },
    };
    // Serialising string fields cannot fail.
    serde_json::to_string(&msg).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn the_subscribe_message_is_the_spec_shape() {
        assert_eq!(
            subscribe_message("k\"ey", "P", true, "005930"),
            r#"{"header":{"approval_key":"k\"ey","custtype":"P","tr_type":"1","content-type":"utf-8"},"body":{"input":{"tr_id":"H0STCNT0","tr_key":"005930"}}}"#
        );
        assert!(subscribe_message("k", "P", false, "005930").contains(r#""tr_type":"2""#));
    }

    #[test]
    fn tickers_are_six_digits_or_capitals() {
        for ok in ["005930", "Q50001", "0000J0"] {
            assert!(check_ticker(ok).is_ok(), "{ok}");
        }
        for bad in ["", "5930", "0059300", "00593a", "005 30", "００５９３０"] {
            let err = check_ticker(bad).unwrap_err().to_string();
            assert!(err.contains("ticker") && err.contains(&format!("{bad:?}")), "{err}");
        }
    }
}
