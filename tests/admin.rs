//! The admin API as an attacker drives it: numbers that overflow time, bodies of the wrong shape or size, strings
//! without end, and concurrent changes of one key. Every refusal is a 4xx that changes nothing; the server keeps
//! answering afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tower_api_key::{
    HourlyUsage, KeyId, KeyManager, KeyStatus, KeyStore, ListQuery, ManualClock, MemoryStore, NewKey, Usage,
    UsageTracker, admin,
};

struct Admin {
    base: String,
    http: reqwest::Client,
    key: String,
    store: MemoryStore,
}

async fn start() -> Admin {
    start_with(KeyManager::new).await
}

/// An admin API over a fresh memory store, managed by the `KeyManager` that `manager` makes of it.
async fn start_with(manager: impl FnOnce(MemoryStore) -> KeyManager) -> Admin {
    let store = MemoryStore::new();
    let key = store.add(NewKey::system("ops").scopes(["keys:admin"]).unwrap()).unwrap().key.expose_secret().to_owned();
    let app = axum::Router::new()
        .nest("/admin", admin::router(manager(store.clone())))
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
        json!({"kind": "user", "owner": "bob", "rate_limit": {"requests": 5, "period_seconds": 31_536_001}}),
        json!({"kind": "user", "owner": "bob", "rate_limit": {"requests": u32::MAX, "period_seconds": u64::MAX}}),
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

/// 2030-01-01T10:20:34Z: the clock of the usage tests, 20 minutes into an hour.
fn usage_now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_893_492_000 + 1234)
}

#[tokio::test]
async fn usage_answers_the_last_hours_zero_filled_by_the_managers_clock() {
    let clock = ManualClock::new(usage_now());
    let a = start_with(|store| KeyManager::new(store).clock(clock.clone())).await;
    let (status, issued) = a.post("/keys", &json!({"kind": "user", "owner": "alice"})).await;
    assert_eq!(status, 201, "{issued}");
    let id: KeyId = issued["id"].as_str().unwrap().parse().unwrap();
    let hour = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_492_000); // 10:00
    let h = Duration::from_secs(3600);

    // Through the tracker: two uses this hour, one in the hour before (the flush spans the boundary).
    let tracker = UsageTracker::spawn(a.store.clone(), Duration::from_secs(3600));
    tracker.record(&id, hour - Duration::from_secs(1));
    tracker.record(&id, hour);
    tracker.record(&id, hour + Duration::from_secs(1200));
    tracker.shutdown().await;
    // Directly: four uses three hours ago, and some outside every window (a day and a week ago, next hour).
    let direct = [
        Usage::new(id, 4, hour - 3 * h + Duration::from_secs(59)),
        Usage::new(id, 100, hour - 24 * h),
        Usage::new(id, 1000, hour - 168 * h),
        Usage::new(id, 10_000, hour + h),
    ];
    a.store.record_usage(&direct).await.unwrap();

    let (status, body) = a.send(reqwest::Method::GET, &format!("/keys/{id}/usage"), None, None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], id.as_str());
    assert_eq!(body.as_object().unwrap().len(), 2, "{body}");
    let hours = body["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24, "the default window");
    assert_eq!(hours[23], json!({"hour": "2030-01-01T10:00:00.000000000Z", "count": 2}));
    assert_eq!(hours[22], json!({"hour": "2030-01-01T09:00:00.000000000Z", "count": 1}));
    assert_eq!(hours[20], json!({"hour": "2030-01-01T07:00:00.000000000Z", "count": 4}));
    assert_eq!(hours[0]["hour"], "2029-12-31T11:00:00.000000000Z");
    let counts: Vec<u64> = hours.iter().map(|e| e["count"].as_u64().unwrap()).collect();
    assert_eq!(counts.iter().sum::<u64>(), 7, "zero elsewhere: {counts:?}");
    for (back, entry) in (0..24).rev().zip(hours) {
        // Each hour as the crate writes times.
        let want = serde_json::to_value(HourlyUsage { hour: hour - back * h, count: 0 }).unwrap();
        assert_eq!(entry["hour"], want["hour"], "one entry per hour, oldest first");
    }

    for (hours, sum, first) in [
        (1, 2, "2030-01-01T10:00:00.000000000Z"),
        (25, 107, "2029-12-31T10:00:00.000000000Z"),
        (168, 107, "2029-12-25T11:00:00.000000000Z"),
    ] {
        let (status, body) = a.send(reqwest::Method::GET, &format!("/keys/{id}/usage?hours={hours}"), None, None).await;
        assert_eq!(status, 200, "{body}");
        let entries = body["hours"].as_array().unwrap();
        assert_eq!(entries.len(), hours, "{body}");
        assert_eq!(entries.iter().map(|e| e["count"].as_u64().unwrap()).sum::<u64>(), sum, "{hours} hours");
        assert_eq!(
            (entries[0]["hour"].as_str(), entries[hours - 1]["hour"].as_str()),
            (Some(first), Some("2030-01-01T10:00:00.000000000Z"))
        );
    }

    // The window moves with the manager's clock: an hour later, the last entry is the hour with 10 000.
    clock.advance(h);
    let (_, body) = a.send(reqwest::Method::GET, &format!("/keys/{id}/usage?hours=2"), None, None).await;
    assert_eq!(
        body["hours"],
        json!([
            {"hour": "2030-01-01T10:00:00.000000000Z", "count": 2},
            {"hour": "2030-01-01T11:00:00.000000000Z", "count": 10_000},
        ])
    );

    // A revoked key keeps its counts.
    let (status, _) = a.send(reqwest::Method::POST, &format!("/keys/{id}/revoke"), None, None).await;
    assert_eq!(status, 200);
    let (_, body) = a.send(reqwest::Method::GET, &format!("/keys/{id}/usage?hours=2"), None, None).await;
    assert_eq!(body["hours"][1]["count"], 10_000);
}

