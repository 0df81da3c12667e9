//! Per-request rejections and the responses they become.
//!
//! Every rejection has a [`RejectReason`] (for logs, events and metrics) and an [`ErrorCode`] (what the client is
//! told). A malformed, unknown, revoked, disabled or expired key all give the same `invalid_token` answer; only the
//! log says which.
//!
//! | code | HTTP | `WWW-Authenticate` | gRPC `grpc-status` |
//! |---|---|---|---|
//! | [`ErrorCode::MissingCredential`] | 401 | `Bearer realm="…"` | 16 UNAUTHENTICATED |
//! | [`ErrorCode::InvalidRequest`] | 400 | `Bearer realm="…", error="invalid_request"` | 16 |
//! | [`ErrorCode::InvalidToken`] | 401 | `Bearer realm="…", error="invalid_token"` | 16 |
//! | [`ErrorCode::InsufficientScope`] | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` | 7 PERMISSION_DENIED |
//! | [`ErrorCode::HttpsRequired`] | 403 | – | 7 |
//! | [`ErrorCode::RateLimited`] | 429 + `Retry-After`, `RateLimit-Policy`, `RateLimit` | – | 8 RESOURCE_EXHAUSTED |
//! | [`ErrorCode::Unavailable`] | 503 | – | 14 UNAVAILABLE |
//!
//! HTTP bodies are RFC 9457 problem details (`application/problem+json`), static text that never echoes the key.
//! gRPC requests (`content-type: application/grpc…`) get a trailers-only response: HTTP 200, `grpc-status`,
//! percent-encoded `grpc-message`, empty body. grpc-web requests (`application/grpc-web…`) get the same, with the
//! request's own content type, so the layer works outside `tonic_web::GrpcWebLayer` as well as inside it.
//!
//! The response is replaceable: pass any [`OnRejection`] (a closure `Fn(&Rejection) -> Response<B>` works) to
//! [`crate::ApiKeyLayer::on_rejection`].

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, Response, StatusCode};

use crate::error::ConfigError;

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

/// What the client is told: one per row of the [module table](self).
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

    const fn problem(self) -> &'static str {
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

    const fn grpc_message(self) -> &'static str {
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

/// The precomputed `WWW-Authenticate` values for one realm.
#[derive(Debug, Clone)]
pub(crate) struct Challenges {
    pub(crate) realm: Arc<str>,
    /// The realm is the default one (what a principal without challenges falls back to).
    pub(crate) is_default: bool,
    missing: HeaderValue,
    invalid_request: HeaderValue,
    invalid_token: HeaderValue,
}

impl Challenges {
    pub(crate) fn new(realm: &str) -> Result<Self, ConfigError> {
        if realm.bytes().any(|b| !(0x20..=0x7E).contains(&b) || b == b'"' || b == b'\\') {
            return Err(ConfigError::InvalidRealm(realm.to_owned()));
        }
        let make = |extra: &str| {
            HeaderValue::try_from(format!("Bearer realm=\"{realm}\"{extra}"))
                .map_err(|_| ConfigError::InvalidRealm(realm.to_owned()))
        };
        Ok(Self {
            realm: realm.into(),
            is_default: realm == crate::layer::DEFAULT_REALM,
            missing: make("")?,
            invalid_request: make(", error=\"invalid_request\"")?,
            invalid_token: make(", error=\"invalid_token\"")?,
        })
    }

    pub(crate) fn insufficient_scope(&self, scopes: &str) -> HeaderValue {
        HeaderValue::try_from(format!(
            "Bearer realm=\"{}\", error=\"insufficient_scope\", scope=\"{scopes}\"",
            self.realm
        ))
        .unwrap_or_else(|_| self.missing.clone())
    }
}

/// gRPC flavours, by request content type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GrpcKind {
    Grpc,
    Web,
    WebText,
}

