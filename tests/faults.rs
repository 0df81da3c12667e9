//! Store faults under load, over a real server: `axum::serve` on loopback, `ApiKeyLayer` over a store wrapper whose
//! mode (normal / slow / failing) is switched through an atomic while 32 concurrent clients send a mix of valid and
//! invalid keys.
//!
//! The wrapper does not implement `KeyStore::lookup_now`, so every lookup takes the layer's async path with its
//! `store_timeout` (100 ms here; the slow mode sleeps 300 ms). It counts every lookup by the mode it was served in,
//! which makes the checks exact even while the mode flips: every 200 is matched by a healthy lookup that found the
//! key, and every 503 by a slow or failed lookup.
//!
//! | key sent | normal store | slow or failing store |
//! |---|---|---|
//! | valid (user, system, opaque) | 200 | 503 |
//! | unknown (well-formed or opaque), revoked | 401 `invalid_token` | 503 |
//! | malformed (bad checksum) | 401, no store call | 401, no store call |
//! | none | 401, no store call | 401, no store call |
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::{Router, routing::get};
use tokio::net::TcpListener;
use tower_api_key::{
    ApiKeyLayer, KeyFormat, KeyStore, Lookup, MemoryStore, NewKey, Principal, StoreError, async_trait,
    store::LookupResult,
};

const TIMEOUT: Duration = Duration::from_millis(100);
const SLOW: Duration = Duration::from_millis(300);
const TASKS: usize = 32;
const SECRET_ERROR: &str = "injected failure: db-password=hunter2";

const NORMAL: u8 = 0;
const SLOW_MODE: u8 = 1;
const FAILING: u8 = 2;

/// Lookups served, by the mode the store was in when the lookup started.
#[derive(Debug, Default)]
struct Counters {
    found: AtomicUsize,
    not_found: AtomicUsize,
    slow: AtomicUsize,
    failed: AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Counts {
    found: usize,
    not_found: usize,
    slow: usize,
    failed: usize,
}

impl Counts {
    fn since(self, before: Self) -> Self {
        Self {
            found: self.found - before.found,
            not_found: self.not_found - before.not_found,
            slow: self.slow - before.slow,
            failed: self.failed - before.failed,
        }
    }
}

/// A store that delegates to a `MemoryStore` unless told to be slow or to fail. No `lookup_now`.
#[derive(Debug)]
struct FaultyStore {
    inner: MemoryStore,
    mode: AtomicU8,
    counters: Counters,
}

impl FaultyStore {
    fn counts(&self) -> Counts {
        Counts {
            found: self.counters.found.load(SeqCst),
            not_found: self.counters.not_found.load(SeqCst),
            slow: self.counters.slow.load(SeqCst),
            failed: self.counters.failed.load(SeqCst),
        }
    }
}

#[async_trait]
impl KeyStore for FaultyStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        match self.mode.load(SeqCst) {
            NORMAL => {
                let result = self.inner.lookup(by).await;
                let counter = match &result {
                    Ok(Some(_)) => &self.counters.found,
                    Ok(None) => &self.counters.not_found,
                    Err(e) => panic!("the memory store failed: {e}"),
                };
                counter.fetch_add(1, SeqCst);
                result
            }
            SLOW_MODE => {
                self.counters.slow.fetch_add(1, SeqCst);
                tokio::time::sleep(SLOW).await;
                self.inner.lookup(by).await
            }
            _ => {
                self.counters.failed.fetch_add(1, SeqCst);
                Err(StoreError::backend(std::io::Error::other(SECRET_ERROR)))
            }
        }
    }
}

/// What a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    ValidUser,
    ValidSystem,
    ValidOpaque,
    Revoked,
    UnknownFormatted,
    UnknownOpaque,
    Malformed,
    Missing,
}

const ALL: [Sent; 8] = [
    Sent::ValidUser,
    Sent::ValidSystem,
    Sent::ValidOpaque,
    Sent::Revoked,
    Sent::UnknownFormatted,
    Sent::UnknownOpaque,
    Sent::Malformed,
    Sent::Missing,
];

impl Sent {
    fn hits_store(self) -> bool {
        !matches!(self, Self::Malformed | Self::Missing)
    }

