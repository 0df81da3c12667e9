//! The demo server: `cargo run --example server`.
//!
//! * listens on `127.0.0.1:3000`, or on `ADDR`;
//! * keeps its keys where `KEY_STORE` says: `memory` (the default: nothing to install), `postgres` (at
//!   `DATABASE_URL`, feature `postgres`) or `redis` (at `REDIS_URL`, feature `redis`); a remote store is wrapped
//!   in a `CachedStore` (feature `cache`) whose changes reach every instance through Redis pub/sub when
//!   `REDIS_URL` is set, else through PostgreSQL `LISTEN/NOTIFY`; `KEY_NAMESPACE` (default `tower_api_key`) is
//!   the PostgreSQL schema and the Redis key and channel prefix;
//! * enforces per-key rate limits: across every instance through Redis when `REDIS_URL` is set (feature
//!   `redis`), in this process otherwise;
//! * registers `DEMO_USER_KEY` (user `demo-user`) and `DEMO_SERVICE_KEY` (service `demo-service`, scope
//!   `keys:admin`) when set; otherwise mints one of each and prints them once;
//! * accepts `Authorization: Bearer`, `Authorization: Api-Key`, `API-Key` and (deprecated) `X-API-Key`, answering
//!   the latter with `Deprecation` and `Link` headers (`ApiKeyLayer::deprecate_x_api_key`);
//! * logs to stderr; standard output carries only the demo keys it mints;
//! * a remote store's cache keeps an id filter (`CacheConfig::id_filter`, on by default) trusted while its
//!   invalidation subscription is connected: a flood of random well-formed keys is answered without a query;
//! * `GET /health` needs no key; `GET /whoami` describes the principal; `/admin/keys…` is the key-management API
//!   (scope `keys:admin`); with feature `console` (on by default) `/admin/` is the key console, a page that
//!   loads without a key and asks for one with the scope `keys:admin` (the demo service key);
//! * with feature `metrics`, `GET /metrics` (no key) serves the crate's counters in the Prometheus text format:
//!   `tower_api_key_requests_total{outcome, reason}`, `tower_api_key_store_lookups_total{store, result}` (lookups
//!   that reached PostgreSQL or Redis) and `tower_api_key_filter_total{answer}`. Without the feature there is no
//!   such route.

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_api_key::{
    ApiKeyLayer, Clock, ConfigError, KeyId, KeyManager, KeyStore, MemoryStore, Principal, SharedRateLimiter,
    SystemClock, UsageTracker, admin,
};

/// Since when `X-API-Key` is deprecated (2025-01-01), and where clients read what to do instead.
const X_API_KEY_DEPRECATED_SINCE: Duration = Duration::from_secs(1_735_689_600);
const DEPRECATION_LINK: &str = "https://docs.rs/tower-api-key/latest/tower_api_key/extract/";

/// Where the keys are, how rate limits are counted, and what keeps caches current.
pub struct Backend {
    /// The store the layer reads and the admin API changes.
    pub store: Arc<dyn KeyStore>,
    /// A limiter shared by every instance, or `None` to count in this process.
    pub limiter: Option<Arc<dyn SharedRateLimiter>>,
    /// Keeps what the backend needs alive (dropping it stops it).
    pub keep_alive: Vec<Box<dyn std::any::Any + Send>>,
    /// Whether the cache's id filter answers now (built, subscription connected); `true` without a cache.
    pub filter_ready: Arc<dyn Fn() -> bool + Send + Sync>,
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend").field("store", &self.store).field("limiter", &self.limiter).finish_non_exhaustive()
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let addr: SocketAddr = common::addr("127.0.0.1:3000")?;
    let backend = backend_from_env().await?;
    let keys = KeyManager::from_shared(backend.store.clone());
    common::register_demo_keys(&keys).await?;

    let usage = UsageTracker::spawn(backend.store.clone(), Duration::from_secs(5));
    let app = app_with(backend.store.clone(), SystemClock, usage.clone(), backend.limiter.clone())?;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    tracing::info!(addr = %bound, "listening");
    #[cfg(feature = "console")]
    tracing::info!("the key console: open http://{bound}/admin/ and sign in with the demo service key");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    usage.shutdown().await;
    drop(backend);
    Ok(())
}

