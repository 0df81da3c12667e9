//! What a store keeps for each key: [`KeyRecord`], with its [`Scopes`], optional [`RateLimit`] and derived
//! [`KeyStatus`]. Never the key itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::SystemTime;

use super::id::{KeyId, KeyKind};
use super::rate_limit::RateLimit;
use super::scopes::Scopes;
use super::secret::KeyDigest;
use crate::error::ConfigError;

/// A stored key: public id, SHA-256 digest of the secret, owner, scopes, lifecycle times, limits and metadata.
///
/// Three ways to get one, each for its own job:
/// * a new key of the crate's format: [`crate::KeyFormat::issue`] (or [`crate::KeyManager::issue`], which calls it
///   and stores the result) gives the complete record, prefix included;
/// * by hand, for an opaque key or a test: [`KeyRecord::new`] and the `with_*` methods;
/// * from a database row: a struct literal. Every field is public and the struct is exhaustive, so a store that
///   forgets to map a field does not compile.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use tower_api_key::{KeyDigest, KeyId, KeyKind, KeyRecord, RateLimit, Scopes};
///
/// // By hand: an opaque key from another system, looked up by the digest of the whole key.
/// let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"legacy-key"), KeyKind::User, "alice")
///     .with_name("laptop")
///     .with_scopes(["read", "write"])?;
/// assert!(record.scopes.allows("write"));
///
/// // From a row (here, the columns as plain values): every field named.
/// # let (id, digest_hex, prefix, kind, owner, name, scopes, created, expires, revoked, last_used, uses, enabled,
/// #     limit, rotated_to) = ("AbCdEf012345", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
/// #     Some("tak_user"), "user", "alice", "laptop", vec!["read"], 1_700_000_000u64, Some(1_800_000_000u64),
/// #     None::<u64>, None::<u64>, 0i64, true, Some((100u32, 60u64)), None::<&str>);
/// let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);
/// let record = KeyRecord {
///     id: id.parse()?,
///     digest: KeyDigest::from_hex(digest_hex)?,
///     prefix: prefix.map(str::to_owned),
///     kind: kind.parse()?,
///     owner: owner.into(),
///     name: name.into(),
///     scopes: Scopes::new(scopes)?,
///     created_at: at(created),
///     expires_at: expires.map(at),
///     revoked_at: revoked.map(at),
///     last_used_at: last_used.map(at),
///     usage_count: u64::try_from(uses)?,
///     enabled,
///     rate_limit: limit.and_then(|(n, s)| RateLimit::new(n, Duration::from_secs(s))),
///     metadata: Default::default(),
///     rotated_to: rotated_to.map(str::parse).transpose()?,
/// };
/// assert_eq!(record.display_id(), "tak_user_AbCdEf012345");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
// In declaration order, so that what verification reads sits together at the start, beside the `Arc`'s counts:
// digest, id, rotation, kind, enabled, revocation and expiry, prefix, rate limit (two cache lines), then what
// only the handler and the listings read. With Rust's default layout the one-byte fields (digest, id, kind)
// went last, four or five lines away from the times: one more memory miss per lookup of a cold record
// (`cargo bench --bench scaling`, BENCHMARKS.md 1.2).
#[repr(C)]
pub struct KeyRecord {
    /// SHA-256 of the secret part (crate format) or of the whole key (opaque keys).
    #[cfg_attr(feature = "serde", serde(with = "crate::key::serde_util::digest"))]
    pub digest: KeyDigest,
    /// Public id: the middle part of a key of the crate's format; assigned at import for opaque keys.
    pub id: KeyId,
    /// Set when the key was rotated: the id of its successor.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rotated_to: Option<KeyId>,
    /// User-level or system-level.
    pub kind: KeyKind,
    /// A disabled key is rejected until enabled again (unlike revocation, this can be undone).
    #[cfg_attr(feature = "serde", serde(default = "crate::key::serde_util::yes"))]
    pub enabled: bool,
    /// When the key was revoked; a revoked key never works again.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::key::serde_util::opt_time"))]
    pub revoked_at: Option<SystemTime>,
    /// When the key stops working, if ever.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::key::serde_util::opt_time"))]
    pub expires_at: Option<SystemTime>,
    /// The key's prefix for keys of the crate's format; `None` for opaque keys, which are looked up by digest.
    #[cfg_attr(feature = "serde", serde(default))]
    pub prefix: Option<String>,
    /// Per-key rate limit; `None` uses the layer's default, if any.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rate_limit: Option<RateLimit>,
    /// User id (user-level keys) or service name (system-level keys).
    pub owner: String,
    /// Granted scopes.
    #[cfg_attr(feature = "serde", serde(default))]
    pub scopes: Scopes,
    /// Human-readable name, for listings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub name: String,
    /// When the key was issued or imported.
    #[cfg_attr(feature = "serde", serde(default = "SystemTime::now", with = "crate::key::serde_util::time"))]
    pub created_at: SystemTime,
    /// Last successful use, as recorded by usage tracking.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::key::serde_util::opt_time"))]
    pub last_used_at: Option<SystemTime>,
    /// Successful uses, as recorded by usage tracking.
    #[cfg_attr(feature = "serde", serde(default))]
    pub usage_count: u64,
    /// Free-form string metadata.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "BTreeMap::is_empty"))]
    pub metadata: BTreeMap<String, String>,
}

