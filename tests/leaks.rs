//! No key material in logs (captured at TRACE), `Debug` output, events, errors or response bodies.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::routing::get;
use tower_api_key::{ApiKey, ApiKeyLayer, KeyFormat, MemoryStore, NewKey, Principal, admin};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn logs_never_contain_a_key() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = MemoryStore::new();
    let user = store.add(NewKey::user("alice").scopes(["read"]).unwrap()).unwrap();
    let admin_key = store.add(NewKey::system("ops").scopes(["keys:admin"]).unwrap()).unwrap();
    let opaque = "opaque-legacy-key-with-enough-length-1234";
    store.import(opaque, NewKey::user("bob")).unwrap();

    let app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .nest("/admin", admin::router(tower_api_key::KeyManager::new(store.clone())))
        .layer(ApiKeyLayer::new(store.clone()).scheme("Api-Key").unwrap());
    let base = format!("http://{}", common::serve(app).await);
    let http = common::client();

    let good = user.key.expose_secret().to_owned();
    let mut damaged = good.clone();
    damaged.replace_range(good.len() - 3.., "zzz");
    let unknown =
        KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now()).key.expose_secret().to_owned();
    let mut presented = vec![good.clone(), damaged.clone(), unknown.clone(), opaque.to_owned()];
    let mut bodies = String::new();

    for (name, value) in [
        ("authorization", format!("Bearer {good}")),
        ("authorization", format!("Api-Key {damaged}")),
        ("api-key", unknown.clone()),
        ("x-api-key", opaque.to_owned()),
        ("x-api-key", "not-a-key-at-all-but-secretish".to_owned()),
    ] {
        let res = http.get(format!("{base}/whoami")).header(name, value).send().await.unwrap();
        bodies.push_str(&format!("{:?}", res.headers()));
        bodies.push_str(&res.text().await.unwrap());
    }
    presented.push("not-a-key-at-all-but-secretish".to_owned());
    let res = http
        .post(format!("{base}/admin/keys"))
        .bearer_auth(admin_key.key.expose_secret())
        .json(&serde_json::json!({"name": "n", "kind": "user", "owner": "carol"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let issued: serde_json::Value = res.json().await.unwrap();
    let issued_key = issued["key"].as_str().unwrap().to_owned();
    presented.push(admin_key.key.expose_secret().to_owned());
    // Rotate too: the new key must not be logged either.
    let rotated = tower_api_key::KeyManager::new(store.clone())
        .rotate(&user.record.id, std::time::Duration::from_secs(1))
        .await
        .unwrap();

    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("api key accepted"), "debug logs were captured:\n{logs}");
    assert!(logs.contains("deprecated X-API-Key"), "{logs}");
    assert!(logs.contains(user.record.id.as_str()), "logs name the key id");
    for key in presented.iter().chain([&issued_key, &rotated.key.expose_secret().to_owned()]) {
        let secret_part = &key[key.len().saturating_sub(20)..];
        assert!(!logs.contains(secret_part), "a key leaked into the logs:\n{logs}");
        assert!(!bodies.contains(secret_part), "a key leaked into a response:\n{bodies}");
    }
}

#[test]
fn debug_output_never_contains_a_key() {
    let store = MemoryStore::new();
    let issued = store.add(NewKey::user("alice")).unwrap();
    let secret = issued.key.expose_secret().to_owned();
    let tail = &secret[secret.len() - 20..];
    let principal = Principal::from_record(issued.record.clone());
    let layer = ApiKeyLayer::new(store.clone());
    let generated = KeyFormat::new().issue(NewKey::system("nobody"), std::time::SystemTime::now());
    let tower_api_key::Classified::Ours(parsed) = KeyFormat::new().classify(generated.key.expose_secret().as_bytes())
    else {
        panic!("a key of the format")
    };
    let gen_tail = &generated.key.expose_secret()[generated.key.expose_secret().len() - 20..];
    let texts = [
        format!("{issued:?}"),
        format!("{:?}", issued.record),
        format!("{principal:?}"),
        format!("{layer:?}"),
        format!("{store:?}"),
        format!("{generated:?}"),
        format!("{parsed:?}"),
        format!("{:?}", ApiKey::new(secret.clone())),
        format!("{:#?}", issued),
    ];
    for t in &texts {
        assert!(!t.contains(tail) && !t.contains(gen_tail), "{t}");
    }
}

/// One `api_key_auth` span per authentication, with the key id, the principal kind and the outcome, and never the
/// key (issue: observability). Printed by the fmt subscriber when each span closes.
#[tokio::test(flavor = "current_thread")]
async fn auth_span_records_key_id_kind_and_outcome() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = MemoryStore::new();
    let user = store.add(NewKey::user("alice")).unwrap();
    let service = store.add(NewKey::system("billing")).unwrap();
    let unknown = KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now()).key;
    let app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(store.clone()));
    let base = format!("http://{}", common::serve(app).await);
    let http = common::client();
    for key in [&user.key, &service.key, &unknown] {
        http.get(format!("{base}/whoami")).bearer_auth(key.expose_secret()).send().await.unwrap();
    }
    http.get(format!("{base}/whoami")).send().await.unwrap();

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    // Span-close lines: `api_key_auth{<fields>}: tower_api_key::service: close …`.
    let spans: Vec<&str> = text.lines().filter(|l| l.contains("api_key_auth{") && l.contains(": close")).collect();
    let has = |fields: &[&str]| spans.iter().any(|l| fields.iter().all(|f| l.contains(f)));
    assert_eq!(spans.len(), 4, "one span per request:\n{text}");
    let (user_id, service_id) = (format!("key_id={}", user.record.id), format!("key_id={}", service.record.id));
    assert!(has(&[&user_id, "kind=\"user\"", "outcome=\"accepted\""]), "{text}");
    assert!(has(&[&service_id, "kind=\"system\"", "outcome=\"accepted\""]), "{text}");
    assert!(has(&["outcome=\"unknown\""]), "{text}");
    assert!(has(&["outcome=\"no_credential\""]), "{text}");
    for key in [&user.key, &service.key, &unknown] {
        assert!(!text.contains(key.expose_secret()), "a key reached the logs");
    }
}

