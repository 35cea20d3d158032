//! Portfolio and security signals, and the findings (would-be threat events) every source's
//! facts give under fixed, documented thresholds. Playbooks use their own thresholds; these
//! are what the risk dashboard shows without one.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};

use crate::signal::{Facts, Signal, Source};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// Points toward its source's score component.
    pub fn points(self) -> u32 {
        match self {
            Severity::Info => 10,
            Severity::Warning => 30,
            Severity::Critical => 60,
        }
    }
}

/// What a finding is about. The `as_str` names are stored and shown; keep them stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ThreatKind {
    IndexDrawdown,
    VolatilityRegime,
    CircuitBreakerLevel,
    GapDown,
    WeakBreadth,
    LimitDowns,
    Concentration,
    SectorConcentration,
    PortfolioDrawdown,
    DailyLoss,
    SingleNameCrash,
    IlliquidPosition,
    NegativeDisclosure,
    FailedSigninBurst,
    NewIpSignin,
    NewDeviceSignin,
    MfaDisabled,
    NewApiToken,
    PasswordChanged,
}

impl ThreatKind {
    pub const ALL: [ThreatKind; 19] = {
        use ThreatKind::*;
        [
            IndexDrawdown,
            VolatilityRegime,
            CircuitBreakerLevel,
            GapDown,
            WeakBreadth,
            LimitDowns,
            Concentration,
            SectorConcentration,
            PortfolioDrawdown,
            DailyLoss,
            SingleNameCrash,
            IlliquidPosition,
            NegativeDisclosure,
            FailedSigninBurst,
            NewIpSignin,
            NewDeviceSignin,
            MfaDisabled,
            NewApiToken,
            PasswordChanged,
        ]
    };

    /// The kind a stored name stands for (`as_str`'s inverse).
    pub fn parse(name: &str) -> Option<ThreatKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        use ThreatKind::*;
        match self {
            IndexDrawdown => "index_drawdown",
            VolatilityRegime => "volatility_regime",
            CircuitBreakerLevel => "circuit_breaker_level",
            GapDown => "gap_down",
            WeakBreadth => "weak_breadth",
            LimitDowns => "limit_downs",
            Concentration => "concentration",
            SectorConcentration => "sector_concentration",
            PortfolioDrawdown => "portfolio_drawdown",
            DailyLoss => "daily_loss",
            SingleNameCrash => "single_name_crash",
            IlliquidPosition => "illiquid_position",
            NegativeDisclosure => "negative_disclosure",
            FailedSigninBurst => "failed_signin_burst",
            NewIpSignin => "new_ip_signin",
            NewDeviceSignin => "new_device_signin",
            MfaDisabled => "mfa_disabled",
            NewApiToken => "new_api_token",
            PasswordChanged => "password_changed",
        }
    }

    pub fn source(self) -> Source {
        use ThreatKind::*;
        match self {
            IndexDrawdown | VolatilityRegime | CircuitBreakerLevel | GapDown | WeakBreadth | LimitDowns => {
                Source::Market
            }
            Concentration | SectorConcentration | PortfolioDrawdown | DailyLoss | SingleNameCrash
            | IlliquidPosition => Source::Portfolio,
            NegativeDisclosure => Source::News,
            FailedSigninBurst | NewIpSignin | NewDeviceSignin | MfaDisabled | NewApiToken | PasswordChanged => {
                Source::Security
            }
        }
    }
}

/// A detector's verdict: what, how bad, and the numbers that made it so.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub kind: ThreatKind,
    pub severity: Severity,
    /// What the finding is about within its kind (a ticker, an address); "" for the whole
    /// market or account. Events are de-duplicated on (kind, subject).
    pub subject: String,
    pub evidence: BTreeMap<String, f64>,
}

/// `(signal, kind, direction, warning, critical)`: a finding when the value crosses the
/// warning level (critical past the second). `below` compares ≤, otherwise ≥.
type Rule = (Signal, ThreatKind, bool, f64, Option<f64>);

