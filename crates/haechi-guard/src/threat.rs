//! The risk score and the threat events: findings become events once per (kind, subject)
//! within a cooldown, unless they got worse; the user acknowledges them.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::detect::{Finding, Severity, ThreatKind};
use crate::signal::Source;

/// An account's risk, 0–100, with one component per source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RiskScore {
    pub total: u32,
    pub market: u32,
    pub portfolio: u32,
    pub news: u32,
    pub security: u32,
}

impl RiskScore {
    /// Each component is the sum of its findings' points (info 10, warning 30, critical 60),
    /// capped at 100. The total is the worst component plus a fifth of the others, capped:
    /// one bad area is enough to be at risk, and several add up without drowning it.
    pub fn of(findings: &[Finding]) -> Self {
        let mut parts: BTreeMap<Source, u32> = BTreeMap::new();
        for f in findings {
            let p = parts.entry(f.kind.source()).or_default();
            *p = (*p + f.severity.points()).min(100);
        }
        let get = |s| parts.get(&s).copied().unwrap_or(0);
        Self::from_components(get(Source::Market), get(Source::Portfolio), get(Source::News), get(Source::Security))
    }

    /// The score of components scanned at different times (the security scan after a
    /// sign-in, the portfolio's after a close), combined as [`RiskScore::of`] does.
    pub fn from_components(market: u32, portfolio: u32, news: u32, security: u32) -> Self {
        let comps = [market, portfolio, news, security].map(|c| c.min(100));
        let max = comps.iter().copied().max().unwrap_or(0);
        let rest: u32 = comps.iter().sum::<u32>() - max;
        Self {
            total: (max + rest / 5).min(100),
            market: comps[0],
            portfolio: comps[1],
            news: comps[2],
            security: comps[3],
        }
    }
}

/// A threat event as the user sees it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ThreatEvent {
    pub id: u64,
    pub kind: ThreatKind,
    pub severity: Severity,
    pub subject: String,
    pub evidence: BTreeMap<String, f64>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many times the finding was seen within the cooldown, this one included.
    pub seen: u32,
    pub acknowledged_at: Option<DateTime<Utc>>,
}

/// How long a finding stays one event: repeats within this span after the last sighting
/// update it instead of raising a new one, unless the severity rose. Never shorter than
/// the detector's own window or the scans' interval, so one occurrence is one event: the
/// 24-hour security signals hold for a day, and market and portfolio findings (scanned
/// once a session) for three days.
pub fn cooldown(kind: ThreatKind, severity: Severity) -> Duration {
    let by_severity = match severity {
        Severity::Info => Duration::hours(24),
        Severity::Warning => Duration::hours(6),
        Severity::Critical => Duration::hours(1),
    };
    let floor = match kind {
        ThreatKind::FailedSigninBurst => Duration::zero(),
        ThreatKind::NewIpSignin
        | ThreatKind::NewDeviceSignin
        | ThreatKind::MfaDisabled
        | ThreatKind::NewApiToken
        | ThreatKind::PasswordChanged => Duration::hours(25),
        _ => Duration::hours(72),
    };
    by_severity.max(floor)
}

/// What [`EventBook::admit`] did with a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admitted {
    /// A new event (the id); notify.
    New(u64),
    /// Folded into an open event within its cooldown; do not notify again.
    Repeat(u64),
}

/// The events of one account (the app stores them; this is the decision).
#[derive(Debug, Clone, Default)]
pub struct EventBook {
    events: Vec<ThreatEvent>,
    next_id: u64,
}

impl EventBook {
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a book from stored events.
    pub fn from_events(events: Vec<ThreatEvent>) -> Self {
        let next_id = events.iter().map(|e| e.id).max().unwrap_or(0);
        Self { events, next_id }
    }

    pub fn events(&self) -> &[ThreatEvent] {
        &self.events
    }