impl KeyRecord {
    /// A record for an active key created now, with no name, scopes, expiry, limit or metadata.
    ///
    /// ```
    /// use tower_api_key::{KeyDigest, KeyId, KeyKind, KeyRecord};
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::System, "billing");
    /// assert!(r.enabled && r.expires_at.is_none());
    /// ```
    #[must_use]
    pub fn new(id: KeyId, digest: KeyDigest, kind: KeyKind, owner: impl Into<String>) -> Self {
        Self {
            id,
            digest,
            kind,
            owner: owner.into(),
            name: String::new(),
            prefix: None,
            scopes: Scopes::default(),
            created_at: SystemTime::now(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
            usage_count: 0,
            enabled: true,
            rate_limit: None,
            metadata: BTreeMap::new(),
            rotated_to: None,
        }
    }

    /// Sets the name.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u").with_name("ci");
    /// assert_eq!(r.name, "ci");
    /// ```
    #[must_use]
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the prefix (keys of the crate's format).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u").with_prefix("tak_user");
    /// assert_eq!(r.prefix.as_deref(), Some("tak_user"));
    /// ```
    #[must_use]
    pub fn with_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Sets the scopes.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an empty scope or one with spaces, quotes or backslashes.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u").with_scopes(["a:*"])?;
    /// assert!(r.scopes.allows("a:b"));
    /// # Ok::<(), ConfigError>(())
    /// ```
    pub fn with_scopes<I, T>(mut self, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.scopes = Scopes::new(scopes)?;
        Ok(self)
    }

    /// Sets the creation time.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u")
    ///     .with_created_at(std::time::UNIX_EPOCH);
    /// assert_eq!(r.created_at, std::time::UNIX_EPOCH);
    /// ```
    #[must_use]
    pub fn with_created_at(mut self, at: SystemTime) -> Self {
        self.created_at = at;
        self
    }

    /// Sets the expiry: a time, or `None` for none (as [`crate::NewKey::expires_at`] takes a time).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u")
    ///     .with_expires_at(std::time::UNIX_EPOCH);
    /// assert_eq!(r.status_at(std::time::SystemTime::now()), KeyStatus::Expired);
    /// assert_eq!(r.with_expires_at(None).expires_at, None);
    /// ```
    #[must_use]
    pub fn with_expires_at(mut self, at: impl Into<Option<SystemTime>>) -> Self {
        self.expires_at = at.into();
        self
    }

    /// Sets the per-key rate limit.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u")
    ///     .with_rate_limit(RateLimit::per_second(10).unwrap());
    /// assert_eq!(r.rate_limit.unwrap().requests(), 10);
    /// ```
    #[must_use]
    pub fn with_rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// Adds one metadata entry.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u").with_metadata("team", "core");
    /// assert_eq!(r.metadata["team"], "core");
    /// ```
    #[must_use]
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The key's status at `now`. Revocation wins over everything, then the enabled flag, then expiry.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// let now = std::time::SystemTime::now();
    /// assert_eq!(r.status_at(now), KeyStatus::Active);
    /// r.revoked_at = Some(now);
    /// assert_eq!(r.status_at(now), KeyStatus::Revoked);
    /// ```
    #[must_use]
    pub fn status_at(&self, now: SystemTime) -> KeyStatus {
        self.status_with(|| now)
    }

    /// [`KeyRecord::status_at`], reading the clock only when the answer depends on it (a key with an expiry):
    /// the layer calls this on every request.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// assert_eq!(r.status_with(|| unreachable!("no expiry: no clock")), KeyStatus::Active);
    /// ```
    #[must_use]
    #[inline]
    pub fn status_with(&self, now: impl FnOnce() -> SystemTime) -> KeyStatus {
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if !self.enabled {
            KeyStatus::Disabled
        } else if self.expires_at.is_some_and(|at| now() >= at) {
            if self.rotated_to.is_some() { KeyStatus::RotatedOut } else { KeyStatus::Expired }
        } else {
            KeyStatus::Active
        }
    }

    /// Whether the key uses the crate's format (looked up by id) rather than being opaque (looked up by digest).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
    /// assert!(!r.is_formatted());
    /// ```
    #[must_use]
    pub fn is_formatted(&self) -> bool {
        self.prefix.is_some()
    }

    /// `prefix_id` for keys of the crate's format (what listings show), or the bare id for opaque keys.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let id: KeyId = "AAAAAAAAAAAA".parse().unwrap();
    /// let r = KeyRecord::new(id, KeyDigest::of(b"k"), KeyKind::User, "u").with_prefix("tak_user");
    /// assert_eq!(r.display_id(), "tak_user_AAAAAAAAAAAA");
    /// ```
    #[must_use]
    pub fn display_id(&self) -> String {
        match &self.prefix {
            Some(p) => format!("{p}_{}", self.id),
            None => self.id.to_string(),
        }
    }
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("id", &self.id)
            .field("kind", &self.kind)
            .field("owner", &self.owner)
            .field("name", &self.name)
            .field("prefix", &self.prefix)
            .field("scopes", &self.scopes)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .field("revoked_at", &self.revoked_at)
            .field("enabled", &self.enabled)
            .field("rate_limit", &self.rate_limit)
            .field("rotated_to", &self.rotated_to)
            .finish_non_exhaustive()
    }
}

