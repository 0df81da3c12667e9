//! The layer and its request pipeline: [`ApiKeyLayer`] (configuration, the `tower::Layer`) makes [`ApiKeyAuth`]
//! (the service), which runs the pipeline for every request.
//!
//! | file | step |
//! |---|---|
//! | `extract` | 1. read the credential from the headers, in priority order |
//! | `pipeline` | 2. pre-check, 3. look up, 4. verify, 5. authorize, 6. inject or 7. reject |
//! | `limiter` | 5. the per-key rate limit |
//! | `timeout` | the bound on a store lookup (fail closed) |
//! | `service`, `future` | the tower `Service` and its response future |
//! | `transport` | the HTTPS check, before anything else |
//! | `usage`, `report`, `deprecation` | after the verdict: usage counts, logs, deprecation headers |

pub(crate) mod deprecation;
pub mod extract;
mod future;
#[cfg(feature = "rate-limit")]
mod limiter;
mod pipeline;
#[cfg(feature = "redis")]
mod redis_limit;
mod report;
mod service;
mod shared_limit;
mod timeout;
pub mod transport;
mod usage;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tower_layer::Layer;

use crate::clock::{Clock, SystemClock};
use crate::error::ConfigError;
use crate::events::AuthEventSink;
use crate::key::KeyFormat;
use crate::reject::{Challenges, DEFAULT_REALM, DefaultRejection};
use crate::store::KeyStore;
use deprecation::Deprecation;
use extract::{Extractor, validate_scheme};
pub use future::ResponseFuture;
use pipeline::Config;
pub use pipeline::DEFAULT_STORE_TIMEOUT;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis_limit::RedisRateLimiter;
pub use report::DEFAULT_LOG_PERIOD;
use report::Report;
pub use service::ApiKeyAuth;
pub use shared_limit::SharedRateLimiter;
use transport::HttpsPolicy;
pub use usage::{DEFAULT_MAX_PENDING_KEYS, UsageTracker};

/// The API key authentication layer. Wrap a service (an axum `Router`, a hyper service, a tonic server) and every
/// request must carry a valid key; the handler receives the [`crate::Principal`] in the request extensions.
///
/// Builder methods take `self` by value; those that can fail return `Result<Self, ConfigError>`.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower_api_key::{ApiKeyLayer, MemoryStore, Principal};
///
/// async fn whoami(principal: Principal) -> String {
///     principal.id().to_owned()
/// }
///
/// let store = MemoryStore::new();
/// let layer = ApiKeyLayer::new(store)
///     .realm("example")?
///     .scheme("Api-Key")?;
/// let app: Router = Router::new().route("/whoami", get(whoami)).layer(layer);
/// # Ok::<(), tower_api_key::ConfigError>(())
/// ```
#[derive(Clone)]
#[must_use]
pub struct ApiKeyLayer<R = DefaultRejection> {
    pub(crate) config: Arc<Config>,
    pub(crate) on_rejection: R,
}

impl<R> fmt::Debug for ApiKeyLayer<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKeyLayer").field("config", &self.config).finish_non_exhaustive()
    }
}

impl ApiKeyLayer {
    /// A layer over `store` with the defaults: all four header sources on, no custom scheme, realm `api`, keys up
    /// to 256 bytes, the default [`KeyFormat`], opaque keys accepted, a 2-second store timeout.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new());
    /// ```
    pub fn new(store: impl KeyStore) -> Self {
        Self::from_shared(Arc::new(store))
    }

    /// A layer over an already shared store.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let store: Arc<dyn tower_api_key::KeyStore> = Arc::new(tower_api_key::MemoryStore::new());
    /// let layer = tower_api_key::ApiKeyLayer::from_shared(store);
    /// ```
    pub fn from_shared(store: Arc<dyn KeyStore>) -> Self {
        #[allow(clippy::expect_used)]
        let challenges = Challenges::new(DEFAULT_REALM).expect("the default realm is valid");
        Self {
            config: Arc::new(Config {
                store,
                extractor: Extractor::default(),
                format: KeyFormat::default(),
                accept_opaque: true,
                challenges: Arc::new(challenges),
                store_timeout: DEFAULT_STORE_TIMEOUT,
                clock: Arc::new(SystemClock),
                events: None,
                usage: None,
                optional: false,
                pass_foreign_bearer: false,
                strip_credentials: false,
                allow_preflight: false,
                https: None,
                deprecation: None,
                report: Arc::new(Report::new(DEFAULT_LOG_PERIOD)),
                shared_limit: None,
                #[cfg(feature = "rate-limit")]
                rate_limiter: None,
            }),
            on_rejection: DefaultRejection,
        }
    }
}

