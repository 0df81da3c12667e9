//! gRPC over a real tonic server and a real tonic client on loopback, with the service of `examples/grpc.rs`:
//! keys in metadata, the principal in the handler, grpc-status 16 / 7 / 8 / 14 for rejections (trailers-only,
//! percent-encoded `grpc-message`, no key material), and grpc-web over HTTP/1.1 through `tonic_web::GrpcWebLayer`.

// Needs the crate's `tonic` feature (rejection bodies for tonic) and `rate-limit` (grpc-status 8); both are default.
#![cfg(all(feature = "tonic", feature = "rate-limit"))]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message as _;
use tokio::net::TcpListener;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_web::GrpcWebLayer;
use tower_api_key::store::LookupResult;
use tower_api_key::{
    ApiKeyLayer, KeyStore, Lookup, MemoryStore, NewKey, RateLimit, RequireScopesLayer, StoreError, async_trait,
};

#[path = "../examples/grpc.rs"]
#[allow(dead_code)] // the example's `main`
mod example;

use example::WhoAmIService;
use example::whoami::who_am_i_client::WhoAmIClient;
use example::whoami::who_am_i_server::WhoAmIServer;
use example::whoami::{GetReply, GetRequest};

const GET: &str = "/whoami.WhoAmI/Get";

/// A store with one user key of the crate's format (`alice`), one opaque system key (`billing`, scope
/// `keys:admin`) and one revoked key.
struct Keys {
    store: MemoryStore,
    user: String,
    user_key_id: String,
    system: String,
    revoked: String,
}

const SYSTEM_KEY: &str = "legacy-system-key-0123456789";

async fn keys() -> Keys {
    let store = MemoryStore::new();
    let user = store.add(NewKey::user("alice")).unwrap();
    let system = store.import(SYSTEM_KEY, NewKey::system("billing").scopes(["keys:admin"]).unwrap()).unwrap();
    assert_ne!(user.record.id, system.id);
    let revoked = store.add(NewKey::user("mallory")).unwrap();
    store.revoke(&revoked.record.id, std::time::SystemTime::now()).await.unwrap();
    Keys {
        user_key_id: user.record.id.to_string(),
        user: user.key.expose_secret().to_owned(),
        system: SYSTEM_KEY.to_owned(),
        revoked: revoked.key.expose_secret().to_owned(),
        store,
    }
}

/// Serves the example's `WhoAmI` service on 127.0.0.1:0 with the example's stack (HTTP/1.1 on, grpc-web outside,
/// the key layer inside it) and, optionally, a scope guard inside the key layer.
async fn spawn(api: ApiKeyLayer, scopes: Option<RequireScopesLayer>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .accept_http1(true)
        .layer(GrpcWebLayer::new())
        .layer(api)
        .layer(tower::util::option_layer(scopes))
        .add_service(WhoAmIServer::new(WhoAmIService));
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));
    addr
}

async fn client(addr: SocketAddr) -> WhoAmIClient<Channel> {
    WhoAmIClient::connect(format!("http://{addr}")).await.unwrap()
}

