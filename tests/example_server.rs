//! Drives the example server's router (examples/server.rs) end to end over HTTP: the README's first command.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::time::{Duration, SystemTime};

use serde_json::{Value, json};
use tower_api_key::{ManualClock, MemoryStore, UsageTracker};

use common::{SERVICE_KEY, USER_KEY};

struct Demo {
    base: String,
    http: reqwest::Client,
    clock: ManualClock,
    store: MemoryStore,
}

async fn start() -> Demo {
    let clock = ManualClock::new(SystemTime::now());
    let store = common::demo_store();
    let usage = UsageTracker::spawn(store.clone(), Duration::from_secs(3600));
    let app = server::app(store.clone(), clock.clone(), usage).unwrap();
    let addr = common::serve(app).await;
    Demo { base: format!("http://{addr}"), http: common::client(), clock, store }
}

impl Demo {
    async fn get(&self, path: &str, key: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        req.send().await.unwrap()
    }

    async fn post(&self, path: &str, key: &str, body: Option<Value>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).bearer_auth(key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn health_needs_no_key_and_whoami_describes_the_principal() {
    let d = start().await;
    assert_eq!(d.get("/health", None).await.status(), 200);

    let res = d.get("/whoami", None).await;
    assert_eq!(res.status(), 401);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with("Bearer realm=\""), "{challenge}");

    for (key, kind, id) in [(USER_KEY, "user", "demo-user"), (SERVICE_KEY, "system", "demo-service")] {
        let res = d.get("/whoami", Some(key)).await;
        assert_eq!(res.status(), 200);
        let text = res.text().await.unwrap();
        assert!(!text.contains(key), "the key must never be echoed");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["kind"], kind);
        assert_eq!(body["id"], id);
        assert_eq!(body["key_id"].as_str().unwrap().len(), 12);
        assert!(body["scopes"].as_array().unwrap().contains(&json!("whoami")));
    }
}

#[tokio::test]
async fn every_source_and_the_custom_scheme_work() {
    let d = start().await;
    let url = format!("{}/whoami", d.base);
    for (name, value) in [
        ("authorization", format!("Bearer {USER_KEY}")),
        ("authorization", format!("Api-Key {USER_KEY}")),
        ("authorization", format!("api-key   {USER_KEY}")),
        ("api-key", USER_KEY.to_owned()),
        ("x-api-key", USER_KEY.to_owned()),
    ] {
        let res = d.http.get(&url).header(name, &value).send().await.unwrap();
        assert_eq!(res.status(), 200, "{name}: {}", value.split(' ').next().unwrap());
        // Only the deprecated header earns the client a `Deprecation` notice (RFC 9745).
        let deprecation = res.headers().get("deprecation").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(deprecation.as_deref(), (name == "x-api-key").then_some("@1735689600"), "{name}");
    }
    // Priority: a bad Bearer wins over a good API-Key header.
    let res = d.http.get(&url).bearer_auth("wrong").header("api-key", USER_KEY).send().await.unwrap();
    assert_eq!(res.status(), 401);
    // A good Bearer wins over a bad API-Key header.
    let res = d.http.get(&url).bearer_auth(SERVICE_KEY).header("api-key", "wrong").send().await.unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["id"], "demo-service");
}

