// Checks shared by the fuzz targets (`fuzz/fuzz_targets/{extract,parse}.rs`) and by the corpus replay in
// `cargo test` (`tests/fuzz_corpus.rs`). Both `include!` this file, so it has no inner attributes and no `mod`.
//
// Every check returns `Err(description)` instead of panicking, so the replay test can name the corpus file; the
// fuzz targets turn an `Err` into a panic, which libFuzzer records as a crash.
//
// # `extract` input format
//
// The input is split on `\n` into at most `MAX_HEADERS` lines. The first byte of a line picks the header name, the
// rest is the value (arbitrary bytes; values `HeaderValue` refuses are skipped):
//
// | first byte | header |
// |---|---|
// | `a` / `A` | `authorization` |
// | `k` / `K` | `api-key` |
// | `x` / `X` | `x-api-key` |
// | `c` / `C` | `content-type` |
// | `o` / `O` | `x-other` |
// | anything else | the same five names, by `byte % 5` |
//
// In values, `{U}`, `{S}` and `{O}` expand to the valid user key, system key and opaque key of the store, so that
// seeds (and the fuzzer, which splices them) reach the accepted path too.
//
// # `parse` input format
//
// Byte 0 holds flags: bit 0 picks the key format (default `tak_user` / `tak_sys`, or the nested `sk` / `sk_live`),
// bit 1 "repair" mode. Without repair, the rest of the input is the key. In repair mode, bit 2 picks the kind, the
// next 12 and 24 bytes become the id and secret (mapped onto base62), the checksum is computed, and every further
// 2-byte pair edits the key (replace / insert / delete at a position), so that the fuzzer explores near-misses of
// valid keys without having to find a CRC32 by chance.

use std::convert::Infallible;
use std::future::Future;
use std::pin::pin;
use std::sync::OnceLock;
use std::task::{Context, Poll, Waker};

use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, Request, Response};
use tower_api_key::{
    ApiKeyAuth, ApiKeyLayer, Classified, DefaultRejection, KeyDigest, KeyFormat, KeyId, KeyKind, KeyRecord,
    MemoryStore, NewKey, Principal,
};
use tower_layer::Layer;
use tower_service::Service;

/// One request header.
pub(crate) type Header = (HeaderName, HeaderValue);

/// Most headers taken from one `extract` input.
pub(crate) const MAX_HEADERS: usize = 64;
/// Keys shorter than this are not checked for leaks (they collide with ordinary text too easily).
pub(crate) const LEAK_MIN_LEN: usize = 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ID_LEN: usize = 12;
const SECRET_LEN: usize = 24;
const CHECKSUM_LEN: usize = 6;
const TAIL_LEN: usize = 1 + ID_LEN + 1 + SECRET_LEN + CHECKSUM_LEN;

/// The opaque (foreign-format) key in the fuzz store.
pub(crate) const OPAQUE_KEY: &str = "opaque-legacy-key-for-fuzzing-0001";
const USER_ID: &str = "FuzzUser0001";
const USER_SECRET: &str = "SecretSecretSecretUser01";
const SYSTEM_ID: &str = "FuzzSystem01";
const SYSTEM_SECRET: &str = "SecretSecretSecretSystem";

// ---------------------------------------------------------------------------------------------------------------
// An independent implementation of the documented key format, used to build deterministic keys and as the oracle
// for `KeyFormat::classify`.

/// CRC32 of `<prefix>_<id>_<secret>`, as the format documents.
pub(crate) fn format_checksum(prefix: &[u8], id: &[u8], secret: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(prefix);
    h.update(b"_");
    h.update(id);
    h.update(b"_");
    h.update(secret);
    h.finalize()
}

/// A checksum as 6 big-endian base62 digits.
pub(crate) fn encode_checksum(mut n: u32) -> [u8; CHECKSUM_LEN] {
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// A key of the crate's format built from its parts, with the right checksum.
pub(crate) fn make_key(prefix: &str, id: &[u8], secret: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + TAIL_LEN);
    key.extend_from_slice(prefix.as_bytes());
    key.push(b'_');
    key.extend_from_slice(id);
    key.push(b'_');
    key.extend_from_slice(secret);
    key.extend_from_slice(&encode_checksum(format_checksum(prefix.as_bytes(), id, secret)));
    key
}

