//! The `haechi` binary end to end: synthesise a market, run every example, check reports,
//! determinism and the exit status and messages for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn haechi(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_haechi")).args(args).output().expect("run haechi")
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// One synthetic market shared by the tests in this file (generated once).
fn market() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("market");
        let o = haechi(&[
            "data",
            "synth",
            "--seed",
            "42",
            "--tickers",
            "40",
            "--from",
            "2015-01-01",
            "--to",
            "2024-12-31",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "synth failed: {}", String::from_utf8_lossy(&o.stderr));
        dir
    })
    .path()
}

/// The real KRX data imported with `haechi data import-krx` (once), or `None` when the shared
/// data is absent and not required.
fn krx_market() -> Option<&'static Path> {
    static DIR: OnceLock<Option<tempfile::TempDir>> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = repo().join("../shared/data/krx");
        if !src.join("stocks").is_dir() {
            assert!(
                std::env::var_os("HAECHI_REQUIRE_KRX_DATA").is_none(),
                "real KRX data required at {}",
                src.display()
            );
            eprintln!("skipped the real-data examples: no {}", src.display());
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("krx");
        let o = haechi(&["data", "import-krx", "--from", src.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "import failed: {}", String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("53 tickers (30 KOSPI, 23 KOSDAQ)"), "{stdout}");
        assert!(stdout.contains("263750 starts at 2021-04-16"), "{stdout}");
        for file in ["instruments.csv", "calendar.csv", "005930.csv", "index/KS11.csv"] {
            assert!(out.join(file).is_file(), "{file} missing");
        }
        Some(dir)
    })
    .as_ref()
    .map(tempfile::TempDir::path)
}

fn examples() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("toml" | "json")))
        .collect();
    v.sort();
    v
}

#[test]
fn every_example_runs_and_reports() {
    let data = market().join("market");
    let files = examples();
    assert!(files.len() >= 6, "examples: {files:?}");
    for file in files {
        // `krx_*` examples name real tickers: they run on the imported real data.
        let real = file.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("krx_"));
        let data = match (real, krx_market()) {
            (false, _) => data.clone(),
            (true, Some(dir)) => dir.join("krx"),
            (true, None) => continue,
        };
        let out = tempfile::tempdir().unwrap();
        let json = out.path().join("r.json");
        let html = out.path().join("r.html");
        let o = haechi(&[
            "simulate",
            "--scenario",
            file.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ]);
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{}: {}", file.display(), String::from_utf8_lossy(&o.stderr));
        assert!(stdout.contains("총수익률 Total return") && stdout.contains("샤프 Sharpe"), "{stdout}");
        let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
        assert_eq!(report["schema_version"], 1);
        assert_eq!(report["data"]["synthetic"], !real);
        assert_eq!(report["data"]["calendar"], "exchange", "{}", file.display());
        let fills = report["fills"].as_array().unwrap();
        assert!(!fills.is_empty(), "{} traded nothing", file.display());
        assert!(report["equity_curve"].as_array().unwrap().len() > 1_000);
        let page = std::fs::read_to_string(&html).unwrap();
        assert!(page.contains("<svg") && page.contains("월별 수익률"));
        // Self-contained: no scripts, no external resources.
        assert!(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"));
    }
}

