//! `require_https` decides from what the server knows about the connection, never from what the client writes:
//! over cleartext, an HTTP/1.1 absolute-form `https://` target and an h2c `:scheme: https` are both refused.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower_api_key::{ApiKeyLayer, HttpsPolicy, MemoryStore, NewKey, Principal, Secure};

async fn serve(policy: HttpsPolicy, mark_secure: bool) -> (SocketAddr, String) {
    let store = MemoryStore::new();
    let key = store.add(NewKey::user("alice")).unwrap().key.expose_secret().to_owned();
    let mut app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(store).require_https(policy));
    if mark_secure {
        // What a TLS acceptor does for every request of a TLS connection.
        app = app.layer(axum::Extension(Secure));
    }
    (common::serve(app).await, key)
}

/// Sends one raw HTTP/1.1 request and returns the status code.
async fn raw_http1(addr: SocketAddr, request: String) -> u16 {
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut buf = vec![0; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("no status line in {head:?}"))
}

/// Sends one HTTP/2 request with prior knowledge (h2c) to `uri` (whose scheme becomes `:scheme`).
async fn h2c(addr: SocketAddr, uri: &str, key: &str) -> u16 {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp)).await.unwrap();
    tokio::spawn(conn);
    let req =
        http::Request::get(uri).header("authorization", format!("Bearer {key}")).body(Empty::<bytes::Bytes>::new());
    let res = send.send_request(req.unwrap()).await.unwrap();
    let status = res.status().as_u16();
    let _ = res.into_body().collect().await;
    status
}

#[tokio::test]
async fn a_client_chosen_https_scheme_is_not_proof_of_tls() {
    for policy in [HttpsPolicy::direct(), HttpsPolicy::behind_proxy()] {
        let (addr, key) = serve(policy.clone(), false).await;
        let absolute = format!(
            "GET https://{addr}/whoami HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
        );
        assert_eq!(raw_http1(addr, absolute).await, 403, "{policy:?}: HTTP/1.1 absolute-form https target");
        assert_eq!(h2c(addr, &format!("https://{addr}/whoami"), &key).await, 403, "{policy:?}: h2c :scheme https");
        assert_eq!(h2c(addr, &format!("http://{addr}/whoami"), &key).await, 403, "{policy:?}: h2c :scheme http");
    }
}

#[tokio::test]
async fn the_secure_marker_of_the_tls_acceptor_is() {
    let (addr, key) = serve(HttpsPolicy::direct(), true).await;
    let plain =
        format!("GET /whoami HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n");
    assert_eq!(raw_http1(addr, plain).await, 200);
    assert_eq!(h2c(addr, &format!("http://{addr}/whoami"), &key).await, 200);
}
