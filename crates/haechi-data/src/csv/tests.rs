use super::*;
use haechi_core::RawBar;
use proptest::prelude::*;
use std::fs;

const HEADER: &str = "date,open,high,low,close,volume\n";

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(path, text).unwrap();
}

/// One thread, and KOSPI for names the instruments file does not list (most tests are about
/// other things than markets; `unknown_markets_are_errors_without_a_default` is about them).
fn one_thread() -> LoadOptions {
    LoadOptions { threads: 1, default_market: Some(Market::Kospi), ..LoadOptions::default() }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn t(code: &str) -> Ticker {
    Ticker::parse(code).unwrap()
}

fn bar(open: u32, high: u32, low: u32, close: u32, volume: u64) -> RawBar {
    RawBar { open, high, low, close, volume }
}

fn load_err(dir: &Path, opts: &LoadOptions) -> String {
    match load_dir(dir, opts) {
        Ok(loaded) => panic!("expected errors, loaded {} instruments", loaded.store.n_instruments()),
        Err(e) => e.to_string(),
    }
}

/// Loads a directory holding `files` and returns the error text.
fn errors_for(files: &[(&str, &str)], opts: &LoadOptions) -> String {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        write(dir.path(), name, text);
    }
    load_err(dir.path(), opts)
}

fn assert_has(text: &str, wanted: &str) {
    assert!(text.contains(wanted), "expected {wanted:?} in:\n{text}");
}

fn bars_of(store: &MarketStore, ticker: &str) -> Vec<Option<RawBar>> {
    let slot = store.slot_of(t(ticker)).unwrap();
    (0..store.n_days()).map(|day| store.raw(slot, day)).collect()
}

fn small_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // BOM, CRLF, mixed-case header names, an extra column and trailing blank lines.
    write(
        p,
        "000010.csv",
        "\u{FEFF}Date,Open,High,Low,Close,Volume,Change\r\n\
         2024-01-02,100,110,90,105,1000,0.1\r\n\
         2024-01-03,105,115,100,110,2000,0.05\r\n\
         2024-01-05,110,120,105,118,0,0.07\r\n\
         \r\n\r\n",
    );
    // Columns in another order, padded names, a quoted number, a zero fraction.
    write(
        p,
        "000020.csv",
        "volume, close ,low,high,open,date\n\
         500,7000,6900,7100,7050,2024-01-03\n\
         600,\"7100\",7000,7200,7000.0,2024-01-04\n\
         700,7150,7050,7250,7100,2024-01-08\n",
    );
    write(
        p,
        "instruments.csv",
        "ticker,name,market,sector\n\
         000010,\"Alpha, \"\"A\"\" Inc.\",kosdaq,Tech\n\
         000020,Beta,KOSPI,\n\
         000099,Unused,ETF,x\n",
    );
    write(
        p,
        "index/KS11.csv",
        "date,open,high,low,close,volume\n\
         2024-01-02,2500.5,2510,2490,2501.53,\n\
         2024-01-04,2510,2520,2500,2515.25,123.5\n\
         2024-01-06,1,1,1,1,1\n\
         2024-01-08,2520,2530,2510,2525,1000\n",
    );
    write(p, "README.md", "not data");
    dir
}

