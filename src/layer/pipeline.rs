//! The request pipeline, in the order of the crate docs' table: extract, pre-check, look up, verify, authorize,
//! and then accept (a [`Principal`]) or deny (a [`Denied`], which becomes a [`Rejection`] once, at the end).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::header::{AUTHORIZATION, HeaderMap};
use http::{Method, Request};

use super::deprecation::Deprecation;
use super::extract::{API_KEY, Credential, Extractor, X_API_KEY, scan};
use super::report::Report;
use super::shared_limit::Shared;
use super::timeout::bounded;
use super::transport::HttpsPolicy;
use super::usage::UsageTracker;
use crate::clock::Clock;
use crate::events::{AuthEvent, AuthEventSink};
use crate::key::{Classified, KeyDigest, KeyFormat, KeyId, KeyKind, KeyRecord, KeyStatus, RateLimit};
use crate::principal::{CredentialSource, Principal};
use crate::reject::{Challenges, GrpcKind, RateLimitInfo, RejectReason, Rejection};
use crate::store::{KeyStore, Lookup, LookupResult, StoreError};

/// Default store timeout.
pub const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_secs(2);

/// The layer's configuration, shared by every request, and the pipeline that runs on it.
#[derive(Clone)]
pub(crate) struct Config {
    pub(crate) store: Arc<dyn KeyStore>,
    pub(crate) extractor: Extractor,
    pub(crate) format: KeyFormat,
    pub(crate) accept_opaque: bool,
    pub(crate) challenges: Arc<Challenges>,
    pub(crate) store_timeout: Duration,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) events: Option<Arc<dyn AuthEventSink>>,
    pub(crate) usage: Option<UsageTracker>,
    pub(crate) optional: bool,
    pub(crate) pass_foreign_bearer: bool,
    pub(crate) strip_credentials: bool,
    pub(crate) allow_preflight: bool,
    pub(crate) https: Option<HttpsPolicy>,
    pub(crate) deprecation: Option<Arc<Deprecation>>,
    pub(crate) report: Arc<Report>,
    pub(crate) shared_limit: Option<Shared>,
    #[cfg(feature = "rate-limit")]
    pub(crate) rate_limiter: Option<super::limiter::KeyRateLimiter>,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("store", &self.store)
            .field("extractor", &self.extractor)
            .field("format", &self.format)
            .field("accept_opaque", &self.accept_opaque)
            .field("realm", &self.challenges.realm)
            .field("store_timeout", &self.store_timeout)
            .field("optional", &self.optional)
            .field("pass_foreign_bearer", &self.pass_foreign_bearer)
            .field("strip_credentials", &self.strip_credentials)
            .field("allow_preflight", &self.allow_preflight)
            .field("https", &self.https)
            .field("deprecation", &self.deprecation)
            .finish_non_exhaustive()
    }
}

/// What to look up, owned so it can outlive the request borrow.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wanted {
    Id { id: KeyId, kind: KeyKind },
    Digest,
}

impl Wanted {
    fn key_id(&self) -> Option<KeyId> {
        match self {
            Wanted::Id { id, .. } => Some(*id),
            Wanted::Digest => None,
        }
    }
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

/// A refusal, before it is known which protocol it answers: [`Config::reject`] makes the [`Rejection`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Denied {
    pub(crate) reason: RejectReason,
    key_id: Option<KeyId>,
    rate: Option<RateLimitInfo>,
    /// The request's gRPC form, when the header scan already found its `content-type`; `None`: look it up.
    grpc: Option<Option<GrpcKind>>,
}

impl Denied {
    fn new(reason: RejectReason, key_id: Option<KeyId>) -> Self {
        Self { reason, key_id, rate: None, grpc: None }
    }
}

/// A verified key whose shared rate limit must still be asked (and waited for): [`Config::limit`].
#[derive(Debug)]
pub(crate) struct LimitCheck {
    record: Arc<KeyRecord>,
    source: CredentialSource,
    limit: RateLimit,
}

