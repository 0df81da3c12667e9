//! Route-level scope checks: [`RequireScopesLayer`] (any tower stack) and `Scoped` (axum extractor, feature `axum`).
//!
//! Put them inside (after) [`crate::ApiKeyLayer`]. A request whose principal lacks the scopes gets 403 with
//! `WWW-Authenticate: Bearer realm="…", error="insufficient_scope", scope="…"` (gRPC: status 7). A request with no
//! principal at all (optional mode, or a route outside the key layer) gets 401.
//!
//! Granted scopes may use wildcards (`keys:*`, `*`), see [`crate::Scopes::allows`].
//!
//! ```
//! use axum::{routing::{get, post}, Router};
//! use tower_api_key::{ApiKeyLayer, MemoryStore, RequireScopesLayer};
//!
//! let admin = Router::new()
//!     .route("/keys", post(|| async { "created" }))
//!     .layer(RequireScopesLayer::all(["keys:admin"])?);
//! let app: Router = Router::new()
//!     .route("/items", get(|| async { "items" }))
//!     .merge(admin)
//!     .layer(ApiKeyLayer::new(MemoryStore::new()));
//! # Ok::<(), tower_api_key::ConfigError>(())
//! ```

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderValue, Request, Response};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::ConfigError;
#[cfg(feature = "axum")]
use crate::key::MAX_SCOPE_LEN;
use crate::key::{Scopes, validate_scope};
use crate::layer::ResponseFuture;
use crate::principal::Principal;
use crate::reject::{Challenges, DEFAULT_REALM, DefaultRejection, GrpcKind, OnRejection, RejectReason, Rejection};

/// All of the scopes, or any one of them.
///
/// ```
/// use tower_api_key::{Scopes, ScopeMatch};
/// let granted = Scopes::new(["read"])?;
/// assert!(ScopeMatch::Any.check(&granted, &["read", "write"]));
/// assert!(!ScopeMatch::All.check(&granted, &["read", "write"]));
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeMatch {
    /// Every listed scope is required.
    All,
    /// One listed scope is enough.
    Any,
}

impl ScopeMatch {
    /// Whether `granted` satisfies `required` under this rule.
    ///
    /// ```
    /// let g = tower_api_key::Scopes::new(["keys:*"]).unwrap();
    /// assert!(tower_api_key::ScopeMatch::All.check(&g, &["keys:read", "keys:write"]));
    /// ```
    #[must_use]
    pub fn check<T: AsRef<str>>(self, granted: &Scopes, required: &[T]) -> bool {
        match self {
            Self::All => required.iter().all(|r| granted.allows(r.as_ref())),
            Self::Any => required.iter().any(|r| granted.allows(r.as_ref())),
        }
    }
}

struct Requirement {
    scopes: Box<[Box<str>]>,
    joined: Box<str>,
    mode: ScopeMatch,
    /// Set by `realm()`; otherwise the realm of the layer that authenticated the principal.
    challenges: Option<Arc<Challenges>>,
    fallback: Arc<Challenges>,
}

impl fmt::Debug for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Requirement").field("scopes", &self.scopes).field("mode", &self.mode).finish()
    }
}

impl Requirement {
    fn new<I, T>(scopes: I, mode: ScopeMatch, realm: Option<&str>) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let scopes: Box<[Box<str>]> = scopes.into_iter().map(|s| Box::from(s.as_ref())).collect();
        for s in &scopes {
            validate_scope(s)?;
        }
        if scopes.is_empty() {
            return Err(ConfigError::InvalidScope(String::new()));
        }
        let challenges = realm.map(Challenges::new).transpose()?.map(Arc::new);
        let fallback = Arc::new(Challenges::new(DEFAULT_REALM)?);
        let joined = scopes.join(" ").into();
        Ok(Self { scopes, joined, mode, challenges, fallback })
    }

    fn check(&self, principal: Option<&Principal>, grpc: Option<GrpcKind>) -> Result<(), Rejection> {
        let challenges = self.challenges.as_ref().or_else(|| principal.and_then(Principal::challenges));
        let challenges = challenges.unwrap_or(&self.fallback);
        let Some(principal) = principal else {
            return Err(Rejection::new(RejectReason::NoCredential).with_context(grpc, challenges));
        };
        if self.mode.check(principal.scopes(), &self.scopes) {
            return Ok(());
        }
        tracing::debug!(key_id = %principal.key_id(), required = &*self.joined, "api key lacks required scope");
        let header: HeaderValue = challenges.insufficient_scope(&self.joined);
        Err(Rejection::new(RejectReason::InsufficientScope).with_context(grpc, challenges).with_scope_challenge(header))
    }
}

/// A layer that requires scopes of the request's [`Principal`].
///
/// ```
/// use tower_api_key::RequireScopesLayer;
/// let all = RequireScopesLayer::all(["invoices:read", "invoices:write"])?;
/// let any = RequireScopesLayer::any(["admin", "invoices:*"])?.realm("billing")?;
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct RequireScopesLayer<R = DefaultRejection> {
    req: Arc<Requirement>,
    on_rejection: R,
}