impl GrpcKind {
    pub(crate) const fn content_type(self) -> &'static str {
        match self {
            Self::Grpc => "application/grpc",
            Self::Web => "application/grpc-web+proto",
            Self::WebText => "application/grpc-web-text+proto",
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

/// A request the layer (or a scope guard) refused. Turn it into a response with
/// [`Rejection::into_response`], or hand it to your own [`OnRejection`].
///
/// ```
/// use tower_api_key::{ErrorCode, Rejection, RejectReason};
/// let r = Rejection::new(RejectReason::Expired);
/// assert_eq!(r.code(), ErrorCode::InvalidToken);
/// let res: http::Response<String> = r.into_response();
/// assert_eq!(res.status(), 401);
/// assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
/// ```
#[derive(Debug, Clone)]
pub struct Rejection {
    reason: RejectReason,
    /// For gRPC requests: which flavour, hence the response content type.
    grpc: Option<GrpcKind>,
    challenges: Option<Arc<Challenges>>,
    scope_challenge: Option<HeaderValue>,
    rate: Option<RateLimitInfo>,
}

impl Rejection {
    /// A rejection for `reason`, for an HTTP client, with the realm `api`.
    ///
    /// ```
    /// let r = tower_api_key::Rejection::new(tower_api_key::RejectReason::NoCredential);
    /// assert!(!r.is_grpc());
    /// ```
    #[must_use]
    pub fn new(reason: RejectReason) -> Self {
        Self { reason, grpc: None, challenges: None, scope_challenge: None, rate: None }
    }

    pub(crate) fn with_context(mut self, grpc: Option<GrpcKind>, challenges: &Arc<Challenges>) -> Self {
        self.grpc = grpc;
        // The default realm's challenges are static values (`default_challenges`): no `Arc` count to take and
        // release, and no shared header bytes to count, on every rejection.
        self.challenges = (!challenges.is_default).then(|| challenges.clone());
        self
    }

    pub(crate) fn with_scope_challenge(mut self, value: HeaderValue) -> Self {
        self.scope_challenge = Some(value);
        self
    }

    #[cfg_attr(not(feature = "rate-limit"), allow(dead_code))]
    pub(crate) fn with_rate(mut self, rate: RateLimitInfo) -> Self {
        self.rate = Some(rate);
        self
    }

    /// Why (log only).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// assert_eq!(Rejection::new(RejectReason::Unknown).reason(), RejectReason::Unknown);
    /// ```
    #[must_use]
    pub fn reason(&self) -> RejectReason {
        self.reason
    }

    /// What the client is told.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// assert_eq!(Rejection::new(RejectReason::Unknown).code(), ErrorCode::InvalidToken);
    /// ```
    #[must_use]
    pub fn code(&self) -> ErrorCode {
        self.reason.code()
    }

    /// Whether the request was a gRPC call (`content-type: application/grpc…`).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// assert!(!Rejection::new(RejectReason::Unknown).is_grpc());
    /// ```
    #[must_use]
    pub fn is_grpc(&self) -> bool {
        self.grpc.is_some()
    }

    /// Rate-limit details, for [`ErrorCode::RateLimited`].
    ///
    /// ```
    /// # use tower_api_key::*;
    /// assert!(Rejection::new(RejectReason::RateLimited).rate_limit().is_none());
    /// ```
    #[must_use]
    pub fn rate_limit(&self) -> Option<&RateLimitInfo> {
        self.rate.as_ref()
    }

    /// The default response: problem details for HTTP, trailers-only for gRPC (see the [module table](self)).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let res: http::Response<String> = Rejection::new(RejectReason::StoreFailed).into_response();
    /// assert_eq!(res.status(), 503);
    /// assert!(res.body().contains("temporarily unavailable"));
    /// ```
    #[must_use]
    pub fn into_response<B: RejectionBody>(&self) -> Response<B> {
        let code = self.code();
        if let Some(kind) = self.grpc {
            let mut res = Response::new(B::empty());
            let h = res.headers_mut();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(kind.content_type()));
            h.insert(&GRPC_STATUS, HeaderValue::from_static(grpc_status_text(code.grpc_status())));
            h.insert(&GRPC_MESSAGE, HeaderValue::from_static(code.grpc_message()));
            if let Some(rate) = &self.rate {
                h.insert(RETRY_AFTER, secs_header(rate.retry_after));
            }
            return res;
        }
        let mut res = Response::new(B::from_static(code.problem().as_bytes()));
        *res.status_mut() = code.status();
        let h = res.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        let challenge = match code {
            ErrorCode::MissingCredential => self.challenges.as_ref().map(|c| c.missing.clone()),
            ErrorCode::InvalidRequest => self.challenges.as_ref().map(|c| c.invalid_request.clone()),
            ErrorCode::InvalidToken => self.challenges.as_ref().map(|c| c.invalid_token.clone()),
            ErrorCode::InsufficientScope => self.scope_challenge.clone(),
            _ => None,
        };
        let challenge = challenge.or_else(|| code.oauth_error().is_some().then(|| default_challenges(code)).flatten());
        let challenge = match (code, challenge) {
            (ErrorCode::MissingCredential, None) => Some(HeaderValue::from_static("Bearer realm=\"api\"")),
            (_, c) => c,
        };
        if let Some(c) = challenge {
            h.insert(WWW_AUTHENTICATE, c);
        }
        if let Some(rate) = &self.rate {
            h.insert(RETRY_AFTER, secs_header(rate.retry_after));
            if let Ok(v) =
                HeaderValue::try_from(format!("\"default\";q={};w={}", rate.limit, rate.window.as_secs().max(1)))
            {
                h.insert(&RATELIMIT_POLICY, v);
            }
            if let Ok(v) = HeaderValue::try_from(format!("\"default\";r=0;t={}", ceil_secs(rate.retry_after))) {
                h.insert(&RATELIMIT, v);
            }
        }
        res
    }
}

fn default_challenges(code: ErrorCode) -> Option<HeaderValue> {
    match code {
        ErrorCode::InvalidRequest => Some(HeaderValue::from_static("Bearer realm=\"api\", error=\"invalid_request\"")),
        ErrorCode::InvalidToken => Some(HeaderValue::from_static("Bearer realm=\"api\", error=\"invalid_token\"")),
        ErrorCode::InsufficientScope => {
            Some(HeaderValue::from_static("Bearer realm=\"api\", error=\"insufficient_scope\""))
        }
        _ => None,
    }
}

fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

fn secs_header(d: Duration) -> HeaderValue {
    HeaderValue::from(ceil_secs(d).max(1))
}

const fn grpc_status_text(code: u8) -> &'static str {
    match code {
        7 => "7",
        8 => "8",
        14 => "14",
        _ => "16",
    }
}

