//! The layer's options over a real axum server and a real HTTP client on loopback.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::extract::Request;
use axum::routing::{get, options};
use axum::{Json, Router};
use serde_json::{Value, json};
use tower_api_key::{
    ApiKeyLayer, AuthEvent, HttpsPolicy, KeyManager, KeyStore, KeyUpdate, Lookup, ManualClock, MemoryStore, NewKey,
    Principal, RateLimit, Rejection, RequireScopesLayer, RequiredScopes, Scoped, StoreError, UsageTracker, async_trait,
    store::LookupResult,
};

async fn whoami(principal: Option<Principal>) -> Json<Value> {
    Json(match principal {
        Some(p) => json!({"id": p.id(), "kind": p.kind().as_str(), "key_id": p.key_id().as_str()}),
        None => json!({"id": null}),
    })
}

/// Echoes what the inner service saw of the credential headers.
async fn seen(req: Request) -> Json<Value> {
    let h = req.headers();
    Json(json!({
        "authorization": h.get("authorization").map(|v| v.to_str().unwrap().to_owned()),
        "authorization_sensitive": h.get("authorization").map(|v| v.is_sensitive()),
        "api_key": h.get("api-key").map(|v| v.to_str().unwrap().to_owned()),
        "principal": req.extensions().get::<Principal>().map(|p| p.id().to_owned()),
    }))
}

fn routes() -> Router {
    Router::new().route("/whoami", get(whoami)).route("/seen", get(seen)).route("/cors", options(|| async { "pre" }))
}

async fn serve(layer: ApiKeyLayer) -> String {
    let addr = common::serve(routes().layer(layer)).await;
    format!("http://{addr}")
}

fn user_store() -> (MemoryStore, String) {
    let store = MemoryStore::new();
    let key =
        store.add(NewKey::user("alice").scopes(["read", "keys:*"]).unwrap()).unwrap().key.expose_secret().to_owned();
    (store, key)
}

