//! The hyper service of `examples/hyper.rs` on 127.0.0.1:0, driven by a real hyper (hyper-util legacy) client:
//! the principal reaches the handler; without a valid key the answer is 401 with a `WWW-Authenticate: Bearer`
//! challenge and an `application/problem+json` body that never contains the key.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

#[path = "../examples/hyper.rs"]
#[allow(dead_code)] // the example's `main` and `demo_keys`
mod example;

const SYSTEM_KEY: &str = "legacy-system-key-0123456789";

struct Server {
    addr: SocketAddr,
    user: String,
    user_key_id: String,
}

/// Runs the example's `serve` with a user key of the crate's format (`alice`) and an opaque system key
/// (`billing`).
async fn start(layer: impl FnOnce(MemoryStore) -> ApiKeyLayer) -> Server {
    let store = MemoryStore::new();
    let user = store.add(NewKey::user("alice")).unwrap();
    store.import(SYSTEM_KEY, NewKey::system("billing")).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(example::serve(listener, layer(store)));
    Server { addr, user: user.key.expose_secret().to_owned(), user_key_id: user.record.id.to_string() }
}

struct Reply {
    status: StatusCode,
    version: Version,
    headers: HeaderMap,
    body: Bytes,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {:?}", self.body))
    }
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)], http2: bool) -> Reply {
    let client = Client::builder(TokioExecutor::new()).http2_only(http2).build_http::<Empty<Bytes>>();
    let mut request = http::Request::get(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = client.request(request.body(Empty::new()).unwrap()).await.unwrap();
    let (parts, body) = response.into_parts();
    Reply {
        status: parts.status,
        version: parts.version,
        headers: parts.headers,
        body: body.collect().await.unwrap().to_bytes(),
    }
}

#[tokio::test]
async fn valid_key_reaches_the_handler_as_a_principal() {
    let server = start(ApiKeyLayer::new).await;
    let bearer = format!("Bearer {}", server.user);
    let rows = [
        ("bearer, http/1.1", "authorization", bearer.as_str(), false, "user", "alice"),
        ("bearer, http/2", "authorization", bearer.as_str(), true, "user", "alice"),
        ("api-key", "api-key", server.user.as_str(), false, "user", "alice"),
        ("x-api-key", "x-api-key", server.user.as_str(), false, "user", "alice"),
        ("opaque system key", "api-key", SYSTEM_KEY, false, "system", "billing"),
    ];
    for (case, name, value, http2, kind, id) in rows {
        let reply = get(server.addr, "/whoami", &[(name, value)], http2).await;
        assert_eq!(reply.status, StatusCode::OK, "{case}: {:?}", reply.body);
        assert_eq!(reply.version, if http2 { Version::HTTP_2 } else { Version::HTTP_11 }, "{case}");
        assert_eq!(reply.headers["content-type"], "application/json", "{case}");
        let json = reply.json();
        assert_eq!(json["kind"], kind, "{case}");
        assert_eq!(json["id"], id, "{case}");
        if kind == "user" {
            assert_eq!(json["key_id"], server.user_key_id.as_str(), "{case}");
        }
    }

    // The layer runs before routing: an authenticated request to an unknown path reaches the handler (404).
    let reply = get(server.addr, "/elsewhere", &[("authorization", &bearer)], false).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

fn assert_problem(case: &str, reply: &Reply, status: StatusCode, challenge: &str, secrets: &[&str]) {
    assert_eq!(reply.status, status, "{case}: {:?}", reply.body);
    assert_eq!(reply.headers["www-authenticate"], challenge, "{case}");
    assert_eq!(reply.headers["content-type"], "application/problem+json", "{case}");
    let json = reply.json();
    assert_eq!(json["status"], status.as_u16(), "{case}: {json}");
    assert!(json["title"].is_string() && json["detail"].is_string(), "{case}: {json}");
    let body = String::from_utf8_lossy(&reply.body);
    for secret in secrets {
        assert!(!body.contains(secret), "{case}: key echoed in the body: {body}");
        for (name, value) in &reply.headers {
            let value = String::from_utf8_lossy(value.as_bytes());
            assert!(!value.contains(secret), "{case}: key echoed in {name}: {value}");
        }
    }
}

#[tokio::test]
async fn missing_or_bad_key_is_401_problem_json_without_the_key() {
    let server = start(ApiKeyLayer::new).await;
    let missing = r#"Bearer realm="api""#;
    let invalid = r#"Bearer realm="api", error="invalid_token""#;

    let reply = get(server.addr, "/whoami", &[], false).await;
    assert_problem("no key", &reply, StatusCode::UNAUTHORIZED, missing, &[]);
    // Even paths the handler would 404: nothing behind the layer is reachable without a key.
    let reply = get(server.addr, "/elsewhere", &[], false).await;
    assert_problem("no key, other path", &reply, StatusCode::UNAUTHORIZED, missing, &[]);

    let mut tampered = server.user.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let unknown = "unknown-opaque-key-31337";
    let rows = [
        ("unknown key, bearer", "authorization", format!("Bearer {unknown}"), false),
        ("unknown key, api-key", "api-key", unknown.to_owned(), false),
        ("unknown key, http/2", "x-api-key", unknown.to_owned(), true),
        ("tampered key", "authorization", format!("Bearer {tampered}"), false),
    ];
    for (case, name, value, http2) in rows {
        let reply = get(server.addr, "/whoami", &[(name, &value)], http2).await;
        assert_problem(case, &reply, StatusCode::UNAUTHORIZED, invalid, &[unknown, &tampered]);
    }
}

#[tokio::test]
async fn challenge_names_the_configured_realm() {
    let server = start(|store| ApiKeyLayer::new(store).realm("whoami-demo").unwrap()).await;
    let reply = get(server.addr, "/whoami", &[], false).await;
    assert_problem("custom realm", &reply, StatusCode::UNAUTHORIZED, r#"Bearer realm="whoami-demo""#, &[]);
    let reply = get(server.addr, "/whoami", &[("api-key", "nope-nope-nope")], false).await;
    let challenge = r#"Bearer realm="whoami-demo", error="invalid_token""#;
    assert_problem("custom realm, bad key", &reply, StatusCode::UNAUTHORIZED, challenge, &["nope-nope-nope"]);
}
