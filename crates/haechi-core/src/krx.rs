//! KRX trading rules as pure functions of date, market and price.
//!
//! Source: `shared/krx/KRX_RULES.md` (cited below by section). Dates are trade dates unless a
//! function says otherwise.

use crate::market::Market;
use crate::money::{Price, Rate, Won};
use chrono::NaiveDate;
use serde::Serialize;

const fn ymd(y: i32, m: u32, d: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(y, m, d) {
        Some(d) => d,
        None => NaiveDate::MIN,
    }
}

/// The tick table changed on this day (KRX_RULES §1.1).
pub const TICK_REFORM_2023: NaiveDate = ymd(2023, 1, 25);
/// The daily limit widened from ±15% to ±30% on this day (KRX_RULES §2).
pub const LIMIT_REFORM_2015: NaiveDate = ymd(2015, 6, 15);

/// Bands as (upper bound exclusive, tick). A price on a boundary takes the band above (이상~미만).
type TickTable = &'static [(i64, i64)];

const TICKS_SINCE_2023: TickTable =
    &[(2_000, 1), (5_000, 5), (20_000, 10), (50_000, 50), (200_000, 100), (500_000, 500), (i64::MAX, 1_000)];
const TICKS_KOSPI_BEFORE_2023: TickTable =
    &[(1_000, 1), (5_000, 5), (10_000, 10), (50_000, 50), (100_000, 100), (500_000, 500), (i64::MAX, 1_000)];
const TICKS_KOSDAQ_BEFORE_2023: TickTable =
    &[(1_000, 1), (5_000, 5), (10_000, 10), (50_000, 50), (100_000, 100), (i64::MAX, 100)];
/// ETF, ETN and ELW quote in 5-won steps at every price, before and after 2023 (§1.1).
const ETF_TICK: i64 = 5;

fn tick_table(date: NaiveDate, market: Market) -> TickTable {
    if date >= TICK_REFORM_2023 {
        return TICKS_SINCE_2023;
    }
    match market {
        Market::Kospi | Market::Etf => TICKS_KOSPI_BEFORE_2023,
        // The rules document gives no pre-2023 KONEX column; KONEX is a KOSDAQ-family
        // market, so it uses the KOSDAQ column.
        Market::Kosdaq | Market::Konex => TICKS_KOSDAQ_BEFORE_2023,
    }
}

/// The tick (호가가격단위) for an order priced at `price` won on `date` (§1).
/// Prices below 1 won use the smallest tick.
#[must_use]
pub fn tick_size(date: NaiveDate, market: Market, price: i64) -> i64 {
    if market == Market::Etf {
        return ETF_TICK;
    }
    tick_table(date, market).iter().find(|(upper, _)| price < *upper).map_or(1, |(_, tick)| *tick)
}

/// Whether `price` lies on the tick grid of its own band.
#[must_use]
pub fn is_on_tick(date: NaiveDate, market: Market, price: Price) -> bool {
    price.get() % tick_size(date, market, price.get()) == 0
}

/// The highest valid price at or below `price` (at least one tick).
#[must_use]
pub fn round_down_to_tick(date: NaiveDate, market: Market, price: i64) -> Price {
    let tick = tick_size(date, market, price);
    let p = price.div_euclid(tick) * tick;
    Price::new(p).unwrap_or_else(|| min_price(date, market))
}

/// The lowest valid price at or above `price`. When rounding up crosses into a coarser band
/// the result is that band's lower bound, which is a multiple of both ticks.
#[must_use]
pub fn round_up_to_tick(date: NaiveDate, market: Market, price: i64) -> Price {
    let tick = tick_size(date, market, price);
    let p = (price + tick - 1).div_euclid(tick) * tick;
    Price::new(p).unwrap_or_else(|| min_price(date, market))
}

