//! [`PostgresStore`]: keys in PostgreSQL (feature `postgres`), through a pooled [`sqlx`] connection.
//!
//! Many instances behind a load balancer share one database: a revocation or rotation on one is what every other
//! instance reads on its next lookup. Several deployments can share one database too: each store lives in its own
//! **namespace**, a PostgreSQL schema (default [`PostgresStore::DEFAULT_NAMESPACE`], `tower_api_key`).
//!
//! # Setup
//!
//! ```no_run
//! use tower_api_key::{ApiKeyLayer, KeyManager, NewKey, PostgresStore};
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // Connects (a pool of sqlx's default size) and creates the schema and table if they are missing.
//! let store = PostgresStore::connect("postgres://app@db.internal/app", "tower_api_key").await?;
//! let keys = KeyManager::new(store.clone());
//! let issued = keys.issue(NewKey::user("alice")).await?;
//! let layer = ApiKeyLayer::new(store);
//! # Ok(()) }
//! ```
//!
//! * **Pool.** [`PostgresStore::connect`] opens a [`PgPool`] with sqlx's defaults (10 connections, 30 s to
//!   acquire one); to size it yourself, build the pool with [`sqlx::postgres::PgPoolOptions`] and hand it to
//!   [`PostgresStore::new`]. One pool can serve many stores (namespaces). Clones of a store share its pool. Every
//!   statement names its table with the schema, so the connection's `search_path` does not matter.
//! * **Migrations.** [`PostgresStore::connect`] runs [`PostgresStore::migrate`]; [`PostgresStore::new`] does
//!   not touch the database. `migrate` runs the SQL below (each statement `IF NOT EXISTS`) in one transaction,
//!   under a transaction-scoped advisory lock per namespace, so instances that start together do not race, and
//!   running it again changes nothing. The same SQL brings a namespace created by an earlier version up to date
//!   (version 2 adds the table of counts per hour); `schema_version` lists the versions applied. The role needs the `CREATE` privilege on the database for it; a role
//!   without it can use [`PostgresStore::new`] on a schema an administrator created with this SQL. (sqlx's
//!   `migrate!` cannot take the schema name as a parameter, hence SQL of the crate's own.)
//! * **Namespace.** An SQL identifier: `[a-z_][a-z0-9_]{0,62}`, not starting with `pg_` (PostgreSQL reserves those
//!   schemas). Anything else is refused with [`StoreError::Invalid`] before any SQL is built from it; it is also
//!   always written double-quoted, so a reserved word such as `user` works.
//! * **Collation.** `id` is `COLLATE "C"`: listings order by id in byte order (`B` before `a`), which the cursor
//!   of [`KeyStore::list`] relies on. A locale collation (`en_US.UTF-8`) would skip or repeat keys between pages.
//!
//! # The SQL it creates
//!
//! `{schema}` is the namespace.
//!
//! ```sql
#![doc = include_str!("postgres/schema.sql")]
//! ```
//!
//! # Representation
//!
//! * **Times** are `timestamptz`, so they read as times in `psql` and compare with `now()`. They are converted
//!   exactly, in the crate: PostgreSQL sends a `timestamptz` as microseconds since 2000-01-01 in binary, which maps
//!   to and from `SystemTime` without the `time` or `chrono` crates (no sqlx feature added). Precision is one
//!   microsecond; a `SystemTime` is rounded down to it, which keeps every "now ≥ expiry" comparison as exact as
//!   the stored time allows. Times outside PostgreSQL's range (4714 BC to 294276 AD) are refused as
//!   [`StoreError::Invalid`].
//! * **Usage counts** are `bigint`: a `u64` beyond `i64::MAX` is written as `i64::MAX`, and additions saturate there;
//!   the same for the counts per hour in `<namespace>.api_key_usage`, one row per key and hour (its start, a
//!   `timestamptz`), which a key's deletion deletes too (`ON DELETE CASCADE`).
//! * **Rate limits** are `requests` (1 to 2³² − 1) and `period` in nanoseconds (exact for a `Duration` up to 292
//!   years; a longer one is refused as [`StoreError::Invalid`]).
//! * **Metadata** is `jsonb`, an object of strings. Text holding a NUL character (PostgreSQL cannot store one) is
//!   refused as [`StoreError::Invalid`].
//!
//! # How each primitive keeps its contract
//!
//! | primitive | SQL |
//! |---|---|
//! | `lookup` | one indexed `SELECT`: by primary key (`prefix IS NOT NULL`) or by the partial unique index on `digest` (`prefix IS NULL`) |
//! | `insert` | one `INSERT`; a unique violation (the id, or an opaque key's digest) is [`StoreError::Conflict`] |
//! | `update` | one `UPDATE … RETURNING`; a rotated key's expiry goes through `LEAST`, so its grace can only shrink |
//! | `revoke` | a transaction: one `UPDATE` of the key and its whole `rotated_to` chain (recursive CTE), repeated from the chain's new end if a rotation committed meanwhile; an earlier `revoked_at` is kept |
//! | `rotate` | a transaction: `SELECT … FOR UPDATE` of the old row, checks, `INSERT` of the successor, `UPDATE` of the old row |
//! | `list` | one `SELECT`: owner filter by index, at most a scan budget of rows examined (10 000 by default), kind and status (computed from `now` in SQL) filtered among them, `LIMIT page + 1` |
//! | `record_usage` | one statement per batch over `UNNEST(ids, counts, times, hours)`: an `UPDATE` of the keys' totals (rows locked in id order), an `INSERT … ON CONFLICT (id, hour) DO UPDATE` that adds to their hours, and a `DELETE` of the hours older than [`USAGE_HOURS_KEPT`] before the earlier of the newest hour written and `now()` |
//! | `hourly_usage` | one indexed `SELECT` of the key's hours at or after `since`, by primary key |
//!
//! A deadlock or serialization failure (SQLSTATE `40P01`, `40001`) in `revoke`, `rotate` or `record_usage` is
//! retried, twice at most; each attempt is a whole transaction, so a retry never repeats half a change.
//!
//! # Errors and secrets
//!
//! Driver failures are [`StoreError::Backend`] with the sqlx error as the source, except errors PostgreSQL
//! returns, which become a [`PostgresError::Database`]: its SQLSTATE, message and constraint, **without** the
//! `DETAIL` line, which can quote a row (a digest). No statement carries key material but the digest, which is
//! bound as a parameter and so never appears in sqlx's statement log.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use sqlx::encode::IsNull;
use sqlx::error::BoxDynError;
use sqlx::postgres::types::Oid;
use sqlx::postgres::{
    PgArgumentBuffer, PgHasArrayType, PgPool, PgPoolOptions, PgRow, PgTypeInfo, PgValueFormat, PgValueRef,
};
use sqlx::{Decode, Encode, Postgres, Row, Type};

