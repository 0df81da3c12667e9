//! How every per-request bench drives a service and times it. Uses only `http`, `tower` and criterion, nothing of
//! this crate, so `benches/before_after.rs` can include it and be built against any version of the crate.

#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::pin::pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use criterion::Criterion;
use http::header::{ACCEPT, AUTHORIZATION, HOST, USER_AGENT};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::Full;
use tower::Service;

pub type Body = Full<Bytes>;
pub type Req = Request<Body>;
pub type Res = Response<Body>;

/// `poll_ready`, `call`, one poll: the way every variant is measured. Panics if the future is not ready at once.
#[inline]
pub fn drive<S, B>(svc: &mut S, req: Request<B>) -> S::Response
where
    S: Service<Request<B>>,
{
    let mut cx = Context::from_waker(Waker::noop());
    match svc.poll_ready(&mut cx) {
        Poll::Ready(Ok(())) => {}
        _ => panic!("service not ready"),
    }
    let fut = pin!(svc.call(req));
    match fut.poll(&mut cx) {
        Poll::Ready(Ok(res)) => res,
        Poll::Ready(Err(_)) => panic!("service failed"),
        Poll::Pending => panic!("future not ready on first poll"),
    }
}

/// The request every variant sees: three ordinary headers plus, optionally, `Authorization`.
#[derive(Clone)]
pub struct Template {
    pub uri: Uri,
    pub base: HeaderMap,
}

impl Template {
    pub fn new() -> Self {
        let mut base = HeaderMap::new();
        base.insert(HOST, HeaderValue::from_static("api.example.com"));
        base.insert(USER_AGENT, HeaderValue::from_static("bench/1.0"));
        base.insert(ACCEPT, HeaderValue::from_static("application/json"));
        Self { uri: Uri::from_static("/whoami"), base }
    }

    pub fn build(&self, auth: Option<&HeaderValue>) -> Req {
        let mut req = Request::new(Body::default());
        *req.uri_mut() = self.uri.clone();
        let mut headers = self.base.clone();
        if let Some(v) = auth {
            headers.insert(AUTHORIZATION, v.clone());
        }
        *req.headers_mut() = headers;
        req
    }
}

pub fn bearer(key: &str) -> HeaderValue {
    let mut v = HeaderValue::try_from(format!("Bearer {key}")).unwrap();
    v.set_sensitive(true);
    v
}

/// The trivial inner service, identical for every variant.
pub fn inner() -> impl Service<Req, Response = Res, Error = Infallible, Future = impl Future + Send> + Clone + Send {
    tower::service_fn(|req: Req| async move {
        drop(req);
        Ok::<_, Infallible>(Response::new(Body::default()))
    })
}

// ---------------------------------------------------------------------------------------------------------------
// Cases: one timed routine per variant, run by criterion (`iter_custom`) or by the interleaved run.

/// Runs `iters` iterations and returns the time spent in the measured part only.
pub type Burst<'a> = Box<dyn FnMut(u64) -> Duration + 'a>;

pub struct Case<'a> {
    pub group: &'static str,
    pub name: String,
    pub burst: Burst<'a>,
}

impl Case<'_> {
    pub fn id(&self) -> String {
        format!("{}/{}", self.group, self.name)
    }
}

/// Requests are built untimed in chunks of this many (small, so a chunk of requests stays in L1/L2 as a request
/// just parsed by hyper would); each response is dropped inside the timed loop, as a server drops it after
/// writing it.
pub const CHUNK: usize = 32;

/// A request-shaped case: `make` builds each request (untimed), the service is driven on it and the response
/// dropped (timed). Checks the status once before anything is timed.
pub fn request_case<'a, S, B, RB>(
    group: &'static str,
    name: &str,
    mut svc: S,
    mut make: impl FnMut() -> Request<B> + 'a,
    want: StatusCode,
) -> Case<'a>
where
    S: Service<Request<B>, Response = Response<RB>> + 'a,
    B: 'a,
    RB: 'a,
{
    assert_eq!(drive(&mut svc, make()).status(), want, "{group}/{name}");
    let mut reqs = Vec::with_capacity(CHUNK);
    let burst = move |iters: u64| {
        let mut total = Duration::ZERO;
        let mut left = iters;
        while left > 0 {
            let n = usize::try_from(left).unwrap_or(CHUNK).min(CHUNK);
            reqs.extend((0..n).map(|_| make()));
            let t0 = Instant::now();
            for req in reqs.drain(..) {
                drop(black_box(drive(&mut svc, req)));
            }
            total += t0.elapsed();
            left -= n as u64;
        }
        total
    };
    Case { group, name: name.to_owned(), burst: Box::new(burst) }
}