/// The valid price nearest to `num / den` won (`den > 0`), ties going to `tie_up`'s side.
#[must_use]
pub fn nearest_tick(date: NaiveDate, market: Market, num: i64, den: i64, tie_up: bool) -> Price {
    let floor = num.div_euclid(den);
    let down = round_down_to_tick(date, market, floor);
    let up = round_up_to_tick(date, market, if num.rem_euclid(den) == 0 { floor } else { floor + 1 });
    // Distances scaled by `den` stay exact in i128.
    let dist = |p: Price| (i128::from(p.get()) * i128::from(den) - i128::from(num)).abs();
    match dist(down).cmp(&dist(up)) {
        std::cmp::Ordering::Less => down,
        std::cmp::Ordering::Greater => up,
        std::cmp::Ordering::Equal => {
            if tie_up {
                up
            } else {
                down
            }
        }
    }
}

/// `num / den` won (`den > 0`) onto the grid by stochastic rounding: the valid price below or
/// the one above, the one above with probability equal to how far the target lies toward it,
/// `u` in `[0, 1)` deciding. Over many fills the mean price is the target itself, so a
/// slippage smaller than a tick costs what it says on average — rounding always up would add
/// about half a tick per fill, rounding to the nearest would drop it whenever it is under
/// half a tick. A target on the grid is returned as is.
#[must_use]
pub fn stochastic_tick(date: NaiveDate, market: Market, num: i64, den: i64, u: f64) -> Price {
    let floor = num.div_euclid(den);
    let down = round_down_to_tick(date, market, floor);
    if i128::from(down.get()) * i128::from(den) == i128::from(num) {
        return down;
    }
    let up = round_up_to_tick(date, market, floor + 1);
    let span = (up.get() - down.get()) as f64;
    let toward_up = (num as f64 / den as f64 - down.get() as f64) / span;
    if u < toward_up { up } else { down }
}

/// The prices on the tick grid inside `[low, high]`: `(lowest, highest)`, or `None` when the
/// range holds no valid price (a back-adjusted bar whose whole range sits between two ticks).
#[must_use]
pub fn grid_range(date: NaiveDate, market: Market, low: i64, high: i64) -> Option<(Price, Price)> {
    let lo = round_up_to_tick(date, market, low.max(1));
    let hi = round_down_to_tick(date, market, high);
    (lo.get() <= hi.get() && hi.get() <= high && lo.get() >= low).then_some((lo, hi))
}

fn min_price(date: NaiveDate, market: Market) -> Price {
    Price::new(tick_size(date, market, 1)).unwrap_or(Price::MIN)
}

/// The daily price band (가격제한폭) around a base price (§2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PriceBand {
    pub base: Price,
    /// Lowest orderable price: the lower limit (base − amount) rounded up to its own band's
    /// tick, so it is on the grid even when the base is not (back-adjusted histories).
    pub lower: Price,
    /// The upper limit as KRX computes it (base + amount); can sit off the tick grid.
    pub upper: Price,
    /// The highest orderable price: `upper` rounded down to its own band's tick.
    pub upper_orderable: Price,
}

impl PriceBand {
    /// Whether an order priced at `price` is inside the band.
    #[must_use]
    pub fn contains(&self, price: Price) -> bool {
        price >= self.lower && price <= self.upper_orderable
    }

    /// Clamps a price into the orderable band.
    #[must_use]
    pub fn clamp(&self, price: Price) -> Price {
        price.clamp(self.lower, self.upper_orderable)
    }
}

/// The limit as a percentage of the base price: ±30% on KOSPI/KOSDAQ/ETF since 2015-06-15,
/// ±15% before, and ±15% on KONEX throughout (§2).
#[must_use]
pub fn price_limit_percent(date: NaiveDate, market: Market) -> i64 {
    match market {
        Market::Konex => 15,
        _ if date < LIMIT_REFORM_2015 => 15,
        _ => 30,
    }
}