    fn valid(self) -> bool {
        matches!(self, Self::ValidUser | Self::ValidSystem | Self::ValidOpaque)
    }
}

struct Fixture {
    addr: SocketAddr,
    store: Arc<FaultyStore>,
    keys: Vec<(Sent, Option<String>, &'static str)>,
    client: reqwest::Client,
}

async fn start() -> Fixture {
    let memory = MemoryStore::new();
    let user = memory.add(NewKey::user("alice")).unwrap().key.expose_secret().to_owned();
    let system = memory.add(NewKey::system("billing")).unwrap().key.expose_secret().to_owned();
    memory.import("opaque-legacy-key-0001", NewKey::user("carol")).unwrap();
    let revoked = memory.add(NewKey::user("mallory")).unwrap();
    memory.revoke(&revoked.record.id, std::time::SystemTime::now()).await.unwrap();
    let unknown =
        KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now()).key.expose_secret().to_owned();
    let mut malformed = user.clone().into_bytes();
    let last = malformed.len() - 1;
    malformed[last] = if malformed[last] == b'A' { b'B' } else { b'A' };
    let keys = vec![
        (Sent::ValidUser, Some(user), "alice"),
        (Sent::ValidSystem, Some(system), "billing"),
        (Sent::ValidOpaque, Some("opaque-legacy-key-0001".to_owned()), "carol"),
        (Sent::Revoked, Some(revoked.key.expose_secret().to_owned()), ""),
        (Sent::UnknownFormatted, Some(unknown), ""),
        (Sent::UnknownOpaque, Some("opaque-key-nobody-issued".to_owned()), ""),
        (Sent::Malformed, Some(String::from_utf8(malformed).unwrap()), ""),
        (Sent::Missing, None, ""),
    ];
    assert_eq!(keys.iter().map(|k| k.0).collect::<Vec<_>>(), ALL);

    let store = Arc::new(FaultyStore { inner: memory, mode: AtomicU8::new(NORMAL), counters: Counters::default() });
    let app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(store.clone()).store_timeout(TIMEOUT));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    Fixture { addr, store, keys, client }
}

/// One answer, as the client saw it.
#[derive(Debug)]
struct Answer {
    sent: Sent,
    status: u16,
    challenge: Option<String>,
    body: String,
    elapsed: Duration,
}

impl Fixture {
    async fn request(&self, sent: Sent) -> Answer {
        let (_, key, _) = &self.keys[ALL.iter().position(|s| *s == sent).unwrap()];
        let mut req = self.client.get(format!("http://{}/whoami", self.addr));
        if let Some(key) = key {
            // Alternate the sources; they all take the same path after extraction.
            req = match key.len() % 2 {
                0 => req.bearer_auth(key),
                _ => req.header("api-key", key),
            };
        }
        let start = Instant::now();
        let res = req.send().await.unwrap_or_else(|e| panic!("{sent:?}: {e}"));
        let status = res.status().as_u16();
        let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        let body = res.text().await.unwrap();
        Answer { sent, status, challenge, body, elapsed: start.elapsed() }
    }