#[tokio::test]
async fn optional_mode_lets_anonymous_requests_through_but_not_bad_keys() {
    let (store, key) = user_store();
    let base = serve(ApiKeyLayer::new(store).optional()).await;
    let http = common::client();
    let anon: Value = http.get(format!("{base}/whoami")).send().await.unwrap().json().await.unwrap();
    assert_eq!(anon["id"], Value::Null);
    let me: Value = http.get(format!("{base}/whoami")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["id"], "alice");
    let res = http.get(format!("{base}/whoami")).bearer_auth("bad-key").send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http.get(format!("{base}/whoami")).header("api-key", "").send().await.unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn foreign_bearer_tokens_pass_through_untouched() {
    let (store, key) = user_store();
    let base = serve(ApiKeyLayer::new(store).pass_through_foreign_bearer()).await;
    let http = common::client();
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJl";
    let seen: Value = http.get(format!("{base}/seen")).bearer_auth(jwt).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["authorization"], format!("Bearer {jwt}"));
    assert_eq!(seen["principal"], Value::Null);
    // Our own keys are still verified, and a damaged one of ours is still rejected.
    let seen: Value = http.get(format!("{base}/seen")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["principal"], "alice");
    let mut bad = key.clone();
    bad.pop();
    bad.push(if key.ends_with('A') { 'B' } else { 'A' });
    assert_eq!(http.get(format!("{base}/seen")).bearer_auth(&bad).send().await.unwrap().status(), 401);
    // A foreign value in another source is not passed through.
    assert_eq!(http.get(format!("{base}/seen")).header("api-key", jwt).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn credentials_are_marked_sensitive_and_can_be_stripped() {
    let (store, key) = user_store();
    let http = common::client();
    let base = serve(ApiKeyLayer::new(store.clone())).await;
    let seen: Value = http.get(format!("{base}/seen")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(seen["authorization_sensitive"], true);

    let base = serve(ApiKeyLayer::new(store).strip_credentials()).await;
    let seen: Value = http
        .get(format!("{base}/seen"))
        .bearer_auth(&key)
        .header("api-key", &key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(seen["authorization"], Value::Null);
    assert_eq!(seen["api_key"], Value::Null);
    assert_eq!(seen["principal"], "alice");
}

#[tokio::test]
async fn cors_preflight_passes_only_when_enabled_and_only_for_preflights() {
    let (store, _) = user_store();
    let http = common::client();
    let preflight = |base: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{base}/cors")).header("access-control-request-method", "GET")
    };
    let base = serve(ApiKeyLayer::new(store.clone())).await;
    assert_eq!(preflight(&base).send().await.unwrap().status(), 401);
    let base = serve(ApiKeyLayer::new(store).allow_cors_preflight()).await;
    assert_eq!(preflight(&base).send().await.unwrap().status(), 200);
    let plain_options = http.request(reqwest::Method::OPTIONS, format!("{base}/cors")).send().await.unwrap();
    assert_eq!(plain_options.status(), 401);
}

#[tokio::test]
async fn https_requirement_trusts_proxy_headers_only_when_told() {
    let (store, key) = user_store();
    let http = common::client();
    let base = serve(ApiKeyLayer::new(store.clone()).require_https(HttpsPolicy::direct())).await;
    let res =
        http.get(format!("{base}/whoami")).bearer_auth(&key).header("x-forwarded-proto", "https").send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("HTTPS"));

    let base = serve(ApiKeyLayer::new(store).require_https(HttpsPolicy::behind_proxy())).await;
    let ok = http.get(format!("{base}/whoami")).bearer_auth(&key).header("x-forwarded-proto", "https").send().await;
    assert_eq!(ok.unwrap().status(), 200);
    let res = http.get(format!("{base}/whoami")).bearer_auth(&key).header("forwarded", "proto=https").send().await;
    assert_eq!(res.unwrap().status(), 200);
    let res = http.get(format!("{base}/whoami")).bearer_auth(&key).header("x-forwarded-proto", "http").send().await;
    assert_eq!(res.unwrap().status(), 403);
    assert_eq!(http.get(format!("{base}/whoami")).bearer_auth(&key).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn per_key_rate_limit_answers_429_with_headers() {
    let store = MemoryStore::new();
    let limited =
        store.add(NewKey::user("slow").rate_limit(RateLimit::new(2, Duration::from_secs(60)).unwrap())).unwrap();
    let free = store.add(NewKey::user("fast")).unwrap();
    let base = serve(ApiKeyLayer::new(store).rate_limit(RateLimit::new(1000, Duration::from_secs(1)))).await;
    let http = common::client();
    let get = |k: &str| http.get(format!("{base}/whoami")).bearer_auth(k.to_owned()).send();
    assert_eq!(get(limited.key.expose_secret()).await.unwrap().status(), 200);
    assert_eq!(get(limited.key.expose_secret()).await.unwrap().status(), 200);
    let res = get(limited.key.expose_secret()).await.unwrap();
    assert_eq!(res.status(), 429);
    let retry: u64 = res.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert_eq!(res.headers()["ratelimit-policy"], "\"default\";q=2;w=60");
    assert!(res.headers()["ratelimit"].to_str().unwrap().starts_with("\"default\";r=0;t="));
    for _ in 0..10 {
        assert_eq!(get(free.key.expose_secret()).await.unwrap().status(), 200, "other keys are not limited");
    }
}

#[tokio::test]
async fn expiry_disable_and_revocation_take_effect_on_the_next_request() {
    let start = SystemTime::now();
    let clock = ManualClock::new(start);
    let store = MemoryStore::new();
    let keys = KeyManager::new(store.clone()).clock(clock.clone());
    let expiring = keys.issue(NewKey::user("temp").expires_in(Duration::from_secs(10))).await.unwrap();
    let other = keys.issue(NewKey::system("svc")).await.unwrap();
    let base = serve(ApiKeyLayer::new(store.clone()).clock(clock.clone())).await;
    let http = common::client();
    let status = |k: String| {
        let req = http.get(format!("{base}/whoami")).bearer_auth(k);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    let ek = expiring.key.expose_secret().to_owned();
    clock.advance(Duration::from_secs(10) - Duration::from_nanos(1));
    assert_eq!(status(ek.clone()).await, 200, "one tick before expiry");
    clock.advance(Duration::from_nanos(1));
    assert_eq!(status(ek).await, 401, "at expiry");

    let ok = other.key.expose_secret().to_owned();
    assert_eq!(status(ok.clone()).await, 200);
    keys.update(&other.record.id, &KeyUpdate { enabled: Some(false), ..KeyUpdate::default() }).await.unwrap();
    assert_eq!(status(ok.clone()).await, 401, "disabled");
    keys.update(&other.record.id, &KeyUpdate { enabled: Some(true), ..KeyUpdate::default() }).await.unwrap();
    assert_eq!(status(ok.clone()).await, 200, "enabled again");
    keys.revoke(&other.record.id).await.unwrap();
    assert_eq!(status(ok).await, 401, "revoked");
}

struct ReadScope;
impl RequiredScopes for ReadScope {
    const SCOPES: &'static [&'static str] = &["read"];
}
struct WriteScope;
impl RequiredScopes for WriteScope {
    const SCOPES: &'static [&'static str] = &["write"];
}

#[tokio::test]
async fn scopes_guard_with_wildcards_all_of_and_any_of() {
    let (store, key) = user_store(); // scopes: read, keys:*
    let app = Router::new()
        .route("/read", get(|Scoped(p, _): Scoped<ReadScope>| async move { p.id().to_owned() }))
        .route("/write", get(|Scoped(p, _): Scoped<WriteScope>| async move { p.id().to_owned() }))
        .route("/keys-all", get(|| async { "ok" }).layer(RequireScopesLayer::all(["keys:read", "keys:write"]).unwrap()))
        .route("/mixed-all", get(|| async { "ok" }).layer(RequireScopesLayer::all(["read", "write"]).unwrap()))
        .route("/mixed-any", get(|| async { "ok" }).layer(RequireScopesLayer::any(["write", "read"]).unwrap()))
        .layer(ApiKeyLayer::new(store).realm("scoped").unwrap());
    let base = format!("http://{}", common::serve(app).await);
    let http = common::client();
    for (path, want) in [("/read", 200), ("/write", 403), ("/keys-all", 200), ("/mixed-all", 403), ("/mixed-any", 200)]
    {
        let res = http.get(format!("{base}{path}")).bearer_auth(&key).send().await.unwrap();
        assert_eq!(res.status(), want, "{path}");
        if want == 403 {
            let h = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
            assert!(h.starts_with("Bearer realm=\"scoped\", error=\"insufficient_scope\", scope=\""), "{h}");
        }
    }
}

#[derive(Debug)]
struct BrokenStore;

#[async_trait]
impl KeyStore for BrokenStore {
    async fn lookup(&self, _: Lookup<'_>) -> LookupResult {
        Err(StoreError::backend(std::io::Error::other("connection refused to db.internal:5432")))
    }
}

#[derive(Debug)]
struct SlowStore;

#[async_trait]
impl KeyStore for SlowStore {
    async fn lookup(&self, _: Lookup<'_>) -> LookupResult {
        tokio::time::sleep(Duration::from_secs(30)).await;
        Ok(None)
    }
}

#[tokio::test]
async fn failing_and_slow_stores_fail_closed_with_503_and_no_detail() {
    let http = common::client();
    let base = serve(ApiKeyLayer::new(BrokenStore)).await;
    let res = http.get(format!("{base}/whoami")).bearer_auth("some-opaque-key").send().await.unwrap();
    assert_eq!(res.status(), 503);
    let body = res.text().await.unwrap();
    assert!(!body.contains("db.internal") && !body.contains("refused"), "{body}");

    let base = serve(ApiKeyLayer::new(SlowStore).store_timeout(Duration::from_millis(200))).await;
    let started = std::time::Instant::now();
    let res = http.get(format!("{base}/whoami")).bearer_auth("some-opaque-key").send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn custom_rejection_response() {
    let (store, _) = user_store();
    let layer = ApiKeyLayer::new(store).on_rejection(|r: &Rejection| {
        let mut res: http::Response<axum::body::Body> = r.into_response();
        res.headers_mut()
            .insert("x-reason-code", http::HeaderValue::from_static(r.code().oauth_error().unwrap_or("none")));
        res
    });
    let app = routes().layer(layer);
    let base = format!("http://{}", common::serve(app).await);
    let res = common::client().get(format!("{base}/whoami")).bearer_auth("nope").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["x-reason-code"], "invalid_token");
}

#[tokio::test]
async fn events_and_usage_carry_the_key_id_never_the_key() {
    let (store, key) = user_store();
    let events: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = events.clone();
    let usage = UsageTracker::spawn(store.clone(), Duration::from_secs(3600));
    let layer = ApiKeyLayer::new(store.clone())
        .usage(usage.clone())
        .events(move |e: &AuthEvent<'_>| log.lock().unwrap().push(format!("{e:?}")));
    let base = serve(layer).await;
    let http = common::client();
    for _ in 0..3 {
        assert_eq!(http.get(format!("{base}/whoami")).bearer_auth(&key).send().await.unwrap().status(), 200);
    }
    assert_eq!(http.get(format!("{base}/whoami")).bearer_auth("wrong-key").send().await.unwrap().status(), 401);
    usage.shutdown().await;

    let events = events.lock().unwrap().clone();
    assert_eq!(events.iter().filter(|e| e.starts_with("Verified")).count(), 3, "{events:?}");
    assert!(events.iter().any(|e| e.starts_with("Rejected") && e.contains("Unknown")), "{events:?}");
    for e in &events {
        assert!(!e.contains(&key) && !e.contains("wrong-key"), "{e}");
    }
    let page = store.list(&tower_api_key::ListQuery::new(), SystemTime::now()).await.unwrap();
    let record = &page.items[0];
    assert_eq!(record.usage_count, 3);
    assert!(record.last_used_at.is_some());
}

/// README (axum): the layer around the whole router, as a tower service, answers what `Router::layer` answers,
/// including for unknown paths and wrong methods, with and without a key.
#[tokio::test]
async fn the_layer_around_the_router_answers_as_router_layer_does() {
    use tower::Layer as _;
    let (store, key) = user_store();
    let routed = serve(ApiKeyLayer::new(store.clone())).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let outer = format!("http://{}", listener.local_addr().unwrap());
    let svc = ApiKeyLayer::new(store).layer(routes());
    // As the README writes it.
    let make = axum::ServiceExt::<axum::extract::Request>::into_make_service(svc);
    tokio::spawn(async move { axum::serve(listener, make).await.unwrap() });
    let http = common::client();
    let rows: [(&str, &str, Option<&str>, u16); 6] = [
        ("GET", "/whoami", Some(&key), 200),
        ("GET", "/whoami", None, 401),
        ("GET", "/whoami", Some("tak_user_AAAAAAAAAAAA_BBBBBBBBBBBBBBBBBBBBBBBB000000"), 401),
        ("GET", "/nowhere", None, 401),
        ("GET", "/nowhere", Some(&key), 404),
        ("POST", "/whoami", Some(&key), 405),
    ];
    for (method, path, bearer, want) in rows {
        for base in [&routed, &outer] {
            let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
            if let Some(k) = bearer {
                req = req.bearer_auth(k);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), want, "{method} {path} with a key: {} ({base})", bearer.is_some());
        }
    }
}
