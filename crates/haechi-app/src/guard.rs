//! Threat response for an account: its security scan (the detectors over its audit log, the
//! events, the risk score and the security playbook's actions), and what its owner sees of it.
//!
//! The decisions are `haechi-guard`'s; this module reads the rows they need, and writes back
//! the events, the state and the actions, each action audited with the evidence that fired it.

use std::collections::BTreeMap;

use haechi_core::platform::UserId;
use haechi_guard::detect::{self, AccessKind, AccessRecord, Finding};
use haechi_guard::playbook::{self, Action, Evaluator, Mode, Playbook};
use haechi_guard::threat::{Admitted, EventBook, RiskScore, ThreatEvent};
use haechi_guard::{Severity, Signal, Source, ThreatKind};
use serde_json::json;

/// The shocks a stress test applies (the pure crate's type, for the edges).
pub use haechi_guard::stress::{Shock, StressResult};

use crate::App;
use crate::audit::{RequestMeta, record};
use crate::error::{AppError, AppResult};
use crate::principal::Principal;
use crate::rbac::Permission;

/// The audit events the security detectors read.
const SECURITY_EVENTS: &[&str] =
    &["login_success", "login_failure", "login_blocked", "mfa_disabled", "token_created", "password_changed"];
/// How far back a scan looks: the longest window a playbook may use (720 h).
const LOOKBACK_MS: i64 = 30 * 24 * 3_600_000;
/// A flood is read up to this many entries: enough for any window's counts to cross every
/// threshold, and a bound on the scan's cost.
const MAX_RECORDS: u64 = 2_000;

/// One event as its owner sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EventView {
    pub id: i64,
    pub kind: String,
    pub source: Source,
    pub severity: String,
    pub subject: String,
    pub evidence: BTreeMap<String, f64>,
    pub first_seen_ms: i64,
    pub last_seen_ms: i64,
    pub seen: i32,
    pub acknowledged_at_ms: Option<i64>,
}

/// An account's risk: the score with its components, the active playbook rules and the
/// recent events.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RiskView {
    pub score: u32,
    pub components: BTreeMap<String, u32>,
    pub active_rules: Vec<String>,
    pub updated_at_ms: Option<i64>,
    pub events: Vec<EventView>,
}

/// What a scan did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanOutcome {
    pub score: u32,
    /// New events (ids); repeats within their cooldown are not here.
    pub new_events: Vec<i64>,
    /// Rules that fired, with the actions taken (`auto`) or proposed (`advise`).
    pub fired: Vec<(String, Vec<&'static str>)>,
}

fn builtin_playbook(name: &str) -> AppResult<Playbook> {
    let text = playbook::builtin(name).unwrap_or_default();
    Playbook::from_toml(text).map_err(|e| AppError::Internal { context: "a built-in playbook", source: e.into() })
}

/// The loaded market data (cached per data version).
async fn market(app: &App) -> AppResult<haechi_jobs::LoadedMarket> {
    app.market()
        .recent(app.db())
        .await
        .map_err(|e| AppError::Internal { context: "loading the market", source: e.into() })
}

fn severity_of(name: &str) -> Severity {
    match name {
        "critical" => Severity::Critical,
        "warning" => Severity::Warning,
        _ => Severity::Info,
    }
}

fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

fn to_event(row: &haechi_db::ThreatEventRow) -> Option<ThreatEvent> {
    Some(ThreatEvent {
        id: u64::try_from(row.id).ok()?,
        kind: ThreatKind::parse(&row.kind)?,
        severity: severity_of(&row.severity),
        subject: row.subject.clone(),
        evidence: serde_json::from_str(&row.evidence).unwrap_or_default(),
        first_seen: from_ms(row.first_seen),
        last_seen: from_ms(row.last_seen),
        seen: u32::try_from(row.seen).unwrap_or(1),
        acknowledged_at: row.acknowledged_at.map(from_ms),
    })
}

