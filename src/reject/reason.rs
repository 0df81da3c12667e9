//! Why a request was refused ([`RejectReason`], for logs) and what the client is told ([`ErrorCode`]). Plain values.

use std::fmt;
use std::time::Duration;

use http::StatusCode;

/// Why a request was rejected: for logs, events and metrics, never sent to the client.
///
/// ```
/// use tower_api_key::{ErrorCode, RejectReason};
/// assert_eq!(RejectReason::Revoked.code(), ErrorCode::InvalidToken);
/// assert_eq!(RejectReason::Revoked.as_str(), "revoked");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RejectReason {
    /// No credential in any enabled source.
    NoCredential,
    /// A credential header with bytes outside visible ASCII.
    BadHeaderBytes,
    /// A scheme with no key after it, or an empty key header.
    EmptyCredential,
    /// The same source twice with different values.
    Ambiguous,
    /// Longer than the layer's maximum key length.
    TooLong,
    /// One of our prefixes, but a bad shape or checksum.
    Malformed,
    /// An opaque key while opaque keys are not accepted.
    OpaqueNotAccepted,
    /// No such key in the store.
    Unknown,
    /// The secret does not match the stored digest, or the prefix names another kind.
    Mismatch,
    /// The key was revoked.
    Revoked,
    /// The key is disabled.
    Disabled,
    /// The key expired.
    Expired,
    /// The key was rotated and its grace period is over.
    RotatedOut,
    /// The key lacks a required scope.
    InsufficientScope,
    /// The key is over its rate limit.
    RateLimited,
    /// The store returned an error.
    StoreFailed,
    /// The store did not answer in time.
    StoreTimeout,
    /// The request did not come over HTTPS.
    InsecureTransport,
}

impl RejectReason {
    /// Every reason, in declaration order.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RejectReason::ALL.len(), 18);
    /// ```
    pub const ALL: [RejectReason; 18] = [
        Self::NoCredential,
        Self::BadHeaderBytes,
        Self::EmptyCredential,
        Self::Ambiguous,
        Self::TooLong,
        Self::Malformed,
        Self::OpaqueNotAccepted,
        Self::Unknown,
        Self::Mismatch,
        Self::Revoked,
        Self::Disabled,
        Self::Expired,
        Self::RotatedOut,
        Self::InsufficientScope,
        Self::RateLimited,
        Self::StoreFailed,
        Self::StoreTimeout,
        Self::InsecureTransport,
    ];

