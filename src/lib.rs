//! Tower middleware for API key authentication.
//!
//! # Overview
//!
//! [`ApiKeyLayer`] reads the key from the request headers in priority order, checks its shape and checksum
//! offline, looks it up through an async [`KeyStore`], verifies its SHA-256 digest in constant time, checks
//! revocation, expiry, scopes and rate limits, and inserts a typed [`Principal`] (user-level or system-level) into
//! the request extensions. It works with axum, hyper and tonic.
//!
//! | step | what happens | on failure |
//! |---|---|---|
//! | extract | `Authorization: Bearer` > `Authorization: <custom scheme>` > `API-Key` > `X-API-Key` ([`extract`]) | 401, or 400 `invalid_request` |
//! | pre-check | length bound; for keys of the crate's format ([`KeyFormat`]), shape and CRC32 | 401 `invalid_token`, no hashing, no store call |
//! | look up | one [`KeyStore`] call, by public id or by SHA-256 of an opaque key | 503 if the store fails or is slow (fail closed) |
//! | verify | SHA-256 of the secret vs. the stored digest, constant time; revoked / disabled / expired / rotated out | 401 `invalid_token` |
//! | authorize | per-key rate limit (feature `rate-limit`); scopes with [`RequireScopesLayer`] | 429 / 403 `insufficient_scope` |
//! | inject | [`Principal`] into the request extensions | |
//!
//! gRPC requests get trailers-only responses with `grpc-status` 16, 7, 8 or 14 instead ([`reject`]).
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Json, Router};
//! use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey, Principal};
//!
//! async fn whoami(principal: Principal) -> Json<serde_json::Value> {
//!     Json(serde_json::json!({
//!         "kind": principal.kind().as_str(),
//!         "id": principal.id(),
//!         "key_id": principal.key_id().as_str(),
//!     }))
//! }
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = MemoryStore::new();
//! let issued = store.add(NewKey::user("alice").scopes(["read"])?)?;
//! // Show `issued.key` to its owner once; the store keeps only its digest.
//!
//! let app: Router = Router::new()
//!     .route("/whoami", get(whoami))
//!     .layer(ApiKeyLayer::new(store).scheme("Api-Key")?);
//! # Ok(()) }
//! ```
//!
//! # Feature flags
//!
//! | feature | default | what it adds |
//! |---|---|---|
//! | `axum` | yes | `Principal` and `Scoped` as axum extractors; axum body support for rejections |
//! | `tonic` | yes | tonic body support for rejections (gRPC services) |
//! | `serde` | yes | serde for records; the `FileStore` (TOML / JSON / environment variable) |
//! | `admin` | yes | the key-management HTTP API (module `admin`) |
//! | `rate-limit` | yes | per-key GCRA rate limits with `governor` |
//! | `metrics` | no | outcome counters through the `metrics` crate |
//! | `test-util` | no | the store conformance suite (module `conformance`) and `ManualClock` |
//! | `postgres` | no | `PostgresStore` (sqlx); with `cache`, `PostgresBus` (LISTEN/NOTIFY invalidation) |
//! | `redis` | no | `RedisStore` (Redis and Redis Cluster), `RedisRateLimiter` (limits shared by every instance); with `cache`, `RedisBus` (pub/sub invalidation) |
//! | `cache` | no | `CachedStore` (moka) in front of any store, and the invalidation bus traits |
//!
//! # Where things are
//!
//! | module | what |
//! |---|---|
//! | `key` | the key types, plain values: [`KeyId`], [`KeyKind`], [`KeyFormat`], [`ApiKey`], [`KeyDigest`], [`KeyRecord`], [`Scopes`], [`RateLimit`], [`NewKey`], [`IssuedKey`] |
//! | [`store`] | the storage contract [`KeyStore`] and the stores: [`MemoryStore`], `FileStore`, `PostgresStore`, `RedisStore`, `CachedStore` |
//! | `manage` | [`KeyManager`]: issue, import, list, update, revoke, rotate, for every store |
//! | `layer` | [`ApiKeyLayer`] and its request pipeline ([`extract`], [`transport`]), [`UsageTracker`] |
//! | [`reject`] | [`Rejection`] and the responses it becomes |
//! | `principal`, [`scope`] | what handlers receive ([`Principal`]) and scope checks |
//!
//! Every public item is re-exported here, at the crate root.
//!
//! # Security
//!
//! What is guaranteed, and what is best effort:
//!
//! * **Keys are hashed at rest.** Stores keep the public id and the SHA-256 digest of the secret, never the key.
//!   Keys of the crate's format carry at least 142 bits from the OS CSPRNG, so a plain (unsalted) SHA-256 is the
//!   right tool: a dump of the store gives no usable key. Opaque keys are only as strong as whoever issued them.
//! * **Constant-time verification.** The digest of the presented secret is compared with the stored digest with
//!   [`subtle`], as four 64-bit words, with no early return. Lookups happen by public id (not secret) or by digest
//!   (whose prefix tells an attacker nothing about the key). `subtle` and the compiler are best effort against
//!   timing; `benches/constant_time.rs` measures it (dudect-style Welch t-test).
//! * **No key material leaks.** [`ApiKey`] and every type that borrows a key redact it in `Debug`; the issued key
//!   is zeroized on drop; credential headers are marked sensitive; logs, events, errors and response bodies carry
//!   at most the public key id.
//! * **Bad input gets a 4xx**, never a panic or a 5xx, with bounded work: the key length is capped before any
//!   hashing, and keys of the crate's format are checked (CRC32) before any store call.
//! * **Fail closed.** A store error or a store slower than [`ApiKeyLayer::store_timeout`] gives 503 and nothing
//!   goes through. The timeout holds on any runtime: on a Tokio runtime built without `enable_time`, or with no
//!   runtime at all, the layer races the lookup against a timer on a small background runtime it starts once (on
//!   such a runtime, the first lookup probes for a timer and Tokio prints that probe's panic message once; nothing
//!   panics for the caller).
//! * **Bounded logs.** Each rejection is logged at debug level; at info, the layer writes at most one summary per
//!   [`ApiKeyLayer::log_period`] with the counts per reason, and a failing store at most one error line per
//!   period. A flood of bad requests cannot fill a disk.
//! * **Transport.** Keys are bearer secrets: send them only over TLS. [`ApiKeyLayer::require_https`] enforces it,
//!   trusting only what the server knows (the [`Secure`] marker your TLS acceptor inserts, or, when you say a proxy
//!   sets them, the proxy's headers), never the scheme a client writes in its request.

