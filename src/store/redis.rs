//! [`RedisStore`]: keys in Redis or Redis Cluster (feature `redis`).
//!
//! One type over either deployment: a single server through the `redis` crate's [`ConnectionManager`] (which
//! reconnects by itself), or a Redis Cluster through its [`ClusterConnection`]. Clones share the connection.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use tower_api_key::{ApiKeyLayer, KeyManager, NewKey, RedisStore};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379", RedisStore::DEFAULT_NAMESPACE).await?;
//! let keys = KeyManager::new(store.clone());
//! let issued = keys.issue(NewKey::user("alice")).await?; // shown once; Redis keeps its digest only
//! let layer = ApiKeyLayer::new(store);
//! # Ok(()) }
//! ```
//!
//! # Layout
//!
//! Every Redis key of a namespace `ns` starts with `{ns}:`:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `{ns}:key:<id>` | hash | one record, a field per column (below) |
//! | `{ns}:digest:<hex>` | string | opaque keys only: SHA-256 of the whole key (hex) → id |
//! | `{ns}:ids` | sorted set | every id, all scores 0, so `ZRANGEBYLEX` lists them in byte order |
//! | `{ns}:usage:<id>` | hash | the key's requests per UTC hour: start of the hour (decimal seconds since the Unix epoch) → count |
//!
//! Record fields: `id`, `digest` (hex SHA-256, never the key), `kind`, `owner`, `name`, `prefix` (keys of the crate's
//! format only), `scopes` and `metadata` (JSON), `created`, `expires`, `revoked`, `last_used` (decimal nanoseconds
//! since the Unix epoch: times round-trip exactly), `uses`, `enabled` (`1`/`0`), `rate` (`<requests>/<period in
//! nanoseconds>`), `rotated_to`. An absent optional value is an absent field. Times before 1970 are refused
//! ([`StoreError::Invalid`]).
//!
//! # One hash tag per namespace, and what that means on a cluster
//!
//! The braces make `ns` the **hash tag** of every key of the namespace, so Redis Cluster puts all of them in one
//! slot, on one node (and its replicas). That is what lets a single Lua script see and change several of them
//! atomically: a rotation writes the successor and changes the old record; an insert checks the opaque-digest index
//! and writes the record. The price, said plainly: one namespace does not spread over the cluster; its keys, and
//! the load of its lookups, sit on the node that owns its slot. The cluster still spreads everything else
//! (other namespaces, other data). Key records are small and a lookup is one `HGETALL`, so one node holds many
//! millions of keys; to spread the load, read from replicas or run several namespaces.
//!
//! # Atomic changes: one Lua script each
//!
//! Every change is one script (`EVALSHA`, loaded on first use and again after a server restart), so no other client
//! sees it half done and a refused change writes nothing:
//!
//! * insert: `Conflict` if the id, or for an opaque key the digest, is taken; else writes the record and both indexes;
//! * update: the semantics of [`KeyUpdate::apply`], including that a rotated key's grace can only shrink;
//! * revoke: the key and its whole `rotated_to` chain (`HSETNX`: a key already revoked keeps its earlier time);
//! * rotate: `NotFound`, `Conflict` (revoked, already rotated, successor id or digest taken), else stores the
//!   successor and sets the old record's `rotated_to` and its expiry to the earlier of its own and the grace end;
//! * record usage: one script call per batch (up to 4096 entries; a larger batch takes one call per 4096):
//!   saturating counts, to the key's total and to its hour; last-used only moves forward.
//!
//! A lookup is one round trip: `HGETALL` by id, or a read-only script that follows the digest index.
//!
//! # Expiry and TTLs
//!
//! A key with an expiry gets a Redis TTL: its record (and its digest index entry) is deleted
//! [`RedisStore::EXPIRED_RETENTION`] (one day) **after** it expires, so listings still show it as expired, or rotated
//! out, for a day, and then Redis frees the memory with no job to run. Removing the expiry removes the TTL. Revoked
//! keys follow the same rule: a revoked key without an expiry stays until it is deleted by hand. The status of a key
//! is always computed from its record and the clock, never from the TTL.
//!
//! The `{ns}:ids` index may keep ids whose record expired; listings skip them and remove them from the index.
//!
//! A key's counts per hour (`{ns}:usage:<id>`) get a TTL of [`USAGE_HOURS_KEPT`] + 1 hours at each write, so they
//! go away a week after the key's last use, whatever became of the key; a hash that holds more hours than that
//! loses those older than [`USAGE_HOURS_KEPT`] hours before its newest. Reading them back
//! ([`KeyStore::hourly_usage`]) is one `HGETALL`.
//!
//! # Listing
//!
//! `ZRANGEBYLEX` from the cursor, in chunks, each chunk one script call that returns the records with the ids.
//! A listing examines at most 10 000 ids per page: a filter that matches few keys among many gives a short page
//! with [`Page::next`] set (as [`KeyStore::list`] allows).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ::redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use ::redis::cluster::ClusterClient;
use ::redis::cluster_async::ClusterConnection;
use ::redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Script, ScriptInvocation, Value};
use async_trait::async_trait;

