//! HTTP routes under `/api/v1`: thin handlers that read the request, call a use case in
//! `haechi-app`, and shape its answer (status, headers, JSON view).

pub mod admin;
pub mod auth;
pub mod health;
pub mod me;
pub mod paper;
pub mod risk;
pub mod runs;
pub mod scenarios;
pub mod sweeps;

use crate::error::ApiError;
use haechi_app::paging::Paging;

/// The page a client asked for (`page` from 0, `per_page` 1–200, default 50).
pub(crate) fn paging(page: Option<u64>, per_page: Option<u64>) -> Result<Paging, ApiError> {
    Ok(Paging::new(page, per_page)?)
}
