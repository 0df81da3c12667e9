//! Setup shared by the per-request benches (`layer`, `interleaved`, `floor`, `scaling`, `alloc`): the fixture
//! store and keys, the peers a user would otherwise reach for, and the list of cases each bench picks from.

#![allow(dead_code, unreachable_pub)]

pub mod harness;
pub mod minimal;

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use http::header::AUTHORIZATION;
use http::{HeaderValue, Request, Response, StatusCode};
use tower::{Layer, Service};
use tower_api_key::{ApiKeyLayer, Classified, KeyDigest, KeyFormat, KeyStore, Lookup, MemoryStore, NewKey, Rejection};

pub use harness::*;
pub use minimal::{HandFut, MinimalAuth, unauthorized};

/// A 40-byte opaque key, as another system would have issued it.
pub const OPAQUE_KEY: &str = "legacy-3f9a8c1d7e2b4a6f9c0d1e2f3a4b5c6d7";

// ---------------------------------------------------------------------------------------------------------------
// Peers.

/// What a user would keep per key in a hand-written middleware.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub scopes: Vec<String>,
}

pub type Users = Arc<HashMap<String, Arc<User>>>;

/// A hand-written middleware the way an axum `from_fn` user writes it: parse `Bearer`, look the token up in a
/// `HashMap<String, Arc<User>>` (std SipHash, `==` on the token: not constant time), insert the user as an
/// extension, and return a boxed future (what `from_fn` does) or the inner future as it is.
#[derive(Clone)]
pub struct HashMapAuth<S> {
    inner: S,
    keys: Users,
    boxed: bool,
}

impl<S> Service<Req> for HashMapAuth<S>
where
    S: Service<Req, Response = Res, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Res;
    type Error = Infallible;
    type Future = HandFut<S::Future, Body>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Req) -> Self::Future {
        let user = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .and_then(|token| self.keys.get(token))
            .cloned();
        let Some(user) = user else { return HandFut::Ready { res: Some(unauthorized()) } };
        req.extensions_mut().insert(user);
        if self.boxed {
            let clone = self.inner.clone();
            let mut inner = std::mem::replace(&mut self.inner, clone);
            HandFut::Boxed { fut: Box::pin(async move { inner.call(req).await }) }
        } else {
            HandFut::Inner { fut: self.inner.call(req) }
        }
    }
}

pub fn hashmap_auth<S>(inner: S, keys: &Users, boxed: bool) -> HashMapAuth<S> {
    HashMapAuth { inner, keys: keys.clone(), boxed }
}

/// Real axum `from_fn` middleware over the same map (needs axum's body type on both sides).
pub async fn axum_auth(
    axum::extract::State(keys): axum::extract::State<Users>,
    mut req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Result<axum::response::Response, StatusCode> {
    let token = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(StatusCode::UNAUTHORIZED)?;
    let user = keys.get(token).cloned().ok_or(StatusCode::UNAUTHORIZED)?;
    req.extensions_mut().insert(user);
    Ok(next.run(req).await)
}

#[allow(deprecated)] // `ValidateRequestHeaderLayer::bearer` is deprecated since tower-http 0.6.7; still the peer.
pub fn tower_http_bearer(
    key: &str,
) -> tower_http::validate_request::ValidateRequestHeaderLayer<tower_http::auth::require_authorization::Bearer<Body>> {
    tower_http::validate_request::ValidateRequestHeaderLayer::bearer(key)
}

// ---------------------------------------------------------------------------------------------------------------
// Fixtures.

pub fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
}

/// The request template plus the same request already carrying one extension, as requests reach a route layer
/// in axum (its router inserts `OriginalUri` and `MatchedPath` before the route's layers run): inserting the
/// principal then allocates only its own box instead of also creating the extensions map.
pub fn build_with_extension(t: &Template, auth: Option<&HeaderValue>) -> Req {
    let mut req = t.build(auth);
    req.extensions_mut().insert(axum::extract::OriginalUri(t.uri.clone()));
    req
}

pub struct Fixture {
    pub store: MemoryStore,
    pub template: Template,
    /// The valid 52-byte crate-format key, bare.
    pub key: String,
    pub valid: HeaderValue,
    pub opaque: HeaderValue,
    pub malformed: HeaderValue,
    pub unknown: HeaderValue,
    pub revoked: HeaderValue,
    pub users: Users,
}

