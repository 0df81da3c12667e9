//! Shared helpers for the integration tests: a real server on loopback.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

/// Serves `app` on 127.0.0.1 (a free port) in the background; returns its address.
pub(crate) async fn serve(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    addr
}

/// A plain reqwest client that never reuses a key between tests.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// The example server's two demo keys (`DEMO_USER_KEY`, `DEMO_SERVICE_KEY`), fixed so tests can send them.
pub(crate) const USER_KEY: &str = "demo-user-key-0123456789abcdefghijklmnop";
pub(crate) const SERVICE_KEY: &str = "demo-service-key-0123456789abcdefghijklm";

/// A memory store holding the demo keys as the example server registers them: the user key (scope `whoami`) and
/// the service key (scopes `whoami` and `keys:admin`).
pub(crate) fn demo_store() -> tower_api_key::MemoryStore {
    use tower_api_key::NewKey;
    let store = tower_api_key::MemoryStore::new();
    store.import(USER_KEY, NewKey::user("demo-user").scopes(["whoami"]).unwrap()).unwrap();
    store.import(SERVICE_KEY, NewKey::system("demo-service").scopes(["whoami", "keys:admin"]).unwrap()).unwrap();
    store
}