    fn owner(&self, sent: Sent) -> &'static str {
        self.keys.iter().find(|k| k.0 == sent).unwrap().2
    }

    /// `TASKS` concurrent clients, each sending `per_task` requests cycling through every kind of key.
    async fn phase(self: &Arc<Self>, per_task: usize) -> Vec<Answer> {
        let mut tasks = tokio::task::JoinSet::new();
        for t in 0..TASKS {
            let fx = self.clone();
            tasks.spawn(async move {
                let mut out = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    out.push(fx.request(ALL[(t + i) % ALL.len()]).await);
                }
                out
            });
        }
        let mut all = Vec::new();
        while let Some(done) = tasks.join_next().await {
            all.extend(done.unwrap());
        }
        assert_eq!(all.len(), TASKS * per_task);
        all
    }

    /// Checks one answer against what the store could have done; returns the error text or `None`.
    fn check(&self, a: &Answer, healthy_possible: bool, faulty_possible: bool) -> Option<String> {
        let invalid_token = Some("Bearer realm=\"api\", error=\"invalid_token\"");
        let ok = match (a.status, a.sent) {
            (200, s) => healthy_possible && s.valid() && a.body == self.owner(s) && a.challenge.is_none(),
            (401, Sent::Missing) => a.challenge.as_deref() == Some("Bearer realm=\"api\""),
            (401, Sent::Malformed) => a.challenge.as_deref() == invalid_token,
            (401, s) => healthy_possible && s.hits_store() && !s.valid() && a.challenge.as_deref() == invalid_token,
            (503, s) => {
                faulty_possible
                    && s.hits_store()
                    && a.challenge.is_none()
                    && a.body.contains("temporarily unavailable")
                    && !a.body.contains("hunter2")
                    && !a.body.contains("injected")
            }
            _ => false,
        };
        (!ok).then(|| format!("{a:?} (healthy possible: {healthy_possible}, faulty possible: {faulty_possible})"))
    }

    fn check_all(&self, answers: &[Answer], healthy: bool, faulty: bool) {
        let bad: Vec<String> = answers.iter().filter_map(|a| self.check(a, healthy, faulty)).collect();
        assert!(
            bad.is_empty(),
            "{} of {} answers are wrong, e.g.:\n{}",
            bad.len(),
            answers.len(),
            bad[..bad.len().min(10)].join("\n")
        );
    }
}

fn count(answers: &[Answer], f: impl Fn(&Answer) -> bool) -> usize {
    answers.iter().filter(|a| f(a)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_faults_under_concurrent_load_fail_closed() {
    let fx = Arc::new(start().await);
    let store = fx.store.clone();
    let set = |mode| store.mode.store(mode, SeqCst);

    // 1. Healthy store: valid keys 200, invalid keys 401; one lookup per request that reaches the store.
    let before = store.counts();
    let answers = fx.phase(50).await;
    fx.check_all(&answers, true, false);
    let d = store.counts().since(before);
    assert_eq!(count(&answers, |a| a.status == 200), count(&answers, |a| a.sent.valid()));
    assert_eq!(d.found, count(&answers, |a| a.sent.valid() || a.sent == Sent::Revoked));
    assert_eq!(d.not_found, count(&answers, |a| matches!(a.sent, Sent::UnknownFormatted | Sent::UnknownOpaque)));
    assert_eq!((d.slow, d.failed), (0, 0));

    // 2. Failing store: every request that reaches the store gets 503; offline rejections still give 401.
    set(FAILING);
    let before = store.counts();
    let answers = fx.phase(50).await;
    fx.check_all(&answers, false, true);
    let d = store.counts().since(before);
    assert_eq!(d.failed, count(&answers, |a| a.sent.hits_store()));
    assert_eq!(count(&answers, |a| a.status == 503), d.failed);
    assert_eq!((d.found, d.not_found, d.slow), (0, 0, 0));

    // 3. Slow store: 503 once the timeout fires, well before the store would have answered.
    set(SLOW_MODE);
    let before = store.counts();
    let answers = fx.phase(4).await;
    fx.check_all(&answers, false, true);
    let d = store.counts().since(before);
    assert_eq!(d.slow, count(&answers, |a| a.sent.hits_store()));
    assert_eq!(count(&answers, |a| a.status == 503), d.slow);
    for a in answers.iter().filter(|a| a.status == 503) {
        assert!(a.elapsed >= TIMEOUT, "503 before the store timeout: {a:?}");
        assert!(a.elapsed < TIMEOUT + Duration::from_secs(1), "503 too late: {a:?}");
    }
    let slowest = answers.iter().map(|a| a.elapsed).max().unwrap();
    println!("slow store: {} answers, slowest {slowest:?}", answers.len());

    // 4. Healthy again: everything recovers at once.
    set(NORMAL);
    let answers = fx.phase(10).await;
    fx.check_all(&answers, true, false);

    // 5. The mode flips every few milliseconds while the clients run. Each answer must be one a lookup in some
    //    mode could give, and the answers must match the lookups one for one.
    let before = store.counts();
    let stop = Arc::new(AtomicBool::new(false));
    let flipper = {
        let (store, stop) = (store.clone(), stop.clone());
        tokio::spawn(async move {
            let mut flips = 0usize;
            while !stop.load(SeqCst) {
                store.mode.store([NORMAL, FAILING, NORMAL, SLOW_MODE][flips % 4], SeqCst);
                flips += 1;
                tokio::time::sleep(Duration::from_millis(7)).await;
            }
            store.mode.store(NORMAL, SeqCst);
            flips
        })
    };
    let answers = fx.phase(50).await;
    stop.store(true, SeqCst);
    let flips = flipper.await.unwrap();
    fx.check_all(&answers, true, true);
    let d = store.counts().since(before);
    let revoked_401 = count(&answers, |a| a.sent == Sent::Revoked && a.status == 401);
    assert_eq!(count(&answers, |a| a.status == 200), d.found - revoked_401, "every 200 needs a healthy lookup");
    assert_eq!(
        count(&answers, |a| a.status == 401 && a.sent.hits_store()),
        d.not_found + revoked_401,
        "every invalid_token from the store needs a healthy lookup"
    );
    assert_eq!(count(&answers, |a| a.status == 503), d.slow + d.failed, "every 503 needs a faulty lookup");
    let by_status = |s| count(&answers, |a| a.status == s);
    println!(
        "flipping: {flips} flips; 200: {}, 401: {}, 503: {}; {d:?}",
        by_status(200),
        by_status(401),
        by_status(503)
    );
    // The run was long enough to see every mode, or the phase proved nothing.
    assert!(d.found > 0 && d.failed > 0 && d.slow > 0, "not every mode was hit: {d:?}");
}

/// A store that never answers at all still gives 503 within the bound, and the server keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_store_gives_503_within_the_timeout() {
    #[derive(Debug)]
    struct Hang;
    #[async_trait]
    impl KeyStore for Hang {
        async fn lookup(&self, _: Lookup<'_>) -> LookupResult {
            std::future::pending().await
        }
    }
    let app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(Hang).store_timeout(TIMEOUT));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..TASKS {
        let (client, url) = (client.clone(), format!("http://{addr}/whoami"));
        tasks.spawn(async move {
            let start = Instant::now();
            let res = client.get(url).header("api-key", format!("some-opaque-key-{i}")).send().await.unwrap();
            (res.status().as_u16(), start.elapsed())
        });
    }
    while let Some(done) = tasks.join_next().await {
        let (status, elapsed) = done.unwrap();
        assert_eq!(status, 503);
        assert!(elapsed >= TIMEOUT && elapsed < TIMEOUT + Duration::from_secs(1), "{elapsed:?}");
    }
}