use super::change::{HourlyUsage, KeyUpdate, USAGE_HOURS_KEPT, Usage};
use super::contract::{KeyStore, Lookup, LookupResult, StoreError};
use super::list::{ListQuery, Page};
use crate::key::{KeyDigest, KeyId, KeyRecord, KeyStatus, RateLimit, Scopes};

/// The SQL that creates a namespace; `{schema}` stands for it.
const SCHEMA_SQL: &str = include_str!("postgres/schema.sql");

/// How many rows one listing examines at most before it ends its page early.
const DEFAULT_LIST_SCAN_BUDGET: usize = 10_000;

/// How many statements one revocation runs at most, following a chain that concurrent rotations extend.
const MAX_CHAIN_STEPS: usize = 1_000;

/// How many times a statement that lost a deadlock or a serialization conflict is tried in all.
const ATTEMPTS: usize = 3;

/// The columns of a record, from the table aliased `k`.
const COLUMNS: &str = "k.id, k.digest, k.prefix, k.kind, k.owner, k.name, k.scopes, k.created_at, k.expires_at, \
     k.revoked_at, k.last_used_at, k.usage_count, k.enabled, k.rate_requests, k.rate_period_ns, \
     k.metadata::text AS metadata, k.rotated_to";

/// A [`KeyStore`] over PostgreSQL: one row per key in `<namespace>.api_keys` (and its counts per hour in
/// `<namespace>.api_key_usage`), shared by every instance that connects to the same database and namespace.
/// Clones share the pool.
///
/// See the [module docs](self) for the SQL it creates, the namespace and how each primitive stays atomic.
///
/// ```no_run
/// use tower_api_key::{ApiKeyLayer, PostgresStore};
/// # async fn run() -> Result<(), tower_api_key::StoreError> {
/// let store = PostgresStore::connect("postgres://app@127.0.0.1/app", "billing_keys").await?;
/// let layer = ApiKeyLayer::new(store);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    pool: PgPool,
    sql: Arc<Statements>,
    list_scan_budget: usize,
}

impl fmt::Debug for PostgresStore {
    // Not the pool: its options hold the connection URL's password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("namespace", &self.sql.namespace)
            .field("connections", &self.pool.size())
            .field("idle", &self.pool.num_idle())
            .field("list_scan_budget", &self.list_scan_budget)
            .finish()
    }
}

impl PostgresStore {
    /// The namespace (PostgreSQL schema) of a store that is not told otherwise: `tower_api_key`.
    ///
    /// ```
    /// assert_eq!(tower_api_key::PostgresStore::DEFAULT_NAMESPACE, "tower_api_key");
    /// ```
    pub const DEFAULT_NAMESPACE: &'static str = "tower_api_key";

    /// Connects to the database at `url`, with a pool of sqlx's default options, and runs
    /// [`PostgresStore::migrate`] for `namespace`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a namespace that is not `[a-z_][a-z0-9_]{0,62}` (or starts with `pg_`), checked
    /// before connecting; [`StoreError::Backend`] when the database cannot be reached or the migration fails.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), tower_api_key::StoreError> {
    /// let store = tower_api_key::PostgresStore::connect("postgres://app@127.0.0.1/app", "tower_api_key").await?;
    /// # Ok(()) }
    /// ```
    pub async fn connect(url: &str, namespace: &str) -> Result<Self, StoreError> {
        check_namespace(namespace)?;
        let pool = PgPoolOptions::new().connect(url).await.map_err(backend)?;
        let store = Self::new(pool, namespace)?;
        store.migrate().await?;
        Ok(store)
    }

    /// A store over `pool` in `namespace`. Touches nothing in the database: call [`PostgresStore::migrate`] once
    /// (or have the schema created beforehand) before using it.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for a namespace that is not `[a-z_][a-z0-9_]{0,62}` or starts with `pg_`.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use sqlx::postgres::PgPoolOptions;
    /// use tower_api_key::PostgresStore;
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// let pool = PgPoolOptions::new()
    ///     .max_connections(20)
    ///     .acquire_timeout(Duration::from_secs(2))
    ///     .connect("postgres://app@127.0.0.1/app")
    ///     .await?;
    /// let store = PostgresStore::new(pool, PostgresStore::DEFAULT_NAMESPACE)?;
    /// store.migrate().await?;
    /// assert!(PostgresStore::new(store.pool().clone(), "Not-An-Identifier").is_err());
    /// # Ok(()) }
    /// ```
    pub fn new(pool: PgPool, namespace: &str) -> Result<Self, StoreError> {
        check_namespace(namespace)?;
        Ok(Self { pool, sql: Arc::new(Statements::new(namespace)), list_scan_budget: DEFAULT_LIST_SCAN_BUDGET })
    }