/// The band for a day whose base price (normally the previous close) is `base`.
///
/// KRX computes the amount as base × limit with the part below the base price's tick
/// discarded (절사), then adds and subtracts it (§2, KRX's worked example: 9,940 → 6,960..12,920).
#[must_use]
pub fn price_band(date: NaiveDate, market: Market, base: Price) -> PriceBand {
    let b = base.get();
    let tick = tick_size(date, market, b);
    let pct = price_limit_percent(date, market);
    let amount = (b * pct / 100) / tick * tick;
    let upper_raw = b + amount;
    // With an on-grid base, base − amount is on the grid already; a back-adjusted base is not,
    // and the lowest price KRX would accept is the next tick up.
    let lower = round_up_to_tick(date, market, (b - amount).max(1));
    let upper = Price::new(upper_raw).unwrap_or(base);
    PriceBand { base, lower, upper, upper_orderable: round_down_to_tick(date, market, upper_raw) }
}

/// The sell-side taxes in force on a date: the securities transaction tax (증권거래세) and,
/// on KOSPI only, the rural special tax (농어촌특별세), each charged on the sale amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SellTaxRates {
    pub transaction: Rate,
    pub rural: Rate,
}

impl SellTaxRates {
    #[must_use]
    pub fn total(&self) -> Rate {
        self.transaction + self.rural
    }

    /// Tax on a sale amount, each component truncated to the won on its own (§4.3).
    #[must_use]
    pub fn charge(&self, amount: Won) -> Won {
        self.transaction.charge(amount) + self.rural.charge(amount)
    }
}

const fn pct_hundredths(h: u64) -> Rate {
    // 1 hundredth of a percent = 1e-4 = 100,000 ppb.
    Rate::from_ppb(h * 100_000)
}

/// (first settlement date, KOSPI transaction, KOSPI rural, KOSDAQ, KONEX), in hundredths of a
/// percent (§4.1 table). Rates before 2018 are the 0.30% regime in force since 1996; rates
/// after the last row continue until the law changes again.
const SELL_TAX_SCHEDULE: &[(NaiveDate, u64, u64, u64, u64)] = &[
    (NaiveDate::MIN, 15, 15, 30, 30),
    (ymd(2019, 6, 3), 10, 15, 25, 10),
    (ymd(2021, 1, 1), 8, 15, 23, 10),
    (ymd(2023, 1, 1), 5, 15, 20, 10),
    (ymd(2024, 1, 1), 3, 15, 18, 10),
    (ymd(2025, 1, 1), 0, 15, 15, 10),
    (ymd(2026, 1, 1), 5, 15, 20, 10),
];

/// Sell-side tax rates for a sale that settles on `settlement_date` (§4.1). The legal trigger
/// is the transfer at settlement, which is how KRX/KSD apply a new rate; pass the trade date
/// instead to key on trade date.
///
/// Domestic equity ETFs are exempt from the securities transaction tax, so `Market::Etf` pays 0.
#[must_use]
pub fn sell_tax_rates(settlement_date: NaiveDate, market: Market) -> SellTaxRates {
    let row = SELL_TAX_SCHEDULE.iter().rev().find(|r| settlement_date >= r.0).copied().unwrap_or(SELL_TAX_SCHEDULE[0]);
    let (_, kospi_tx, kospi_rural, kosdaq, konex) = row;
    match market {
        Market::Kospi => SellTaxRates { transaction: pct_hundredths(kospi_tx), rural: pct_hundredths(kospi_rural) },
        Market::Kosdaq => SellTaxRates { transaction: pct_hundredths(kosdaq), rural: Rate::ZERO },
        Market::Konex => SellTaxRates { transaction: pct_hundredths(konex), rural: Rate::ZERO },
        Market::Etf => SellTaxRates { transaction: Rate::ZERO, rural: Rate::ZERO },
    }
}

/// Default online commission per side: 0.015% (§4.2).
pub const DEFAULT_COMMISSION: Rate = Rate::from_ppb(150_000);