fn access_records(rows: &[haechi_db::AuditEntry]) -> Vec<AccessRecord> {
    rows.iter()
        .filter_map(|r| {
            let kind = match r.event.as_str() {
                "login_success" => AccessKind::SignIn { ok: true },
                // A blocked attempt is a failed one from the attacker's side.
                "login_failure" | "login_blocked" => AccessKind::SignIn { ok: false },
                "mfa_disabled" => AccessKind::MfaDisabled,
                "token_created" => AccessKind::TokenCreated,
                "password_changed" => AccessKind::PasswordChanged,
                _ => return None,
            };
            // `login_success` records whether the second factor was asked, and the device (a
            // hash of the user agent).
            let detail: serde_json::Value = serde_json::from_str(&r.detail).unwrap_or_default();
            let success = kind == (AccessKind::SignIn { ok: true });
            Some(AccessRecord {
                at: from_ms(r.at),
                kind,
                ip: Some(r.ip.clone()).filter(|ip| !ip.is_empty()),
                device: detail["device"].as_str().filter(|_| success).map(str::to_owned),
                second_factor: success && detail["mfa"] == true,
            })
        })
        .collect()
}

/// Scans an account's security after something happened to it (a sign-in, failed or not; a
/// token; a password or MFA change): detectors → events → score → the security playbook.
///
/// # Errors
/// The database's error; nothing is half-written that a rescan would not repair.
pub async fn scan_security(app: &App, meta: &RequestMeta, user: UserId) -> AppResult<ScanOutcome> {
    let gate = app.db().guard_gate(user.get());
    let _held = gate.lock().await;
    let now_ms = app.clock().now_ms();
    let since = now_ms - LOOKBACK_MS;
    // Successful sign-ins are read apart, so a flood of failures cannot push the account's
    // known addresses out of the scan (and make them look new).
    let mut rows = app.db().audit_of_user(user.get(), &SECURITY_EVENTS[1..], since, MAX_RECORDS).await?;
    rows.extend(app.db().audit_of_user(user.get(), &SECURITY_EVENTS[..1], since, MAX_RECORDS).await?);
    let records = access_records(&rows);
    let pb = builtin_playbook("security-default")?;
    let mut signals: Vec<Signal> = pb.signals();
    signals.extend(detect::finding_signals().filter(|s| s.source() == Source::Security));
    signals.push(Signal::SecurityFailedIps(1));
    signals.sort();
    signals.dedup();
    let facts = detect::security_facts(&records, from_ms(now_ms), &signals);
    let findings: Vec<Finding> =
        detect::findings(&facts).into_iter().filter(|f| f.kind.source() == Source::Security).collect();
    let new_events = record_findings(app, meta, user, &findings, now_ms).await?;
    let mut state = StoredState::load(app, user).await?;
    let fired = apply_playbook(app, meta, user, &pb, &mut state, SECURITY, &facts, json!({}), now_ms).await?;
    state.components.insert("security".into(), RiskScore::of(&findings).security);
    let score = state.save(app, user, now_ms).await?;
    Ok(ScanOutcome { score, new_events, fired })
}

/// Steps a playbook on the facts of now (its active rules kept in `state` under `scope`):
/// in `auto` mode each fired rule's actions are carried out, in `advise` mode proposed; both
/// audited with the evidence and `context`. The rules that fired, with their actions.
#[allow(clippy::too_many_arguments)] // one call per scan kind; a struct would only rename them
async fn apply_playbook(
    app: &App,
    meta: &RequestMeta,
    user: UserId,
    pb: &Playbook,
    state: &mut StoredState,
    scope: &str,
    facts: &haechi_guard::Facts,
    context: serde_json::Value,
    now_ms: i64,
) -> AppResult<Vec<(String, Vec<&'static str>)>> {
    let mut evaluator = Evaluator::new(pb.clone()).with_active(state.active(scope));
    let mut fired = Vec::new();
    for t in evaluator.step(facts) {
        if !t.fired {
            let detail = json!({"playbook": pb.name, "rule": t.rule_id, "evidence": t.evidence, "context": context});
            record(app, meta, "guard_rule_released", Some(user), None, detail).await;
            continue;
        }
        let rule = &pb.rules[t.rule];
        let names: Vec<&'static str> = rule.actions.iter().map(Action::name).collect();
        match pb.mode {
            Mode::Auto => {
                for action in &rule.actions {
                    let done = act(app, user, action, now_ms).await?;
                    let detail = json!({"playbook": pb.name, "mode": "auto", "rule": t.rule_id, "action": action.name(),
                                        "result": done, "evidence": t.evidence, "context": context});
                    record(app, meta, "guard_action", Some(user), None, detail).await;
                }
            }
            Mode::Advise => {
                let detail = json!({"playbook": pb.name, "mode": "advise", "rule": t.rule_id, "actions": rule.actions,
                                    "evidence": t.evidence, "context": context});
                record(app, meta, "guard_advice", Some(user), None, detail).await;
            }
        }
        fired.push((t.rule_id.clone(), names));
    }
    state.active_rules.insert(scope.into(), evaluator.active_ids());
    Ok(fired)
}