/// What [`Config::verify`] decided for a key that passed.
pub(crate) enum Admitted {
    Now(Principal),
    AfterLimit(LimitCheck),
}

/// What [`Config::begin`] decided.
pub(crate) enum Step {
    /// Let the request through unauthenticated (preflight, optional mode, foreign bearer).
    Pass,
    Deny(Denied),
    Accept(Principal),
    /// Something must be waited for: [`Config::resolve`].
    Wait(Waiting),
}

/// What a request waits for before the verdict.
pub(crate) enum Waiting {
    /// The store's answer; then [`Config::verify`].
    Lookup(Pending),
    /// The shared rate limiter's answer: [`Config::limit`].
    Limit(LimitCheck),
}

impl From<Result<Admitted, Denied>> for Step {
    fn from(verdict: Result<Admitted, Denied>) -> Self {
        match verdict {
            Ok(Admitted::Now(principal)) => Step::Accept(principal),
            Ok(Admitted::AfterLimit(check)) => Step::Wait(Waiting::Limit(check)),
            Err(denied) => Step::Deny(denied),
        }
    }
}

/// The refusal for a record that is not usable now. One place decides a record's status:
/// [`crate::KeyRecord::status_at`].
fn refusal(status: KeyStatus) -> Option<RejectReason> {
    match status {
        KeyStatus::Active => None,
        KeyStatus::Revoked => Some(RejectReason::Revoked),
        KeyStatus::Disabled => Some(RejectReason::Disabled),
        KeyStatus::Expired => Some(RejectReason::Expired),
        KeyStatus::RotatedOut => Some(RejectReason::RotatedOut),
    }
}

