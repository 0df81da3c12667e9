//! [`NewKey`]: what to issue, with the bounds every key must keep; [`IssuedKey`]: a key just minted. Plain values.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::id::{KeyId, KeyKind};
use super::rate_limit::RateLimit;
use super::record::KeyRecord;
use super::scopes::Scopes;
use super::secret::{ApiKey, KeyDigest};
use crate::error::ConfigError;

/// Longest owner (user id or service name), in bytes.
pub const MAX_OWNER_LEN: usize = 256;
/// Longest key name, in bytes.
pub const MAX_NAME_LEN: usize = 256;
/// Most scopes on one key.
pub const MAX_SCOPES: usize = 64;
/// Longest scope, in bytes.
pub const MAX_SCOPE_LEN: usize = 128;
/// Most metadata entries on one key.
pub const MAX_METADATA_ENTRIES: usize = 32;
/// Longest metadata key or value, in bytes.
pub const MAX_METADATA_LEN: usize = 1024;
/// The latest expiry a key may have, as time since the Unix epoch: 9999-12-31T23:59:59Z, the last instant RFC 3339
/// can write. Later expiries are refused by [`NewKey::validate`] and clamped by [`NewKey::expiry_from`].
pub const MAX_EXPIRY_SINCE_EPOCH: Duration = Duration::from_secs(253_402_300_799);

/// [`MAX_EXPIRY_SINCE_EPOCH`] as a time.
pub(crate) fn max_expiry() -> SystemTime {
    UNIX_EPOCH + MAX_EXPIRY_SINCE_EPOCH
}

fn check_text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), ConfigError> {
    if value.len() < min || value.len() > max {
        return Err(ConfigError::OutOfRange(match field {
            "owner" => "owner must be 1 to 256 bytes",
            _ => "name must be at most 256 bytes",
        }));
    }
    Ok(())
}

/// Checks the scope bounds ([`MAX_SCOPES`], [`MAX_SCOPE_LEN`]).
pub(crate) fn check_scopes(scopes: &Scopes) -> Result<(), ConfigError> {
    if scopes.iter().len() > MAX_SCOPES {
        return Err(ConfigError::OutOfRange("at most 64 scopes per key"));
    }
    if scopes.iter().any(|s| s.len() > MAX_SCOPE_LEN) {
        return Err(ConfigError::OutOfRange("a scope must be at most 128 bytes"));
    }
    Ok(())
}

/// Checks the metadata bounds ([`MAX_METADATA_ENTRIES`], [`MAX_METADATA_LEN`]).
pub(crate) fn check_metadata(metadata: &BTreeMap<String, String>) -> Result<(), ConfigError> {
    if metadata.len() > MAX_METADATA_ENTRIES {
        return Err(ConfigError::OutOfRange("at most 32 metadata entries per key"));
    }
    if metadata.iter().any(|(k, v)| k.len() > MAX_METADATA_LEN || v.len() > MAX_METADATA_LEN) {
        return Err(ConfigError::OutOfRange("metadata keys and values must be at most 1024 bytes"));
    }
    Ok(())
}

/// Checks a name's bound ([`MAX_NAME_LEN`]).
pub(crate) fn check_name(name: &str) -> Result<(), ConfigError> {
    check_text("name", name, 0, MAX_NAME_LEN)
}

