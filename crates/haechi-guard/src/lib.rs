//! Threat response, the pure part: detectors over the market, a portfolio, news and an
//! account's security; the risk score; threat events with cooldown and de-duplication;
//! playbooks (validated documents of rules) and their evaluation, live or over history.
//! No I/O and no clock of its own: callers pass the facts and the time.

pub mod detect;
pub mod evaluate;
pub mod market;
pub mod playbook;
pub mod signal;
pub mod stress;
pub mod threat;

pub use detect::{
    AccessKind, AccessRecord, Finding, Holding, PortfolioSnapshot, Severity, ThreatKind, findings, security_facts,
};
pub use market::{IndexDay, MarketSeries, SeriesError};
pub use playbook::{Action, Evaluator, Mode, Playbook, Posture, Problem, Problems, Transition};
pub use signal::{Facts, Signal, Source};
pub use threat::{Admitted, EventBook, RiskScore, ThreatEvent};