    /// How many rows one [`KeyStore::list`] call examines at most (default 10 000, at least the largest page plus
    /// one). A listing whose filters match few of them ends its page early, with a cursor to go on from.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool) -> Result<(), tower_api_key::StoreError> {
    /// let store = tower_api_key::PostgresStore::new(pool, "tower_api_key")?.list_scan_budget(2_000);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn list_scan_budget(mut self, rows: usize) -> Self {
        self.list_scan_budget = rows.max(super::list::MAX_PAGE + 1);
        self
    }

    /// Creates the namespace's schema and tables if they are missing (the SQL in the [module docs](self)): one
    /// transaction, under an advisory lock, so concurrent calls from instances starting together are safe and a
    /// second call changes nothing.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the database fails or the role may not create the schema.
    ///
    /// ```no_run
    /// # async fn run(pool: sqlx::PgPool) -> Result<(), tower_api_key::StoreError> {
    /// let store = tower_api_key::PostgresStore::new(pool, "tower_api_key")?;
    /// store.migrate().await?;
    /// store.migrate().await?; // idempotent
    /// # Ok(()) }
    /// ```
    pub async fn migrate(&self) -> Result<(), StoreError> {
        // One simple-protocol message: PostgreSQL runs its statements as one implicit transaction, which the
        // advisory lock (taken first) serializes with other instances' and which a failure rolls back whole.
        sqlx::raw_sql(&self.sql.migrate).execute(&self.pool).await.map_err(backend)?;
        Ok(())
    }

    /// The pool, to share it or to close it.
    ///
    /// ```no_run
    /// # async fn run(store: tower_api_key::PostgresStore) {
    /// store.pool().close().await;
    /// # }
    /// ```
    #[must_use]
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The namespace: the PostgreSQL schema that holds this store's table.
    ///
    /// ```no_run
    /// # fn run(pool: sqlx::PgPool) -> Result<(), tower_api_key::StoreError> {
    /// let store = tower_api_key::PostgresStore::new(pool, "billing_keys")?;
    /// assert_eq!(store.namespace(), "billing_keys");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn namespace(&self) -> &str {
        &self.sql.namespace
    }

    async fn fetch_one_record(&self, sql: &str, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(sql).bind(id.as_str()).fetch_optional(&self.pool).await.map_err(backend)?;
        row.as_ref().map(record_from_row).transpose()
    }

    async fn revoke_once(&self, id: &KeyId, at: PgTime) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let mut target = None;
        let mut revoked = HashSet::new();
        let mut from = *id;
        // One statement revokes the chain as this transaction sees it. A rotation that committed while the
        // statement waited for a row's lock shows in that row's returned `rotated_to`: go on from there. A later
        // rotation of a revoked row waits for this transaction, then finds the row revoked and fails.
        for _ in 0..MAX_CHAIN_STEPS {
            let rows = sqlx::query(&self.sql.revoke_chain)
                .bind(from.as_str())
                .bind(at)
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?;
            let records = rows.iter().map(record_from_row).collect::<Result<Vec<_>, _>>()?;
            revoked.extend(records.iter().map(|r| r.id));
            if target.is_none() {
                target = Some(records.iter().find(|r| r.id == *id).cloned().ok_or(StoreError::NotFound(*id))?);
            }
            match records.iter().filter_map(|r| r.rotated_to).find(|next| !revoked.contains(next)) {
                Some(next) => from = next,
                None => break,
            }
        }
        tx.commit().await.map_err(backend)?;
        target.ok_or(StoreError::NotFound(*id))
    }

    async fn rotate_once(
        &self,
        id: &KeyId,
        successor: &RecordParams<'_>,
        grace_end: PgTime,
    ) -> Result<KeyRecord, StoreError> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        let state = sqlx::query(&self.sql.lock_for_rotate)
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound(*id))?;
        let (revoked, rotated): (bool, bool) = (column(&state, "revoked")?, column(&state, "rotated")?);
        if revoked {
            return Err(StoreError::Conflict("a revoked key cannot be rotated"));
        }
        if rotated {
            return Err(StoreError::Conflict("this key was already rotated"));
        }
        successor.insert(&self.sql.insert).execute(&mut *tx).await.map_err(insert_error)?;
        let row = sqlx::query(&self.sql.finish_rotate)
            .bind(id.as_str())
            .bind(successor.record.id.as_str())
            .bind(grace_end)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?;
        let old = record_from_row(&row)?;
        tx.commit().await.map_err(backend)?;
        Ok(old)
    }

    async fn record_usage_once(
        &self,
        ids: &[&str],
        counts: &[i64],
        times: &[PgTime],
        hours: &[PgTime],
    ) -> Result<(), StoreError> {
        sqlx::query(&self.sql.record_usage)
            .bind(ids)
            .bind(counts)
            .bind(times)
            .bind(hours)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }
}

