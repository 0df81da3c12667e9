//! Store faults through a TCP proxy: the stores and the invalidation channels talk to the machine's PostgreSQL
//! (127.0.0.1:5432, `DATABASE_URL`) and Redis (127.0.0.1:6379, `REDIS_URL`) through a proxy inside the test, which
//! passes bytes, cuts every connection (and closes new ones at once), or holds each chunk longer than the store
//! timeout. The servers themselves are never stopped.
//!
//! | | passing | cut or slow | passing again |
//! |---|---|---|---|
//! | store, no cache: valid or unknown key | 200 / 401 | 503 (gRPC: 14) within the store timeout | 200 again, by itself |
//! | cached store: key cached before | 200 / 401 | the cached answer, until its TTL | |
//! | cached store: key not cached | 200 / 401 | 503 within the store timeout | 200 again |
//! | bus subscription | connected | not connected | connected again; changes arrive again |
//!
//! Prints what it measured: time to 503, time to recover, time to notice a lost channel and to reconnect.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

mod common;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::{Router, routing::any};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{AbortHandle, JoinHandle, JoinSet};
use tower_api_key::{
    ApiKeyLayer, CacheConfig, CachedStore, KeyFormat, KeyId, KeyManager, KeyStore, Lookup, MemoryStore, NewKey,
    PostgresBus, PostgresStore, Principal, RateLimit, RedisBus, RedisRateLimiter, RedisStore, Subscription,
};

/// The layer's bound on one store call.
const STORE_TIMEOUT: Duration = Duration::from_millis(300);
/// What a 503 may take beyond the store timeout: the HTTP round trip on loopback and a busy machine.
const MARGIN: Duration = Duration::from_millis(300);
/// How long the slow proxy holds each chunk: well over the store timeout.
const HOLD: Duration = Duration::from_millis(1500);
/// How long the pool waits for a connection (the store timeout answers first).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a store or a channel may take to come back once the proxy passes again.
const RECOVERY: Duration = Duration::from_secs(15);
/// The bound on a whole test.
const TEST_LIMIT: Duration = Duration::from_secs(120);

fn database_url() -> String {
    std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A PostgreSQL schema name of its own (lowercase, so it needs no quoting).
fn pg_namespace() -> String {
    format!("tak_fault_{}", KeyId::random().as_str().to_lowercase())
}

fn redis_namespace() -> String {
    format!("tak_fault_{}", KeyId::random())
}

/// `(scheme, authority, path)` of `scheme://[userinfo@]host[:port][/path][?query]`; the authority keeps its userinfo.
fn split_url(url: &str) -> (&str, &str, &str) {
    let (scheme, rest) = url.split_once("://").unwrap_or_else(|| panic!("not a URL: {url}"));
    let (authority, path) = rest.find(['/', '?']).map_or((rest, ""), |i| rest.split_at(i));
    (scheme, authority, path)
}

/// The `host:port` the URL points at.
fn upstream_of(url: &str, default_port: u16) -> String {
    let (_, authority, _) = split_url(url);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if host.contains(':') && !host.ends_with(']') { host.to_owned() } else { format!("{host}:{default_port}") }
}

/// The same URL (user, password, database, options), pointing at `proxy`.
fn through(url: &str, proxy: SocketAddr) -> String {
    let (scheme, authority, path) = split_url(url);
    let userinfo = authority.rsplit_once('@').map_or(String::new(), |(u, _)| format!("{u}@"));
    format!("{scheme}://{userinfo}{proxy}{path}")
}

// ---------------------------------------------------------------------------------------------------------------
// The proxy
// ---------------------------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Mode {
    /// Forward every byte at once.
    Pass = 0,
    /// Close every open connection now, and every new one as soon as it is accepted.
    Cut = 1,
    /// Forward, but hold each chunk for `HOLD` first (new and open connections alike).
    Slow = 2,
    /// Keep every connection open but drop every byte: a network that loses packets without closing anything.
    Blackhole = 3,
}

#[derive(Debug, Default)]
struct ProxyState {
    mode: AtomicU8,
    /// The forwarding tasks of the open connections: aborting one drops (closes) both of its sockets.
    live: Mutex<Vec<AbortHandle>>,
}

