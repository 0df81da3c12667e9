//! dudect-style timing-leak test (Welch's t-test) for key verification. Run with
//! `cargo bench --bench constant_time`; see BENCHMARKS.md for how to read it.
//!
//! Each test has two classes of input. For every measurement the class is drawn at random (so drift, frequency
//! changes and other processes hit both classes alike), the input is prepared in place in one reused buffer (both
//! classes built by the same code, so allocation placement cannot tell them apart), and only the operation is
//! timed with `std::time::Instant` (the clock source here is the TSC through the vDSO; the crate forbids `unsafe`
//! in every target, so no `rdtsc`). Per seed, the first measurements warm up and are dropped; then Welch's t is
//! computed on the raw timings and on timings cropped at dudect's percentile thresholds, and the test reports the
//! largest |t| over crops and seeds.
//!
//! Pass tests must stay under |t| = 4.5; positive controls (known leaks) must exceed |t| = 10, which shows the
//! harness can see a leak of that size. Informational tests (key length, which is public) are printed, not judged.
//! The process exits non-zero when a pass test or a control fails.
//!
//! `CT_SAMPLES` (default 1 000 000 per seed) and `CT_SEEDS` (default 3) override the sizes.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs,
    missing_debug_implementations,
    unreachable_pub
)]

use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::pin::pin;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_api_key::store::LookupResult;
use tower_api_key::{
    ApiKeyLayer, KeyDigest, KeyFormat, KeyKind, KeyRecord, KeyStore, Lookup, MemoryStore, async_trait,
};

type Body = Full<Bytes>;
type Req = Request<Body>;
type Res = Response<Body>;

const PASS_LIMIT: f64 = 4.5;
const CONTROL_MIN: f64 = 10.0;
const WARMUP: usize = 20_000;
/// dudect's crop thresholds: percentile 1 - 0.5^(10 (i+1) / N).
const PERCENTILES: usize = 20;

// ---------------------------------------------------------------------------------------------------------------
// Statistics.

#[derive(Default, Clone, Copy)]
struct Welford {
    n: f64,
    mean: f64,
    m2: f64,
}

impl Welford {
    fn push(&mut self, x: f64) {
        self.n += 1.0;
        let d = x - self.mean;
        self.mean += d / self.n;
        self.m2 += d * (x - self.mean);
    }
    fn var(&self) -> f64 {
        if self.n < 2.0 { 0.0 } else { self.m2 / (self.n - 1.0) }
    }
}

fn welch(a: &Welford, b: &Welford) -> f64 {
    let se = (a.var() / a.n + b.var() / b.n).sqrt();
    if se == 0.0 || a.n < 2.0 || b.n < 2.0 { 0.0 } else { (a.mean - b.mean) / se }
}

/// Largest |t| over the uncropped samples and every crop threshold, plus the class medians (ns).
fn analyse(samples: &[(bool, u32)]) -> (f64, u32, u32) {
    let mut sorted: Vec<u32> = samples.iter().map(|s| s.1).collect();
    sorted.sort_unstable();
    let mut thresholds = vec![u32::MAX];
    for i in 0..PERCENTILES {
        let p = 1.0 - 0.5f64.powf(10.0 * (i + 1) as f64 / PERCENTILES as f64);
        let idx = ((sorted.len() as f64) * p) as usize;
        thresholds.push(sorted[idx.min(sorted.len() - 1)]);
    }
    let mut max_t = 0.0f64;
    for &limit in &thresholds {
        let mut cls = [Welford::default(); 2];
        for &(c, t) in samples {
            if t <= limit {
                cls[usize::from(c)].push(f64::from(t));
            }
        }
        if cls[0].n < 1000.0 || cls[1].n < 1000.0 {
            continue;
        }
        max_t = max_t.max(welch(&cls[0], &cls[1]).abs());
    }
    let median = |class: bool| {
        let mut v: Vec<u32> = samples.iter().filter(|s| s.0 == class).map(|s| s.1).collect();
        let mid = v.len() / 2;
        v.select_nth_unstable(mid).1.to_owned()
    };
    (max_t, median(false), median(true))
}

