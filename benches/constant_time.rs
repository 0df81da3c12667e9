//! dudect-style timing-leak test (Welch's t-test) for key verification. Run with
//! `cargo bench --bench constant_time`; see BENCHMARKS.md for how to read it.
//!
//! The tests are one table ([`ROWS`]): per row, what is timed (a [`Subject`]), how the inputs of class A and of
//! class B are built, and whether the row is judged. Every input of both classes is built before measuring starts;
//! for every measurement the class is drawn at random (so drift, frequency changes and other processes hit both
//! classes alike), then one input of that class, which is copied into one reused buffer by the same code for both
//! classes (no branch on the class, nothing computed per class while measuring), and only the operation is timed
//! with `std::time::Instant` (the TSC through the vDSO here; the crate forbids `unsafe` in every target, so no
//! `rdtsc`). Per seed, the first measurements warm up and are dropped; then Welch's t is computed on the raw timings
//! and on timings cropped at dudect's percentile thresholds, and the largest |t| over crops is that seed's figure.
//!
//! Kinds: *judged* rows (classes that differ only in how the presented key relates to the stored secret) must stay
//! under |t| = 4.5 in every seed; the *A/A* row draws both classes from the same inputs, so any |t| it shows is
//! the harness and the machine, and it must stay under 4.5 too (when it does not, the run is inconclusive);
//! *controls* (known leaks) must exceed |t| = 10, which shows the harness can see a leak of that size;
//! *informational* rows (differences the client chose or can see: key length, its own bytes) are printed, not
//! judged. The process exits non-zero when a judged row, the A/A row or a control fails.
//!
//! `CT_SAMPLES` (default 1 000 000 per seed), `CT_SEEDS` (default 3) and `CT_SEED_BASE` (default `0xD0DC7000`;
//! seeds are `base`, `base + 1`, ...) set the sizes; a name filter as the first free argument runs only matching
//! rows (`cargo bench --bench constant_time -- layer`).

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
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, HOST};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tower::{Layer, Service};
use tower_api_key::store::LookupResult;
use tower_api_key::{
    ApiKeyLayer, KeyDigest, KeyFormat, KeyKind, KeyRecord, KeyStore, Lookup, MemoryStore, NewKey, async_trait,
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
    /// Classes differ only in the presented key's relation to the stored secret: must stay under 4.5.
    Judged,
    /// Both classes from the same inputs: the harness's own false-positive level; must stay under 4.5.
    AA,
    /// A known leak: must exceed 10.
    Control,
    /// Printed, not judged.
    Info,
}

/// What one measurement times, given one input of its class.
#[derive(Clone, Copy)]
enum Subject {
    /// 64 constant-time compares (`KeyDigest::ct_eq`) of the input, a stored digest, with the presented digest.
    CtEq,
    /// 64 byte-at-a-time early-exit compares of the same (the classic leak).
    NaiveEq,
    /// The layer over a store of one record whose digest is set to the input (rewritten in place: same record,
    /// same address for both classes); the request always presents the same key.
    LayerStoredDigest,
    /// The layer over a `MemoryStore` holding the genuine key; the input is the whole `Authorization` value.
    LayerPresented,
    /// The layer over an empty `MemoryStore` (keys not of the crate's format); the input is the `Authorization`
    /// value.
    LayerOpaque,
    /// Two layers over two `MemoryStore`s holding the same id with digests that differ from the genuine one in
    /// the last (service 0) or first byte (service 1); the input's one byte picks the service. The request is
    /// the same; what differs is also where the two records and services sit in memory.
    TwoStores,
    /// tower-http's bearer check (`==` on the whole header value) for a 4 KiB token; the input is the
    /// `Authorization` value.
    TowerHttp,
}

/// One test: its name, kind, subject and the inputs of class A and class B.
struct Row {
    name: &'static str,
    kind: Kind,
    subject: Subject,
    classes: fn(&Ctx) -> [Vec<Vec<u8>>; 2],
}