#[test]
fn the_same_scenario_and_data_give_byte_identical_reports() {
    let data = market().join("market");
    let scenario = repo().join("examples/momentum_rotation.toml");
    let out = tempfile::tempdir().unwrap();
    let mut bytes = Vec::new();
    for i in 0..2 {
        let json = out.path().join(format!("{i}.json"));
        let html = out.path().join(format!("{i}.html"));
        let o = haechi(&[
            "simulate",
            "--quiet",
            "--scenario",
            scenario.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--out",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        assert!(o.stdout.is_empty(), "--quiet prints nothing");
        bytes.push((std::fs::read(json).unwrap(), std::fs::read(html).unwrap()));
    }
    assert!(bytes[0].0 == bytes[1].0, "JSON reports differ");
    assert!(bytes[0].1 == bytes[1].1, "HTML reports differ");
}

#[test]
fn synth_is_deterministic_by_seed() {
    let dir = tempfile::tempdir().unwrap();
    let run = |seed: &str, name: &str| {
        let out = dir.path().join(name);
        let o = haechi(&[
            "data",
            "synth",
            "--seed",
            seed,
            "--tickers",
            "3",
            "--from",
            "2024-01-01",
            "--to",
            "2024-03-31",
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success());
        std::fs::read(out.join("100010.csv")).unwrap()
    };
    assert_eq!(run("1", "a"), run("1", "b"));
    assert_ne!(run("1", "a"), run("2", "c"));
}

#[test]
fn a_bad_scenario_exits_2_listing_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "name = \"bad\"\ncapital = 10\n[period]\nstart = \"2020-01-02\"\nend = \"2019-01-02\"\n[universe]\nall = true\n[strategy]\ntype = \"sma_cross\"\nfast = 30\nslow = 10\n",
    )
    .unwrap();
    let data = market().join("market");
    let o = haechi(&["simulate", "--scenario", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for needle in
        ["3 problems", "capital: must be between", "period.end: 2019-01-02 is before", "strategy.slow: must be greater"]
    {
        assert!(err.contains(needle), "missing {needle:?} in:\n{err}");
    }
    assert!(!err.contains("panicked"));
}

#[test]
fn bad_market_data_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(data.join("005930.csv"), "date,open,high,low,close,volume\n2024-01-02,100,110,90,105,1000\n2024-01-03,100,110,90,abc,1000\n2024-01-02,100,110,90,100,1000\n").unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "name = \"s\"\ncapital = 1_000_000\nperiod = { start = 2024-01-01, end = 2024-12-31 }\nuniverse = { tickers = [\"005930\", \"000660\"] }\nstrategy = { type = \"buy_and_hold\" }\n").unwrap();
    let o = haechi(&["simulate", "--scenario", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("005930.csv:3"), "{err}");
    assert!(err.contains("005930.csv:4"), "{err}");
    assert!(err.contains("000660"), "{err}");
    assert!(!err.contains("panicked"));
}

#[test]
fn a_ticker_missing_from_the_data_is_named_by_its_field() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, "name = \"s\"\ncapital = 1_000_000\nperiod = { start = 2016-01-04, end = 2016-12-30 }\nuniverse = { markets = [\"KONEX\"] }\nstrategy = { type = \"buy_and_hold\" }\nbenchmark = \"NOPE\"\n").unwrap();
    let data = market().join("market");
    let o = haechi(&["simulate", "--scenario", file.to_str().unwrap(), "--data", data.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("universe.markets: no instrument"), "{err}");
    assert!(err.contains("benchmark: \"NOPE\" is neither"), "{err}");
}

#[test]
fn user_create_migrate_and_config_check() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/h.db", dir.path().display());
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_haechi"));
        c.args(args)
            .env("HAECHI_DATABASE_URL", &db)
            .env("HAECHI_DATA_DIR", dir.path())
            .env_remove("HAECHI_TEST_MYSQL_URL");
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = run(&["migrate"], &[]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(
        &["user", "create", "--email", "Root@Example.com", "--role", "admin"],
        &[("HAECHI_NEW_USER_PASSWORD", "correct horse battery staple")],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("root@example.com) with role admin"));
    let o = run(
        &["user", "create", "--email", "root@example.com"],
        &[("HAECHI_NEW_USER_PASSWORD", "correct horse battery staple")],
    );
    assert!(!o.status.success(), "duplicate email refused");
    let o = run(&["user", "create", "--email", "x@example.com"], &[("HAECHI_NEW_USER_PASSWORD", "short")]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("at least 12 characters"));
    let o = run(&["config", "check"], &[("HAECHI_SECRET_KEY", "0123456789abcdef0123456789abcdef-secret")]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(out.contains("secret_key = [redacted]") || out.contains("[redacted]"), "{out}");
    assert!(!out.contains("0123456789abcdef"), "secret leaked: {out}");
    let o = run(&["config", "check"], &[("HAECHI_SESSION_IDLE_MINUTES", "2"), ("HAECHI_LOGIN_MAX_FAILURES", "zero")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("session_idle_minutes") && err.contains("login_max_failures"), "{err}");
}

#[test]
fn config_check_shows_the_kis_section_and_refuses_bad_kis_values() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("kis-secret");
    std::fs::write(&secret, "kis-secret-value\n").unwrap();
    std::fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let config = dir.path().join("haechi.toml");
    std::fs::write(&config, "[kis]\nenv = \"real\"\ndaily_at = \"17:15\"\n").unwrap();
    let run = |envs: &[(&str, &str)]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_haechi"));
        c.arg("--config").arg(&config).args(["config", "check"]).env("HAECHI_DATA_DIR", dir.path());
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let o = run(&[
        ("HAECHI_KIS_APP_KEY", "PSkeyvalue"),
        ("HAECHI_KIS_APP_SECRET_FILE", secret.to_str().unwrap()),
        ("HAECHI_KIS_BASE_URL", "http://127.0.0.1:9443"),
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("\n[kis]\n"), "{out}");
    assert!(out.contains("app_secret = \"[redacted]\"  # file HAECHI_KIS_APP_SECRET_FILE\n"), "{out}");
    assert!(out.contains("daily_at = \"17:15\"  # file "), "{out}");
    assert!(out.contains("kis: real environment") && out.contains("base http://127.0.0.1:9443"), "{out}");
    assert!(!out.contains("PSkeyvalue") && !out.contains("kis-secret-value"), "a KIS secret leaked: {out}");

    let o = run(&[("HAECHI_KIS_APP_KEY", "PSkeyvalue"), ("HAECHI_KIS_DAILY_AT", "4pm")]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("kis.daily_at: \"4pm\" is not a time of day as HH:MM (from env HAECHI_KIS_DAILY_AT)"),
        "{err}"
    );
    assert!(err.contains("kis.app_secret: required when kis.app_key is set"), "{err}");

    let o = Command::new(env!("CARGO_BIN_EXE_haechi")).args(["config", "keys"]).output().unwrap();
    let table = String::from_utf8_lossy(&o.stdout);
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/configuration.md")).unwrap();
    assert!(o.status.success() && table.contains("| `kis.daily_at` | `HAECHI_KIS_DAILY_AT` |"), "{table}");
    assert!(docs.contains(table.as_ref()), "`haechi config keys` prints the table in docs/configuration.md");
}

#[test]
fn data_load_puts_a_csv_market_into_the_database_as_a_new_version() {
    let data = tempfile::tempdir().unwrap();
    let load = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_haechi"))
            .args(["data", "load"])
            .args(args)
            .env("HAECHI_DATA_DIR", data.path())
            .env_remove("HAECHI_DATABASE_URL")
            .output()
            .unwrap()
    };
    let csv = market().join("market");
    let o = load(&["--csv", csv.to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{out}{}", String::from_utf8_lossy(&o.stderr));
    assert!(out.contains("40 instruments") && out.contains("data version 1"), "{out}");
    // Loading again is idempotent for the bars and bumps the version.
    let o = load(&["--csv", csv.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("data version 2"));
    let o = load(&["--csv", "/no/such/market"]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("/no/such/market"), "{err}");
    assert!(data.path().join("haechi.db").exists(), "the data folder holds the database");
}

#[test]
fn sweep_writes_one_row_per_point_and_refuses_a_bad_grid_up_front() {
    let data = market().join("market");
    let scenario = repo().join("examples/sma_cross.toml");
    let out = tempfile::tempdir().unwrap();
    let csv = out.path().join("sweep.csv");
    let json = out.path().join("sweep.json");
    let o = haechi(&[
        "sweep",
        "--scenario",
        scenario.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--grid",
        "strategy.fast=10..30:10",
        "--grid",
        "strategy.slow=[60, 90]",
        "--out",
        csv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(stdout.contains("Sweep done: 6 points") && stdout.contains("deflated Sharpe ratio"), "{stdout}");
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert_eq!(rows.len(), 7, "{text}");
    assert!(rows[0].starts_with("point,strategy.fast,strategy.slow,total_return,"));
    assert!(rows[6].starts_with("5,30,90,"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(v["points"].as_array().unwrap().len(), 6);
    let p = v["best"]["deflated_sharpe"]["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    // The best point's Sharpe ratio is the highest in the CSV.
    let sharpe_col = rows[0].split(',').position(|c| c == "sharpe").unwrap();
    let best =
        rows[1..].iter().filter_map(|r| r.split(',').nth(sharpe_col)?.parse::<f64>().ok()).fold(f64::MIN, f64::max);
    assert!((v["best"]["point"]["summary"]["sharpe"].as_f64().unwrap() - best).abs() < 1e-12);

    let o = haechi(&[
        "sweep",
        "--scenario",
        scenario.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--grid",
        "strategy.fastt=1..3",
        "--grid",
        "strategy.slow=90..60",
        "--grid",
        "strategy.type=1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("grid strategy.slow: the range 90..60 is empty"), "{err}");
    let o = haechi(&[
        "sweep",
        "--scenario",
        scenario.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--grid",
        "strategy.fastt=1..3",
        "--grid",
        "strategy.type=1",
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("strategy.fastt: is not a known field") && err.contains("strategy.type: must be a string"),
        "{err}"
    );
}

/// The threat-response headline, on real KOSPI data: the default market playbook cuts the
/// maximum drawdown by at least 30% in 2008, 2020-03 and 2022, for under a point of CAGR
/// over 2005–2024; the daily curves in the JSON recompute the figures.
#[test]
fn guard_evaluate_reproduces_the_headline_on_kospi() {
    let src = repo().join("../shared/data/krx");
    if !src.join("index/KS11.csv").is_file() {
        assert!(std::env::var_os("HAECHI_REQUIRE_KRX_DATA").is_none(), "real KRX data required");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("guard.json");
    let csv = dir.path().join("guard.csv");
    let o = haechi(&[
        "guard",
        "evaluate",
        "--data",
        src.to_str().unwrap(),
        "--from",
        "2005-01-01",
        "--to",
        "2024-12-31",
        "--out",
        out.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let window =
        |name: &str| v["windows"].as_array().unwrap().iter().find(|w| w["window"]["name"] == name).unwrap().clone();
    for crisis in ["2008", "2020-03", "2022"] {
        let cut = window(crisis)["drawdown_cut"].as_f64().unwrap();
        assert!(cut >= 0.30, "{crisis}: drawdown cut {cut}");
    }
    let cost = window("2005–2024")["cagr_cost_points"].as_f64().unwrap();
    assert!(cost < 1.0, "CAGR cost {cost} points");
    // The curves agree with the figures: recompute the 2022 drawdown of both from the CSV.
    let text = std::fs::read_to_string(&csv).unwrap();
    let (mut peak, mut mdd) = ([f64::MIN; 2], [0.0f64; 2]);
    for line in text.lines().skip(1).filter(|l| l.starts_with("2022-")) {
        let f: Vec<f64> = line.split(',').skip(1).take(2).map(|x| x.parse().unwrap()).collect();
        for k in 0..2 {
            peak[k] = peak[k].max(f[k]);
            mdd[k] = mdd[k].min(f[k] / peak[k] - 1.0);
        }
    }
    let w = window("2022");
    assert!((mdd[0] - w["with"]["max_drawdown"].as_f64().unwrap()).abs() < 1e-5);
    assert!((mdd[1] - w["without"]["max_drawdown"].as_f64().unwrap()).abs() < 1e-5);
    // The plan acted, and says when and why.
    assert!(!v["changes"].as_array().unwrap().is_empty());
}

#[test]
fn guard_check_lists_every_problem_of_a_playbook() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "name = \"x\"\nmode = \"sometimes\"\n[[rules]]\nid = \"r\"\nwhen = [\"market.trend_0 < 0\"]\nactions = [{ do = \"hedge\", ratio = 2.0 }]\n",
    )
    .unwrap();
    let o = haechi(&["guard", "check", "--playbook", file.to_str().unwrap()]);
    // Invalid input exits 2, as `simulate` and `sweep` do.
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    for want in [
        "3 problem(s)",
        "mode: \"sometimes\" is not advise or auto",
        "rules[0].when[0]: signal \"market.trend_0\": window 0 is outside 2..=504",
        "rules[0].actions[0].ratio: 2 is outside 0..=1",
    ] {
        assert!(err.contains(want), "missing {want:?} in {err}");
    }
    let o = haechi(&["guard", "check", "--playbook", "security-default"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