#[test]
fn round_trip_of_a_small_directory() {
    let dir = small_dir();
    let Loaded { store, report } = load_dir(dir.path(), &one_thread()).unwrap();

    assert_eq!(store.dates(), &[d(2024, 1, 2), d(2024, 1, 3), d(2024, 1, 4), d(2024, 1, 5), d(2024, 1, 8)]);
    assert_eq!(
        store.instruments(),
        &[
            Instrument {
                ticker: t("000010"),
                name: "Alpha, \"A\" Inc.".into(),
                market: Market::Kosdaq,
                sector: "Tech".into()
            },
            Instrument { ticker: t("000020"), name: "Beta".into(), market: Market::Kospi, sector: String::new() },
        ]
    );
    assert_eq!(
        bars_of(&store, "000010"),
        [
            Some(bar(100, 110, 90, 105, 1000)),
            Some(bar(105, 115, 100, 110, 2000)),
            None,
            Some(bar(110, 120, 105, 118, 0)),
            None
        ]
    );
    assert_eq!(
        bars_of(&store, "000020"),
        [
            None,
            Some(bar(7050, 7100, 6900, 7000, 500)),
            Some(bar(7000, 7200, 7000, 7100, 600)),
            None,
            Some(bar(7100, 7250, 7050, 7150, 700))
        ]
    );
    let ks11 = store.index("KS11").unwrap();
    assert_eq!(ks11.name, "KS11");
    assert_eq!(ks11.close.len(), 5);
    let expected = [Some(2501.53), None, Some(2515.25), None, Some(2525.0)];
    for (got, want) in ks11.close.iter().zip(expected) {
        match want {
            Some(v) => assert_eq!(*got, v),
            None => assert!(got.is_nan(), "expected NaN, got {got}"),
        }
    }
    assert_eq!(store.indices().len(), 1);
    let no_calendar = LoadWarning { path: dir.path().to_path_buf(), line: None, kind: WarningKind::NoCalendar };
    assert_eq!(
        report,
        LoadReport { files: 4, rows: 6, clamped_rows: 0, warnings: vec![no_calendar], warnings_total: 1 }
    );
    assert_eq!(store.calendar_source(), haechi_core::CalendarSource::BarUnion);
}