impl<R> ApiKeyLayer<R> {
    fn edit(mut self, f: impl FnOnce(&mut Config)) -> Self {
        f(Arc::make_mut(&mut self.config));
        self
    }

    /// The realm sent in `WWW-Authenticate: Bearer realm="…"`.
    ///
    /// # Errors
    /// [`ConfigError::InvalidRealm`] for control characters, `"` or `\`.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).realm("billing-api")?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn realm(self, realm: &str) -> Result<Self, ConfigError> {
        let challenges = Arc::new(Challenges::new(realm)?);
        Ok(self.edit(|c| c.challenges = challenges))
    }

    /// Accepts `Authorization: <name> <key>` for a custom scheme (case-insensitive), below `Bearer` and above the
    /// `API-Key` header. Call it once per scheme.
    ///
    /// # Errors
    /// [`ConfigError::InvalidScheme`] unless `name` is a non-empty RFC 9110 token other than `Bearer`.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new())
    ///     .scheme("Api-Key")?
    ///     .scheme("Token")?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn scheme(self, name: &str) -> Result<Self, ConfigError> {
        validate_scheme(name)?;
        Ok(self.edit(|c| {
            if !c.extractor.schemes.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                c.extractor.schemes.push(name.into());
            }
        }))
    }

    fn toggle(self, f: impl FnOnce(&mut Extractor)) -> Result<Self, ConfigError> {
        let mut extractor = self.config.extractor.clone();
        f(&mut extractor);
        if !extractor.any_enabled() {
            return Err(ConfigError::NoSources);
        }
        Ok(self.edit(|c| c.extractor = extractor))
    }

    /// Turns `Authorization: Bearer` on or off (on by default).
    ///
    /// # Errors
    /// [`ConfigError::NoSources`] if that would leave no source enabled (add a scheme first).
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).bearer(false)?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn bearer(self, on: bool) -> Result<Self, ConfigError> {
        self.toggle(|e| e.bearer = on)
    }

    /// Turns the `API-Key` header on or off (on by default).
    ///
    /// # Errors
    /// [`ConfigError::NoSources`] if that would leave no source enabled.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).api_key_header(false)?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn api_key_header(self, on: bool) -> Result<Self, ConfigError> {
        self.toggle(|e| e.api_key = on)
    }

    /// Turns the deprecated `X-API-Key` header on or off (on by default, with a warning logged per use).
    ///
    /// # Errors
    /// [`ConfigError::NoSources`] if that would leave no source enabled.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).x_api_key_header(false)?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn x_api_key_header(self, on: bool) -> Result<Self, ConfigError> {
        self.toggle(|e| e.x_api_key = on)
    }

    /// Longest accepted key, in bytes (default 256). Longer keys are rejected before hashing or a store call.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] unless 1 ≤ `max` ≤ 8192.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).max_key_len(128)?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn max_key_len(self, max: usize) -> Result<Self, ConfigError> {
        if !(1..=8192).contains(&max) {
            return Err(ConfigError::OutOfRange("max_key_len must be between 1 and 8192"));
        }
        Ok(self.edit(|c| c.extractor.max_len = max))
    }

    /// The key format (prefixes) of the keys your store issued. Keys with one of its prefixes are checked
    /// offline (shape, CRC32) and looked up by id; all other keys are opaque.
    ///
    /// ```
    /// use tower_api_key::{ApiKeyLayer, KeyFormat, KeyManager, MemoryStore};
    /// let format = KeyFormat::new().user_prefix("acme_user")?;
    /// let store = MemoryStore::new();
    /// let keys = KeyManager::new(store.clone()).key_format(format.clone()); // issues acme_user_… keys
    /// let layer = ApiKeyLayer::new(store).key_format(format);
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn key_format(self, format: KeyFormat) -> Self {
        self.edit(|c| c.format = format)
    }

    /// Whether keys not of the crate's format are looked up by digest (on by default). Turn it off when every key
    /// was issued by this crate, so that anything else is rejected without a store call.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).accept_opaque(false);
    /// ```
    pub fn accept_opaque(self, on: bool) -> Self {
        self.edit(|c| c.accept_opaque = on)
    }

    /// How long a store lookup may take before the request is answered 503 (default 2 s). Needs a Tokio runtime
    /// with the time driver, as axum, hyper-util and tonic servers have.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new())
    ///     .store_timeout(std::time::Duration::from_millis(250));
    /// ```
    pub fn store_timeout(self, timeout: Duration) -> Self {
        self.edit(|c| c.store_timeout = timeout)
    }

    /// The clock used for expiry checks (tests use `ManualClock`, feature `test-util`).
    ///
    /// ```
    /// use tower_api_key::{ApiKeyLayer, MemoryStore, SystemClock};
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).clock(SystemClock);
    /// ```
    pub fn clock(self, clock: impl Clock) -> Self {
        self.edit(|c| c.clock = Arc::new(clock))
    }

    /// Sends `verified` and `rejected` events to `sink`.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new())
    ///     .events(|e: &tower_api_key::AuthEvent<'_>| tracing::info!(event = e.name(), key_id = ?e.key_id()));
    /// ```
    pub fn events(self, sink: impl AuthEventSink) -> Self {
        let sink: Arc<dyn AuthEventSink> = Arc::new(sink);
        self.edit(|c| c.events = Some(sink))
    }

    /// Records each successful use (count and last-used time) in `tracker`, which flushes to the store in batches.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use tower_api_key::{ApiKeyLayer, MemoryStore, UsageTracker};
    /// let store = MemoryStore::new();
    /// let tracker = UsageTracker::spawn(store.clone(), std::time::Duration::from_secs(10));
    /// let layer = ApiKeyLayer::new(store).usage(tracker.clone());
    /// # tracker.shutdown().await; }
    /// ```
    pub fn usage(self, tracker: UsageTracker) -> Self {
        self.edit(|c| c.usage = Some(tracker))
    }

    /// Optional authentication: a request with no credential at all goes through with no [`crate::Principal`]
    /// (handlers take `Option<Principal>`); a request with a bad credential is still rejected.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).optional();
    /// ```
    pub fn optional(self) -> Self {
        self.edit(|c| c.optional = true)
    }

    /// Lets `Authorization: Bearer` values that are not of this crate's key format (no known prefix, e.g. a JWT)
    /// through untouched and unauthenticated, for a later layer to check. Implies such values are never looked up
    /// as opaque keys.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).pass_through_foreign_bearer();
    /// ```
    pub fn pass_through_foreign_bearer(self) -> Self {
        self.edit(|c| c.pass_foreign_bearer = true)
    }

    /// Removes the credential headers (`Authorization` with our schemes, `API-Key`, `X-API-Key`) before the inner
    /// service sees the request, so a proxy never forwards the key upstream.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).strip_credentials();
    /// ```
    pub fn strip_credentials(self) -> Self {
        self.edit(|c| c.strip_credentials = true)
    }

    /// Lets CORS preflight requests (`OPTIONS` with `Access-Control-Request-Method`) through without a key, as
    /// browsers never send credentials on them. Put your CORS layer outside this one.
    ///
    /// ```
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new()).allow_cors_preflight();
    /// ```
    pub fn allow_cors_preflight(self) -> Self {
        self.edit(|c| c.allow_preflight = true)
    }

    /// Rejects requests not made over HTTPS (403, gRPC 7). See [`HttpsPolicy`] for when proxy headers are trusted.
    ///
    /// ```
    /// use tower_api_key::{ApiKeyLayer, HttpsPolicy, MemoryStore};
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).require_https(HttpsPolicy::behind_proxy());
    /// ```
    pub fn require_https(self, policy: HttpsPolicy) -> Self {
        self.edit(|c| c.https = Some(policy))
    }

    /// Per-key rate limiting (GCRA): the limit of the key's record, or `default` for keys without one (`None`:
    /// such keys are not limited).
    ///
    /// ```
    /// use tower_api_key::{ApiKeyLayer, MemoryStore, RateLimit};
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).rate_limit(RateLimit::per_second(50));
    /// ```
    #[cfg(feature = "rate-limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "rate-limit")))]
    pub fn rate_limit(self, default: Option<crate::RateLimit>) -> Self {
        let limiter = limiter::KeyRateLimiter::new(default);
        self.edit(|c| c.rate_limiter = Some(limiter))
    }

    /// Answers requests that sent their key in the deprecated `X-API-Key` header with RFC 9745 headers, so their
    /// clients learn to move on: `Deprecation: @<since, as seconds since the epoch>` and, with `link`,
    /// `Link: <link>; rel="deprecation"` pointing at what to do instead. Other requests are untouched.
    ///
    /// # Errors
    /// [`ConfigError::InvalidLink`] for a link that cannot go in the header; [`ConfigError::OutOfRange`] for a
    /// date before 1970.
    ///
    /// ```
    /// use std::time::{Duration, UNIX_EPOCH};
    /// use tower_api_key::{ApiKeyLayer, MemoryStore};
    /// let since = UNIX_EPOCH + Duration::from_secs(1_735_689_600); // 2025-01-01
    /// let layer = ApiKeyLayer::new(MemoryStore::new())
    ///     .deprecate_x_api_key(since, Some("https://example.com/docs/auth"))?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn deprecate_x_api_key(self, since: SystemTime, link: Option<&str>) -> Result<Self, ConfigError> {
        let deprecation = Arc::new(Deprecation::new(since, link)?);
        Ok(self.edit(|c| c.deprecation = Some(deprecation)))
    }

    /// How often the layer may write its info-level summary of rejections (counts per reason) and an error line
    /// for a failing store (default [`DEFAULT_LOG_PERIOD`], one minute). Each rejection is logged at debug level;
    /// at info and above, a flood of bad requests writes at most one line per period. The summary is written by a
    /// rejection once the period is over (the clock is read once every 64 rejections, to keep it off the
    /// rejection path), so a trickle of rejections is summarised late rather than line by line.
    ///
    /// # Errors
    /// [`ConfigError::OutOfRange`] unless 1 s ≤ `period` ≤ 1 day.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = tower_api_key::ApiKeyLayer::new(tower_api_key::MemoryStore::new())
    ///     .log_period(Duration::from_secs(300))?;
    /// # Ok::<(), tower_api_key::ConfigError>(())
    /// ```
    pub fn log_period(self, period: Duration) -> Result<Self, ConfigError> {
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&period) {
            return Err(ConfigError::OutOfRange("log_period must be between 1 second and 1 day"));
        }
        let report = Arc::new(Report::new(period));
        Ok(self.edit(|c| c.report = report))
    }

    /// Per-key rate limits that hold across every instance: `limiter` (for example
    /// `RedisRateLimiter`, feature `redis`) is asked once per request, after the key is verified, with the key's own
    /// limit or `default` (keys with neither are not limited). A limiter that fails or is slower than the store
    /// timeout gives 503 (fail closed). Use it instead of `ApiKeyLayer::rate_limit` (feature `rate-limit`), which
    /// counts in this process only.
    ///
    /// ```
    /// # use tower_api_key::*;
    /// # #[derive(Debug)] struct Unlimited;
    /// # #[async_trait] impl SharedRateLimiter for Unlimited {
    /// #     async fn check(&self, _: &KeyId, _: RateLimit) -> Result<Result<(), RateLimitInfo>, StoreError> { Ok(Ok(())) } }
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).shared_rate_limit(Unlimited, RateLimit::per_second(50));
    /// ```
    pub fn shared_rate_limit(self, limiter: impl SharedRateLimiter, default: Option<crate::RateLimit>) -> Self {
        let shared = shared_limit::Shared { limiter: Arc::new(limiter), default };
        self.edit(|c| c.shared_limit = Some(shared))
    }

    /// Replaces the rejection response. Any `Fn(&Rejection) -> Response<B>` closure works.
    ///
    /// ```
    /// use tower_api_key::{ApiKeyLayer, MemoryStore, Rejection};
    /// let layer = ApiKeyLayer::new(MemoryStore::new()).on_rejection(|r: &Rejection| {
    ///     http::Response::builder().status(r.code().status()).body(axum::body::Body::empty()).unwrap()
    /// });
    /// ```
    pub fn on_rejection<R2>(self, on_rejection: R2) -> ApiKeyLayer<R2> {
        ApiKeyLayer { config: self.config, on_rejection }
    }
}

