//! [`KeyFormat`]: the crate's key format, minting and the offline check.

use std::fmt;
use std::time::SystemTime;

use super::id::{BASE62, CHECKSUM_LEN, ID_LEN, KeyId, KeyKind, SECRET_LEN, fill_base62};
use super::new_key::{IssuedKey, NewKey};
use super::secret::{ApiKey, KeyDigest};
use crate::error::ConfigError;

/// Longest prefix accepted by [`KeyFormat`].
pub const MAX_PREFIX_LEN: usize = 32;
/// The crate's key format: `<prefix>_<public id>_<secret><checksum>`.
///
/// * **prefix**: one per [`KeyKind`], configurable (defaults `tak_user` and `tak_sys`), so a user-level and a
///   system-level key are told apart at a glance, the way `sk-proj-` and `sk-svcacct-` are;
/// * **public id**: 12 random base62 characters (about 71 bits), safe to log and to show in listings;
/// * **secret**: 24 base62 characters from the OS CSPRNG (about 143 bits);
/// * **checksum**: CRC32 of everything before it, as 6 base62 characters, so a typo or garbage is rejected before
///   any hashing or store call, and a secret scanner can validate a leaked key offline.
///
/// Every character is in `[A-Za-z0-9_-]`: safe in a header, a URL and a shell. With the default prefixes, this
/// regular expression matches a key (for a custom prefix, replace the first group):
///
/// ```text
/// \b(tak_user|tak_sys)_[0-9A-Za-z]{12}_[0-9A-Za-z]{30}\b
/// ```
///
/// ```
/// use std::time::SystemTime;
/// use tower_api_key::{Classified, KeyFormat, KeyKind, NewKey};
///
/// let format = KeyFormat::default();
/// let issued = format.issue(NewKey::user("alice"), SystemTime::now());
/// let Classified::Ours(parsed) = format.classify(issued.key.expose_secret().as_bytes()) else { panic!() };
/// assert_eq!(parsed.kind(), KeyKind::User);
/// assert_eq!(parsed.id(), &issued.record.id);
/// assert_eq!(issued.record.prefix.as_deref(), Some("tak_user")); // the record authenticates as it is
/// ```
///
/// The prefixes of the crate's key format, one per [`KeyKind`].
///
/// ```
/// use tower_api_key::{KeyFormat, KeyKind};
///
/// let format = KeyFormat::new()
///     .user_prefix("sk-proj")?
///     .system_prefix("sk-svcacct")?;
/// let key = format.issue(tower_api_key::NewKey::system("billing"), std::time::SystemTime::now()).key;
/// assert!(key.expose_secret().starts_with("sk-svcacct_"));
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyFormat {
    user: Box<str>,
    system: Box<str>,
}

impl Default for KeyFormat {
    fn default() -> Self {
        Self::new()
    }
}

/// Result of [`KeyFormat::classify`]: what a presented credential is.
///
/// ```
/// use tower_api_key::{Classified, KeyFormat, KeyKind};
/// let f = KeyFormat::new();
/// let key = f.issue(tower_api_key::NewKey::user("alice"), std::time::SystemTime::now()).key;
/// assert!(matches!(f.classify(key.expose_secret().as_bytes()), Classified::Ours(_)));
/// assert!(matches!(f.classify(b"tak_user_nope"), Classified::Malformed));
/// assert!(matches!(f.classify(b"ghp_somethingelse"), Classified::Foreign));
/// ```
#[derive(Debug, Clone, Copy)]
pub enum Classified<'a> {
    /// A well-formed key of this format, checksum verified.
    Ours(ParsedKey<'a>),
    /// Starts with one of this format's prefixes but is malformed or fails its checksum.
    Malformed,
    /// Not of this format: an opaque key from another system (or another scheme's token, such as a JWT).
    Foreign,
}

impl KeyFormat {
    /// The default prefixes: `tak_user` for user-level keys, `tak_sys` for system-level keys.
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new();
    /// assert_eq!(f.prefix(tower_api_key::KeyKind::User), "tak_user");
    /// ```
    #[must_use]
    pub fn new() -> Self {
        Self { user: "tak_user".into(), system: "tak_sys".into() }
    }

