//! Configuration errors, kept apart from per-request rejections ([`crate::Rejection`]).

/// A layer, guard or key format was configured with a value it cannot use. Returned by builder methods; never
/// produced while serving a request.
///
/// ```
/// use tower_api_key::{ApiKeyLayer, ConfigError, MemoryStore};
///
/// let err = ApiKeyLayer::new(MemoryStore::new()).scheme("not a token").unwrap_err();
/// assert!(matches!(err, ConfigError::InvalidScheme(_)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An `Authorization` scheme name that is empty, not an RFC 9110 token, or `Bearer` (always built in).
    #[error("invalid authorization scheme name {0:?}: must be a non-empty RFC 9110 token other than \"Bearer\"")]
    InvalidScheme(String),
    /// A realm that cannot be sent in a quoted string (control characters, `"` or `\`).
    #[error("invalid realm {0:?}: must be visible ASCII without '\"' or '\\'")]
    InvalidRealm(String),
    /// A key prefix outside `[a-z][a-z0-9_-]{0,31}` or ending in `_` / `-`.
    #[error(
        "invalid key prefix {0:?}: 1-32 characters of [a-z0-9_-], starting with a letter, not ending in '_' or '-'"
    )]
    InvalidPrefix(String),
    /// The user and system prefixes must differ.
    #[error("key prefix {0:?} is already used by the other key kind")]
    DuplicatePrefix(String),
    /// A scope that is empty or contains characters outside RFC 6749 `scope-token` (`%x21 / %x23-5B / %x5D-7E`).
    #[error("invalid scope {0:?}: must be non-empty visible ASCII without spaces, '\"' or '\\'")]
    InvalidScope(String),
    /// Every credential source was switched off, so no request could ever authenticate.
    #[error("no credential source is enabled")]
    NoSources,
    /// A numeric setting out of its range (the message names it).
    #[error("{0}")]
    OutOfRange(&'static str),
    /// A deprecation link that cannot go in a `Link` header (empty, spaces, `<`, `>` or `"`).
    #[error("invalid deprecation link {0:?}: must be a URI without spaces, '<', '>' or '\"'")]
    InvalidLink(String),
}