/// The table of tests.
const ROWS: &[Row] = &[
    Row {
        name: "ct_eq: stored digest differs in last byte (A) vs first byte (B)",
        kind: Kind::Judged,
        subject: Subject::CtEq,
        classes: |c| [c.digest_differing_in(31), c.digest_differing_in(0)],
    },
    Row {
        name: "layer: stored digest differs in last byte (A) vs first (B)",
        kind: Kind::Judged,
        subject: Subject::LayerStoredDigest,
        classes: |c| [c.digest_differing_in(31), c.digest_differing_in(0)],
    },
    Row {
        name: "layer: true secret = guess but last char (A) vs first (B)",
        kind: Kind::Judged,
        subject: Subject::LayerStoredDigest,
        classes: |c| [c.truth_differing_at(SECRET_LEN - 1), c.truth_differing_at(0)],
    },
    Row {
        name: "A/A: true secret = guess but last char, both classes",
        kind: Kind::AA,
        subject: Subject::LayerStoredDigest,
        classes: |c| [c.truth_differing_at(SECRET_LEN - 1), c.truth_differing_at(SECRET_LEN - 1)],
    },
    Row {
        name: "layer+2 MemoryStores: digest differs last (A) vs first (B)",
        kind: Kind::Info,
        subject: Subject::TwoStores,
        classes: |_| [vec![vec![0]], vec![vec![1]]],
    },
    Row {
        name: "layer: guess wrong in last secret char (A) vs first (B)",
        kind: Kind::Info,
        subject: Subject::LayerPresented,
        classes: |c| c.equal_sized([c.guess_wrong_at(SECRET_LEN - 1), c.guess_wrong_at(0)]),
    },
    Row {
        name: "layer: opaque key 40 B (A) vs 48 B (B), same SHA block count",
        kind: Kind::Info,
        subject: Subject::LayerOpaque,
        classes: |_| [vec![opaque(40)], vec![opaque(48)]],
    },
    Row {
        name: "layer: opaque key 40 B (A) vs 120 B (B), 1 vs 2 SHA blocks",
        kind: Kind::Info,
        subject: Subject::LayerOpaque,
        classes: |_| [vec![opaque(40)], vec![opaque(120)]],
    },
    Row {
        name: "control: naive early-exit == on digests, last (A) vs first (B)",
        kind: Kind::Control,
        subject: Subject::NaiveEq,
        classes: |c| [c.digest_differing_in(31), c.digest_differing_in(0)],
    },
    Row {
        name: "control: tower-http bearer, 4 KiB token, last (A) vs first (B)",
        kind: Kind::Control,
        subject: Subject::TowerHttp,
        classes: |c| [c.token_wrong_at(TOKEN_LEN - 1), c.token_wrong_at(0)],
    },
];

const SECRET_LEN: usize = 24;
const TOKEN_LEN: usize = 4096;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// The genuine key and what the rows build their inputs from.
struct Ctx {
    record: KeyRecord,
    /// `Bearer <key>`.
    auth: Vec<u8>,
    /// Where the secret starts in `auth`.
    secret_at: usize,
    /// `Bearer <token>` for tower-http's check.
    token_auth: Vec<u8>,
}

impl Ctx {
    fn new() -> Self {
        let issued = KeyFormat::new().issue(NewKey::user("alice"), SystemTime::now());
        let key = issued.key.expose_secret().as_bytes();
        let mut auth = b"Bearer ".to_vec();
        auth.extend_from_slice(key);
        let secret_at = auth.len() - SECRET_LEN - 6; // ..._<secret><6-char checksum>
        assert_eq!(
            *KeyDigest::of(&auth[secret_at..secret_at + SECRET_LEN]).as_bytes(),
            *issued.record.digest.as_bytes()
        );
        let token: Vec<u8> = (0..TOKEN_LEN).map(|i| BASE62[(i * 7 + 3) % 62]).collect();
        let mut token_auth = b"Bearer ".to_vec();
        token_auth.extend_from_slice(&token);
        Self { record: issued.record, auth, secret_at, token_auth }
    }

    fn secret(&self) -> &[u8] {
        &self.auth[self.secret_at..self.secret_at + SECRET_LEN]
    }

    /// The genuine digest with byte `i` changed, in each of the 255 possible ways.
    fn digest_differing_in(&self, i: usize) -> Vec<Vec<u8>> {
        (1..=255u8)
            .map(|x| {
                let mut d = *self.record.digest.as_bytes();
                d[i] ^= x;
                d.to_vec()
            })
            .collect()
    }

    /// Stored digests of a true secret that equals the presented one except at `pos`, one per other base62
    /// character (61). The presented key is the same in both classes; only the stored secret differs.
    fn truth_differing_at(&self, pos: usize) -> Vec<Vec<u8>> {
        let secret = self.secret();
        BASE62
            .iter()
            .filter(|&&c| c != secret[pos])
            .map(|&c| {
                let mut truth = secret.to_vec();
                truth[pos] = c;
                KeyDigest::of(&truth).as_bytes().to_vec()
            })
            .collect()
    }