#[test]
// Long on purpose: one case per kind of bad input, each with the exact message it must give.
fn each_error_names_file_line_and_column() {
    let s = "000001.csv";
    let good = "2024-01-02,100,110,90,105,1000\n";
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![(s, String::new())], "000001.csv:1: file is empty"),
        (vec![(s, " \n\r\n".into())], "000001.csv:1: file is empty"),
        (
            vec![(s, "date,open,high,low,volume\n2024-01-02,1,1,1,1\n".into())],
            "000001.csv:1: missing column \"close\" (header is \"date,open,high,low,volume\")",
        ),
        (vec![(s, "date,open,high,low,close,volume,CLOSE\n".into())], "000001.csv:1: column \"close\" appears more"),
        (
            vec![(s, format!("{HEADER}{good}2024-01-03,1,1,1,1\n"))],
            "000001.csv:3: expected 6 fields as in the header, found 5",
        ),
        (
            vec![(s, format!("{HEADER}2024-02-30,1,1,1,1,1\n"))],
            "000001.csv:2: column \"date\": \"2024-02-30\" is not a date (expected YYYY-MM-DD)",
        ),
        (
            vec![(s, format!("{HEADER}20240102,1,1,1,1,1\n"))],
            "000001.csv:2: column \"date\": \"20240102\" is not a date",
        ),
        (
            vec![(s, format!("{HEADER}{good}2024-01-03,7200,7300,7100,7l200,5\n"))],
            "000001.csv:3: column \"close\": \"7l200\" is not a whole number",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-02,1,1.5,1,1,1\n"))],
            "000001.csv:2: column \"high\": \"1.5\" is not a whole number",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-02,0,1,1,1,1\n"))],
            "000001.csv:2: column \"open\": price must be positive, found \"0\"",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-02,1,1,-5,1,1\n"))],
            "000001.csv:2: column \"low\": price must be positive, found \"-5\"",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-02,1,4294967296,1,1,1\n"))],
            "000001.csv:2: column \"high\": price \"4294967296\" exceeds the largest storable price",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-02,1,99999999999999999999999,1,1,1\n"))],
            "000001.csv:2: column \"high\": price \"99999999999999999999999\" exceeds",
        ),
        (vec![(s, format!("{HEADER}2024-01-02,1,1,1,1,\n"))], "000001.csv:2: column \"volume\": value is empty"),
        (
            vec![(s, format!("{HEADER}2024-01-02,1,1,1,1,-3\n"))],
            "000001.csv:2: column \"volume\": volume must not be negative, found \"-3\"",
        ),
        (
            vec![(s, format!("{HEADER}2024-01-03,1,1,1,1,1\n2024-01-02,1,1,1,1,1\n"))],
            "000001.csv:3: column \"date\": 2024-01-02 does not come after 2024-01-03 on line 2",
        ),
        (
            vec![(s, format!("{HEADER}{good}{good}"))],
            "000001.csv:3: column \"date\": 2024-01-02 does not come after 2024-01-02 on line 2",
        ),
        (vec![(s, format!("{HEADER}2024-01-02,\"1,1,1,1,1\n"))], "000001.csv:2: unterminated quoted field"),
        (
            vec![(s, format!("{HEADER}2024-01-02,\"1\"2,1,1,1,1\n"))],
            "000001.csv:2: unexpected text after a closing quote",
        ),
        (
            vec![
                (s, good_file()),
                ("instruments.csv", "ticker,name,market,sector\n000001,A,KOSPI,\n000001,B,KOSDAQ,\n".into()),
            ],
            "instruments.csv:3: column \"ticker\": ticker 000001 is already listed on line 2",
        ),
        (
            vec![(s, good_file()), ("instruments.csv", "ticker,name,market,sector\n000001,A,NASDAQ,\n".into())],
            "instruments.csv:2: column \"market\": unknown market \"NASDAQ\"",
        ),
        (
            vec![(s, good_file()), ("instruments.csv", "ticker,name,market,sector\n5930,A,KOSPI,\n".into())],
            "instruments.csv:2: column \"ticker\": \"5930\" is not a ticker",
        ),
        (
            vec![(s, good_file()), ("instruments.csv", "ticker,name,sector\n000001,A,x\n".into())],
            "instruments.csv:1: missing column \"market\"",
        ),
        (
            vec![(s, good_file()), ("instruments.csv", "ticker,name,market,sector\n000001,A,KOSPI\n".into())],
            "instruments.csv:2: expected 4 fields as in the header, found 3",
        ),
        (
            vec![
                (s, good_file()),
                ("index/KS11.csv", format!("{HEADER}2024-01-02,1,1,1,2501.5,\n2024-01-03,1,1,1,abc,\n")),
            ],
            "KS11.csv:3: column \"close\": \"abc\" is not a number",
        ),
        (
            vec![(s, good_file()), ("index/KS11.csv", format!("{HEADER}2024-01-02,1,1,1,0,\n"))],
            "KS11.csv:2: column \"close\": price must be positive, found \"0\"",
        ),
        (
            vec![(s, good_file()), ("index/KS11.csv", "date,open\n2024-01-02,1\n".into())],
            "KS11.csv:1: missing column \"close\"",
        ),
        (vec![("notes.csv", "x".into())], ": no TICKER.csv files found"),
    ];
    for (files, wanted) in cases {
        let files: Vec<(&str, &str)> = files.iter().map(|(n, c)| (*n, c.as_str())).collect();
        let text = errors_for(&files, &one_thread());
        assert_has(&text, wanted);
    }
}

fn good_file() -> String {
    format!("{HEADER}2024-01-02,100,110,90,105,1000\n")
}

#[test]
fn invalid_utf8_in_instruments_is_reported() {
    // Written as raw bytes: the table above would re-encode them.
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    write(dir.path(), "instruments.csv", b"ticker,name,market,sector\n000001,\xBB\xEF,KOSPI,\n");
    assert_has(&load_err(dir.path(), &one_thread()), "instruments.csv:2: column \"name\": text is not valid UTF-8");
}

#[test]
fn requested_ticker_without_file_and_unreadable_file_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    // A directory in place of a file makes the read fail even when running as root.
    fs::create_dir(dir.path().join("000002.csv")).unwrap();
    let opts = LoadOptions { tickers: Some(vec![t("000001"), t("000002"), t("000009")]), ..one_thread() };
    let text = load_err(dir.path(), &opts);
    assert_has(&text, "000002.csv: cannot read:");
    assert_has(&text, "000009.csv: no file for requested ticker 000009");
    assert_eq!(text.lines().count(), 2, "{text}");

    let missing = dir.path().join("nope.csv");
    let opts = LoadOptions { instruments: Some(missing), ..one_thread() };
    assert_has(&load_err(dir.path(), &opts), "nope.csv: cannot read:");
    assert_has(&load_err(&dir.path().join("absent"), &one_thread()), "absent: cannot read:");
}

