//! The store conformance suite (feature `test-util`): one call checks that a [`KeyStore`] keeps every contract the
//! layer and [`KeyManager`] rely on. The crate's own stores run it; run it on yours.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use tower_api_key::{conformance, MemoryStore};
//! conformance::run(|| async { MemoryStore::new() }).await;
//! # });
//! ```
//!
//! What it checks, each on a fresh store from the factory (a database store gives each one its own schema or key
//! prefix):
//!
//! | check | contract |
//! |---|---|
//! | `lookup` | by id finds keys of the crate's format only, by digest opaque keys only; absent records are `None`; `lookup_now`, when it answers, agrees |
//! | `insert` | a taken id or opaque digest is a `Conflict` that changes nothing |
//! | `update` | changes what it names, keeps the rest; a rotated key's grace can only shrink; unknown ids are `NotFound` |
//! | `expiry` | times round-trip to the second; a key expires by the clock, not by a job |
//! | `rotation` | the successor is stored and found, the old key ends at the earlier of grace and its own expiry; a second rotation, or one of a revoked key, is a `Conflict` that stores nothing |
//! | `concurrent_rotation` | of 8 concurrent rotations of one key exactly one succeeds; no orphaned successor |
//! | `revoke_races_rotate` | a revocation racing a rotation never leaves an active successor of a revoked key |
//! | `listing` | byte order of ids (`B` before `a`), cursor paging without skips or repeats, filters by owner, kind and status |
//! | `usage` | counts add up, last-used moves forward only, unknown ids are skipped |
//! | `hourly_usage` | entries in two hours give those counts per hour, oldest first, and their sum in the total; a second flush to an hour adds to it; `since` filters (the hour that holds it included); [`USAGE_HOURS_KEPT`] hours are kept; counts near `u64::MAX` saturate (at `i64::MAX` or above) without an error; unknown ids are skipped and have no hours. A store without counts per hour (`hourly_usage` answers [`StoreError::Unsupported`], the trait's default) is checked for the totals only |
//!
//! A check that fails panics with its name and what went wrong, as an `assert!` in a test does. Times are whole
//! seconds, so stores that keep microseconds (PostgreSQL) or milliseconds pass; they start at the wall clock, and
//! no record the checks read expires (by the wall clock) within ten minutes, so stores whose entries expire with
//! their keys (Redis TTLs) pass too.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::clock::{Clock, ManualClock};
use crate::key::{KeyDigest, KeyFormat, KeyId, KeyKind, KeyRecord, KeyStatus, NewKey, Scopes};
use crate::manage::KeyManager;
use crate::store::{HourlyUsage, KeyStore, KeyUpdate, ListQuery, Lookup, StoreError, USAGE_HOURS_KEPT, Usage};

/// The suite's start time: the wall clock when the suite first ran, in whole seconds. Real time, so that a
/// store whose entries expire by the wall clock (Redis TTLs) still holds what the checks look at.
fn start() -> SystemTime {
    static START: std::sync::OnceLock<SystemTime> = std::sync::OnceLock::new();
    *START.get_or_init(|| {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        UNIX_EPOCH + Duration::from_secs(secs)
    })
}

/// Runs every check on a fresh store from `make`. Panics on the first broken contract, naming it.
///
/// Use a multi-threaded runtime (`#[tokio::test(flavor = "multi_thread")]`) so that the concurrency checks run in
/// parallel.
///
/// # Panics
/// When the store breaks a contract (that is the point).
///
/// ```
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
/// tower_api_key::conformance::run(|| async { tower_api_key::MemoryStore::new() }).await;
/// # });
/// ```
pub async fn run<S, F, Fut>(mut make: F)
where
    S: KeyStore,
    F: FnMut() -> Fut,
    Fut: Future<Output = S>,
{
    lookup(make().await).await;
    insert(make().await).await;
    update(make().await).await;
    expiry(make().await).await;
    rotation(make().await).await;
    concurrent_rotation(make().await).await;
    revoke_races_rotate(make().await).await;
    listing(make().await).await;
    usage(make().await).await;
    hourly_usage(make().await).await;
}