/// `ID_FILTER=off` turns the remote stores' id filter off (to measure what it saves); on otherwise.
#[cfg(all(feature = "cache", any(feature = "postgres", feature = "redis")))]
fn id_filter_on() -> bool {
    env("ID_FILTER").is_none_or(|v| v != "off")
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Reads `KEY_STORE`, `DATABASE_URL`, `REDIS_URL` and `KEY_NAMESPACE` (see the module docs).
pub async fn backend_from_env() -> Result<Backend, Box<dyn std::error::Error>> {
    let kind = env("KEY_STORE").unwrap_or_else(|| "memory".into());
    let namespace = env("KEY_NAMESPACE").unwrap_or_else(|| "tower_api_key".into());
    let redis_url = env("REDIS_URL");
    let database_url = env("DATABASE_URL");
    backend(&kind, &namespace, database_url.as_deref(), redis_url.as_deref()).await
}

/// The backend for `kind` (`memory`, `postgres` or `redis`).
pub async fn backend(
    kind: &str,
    namespace: &str,
    database_url: Option<&str>,
    redis_url: Option<&str>,
) -> Result<Backend, Box<dyn std::error::Error>> {
    let limiter = shared_limiter(redis_url, namespace).await?;
    match kind {
        "memory" => Ok(Backend {
            store: Arc::new(MemoryStore::new()),
            limiter,
            keep_alive: Vec::new(),
            filter_ready: Arc::new(|| true),
        }),
        "postgres" => {
            postgres(database_url.ok_or("KEY_STORE=postgres needs DATABASE_URL")?, namespace, redis_url, limiter).await
        }
        "redis" => redis(redis_url.ok_or("KEY_STORE=redis needs REDIS_URL")?, namespace, limiter).await,
        other => Err(format!("KEY_STORE must be memory, postgres or redis, not {other:?}").into()),
    }
}

#[cfg(feature = "redis")]
async fn shared_limiter(
    redis_url: Option<&str>,
    namespace: &str,
) -> Result<Option<Arc<dyn SharedRateLimiter>>, Box<dyn std::error::Error>> {
    let Some(url) = redis_url else { return Ok(None) };
    let limiter = tower_api_key::RedisRateLimiter::connect(url, namespace).await?;
    tracing::info!("per-key rate limits shared through Redis");
    Ok(Some(Arc::new(limiter)))
}

#[cfg(not(feature = "redis"))]
async fn shared_limiter(
    redis_url: Option<&str>,
    _: &str,
) -> Result<Option<Arc<dyn SharedRateLimiter>>, Box<dyn std::error::Error>> {
    if redis_url.is_some() {
        tracing::warn!(
            "REDIS_URL is set but the example was built without the `redis` feature: limits count per process"
        );
    }
    Ok(None)
}

#[cfg(all(feature = "postgres", feature = "cache"))]
async fn postgres(
    url: &str,
    namespace: &str,
    redis_url: Option<&str>,
    limiter: Option<Arc<dyn SharedRateLimiter>>,
) -> Result<Backend, Box<dyn std::error::Error>> {
    use tower_api_key::{CacheConfig, CachedStore, PostgresBus, PostgresStore};
    let pg = PostgresStore::connect(url, namespace).await?;
    let pool = pg.pool().clone();
    let cached = CachedStore::new(pg, CacheConfig::new().name("postgres").id_filter(id_filter_on()));
    let (cached, subscription) = match redis_url {
        Some(redis_url) => bus_over_redis(cached, redis_url, namespace).await?,
        None => {
            let subscription = PostgresBus::subscribe(pool.clone(), namespace, cached.invalidator());
            (cached.with_bus(PostgresBus::new(pool, namespace)), subscription)
        }
    };
    // The cache keeps its subscription alive, and trusts its id filter while it is connected.
    let cached = cached.with_subscription(subscription);
    tracing::info!(namespace, "keys in PostgreSQL, cached");
    Ok(cached_backend(cached, limiter))
}

#[cfg(not(all(feature = "postgres", feature = "cache")))]
async fn postgres(
    _: &str,
    _: &str,
    _: Option<&str>,
    _: Option<Arc<dyn SharedRateLimiter>>,
) -> Result<Backend, Box<dyn std::error::Error>> {
    Err("KEY_STORE=postgres needs the example built with --features postgres,cache".into())
}

#[cfg(all(feature = "redis", feature = "cache"))]
async fn redis(
    url: &str,
    namespace: &str,
    limiter: Option<Arc<dyn SharedRateLimiter>>,
) -> Result<Backend, Box<dyn std::error::Error>> {
    use tower_api_key::{CacheConfig, CachedStore, RedisStore};
    let store = RedisStore::connect(url, namespace).await?;
    let cached = CachedStore::new(store, CacheConfig::new().name("redis").id_filter(id_filter_on()));
    let (cached, subscription) = bus_over_redis(cached, url, namespace).await?;
    let cached = cached.with_subscription(subscription);
    tracing::info!(namespace, "keys in Redis, cached");
    Ok(cached_backend(cached, limiter))
}

#[cfg(not(all(feature = "redis", feature = "cache")))]
async fn redis(_: &str, _: &str, _: Option<Arc<dyn SharedRateLimiter>>) -> Result<Backend, Box<dyn std::error::Error>> {
    Err("KEY_STORE=redis needs the example built with --features redis,cache".into())
}

#[cfg(all(feature = "cache", any(feature = "postgres", feature = "redis")))]
fn cached_backend<S: KeyStore>(
    cached: tower_api_key::CachedStore<S>,
    limiter: Option<Arc<dyn SharedRateLimiter>>,
) -> Backend {
    let probe = cached.clone();
    Backend {
        store: Arc::new(cached),
        limiter,
        keep_alive: Vec::new(),
        filter_ready: Arc::new(move || probe.filter_trusted()),
    }
}

#[cfg(all(feature = "redis", feature = "cache"))]
async fn bus_over_redis<S: KeyStore>(
    cached: tower_api_key::CachedStore<S>,
    url: &str,
    namespace: &str,
) -> Result<(tower_api_key::CachedStore<S>, tower_api_key::Subscription), Box<dyn std::error::Error>> {
    use tower_api_key::RedisBus;
    let subscription = RedisBus::subscribe(url, namespace, cached.invalidator())?;
    Ok((cached.with_bus(RedisBus::connect(url, namespace).await?), subscription))
}

#[cfg(all(feature = "postgres", feature = "cache", not(feature = "redis")))]
async fn bus_over_redis<S: KeyStore>(
    _: tower_api_key::CachedStore<S>,
    _: &str,
    _: &str,
) -> Result<(tower_api_key::CachedStore<S>, tower_api_key::Subscription), Box<dyn std::error::Error>> {
    Err("REDIS_URL is set: build the example with the `redis` feature too, or unset REDIS_URL".into())
}

/// The demo application over an in-memory store (what the tests drive).
pub fn app(store: MemoryStore, clock: impl Clock + Clone, usage: UsageTracker) -> Result<Router, ConfigError> {
    app_with(Arc::new(store), clock, usage, None)
}

/// The process's Prometheus recorder, installed by the first call (`None` if another recorder was installed
/// first, as a test may do).
#[cfg(feature = "metrics")]
pub fn prometheus() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
            Ok(handle) => Some(handle),
            Err(error) => {
                tracing::warn!(%error, "no Prometheus recorder: /metrics is off");
                None
            }
        })
        .clone()
}