    /// Sets the prefix of user-level keys.
    ///
    /// # Errors
    /// [`ConfigError::InvalidPrefix`] unless the prefix is 1 to 32 characters of `[a-z0-9_-]`, starts with a
    /// letter, does not end with `_` or `-`; [`ConfigError::DuplicatePrefix`] if it equals the system prefix.
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new().user_prefix("acme_user")?;
    /// assert!(tower_api_key::KeyFormat::new().user_prefix("Bad Prefix").is_err());
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn user_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        validate_prefix(prefix)?;
        if *self.system == *prefix {
            return Err(ConfigError::DuplicatePrefix(prefix.to_owned()));
        }
        self.user = prefix.into();
        Ok(self)
    }

    /// Sets the prefix of system-level keys; same rules as [`KeyFormat::user_prefix`].
    ///
    /// # Errors
    /// As [`KeyFormat::user_prefix`].
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new().system_prefix("acme_svc")?;
    /// assert!(tower_api_key::KeyFormat::new().system_prefix("tak_user").is_err());
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn system_prefix(mut self, prefix: &str) -> Result<Self, ConfigError> {
        validate_prefix(prefix)?;
        if *self.user == *prefix {
            return Err(ConfigError::DuplicatePrefix(prefix.to_owned()));
        }
        self.system = prefix.into();
        Ok(self)
    }

    /// The prefix used for keys of `kind`.
    ///
    /// ```
    /// let f = tower_api_key::KeyFormat::new();
    /// assert_eq!(f.prefix(tower_api_key::KeyKind::System), "tak_sys");
    /// ```
    #[must_use]
    pub fn prefix(&self, kind: KeyKind) -> &str {
        match kind {
            KeyKind::User => &self.user,
            KeyKind::System => &self.system,
        }
    }

    /// Mints a key for `spec`, created at `now`: a random public id and a random secret from the OS CSPRNG.
    ///
    /// The result holds the only copy of the full key ([`IssuedKey::key`]) and the complete record to store
    /// ([`IssuedKey::record`]: id, SHA-256 of the secret, prefix, kind, owner and the rest of `spec`). Store that
    /// record as it is and the key authenticates; this is the one way from a new key to a stored record.
    /// [`crate::KeyManager::issue`] calls it.
    ///
    /// An `expires_in` lifetime that would overflow the clock gives a record that never expires; the manager
    /// refuses such specs before calling this ([`NewKey::validate`]).
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails, which `getrandom` reports as
    /// unrecoverable; no key is ever made from weak randomness.
    ///
    /// ```
    /// use tower_api_key::{KeyFormat, KeyKind, NewKey};
    /// let issued = KeyFormat::new().issue(NewKey::user("alice"), std::time::SystemTime::now());
    /// assert!(issued.key.expose_secret().starts_with("tak_user_"));
    /// assert_eq!(issued.record.kind, KeyKind::User);
    /// ```
    #[must_use]
    pub fn issue(&self, spec: NewKey, now: SystemTime) -> IssuedKey {
        let kind = spec.kind;
        let id = KeyId::random();
        let mut secret = [0u8; SECRET_LEN];
        fill_base62(&mut secret);
        let prefix = self.prefix(kind);
        let mut text = String::with_capacity(prefix.len() + 2 + ID_LEN + SECRET_LEN + CHECKSUM_LEN);
        text.push_str(prefix);
        text.push('_');
        text.push_str(id.as_str());
        text.push('_');
        // Base62 bytes are ASCII.
        text.extend(secret.iter().map(|&b| b as char));
        let crc = crc32fast::hash(text.as_bytes());
        text.extend(encode_checksum(crc).iter().map(|&b| b as char));
        let digest = KeyDigest::of(&secret);
        zeroize::Zeroize::zeroize(&mut secret);
        let record = spec.into_record(id, digest, now).with_prefix(prefix);
        IssuedKey { key: ApiKey::new(text), record }
    }

    /// What a presented credential is: a well-formed key of this format ([`Classified::Ours`]), one with a known
    /// prefix but a bad shape or checksum ([`Classified::Malformed`]), or anything else ([`Classified::Foreign`],
    /// an opaque key). This is what the layer calls on every request: no allocation, no hashing beyond a CRC32 of a
    /// few dozen bytes. Never panics, whatever the input.
    ///
    /// ```
    /// use tower_api_key::{Classified, KeyFormat};
    /// assert!(matches!(KeyFormat::new().classify(b"eyJhbGciOi.x.y"), Classified::Foreign));
    /// ```
    #[must_use]
    pub fn classify<'a>(&self, key: &'a [u8]) -> Classified<'a> {
        let kind = if has_prefix(key, &self.user) {
            KeyKind::User
        } else if has_prefix(key, &self.system) {
            KeyKind::System
        } else {
            return Classified::Foreign;
        };
        // A longer prefix may itself start with the shorter one plus `_` (e.g. `sk` and `sk_live`): the exact
        // prefix is everything before the last two `_`-separated parts.
        let tail_len = 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;
        if key.len() <= tail_len {
            return Classified::Malformed;
        }
        let (prefix, tail) = key.split_at(key.len() - tail_len);
        let kind = if prefix == self.prefix(kind).as_bytes() {
            kind
        } else if prefix == self.user.as_bytes() {
            KeyKind::User
        } else if prefix == self.system.as_bytes() {
            KeyKind::System
        } else {
            return Classified::Malformed;
        };
        let (sep1, rest) = tail.split_at(1);
        let (id, rest) = rest.split_at(ID_LEN);
        let (sep2, rest) = rest.split_at(1);
        let (secret, sum) = rest.split_at(SECRET_LEN);
        // Branch-free checks over the fixed-size parts (they vectorize), then one CRC over the contiguous text.
        if sep1 != b"_" || sep2 != b"_" || !all_base62(id) || !all_base62(secret) {
            return Classified::Malformed;
        }
        let Some(sum) = decode_checksum(sum) else { return Classified::Malformed };
        if sum != crc32fast::hash(&key[..key.len() - CHECKSUM_LEN]) {
            return Classified::Malformed;
        }
        let mut id_bytes = [0u8; ID_LEN];
        id_bytes.copy_from_slice(id);
        let id = KeyId(id_bytes);
        Classified::Ours(ParsedKey { kind, id, secret })
    }
}

