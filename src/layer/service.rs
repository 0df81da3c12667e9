//! [`ApiKeyAuth`]: the middleware service. One pass per request: extract, pre-check, look up, verify, authorize,
//! inject (or reject).

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use tower_service::Service;

use super::future::ResponseFuture;
use super::pipeline::{Config, Step};
use crate::principal::Principal;
use crate::reject::OnRejection;

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
        // The span exists only when a subscriber wants it (checked first: with tracing's `log` feature, which axum
        // turns on by default, even a disabled span is offered to `log`); without one, nothing is entered or
        // recorded.
        let span = tracing::enabled!(tracing::Level::DEBUG).then(|| {
            tracing::debug_span!(
                "api_key_auth",
                key_id = tracing::field::Empty,
                kind = tracing::field::Empty,
                outcome = tracing::field::Empty
            )
        });
        let step = match &span {
            None => self.config.begin(&mut req),
            Some(span) => {
                let step = span.in_scope(|| self.config.begin(&mut req));
                record_step(span, &step);
                step
            }
        };
        match step {
            Step::Pass => ResponseFuture::inner(self.inner.call(req)),
            Step::Deny(denied) => {
                let rejection = match &span {
                    None => self.config.reject(req.headers(), denied),
                    Some(span) => span.in_scope(|| self.config.reject(req.headers(), denied)),
                };
                ResponseFuture::ready(self.on_rejection.on_rejection(&rejection))
            }
            Step::Accept(principal) => {
                let deprecation = self.config.deprecation_for(&principal);
                self.config.accept(&mut req, principal);
                match deprecation {
                    None => ResponseFuture::inner(self.inner.call(req)),
                    Some(headers) => ResponseFuture::deprecated(self.inner.call(req), headers),
                }
            }
            Step::Wait(waiting) => {
                // The ready service goes into the future; a fresh clone stays here (tower's `mem::replace` idiom).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                let config = self.config.clone();
                let on_rejection = self.on_rejection.clone();
                let span = span.unwrap_or_else(tracing::Span::none);
                ResponseFuture::boxed(async move {
                    match config.resolve(waiting, &span).await {
                        Ok(principal) => {
                            record_accepted(&span, &principal);
                            let deprecation = config.deprecation_for(&principal);
                            config.accept(&mut req, principal);
                            let mut res = inner.call(req).await?;
                            if let Some(headers) = deprecation {
                                headers.apply(res.headers_mut());
                            }
                            Ok(res)
                        }
                        Err(denied) => {
                            span.record("outcome", denied.reason.as_str());
                            let rejection = span.in_scope(|| config.reject(req.headers(), denied));
                            Ok(on_rejection.on_rejection(&rejection))
                        }
                    }
                })
            }
        }
    }
}

/// Records the outcome on the authentication span.
fn record_step(span: &tracing::Span, step: &Step) {
    match step {
        Step::Accept(p) => record_accepted(span, p),
        Step::Deny(d) => {
            span.record("outcome", d.reason.as_str());
        }
        Step::Pass => {
            span.record("outcome", "passed_unauthenticated");
        }
        Step::Wait(_) => {}
    }
}

fn record_accepted(span: &tracing::Span, principal: &Principal) {
    if span.is_disabled() {
        return;
    }
    span.record("outcome", "accepted");
    span.record("key_id", tracing::field::display(principal.key_id()));
    span.record("kind", principal.kind().as_str());
}