#[tokio::test]
async fn admin_lifecycle_issue_use_list_rotate_with_grace_revoke() {
    let d = start().await;

    // The user key lacks keys:admin.
    let res = d.post("/admin/keys", USER_KEY, Some(json!({"name": "x", "kind": "user", "owner": "bob"}))).await;
    assert_eq!(res.status(), 403);
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("error=\"insufficient_scope\"") && challenge.contains("scope=\"keys:admin\""));

    // Issue.
    let res = d
        .post(
            "/admin/keys",
            SERVICE_KEY,
            Some(json!({"name": "bob laptop", "kind": "user", "owner": "bob", "scopes": ["whoami"]})),
        )
        .await;
    assert_eq!(res.status(), 201);
    let issued: Value = res.json().await.unwrap();
    let key = issued["key"].as_str().unwrap().to_owned();
    let id = issued["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("tak_user_"));
    assert_eq!(key.split('_').nth(2).unwrap(), id, "the id is the middle part of the key");
    assert_eq!(issued["status"], "active");

    // Use.
    let who: Value = d.get("/whoami", Some(&key)).await.json().await.unwrap();
    assert_eq!(who["id"], "bob");
    assert_eq!(who["key_id"], id.as_str());

    // List and get: never a key.
    let res = d.get("/admin/keys?owner=bob", Some(SERVICE_KEY)).await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&key) && !text.contains(key.rsplit('_').next().unwrap()));
    let list: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(list["items"][0]["id"], id.as_str());
    let one: Value = d.get(&format!("/admin/keys/{id}"), Some(SERVICE_KEY)).await.json().await.unwrap();
    assert_eq!(one["owner"], "bob");
    assert!(one.get("key").is_none() && one.get("digest").is_none());

    // Rotate with a 60 s grace.
    let res = d.post(&format!("/admin/keys/{id}/rotate"), SERVICE_KEY, Some(json!({"grace_seconds": 60}))).await;
    assert_eq!(res.status(), 201);
    let rotated: Value = res.json().await.unwrap();
    let new_key = rotated["key"].as_str().unwrap().to_owned();
    let new_id = rotated["id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, id);
    assert_eq!(rotated["owner"], "bob");
    assert_eq!(rotated["scopes"], json!(["whoami"]));

    assert_eq!(d.get("/whoami", Some(&new_key)).await.status(), 200);
    d.clock.advance(Duration::from_secs(60) - Duration::from_nanos(1));
    assert_eq!(d.get("/whoami", Some(&key)).await.status(), 200, "old key works one tick before the grace ends");
    d.clock.advance(Duration::from_nanos(1));
    assert_eq!(d.get("/whoami", Some(&key)).await.status(), 401, "old key fails when the grace ends");
    assert_eq!(d.get("/whoami", Some(&new_key)).await.status(), 200);
    let old: Value = d.get(&format!("/admin/keys/{id}"), Some(SERVICE_KEY)).await.json().await.unwrap();
    assert_eq!(old["status"], "rotated_out");

    // Revoke: the next request fails.
    let res = d.post(&format!("/admin/keys/{new_id}/revoke"), SERVICE_KEY, None).await;
    assert_eq!(res.status(), 200);
    let revoked: Value = res.json().await.unwrap();
    assert_eq!(revoked["status"], "revoked");
    assert_eq!(d.get("/whoami", Some(&new_key)).await.status(), 401);
    assert_eq!(d.store.len(), 4);
}

#[tokio::test]
async fn admin_rejects_bad_input_with_problem_details() {
    let d = start().await;
    let cases = [
        ("/admin/keys", Some(json!({"name": "x", "kind": "user", "owner": "bob", "extra": 1})), 400),
        ("/admin/keys", Some(json!({"name": "x", "kind": "robot", "owner": "bob"})), 400),
        ("/admin/keys", Some(json!({"name": "x", "kind": "user"})), 400),
        ("/admin/keys", Some(json!({"name": "x", "kind": "user", "owner": "b", "scopes": ["has space"]})), 400),
        ("/admin/keys/AAAAAAAAAAAA/revoke", None, 404),
        ("/admin/keys/not-an-id/revoke", None, 404),
        ("/admin/keys/AAAAAAAAAAAA/rotate", Some(json!({"grace_seconds": 5})), 404),
        ("/admin/keys/AAAAAAAAAAAA/rotate", Some(json!({"grace": 5})), 400),
    ];
    for (path, body, status) in cases {
        let res = d.post(path, SERVICE_KEY, body.clone()).await;
        assert_eq!(res.status(), status, "{path} {body:?}");
        assert_eq!(res.headers()["content-type"], "application/problem+json", "{path}");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["status"], status);
    }
    let res = d
        .http
        .post(format!("{}/admin/keys", d.base))
        .bearer_auth(SERVICE_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(d.get("/admin/keys/AAAAAAAAAAAA", Some(SERVICE_KEY)).await.status(), 404);
}