impl<R> fmt::Debug for RequireScopesLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopesLayer").field("requirement", &self.req).finish_non_exhaustive()
    }
}

impl RequireScopesLayer {
    /// Requires every scope in `scopes`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an invalid scope or an empty list.
    ///
    /// ```
    /// let l = tower_api_key::RequireScopesLayer::all(["keys:admin"])?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn all<I: IntoIterator<Item = T>, T: AsRef<str>>(scopes: I) -> Result<Self, ConfigError> {
        Self::new(scopes, ScopeMatch::All)
    }

    /// Requires at least one scope in `scopes`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an invalid scope or an empty list.
    ///
    /// ```
    /// let l = tower_api_key::RequireScopesLayer::any(["a", "b"])?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn any<I: IntoIterator<Item = T>, T: AsRef<str>>(scopes: I) -> Result<Self, ConfigError> {
        Self::new(scopes, ScopeMatch::Any)
    }

    /// Requires `scopes` under `mode`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScope`] for an invalid scope or an empty list.
    ///
    /// ```
    /// let l = tower_api_key::RequireScopesLayer::new(["a"], tower_api_key::ScopeMatch::All)?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn new<I: IntoIterator<Item = T>, T: AsRef<str>>(scopes: I, mode: ScopeMatch) -> Result<Self, ConfigError> {
        Ok(Self { req: Arc::new(Requirement::new(scopes, mode, None)?), on_rejection: DefaultRejection })
    }
}

impl<R> RequireScopesLayer<R> {
    /// The realm in `WWW-Authenticate`. By default the guard uses the realm of the [`crate::ApiKeyLayer`] that
    /// authenticated the request.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRealm`].
    ///
    /// ```
    /// let l = tower_api_key::RequireScopesLayer::all(["a"])?.realm("billing")?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn realm(self, realm: &str) -> Result<Self, ConfigError> {
        let req = Requirement::new(self.req.scopes.iter(), self.req.mode, Some(realm))?;
        Ok(Self { req: Arc::new(req), on_rejection: self.on_rejection })
    }

    /// Replaces the rejection response (see [`crate::OnRejection`]).
    ///
    /// ```
    /// let l = tower_api_key::RequireScopesLayer::all(["a"])?.on_rejection(|r: &tower_api_key::Rejection| {
    ///     r.into_response::<String>()
    /// });
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn on_rejection<R2>(self, on_rejection: R2) -> RequireScopesLayer<R2> {
        RequireScopesLayer { req: self.req, on_rejection }
    }
}

impl<S, R: Clone> Layer<S> for RequireScopesLayer<R> {
    type Service = RequireScopes<S, R>;
    fn layer(&self, inner: S) -> Self::Service {
        RequireScopes { inner, req: self.req.clone(), on_rejection: self.on_rejection.clone() }
    }
}

/// The service made by [`RequireScopesLayer`].
///
/// ```
/// use tower::Layer;
/// let svc = tower_api_key::RequireScopesLayer::all(["a"])?.layer(());
/// assert_eq!(svc.into_inner(), ());
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct RequireScopes<S, R> {
    inner: S,
    req: Arc<Requirement>,
    on_rejection: R,
}

impl<S: fmt::Debug, R> fmt::Debug for RequireScopes<S, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequireScopes")
            .field("inner", &self.inner)
            .field("requirement", &self.req)
            .finish_non_exhaustive()
    }
}

impl<S, R> RequireScopes<S, R> {
    /// The wrapped service.
    ///
    /// ```
    /// # use tower::Layer;
    /// let svc = tower_api_key::RequireScopesLayer::all(["a"])?.layer(1);
    /// assert_eq!(*svc.get_ref(), 1);
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
    /// The wrapped service, mutably.
    ///
    /// ```
    /// # use tower::Layer;
    /// let mut svc = tower_api_key::RequireScopesLayer::all(["a"])?.layer(1);
    /// *svc.get_mut() = 2;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }
    /// Unwraps the service.
    ///
    /// ```
    /// # use tower::Layer;
    /// let svc = tower_api_key::RequireScopesLayer::all(["a"])?.layer(1);
    /// assert_eq!(svc.into_inner(), 1);
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

#[cfg(feature = "tonic")]
impl<S: tonic::server::NamedService, R> tonic::server::NamedService for RequireScopes<S, R> {
    const NAME: &'static str = S::NAME;
}

impl<S, R, ReqBody, ResBody> Service<Request<ReqBody>> for RequireScopes<S, R>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    R: OnRejection<ResBody>,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        match self.req.check(req.extensions().get::<Principal>(), GrpcKind::of(req.headers())) {
            Ok(()) => ResponseFuture::inner(self.inner.call(req)),
            Err(rejection) => ResponseFuture::ready(self.on_rejection.on_rejection(&rejection)),
        }
    }
}