use super::change::{HourlyUsage, KeyUpdate, USAGE_HOURS_KEPT, Usage};
use super::contract::{KeyStore, Lookup, LookupResult, StoreError};
use super::list::{ListQuery, Page};
use crate::key::{KeyDigest, KeyId, KeyRecord, RateLimit, Scopes};

/// How many ids a listing examines at most before it ends its page early.
const LIST_SCAN_BUDGET: usize = 10_000;
/// Ids fetched per listing script call, at most.
const LIST_CHUNK: usize = 1000;
/// Usage entries per script call, at most.
const USAGE_CHUNK: usize = 4096;
/// Each attempt to connect gives up after this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A command that gets no answer within this long fails (the layer's own store timeout is usually shorter).
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts to reconnect (single server) or retries (cluster) before a call fails.
const RETRIES: u8 = 3;

const COMMON: &str = include_str!("redis/common.lua");

/// The scripts, each the common head followed by its body.
struct Scripts {
    insert: Script,
    update: Script,
    revoke: Script,
    rotate: Script,
    usage: Script,
    lookup_digest: Script,
    list: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let script = |body: &str| Script::new(&[COMMON, body].concat());
    Scripts {
        insert: script(include_str!("redis/insert.lua")),
        update: script(include_str!("redis/update.lua")),
        revoke: script(include_str!("redis/revoke.lua")),
        rotate: script(include_str!("redis/rotate.lua")),
        usage: script(include_str!("redis/usage.lua")),
        lookup_digest: script(include_str!("redis/lookup_digest.lua")),
        list: script(include_str!("redis/list.lua")),
    }
});

/// A connection to a single server or to a cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A [`KeyStore`] in Redis or Redis Cluster: atomic changes by Lua scripts, one namespace per hash tag, Redis TTLs
/// that follow each key's expiry. See the [module docs](self) for the layout.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_api_key::{KeyManager, NewKey, RedisStore};
/// let store = RedisStore::connect("redis://127.0.0.1:6379", "billing_keys").await?;
/// let issued = KeyManager::new(store).issue(NewKey::system("invoicing")).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    namespace: Arc<str>,
    /// `{ns}:`
    prefix: Arc<str>,
    /// `{ns}:ids`
    ids_key: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let deployment = match self.conn {
            Conn::Single(_) => "single",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("namespace", &self.namespace)
            .field("deployment", &deployment)
            .finish_non_exhaustive()
    }
}

