//! What a store keeps for each key: [`KeyRecord`], with its [`Scopes`], optional [`RateLimit`] and derived
//! [`KeyStatus`]. Never the key itself.

use std::collections::BTreeMap;
use std::fmt;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::error::ConfigError;
use crate::format::{KeyId, KeyKind};
use crate::secret::KeyDigest;

/// A stored key: public id, SHA-256 digest of the secret, owner, scopes, lifecycle times, limits and metadata.
///
/// Build one with [`KeyRecord::new`] and the `with_*` methods; stores read and write the public fields.
///
/// ```
/// use tower_api_key::{KeyDigest, KeyId, KeyKind, KeyRecord};
///
/// let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"legacy-key"), KeyKind::User, "alice")
///     .with_name("laptop")
///     .with_scopes(["read", "write"])?;
/// assert_eq!(record.owner, "alice");
/// assert!(record.scopes.allows("write"));
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
#[non_exhaustive]
pub struct KeyRecord {
    /// Public id: the middle part of a key of the crate's format; assigned at import for opaque keys.
    pub id: KeyId,
    /// SHA-256 of the secret part (crate format) or of the whole key (opaque keys).
    #[cfg_attr(feature = "serde", serde(with = "crate::serde_util::digest"))]
    pub digest: KeyDigest,
    /// User-level or system-level.
    pub kind: KeyKind,
    /// User id (user-level keys) or service name (system-level keys).
    pub owner: String,
    /// Human-readable name, for listings.
    #[cfg_attr(feature = "serde", serde(default))]
    pub name: String,
    /// The key's prefix for keys of the crate's format; `None` for opaque keys, which are looked up by digest.
    #[cfg_attr(feature = "serde", serde(default))]
    pub prefix: Option<String>,
    /// Granted scopes.
    #[cfg_attr(feature = "serde", serde(default))]
    pub scopes: Scopes,
    /// When the key was issued or imported.
    #[cfg_attr(feature = "serde", serde(default = "SystemTime::now", with = "crate::serde_util::time"))]
    pub created_at: SystemTime,
    /// When the key stops working, if ever.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::serde_util::opt_time"))]
    pub expires_at: Option<SystemTime>,
    /// When the key was revoked; a revoked key never works again.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::serde_util::opt_time"))]
    pub revoked_at: Option<SystemTime>,
    /// Last successful use, as recorded by usage tracking.
    #[cfg_attr(feature = "serde", serde(default, with = "crate::serde_util::opt_time"))]
    pub last_used_at: Option<SystemTime>,
    /// Successful uses, as recorded by usage tracking.
    #[cfg_attr(feature = "serde", serde(default))]
    pub usage_count: u64,
    /// A disabled key is rejected until enabled again (unlike revocation, this can be undone).
    #[cfg_attr(feature = "serde", serde(default = "crate::serde_util::yes"))]
    pub enabled: bool,
    /// Per-key rate limit; `None` uses the layer's default, if any.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rate_limit: Option<RateLimit>,
    /// Free-form string metadata.
    #[cfg_attr(feature = "serde", serde(default, skip_serializing_if = "BTreeMap::is_empty"))]
    pub metadata: BTreeMap<String, String>,
    /// Set when the key was rotated: the id of its successor.
    #[cfg_attr(feature = "serde", serde(default))]
    pub rotated_to: Option<KeyId>,
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