/// The namespace of the security playbook's active rules in the guard state.
const SECURITY: &str = "security";

/// An account's guard state as stored: score components by source, and active rules by
/// playbook scope (`security`, `paper:7`). Each scan updates its own parts.
#[derive(Debug, Default)]
struct StoredState {
    components: BTreeMap<String, u32>,
    active_rules: BTreeMap<String, Vec<String>>,
}

impl StoredState {
    async fn load(app: &App, user: UserId) -> AppResult<Self> {
        Ok(match app.db().guard_state(user.get()).await? {
            Some(s) => StoredState {
                components: serde_json::from_str(&s.components).unwrap_or_default(),
                active_rules: serde_json::from_str(&s.active_rules).unwrap_or_default(),
            },
            None => StoredState::default(),
        })
    }

    fn active(&self, scope: &str) -> &[String] {
        self.active_rules.get(scope).map_or(&[], Vec::as_slice)
    }

    /// Stores the state; the total score.
    async fn save(&mut self, app: &App, user: UserId, now_ms: i64) -> AppResult<u32> {
        self.active_rules.retain(|_, v| !v.is_empty());
        // Each paper account keeps its own portfolio component; the user's is the worst.
        let worst =
            self.components.iter().filter(|(k, _)| k.starts_with("portfolio:")).map(|(_, v)| *v).max().unwrap_or(0);
        self.components.insert("portfolio".into(), worst);
        let c = |k: &str| self.components.get(k).copied().unwrap_or(0);
        let total = RiskScore::from_components(c("market"), c("portfolio"), c("news"), c("security")).total;
        app.db()
            .put_guard_state(haechi_db::GuardState {
                user_id: user.get(),
                score: i32::try_from(total).unwrap_or(100),
                components: serde_json::to_string(&self.components).unwrap_or_else(|_| "{}".into()),
                active_rules: serde_json::to_string(&self.active_rules).unwrap_or_else(|_| "{}".into()),
                updated_at: now_ms,
            })
            .await?;
        Ok(total)
    }
}

/// Findings become events: new ones stored and audited, repeats within their cooldown folded
/// into the open event. The new events' ids.
async fn record_findings(
    app: &App,
    meta: &RequestMeta,
    user: UserId,
    findings: &[Finding],
    now_ms: i64,
) -> AppResult<Vec<i64>> {
    let now = from_ms(now_ms);
    let load = || async {
        let rows = app.db().threat_events(user.get(), now_ms - LOOKBACK_MS, 500).await?;
        AppResult::Ok(EventBook::from_events(rows.iter().filter_map(to_event).collect()))
    };
    let mut book = load().await?;
    let mut new = Vec::new();
    for f in findings {
        let evidence = serde_json::to_string(&f.evidence).unwrap_or_else(|_| "{}".into());
        match book.admit(f, now) {
            Admitted::New(_) => {
                let row = haechi_db::NewThreatEvent {
                    user_id: user.get(),
                    kind: f.kind.as_str().into(),
                    severity: f.severity.as_str().into(),
                    subject: f.subject.clone(),
                    evidence,
                    at: now_ms,
                };
                let id = app.db().insert_threat_event(row).await?;
                // The book numbered it; the database's id is the one to keep.
                book = load().await?;
                new.push(id);
                let detail = json!({"event_id": id, "kind": f.kind.as_str(), "severity": f.severity.as_str(),
                                    "subject": f.subject, "evidence": f.evidence});
                record(app, meta, "threat_event", Some(user), None, detail).await;
            }
            Admitted::Repeat(id) => {
                let seen = book.events().iter().find(|e| e.id == id).map_or(1, |e| e.seen);
                let id = i64::try_from(id).unwrap_or_default();
                app.db().touch_threat_event(id, now_ms, i32::try_from(seen).unwrap_or(i32::MAX), evidence).await?;
            }
        }
    }
    Ok(new)
}