const RULES: &[Rule] = &[
    (Signal::MarketDrawdown(252), ThreatKind::IndexDrawdown, true, -0.10, Some(-0.20)),
    (Signal::MarketVolRatio, ThreatKind::VolatilityRegime, false, 2.0, Some(3.0)),
    // KRX's circuit breakers: −8% (level 1), −15% (2), −20% (3) from the previous close.
    (Signal::MarketDayReturn, ThreatKind::CircuitBreakerLevel, true, -0.08, Some(-0.08)),
    (Signal::MarketGap, ThreatKind::GapDown, true, -0.03, Some(-0.05)),
    (Signal::MarketBreadthBelow200, ThreatKind::WeakBreadth, false, 0.70, Some(0.85)),
    (Signal::MarketLimitDowns, ThreatKind::LimitDowns, false, 5.0, Some(20.0)),
    (Signal::PortfolioMaxWeight, ThreatKind::Concentration, false, 0.30, Some(0.50)),
    (Signal::PortfolioMaxSectorWeight, ThreatKind::SectorConcentration, false, 0.50, Some(0.80)),
    (Signal::PortfolioDrawdown, ThreatKind::PortfolioDrawdown, true, -0.10, Some(-0.20)),
    (Signal::PortfolioDayReturn, ThreatKind::DailyLoss, true, -0.03, Some(-0.05)),
    (Signal::PortfolioWorstPositionDay, ThreatKind::SingleNameCrash, true, -0.10, Some(-0.20)),
    (Signal::PortfolioMaxAdvRatio, ThreatKind::IlliquidPosition, false, 0.05, Some(0.20)),
    (Signal::NewsNegativeDisclosures, ThreatKind::NegativeDisclosure, false, 1.0, Some(3.0)),
    (Signal::SecurityFailedSignins(1), ThreatKind::FailedSigninBurst, false, 5.0, Some(10.0)),
    (Signal::SecurityNewIpSignins(24), ThreatKind::NewIpSignin, false, 1.0, None),
    (Signal::SecurityNewDeviceSignins(24), ThreatKind::NewDeviceSignin, false, 1.0, None),
    (Signal::SecurityMfaDisabled(24), ThreatKind::MfaDisabled, false, 1.0, None),
    (Signal::SecurityNewTokens(24), ThreatKind::NewApiToken, false, 1.0, None),
    (Signal::SecurityPasswordChanges(24), ThreatKind::PasswordChanged, false, 1.0, None),
];

/// Warning-only kinds that are news rather than danger on their own.
fn base_severity(kind: ThreatKind) -> Severity {
    match kind {
        ThreatKind::NewDeviceSignin | ThreatKind::NewApiToken | ThreatKind::PasswordChanged => Severity::Info,
        _ => Severity::Warning,
    }
}

/// The signals [`findings`] reads, to build the facts it needs.
pub fn finding_signals() -> impl Iterator<Item = Signal> {
    RULES.iter().map(|r| r.0)
}

/// Findings from whatever facts are present (absent signals find nothing).
pub fn findings(facts: &Facts) -> Vec<Finding> {
    let mut out = Vec::new();
    for &(signal, kind, below, warn, crit) in RULES {
        let Some(v) = facts.get(signal) else { continue };
        let past = |level: f64| if below { v <= level } else { v >= level };
        if !past(warn) {
            continue;
        }
        let mut severity = base_severity(kind);
        if crit.is_some_and(past) {
            severity = Severity::Critical;
        }
        // A failed-sign-in burst from many addresses is credential stuffing, not a typo.
        if kind == ThreatKind::FailedSigninBurst && facts.get(Signal::SecurityFailedIps(1)).is_some_and(|n| n >= 5.0) {
            severity = Severity::Critical;
        }
        let mut evidence = BTreeMap::from([(signal.to_string(), v)]);
        if kind == ThreatKind::CircuitBreakerLevel {
            let level = if v <= -0.20 {
                3.0
            } else if v <= -0.15 {
                2.0
            } else {
                1.0
            };
            evidence.insert("level".into(), level);
        }
        if kind == ThreatKind::FailedSigninBurst
            && let Some(ips) = facts.get(Signal::SecurityFailedIps(1))
        {
            evidence.insert(Signal::SecurityFailedIps(1).to_string(), ips);
        }
        out.push(Finding { kind, severity, subject: String::new(), evidence });
    }
    out
}

/// One holding, valued by the caller (money in won).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holding {
    pub ticker: String,
    pub sector: Option<String>,
    pub quantity: i64,
    pub price: i64,
    /// The previous session's close, for today's move.
    pub prev_close: Option<i64>,
    /// The name's average daily value traded over 20 sessions, in won.
    pub avg_daily_value: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortfolioSnapshot {
    pub cash: i64,
    pub holdings: Vec<Holding>,
    /// The highest equity the account has closed at (its high-water mark).
    pub high_water: i64,
    /// Equity at the previous close.
    pub prev_equity: Option<i64>,
}