#[async_trait]
impl KeyStore for PostgresStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        let row = match by {
            Lookup::Id(id) => sqlx::query(&self.sql.lookup_id).bind(id.as_str()).fetch_optional(&self.pool).await,
            Lookup::Digest(digest) => {
                sqlx::query(&self.sql.lookup_digest).bind(&digest.as_bytes()[..]).fetch_optional(&self.pool).await
            }
        }
        .map_err(backend)?;
        Ok(row.as_ref().map(record_from_row).transpose()?.map(Arc::new))
    }

    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.fetch_one_record(&self.sql.get, id).await
    }

    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let bound = RecordParams::new(record)?;
        bound.insert(&self.sql.insert).execute(&self.pool).await.map_err(insert_error)?;
        Ok(())
    }

    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        let size = query.page_size();
        let budget = self.list_scan_budget;
        let sql = self.sql.list(query);
        let mut q = sqlx::query(&sql);
        if let Some(after) = &query.after {
            q = q.bind(after.as_str());
        }
        if let Some(owner) = &query.owner {
            q = q.bind(owner.as_str());
        }
        q = q.bind(i64::try_from(budget).unwrap_or(i64::MAX));
        if let Some(kind) = query.kind {
            q = q.bind(kind.as_str());
        }
        if query.status.is_some() {
            q = q.bind(PgTime::from_system(now)?);
        }
        q = q.bind(i64::try_from(size + 1).unwrap_or(i64::MAX));
        let rows = q.fetch_all(&self.pool).await.map_err(backend)?;

        let mut scanned = 0_i64;
        let mut last_scanned = None;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            scanned = column(row, "scanned")?;
            last_scanned = column::<Option<&str>>(row, "last_scanned")?;
            if column::<Option<&str>>(row, "id")?.is_some() {
                items.push(record_from_row(row)?);
            }
        }
        let budget_spent = usize::try_from(scanned).is_ok_and(|n| n >= budget);
        let next = if items.len() > size {
            items.truncate(size);
            items.last().map(|r| r.id)
        } else if budget_spent && items.len() == size {
            items.last().map(|r| r.id)
        } else if budget_spent {
            // Bounded work: end the page early; go on after the last row examined.
            last_scanned.map(|id| id.parse().map_err(|_| invalid_row("id"))).transpose()?
        } else {
            None
        };
        Ok(Page { items, next })
    }

    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        // Every field named: a field added to `KeyUpdate` does not compile until it is stored here.
        let KeyUpdate { name, scopes, expires_at, metadata, enabled, rate_limit } = update;
        if let Some(name) = name {
            check_text(name)?;
        }
        let metadata = metadata.as_ref().map(metadata_json).transpose()?;
        let expires = match expires_at {
            Some(Some(at)) => Some(PgTime::from_system(*at)?),
            _ => None,
        };
        let (requests, period) = match rate_limit {
            Some(limit) => rate_columns(limit.as_ref())?,
            None => (None, None),
        };
        let row = sqlx::query(&self.sql.update)
            .bind(id.as_str())
            .bind(name.as_deref())
            .bind(scopes.as_ref().map(|s| s.iter().collect::<Vec<_>>()))
            .bind(expires_at.is_some())
            .bind(expires)
            .bind(metadata)
            .bind(*enabled)
            .bind(rate_limit.is_some())
            .bind(requests)
            .bind(period)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .ok_or(StoreError::NotFound(*id))?;
        record_from_row(&row)
    }

    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        let at = PgTime::from_system(at)?;
        retry(|| self.revoke_once(id, at)).await
    }

    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        let bound = RecordParams::new(successor)?;
        let grace_end = PgTime::from_system(grace_end)?;
        retry(|| self.rotate_once(id, &bound, grace_end)).await
    }

    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        if usage.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = usage.iter().map(|u| u.id.as_str()).collect();
        let counts: Vec<i64> = usage.iter().map(|u| saturating_i64(u.count)).collect();
        let times = usage.iter().map(|u| PgTime::from_system(u.last_used)).collect::<Result<Vec<_>, _>>()?;
        let hours = usage.iter().map(|u| PgTime::from_system(Usage::hour_of(u.hour))).collect::<Result<Vec<_>, _>>()?;
        retry(|| self.record_usage_once(&ids, &counts, &times, &hours)).await
    }

    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        let since = match PgTime::from_system(Usage::hour_of(since)) {
            Ok(t) => t,
            // Before PostgreSQL's range: every hour; after it: none.
            Err(_) if since < UNIX_EPOCH => PgTime(PgTime::RANGE.start),
            Err(_) => return Ok(Vec::new()),
        };
        let rows = sqlx::query(&self.sql.hourly_usage)
            .bind(id.as_str())
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(HourlyUsage {
                    hour: time_column(row, "hour")?.ok_or_else(|| invalid_row("hour"))?,
                    // Never negative (a CHECK says so).
                    count: u64::try_from(column::<i64>(row, "count")?).map_err(|_| invalid_row("count"))?,
                })
            })
            .collect()
    }
}

/// An error PostgreSQL returned, or a row this crate cannot read; the source of a [`StoreError::Backend`].
///
/// ```
/// use tower_api_key::store::PostgresError;
/// let e = PostgresError::InvalidRow { column: "kind" };
/// assert_eq!(e.to_string(), "a stored row has an invalid `kind` column");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PostgresError {
    /// PostgreSQL refused a statement. The error's `DETAIL`, which can quote a row's values, is left out.
    #[error("PostgreSQL error {code}: {message}")]
    Database {
        /// The SQLSTATE, such as `40P01` for a deadlock.
        code: String,
        /// PostgreSQL's primary message.
        message: String,
        /// The constraint involved, if any.
        constraint: Option<String>,
    },
    /// A stored row holds a value the crate never writes (edited by hand?): this column does not map to a
    /// [`KeyRecord`] field.
    #[error("a stored row has an invalid `{column}` column")]
    InvalidRow {
        /// The column.
        column: &'static str,
    },
}