/// Carries out one security action; what it did, for the audit entry.
async fn act(app: &App, user: UserId, action: &Action, now_ms: i64) -> AppResult<serde_json::Value> {
    let db = app.db();
    Ok(match action {
        Action::Alert => json!("event raised"),
        // Every session ends: whoever is signed in must sign in again, with the second factor
        // when it is enrolled.
        Action::RequireStepUp => {
            crate::sessions::end_all(app, user).await?;
            json!({"sessions_ended": true})
        }
        Action::RevokeTokens => {
            let revoked = db.revoke_all_tokens(user.get(), now_ms).await?;
            app.cache().invalidate_user(user);
            json!({"tokens_revoked": revoked})
        }
        // As an administrator's "disable": sign-ins refused, sessions ended; an administrator
        // enables the account again after talking to its owner.
        Action::LockAccount => {
            db.set_disabled(user.get(), true).await?;
            crate::sessions::end_all(app, user).await?;
            app.cache().invalidate_user(user);
            json!({"locked": true})
        }
        // Portfolio actions have no meaning for a security scan; validation of a security
        // playbook could refuse them, the built-in one has none.
        other => json!({"skipped": other.name()}),
    })
}

/// Runs a security scan after an account event without failing the caller: a scan that
/// cannot run is logged, and the next event rescans.
pub async fn after_account_event(app: &App, meta: &RequestMeta, user: UserId) {
    if let Err(e) = scan_security(app, meta, user).await {
        tracing::error!(error = %e, user = user.get(), "security scan failed");
    }
}

/// After a failed or refused sign-in: the scan runs in the background, so the answer takes
/// as long for a registered email as for an unknown one (which is never scanned), and a
/// flood costs at most one running and one queued scan per account: an event that finds a
/// scan already queued is read by it.
pub fn after_failed_sign_in(app: &App, meta: &RequestMeta, user: UserId) {
    {
        let mut pending = app.guard_pending().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !pending.insert(user.get()) {
            return;
        }
    }
    let (app, meta) = (app.clone(), meta.clone());
    tokio::spawn(async move {
        let gate = app.db().guard_gate(user.get());
        let held = gate.lock().await;
        // From here on a new event queues another scan: this one may have read too early.
        app.guard_pending().lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&user.get());
        drop(held);
        after_account_event(&app, &meta, user).await;
    });
}

/// The caller's own risk view.
///
/// # Errors
/// The database's error.
pub async fn risk(app: &App, p: &Principal) -> AppResult<RiskView> {
    p.require(Permission::OwnAccount)?;
    let uid = p.id().get();
    let now = app.clock().now_ms();
    let state = app.db().guard_state(uid).await?;
    let events = app.db().threat_events(uid, now - LOOKBACK_MS, 200).await?;
    let components: BTreeMap<String, u32> =
        state.as_ref().and_then(|s| serde_json::from_str(&s.components).ok()).unwrap_or_default();
    let active: BTreeMap<String, Vec<String>> =
        state.as_ref().and_then(|s| serde_json::from_str(&s.active_rules).ok()).unwrap_or_default();
    Ok(RiskView {
        score: state.as_ref().map_or(0, |s| u32::try_from(s.score).unwrap_or(0)),
        components,
        active_rules: active
            .iter()
            .flat_map(|(scope, ids)| ids.iter().map(move |id| format!("{scope}/{id}")))
            .collect(),
        updated_at_ms: state.as_ref().map(|s| s.updated_at),
        events: events
            .iter()
            .rev()
            .map(|r| EventView {
                id: r.id,
                kind: r.kind.clone(),
                source: ThreatKind::parse(&r.kind).map_or(Source::Security, ThreatKind::source),
                severity: r.severity.clone(),
                subject: r.subject.clone(),
                evidence: serde_json::from_str(&r.evidence).unwrap_or_default(),
                first_seen_ms: r.first_seen,
                last_seen_ms: r.last_seen,
                seen: r.seen,
                acknowledged_at_ms: r.acknowledged_at,
            })
            .collect(),
    })
}

/// Acknowledges one of the caller's events.
///
/// # Errors
/// [`AppError::NotFound`] when it is not the caller's event or was already acknowledged.
pub async fn acknowledge(app: &App, p: &Principal, meta: &RequestMeta, event_id: i64) -> AppResult<()> {
    p.require(Permission::OwnAccount)?;
    if !app.db().acknowledge_threat_event(p.id().get(), event_id, app.clock().now_ms()).await? {
        return Err(AppError::NotFound);
    }
    record(app, meta, "threat_event_acknowledged", Some(p.id()), Some(p.id()), json!({"event_id": event_id})).await;
    Ok(())
}

