//! The admin API as an attacker drives it: numbers that overflow time, bodies of the wrong shape or size, strings
//! without end, and concurrent changes of one key. Every refusal is a 4xx that changes nothing; the server keeps
//! answering afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Value, json};
use tower_api_key::{KeyId, KeyManager, KeyStatus, KeyStore, ListQuery, MemoryStore, NewKey, admin};

struct Admin {
    base: String,
    http: reqwest::Client,
    key: String,
    store: MemoryStore,
}

async fn start() -> Admin {
    let store = MemoryStore::new();
    let key = store.add(NewKey::system("ops").scopes(["keys:admin"]).unwrap()).unwrap().key.expose_secret().to_owned();
    let app = axum::Router::new()
        .nest("/admin", admin::router(KeyManager::new(store.clone())))
        .layer(tower_api_key::ApiKeyLayer::new(store.clone()));
    let addr = common::serve(app).await;
    Admin { base: format!("http://{addr}/admin"), http: common::client(), key, store }
}

impl Admin {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base)).bearer_auth(&self.key);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = body {
            req = req.body(b.to_owned());
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, Some(&body.to_string()), Some("application/json")).await
    }

    async fn issue(&self, owner: &str) -> String {
        let (status, body) = self.post("/keys", &json!({"kind": "user", "owner": owner})).await;
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }

    async fn records(&self) -> Vec<tower_api_key::KeyRecord> {
        self.store.list(&ListQuery::new().limit(1000), std::time::SystemTime::now()).await.unwrap().items
    }
}