impl PostgresError {
    /// Whether the statement lost a deadlock (`40P01`) or a serialization conflict (`40001`) and may succeed if
    /// tried again.
    ///
    /// ```
    /// use tower_api_key::store::PostgresError;
    /// let e = PostgresError::Database { code: "40P01".into(), message: "deadlock detected".into(), constraint: None };
    /// assert!(e.is_retryable());
    /// ```
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Database { code, .. } if code == "40P01" || code == "40001")
    }
}

/// Every statement, with the namespace written in once.
struct Statements {
    namespace: Box<str>,
    table: String,
    migrate: String,
    lookup_id: String,
    lookup_digest: String,
    get: String,
    insert: String,
    update: String,
    revoke_chain: String,
    lock_for_rotate: String,
    finish_rotate: String,
    record_usage: String,
    hourly_usage: String,
}

impl Statements {
    fn new(namespace: &str) -> Self {
        let t = format!("\"{namespace}\".api_keys");
        let hourly = format!("\"{namespace}\".api_key_usage");
        let kept = USAGE_HOURS_KEPT;
        Self {
            namespace: namespace.into(),
            migrate: format!(
                "SELECT pg_advisory_xact_lock(hashtextextended('tower_api_key migrate {namespace}', 0));\n{}",
                SCHEMA_SQL.replace("{schema}", namespace)
            ),
            lookup_id: format!("SELECT {COLUMNS} FROM {t} k WHERE k.id = $1 AND k.prefix IS NOT NULL"),
            lookup_digest: format!("SELECT {COLUMNS} FROM {t} k WHERE k.digest = $1 AND k.prefix IS NULL"),
            get: format!("SELECT {COLUMNS} FROM {t} k WHERE k.id = $1"),
            insert: format!(
                "INSERT INTO {t} (id, digest, prefix, kind, owner, name, scopes, created_at, expires_at, revoked_at, \
                 last_used_at, usage_count, enabled, rate_requests, rate_period_ns, metadata, rotated_to) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, $17)"
            ),
            // `KeyUpdate::apply` in SQL. LEAST ignores a NULL: a rotated key's expiry only moves earlier.
            update: format!(
                "UPDATE {t} k SET \
                 name = COALESCE($2, k.name), \
                 scopes = COALESCE($3, k.scopes), \
                 expires_at = CASE WHEN NOT $4 THEN k.expires_at \
                     WHEN k.rotated_to IS NOT NULL AND k.expires_at IS NOT NULL THEN LEAST(k.expires_at, $5) \
                     ELSE $5 END, \
                 metadata = COALESCE($6::jsonb, k.metadata), \
                 enabled = COALESCE($7, k.enabled), \
                 rate_requests = CASE WHEN $8 THEN $9 ELSE k.rate_requests END, \
                 rate_period_ns = CASE WHEN $8 THEN $10 ELSE k.rate_period_ns END \
                 WHERE k.id = $1 RETURNING {COLUMNS}"
            ),
            // UNION (not ALL) ends even on a (hand-made) cycle of rotated_to.
            revoke_chain: format!(
                "WITH RECURSIVE chain(id, next) AS ( \
                     SELECT c.id, c.rotated_to FROM {t} c WHERE c.id = $1 \
                     UNION SELECT c.id, c.rotated_to FROM {t} c JOIN chain ON c.id = chain.next) \
                 UPDATE {t} k SET revoked_at = COALESCE(k.revoked_at, $2) \
                 WHERE k.id IN (SELECT chain.id FROM chain) RETURNING {COLUMNS}"
            ),
            lock_for_rotate: format!(
                "SELECT k.revoked_at IS NOT NULL AS revoked, k.rotated_to IS NOT NULL AS rotated \
                 FROM {t} k WHERE k.id = $1 FOR UPDATE"
            ),
            finish_rotate: format!(
                "UPDATE {t} k SET rotated_to = $2, expires_at = LEAST(k.expires_at, $3) WHERE k.id = $1 \
                 RETURNING {COLUMNS}"
            ),
            // One statement per batch. Repeated ids are summed first (an UPDATE changes a row once, an upsert
            // too); key rows are locked in id order, all of them before any hour is written (the GROUP BY of the
            // upsert reads every updated row first), so concurrent flushes from several instances cannot deadlock
            // over them. Only the hours of keys that exist are written (the RETURNING of the UPDATE), none older
            // than the cutoff, which the closing DELETE prunes (the two touch different rows).
            record_usage: format!(
                "WITH u AS ( \
                     SELECT u.id, u.n, u.t, u.h \
                     FROM UNNEST($1::text[], $2::bigint[], $3::timestamptz[], $4::timestamptz[]) AS u(id, n, t, h)), \
                 cutoff AS ( \
                     SELECT LEAST(max(u.h), now()) - interval '{kept} hours' AS at FROM u), \
                 batch AS ( \
                     SELECT u.id, LEAST(sum(u.n), 9223372036854775807)::bigint AS n, max(u.t) AS t \
                     FROM u GROUP BY u.id), \
                 locked AS ( \
                     SELECT l.id FROM {t} l JOIN batch ON l.id = batch.id ORDER BY l.id FOR UPDATE OF l), \
                 totals AS ( \
                     UPDATE {t} k SET \
                         usage_count = CASE WHEN k.usage_count > 9223372036854775807 - batch.n \
                             THEN 9223372036854775807 ELSE k.usage_count + batch.n END, \
                         last_used_at = GREATEST(k.last_used_at, batch.t) \
                     FROM batch JOIN locked ON locked.id = batch.id WHERE k.id = batch.id \
                     RETURNING k.id), \
                 hours AS ( \
                     INSERT INTO {hourly} AS c (id, hour, count) \
                     SELECT u.id, u.h, LEAST(sum(u.n), 9223372036854775807)::bigint \
                     FROM u JOIN totals ON totals.id = u.id CROSS JOIN cutoff WHERE u.h >= cutoff.at \
                     GROUP BY u.id, u.h ORDER BY u.id, u.h \
                     ON CONFLICT (id, hour) DO UPDATE SET \
                         count = CASE WHEN c.count > 9223372036854775807 - excluded.count \
                             THEN 9223372036854775807 ELSE c.count + excluded.count END) \
                 DELETE FROM {hourly} o USING cutoff WHERE o.hour < cutoff.at"
            ),
            hourly_usage: format!(
                "SELECT c.hour, c.count FROM {hourly} c WHERE c.id = $1 AND c.hour >= $2 ORDER BY c.hour"
            ),
            table: t,
        }
    }

