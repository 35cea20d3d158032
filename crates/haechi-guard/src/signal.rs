//! The named quantities a playbook's conditions compare: one vocabulary shared by the
//! detectors (which compute them) and the playbook validator (which checks a document only
//! names signals that exist).

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// Where a signal comes from; a playbook's actions are checked against it (a market signal
/// cannot lock an account by itself being unknown, but it may: any source may trigger any
/// action, the source only groups the score's components).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Market,
    Portfolio,
    News,
    Security,
    Score,
}

/// One signal. Windows are in trading days for the market, in hours for security.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Signal {
    /// Close over its `n`-day simple average, minus one (−0.02: 2% below the average).
    MarketTrend(u16),
    /// Close over the highest close of the last `n` days, minus one (≤ 0).
    MarketDrawdown(u16),
    /// Annualised realised volatility of daily returns over `n` days.
    MarketVol(u16),
    /// 20-day over 252-day realised volatility: above 2 is a volatility regime change.
    MarketVolRatio,
    /// Today's close-to-close return of the index.
    MarketDayReturn,
    /// Today's open over yesterday's close, minus one.
    MarketGap,
    /// Share (0–1) of the names with data whose close is under their 200-day average.
    MarketBreadthBelow200,
    /// Names that closed at the lower price limit today.
    MarketLimitDowns,
    /// Largest single name's share of equity (0–1).
    PortfolioMaxWeight,
    /// Largest sector's share of equity (0–1).
    PortfolioMaxSectorWeight,
    /// Equity over its high-water mark, minus one (≤ 0).
    PortfolioDrawdown,
    /// Today's change of equity (a fraction).
    PortfolioDayReturn,
    /// The worst holding's return today.
    PortfolioWorstPositionDay,
    /// The largest position's value over the name's 20-day average daily value traded.
    PortfolioMaxAdvRatio,
    /// Negative disclosures (DART) about held names in the last 24 hours.
    NewsNegativeDisclosures,
    /// Failed sign-ins in the last `n` hours.
    SecurityFailedSignins(u16),
    /// Distinct addresses the failures of the last `n` hours came from.
    SecurityFailedIps(u16),
    /// Successful sign-ins from an address never seen before, last `n` hours.
    SecurityNewIpSignins(u16),
    /// Successful sign-ins from a device (user agent) never seen before, last `n` hours.
    SecurityNewDeviceSignins(u16),
    /// The second factor was turned off in the last `n` hours (count).
    SecurityMfaDisabled(u16),
    /// API tokens created in the last `n` hours.
    SecurityNewTokens(u16),
    /// Password changes in the last `n` hours.
    SecurityPasswordChanges(u16),
    /// Successful sign-ins in the last `n` hours from a new address without a second
    /// factor, each right after a burst: ≥ 10 failed sign-ins from ≥ 5 addresses in the hour
    /// before it. Order matters: a success before the burst does not count.
    SecuritySuccessAfterBurst(u16),
    /// The account's risk score (0–100).
    RiskScore,
}

impl Signal {
    pub fn source(self) -> Source {
        use Signal::*;
        match self {
            MarketTrend(_)
            | MarketDrawdown(_)
            | MarketVol(_)
            | MarketVolRatio
            | MarketDayReturn
            | MarketGap
            | MarketBreadthBelow200
            | MarketLimitDowns => Source::Market,
            PortfolioMaxWeight
            | PortfolioMaxSectorWeight
            | PortfolioDrawdown
            | PortfolioDayReturn
            | PortfolioWorstPositionDay
            | PortfolioMaxAdvRatio => Source::Portfolio,
            NewsNegativeDisclosures => Source::News,
            SecurityFailedSignins(_)
            | SecurityFailedIps(_)
            | SecurityNewIpSignins(_)
            | SecurityNewDeviceSignins(_)
            | SecurityMfaDisabled(_)
            | SecurityNewTokens(_)
            | SecurityPasswordChanges(_)
            | SecuritySuccessAfterBurst(_) => Source::Security,
            RiskScore => Source::Score,
        }
    }

