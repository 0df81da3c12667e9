//! Authentication events (issued, verified, rejected, revoked, rotated), for audit logs and metrics.
//!
//! Events carry the key's public id, never the key. Hand a sink to the layer with
//! [`crate::ApiKeyLayer::events`] and to the memory store with [`crate::KeyManager::events`].
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use tower_api_key::{ApiKeyLayer, AuthEvent, MemoryStore};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let log = seen.clone();
//! let layer = ApiKeyLayer::new(MemoryStore::new()).events(move |event: &AuthEvent<'_>| {
//!     log.lock().unwrap().push(event.name());
//! });
//! ```

use std::fmt::Debug;

use crate::key::{KeyId, KeyKind};
use crate::reject::RejectReason;

/// Something that happened to a key. Borrowed: copy what you keep.
///
/// ```
/// let id = tower_api_key::KeyId::random();
/// let e = tower_api_key::AuthEvent::Revoked { key_id: &id };
/// assert_eq!(e.name(), "revoked");
/// assert_eq!(e.key_id(), Some(&id));
/// ```
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub enum AuthEvent<'a> {
    /// A key was issued or imported.
    Issued {
        /// Its id.
        key_id: &'a KeyId,
        /// Its kind.
        kind: KeyKind,
    },
    /// A request was authenticated.
    Verified {
        /// The key's id.
        key_id: &'a KeyId,
        /// Its kind.
        kind: KeyKind,
    },
    /// A request was rejected.
    Rejected {
        /// The key's id, when the credential got far enough to name one.
        key_id: Option<&'a KeyId>,
        /// Why (the client is only told the RFC 6750 error code).
        reason: RejectReason,
    },
    /// A key was revoked.
    Revoked {
        /// Its id.
        key_id: &'a KeyId,
    },
    /// A key's name, scopes, expiry, metadata, enabled flag or rate limit changed.
    Updated {
        /// The key.
        key_id: &'a KeyId,
    },
    /// A key was rotated.
    Rotated {
        /// The old key (works until its grace period ends).
        old: &'a KeyId,
        /// Its successor.
        new: &'a KeyId,
    },
}

impl AuthEvent<'_> {
    /// `issued`, `verified`, `rejected`, `revoked` or `rotated`.
    ///
    /// ```
    /// let id = tower_api_key::KeyId::random();
    /// assert_eq!(tower_api_key::AuthEvent::Revoked { key_id: &id }.name(), "revoked");
    /// ```
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Issued { .. } => "issued",
            Self::Verified { .. } => "verified",
            Self::Rejected { .. } => "rejected",
            Self::Revoked { .. } => "revoked",
            Self::Updated { .. } => "updated",
            Self::Rotated { .. } => "rotated",
        }
    }

    /// The key concerned (the old one, for a rotation).
    ///
    /// ```
    /// let id = tower_api_key::KeyId::random();
    /// let e = tower_api_key::AuthEvent::Rotated { old: &id, new: &id };
    /// assert_eq!(e.key_id(), Some(&id));
    /// ```
    #[must_use]
    pub fn key_id(&self) -> Option<&KeyId> {
        match self {
            Self::Issued { key_id, .. }
            | Self::Verified { key_id, .. }
            | Self::Revoked { key_id }
            | Self::Updated { key_id } => Some(key_id),
            Self::Rejected { key_id, .. } => *key_id,
            Self::Rotated { old, .. } => Some(old),
        }
    }
}

/// Receives [`AuthEvent`]s. Called on the request path: keep it quick (send to a channel for slow work).
/// Implemented for closures `Fn(&AuthEvent<'_>)`.
///
/// ```
/// use tower_api_key::{AuthEvent, AuthEventSink};
/// #[derive(Debug)]
/// struct Audit;
/// impl AuthEventSink for Audit {
///     fn on_event(&self, event: &AuthEvent<'_>) {
///         tracing::info!(event = event.name(), key_id = ?event.key_id(), "audit");
///     }
/// }
/// ```
pub trait AuthEventSink: Send + Sync + 'static {
    /// Handles one event.
    ///
    /// ```
    /// use tower_api_key::{AuthEvent, AuthEventSink, KeyId};
    /// let sink = |e: &AuthEvent<'_>| assert_eq!(e.name(), "revoked");
    /// sink.on_event(&AuthEvent::Revoked { key_id: &KeyId::random() });
    /// ```
    fn on_event(&self, event: &AuthEvent<'_>);
}

impl<F> AuthEventSink for F
where
    F: Fn(&AuthEvent<'_>) + Send + Sync + 'static,
{
    fn on_event(&self, event: &AuthEvent<'_>) {
        self(event);
    }
}