/// SplitMix64: the class sequence for a seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pass,
    Control,
    Info,
}

struct Outcome {
    ok: bool,
}

/// Runs one test: `prepare(class)` sets the input up (untimed), `measure()` returns the timed nanoseconds.
fn run_test<T>(
    name: &str,
    kind: Kind,
    samples: usize,
    seeds: &[u64],
    state: &mut T,
    mut prepare: impl FnMut(&mut T, bool),
    mut measure: impl FnMut(&mut T) -> u32,
) -> Outcome {
    let started = Instant::now();
    let mut max_t = 0.0f64;
    let mut means = Vec::new();
    for &seed in seeds {
        let mut rng = Rng(seed);
        let mut data = Vec::with_capacity(samples);
        for i in 0..samples + WARMUP {
            let class = rng.next() & 1 == 1;
            prepare(state, class);
            let t = measure(state);
            if i >= WARMUP {
                data.push((class, t));
            }
        }
        let (t, m0, m1) = analyse(&data);
        max_t = max_t.max(t);
        means.push(format!("{m0}/{m1}"));
    }
    let (label, ok) = match kind {
        Kind::Pass => (if max_t < PASS_LIMIT { "PASS" } else { "FAIL" }, max_t < PASS_LIMIT),
        Kind::Control => {
            (if max_t > CONTROL_MIN { "PASS (leak seen)" } else { "FAIL (leak not seen)" }, max_t > CONTROL_MIN)
        }
        Kind::Info => ("info", true),
    };
    let what = match kind {
        Kind::Pass => format!("pass test, needs < {PASS_LIMIT}"),
        Kind::Control => format!("positive control, needs > {CONTROL_MIN}"),
        Kind::Info => "informational, not judged".to_owned(),
    };
    println!(
        "{name:<58} [{what}; {} seeds x {samples} samples; median ns A/B per seed {}; {:.1}s] {label}: max |t| = {max_t:.2}",
        seeds.len(),
        means.join(" "),
        started.elapsed().as_secs_f64()
    );
    Outcome { ok }
}

// ---------------------------------------------------------------------------------------------------------------
// Driving the layer in process.

fn drive<S: Service<Req>>(svc: &mut S, req: Req) -> S::Response {
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("service not ready"),
    }
    match pin!(svc.call(req)).poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        _ => panic!("future not ready on first poll"),
    }
}

fn inner() -> impl Service<Req, Response = Res, Error = Infallible, Future = impl Future + Send> + Clone + Send {
    tower::service_fn(|req: Req| async move {
        drop(req);
        Ok::<_, Infallible>(Response::new(Body::default()))
    })
}

fn base_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(HOST, HeaderValue::from_static("api.example.com"));
    h.insert(ACCEPT, HeaderValue::from_static("application/json"));
    h
}

/// Builds the request from the reused buffer holding the whole `Authorization` value (same code for both classes).
fn request(base: &HeaderMap, auth: &[u8]) -> Req {
    let mut req = Request::new(Body::default());
    *req.uri_mut() = Uri::from_static("/whoami");
    let mut headers = base.clone();
    headers.insert(AUTHORIZATION, HeaderValue::from_bytes(auth).unwrap());
    *req.headers_mut() = headers;
    req
}

/// Times one call of the service on a request built (untimed) from `auth`; the response drops after the clock.
fn time_call<S: Service<Req, Response = Res>>(svc: &mut S, base: &HeaderMap, auth: &[u8], want: StatusCode) -> u32 {
    let req = request(base, auth);
    let t0 = Instant::now();
    let res = drive(svc, req);
    let dt = t0.elapsed();
    debug_assert_eq!(res.status(), want);
    drop(black_box(res));
    u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX)
}

/// A store with one record whose digest the test rewrites in place between measurements (same allocation, same
/// address, for both classes). It answers like the memory store: synchronously, with a clone of the `Arc`.
#[derive(Debug)]
struct SwapStore {
    record: RwLock<Arc<KeyRecord>>,
}