impl PortfolioSnapshot {
    pub fn equity(&self) -> i64 {
        self.cash + self.holdings.iter().map(|h| h.quantity.saturating_mul(h.price)).sum::<i64>()
    }

    /// The portfolio's signals. Weights are of equity (cash included), so a half-cash
    /// account holding one name is 50% concentrated, not 100%.
    pub fn facts(&self) -> Facts {
        let mut f = Facts::new();
        let equity = self.equity();
        if equity <= 0 {
            return f;
        }
        let eq = equity as f64;
        let value = |h: &Holding| h.quantity.saturating_mul(h.price) as f64;
        let mut by_sector: BTreeMap<&str, f64> = BTreeMap::new();
        let (mut max_w, mut worst, mut max_adv) = (0.0f64, None::<f64>, None::<f64>);
        for h in self.holdings.iter().filter(|h| h.quantity > 0) {
            let v = value(h);
            max_w = max_w.max(v / eq);
            // A name without a sector is not counted as one big "unknown" sector.
            if let Some(sector) = h.sector.as_deref() {
                *by_sector.entry(sector).or_default() += v;
            }
            if let Some(p) = h.prev_close.filter(|p| *p > 0) {
                let r = h.price as f64 / p as f64 - 1.0;
                worst = Some(worst.map_or(r, |w| w.min(r)));
            }
            if let Some(adv) = h.avg_daily_value.filter(|a| *a > 0) {
                let ratio = v / adv as f64;
                max_adv = Some(max_adv.map_or(ratio, |m| m.max(ratio)));
            }
        }
        f.set(Signal::PortfolioMaxWeight, max_w);
        let max_sector = by_sector.values().fold(0.0f64, |m, v| m.max(*v));
        f.set(Signal::PortfolioMaxSectorWeight, max_sector / eq);
        if self.high_water > 0 {
            f.set(Signal::PortfolioDrawdown, (eq / self.high_water as f64 - 1.0).min(0.0));
        }
        if let Some(p) = self.prev_equity.filter(|p| *p > 0) {
            f.set(Signal::PortfolioDayReturn, eq / p as f64 - 1.0);
        }
        if let Some(w) = worst {
            f.set(Signal::PortfolioWorstPositionDay, w);
        }
        if let Some(a) = max_adv {
            f.set(Signal::PortfolioMaxAdvRatio, a);
        }
        f
    }
}

/// What happened on an account, from its access and audit logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessKind {
    SignIn { ok: bool },
    MfaDisabled,
    TokenCreated,
    PasswordChanged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    pub at: DateTime<Utc>,
    pub kind: AccessKind,
    pub ip: Option<String>,
    pub device: Option<String>,
    /// A successful sign-in that passed the second factor.
    pub second_factor: bool,
}

/// What makes a burst for [`Signal::SecuritySuccessAfterBurst`]: failures and their
/// addresses in the hour before a success.
pub const BURST_FAILURES: usize = 10;
pub const BURST_ADDRESSES: usize = 5;

