//! Per-key rate limits that hold across instances: two layers ("instances") over one store, each with a
//! `RedisRateLimiter` on the real Redis at 127.0.0.1:6379 (`REDIS_URL`). A limit of N per window lets N requests
//! through across both, not 2N. A limiter that cannot answer fails closed: `tests/store_faults.rs` cuts, slows and
//! silences Redis under it through a proxy.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use tower::ServiceExt;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey, RateLimit, RedisRateLimiter};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

type Svc = tower::util::BoxCloneService<http::Request<()>, http::Response<String>, std::convert::Infallible>;

fn instance(store: MemoryStore, limiter: RedisRateLimiter) -> Svc {
    let svc = tower::ServiceBuilder::new().layer(ApiKeyLayer::new(store).shared_rate_limit(limiter, None)).service_fn(
        |_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
    );
    tower::util::BoxCloneService::new(svc)
}

async fn call(svc: &Svc, key: &str) -> http::Response<String> {
    let req = http::Request::get("/").header("authorization", format!("Bearer {key}")).body(()).unwrap();
    svc.clone().oneshot(req).await.unwrap()
}

#[tokio::test]
async fn a_limit_of_n_lets_n_through_across_two_instances() {
    let (url, ns) = (redis_url(), format!("tak_rl_{}", tower_api_key::KeyId::random()));
    let store = MemoryStore::new();
    let limited =
        store.add(NewKey::user("alice").rate_limit(RateLimit::new(5, Duration::from_secs(60)).unwrap())).unwrap();
    let free = store.add(NewKey::user("bob")).unwrap();
    let limiter =
        || async { RedisRateLimiter::connect(&url, &ns).await.unwrap_or_else(|e| panic!("Redis at {url}: {e}")) };
    let a = instance(store.clone(), limiter().await);
    let b = instance(store.clone(), limiter().await);
    let key = limited.key.expose_secret();
    let mut passed = 0;
    for i in 0..20 {
        let res = call(if i % 2 == 0 { &a } else { &b }, key).await;
        match res.status().as_u16() {
            200 => passed += 1,
            429 => {
                let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
                assert!((1..=60).contains(&retry), "retry-after {retry}");
            }
            other => panic!("status {other}"),
        }
    }
    assert_eq!(passed, 5, "5 per window across both instances, not 10");
    // Keys without a limit (and no default) are not limited.
    for _ in 0..20 {
        assert_eq!(call(&a, free.key.expose_secret()).await.status(), 200);
    }
}