/// The valid user-level key of the fuzz store (`tak_user_FuzzUser0001_…`).
pub(crate) fn user_key() -> String {
    String::from_utf8(make_key("tak_user", USER_ID.as_bytes(), USER_SECRET.as_bytes())).unwrap_or_default()
}

/// The valid system-level key of the fuzz store (`tak_sys_FuzzSystem01_…`).
pub(crate) fn system_key() -> String {
    String::from_utf8(make_key("tak_sys", SYSTEM_ID.as_bytes(), SYSTEM_SECRET.as_bytes())).unwrap_or_default()
}

/// What the oracle says a byte string is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RefClass {
    /// No known prefix followed by `_`.
    Foreign,
    /// A known prefix, but not the exact documented shape with the right checksum.
    Malformed,
    /// `<prefix>_<id>_<secret><checksum>`; the ranges index the input.
    Ours { kind: KeyKind, id: std::ops::Range<usize>, secret: std::ops::Range<usize> },
}

/// The documented rules: "Ours" iff the input is exactly `P_[0-9A-Za-z]{12}_[0-9A-Za-z]{30}` for a prefix `P` of
/// the format and the last 6 characters are the base62 CRC32 of everything before them (without the separator
/// after the secret); "Foreign" iff it does not start with `P_` for either prefix; otherwise "Malformed".
pub(crate) fn reference_classify(user: &str, system: &str, key: &[u8]) -> RefClass {
    let alnum = |s: &[u8]| s.iter().all(u8::is_ascii_alphanumeric);
    for (prefix, kind) in [(user, KeyKind::User), (system, KeyKind::System)] {
        let p = prefix.len();
        if key.len() != p + TAIL_LEN || !key.starts_with(prefix.as_bytes()) {
            continue;
        }
        let id = p + 1..p + 1 + ID_LEN;
        let secret = id.end + 1..id.end + 1 + SECRET_LEN;
        let sum = secret.end..key.len();
        if key[p] == b'_'
            && key[id.end] == b'_'
            && alnum(&key[id.clone()])
            && alnum(&key[secret.clone()])
            && key[sum] == encode_checksum(format_checksum(prefix.as_bytes(), &key[id.clone()], &key[secret.clone()]))
        {
            return RefClass::Ours { kind, id, secret };
        }
    }
    let starts =
        |prefix: &str| key.len() > prefix.len() && key.starts_with(prefix.as_bytes()) && key[prefix.len()] == b'_';
    if starts(user) || starts(system) { RefClass::Malformed } else { RefClass::Foreign }
}

// ---------------------------------------------------------------------------------------------------------------
// `parse`

fn formats() -> &'static [(KeyFormat, &'static str, &'static str); 2] {
    static FORMATS: OnceLock<[(KeyFormat, &'static str, &'static str); 2]> = OnceLock::new();
    FORMATS.get_or_init(|| {
        let nested = KeyFormat::new()
            .user_prefix("sk")
            .and_then(|f| f.system_prefix("sk_live"))
            .unwrap_or_else(|e| panic!("nested prefixes are valid: {e}"));
        [(KeyFormat::new(), "tak_user", "tak_sys"), (nested, "sk", "sk_live")]
    })
}