/// `GET /metrics` (no key) when built with feature `metrics`; nothing otherwise.
fn with_metrics(router: Router) -> Router {
    #[cfg(feature = "metrics")]
    if let Some(handle) = prometheus() {
        return router.route(
            "/metrics",
            get(move || {
                let handle = handle.clone();
                async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()) }
            }),
        );
    }
    router
}

/// The demo application: `/health`, `/metrics` (feature `metrics`), and behind the key layer `/whoami` and
/// `/admin`.
pub fn app_with(
    store: Arc<dyn KeyStore>,
    clock: impl Clock + Clone,
    usage: UsageTracker,
    limiter: Option<Arc<dyn SharedRateLimiter>>,
) -> Result<Router, ConfigError> {
    let auth = ApiKeyLayer::from_shared(store.clone())
        .realm("tower-api-key demo")?
        .scheme("Api-Key")?
        .deprecate_x_api_key(UNIX_EPOCH + X_API_KEY_DEPRECATED_SINCE, Some(DEPRECATION_LINK))?
        .clock(clock.clone())
        .usage(usage);
    // Per-key limits from the key records: shared by every instance through Redis, or counted here.
    let auth = match limiter {
        Some(shared) => auth.shared_rate_limit(shared, None),
        None => auth.rate_limit(None),
    };
    let keys = KeyManager::from_shared(store).clock(clock);
    let protected =
        Router::new().route("/whoami", get(whoami)).layer(middleware::from_fn(remember_key_id)).layer(auth.clone());
    // The admin router: its API needs a key with the scope `keys:admin` (401 without a key, 403 without the
    // scope); with feature `console` its root is the console page, which a browser loads without a key. So the
    // layer in front of it lets requests with no key at all through (a bad key is still refused), and
    // `nest_service` routes both `/admin` and `/admin/` to the page.
    let admin = admin::router(keys).layer(middleware::from_fn(remember_key_id)).layer(auth.optional());
    let open = with_metrics(Router::new().route("/health", get(|| async { "ok" }))).nest_service("/admin", admin);
    Ok(open.merge(protected).layer(middleware::from_fn(log)))
}

async fn whoami(principal: Principal) -> Json<Value> {
    Json(json!({
        "kind": principal.kind().as_str(),
        "id": principal.id(),
        "key_id": principal.key_id().as_str(),
        "key_name": principal.key_name(),
        "scopes": principal.scopes().iter().collect::<Vec<_>>(),
        "source": principal.source().map(|s| s.as_str()),
    }))
}

/// Inside the key layer: copies the key id into the response so the outer logger can print it.
async fn remember_key_id(req: Request, next: Next) -> Response {
    let key_id = req.extensions().get::<Principal>().map(|p| *p.key_id());
    let mut res = next.run(req).await;
    if let Some(id) = key_id {
        res.extensions_mut().insert(id);
    }
    res
}

/// Outermost: one line per request with the key id (never the key) and the outcome.
async fn log(req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let started = Instant::now();
    let res = next.run(req).await;
    let key_id = res.extensions().get::<KeyId>().map(ToString::to_string);
    tracing::info!(
        %method,
        path,
        status = res.status().as_u16(),
        key_id = key_id.as_deref().unwrap_or("-"),
        elapsed_us = started.elapsed().as_micros() as u64,
        "request"
    );
    res
}
