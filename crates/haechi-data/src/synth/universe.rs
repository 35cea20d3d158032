//! Who is listed: ticker, market, sector and name of instrument `i`, none of which depends on the
//! seed, so a strategy file naming `100010` means the same company in every synthetic market.

use haechi_core::{Instrument, Market, Ticker, TickerError};

/// KOSPI industries (KRX 업종 names) with the name endings of their fictional companies.
const KOSPI_SECTORS: &[(&str, &[&str])] = &[
    ("전기전자", &["전자", "일렉트릭", "디스플레이"]),
    ("화학", &["화학", "케미칼", "석유화학"]),
    ("의약품", &["제약", "약품", "헬스케어"]),
    ("운수장비", &["모터스", "중공업", "조선"]),
    ("금융업", &["금융지주", "증권", "생명보험"]),
    ("철강금속", &["철강", "제강", "메탈"]),
    ("유통업", &["유통", "상사", "리테일"]),
    ("건설업", &["건설", "종합건설", "개발"]),
    ("음식료품", &["식품", "제과", "푸드"]),
    ("서비스업", &["홀딩스", "서비스", "레저"]),
    ("통신업", &["텔레콤", "통신", "네트웍스"]),
];

/// KOSDAQ industries. 화학 also appears on KOSPI: both share one sector factor.
const KOSDAQ_SECTORS: &[(&str, &[&str])] = &[
    ("반도체", &["반도체", "세미콘", "마이크로"]),
    ("IT부품", &["이노텍", "정밀", "솔루텍"]),
    ("소프트웨어", &["소프트", "시스템즈", "데이타"]),
    ("제약", &["바이오", "파마", "생명과학"]),
    ("인터넷", &["랩스", "닷컴", "인터랙티브"]),
    ("디지털컨텐츠", &["게임즈", "엔터테인먼트", "스튜디오"]),
    ("기계·장비", &["기계", "엔지니어링", "로보틱스"]),
    ("화학", &["켐", "머티리얼즈", "신소재"]),
];

/// Name stems from Korean myth, folklore and landscape, checked against every KRX listing and
/// delisting up to 2026-03 so that no generated name is a real company's.
#[rustfmt::skip]
const STEMS: &[&str] = &[
    "해치", "청룡", "백호", "주작", "현무", "봉황", "도깨비", "구미호", "이무기", "불가사리", "삽살",
    "까치", "두꺼비", "해님", "달님", "견우", "직녀", "우렁", "설악", "백두", "지리", "태백", "소백",
    "가야", "탐라", "온달", "평강", "바리", "선녀", "용궁", "천마", "비룡", "은하수", "미리내", "여우별",
    "샛별", "너울", "물결", "바람꽃", "달빛",
];

/// Once every stem × ending pair of a sector is used, names take a regional qualifier, as Korean
/// companies often do; past those, a number.
const REGIONS: &[&str] =
    &["서울", "부산", "대구", "인천", "광주", "대전", "울산", "경기", "강원", "충청", "호남", "영남", "제주"];

/// Ticker codes run 100010, 100020, …, 999990: 89,999 codes in steps of ten.
pub const MAX_TICKERS: usize = 89_999;

/// Position of `i % 5` within its market's share of each block of five: KOSPI takes 0, 1, 3
/// (60%) and KOSDAQ 2, 4 (40%), so any ten consecutive instruments include both markets.
const BLOCK: [(Market, usize); 5] =
    [(Market::Kospi, 0), (Market::Kospi, 1), (Market::Kosdaq, 0), (Market::Kospi, 2), (Market::Kosdaq, 1)];

/// Market of instrument `i`.
#[must_use]
pub fn market_of(i: usize) -> Market {
    BLOCK[i % 5].0
}

/// `i`'s position among the instruments of its own market.
fn rank_in_market(i: usize) -> usize {
    let (market, pos) = BLOCK[i % 5];
    let per_block = if market == Market::Kospi { 3 } else { 2 };
    i / 5 * per_block + pos
}

/// The six-digit short code of instrument `i`.
#[must_use]
pub fn ticker_code(i: usize) -> String {
    format!("{:06}", 100_010 + 10 * i)
}

fn sector_table(market: Market) -> &'static [(&'static str, &'static [&'static str])] {
    if market == Market::Kospi { KOSPI_SECTORS } else { KOSDAQ_SECTORS }
}

/// Sector of instrument `i`: each market's list is dealt out in turn.
#[must_use]
pub fn sector_of(i: usize) -> &'static str {
    let table = sector_table(market_of(i));
    table[rank_in_market(i) % table.len()].0
}

/// Every distinct sector name, KOSPI's first; the index into this list picks the sector factor.
pub fn all_sectors() -> Vec<&'static str> {
    let mut out: Vec<&'static str> = KOSPI_SECTORS.iter().map(|s| s.0).collect();
    for (name, _) in KOSDAQ_SECTORS {
        if !out.contains(name) {
            out.push(name);
        }
    }
    out
}

/// The fictional company name of instrument `i`, unique across all [`MAX_TICKERS`] instruments.
///
/// The k-th company of a (market, sector) group takes ending `k % 3` and a stem that advances
/// every three companies, so neighbours look like affiliates (해치전자, 해치일렉트릭). Endings
/// differ between groups, which makes names unique across groups.
#[must_use]
pub fn name_of(i: usize) -> String {
    let market = market_of(i);
    let table = sector_table(market);
    let rank = rank_in_market(i);
    let (group, k) = (rank % table.len(), rank / table.len());
    let endings = table[group].1;
    let ending = endings[k % endings.len()];
    let per_generation = STEMS.len() * endings.len();
    // Offsetting the stem by group spreads the first stems over all sectors.
    let stem = STEMS[(k / endings.len() + group * 7) % STEMS.len()];
    let generation = k / per_generation;
    if generation == 0 {
        return format!("{stem}{ending}");
    }
    let region = REGIONS[(generation - 1) % REGIONS.len()];
    let round = (generation - 1) / REGIONS.len();
    if round == 0 { format!("{region}{stem}{ending}") } else { format!("{region}{stem}{ending}{}", round + 1) }
}

/// The listing facts of instrument `i`.
///
/// # Errors
/// [`TickerError`] only if `i` is beyond [`MAX_TICKERS`], where codes stop being six digits.
pub fn instrument(i: usize) -> Result<Instrument, TickerError> {
    Ok(Instrument {
        ticker: Ticker::parse(&ticker_code(i))?,
        name: name_of(i),
        market: market_of(i),
        sector: sector_of(i).to_owned(),
    })
}

/// Index of `sector` in [`all_sectors`].
pub fn sector_index(sectors: &[&str], sector: &str) -> usize {
    sectors.iter().position(|s| *s == sector).unwrap_or(0)
}