#[test]
fn non_ticker_files_are_skipped_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    write(dir.path(), "notes.csv", "whatever");
    write(dir.path(), "00593a.csv", "whatever");
    write(dir.path(), "instruments.csv", "ticker,name,market,sector\n000001,A,KOSPI,\n");
    let loaded = load_dir(dir.path(), &one_thread()).unwrap();
    let warnings: Vec<String> = loaded.report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 3, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("notes.csv: skipped: the file name is not a ticker")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("no calendar.csv")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("00593a.csv: skipped")), "{warnings:?}");
    assert_eq!(loaded.store.n_instruments(), 1);
}

#[test]
fn every_mistake_in_every_file_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "000001.csv",
        format!(
            "{HEADER}2024-01-02,100,110,90,105,1000\n\
             2024-13-01,100,110,90,105,1000\n\
             2024-01-04,100,110,90,1o5,1000\n\
             2024-01-05,100,110,90,105\n\
             2024-01-03,100,110,90,105,1000\n\
             2024-01-08,0,110,x,105,-1\n"
        ),
    );
    write(dir.path(), "000002.csv", "date,open,high,close,volume\n");
    write(dir.path(), "000003.csv", good_file());
    let text = load_err(dir.path(), &one_thread());
    let lines: Vec<&str> = text.lines().collect();
    let wanted = [
        "000001.csv:3: column \"date\": \"2024-13-01\" is not a date",
        "000001.csv:4: column \"close\": \"1o5\" is not a whole number",
        "000001.csv:5: expected 6 fields as in the header, found 5",
        "000001.csv:6: column \"date\": 2024-01-03 does not come after 2024-01-04 on line 4",
        "000001.csv:7: column \"open\": price must be positive",
        "000001.csv:7: column \"low\": \"x\" is not a whole number",
        "000001.csv:7: column \"volume\": volume must not be negative",
        "000002.csv:1: missing column \"low\"",
    ];
    assert_eq!(lines.len(), wanted.len(), "{text}");
    for (line, want) in lines.iter().zip(wanted) {
        assert!(line.contains(want), "expected {want:?}, got {line:?}");
    }
}

#[test]
fn errors_are_capped_per_file_and_in_total() {
    let bad_rows: String = (1..=30).map(|i| format!("2024-01-{:02},1,1,1,x,1\n", i % 28 + 1)).collect();
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", format!("{HEADER}{bad_rows}"));
    let text = load_err(dir.path(), &one_thread());
    // 30 bad closes plus one out-of-order date (day 1 after day 28).
    assert_eq!(text.lines().count(), 21, "{text}");
    assert_has(&text, "000001.csv: 11 more errors in this file not listed");

    for i in 2..=15 {
        write(dir.path(), &format!("{i:06}.csv"), format!("{HEADER}{bad_rows}"));
    }
    let text = load_err(dir.path(), &LoadOptions::default());
    assert_eq!(text.lines().count(), 201, "{text}");
    // 15 files × (20 listed + 1 summary) = 315 entries: 200 listed, 115 counted.
    assert!(text.lines().last().unwrap().ends_with(": 115 more errors not listed"), "{text}");
}

