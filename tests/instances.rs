//! Two instances of the example server (examples/server.rs) on two ports, over one PostgreSQL and one Redis on
//! 127.0.0.1 (`DATABASE_URL`, `REDIS_URL`), as the README's "Running N instances" starts them: keys issued on one
//! work on the other, a revocation on one is refused by the other within a second (the measured delays are
//! printed), a limit of N per window lets N requests through across both, and a restart keeps keys and
//! revocations. Then the same over a Redis store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tower_api_key::{KeyManager, NewKey, UsageTracker};

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

struct Instance {
    base: String,
    backend: server::Backend,
}

async fn instance(kind: &str, namespace: &str) -> Instance {
    let (db, redis) = (database_url(), redis_url());
    let backend = server::backend(kind, namespace, Some(&db), Some(&redis))
        .await
        .unwrap_or_else(|e| panic!("{kind} backend at {db} / {redis}: {e}"));
    let usage = UsageTracker::spawn(backend.store.clone(), Duration::from_secs(3600));
    let app =
        server::app_with(backend.store.clone(), tower_api_key::SystemClock, usage, backend.limiter.clone()).unwrap();
    let addr = common::serve(app).await;
    Instance { base: format!("http://{addr}"), backend }
}

async fn status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
    http.get(format!("{base}/whoami")).bearer_auth(key).send().await.unwrap().status().as_u16()
}

/// Waits until the subscriptions of both instances are in (each keeps one in `keep_alive`).
async fn settle() {
    tokio::time::sleep(Duration::from_millis(300)).await;
}

async fn two_instances_share_keys_revocations_and_limits(kind: &str, namespace: &str) {
    let a = instance(kind, namespace).await;
    let b = instance(kind, namespace).await;
    settle().await;
    let http = common::client();
    // An admin key, issued straight into the shared store.
    let admin = KeyManager::from_shared(a.backend.store.clone())
        .issue(NewKey::system("ops").scopes(["keys:admin", "whoami"]).unwrap())
        .await
        .unwrap();
    let admin_key = admin.key.expose_secret().to_owned();

    // Issued on a, works on b (b may have remembered it as unknown: the bus drops that too).
    let mut delays = Vec::new();
    let mut issue_delays = Vec::new();
    for round in 0..30 {
        let res = http
            .post(format!("{}/admin/keys", a.base))
            .bearer_auth(&admin_key)
            .json(&json!({"kind": "user", "owner": format!("u{round}"), "scopes": ["whoami"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201);
        let created: Value = res.json().await.unwrap();
        let (key, id) = (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());
        // b refuses the new id until the bus tells its id filter (milliseconds; the bound is 1 s).
        let issued_at = Instant::now();
        while status(&http, &b.base, &key).await != 200 {
            assert!(issued_at.elapsed() < Duration::from_secs(1), "{kind}: a key issued on a works on b within 1 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        issue_delays.push(issued_at.elapsed());
        assert_eq!(status(&http, &a.base, &key).await, 200);
        // Revoked on a: refused by b within the bound.
        let start = Instant::now();
        let res = http.post(format!("{}/admin/keys/{id}/revoke", a.base)).bearer_auth(&admin_key).send().await.unwrap();
        assert_eq!(res.status(), 200);
        loop {
            if status(&http, &b.base, &key).await == 401 {
                delays.push(start.elapsed());
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(1), "{kind}: b still accepts a key revoked on a after 1 s");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    delays.sort();
    issue_delays.sort();
    println!(
        "{kind}: a key issued on a worked on b after p50 {:?}, max {:?}",
        issue_delays[issue_delays.len() / 2],
        issue_delays[issue_delays.len() - 1]
    );
    let p = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{kind}: revocation on a refused by b after p50 {:?}, p99 {:?} (30 rounds, HTTP round trips included)",
        p(0.5),
        p(0.99)
    );

    // A limit of 6 per minute lets 6 requests through across both instances, not 12.
    let res = http
        .post(format!("{}/admin/keys", b.base))
        .bearer_auth(&admin_key)
        .json(&json!({"kind": "user", "owner": "limited", "scopes": ["whoami"], "rate_limit": {"requests": 6, "period_seconds": 60}}))
        .send()
        .await
        .unwrap();
    let limited: Value = res.json().await.unwrap();
    let limited_key = limited["key"].as_str().unwrap().to_owned();
    // Issued on b: a refuses it (401, before any rate limit is counted) until the bus reaches a's id filter.
    let issued_at = Instant::now();
    let mut passed = loop {
        match status(&http, &a.base, &limited_key).await {
            200 => break 1,
            401 => {
                assert!(issued_at.elapsed() < Duration::from_secs(1), "{kind}: the limited key reaches a within 1 s")
            }
            other => panic!("{kind}: status {other}"),
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    for i in 1..24 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        match status(&http, base, &limited_key).await {
            200 => passed += 1,
            429 => {}
            other => panic!("{kind}: status {other}"),
        }
    }
    assert_eq!(passed, 6, "{kind}: 6 per window across both instances");

    // A restart keeps keys and revocations.
    let kept = KeyManager::from_shared(a.backend.store.clone())
        .issue(NewKey::user("kept").scopes(["whoami"]).unwrap())
        .await
        .unwrap();
    let gone = KeyManager::from_shared(a.backend.store.clone()).issue(NewKey::user("gone")).await.unwrap();
    KeyManager::from_shared(a.backend.store.clone()).revoke(&gone.record.id).await.unwrap();
    drop(a);
    drop(b);
    let c = instance(kind, namespace).await;
    assert_eq!(status(&http, &c.base, kept.key.expose_secret()).await, 200, "{kind}: keys survive a restart");
    assert_eq!(status(&http, &c.base, gone.key.expose_secret()).await, 401, "{kind}: revocations survive a restart");
    let _ = SystemTime::now();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_instances_share_keys_revocations_and_limits() {
    let ns = format!("tak_inst_{}", tower_api_key::KeyId::random().as_str().to_lowercase());
    two_instances_share_keys_revocations_and_limits("postgres", &ns).await;
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")).execute(&pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_instances_share_keys_revocations_and_limits() {
    let ns = format!("tak_inst_{}", tower_api_key::KeyId::random());
    two_instances_share_keys_revocations_and_limits("redis", &ns).await;
}