/// Builds the key to classify from a `parse` input (see the module comment). Returns the format index and key.
pub(crate) fn decode_parse_input(data: &[u8]) -> (usize, Vec<u8>) {
    let Some((&flags, rest)) = data.split_first() else { return (0, Vec::new()) };
    let which = usize::from(flags & 1);
    if flags & 2 == 0 {
        return (which, rest.to_vec());
    }
    let (_, user, system) = &formats()[which];
    let prefix = if flags & 4 == 0 { *user } else { *system };
    let mut bytes = rest.iter().copied();
    let mut base62 =
        |n: usize| -> Vec<u8> { (0..n).map(|_| BASE62[usize::from(bytes.next().unwrap_or(0)) % 62]).collect() };
    let id = base62(ID_LEN);
    let secret = base62(SECRET_LEN);
    let mut key = make_key(prefix, &id, &secret);
    let edits = rest.get(ID_LEN + SECRET_LEN..).unwrap_or(&[]);
    for pair in edits.chunks(2).take(16) {
        let (op, byte) = (pair[0], pair.get(1).copied().unwrap_or(b'_'));
        let at = usize::from(op >> 2) % (key.len() + 1);
        match op & 3 {
            0 | 3 if at < key.len() => key[at] = byte,
            1 => key.insert(at, byte),
            2 if at < key.len() => {
                key.remove(at);
            }
            _ => key.push(byte),
        }
    }
    (which, key)
}

/// Checks `KeyFormat::classify` and `KeyFormat::parse` against the oracle, and the round-trip properties of keys
/// they accept.
pub(crate) fn check_parse(data: &[u8]) -> Result<(), String> {
    let (which, key) = decode_parse_input(data);
    let (format, user, system) = &formats()[which];
    check_classify(format, user, system, &key)?;
    // Whatever the repair mode built, the raw input must be handled too.
    check_classify(format, user, system, data)
}

fn check_classify(format: &KeyFormat, user: &str, system: &str, key: &[u8]) -> Result<(), String> {
    let want = reference_classify(user, system, key);
    let got = format.classify(key);
    let shown = String::from_utf8_lossy(key);
    match (&want, &got) {
        (RefClass::Foreign, Classified::Foreign) | (RefClass::Malformed, Classified::Malformed) => {}
        (RefClass::Ours { kind, id, secret }, Classified::Ours(parsed)) => {
            if parsed.kind() != *kind {
                return Err(format!("{shown:?}: kind {:?}, want {kind:?}", parsed.kind()));
            }
            if parsed.id().as_str().as_bytes() != &key[id.clone()] {
                return Err(format!("{shown:?}: id {:?} is not the id part", parsed.id()));
            }
            if KeyId::from_bytes(&key[id.clone()]).as_ref() != Some(parsed.id()) {
                return Err(format!("{shown:?}: id does not round-trip through KeyId::from_bytes"));
            }
            if parsed.secret_digest() != KeyDigest::of(&key[secret.clone()]) {
                return Err(format!("{shown:?}: secret digest is not SHA-256 of the secret part"));
            }
            let rebuilt = make_key(format.prefix(*kind), &key[id.clone()], &key[secret.clone()]);
            if rebuilt != key {
                return Err(format!("{shown:?}: does not round-trip: rebuilt {:?}", String::from_utf8_lossy(&rebuilt)));
            }
            // Any single-byte change of a valid key is caught offline (CRC32 detects every burst of ≤ 32 bits).
            for i in 0..key.len() {
                let mut bad = key.to_vec();
                bad[i] ^= if bad[i].is_ascii_alphanumeric() { 0x20 } else { 0x01 };
                if bad[i] == key[i] || !bad[i].is_ascii() {
                    bad[i] = b'#';
                }
                if matches!(format.classify(&bad), Classified::Ours(_)) {
                    return Err(format!("{shown:?}: a change at byte {i} still classifies as Ours"));
                }
            }
        }
        _ => {
            let got = match got {
                Classified::Ours(p) => format!("Ours({:?} {})", p.kind(), p.id()),
                Classified::Foreign => "Foreign".to_owned(),
                Classified::Malformed => "Malformed".to_owned(),
            };
            return Err(format!("{shown:?} ({user}/{system}): classify says {got}, the format says {want:?}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------------
// `extract`

/// The inner service: 200 with `principal:<id>` when the layer injected a principal, `anonymous` otherwise.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Echo;

impl Service<Request<()>> for Echo {
    type Response = Response<String>;
    type Error = Infallible;
    type Future = std::future::Ready<Result<Response<String>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<()>) -> Self::Future {
        let body = match req.extensions().get::<Principal>() {
            Some(p) => format!("principal:{}", p.id()),
            None => "anonymous".to_owned(),
        };
        std::future::ready(Ok(Response::new(body)))
    }
}

/// A response reduced to what the client sees: status, headers (sorted), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Vec<u8>,
}

impl Snapshot {
    pub(crate) fn of(res: &Response<String>) -> Self {
        let mut headers: Vec<(String, Vec<u8>)> =
            res.headers().iter().map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec())).collect();
        headers.sort();
        Self { status: res.status().as_u16(), headers, body: res.body().as_bytes().to_vec() }
    }

    pub(crate) fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_slice())
    }

    /// Every byte string the client can read.
    fn texts(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.body.as_slice()).chain(self.headers.iter().map(|(_, v)| v.as_slice()))
    }
}