#[tokio::test]
async fn time_overflow_is_a_400_and_leaves_nothing_behind() {
    let a = start().await;
    let id = a.issue("alice").await;
    let before = a.records().await.len();
    for grace in [u64::MAX, 1 << 62, 300_000_000_000] {
        let (status, body) = a.post(&format!("/keys/{id}/rotate"), &json!({ "grace_seconds": grace })).await;
        assert_eq!(status, 400, "grace {grace}: {body}");
    }
    for secs in [u64::MAX, 1 << 62, 300_000_000_000] {
        let (status, body) =
            a.post("/keys", &json!({"kind": "user", "owner": "bob", "expires_in_seconds": secs})).await;
        assert_eq!(status, 400, "expires_in_seconds {secs}: {body}");
    }
    assert_eq!(a.records().await.len(), before, "no orphaned successor, no key past year 9999");
    let old = a.store.get(&id.parse::<KeyId>().unwrap()).await.unwrap().unwrap();
    assert_eq!(old.rotated_to, None);
    // The largest accepted expiry still lists and shows.
    let far: u64 = 253_402_300_799 - 1_800_000_000; // comfortably before 9999-12-31 from today
    let (status, body) = a.post("/keys", &json!({"kind": "user", "owner": "far", "expires_in_seconds": far})).await;
    assert_eq!(status, 201, "{body}");
    let (status, list) = a.send(reqwest::Method::GET, "/keys", None, None).await;
    assert_eq!(status, 200);
    assert!(list["items"].as_array().unwrap().iter().any(|k| k["owner"] == "far"));
    let (status, _) =
        a.send(reqwest::Method::GET, &format!("/keys/{}", body["id"].as_str().unwrap()), None, None).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bodies_must_be_json_objects_of_bounded_size() {
    let a = start().await;
    let id = a.issue("alice").await;
    let rotate = format!("/keys/{id}/rotate");
    // An array where an object belongs: serde would read `[1]` as `{"grace_seconds": 1}`.
    for body in ["[1]", "[]", "\"x\"", "1", "null", "[{\"grace_seconds\": 1}]"] {
        let (status, problem) = a.send(reqwest::Method::POST, &rotate, Some(body), Some("application/json")).await;
        assert_eq!(status, 400, "{body}: {problem}");
        assert_eq!(problem["status"], 400);
    }
    for body in ["[\"user\", \"bob\"]", "{\"kind\": \"user\", \"owner\": \"b\", \"scopes\": {\"a\": 1}}"] {
        let (status, _) = a.send(reqwest::Method::POST, "/keys", Some(body), Some("application/json")).await;
        assert_eq!(status, 400, "{body}");
    }
    let key = a.store.get(&id.parse::<KeyId>().unwrap()).await.unwrap().unwrap();
    assert_eq!(key.rotated_to, None, "no refused body rotated the key");

    // Content types.
    let ok = json!({"grace_seconds": 1}).to_string();
    for ct in [None, Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx")] {
        let (status, _) = a.send(reqwest::Method::POST, &rotate, Some(&ok), ct).await;
        assert_eq!(status, 415, "{ct:?}");
    }
    // Sizes: over the limit is 413, however it is sent.
    let huge = json!({"kind": "user", "owner": "bob", "name": "n".repeat(1 << 20)}).to_string();
    let (status, _) = a.send(reqwest::Method::POST, "/keys", Some(&huge), Some("application/json")).await;
    assert_eq!(status, 413);
    // Bounded strings and lists within the size limit are 400.
    let cases = [
        json!({"kind": "user", "owner": "bob", "name": "n".repeat(300)}),
        json!({"kind": "user", "owner": "o".repeat(300)}),
        json!({"kind": "user", "owner": ""}),
        json!({"kind": "user", "owner": "bob", "scopes": (0..65).map(|i| format!("s{i}")).collect::<Vec<_>>()}),
        json!({"kind": "user", "owner": "bob", "scopes": ["s".repeat(129)]}),
        json!({"kind": "user", "owner": "bob", "rate_limit": {"requests": 0, "period_seconds": 1}}),
        json!({"kind": "user", "owner": "bob", "rate_limit": {"requests": 5, "period_seconds": 0}}),
        json!({"kind": "user", "owner": "bob", "rate_limit": {"requests": 5000000000u64, "period_seconds": 1}}),
        json!({"kind": "user", "owner": "bob", "metadata": (0..33).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()}),
    ];
    let before = a.records().await.len();
    for body in &cases {
        let (status, problem) = a.post("/keys", body).await;
        assert_eq!(status, 400, "{problem}");
    }
    assert_eq!(a.records().await.len(), before, "nothing stored");
    assert_eq!(a.issue("still-working").await.len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_of_one_key_give_one_successor_and_409s() {
    let a = std::sync::Arc::new(start().await);
    for round in 0..20 {
        let id = a.issue(&format!("u{round}")).await;
        let mut calls = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (a, path) = (a.clone(), format!("/keys/{id}/rotate"));
            calls.spawn(async move { a.post(&path, &json!({"grace_seconds": 60})).await.0 });
        }
        let statuses: Vec<u16> = calls.join_all().await;
        assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
        assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    }
    let records = a.records().await;
    // 1 admin key + 20 keys + 20 successors: none orphaned.
    assert_eq!(records.len(), 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_revoke_racing_a_rotate_never_leaves_an_active_successor() {
    let a = start().await;
    for round in 0..30 {
        let id = a.issue(&format!("u{round}")).await;
        let (rotate_path, revoke_path, grace) =
            (format!("/keys/{id}/rotate"), format!("/keys/{id}/revoke"), json!({"grace_seconds": 3600}));
        let rotate = a.post(&rotate_path, &grace);
        let revoke = a.send(reqwest::Method::POST, &revoke_path, None, None);
        let ((rot, _), (rev, _)) = tokio::join!(rotate, revoke);
        assert!(rot == 201 || rot == 409, "{rot}");
        assert_eq!(rev, 200);
    }
    let now = std::time::SystemTime::now();
    for r in a.records().await.iter().filter(|r| r.owner.starts_with('u')) {
        assert_eq!(r.status_at(now), KeyStatus::Revoked, "{} of {}", r.id, r.owner);
    }
}

#[tokio::test]
async fn patch_changes_what_it_names_and_refuses_the_rest() {
    let a = start().await;
    let id = a.issue("alice").await;
    let path = format!("/keys/{id}");
    let patch = |body: Value| {
        let body = body.to_string();
        let path = path.clone();
        let a = &a;
        async move { a.send(reqwest::Method::PATCH, &path, Some(&body), Some("application/json")).await }
    };
    let (status, info) = patch(json!({
        "name": "renamed",
        "scopes": ["read", "billing:*"],
        "enabled": false,
        "expires_in_seconds": 3600,
        "rate_limit": {"requests": 10, "period_seconds": 60},
        "metadata": {"team": "core"}
    }))
    .await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["name"], "renamed");
    assert_eq!(info["enabled"], false);
    assert_eq!(info["status"], "disabled");
    assert_eq!(info["scopes"], json!(["read", "billing:*"]));
    assert_eq!(info["rate_limit"], json!({"requests": 10, "period_seconds": 60.0}));
    assert_eq!(info["metadata"]["team"], "core");
    assert!(info["expires_at"].is_string());
    // null clears the expiry and the limit; the rest is kept.
    let (status, info) = patch(json!({"expires_at": null, "rate_limit": null, "enabled": true})).await;
    assert_eq!(status, 200, "{info}");
    assert!(info["expires_at"].is_null() && info["rate_limit"].is_null());
    assert_eq!((info["name"].as_str(), info["status"].as_str()), (Some("renamed"), Some("active")));
    let (status, info) = patch(json!({"expires_at": "2030-01-01T00:00:00Z"})).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["expires_at"], "2030-01-01T00:00:00.000000000Z");

    for bad in [
        json!({"owner": "mallory"}),
        json!({"revoked_at": null}),
        json!({"name": 5}),
        json!({"enabled": "yes"}),
        json!({"expires_in_seconds": u64::MAX}),
        json!({"expires_in_seconds": 300_000_000_000u64}),
        json!({"expires_at": "10000-01-01T00:00:00Z"}),
        json!({"expires_at": "tomorrow"}),
        json!({"expires_at": null, "expires_in_seconds": 5}),
        json!({"scopes": ["has space"]}),
        json!({"name": "n".repeat(300)}),
        json!({"rate_limit": {"requests": 0, "period_seconds": 1}}),
    ] {
        let (status, problem) = patch(bad.clone()).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let (status, _) = a.send(reqwest::Method::PATCH, &path, Some("[1]"), Some("application/json")).await;
    assert_eq!(status, 400);
    let (status, _) = a.send(reqwest::Method::PATCH, "/keys/AAAAAAAAAAAA", Some("{}"), Some("application/json")).await;
    assert_eq!(status, 404);
    let record = a.store.get(&id.parse::<KeyId>().unwrap()).await.unwrap().unwrap();
    assert_eq!(record.name, "renamed", "refused patches changed nothing");
}

#[tokio::test]
async fn listing_parameters_are_checked() {
    let a = start().await;
    for _ in 0..3 {
        a.issue("pager").await;
    }
    for (query, want) in [
        ("?after=not-an-id", 400),
        ("?limit=-1", 400),
        ("?limit=99999999999999999999999", 400),
        ("?kind=robot", 400),
        ("?status=zombie", 400),
        ("?unknown=1", 400),
        ("?limit=0", 200),
        ("?limit=1000000", 200),
        ("?owner=pager&limit=1", 200),
    ] {
        let (status, body) = a.send(reqwest::Method::GET, &format!("/keys{query}"), None, None).await;
        assert_eq!(status, want, "{query}: {body}");
    }
    // Paging one at a time visits every key once.
    let mut seen = Vec::new();
    let mut query = "?owner=pager&limit=1".to_owned();
    loop {
        let (_, page) = a.send(reqwest::Method::GET, &format!("/keys{query}"), None, None).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_owned()));
        match page["next"].as_str() {
            Some(next) => query = format!("?owner=pager&limit=1&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 3);
}
