//! Page numbers and sizes, checked once for every list.

use crate::error::{AppError, AppResult};

/// Items per page when none is asked for, and the most that may be asked for.
pub const DEFAULT_PER_PAGE: u64 = 50;
pub const MAX_PER_PAGE: u64 = 200;
/// Pages beyond this are refused: page × per_page must stay a valid SQL offset.
pub const MAX_PAGE: u64 = 1_000_000;

/// A page request: `page` counts from 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub page: u64,
    pub per_page: u64,
}

impl Paging {
    /// # Errors
    /// [`AppError::Invalid`] naming `page` when it is past [`MAX_PAGE`].
    pub fn new(page: Option<u64>, per_page: Option<u64>) -> AppResult<Paging> {
        let page = page.unwrap_or(0);
        if page > MAX_PAGE {
            return Err(AppError::invalid("page", format!("must be at most {MAX_PAGE}")));
        }
        Ok(Paging { page, per_page: per_page.unwrap_or(DEFAULT_PER_PAGE).clamp(1, MAX_PER_PAGE) })
    }
}

/// One page of items with the total count.
#[derive(Debug, Clone)]
pub struct PageOf<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u64,
    pub per_page: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_clamped_and_far_pages_refused() {
        assert_eq!(Paging::new(None, None).unwrap(), Paging { page: 0, per_page: 50 });
        assert_eq!(Paging::new(Some(3), Some(0)).unwrap().per_page, 1);
        assert_eq!(Paging::new(Some(3), Some(10_000)).unwrap().per_page, 200);
        let Err(AppError::Invalid(p)) = Paging::new(Some(MAX_PAGE + 1), None) else { panic!("far page accepted") };
        assert_eq!(p[0].field, "page");
    }
}
