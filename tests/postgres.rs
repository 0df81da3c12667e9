//! `PostgresStore` against a real server: `DATABASE_URL`, or `postgres://postgres@127.0.0.1:5432/test`.
//!
//! Each test works in schemas of its own (`tak_test_<random>`) and drops them at the end. With no server, each
//! test fails within seconds with a message that names the URL it tried.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tower_api_key::{
    ApiKey, ApiKeyLayer, HourlyUsage, KeyDigest, KeyId, KeyKind, KeyManager, KeyRecord, KeyStatus, KeyStore, KeyUpdate,
    ListQuery, Lookup, NewKey, PostgresStore, Principal, RateLimit, StoreError, USAGE_HOURS_KEPT, Usage,
};

const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

/// The URL with any password hidden, for messages.
fn shown(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    match rest.split_once('@') {
        Some((user_info, host)) if user_info.contains(':') => {
            let user = user_info.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// A pool on the test server, or a panic naming the URL (within seconds, never a hang).
async fn pool() -> PgPool {
    let url = url();
    let options = PgPoolOptions::new().max_connections(8).acquire_timeout(Duration::from_secs(5));
    match tokio::time::timeout(Duration::from_secs(10), options.connect(&url)).await {
        Ok(Ok(pool)) => pool,
        Ok(Err(e)) => panic!("cannot connect to PostgreSQL at {} (set DATABASE_URL): {e}", shown(&url)),
        Err(_) => panic!("PostgreSQL at {} did not answer within 10 s (set DATABASE_URL)", shown(&url)),
    }
}

fn fresh_namespace() -> String {
    format!("tak_test_{}", KeyId::random().as_str().to_ascii_lowercase())
}

/// A migrated store in a new schema on `pool`.
async fn store_in(pool: &PgPool, namespace: &str) -> PostgresStore {
    let store = PostgresStore::new(pool.clone(), namespace).unwrap();
    store.migrate().await.unwrap();
    store
}

async fn drop_schemas(pool: &PgPool, namespaces: &[String]) {
    for ns in namespaces {
        sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")).execute(pool).await.unwrap();
    }
}

/// A time rounded down to the microsecond, as PostgreSQL keeps it.
fn to_micros(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_micros(u64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_micros()).unwrap())
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_the_store_contract() {
    let pool = pool().await;
    let made = Arc::new(Mutex::new(Vec::new()));
    tower_api_key::conformance::run(|| {
        let (pool, made) = (pool.clone(), made.clone());
        async move {
            let ns = fresh_namespace();
            made.lock().unwrap().push(ns.clone());
            store_in(&pool, &ns).await
        }
    })
    .await;
    let made = made.lock().unwrap().clone();
    drop_schemas(&pool, &made).await;
}

/// The same contract through a `CachedStore` in front (what the example server runs).
#[cfg(feature = "cache")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_the_store_contract_behind_a_cache() {
    let pool = pool().await;
    let made = Arc::new(Mutex::new(Vec::new()));
    tower_api_key::conformance::run(|| {
        let (pool, made) = (pool.clone(), made.clone());
        async move {
            let ns = fresh_namespace();
            made.lock().unwrap().push(ns.clone());
            tower_api_key::CachedStore::new(store_in(&pool, &ns).await, tower_api_key::CacheConfig::new())
        }
    })
    .await;
    let made = made.lock().unwrap().clone();
    drop_schemas(&pool, &made).await;
}

/// Counts the statements sqlx runs (its `sqlx::query` log events) on one thread.
struct StatementCounter {
    thread: std::thread::ThreadId,
    count: Arc<AtomicUsize>,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for StatementCounter {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        if event.metadata().target() == "sqlx::query" && std::thread::current().id() == self.thread {
            self.count.fetch_add(1, Ordering::SeqCst);
        }
    }
}

// A current-thread runtime: every statement of this test runs on this thread, and only those are counted. (The
// subscriber is the process's global one: a thread-scoped one misses events whose callsites other tests' threads
// registered first.)
#[tokio::test(flavor = "current_thread")]
async fn usage_of_a_thousand_keys_is_one_statement() {
    use tracing_subscriber::layer::SubscriberExt;
    let statements = Arc::new(AtomicUsize::new(0));
    let counter = StatementCounter { thread: std::thread::current().id(), count: statements.clone() };
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(counter)).unwrap();

    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await;
    let created = at(1_700_000_000);
    let mut records = Vec::new();
    for i in 0..1000u32 {
        let record = KeyRecord::new(KeyId::random(), KeyDigest::of(&i.to_le_bytes()), KeyKind::User, "load")
            .with_created_at(created);
        records.push(record);
    }
    // One key starts near the top of the range: its count saturates.
    records[0].usage_count = u64::MAX - 5;
    for r in &records {
        store.insert(r).await.unwrap();
    }

    let t = |s: u64| created + Duration::from_secs(s);
    let mut batch: Vec<Usage> =
        records.iter().enumerate().map(|(i, r)| Usage::new(r.id, i as u64 + 1, t(100))).collect();
    batch.push(Usage::new(records[1].id, 10, t(50))); // the same key twice: summed, latest time
    batch.push(Usage::new(KeyId::random(), 7, t(100))); // unknown: skipped
    batch.push(Usage::new(records[2].id, u64::MAX, t(200))); // saturates
    batch.push(Usage::new(records[3].id, 5, t(3700))); // the next hour

    let before = statements.load(Ordering::SeqCst);
    store.record_usage(&batch).await.unwrap();
    assert!(before >= 1000, "the counter sees the inserts ({before})");
    let used = statements.load(Ordering::SeqCst) - before;
    assert_eq!(used, 1, "record_usage of {} entries ran {used} statements", batch.len());

    let page = store.list(&ListQuery::new().limit(1000), SystemTime::now()).await.unwrap();
    assert_eq!(page.items.len(), 1000);
    for (i, r) in records.iter().enumerate() {
        let got = store.get(&r.id).await.unwrap().unwrap();
        let (count, last) = match i {
            0 => (u64::try_from(i64::MAX).unwrap(), t(100)),
            1 => (2 + 10, t(100)),
            2 => (u64::try_from(i64::MAX).unwrap(), t(200)),
            3 => (4 + 5, t(3700)),
            _ => (i as u64 + 1, t(100)),
        };
        assert_eq!((got.usage_count, got.last_used_at), (count, Some(last)), "key {i}");
    }
    // And the hours, in the same statement (`created` is 22:13:20, so t(100) and t(3700) are an hour apart).
    let hour = |t: SystemTime| HourlyUsage { hour: Usage::hour_of(t), count: 0 };
    let hours = |i: usize| {
        let store = &store;
        let id = records[i].id;
        async move { store.hourly_usage(&id, UNIX_EPOCH).await.unwrap() }
    };
    assert_eq!(hours(0).await, [HourlyUsage { count: 1, ..hour(t(100)) }]);
    assert_eq!(hours(1).await, [HourlyUsage { count: 12, ..hour(t(100)) }]);
    assert_eq!(hours(2).await, [HourlyUsage { count: u64::try_from(i64::MAX).unwrap(), ..hour(t(100)) }]);
    assert_eq!(hours(3).await, [HourlyUsage { count: 4, ..hour(t(100)) }, HourlyUsage { count: 5, ..hour(t(3700)) }]);
    // An empty batch runs nothing.
    let before = statements.load(Ordering::SeqCst);
    store.record_usage(&[]).await.unwrap();
    assert_eq!(statements.load(Ordering::SeqCst), before);
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn keys_and_revocations_survive_a_restart() {
    let ns = fresh_namespace();
    let url = url();
    let connect = || async {
        tokio::time::timeout(Duration::from_secs(10), PostgresStore::connect(&url, &ns))
            .await
            .unwrap_or_else(|_| panic!("PostgreSQL at {} did not answer within 10 s (set DATABASE_URL)", shown(&url)))
            .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL at {} (set DATABASE_URL): {e}", shown(&url)))
    };

    let store = connect().await;
    let keys = KeyManager::new(store.clone());
    let kept = keys
        .issue(
            NewKey::system("billing")
                .name("nightly")
                .scopes(["invoices:*"])
                .unwrap()
                .rate_limit(RateLimit::new(7, Duration::from_millis(1500)).unwrap())
                .metadata("team", "core")
                .expires_in(Duration::from_secs(86_400)),
        )
        .await
        .unwrap();
    let gone = keys.issue(NewKey::user("alice")).await.unwrap();
    let successor = keys.rotate(&gone.record.id, Duration::from_secs(3600)).await.unwrap();
    keys.revoke(&gone.record.id).await.unwrap();
    let legacy = keys.import_key(NewKey::user("bob"), &ApiKey::new("legacy-key-123".into())).await.unwrap();
    store.pool().close().await;
    drop((store, keys));

    let store = connect().await; // migrates again: changes nothing
    let now = SystemTime::now();
    let got = store.lookup(Lookup::Id(&kept.record.id)).await.unwrap().unwrap();
    let stored = KeyRecord {
        created_at: to_micros(kept.record.created_at),
        expires_at: kept.record.expires_at.map(to_micros),
        ..kept.record.clone()
    };
    assert_eq!(*got, stored, "every field round-trips (times to the microsecond)");
    let revoked = store.get(&gone.record.id).await.unwrap().unwrap();
    assert_eq!(revoked.status_at(now), KeyStatus::Revoked);
    assert_eq!(revoked.rotated_to, Some(successor.record.id));
    let successor = store.get(&successor.record.id).await.unwrap().unwrap();
    assert_eq!(successor.status_at(now), KeyStatus::Revoked, "the revocation reached the successor");
    let by_digest = store.lookup(Lookup::Digest(&KeyDigest::of(b"legacy-key-123"))).await.unwrap().unwrap();
    assert_eq!(*by_digest, KeyRecord { created_at: to_micros(legacy.created_at), ..legacy });
    let pool = store.pool().clone();
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn namespaces_do_not_see_each_other() {
    let pool = pool().await;
    let (a_ns, b_ns) = (fresh_namespace(), fresh_namespace());
    let (a, b) = (store_in(&pool, &a_ns).await, store_in(&pool, &b_ns).await);
    let now = SystemTime::now();
    let record = KeyRecord::new(KeyId::random(), KeyDigest::of(b"shared-opaque"), KeyKind::User, "alice");
    a.insert(&record).await.unwrap();
    assert!(b.get(&record.id).await.unwrap().is_none());
    assert!(b.lookup(Lookup::Digest(&record.digest)).await.unwrap().is_none());
    assert!(b.list(&ListQuery::new(), now).await.unwrap().items.is_empty());
    assert!(matches!(b.revoke(&record.id, now).await, Err(StoreError::NotFound(_))));
    // The same id and digest in the other namespace is no conflict.
    b.insert(&record).await.unwrap();
    b.revoke(&record.id, now).await.unwrap();
    assert_eq!(a.get(&record.id).await.unwrap().unwrap().status_at(now), KeyStatus::Active);
    assert_eq!(a.namespace(), a_ns);

    for bad in ["", "Upper", "1st", "a-b", "a;drop schema public", "pg_temp_x", &"a".repeat(64)] {
        assert!(
            matches!(PostgresStore::new(pool.clone(), bad), Err(StoreError::Invalid(_))),
            "namespace {bad:?} accepted"
        );
        assert!(matches!(PostgresStore::connect(&url(), bad).await, Err(StoreError::Invalid(_))));
    }
    drop_schemas(&pool, &[a_ns, b_ns]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn instances_starting_together_migrate_once() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let store = PostgresStore::new(pool.clone(), &ns).unwrap();
        tasks.spawn(async move { store.migrate().await });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    assert_eq!(schema_versions(&pool, &ns).await, [1, 2]);
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn a_listing_ends_early_after_its_scan_budget_and_resumes() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await.list_scan_budget(0); // the smallest budget: MAX_PAGE + 1 rows
    let budget = tower_api_key::MAX_PAGE + 1;
    let total = budget + 500;
    // Many keys, fast: one INSERT from arrays. One needle, revoked, past the first budget.
    let ids: Vec<String> = (0..total).map(|i| format!("{i:012}")).collect();
    let digests: Vec<Vec<u8>> = (0..total).map(|i| KeyDigest::of(&i.to_le_bytes()).as_bytes().to_vec()).collect();
    sqlx::query(&format!(
        "INSERT INTO \"{ns}\".api_keys (id, digest, kind, owner, created_at) \
         SELECT i, d, 'user', 'hay', now() FROM UNNEST($1::text[], $2::bytea[]) AS u(i, d)"
    ))
    .bind(&ids)
    .bind(&digests)
    .execute(&pool)
    .await
    .unwrap();
    let needle: KeyId = ids[budget + 100].parse().unwrap();
    let now = SystemTime::now();
    store.revoke(&needle, now).await.unwrap();

    let mut query = ListQuery::new().status(KeyStatus::Revoked);
    let (mut found, mut pages) = (Vec::new(), 0);
    loop {
        let page = store.list(&query, now).await.unwrap();
        pages += 1;
        found.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(next) => query = query.after(next),
            None => break,
        }
    }
    assert_eq!(found, [needle]);
    assert_eq!(pages, 2, "the first page ends at the budget, empty, with a cursor");

    // Owner filters read the owner's keys by index: no early end when the owner has few keys.
    let mine = KeyRecord::new(KeyId::random(), KeyDigest::of(b"mine"), KeyKind::System, "needle-owner");
    store.insert(&mine).await.unwrap();
    let page = store.list(&ListQuery::new().owner("needle-owner"), now).await.unwrap();
    assert_eq!((page.items.len(), page.next), (1, None));
    let page = store.list(&ListQuery::new().kind(KeyKind::System).limit(1), now).await.unwrap();
    assert!(page.items.is_empty() && page.next.is_some(), "kind filter ends early too");
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn times_and_limits_round_trip_exactly_and_bad_values_are_refused() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await;
    let mut r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"precise"), KeyKind::User, "u")
        .with_created_at(UNIX_EPOCH - Duration::from_micros(86_400_000_001))
        .with_expires_at(UNIX_EPOCH + Duration::from_micros(253_402_300_799_999_999))
        .with_rate_limit(RateLimit::new(u32::MAX, Duration::from_nanos(1)).unwrap())
        .with_metadata("emoji", "🔑 \"quoted\" \\ back");
    r.last_used_at = Some(UNIX_EPOCH + Duration::from_micros(1_234_567));
    r.usage_count = 42;
    store.insert(&r).await.unwrap();
    assert_eq!(store.get(&r.id).await.unwrap().unwrap(), r);

    let nul = KeyRecord::new(KeyId::random(), KeyDigest::of(b"nul"), KeyKind::User, "a\0b");
    assert!(matches!(store.insert(&nul).await, Err(StoreError::Invalid(_))));
    let far = KeyRecord::new(KeyId::random(), KeyDigest::of(b"far"), KeyKind::User, "u")
        .with_expires_at(UNIX_EPOCH + Duration::from_secs(10_000_000_000_000));
    assert!(matches!(store.insert(&far).await, Err(StoreError::Invalid(_))));
    let update = KeyUpdate { rate_limit: Some(None), name: Some("n".into()), ..KeyUpdate::default() };
    let changed = store.update(&r.id, &update).await.unwrap();
    assert_eq!((changed.rate_limit, changed.name.as_str(), changed.metadata), (None, "n", r.metadata.clone()));

    // A row edited by hand into something the crate never writes is a backend error naming the column, not a
    // panic, and not a wrong record.
    sqlx::query(&format!("UPDATE \"{ns}\".api_keys SET metadata = '{{\"n\": 1}}' WHERE id = $1"))
        .bind(r.id.as_str())
        .execute(&pool)
        .await
        .unwrap();
    let err = store.get(&r.id).await.unwrap_err();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(source.contains("metadata"), "{source}");
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn database_errors_keep_no_row_detail() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await;
    // A CHECK the crate never breaks, broken by hand: PostgreSQL's DETAIL would quote the row, digest included.
    sqlx::query(&format!("ALTER TABLE \"{ns}\".api_keys ADD CONSTRAINT no_eve CHECK (owner <> 'eve')"))
        .execute(&pool)
        .await
        .unwrap();
    let digest = KeyDigest::of(b"eve's key");
    let err = store.insert(&KeyRecord::new(KeyId::random(), digest, KeyKind::User, "eve")).await.unwrap_err();
    let shown = format!("{err:?} {err}");
    assert!(shown.contains("23514") && shown.contains("no_eve"), "{shown}");
    assert!(!shown.contains(&digest.to_hex()[..16]) && !shown.contains("Failing row"), "{shown}");
    drop_schemas(&pool, &[ns]).await;
}

async fn whoami(principal: Principal) -> String {
    principal.id().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_accepts_an_issued_key_until_it_is_revoked() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await;
    let app = Router::new().route("/whoami", get(whoami)).layer(ApiKeyLayer::new(store.clone()));
    let base = format!("http://{}", common::serve(app).await);
    let keys = KeyManager::new(store);
    let http = common::client();

    let issued = keys.issue(NewKey::user("alice")).await.unwrap();
    let legacy = ApiKey::new("sk-legacy-0123456789".into());
    keys.import_key(NewKey::system("batch"), &legacy).await.unwrap();

    let res = http.get(format!("{base}/whoami")).bearer_auth(issued.key.expose_secret()).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "alice");
    let res = http.get(format!("{base}/whoami")).bearer_auth(legacy.expose_secret()).send().await.unwrap();
    assert_eq!((res.status().as_u16(), res.text().await.unwrap().as_str()), (200, "batch"));

    keys.revoke(&issued.record.id).await.unwrap();
    let res = http.get(format!("{base}/whoami")).bearer_auth(issued.key.expose_secret()).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = http.get(format!("{base}/whoami")).bearer_auth("tak_user_AAAAAAAAAAAA_garbage").send().await.unwrap();
    assert_eq!(res.status(), 401);
    drop_schemas(&pool, &[ns]).await;
}

