//! An axum service whose keys live in PostgreSQL, cached, with revocations reaching every instance:
//! `cargo run --example postgres --features postgres,cache`.
//!
//! * connects to `DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/test`), creates the schema
//!   `tower_api_key` if needed, and listens on `127.0.0.1:3002` (or `ADDR`);
//! * mints a key for `alice` and prints it once;
//! * `GET /whoami` needs the key; a revocation made by any instance (or the admin API of the demo server) reaches
//!   this one's cache through `LISTEN/NOTIFY` within milliseconds.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tower_api_key::{
    ApiKeyLayer, CacheConfig, CachedStore, KeyManager, NewKey, PostgresBus, PostgresStore, Principal, UsageTracker,
};

async fn whoami(principal: Principal) -> String {
    format!("{} {} (key {})\n", principal.kind(), principal.id(), principal.key_id())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_writer(std::io::stderr).init();
    let url = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3002".into());

    // The store (schema created on connect), a cache in front, and the channel that keeps caches current.
    let store = PostgresStore::connect(&url, PostgresStore::DEFAULT_NAMESPACE).await?;
    let pool = store.pool().clone();
    let cached = CachedStore::new(store, CacheConfig::new().positive_ttl(Duration::from_secs(30)))
        .with_bus(PostgresBus::new(pool.clone(), PostgresStore::DEFAULT_NAMESPACE));
    let _subscription = PostgresBus::subscribe(pool, PostgresStore::DEFAULT_NAMESPACE, cached.invalidator());

    let keys = KeyManager::new(cached.clone());
    let issued = keys.issue(NewKey::user("alice").name("postgres example")).await?;
    println!("alice's key (shown once): {}", issued.key.expose_secret());

    let usage = UsageTracker::spawn(cached.clone(), Duration::from_secs(10)); // one UPDATE per flush
    let app = Router::new().route("/whoami", get(whoami)).layer(ApiKeyLayer::new(cached).usage(usage.clone()));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    tracing::info!(%addr, "listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    usage.shutdown().await;
    Ok(())
}
