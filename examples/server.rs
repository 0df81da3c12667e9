//! The demo server: `cargo run --example server`.
//!
//! * listens on `127.0.0.1:3000`, or on `ADDR`;
//! * registers `DEMO_USER_KEY` (user `demo-user`) and `DEMO_SERVICE_KEY` (service `demo-service`, scope
//!   `keys:admin`) when set; otherwise mints one of each and prints them once;
//! * accepts `Authorization: Bearer`, `Authorization: Api-Key`, `API-Key` and (deprecated) `X-API-Key`, answering
//!   the latter with `Deprecation` and `Link` headers (`ApiKeyLayer::deprecate_x_api_key`);
//! * logs to stderr; standard output carries only the demo keys it mints;
//! * `GET /health` needs no key; `GET /whoami` describes the principal; `/admin/keys…` is the key-management API
//!   (scope `keys:admin`).

#[path = "common/mod.rs"]
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_api_key::{
    ApiKeyLayer, Clock, ConfigError, KeyId, KeyManager, MemoryStore, Principal, SystemClock, UsageTracker, admin,
};

/// Since when `X-API-Key` is deprecated (2025-01-01), and where clients read what to do instead.
const X_API_KEY_DEPRECATED_SINCE: Duration = Duration::from_secs(1_735_689_600);
const DEPRECATION_LINK: &str = "https://docs.rs/tower-api-key/latest/tower_api_key/extract/";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let addr: SocketAddr = common::addr("127.0.0.1:3000")?;
    let store = MemoryStore::new();
    common::register_demo_keys(&store)?;

    let usage = UsageTracker::spawn(store.clone(), Duration::from_secs(5));
    let app = app(store, SystemClock, usage.clone())?;

    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    usage.shutdown().await;
    Ok(())
}

/// The demo application: `/health`, and behind the key layer `/whoami` and `/admin`.
pub fn app(store: MemoryStore, clock: impl Clock + Clone, usage: UsageTracker) -> Result<Router, ConfigError> {
    let auth = ApiKeyLayer::new(store.clone())
        .realm("tower-api-key demo")?
        .scheme("Api-Key")?
        .deprecate_x_api_key(UNIX_EPOCH + X_API_KEY_DEPRECATED_SINCE, Some(DEPRECATION_LINK))?
        .clock(clock.clone())
        .usage(usage);
    let keys = KeyManager::new(store).clock(clock);
    let protected = Router::new()
        .route("/whoami", get(whoami))
        .nest("/admin", admin::router(keys))
        .layer(middleware::from_fn(remember_key_id))
        .layer(auth);
    Ok(Router::new().route("/health", get(|| async { "ok" })).merge(protected).layer(middleware::from_fn(log)))
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
