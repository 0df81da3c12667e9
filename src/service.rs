//! [`ApiKeyAuth`]: the middleware service. One pass per request: extract, pre-check, look up, verify, authorize,
//! inject (or reject).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap};
use http::{HeaderValue, Method, Request, Response};
use tower_service::Service;
use tracing::Instrument;

use crate::extract::{API_KEY, Credential, CredentialSource, X_API_KEY, scan};
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
}

impl Wanted {
    fn key_id(&self) -> Option<&KeyId> {
        match self {
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
    grpc_kind(headers.get(CONTENT_TYPE))
}

/// [`grpc_content_type`] from the `content-type` value.
fn grpc_kind(content_type: Option<&HeaderValue>) -> Option<GrpcKind> {
    fn ends(rest: &[u8]) -> bool {
        matches!(rest, [] | [b'+' | b';', ..])
    }
    let rest = content_type?.as_bytes().strip_prefix(b"application/grpc")?;
    if ends(rest) {
        return Some(GrpcKind::Grpc);
    }
    let web = rest.strip_prefix(b"-web")?;
    if ends(web) {
        return Some(GrpcKind::Web);
    }
    web.strip_prefix(b"-text").filter(|text| ends(text)).map(|_| GrpcKind::WebText)
}

impl Config {
    /// A rejection, answered in the gRPC form when the request's `content_type` is gRPC.
    pub(crate) fn reject(
        &self,
        content_type: Option<&HeaderValue>,
        reason: RejectReason,
        key_id: Option<&KeyId>,
    ) -> Rejection {
        self.record_rejection(reason, key_id);
        Rejection::new(reason).with_context(grpc_kind(content_type), &self.challenges)
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
            return Step::Reject(self.reject(req.headers().get(CONTENT_TYPE), RejectReason::InsecureTransport, None));
        }
        // One pass over the headers marks the credential headers sensitive and finds them; only a request that
        // repeats one goes through the map's lookups to merge the duplicates.
        let found = scan(req.headers_mut());
        if found.repeated {
            let headers = req.headers();
            return self.decide(headers.get(CONTENT_TYPE), self.extractor.extract_general(headers));
        }
        self.decide(found.content_type, self.extractor.extract_scanned(&found))
    }

    /// The rest of [`Config::begin`], once the credential is out of the headers.
    fn decide(
        &self,
        content_type: Option<&HeaderValue>,
        extracted: Result<Option<Credential<'_>>, RejectReason>,
    ) -> Step {
        let credential = match extracted {
            Ok(Some(c)) => c,
            Ok(None) if self.optional => return Step::Pass,
            Ok(None) => return Step::Reject(self.reject(content_type, RejectReason::NoCredential, None)),
            Err(reason) => return Step::Reject(self.reject(content_type, reason, None)),
        };
        let source = credential.source;
        if source == CredentialSource::XApiKeyHeader {
            tracing::warn!(
                "API key sent in the deprecated X-API-Key header (RFC 6648); clients should send \
                 `Authorization: Bearer <key>` or `API-Key: <key>`"
            );
            #[cfg(feature = "metrics")]
            metrics::counter!("tower_api_key_deprecated_header_total", "header" => "x-api-key").increment(1);
        }
        match self.format.classify(credential.value) {
            Classified::Ours(parsed) => {
                let wanted = Wanted::Id { id: *parsed.id(), kind: parsed.kind() };
                match self.store.lookup_now(Lookup::Id(parsed.id())) {
                    // Looked up by the public id first (DESIGN.md, request flow 3 then 4): the secret is hashed
                    // only when there is a record to check it against. An unknown id costs no SHA-256; the id is
                    // public, and how long verifying takes still says nothing about the secret.
                    Some(result) => self.verify(content_type, wanted, source, result, || parsed.secret_digest()),
                    None => Step::Lookup(Pending { wanted, digest: parsed.secret_digest(), source }),
                }
            }
            Classified::Malformed => Step::Reject(self.reject(content_type, RejectReason::Malformed, None)),
            Classified::Foreign if self.pass_foreign_bearer && source == CredentialSource::Bearer => Step::Pass,
            Classified::Foreign if self.accept_opaque => {
                let digest = KeyDigest::of(credential.value);
                match self.store.lookup_now(Lookup::Digest(&digest)) {
                    Some(result) => self.verify(content_type, Wanted::Digest, source, result, || digest),
                    None => Step::Lookup(Pending { wanted: Wanted::Digest, digest, source }),
                }
            }
            Classified::Foreign => Step::Reject(self.reject(content_type, RejectReason::OpaqueNotAccepted, None)),
        }
    }

    /// Verifies a lookup result: the presented secret's digest (computed only now, when there is a record) in
    /// constant time, then kind and status, then rate limit.
    pub(crate) fn verify(
        &self,
        content_type: Option<&HeaderValue>,
        wanted: Wanted,
        source: CredentialSource,
        result: LookupResult,
        digest: impl FnOnce() -> KeyDigest,
    ) -> Step {
        let record = match result {
            Ok(Some(record)) => record,
            Ok(None) => return Step::Reject(self.reject(content_type, RejectReason::Unknown, wanted.key_id())),
            Err(error) => {
                let reason = match error {
                    StoreError::Timeout(_) => RejectReason::StoreTimeout,
                    _ => RejectReason::StoreFailed,
                };
                tracing::error!(error = &error as &dyn std::error::Error, "API key store failed; failing closed");
                return Step::Reject(self.reject(content_type, reason, wanted.key_id()));
            }
        };
        let digest_ok = bool::from(record.digest.ct_eq(&digest()));
        let shape_ok = match wanted {
            Wanted::Id { id, kind } => record.is_formatted() && record.kind == kind && record.id == id,
            Wanted::Digest => !record.is_formatted(),
        };
        if !(digest_ok && shape_ok) {
            return Step::Reject(self.reject(content_type, RejectReason::Mismatch, wanted.key_id()));
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
            return Step::Reject(self.reject(content_type, reason, Some(&record.id)));
        }
        #[cfg(feature = "rate-limit")]
        if let Some(limiter) = &self.rate_limiter
            && let Err(info) = limiter.check(&record.id, record.rate_limit)
        {
            return Step::Reject(
                self.reject(content_type, RejectReason::RateLimited, Some(&record.id)).with_rate(info),
            );
        }
        tracing::debug!(key_id = %record.id, kind = record.kind.as_str(), source = source.as_str(), "api key accepted");
        if let Some(sink) = &self.events {
            sink.on_event(&crate::AuthEvent::Verified { key_id: &record.id, kind: record.kind });
        }
        if let Some(usage) = &self.usage {
            usage.record(&record.id, self.clock.now());
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_requests_total", "outcome" => "accepted", "reason" => "ok").increment(1);
        Step::Accept(Principal::new(record, source, &self.challenges))
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
                    let content_type = req.headers().get(CONTENT_TYPE);
                    let step = lookup_span.in_scope(|| {
                        config.verify(content_type, pending.wanted, pending.source, result, || pending.digest)
                    });
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
                                lookup_span.in_scope(|| config.reject(content_type, RejectReason::StoreFailed, None));
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
