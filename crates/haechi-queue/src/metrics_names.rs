//! Every metric this crate records, named in one place.

/// Executions that ended, by `kind` and `outcome` (succeeded, failed, retried).
pub(crate) const JOBS_TOTAL: &str = "haechi_jobs_total";
/// Time of one attempt, by `kind`.
pub(crate) const JOB_DURATION: &str = "haechi_job_duration_seconds";
/// Jobs waiting, by `queue`.
pub(crate) const QUEUE_DEPTH: &str = "haechi_queue_depth";

pub(crate) fn outcome(kind: &'static str, outcome: &'static str) {
    metrics::counter!(JOBS_TOTAL, "kind" => kind, "outcome" => outcome).increment(1);
}