impl SwapStore {
    fn find(&self, by: Lookup<'_>) -> Option<Arc<KeyRecord>> {
        let rec = self.record.read().unwrap_or_else(PoisonError::into_inner);
        match by {
            Lookup::Id(id) if *id == rec.id => Some(rec.clone()),
            _ => None,
        }
    }

    fn set_digest(&self, digest: [u8; 32]) {
        let mut rec = self.record.write().unwrap_or_else(PoisonError::into_inner);
        Arc::get_mut(&mut rec).expect("record not shared between requests").digest = KeyDigest::from_bytes(digest);
    }
}

#[async_trait]
impl KeyStore for SwapStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        Ok(self.find(by))
    }
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        Some(Ok(self.find(by)))
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Rewrites the 6-character checksum at the end of a crate-format key (CRC32 of everything before it, base62).
fn fix_checksum(key: &mut [u8]) {
    let split = key.len() - 6;
    let mut n = crc32fast::hash(&key[..split]);
    for slot in key[split..].iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
}

/// Byte-at-a-time early-exit comparison: the classic leak.
#[inline(never)]
fn naive_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    for i in 0..a.len() {
        if a[i] != b[i] {
            return false;
        }
    }
    true
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter as the first free argument runs only matching tests.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let samples = env_usize("CT_SAMPLES", 1_000_000);
    let seeds: Vec<u64> = (0..env_usize("CT_SEEDS", 3) as u64).map(|i| 0xD0DC_7000 + i).collect();
    let want = |name: &str| filter.as_deref().is_none_or(|f| name.contains(f));
    let started = Instant::now();
    let mut failures = Vec::new();
    let mut check = |name: &str, o: Outcome| {
        if !o.ok {
            failures.push(name.to_owned());
        }
    };
    println!("dudect-style Welch t-test; class A vs class B drawn at random per measurement");

    let format = KeyFormat::new();
    let issued = format.issue(tower_api_key::NewKey::user("alice"), std::time::SystemTime::now());
    let generated = &issued.record;
    let key: Vec<u8> = issued.key.expose_secret().as_bytes().to_vec();
    let real_digest = *generated.digest.as_bytes();
    let base = base_headers();
    let mut auth = b"Bearer ".to_vec();
    auth.extend_from_slice(&key);

    // (a1) ct_eq alone: stored digest differs from the presented one in the last byte (A) or the first byte (B).
    let name = "ct_eq: digest differs in last byte (A) vs first byte (B)";
    if want(name) {
        const K: usize = 64;
        let presented = KeyDigest::from_bytes(real_digest);
        let mut st = (real_digest, KeyDigest::from_bytes(real_digest));
        let o = run_test(
            name,
            Kind::Pass,
            samples,
            &seeds,
            &mut st,
            |st, class| {
                let mut d = real_digest;
                d[if class { 0 } else { 31 }] ^= 0x5A;
                st.0 = d;
                st.1 = KeyDigest::from_bytes(st.0);
            },
            |st| {
                let stored = black_box(&st.1);
                let t0 = Instant::now();
                let mut acc = 0u8;
                for _ in 0..K {
                    acc ^= black_box(stored).ct_eq(black_box(&presented)).unwrap_u8();
                }
                let dt = t0.elapsed();
                black_box(acc);
                u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX)
            },
        );
        check(name, o);
    }

    // (a2) the whole layer: same presented key, stored digest = SHA-256(secret) except the last (A) / first (B) byte.
    let name = "layer: stored digest differs in last byte (A) vs first (B)";
    if want(name) {
        let record = KeyRecord::new(generated.id, generated.digest, KeyKind::User, "alice").with_prefix("tak_user");
        let store = Arc::new(SwapStore { record: RwLock::new(Arc::new(record)) });
        let mut svc = ApiKeyLayer::new(store.clone()).layer(inner());
        assert_eq!(drive(&mut svc, request(&base, &auth)).status(), StatusCode::OK, "the real digest is accepted");
        let o = run_test(
            name,
            Kind::Pass,
            samples,
            &seeds,
            &mut svc,
            |_, class| {
                let mut d = real_digest;
                d[if class { 0 } else { 31 }] ^= 0x5A;
                store.set_digest(d);
            },
            |svc| time_call(svc, &base, &auth, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }

    // (a3) the same through the real MemoryStore: two stores holding the same id with the two digests. Two stores
    // mean two services and two records at different addresses, so this one also measures memory placement (it
    // typically shows |t| of 10-25 with equal medians): informational, and the reason (a2) rewrites one record.
    let name = "layer+2 MemoryStores: digest differs last (A) vs first (B)";
    if want(name) {
        let make = |idx: usize| {
            let mut d = real_digest;
            d[idx] ^= 0x5A;
            let store = MemoryStore::new();
            store
                .put(
                    KeyRecord::new(generated.id, KeyDigest::from_bytes(d), KeyKind::User, "alice")
                        .with_prefix("tak_user"),
                )
                .unwrap();
            ApiKeyLayer::new(store).layer(inner())
        };
        let mut svcs = (make(31), make(0), false);
        let o = run_test(
            name,
            Kind::Info,
            samples,
            &seeds,
            &mut svcs,
            |s, class| s.2 = class,
            |s| {
                let svc = if s.2 { &mut s.1 } else { &mut s.0 };
                time_call(svc, &base, &auth, StatusCode::UNAUTHORIZED)
            },
        );
        check(name, o);
    }

    // (a4) "how much of a guessed key is right": the presented key (the guess) is fixed; the true secret behind the
    // stored digest equals the guess except its last character (A: 23 of 24 right) or its first (B: nothing right
    // from the start). The differing character is drawn at random for every measurement, so the stored digests are
    // unrelated random values in both classes. The request is byte-for-byte the same for both classes.
    let name = "layer: true secret = guess but last char (A) vs first (B)";
    if want(name) {
        let record = KeyRecord::new(generated.id, generated.digest, KeyKind::User, "alice").with_prefix("tak_user");
        let store = Arc::new(SwapStore { record: RwLock::new(Arc::new(record)) });
        let svc = ApiKeyLayer::new(store.clone()).layer(inner());
        let secret_start = key.len() - 30; // prefix_id_
        let secret: Vec<u8> = key[secret_start..secret_start + 24].to_vec();
        let mut st = (svc, secret.clone(), Rng(0x5EC2E7));
        let o = run_test(
            name,
            Kind::Pass,
            samples,
            &seeds,
            &mut st,
            |(_, truth, rng), class| {
                truth.copy_from_slice(&secret);
                let i = if class { 0 } else { 23 };
                let mut k = (rng.next() % 62) as usize;
                if BASE62[k] == secret[i] {
                    k = (k + 1) % 62;
                }
                truth[i] = BASE62[k];
                store.set_digest(*KeyDigest::of(truth).as_bytes());
            },
            |(svc, _, _)| time_call(svc, &base, &auth, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }

    // (a5) the converse, informational: the true key is fixed and the presented guess is wrong in its last (A) or
    // first (B) secret character (random character, checksum recomputed). The two classes send different bytes
    // (the random character sits at a different place), and the format checks branch on character classes, so
    // a difference of about a nanosecond in how the *presented* bytes are parsed can show here. It depends only on
    // bytes the client chose, never on the stored secret, so it is not judged; (a4) is the test of the secret.
    let name = "layer: guess wrong in last secret char (A) vs first (B)";
    if want(name) {
        let store = MemoryStore::new();
        store
            .put(KeyRecord::new(generated.id, generated.digest, KeyKind::User, "alice").with_prefix("tak_user"))
            .unwrap();
        let svc = ApiKeyLayer::new(store).layer(inner());
        let secret_start = 7 + key.len() - 30; // "Bearer " + prefix_id_
        let secret_end = secret_start + 24;
        let original = auth.clone();
        let mut st = (svc, auth.clone(), Rng(0xBAD_5EC7));
        let o = run_test(
            name,
            Kind::Info,
            samples,
            &seeds,
            &mut st,
            |(_, buf, rng), class| {
                buf.copy_from_slice(&original);
                let i = if class { secret_start } else { secret_end - 1 };
                let mut k = (rng.next() % 62) as usize;
                if BASE62[k] == original[i] {
                    k = (k + 1) % 62;
                }
                buf[i] = BASE62[k];
                fix_checksum(&mut buf[7..]);
            },
            |(svc, buf, _)| time_call(svc, &base, buf, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }

    // (b) key length (public: it is on the wire). Opaque keys are hashed whole, so longer keys cost more.
    let name = "layer: opaque key 40 B (A) vs 48 B (B), same SHA block count";
    if want(name) {
        let svc = ApiKeyLayer::new(MemoryStore::new()).layer(inner());
        let long = format!("Bearer {}", "k".repeat(48)).into_bytes();
        let mut st = (svc, long.clone());
        let o = run_test(
            name,
            Kind::Info,
            samples,
            &seeds,
            &mut st,
            |(_, buf), class| {
                buf.clear();
                buf.extend_from_slice(&long[..if class { long.len() } else { long.len() - 8 }]);
            },
            |(svc, buf)| time_call(svc, &base, buf, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }
    let name = "layer: opaque key 40 B (A) vs 120 B (B), 1 vs 2 SHA blocks";
    if want(name) {
        let svc = ApiKeyLayer::new(MemoryStore::new()).layer(inner());
        let long = format!("Bearer {}", "k".repeat(120)).into_bytes();
        let mut st = (svc, long.clone());
        let o = run_test(
            name,
            Kind::Info,
            samples,
            &seeds,
            &mut st,
            |(_, buf), class| {
                buf.clear();
                buf.extend_from_slice(&long[..if class { long.len() } else { 7 + 40 }]);
            },
            |(svc, buf)| time_call(svc, &base, buf, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }

    // Positive control 1: byte-at-a-time early exit on the 32-byte digests (x64 per measurement).
    let name = "control: naive early-exit == on digests, last (A) vs first (B)";
    if want(name) {
        const K: usize = 64;
        let presented = real_digest;
        let mut st = real_digest;
        let o = run_test(
            name,
            Kind::Control,
            samples,
            &seeds,
            &mut st,
            |st, class| {
                *st = real_digest;
                st[if class { 0 } else { 31 }] ^= 0x5A;
            },
            |st| {
                let stored: &[u8] = black_box(&st[..]);
                let t0 = Instant::now();
                let mut acc = 0usize;
                for _ in 0..K {
                    acc += usize::from(naive_eq(black_box(stored), black_box(&presented[..])));
                }
                let dt = t0.elapsed();
                black_box(acc);
                u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX)
            },
        );
        check(name, o);
    }

    // Positive control 2: tower-http's bearer check compares the whole `Bearer <token>` value with `==`
    // (memcmp, early exit). A 4 KiB token wrong in its last (A) or first (B) byte.
    let name = "control: tower-http bearer, 4 KiB token, last (A) vs first (B)";
    if want(name) {
        let token: String = (0..4096).map(|i| char::from(BASE62[(i * 7 + 3) % 62])).collect();
        #[allow(deprecated)]
        let mut svc = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(&token).layer(inner());
        let original = format!("Bearer {token}").into_bytes();
        assert_eq!(drive(&mut svc, request(&base, &original)).status(), StatusCode::OK);
        let mut st = (svc, original.clone());
        let o = run_test(
            name,
            Kind::Control,
            samples,
            &seeds,
            &mut st,
            |(_, buf), class| {
                buf.copy_from_slice(&original);
                let i = if class { 7 } else { buf.len() - 1 };
                buf[i] = if buf[i] == b'x' { b'y' } else { b'x' };
            },
            |(svc, buf)| time_call(svc, &base, buf, StatusCode::UNAUTHORIZED),
        );
        check(name, o);
    }

    println!("total {:.1}s", started.elapsed().as_secs_f64());
    if failures.is_empty() {
        println!("constant_time: all judged tests passed");
    } else {
        println!("constant_time: FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
}