fn all_base62(bytes: &[u8]) -> bool {
    bytes.iter().fold(true, |ok, &b| ok & (b.is_ascii_digit() | b.is_ascii_uppercase() | b.is_ascii_lowercase()))
}

fn has_prefix(key: &[u8], prefix: &str) -> bool {
    key.len() > prefix.len() && key.starts_with(prefix.as_bytes()) && key[prefix.len()] == b'_'
}

fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let bytes = prefix.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= MAX_PREFIX_LEN
        && bytes[0].is_ascii_lowercase()
        && bytes.iter().all(|&b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        && !matches!(bytes[bytes.len() - 1], b'_' | b'-');
    if ok { Ok(()) } else { Err(ConfigError::InvalidPrefix(prefix.to_owned())) }
}

/// A key of the crate's format, split into its parts; borrowed from the presented bytes.
///
/// ```
/// use tower_api_key::{KeyFormat, KeyKind};
/// let f = KeyFormat::new();
/// let new = f.issue(tower_api_key::NewKey::new(KeyKind::System, "o"), std::time::SystemTime::now());
/// let tower_api_key::Classified::Ours(parsed) = f.classify(new.key.expose_secret().as_bytes()) else { unreachable!() };
/// assert_eq!(parsed.secret_digest(), new.record.digest);
/// ```
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    kind: KeyKind,
    id: KeyId,
    secret: &'a [u8],
}