pub(crate) static GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub(crate) static GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");

/// Turns a [`Rejection`] into a response. The default is [`DefaultRejection`]; any
/// `Fn(&Rejection) -> Response<B> + Clone + Send + Sync + 'static` closure also works.
///
/// ```
/// use tower_api_key::{ApiKeyLayer, MemoryStore, Rejection};
///
/// let layer = ApiKeyLayer::new(MemoryStore::new()).on_rejection(|r: &Rejection| {
///     let mut res: http::Response<axum::body::Body> = r.into_response();
///     res.headers_mut().insert("x-auth-error", http::HeaderValue::from_static(r.code().oauth_error().unwrap_or("other")));
///     res
/// });
/// ```
pub trait OnRejection<B>: Clone + Send + Sync + 'static {
    /// Builds the response for `rejection`.
    ///
    /// ```
    /// use tower_api_key::{OnRejection, RejectReason, Rejection};
    /// let plain = |r: &Rejection| http::Response::builder().status(r.code().status()).body(String::new()).unwrap();
    /// assert_eq!(plain.on_rejection(&Rejection::new(RejectReason::Expired)).status(), 401);
    /// ```
    fn on_rejection(&self, rejection: &Rejection) -> Response<B>;
}

/// The default [`OnRejection`]: [`Rejection::into_response`].
///
/// ```
/// use tower_api_key::{DefaultRejection, OnRejection, Rejection, RejectReason};
/// let res: http::Response<String> = DefaultRejection.on_rejection(&Rejection::new(RejectReason::Unknown));
/// assert_eq!(res.status(), 401);
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct DefaultRejection;

impl<B: RejectionBody> OnRejection<B> for DefaultRejection {
    fn on_rejection(&self, rejection: &Rejection) -> Response<B> {
        rejection.into_response()
    }
}

impl<B, F> OnRejection<B> for F
where
    F: Fn(&Rejection) -> Response<B> + Clone + Send + Sync + 'static,
{
    fn on_rejection(&self, rejection: &Rejection) -> Response<B> {
        self(rejection)
    }
}