fn manager(store: Arc<dyn KeyStore>) -> (KeyManager, ManualClock) {
    let clock = ManualClock::new(start());
    (KeyManager::from_shared(store).clock(clock.clone()), clock)
}

fn opaque(secret: &[u8], owner: &str) -> KeyRecord {
    KeyRecord::new(KeyId::random(), KeyDigest::of(secret), KeyKind::User, owner).with_created_at(start())
}

fn ours(owner: &str) -> KeyRecord {
    KeyFormat::new().issue(NewKey::user(owner), start()).record
}

async fn found<S: KeyStore + ?Sized>(store: &S, by: Lookup<'_>, check: &str) -> Option<KeyRecord> {
    let answer = store.lookup(by).await.unwrap_or_else(|e| panic!("conformance `{check}`: lookup failed: {e}"));
    if let Some(now) = store.lookup_now(by) {
        let now = now.unwrap_or_else(|e| panic!("conformance `{check}`: lookup_now failed: {e}"));
        assert_eq!(
            now.as_deref(),
            answer.as_deref(),
            "conformance `{check}`: lookup_now and lookup disagree for {by:?}"
        );
    }
    answer.map(|r| KeyRecord::clone(&r))
}

async fn lookup<S: KeyStore>(store: S) {
    let c = "lookup";
    let formatted = ours("alice");
    let legacy = opaque(b"legacy-key", "bob");
    store.insert(&formatted).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    store.insert(&legacy).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    assert_eq!(
        found(&store, Lookup::Id(&formatted.id), c).await.as_ref(),
        Some(&formatted),
        "conformance `{c}`: by id"
    );
    assert_eq!(
        found(&store, Lookup::Digest(&legacy.digest), c).await.as_ref(),
        Some(&legacy),
        "conformance `{c}`: an opaque key by digest"
    );
    assert_eq!(
        found(&store, Lookup::Digest(&formatted.digest), c).await,
        None,
        "conformance `{c}`: a key of the crate's format is not found by digest"
    );
    assert_eq!(
        found(&store, Lookup::Id(&legacy.id), c).await,
        None,
        "conformance `{c}`: an opaque key is not found by id"
    );
    assert_eq!(found(&store, Lookup::Id(&KeyId::random()), c).await, None, "conformance `{c}`: an absent id");
    assert_eq!(
        found(&store, Lookup::Digest(&KeyDigest::of(b"absent")), c).await,
        None,
        "conformance `{c}`: an absent digest"
    );
    let got = store.get(&legacy.id).await.unwrap_or_else(|e| panic!("conformance `{c}`: get failed: {e}"));
    assert_eq!(got.as_ref(), Some(&legacy), "conformance `{c}`: get returns any record by id");
    assert_eq!(store.get(&KeyId::random()).await.ok().flatten(), None, "conformance `{c}`: get of an absent id");
}

async fn insert<S: KeyStore>(store: S) {
    let c = "insert";
    let first = opaque(b"one", "alice");
    store.insert(&first).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    let same_id = KeyRecord { owner: "mallory".into(), digest: KeyDigest::of(b"two"), ..first.clone() };
    assert!(
        matches!(store.insert(&same_id).await, Err(StoreError::Conflict(_))),
        "conformance `{c}`: a taken id is a Conflict"
    );
    let same_digest = opaque(b"one", "mallory");
    assert!(
        matches!(store.insert(&same_digest).await, Err(StoreError::Conflict(_))),
        "conformance `{c}`: a taken opaque digest is a Conflict"
    );
    assert_eq!(
        store.get(&first.id).await.ok().flatten().as_ref(),
        Some(&first),
        "conformance `{c}`: a conflict changes nothing"
    );
    assert_eq!(store.get(&same_digest.id).await.ok().flatten(), None, "conformance `{c}`: a conflict stores nothing");
}