#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "admin")]
#[cfg_attr(docsrs, doc(cfg(feature = "admin")))]
pub mod admin;
mod clock;
#[cfg(any(test, feature = "test-util"))]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
pub mod conformance;
#[cfg(feature = "console")]
#[cfg_attr(docsrs, doc(cfg(feature = "console")))]
pub mod console;
mod error;
pub mod events;
mod key;
mod layer;
mod manage;
mod principal;
pub mod reject;
pub mod scope;
pub mod store;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use async_trait::async_trait;
#[cfg(feature = "test-util")]
pub use clock::ManualClock;
pub use clock::{Clock, SystemClock};
pub use error::ConfigError;
pub use events::{AuthEvent, AuthEventSink};
pub use key::{
    ApiKey, CHECKSUM_LEN, Classified, ID_LEN, InvalidDigest, InvalidKeyId, IssuedKey, KeyDigest, KeyFormat, KeyId,
    KeyInfo, KeyKind, KeyRecord, KeyStatus, MAX_EXPIRY_SINCE_EPOCH, MAX_METADATA_ENTRIES, MAX_METADATA_LEN,
    MAX_NAME_LEN, MAX_OWNER_LEN, MAX_PREFIX_LEN, MAX_SCOPE_LEN, MAX_SCOPES, NewKey, ParseKeyKindError, ParsedKey,
    RateLimit, SECRET_LEN, Scopes,
};
#[cfg(feature = "redis")]
pub use layer::RedisRateLimiter;
pub use layer::extract::{self, API_KEY, DEFAULT_MAX_KEY_LEN, X_API_KEY};
pub use layer::transport::{self, HttpsPolicy, Secure};
pub use layer::{
    ApiKeyAuth, ApiKeyLayer, DEFAULT_LOG_PERIOD, DEFAULT_MAX_PENDING_KEYS, DEFAULT_STORE_TIMEOUT, ResponseFuture,
    SharedRateLimiter, UsageTracker,
};
pub use manage::KeyManager;
#[cfg(feature = "axum")]
pub use principal::MissingPrincipal;
pub use principal::{CredentialSource, Identity, Principal};
pub use reject::{
    DEFAULT_REALM, DefaultRejection, ErrorCode, OnRejection, RateLimitInfo, RejectReason, Rejection, RejectionBody,
};
pub use scope::{RequireScopes, RequireScopesLayer, ScopeMatch};
#[cfg(feature = "axum")]
pub use scope::{RequiredScopes, ScopeRejection, Scoped};
#[cfg(all(feature = "cache", feature = "postgres"))]
pub use store::PostgresBus;
#[cfg(all(feature = "cache", feature = "redis"))]
pub use store::RedisBus;
pub use store::{
    BoxError, HourlyUsage, KeyStore, KeyUpdate, ListQuery, Lookup, LookupResult, MAX_PAGE, MemoryStore, Page,
    StoreError, USAGE_HOURS_KEPT, Usage,
};
#[cfg(feature = "cache")]
pub use store::{CacheConfig, CachedStore, IdFilter, Invalidation, InvalidationBus, Invalidator, Subscription};
#[cfg(feature = "serde")]
pub use store::{FileStore, FileStoreError};
#[cfg(feature = "postgres")]
pub use store::{PostgresError, PostgresStore};
#[cfg(feature = "redis")]
pub use store::{RedisStore, RedisStoreError};