/// A key's status, derived from its record and the time.
///
/// ```
/// assert_eq!(tower_api_key::KeyStatus::RotatedOut.as_str(), "rotated_out");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
#[non_exhaustive]
pub enum KeyStatus {
    /// Works.
    Active,
    /// Switched off; can be switched on again.
    Disabled,
    /// Revoked for good.
    Revoked,
    /// Past its expiry.
    Expired,
    /// Replaced by rotation and past its grace period.
    RotatedOut,
}

impl KeyStatus {
    /// `active`, `disabled`, `revoked`, `expired` or `rotated_out`.
    ///
    /// ```
    /// assert_eq!(tower_api_key::KeyStatus::Active.as_str(), "active");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Revoked => "revoked",
            Self::Expired => "expired",
            Self::RotatedOut => "rotated_out",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn record_status_order() {
        let now = SystemTime::now();
        let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
        r.expires_at = Some(now);
        assert_eq!(r.status_at(now - Duration::from_nanos(1)), KeyStatus::Active);
        assert_eq!(r.status_at(now), KeyStatus::Expired);
        r.rotated_to = Some(KeyId::random());
        assert_eq!(r.status_at(now), KeyStatus::RotatedOut);
        r.enabled = false;
        assert_eq!(r.status_at(now), KeyStatus::Disabled);
        r.revoked_at = Some(now);
        assert_eq!(r.status_at(now), KeyStatus::Revoked);
    }

    #[test]
    fn debug_has_no_digest() {
        let d = KeyDigest::of(b"k");
        let r = KeyRecord::new(KeyId::random(), d, KeyKind::User, "u");
        assert!(!format!("{r:?}").contains(&d.to_hex()[..8]));
    }
}
