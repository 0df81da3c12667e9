//! [`Scopes`]: what a key is allowed to do. A plain value; it imports nothing of the crate's machinery.

use std::fmt;
use std::sync::Arc;

use crate::error::ConfigError;

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
}