/// A flood of bad keys writes nothing per request at info level: rejections go to debug, and the layer writes one
/// summary per period with the counts per reason (issue: an attacker must not fill the disk).
#[tokio::test(flavor = "current_thread")]
async fn a_flood_of_bad_keys_writes_at_most_a_summary_at_info() {
    let logs = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_writer(logs.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let store = MemoryStore::new();
    let layer = ApiKeyLayer::new(store).log_period(std::time::Duration::from_secs(1)).unwrap();
    let svc = tower::ServiceBuilder::new().layer(layer).service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });
    use tower::ServiceExt;
    let send = |value: String, header: &'static str| {
        let svc = svc.clone();
        async move {
            let req = http::Request::get("/").header(header, value).body(()).unwrap();
            svc.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    for i in 0..2_000 {
        let unknown = KeyFormat::new().issue(NewKey::user("x"), std::time::SystemTime::now()).key;
        assert_eq!(send(format!("Bearer {}", unknown.expose_secret()), "authorization").await, 401);
        assert_eq!(send(format!("tak_user_{i}"), "api-key").await, 401);
        assert_eq!(send(format!("legacy-{i}"), "x-api-key").await, 401);
    }
    let during = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(during.lines().count() <= 2, "at most a summary per second during the flood:\n{during}");
    // After the period, the next rejections write the summary of everything before them (the clock is read once
    // every 64 rejections).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for _ in 0..64 {
        assert_eq!(send("Bearer nope".into(), "authorization").await, 401);
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let summaries: Vec<&str> =
        text.lines().filter(|l| l.contains("api key rejections since the last summary")).collect();
    assert!(!summaries.is_empty() && summaries.len() <= 3, "{text}");
    let all = summaries.join("\n");
    assert!(all.contains("unknown=") && all.contains("malformed="), "counts per reason: {all}");
    assert!(text.lines().count() <= 3, "{text}");
}
