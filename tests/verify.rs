//! The verification table in process: each row is one presented credential, the expected status, and whether the
//! store may be consulted (malformed input must be rejected without a store call).
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tower::ServiceExt;
use tower_api_key::{
    ApiKeyLayer, KeyFormat, KeyKind, KeyRecord, KeyStore, Lookup, LookupResult, MemoryStore, NewKey, Principal,
    async_trait,
};

/// Counts lookups, then delegates (async path only, so the layer's boxed-future path is exercised too).
#[derive(Debug, Clone)]
struct Counting {
    inner: MemoryStore,
    calls: Arc<AtomicUsize>,
    sync: bool,
}

#[async_trait]
impl KeyStore for Counting {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup(by).await
    }
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        if !self.sync {
            return None;
        }
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.lookup_now(by)
    }
}

async fn status(layer: ApiKeyLayer, header: (&str, &str)) -> (u16, Option<String>) {
    let svc = tower::ServiceBuilder::new().layer(layer).service_fn(|req: http::Request<()>| async move {
        let who = req.extensions().get::<Principal>().map(|p| format!("{}:{}", p.kind(), p.id()));
        Ok::<_, std::convert::Infallible>(http::Response::new(who.unwrap_or_default()))
    });
    let req = http::Request::get("/").header(header.0, header.1).body(()).unwrap();
    let res = svc.oneshot(req).await.unwrap();
    let body = res.body().clone();
    (res.status().as_u16(), (!body.is_empty()).then_some(body))
}

#[tokio::test]
async fn verification_table() {
    let memory = MemoryStore::new();
    let user = memory.add(NewKey::user("alice")).unwrap();
    let system = memory.add(NewKey::system("billing")).unwrap();
    memory.import("opaque-key-for-carol-123456", NewKey::user("carol")).unwrap();
    // A record whose kind contradicts its key's prefix: a user-prefixed key stored as a system key.
    let g = KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now());
    memory
        .put(KeyRecord::new(g.record.id, g.record.digest, KeyKind::System, "mallory").with_prefix("tak_user"))
        .unwrap();
    // A crate-format key whose digest is stored as if it were opaque: must not be found by id.
    let h = KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now());
    memory.put(KeyRecord::new(h.record.id, h.record.digest, KeyKind::User, "dave")).unwrap();

    let u = user.key.expose_secret().to_owned();
    let s = system.key.expose_secret().to_owned();
    // Same id and checksum-valid, but another secret: forge by re-using the id with a fresh secret.
    // The checksum covers the id, so a key whose id was swapped fails the CRC: malformed, no store call.
    let forged = {
        let other = KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now());
        other.key.expose_secret().replace(other.record.id.as_str(), user.record.id.as_str())
    };
    let mut bad_sum = u.clone();
    let last = bad_sum.pop().unwrap();
    bad_sum.push(if last == '0' { '1' } else { '0' });
    let unknown =
        KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now()).key.expose_secret().to_owned();
    let too_long = "k".repeat(300);

    // (name, header, value, status, identity, store consulted)
    type Row = (&'static str, &'static str, String, u16, Option<&'static str>, bool);
    let rows: Vec<Row> = vec![
        ("valid user key", "authorization", format!("Bearer {u}"), 200, Some("user:alice"), true),
        ("valid system key", "api-key", s.clone(), 200, Some("system:billing"), true),
        ("opaque key", "x-api-key", "opaque-key-for-carol-123456".into(), 200, Some("user:carol"), true),
        ("unknown opaque key", "api-key", "not-stored-anywhere".into(), 401, None, true),
        ("unknown key of our format", "api-key", unknown, 401, None, true),
        ("bad checksum", "authorization", format!("Bearer {bad_sum}"), 401, None, false),
        ("forged id", "authorization", format!("Bearer {forged}"), 401, None, false),
        ("prefix names the wrong kind", "api-key", g.key.expose_secret().to_owned(), 401, None, true),
        ("our format stored as opaque", "api-key", h.key.expose_secret().to_owned(), 401, None, true),
        ("over-long", "api-key", too_long, 401, None, false),
        ("truncated key of our format", "api-key", u[..u.len() - 1].to_owned(), 401, None, false),
        ("prefix only", "api-key", "tak_user_".into(), 401, None, false),
        ("empty", "api-key", String::new(), 400, None, false),
    ];
    for sync in [true, false] {
        for (name, header, value, want, who, consults) in &rows {
            let calls = Arc::new(AtomicUsize::new(0));
            let store = Counting { inner: memory.clone(), calls: calls.clone(), sync };
            let (got, body) = status(ApiKeyLayer::new(store), (header, value)).await;
            assert_eq!(got, *want, "{name} (sync store: {sync})");
            if *want == 200 {
                assert_eq!(body.as_deref(), *who, "{name}");
            }
            assert_eq!(calls.load(Ordering::SeqCst) > 0, *consults, "{name}: store consulted? (sync store: {sync})");
        }
    }
}

#[tokio::test]
async fn opaque_keys_can_be_refused_without_a_store_call() {
    let memory = MemoryStore::new();
    memory.import("opaque-key-for-carol-123456", NewKey::user("carol")).unwrap();
    let calls = Arc::new(AtomicUsize::new(0));
    let store = Counting { inner: memory, calls: calls.clone(), sync: true };
    let layer = ApiKeyLayer::new(store).accept_opaque(false);
    assert_eq!(status(layer, ("api-key", "opaque-key-for-carol-123456")).await.0, 401);
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn digests_are_what_the_store_holds() {
    // A dump of the store: no field of any record lets you authenticate.
    let memory = MemoryStore::new();
    let issued = memory.add(NewKey::user("alice")).unwrap();
    let key = issued.key.expose_secret().to_owned();
    let dump = format!("{:?} {}", issued.record, issued.record.digest.to_hex());
    assert!(!dump.contains(&key[key.len() - 30..]));
    for candidate in [issued.record.digest.to_hex(), issued.record.display_id(), issued.record.id.to_string()] {
        assert_eq!(status(ApiKeyLayer::new(memory.clone()), ("api-key", &candidate)).await.0, 401, "{candidate}");
    }
}