/// What [`crate::Scopes::new`] accepts, as a `const fn`: checked when [`Scoped`] is compiled.
#[cfg(feature = "axum")]
const fn scope_list_is_valid(scopes: &[&str]) -> bool {
    if scopes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < scopes.len() {
        let bytes = scopes[i].as_bytes();
        if bytes.is_empty() || bytes.len() > MAX_SCOPE_LEN {
            return false;
        }
        let mut j = 0;
        while j < bytes.len() {
            let b = bytes[j];
            if !(b == 0x21 || (b >= 0x23 && b <= 0x5B) || (b >= 0x5D && b <= 0x7E)) {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Scopes an axum handler requires, for the [`Scoped`] extractor.
///
/// ```
/// use tower_api_key::{RequiredScopes, Scoped};
///
/// struct InvoicesWrite;
/// impl RequiredScopes for InvoicesWrite {
///     const SCOPES: &'static [&'static str] = &["invoices:write"];
/// }
///
/// async fn create_invoice(Scoped(principal, ..): Scoped<InvoicesWrite>) -> String {
///     format!("created by {}", principal.id())
/// }
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub trait RequiredScopes: Send + Sync + 'static {
    /// The scopes: at least one, each 1 to 128 visible ASCII characters without spaces, `"` or `\\`. An invalid
    /// list is a compile error where [`Scoped`] is used with it, not a 403 at run time:
    ///
    /// ```compile_fail
    /// use tower_api_key::{RequiredScopes, Scoped};
    /// use axum::extract::FromRequestParts;
    /// struct Broken;
    /// impl RequiredScopes for Broken {
    ///     const SCOPES: &'static [&'static str] = &["has space"];
    /// }
    /// let (mut parts, ()) = http::Request::new(()).into_parts();
    /// let _ = Scoped::<Broken>::from_request_parts(&mut parts, &());
    /// ```
    const SCOPES: &'static [&'static str];
    /// All of them (default) or any one.
    const MATCH: ScopeMatch = ScopeMatch::All;
}

/// An axum extractor: the request's [`Principal`], if it has the scopes of `T`; otherwise 403
/// `insufficient_scope` (or 401 without a principal).
///
/// ```
/// # use tower_api_key::{RequiredScopes, Scoped};
/// struct Admin;
/// impl RequiredScopes for Admin { const SCOPES: &'static [&'static str] = &["keys:admin"]; }
/// async fn handler(Scoped(principal, _): Scoped<Admin>) -> String { principal.id().to_owned() }
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub struct Scoped<T>(pub Principal, pub std::marker::PhantomData<T>);

#[cfg(feature = "axum")]
impl<T> fmt::Debug for Scoped<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("Scoped").field(&self.0).finish()
    }
}

/// Rejection of [`Scoped`]: 401 or 403 with `WWW-Authenticate`, as a problem-details response.
///
/// ```
/// use axum::response::IntoResponse;
/// # use tower_api_key::*;
/// let r = ScopeRejection(Rejection::new(RejectReason::InsufficientScope));
/// assert_eq!(r.into_response().status(), 403);
/// ```
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
#[derive(Debug)]
pub struct ScopeRejection(pub Rejection);

#[cfg(feature = "axum")]
impl axum_core::response::IntoResponse for ScopeRejection {
    fn into_response(self) -> axum_core::response::Response {
        self.0.into_response()
    }
}

#[cfg(feature = "axum")]
impl<T: RequiredScopes, S: Send + Sync> axum_core::extract::FromRequestParts<S> for Scoped<T> {
    type Rejection = ScopeRejection;

    async fn from_request_parts(parts: &mut http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        const {
            assert!(
                scope_list_is_valid(T::SCOPES),
                "RequiredScopes::SCOPES must hold at least one scope, each 1 to 128 visible ASCII characters \
                 without spaces, '\"' or '\\'"
            );
        }
        static REQS: std::sync::OnceLock<
            std::sync::Mutex<std::collections::HashMap<std::any::TypeId, Arc<Requirement>>>,
        > = std::sync::OnceLock::new();
        let req = {
            let map = REQS.get_or_init(Default::default);
            let mut map = map.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            match map.get(&std::any::TypeId::of::<T>()) {
                Some(r) => r.clone(),
                None => {
                    #[allow(clippy::expect_used)]
                    let r = Requirement::new(T::SCOPES, T::MATCH, None).expect("checked when compiled");
                    let r = Arc::new(r);
                    map.insert(std::any::TypeId::of::<T>(), r.clone());
                    r
                }
            }
        };
        let principal = parts.extensions.get::<Principal>();
        req.check(principal, GrpcKind::of(&parts.headers)).map_err(ScopeRejection)?;
        Ok(Scoped(
            principal.cloned().ok_or(ScopeRejection(Rejection::new(RejectReason::NoCredential)))?,
            std::marker::PhantomData,
        ))
    }
}
