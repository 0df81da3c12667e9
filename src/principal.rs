//! [`Principal`]: who a request acts for, inserted into the request extensions by the layer.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use crate::key::{KeyId, KeyKind, KeyRecord, Scopes};
use crate::reject::Challenges;

/// Where a credential came from.
///
/// ```
/// assert_eq!(tower_api_key::CredentialSource::Bearer.as_str(), "bearer");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CredentialSource {
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: <custom scheme>`.
    Scheme,
    /// `API-Key` header.
    ApiKeyHeader,
    /// `X-API-Key` header (deprecated).
    XApiKeyHeader,
}

impl CredentialSource {
    /// `bearer`, `scheme`, `api-key` or `x-api-key`.
    ///
    /// ```
    /// assert_eq!(tower_api_key::CredentialSource::XApiKeyHeader.as_str(), "x-api-key");
    /// ```
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Bearer => "bearer",
            Self::Scheme => "scheme",
            Self::ApiKeyHeader => "api-key",
            Self::XApiKeyHeader => "x-api-key",
        }
    }
}

/// The authenticated caller: user-level (acts for a person) or system-level (a service), with the key's public
/// id, name and scopes. Cheap to clone (a shared handle to the key's record).
///
/// The layer inserts it into the request extensions. Handlers read it with `request.extensions().get::<Principal>()`
/// (hyper, tonic) or take it as an axum extractor (feature `axum`): `Principal` (rejects with 500 if the layer is
/// missing) or `Option<Principal>` (for [optional authentication](crate::ApiKeyLayer::optional)).
///
/// ```
/// use tower_api_key::{Identity, Principal};
///
/// async fn whoami(principal: Principal) -> String {
///     match principal.identity() {
///         Identity::User { user_id } => format!("user {user_id} via key {}", principal.key_id()),
///         Identity::System { service } => format!("service {service}"),
///     }
/// }
/// ```
#[derive(Clone)]
pub struct Principal {
    record: Arc<KeyRecord>,
    source: Option<CredentialSource>,
    /// The authenticating layer's `WWW-Authenticate` challenges, so scope guards answer with the same realm.
    challenges: Option<Arc<Challenges>>,
}

/// Who a [`Principal`] is, by kind.
///
/// ```
/// use tower_api_key::Identity;
/// let id = Identity::User { user_id: "alice" };
/// assert_eq!(id.kind(), tower_api_key::KeyKind::User);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity<'a> {
    /// A user-level key, acting for this user.
    User {
        /// The user id.
        user_id: &'a str,
    },
    /// A system-level key, acting for this service.
    System {
        /// The service name.
        service: &'a str,
    },
}

impl Identity<'_> {
    /// The kind.
    ///
    /// ```
    /// let id = tower_api_key::Identity::System { service: "billing" };
    /// assert_eq!(id.kind(), tower_api_key::KeyKind::System);
    /// ```
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        match self {
            Self::User { .. } => KeyKind::User,
            Self::System { .. } => KeyKind::System,
        }
    }
}

impl Principal {
    /// A principal for `record` (the layer builds these; useful in tests of handlers).
    ///
    /// ```
    /// use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "alice"));
    /// assert_eq!(p.id(), "alice");
    /// ```
    #[must_use]
    pub fn from_record(record: impl Into<Arc<KeyRecord>>) -> Self {
        Self { record: record.into(), source: None, challenges: None }
    }

    pub(crate) fn new(record: Arc<KeyRecord>, source: CredentialSource, challenges: &Arc<Challenges>) -> Self {
        // Scope guards fall back to the default realm's challenges: sharing them would cost two atomic counts a
        // request for nothing.
        Self { record, source: Some(source), challenges: (!challenges.is_default).then(|| challenges.clone()) }
    }

    pub(crate) fn challenges(&self) -> Option<&Arc<Challenges>> {
        self.challenges.as_ref()
    }

    /// Where the layer found the key. A service can use it to tell clients still sending the deprecated
    /// `X-API-Key` header to move on, for example with a `Deprecation` response header.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.source(), None); // not built by the layer
    /// ```
    #[must_use]
    pub fn source(&self) -> Option<CredentialSource> {
        self.source
    }

