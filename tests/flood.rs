//! A flood of well-formed keys with random public ids (CRC32 is public: anyone can mint keys that pass the format
//! check) against two instances of the example server (examples/server.rs) over a real PostgreSQL on
//! 127.0.0.1:5432 (`DATABASE_URL`) and a real Redis on 127.0.0.1:6379 (`REDIS_URL`): the store must see at most
//! 1 % of the 10 000 requests, counted by the crate's metrics (`tower_api_key_store_lookups_total`, read through
//! the example's Prometheus recorder) and, for PostgreSQL, by the database's own statistics
//! (`pg_stat_user_tables` of the namespace's `api_keys` table). A valid key keeps working throughout, and a key
//! issued on the other instance during the flood works within a second. Prints the figures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;
#[path = "../examples/server.rs"]
#[allow(dead_code, unreachable_pub)]
mod server;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};
use tower_api_key::{KeyFormat, KeyManager, NewKey, UsageTracker};

const FLOOD: usize = 10_000;
const WORKERS: usize = 16;

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// One flood at a time: the filter counters have no store label.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

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

/// The sum of the samples of `name` whose labels contain every one of `labels`, from `/metrics`.
async fn metric(http: &reqwest::Client, base: &str, name: &str, labels: &[&str]) -> u64 {
    let text = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(name) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

/// Index and sequential scans of the namespace's table, once the statistics stop moving (other backends flush
/// theirs asynchronously: at most every second while busy, within 10 s once idle).
async fn pg_scans(pool: &sqlx::PgPool, namespace: &str) -> i64 {
    let read = || async {
        let mut conn = pool.acquire().await.unwrap();
        sqlx::query("SELECT pg_stat_clear_snapshot()").execute(&mut *conn).await.unwrap();
        let (scans,): (i64,) = sqlx::query_as(
            "SELECT COALESCE(idx_scan, 0) + COALESCE(seq_scan, 0) FROM pg_stat_user_tables
             WHERE schemaname = $1 AND relname = 'api_keys'",
        )
        .bind(namespace)
        .fetch_one(&mut *conn)
        .await
        .unwrap();
        scans
    };
    let mut last = read().await;
    let mut stable_since = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(15);
    while stable_since.elapsed() < Duration::from_millis(2500) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = read().await;
        if now != last {
            last = now;
            stable_since = Instant::now();
        }
    }
    last
}

async fn status(http: &reqwest::Client, base: &str, key: &str) -> u16 {
    http.get(format!("{base}/whoami")).bearer_auth(key).send().await.unwrap().status().as_u16()
}

async fn flood(kind: &'static str, namespace: &str, pool: Option<&sqlx::PgPool>) {
    let _serial = SERIAL.lock().await;
    assert!(server::prometheus().is_some(), "the example's Prometheus recorder");
    let a = instance(kind, namespace).await;
    let b = instance(kind, namespace).await;
    let http = common::client();
    let keys = KeyManager::from_shared(a.backend.store.clone());
    let admin = keys.issue(NewKey::system("ops").scopes(["keys:admin", "whoami"]).unwrap()).await.unwrap();
    let admin_key = admin.key.expose_secret().to_owned();
    let valid = keys.issue(NewKey::user("valid")).await.unwrap();
    let valid_key: Arc<str> = valid.key.expose_secret().into();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !((a.backend.filter_ready)() && (b.backend.filter_ready)()) {
        assert!(Instant::now() < deadline, "{kind}: the id filters were not ready within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Warm both caches with the keys used during the flood.
    for base in [&a.base, &b.base] {
        assert_eq!(status(&http, base, &valid_key).await, 200);
        assert_eq!(status(&http, base, &admin_key).await, 200);
    }

    let store_label = format!("store=\"{kind}\"");
    let lookups = "tower_api_key_store_lookups_total";
    let lookups_before = metric(&http, &a.base, lookups, &[&store_label]).await;
    let absent_before = metric(&http, &a.base, "tower_api_key_filter_total", &["answer=\"absent\""]).await;
    let scans_before = match pool {
        Some(pool) => pg_scans(pool, namespace).await,
        None => 0,
    };

    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..WORKERS {
        let (http, bases, valid_key) = (http.clone(), [a.base.clone(), b.base.clone()], valid_key.clone());
        workers.spawn(async move {
            let mut valid_ok = 0;
            for i in (w..FLOOD).step_by(WORKERS) {
                let base = &bases[i % 2];
                let unknown = KeyFormat::new().issue(NewKey::user("x"), SystemTime::now()).key;
                assert_eq!(status(&http, base, unknown.expose_secret()).await, 401, "{kind}: an unknown key");
                if i % 50 == 0 {
                    assert_eq!(status(&http, base, &valid_key).await, 200, "{kind}: the valid key during the flood");
                    valid_ok += 1;
                }
            }
            valid_ok
        });
    }
    // Meanwhile, a key issued on b works on a within a second.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let res = http
        .post(format!("{}/admin/keys", b.base))
        .bearer_auth(&admin_key)
        .json(&json!({"kind": "user", "owner": "late", "scopes": ["whoami"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let issued = Instant::now();
    let late: Value = res.json().await.unwrap();
    let late_key = late["key"].as_str().unwrap().to_owned();
    let late_delay = loop {
        if status(&http, &a.base, &late_key).await == 200 {
            break issued.elapsed();
        }
        assert!(issued.elapsed() < Duration::from_secs(1), "{kind}: a key issued on b is refused by a after 1 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let valid_ok: usize = workers.join_all().await.into_iter().sum();
    let elapsed = started.elapsed();
    assert_eq!(valid_ok, FLOOD / 50);

    let reached = metric(&http, &a.base, lookups, &[&store_label]).await - lookups_before;
    let absent = metric(&http, &a.base, "tower_api_key_filter_total", &["answer=\"absent\""]).await - absent_before;
    println!(
        "{kind}: {FLOOD} random-id requests (+{valid_ok} valid) over 2 instances in {elapsed:?} ({:.0} req/s): \
         {reached} store lookups (metrics), {absent} answered by the id filter; a key issued on b worked on a \
         after {late_delay:?}",
        (FLOOD + valid_ok) as f64 / elapsed.as_secs_f64()
    );
    assert!(reached <= (FLOOD / 100) as u64, "{kind}: the store saw {reached} lookups for {FLOOD} unknown ids");
    assert!(absent >= (FLOOD * 98 / 100) as u64, "{kind}: only {absent} answered by the filter");
    if let Some(pool) = pool {
        let scans = pg_scans(pool, namespace).await - scans_before;
        println!("{kind}: pg_stat_user_tables: {scans} index + sequential scans of {namespace}.api_keys");
        assert!(scans <= (FLOOD / 100) as i64, "{kind}: PostgreSQL saw {scans} scans for {FLOOD} unknown ids");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_id_flood_leaves_postgres_idle() {
    let ns = format!("tak_flood_{}", tower_api_key::KeyId::random().as_str().to_lowercase());
    let pool = sqlx::PgPool::connect(&database_url()).await.unwrap();
    flood("postgres", &ns, Some(&pool)).await;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")).execute(&pool).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_random_id_flood_leaves_redis_idle() {
    let ns = format!("tak_flood_{}", tower_api_key::KeyId::random());
    flood("redis", &ns, None).await;
}