impl Fixture {
    /// A store of `n` crate-format keys (one of them `valid`), one opaque key and one revoked key.
    pub fn new(n: usize) -> Self {
        let store = MemoryStore::new();
        let valid = store.add(NewKey::user("alice").scopes(["read", "write"]).unwrap()).unwrap();
        for i in 1..n {
            store.add(NewKey::user(format!("user{i}"))).unwrap();
        }
        store.import(OPAQUE_KEY, NewKey::system("legacy-billing")).unwrap();
        let revoked = store.add(NewKey::user("mallory")).unwrap();
        block_on(store.revoke(&revoked.record.id, SystemTime::now())).unwrap();

        let key = valid.key.expose_secret().to_owned();
        assert_eq!(key.len(), 52, "crate-format key is 52 bytes");
        assert_eq!(OPAQUE_KEY.len(), 40, "opaque key is 40 bytes");
        let unknown = KeyFormat::new().issue(NewKey::user("nobody"), SystemTime::now()).key;

        let mut users = HashMap::new();
        users.insert(key.clone(), Arc::new(User { id: "alice".into(), scopes: vec!["read".into(), "write".into()] }));
        for i in 1..n.min(1000) {
            users.insert(format!("token-{i:036}"), Arc::new(User { id: format!("user{i}"), scopes: vec![] }));
        }

        Self {
            template: Template::new(),
            valid: bearer(&key),
            opaque: bearer(OPAQUE_KEY),
            malformed: bearer(&malformed(&key)),
            unknown: bearer(unknown.expose_secret()),
            revoked: bearer(revoked.key.expose_secret()),
            users: Arc::new(users),
            key,
            store,
        }
    }

    pub fn layer(&self) -> ApiKeyLayer {
        ApiKeyLayer::new(self.store.clone())
    }
}

/// The same key with its last checksum character changed: same shape, fails the CRC32.
pub fn malformed(key: &str) -> String {
    let mut bad = key.as_bytes().to_vec();
    let last = bad.len() - 1;
    bad[last] = if bad[last] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bad).unwrap()
}

/// The layer with a rejection response of status only (what tower-http's bearer check returns).
pub fn bare(fx: &Fixture) -> ApiKeyLayer<fn(&Rejection) -> Res> {
    fn status_only(r: &Rejection) -> Res {
        let mut res = Response::new(Body::default());
        *res.status_mut() = r.code().status();
        res
    }
    fx.layer().on_rejection(status_only as fn(&Rejection) -> Res)
}

// ---------------------------------------------------------------------------------------------------------------
// The cases, by group.

/// The floor: each part the valid path cannot avoid, measured alone. The five in [`REQUIRED_PARTS`] are the
/// parts of the issue's target; the others are for comparison.
pub fn floor_cases(fx: &Fixture) -> Vec<Case<'_>> {
    let key = fx.key.as_bytes();
    let id = match KeyFormat::new().classify(key) {
        Classified::Ours(p) => *p.id(),
        _ => unreachable!("the fixture's key is of the crate's format"),
    };
    vec![
        call_case("floor", "sha256_24B_secret", {
            // What the layer hashes for a crate-format key: its 24-character secret.
            let secret = key[22..46].to_vec();
            move || KeyDigest::of(black_box(&secret))
        }),
        call_case("floor", "sha256_52B_key", {
            let key52 = key.to_vec();
            move || KeyDigest::of(black_box(&key52))
        }),
        call_case("floor", "sha2_digest_24B", {
            // sha2's generic one-shot API on the same 24 bytes; `KeyDigest::of` feeds single-block inputs straight
            // to sha2's compression function instead.
            use sha2::Digest as _;
            let secret = key[22..46].to_vec();
            move || sha2::Sha256::digest(black_box(&secret))
        }),
        call_case("floor", "ct_eq", {
            let a = KeyDigest::of(b"a");
            let mut other = *a.as_bytes();
            other[31] ^= 1;
            let b = KeyDigest::from_bytes(other);
            move || black_box(&a).ct_eq(black_box(&b)).unwrap_u8()
        }),
        call_case("floor", "classify_crc32", {
            let format = KeyFormat::new();
            let key52 = key.to_vec();
            move || matches!(format.classify(black_box(&key52)), Classified::Ours(_))
        }),
        call_case("floor", "memory_store_lookup_now", move || {
            fx.store.lookup_now(Lookup::Id(black_box(&id))).unwrap().unwrap().is_some()
        }),
        call_case("floor", "extension_insert", {
            let p = Arc::new(User { id: "alice".into(), scopes: vec![] });
            move || {
                let mut ext = http::Extensions::new();
                ext.insert(p.clone());
                ext
            }
        }),
        // Not required parts: what a clock read and one more header lookup cost here, for reading the
        // before/after comparison (BENCHMARKS.md).
        call_case("floor", "clock_system_time_now", SystemTime::now),
        call_case("floor", "clock_instant_now", std::time::Instant::now),
        call_case("floor", "header_get_content_type", {
            let req = fx.template.build(Some(&fx.valid));
            move || black_box(&req).headers().get(http::header::CONTENT_TYPE).is_some()
        }),
    ]
}

