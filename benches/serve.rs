//! The two servers `benches/load.sh` compares: the same axum route, `GET /whoami` (a fixed 2-byte body), on one
//! current-thread runtime, behind `ApiKeyLayer` over a memory store of 1 000 keys or with no layer at all.
//! Nothing else differs. `serve --serve <addr> layer|none` prints `KEY <key>` (a fresh crate-format key) and
//! registers `DEMO_USER_KEY` as an opaque key when it is set. Run without `--serve` (as `cargo bench` does), it
//! only says how to use it.

#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, missing_debug_implementations, unreachable_pub)]

use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(pos) = args.iter().position(|a| a == "--serve") else {
        println!(
            "serve: the load-test server of benches/load.sh (`--serve <addr> layer|none`); nothing to measure alone"
        );
        return;
    };
    let (addr, mode) = (&args[pos + 1], args[pos + 2].as_str());
    let store = MemoryStore::new();
    let issued = store.add(NewKey::user("demo-user")).unwrap();
    for i in 1..1000 {
        store.add(NewKey::user(format!("user{i}"))).unwrap();
    }
    if let Ok(key) = std::env::var("DEMO_USER_KEY") {
        store.import(&key, NewKey::user("demo-user-opaque")).unwrap();
    }
    let mut app = axum::Router::new().route("/whoami", axum::routing::get(|| async { "ok" }));
    match mode {
        "layer" => app = app.layer(ApiKeyLayer::new(store)),
        "none" => {}
        other => panic!("--serve mode is `layer` or `none`, not {other}"),
    }
    println!("KEY {}", issued.key.expose_secret());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        println!("LISTENING {}", listener.local_addr().unwrap());
        axum::serve(listener, app).await.unwrap();
    });
}
