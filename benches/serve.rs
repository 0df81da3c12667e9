//! The servers `benches/load.sh` compares: the same axum route, `GET /whoami` (a fixed 2-byte body), on one
//! current-thread runtime, over a memory store of 1 000 keys, with one of:
//! - `none`: no layer at all;
//! - `layer`: `ApiKeyLayer`;
//! - `minimal`: the hand-written minimal pipeline of `benches/common/minimal.rs` (the required parts only: the
//!   floor of any implementation, end to end);
//! - `noop`: a layer that does nothing, applied the same way (`Router::layer`): what axum's wrapping of a route in
//!   a layer costs by itself;
//! - `outer`: `ApiKeyLayer` around the whole router, as a tower service (`ApiKeyLayer::layer(router)`), which axum
//!   does not wrap per route.
//!
//! Nothing else differs. `serve --serve <addr> none|layer|outer|minimal|noop` prints `KEY <key>` (a fresh
//! crate-format key, or `SERVE_KEY` when it is set) and registers `DEMO_USER_KEY` as an opaque key when it is set.
//! Run without `--serve` (as `cargo bench` does), it only says how to use it.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

#[path = "common/minimal.rs"]
mod minimal;

use tower::Layer;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(pos) = args.iter().position(|a| a == "--serve") else {
        println!(
            "serve: the load-test server of benches/load.sh (`--serve <addr> none|layer|outer|minimal|noop`); \
             nothing to measure alone"
        );
        return;
    };
    let (addr, mode) = (&args[pos + 1], args[pos + 2].as_str());
    let store = MemoryStore::new();
    // SERVE_KEY: a crate-format key printed by another server of the same run, so that every server of a
    // comparison accepts the same key; without it, a fresh one.
    let key = match std::env::var("SERVE_KEY").ok().filter(|k| !k.is_empty()) {
        Some(key) => {
            store.import(&key, NewKey::user("demo-user")).unwrap();
            key
        }
        None => store.add(NewKey::user("demo-user")).unwrap().key.expose_secret().to_owned(),
    };
    for i in 1..1000 {
        store.add(NewKey::user(format!("user{i}"))).unwrap();
    }
    if let Ok(key) = std::env::var("DEMO_USER_KEY") {
        store.import(&key, NewKey::user("demo-user-opaque")).unwrap();
    }
    let mut app = axum::Router::new().route("/whoami", axum::routing::get(|| async { "ok" }));
    let mut outer = false;
    match mode {
        "layer" => app = app.layer(ApiKeyLayer::new(store.clone())),
        "outer" => outer = true,
        "minimal" => {
            let store = store.clone();
            app = app.layer(tower::layer::layer_fn(move |inner| minimal::MinimalAuth::new(inner, store.clone())));
        }
        "noop" => app = app.layer(tower::layer::layer_fn(|inner| inner)),
        "none" => {}
        other => panic!("--serve mode is `none`, `layer`, `outer`, `minimal` or `noop`, not {other}"),
    }
    println!("KEY {key}");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap());
        if outer {
            // The layer around the whole router, as a tower service: no per-route wrapping by axum.
            let svc = ApiKeyLayer::new(store).layer(app);
            axum::serve(listener, axum::ServiceExt::<axum::extract::Request>::into_make_service(svc)).await.unwrap();
        } else {
            axum::serve(listener, app).await.unwrap();
        }
    });
}
