//! A key's public identity: its [`KeyKind`] and its [`KeyId`]. Plain values; they import nothing of the crate.

use std::fmt;
use std::str::FromStr;

/// Length of the public id, in base62 characters.
pub const ID_LEN: usize = 12;
/// Length of the secret, in base62 characters (24 × log2(62) ≈ 143 bits).
pub const SECRET_LEN: usize = 24;
/// Length of the checksum, in base62 characters (62⁶ > 2³²).
pub const CHECKSUM_LEN: usize = 6;

pub(crate) const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Whether a key acts for a person or for a machine.
///
/// ```
/// use tower_api_key::KeyKind;
/// assert_eq!(KeyKind::User.as_str(), "user");
/// assert_eq!("system".parse::<KeyKind>().unwrap(), KeyKind::System);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "lowercase"))]
pub enum KeyKind {
    /// User-level: the key acts for a person, identified by a user id.
    User,
    /// System-level: machine to machine, identified by a service name.
    System,
}

impl KeyKind {
    /// `"user"` or `"system"`.
    ///
    /// ```
    /// assert_eq!(tower_api_key::KeyKind::System.as_str(), "system");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::System => "system",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyKind {
    type Err = ParseKeyKindError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Self::User),
            "system" => Ok(Self::System),
            _ => Err(ParseKeyKindError),
        }
    }
}

/// A key kind other than `user` or `system`.
///
/// ```
/// assert!("admin".parse::<tower_api_key::KeyKind>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("key kind must be \"user\" or \"system\"")]
pub struct ParseKeyKindError;

/// A key's public id: 12 base62 characters, random, unique, safe to log and show.
///
/// ```
/// use tower_api_key::KeyId;
/// let id: KeyId = "AbCdEf012345".parse().unwrap();
/// assert_eq!(id.as_str(), "AbCdEf012345");
/// assert!("short".parse::<KeyId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KeyId(pub(crate) [u8; ID_LEN]);

impl KeyId {
    /// A fresh random id from the OS CSPRNG.
    ///
    /// ```
    /// let a = tower_api_key::KeyId::random();
    /// assert_ne!(a, tower_api_key::KeyId::random());
    /// ```
    #[must_use]
    pub fn random() -> Self {
        let mut id = [0u8; ID_LEN];
        fill_base62(&mut id);
        Self(id)
    }

    /// Parses an id from bytes: exactly 12 base62 characters.
    ///
    /// ```
    /// assert!(tower_api_key::KeyId::from_bytes(b"AbCdEf012345").is_some());
    /// assert!(tower_api_key::KeyId::from_bytes(b"AbCdEf01234_").is_none());
    /// ```
    #[must_use]
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; ID_LEN] = bytes.try_into().ok()?;
        arr.iter().all(u8::is_ascii_alphanumeric).then_some(Self(arr))
    }

    /// The id as text.
    ///
    /// ```
    /// let id = tower_api_key::KeyId::random();
    /// assert_eq!(id.as_str().len(), 12);
    /// ```
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Invariant: only ASCII alphanumerics are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::hash::Hash for KeyId {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        state.write(&self.0);
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.as_str())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyId {
    type Err = InvalidKeyId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::from_bytes(s.as_bytes()).ok_or(InvalidKeyId)
    }
}

#[cfg(feature = "serde")]
impl serde::Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for KeyId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Text that is not a key id (12 base62 characters).
///
/// ```
/// assert!("".parse::<tower_api_key::KeyId>().is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a key id is 12 characters from [0-9A-Za-z]")]
pub struct InvalidKeyId;

/// Fills `out` with uniformly random base62 characters from the OS CSPRNG.
pub(crate) fn fill_base62(out: &mut [u8]) {
    // Rejection sampling: bytes below 248 (= 4 × 62) map uniformly onto the alphabet.
    let mut pool = [0u8; 64];
    let mut used = pool.len();
    for slot in out.iter_mut() {
        loop {
            if used == pool.len() {
                #[allow(clippy::expect_used)]
                getrandom::fill(&mut pool).expect("the operating system's random number generator failed");
                used = 0;
            }
            let b = pool[used];
            used += 1;
            if b < 248 {
                *slot = BASE62[usize::from(b % 62)];
                break;
            }
        }
    }
    zeroize::Zeroize::zeroize(&mut pool);
}
