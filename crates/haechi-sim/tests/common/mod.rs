//! Helpers shared by the real-data tests.

use std::path::PathBuf;

/// The shared real KRX data: `../shared/data/krx/` (or `HAECHI_KRX_DATA`), never copied into the
/// repository. `None` (the test skips) when absent, unless `HAECHI_REQUIRE_KRX_DATA` is set (CI).
pub fn krx_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HAECHI_KRX_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/krx"));
    if dir.join("stocks/005930.csv").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("HAECHI_REQUIRE_KRX_DATA").is_none(),
        "real KRX data required but not found at {}",
        dir.display()
    );
    eprintln!("skipped: no real KRX data at {}", dir.display());
    None
}