    /// `Authorization` values whose secret is wrong at `pos` (each other character of the same character class,
    /// so the two classes' secrets have the same classes everywhere), checksum recomputed.
    fn guess_wrong_at(&self, pos: usize) -> Vec<Vec<u8>> {
        let i = self.secret_at + pos;
        let original = self.auth[i];
        let class = |c: u8| (c.is_ascii_digit(), c.is_ascii_uppercase());
        BASE62
            .iter()
            .filter(|&&c| c != original && class(c) == class(original))
            .map(|&c| {
                let mut buf = self.auth.clone();
                buf[i] = c;
                fix_checksum(&mut buf[7..]);
                buf
            })
            .collect()
    }

    /// tower-http's token wrong at byte `pos`, in a few ways.
    fn token_wrong_at(&self, pos: usize) -> Vec<Vec<u8>> {
        let i = 7 + pos;
        [b'x', b'y', b'z', b'!']
            .iter()
            .filter(|&&c| c != self.token_auth[i])
            .take(3)
            .map(|&c| {
                let mut buf = self.token_auth.clone();
                buf[i] = c;
                buf
            })
            .collect()
    }

    /// Both classes cut to the same number of inputs, so drawing one costs the same.
    fn equal_sized(&self, [mut a, mut b]: [Vec<Vec<u8>>; 2]) -> [Vec<Vec<u8>>; 2] {
        let n = a.len().min(b.len());
        a.truncate(n);
        b.truncate(n);
        [a, b]
    }

    /// A record with the genuine id, prefix and kind, and `digest`.
    fn record_with(&self, digest: [u8; 32]) -> KeyRecord {
        KeyRecord::new(self.record.id, KeyDigest::from_bytes(digest), KeyKind::User, "alice").with_prefix("tak_user")
    }
}

fn opaque(len: usize) -> Vec<u8> {
    format!("Bearer {}", "k".repeat(len)).into_bytes()
}

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

/// Compares repeated per measurement in the `CtEq` and `NaiveEq` subjects (one compare is below the clock's
/// resolution).
const REPEAT: usize = 64;

fn ns(dt: std::time::Duration) -> u32 {
    u32::try_from(dt.as_nanos()).unwrap_or(u32::MAX)
}

/// Sets one input up (untimed), then times one operation on it: nanoseconds.
type Timed<'a> = Box<dyn FnMut(&[u8]) -> u32 + 'a>;

/// The timed operation for `subject`: takes one input (untimed set-up first), returns the timed nanoseconds.
fn runner(subject: Subject, ctx: &Ctx) -> Timed<'_> {
    let base = base_headers();
    let unauth = StatusCode::UNAUTHORIZED;
    match subject {
        Subject::CtEq | Subject::NaiveEq => {
            let presented = ctx.record.digest;
            let mut stored = [0u8; 32];
            Box::new(move |input| {
                stored.copy_from_slice(input);
                let t0 = Instant::now();
                let mut acc = 0usize;
                if matches!(subject, Subject::CtEq) {
                    let s = KeyDigest::from_bytes(*black_box(&stored));
                    for _ in 0..REPEAT {
                        acc += usize::from(black_box(&s).ct_eq(black_box(&presented)).unwrap_u8());
                    }
                } else {
                    for _ in 0..REPEAT {
                        acc += usize::from(naive_eq(black_box(&stored[..]), black_box(presented.as_bytes())));
                    }
                }
                let dt = t0.elapsed();
                black_box(acc);
                ns(dt)
            })
        }
        Subject::LayerStoredDigest => {
            let store =
                Arc::new(SwapStore { record: RwLock::new(Arc::new(ctx.record_with(*ctx.record.digest.as_bytes()))) });
            let mut svc = ApiKeyLayer::new(store.clone()).layer(inner());
            assert_eq!(
                drive(&mut svc, request(&base, &ctx.auth)).status(),
                StatusCode::OK,
                "the real digest is accepted"
            );
            Box::new(move |input| {
                store.set_digest(input.try_into().unwrap());
                time_call(&mut svc, &base, &ctx.auth, unauth)
            })
        }
        Subject::LayerPresented | Subject::LayerOpaque => {
            let store = MemoryStore::new();
            if matches!(subject, Subject::LayerPresented) {
                store.put(ctx.record_with(*ctx.record.digest.as_bytes())).unwrap();
            }
            let mut svc = ApiKeyLayer::new(store).layer(inner());
            Box::new(move |input| time_call(&mut svc, &base, input, unauth))
        }
        Subject::TwoStores => {
            let make = |i: usize| {
                let mut d = *ctx.record.digest.as_bytes();
                d[i] ^= 0x5A;
                let store = MemoryStore::new();
                store.put(ctx.record_with(d)).unwrap();
                ApiKeyLayer::new(store).layer(inner())
            };
            let mut svcs = [make(31), make(0)];
            Box::new(move |input| time_call(&mut svcs[usize::from(input[0])], &base, &ctx.auth, unauth))
        }
        Subject::TowerHttp => {
            let token = std::str::from_utf8(&ctx.token_auth[7..]).unwrap();
            #[allow(deprecated)] // still the peer users reach for
            let mut svc = tower_http::validate_request::ValidateRequestHeaderLayer::bearer(token).layer(inner());
            assert_eq!(drive(&mut svc, request(&base, &ctx.token_auth)).status(), StatusCode::OK);
            Box::new(move |input| time_call(&mut svc, &base, input, unauth))
        }
    }
}