/// Setting up a [`RedisStore`] failed.
///
/// ```
/// use tower_api_key::store::RedisStoreError;
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let err = tower_api_key::RedisStore::connect("redis://127.0.0.1:6379", "no spaces").await.unwrap_err();
/// assert!(matches!(err, RedisStoreError::InvalidNamespace));
/// # });
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedisStoreError {
    /// The namespace is not 1 to 64 characters of `A-Z`, `a-z`, `0-9`, `_`, `.`, `-`.
    #[error("invalid Redis namespace: use 1 to 64 characters of A-Z, a-z, 0-9, `_`, `.` and `-`")]
    InvalidNamespace,
    /// The URL is invalid or the server (or cluster) could not be reached; the source says why. The text never
    /// holds the URL, which may hold a password.
    #[error("could not connect to Redis")]
    Connect(#[source] RedisError),
}

impl RedisStore {
    /// The namespace to use when one set of keys per Redis is enough.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RedisStore::DEFAULT_NAMESPACE, "tower_api_key");
    /// ```
    pub const DEFAULT_NAMESPACE: &'static str = "tower_api_key";

    /// How long a key's record stays in Redis after it expires: one day. Listings show it as expired (or rotated
    /// out) during that day; then its TTL deletes it.
    ///
    /// ```
    /// assert_eq!(tower_api_key::RedisStore::EXPIRED_RETENTION.as_secs(), 86_400);
    /// ```
    pub const EXPIRED_RETENTION: Duration = Duration::from_secs(86_400);

    /// Connects to a single Redis server at `url` (`redis://[user:password@]host:port[/db]`, or `rediss://` with
    /// the `redis` crate's TLS features) and keeps the keys under `namespace`.
    ///
    /// Each connection attempt gives up after 2 s, a command after 5 s; after a lost connection the store
    /// reconnects by itself (3 attempts per failing call). For other settings build a [`ConnectionManager`] and
    /// use [`RedisStore::from_manager`].
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidNamespace`] (checked before connecting), [`RedisStoreError::Connect`] when the URL
    /// is invalid or the server cannot be reached.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::store::RedisStoreError> {
    /// let store = tower_api_key::RedisStore::connect("redis://127.0.0.1:6379", "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, RedisStoreError> {
        check_namespace(namespace)?;
        let client = ::redis::Client::open(url).map_err(RedisStoreError::Connect)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(usize::from(RETRIES))
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(client, config).await.map_err(RedisStoreError::Connect)?;
        Self::from_manager(manager, namespace)
    }

    /// Connects to a Redis Cluster through any of its nodes (`urls`, as for [`RedisStore::connect`]) and keeps
    /// the keys under `namespace`, all in the slot of the hash tag `{namespace}` (see the [module docs](self)).
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidNamespace`] (checked before connecting), [`RedisStoreError::Connect`] when a URL
    /// is invalid or no node can be reached.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::store::RedisStoreError> {
    /// let nodes = ["redis://10.0.0.1:6379", "redis://10.0.0.2:6379", "redis://10.0.0.3:6379"];
    /// let store = tower_api_key::RedisStore::connect_cluster(&nodes, "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect_cluster(urls: &[&str], namespace: &str) -> Result<Self, RedisStoreError> {
        check_namespace(namespace)?;
        let client = ClusterClient::builder(urls.iter().copied())
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(u32::from(RETRIES))
            .build()
            .map_err(RedisStoreError::Connect)?;
        let conn = client.get_async_connection().await.map_err(RedisStoreError::Connect)?;
        Self::from_cluster(conn, namespace)
    }

    /// A store over a [`ConnectionManager`] you configured yourself.
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidNamespace`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// use redis::aio::{ConnectionManager, ConnectionManagerConfig};
    /// let client = redis::Client::open("redis://127.0.0.1:6379")?;
    /// let config = ConnectionManagerConfig::new().set_number_of_retries(10);
    /// let manager = ConnectionManager::new_with_config(client, config).await?;
    /// let store = tower_api_key::RedisStore::from_manager(manager, "tower_api_key")?;
    /// # Ok(()) }
    /// ```
    pub fn from_manager(manager: ConnectionManager, namespace: &str) -> Result<Self, RedisStoreError> {
        Self::with(Conn::Single(manager), namespace)
    }

    /// A store over a cluster connection you configured yourself.
    ///
    /// # Errors
    /// [`RedisStoreError::InvalidNamespace`].
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
    /// let client = redis::cluster::ClusterClient::builder(["redis://10.0.0.1:6379"]).read_from_replicas().build()?;
    /// let conn = client.get_async_connection().await?;
    /// let store = tower_api_key::RedisStore::from_cluster(conn, "tower_api_key")?;
    /// # Ok(()) }
    /// ```
    pub fn from_cluster(conn: ClusterConnection, namespace: &str) -> Result<Self, RedisStoreError> {
        Self::with(Conn::Cluster(conn), namespace)
    }

    fn with(conn: Conn, namespace: &str) -> Result<Self, RedisStoreError> {
        check_namespace(namespace)?;
        Ok(Self {
            conn,
            namespace: namespace.into(),
            prefix: format!("{{{namespace}}}:").into(),
            ids_key: format!("{{{namespace}}}:ids").into(),
        })
    }

    /// The namespace this store keeps its keys under.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), tower_api_key::store::RedisStoreError> {
    /// let store = tower_api_key::RedisStore::connect("redis://127.0.0.1:6379", "billing").await?;
    /// assert_eq!(store.namespace(), "billing");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    fn record_key(&self, id: &KeyId) -> String {
        format!("{}key:{id}", self.prefix)
    }

    fn usage_key(&self, id: &KeyId) -> String {
        format!("{}usage:{id}", self.prefix)
    }

    /// A call of `script` with the arguments every script takes (the id index, the prefix, the retention).
    fn call(&self, script: &'static Script) -> ScriptInvocation<'static> {
        let mut call = script.key(&*self.ids_key);
        call.arg(&*self.prefix).arg(RETENTION_MS);
        call
    }

    async fn run<T: FromRedisValue>(&self, call: &ScriptInvocation<'_>, id: Option<&KeyId>) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        call.invoke_async(&mut conn).await.map_err(|e| script_error(e, id))
    }

    async fn fields(&self, id: &KeyId) -> Result<HashMap<String, String>, StoreError> {
        let mut conn = self.conn.clone();
        ::redis::cmd("HGETALL").arg(self.record_key(id)).query_async(&mut conn).await.map_err(StoreError::backend)
    }
}