/// On a Tokio runtime built without timers, and with no runtime at all, a store miss neither panics nor skips the
/// timeout: the layer answers 503 once the store timeout has passed.
#[test]
fn without_timers_a_hanging_store_still_gives_503_within_the_timeout() {
    use tower::ServiceExt;
    #[derive(Debug)]
    struct Hang;
    #[async_trait]
    impl KeyStore for Hang {
        async fn lookup(&self, _: Lookup<'_>) -> LookupResult {
            std::future::pending().await
        }
    }
    let svc = tower::ServiceBuilder::new().layer(ApiKeyLayer::new(Hang).store_timeout(TIMEOUT)).service_fn(
        |_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
    );
    let call = || {
        let req = http::Request::get("/").header("api-key", "some-opaque-key").body(()).unwrap();
        svc.clone().oneshot(req)
    };
    let no_timers = tokio::runtime::Builder::new_current_thread().build().unwrap();
    for _ in 0..3 {
        let start = Instant::now();
        let res = no_timers.block_on(call()).unwrap();
        assert_eq!(res.status(), 503);
        assert!(
            start.elapsed() >= TIMEOUT && start.elapsed() < TIMEOUT + Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }
    // No runtime at all: a plain executor that parks the thread.
    let start = Instant::now();
    let res = park_on(call()).unwrap();
    assert_eq!(res.status(), 503);
    assert!(start.elapsed() < TIMEOUT + Duration::from_secs(2), "{:?}", start.elapsed());
}

fn park_on<F: std::future::Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl std::task::Wake for Unpark {
        fn wake(self: std::sync::Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = std::sync::Arc::new(Unpark(std::thread::current())).into();
    let mut cx = std::task::Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let std::task::Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
        std::thread::park();
    }
}