    pub fn admit(&mut self, finding: &Finding, now: DateTime<Utc>) -> Admitted {
        // Only the latest event of a (kind, subject) can absorb a repeat.
        let latest = self.events.iter_mut().rev().find(|e| e.kind == finding.kind && e.subject == finding.subject);
        if let Some(e) = latest
            && now - e.last_seen < cooldown(e.kind, e.severity)
            && finding.severity <= e.severity
        {
            e.last_seen = now;
            e.seen += 1;
            e.evidence = finding.evidence.clone();
            return Admitted::Repeat(e.id);
        }
        self.next_id += 1;
        self.events.push(ThreatEvent {
            id: self.next_id,
            kind: finding.kind,
            severity: finding.severity,
            subject: finding.subject.clone(),
            evidence: finding.evidence.clone(),
            first_seen: now,
            last_seen: now,
            seen: 1,
            acknowledged_at: None,
        });
        Admitted::New(self.next_id)
    }

    /// Marks an event read; `false` if there is no such event or it was already acknowledged.
    pub fn acknowledge(&mut self, id: u64, now: DateTime<Utc>) -> bool {
        match self.events.iter_mut().find(|e| e.id == id) {
            Some(e) if e.acknowledged_at.is_none() => {
                e.acknowledged_at = Some(now);
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn finding(kind: ThreatKind, severity: Severity) -> Finding {
        Finding { kind, severity, subject: String::new(), evidence: BTreeMap::new() }
    }

    fn t(min: i64) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap() + Duration::minutes(min)
    }

    #[test]
    fn repeats_fold_until_the_cooldown_passes_and_escalation_is_new() {
        let mut book = EventBook::new();
        let w = finding(ThreatKind::FailedSigninBurst, Severity::Warning);
        assert_eq!(book.admit(&w, t(0)), Admitted::New(1));
        assert_eq!(book.admit(&w, t(60)), Admitted::Repeat(1));
        // The cooldown counts from the last sighting: 5 h after the repeat is still inside.
        assert_eq!(book.admit(&w, t(60 + 300)), Admitted::Repeat(1));
        assert_eq!(book.events()[0].seen, 3);
        let c = finding(ThreatKind::FailedSigninBurst, Severity::Critical);
        assert_eq!(book.admit(&c, t(400)), Admitted::New(2));
        // A warning after the critical is folded into it (not a de-escalation event).
        assert_eq!(book.admit(&w, t(410)), Admitted::Repeat(2));
        assert_eq!(book.admit(&w, t(410 + 61)), Admitted::New(3));
        // Another subject is another event.
        let mut other = w.clone();
        other.subject = "005930".into();
        assert_eq!(book.admit(&other, t(472)), Admitted::New(4));
        assert!(book.acknowledge(1, t(500)));
        assert!(!book.acknowledge(1, t(501)));
        assert!(!book.acknowledge(99, t(501)));
        // A market finding scanned once a session stays one event across a day's gap.
        let m = finding(ThreatKind::IndexDrawdown, Severity::Warning);
        assert_eq!(book.admit(&m, t(0)), Admitted::New(5));
        assert_eq!(book.admit(&m, t(24 * 60)), Admitted::Repeat(5));
    }

    #[test]
    fn the_score_is_the_worst_area_plus_a_fifth_of_the_rest() {
        assert_eq!(RiskScore::of(&[]).total, 0);
        let s = RiskScore::of(&[
            finding(ThreatKind::FailedSigninBurst, Severity::Critical),
            finding(ThreatKind::NewIpSignin, Severity::Info),
            finding(ThreatKind::IndexDrawdown, Severity::Warning),
            finding(ThreatKind::Concentration, Severity::Warning),
        ]);
        assert_eq!((s.security, s.market, s.portfolio, s.news), (70, 30, 30, 0));
        assert_eq!(s.total, 70 + 60 / 5);
        let many: Vec<_> = (0..5).map(|_| finding(ThreatKind::FailedSigninBurst, Severity::Critical)).collect();
        assert_eq!(RiskScore::of(&many).total, 100);
    }
}