impl Config {
    /// Steps 1 and 2 (extract, pre-check) and, when the store answers at once, 3 to 5: everything that can be
    /// decided without waiting.
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
            return Step::Deny(Denied::new(RejectReason::InsecureTransport, None));
        }
        // One pass over the headers marks the credential headers sensitive and finds them; only a request that
        // repeats one goes through the map's lookups to merge the duplicates.
        let found = scan(req.headers_mut());
        if found.repeated {
            return self.decide(self.extractor.extract_general(req.headers()));
        }
        match self.decide(self.extractor.extract_scanned(&found)) {
            // The scan saw the content type: the rejection needs no second header lookup.
            Step::Deny(denied) => {
                Step::Deny(Denied { grpc: Some(GrpcKind::from_content_type(found.content_type)), ..denied })
            }
            step => step,
        }
    }

    /// The rest of [`Config::begin`], once the credential is out of the headers.
    fn decide(&self, extracted: Result<Option<Credential<'_>>, RejectReason>) -> Step {
        let credential = match extracted {
            Ok(Some(c)) => c,
            Ok(None) if self.optional => return Step::Pass,
            Ok(None) => return Step::Deny(Denied::new(RejectReason::NoCredential, None)),
            Err(reason) => return Step::Deny(Denied::new(reason, None)),
        };
        let classified = self.format.classify(credential.value);
        if !matches!(classified, Classified::Ours(_))
            && let Err(reason) = credential.check_bytes()
        {
            return Step::Deny(Denied::new(reason, None));
        }
        let source = credential.source;
        if source == CredentialSource::XApiKeyHeader {
            self.report.deprecated_header();
        }
        match classified {
            Classified::Ours(parsed) => {
                let wanted = Wanted::Id { id: *parsed.id(), kind: parsed.kind() };
                match self.store.lookup_now(Lookup::Id(parsed.id())) {
                    // Looked up by the public id first (DESIGN.md, request flow 3 then 4): the secret is hashed
                    // only when there is a record to check it against. An unknown id costs no SHA-256; the id is
                    // public, and how long verifying takes still says nothing about the secret.
                    Some(result) => self.verify(wanted, source, result, || parsed.secret_digest()).into(),
                    None => Step::Wait(Waiting::Lookup(Pending { wanted, digest: parsed.secret_digest(), source })),
                }
            }
            Classified::Malformed => Step::Deny(Denied::new(RejectReason::Malformed, None)),
            Classified::Foreign if self.pass_foreign_bearer && source == CredentialSource::Bearer => Step::Pass,
            Classified::Foreign if self.accept_opaque => {
                let digest = KeyDigest::of(credential.value);
                match self.store.lookup_now(Lookup::Digest(&digest)) {
                    Some(result) => self.verify(Wanted::Digest, source, result, || digest).into(),
                    None => Step::Wait(Waiting::Lookup(Pending { wanted: Wanted::Digest, digest, source })),
                }
            }
            Classified::Foreign => Step::Deny(Denied::new(RejectReason::OpaqueNotAccepted, None)),
        }
    }

    /// Steps 4 and 5: the presented secret's digest (computed only now, when there is a record) against the
    /// stored one in constant time, then kind and status, then the rate limit.
    pub(crate) fn verify(
        &self,
        wanted: Wanted,
        source: CredentialSource,
        result: LookupResult,
        digest: impl FnOnce() -> KeyDigest,
    ) -> Result<Admitted, Denied> {
        let record = match result {
            Ok(Some(record)) => record,
            Ok(None) => return Err(Denied::new(RejectReason::Unknown, wanted.key_id())),
            Err(error) => {
                let reason = match error {
                    StoreError::Timeout(_) => RejectReason::StoreTimeout,
                    _ => RejectReason::StoreFailed,
                };
                self.report.store_failed(&error);
                return Err(Denied::new(reason, wanted.key_id()));
            }
        };
        let digest_ok = bool::from(record.digest.ct_eq(&digest()));
        let shape_ok = match wanted {
            Wanted::Id { id, kind } => record.is_formatted() && record.kind == kind && record.id == id,
            Wanted::Digest => !record.is_formatted(),
        };
        if !(digest_ok && shape_ok) {
            return Err(Denied::new(RejectReason::Mismatch, wanted.key_id()));
        }
        if let Some(reason) = refusal(record.status_with(|| self.clock.now())) {
            return Err(Denied::new(reason, Some(record.id)));
        }
        #[cfg(feature = "rate-limit")]
        if let Some(limiter) = &self.rate_limiter
            && let Err(info) = limiter.check(&record.id, record.rate_limit)
        {
            return Err(Denied { rate: Some(info), ..Denied::new(RejectReason::RateLimited, Some(record.id)) });
        }
        if let Some(shared) = &self.shared_limit
            && let Some(limit) = record.rate_limit.or(shared.default)
        {
            return Ok(Admitted::AfterLimit(LimitCheck { record, source, limit }));
        }
        Ok(Admitted::Now(self.admit(record, source)))
    }

    /// The verdict of a request that had to wait: the store's answer verified (and then, if the key has a shared
    /// limit, the limiter asked), or the limiter's answer.
    pub(crate) async fn resolve(&self, waiting: Waiting, span: &tracing::Span) -> Result<Principal, Denied> {
        let check = match waiting {
            Waiting::Limit(check) => check,
            Waiting::Lookup(pending) => {
                let lookup = bounded(self.store.lookup(pending.lookup()), self.store_timeout);
                let result = tracing::Instrument::instrument(lookup, span.clone()).await;
                match span.in_scope(|| self.verify(pending.wanted, pending.source, result, || pending.digest))? {
                    Admitted::Now(principal) => return Ok(principal),
                    Admitted::AfterLimit(check) => check,
                }
            }
        };
        tracing::Instrument::instrument(self.limit(check), span.clone()).await
    }

    /// Step 5 with a shared limiter: one call, bounded by the store timeout; a limiter that fails or does not
    /// answer in time gives 503 (fail closed).
    async fn limit(&self, check: LimitCheck) -> Result<Principal, Denied> {
        let LimitCheck { record, source, limit } = check;
        let Some(shared) = &self.shared_limit else { return Ok(self.admit(record, source)) };
        match bounded(shared.limiter.check(&record.id, limit), self.store_timeout).await {
            Ok(Ok(())) => Ok(self.admit(record, source)),
            Ok(Err(info)) => {
                Err(Denied { rate: Some(info), ..Denied::new(RejectReason::RateLimited, Some(record.id)) })
            }
            Err(error) => {
                self.report.store_failed(&error);
                let reason = match error {
                    StoreError::Timeout(_) => RejectReason::StoreTimeout,
                    _ => RejectReason::StoreFailed,
                };
                Err(Denied::new(reason, Some(record.id)))
            }
        }
    }

    /// The key passed every check: events, usage and metrics, and the principal.
    #[inline(always)]
    fn admit(&self, record: Arc<KeyRecord>, source: CredentialSource) -> Principal {
        tracing::debug!(key_id = %record.id, kind = record.kind.as_str(), source = source.as_str(), "api key accepted");
        if let Some(sink) = &self.events {
            sink.on_event(&AuthEvent::Verified { key_id: &record.id, kind: record.kind });
        }
        if let Some(usage) = &self.usage {
            usage.record(&record.id, self.clock.now());
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_requests_total", "outcome" => "accepted", "reason" => "ok").increment(1);
        Principal::new(record, source, &self.challenges)
    }

    /// Step 7: the rejection for `denied`, in the gRPC form when the request is a gRPC call. Counted, reported
    /// (per request at debug, in a periodic summary at info) and sent to the event sink.
    pub(crate) fn reject(&self, headers: &HeaderMap, denied: Denied) -> Rejection {
        let Denied { reason, key_id, rate, grpc } = denied;
        self.report.rejected(reason, key_id.as_ref());
        if let Some(sink) = &self.events {
            sink.on_event(&AuthEvent::Rejected { key_id: key_id.as_ref(), reason });
        }
        #[cfg(feature = "metrics")]
        metrics::counter!("tower_api_key_requests_total", "outcome" => "rejected", "reason" => reason.as_str())
            .increment(1);
        let grpc = grpc.unwrap_or_else(|| GrpcKind::of(headers));
        let rejection = Rejection::new(reason).with_context(grpc, &self.challenges);
        match rate {
            Some(info) => rejection.with_rate(info),
            None => rejection,
        }
    }

    /// Step 6: the principal into the request (and the credential headers out of it, if asked).
    #[inline]
    pub(crate) fn accept<B>(&self, req: &mut Request<B>, principal: Principal) {
        if self.strip_credentials {
            let headers = req.headers_mut();
            headers.remove(AUTHORIZATION);
            headers.remove(&API_KEY);
            headers.remove(&X_API_KEY);
        }
        req.extensions_mut().insert(principal);
    }

    /// The deprecation headers to add to the response of a request authenticated by `principal`, if any.
    pub(crate) fn deprecation_for(&self, principal: &Principal) -> Option<Arc<Deprecation>> {
        match principal.source() {
            Some(CredentialSource::XApiKeyHeader) => self.deprecation.clone(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyStatus;

    /// Every status but `Active` is refused, each with its own reason; the layer's verdict comes from
    /// `KeyRecord::status_at` alone.
    #[test]
    fn every_status_but_active_is_refused() {
        let rows = [
            (KeyStatus::Active, None),
            (KeyStatus::Revoked, Some(RejectReason::Revoked)),
            (KeyStatus::Disabled, Some(RejectReason::Disabled)),
            (KeyStatus::Expired, Some(RejectReason::Expired)),
            (KeyStatus::RotatedOut, Some(RejectReason::RotatedOut)),
        ];
        for (status, want) in rows {
            assert_eq!(refusal(status), want, "{status:?}");
        }
    }
}