    /// Sets the expiry.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u")
    ///     .with_expires_at(Some(std::time::UNIX_EPOCH));
    /// assert_eq!(r.status_at(std::time::SystemTime::now()), KeyStatus::Expired);
    /// ```
    #[must_use]
    pub fn with_expires_at(mut self, at: Option<SystemTime>) -> Self {
        self.expires_at = at;
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
        if self.revoked_at.is_some() {
            KeyStatus::Revoked
        } else if !self.enabled {
            KeyStatus::Disabled
        } else if self.expires_at.is_some_and(|at| now >= at) {
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

/// A set of granted scopes, such as `["keys:read", "billing:*"]`.
///
/// A granted scope ending in `*` covers every scope that starts with what comes before it: `keys:*` allows
/// `keys:read` and `keys:admin`, and `*` allows everything.
///
/// ```
/// use tower_api_key::Scopes;
/// let s = Scopes::new(["keys:*", "read"])?;
/// assert!(s.allows("keys:admin") && s.allows("read"));
/// assert!(!s.allows("write") && !s.allows("keysX"));
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Scopes(Arc<[Box<str>]>);

impl Scopes {
    /// Validates and collects scopes (RFC 6749 `scope-token` characters). Duplicates are dropped.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an empty scope or one with spaces, `"` or `\`.
    ///
    /// ```
    /// assert!(tower_api_key::Scopes::new(["has space"]).is_err());
    /// ```
    pub fn new<I, T>(scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut out: Vec<Box<str>> = Vec::new();
        for s in scopes {
            let s = s.as_ref();
            validate_scope(s)?;
            if !out.iter().any(|o| &**o == s) {
                out.push(s.into());
            }
        }
        Ok(Self(out.into()))
    }

    /// Whether `required` is granted, exactly or through a wildcard.
    ///
    /// ```
    /// let s = tower_api_key::Scopes::new(["*"]).unwrap();
    /// assert!(s.allows("anything"));
    /// ```
    #[must_use]
    pub fn allows(&self, required: &str) -> bool {
        self.0.iter().any(|granted| match granted.strip_suffix('*') {
            Some(stem) => required.starts_with(stem),
            None => **granted == *required,
        })
    }

    /// The granted scopes, in order.
    ///
    /// ```
    /// let s = tower_api_key::Scopes::new(["a", "b"]).unwrap();
    /// assert_eq!(s.iter().collect::<Vec<_>>(), ["a", "b"]);
    /// ```
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.0.iter().map(|s| &**s)
    }

    /// Whether no scope is granted.
    ///
    /// ```
    /// assert!(tower_api_key::Scopes::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

pub(crate) fn validate_scope(s: &str) -> Result<(), ConfigError> {
    let ok = !s.is_empty() && s.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
    if ok { Ok(()) } else { Err(ConfigError::InvalidScope(s.to_owned())) }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Scopes {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<String>::deserialize(d)?;
        Scopes::new(v).map_err(serde::de::Error::custom)
    }
}

/// A rate limit: at most `requests` per `period`, with bursts up to `requests` (GCRA).
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::RateLimit;
/// let l = RateLimit::new(100, Duration::from_secs(60)).unwrap();
/// assert_eq!(l.requests(), 100);
/// assert_eq!(l.period(), Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct RateLimit {
    requests: NonZeroU32,
    #[cfg_attr(feature = "serde", serde(rename = "period_seconds", with = "crate::serde_util::secs"))]
    period: Duration,
}

impl RateLimit {
    /// `requests` per `period`; `None` if either is zero.
    ///
    /// ```
    /// assert!(tower_api_key::RateLimit::new(0, std::time::Duration::from_secs(1)).is_none());
    /// ```
    #[must_use]
    pub fn new(requests: u32, period: Duration) -> Option<Self> {
        let requests = NonZeroU32::new(requests)?;
        (!period.is_zero()).then_some(Self { requests, period })
    }

    /// `requests` per second.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(5).unwrap().requests(), 5);
    /// ```
    #[must_use]
    pub fn per_second(requests: u32) -> Option<Self> {
        Self::new(requests, Duration::from_secs(1))
    }

    /// Requests allowed per period (also the burst size).
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(3).unwrap().requests(), 3);
    /// ```
    #[must_use]
    pub fn requests(&self) -> u32 {
        self.requests.get()
    }

    /// The period.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RateLimit::per_second(3).unwrap().period().as_secs(), 1);
    /// ```
    #[must_use]
    pub fn period(&self) -> Duration {
        self.period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_wildcards() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&["keys:read"], "keys:read", true),
            (&["keys:read"], "keys:write", false),
            (&["keys:*"], "keys:write", true),
            (&["keys:*"], "keys:", true),
            (&["keys:*"], "key", false),
            (&["keys:*"], "billing:read", false),
            (&["*"], "anything:at:all", true),
            (&[], "keys:read", false),
        ];
        for (granted, required, want) in cases {
            let s = Scopes::new(granted.iter()).unwrap();
            assert_eq!(s.allows(required), *want, "{granted:?} allows {required}");
        }
    }

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