    /// User or service, with its id.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::System, "billing"));
    /// assert_eq!(p.identity(), Identity::System { service: "billing" });
    /// ```
    #[must_use]
    pub fn identity(&self) -> Identity<'_> {
        match self.record.kind {
            KeyKind::User => Identity::User { user_id: &self.record.owner },
            KeyKind::System => Identity::System { service: &self.record.owner },
        }
    }

    /// User-level or system-level.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.kind(), KeyKind::User);
    /// ```
    #[must_use]
    pub fn kind(&self) -> KeyKind {
        self.record.kind
    }

    /// The user id or service name.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.id(), "a");
    /// ```
    #[must_use]
    pub fn id(&self) -> &str {
        &self.record.owner
    }

    /// The user id, for a user-level key.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.user_id(), Some("a"));
    /// assert_eq!(p.service(), None);
    /// ```
    #[must_use]
    pub fn user_id(&self) -> Option<&str> {
        (self.record.kind == KeyKind::User).then_some(&*self.record.owner)
    }

    /// The service name, for a system-level key.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::System, "s"));
    /// assert_eq!(p.service(), Some("s"));
    /// ```
    #[must_use]
    pub fn service(&self) -> Option<&str> {
        (self.record.kind == KeyKind::System).then_some(&*self.record.owner)
    }

    /// The key's public id (safe to log).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let id = KeyId::random();
    /// let p = Principal::from_record(KeyRecord::new(id, KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.key_id(), &id);
    /// ```
    #[must_use]
    pub fn key_id(&self) -> &KeyId {
        &self.record.id
    }

    /// The key's name.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a").with_name("ci"));
    /// assert_eq!(p.key_name(), "ci");
    /// ```
    #[must_use]
    pub fn key_name(&self) -> &str {
        &self.record.name
    }

    /// The key's scopes.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a").with_scopes(["r"])?);
    /// assert!(p.scopes().allows("r"));
    /// # Ok::<(), ConfigError>(())
    /// ```
    #[must_use]
    pub fn scopes(&self) -> &Scopes {
        &self.record.scopes
    }

    /// The key's metadata.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a").with_metadata("t", "x"));
    /// assert_eq!(p.metadata()["t"], "x");
    /// ```
    #[must_use]
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.record.metadata
    }

    /// When the key expires, if it does.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert!(p.expires_at().is_none());
    /// ```
    #[must_use]
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.record.expires_at
    }

    /// The record the key was verified against (never holds the key; its digest is not secret but is not needed).
    ///
    /// ```
    /// # use tower_api_key::*;
    /// let p = Principal::from_record(KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "a"));
    /// assert_eq!(p.record().owner, "a");
    /// ```
    #[must_use]
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }
}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Principal")
            .field("kind", &self.record.kind)
            .field("id", &self.record.owner)
            .field("key_id", &self.record.id)
            .field("key_name", &self.record.name)
            .field("scopes", &self.record.scopes)
            .finish()
    }
}

#[cfg(feature = "axum")]
mod axum_impl {
    use super::Principal;
    use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
    use axum_core::response::{IntoResponse, Response};
    use http::StatusCode;
    use http::request::Parts;
    use std::convert::Infallible;

    /// The request has no [`Principal`]: the route is not behind [`crate::ApiKeyLayer`], or the layer is in
    /// optional mode and the handler should take `Option<Principal>`. A server bug, so it answers 500.
    ///
    /// ```
    /// let text = tower_api_key::MissingPrincipal.to_string();
    /// assert!(text.contains("ApiKeyLayer"));
    /// ```
    #[derive(Debug, Clone, Copy, thiserror::Error)]
    #[error(
        "no Principal in the request extensions: is `ApiKeyLayer` installed on this route (`.layer(ApiKeyLayer::new(store))`)? \
         In optional mode, take `Option<Principal>` instead"
    )]
    pub struct MissingPrincipal;

    impl IntoResponse for MissingPrincipal {
        fn into_response(self) -> Response {
            tracing::error!("{self}");
            (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
        }
    }

    impl<S: Send + Sync> FromRequestParts<S> for Principal {
        type Rejection = MissingPrincipal;

        async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
            parts.extensions.get::<Principal>().cloned().ok_or(MissingPrincipal)
        }
    }

    impl<S: Send + Sync> OptionalFromRequestParts<S> for Principal {
        type Rejection = Infallible;

        async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, Self::Rejection> {
            Ok(parts.extensions.get::<Principal>().cloned())
        }
    }
}

#[cfg(feature = "axum")]
pub use axum_impl::MissingPrincipal;
