//! The key generator's output loads into a `FileStore`, and the printed key authenticates against it.
#![allow(clippy::unwrap_used)]

#[path = "../examples/keygen.rs"]
#[allow(dead_code, unreachable_pub)]
mod keygen;

use tower::ServiceExt;
use tower_api_key::{ApiKeyLayer, FileStore, Principal};

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

async fn authenticate(store: FileStore, key: &str) -> Option<(String, String)> {
    let svc =
        tower::ServiceBuilder::new().layer(ApiKeyLayer::new(store)).service_fn(|req: http::Request<()>| async move {
            let p = req.extensions().get::<Principal>().cloned();
            Ok::<_, std::convert::Infallible>(http::Response::new(
                p.map(|p| format!("{} {}", p.kind(), p.id())).unwrap_or_default(),
            ))
        });
    let req = http::Request::get("/").header("authorization", format!("Bearer {key}")).body(()).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    (res.status() == 200).then(|| {
        let mut it = res.body().split(' ');
        (it.next().unwrap().to_owned(), it.next().unwrap().to_owned())
    })
}

#[tokio::test]
async fn toml_output_loads_and_the_key_works() {
    let (key, toml) =
        keygen::generate(args("--kind user --owner alice --name laptop --scopes read,write")).unwrap().unwrap();
    assert!(!toml.contains(key.expose_secret()), "the record never holds the key");
    assert!(toml.starts_with("[[keys]]"), "{toml}");
    let store = FileStore::from_toml_str(&toml).unwrap();
    assert_eq!(authenticate(store, key.expose_secret()).await, Some(("user".into(), "alice".into())));
}

#[tokio::test]
async fn json_output_with_custom_prefix_loads() {
    let (key, json) =
        keygen::generate(args("--kind system --owner billing --prefix sk-svcacct --expires-in-days 3 --json"))
            .unwrap()
            .unwrap();
    assert!(key.expose_secret().starts_with("sk-svcacct_"));
    let store = FileStore::from_json_str(&json).unwrap();
    // The layer must know the custom prefix; with the default format the key is opaque and not found.
    assert_eq!(authenticate(store.clone(), key.expose_secret()).await, None);
    let format = tower_api_key::KeyFormat::new().system_prefix("sk-svcacct").unwrap();
    let svc = tower::ServiceBuilder::new().layer(ApiKeyLayer::new(store).key_format(format)).service_fn(
        |_req: http::Request<()>| async { Ok::<_, std::convert::Infallible>(http::Response::new(String::new())) },
    );
    let req = http::Request::get("/").header("api-key", key.expose_secret()).body(()).unwrap();
    assert_eq!(svc.oneshot(req).await.unwrap().status(), 200);
}

#[test]
fn bad_arguments_are_errors() {
    assert!(keygen::generate(args("--kind robot --owner a")).is_err());
    assert!(keygen::generate(args("--kind user")).is_err());
    assert!(keygen::generate(args("--owner a --prefix BAD")).is_err());
    assert!(keygen::generate(args("--owner a --scopes has\"quote")).is_err());
    assert!(keygen::generate(args("--help")).unwrap().is_none());
}

/// `FileStore::from_env` with the variable really set. Setting a variable in this process needs `unsafe`
/// (edition 2024), which the crate forbids, so the test runs itself again as a child process with the
/// variable in its environment and the child does the check.
#[tokio::test]
async fn from_env_loads_toml_and_json_from_a_real_variable() {
    const VAR: &str = "TOWER_API_KEY_TEST_KEYS";
    const KEY_VAR: &str = "TOWER_API_KEY_TEST_KEY";
    if let (Ok(_), Ok(key)) = (std::env::var(VAR), std::env::var(KEY_VAR)) {
        // The child: load the store from the variable and authenticate with the key.
        let store = FileStore::from_env(VAR).unwrap();
        assert_eq!(store.len(), 1);
        assert_eq!(authenticate(store, &key).await, Some(("system".into(), "billing".into())));
        return;
    }
    for format in ["", "--json"] {
        let (key, record) =
            keygen::generate(args(&format!("--kind system --owner billing {format}"))).unwrap().unwrap();
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "from_env_loads_toml_and_json_from_a_real_variable", "--nocapture"])
            .env(VAR, &record)
            .env(KEY_VAR, key.expose_secret())
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{format}: child failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.contains("1 passed"), "{format}: the child ran the test: {stdout}");
    }
    assert!(FileStore::from_env("TOWER_API_KEY_SURELY_UNSET").is_err());
}