async fn update<S: KeyStore>(store: S) {
    let c = "update";
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let (keys, _) = manager(store.clone());
    let issued = keys
        .issue(NewKey::user("alice").name("old").scopes(["a"]).expect("valid"))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    let id = issued.record.id;
    let update = KeyUpdate {
        name: Some("new".into()),
        scopes: Some(Scopes::new(["b", "c:*"]).expect("valid")),
        enabled: Some(false),
        ..KeyUpdate::default()
    };
    let changed = store.update(&id, &update).await.unwrap_or_else(|e| panic!("conformance `{c}`: update failed: {e}"));
    let stored = store.get(&id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: record gone"));
    assert_eq!(changed, stored, "conformance `{c}`: update returns the stored record");
    assert_eq!((stored.name.as_str(), stored.enabled), ("new", false), "conformance `{c}`: fields changed");
    assert!(stored.scopes.allows("c:d") && !stored.scopes.allows("a"), "conformance `{c}`: scopes replaced");
    assert_eq!(
        (stored.owner.as_str(), stored.digest),
        ("alice", issued.record.digest),
        "conformance `{c}`: the rest kept"
    );
    assert!(
        matches!(store.update(&KeyId::random(), &update).await, Err(StoreError::NotFound(_))),
        "conformance `{c}`: unknown id"
    );

    // A rotated key's grace period can only shrink.
    let old = keys.issue(NewKey::user("bob")).await.unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    keys.rotate(&old.record.id, Duration::from_secs(700))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: rotate failed: {e}"));
    let later = KeyUpdate { expires_at: Some(Some(start() + Duration::from_secs(5000))), ..KeyUpdate::default() };
    let r =
        store.update(&old.record.id, &later).await.unwrap_or_else(|e| panic!("conformance `{c}`: update failed: {e}"));
    assert_eq!(r.expires_at, Some(start() + Duration::from_secs(700)), "conformance `{c}`: grace not stretched");
    let never = KeyUpdate { expires_at: Some(None), ..KeyUpdate::default() };
    let r =
        store.update(&old.record.id, &never).await.unwrap_or_else(|e| panic!("conformance `{c}`: update failed: {e}"));
    assert_eq!(r.expires_at, Some(start() + Duration::from_secs(700)), "conformance `{c}`: grace not removed");
    let sooner = KeyUpdate { expires_at: Some(Some(start() + Duration::from_secs(650))), ..KeyUpdate::default() };
    let r =
        store.update(&old.record.id, &sooner).await.unwrap_or_else(|e| panic!("conformance `{c}`: update failed: {e}"));
    assert_eq!(r.expires_at, Some(start() + Duration::from_secs(650)), "conformance `{c}`: grace shortened");
}

async fn expiry<S: KeyStore>(store: S) {
    let c = "expiry";
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let (keys, clock) = manager(store.clone());
    let issued = keys
        .issue(NewKey::user("alice").expires_in(Duration::from_secs(600)))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    let stored = found(&*store, Lookup::Id(&issued.record.id), c)
        .await
        .unwrap_or_else(|| panic!("conformance `{c}`: not found"));
    assert_eq!(stored.created_at, start(), "conformance `{c}`: created_at round-trips");
    assert_eq!(
        stored.expires_at,
        Some(start() + Duration::from_secs(600)),
        "conformance `{c}`: expires_at round-trips"
    );
    clock.advance(Duration::from_secs(599));
    assert_eq!(stored.status_at(clock.now()), KeyStatus::Active, "conformance `{c}`: active before expiry");
    clock.advance(Duration::from_secs(1));
    let stored = found(&*store, Lookup::Id(&issued.record.id), c)
        .await
        .unwrap_or_else(|| panic!("conformance `{c}`: an expired key is still found (the layer says why it fails)"));
    assert_eq!(stored.status_at(clock.now()), KeyStatus::Expired, "conformance `{c}`: expired by the clock");
}

async fn rotation<S: KeyStore>(store: S) {
    let c = "rotation";
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let (keys, clock) = manager(store.clone());
    let old = keys
        .issue(NewKey::user("alice").expires_in(Duration::from_secs(5000)))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    let new = keys
        .rotate(&old.record.id, Duration::from_secs(630))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: rotate failed: {e}"));
    let successor = found(&*store, Lookup::Id(&new.record.id), c)
        .await
        .unwrap_or_else(|| panic!("conformance `{c}`: successor not found"));
    assert_eq!(successor, new.record, "conformance `{c}`: successor stored as issued");
    let before = found(&*store, Lookup::Id(&old.record.id), c)
        .await
        .unwrap_or_else(|| panic!("conformance `{c}`: old key gone"));
    assert_eq!(before.rotated_to, Some(new.record.id), "conformance `{c}`: rotated_to set");
    assert_eq!(before.expires_at, Some(start() + Duration::from_secs(630)), "conformance `{c}`: grace end");
    clock.advance(Duration::from_secs(629));
    assert_eq!(before.status_at(clock.now()), KeyStatus::Active, "conformance `{c}`: works during grace");
    clock.advance(Duration::from_secs(1));
    assert_eq!(before.status_at(clock.now()), KeyStatus::RotatedOut, "conformance `{c}`: rotated out after grace");
    assert_eq!(successor.status_at(clock.now()), KeyStatus::Active, "conformance `{c}`: successor active");

    // The old key's own, earlier expiry wins over a longer grace.
    let short = keys
        .issue(NewKey::user("bob").expires_in(Duration::from_secs(700)))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    keys.rotate(&short.record.id, Duration::from_secs(10_000))
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: rotate failed: {e}"));
    let r = store.get(&short.record.id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: gone"));
    assert_eq!(r.expires_at, short.record.expires_at, "conformance `{c}`: own expiry wins");

    // A second rotation, or one of a revoked key, stores nothing.
    let spare = KeyFormat::new().issue(NewKey::user("alice"), clock.now()).record;
    assert!(
        matches!(store.rotate(&old.record.id, &spare, clock.now()).await, Err(StoreError::Conflict(_))),
        "conformance `{c}`: rotated twice"
    );
    let revoked =
        keys.issue(NewKey::user("carol")).await.unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    store
        .revoke(&revoked.record.id, clock.now())
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: revoke failed: {e}"));
    assert!(
        matches!(store.rotate(&revoked.record.id, &spare, clock.now()).await, Err(StoreError::Conflict(_))),
        "conformance `{c}`: a revoked key"
    );
    assert!(
        matches!(store.rotate(&KeyId::random(), &spare, clock.now()).await, Err(StoreError::NotFound(_))),
        "conformance `{c}`: unknown id"
    );
    assert_eq!(store.get(&spare.id).await.ok().flatten(), None, "conformance `{c}`: a failed rotation stores nothing");
    // A successor whose id is taken: nothing changes.
    let taken = KeyRecord { id: revoked.record.id, ..spare.clone() };
    let fresh =
        keys.issue(NewKey::user("dave")).await.unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
    assert!(
        matches!(store.rotate(&fresh.record.id, &taken, clock.now()).await, Err(StoreError::Conflict(_))),
        "conformance `{c}`: successor id taken"
    );
    let r = store.get(&fresh.record.id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: gone"));
    assert_eq!(r.rotated_to, None, "conformance `{c}`: old key untouched after a failed rotation");
}

async fn all_ids<S: KeyStore + ?Sized>(store: &S, check: &str) -> Vec<KeyRecord> {
    every(store, ListQuery::new().limit(1000), check).await
}

/// Every record `query` matches, page after page.
async fn every<S: KeyStore + ?Sized>(store: &S, mut query: ListQuery, check: &str) -> Vec<KeyRecord> {
    let mut out = Vec::new();
    for _ in 0..10_000 {
        let page =
            store.list(&query, start()).await.unwrap_or_else(|e| panic!("conformance `{check}`: list failed: {e}"));
        out.extend(page.items);
        match page.next {
            Some(next) => query = query.after(next),
            None => return out,
        }
    }
    panic!("conformance `{check}`: listing never ends");
}

async fn concurrent_rotation<S: KeyStore>(store: S) {
    let c = "concurrent_rotation";
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let (keys, _) = manager(store.clone());
    for round in 0..10 {
        let old = keys
            .issue(NewKey::user(format!("u{round}")))
            .await
            .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (keys, id) = (keys.clone(), old.record.id);
            tasks.spawn(async move { keys.rotate(&id, Duration::from_secs(60)).await.map(|k| k.record.id) });
        }
        let mut winners = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap_or_else(|e| panic!("conformance `{c}`: task failed: {e}")) {
                Ok(id) => winners.push(id),
                Err(StoreError::Conflict(_)) => {}
                Err(e) => panic!("conformance `{c}`: a losing rotation must be a Conflict, got {e}"),
            }
        }
        assert_eq!(winners.len(), 1, "conformance `{c}`: exactly one of 8 concurrent rotations succeeds");
        let r = store.get(&old.record.id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: gone"));
        assert_eq!(r.rotated_to, Some(winners[0]), "conformance `{c}`: the winner is the successor");
    }
    let records = all_ids(&*store, c).await;
    assert_eq!(records.len(), 20, "conformance `{c}`: one successor per key, none orphaned");
}

async fn revoke_races_rotate<S: KeyStore>(store: S) {
    let c = "revoke_races_rotate";
    let store: Arc<dyn KeyStore> = Arc::new(store);
    let (keys, clock) = manager(store.clone());
    for round in 0..20 {
        let old = keys
            .issue(NewKey::user(format!("u{round}")))
            .await
            .unwrap_or_else(|e| panic!("conformance `{c}`: issue failed: {e}"));
        let id = old.record.id;
        let (a, b) = (keys.clone(), keys.clone());
        let revoke = tokio::spawn(async move { a.revoke(&id).await.map(|_| ()) });
        let rotate = tokio::spawn(async move { b.rotate(&id, Duration::from_secs(3600)).await.map(|k| k.record.id) });
        let revoked = revoke.await.unwrap_or_else(|e| panic!("conformance `{c}`: task failed: {e}"));
        revoked.unwrap_or_else(|e| panic!("conformance `{c}`: revoke failed: {e}"));
        match rotate.await.unwrap_or_else(|e| panic!("conformance `{c}`: task failed: {e}")) {
            Ok(_) | Err(StoreError::Conflict(_)) => {}
            Err(e) => panic!("conformance `{c}`: rotate failed with {e}"),
        }
        let r = store.get(&id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: gone"));
        assert_eq!(r.status_at(clock.now()), KeyStatus::Revoked, "conformance `{c}`: the key is revoked");
        if let Some(successor) = r.rotated_to {
            let s = store
                .get(&successor)
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("conformance `{c}`: successor gone"));
            assert_eq!(
                s.status_at(clock.now()),
                KeyStatus::Revoked,
                "conformance `{c}`: no active successor of a revoked key"
            );
        }
    }
    let records = all_ids(&*store, c).await;
    let rotated = records.iter().filter(|r| r.rotated_to.is_some()).count();
    assert_eq!(records.len(), 20 + rotated, "conformance `{c}`: no orphaned successor");
    assert!(records.iter().all(|r| r.revoked_at.is_some()), "conformance `{c}`: every key and successor revoked");
}

async fn listing<S: KeyStore>(store: S) {
    let c = "listing";
    // Ids chosen so that byte order differs from a locale collation: `B…` < `a…` < `b…` in bytes.
    let ids = ["BBBBBBBBBBBB", "aaaaaaaaaaaa", "bbbbbbbbbbbb", "ZZZZZZZZZZZZ", "000000000000", "zzzzzzzzzzzz"];
    let mut expected = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let id: KeyId = id.parse().expect("valid id");
        let owner = if i % 2 == 0 { "even" } else { "odd" };
        let kind = if i < 3 { KeyKind::User } else { KeyKind::System };
        let r = KeyRecord::new(id, KeyDigest::of(id.as_str().as_bytes()), kind, owner).with_created_at(start());
        store.insert(&r).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
        expected.insert(id);
    }
    for i in 0..19 {
        let r = opaque(format!("k{i}").as_bytes(), if i % 2 == 0 { "even" } else { "odd" });
        store.insert(&r).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
        expected.insert(r.id);
    }
    let revoked = *expected.iter().nth(7).unwrap_or_else(|| panic!("conformance `{c}`: 25 ids"));
    store.revoke(&revoked, start()).await.unwrap_or_else(|e| panic!("conformance `{c}`: revoke failed: {e}"));

    // Paging with a small page: every record once, in byte order.
    let mut seen = Vec::new();
    let mut query = ListQuery::new().limit(7);
    for _ in 0..1000 {
        let page = store.list(&query, start()).await.unwrap_or_else(|e| panic!("conformance `{c}`: list failed: {e}"));
        assert!(page.items.len() <= 7, "conformance `{c}`: a page holds at most its size");
        if page.items.len() == 7 || page.next.is_none() {
            // (A store may end a page early; when it returns a full page its cursor is the last item.)
            if let (Some(next), Some(last)) = (page.next, page.items.last()) {
                assert_eq!(next, last.id, "conformance `{c}`: the cursor is the last id of a full page");
            }
        }
        seen.extend(page.items.iter().map(|r| r.id));
        match page.next {
            Some(next) => query = query.after(next),
            None => break,
        }
    }
    let want: Vec<KeyId> = expected.iter().copied().collect();
    assert_eq!(
        seen, want,
        "conformance `{c}`: every id once, in byte order (B before a; see KeyStore::list on collations)"
    );

    // Filters.
    let odd = every(&store, ListQuery::new().owner("odd"), c).await;
    assert!(!odd.is_empty() && odd.iter().all(|r| r.owner == "odd"), "conformance `{c}`: owner filter");
    let systems = every(&store, ListQuery::new().kind(KeyKind::System), c).await;
    assert_eq!(systems.len(), 3, "conformance `{c}`: kind filter");
    let gone = every(&store, ListQuery::new().status(KeyStatus::Revoked), c).await;
    assert_eq!(gone.iter().map(|r| r.id).collect::<Vec<_>>(), [revoked], "conformance `{c}`: status filter");
}

async fn usage<S: KeyStore>(store: S) {
    let c = "usage";
    let r = opaque(b"used", "alice");
    store.insert(&r).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    let t1 = start() + Duration::from_secs(10);
    let t0 = start() + Duration::from_secs(5);
    let batch = [
        Usage::new(r.id, 3, t1),
        Usage::new(KeyId::random(), 1, t1), // unknown: skipped
    ];
    store.record_usage(&batch).await.unwrap_or_else(|e| panic!("conformance `{c}`: record_usage failed: {e}"));
    store
        .record_usage(&[Usage::new(r.id, 2, t0)])
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: record_usage failed: {e}"));
    let got = store.get(&r.id).await.ok().flatten().unwrap_or_else(|| panic!("conformance `{c}`: gone"));
    assert_eq!(got.usage_count, 5, "conformance `{c}`: counts add up");
    assert_eq!(got.last_used_at, Some(t1), "conformance `{c}`: last-used only moves forward");
}

async fn hourly_usage<S: KeyStore>(store: S) {
    let c = "hourly_usage";
    const HOUR: Duration = Duration::from_secs(3600);
    let record = |e: StoreError| panic!("conformance `{c}`: record_usage failed: {e}");
    let total = |r: Option<KeyRecord>| r.unwrap_or_else(|| panic!("conformance `{c}`: gone")).usage_count;
    let r = opaque(b"hourly", "alice");
    store.insert(&r).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    // The hour of the suite's start, and the one before it (both at the wall clock, so that no store prunes them).
    let now = Usage::hour_of(start());
    let before = now - HOUR;
    let unknown = KeyId::random();
    let batch = [
        Usage::new(r.id, 3, now + Duration::from_secs(10)),
        Usage::new(r.id, 2, before + Duration::from_secs(3599)),
        Usage::new(unknown, 9, now), // unknown: skipped
    ];
    store.record_usage(&batch).await.unwrap_or_else(record);
    let hours = match store.hourly_usage(&r.id, before).await {
        Ok(hours) => hours,
        Err(StoreError::Unsupported(_)) => {
            // No counts per hour: the totals still add up.
            assert_eq!(total(store.get(&r.id).await.ok().flatten()), 5, "conformance `{c}`: totals over two hours");
            return;
        }
        Err(e) => panic!("conformance `{c}`: hourly_usage failed: {e}"),
    };
    let h = |hour: SystemTime, count: u64| HourlyUsage { hour, count };
    assert_eq!(hours, [h(before, 2), h(now, 3)], "conformance `{c}`: one count per hour, oldest first");
    assert_eq!(total(store.get(&r.id).await.ok().flatten()), 5, "conformance `{c}`: the total is their sum");

    // A second flush to the same hour adds to it; `since` anywhere in an hour includes that hour.
    store.record_usage(&[Usage::new(r.id, 4, now + Duration::from_secs(20))]).await.unwrap_or_else(record);
    let id = r.id;
    let read = |since: SystemTime| {
        let store = &store;
        async move {
            store.hourly_usage(&id, since).await.unwrap_or_else(|e| panic!("conformance `{c}`: hourly_usage: {e}"))
        }
    };
    assert_eq!(read(before).await, [h(before, 2), h(now, 7)], "conformance `{c}`: a second flush adds up");
    assert_eq!(read(now).await, [h(now, 7)], "conformance `{c}`: since filters");
    assert_eq!(read(now + Duration::from_secs(1800)).await, [h(now, 7)], "conformance `{c}`: since within an hour");
    assert!(read(now + HOUR).await.is_empty(), "conformance `{c}`: since after the last hour");
    assert_eq!(read(UNIX_EPOCH).await.len(), 2, "conformance `{c}`: since long ago");
    assert_eq!(total(store.get(&r.id).await.ok().flatten()), 9, "conformance `{c}`: totals");
    let none = store.hourly_usage(&unknown, before).await;
    assert!(matches!(none.as_deref(), Ok([])), "conformance `{c}`: an unknown id has no hours, got {none:?}");

    // The hours kept: a window of USAGE_HOURS_KEPT hours that ends with the newest is whole.
    let oldest_kept = now - HOUR * (USAGE_HOURS_KEPT - 1);
    store.record_usage(&[Usage::new(r.id, 1, oldest_kept)]).await.unwrap_or_else(record);
    store.record_usage(&[Usage::new(r.id, 1, now)]).await.unwrap_or_else(record);
    assert_eq!(
        read(oldest_kept).await,
        [h(oldest_kept, 1), h(before, 2), h(now, 8)],
        "conformance `{c}`: USAGE_HOURS_KEPT hours are kept"
    );

    // Huge counts saturate: no error, and at least i64::MAX (a store may keep counts as signed 64-bit numbers).
    let busy = opaque(b"hourly-busy", "bob");
    store.insert(&busy).await.unwrap_or_else(|e| panic!("conformance `{c}`: insert failed: {e}"));
    let huge = [Usage::new(busy.id, u64::MAX, now), Usage::new(busy.id, u64::MAX - 1, now)];
    store.record_usage(&huge).await.unwrap_or_else(record);
    store.record_usage(&huge).await.unwrap_or_else(record);
    let floor = u64::try_from(i64::MAX).unwrap_or(u64::MAX);
    let hours = store
        .hourly_usage(&busy.id, now)
        .await
        .unwrap_or_else(|e| panic!("conformance `{c}`: hourly_usage failed: {e}"));
    assert!(
        matches!(hours.as_slice(), [one] if one.hour == now && one.count >= floor),
        "conformance `{c}`: counts saturate, got {hours:?}"
    );
    assert!(total(store.get(&busy.id).await.ok().flatten()) >= floor, "conformance `{c}`: totals saturate");
}