    /// The listing for `query`'s filters; parameters in order: after, owner, budget, kind, now, page size + 1
    /// (those of absent filters left out).
    fn list(&self, query: &ListQuery) -> String {
        let mut n = 0;
        let mut param = || {
            n += 1;
            format!("${n}")
        };
        // Rows examined: in id order after the cursor, of the owner if asked (index `api_keys_owner`), at most
        // the budget. Only the columns the filters need.
        let mut scan = String::from("TRUE");
        if query.after.is_some() {
            scan += &format!(" AND s.id > {}", param());
        }
        if query.owner.is_some() {
            scan += &format!(" AND s.owner = {}", param());
        }
        let budget = param();
        let mut filter = String::from("TRUE");
        if query.kind.is_some() {
            filter += &format!(" AND s.kind = {}", param());
        }
        if let Some(status) = query.status {
            filter += " AND ";
            filter += &status_sql(status, &param());
        }
        let page = param();
        format!(
            "WITH scanned AS ( \
                 SELECT s.id, s.kind, s.enabled, s.revoked_at, s.expires_at, s.rotated_to FROM {t} s \
                 WHERE {scan} ORDER BY s.id LIMIT {budget}), \
             hits AS (SELECT s.id FROM scanned s WHERE {filter} ORDER BY s.id LIMIT {page}), \
             stats AS (SELECT count(*) AS scanned, max(s.id) AS last_scanned FROM scanned s) \
             SELECT stats.scanned, stats.last_scanned, {COLUMNS} \
             FROM stats LEFT JOIN (hits JOIN {t} k ON k.id = hits.id) ON TRUE \
             ORDER BY k.id",
            t = self.table
        )
    }
}

/// `KeyRecord::status_at` in SQL, over the row aliased `s`, with `now` the given parameter.
fn status_sql(status: KeyStatus, now: &str) -> String {
    let live = "s.revoked_at IS NULL AND s.enabled";
    match status {
        KeyStatus::Active => format!("{live} AND (s.expires_at IS NULL OR s.expires_at > {now})"),
        KeyStatus::Disabled => "s.revoked_at IS NULL AND NOT s.enabled".to_owned(),
        KeyStatus::Revoked => "s.revoked_at IS NOT NULL".to_owned(),
        KeyStatus::Expired => format!("{live} AND s.expires_at <= {now} AND s.rotated_to IS NULL"),
        KeyStatus::RotatedOut => format!("{live} AND s.expires_at <= {now} AND s.rotated_to IS NOT NULL"),
    }
}

/// Checks a namespace: `[a-z_][a-z0-9_]{0,62}`, not `pg_*`.
fn check_namespace(namespace: &str) -> Result<(), StoreError> {
    let bytes = namespace.as_bytes();
    let valid = matches!(bytes.first(), Some(b'a'..=b'z' | b'_'))
        && bytes.len() <= 63
        && bytes.iter().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_'))
        && !namespace.starts_with("pg_");
    if valid {
        Ok(())
    } else {
        Err(StoreError::Invalid("namespace: must match [a-z_][a-z0-9_]{0,62} and not start with pg_"))
    }
}

/// Retries `attempt` after a deadlock or serialization failure; each attempt is a whole statement or transaction.
async fn retry<T, F, Fut>(mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Err(StoreError::Backend(e))
                if tries < ATTEMPTS && e.downcast_ref::<PostgresError>().is_some_and(PostgresError::is_retryable) =>
            {
                tries += 1;
            }
            other => return other,
        }
    }
}

/// A driver error as a [`StoreError::Backend`]; errors from the server lose their `DETAIL`.
fn backend(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::Database(db) => StoreError::backend(PostgresError::Database {
            code: db.code().map(|c| c.into_owned()).unwrap_or_default(),
            message: db.message().to_owned(),
            constraint: db.constraint().map(str::to_owned),
        }),
        other => StoreError::backend(other),
    }
}

/// An `INSERT`'s error: a unique violation is a conflict.
fn insert_error(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => match db.constraint() {
            Some("api_keys_pkey") => StoreError::Conflict("a key with this id exists"),
            Some("api_keys_opaque_digest") => StoreError::Conflict("this key is already stored"),
            _ => StoreError::Conflict("a key with this id or digest exists"),
        },
        _ => backend(e),
    }
}

fn invalid_row(column: &'static str) -> StoreError {
    StoreError::backend(PostgresError::InvalidRow { column })
}

/// One column of a row.
fn column<'r, T>(row: &'r PgRow, name: &'static str) -> Result<T, StoreError>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(name).map_err(backend)
}

