//! `RedisStore` against real servers: the single Redis at `REDIS_URL` (default `redis://127.0.0.1:6379`), and a
//! three-node Redis Cluster that the cluster test starts itself (`redis-server` and `redis-cli` on the `PATH` or in
//! `/usr/bin`). Each test keeps its keys under a random namespace and deletes them when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::routing::get;
use tower_api_key::{
    ApiKeyLayer, KeyDigest, KeyId, KeyManager, KeyStatus, KeyStore, KeyUpdate, ListQuery, Lookup, NewKey, Principal,
    RedisStore, conformance,
};

/// How long a test waits for a server to accept a connection.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

fn url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// The URL for a message, without a password.
fn shown(url: &str) -> String {
    match (url.split_once("://"), url.rsplit_once('@')) {
        (Some((scheme, _)), Some((_, host))) => format!("{scheme}://***@{host}"),
        _ => url.to_owned(),
    }
}

fn random_namespace() -> String {
    format!("tak_test_{}", KeyId::random())
}

/// Connects to the single server, or fails the test naming the URL it tried.
async fn connect(namespace: &str) -> RedisStore {
    let url = url();
    match tokio::time::timeout(CONNECT_WAIT, RedisStore::connect(&url, namespace)).await {
        Ok(Ok(store)) => store,
        Ok(Err(e)) => panic!(
            "no Redis at {} ({e}: {}); start one there or set REDIS_URL",
            shown(&url),
            std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default()
        ),
        Err(_) => {
            panic!("Redis at {} did not answer within {CONNECT_WAIT:?}; start one there or set REDIS_URL", shown(&url))
        }
    }
}

/// Deletes the keys of the namespaces it was given when dropped, whether the test passed or not.
#[derive(Default)]
struct Cleanup(Arc<Mutex<Vec<String>>>);

impl Cleanup {
    fn add(&self, namespace: &str) -> String {
        self.0.lock().unwrap().push(namespace.to_owned());
        namespace.to_owned()
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let Ok(client) = redis::Client::open(url()) else { return };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else { return };
        let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
        for ns in self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).iter() {
            let keys: Vec<String> = redis::cmd("KEYS").arg(format!("{{{ns}}}:*")).query(&mut conn).unwrap_or_default();
            if !keys.is_empty() {
                let _ = redis::cmd("DEL").arg(keys).query::<i64>(&mut conn);
            }
        }
    }
}

/// A plain connection to the single server, to look at what the store wrote.
async fn raw() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url()).unwrap();
    tokio::time::timeout(CONNECT_WAIT, client.get_multiplexed_async_connection()).await.unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_the_store_contract_on_a_single_server() {
    let cleanup = Cleanup::default();
    conformance::run(|| {
        let ns = cleanup.add(&random_namespace());
        async move { connect(&ns).await }
    })
    .await;
}

