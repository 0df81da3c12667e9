//! [`KeyInfo`]: what a listing shows of a key. A plain value.

use std::collections::BTreeMap;
use std::time::SystemTime;

use super::id::{KeyId, KeyKind};
use super::rate_limit::RateLimit;
use super::record::{KeyRecord, KeyStatus};
use super::scopes::Scopes;

/// What listings and the admin API show of a key: everything but the digest (and never the key).
///
/// ```
/// # use tower_api_key::*;
/// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice");
/// let info = KeyInfo::new(&r, std::time::SystemTime::now());
/// assert_eq!(info.status, KeyStatus::Active);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct KeyInfo {
    /// Public id (the middle part of the key).
    pub id: KeyId,
    /// `prefix_id`, how the key starts (or the bare id for opaque keys).
    pub display_id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: KeyKind,
    /// User id or service name.
    pub owner: String,
    /// Scopes.
    pub scopes: Scopes,
    /// Status now.
    pub status: KeyStatus,
    /// Issued.
    #[cfg_attr(feature = "serde", serde(with = "crate::key::serde_util::time"))]
    pub created_at: SystemTime,
    /// Expires.
    #[cfg_attr(feature = "serde", serde(with = "crate::key::serde_util::opt_time"))]
    pub expires_at: Option<SystemTime>,
    /// Revoked.
    #[cfg_attr(feature = "serde", serde(with = "crate::key::serde_util::opt_time"))]
    pub revoked_at: Option<SystemTime>,
    /// Last used.
    #[cfg_attr(feature = "serde", serde(with = "crate::key::serde_util::opt_time"))]
    pub last_used_at: Option<SystemTime>,
    /// Uses recorded.
    pub usage_count: u64,
    /// Enabled flag.
    pub enabled: bool,
    /// Rate limit.
    pub rate_limit: Option<RateLimit>,
    /// Metadata.
    pub metadata: BTreeMap<String, String>,
    /// Successor after rotation.
    pub rotated_to: Option<KeyId>,
}

impl KeyInfo {
    /// The view of `record` at `now`.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice").with_prefix("tak_user");
    /// let info = KeyInfo::new(&r, std::time::SystemTime::now());
    /// assert!(info.display_id.starts_with("tak_user_"));
    /// ```
    #[must_use]
    pub fn new(record: &KeyRecord, now: SystemTime) -> Self {
        Self {
            id: record.id,
            display_id: record.display_id(),
            name: record.name.clone(),
            kind: record.kind,
            owner: record.owner.clone(),
            scopes: record.scopes.clone(),
            status: record.status_at(now),
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            last_used_at: record.last_used_at,
            usage_count: record.usage_count,
            enabled: record.enabled,
            rate_limit: record.rate_limit,
            metadata: record.metadata.clone(),
            rotated_to: record.rotated_to,
        }
    }
}