/// Settlement lag in trading sessions: T+2 (§3.1).
pub const SETTLEMENT_SESSIONS: usize = 2;

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }
    fn p(v: i64) -> Price {
        Price::new(v).unwrap()
    }

    /// KRX_RULES §1.1: one table for KOSPI, KOSDAQ and KONEX since 2023-01-25, bands 이상~미만.
    #[test]
    fn tick_table_since_2023_matches_rules_1_1() {
        let day = d(2023, 1, 25);
        let cases = [
            (1, 1),
            (1_999, 1),
            (2_000, 5),
            (4_995, 5),
            (5_000, 10),
            (19_990, 10),
            (20_000, 50),
            (49_950, 50),
            (50_000, 100),
            (166_500, 100), // Hyundai Motor example: 100-won steps after the reform
            (199_900, 100),
            (200_000, 500),
            (499_500, 500),
            (500_000, 1_000),
            (3_000_000, 1_000),
        ];
        for market in [Market::Kospi, Market::Kosdaq, Market::Konex] {
            for (price, tick) in cases {
                assert_eq!(tick_size(day, market, price), tick, "{market} {price}");
            }
        }
    }

    /// KRX_RULES §1.2: the table before 2023-01-25, where KOSPI and KOSDAQ differ above 100,000.
    #[test]
    fn tick_table_before_2023_matches_rules_1_2() {
        let day = d(2023, 1, 24);
        let cases = [
            (999, 1, 1),
            (1_000, 5, 5),
            (4_995, 5, 5),
            (5_000, 10, 10),
            (9_990, 10, 10),
            (10_000, 50, 50),
            (49_950, 50, 50),
            (50_000, 100, 100),
            (99_900, 100, 100),
            (100_000, 500, 100),
            (166_500, 500, 100), // Hyundai Motor quoted in 500-won steps before the reform
            (499_500, 500, 100),
            (500_000, 1_000, 100),
        ];
        for (price, kospi, kosdaq) in cases {
            assert_eq!(tick_size(day, Market::Kospi, price), kospi, "KOSPI {price}");
            assert_eq!(tick_size(day, Market::Kosdaq, price), kosdaq, "KOSDAQ {price}");
        }
    }

    #[test]
    fn etf_ticks_are_five_won_at_every_price() {
        for price in [100, 9_995, 45_000, 1_000_000] {
            assert_eq!(tick_size(d(2020, 1, 2), Market::Etf, price), 5);
            assert_eq!(tick_size(d(2024, 1, 2), Market::Etf, price), 5);
        }
    }

    #[test]
    fn rounding_to_tick_goes_the_asked_way_and_stays_on_grid() {
        let day = d(2024, 5, 2);
        assert_eq!(round_up_to_tick(day, Market::Kospi, 71_201).get(), 71_300);
        assert_eq!(round_down_to_tick(day, Market::Kospi, 71_299).get(), 71_200);
        assert_eq!(round_up_to_tick(day, Market::Kospi, 71_200).get(), 71_200);
        // Crossing into a coarser band lands on the band's lower bound.
        assert_eq!(round_up_to_tick(day, Market::Kospi, 1_999).get(), 1_999);
        assert_eq!(round_up_to_tick(day, Market::Kospi, 19_995).get(), 20_000);
        assert!(is_on_tick(day, Market::Kospi, p(20_000)));
        assert!(!is_on_tick(day, Market::Kospi, p(20_010)));
    }

    /// KRX_RULES §2: KRX's worked example, base 9,940 → amount 2,980 → 6,960 .. 12,920.
    #[test]
    fn price_band_reproduces_krx_worked_example() {
        let band = price_band(d(2024, 1, 2), Market::Kospi, p(9_940));
        assert_eq!(band.lower, p(6_960));
        assert_eq!(band.upper, p(12_920));
        assert_eq!(band.upper_orderable, p(12_920));
    }

    /// KRX_RULES §2: the upper limit may cross into a coarser band; the orderable top is
    /// rounded down to that band's tick. Lower limits: 239,000 → 167,500; 24,250 → 17,000.
    #[test]
    fn nearest_tick_rounds_to_the_closer_grid_price() {
        let day = d(2024, 3, 4);
        // 30,015 (30,000 + 5 bps) is nearer 30,000 than 30,050.
        assert_eq!(nearest_tick(day, Market::Kospi, 30_000 * 10_005, 10_000, true), p(30_000));
        assert_eq!(nearest_tick(day, Market::Kospi, 30_030 * 10_000, 10_000, true), p(30_050));
        // A tie goes the way asked.
        assert_eq!(nearest_tick(day, Market::Kospi, 30_025, 1, true), p(30_050));
        assert_eq!(nearest_tick(day, Market::Kospi, 30_025, 1, false), p(30_000));
        // Across a band boundary both neighbours are valid prices.
        assert_eq!(nearest_tick(day, Market::Kospi, 19_994, 1, true), p(19_990));
        assert_eq!(nearest_tick(day, Market::Kospi, 19_996, 1, false), p(20_000));
        assert_eq!(nearest_tick(day, Market::Kospi, 19_999, 1, false), p(20_000));
    }

    #[test]
    fn stochastic_rounding_keeps_the_mean_at_the_target() {
        let day = d(2024, 3, 4);
        // 71,035.5 lies 35.5% of the way from 71,000 to 71,100.
        let (num, den) = (71_000 * 10_005, 10_000);
        assert_eq!(stochastic_tick(day, Market::Kospi, num, den, 0.3), p(71_100));
        assert_eq!(stochastic_tick(day, Market::Kospi, num, den, 0.4), p(71_000));
        let n = 10_000;
        let mean = (0..n)
            .map(|k| stochastic_tick(day, Market::Kospi, num, den, (k as f64 + 0.5) / n as f64).get() as f64)
            .sum::<f64>()
            / n as f64;
        assert!((mean - 71_035.5).abs() < 0.01, "{mean}");
        // On the grid: unchanged, whatever u.
        assert_eq!(stochastic_tick(day, Market::Kospi, 71_000, 1, 0.0), p(71_000));
        // Across a band boundary: between 19,990 and 20,000.
        assert_eq!(stochastic_tick(day, Market::Kospi, 19_995, 1, 0.2), p(20_000));
        assert_eq!(stochastic_tick(day, Market::Kospi, 19_995, 1, 0.7), p(19_990));
    }

    #[test]
    fn grid_range_is_the_valid_prices_inside_a_session() {
        let day = d(2014, 11, 26);
        assert_eq!(grid_range(day, Market::Kospi, 29_844, 31_033), Some((p(29_850), p(31_000))));
        assert_eq!(grid_range(day, Market::Kospi, 29_844, 29_844), None);
        assert_eq!(grid_range(day, Market::Kospi, 29_850, 29_850), Some((p(29_850), p(29_850))));
    }

    #[test]
    fn an_off_grid_base_still_gives_an_orderable_lower_limit_on_the_grid() {
        // 012450 on 2014-11-26 (±15% then): its back-adjusted previous close of 35,068 gives a
        // raw lower limit of 35,068 − 5,250 = 29,818, which is not a multiple of the 50-won
        // tick; the lowest orderable price is 29,850.
        let band = price_band(d(2014, 11, 26), Market::Kospi, p(35_068));
        assert_eq!(band.lower, p(29_850));
        assert!(is_on_tick(d(2014, 11, 26), Market::Kospi, band.lower));
        for base in (1_000..200_000).step_by(997) {
            for day in [d(2014, 11, 26), d(2020, 3, 2), d(2024, 3, 4)] {
                for market in [Market::Kospi, Market::Kosdaq] {
                    let band = price_band(day, market, p(base));
                    assert!(is_on_tick(day, market, band.lower), "{market} {day} base {base}: {:?}", band.lower);
                    assert!(is_on_tick(day, market, band.upper_orderable), "{market} {day} base {base}");
                    assert!(band.lower.get() >= base - base * price_limit_percent(day, market) / 100);
                }
            }
        }
    }

    #[test]
    fn price_band_edge_cases_from_rules() {
        let day = d(2024, 1, 2);
        let band = price_band(day, Market::Kospi, p(1_999));
        assert_eq!((band.upper.get(), band.upper_orderable.get()), (2_598, 2_595));
        assert_eq!(price_band(day, Market::Kospi, p(239_000)).lower, p(167_500));
        assert_eq!(price_band(day, Market::Kosdaq, p(24_250)).lower, p(17_000));
        assert!(band.contains(p(2_595)));
        assert!(!band.contains(p(2_600)));
        assert_eq!(band.clamp(p(3_000)), p(2_595));
    }

    /// KRX_RULES §2: ±15% before 2015-06-15, ±30% from that day; KONEX ±15% throughout.
    #[test]
    fn price_limit_percent_by_date_and_market() {
        let cases = [
            (d(2015, 6, 12), Market::Kospi, 15),
            (d(2015, 6, 15), Market::Kospi, 30),
            (d(2015, 6, 15), Market::Kosdaq, 30),
            (d(2024, 1, 2), Market::Konex, 15),
            (d(2024, 1, 2), Market::Etf, 30),
        ];
        for (day, market, pct) in cases {
            assert_eq!(price_limit_percent(day, market), pct, "{day} {market}");
        }
        let band = price_band(d(2015, 6, 12), Market::Kospi, p(10_000));
        assert_eq!((band.lower.get(), band.upper.get()), (8_500, 11_500));
    }

    /// KRX_RULES §4.1 table, by settlement date, in hundredths of a percent (total, rural part).
    #[test]
    fn sell_tax_schedule_2018_to_2026_matches_rules_4_1() {
        let cases = [
            // (settlement date, KOSPI total, KOSPI rural, KOSDAQ, KONEX)
            (d(2018, 1, 2), 30, 15, 30, 30),
            (d(2019, 6, 2), 30, 15, 30, 30),
            (d(2019, 6, 3), 25, 15, 25, 10),
            (d(2020, 12, 31), 25, 15, 25, 10),
            (d(2021, 1, 1), 23, 15, 23, 10),
            (d(2022, 12, 30), 23, 15, 23, 10),
            (d(2023, 1, 2), 20, 15, 20, 10),
            (d(2024, 1, 2), 18, 15, 18, 10),
            (d(2024, 12, 31), 18, 15, 18, 10),
            (d(2025, 1, 2), 15, 15, 15, 10),
            (d(2025, 12, 30), 15, 15, 15, 10),
            (d(2026, 1, 2), 20, 15, 20, 10),
            (d(2026, 12, 30), 20, 15, 20, 10),
        ];
        for (day, kospi, rural, kosdaq, konex) in cases {
            let k = sell_tax_rates(day, Market::Kospi);
            assert_eq!(k.total(), pct_hundredths(kospi), "KOSPI {day}");
            assert_eq!(k.rural, pct_hundredths(rural), "KOSPI rural {day}");
            assert_eq!(sell_tax_rates(day, Market::Kosdaq).total(), pct_hundredths(kosdaq), "KOSDAQ {day}");
            assert_eq!(sell_tax_rates(day, Market::Kosdaq).rural, Rate::ZERO);
            assert_eq!(sell_tax_rates(day, Market::Konex).total(), pct_hundredths(konex), "KONEX {day}");
            assert_eq!(sell_tax_rates(day, Market::Etf).total(), Rate::ZERO);
        }
    }

    #[test]
    fn sell_tax_truncates_each_component() {
        // 2026 KOSPI on 1,234,567 won: 0.05% = 617.28 → 617, 0.15% = 1,851.85 → 1,851.
        let tax = sell_tax_rates(d(2026, 3, 3), Market::Kospi).charge(Won(1_234_567));
        assert_eq!(tax, Won(617 + 1_851));
        // 2025 KOSPI: transaction tax is zero, only the rural tax remains.
        assert_eq!(sell_tax_rates(d(2025, 3, 4), Market::Kospi).charge(Won(1_000_000)), Won(1_500));
    }

    #[test]
    fn default_commission_is_0_015_percent() {
        assert_eq!(DEFAULT_COMMISSION.charge(Won(10_000_000)), Won(1_500));
        assert_eq!(DEFAULT_COMMISSION.charge(Won(6_666)), Won(0));
    }
}
