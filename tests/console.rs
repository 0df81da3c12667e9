//! The console page over HTTP (feature `console`), on the example server's router and on the mountings the docs
//! show: it loads without a key, its API does not, and every answer carries the security headers. What the page
//! does in a browser is `tests/console_browser.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::time::{Duration, SystemTime};

use axum::Router;
use serde_json::json;
use tower_api_key::admin::CONTENT_SECURITY_POLICY;
use tower_api_key::{ApiKeyLayer, KeyManager, ManualClock, UsageTracker, admin};

use common::{SERVICE_KEY, USER_KEY};

async fn demo() -> String {
    let store = common::demo_store();
    let usage = UsageTracker::spawn(store.clone(), Duration::from_secs(3600));
    let app = server::app(store, ManualClock::new(SystemTime::now()), usage).unwrap();
    format!("http://{}", common::serve(app).await)
}

/// The headers every admin answer carries.
fn assert_safe_headers(res: &reqwest::Response, what: &str) {
    let h = res.headers();
    let get = |name: &str| h.get(name).map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(get("content-security-policy").as_deref(), Some(CONTENT_SECURITY_POLICY), "{what}");
    assert_eq!(get("x-content-type-options").as_deref(), Some("nosniff"), "{what}");
    assert_eq!(get("referrer-policy").as_deref(), Some("no-referrer"), "{what}");
    assert_eq!(get("cache-control").as_deref(), Some("no-store"), "{what}");
    assert_eq!(get("x-frame-options").as_deref(), Some("DENY"), "{what}");
}

#[test]
fn the_policy_forbids_inline_script_framing_and_other_origins() {
    let directives: Vec<&str> = CONTENT_SECURITY_POLICY.split(';').map(str::trim).collect();
    for wanted in ["default-src 'self'", "script-src 'self'", "frame-ancestors 'none'", "form-action 'none'"] {
        assert!(directives.contains(&wanted), "{wanted} in {CONTENT_SECURITY_POLICY}");
    }
    assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"), "no 'unsafe-inline' or 'unsafe-eval'");
}

#[tokio::test]
async fn the_page_loads_without_a_key_with_or_without_the_trailing_slash() {
    let base = demo().await;
    let http = common::client();
    for path in ["/admin/", "/admin"] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
        assert_safe_headers(&res, path);
        let html = res.text().await.unwrap();
        assert!(html.contains(r#"<script src="/admin/console.js" defer></script>"#), "{path}: {html}");
        assert!(html.contains(r#"href="/admin/console.css""#), "{path}");
        assert!(html.contains(r#"<label for="admin-key">"#), "{path}: the sign-in field has a label");
    }
    for (path, kind) in [("/admin/console.js", "text/javascript"), ("/admin/console.css", "text/css")] {
        let res = http.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        assert_safe_headers(&res, path);
    }
}

#[tokio::test]
async fn the_api_under_the_page_still_needs_an_admin_key() {
    let base = demo().await;
    let http = common::client();
    let list = format!("{base}/admin/keys");
    // No key: the optional layer lets it through, the admin guard answers 401.
    let res = http.get(&list).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_safe_headers(&res, "401");
    // A bad key: the layer refuses it.
    assert_eq!(http.get(&list).bearer_auth("tak_user_nope").send().await.unwrap().status(), 401);
    // A valid key without the scope: 403.
    let res = http.get(&list).bearer_auth(USER_KEY).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert_safe_headers(&res, "403");
    // The admin key: 200, and an answer carrying a new key is not stored by any cache.
    assert_eq!(http.get(&list).bearer_auth(SERVICE_KEY).send().await.unwrap().status(), 200);
    let res = http
        .post(&list)
        .bearer_auth(SERVICE_KEY)
        .json(&json!({"name": "ci", "kind": "user", "owner": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_safe_headers(&res, "201 with a key");
    // The rest of the demo keeps its strict layer: no key, no whoami.
    assert_eq!(http.get(format!("{base}/whoami")).send().await.unwrap().status(), 401);
}

#[tokio::test]
async fn the_documented_mountings_serve_the_page_where_they_put_it() {
    let store = common::demo_store();
    let admin_router =
        || admin::router(KeyManager::new(store.clone())).layer(ApiKeyLayer::new(store.clone()).optional());
    let http = common::client();
    // `nest_service`: both paths; `nest`: axum routes the path without the slash only; on its own: the root.
    let nested_service = format!("http://{}", common::serve(Router::new().nest_service("/ops", admin_router())).await);
    let nested = format!("http://{}", common::serve(Router::new().nest("/ops", admin_router())).await);
    let alone = format!("http://{}", common::serve(admin_router()).await);
    for (url, script) in [
        (format!("{nested_service}/ops/"), "/ops/console.js"),
        (format!("{nested_service}/ops"), "/ops/console.js"),
        (format!("{nested}/ops"), "/ops/console.js"),
        (format!("{alone}/"), "/console.js"),
    ] {
        let res = http.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert!(res.text().await.unwrap().contains(&format!(r#"src="{script}""#)), "{url}");
    }
    // Behind a strict layer the page cannot load (a browser sends no key with a page): the docs say so.
    let strict = Router::new()
        .nest_service("/ops", admin::router(KeyManager::new(store.clone())))
        .layer(ApiKeyLayer::new(store.clone()));
    let strict = format!("http://{}", common::serve(strict).await);
    assert_eq!(http.get(format!("{strict}/ops/")).send().await.unwrap().status(), 401);
}
