//! The custom store of the README and of the `store` module docs ("Implementing a custom store"), compiled as it
//! is written there and run through the conformance suite. A test below fails if the guide's code and this file
//! drift apart.

// ---- the guide's store, verbatim ----
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tower_api_key::{
    KeyDigest, KeyId, KeyRecord, KeyStore, KeyUpdate, ListQuery, Lookup, LookupResult, Page, StoreError, Usage,
    async_trait,
};

#[derive(Debug, Default)]
struct MyStore {
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    by_id: BTreeMap<KeyId, KeyRecord>,
    /// Opaque keys only (no prefix): digest of the whole key -> id.
    by_digest: HashMap<KeyDigest, KeyId>,
}

impl Tables {
    fn insert(&mut self, record: &KeyRecord) -> Result<(), StoreError> {
        if self.by_id.contains_key(&record.id) {
            return Err(StoreError::Conflict("a key with this id exists"));
        }
        if record.prefix.is_none() {
            if self.by_digest.contains_key(&record.digest) {
                return Err(StoreError::Conflict("this key is already stored"));
            }
            self.by_digest.insert(record.digest, record.id);
        }
        self.by_id.insert(record.id, record.clone());
        Ok(())
    }

    fn get_mut(&mut self, id: &KeyId) -> Result<&mut KeyRecord, StoreError> {
        self.by_id.get_mut(id).ok_or(StoreError::NotFound(*id))
    }
}

#[async_trait]
impl KeyStore for MyStore {
    // 1. What the layer needs on every request.
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        let tables = self.tables.lock().expect("not poisoned");
        let found = match by {
            Lookup::Id(id) => tables.by_id.get(id).filter(|r| r.prefix.is_some()),
            Lookup::Digest(digest) => tables.by_digest.get(digest).and_then(|id| tables.by_id.get(id)),
        };
        Ok(found.cloned().map(Arc::new))
    }

    // 2. What issuing and importing need.
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.tables.lock().expect("not poisoned").insert(record)
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.tables.lock().expect("not poisoned").by_id.get(id).cloned())
    }

    // 3. Listing: byte order by id, after the cursor, one page at a time.
    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        let tables = self.tables.lock().expect("not poisoned");
        let start = query.after.map_or(Bound::Unbounded, Bound::Excluded);
        let size = query.page_size();
        let mut items: Vec<KeyRecord> = (tables.by_id.range((start, Bound::Unbounded)))
            .map(|(_, record)| record)
            .filter(|record| query.matches(record, now))
            .take(size + 1) // one more than the page: is there a next page?
            .cloned()
            .collect();
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|record| record.id)
        } else {
            None
        };
        Ok(Page { items, next })
    }

    // 4. State changes, each atomic.
    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let mut tables = self.tables.lock().expect("not poisoned");
        let record = tables.get_mut(id)?;
        update.apply(record);
        Ok(record.clone())
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let mut tables = self.tables.lock().expect("not poisoned");
        let record = tables.get_mut(id)?;
        record.revoked_at.get_or_insert(at);
        let revoked = record.clone();
        // Every key rotated from this one goes too.
        let mut next = revoked.rotated_to;
        while let Some(successor) = next {
            let record = tables.get_mut(&successor)?;
            record.revoked_at.get_or_insert(at);
            next = record.rotated_to;
        }
        Ok(revoked)
    }

    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let mut tables = self.tables.lock().expect("not poisoned");
        let old = tables.get_mut(id)?;
        if old.revoked_at.is_some() {
            return Err(StoreError::Conflict("a revoked key cannot be rotated"));
        }
        if old.rotated_to.is_some() {
            return Err(StoreError::Conflict("this key was already rotated"));
        }
        tables.insert(successor)?;
        let old = tables.get_mut(id)?;
        old.rotated_to = Some(successor.id);
        old.expires_at = Some(old.expires_at.map_or(grace_end, |own| own.min(grace_end)));
        Ok(old.clone())
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        let mut tables = self.tables.lock().expect("not poisoned");
        for u in usage {
            if let Ok(record) = tables.get_mut(&u.id) {
                record.usage_count = record.usage_count.saturating_add(u.count);
                record.last_used_at = Some(record.last_used_at.map_or(u.last_used, |t| t.max(u.last_used)));
            }
        }
        Ok(())
    }
}
// ---- end of the guide's store ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_guides_store_keeps_the_contract() {
    tower_api_key::conformance::run(|| async { MyStore::default() }).await;
}

#[tokio::test]
async fn the_guides_store_authenticates_through_the_layer() {
    use tower::ServiceExt;
    use tower_api_key::{ApiKeyLayer, KeyManager, NewKey, Principal};
    let store = Arc::new(MyStore::default());
    let keys = KeyManager::from_shared(store.clone());
    let issued = keys.issue(NewKey::user("alice")).await.unwrap();
    let svc = tower::ServiceBuilder::new().layer(ApiKeyLayer::from_shared(store)).service_fn(
        |req: http::Request<()>| async move {
            let who = req.extensions().get::<Principal>().map(|p| p.id().to_owned()).unwrap_or_default();
            Ok::<_, std::convert::Infallible>(http::Response::new(who))
        },
    );
    let call = |key: String| {
        let svc = svc.clone();
        async move {
            let req = http::Request::get("/").header("authorization", format!("Bearer {key}")).body(()).unwrap();
            svc.oneshot(req).await.unwrap()
        }
    };
    let ok = call(issued.key.expose_secret().to_owned()).await;
    assert_eq!((ok.status(), ok.body().as_str()), (http::StatusCode::OK, "alice"));
    keys.revoke(&issued.record.id).await.unwrap();
    assert_eq!(call(issued.key.expose_secret().to_owned()).await.status(), http::StatusCode::UNAUTHORIZED);
}

/// The code between the markers above must be the first Rust block of the guide, in the module docs and in the
/// README alike.
#[test]
fn the_guide_and_this_file_hold_the_same_store() {
    let this = include_str!("custom_store.rs");
    let begin = this.find("// ---- the guide's store, verbatim ----\n").expect("begin marker") + 41;
    let end = this.find("// ---- end of the guide's store ----").expect("end marker");
    let here = &this[begin..end];
    for (name, text) in [
        ("src/store/custom_store.md", include_str!("../src/store/custom_store.md")),
        ("README.md", include_str!("../README.md")),
    ] {
        assert!(
            text.contains(here),
            "{name} no longer holds the store of tests/custom_store.rs: update one from the other"
        );
    }
}