impl ProxyState {
    fn mode(&self) -> u8 {
        self.mode.load(SeqCst)
    }
}

/// A TCP proxy on 127.0.0.1 in front of one server.
///
/// Each connection is forwarded by two pumps (one per direction) rather than `copy_bidirectional`, so that the
/// slow mode also holds the bytes of connections opened before it was switched on (the pools keep theirs).
#[derive(Debug)]
struct Proxy {
    addr: SocketAddr,
    state: Arc<ProxyState>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(ProxyState::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let client = match listener.accept().await {
                    Ok((client, _)) => client,
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                // Under the lock, so that a cut either sees this connection's task or this check sees the cut.
                let mut live = shared.live.lock().unwrap();
                if shared.mode() == Mode::Cut as u8 {
                    drop(client);
                    continue;
                }
                live.retain(|task| !task.is_finished());
                let task = tokio::spawn(forward(client, upstream.clone(), shared.clone()));
                live.push(task.abort_handle());
            }
        });
        Self { addr, state, accept }
    }

    fn set(&self, mode: Mode) {
        let mut live = self.state.live.lock().unwrap();
        self.state.mode.store(mode as u8, SeqCst);
        if mode == Mode::Cut {
            for task in live.drain(..) {
                task.abort();
            }
        }
    }

    fn open_connections(&self) -> usize {
        self.state.live.lock().unwrap().iter().filter(|task| !task.is_finished()).count()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.set(Mode::Cut);
    }
}

async fn forward(client: TcpStream, upstream: String, state: Arc<ProxyState>) {
    let Ok(server) = TcpStream::connect(&upstream).await else { return };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    // The first error (or the abort of a cut) drops both sockets; an orderly end of one direction is passed on.
    let _ = tokio::try_join!(pump(client_read, server_write, &state), pump(server_read, client_write, &state));
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, state: &ProxyState) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return to.shutdown().await;
        }
        if state.mode() == Mode::Slow as u8 {
            tokio::time::sleep(HOLD).await;
        }
        if state.mode() == Mode::Blackhole as u8 {
            continue;
        }
        to.write_all(&buf[..n]).await?;
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The server and its clients
// ---------------------------------------------------------------------------------------------------------------

