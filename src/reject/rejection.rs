//! [`Rejection`]: a refused request, and the response it becomes (problem details, or trailers-only for gRPC),
//! through a swappable [`OnRejection`] (closures work).

use std::sync::Arc;
use std::time::Duration;

use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderMap, HeaderName, HeaderValue, Response};

use super::body::RejectionBody;
use super::reason::{ErrorCode, RateLimitInfo, RejectReason};
use crate::error::ConfigError;

/// Default realm in `WWW-Authenticate`.
pub const DEFAULT_REALM: &str = "api";

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
            is_default: realm == DEFAULT_REALM,
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
    /// The gRPC flavour of a request, by its `content-type` (with an optional `+codec` or `;parameters`):
    /// `application/grpc`, `application/grpc-web` or `application/grpc-web-text`. `None` for anything else.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        Self::from_content_type(headers.get(CONTENT_TYPE))
    }

    pub(crate) fn from_content_type(content_type: Option<&HeaderValue>) -> Option<Self> {
        fn ends(rest: &[u8]) -> bool {
            matches!(rest, [] | [b'+' | b';', ..])
        }
        let rest = content_type?.as_bytes().strip_prefix(b"application/grpc")?;
        if ends(rest) {
            return Some(Self::Grpc);
        }
        let web = rest.strip_prefix(b"-web")?;
        if ends(web) {
            return Some(Self::Web);
        }
        web.strip_prefix(b"-text").filter(|text| ends(text)).map(|_| Self::WebText)
    }

    /// The content type a rejection answers with: static values, never the client's bytes.
    pub(crate) const fn content_type(self) -> &'static str {
        match self {
            Self::Grpc => "application/grpc",
            Self::Web => "application/grpc-web+proto",
            Self::WebText => "application/grpc-web-text+proto",
        }
    }
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

    /// The default response: problem details for HTTP, trailers-only for gRPC (see the [module table](crate::reject)).
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

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn grpc_content_types() {
        let rows: &[(&str, Option<&str>)] = &[
            ("application/grpc", Some("application/grpc")),
            ("application/grpc+proto", Some("application/grpc")),
            ("application/grpc;charset=x", Some("application/grpc")),
            ("application/grpc-web", Some("application/grpc-web+proto")),
            ("application/grpc-web+proto", Some("application/grpc-web+proto")),
            ("application/grpc-web-text", Some("application/grpc-web-text+proto")),
            ("application/grpc-web-text+proto", Some("application/grpc-web-text+proto")),
            ("application/grpcfoo", None),
            ("application/grpc-webXYZ", None),
            ("application/grpc-web-textual", None),
            ("application/json", None),
        ];
        for (ct, want) in rows {
            let mut h = HeaderMap::new();
            h.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
            assert_eq!(GrpcKind::of(&h).map(GrpcKind::content_type), *want, "{ct}");
        }
        assert_eq!(GrpcKind::of(&HeaderMap::new()), None);
    }

    /// A layer with the default realm leaves a rejection's challenges unset (no `Arc` per rejection); its response
    /// must be the one the default realm's precomputed challenges give, for every reason.
    #[test]
    fn default_realm_without_challenges_answers_the_same() {
        use RejectReason::InsufficientScope;
        let default = Arc::new(Challenges::new(DEFAULT_REALM).unwrap());
        assert!(default.is_default);
        let custom = Arc::new(Challenges::new("billing").unwrap());
        assert!(!custom.is_default);
        for reason in RejectReason::ALL {
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