/// The layer over a store with three keys, and the responses it is allowed to give.
#[derive(Debug)]
pub(crate) struct Harness {
    svc: ApiKeyAuth<Echo, DefaultRejection>,
    /// (key, principal id) of every valid key.
    pub(crate) keys: Vec<(String, &'static str)>,
    /// The rejections the layer gives, measured once: missing / invalid_request / invalid_token, HTTP and gRPC.
    pub(crate) rejections: Vec<Snapshot>,
    /// Static text the client may legitimately see (rejection texts, principal bodies).
    static_texts: Vec<Vec<u8>>,
}

/// The shared harness (built once per process).
pub(crate) fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| Harness::new().unwrap_or_else(|e| panic!("fuzz harness setup: {e}")))
}

impl Harness {
    fn new() -> Result<Self, String> {
        let store = MemoryStore::new();
        let id = |s: &str| KeyId::from_bytes(s.as_bytes()).ok_or_else(|| format!("bad id {s}"));
        let user = KeyRecord::new(id(USER_ID)?, KeyDigest::of(USER_SECRET.as_bytes()), KeyKind::User, "fuzz-alice")
            .with_prefix("tak_user");
        let system =
            KeyRecord::new(id(SYSTEM_ID)?, KeyDigest::of(SYSTEM_SECRET.as_bytes()), KeyKind::System, "fuzz-billing")
                .with_prefix("tak_sys");
        store.put(user).map_err(|e| e.to_string())?;
        store.put(system).map_err(|e| e.to_string())?;
        store.import(OPAQUE_KEY, NewKey::user("fuzz-carol")).map_err(|e| e.to_string())?;
        let layer = ApiKeyLayer::new(store).scheme("Api-Key").map_err(|e| e.to_string())?;
        let mut harness = Self {
            svc: layer.layer(Echo),
            keys: vec![
                (user_key(), "fuzz-alice"),
                (system_key(), "fuzz-billing"),
                (OPAQUE_KEY.to_owned(), "fuzz-carol"),
            ],
            rejections: Vec::new(),
            static_texts: Vec::new(),
        };
        let api_key = HeaderName::from_static("api-key");
        let grpc = (CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
        let cases: [(Vec<Header>, u16, &str); 3] = [
            (vec![], 401, "Bearer realm=\"api\""),
            (
                vec![(api_key.clone(), HeaderValue::from_static(""))],
                400,
                "Bearer realm=\"api\", error=\"invalid_request\"",
            ),
            (
                vec![(api_key, HeaderValue::from_static("unknown-opaque-key-0000"))],
                401,
                "Bearer realm=\"api\", error=\"invalid_token\"",
            ),
        ];
        for (headers, status, challenge) in cases {
            let http = Snapshot::of(&harness.run(&headers)?);
            if http.status != status || http.header("www-authenticate") != Some(challenge.as_bytes()) {
                return Err(format!("reference rejection: want {status} {challenge}, got {http:?}"));
            }
            let mut with_grpc = headers.clone();
            with_grpc.push(grpc.clone());
            let g = Snapshot::of(&harness.run(&with_grpc)?);
            if g.status != 200 || g.header("grpc-status") != Some(b"16") || !g.body.is_empty() {
                return Err(format!("reference gRPC rejection: want trailers-only grpc-status 16, got {g:?}"));
            }
            harness.rejections.push(http);
            harness.rejections.push(g);
        }
        for (key, owner) in &harness.keys {
            let res = harness
                .run(&[(AUTHORIZATION, HeaderValue::try_from(format!("Bearer {key}")).map_err(|e| e.to_string())?)])?;
            if res.status() != 200 || *res.body() != format!("principal:{owner}") {
                return Err(format!("valid key for {owner} not accepted: {:?}", Snapshot::of(&res)));
            }
            harness.static_texts.push(res.into_body().into_bytes());
        }
        let texts: Vec<Vec<u8>> = harness.rejections.iter().flat_map(|s| s.texts().map(<[u8]>::to_vec)).collect();
        harness.static_texts.extend(texts);
        Ok(harness)
    }

    /// Runs one request through the layer. The store answers synchronously, so the future must be ready at once.
    pub(crate) fn run(&self, headers: &[Header]) -> Result<Response<String>, String> {
        let mut req = Request::new(());
        for (name, value) in headers {
            req.headers_mut().append(name.clone(), value.clone());
        }
        let mut svc = self.svc.clone();
        let mut cx = Context::from_waker(Waker::noop());
        match svc.poll_ready(&mut cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => return Err("poll_ready pending with an always-ready inner service".to_owned()),
        }
        let mut future = pin!(svc.call(req));
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(Ok(res)) => Ok(res),
            Poll::Ready(Err(never)) => match never {},
            Poll::Pending => Err("response future pending although the store answers synchronously".to_owned()),
        }
    }