/// Scan one paper account after its session closed (queue `guard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PaperScanJob {
    pub account_id: i64,
    /// The closed session, yyyymmdd.
    pub session: i32,
}

impl haechi_jobs::Job for PaperScanJob {
    const KIND: &'static str = "guard.paper";
    const QUEUE: &'static str = haechi_jobs::queues::GUARD;
}

/// Executes [`PaperScanJob`]s.
#[derive(Debug, Clone)]
pub struct PaperScanner(pub App);

impl haechi_jobs::JobHandler for PaperScanner {
    type Job = PaperScanJob;

    async fn handle(&self, job: PaperScanJob, _ctx: haechi_jobs::JobContext) -> Result<(), haechi_jobs::HandlerError> {
        let Some(session) = haechi_jobs::market::day_from_number(job.session) else {
            return Err(haechi_jobs::HandlerError::Permanent(format!("session {} is not a date", job.session)));
        };
        let meta = RequestMeta::local("guard.paper");
        match scan_paper_account(&self.0, &meta, job.account_id, session).await {
            Ok(_) => Ok(()),
            Err(e) => Err(haechi_jobs::HandlerError::Retryable(e.to_string())),
        }
    }
}

/// The index whose signals the market playbook reads.
const MARKET_INDEX: &str = "KS11";

/// Scans a paper account as of a closed session: the market's signals (the index, and its
/// constituents' breadth, up to that session only — a replayed past session must not see
/// the days after it) and the account's (weights, drawdown, the day's moves, size against
/// value traded) → events → the market and portfolio score components → the default market
/// playbook in `advise` mode (its proposals audited as `guard_advice`, with the account).
///
/// # Errors
/// The database's error, or the market data's.
pub async fn scan_paper_account(
    app: &App,
    meta: &RequestMeta,
    account_id: i64,
    session: chrono::NaiveDate,
) -> AppResult<ScanOutcome> {
    let Some(account) = app.db().paper_account(account_id).await? else {
        return Ok(ScanOutcome::default());
    };
    let user = UserId(account.owner_id);
    let gate = app.db().guard_gate(user.get());
    let _held = gate.lock().await;
    let now_ms = app.clock().now_ms();
    let loaded = market(app).await?;
    let store = &loaded.store;
    // Sessions up to and including the one that closed.
    let upto = store.dates().partition_point(|d| *d <= session);
    let pb = builtin_playbook("market-default")?;
    let mut facts = haechi_guard::Facts::new();
    if let Some(index) = store.index(MARKET_INDEX) {
        // Two years of sessions cover the longest window a rule may read (504 days).
        let first = upto.saturating_sub(520);
        let days: Vec<haechi_guard::IndexDay> = (first..upto)
            .filter(|&i| index.close[i].is_finite() && index.close[i] > 0.0)
            .map(|i| haechi_guard::IndexDay { date: store.dates()[i], open: 0.0, close: index.close[i] })
            .collect();
        if !days.is_empty() {
            // Breadth reads a 200-day average: a year of each name is enough.
            let from = upto.saturating_sub(260);
            let names: Vec<Vec<(chrono::NaiveDate, f64)>> = (0..store.n_instruments())
                .map(|slot| {
                    (from..upto)
                        .filter_map(|i| store.close(slot, i).map(|p| (store.dates()[i], p.get() as f64)))
                        .collect()
                })
                .collect();
            let series = haechi_guard::MarketSeries::new(MARKET_INDEX, days)
                .map_err(|e| AppError::Internal { context: "the market index", source: e.into() })?
                .with_constituents(&names);
            let mut wanted = pb.signals();
            wanted.extend(haechi_guard::market::FINDING_SIGNALS);
            facts.extend(&series.facts(series.len() - 1, &wanted));
        }
    }
    // The account, valued at the session's close.
    let day = haechi_jobs::market::day_number(session);
    let snapshot_holdings = valued_holdings(app, store, account_id, upto, Some(day)).await?;
    let equity_rows = app.db().paper_equity(account_id).await?;
    let snapshot = haechi_guard::PortfolioSnapshot {
        cash: account.cash,
        holdings: snapshot_holdings,
        high_water: equity_rows.iter().filter(|r| r.session <= day).map(|r| r.equity).max().unwrap_or(0),
        prev_equity: equity_rows.iter().rev().find(|r| r.session < day).map(|r| r.equity),
    };
    let mut snapshot = snapshot;
    snapshot.high_water = snapshot.high_water.max(snapshot.equity());
    facts.extend(&snapshot.facts());

    let subject = format!("account:{account_id}");
    let findings: Vec<Finding> = detect::findings(&facts)
        .into_iter()
        .filter(|f| matches!(f.kind.source(), Source::Market | Source::Portfolio))
        .map(|mut f| {
            if f.kind.source() == Source::Portfolio {
                f.subject.clone_from(&subject);
            }
            f
        })
        .collect();
    let new_events = record_findings(app, meta, user, &findings, now_ms).await?;
    let mut state = StoredState::load(app, user).await?;
    let context = json!({"account_id": account_id, "session": session});
    let fired =
        apply_playbook(app, meta, user, &pb, &mut state, &format!("paper:{account_id}"), &facts, context, now_ms)
            .await?;
    let s = RiskScore::of(&findings);
    state.components.insert("market".into(), s.market);
    state.components.insert(format!("portfolio:{account_id}"), s.portfolio);
    let score = state.save(app, user, now_ms).await?;
    if !new_events.is_empty() || !fired.is_empty() {
        app.notify_paper(user.get(), account_id);
    }
    Ok(ScanOutcome { score, new_events, fired })
}