fn time_column(row: &PgRow, name: &'static str) -> Result<Option<SystemTime>, StoreError> {
    column::<Option<PgTime>>(row, name)?.map(|t| t.to_system().ok_or_else(|| invalid_row(name))).transpose()
}

/// A row of `COLUMNS` as a record.
fn record_from_row(row: &PgRow) -> Result<KeyRecord, StoreError> {
    let digest: &[u8] = column(row, "digest")?;
    let rate_limit = match (column::<Option<i64>>(row, "rate_requests")?, column::<Option<i64>>(row, "rate_period_ns")?)
    {
        (None, None) => None,
        (Some(requests), Some(period)) => Some(
            u32::try_from(requests)
                .ok()
                .zip(u64::try_from(period).ok())
                .and_then(|(n, ns)| RateLimit::new(n, Duration::from_nanos(ns)))
                .ok_or_else(|| invalid_row("rate_requests"))?,
        ),
        _ => return Err(invalid_row("rate_requests")),
    };
    Ok(KeyRecord {
        id: column::<&str>(row, "id")?.parse().map_err(|_| invalid_row("id"))?,
        digest: KeyDigest::from_bytes(digest.try_into().map_err(|_| invalid_row("digest"))?),
        kind: column::<&str>(row, "kind")?.parse().map_err(|_| invalid_row("kind"))?,
        owner: column(row, "owner")?,
        name: column(row, "name")?,
        prefix: column(row, "prefix")?,
        scopes: Scopes::new(column::<Vec<String>>(row, "scopes")?).map_err(|_| invalid_row("scopes"))?,
        created_at: time_column(row, "created_at")?.ok_or_else(|| invalid_row("created_at"))?,
        expires_at: time_column(row, "expires_at")?,
        revoked_at: time_column(row, "revoked_at")?,
        last_used_at: time_column(row, "last_used_at")?,
        // Never negative (a CHECK says so); saturated at i64::MAX when written.
        usage_count: u64::try_from(column::<i64>(row, "usage_count")?).unwrap_or(0),
        enabled: column(row, "enabled")?,
        rate_limit,
        metadata: serde_json::from_str(column::<&str>(row, "metadata")?).map_err(|_| invalid_row("metadata"))?,
        rotated_to: column::<Option<&str>>(row, "rotated_to")?
            .map(str::parse)
            .transpose()
            .map_err(|_| invalid_row("rotated_to"))?,
    })
}

/// A record's columns, checked and converted once (a rotation may insert it more than once, when retried).
struct RecordParams<'a> {
    record: &'a KeyRecord,
    kind: &'static str,
    scopes: Vec<&'a str>,
    created_at: PgTime,
    expires_at: Option<PgTime>,
    revoked_at: Option<PgTime>,
    last_used_at: Option<PgTime>,
    rate_requests: Option<i64>,
    rate_period_ns: Option<i64>,
    metadata: String,
}

impl<'a> RecordParams<'a> {
    fn new(record: &'a KeyRecord) -> Result<Self, StoreError> {
        check_text(&record.owner)?;
        check_text(&record.name)?;
        if let Some(prefix) = &record.prefix {
            check_text(prefix)?;
        }
        let (rate_requests, rate_period_ns) = rate_columns(record.rate_limit.as_ref())?;
        Ok(Self {
            record,
            kind: record.kind.as_str(),
            scopes: record.scopes.iter().collect(),
            created_at: PgTime::from_system(record.created_at)?,
            expires_at: record.expires_at.map(PgTime::from_system).transpose()?,
            revoked_at: record.revoked_at.map(PgTime::from_system).transpose()?,
            last_used_at: record.last_used_at.map(PgTime::from_system).transpose()?,
            rate_requests,
            rate_period_ns,
            metadata: metadata_json(&record.metadata)?,
        })
    }

    fn insert<'q>(&'q self, sql: &'q str) -> sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments> {
        let r = self.record;
        sqlx::query(sql)
            .bind(r.id.as_str())
            .bind(&r.digest.as_bytes()[..])
            .bind(r.prefix.as_deref())
            .bind(self.kind)
            .bind(r.owner.as_str())
            .bind(r.name.as_str())
            .bind(&self.scopes)
            .bind(self.created_at)
            .bind(self.expires_at)
            .bind(self.revoked_at)
            .bind(self.last_used_at)
            .bind(saturating_i64(r.usage_count))
            .bind(r.enabled)
            .bind(self.rate_requests)
            .bind(self.rate_period_ns)
            .bind(self.metadata.as_str())
            .bind(r.rotated_to.as_ref().map(KeyId::as_str))
    }
}

/// PostgreSQL text cannot hold a NUL character.
fn check_text(text: &str) -> Result<(), StoreError> {
    if text.contains('\0') {
        Err(StoreError::Invalid("text with a NUL character cannot be stored in PostgreSQL"))
    } else {
        Ok(())
    }
}

fn metadata_json(metadata: &BTreeMap<String, String>) -> Result<String, StoreError> {
    for (k, v) in metadata {
        check_text(k)?;
        check_text(v)?;
    }
    serde_json::to_string(metadata).map_err(|_| StoreError::Invalid("metadata"))
}

fn rate_columns(limit: Option<&RateLimit>) -> Result<(Option<i64>, Option<i64>), StoreError> {
    let Some(limit) = limit else { return Ok((None, None)) };
    let period = i64::try_from(limit.period().as_nanos())
        .map_err(|_| StoreError::Invalid("rate limit period: at most 292 years in PostgreSQL"))?;
    Ok((Some(i64::from(limit.requests())), Some(period)))
}

