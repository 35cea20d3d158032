//! Every metric the HTTP edge records, named once.

/// Counter: requests answered, by method, route and status.
pub const HTTP_REQUESTS: &str = "haechi_http_requests_total";
/// Histogram: seconds to answer, by route.
pub const HTTP_REQUEST_DURATION: &str = "haechi_http_request_duration_seconds";
/// Counter: access-log entries dropped because the writer fell behind.
pub const ACCESS_LOG_DROPPED: &str = "haechi_access_log_dropped_total";