/// [`RedisStore::EXPIRED_RETENTION`] in milliseconds.
const RETENTION_MS: u64 = RedisStore::EXPIRED_RETENTION.as_secs() * 1000;

fn check_namespace(ns: &str) -> Result<(), RedisStoreError> {
    let ok = (1..=64).contains(&ns.len()) && ns.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if ok { Ok(()) } else { Err(RedisStoreError::InvalidNamespace) }
}

/// Maps a script's refusal (`NOTFOUND`, `CONFLICT <what>`) to its [`StoreError`]; anything else is a backend error.
fn script_error(err: RedisError, id: Option<&KeyId>) -> StoreError {
    match (err.code(), id) {
        (Some("NOTFOUND"), Some(id)) => StoreError::NotFound(*id),
        (Some("CONFLICT"), _) => StoreError::Conflict(match err.detail().map(str::trim) {
            Some("id") => "a key with this id exists",
            Some("digest") => "this key is already stored",
            Some("revoked") => "a revoked key cannot be rotated",
            Some("rotated") => "this key was already rotated",
            _ => "the key's state does not allow this change",
        }),
        _ => StoreError::backend(err),
    }
}

/// A stored record could not be read back; names the field, never its value.
#[derive(Debug, thiserror::Error)]
#[error("a stored key record has a missing or unreadable `{0}` field")]
struct CorruptRecord(&'static str);

fn corrupt(field: &'static str) -> StoreError {
    StoreError::backend(CorruptRecord(field))
}

/// Decimal nanoseconds since the Unix epoch.
fn nanos(t: SystemTime) -> Result<String, StoreError> {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos().to_string())
        .map_err(|_| StoreError::Invalid("a time before 1970 cannot be stored in Redis"))
}

/// The start of the hour that holds `t`, in decimal seconds since the Unix epoch.
fn hour_secs(t: SystemTime) -> Result<String, StoreError> {
    Usage::hour_of(t)
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs().to_string())
        .map_err(|_| StoreError::Invalid("a time before 1970 cannot be stored in Redis"))
}

fn time(field: &'static str, text: &str) -> Result<SystemTime, StoreError> {
    let n: u128 = text.parse().map_err(|_| corrupt(field))?;
    let secs = u64::try_from(n / 1_000_000_000).map_err(|_| corrupt(field))?;
    let sub = u32::try_from(n % 1_000_000_000).map_err(|_| corrupt(field))?;
    UNIX_EPOCH.checked_add(Duration::new(secs, sub)).ok_or_else(|| corrupt(field))
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(StoreError::backend)
}

fn rate_text(limit: &RateLimit) -> String {
    format!("{}/{}", limit.requests(), limit.period().as_nanos())
}

fn flag(on: bool) -> String {
    if on { "1" } else { "0" }.to_owned()
}

