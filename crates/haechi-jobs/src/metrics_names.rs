//! Every metric this crate records, named in one place (the queue's own are in
//! `haechi-queue`).

/// Seconds from enqueue to the first attempt of a run.
pub(crate) const RUN_WAIT_SECONDS: &str = "haechi_run_wait_seconds";
/// Seconds of one run attempt.
pub(crate) const RUN_DURATION_SECONDS: &str = "haechi_run_duration_seconds";
/// Runs that ended or were retried, by `outcome` (a final run state, or `retried`).
pub(crate) const RUNS_TOTAL: &str = "haechi_runs_total";
/// Daily schedule checks that claimed their day, by `schedule` and `outcome` (done, failed).
pub(crate) const SCHEDULE_RUNS_TOTAL: &str = "haechi_schedule_runs_total";
/// ETL runs that ended, by `kind` and `outcome`.
pub(crate) const ETL_RUNS_TOTAL: &str = "haechi_etl_runs_total";
/// Data-quality findings, by `check`.
pub(crate) const ETL_QUALITY_FINDINGS_TOTAL: &str = "haechi_etl_quality_findings_total";
/// Rows written by the ETL, by `table`.
pub(crate) const ETL_ROWS_UPSERTED_TOTAL: &str = "haechi_etl_rows_upserted_total";