/// An account's holdings valued as of session `upto − 1` of the store: the session's last
/// print when `day` is that session and a quote exists, else the data's close; with sector
/// and 20-day average value traded.
async fn valued_holdings(
    app: &App,
    store: &haechi_core::MarketStore,
    account_id: i64,
    upto: usize,
    day: Option<i32>,
) -> AppResult<Vec<haechi_guard::Holding>> {
    let holdings = app.db().paper_holdings(account_id).await?;
    let quotes: BTreeMap<String, haechi_db::QuoteRow> = app
        .db()
        .quotes(&holdings.iter().map(|h| h.ticker.clone()).collect::<Vec<_>>())
        .await?
        .into_iter()
        .filter(|q| day.is_none_or(|d| q.session == d))
        .map(|q| (q.ticker.clone(), q))
        .collect();
    let mut out = Vec::new();
    for h in holdings.iter().filter(|h| h.quantity > 0) {
        let slot = haechi_core::Ticker::parse(&h.ticker).ok().and_then(|t| store.slot_of(t));
        let close_at = |i: usize| slot.and_then(|s| store.last_close(s, i)).map(|p| p.get());
        let price = quotes.get(&h.ticker).map(|q| q.last).or_else(|| upto.checked_sub(1).and_then(close_at));
        let prev_close = quotes.get(&h.ticker).map(|q| q.prev_close).or_else(|| upto.checked_sub(2).and_then(close_at));
        let avg_daily_value = slot.and_then(|s| {
            let values: Vec<i64> = (upto.saturating_sub(20)..upto)
                .filter_map(|i| store.raw(s, i))
                .map(|b| i64::from(b.close).saturating_mul(i64::try_from(b.volume).unwrap_or(i64::MAX)))
                .collect();
            (!values.is_empty()).then(|| values.iter().sum::<i64>() / values.len() as i64)
        });
        out.push(haechi_guard::Holding {
            ticker: h.ticker.clone(),
            sector: slot.map(|s| store.instrument(s).sector.clone()).filter(|s| !s.is_empty()),
            quantity: h.quantity,
            // Without a price (a name the market data lacks) the book cost stands in.
            price: price.unwrap_or(h.cost / h.quantity.max(1)),
            prev_close,
            avg_daily_value,
        });
    }
    Ok(out)
}

/// What to stress a paper account with: a shock (its `daily_vol` is filled in from the
/// index), or a historical replay by name (`haechi_guard::stress::replays`).
#[derive(Debug, Clone, PartialEq)]
pub enum StressScenario {
    Shock(haechi_guard::stress::Shock),
    Replay(String),
}

/// A stress test's answer, with what it ran.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StressReport {
    pub account_id: i64,
    /// The session the account was valued at.
    pub as_of: chrono::NaiveDate,
    pub scenario: String,
    pub result: haechi_guard::stress::StressResult,
}