/// The same contract through a `CachedStore` in front (what the example server runs).
#[cfg(feature = "cache")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_the_store_contract_behind_a_cache() {
    let cleanup = Cleanup::default();
    conformance::run(|| {
        let ns = cleanup.add(&random_namespace());
        async move { tower_api_key::CachedStore::new(connect(&ns).await, tower_api_key::CacheConfig::new()) }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn keeps_the_store_contract_on_a_cluster() {
    let cluster = tokio::task::spawn_blocking(Cluster::start).await.unwrap();
    let urls = cluster.urls();
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    // The namespace's keys all sit in one slot; run the suite twice so that two namespaces (most likely on two
    // different nodes) both pass.
    for _ in 0..2 {
        conformance::run(|| {
            let ns = random_namespace();
            let urls = urls.clone();
            async move {
                tokio::time::timeout(CONNECT_WAIT, RedisStore::connect_cluster(&urls, &ns))
                    .await
                    .expect("the test cluster answers")
                    .expect("connects to the test cluster")
            }
        })
        .await;
    }
    // And behind a cache.
    #[cfg(feature = "cache")]
    conformance::run(|| {
        let ns = random_namespace();
        let urls = urls.clone();
        async move {
            let store = tokio::time::timeout(CONNECT_WAIT, RedisStore::connect_cluster(&urls, &ns))
                .await
                .expect("the test cluster answers")
                .expect("connects to the test cluster");
            tower_api_key::CachedStore::new(store, tower_api_key::CacheConfig::new())
        }
    })
    .await;
    drop(cluster);
}

#[tokio::test]
async fn a_new_store_on_the_same_namespace_sees_the_keys_and_revocations() {
    let cleanup = Cleanup::default();
    let ns = cleanup.add(&random_namespace());
    let first = connect(&ns).await;
    let keys = KeyManager::new(first.clone());
    let kept = keys.issue(NewKey::user("alice").scopes(["read"]).unwrap()).await.unwrap();
    let revoked = keys.issue(NewKey::user("bob")).await.unwrap();
    let imported =
        keys.import_key(NewKey::system("billing"), &tower_api_key::ApiKey::new("legacy".into())).await.unwrap();
    keys.revoke(&revoked.record.id).await.unwrap();
    drop((keys, first));

    let second = connect(&ns).await;
    let now = SystemTime::now();
    let found = second.lookup(Lookup::Id(&kept.record.id)).await.unwrap().expect("the key is still there");
    assert_eq!(*found, kept.record);
    assert_eq!(found.status_at(now), KeyStatus::Active);
    let gone = second.lookup(Lookup::Id(&revoked.record.id)).await.unwrap().expect("the revoked key is still there");
    assert_eq!(gone.status_at(now), KeyStatus::Revoked);
    let legacy = second.lookup(Lookup::Digest(&KeyDigest::of(b"legacy"))).await.unwrap().expect("by digest");
    assert_eq!(*legacy, imported);

    // Another namespace on the same server sees none of it.
    let other = connect(&cleanup.add(&random_namespace())).await;
    assert!(other.get(&kept.record.id).await.unwrap().is_none());
    assert!(other.lookup(Lookup::Digest(&KeyDigest::of(b"legacy"))).await.unwrap().is_none());
    assert!(other.list(&ListQuery::new(), now).await.unwrap().items.is_empty());
}

async fn pttl(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query_async(conn).await.unwrap()
}

#[tokio::test]
async fn the_redis_ttl_follows_the_expiry_plus_a_day() {
    let cleanup = Cleanup::default();
    let ns = cleanup.add(&random_namespace());
    let store = connect(&ns).await;
    let keys = KeyManager::new(store.clone());
    let mut conn = raw().await;
    let margin = i64::try_from(RedisStore::EXPIRED_RETENTION.as_millis()).unwrap();

    let issued = keys.issue(NewKey::user("alice").expires_in(Duration::from_secs(2))).await.unwrap();
    let record_key = format!("{{{ns}}}:key:{}", issued.record.id);
    let ttl = pttl(&mut conn, &record_key).await;
    assert!((margin..=margin + 2_000).contains(&ttl), "PTTL {ttl} ms, want 2 s plus {margin} ms");

    // An opaque key: its digest index entry gets the same TTL.
    let legacy = KeyManager::new(store.clone())
        .import_key(NewKey::user("bob").expires_in(Duration::from_secs(2)), &tower_api_key::ApiKey::new("old".into()))
        .await
        .unwrap();
    let digest_key = format!("{{{ns}}}:digest:{}", legacy.digest.to_hex());
    let ttl = pttl(&mut conn, &digest_key).await;
    assert!((margin..=margin + 2_000).contains(&ttl), "digest index PTTL {ttl} ms");

    // Clearing the expiry removes the TTL; setting one again puts it back.
    let never = KeyUpdate { expires_at: Some(None), ..KeyUpdate::default() };
    store.update(&issued.record.id, &never).await.unwrap();
    store.update(&legacy.id, &never).await.unwrap();
    assert_eq!(pttl(&mut conn, &record_key).await, -1, "no TTL without an expiry");
    assert_eq!(pttl(&mut conn, &digest_key).await, -1, "no TTL on the digest index without an expiry");

    // Expired for longer than the margin: Redis drops the record, and listings drop its id from the index.
    let long_ago = KeyUpdate {
        expires_at: Some(Some(SystemTime::now() - RedisStore::EXPIRED_RETENTION - Duration::from_secs(60))),
        ..KeyUpdate::default()
    };
    store.update(&issued.record.id, &long_ago).await.unwrap();
    assert_eq!(pttl(&mut conn, &record_key).await, -2, "the record is gone");
    assert!(store.get(&issued.record.id).await.unwrap().is_none());
    let page = store.list(&ListQuery::new(), SystemTime::now()).await.unwrap();
    assert_eq!(page.items.iter().map(|r| r.id).collect::<Vec<_>>(), [legacy.id]);
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg(format!("{{{ns}}}:ids"))
        .arg(issued.record.id.as_str())
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(score, None, "the listing removed the stale id from the index");
}

#[tokio::test]
async fn a_listing_of_many_keys_pages_in_byte_order() {
    let cleanup = Cleanup::default();
    let store = connect(&cleanup.add(&random_namespace())).await;
    let keys = KeyManager::new(store.clone());
    let mut want = Vec::new();
    for i in 0..250 {
        want.push(keys.issue(NewKey::user(if i % 50 == 0 { "needle" } else { "hay" })).await.unwrap().record.id);
    }
    want.sort_by(|a, b| a.as_str().as_bytes().cmp(b.as_str().as_bytes()));
    let (mut seen, mut query) = (Vec::new(), ListQuery::new().limit(100));
    loop {
        let page = store.list(&query, SystemTime::now()).await.unwrap();
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(next) => query = query.after(next),
            None => break,
        }
    }
    assert_eq!(seen, want);
    let needles = store.list(&ListQuery::new().owner("needle"), SystemTime::now()).await.unwrap();
    assert_eq!((needles.items.len(), needles.next), (5, None));
}

async fn whoami(principal: Principal) -> String {
    principal.id().to_owned()
}

#[tokio::test]
async fn an_axum_server_accepts_a_key_from_redis_until_it_is_revoked() {
    let cleanup = Cleanup::default();
    let store = connect(&cleanup.add(&random_namespace())).await;
    let keys = KeyManager::new(store.clone());
    let issued = keys.issue(NewKey::user("alice")).await.unwrap();
    let app = Router::new().route("/whoami", get(whoami)).layer(ApiKeyLayer::new(store));
    let base = format!("http://{}", common::serve(app).await);
    let client = common::client();
    let ask = || client.get(format!("{base}/whoami")).bearer_auth(issued.key.expose_secret()).send();

    let ok = ask().await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "alice");

    keys.revoke(&issued.record.id).await.unwrap();
    let refused = ask().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn no_server_is_an_error_at_once_and_bad_namespaces_are_refused() {
    let port = free_ports(1)[0];
    let url = format!("redis://127.0.0.1:{port}");
    let started = Instant::now();
    let answer = tokio::time::timeout(Duration::from_secs(20), RedisStore::connect(&url, "ns")).await;
    let err = answer.expect("gives up within its retries").expect_err("nothing listens there");
    assert!(matches!(err, tower_api_key::store::RedisStoreError::Connect(_)));
    assert!(started.elapsed() < Duration::from_secs(15), "took {:?}", started.elapsed());

    for bad in ["", "a b", "{x}", "a:b", &"n".repeat(65)] {
        let err = RedisStore::connect(&url, bad).await.expect_err("invalid namespace");
        assert!(matches!(err, tower_api_key::store::RedisStoreError::InvalidNamespace), "{bad:?}");
    }
}

/// `n` distinct free loopback ports whose cluster bus ports (port + 10000) are free too.
fn free_ports(n: usize) -> Vec<u16> {
    let mut held = Vec::new();
    for _ in 0..100 {
        if held.len() == n {
            break;
        }
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        if port < 55_000
            && let Ok(bus) = TcpListener::bind(("127.0.0.1", port + 10_000))
        {
            held.push((port, listener, bus));
        }
    }
    assert_eq!(held.len(), n, "no {n} free loopback port pairs");
    held.into_iter().map(|(port, ..)| port).collect()
}

fn binary(name: &str) -> PathBuf {
    let usr_bin = PathBuf::from("/usr/bin").join(name);
    if usr_bin.exists() { usr_bin } else { PathBuf::from(name) }
}

/// Three `redis-server` processes forming a cluster (no replicas); killed, and their directory removed, on drop.
struct Cluster {
    nodes: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl Cluster {
    fn start() -> Self {
        let dir = std::env::temp_dir().join(format!("tak-redis-cluster-{}-{}", std::process::id(), KeyId::random()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut cluster = Self { nodes: Vec::new(), dir };
        for port in free_ports(3) {
            let log = std::fs::File::create(cluster.dir.join(format!("redis-{port}.log"))).unwrap();
            let child = Command::new(binary("redis-server"))
                .args(["--port", &port.to_string(), "--cluster-enabled", "yes", "--cluster-config-file"])
                .arg(cluster.dir.join(format!("nodes-{port}.conf")))
                .args(["--save", "", "--appendonly", "no", "--dir"])
                .arg(&cluster.dir)
                .args(["--bind", "127.0.0.1", "--daemonize", "no"])
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start redis-server: {e}"));
            cluster.nodes.push((port, child));
        }
        for (port, _) in &cluster.nodes {
            cluster.wait_for(*port, "PING", |reply| reply == "PONG");
        }
        let mut create = Command::new(binary("redis-cli"));
        create.arg("--cluster").arg("create");
        for (port, _) in &cluster.nodes {
            create.arg(format!("127.0.0.1:{port}"));
        }
        let mut child = create
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run redis-cli: {e}"));
        let deadline = Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-cli --cluster create did not finish within 30 s");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        assert!(status.success(), "redis-cli --cluster create failed: {status}");
        for (port, _) in &cluster.nodes {
            cluster.wait_for(*port, "CLUSTER INFO", |info| info.contains("cluster_state:ok"));
        }
        cluster
    }

    /// Waits (at most 30 s) until the node on `port` answers `command` with a reply that passes `ok`.
    fn wait_for(&self, port: u16, command: &str, ok: impl Fn(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        loop {
            let reply = client.get_connection_with_timeout(Duration::from_millis(500)).and_then(|mut conn| {
                conn.set_read_timeout(Some(Duration::from_secs(2)))?;
                let mut words = command.split(' ');
                let mut cmd = redis::cmd(words.next().unwrap_or_default());
                for word in words {
                    cmd.arg(word);
                }
                cmd.query::<String>(&mut conn)
            });
            match reply {
                Ok(reply) if ok(&reply) => return,
                _ if Instant::now() > deadline => {
                    panic!("the test cluster's node on port {port} did not answer {command} as expected within 30 s")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(|(port, _)| format!("redis://127.0.0.1:{port}")).collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn usage_counts_saturate_and_times_round_trip_to_the_nanosecond() {
    let cleanup = Cleanup::default();
    let store = connect(&cleanup.add(&random_namespace())).await;
    let at = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let mut record =
        tower_api_key::KeyRecord::new(KeyId::random(), KeyDigest::of(b"busy"), tower_api_key::KeyKind::User, "u")
            .with_created_at(at);
    record.usage_count = u64::MAX - 1;
    store.insert(&record).await.unwrap();
    let later = at + Duration::from_nanos(1);
    store.record_usage(&[tower_api_key::Usage::new(record.id, 5, later)]).await.unwrap();
    let got = store.get(&record.id).await.unwrap().unwrap();
    assert_eq!((got.usage_count, got.last_used_at, got.created_at), (u64::MAX, Some(later), at));
}

#[tokio::test]
async fn hourly_counts_sit_in_the_namespace_hash_tag_expire_and_are_pruned() {
    use tower_api_key::{HourlyUsage, USAGE_HOURS_KEPT, Usage};
    let cleanup = Cleanup::default();
    let ns = cleanup.add(&random_namespace());
    let store = connect(&ns).await;
    let record =
        tower_api_key::KeyRecord::new(KeyId::random(), KeyDigest::of(b"hourly"), tower_api_key::KeyKind::User, "u");
    store.insert(&record).await.unwrap();
    let now = Usage::hour_of(SystemTime::now());
    let h = Duration::from_secs(3600);
    // Two hours in one batch, one of them twice.
    let batch = [Usage::new(record.id, 2, now - h), Usage::new(record.id, 3, now), Usage::new(record.id, 4, now)];
    store.record_usage(&batch).await.unwrap();
    assert_eq!(
        store.hourly_usage(&record.id, now - h).await.unwrap(),
        [HourlyUsage { hour: now - h, count: 2 }, HourlyUsage { hour: now, count: 7 }]
    );

    // Layout: one hash in the namespace's hash tag, hour (seconds) -> count, with a TTL of the hours kept + 1.
    let mut raw = raw().await;
    let key = format!("{{{ns}}}:usage:{}", record.id);
    let fields: std::collections::HashMap<String, String> =
        redis::cmd("HGETALL").arg(&key).query_async(&mut raw).await.unwrap();
    let secs = |t: SystemTime| t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs().to_string();
    assert_eq!(fields.get(&secs(now)).map(String::as_str), Some("7"), "{fields:?}");
    let ttl: i64 = redis::cmd("TTL").arg(&key).query_async(&mut raw).await.unwrap();
    let most = i64::from(USAGE_HOURS_KEPT + 1) * 3600;
    assert!((most - 60..=most).contains(&ttl), "TTL {ttl}");

    // Hours older than the hours kept before the newest are pruned once the hash holds more than it keeps.
    let kept = USAGE_HOURS_KEPT;
    let old: Vec<Usage> = (2..=kept + 10).map(|back| Usage::new(record.id, 1, now - h * back)).collect();
    store.record_usage(&old).await.unwrap();
    let hours = store.hourly_usage(&record.id, SystemTime::UNIX_EPOCH).await.unwrap();
    assert_eq!(hours.len(), usize::try_from(kept).unwrap() + 1, "from the newest hour back the hours kept");
    assert_eq!(hours.first().map(|u| u.hour), Some(now - h * kept));
    assert!(hours.windows(2).all(|w| w[0].hour < w[1].hour), "oldest first");

    // Unknown keys write nothing; counts saturate.
    let unknown = KeyId::random();
    store.record_usage(&[Usage::new(unknown, 1, now)]).await.unwrap();
    let exists: i64 =
        redis::cmd("EXISTS").arg(format!("{{{ns}}}:usage:{unknown}")).query_async(&mut raw).await.unwrap();
    assert_eq!(exists, 0);
    store.record_usage(&[Usage::new(record.id, u64::MAX, now), Usage::new(record.id, u64::MAX, now)]).await.unwrap();
    assert_eq!(store.hourly_usage(&record.id, now).await.unwrap(), [HourlyUsage { hour: now, count: u64::MAX }]);
}