#[tokio::test]
async fn usage_parameters_and_ids_are_checked() {
    let a = start().await;
    let id = a.issue("alice").await;
    for (query, want) in [
        ("?hours=0", 400),
        ("?hours=169", 400),
        ("?hours=-1", 400),
        ("?hours=x", 400),
        ("?hours=", 400),
        ("?hours=1.5", 400),
        ("?hours=4294967296", 400),
        ("?hours=99999999999999999999999999", 400),
        ("?hours=24&hours=25", 400),
        ("?days=1", 400),
        ("?hours=1", 200),
        ("?hours=168", 200),
        ("", 200),
    ] {
        let (status, body) = a.send(reqwest::Method::GET, &format!("/keys/{id}/usage{query}"), None, None).await;
        assert_eq!(status, want, "{query}: {body}");
        if want == 400 {
            assert_eq!(body["status"], 400, "problem details: {body}");
        } else {
            let all_zero = body["hours"].as_array().unwrap().iter().all(|e| e["count"] == 0);
            assert!(all_zero, "an unused key: {body}");
        }
    }
    for unknown in ["AAAAAAAAAAAA", "not-an-id", "%00"] {
        let (status, body) = a.send(reqwest::Method::GET, &format!("/keys/{unknown}/usage"), None, None).await;
        assert_eq!(status, 404, "{unknown}: {body}");
    }
}

#[tokio::test]
async fn usage_answers_carry_no_key_material() {
    let a = start().await;
    let (status, issued) = a.post("/keys", &json!({"kind": "user", "owner": "alice"})).await;
    assert_eq!(status, 201);
    let key = issued["key"].as_str().unwrap().to_owned();
    let id: KeyId = issued["id"].as_str().unwrap().parse().unwrap();
    let record = a.store.get(&id).await.unwrap().unwrap();
    a.store.record_usage(&[Usage::new(id, 5, SystemTime::now())]).await.unwrap();
    let res = a.http.get(format!("{}/keys/{id}/usage", a.base)).bearer_auth(&a.key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    let secret = key.rsplit('_').next().unwrap();
    for material in [key.as_str(), secret, &record.digest.to_hex(), &record.digest.to_hex()[..16], a.key.as_str()] {
        assert!(!text.contains(material), "{text}");
    }
    assert!(text.contains("\"count\":5"), "{text}");
}

/// A store that keeps keys but has no counts per hour (the trait's default): the endpoint answers 501.
#[derive(Debug, Clone, Default)]
struct NoHourly(MemoryStore);

#[tower_api_key::async_trait]
impl KeyStore for NoHourly {
    async fn lookup(&self, by: tower_api_key::Lookup<'_>) -> tower_api_key::LookupResult {
        self.0.lookup(by).await
    }
    async fn get(&self, id: &KeyId) -> Result<Option<tower_api_key::KeyRecord>, tower_api_key::StoreError> {
        self.0.get(id).await
    }
}

#[tokio::test]
async fn usage_from_a_store_without_hours_is_a_501() {
    let store = NoHourly::default();
    let admin_key = store.0.add(NewKey::system("ops").scopes(["keys:admin"]).unwrap()).unwrap();
    let user = store.0.add(NewKey::user("alice")).unwrap();
    let app = axum::Router::new()
        .nest("/admin", admin::router(KeyManager::new(store.clone())))
        .layer(tower_api_key::ApiKeyLayer::new(store));
    let base = format!("http://{}/admin", common::serve(app).await);
    let res = common::client()
        .get(format!("{base}/keys/{}/usage", user.record.id))
        .bearer_auth(admin_key.key.expose_secret())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 501);
    let body: Value = serde_json::from_str(&res.text().await.unwrap()).unwrap();
    assert_eq!(body["status"], 501, "{body}");
}