/// One `Get` call with `metadata` on the request.
async fn get(client: &mut WhoAmIClient<Channel>, metadata: &[(&'static str, &str)]) -> Result<GetReply, Status> {
    let mut request = tonic::Request::new(GetRequest {});
    for (name, value) in metadata {
        request.metadata_mut().insert(*name, value.parse().unwrap());
    }
    client.get(request).await.map(tonic::Response::into_inner)
}

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// `Status` text and metadata, for "no key in here" checks.
fn status_text(status: &Status) -> String {
    format!("{} {:?} {:?}", status.message(), status.metadata(), status.details())
}

#[tokio::test]
async fn key_in_bearer_api_key_or_x_api_key_metadata_reaches_the_handler() {
    let k = keys().await;
    let addr = spawn(ApiKeyLayer::new(k.store.clone()), None).await;
    let mut client = client(addr).await;

    let user_bearer = bearer(&k.user);
    let rows: [(&str, &'static str, &str, &str, &str); 5] = [
        ("user, bearer", "authorization", &user_bearer, "user", "alice"),
        ("user, api-key", "api-key", &k.user, "user", "alice"),
        ("user, x-api-key", "x-api-key", &k.user, "user", "alice"),
        ("system, api-key", "api-key", &k.system, "system", "billing"),
        ("system, x-api-key", "x-api-key", &k.system, "system", "billing"),
    ];
    for (case, name, value, kind, id) in rows {
        let reply = get(&mut client, &[(name, value)]).await.unwrap_or_else(|s| panic!("{case}: {s:?}"));
        assert_eq!(reply.kind, kind, "{case}");
        assert_eq!(reply.id, id, "{case}");
        assert!(!reply.key_id.is_empty(), "{case}");
        if kind == "user" {
            assert_eq!(reply.key_id, k.user_key_id, "{case}");
        }
    }
    let reply = get(&mut client, &[("authorization", &bearer(&k.system))]).await.unwrap();
    assert_eq!((reply.kind.as_str(), reply.id.as_str()), ("system", "billing"));
}

#[tokio::test]
async fn missing_key_is_unauthenticated() {
    let k = keys().await;
    let addr = spawn(ApiKeyLayer::new(k.store.clone()), None).await;
    let status = get(&mut client(addr).await, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // tonic percent-decodes grpc-message.
    assert_eq!(status.message(), "an API key is required");
}

#[tokio::test]
async fn bad_keys_are_unauthenticated_and_not_echoed() {
    let k = keys().await;
    let addr = spawn(ApiKeyLayer::new(k.store.clone()), None).await;
    let mut client = client(addr).await;

    // Same id and checksum-valid shape are hard to forge; a flipped character breaks the checksum.
    let mut tampered = k.user.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let rows = [
        ("unknown opaque key", "api-key", "no-such-key-5ec7e7".to_owned()),
        ("unknown key, bearer", "authorization", bearer("no-such-key-5ec7e7")),
        ("tampered key", "authorization", bearer(&tampered)),
        ("revoked key", "authorization", bearer(&k.revoked)),
        ("empty bearer", "authorization", "Bearer ".to_owned()),
    ];
    for (case, name, value) in rows {
        let status = get(&mut client, &[(name, &value)]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{case}: {status:?}");
        let text = status_text(&status);
        for secret in ["no-such-key-5ec7e7", tampered.as_str(), k.revoked.as_str()] {
            assert!(!text.contains(secret), "{case}: key echoed in {text}");
        }
    }
}

/// A store that is down (errors) or hangs.
#[derive(Debug)]
enum BrokenStore {
    Failing,
    Hanging,
}

#[async_trait]
impl KeyStore for BrokenStore {
    async fn lookup(&self, _by: Lookup<'_>) -> LookupResult {
        match self {
            Self::Failing => Err(StoreError::backend(std::io::Error::other("connection refused by 10.0.0.7"))),
            Self::Hanging => {
                tokio::time::sleep(Duration::from_secs(60)).await;
                Ok(None)
            }
        }
    }
}

#[tokio::test]
async fn store_failure_is_unavailable_and_fails_closed() {
    for (case, store) in [("failing", BrokenStore::Failing), ("hanging", BrokenStore::Hanging)] {
        let layer = ApiKeyLayer::new(store).store_timeout(Duration::from_millis(200));
        let addr = spawn(layer, None).await;
        let started = Instant::now();
        let status = get(&mut client(addr).await, &[("api-key", "some-opaque-key-42")]).await.unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{case}: {status:?}");
        assert!(started.elapsed() < Duration::from_secs(10), "{case}: took {:?}", started.elapsed());
        let text = status_text(&status);
        assert!(!text.contains("some-opaque-key-42"), "{case}: {text}");
        assert!(!text.contains("10.0.0.7"), "{case}: internal error text leaked: {text}");
    }
}

#[tokio::test]
async fn missing_scope_is_permission_denied() {
    let k = keys().await;
    let guard = RequireScopesLayer::all(["keys:admin"]).unwrap();
    let addr = spawn(ApiKeyLayer::new(k.store.clone()), Some(guard)).await;
    let mut client = client(addr).await;

    let status = get(&mut client, &[("authorization", &bearer(&k.user))]).await.unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    assert!(!status_text(&status).contains(&k.user));

    // The key with the scope gets through the same guard; no key at all is still 16, not 7.
    let reply = get(&mut client, &[("authorization", &bearer(&k.system))]).await.unwrap();
    assert_eq!(reply.id, "billing");
    let status = get(&mut client, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
}

#[tokio::test]
async fn rate_limit_is_resource_exhausted() {
    let store = MemoryStore::new();
    let limited =
        store.add(NewKey::user("alice").rate_limit(RateLimit::new(1, Duration::from_secs(3600)).unwrap())).unwrap();
    let other = store.add(NewKey::user("bob")).unwrap();
    let addr = spawn(ApiKeyLayer::new(store).rate_limit(None), None).await;
    let mut client = client(addr).await;
    let limited = bearer(limited.key.expose_secret());

    get(&mut client, &[("authorization", &limited)]).await.unwrap();
    let status = get(&mut client, &[("authorization", &limited)]).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let retry_after: u64 =
        status.metadata().get("retry-after").expect("retry-after").to_str().unwrap().parse().unwrap();
    assert!((1..=3600).contains(&retry_after), "retry-after {retry_after}");
    assert!(!status_text(&status).contains(&limited["Bearer ".len()..]));

    // Limits are per key: a key without a limit is unaffected.
    let reply = get(&mut client, &[("authorization", &bearer(other.key.expose_secret()))]).await.unwrap();
    assert_eq!(reply.id, "bob");
}

/// A raw gRPC call over HTTP/2 (prior knowledge), to see the headers and body exactly as sent.
async fn raw_grpc(
    addr: SocketAddr,
    metadata: &[(&str, &str)],
) -> (http::response::Parts, http_body_util::Collected<Bytes>) {
    let client = Client::builder(TokioExecutor::new()).http2_only(true).build_http::<Full<Bytes>>();
    let mut request = http::Request::post(format!("http://{addr}{GET}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers");
    for (name, value) in metadata {
        request = request.header(*name, *value);
    }
    // One uncompressed, empty `GetRequest`.
    let request = request.body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))).unwrap();
    let (parts, body) = client.request(request).await.unwrap().into_parts();
    (parts, body.collect().await.unwrap())
}

fn is_percent_encoded(value: &[u8]) -> bool {
    let mut i = 0;
    while i < value.len() {
        match value[i] {
            b'%' => {
                if !(i + 2 < value.len() && value[i + 1].is_ascii_hexdigit() && value[i + 2].is_ascii_hexdigit()) {
                    return false;
                }
                i += 3;
            }
            b if b.is_ascii_alphanumeric() || b"-._~".contains(&b) => i += 1,
            _ => return false,
        }
    }
    true
}

#[test]
fn percent_encoding_check_rejects_raw_text() {
    assert!(is_percent_encoded(b"an%20API%20key%20is%20required"));
    assert!(!is_percent_encoded(b"an API key is required"));
    assert!(!is_percent_encoded(b"bad%2"));
    assert!(!is_percent_encoded(b"100%"));
}

#[tokio::test]
async fn rejections_are_trailers_only_with_a_percent_encoded_message_and_no_key() {
    let k = keys().await;
    let store = k.store.clone();
    let limited =
        store.add(NewKey::user("carol").rate_limit(RateLimit::new(1, Duration::from_secs(3600)).unwrap())).unwrap();
    let limited = limited.key.expose_secret().to_owned();
    let plain = spawn(ApiKeyLayer::new(store.clone()).rate_limit(None), None).await;
    let scoped = spawn(ApiKeyLayer::new(store), Some(RequireScopesLayer::all(["keys:admin"]).unwrap())).await;
    let down = spawn(ApiKeyLayer::new(BrokenStore::Failing), None).await;
    raw_grpc(plain, &[("api-key", &limited)]).await; // use up the one request

    let odd_key = "odd key/with+chars%41==";
    let bearer_user = bearer(&k.user);
    let rows: [(&str, SocketAddr, &str, &str, &str); 6] = [
        ("missing", plain, "x-unrelated", "nothing", "16"),
        ("unknown odd key", plain, "api-key", odd_key, "16"),
        ("revoked", plain, "x-api-key", &k.revoked, "16"),
        ("scope", scoped, "authorization", &bearer_user, "7"),
        ("rate limited", plain, "api-key", &limited, "8"),
        ("store down", down, "api-key", "some-opaque-key-42", "14"),
    ];
    for (case, addr, name, value, grpc_status) in rows {
        let (parts, body) = raw_grpc(addr, &[(name, value)]).await;
        assert_eq!(parts.status, 200, "{case}: gRPC errors travel in grpc-status, not the HTTP status");
        assert_eq!(parts.headers["content-type"], "application/grpc", "{case}");
        assert_eq!(parts.headers["grpc-status"], grpc_status, "{case}");
        let message = parts.headers["grpc-message"].as_bytes();
        assert!(!message.is_empty(), "{case}");
        assert!(is_percent_encoded(message), "{case}: {message:?}");
        // Trailers-only: everything is in the headers; no message, no trailers.
        assert!(body.trailers().is_none(), "{case}: {:?}", body.trailers());
        assert!(body.to_bytes().is_empty(), "{case}");

        let key = value.strip_prefix("Bearer ").unwrap_or(value);
        for (header, v) in &parts.headers {
            let text = String::from_utf8_lossy(v.as_bytes());
            assert!(!text.contains(key), "{case}: key echoed in {header}: {text}");
            let decoded = percent_encoding::percent_decode(v.as_bytes()).decode_utf8_lossy();
            assert!(!decoded.contains(key), "{case}: key echoed (encoded) in {header}: {decoded}");
        }
    }
}

/// A grpc-web call over HTTP/1.1: status, headers and the frames of the body.
struct GrpcWebReply {
    version: http::Version,
    headers: http::HeaderMap,
    messages: Vec<Bytes>,
    trailers: String,
}

impl GrpcWebReply {
    /// grpc-status from the trailer frame, or from the headers (trailers-only).
    fn grpc_status(&self) -> Option<String> {
        self.trailers
            .lines()
            .find_map(|l| l.trim().strip_prefix("grpc-status:").map(|s| s.trim().to_owned()))
            .or_else(|| self.headers.get("grpc-status").map(|v| v.to_str().unwrap().to_owned()))
    }
}

async fn grpc_web(addr: SocketAddr, metadata: &[(&str, &str)]) -> GrpcWebReply {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut request = http::Request::post(format!("http://{addr}{GET}"))
        .version(http::Version::HTTP_11)
        .header("content-type", "application/grpc-web+proto")
        .header("accept", "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    for (name, value) in metadata {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(Bytes::from_static(&[0, 0, 0, 0, 0]))).unwrap();
    let response = client.request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    assert_eq!(parts.status, 200);
    let mut body = body.collect().await.unwrap().to_bytes();
    let (mut messages, mut trailers) = (Vec::new(), String::new());
    while body.has_remaining() {
        assert!(body.remaining() >= 5, "truncated grpc-web frame");
        let flag = body.get_u8();
        let len = body.get_u32() as usize;
        let payload = body.split_to(len);
        if flag & 0x80 != 0 {
            trailers.push_str(std::str::from_utf8(&payload).unwrap());
        } else {
            messages.push(payload);
        }
    }
    GrpcWebReply { version: parts.version, headers: parts.headers, messages, trailers }
}

#[tokio::test]
async fn grpc_web_over_http1_is_authenticated() {
    let k = keys().await;
    let addr = spawn(ApiKeyLayer::new(k.store.clone()), None).await;

    for (case, name, value) in [("bearer", "authorization", bearer(&k.user)), ("api-key", "api-key", k.user.clone())] {
        let reply = grpc_web(addr, &[(name, &value)]).await;
        assert_eq!(reply.version, http::Version::HTTP_11, "{case}");
        assert_eq!(reply.headers["content-type"], "application/grpc-web+proto", "{case}");
        assert_eq!(reply.grpc_status().as_deref(), Some("0"), "{case}: {}", reply.trailers);
        assert_eq!(reply.messages.len(), 1, "{case}");
        let message = GetReply::decode(reply.messages[0].clone()).unwrap();
        assert_eq!((message.kind.as_str(), message.id.as_str()), ("user", "alice"), "{case}");
        assert_eq!(message.key_id, k.user_key_id, "{case}");
    }

    for (case, metadata) in [("no key", vec![]), ("bad key", vec![("api-key", "not-a-key-77")])] {
        let reply = grpc_web(addr, &metadata).await;
        assert_eq!(reply.headers["content-type"], "application/grpc-web+proto", "{case}");
        assert_eq!(reply.grpc_status().as_deref(), Some("16"), "{case}");
        assert!(reply.messages.is_empty(), "{case}: the handler must not run");
        let all = format!("{:?} {}", reply.headers, reply.trailers);
        assert!(!all.contains("not-a-key-77"), "{case}: {all}");
    }
}

/// With the key layer *outside* `GrpcWebLayer`, the layer sees the grpc-web request itself. Its trailers-only
/// rejection must then say `content-type: application/grpc-web…`, or grpc-web clients that check the content type
/// (connect-es, for one) report a transport error instead of UNAUTHENTICATED. Today it says `application/grpc`.
#[tokio::test]
async fn grpc_web_rejection_outside_grpc_web_layer_keeps_the_grpc_web_content_type() {
    let k = keys().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let router = Server::builder()
        .accept_http1(true)
        .layer(ApiKeyLayer::new(k.store.clone()))
        .layer(GrpcWebLayer::new())
        .add_service(WhoAmIServer::new(WhoAmIService));
    tokio::spawn(router.serve_with_incoming(TcpIncoming::from(listener)));

    let reply = grpc_web(addr, &[("api-key", &k.user)]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("0"));
    let reply = grpc_web(addr, &[]).await;
    assert_eq!(reply.grpc_status().as_deref(), Some("16"));
    assert_eq!(reply.headers["content-type"], "application/grpc-web+proto");
}