impl ParsedKey<'_> {
    /// The kind named by the prefix.
    ///
    /// ```
    /// # use tower_api_key::{KeyFormat, KeyKind};
    /// # let f = KeyFormat::new(); let new = f.issue(tower_api_key::NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
    /// let tower_api_key::Classified::Ours(parsed) = f.classify(new.key.expose_secret().as_bytes()) else { unreachable!() };
    /// assert_eq!(parsed.kind(), KeyKind::User);
    /// ```
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The public id.
    ///
    /// ```
    /// # use tower_api_key::{KeyFormat, KeyKind};
    /// # let f = KeyFormat::new(); let new = f.issue(tower_api_key::NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
    /// let tower_api_key::Classified::Ours(parsed) = f.classify(new.key.expose_secret().as_bytes()) else { unreachable!() };
    /// assert_eq!(parsed.id(), &new.record.id);
    /// ```
    #[must_use]
    pub fn id(&self) -> &KeyId {
        &self.id
    }

    /// SHA-256 of the secret part: what the store holds for this key.
    ///
    /// ```
    /// # use tower_api_key::{KeyFormat, KeyKind};
    /// # let f = KeyFormat::new(); let new = f.issue(tower_api_key::NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
    /// let tower_api_key::Classified::Ours(parsed) = f.classify(new.key.expose_secret().as_bytes()) else { unreachable!() };
    /// assert_eq!(parsed.secret_digest(), new.record.digest);
    /// ```
    #[must_use]
    pub fn secret_digest(&self) -> KeyDigest {
        KeyDigest::of(self.secret)
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("kind", &self.kind)
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

fn encode_checksum(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

fn decode_checksum(s: &[u8]) -> Option<u32> {
    let mut n: u64 = 0;
    for &c in s {
        let d = match c {
            b'0'..=b'9' => c - b'0',
            b'A'..=b'Z' => c - b'A' + 10,
            b'a'..=b'z' => c - b'a' + 36,
            _ => return None,
        };
        n = n * 62 + u64::from(d);
    }
    u32::try_from(n).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ours<'a>(f: &KeyFormat, key: &'a [u8]) -> ParsedKey<'a> {
        match f.classify(key) {
            Classified::Ours(p) => p,
            other => panic!("not ours: {other:?}"),
        }
    }

    #[test]
    fn generated_keys_round_trip() {
        let f = KeyFormat::new();
        for kind in [KeyKind::User, KeyKind::System] {
            let new = f.issue(NewKey::new(kind, "o"), SystemTime::now());
            let text = new.key.expose_secret();
            assert!(text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
            let p = ours(&f, text.as_bytes());
            assert_eq!(p.kind(), kind);
            assert_eq!(p.id(), &new.record.id);
            assert_eq!(p.secret_digest(), new.record.digest);
        }
    }

    #[test]
    fn any_single_character_change_is_caught() {
        let f = KeyFormat::new();
        let new = f.issue(NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
        let text = new.key.expose_secret().as_bytes().to_vec();
        let start = f.prefix(KeyKind::User).len() + 1;
        for i in start..text.len() {
            if text[i] == b'_' {
                continue;
            }
            let mut bad = text.clone();
            bad[i] = if bad[i] == b'a' { b'b' } else { b'a' };
            assert!(matches!(f.classify(&bad), Classified::Malformed), "position {i}");
        }
    }

    #[test]
    fn prefixes_that_nest_are_told_apart() {
        let f = KeyFormat::new().user_prefix("sk").unwrap().system_prefix("sk_live").unwrap();
        let sys = f.issue(NewKey::new(KeyKind::System, "o"), std::time::SystemTime::now());
        let p = ours(&f, sys.key.expose_secret().as_bytes());
        assert_eq!(p.kind(), KeyKind::System);
        let user = f.issue(NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
        assert_eq!(ours(&f, user.key.expose_secret().as_bytes()).kind(), KeyKind::User);
    }

    #[test]
    fn prefix_validation() {
        for bad in ["", "Upper", "9start", "has space", "trailing_", "trailing-", &"a".repeat(33)] {
            assert!(KeyFormat::new().user_prefix(bad).is_err(), "{bad:?}");
        }
        for good in ["sk", "sk-proj", "sk_live", "a1"] {
            assert!(KeyFormat::new().user_prefix(good).is_ok(), "{good:?}");
        }
        assert!(matches!(KeyFormat::new().user_prefix("tak_sys"), Err(ConfigError::DuplicatePrefix(_))));
    }

    #[test]
    fn checksum_encoding_round_trips() {
        for n in [0, 1, 61, 62, u32::MAX, 0xDEAD_BEEF] {
            assert_eq!(decode_checksum(&encode_checksum(n)), Some(n));
        }
        assert_eq!(decode_checksum(b"zzzzzz"), None); // 62^6 - 1 > u32::MAX
    }

    #[test]
    fn documented_regex_shape_matches() {
        let f = KeyFormat::new();
        let k = f.issue(NewKey::new(KeyKind::System, "o"), std::time::SystemTime::now());
        let text = k.key.expose_secret();
        let rest = text.strip_prefix("tak_sys_").unwrap();
        let (id, tail) = rest.split_once('_').unwrap();
        assert_eq!(id.len(), 12);
        assert_eq!(tail.len(), 30);
    }

    proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
            let f = KeyFormat::new();
            let _ = f.classify(&bytes);
        }

        #[test]
        fn near_misses_never_panic(suffix in "[A-Za-z0-9_]{0,60}") {
            let f = KeyFormat::new();
            let text = format!("tak_user_{suffix}");
            let _ = f.classify(text.as_bytes());
        }

        #[test]
        fn round_trip_with_any_valid_prefix(prefix in "[a-z][a-z0-9_-]{0,20}[a-z0-9]") {
            let Ok(f) = KeyFormat::new().user_prefix(&prefix) else { return Ok(()) };
            let new = f.issue(NewKey::new(KeyKind::User, "o"), std::time::SystemTime::now());
            let parsed = ours(&f, new.key.expose_secret().as_bytes());
            prop_assert_eq!(parsed.id(), &new.record.id);
            prop_assert_eq!(parsed.kind(), KeyKind::User);
        }
    }
}