/// A response body the default rejection can build: from static bytes (problem details) or empty (gRPC).
///
/// Implemented for axum's body (feature `axum`), tonic's body (feature `tonic`), `http_body_util::Full<Bytes>`,
/// `Empty<Bytes>`, `BoxBody` / `UnsyncBoxBody` over `Bytes`, `String`, `Bytes` and `Vec<u8>`. Implement it for your
/// own body type in two lines.
///
/// ```
/// use tower_api_key::RejectionBody;
/// let body = <String as RejectionBody>::from_static(b"{}");
/// assert_eq!(body, "{}");
/// ```
pub trait RejectionBody: Sized {
    /// A body holding `bytes`.
    ///
    /// ```
    /// use tower_api_key::RejectionBody;
    /// assert_eq!(<Vec<u8> as RejectionBody>::from_static(b"x"), b"x");
    /// ```
    fn from_static(bytes: &'static [u8]) -> Self;
    /// An empty body.
    ///
    /// ```
    /// use tower_api_key::RejectionBody;
    /// assert!(<bytes::Bytes as RejectionBody>::empty().is_empty());
    /// ```
    fn empty() -> Self;
}

impl RejectionBody for Bytes {
    fn from_static(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes)
    }
    fn empty() -> Self {
        Bytes::new()
    }
}

impl RejectionBody for String {
    fn from_static(bytes: &'static [u8]) -> Self {
        String::from_utf8_lossy(bytes).into_owned()
    }
    fn empty() -> Self {
        String::new()
    }
}

impl RejectionBody for Vec<u8> {
    fn from_static(bytes: &'static [u8]) -> Self {
        bytes.to_vec()
    }
    fn empty() -> Self {
        Vec::new()
    }
}

impl RejectionBody for http_body_util::Full<Bytes> {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::new(Bytes::from_static(bytes))
    }
    fn empty() -> Self {
        Self::default()
    }
}

impl RejectionBody for http_body_util::Empty<Bytes> {
    fn from_static(_: &'static [u8]) -> Self {
        Self::new()
    }
    fn empty() -> Self {
        Self::new()
    }
}

impl<E: 'static> RejectionBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn from_static(bytes: &'static [u8]) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from_static(bytes)).map_err(|never| match never {}).boxed()
    }
    fn empty() -> Self {
        use http_body_util::BodyExt;
        http_body_util::Empty::new().map_err(|never| match never {}).boxed()
    }
}

impl<E: 'static> RejectionBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn from_static(bytes: &'static [u8]) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from_static(bytes)).map_err(|never| match never {}).boxed_unsync()
    }
    fn empty() -> Self {
        use http_body_util::BodyExt;
        http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()
    }
}

#[cfg(feature = "axum")]
impl RejectionBody for axum_core::body::Body {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
    fn empty() -> Self {
        Self::empty()
    }
}

#[cfg(feature = "tonic")]
impl RejectionBody for tonic::body::Body {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::new(http_body_util::Full::new(Bytes::from_static(bytes)))
    }
    fn empty() -> Self {
        Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A layer with the default realm leaves a rejection's challenges unset (no `Arc` per rejection); its response
    /// must be the one the default realm's precomputed challenges give, for every reason.
    #[test]
    fn default_realm_without_challenges_answers_the_same() {
        use RejectReason::*;
        let default = Arc::new(Challenges::new(crate::layer::DEFAULT_REALM).unwrap());
        assert!(default.is_default);
        let custom = Arc::new(Challenges::new("billing").unwrap());
        assert!(!custom.is_default);
        for reason in [
            NoCredential,
            BadHeaderBytes,
            EmptyCredential,
            Ambiguous,
            TooLong,
            Malformed,
            OpaqueNotAccepted,
            Unknown,
            Mismatch,
            Revoked,
            Disabled,
            Expired,
            RotatedOut,
            InsufficientScope,
            RateLimited,
            StoreFailed,
            StoreTimeout,
            InsecureTransport,
        ] {
            let lean = Rejection::new(reason).with_context(None, &default);
            assert!(lean.challenges.is_none(), "{reason}");
            let full = Rejection { challenges: Some(default.clone()), ..Rejection::new(reason) };
            let (lean, full): (Response<Bytes>, Response<Bytes>) = (lean.into_response(), full.into_response());
            assert_eq!(lean.status(), full.status(), "{reason}");
            assert_eq!(lean.headers(), full.headers(), "{reason}");
            assert_eq!(lean.body(), full.body(), "{reason}");
            // (A scope guard sets its own `insufficient_scope` challenge; without one, the default's is used.)
            let billing: Response<Bytes> = Rejection::new(reason).with_context(None, &custom).into_response();
            if let Some(challenge) = billing.headers().get(WWW_AUTHENTICATE)
                && reason != InsufficientScope
            {
                assert!(challenge.to_str().unwrap().contains("realm=\"billing\""), "{reason}");
            }
        }
    }
}