#[test]
fn inconsistent_low_and_high_are_clamped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "000001.csv",
        format!(
            "{HEADER}2024-01-02,100,110,101,105,1\n\
             2024-01-03,100,104,99,105,1\n\
             2024-01-04,100,110,90,105,1\n\
             2024-01-05,100,99,101,100,1\n\
             2024-01-08,100,100,101,100,1\n\
             2024-01-09,100,100,101,100,1\n"
        ),
    );
    let Loaded { store, report } = load_dir(dir.path(), &one_thread()).unwrap();
    // Rows 5-7 even have low above high; clamping still brackets open and close.
    assert_eq!(
        bars_of(&store, "000001"),
        [
            Some(bar(100, 110, 100, 105, 1)),
            Some(bar(100, 105, 99, 105, 1)),
            Some(bar(100, 110, 90, 105, 1)),
            Some(bar(100, 100, 100, 100, 1)),
            Some(bar(100, 100, 100, 100, 1)),
            Some(bar(100, 100, 100, 100, 1)),
        ]
    );
    assert_eq!(report.clamped_rows, 5);
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 6, "{warnings:?}");
    assert_has(&warnings[4], "no instruments file");
    assert_has(&warnings[5], "no calendar.csv");
    assert_has(
        &warnings[0],
        "000001.csv:2: low 101 / high 110 do not bracket open 100 and close 105; clamped to 100 / 110",
    );
    assert_has(&warnings[1], "000001.csv:3: low 99 / high 104");
    assert_has(&warnings[2], "000001.csv:5: ");
    assert_has(&warnings[3], "000001.csv: 2 more clamped rows not listed");
}

#[test]
fn tickers_subset_loads_only_those() {
    let dir = small_dir();
    write(dir.path(), "000030.csv", format!("{HEADER}2023-06-01,5,5,5,5,5\n"));
    write(dir.path(), "notes.csv", "unrelated");
    let opts = LoadOptions { tickers: Some(vec![t("000030"), t("000010"), t("000030")]), ..one_thread() };
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    let tickers: Vec<Ticker> = store.instruments().iter().map(|i| i.ticker).collect();
    assert_eq!(tickers, [t("000010"), t("000030")]);
    assert_eq!(store.dates(), &[d(2023, 6, 1), d(2024, 1, 2), d(2024, 1, 3), d(2024, 1, 5)]);
    assert_eq!(report.rows, 4);
    // 000030 is not in instruments.csv: default market, ticker as name, one warning.
    let i30 = store.instrument(store.slot_of(t("000030")).unwrap());
    assert_eq!((i30.name.as_str(), i30.market, i30.sector.as_str()), ("000030", Market::Kospi, ""));
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert_has(&warnings[0], "000030.csv: not in the instruments file; using market KOSPI");
    assert_has(&warnings[1], "no calendar.csv");
}

#[test]
fn date_range_keeps_only_rows_inside_it() {
    let dir = small_dir();
    let opts = LoadOptions {
        from: Some(d(2024, 1, 3)),
        to: Some(d(2024, 1, 4)),
        default_market: Some(Market::Konex),
        ..one_thread()
    };
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    assert_eq!(store.dates(), &[d(2024, 1, 3), d(2024, 1, 4)]);
    assert_eq!(bars_of(&store, "000010"), [Some(bar(105, 115, 100, 110, 2000)), None]);
    assert_eq!(
        bars_of(&store, "000020"),
        [Some(bar(7050, 7100, 6900, 7000, 500)), Some(bar(7000, 7200, 7000, 7100, 600))]
    );
    let ks11 = &store.index("ks11").unwrap().close;
    assert!(ks11[0].is_nan());
    assert_eq!(ks11[1], 2515.25);
    assert_eq!(report.rows, 3);

    // Rows outside the range are still checked.
    write(dir.path(), "000030.csv", format!("{HEADER}2020-01-02,0,1,1,1,1\n"));
    assert_has(&load_err(dir.path(), &opts), "000030.csv:2: column \"open\": price must be positive");

    // A range that excludes everything leaves instruments without bars and no sessions.
    fs::remove_file(dir.path().join("000030.csv")).unwrap();
    let opts = LoadOptions { from: Some(d(2030, 1, 1)), ..one_thread() };
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    assert_eq!((store.n_days(), store.n_instruments(), report.rows), (0, 2, 0));
    assert_eq!(store.index("KS11").unwrap().close.len(), 0);
}

