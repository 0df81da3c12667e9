//! Cache invalidation across instances over the real buses: Redis pub/sub on 127.0.0.1:6379 (`REDIS_URL`) and
//! PostgreSQL LISTEN/NOTIFY on 127.0.0.1:5432 (`DATABASE_URL`). Two caches stand for two instances over one
//! shared store; a change through one must reach the other's cache well under a second. Prints the measured
//! propagation delays (p50, p99).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use tower_api_key::{
    CacheConfig, CachedStore, KeyManager, KeyStore, Lookup, MemoryStore, NewKey, PostgresBus, RedisBus, Subscription,
};

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn namespace() -> String {
    format!("tak_inv_{}", tower_api_key::KeyId::random().as_str().to_lowercase())
}

/// Long TTLs: only the bus can make the second instance see a change in time.
fn config() -> CacheConfig {
    CacheConfig::new().positive_ttl(Duration::from_secs(600)).negative_ttl(Duration::from_secs(600))
}

async fn wait_connected(subscriptions: &[&Subscription], what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !subscriptions.iter().all(|s| s.is_connected()) {
        assert!(Instant::now() < deadline, "the {what} subscription did not connect within 10 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Revokes `rounds` keys through instance `a` and measures how long until instance `b` sees each revocation.
async fn measure(a: &CachedStore<Arc<MemoryStore>>, b: &CachedStore<Arc<MemoryStore>>, rounds: usize) -> Vec<Duration> {
    let keys = KeyManager::new(a.clone());
    let mut delays = Vec::new();
    for i in 0..rounds {
        let issued = keys.issue(NewKey::user(format!("u{i}"))).await.unwrap();
        let id = issued.record.id;
        // Warm instance b's cache with the active record.
        assert!(b.lookup(Lookup::Id(&id)).await.unwrap().unwrap().revoked_at.is_none());
        let start = Instant::now();
        keys.revoke(&id).await.unwrap();
        loop {
            let seen = b.lookup(Lookup::Id(&id)).await.unwrap().unwrap();
            if seen.revoked_at.is_some() {
                delays.push(start.elapsed());
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(1), "instance b still sees the key active after 1 s");
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }
    delays.sort();
    delays
}

fn report(what: &str, delays: &[Duration]) {
    let p = |q: f64| delays[((delays.len() as f64 - 1.0) * q).round() as usize];
    println!(
        "{what}: revocation seen by the other instance after p50 {:?}, p99 {:?}, max {:?} ({} rounds)",
        p(0.5),
        p(0.99),
        delays[delays.len() - 1],
        delays.len()
    );
    assert!(p(0.99) < Duration::from_millis(100), "{what}: p99 {:?}", p(0.99));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_pubsub_carries_a_revocation_to_the_other_instance() {
    let (url, ns) = (redis_url(), namespace());
    let shared = Arc::new(MemoryStore::new());
    let bus = RedisBus::connect(&url, &ns).await.unwrap_or_else(|e| panic!("Redis at {url}: {e}"));
    let a = CachedStore::new(shared.clone(), config()).with_bus(bus.clone());
    let b = CachedStore::new(shared.clone(), config()).with_bus(bus);
    let sa = RedisBus::subscribe(&url, &ns, a.invalidator()).unwrap();
    let sb = RedisBus::subscribe(&url, &ns, b.invalidator()).unwrap();
    wait_connected(&[&sa, &sb], "Redis").await;
    report("redis pub/sub", &measure(&a, &b, 200).await);

    // A key issued on a drops b's negative entry for it.
    let late = tower_api_key::KeyFormat::new().issue(NewKey::user("late"), std::time::SystemTime::now());
    assert!(b.lookup(Lookup::Id(&late.record.id)).await.unwrap().is_none());
    a.insert(&late.record).await.unwrap();
    let start = Instant::now();
    while b.lookup(Lookup::Id(&late.record.id)).await.unwrap().is_none() {
        assert!(start.elapsed() < Duration::from_secs(1), "a new key is still unknown on b after 1 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_notify_carries_a_revocation_to_the_other_instance() {
    let (url, ns) = (database_url(), namespace());
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url}: {e}"));
    let shared = Arc::new(MemoryStore::new());
    let a = CachedStore::new(shared.clone(), config()).with_bus(PostgresBus::new(pool.clone(), &ns));
    let b = CachedStore::new(shared.clone(), config()).with_bus(PostgresBus::new(pool.clone(), &ns));
    let sa = PostgresBus::subscribe(pool.clone(), &ns, a.invalidator());
    let sb = PostgresBus::subscribe(pool.clone(), &ns, b.invalidator());
    wait_connected(&[&sa, &sb], "PostgreSQL").await;
    report("postgres notify", &measure(&a, &b, 200).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_bus_is_retried_and_caches_fall_back_to_their_ttl() {
    let cached = CachedStore::new(MemoryStore::new(), CacheConfig::new());
    // Nothing listens on port 1 of the loopback: the subscription keeps trying and says it is not connected.
    let sub = RedisBus::subscribe("redis://127.0.0.1:1", "x", cached.invalidator()).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!sub.is_connected());
    assert_eq!(sub.reconnections(), 0);
}

/// A healthy channel stays up across its heartbeats (every 5 s), on its first connection: each reconnection drops
/// every entry of the cache and leaves the id filter untrusted until a rebuild, so a heartbeat that failed on a
/// healthy connection would empty the cache, and let a flood of random ids reach the store, every 5 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_channel_stays_connected_across_its_heartbeats() {
    let (redis, db, ns) = (redis_url(), database_url(), namespace());
    let pool = sqlx::PgPool::connect(&db).await.unwrap_or_else(|e| panic!("PostgreSQL at {db}: {e}"));
    let shared = Arc::new(MemoryStore::new());
    let on_redis = CachedStore::new(shared.clone(), config());
    let on_postgres = CachedStore::new(shared.clone(), config());
    let subs = [
        ("redis", RedisBus::subscribe(&redis, &ns, on_redis.invalidator()).unwrap()),
        ("postgres", PostgresBus::subscribe(pool, &ns, on_postgres.invalidator())),
    ];
    for (what, sub) in &subs {
        wait_connected(&[sub], what).await;
    }
    // Two heartbeats and then some.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(12) {
        for (what, sub) in &subs {
            assert!(sub.is_connected(), "{what}: the channel went down after {:?}", start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (what, sub) in &subs {
        assert_eq!(sub.reconnections(), 1, "{what}: connected once");
    }
}
