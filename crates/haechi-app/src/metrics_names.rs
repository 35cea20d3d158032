//! Every metric the use cases record, named once.

/// Counter: runs queued by any edge (API, portal, demo).
pub const RUNS_ENQUEUED: &str = "haechi_runs_enqueued_total";
