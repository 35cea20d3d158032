pub(crate) const JOBS_TOTAL: &str = "haechi_queue_total";
pub(crate) const JOB_DURATION: &str = "haechi_job_duration_seconds";
pub(crate) const QUEUE_DEPTH: &str = "haechi_queue_depth";

pub(crate) fn outcome(outcome: &'static str) {
    metrics::counter!(JOBS_TOTAL, "outcome" => outcome).increment(1);
}
