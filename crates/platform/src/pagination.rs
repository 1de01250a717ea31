//! The one list envelope: `{"data": [...], "meta": {page, limit, totalItems, totalPages}}`.

use serde::{Deserialize, Serialize};

use crate::error::Problem;

/// `?page=&limit=` as clients send it. Validate with [`PageQuery::parse`].
#[derive(Debug, Clone, Copy, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// From 1.
    pub page: Option<i64>,
    /// 1..100, default 20.
    pub limit: Option<i64>,
}

/// A validated page request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub page: i64,
    pub limit: i64,
}

impl PageRequest {
    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.limit
    }

    /// The total, when a page of `rows` already tells it: a page that is not full and not
    /// past the end is the last one (a barcode look-up, most filtered lists). `None` means
    /// a count is needed.
    pub fn total_from(&self, rows: usize) -> Option<i64> {
        let rows = rows as i64;
        (rows < self.limit && (rows > 0 || self.page == 1)).then(|| self.offset() + rows)
    }
}

impl PageQuery {
    pub const DEFAULT_LIMIT: i64 = 20;
    pub const MAX_LIMIT: i64 = 100;

    pub fn parse(self) -> Result<PageRequest, Problem> {
        let page = self.page.unwrap_or(1);
        let limit = self.limit.unwrap_or(Self::DEFAULT_LIMIT);
        let mut errors = Vec::new();
        if !(1..=1_000_000).contains(&page) {
            errors.push(crate::error::FieldError { field: "page".into(), message: "must be 1 or more".into() });
        }
        if !(1..=Self::MAX_LIMIT).contains(&limit) {
            errors
                .push(crate::error::FieldError { field: "limit".into(), message: "must be between 1 and 100".into() });
        }
        if errors.is_empty() {
            Ok(PageRequest { page, limit })
        } else {
            Err(Problem::validation(errors))
        }
    }
}

/// A `like`/`ilike` pattern matching `term` anywhere, with the user's `%`, `_` and `\` taken
/// literally. `None` for a blank term.
pub fn contains_pattern(term: Option<&str>) -> Option<String> {
    let t = term.map(str::trim).filter(|t| !t.is_empty())?;
    let escaped = t.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    Some(format!("%{escaped}%"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PageMeta {
    pub page: i64,
    pub limit: i64,
    pub total_items: i64,
    pub total_pages: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

impl<T> Page<T> {
    pub fn new(data: Vec<T>, req: PageRequest, total_items: i64) -> Self {
        let total_pages = if total_items == 0 { 0 } else { (total_items + req.limit - 1) / req.limit };
        Self { data, meta: PageMeta { page: req.page, limit: req.limit, total_items, total_pages } }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_is_not_full_tells_the_total() {
        let page = |page, limit| PageRequest { page, limit };
        assert_eq!(page(1, 20).total_from(1), Some(1));
        assert_eq!(page(1, 20).total_from(0), Some(0));
        assert_eq!(page(3, 20).total_from(5), Some(45));
        // A full page may have more behind it; an empty later page may be past the end.
        assert_eq!(page(1, 20).total_from(20), None);
        assert_eq!(page(4, 20).total_from(0), None);
    }

    #[test]
    fn defaults_and_bounds() {
        let ok = PageQuery { page: None, limit: None }.parse().unwrap();
        assert_eq!(ok, PageRequest { page: 1, limit: 20 });
        assert_eq!(ok.offset(), 0);
        for (page, limit) in [(Some(0), None), (None, Some(0)), (None, Some(101)), (Some(-1), Some(5))] {
            let err = PageQuery { page, limit }.parse().unwrap_err();
            assert_eq!(err.status, 422, "{page:?} {limit:?}");
        }
    }

    #[test]
    fn search_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern(Some(" 50%_off\\ ")).as_deref(), Some("%50\\%\\_off\\\\%"));
        assert_eq!(contains_pattern(Some("  ")), None);
        assert_eq!(contains_pattern(None), None);
    }

    #[test]
    fn total_pages_rounds_up() {
        let p = Page::new(vec![1, 2], PageRequest { page: 1, limit: 2 }, 5);
        assert_eq!(p.meta.total_pages, 3);
        assert_eq!(Page::<i32>::new(vec![], PageRequest { page: 1, limit: 2 }, 0).meta.total_pages, 0);
    }
}