impl<S, R: Clone> Layer<S> for ApiKeyLayer<R> {
    type Service = ApiKeyAuth<S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiKeyAuth { inner, config: self.config.clone(), on_rejection: self.on_rejection.clone() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn configuration_errors_are_typed() {
        let l = || ApiKeyLayer::new(MemoryStore::new());
        assert!(matches!(l().scheme(""), Err(ConfigError::InvalidScheme(_))));
        assert!(matches!(l().scheme("bearer"), Err(ConfigError::InvalidScheme(_))));
        assert!(matches!(l().scheme("Api Key"), Err(ConfigError::InvalidScheme(_))));
        assert!(matches!(l().realm("a\"b"), Err(ConfigError::InvalidRealm(_))));
        assert!(matches!(l().realm("line\nbreak"), Err(ConfigError::InvalidRealm(_))));
        assert!(matches!(l().max_key_len(0), Err(ConfigError::OutOfRange(_))));
        assert!(matches!(l().max_key_len(8193), Err(ConfigError::OutOfRange(_))));
        let only_x = l().bearer(false).unwrap().api_key_header(false).unwrap();
        assert!(matches!(only_x.clone().x_api_key_header(false), Err(ConfigError::NoSources)));
        // Adding a scheme first makes turning the last header off valid.
        assert!(only_x.scheme("Token").unwrap().x_api_key_header(false).is_ok());
    }

    #[test]
    fn builders_do_not_disturb_layers_already_cloned() {
        let a = ApiKeyLayer::new(MemoryStore::new());
        let b = a.clone().scheme("Token").unwrap();
        assert!(a.config.extractor.schemes.is_empty());
        assert_eq!(b.config.extractor.schemes.len(), 1);
    }
}