    /// A short snake_case name, for logs and metric labels.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RejectReason::NoCredential.as_str(), "no_credential");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NoCredential => "no_credential",
            Self::BadHeaderBytes => "bad_header_bytes",
            Self::EmptyCredential => "empty_credential",
            Self::Ambiguous => "ambiguous",
            Self::TooLong => "too_long",
            Self::Malformed => "malformed",
            Self::OpaqueNotAccepted => "opaque_not_accepted",
            Self::Unknown => "unknown",
            Self::Mismatch => "mismatch",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
            Self::RotatedOut => "rotated_out",
            Self::InsufficientScope => "insufficient_scope",
            Self::RateLimited => "rate_limited",
            Self::StoreFailed => "store_failed",
            Self::StoreTimeout => "store_timeout",
            Self::InsecureTransport => "insecure_transport",
        }
    }

    /// What the client is told.
    ///
    /// ```
    /// use tower_api_key::{ErrorCode, RejectReason};
    /// assert_eq!(RejectReason::Ambiguous.code(), ErrorCode::InvalidRequest);
    /// assert_eq!(RejectReason::StoreTimeout.code(), ErrorCode::Unavailable);
    /// ```
    #[must_use]
    pub const fn code(self) -> ErrorCode {
        match self {
            Self::NoCredential => ErrorCode::MissingCredential,
            Self::BadHeaderBytes | Self::EmptyCredential | Self::Ambiguous => ErrorCode::InvalidRequest,
            Self::TooLong
            | Self::Malformed
            | Self::OpaqueNotAccepted
            | Self::Unknown
            | Self::Mismatch
            | Self::Revoked
            | Self::Disabled
            | Self::Expired
            | Self::RotatedOut => ErrorCode::InvalidToken,
            Self::InsufficientScope => ErrorCode::InsufficientScope,
            Self::RateLimited => ErrorCode::RateLimited,
            Self::StoreFailed | Self::StoreTimeout => ErrorCode::Unavailable,
            Self::InsecureTransport => ErrorCode::HttpsRequired,
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the client is told: one per row of the [module table](crate::reject).
///
/// ```
/// use tower_api_key::ErrorCode;
/// assert_eq!(ErrorCode::InvalidToken.status(), http::StatusCode::UNAUTHORIZED);
/// assert_eq!(ErrorCode::InvalidToken.grpc_status(), 16);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// 401, no `error=` (RFC 6750 §3.1: the request had no authentication information).
    MissingCredential,
    /// 400 `invalid_request`.
    InvalidRequest,
    /// 401 `invalid_token`.
    InvalidToken,
    /// 403 `insufficient_scope`.
    InsufficientScope,
    /// 403, HTTPS required.
    HttpsRequired,
    /// 429.
    RateLimited,
    /// 503: the store failed; fail closed.
    Unavailable,
}

impl ErrorCode {
    /// HTTP status.
    ///
    /// ```
    /// assert_eq!(tower_api_key::ErrorCode::RateLimited.status().as_u16(), 429);
    /// ```
    #[must_use]
    pub const fn status(self) -> StatusCode {
        match self {
            Self::MissingCredential | Self::InvalidToken => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest => StatusCode::BAD_REQUEST,
            Self::InsufficientScope | Self::HttpsRequired => StatusCode::FORBIDDEN,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// gRPC status code.
    ///
    /// ```
    /// assert_eq!(tower_api_key::ErrorCode::Unavailable.grpc_status(), 14);
    /// ```
    #[must_use]
    pub const fn grpc_status(self) -> u8 {
        match self {
            Self::MissingCredential | Self::InvalidRequest | Self::InvalidToken => 16,
            Self::InsufficientScope | Self::HttpsRequired => 7,
            Self::RateLimited => 8,
            Self::Unavailable => 14,
        }
    }

    /// The RFC 6750 `error=` value, where one applies.
    ///
    /// ```
    /// assert_eq!(tower_api_key::ErrorCode::InvalidToken.oauth_error(), Some("invalid_token"));
    /// ```
    #[must_use]
    pub const fn oauth_error(self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest => Some("invalid_request"),
            Self::InvalidToken => Some("invalid_token"),
            Self::InsufficientScope => Some("insufficient_scope"),
            _ => None,
        }
    }

    pub(crate) const fn problem(self) -> &'static str {
        match self {
            Self::MissingCredential => {
                r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"An API key is required."}"#
            }
            Self::InvalidRequest => {
                r#"{"type":"about:blank","title":"Bad Request","status":400,"detail":"The credential headers are malformed or ambiguous."}"#
            }
            Self::InvalidToken => {
                r#"{"type":"about:blank","title":"Unauthorized","status":401,"detail":"The API key is invalid."}"#
            }
            Self::InsufficientScope => {
                r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"The API key lacks a required scope."}"#
            }
            Self::HttpsRequired => {
                r#"{"type":"about:blank","title":"Forbidden","status":403,"detail":"API keys must be sent over HTTPS."}"#
            }
            Self::RateLimited => {
                r#"{"type":"about:blank","title":"Too Many Requests","status":429,"detail":"Rate limit exceeded for this API key."}"#
            }
            Self::Unavailable => {
                r#"{"type":"about:blank","title":"Service Unavailable","status":503,"detail":"Authentication is temporarily unavailable."}"#
            }
        }
    }

    pub(crate) const fn grpc_message(self) -> &'static str {
        // Already percent-encoded (RFC 3986 unreserved characters and %20 only).
        match self {
            Self::MissingCredential => "an%20API%20key%20is%20required",
            Self::InvalidRequest => "the%20credential%20metadata%20is%20malformed%20or%20ambiguous",
            Self::InvalidToken => "the%20API%20key%20is%20invalid",
            Self::InsufficientScope => "the%20API%20key%20lacks%20a%20required%20scope",
            Self::HttpsRequired => "API%20keys%20must%20be%20sent%20over%20HTTPS",
            Self::RateLimited => "rate%20limit%20exceeded%20for%20this%20API%20key",
            Self::Unavailable => "authentication%20is%20temporarily%20unavailable",
        }
    }
}

/// Rate-limit details for a 429 (IETF `RateLimit` header fields draft).
///
/// ```
/// use tower_api_key::Rejection;
/// fn retry_hint(r: &Rejection) -> Option<u64> {
///     r.rate_limit().map(|info| info.retry_after.as_secs())
/// }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// Seconds until a request would be allowed.
    pub retry_after: Duration,
    /// Requests allowed per window.
    pub limit: u32,
    /// Window length.
    pub window: Duration,
}