/// An axum server with `/whoami` behind the layer over `store`, with the store timeout and no cache of its own.
async fn app(store: impl KeyStore) -> SocketAddr {
    let app = Router::new()
        .route("/whoami", any(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(store).store_timeout(STORE_TIMEOUT));
    common::serve(app).await
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap()
}

#[derive(Debug)]
struct Reply {
    status: u16,
    grpc_status: Option<String>,
    body: String,
    elapsed: Duration,
}

/// One request with `key` as a bearer token: a plain GET, or a gRPC call (`content-type: application/grpc`).
async fn send(http: &reqwest::Client, addr: SocketAddr, key: &str, grpc: bool) -> Reply {
    let url = format!("http://{addr}/whoami");
    let request = if grpc {
        http.post(url).header("content-type", "application/grpc").header("te", "trailers").body(vec![0u8; 5])
    } else {
        http.get(url)
    };
    let start = Instant::now();
    let res = request.bearer_auth(key).send().await.unwrap();
    let elapsed = start.elapsed();
    let status = res.status().as_u16();
    let grpc_status = res.headers().get("grpc-status").map(|v| v.to_str().unwrap().to_owned());
    let body = res.text().await.unwrap_or_default();
    Reply { status, grpc_status, body, elapsed }
}

/// A key in the crate's format (so it passes the checksum and reaches the store) that no store holds.
fn unknown_key() -> String {
    KeyFormat::new().issue(NewKey::user("nobody"), SystemTime::now()).key.expose_secret().to_owned()
}

/// While the store is cut off or slow: each of `keys` (plus a fresh unknown key), as a plain request and as a
/// gRPC call, answers 503 / grpc-status 14 within the store timeout plus the margin, never anything else.
/// Returns the slowest and the fastest answer.
async fn assert_unavailable(
    what: &str,
    http: &reqwest::Client,
    addr: SocketAddr,
    keys: &[&str],
) -> (Duration, Duration) {
    let (mut slowest, mut fastest) = (Duration::ZERO, Duration::MAX);
    for round in 0..3 {
        let mut sent: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
        sent.push(unknown_key());
        let mut requests = JoinSet::new();
        for (i, key) in sent.into_iter().enumerate() {
            for grpc in [false, true] {
                let (http, key) = (http.clone(), key.clone());
                requests.spawn(async move { (i, grpc, send(&http, addr, &key, grpc).await) });
            }
        }
        while let Some(done) = requests.join_next().await {
            let (i, grpc, reply) = done.unwrap();
            let case = format!("{what}, round {round}, key {i}, grpc {grpc}");
            if grpc {
                assert_eq!(reply.status, 200, "{case}: gRPC errors travel in grpc-status: {reply:?}");
                assert_eq!(reply.grpc_status.as_deref(), Some("14"), "{case}: UNAVAILABLE: {reply:?}");
            } else {
                assert_eq!(reply.status, 503, "{case}: {reply:?}");
                assert_eq!(reply.grpc_status, None, "{case}");
            }
            assert!(reply.elapsed <= STORE_TIMEOUT + MARGIN, "{case}: answered after {:?}", reply.elapsed);
            slowest = slowest.max(reply.elapsed);
            fastest = fastest.min(reply.elapsed);
        }
    }
    (slowest, fastest)
}

/// Once the proxy passes again: polls with `key` until it answers 200, each answer before that a 503 (never 401,
/// never anything else). Returns how long that took.
async fn assert_recovers(what: &str, http: &reqwest::Client, addr: SocketAddr, key: &str) -> Duration {
    let start = Instant::now();
    let mut failures = 0;
    loop {
        let reply = send(http, addr, key, false).await;
        match reply.status {
            200 => break,
            503 => failures += 1,
            _ => panic!("{what}: while recovering: {reply:?}"),
        }
        assert!(start.elapsed() < RECOVERY, "{what}: not back after {RECOVERY:?} ({failures} answers of 503)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = start.elapsed();
    println!("{what}: back after {took:?} ({failures} answers of 503 meanwhile)");
    took
}

/// Runs `test` (bounded by `TEST_LIMIT`) in a task of its own; then `cleanup`, even when the test failed.
async fn run_then<T, C>(test: T, cleanup: C)
where
    T: Future<Output = ()> + Send + 'static,
    C: Future<Output = ()>,
{
    let outcome = tokio::spawn(tokio::time::timeout(TEST_LIMIT, test)).await;
    cleanup.await;
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(_)) => panic!("the test took more than {TEST_LIMIT:?}"),
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("the test task failed: {e}"),
    }
}

async fn drop_schema(ns: &str) {
    let pool = PgPool::connect(&database_url()).await.unwrap();
    sqlx::query(&format!("DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")).execute(&pool).await.unwrap();
    pool.close().await;
}

async fn delete_redis_namespace(ns: &str) {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    // The store's keys (`{ns}:...`, one hash tag) and the rate limiter's (`ns:rl:...`).
    for pattern in [format!("{{{ns}}}:*"), format!("{ns}:*")] {
        let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query_async(&mut conn).await.unwrap();
        if !keys.is_empty() {
            redis::cmd("DEL").arg(&keys).query_async::<()>(&mut conn).await.unwrap();
        }
    }
}

/// A pool whose every connection goes through the proxy, with a short acquire timeout.
async fn pool_through(proxy: &Proxy) -> PgPool {
    let url = through(&database_url(), proxy.addr);
    PgPoolOptions::new()
        .max_connections(5)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL through the proxy ({}): {e}", upstream_of(&database_url(), 5432)))
}

async fn postgres_through(proxy: &Proxy, ns: &str) -> PostgresStore {
    let store = PostgresStore::new(pool_through(proxy).await, ns).unwrap();
    store.migrate().await.unwrap();
    store
}

async fn redis_through(proxy: &Proxy, ns: &str) -> RedisStore {
    let url = through(&redis_url(), proxy.addr);
    RedisStore::connect(&url, ns).await.unwrap_or_else(|e| panic!("Redis through the proxy: {e}"))
}

// ---------------------------------------------------------------------------------------------------------------
// 1 and 2: a store with no cache: every request reaches it
// ---------------------------------------------------------------------------------------------------------------

async fn store_fails_closed_and_recovers(what: &str, store: impl KeyStore + Clone, proxy: &Proxy) {
    let http = http();
    let issued = KeyManager::new(store.clone()).issue(NewKey::user("alice")).await.unwrap();
    let key = issued.key.expose_secret().to_owned();
    let other = KeyManager::new(store.clone()).issue(NewKey::user("bob")).await.unwrap().key.expose_secret().to_owned();
    let addr = app(store).await;
    assert_eq!(send(&http, addr, &key, false).await.status, 200, "{what}: passing");
    assert_eq!(send(&http, addr, &unknown_key(), false).await.status, 401, "{what}: passing, unknown key");
    assert!(proxy.open_connections() > 0, "{what}: the store talks through the proxy");

    for (mode, name) in [(Mode::Cut, "cut"), (Mode::Slow, "slow")] {
        proxy.set(mode);
        let (slowest, fastest) = assert_unavailable(&format!("{what} {name}"), &http, addr, &[&key]).await;
        println!(
            "{what} {name}: 503 / grpc-status 14 after {fastest:?} to {slowest:?} (store timeout {STORE_TIMEOUT:?})"
        );
        proxy.set(Mode::Pass);
        assert_recovers(&format!("{what} after {name}"), &http, addr, &key).await;
        // Answers held up or cut off must not be taken for the answers of later requests: each key gets its own.
        let mut requests = JoinSet::new();
        for i in 0..12 {
            let (key, owner) = match i % 3 {
                0 => (key.clone(), Some("alice")),
                1 => (other.clone(), Some("bob")),
                _ => (unknown_key(), None),
            };
            let (http, grpc) = (http.clone(), i % 2 == 1);
            requests.spawn(async move { (owner, grpc, send(&http, addr, &key, grpc).await) });
        }
        while let Some(done) = requests.join_next().await {
            let (owner, grpc, reply) = done.unwrap();
            let got = (reply.status, reply.grpc_status.as_deref(), reply.body.as_str());
            let case = format!("{what} after {name}: {owner:?}, grpc {grpc}");
            match (owner, grpc) {
                (Some(owner), _) => assert_eq!(got, (200, None, owner), "{case}"),
                // An unknown key: UNAUTHENTICATED.
                (None, true) => assert_eq!((got.0, got.1), (200, Some("16")), "{case}"),
                (None, false) => assert_eq!((got.0, got.1), (401, None), "{case}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_fails_closed_while_cut_or_slow_and_its_pool_recovers() {
    let ns = pg_namespace();
    let test_ns = ns.clone();
    run_then(
        async move {
            let proxy = Proxy::start(upstream_of(&database_url(), 5432)).await;
            let store = postgres_through(&proxy, &test_ns).await;
            store_fails_closed_and_recovers("postgres", store, &proxy).await;
        },
        drop_schema(&ns),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_store_fails_closed_while_cut_or_slow_and_reconnects() {
    let ns = redis_namespace();
    let test_ns = ns.clone();
    run_then(
        async move {
            let proxy = Proxy::start(upstream_of(&redis_url(), 6379)).await;
            let store = redis_through(&proxy, &test_ns).await;
            store_fails_closed_and_recovers("redis", store, &proxy).await;
        },
        delete_redis_namespace(&ns),
    )
    .await;
}

/// A shared rate limiter on Redis that cannot answer (cut off, slow, or silently dropping bytes) fails closed: the
/// limited key gets 503 within the store timeout, never a pass; a key with no limit never asks it and keeps working.
/// Once the network is back, the limiter answers again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_rate_limiter_fails_closed_while_cut_slow_or_silent_and_recovers() {
    let ns = redis_namespace();
    let test_ns = ns.clone();
    run_then(
        async move {
            let proxy = Proxy::start(upstream_of(&redis_url(), 6379)).await;
            let url = through(&redis_url(), proxy.addr);
            let limiter = RedisRateLimiter::connect(&url, &test_ns)
                .await
                .unwrap_or_else(|e| panic!("Redis through the proxy ({}): {e}", upstream_of(&redis_url(), 6379)));
            let store = MemoryStore::new();
            let limited = store.add(NewKey::user("alice").rate_limit(RateLimit::per_second(1000).unwrap())).unwrap();
            let free = store.add(NewKey::user("bob")).unwrap();
            let (limited, free) = (limited.key.expose_secret().to_owned(), free.key.expose_secret().to_owned());
            let app = Router::new()
                .route("/whoami", any(|p: Principal| async move { p.id().to_owned() }))
                .layer(ApiKeyLayer::new(store).shared_rate_limit(limiter, None).store_timeout(STORE_TIMEOUT));
            let addr = common::serve(app).await;
            let http = http();
            assert_eq!(send(&http, addr, &limited, false).await.status, 200, "passing");
            for (mode, name) in [(Mode::Cut, "cut"), (Mode::Slow, "slow"), (Mode::Blackhole, "silent")] {
                proxy.set(mode);
                for _ in 0..3 {
                    let reply = send(&http, addr, &limited, false).await;
                    assert_eq!(reply.status, 503, "limiter {name}: a limit that cannot be checked fails closed");
                    assert!(reply.elapsed <= STORE_TIMEOUT + MARGIN, "limiter {name}: after {:?}", reply.elapsed);
                    assert_eq!(send(&http, addr, &free, false).await.status, 200, "limiter {name}: no limit");
                }
                if mode == Mode::Blackhole {
                    proxy.set(Mode::Cut); // the half-open connections go, as a real network's would time out
                }
                proxy.set(Mode::Pass);
                assert_recovers(&format!("limiter after {name}"), &http, addr, &limited).await;
            }
        },
        delete_redis_namespace(&ns),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------------------------
// 3: the invalidation channels
// ---------------------------------------------------------------------------------------------------------------

/// Long TTLs: only the bus (or a reconnection, which drops everything) makes instance `a` see a change.
fn long_ttls() -> CacheConfig {
    CacheConfig::new().positive_ttl(Duration::from_secs(600)).negative_ttl(Duration::from_secs(600))
}

async fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

/// A key revoked through `b` (whose bus talks to the server directly) is seen revoked by `a` within 1 s.
async fn revocation_reaches(what: &str, a: &CachedStore<Arc<MemoryStore>>, b: &KeyManager) -> Duration {
    let issued = b.issue(NewKey::user("bob")).await.unwrap();
    let id = issued.record.id;
    assert!(a.lookup(Lookup::Id(&id)).await.unwrap().unwrap().revoked_at.is_none(), "{what}: a caches it active");
    let start = Instant::now();
    b.revoke(&id).await.unwrap();
    loop {
        if a.lookup(Lookup::Id(&id)).await.unwrap().unwrap().revoked_at.is_some() {
            return start.elapsed();
        }
        assert!(start.elapsed() < Duration::from_secs(1), "{what}: a still sees the key active after 1 s");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// `sub` feeds `a`'s cache through the proxy; `b` publishes straight to the server.
async fn channel_recovers(
    what: &str,
    sub: &Subscription,
    proxy: &Proxy,
    a: &CachedStore<Arc<MemoryStore>>,
    b: &KeyManager,
) {
    wait_until(&format!("{what}: first connection"), Duration::from_secs(10), || sub.is_connected()).await;
    assert_eq!(sub.reconnections(), 1, "{what}");
    let before = revocation_reaches(&format!("{what} before the cut"), a, b).await;

    proxy.set(Mode::Cut);
    let noticed = wait_until(&format!("{what}: notices the cut"), Duration::from_secs(5), || !sub.is_connected()).await;
    // Changes made now are lost for `a`; the reconnection must drop its whole cache.
    let missed = b.issue(NewKey::user("missed")).await.unwrap();
    assert!(a.lookup(Lookup::Id(&missed.record.id)).await.unwrap().is_some());
    b.revoke(&missed.record.id).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!sub.is_connected(), "{what}: connected through a cut proxy");

    proxy.set(Mode::Pass);
    let back =
        wait_until(&format!("{what}: reconnects"), RECOVERY, || sub.is_connected() && sub.reconnections() >= 2).await;
    let record = a.lookup(Lookup::Id(&missed.record.id)).await.unwrap().unwrap();
    assert!(record.revoked_at.is_some(), "{what}: a revocation made while cut is seen after the reconnection");
    let after = revocation_reaches(&format!("{what} after the reconnection"), a, b).await;
    println!(
        "{what}: cut noticed after {noticed:?}, reconnected {back:?} after the restore (connections: {}); \
         a revocation reached the other cache in {before:?} before the cut, {after:?} after",
        sub.reconnections()
    );
}

/// A connection that silently stops carrying bytes (nothing closes) is noticed by the subscription's heartbeat,
/// and the subscription comes back once the network does.
async fn channel_notices_a_silent_drop(what: &str, sub: &Subscription, proxy: &Proxy, within: Duration) {
    wait_until(&format!("{what}: first connection"), Duration::from_secs(10), || sub.is_connected()).await;
    proxy.set(Mode::Blackhole);
    let noticed = wait_until(&format!("{what}: notices the silent drop"), within, || !sub.is_connected()).await;
    proxy.set(Mode::Cut); // the half-open connections go, as a real network's would time out
    proxy.set(Mode::Pass);
    let back =
        wait_until(&format!("{what}: reconnects"), RECOVERY, || sub.is_connected() && sub.reconnections() >= 2).await;
    println!("{what}: a silent drop noticed after {noticed:?}, reconnected {back:?} after the network came back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_invalidation_channel_notices_a_silent_drop() {
    let test = async {
        let (url, ns) = (redis_url(), redis_namespace());
        let proxy = Proxy::start(upstream_of(&url, 6379)).await;
        let a = CachedStore::new(Arc::new(MemoryStore::new()), long_ttls());
        let sub = RedisBus::subscribe(&through(&url, proxy.addr), &ns, a.invalidator()).unwrap();
        // Heartbeat every 5 s, 2 s to answer.
        channel_notices_a_silent_drop("redis pub/sub", &sub, &proxy, Duration::from_secs(10)).await;
    };
    tokio::time::timeout(TEST_LIMIT, test).await.expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalidation_channel_notices_a_silent_drop() {
    let test = async {
        let ns = pg_namespace();
        let proxy = Proxy::start(upstream_of(&database_url(), 5432)).await;
        let a = CachedStore::new(Arc::new(MemoryStore::new()), long_ttls());
        let sub = PostgresBus::subscribe(pool_through(&proxy).await, &ns, a.invalidator());
        // A heartbeat every 5 s; 15 s of silence starts over.
        channel_notices_a_silent_drop("postgres listen/notify", &sub, &proxy, Duration::from_secs(20)).await;
    };
    tokio::time::timeout(TEST_LIMIT, test).await.expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_invalidation_channel_reconnects_after_a_cut() {
    let test = async {
        let (url, ns) = (redis_url(), redis_namespace());
        let proxy = Proxy::start(upstream_of(&url, 6379)).await;
        let shared = Arc::new(MemoryStore::new());
        let a = CachedStore::new(shared.clone(), long_ttls());
        let b = CachedStore::new(shared, long_ttls()).with_bus(RedisBus::connect(&url, &ns).await.unwrap());
        let sub = RedisBus::subscribe(&through(&url, proxy.addr), &ns, a.invalidator()).unwrap();
        channel_recovers("redis pub/sub", &sub, &proxy, &a, &KeyManager::new(b)).await;
    };
    tokio::time::timeout(TEST_LIMIT, test).await.expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_invalidation_channel_reconnects_after_a_cut() {
    let test = async {
        // The channel is `<ns>_invalidate`; no schema is created.
        let ns = pg_namespace();
        let proxy = Proxy::start(upstream_of(&database_url(), 5432)).await;
        let direct =
            PgPoolOptions::new().acquire_timeout(Duration::from_secs(5)).connect(&database_url()).await.unwrap();
        let shared = Arc::new(MemoryStore::new());
        let a = CachedStore::new(shared.clone(), long_ttls());
        let b = CachedStore::new(shared, long_ttls()).with_bus(PostgresBus::new(direct, &ns));
        let sub = PostgresBus::subscribe(pool_through(&proxy).await, &ns, a.invalidator());
        channel_recovers("postgres listen/notify", &sub, &proxy, &a, &KeyManager::new(b)).await;
    };
    tokio::time::timeout(TEST_LIMIT, test).await.expect("bounded");
}

// ---------------------------------------------------------------------------------------------------------------
// 4: a cache in front of the store (the production setup)
// ---------------------------------------------------------------------------------------------------------------

async fn cache_answers_what_it_holds_and_nothing_else(what: &str, store: impl KeyStore + Clone, proxy: &Proxy) {
    let http = http();
    let cached = CachedStore::new(store.clone(), long_ttls());
    let keys = KeyManager::new(cached.clone());
    let secret = |issued: &tower_api_key::IssuedKey| issued.key.expose_secret().to_owned();
    let good = secret(&keys.issue(NewKey::user("cached")).await.unwrap());
    let revoked = keys.issue(NewKey::user("revoked")).await.unwrap();
    keys.revoke(&revoked.record.id).await.unwrap();
    let revoked = secret(&revoked);
    let uncached = secret(&keys.issue(NewKey::user("uncached")).await.unwrap());
    let known_unknown = unknown_key();
    let addr = app(cached.clone()).await;
    // A second instance over the same store whose found records live 500 ms: its entries run out during the cut.
    let short = CachedStore::new(store, long_ttls().positive_ttl(Duration::from_millis(500)));
    let short_addr = app(short).await;

    // Before the cut: each answer is cached (found active, found revoked, not found).
    assert_eq!(send(&http, addr, &good, false).await.status, 200, "{what}");
    assert_eq!(send(&http, addr, &revoked, false).await.status, 401, "{what}");
    assert_eq!(send(&http, addr, &known_unknown, false).await.status, 401, "{what}");
    assert_eq!(send(&http, short_addr, &good, false).await.status, 200, "{what}");
    let cached_at = Instant::now();

    proxy.set(Mode::Cut);
    for round in 0..3 {
        let case = format!("{what} cut, round {round}");
        let reply = send(&http, addr, &good, false).await;
        assert_eq!(reply.status, 200, "{case}: a cached key answers until its TTL");
        assert!(reply.elapsed < STORE_TIMEOUT, "{case}: a cached answer waits for no store: {:?}", reply.elapsed);
        assert_eq!(send(&http, addr, &good, true).await.grpc_status, None, "{case}: gRPC, cached key");
        assert_eq!(send(&http, addr, &revoked, false).await.status, 401, "{case}: a cached revocation holds");
        assert_eq!(send(&http, addr, &revoked, true).await.grpc_status.as_deref(), Some("16"), "{case}");
        assert_eq!(send(&http, addr, &known_unknown, false).await.status, 401, "{case}: cached as unknown");
    }
    let (slowest, fastest) = assert_unavailable(&format!("{what} cut, uncached"), &http, addr, &[&uncached]).await;
    println!("{what} cached, cut: uncached keys 503 after {fastest:?} to {slowest:?}; cached keys answer as before");

    // The short-lived entry has run out: the same key now needs the store, which is away.
    tokio::time::sleep(Duration::from_millis(600).saturating_sub(cached_at.elapsed())).await;
    let reply = send(&http, short_addr, &good, false).await;
    assert_eq!(reply.status, 503, "{what}: a cached key past its TTL, store cut: {reply:?}");
    assert!(reply.elapsed <= STORE_TIMEOUT + MARGIN, "{what}: {reply:?}");

    proxy.set(Mode::Pass);
    assert_recovers(&format!("{what} cached, uncached key"), &http, addr, &uncached).await;
    assert_recovers(&format!("{what} cached, entry past its TTL"), &http, short_addr, &good).await;
    assert_eq!(send(&http, addr, &revoked, false).await.status, 401, "{what}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_postgres_store_answers_only_what_it_holds_while_cut() {
    let ns = pg_namespace();
    let test_ns = ns.clone();
    run_then(
        async move {
            let proxy = Proxy::start(upstream_of(&database_url(), 5432)).await;
            let store = postgres_through(&proxy, &test_ns).await;
            cache_answers_what_it_holds_and_nothing_else("postgres", store, &proxy).await;
        },
        drop_schema(&ns),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_redis_store_answers_only_what_it_holds_while_cut() {
    let ns = redis_namespace();
    let test_ns = ns.clone();
    run_then(
        async move {
            let proxy = Proxy::start(upstream_of(&redis_url(), 6379)).await;
            let store = redis_through(&proxy, &test_ns).await;
            cache_answers_what_it_holds_and_nothing_else("redis", store, &proxy).await;
        },
        delete_redis_namespace(&ns),
    )
    .await;
}