    /// Every signal name a playbook may use, `N` standing for a window; for error messages
    /// and the editor's help.
    pub const NAMES: &'static [&'static str] = &[
        "market.trend_N",
        "market.drawdown_N",
        "market.vol_N",
        "market.vol_ratio",
        "market.day_return",
        "market.gap",
        "market.breadth_below_200",
        "market.limit_downs",
        "portfolio.max_weight",
        "portfolio.max_sector_weight",
        "portfolio.drawdown",
        "portfolio.day_return",
        "portfolio.worst_position_day",
        "portfolio.max_adv_ratio",
        "news.negative_disclosures",
        "security.failed_signins_Nh",
        "security.failed_ips_Nh",
        "security.new_ip_signins_Nh",
        "security.new_device_signins_Nh",
        "security.mfa_disabled_Nh",
        "security.new_tokens_Nh",
        "security.password_changes_Nh",
        "security.success_after_burst_Nh",
        "score",
    ];
}

/// A signal family: its name's prefix and how to build it from a window.
type Windowed = (&'static str, fn(u16) -> Signal);

/// Market windows: a week to two years of trading days.
const MARKET_WINDOW: std::ops::RangeInclusive<u16> = 2..=504;
/// Security windows: an hour to thirty days.
const SECURITY_WINDOW: std::ops::RangeInclusive<u16> = 1..=720;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignalError {
    #[error("unknown signal \"{0}\" (known: {known})", known = Signal::NAMES.join(", "))]
    Unknown(String),
    #[error("signal \"{name}\": window {window} is outside {min}..={max}")]
    Window { name: String, window: u32, min: u16, max: u16 },
}

fn window(name: &str, digits: &str, range: std::ops::RangeInclusive<u16>) -> Result<u16, SignalError> {
    let n: u32 = digits.parse().map_err(|_| SignalError::Unknown(name.to_owned()))?;
    match u16::try_from(n) {
        Ok(w) if range.contains(&w) => Ok(w),
        _ => Err(SignalError::Window { name: name.to_owned(), window: n, min: *range.start(), max: *range.end() }),
    }
}

impl FromStr for Signal {
    type Err = SignalError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        use Signal::*;
        let fixed = match name {
            "market.vol_ratio" => Some(MarketVolRatio),
            "market.day_return" => Some(MarketDayReturn),
            "market.gap" => Some(MarketGap),
            "market.breadth_below_200" => Some(MarketBreadthBelow200),
            "market.limit_downs" => Some(MarketLimitDowns),
            "portfolio.max_weight" => Some(PortfolioMaxWeight),
            "portfolio.max_sector_weight" => Some(PortfolioMaxSectorWeight),
            "portfolio.drawdown" => Some(PortfolioDrawdown),
            "portfolio.day_return" => Some(PortfolioDayReturn),
            "portfolio.worst_position_day" => Some(PortfolioWorstPositionDay),
            "portfolio.max_adv_ratio" => Some(PortfolioMaxAdvRatio),
            "news.negative_disclosures" => Some(NewsNegativeDisclosures),
            "score" => Some(RiskScore),
            _ => None,
        };
        if let Some(s) = fixed {
            return Ok(s);
        }
        let market: [Windowed; 3] =
            [("market.trend_", MarketTrend), ("market.drawdown_", MarketDrawdown), ("market.vol_", MarketVol)];
        for (prefix, make) in market {
            if let Some(digits) = name.strip_prefix(prefix)
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Ok(make(window(name, digits, MARKET_WINDOW)?));
            }
        }
        let security: [Windowed; 8] = [
            ("security.failed_signins_", SecurityFailedSignins),
            ("security.failed_ips_", SecurityFailedIps),
            ("security.new_ip_signins_", SecurityNewIpSignins),
            ("security.new_device_signins_", SecurityNewDeviceSignins),
            ("security.mfa_disabled_", SecurityMfaDisabled),
            ("security.new_tokens_", SecurityNewTokens),
            ("security.password_changes_", SecurityPasswordChanges),
            ("security.success_after_burst_", SecuritySuccessAfterBurst),
        ];
        for (prefix, make) in security {
            if let Some(rest) = name.strip_prefix(prefix)
                && let Some(digits) = rest.strip_suffix('h')
                && !digits.is_empty()
                && digits.bytes().all(|b| b.is_ascii_digit())
            {
                return Ok(make(window(name, digits, SECURITY_WINDOW)?));
            }
        }
        Err(SignalError::Unknown(name.to_owned()))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Signal::*;
        match self {
            MarketTrend(n) => write!(f, "market.trend_{n}"),
            MarketDrawdown(n) => write!(f, "market.drawdown_{n}"),
            MarketVol(n) => write!(f, "market.vol_{n}"),
            MarketVolRatio => f.write_str("market.vol_ratio"),
            MarketDayReturn => f.write_str("market.day_return"),
            MarketGap => f.write_str("market.gap"),
            MarketBreadthBelow200 => f.write_str("market.breadth_below_200"),
            MarketLimitDowns => f.write_str("market.limit_downs"),
            PortfolioMaxWeight => f.write_str("portfolio.max_weight"),
            PortfolioMaxSectorWeight => f.write_str("portfolio.max_sector_weight"),
            PortfolioDrawdown => f.write_str("portfolio.drawdown"),
            PortfolioDayReturn => f.write_str("portfolio.day_return"),
            PortfolioWorstPositionDay => f.write_str("portfolio.worst_position_day"),
            PortfolioMaxAdvRatio => f.write_str("portfolio.max_adv_ratio"),
            NewsNegativeDisclosures => f.write_str("news.negative_disclosures"),
            SecurityFailedSignins(h) => write!(f, "security.failed_signins_{h}h"),
            SecurityFailedIps(h) => write!(f, "security.failed_ips_{h}h"),
            SecurityNewIpSignins(h) => write!(f, "security.new_ip_signins_{h}h"),
            SecurityNewDeviceSignins(h) => write!(f, "security.new_device_signins_{h}h"),
            SecurityMfaDisabled(h) => write!(f, "security.mfa_disabled_{h}h"),
            SecurityNewTokens(h) => write!(f, "security.new_tokens_{h}h"),
            SecurityPasswordChanges(h) => write!(f, "security.password_changes_{h}h"),
            SecuritySuccessAfterBurst(h) => write!(f, "security.success_after_burst_{h}h"),
            RiskScore => f.write_str("score"),
        }
    }
}

