//! [`ApiKeyAuth`]: the middleware service. One pass per request: extract, pre-check, look up, verify, authorize,
//! inject (or reject).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use http::{Method, Request, Response};
use tower_service::Service;
use tracing::Instrument;

use crate::extract::{API_KEY, CredentialSource, X_API_KEY};
use crate::format::{Classified, KeyId, KeyKind};
use crate::future::ResponseFuture;
use crate::layer::Config;
use crate::principal::Principal;
use crate::reject::{GrpcKind, OnRejection, RejectReason, Rejection};
use crate::secret::KeyDigest;
use crate::store::{Lookup, LookupResult, StoreError};

/// The service made by [`crate::ApiKeyLayer`]. See the crate docs for the request flow.
///
/// ```
/// use tower::ServiceExt;
/// use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey, Principal};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = MemoryStore::new();
/// let issued = store.add(NewKey::user("alice"))?;
/// let svc = tower::ServiceBuilder::new()
///     .layer(ApiKeyLayer::new(store))
///     .service_fn(|req: http::Request<()>| async move {
///         let who = req.extensions().get::<Principal>().map(|p| p.id().to_owned());
///         Ok::<_, std::convert::Infallible>(http::Response::new(who.unwrap_or_default()))
///     });
/// let req = http::Request::get("/")
///     .header("authorization", format!("Bearer {}", issued.key.expose_secret()))
///     .body(())?;
/// let res = svc.oneshot(req).await?;
/// assert_eq!(res.body(), "alice");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ApiKeyAuth<S, R> {
    pub(crate) inner: S,
    pub(crate) config: Arc<Config>,
    pub(crate) on_rejection: R,
}

impl<S: fmt::Debug, R> fmt::Debug for ApiKeyAuth<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyAuth").field("inner", &self.inner).field("config", &self.config).finish_non_exhaustive()
    }
}

impl<S, R> ApiKeyAuth<S, R> {
    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let svc = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).layer(42);
    /// assert_eq!(*svc.get_ref(), 42);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// let mut svc = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).layer(42);
    /// *svc.get_mut() += 1;
    /// assert_eq!(svc.into_inner(), 43);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service.
    ///
    /// ```
    /// use tower::Layer;
    /// let svc = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).layer("inner");
    /// assert_eq!(svc.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

/// What to look up, owned so it can outlive the request borrow.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted {
    Id { id: KeyId, kind: KeyKind },
    Digest,
}

/// A lookup to finish: what was asked and the digest to verify against.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pending {
    pub(crate) wanted: Wanted,
    pub(crate) digest: KeyDigest,
    pub(crate) source: CredentialSource,
}

impl Pending {
    pub(crate) fn lookup(&self) -> Lookup<'_> {
        match &self.wanted {
            Wanted::Id { id, .. } => Lookup::Id(id),
            Wanted::Digest => Lookup::Digest(&self.digest),
        }
    }

    fn key_id(&self) -> Option<&KeyId> {
        match &self.wanted {
            Wanted::Id { id, .. } => Some(id),
            Wanted::Digest => None,
        }
    }
}

pub(crate) enum Step {
    /// Let the request through unauthenticated (preflight, optional mode, foreign bearer).
    Pass,
    Reject(Rejection),
    Accept(Principal),
    Lookup(Pending),
}

/// For a gRPC request, the content type to answer with: `application/grpc`, `application/grpc-web+proto` or
/// `application/grpc-web-text+proto` (as tonic-web answers), by the request's `content-type` (with an optional
/// `+codec` or `;parameters`). Static values: the client's bytes are never echoed.
pub(crate) fn grpc_content_type(headers: &HeaderMap) -> Option<GrpcKind> {
    fn ends(rest: &[u8]) -> bool {
        matches!(rest, [] | [b'+' | b';', ..])
    }
    let rest = headers.get(CONTENT_TYPE)?.as_bytes().strip_prefix(b"application/grpc")?;
    if ends(rest) {
        return Some(GrpcKind::Grpc);
    }
    let web = rest.strip_prefix(b"-web")?;
    if ends(web) {
        return Some(GrpcKind::Web);
    }
    web.strip_prefix(b"-text").filter(|text| ends(text)).map(|_| GrpcKind::WebText)
}

/// Marks every credential header value sensitive (HPACK never-index, redacted `Debug`). One pass over the headers,
/// no allocation (`HeaderMap::entry` may grow the map).
fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == AUTHORIZATION || name == API_KEY || name == X_API_KEY {
            value.set_sensitive(true);
        }
    }
}