/// The max |t| of each seed and the class medians (ns) of each seed.
struct Outcome {
    per_seed: Vec<f64>,
    medians: Vec<(u32, u32)>,
}

/// Runs one row: per seed, `samples + WARMUP` measurements, each of a random class and a random input of it.
fn run_row(row: &Row, ctx: &Ctx, samples: usize, seeds: &[u64]) -> Outcome {
    let classes = (row.classes)(ctx);
    assert!(!classes[0].is_empty() && !classes[1].is_empty(), "{}: a class without inputs", row.name);
    let mut run = runner(row.subject, ctx);
    let mut buf = Vec::with_capacity(classes.iter().flatten().map(Vec::len).max().unwrap_or(0));
    let mut out = Outcome { per_seed: Vec::new(), medians: Vec::new() };
    let mut data = Vec::with_capacity(samples);
    for &seed in seeds {
        let mut rng = Rng(seed);
        data.clear();
        for i in 0..samples + WARMUP {
            let class = rng.next() & 1 == 1;
            let pool = &classes[usize::from(class)];
            let input = &pool[(rng.next() % pool.len() as u64) as usize];
            buf.clear();
            buf.extend_from_slice(input);
            let t = run(&buf);
            if i >= WARMUP {
                data.push((class, t));
            }
        }
        let (t, m0, m1) = analyse(&data);
        out.per_seed.push(t);
        out.medians.push((m0, m1));
    }
    out
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn main() {
    // `cargo bench` passes `--bench`; a name filter as the first free argument runs only matching rows.
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let samples = env_usize("CT_SAMPLES", 1_000_000);
    let base = std::env::var("CT_SEED_BASE")
        .ok()
        .and_then(|v| u64::from_str_radix(v.trim_start_matches("0x"), 16).ok())
        .unwrap_or(0xD0DC_7000);
    let seeds: Vec<u64> = (0..env_usize("CT_SEEDS", 3) as u64).map(|i| base + i).collect();
    let started = Instant::now();
    let ctx = Ctx::new();
    let mut failures = Vec::new();
    println!(
        "dudect-style Welch t-test; class A vs class B drawn at random per measurement; {} seeds from {base:#x} x {samples} samples",
        seeds.len()
    );
    println!("| test | kind | max \\|t\\| per seed | max \\|t\\| | medians A/B ns per seed | verdict |");
    println!("|---|---|---|---|---|---|");
    for row in ROWS.iter().filter(|r| filter.as_deref().is_none_or(|f| r.name.contains(f))) {
        let t0 = Instant::now();
        let o = run_row(row, &ctx, samples, &seeds);
        let max_t = o.per_seed.iter().copied().fold(0.0, f64::max);
        let (kind, verdict, ok) = match row.kind {
            Kind::Judged => ("judged", if max_t < PASS_LIMIT { "pass" } else { "FAIL" }, max_t < PASS_LIMIT),
            Kind::AA => {
                ("A/A", if max_t < PASS_LIMIT { "quiet" } else { "NOISY: run inconclusive" }, max_t < PASS_LIMIT)
            }
            Kind::Control => {
                ("control", if max_t > CONTROL_MIN { "leak seen" } else { "FAIL: leak not seen" }, max_t > CONTROL_MIN)
            }
            Kind::Info => ("info", "-", true),
        };
        let per_seed: Vec<String> = o.per_seed.iter().map(|t| format!("{t:.2}")).collect();
        let medians: Vec<String> = o.medians.iter().map(|(a, b)| format!("{a}/{b}")).collect();
        println!(
            "| {} | {kind} | {} | {max_t:.2} | {} | {verdict} |   ({:.1}s)",
            row.name,
            per_seed.join(", "),
            medians.join(", "),
            t0.elapsed().as_secs_f64()
        );
        if !ok {
            failures.push(row.name);
        }
    }
    println!("total {:.1}s", started.elapsed().as_secs_f64());
    if failures.is_empty() {
        println!("constant_time: judged rows under {PASS_LIMIT}, A/A row quiet, controls seen");
    } else {
        println!("constant_time: FAILED: {}", failures.join("; "));
        std::process::exit(1);
    }
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