    /// Fails if the response shows a presented key of `LEAK_MIN_LEN` bytes or more, except where that key happens
    /// to be part of the static text the layer always sends.
    pub(crate) fn check_no_leak(&self, candidates: &[&[u8]], res: &Snapshot) -> Result<(), String> {
        for &key in candidates {
            if key.len() < LEAK_MIN_LEN || self.static_texts.iter().any(|t| contains(t, key)) {
                continue;
            }
            if res.texts().any(|t| contains(t, key)) {
                return Err(format!("response echoes the presented key {:?}: {res:?}", String::from_utf8_lossy(key)));
            }
        }
        Ok(())
    }
}

pub(crate) fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

fn header_name(selector: u8) -> HeaderName {
    const NAMES: [&str; 5] = ["authorization", "api-key", "x-api-key", "content-type", "x-other"];
    let i = match selector {
        b'a' | b'A' => 0,
        b'k' | b'K' => 1,
        b'x' | b'X' => 2,
        b'c' | b'C' => 3,
        b'o' | b'O' => 4,
        n => usize::from(n % 5),
    };
    HeaderName::from_static(NAMES[i])
}

fn expand(value: &[u8], keys: &[(String, &'static str)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut rest = value;
    while !rest.is_empty() {
        let hit = [(&b"{U}"[..], 0), (&b"{S}"[..], 1), (&b"{O}"[..], 2)].into_iter().find(|(p, _)| rest.starts_with(p));
        match hit {
            Some((p, i)) => {
                out.extend_from_slice(keys[i].0.as_bytes());
                rest = &rest[p.len()..];
            }
            None => {
                out.push(rest[0]);
                rest = &rest[1..];
            }
        }
    }
    out
}

/// Decodes an `extract` input into the headers of a request (see the module comment).
pub(crate) fn decode_extract_input(data: &[u8]) -> Vec<Header> {
    let keys = &harness().keys;
    data.split(|&b| b == b'\n')
        .filter_map(|line| line.split_first())
        .take(MAX_HEADERS)
        .filter_map(|(&sel, value)| Some((header_name(sel), HeaderValue::from_bytes(&expand(value, keys)).ok()?)))
        .collect()
}

/// The response content type a gRPC request should get, written from the documented rule: `application/grpc`,
/// `-web` or `-web-text`, then the end, `+codec` or `;parameters`.
fn grpc_kind(ct: &[u8]) -> Option<&'static [u8]> {
    let ends = |rest: &[u8]| rest.is_empty() || rest[0] == b'+' || rest[0] == b';';
    for (stem, answer) in [
        (b"application/grpc-web-text".as_slice(), b"application/grpc-web-text+proto".as_slice()),
        (b"application/grpc-web", b"application/grpc-web+proto"),
        (b"application/grpc", b"application/grpc"),
    ] {
        if let Some(rest) = ct.strip_prefix(stem)
            && ends(rest)
        {
            return Some(answer);
        }
    }
    None
}

/// Runs an `extract` input through the layer and checks the response:
/// * the status is 200, 400, 401 or 403 (never a 5xx);
/// * a 200 without `grpc-status` carries a principal, and only for a valid key that was presented exactly;
/// * every other response is one of the layer's static rejections (so it cannot depend on the key);
/// * with no credential header at all, the answer is the "missing credential" rejection;
/// * no presented key (≥ 8 bytes) appears in the response.
pub(crate) fn check_extract(data: &[u8]) -> Result<(), String> {
    let h = harness();
    let headers = decode_extract_input(data);
    let res = Snapshot::of(&h.run(&headers)?);
    let shown =
        || headers.iter().map(|(n, v)| format!("{n}: {:?}", String::from_utf8_lossy(v.as_bytes()))).collect::<Vec<_>>();
    if !matches!(res.status, 200 | 400 | 401 | 403) {
        return Err(format!("status {} for {:?}: {res:?}", res.status, shown()));
    }

    // What the client presented, as the layer might read it: whole values, and what follows a scheme.
    let mut candidates: Vec<&[u8]> = Vec::new();
    let mut any_credential = false;
    for (name, value) in &headers {
        let v = trim_ows(value.as_bytes());
        if name == AUTHORIZATION {
            let split = v.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(v.len());
            let (scheme, rest) = v.split_at(split);
            any_credential |=
                v.is_empty() || scheme.eq_ignore_ascii_case(b"bearer") || scheme.eq_ignore_ascii_case(b"api-key");
            candidates.push(v);
            candidates.push(trim_ows(rest));
        } else if name == "api-key" || name == "x-api-key" {
            any_credential = true;
            candidates.push(v);
        }
    }
    let content_type = headers.iter().find(|(n, _)| n == CONTENT_TYPE).map(|(_, v)| v.as_bytes());
    let grpc = content_type.and_then(grpc_kind).is_some();
    // grpc-web rejections carry a grpc-web content type (checked here, then normalised to compare with the static
    // gRPC rejections); everything the client reads is static, never an echo of its bytes.
    let mut res = res;
    if let Some(want) = content_type.and_then(grpc_kind).filter(|k| *k != b"application/grpc".as_slice())
        && res.header("grpc-status").is_some()
    {
        match res.headers.iter_mut().find(|(n, _)| n == "content-type") {
            Some((_, v)) if v.as_slice() == want => *v = b"application/grpc".to_vec(),
            _ => return Err(format!("grpc-web rejection without a grpc-web content type: {res:?}")),
        }
    }
    h.check_no_leak(&candidates, &res)?;

    if res.status == 200 && res.header("grpc-status").is_none() {
        let Some(id) = res.body.strip_prefix(b"principal:") else {
            return Err(format!("200 without a principal for {:?}: {res:?}", shown()));
        };
        let Some((key, _)) = h.keys.iter().find(|(_, owner)| owner.as_bytes() == id) else {
            return Err(format!("200 for an unknown principal for {:?}: {res:?}", shown()));
        };
        if !candidates.contains(&key.as_bytes()) {
            return Err(format!("200 as {:?} without presenting its key: {:?}", String::from_utf8_lossy(id), shown()));
        }
        return Ok(());
    }
    if !h.rejections.contains(&res) {
        return Err(format!("not one of the static rejections, for {:?}: {res:?}", shown()));
    }
    if !any_credential && (res.status != if grpc { 200 } else { 401 } || res != h.rejections[usize::from(grpc)]) {
        return Err(format!("no credential presented, but not the missing-credential answer: {:?}: {res:?}", shown()));
    }
    Ok(())
}