/// The record as hash fields (see the module docs).
fn to_fields(r: &KeyRecord) -> Result<Vec<(&'static str, String)>, StoreError> {
    let mut f = vec![
        ("id", r.id.to_string()),
        ("digest", r.digest.to_hex()),
        ("kind", r.kind.as_str().to_owned()),
        ("owner", r.owner.clone()),
        ("name", r.name.clone()),
        ("scopes", json(&r.scopes)?),
        ("created", nanos(r.created_at)?),
        ("uses", r.usage_count.to_string()),
        ("enabled", flag(r.enabled)),
    ];
    if let Some(p) = &r.prefix {
        f.push(("prefix", p.clone()));
    }
    for (name, t) in [("expires", r.expires_at), ("revoked", r.revoked_at), ("last_used", r.last_used_at)] {
        if let Some(t) = t {
            f.push((name, nanos(t)?));
        }
    }
    if let Some(limit) = &r.rate_limit {
        f.push(("rate", rate_text(limit)));
    }
    if !r.metadata.is_empty() {
        f.push(("metadata", json(&r.metadata)?));
    }
    if let Some(to) = r.rotated_to {
        f.push(("rotated_to", to.to_string()));
    }
    Ok(f)
}

/// The record from its hash fields; `None` for no fields (no such record).
fn from_fields(mut f: HashMap<String, String>) -> Result<Option<KeyRecord>, StoreError> {
    if f.is_empty() {
        return Ok(None);
    }
    let mut take = |name: &'static str| f.remove(name);
    let need = |v: Option<String>, name: &'static str| v.ok_or_else(|| corrupt(name));
    let opt_time = |v: Option<String>, name: &'static str| v.map(|t| time(name, &t)).transpose();

    let id = need(take("id"), "id")?.parse().map_err(|_| corrupt("id"))?;
    let digest = KeyDigest::from_hex(&need(take("digest"), "digest")?).map_err(|_| corrupt("digest"))?;
    let kind = need(take("kind"), "kind")?.parse().map_err(|_| corrupt("kind"))?;
    let owner = need(take("owner"), "owner")?;
    let name = take("name").unwrap_or_default();
    let prefix = take("prefix");
    let scopes = match take("scopes") {
        Some(s) => serde_json::from_str::<Scopes>(&s).map_err(|_| corrupt("scopes"))?,
        None => Scopes::default(),
    };
    let created_at = time("created", &need(take("created"), "created")?)?;
    let expires_at = opt_time(take("expires"), "expires")?;
    let revoked_at = opt_time(take("revoked"), "revoked")?;
    let last_used_at = opt_time(take("last_used"), "last_used")?;
    let usage_count = match take("uses") {
        Some(n) => n.parse().map_err(|_| corrupt("uses"))?,
        None => 0,
    };
    let enabled = match take("enabled").as_deref() {
        None | Some("1") => true,
        Some("0") => false,
        Some(_) => return Err(corrupt("enabled")),
    };
    let rate_limit = take("rate")
        .map(|text| {
            let (n, period) = text.split_once('/').ok_or_else(|| corrupt("rate"))?;
            let n = n.parse().map_err(|_| corrupt("rate"))?;
            let period: u128 = period.parse().map_err(|_| corrupt("rate"))?;
            let period = Duration::new(
                u64::try_from(period / 1_000_000_000).map_err(|_| corrupt("rate"))?,
                u32::try_from(period % 1_000_000_000).map_err(|_| corrupt("rate"))?,
            );
            RateLimit::new(n, period).ok_or_else(|| corrupt("rate"))
        })
        .transpose()?;
    let metadata = match take("metadata") {
        Some(m) => serde_json::from_str::<BTreeMap<String, String>>(&m).map_err(|_| corrupt("metadata"))?,
        None => BTreeMap::new(),
    };
    let rotated_to = take("rotated_to").map(|t| t.parse().map_err(|_| corrupt("rotated_to"))).transpose()?;
    Ok(Some(KeyRecord {
        id,
        digest,
        kind,
        owner,
        name,
        prefix,
        scopes,
        created_at,
        expires_at,
        revoked_at,
        last_used_at,
        usage_count,
        enabled,
        rate_limit,
        metadata,
        rotated_to,
    }))
}