#[test]
fn missing_instruments_file_gets_one_warning_and_the_default_market() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    write(dir.path(), "000002.csv", good_file());
    let opts = LoadOptions { default_market: Some(Market::Kosdaq), ..one_thread() };
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    assert!(store.instruments().iter().all(|i| i.market == Market::Kosdaq));
    assert_eq!(report.warnings_total, 2);
    assert_has(&report.warnings[0].to_string(), "no instruments file; 2 ticker(s) use market KOSDAQ");
    assert_has(&report.warnings[1].to_string(), "no calendar.csv");

    let opts = LoadOptions { index_dir: Some(dir.path().join("nowhere")), ..one_thread() };
    let report = load_dir(dir.path(), &opts).unwrap().report;
    assert!(report.warnings.iter().any(|w| w.to_string().contains("nowhere: index directory does not exist")));
}

#[test]
fn thread_count_does_not_change_the_result() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..37u32 {
        let rows: String = (0..50u32)
            .filter(|k| (k + i) % 7 != 0)
            .map(|k| {
                let day = d(2020, 1, 1) + chrono::Days::new(u64::from(k * 2 + i % 3));
                let p = 1000 + i * 10 + k;
                format!("{day},{p},{},{},{p},{}\n", p + 5, p - 5, k * i)
            })
            .collect();
        write(dir.path(), &format!("{:06}.csv", 100 + i), format!("{HEADER}{rows}"));
    }
    let load = |threads| load_dir(dir.path(), &LoadOptions { threads, ..one_thread() }).unwrap();
    let (a, b) = (load(1), load(4));
    assert_eq!(a.report, b.report);
    assert_eq!(a.store.dates(), b.store.dates());
    assert_eq!(a.store.instruments(), b.store.instruments());
    for slot in 0..a.store.n_instruments() {
        for day in 0..a.store.n_days() {
            assert_eq!(a.store.raw(slot, day), b.store.raw(slot, day));
        }
    }
    assert_eq!(a.store.bar_count(), a.report.rows);

    // Errors come back in file order whatever the thread count.
    write(dir.path(), "000105.csv", "date,open\n");
    write(dir.path(), "000120.csv", format!("{HEADER}2020-01-01,x,1,1,1,1\n"));
    let errs = |threads| load_err(dir.path(), &LoadOptions { threads, ..LoadOptions::default() });
    assert_eq!(errs(1), errs(3));
}

/// The real KRX data set, read in place (`../shared/data/krx` beside the repository, or
/// `HAECHI_KRX_DATA`). Skipped when absent unless `HAECHI_REQUIRE_KRX_DATA` is set, as CI does.
fn krx_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HAECHI_KRX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/krx"));
    if dir.join("stocks").is_dir() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("HAECHI_REQUIRE_KRX_DATA").is_none(),
        "real KRX data required but not found at {}",
        dir.display()
    );
    println!("skipped: no real KRX data at {}", dir.display());
    None
}

#[test]
fn loads_the_real_krx_data() {
    let Some(krx) = krx_dir() else { return };
    let stocks = krx.join("stocks");
    let opts = LoadOptions {
        index_dir: Some(krx.join("index")),
        default_market: Some(Market::Kospi),
        calendar: Some(krx.join("calendar/krx_trading_days.csv")),
        ..LoadOptions::default()
    };
    let Loaded { store, report } = match load_dir(&stocks, &opts) {
        Ok(loaded) => loaded,
        Err(e) => panic!("real data failed to load:\n{e}"),
    };
    assert_eq!(store.n_instruments(), 53);
    let samsung = store.slot_of(t("005930")).unwrap();
    let samsung_bars = (0..store.n_days()).filter(|&day| store.raw(samsung, day).is_some()).count();
    assert_eq!(samsung_bars, 5996, "README: 005930 has 5996 rows");
    // README: adjusted high before the 2018 split, off the tick grid.
    let day = store.dates().binary_search(&d(2018, 4, 27)).unwrap();
    assert_eq!(store.raw(samsung, day), Some(bar(53380, 53639, 52440, 53000, 606_216)));
    // The README's per-file row counts sum to 192,090; 2,851 rows fail low <= open, close <= high
    // (counted independently with awk).
    assert_eq!(report.rows, 192_090);
    assert_eq!(report.clamped_rows, 2851);
    // 53 stocks, 3 indices, the calendar.
    assert_eq!(report.files, 53 + 3 + 1);
    assert!(report.warnings.iter().any(|w| matches!(w.kind, WarningKind::Clamped { .. })));
    // The calendar is the KS11 date list and every stock date is a trading day, so the
    // aligned index has a value on every session.
    let ks11 = store.index("KS11").unwrap();
    assert!(ks11.close.iter().all(|c| c.is_finite()), "KS11 has gaps");
    let last = store.dates().binary_search(&d(2024, 12, 13)).unwrap();
    assert_eq!(ks11.close[last], 2494.46);
    assert!(store.index("KQ11").is_some() && store.index("KS200").is_some());
    for slot in 0..store.n_instruments() {
        for day in 0..store.n_days() {
            if let Some(b) = store.raw(slot, day) {
                assert!(b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close) && b.low > 0);
            }
        }
    }
}