/// The parts of the valid path that the issue's target adds up (SHA-256 of the secret, constant-time compare,
/// format check, store lookup, extensions insert).
pub const REQUIRED_PARTS: [&str; 5] = [
    "floor/sha256_24B_secret",
    "floor/ct_eq",
    "floor/classify_crc32",
    "floor/memory_store_lookup_now",
    "floor/extension_insert",
];

/// The valid path and its peers.
pub fn valid_cases(fx: &Fixture) -> Vec<Case<'_>> {
    let t = &fx.template;
    let ok = StatusCode::OK;
    let valid = || t.build(Some(&fx.valid));
    vec![
        request_case("valid", "baseline_no_layer", inner(), valid, ok),
        request_case("valid", "api_key_layer", fx.layer().layer(inner()), valid, ok),
        request_case("valid", "api_key_layer_opaque40", fx.layer().layer(inner()), || t.build(Some(&fx.opaque)), ok),
        request_case("valid", "baseline_req_with_extension", inner(), || build_with_extension(t, Some(&fx.valid)), ok),
        request_case(
            "valid",
            "api_key_layer_req_with_extension",
            fx.layer().layer(inner()),
            || build_with_extension(t, Some(&fx.valid)),
            ok,
        ),
        request_case("valid", "tower_http_bearer", tower_http_bearer(&fx.key).layer(inner()), valid, ok),
        request_case("valid", "hashmap_from_fn_style_boxed", hashmap_auth(inner(), &fx.users, true), valid, ok),
        request_case("valid", "hashmap_unboxed", hashmap_auth(inner(), &fx.users, false), valid, ok),
        request_case("valid", "minimal_pipeline", MinimalAuth::new(inner(), fx.store.clone()), valid, ok),
    ]
}

/// Rejections, with the full response and with a status-only one, and the peers' rejections.
pub fn reject_cases(fx: &Fixture) -> Vec<Case<'_>> {
    let t = &fx.template;
    let unauth = StatusCode::UNAUTHORIZED;
    let missing = || t.build(None);
    let malformed = || t.build(Some(&fx.malformed));
    let unknown = || t.build(Some(&fx.unknown));
    vec![
        request_case("reject", "missing", fx.layer().layer(inner()), missing, unauth),
        request_case("reject", "malformed_checksum", fx.layer().layer(inner()), malformed, unauth),
        request_case("reject", "unknown", fx.layer().layer(inner()), unknown, unauth),
        request_case("reject", "revoked", fx.layer().layer(inner()), || t.build(Some(&fx.revoked)), unauth),
        // The same decisions with a bare response (status only, no headers, no body): the layer's decision cost
        // without building the RFC 6750 / RFC 9457 response.
        request_case("reject", "missing_bare_response", bare(fx).layer(inner()), missing, unauth),
        request_case("reject", "malformed_bare_response", bare(fx).layer(inner()), malformed, unauth),
        request_case("reject", "unknown_bare_response", bare(fx).layer(inner()), unknown, unauth),
        request_case("reject", "tower_http_bearer_wrong", tower_http_bearer(&fx.key).layer(inner()), unknown, unauth),
        request_case("reject", "hashmap_unboxed_wrong", hashmap_auth(inner(), &fx.users, false), unknown, unauth),
    ]
}

/// axum's `from_fn` needs axum's body type on both sides: its own group, with its own baseline.
pub fn axum_cases(fx: &Fixture) -> Vec<Case<'_>> {
    let t = &fx.template;
    let ok = StatusCode::OK;
    let axum_req = move || {
        let mut req = Request::new(axum::body::Body::empty());
        *req.uri_mut() = t.uri.clone();
        let mut headers = t.base.clone();
        headers.insert(AUTHORIZATION, fx.valid.clone());
        *req.headers_mut() = headers;
        req
    };
    let axum_inner = || {
        tower::service_fn(|req: Request<axum::body::Body>| async move {
            drop(req);
            Ok::<_, Infallible>(Response::new(axum::body::Body::empty()))
        })
    };
    vec![
        request_case("axum_body", "baseline_no_layer", axum_inner(), axum_req, ok),
        request_case("axum_body", "api_key_layer", fx.layer().layer(axum_inner()), axum_req, ok),
        request_case(
            "axum_body",
            "axum_from_fn_hashmap",
            axum::middleware::from_fn_with_state(fx.users.clone(), axum_auth).layer(axum_inner()),
            axum_req,
            ok,
        ),
    ]
}

/// The baseline each per-request case is compared with.
pub fn baseline_of(id: &str) -> Option<String> {
    let base = if id.starts_with("floor/") {
        return None;
    } else if id.starts_with("axum_body/") {
        "axum_body/baseline_no_layer"
    } else if id.ends_with("_req_with_extension") {
        "valid/baseline_req_with_extension"
    } else {
        "valid/baseline_no_layer"
    };
    Some(base.to_owned())
}