fn saturating_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A `timestamptz` as PostgreSQL sends it in binary: microseconds since 2000-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PgTime(i64);

impl PgTime {
    /// 2000-01-01T00:00:00Z, in microseconds since the Unix epoch.
    const EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;
    /// PostgreSQL's range: from 4714-11-24 BC (`MIN_TIMESTAMP`) to just before 294277-01-01 (`END_TIMESTAMP`).
    const RANGE: std::ops::Range<i64> = -211_813_488_000_000_000..9_223_371_331_200_000_000;

    /// Rounded down to the microsecond, so that `now >= expiry` keeps its answer for any stored expiry.
    fn from_system(t: SystemTime) -> Result<Self, StoreError> {
        let unix_micros = match t.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).ok(),
            Err(before) => {
                let d = before.duration();
                let micros = d.as_micros() + u128::from(d.subsec_nanos() % 1_000 != 0);
                i64::try_from(micros).ok().map(|m| -m)
            }
        };
        unix_micros
            .and_then(|m| m.checked_sub(Self::EPOCH_UNIX_MICROS))
            .filter(|m| Self::RANGE.contains(m))
            .map(Self)
            .ok_or(StoreError::Invalid("a time outside PostgreSQL's timestamp range"))
    }

    /// `None` for `infinity` and `-infinity`.
    fn to_system(self) -> Option<SystemTime> {
        if !Self::RANGE.contains(&self.0) {
            return None;
        }
        let unix = self.0.checked_add(Self::EPOCH_UNIX_MICROS)?;
        let magnitude = Duration::from_micros(unix.unsigned_abs());
        if unix >= 0 { UNIX_EPOCH.checked_add(magnitude) } else { UNIX_EPOCH.checked_sub(magnitude) }
    }
}

// Built-in type OIDs are fixed in every PostgreSQL: 1184 `timestamptz`, 1185 `timestamptz[]`.
impl Type<Postgres> for PgTime {
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1184))
    }
}

impl PgHasArrayType for PgTime {
    fn array_type_info() -> PgTypeInfo {
        PgTypeInfo::with_oid(Oid(1185))
    }
}

impl Encode<'_, Postgres> for PgTime {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.0.to_be_bytes());
        Ok(IsNull::No)
    }
}

impl<'r> Decode<'r, Postgres> for PgTime {
    fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
        match value.format() {
            PgValueFormat::Binary => Ok(Self(i64::from_be_bytes(value.as_bytes()?.try_into()?))),
            PgValueFormat::Text => Err("timestamptz in text format: use a prepared statement".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_are_sql_identifiers() {
        let long = "a".repeat(63);
        for ok in ["tower_api_key", "_x", "a", "billing_keys_2", long.as_str(), "user"] {
            assert!(check_namespace(ok).is_ok(), "{ok:?}");
        }
        let too_long = "a".repeat(64);
        for bad in ["", "1abc", "Tower", "a-b", "a b", "a\"b", "x;drop", "pg_catalog", "é", too_long.as_str()] {
            assert!(matches!(check_namespace(bad), Err(StoreError::Invalid(_))), "{bad:?}");
        }
    }

    #[test]
    fn times_convert_exactly_and_round_down() {
        let cases = [
            (UNIX_EPOCH, -PgTime::EPOCH_UNIX_MICROS),
            (UNIX_EPOCH + Duration::from_secs(946_684_800), 0),
            (UNIX_EPOCH + Duration::from_nanos(1_700_000_000_123_456_789), 753_315_200_123_456),
            (UNIX_EPOCH - Duration::from_nanos(1), -PgTime::EPOCH_UNIX_MICROS - 1),
            (UNIX_EPOCH - Duration::from_micros(5), -PgTime::EPOCH_UNIX_MICROS - 5),
        ];
        for (time, micros) in cases {
            assert_eq!(PgTime::from_system(time).unwrap(), PgTime(micros), "{time:?}");
        }
        for time in [
            UNIX_EPOCH,
            UNIX_EPOCH + Duration::from_micros(1_700_000_000_123_456),
            UNIX_EPOCH - Duration::from_secs(86_400),
        ] {
            assert_eq!(PgTime::from_system(time).unwrap().to_system(), Some(time));
        }
        assert!(PgTime::from_system(UNIX_EPOCH + Duration::from_secs(400_000_000_000_000)).is_err());
        assert_eq!(PgTime(i64::MAX).to_system(), None, "infinity");
        assert_eq!(PgTime(i64::MIN).to_system(), None, "-infinity");
    }

    #[test]
    fn list_sql_numbers_its_parameters_in_bind_order() {
        let sql = Statements::new("ns");
        let all = sql.list(
            &ListQuery::new().after(KeyId::random()).owner("o").kind(crate::KeyKind::User).status(KeyStatus::Active),
        );
        for (i, fragment) in
            ["s.id > $1", "s.owner = $2", "LIMIT $3", "s.kind = $4", "> $5", "LIMIT $6"].iter().enumerate()
        {
            assert!(all.contains(fragment), "{i}: {fragment} in {all}");
        }
        let none = sql.list(&ListQuery::new());
        assert!(none.contains("LIMIT $1") && none.contains("LIMIT $2") && !none.contains("$3"), "{none}");
    }

    #[test]
    fn the_schema_sql_names_only_the_namespace() {
        let sql = Statements::new("abc").migrate;
        assert!(!sql.contains("{schema}"));
        assert_eq!(sql.matches("\"abc\".").count(), SCHEMA_SQL.matches("\"{schema}\".").count());
    }
}