#[test]
fn real_data_subset_with_range() {
    let Some(krx) = krx_dir() else { return };
    let stocks = krx.join("stocks");
    let opts = LoadOptions {
        tickers: Some(vec![t("005930"), t("068270")]),
        from: Some(d(2018, 1, 1)),
        to: Some(d(2018, 12, 31)),
        index_dir: Some(krx.join("index")),
        default_market: Some(Market::Kospi),
        calendar: Some(krx.join("calendar/krx_trading_days.csv")),
        ..LoadOptions::default()
    };
    let Loaded { store, .. } = load_dir(&stocks, &opts).unwrap();
    // README: 244 sessions in 2018; Samsung was halted 2018-04-30 … 2018-05-03 (3 days).
    assert_eq!(store.n_days(), 244);
    let samsung = store.slot_of(t("005930")).unwrap();
    assert_eq!((0..244).filter(|&day| store.raw(samsung, day).is_some()).count(), 241);
    let celltrion = store.slot_of(t("068270")).unwrap();
    assert_eq!(store.dates()[(0..244).find(|&day| store.raw(celltrion, day).is_some()).unwrap()], d(2018, 2, 9));
}

fn fuzz_dir(name: &str, bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    write(dir.path(), name, bytes);
    let opts = LoadOptions { tickers: None, threads: 1, ..LoadOptions::default() };
    // Either outcome is fine; only a panic fails.
    match load_dir(dir.path(), &opts) {
        Ok(loaded) => {
            for slot in 0..loaded.store.n_instruments() {
                for day in 0..loaded.store.n_days() {
                    if let Some(b) = loaded.store.raw(slot, day) {
                        assert!(b.low > 0 && b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close));
                    }
                }
            }
        }
        Err(e) => assert!(!e.0.is_empty() && !e.to_string().is_empty()),
    }
}

const CSVISH: &str = "(date|open|high|low|close|volume|ticker|market|KOSPI|2024-0[1-2]-[0-3][0-9]|[0-9]{1,3}|99999999999|-1|0|\\.5|,|,|,|\"|\r|\n|\n| |\u{FEFF}|x){0,60}";

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_bytes_as_a_ticker_file_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        fuzz_dir("000002.csv", &bytes);
    }

    #[test]
    fn csv_like_ticker_files_never_panic(body in CSVISH, header in any::<bool>()) {
        let text = if header { format!("{HEADER}{body}") } else { body };
        fuzz_dir("000002.csv", text.as_bytes());
    }

    #[test]
    fn arbitrary_instruments_and_index_files_never_panic(body in CSVISH, bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        fuzz_dir("instruments.csv", format!("ticker,name,market,sector\n{body}").as_bytes());
        fuzz_dir("instruments.csv", &bytes);
        fuzz_dir("index/KS11.csv", format!("{HEADER}{body}").as_bytes());
        fuzz_dir("index/KS11.csv", &bytes);
    }
}