/// The security signals at `now` over an account's records (any order). "New" means not
/// seen on an earlier successful sign-in; the very first sign-in of an account is not new
/// (there is nothing to compare it with).
pub fn security_facts(records: &[AccessRecord], now: DateTime<Utc>, signals: &[Signal]) -> Facts {
    let mut sorted: Vec<&AccessRecord> = records.iter().filter(|r| r.at <= now).collect();
    sorted.sort_by_key(|r| r.at);
    // For each successful sign-in: was its address / device new?
    let (mut ips, mut devices) = (BTreeSet::new(), BTreeSet::new());
    let mut novelty = Vec::with_capacity(sorted.len());
    for r in &sorted {
        let mut flags = (false, false);
        if r.kind == (AccessKind::SignIn { ok: true }) {
            let first = ips.is_empty() && devices.is_empty();
            if let Some(ip) = &r.ip {
                flags.0 = !first && !ips.contains(ip.as_str());
                ips.insert(ip.as_str());
            }
            if let Some(d) = &r.device {
                flags.1 = !first && !devices.contains(d.as_str());
                devices.insert(d.as_str());
            }
        }
        novelty.push(flags);
    }
    let mut f = Facts::new();
    for &s in signals {
        let hours = match s {
            Signal::SecurityFailedSignins(h)
            | Signal::SecurityFailedIps(h)
            | Signal::SecurityNewIpSignins(h)
            | Signal::SecurityNewDeviceSignins(h)
            | Signal::SecurityMfaDisabled(h)
            | Signal::SecurityNewTokens(h)
            | Signal::SecurityPasswordChanges(h)
            | Signal::SecuritySuccessAfterBurst(h) => h,
            _ => continue,
        };
        let since = now - Duration::hours(i64::from(hours));
        let recent = || sorted.iter().zip(&novelty).filter(move |(r, _)| r.at > since);
        let count =
            |pred: &dyn Fn(&AccessRecord, (bool, bool)) -> bool| recent().filter(|(r, n)| pred(r, **n)).count() as f64;
        let v = match s {
            Signal::SecurityFailedSignins(_) => count(&|r, _| r.kind == AccessKind::SignIn { ok: false }),
            Signal::SecurityFailedIps(_) => recent()
                .filter(|(r, _)| r.kind == AccessKind::SignIn { ok: false })
                .filter_map(|(r, _)| r.ip.as_deref())
                .collect::<BTreeSet<_>>()
                .len() as f64,
            Signal::SecurityNewIpSignins(_) => count(&|_, n| n.0),
            Signal::SecurityNewDeviceSignins(_) => count(&|_, n| n.1),
            Signal::SecurityMfaDisabled(_) => count(&|r, _| r.kind == AccessKind::MfaDisabled),
            Signal::SecurityNewTokens(_) => count(&|r, _| r.kind == AccessKind::TokenCreated),
            Signal::SecuritySuccessAfterBurst(_) => recent()
                .filter(|(r, n)| n.0 && !r.second_factor)
                .filter(|(r, _)| {
                    let from = r.at - Duration::hours(1);
                    let failures: Vec<&&AccessRecord> = sorted
                        .iter()
                        .filter(|f| f.kind == AccessKind::SignIn { ok: false } && f.at >= from && f.at < r.at)
                        .collect();
                    let addresses: BTreeSet<&str> = failures.iter().filter_map(|f| f.ip.as_deref()).collect();
                    failures.len() >= BURST_FAILURES && addresses.len() >= BURST_ADDRESSES
                })
                .count() as f64,
            _ => count(&|r, _| r.kind == AccessKind::PasswordChanged),
        };
        f.set(s, v);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap() + Duration::minutes(min)
    }

    fn rec(min: i64, kind: AccessKind, ip: &str) -> AccessRecord {
        AccessRecord { at: at(min), kind, ip: Some(ip.into()), device: Some("firefox".into()), second_factor: false }
    }

    #[test]
    fn a_burst_of_failures_from_many_addresses_is_critical_and_ages_out() {
        let mut log = vec![rec(0, AccessKind::SignIn { ok: true }, "10.0.0.1")];
        for i in 0..20 {
            log.push(rec(60 + i, AccessKind::SignIn { ok: false }, &format!("203.0.113.{i}")));
        }
        log.push(rec(81, AccessKind::SignIn { ok: true }, "198.51.100.7"));
        let signals: Vec<_> =
            finding_signals().chain([Signal::SecurityFailedIps(1), Signal::SecuritySuccessAfterBurst(1)]).collect();
        let f = security_facts(&log, at(82), &signals);
        assert_eq!(f.get(Signal::SecurityFailedSignins(1)), Some(20.0));
        assert_eq!(f.get(Signal::SecurityFailedIps(1)), Some(20.0));
        assert_eq!(f.get(Signal::SecurityNewIpSignins(24)), Some(1.0));
        assert_eq!(f.get(Signal::SecuritySuccessAfterBurst(1)), Some(1.0));
        let found = findings(&f);
        let burst = found.iter().find(|x| x.kind == ThreatKind::FailedSigninBurst).unwrap();
        assert_eq!(burst.severity, Severity::Critical);
        assert_eq!(burst.evidence["security.failed_ips_1h"], 20.0);
        assert!(found.iter().any(|x| x.kind == ThreatKind::NewIpSignin));
        // Two hours later the burst is outside the one-hour window; the new address is not.
        let later = security_facts(&log, at(200), &signals);
        assert_eq!(later.get(Signal::SecurityFailedSignins(1)), Some(0.0));
        assert_eq!(later.get(Signal::SecurityNewIpSignins(24)), Some(1.0));
        // Records after `now` are not seen: the clock is the caller's.
        let before = security_facts(&log, at(30), &signals);
        assert_eq!(before.get(Signal::SecurityFailedSignins(1)), Some(0.0));
    }

    #[test]
    fn a_success_before_the_burst_or_with_the_second_factor_is_not_after_a_burst() {
        let signal = [Signal::SecuritySuccessAfterBurst(1)];
        let mut log = vec![
            rec(0, AccessKind::SignIn { ok: true }, "10.0.0.1"),
            // The owner signs in from a new network, then an attacker bursts.
            rec(30, AccessKind::SignIn { ok: true }, "198.51.100.1"),
        ];
        for i in 0..12 {
            log.push(rec(31 + i, AccessKind::SignIn { ok: false }, &format!("203.0.113.{i}")));
        }
        assert_eq!(security_facts(&log, at(44), &signal).get(signal[0]), Some(0.0));
        // A new-address success after it, having passed the second factor: the owner.
        let mut owner = rec(45, AccessKind::SignIn { ok: true }, "198.51.100.2");
        owner.second_factor = true;
        log.push(owner);
        assert_eq!(security_facts(&log, at(46), &signal).get(signal[0]), Some(0.0));
        // Without it: counted. From one address only, the burst is not a burst.
        log.push(rec(47, AccessKind::SignIn { ok: true }, "198.51.100.3"));
        assert_eq!(security_facts(&log, at(48), &signal).get(signal[0]), Some(1.0));
        let one_address: Vec<AccessRecord> = log
            .iter()
            .cloned()
            .map(|mut r| {
                if r.kind == (AccessKind::SignIn { ok: false }) {
                    r.ip = Some("203.0.113.1".into());
                }
                r
            })
            .collect();
        assert_eq!(security_facts(&one_address, at(48), &signal).get(signal[0]), Some(0.0));
    }

    #[test]
    fn the_first_sign_in_is_not_new() {
        let log = vec![rec(0, AccessKind::SignIn { ok: true }, "10.0.0.1")];
        let f = security_facts(&log, at(1), &[Signal::SecurityNewIpSignins(24)]);
        assert_eq!(f.get(Signal::SecurityNewIpSignins(24)), Some(0.0));
    }

    #[test]
    fn portfolio_weights_are_of_equity_and_moves_of_the_day() {
        let p = PortfolioSnapshot {
            cash: 500_000,
            holdings: vec![
                Holding {
                    ticker: "005930".into(),
                    sector: Some("전기전자".into()),
                    quantity: 5,
                    price: 60_000,
                    prev_close: Some(80_000),
                    avg_daily_value: Some(1_000_000),
                },
                Holding {
                    ticker: "000660".into(),
                    sector: Some("전기전자".into()),
                    quantity: 1,
                    price: 200_000,
                    prev_close: Some(200_000),
                    avg_daily_value: None,
                },
            ],
            high_water: 1_300_000,
            prev_equity: Some(1_075_000),
        };
        assert_eq!(p.equity(), 1_000_000);
        let f = p.facts();
        assert_eq!(f.get(Signal::PortfolioMaxWeight), Some(0.3));
        assert_eq!(f.get(Signal::PortfolioMaxSectorWeight), Some(0.5));
        let near = |s, v: f64| (f.get(s).unwrap() - v).abs() < 1e-12;
        assert!(near(Signal::PortfolioDrawdown, 1.0 / 1.3 - 1.0));
        assert!(near(Signal::PortfolioWorstPositionDay, -0.25));
        assert_eq!(f.get(Signal::PortfolioMaxAdvRatio), Some(0.3));
        let kinds: Vec<_> = findings(&f).iter().map(|x| (x.kind, x.severity)).collect();
        assert!(kinds.contains(&(ThreatKind::PortfolioDrawdown, Severity::Critical)));
        assert!(kinds.contains(&(ThreatKind::SingleNameCrash, Severity::Critical)));
        assert!(kinds.contains(&(ThreatKind::Concentration, Severity::Warning)));
        assert!(kinds.contains(&(ThreatKind::DailyLoss, Severity::Critical)));
    }

    #[test]
    fn every_kind_parses_back_from_its_name() {
        for k in ThreatKind::ALL {
            assert_eq!(ThreatKind::parse(k.as_str()), Some(k));
        }
        assert_eq!(ThreatKind::parse("nope"), None);
    }

    #[test]
    fn circuit_breaker_findings_carry_the_level() {
        let mut f = Facts::new();
        f.set(Signal::MarketDayReturn, -0.16);
        let found = findings(&f);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Critical);
        assert_eq!(found[0].evidence["level"], 2.0);
        f.set(Signal::MarketDayReturn, -0.05);
        assert!(findings(&f).is_empty());
    }
}