/// The schema of version 1, as a namespace created before counts per hour holds it.
const SCHEMA_V1: &str = r#"
CREATE SCHEMA IF NOT EXISTS "{schema}";
CREATE TABLE IF NOT EXISTS "{schema}".api_keys (
    id             text COLLATE "C" PRIMARY KEY CHECK (id ~ '^[0-9A-Za-z]{12}$'),
    digest         bytea       NOT NULL CHECK (octet_length(digest) = 32),
    prefix         text,
    kind           text        NOT NULL CHECK (kind IN ('user', 'system')),
    owner          text        NOT NULL,
    name           text        NOT NULL DEFAULT '',
    scopes         text[]      NOT NULL DEFAULT '{}',
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz,
    revoked_at     timestamptz,
    last_used_at   timestamptz,
    usage_count    bigint      NOT NULL DEFAULT 0 CHECK (usage_count >= 0),
    enabled        boolean     NOT NULL DEFAULT true,
    rate_requests  bigint      CHECK (rate_requests BETWEEN 1 AND 4294967295),
    rate_period_ns bigint      CHECK (rate_period_ns > 0),
    metadata       jsonb       NOT NULL DEFAULT '{}',
    rotated_to     text COLLATE "C",
    CHECK ((rate_requests IS NULL) = (rate_period_ns IS NULL))
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_opaque_digest ON "{schema}".api_keys (digest) WHERE prefix IS NULL;
CREATE INDEX IF NOT EXISTS api_keys_owner ON "{schema}".api_keys (owner, id);
CREATE TABLE IF NOT EXISTS "{schema}".schema_version (
    version    integer     PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO "{schema}".schema_version (version) VALUES (1) ON CONFLICT (version) DO NOTHING;
"#;

#[tokio::test]
async fn a_namespace_of_schema_version_1_migrates_and_keeps_its_keys() {
    let pool = pool().await;
    let ns = fresh_namespace();
    sqlx::raw_sql(&SCHEMA_V1.replace("{schema}", &ns)).execute(&pool).await.unwrap();
    let mut old = KeyRecord::new(KeyId::random(), KeyDigest::of(b"from v1"), KeyKind::User, "u").with_created_at(at(0));
    old.usage_count = 41;
    sqlx::query(&format!(
        "INSERT INTO \"{ns}\".api_keys (id, digest, kind, owner, created_at, usage_count) \
         VALUES ($1, $2, 'user', 'u', to_timestamp(0), 41)"
    ))
    .bind(old.id.as_str())
    .bind(&old.digest.as_bytes()[..])
    .execute(&pool)
    .await
    .unwrap();

    let store = store_in(&pool, &ns).await; // migrates from version 1
    store.migrate().await.unwrap(); // and again: nothing changes
    assert_eq!(store.get(&old.id).await.unwrap().unwrap(), old, "the key is kept as it was");
    let now = SystemTime::now();
    store.record_usage(&[Usage::new(old.id, 1, now)]).await.unwrap();
    assert_eq!(store.get(&old.id).await.unwrap().unwrap().usage_count, 42);
    assert_eq!(store.hourly_usage(&old.id, now).await.unwrap(), [HourlyUsage { hour: Usage::hour_of(now), count: 1 }]);
    assert_eq!(schema_versions(&pool, &ns).await, [1, 2]);
    drop_schemas(&pool, &[ns]).await;
}

#[tokio::test]
async fn hourly_counts_are_pruned_after_the_hours_kept_and_go_with_their_key() {
    let pool = pool().await;
    let ns = fresh_namespace();
    let store = store_in(&pool, &ns).await;
    let (a, b) = (
        KeyRecord::new(KeyId::random(), KeyDigest::of(b"a"), KeyKind::User, "u"),
        KeyRecord::new(KeyId::random(), KeyDigest::of(b"b"), KeyKind::User, "u"),
    );
    store.insert(&a).await.unwrap();
    store.insert(&b).await.unwrap();
    let now = Usage::hour_of(SystemTime::now());
    let h = Duration::from_secs(3600);
    let kept = USAGE_HOURS_KEPT;
    // Hours of a long ago (written one flush at a time: each is the newest when written, so kept).
    for back in [kept + 5, kept + 1, kept, kept - 1] {
        store.record_usage(&[Usage::new(a.id, 1, now - h * back)]).await.unwrap();
    }
    assert_eq!(store.hourly_usage(&a.id, UNIX_EPOCH).await.unwrap().len(), 4);
    // A flush of another key at the current hour prunes every key's hours older than the hours kept.
    store.record_usage(&[Usage::new(b.id, 1, now)]).await.unwrap();
    let left: Vec<SystemTime> = store.hourly_usage(&a.id, UNIX_EPOCH).await.unwrap().iter().map(|u| u.hour).collect();
    assert_eq!(left, [now - h * kept, now - h * (kept - 1)]);
    // An hour already older than that, in a batch, is counted in the total but not kept as an hour.
    store.record_usage(&[Usage::new(a.id, 7, now - h * (kept + 3)), Usage::new(a.id, 1, now)]).await.unwrap();
    assert_eq!(store.get(&a.id).await.unwrap().unwrap().usage_count, 4 + 8);
    assert_eq!(store.hourly_usage(&a.id, UNIX_EPOCH).await.unwrap().len(), 3);
    // A key's hours go when its row does.
    sqlx::query(&format!("DELETE FROM \"{ns}\".api_keys WHERE id = $1"))
        .bind(a.id.as_str())
        .execute(&pool)
        .await
        .unwrap();
    assert!(store.hourly_usage(&a.id, UNIX_EPOCH).await.unwrap().is_empty());
    drop_schemas(&pool, &[ns]).await;
}

/// The schema versions `migrate` has recorded in namespace `ns`.
async fn schema_versions(pool: &PgPool, ns: &str) -> Vec<i32> {
    sqlx::query_scalar(&format!("SELECT version FROM \"{ns}\".schema_version ORDER BY version"))
        .fetch_all(pool)
        .await
        .unwrap()
}
