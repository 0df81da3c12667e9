//! Listing: [`ListQuery`] (filters and a cursor) and [`Page`] (one page, ordered by id in byte order).

use std::fmt;
use std::time::SystemTime;

use crate::key::{KeyId, KeyKind, KeyRecord, KeyStatus};

/// Largest page a listing returns.
pub const MAX_PAGE: usize = 1000;

/// Filters and paging for [`crate::KeyManager::list`] and [`crate::KeyStore::list`].
///
/// ```
/// use tower_api_key::{KeyKind, KeyStatus, ListQuery};
/// let q = ListQuery::new().owner("alice").kind(KeyKind::User).status(KeyStatus::Active).limit(50);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct ListQuery {
    /// Only keys of this owner.
    pub owner: Option<String>,
    /// Only keys of this kind.
    pub kind: Option<KeyKind>,
    /// Only keys in this status (at the store's current time).
    pub status: Option<KeyStatus>,
    /// Only keys whose id sorts after this one (the cursor from [`Page::next`]).
    pub after: Option<KeyId>,
    /// Page size; 0 means the default (100). Capped at [`MAX_PAGE`].
    pub limit: usize,
}

impl ListQuery {
    /// Everything, first page.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
    /// Filter by owner.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().owner("alice");
    /// ```
    pub fn owner(mut self, owner: impl Into<String>) -> Self {
        self.owner = Some(owner.into());
        self
    }
    /// Filter by kind.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().kind(tower_api_key::KeyKind::System);
    /// ```
    pub fn kind(mut self, kind: KeyKind) -> Self {
        self.kind = Some(kind);
        self
    }
    /// Filter by status.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().status(tower_api_key::KeyStatus::Revoked);
    /// ```
    pub fn status(mut self, status: KeyStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// Continue after this id.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().after(tower_api_key::KeyId::random());
    /// ```
    pub fn after(mut self, id: KeyId) -> Self {
        self.after = Some(id);
        self
    }
    /// Page size.
    ///
    /// ```
    /// let q = tower_api_key::ListQuery::new().limit(10);
    /// ```
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// The effective page size.
    ///
    /// ```
    /// assert_eq!(tower_api_key::ListQuery::new().page_size(), 100);
    /// ```
    #[must_use]
    pub fn page_size(&self) -> usize {
        match self.limit {
            0 => 100,
            n => n.min(MAX_PAGE),
        }
    }

    /// Whether `record` passes the filters (not the cursor).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
    /// assert!(ListQuery::new().owner("alice").matches(&r, std::time::SystemTime::now()));
    /// ```
    #[must_use]
    pub fn matches(&self, record: &KeyRecord, now: SystemTime) -> bool {
        self.owner.as_ref().is_none_or(|o| *o == record.owner)
            && self.kind.is_none_or(|k| k == record.kind)
            && self.status.is_none_or(|s| s == record.status_at(now))
    }
}

/// One page of a listing, ordered by id in byte order.
///
/// A store may end a page early to bound its work (a filter that matches few keys among many): `items` then holds
/// fewer than the page size while `next` is set. Keep asking with [`ListQuery::after`] until `next` is `None`.
///
/// ```
/// let page = tower_api_key::Page { items: vec![], next: None };
/// assert!(page.items.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Page {
    /// The records (never a key).
    pub items: Vec<KeyRecord>,
    /// Cursor for the next page, if there is one.
    pub next: Option<KeyId>,
}

impl fmt::Display for Page {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.items {
            writeln!(f, "{} {} {} {}", r.display_id(), r.kind, r.owner, r.name)?;
        }
        Ok(())
    }
}