/// A plain function-call case (the floor).
pub fn call_case<'a, T>(group: &'static str, name: &str, mut f: impl FnMut() -> T + 'a) -> Case<'a> {
    let burst = move |iters: u64| {
        let t0 = Instant::now();
        for _ in 0..iters {
            black_box(f());
        }
        t0.elapsed()
    };
    Case { group, name: name.to_owned(), burst: Box::new(burst) }
}

/// Keeps the cases whose `group/name` contains one of the comma-separated substrings of `BENCH_FILTER` (all when
/// unset), and always the ones in `keep` (the baselines a summary needs).
pub fn filter_cases(cases: &mut Vec<Case<'_>>, keep: &[&str]) {
    if let Ok(filter) = std::env::var("BENCH_FILTER") {
        cases.retain(|c| {
            let id = c.id();
            keep.contains(&id.as_str()) || filter.split(',').any(|f| id.contains(f.trim()))
        });
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Criterion, sized by environment variables.

pub fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Criterion with `BENCH_WARMUP_MS` (default 1000), `BENCH_MEASURE_MS` (default 2000) and `BENCH_SAMPLES`
/// (default 30, at least 10), writing under [`criterion_dir`]; command-line filters still apply.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(env_u64("BENCH_WARMUP_MS", 1000)))
        .measurement_time(Duration::from_millis(env_u64("BENCH_MEASURE_MS", 2000)))
        .sample_size(usize::try_from(env_u64("BENCH_SAMPLES", 30)).unwrap_or(30).max(10))
        .output_directory(&criterion_dir())
        .configure_from_args()
}

/// Each case under criterion, one benchmark group per run of cases with the same group.
pub fn run_criterion(c: &mut Criterion, cases: &mut [Case<'_>]) {
    let mut i = 0;
    while i < cases.len() {
        let group = cases[i].group;
        let mut g = c.benchmark_group(group);
        while i < cases.len() && cases[i].group == group {
            let case = &mut cases[i];
            g.bench_function(case.name.as_str(), |b| b.iter_custom(|iters| (case.burst)(iters)));
            i += 1;
        }
        g.finish();
    }
}

pub fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir).join("criterion");
    }
    // target/<profile>/deps/<bench>-<hash>
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors().nth(3).map_or_else(|| PathBuf::from("target"), Path::to_path_buf).join("criterion")
}

/// Criterion's point estimate in ns for `group/name` (slope when it has one, else the mean), if this run wrote it.
pub fn estimate(id: &str, since: SystemTime) -> Option<f64> {
    let path = criterion_dir().join(id).join("new").join("estimates.json");
    let fresh = std::fs::metadata(&path).and_then(|m| m.modified()).is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    v.get("slope")
        .and_then(|s| s.get("point_estimate"))
        .and_then(serde_json::Value::as_f64)
        .or_else(|| v.get("mean")?.get("point_estimate")?.as_f64())
}

/// After a criterion run: every case's estimate and its overhead over `baseline(id)` (both from this run).
pub fn print_overheads(cases: &[Case<'_>], since: SystemTime, baseline: impl Fn(&str) -> Option<String>) {
    println!();
    println!("criterion estimates from this run (ns per request; overhead = case - its baseline, same run):");
    for case in cases {
        let id = case.id();
        let Some(ns) = estimate(&id, since) else { continue };
        match baseline(&id).filter(|b| *b != id).and_then(|b| Some((estimate(&b, since)?, b))) {
            Some((base, b)) => println!("  {id:<45} {ns:>8.1}   overhead {:>7.1} over {b}", ns - base),
            None => println!("  {id:<45} {ns:>8.1}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// The interleaved run.

/// `rounds` rounds; each runs every case for `per_burst` iterations, in a fresh random order, so noise from
/// other processes hits every case alike. Returns (median, 10th percentile) of ns per iteration, per case id.
pub fn interleaved(cases: &mut [Case<'_>], rounds: usize, per_burst: u64) -> HashMap<String, (f64, f64)> {
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); cases.len()];
    let mut order: Vec<usize> = (0..cases.len()).collect();
    for case in cases.iter_mut() {
        (case.burst)(per_burst); // warm-up
    }
    for r in 0..rounds {
        shuffle(&mut order, 0xA11CE + r as u64);
        for &i in &order {
            let d = (cases[i].burst)(per_burst);
            samples[i].push(d.as_nanos() as f64 / per_burst as f64);
        }
    }
    let mut out = HashMap::new();
    for (case, mut s) in cases.iter().zip(samples) {
        s.sort_by(f64::total_cmp);
        out.insert(case.id(), (s[s.len() / 2], s[s.len() / 10]));
    }
    out
}

/// Xorshift shuffle (deterministic per seed).
pub fn shuffle<T>(v: &mut [T], mut seed: u64) {
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let j = (seed % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}
