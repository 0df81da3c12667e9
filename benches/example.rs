//! The example server's router (`examples/server.rs`) driven in process with `oneshot`: `GET /health` against
//! `GET /whoami` with a valid key, each response body read to the end; then the same `/whoami` route served
//! without the example's two `from_fn` middlewares, to split the difference between them and the rest (layer,
//! extractor, JSON). Run with `cargo bench --bench example`.
//!
//! Knobs: `BENCH_EXAMPLE_REQUESTS` (per repetition, default 50 000), `BENCH_EXAMPLE_REPS` (best of, default 5).

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

/// The example server's router.
#[path = "../examples/server.rs"]
#[allow(dead_code)]
mod server;

use std::hint::black_box;
use std::time::{Duration, Instant};

use http::header::AUTHORIZATION;
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

const KEY: &str = "demo-load-0123456789abcdef0123456789abcd";

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default).max(1)
}

fn main() {
    let n = env_u32("BENCH_EXAMPLE_REQUESTS", 50_000);
    let reps = env_u32("BENCH_EXAMPLE_REPS", 5);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let store = MemoryStore::new();
        store.import(KEY, NewKey::user("demo-user")).unwrap();
        let usage = tower_api_key::UsageTracker::spawn(store.clone(), Duration::from_secs(3600));
        let example = server::app(store.clone(), tower_api_key::SystemClock, usage).unwrap();
        let bare = axum::Router::new()
            .route(
                "/whoami",
                axum::routing::get(|p: tower_api_key::Principal| async move {
                    axum::Json(
                        serde_json::json!({"kind": p.kind().as_str(), "id": p.id(), "key_id": p.key_id().as_str()}),
                    )
                }),
            )
            .layer(ApiKeyLayer::new(store));
        let time = |app: axum::Router, path: &'static str| async move {
            let mut best = f64::MAX;
            for _ in 0..reps {
                let t0 = Instant::now();
                for _ in 0..n {
                    let req = Request::get(path)
                        .header(AUTHORIZATION, format!("Bearer {KEY}"))
                        .body(axum::body::Body::empty())
                        .unwrap();
                    let res = app.clone().oneshot(req).await.unwrap();
                    assert_eq!(res.status(), StatusCode::OK, "{path}");
                    black_box(axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap());
                }
                best = best.min(t0.elapsed().as_nanos() as f64 / f64::from(n));
            }
            best
        };
        let health = time(example.clone(), "/health").await;
        let whoami = time(example, "/whoami").await;
        let bare_whoami = time(bare, "/whoami").await;
        println!("Example server router in process (best of {reps} x {n} requests, ns per request):");
        println!("  example GET /health                          {health:>8.0}");
        println!(
            "  example GET /whoami (key)                    {whoami:>8.0}   (+{:.0} over /health)",
            whoami - health
        );
        println!("  layer + Principal + JSON only, GET /whoami   {bare_whoami:>8.0}");
    });
}