/// Stresses one of the caller's paper accounts as it stands at the last session of the
/// market data.
///
/// # Errors
/// [`AppError::NotFound`] for another user's account; [`AppError::Invalid`] naming the field
/// (`pct`, `days`, `replay`, …) for a scenario that cannot run.
pub async fn stress(app: &App, p: &Principal, account_id: i64, scenario: StressScenario) -> AppResult<StressReport> {
    p.require(Permission::OwnAccount)?;
    let account = crate::paper::owned(app, p, account_id).await?;
    let loaded = market(app).await?;
    let store = &loaded.store;
    // Valued as the market stands for the account: up to the last session before the one
    // orders now go to (a replayed market is somewhere in the past of its data).
    let session = crate::paper::market_time(app).await?.order_session;
    let upto = store.dates().partition_point(|d| *d < session);
    let as_of = upto
        .checked_sub(1)
        .map(|i| store.dates()[i])
        .ok_or_else(|| AppError::invalid("market", "no market data before the current session is loaded"))?;
    let holdings = valued_holdings(app, store, account_id, upto, None).await?;
    let book = haechi_guard::stress::Book {
        cash: account.cash,
        positions: holdings
            .iter()
            .map(|h| haechi_guard::stress::Position {
                ticker: h.ticker.clone(),
                sector: h.sector.clone(),
                quantity: h.quantity,
                price: h.price,
                avg_daily_value: h.avg_daily_value,
            })
            .collect(),
    };
    let index: Vec<(chrono::NaiveDate, f64)> = store
        .index(MARKET_INDEX)
        .map(|ix| {
            store.dates()[..upto].iter().copied().zip(ix.close.iter().copied()).filter(|(_, c)| c.is_finite()).collect()
        })
        .unwrap_or_default();
    let bad = |e: haechi_guard::stress::StressError| match e {
        haechi_guard::stress::StressError::Invalid { field, problem } => AppError::invalid(field, problem),
    };
    let (name, result) = match scenario {
        StressScenario::Shock(mut shock) => {
            if let haechi_guard::stress::Shock::VolatilitySpike { daily_vol, .. } = &mut shock {
                // The index's last 20 sessions, zero-mean, per day.
                let r: Vec<f64> = index.windows(2).rev().take(20).map(|w| w[1].1 / w[0].1 - 1.0).collect();
                if r.is_empty() {
                    return Err(AppError::invalid("k", "the market data has no index to take a volatility from"));
                }
                *daily_vol = (r.iter().map(|x| x * x).sum::<f64>() / r.len() as f64).sqrt();
            }
            let name = serde_json::to_string(&shock).unwrap_or_default();
            (name, haechi_guard::stress::shock(&book, &shock).map_err(bad)?)
        }
        StressScenario::Replay(which) => {
            let all = haechi_guard::stress::replays();
            let Some(window) = all.iter().find(|r| r.name == which) else {
                let names: Vec<&str> = all.iter().map(|r| r.name).collect();
                return Err(AppError::invalid(
                    "replay",
                    format!("unknown replay \"{which}\" (known: {})", names.join(", ")),
                ));
            };
            let mut closes = BTreeMap::new();
            for pos in &book.positions {
                if let Some(slot) = haechi_core::Ticker::parse(&pos.ticker).ok().and_then(|t| store.slot_of(t)) {
                    let series: Vec<(chrono::NaiveDate, f64)> = (0..upto)
                        .filter(|&i| store.dates()[i] >= window.from && store.dates()[i] <= window.to)
                        .filter_map(|i| store.close(slot, i).map(|c| (store.dates()[i], c.get() as f64)))
                        .collect();
                    closes.insert(pos.ticker.clone(), series);
                }
            }
            let result = haechi_guard::stress::replay(&book, window, &closes, &index).map_err(|e| match e {
                haechi_guard::stress::StressError::Invalid { problem, .. } => {
                    AppError::invalid("replay", format!("{problem}: the loaded market data does not cover it"))
                }
            })?;
            (format!("replay {}", window.name), result)
        }
    };
    Ok(StressReport { account_id, as_of, scenario: name, result })
}

/// The names of the historical replays a stress test can run.
#[must_use]
pub fn stress_replays() -> Vec<&'static str> {
    haechi_guard::stress::replays().iter().map(|r| r.name).collect()
}

/// Forgets which security rules are active (an administrator enabled a locked account).
///
/// # Errors
/// The database's error.
pub async fn reset_security_rules(app: &App, user: UserId) -> AppResult<()> {
    let gate = app.db().guard_gate(user.get());
    let _held = gate.lock().await;
    let mut state = StoredState::load(app, user).await?;
    if state.active_rules.remove(SECURITY).is_some() {
        state.save(app, user, app.clock().now_ms()).await?;
    }
    Ok(())
}