impl serde::Serialize for Signal {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The values known at one instant. A condition over a signal that is absent is false: a
/// market rule does not fire on a day without enough history, a portfolio rule not on an
/// empty account.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Facts(BTreeMap<Signal, f64>);

impl Facts {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(&mut self, signal: Signal, value: f64) {
        if value.is_finite() {
            self.0.insert(signal, value);
        }
    }

    pub fn get(&self, signal: Signal) -> Option<f64> {
        self.0.get(&signal).copied()
    }

    pub fn extend(&mut self, other: &Facts) {
        for (s, v) in &other.0 {
            self.0.insert(*s, *v);
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Signal, f64)> + '_ {
        self.0.iter().map(|(s, v)| (*s, *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_round_trips_and_windows_are_checked() {
        for name in [
            "market.trend_120",
            "market.drawdown_252",
            "market.vol_20",
            "market.vol_ratio",
            "portfolio.max_adv_ratio",
            "security.failed_signins_1h",
            "security.new_ip_signins_24h",
            "score",
        ] {
            let s: Signal = name.parse().unwrap();
            assert_eq!(s.to_string(), name);
        }
        assert_eq!(
            "market.trend_1".parse::<Signal>(),
            Err(SignalError::Window { name: "market.trend_1".into(), window: 1, min: 2, max: 504 })
        );
        assert!(matches!("market.trend_".parse::<Signal>(), Err(SignalError::Unknown(_))));
        assert!(matches!("security.failed_signins_24".parse::<Signal>(), Err(SignalError::Unknown(_))));
        assert!(matches!(
            "market.trend_99999999999".parse::<Signal>(),
            Err(SignalError::Unknown(_)) | Err(SignalError::Window { .. })
        ));
    }

    #[test]
    fn non_finite_values_are_not_facts() {
        let mut f = Facts::new();
        f.set(Signal::MarketGap, f64::NAN);
        assert_eq!(f.get(Signal::MarketGap), None);
        f.set(Signal::MarketGap, -0.03);
        assert_eq!(f.get(Signal::MarketGap), Some(-0.03));
    }
}