impl Config {
    pub(crate) fn reject(&self, headers: &HeaderMap, reason: RejectReason, key_id: Option<&KeyId>) -> Rejection {
        self.record_rejection(reason, key_id);
        Rejection::new(reason).with_context(grpc_content_type(headers), &self.challenges)
    }

    fn record_rejection(&self, reason: RejectReason, key_id: Option<&KeyId>) {
        match reason {
            RejectReason::StoreFailed | RejectReason::StoreTimeout => {}
            _ => tracing::info!(
                reason = reason.as_str(),
                key_id = key_id.map(tracing::field::display),
                "api key rejected"
            ),
        }
        if let Some(sink) = &self.events {
            sink.on_event(&crate::AuthEvent::Rejected { key_id, reason });
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_requests_total", "outcome" => "rejected", "reason" => reason.as_str())
            .increment(1);
    }

    /// Everything that can be decided without waiting.
    pub(crate) fn begin<B>(&self, req: &mut Request<B>) -> Step {
        if self.allow_preflight
            && req.method() == Method::OPTIONS
            && req.headers().contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
        {
            return Step::Pass;
        }
        if let Some(policy) = &self.https
            && !policy.is_secure(req)
        {
            return Step::Reject(self.reject(req.headers(), RejectReason::InsecureTransport, None));
        }
        mark_sensitive(req.headers_mut());
        let headers = req.headers();

        let credential = match self.extractor.extract(headers) {
            Ok(Some(c)) => c,
            Ok(None) if self.optional => return Step::Pass,
            Ok(None) => return Step::Reject(self.reject(headers, RejectReason::NoCredential, None)),
            Err(reason) => return Step::Reject(self.reject(headers, reason, None)),
        };
        if credential.source == CredentialSource::XApiKeyHeader {
            tracing::warn!(
                "API key sent in the deprecated X-API-Key header (RFC 6648); clients should send \
                 `Authorization: Bearer <key>` or `API-Key: <key>`"
            );
            #[cfg(feature = "metrics")]
            metrics::counter!("tower_api_key_deprecated_header_total", "header" => "x-api-key").increment(1);
        }
        let pending = match self.format.classify(credential.value) {
            Classified::Ours(parsed) => Pending {
                wanted: Wanted::Id { id: *parsed.id(), kind: parsed.kind() },
                digest: parsed.secret_digest(),
                source: credential.source,
            },
            Classified::Malformed => return Step::Reject(self.reject(headers, RejectReason::Malformed, None)),
            Classified::Foreign if self.pass_foreign_bearer && credential.source == CredentialSource::Bearer => {
                return Step::Pass;
            }
            Classified::Foreign if self.accept_opaque => {
                Pending { wanted: Wanted::Digest, digest: KeyDigest::of(credential.value), source: credential.source }
            }
            Classified::Foreign => {
                return Step::Reject(self.reject(headers, RejectReason::OpaqueNotAccepted, None));
            }
        };
        match self.store.lookup_now(pending.lookup()) {
            Some(result) => self.verify(headers, &pending, result),
            None => Step::Lookup(pending),
        }
    }

    /// Verifies a lookup result: digest in constant time, then kind and status, then rate limit.
    pub(crate) fn verify(&self, headers: &HeaderMap, pending: &Pending, result: LookupResult) -> Step {
        let record = match result {
            Ok(Some(record)) => record,
            Ok(None) => return Step::Reject(self.reject(headers, RejectReason::Unknown, pending.key_id())),
            Err(error) => {
                let reason = match error {
                    StoreError::Timeout(_) => RejectReason::StoreTimeout,
                    _ => RejectReason::StoreFailed,
                };
                tracing::error!(error = &error as &dyn std::error::Error, "API key store failed; failing closed");
                return Step::Reject(self.reject(headers, reason, pending.key_id()));
            }
        };
        let digest_ok = bool::from(record.digest.ct_eq(&pending.digest));
        let shape_ok = match pending.wanted {
            Wanted::Id { id, kind } => record.is_formatted() && record.kind == kind && record.id == id,
            Wanted::Digest => !record.is_formatted(),
        };
        if !(digest_ok && shape_ok) {
            return Step::Reject(self.reject(headers, RejectReason::Mismatch, pending.key_id()));
        }
        let failed = if record.revoked_at.is_some() {
            Some(RejectReason::Revoked)
        } else if !record.enabled {
            Some(RejectReason::Disabled)
        } else if record.expires_at.is_some_and(|at| self.clock.now() >= at) {
            Some(if record.rotated_to.is_some() { RejectReason::RotatedOut } else { RejectReason::Expired })
        } else {
            None
        };
        if let Some(reason) = failed {
            return Step::Reject(self.reject(headers, reason, Some(&record.id)));
        }
        #[cfg(feature = "rate-limit")]
        if let Some(limiter) = &self.rate_limiter
            && let Err(info) = limiter.check(&record.id, record.rate_limit)
        {
            return Step::Reject(self.reject(headers, RejectReason::RateLimited, Some(&record.id)).with_rate(info));
        }
        tracing::debug!(key_id = %record.id, kind = record.kind.as_str(), source = pending.source.as_str(), "api key accepted");
        if let Some(sink) = &self.events {
            sink.on_event(&crate::AuthEvent::Verified { key_id: &record.id, kind: record.kind });
        }
        if let Some(usage) = &self.usage {
            usage.record(&record.id, self.clock.now());
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_requests_total", "outcome" => "accepted", "reason" => "ok").increment(1);
        Step::Accept(Principal::new(record, pending.source, &self.challenges))
    }

    pub(crate) fn strip(&self, headers: &mut HeaderMap) {
        if self.strip_credentials {
            headers.remove(AUTHORIZATION);
            headers.remove(&API_KEY);
            headers.remove(&X_API_KEY);
        }
    }
}

#[cfg(feature = "tonic")]
impl<S: tonic::server::NamedService, R> tonic::server::NamedService for ApiKeyAuth<S, R> {
    const NAME: &'static str = S::NAME;
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for ApiKeyAuth<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Send + 'static,
    R: OnRejection<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // Checked first so that, when no subscriber wants the span, it is not built at all (with tracing's `log`
        // feature, which axum turns on by default, a disabled span would still be offered to `log`).
        let span = if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug_span!(
                "api_key_auth",
                key_id = tracing::field::Empty,
                kind = tracing::field::Empty,
                outcome = tracing::field::Empty
            )
        } else {
            tracing::Span::none()
        };
        let step = span.in_scope(|| self.config.begin(&mut req));
        record_step(&span, &step);
        match step {
            Step::Pass => ResponseFuture::inner(self.inner.call(req)),
            Step::Reject(rejection) => ResponseFuture::ready(self.on_rejection.on_rejection(&rejection)),
            Step::Accept(principal) => {
                self.config.strip(req.headers_mut());
                req.extensions_mut().insert(principal);
                ResponseFuture::inner(self.inner.call(req))
            }
            Step::Lookup(pending) => {
                // The ready service goes into the future; a fresh clone stays here (tower's `mem::replace` idiom).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let config = self.config.clone();
                let on_rejection = self.on_rejection.clone();
                let lookup_span = span.clone();
                ResponseFuture::boxed(async move {
                    let result = lookup_with_timeout(&config, &pending).instrument(lookup_span.clone()).await;
                    let step = lookup_span.in_scope(|| config.verify(req.headers(), &pending, result));
                    record_step(&lookup_span, &step);
                    match step {
                        Step::Accept(principal) => {
                            config.strip(req.headers_mut());
                            req.extensions_mut().insert(principal);
                            inner.call(req).await
                        }
                        Step::Reject(rejection) => Ok(on_rejection.on_rejection(&rejection)),
                        // `verify` only accepts or rejects; anything else fails closed.
                        Step::Pass | Step::Lookup(_) => {
                            let rejection =
                                lookup_span.in_scope(|| config.reject(req.headers(), RejectReason::StoreFailed, None));
                            Ok(on_rejection.on_rejection(&rejection))
                        }
                    }
                })
            }
        }
    }
}

/// Records the outcome on the authentication span (nothing to do when no subscriber wants it).
fn record_step(span: &tracing::Span, step: &Step) {
    if span.is_disabled() {
        return;
    }
    match step {
        Step::Accept(p) => {
            span.record("outcome", "accepted");
            span.record("key_id", tracing::field::display(p.key_id()));
            span.record("kind", p.kind().as_str());
        }
        Step::Reject(r) => {
            span.record("outcome", r.reason().as_str());
        }
        Step::Pass => {
            span.record("outcome", "passed_unauthenticated");
        }
        Step::Lookup(_) => {}
    }
}

async fn lookup_with_timeout(config: &Config, pending: &Pending) -> LookupResult {
    let lookup = config.store.lookup(pending.lookup());
    if tokio::runtime::Handle::try_current().is_err() {
        return lookup.await;
    }
    match tokio::time::timeout(config.store_timeout, lookup).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Timeout(config.store_timeout)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            h.insert(CONTENT_TYPE, http::HeaderValue::from_static(ct));
            assert_eq!(grpc_content_type(&h).map(GrpcKind::content_type), *want, "{ct}");
        }
        assert_eq!(grpc_content_type(&HeaderMap::new()), None);
    }
}
