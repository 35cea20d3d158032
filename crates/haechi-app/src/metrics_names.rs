//! Every metric the use cases record, named once.

/// Counter: runs queued by any edge (API, portal, demo).
pub const RUNS_ENQUEUED: &str = "haechi_runs_enqueued_total";
/// Counter: password hashes refused because every hashing slot stayed busy (answered 503).
pub const PASSWORD_HASH_REFUSED: &str = "haechi_password_hash_refused_total";
