//! Changes a store applies: [`KeyUpdate`] (a partial update of a record) and [`Usage`] (counts to add).

use std::collections::BTreeMap;
use std::time::SystemTime;

use crate::key::{KeyId, KeyRecord, RateLimit, Scopes};

/// A partial update: `None` leaves a field as it is.
///
/// ```
/// use tower_api_key::{KeyUpdate, Scopes};
/// let u = KeyUpdate { scopes: Some(Scopes::new(["read"])?), ..KeyUpdate::default() };
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyUpdate {
    /// New name.
    pub name: Option<String>,
    /// New scopes.
    pub scopes: Option<Scopes>,
    /// New expiry (`Some(None)` removes it).
    pub expires_at: Option<Option<SystemTime>>,
    /// New metadata (replaces the whole map).
    pub metadata: Option<BTreeMap<String, String>>,
    /// Enable or disable.
    pub enabled: Option<bool>,
    /// New rate limit (`Some(None)` removes it).
    pub rate_limit: Option<Option<RateLimit>>,
}

impl KeyUpdate {
    /// Applies the update to `record`: the reference semantics of [`crate::KeyStore::update`], for stores that
    /// read, change and write a record under a lock or in a transaction. On a rotated key, a new expiry can only
    /// bring the end of its grace period closer.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// KeyUpdate { name: Some("new".into()), ..KeyUpdate::default() }.apply(&mut r);
    /// assert_eq!(r.name, "new");
    /// ```
    pub fn apply(&self, record: &mut KeyRecord) {
        if let Some(v) = &self.name {
            record.name.clone_from(v);
        }
        if let Some(v) = &self.scopes {
            record.scopes = v.clone();
        }
        if let Some(v) = self.expires_at {
            // A rotated key's grace period can be cut short, never stretched.
            record.expires_at = match (record.rotated_to, record.expires_at, v) {
                (Some(_), Some(end), Some(new)) => Some(end.min(new)),
                (Some(_), Some(end), None) => Some(end),
                _ => v,
            };
        }
        if let Some(v) = &self.metadata {
            record.metadata.clone_from(v);
        }
        if let Some(v) = self.enabled {
            record.enabled = v;
        }
        if let Some(v) = self.rate_limit {
            record.rate_limit = v;
        }
    }
}

/// Usage of one key over one flush period, as recorded by [`crate::UsageTracker`] and written by [`crate::KeyStore::record_usage`].
///
/// ```
/// let u = tower_api_key::Usage { id: tower_api_key::KeyId::random(), count: 3, last_used: std::time::SystemTime::now() };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// The key.
    pub id: KeyId,
    /// Successful requests since the last flush.
    pub count: u64,
    /// Time of the latest of them.
    pub last_used: SystemTime,
}