/// A script's answer that must be a record.
fn changed(fields: HashMap<String, String>, id: &KeyId) -> Result<KeyRecord, StoreError> {
    from_fields(fields)?.ok_or(StoreError::NotFound(*id))
}

/// The digest to index for `record`: its hex for an opaque key, `""` for one of the crate's format.
fn indexed_digest(record: &KeyRecord) -> String {
    if record.is_formatted() { String::new() } else { record.digest.to_hex() }
}

fn push_fields(call: &mut ScriptInvocation<'_>, fields: &[(&'static str, String)]) {
    for (name, value) in fields {
        call.arg(*name).arg(value.as_str());
    }
}

#[async_trait]
impl KeyStore for RedisStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        let record = match by {
            Lookup::Id(id) => from_fields(self.fields(id).await?)?.filter(KeyRecord::is_formatted),
            Lookup::Digest(digest) => {
                let mut call = self.call(&SCRIPTS.lookup_digest);
                call.arg(digest.to_hex());
                let fields = self.run(&call, None).await?;
                from_fields(fields)?.filter(|r| !r.is_formatted() && r.digest == *digest)
            }
        };
        Ok(record.map(Arc::new))
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        from_fields(self.fields(id).await?)
    }

    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let fields = to_fields(record)?;
        let mut call = self.call(&SCRIPTS.insert);
        call.arg(record.id.as_str()).arg(indexed_digest(record));
        push_fields(&mut call, &fields);
        self.run::<i64>(&call, Some(&record.id)).await.map(drop)
    }

    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        let size = query.page_size();
        let chunk = (size + 1).clamp(100, LIST_CHUNK);
        let mut items: Vec<KeyRecord> = Vec::new();
        let mut last_seen = query.after;
        let mut examined = 0;
        loop {
            let want = chunk.min(LIST_SCAN_BUDGET - examined);
            if want == 0 {
                // Bounded work: end the page here; the caller continues from the last id examined.
                return Ok(Page { items, next: last_seen });
            }
            let start = last_seen.map_or_else(|| "-".to_owned(), |id| format!("({id}"));
            let mut call = self.call(&SCRIPTS.list);
            call.arg(start).arg(want);
            let reply: Vec<Value> = self.run(&call, None).await?;
            let got = reply.len() / 2;
            let mut reply = reply.into_iter();
            while let (Some(id), Some(fields)) = (reply.next(), reply.next()) {
                examined += 1;
                let id: String = ::redis::from_redis_value(id).map_err(StoreError::backend)?;
                last_seen = Some(id.parse().map_err(|_| corrupt("id"))?);
                let fields = ::redis::from_redis_value(fields).map_err(StoreError::backend)?;
                let Some(record) = from_fields(fields)? else { continue };
                if !query.matches(&record, now) {
                    continue;
                }
                if items.len() == size {
                    let next = items.last().map(|r| r.id);
                    return Ok(Page { items, next });
                }
                items.push(record);
            }
            if got < want {
                return Ok(Page { items, next: None });
            }
        }
    }

    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        let expiry = match update.expires_at {
            None => String::new(),
            Some(None) => "-".to_owned(),
            Some(Some(t)) => nanos(t)?,
        };
        let mut set: Vec<(&'static str, String)> = Vec::new();
        let mut delete: Vec<&'static str> = Vec::new();
        if let Some(name) = &update.name {
            set.push(("name", name.clone()));
        }
        if let Some(scopes) = &update.scopes {
            set.push(("scopes", json(scopes)?));
        }
        match &update.metadata {
            Some(m) if m.is_empty() => delete.push("metadata"),
            Some(m) => set.push(("metadata", json(m)?)),
            None => {}
        }
        if let Some(on) = update.enabled {
            set.push(("enabled", flag(on)));
        }
        match &update.rate_limit {
            Some(Some(limit)) => set.push(("rate", rate_text(limit))),
            Some(None) => delete.push("rate"),
            None => {}
        }
        let mut call = self.call(&SCRIPTS.update);
        call.arg(id.as_str()).arg(expiry).arg(set.len());
        push_fields(&mut call, &set);
        for field in delete {
            call.arg(field);
        }
        changed(self.run(&call, Some(id)).await?, id)
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let mut call = self.call(&SCRIPTS.revoke);
        call.arg(id.as_str()).arg(nanos(at)?);
        changed(self.run(&call, Some(id)).await?, id)
    }

    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let fields = to_fields(successor)?;
        let mut call = self.call(&SCRIPTS.rotate);
        call.arg(id.as_str()).arg(nanos(grace_end)?).arg(successor.id.as_str()).arg(indexed_digest(successor));
        push_fields(&mut call, &fields);
        changed(self.run(&call, Some(id)).await?, id)
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        for batch in usage.chunks(USAGE_CHUNK) {
            let mut call = self.call(&SCRIPTS.usage);
            call.arg(USAGE_HOURS_KEPT);
            for u in batch {
                call.arg(u.id.as_str()).arg(u.count).arg(nanos(u.last_used)?).arg(hour_secs(u.hour)?);
            }
            self.run::<i64>(&call, None).await?;
        }
        Ok(())
    }

    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        let since = Usage::hour_of(since).duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = ::redis::cmd("HGETALL")
            .arg(self.usage_key(id))
            .query_async(&mut conn)
            .await
            .map_err(StoreError::backend)?;
        let mut hours = Vec::with_capacity(fields.len());
        for (hour, count) in fields {
            let hour: u64 = hour.parse().map_err(|_| corrupt("usage hour"))?;
            if hour >= since {
                let count = count.parse().map_err(|_| corrupt("usage count"))?;
                hours.push(HourlyUsage { hour: UNIX_EPOCH + Duration::from_secs(hour), count });
            }
        }
        hours.sort_unstable_by_key(|h| h.hour);
        Ok(hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::KeyKind;

    #[test]
    fn namespaces_are_checked() {
        for ok in ["a", "tower_api_key", "A-b.c_9", &"x".repeat(64)] {
            assert!(check_namespace(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a b", "{a}", "a:b", "é", &"x".repeat(65)] {
            assert!(matches!(check_namespace(bad), Err(RedisStoreError::InvalidNamespace)), "{bad}");
        }
    }

    #[test]
    fn records_round_trip_through_hash_fields_exactly() {
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
        let far = UNIX_EPOCH + crate::key::MAX_EXPIRY_SINCE_EPOCH;
        let full = KeyRecord {
            prefix: Some("tak_user".into()),
            expires_at: Some(far),
            revoked_at: Some(t),
            last_used_at: Some(UNIX_EPOCH),
            usage_count: u64::MAX,
            enabled: false,
            rate_limit: RateLimit::new(7, Duration::from_millis(1500)),
            rotated_to: Some(KeyId::random()),
            ..KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::System, "svc")
                .with_name("n")
                .with_scopes(["a", "b:*"])
                .expect("valid")
                .with_metadata("team", "core \"quoted\"")
                .with_created_at(t)
        };
        let bare = KeyRecord::new(KeyId::random(), KeyDigest::of(b"o"), KeyKind::User, "u").with_created_at(t);
        for r in [full, bare] {
            let map = to_fields(&r).expect("encodes").into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
            assert_eq!(from_fields(map).expect("decodes"), Some(r));
        }
        assert_eq!(from_fields(HashMap::new()).expect("empty"), None);
    }

    #[test]
    fn unreadable_fields_are_backend_errors_that_name_the_field_only() {
        let r = KeyRecord::new(KeyId::random(), KeyDigest::of(b"k"), KeyKind::User, "u");
        let mut map: HashMap<String, String> =
            to_fields(&r).expect("encodes").into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        map.insert("created".into(), "secret-looking-value".into());
        let err = from_fields(map).expect_err("corrupt");
        let source = std::error::Error::source(&err).expect("source").to_string();
        assert!(source.contains("`created`") && !source.contains("secret"), "{source}");
    }

    #[test]
    fn times_before_1970_are_refused() {
        let early = UNIX_EPOCH - Duration::from_secs(1);
        assert!(matches!(nanos(early), Err(StoreError::Invalid(_))));
        assert!(matches!(hour_secs(early), Err(StoreError::Invalid(_))));
        assert_eq!(nanos(UNIX_EPOCH).expect("epoch"), "0");
        assert_eq!(hour_secs(UNIX_EPOCH + Duration::new(7199, 1)).expect("an hour"), "3600");
    }
}