#[test]
fn unknown_markets_are_errors_without_a_default() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "000001.csv", good_file());
    write(dir.path(), "000002.csv", good_file());
    let opts = LoadOptions { threads: 1, ..LoadOptions::default() };
    assert_has(
        &load_err(dir.path(), &opts),
        "no instruments.csv, so the market of 2 ticker(s) is unknown (first: 000001)",
    );
    write(dir.path(), "instruments.csv", "ticker,name,market,sector\n000001,A,KOSDAQ,\n");
    assert_has(
        &load_err(dir.path(), &opts),
        "000002.csv: 000002 is not in the instruments file, so its market is unknown",
    );
    write(dir.path(), "instruments.csv", "ticker,name,market,sector\n000001,A,KOSDAQ,\n000002,B,KOSPI,\n");
    let store = load_dir(dir.path(), &opts).unwrap().store;
    assert_eq!(store.instrument(0).market, Market::Kosdaq);
}

#[test]
fn a_calendar_file_gives_the_sessions_a_halt_cannot_remove() {
    let dir = tempfile::tempdir().unwrap();
    // Both names skip 2024-01-03: a day the exchange traded and both were halted.
    let rows = "2024-01-02,100,110,90,105,1\n2024-01-04,100,110,90,105,1\n2024-01-08,100,110,90,105,1\n";
    write(dir.path(), "000001.csv", format!("{HEADER}{rows}"));
    write(dir.path(), "000002.csv", format!("{HEADER}{rows}"));
    write(dir.path(), "instruments.csv", "ticker,name,market,sector\n000001,A,KOSPI,\n000002,B,KOSDAQ,\n");
    write(dir.path(), "calendar.csv", "date,holiday_name\n2024-01-02,\n2024-01-03,\n2024-01-04,\n2024-01-05,\n");
    let opts = LoadOptions { threads: 1, ..LoadOptions::default() };
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    // The calendar's days from the first to the last bar, and 01-08 past its end.
    assert_eq!(store.dates(), &[d(2024, 1, 2), d(2024, 1, 3), d(2024, 1, 4), d(2024, 1, 5), d(2024, 1, 8)]);
    assert_eq!(store.raw(0, 1), None);
    assert_eq!(store.calendar_source(), haechi_core::CalendarSource::Exchange);
    // T+2 from 01-02 counts the halt day.
    assert_eq!(store.calendar().add_sessions(d(2024, 1, 2), 2), d(2024, 1, 4));
    let warnings: Vec<String> = report.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_has(
        &warnings[0],
        "calendar.csv: 1 session(s) outside the calendar's range 2024-01-02 to 2024-01-05 are taken from the bars",
    );
    // A bar on a day the calendar covers but does not list is refused, naming file and date.
    write(dir.path(), "000003.csv", format!("{HEADER}2024-01-06,100,110,90,105,1\n"));
    write(
        dir.path(),
        "instruments.csv",
        "ticker,name,market,sector\n000001,A,KOSPI,\n000002,B,KOSDAQ,\n000003,C,KOSPI,\n",
    );
    write(dir.path(), "calendar.csv", "date\n2024-01-02\n2024-01-03\n2024-01-04\n2024-01-05\n2024-01-08\n");
    assert_has(
        &load_err(dir.path(), &opts),
        "000003.csv: column \"date\": 2024-01-06 is not a trading day in the calendar file, which covers that date",
    );
    // A calendar without days is none: the sessions come from the bars, with the warning.
    write(dir.path(), "calendar.csv", "date\n");
    let Loaded { store, report } = load_dir(dir.path(), &opts).unwrap();
    assert_eq!(store.calendar_source(), haechi_core::CalendarSource::BarUnion);
    assert!(report.warnings.iter().any(|w| w.kind == WarningKind::NoCalendar));
    // A malformed calendar names its line.
    write(dir.path(), "calendar.csv", "date\n2024-01-02\n2024-13-03\n");
    assert_has(&load_err(dir.path(), &opts), "calendar.csv:3: column \"date\"");
}