/// What to issue: kind, owner and the optional fields of a new key.
///
/// ```
/// use std::time::Duration;
/// use tower_api_key::NewKey;
/// let spec = NewKey::system("billing")
///     .name("nightly export")
///     .scopes(["invoices:read"])?
///     .expires_in(Duration::from_secs(86_400))
///     .metadata("ticket", "OPS-12");
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct NewKey {
    pub(crate) kind: KeyKind,
    pub(crate) owner: String,
    pub(crate) name: String,
    pub(crate) scopes: Scopes,
    pub(crate) expires: Option<Expiry>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Expiry {
    At(SystemTime),
    In(Duration),
}

impl NewKey {
    /// A user-level key acting for `user_id`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice");
    /// ```
    pub fn user(user_id: impl Into<String>) -> Self {
        Self::new(KeyKind::User, user_id)
    }

    /// A system-level key for the service `service`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::system("billing");
    /// ```
    pub fn system(service: impl Into<String>) -> Self {
        Self::new(KeyKind::System, service)
    }

    /// A key of `kind` for `owner`.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::new(tower_api_key::KeyKind::User, "bob");
    /// ```
    pub fn new(kind: KeyKind, owner: impl Into<String>) -> Self {
        Self {
            kind,
            owner: owner.into(),
            name: String::new(),
            scopes: Scopes::default(),
            expires: None,
            rate_limit: None,
            metadata: BTreeMap::new(),
        }
    }

    /// A name for listings.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice").name("laptop");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Granted scopes.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an invalid scope.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("alice").scopes(["read", "write"])?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn scopes<I, T>(mut self, scopes: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        self.scopes = Scopes::new(scopes)?;
        Ok(self)
    }

    /// Expires at a fixed time.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").expires_at(std::time::SystemTime::now());
    /// ```
    pub fn expires_at(mut self, at: SystemTime) -> Self {
        self.expires = Some(Expiry::At(at));
        self
    }

    /// Expires this long after issuance (by the store's clock).
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").expires_in(std::time::Duration::from_secs(60));
    /// ```
    pub fn expires_in(mut self, ttl: Duration) -> Self {
        self.expires = Some(Expiry::In(ttl));
        self
    }

    /// A per-key rate limit.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").rate_limit(tower_api_key::RateLimit::per_second(5).unwrap());
    /// ```
    pub fn rate_limit(mut self, limit: RateLimit) -> Self {
        self.rate_limit = Some(limit);
        self
    }

    /// One metadata entry.
    ///
    /// ```
    /// let spec = tower_api_key::NewKey::user("a").metadata("team", "core");
    /// ```
    pub fn metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The kind of key this spec issues.
    ///
    /// ```
    /// assert_eq!(tower_api_key::NewKey::system("billing").kind(), tower_api_key::KeyKind::System);
    /// ```
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The expiry this spec gives a key created at `now`, clamped to [`MAX_EXPIRY_SINCE_EPOCH`]; `None` if it never
    /// expires.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_api_key::{NewKey, MAX_EXPIRY_SINCE_EPOCH};
    /// let spec = NewKey::user("a").expires_in(Duration::from_secs(60));
    /// assert_eq!(spec.expiry_from(UNIX_EPOCH), Some(UNIX_EPOCH + Duration::from_secs(60)));
    /// let forever = NewKey::user("a").expires_in(Duration::MAX);
    /// assert_eq!(forever.expiry_from(UNIX_EPOCH), Some(UNIX_EPOCH + MAX_EXPIRY_SINCE_EPOCH));
    /// ```
    #[must_use]
    pub fn expiry_from(&self, now: SystemTime) -> Option<SystemTime> {
        self.expires.map(|e| {
            match e {
                Expiry::At(at) => at,
                Expiry::In(ttl) => now.checked_add(ttl).unwrap_or_else(max_expiry),
            }
            .min(max_expiry())
        })
    }

    /// Checks every bound before anything is stored: owner 1 to [`MAX_OWNER_LEN`] bytes, name up to
    /// [`MAX_NAME_LEN`], at most [`MAX_SCOPES`] scopes of at most [`MAX_SCOPE_LEN`] bytes, at most
    /// [`MAX_METADATA_ENTRIES`] metadata entries of at most [`MAX_METADATA_LEN`] bytes each, and an expiry no later
    /// than [`MAX_EXPIRY_SINCE_EPOCH`] counted from `now`. [`crate::KeyManager`] calls it on every issue, import and rotation.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] naming the field.
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    /// use tower_api_key::NewKey;
    /// let now = SystemTime::now();
    /// assert!(NewKey::user("alice").validate(now).is_ok());
    /// assert!(NewKey::user("").validate(now).is_err());
    /// assert!(NewKey::user("a").name("x".repeat(10_000)).validate(now).is_err());
    /// assert!(NewKey::user("a").expires_in(Duration::from_secs(u64::MAX)).validate(now).is_err());
    /// ```
    pub fn validate(&self, now: SystemTime) -> Result<(), ConfigError> {
        check_text("owner", &self.owner, 1, MAX_OWNER_LEN)?;
        check_text("name", &self.name, 0, MAX_NAME_LEN)?;
        check_scopes(&self.scopes)?;
        check_metadata(&self.metadata)?;
        if let Some(e) = self.expires {
            let at = match e {
                Expiry::At(at) => Some(at),
                Expiry::In(ttl) => now.checked_add(ttl),
            };
            if at.is_none_or(|at| at > max_expiry()) {
                return Err(ConfigError::OutOfRange("expiry must be no later than 9999-12-31T23:59:59Z"));
            }
        }
        Ok(())
    }

    pub(crate) fn into_record(self, id: KeyId, digest: KeyDigest, now: SystemTime) -> KeyRecord {
        let expires_at = self.expiry_from(now);
        let mut r = KeyRecord::new(id, digest, self.kind, self.owner).with_created_at(now).with_expires_at(expires_at);
        r.name = self.name;
        r.scopes = self.scopes;
        r.rate_limit = self.rate_limit;
        r.metadata = self.metadata;
        r
    }

    /// A spec that gives a key the same kind, owner, name, scopes, limit and metadata as `record`, and (if it
    /// expires) the same lifetime counted from issuance: what a rotation issues.
    pub(crate) fn successor_of(record: &KeyRecord) -> Self {
        let mut spec = Self::new(record.kind, record.owner.clone()).name(record.name.clone());
        spec.scopes = record.scopes.clone();
        spec.rate_limit = record.rate_limit;
        spec.metadata = record.metadata.clone();
        spec.expires = record.expires_at.map(|at| Expiry::In(at.duration_since(record.created_at).unwrap_or_default()));
        spec
    }
}

/// A key just minted: the full key, shown this once, and the complete record to store.
///
/// Not `Clone`; its `Debug` redacts the key. [`crate::KeyFormat::issue`] makes one; [`crate::KeyManager::issue`]
/// makes one and stores its record.
///
/// ```
/// use tower_api_key::{KeyFormat, NewKey};
/// let issued = KeyFormat::new().issue(NewKey::user("alice"), std::time::SystemTime::now());
/// assert!(!format!("{issued:?}").contains(issued.key.expose_secret()));
/// assert_eq!(issued.record.prefix.as_deref(), Some("tak_user"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct IssuedKey {
    /// The full key: give it to its owner and drop it.
    pub key: ApiKey,
    /// What the store keeps.
    pub record: KeyRecord,
}
