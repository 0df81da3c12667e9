//! A key-management HTTP API (feature `admin`): an axum [`Router`] over a [`KeyManager`], and so over any store.
//!
//! Every route requires the scope `keys:admin` ([`ADMIN_SCOPE`]). Mount it behind [`crate::ApiKeyLayer`]; without
//! a principal it answers 401, without the scope 403 `insufficient_scope`.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /keys` | `{"name", "kind": "user"\|"system", "owner", "scopes"?: [...], "expires_in_seconds"?, "rate_limit"?: {"requests", "period_seconds"}, "metadata"?: {...}}` | 201, the record and, in `key`, the full key (shown this once) |
//! | `GET /keys?owner=&kind=&status=&after=&limit=` | | 200 `{"items": [...], "next"}` (never a key) |
//! | `GET /keys/{id}` | | 200, one record |
//! | `PATCH /keys/{id}` | any of `{"name", "scopes", "enabled", "expires_in_seconds" \| "expires_at": RFC 3339 \| null, "rate_limit": {...} \| null, "metadata"}` | 200, the record; effective on the next request, on every instance whose cache hears of it |
//! | `POST /keys/{id}/revoke` | | 200, the record; the key fails from the next request |
//! | `POST /keys/{id}/rotate` | `{"grace_seconds": N}` | 201, the new record and key; the old key works for N more seconds |
//! | `GET /keys/{id}/usage?hours=N` | | 200 `{"id", "hours": [{"hour": RFC 3339 start of the hour, "count"}, ...]}`: the key's successful requests in each of the last N UTC hours (1 to [`USAGE_HOURS_KEPT`], default 24), exactly N entries, oldest first, zero-filled, the last the current hour by the manager's clock (never a key) |
//!
//! `{id}` is the key's public id (the middle part of the key). Every answer other than 2xx is an RFC 9457
//! problem-details body:
//!
//! | input | answer |
//! |---|---|
//! | a body that is not a JSON object (an array, a string), bad JSON, a wrong type, an unknown field | 400 |
//! | a query parameter that is unknown or of the wrong type; `hours` outside 1 to [`USAGE_HOURS_KEPT`] | 400 |
//! | a number that overflows time (`expires_in_seconds`, `grace_seconds` past year 9999); a rate limit of zero requests, or a `period_seconds` of 0 or over [`crate::RateLimit::MAX_PERIOD`] (365 days) | 400 |
//! | a string or list over its bound ([`crate::MAX_NAME_LEN`], [`crate::MAX_OWNER_LEN`], [`crate::MAX_SCOPES`], …) | 400 |
//! | a body over [`MAX_BODY_BYTES`] | 413 |
//! | a body without `content-type: application/json` | 415 |
//! | an unknown id | 404 |
//! | rotating a revoked or already rotated key | 409 |
//! | a store without the primitive asked for (such as counts per hour) | 501 |
//! | the store failing | 503, no detail |
//!
//! Every check happens before the store is called, and each change is one atomic store step, so a refused request
//! changes nothing. Every answer carries [`CONTENT_SECURITY_POLICY`], `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store` (an answer may carry a new key).
//!
//! With feature `console`, the router's root is also the key console (module `console`), a web page over this API
//! that loads without a key: mount the router behind a layer in [`optional`](crate::ApiKeyLayer::optional) mode
//! (the `console` module shows how).
//!
//! ```
//! use axum::Router;
//! use tower_api_key::{admin, ApiKeyLayer, KeyManager, MemoryStore};
//!
//! let store = MemoryStore::new();
//! let app: Router = Router::new()
//!     .nest("/admin", admin::router(KeyManager::new(store.clone())))
//!     .layer(ApiKeyLayer::new(store));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::key::{IssuedKey, KeyId, KeyInfo, KeyKind, KeyStatus, NewKey, RateLimit, Scopes};
use crate::manage::KeyManager;
use crate::scope::RequireScopesLayer;
use crate::store::{HourlyUsage, KeyUpdate, ListQuery, StoreError, USAGE_HOURS_KEPT};

/// The scope every admin route requires.
pub const ADMIN_SCOPE: &str = "keys:admin";

/// The largest request body the admin API reads (64 KiB); larger ones answer 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// How many hours `GET /keys/{id}/usage` answers when not told.
const DEFAULT_USAGE_HOURS: u32 = 24;

/// The admin router over `keys`. See the [module docs](self).
///
/// # Panics
/// Never: the admin scope is a valid constant.
///
/// ```
/// use tower_api_key::{admin, KeyManager, MemoryStore};
/// let router: axum::Router = admin::router(KeyManager::new(MemoryStore::new()));
/// ```
pub fn router(keys: KeyManager) -> Router {
    #[allow(clippy::expect_used)]
    let guard = RequireScopesLayer::all([ADMIN_SCOPE]).expect("the admin scope is valid");
    let api = Router::new()
        .route("/keys", post(create).get(list))
        .route("/keys/{id}", get(show).patch(patch))
        .route("/keys/{id}/revoke", post(revoke))
        .route("/keys/{id}/rotate", post(rotate))
        .route("/keys/{id}/usage", get(usage))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(guard);
    // The console's page and assets: beside the guard, since a browser loads a page without a key.
    #[cfg(feature = "console")]
    let api = api.merge(crate::console::routes());
    api.layer(axum::middleware::map_response(security_headers)).with_state(keys)
}

/// The `Content-Security-Policy` of every admin answer: scripts, styles and API calls from the page's own origin
/// only, no inline script or event handler, no plugins, no `<base>`, no form submission, no framing. Strict enough
/// for the console's page (feature `console`), and harmless on JSON.
///
/// ```
/// assert!(tower_api_key::admin::CONTENT_SECURITY_POLICY.contains("frame-ancestors 'none'"));
/// ```
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
    img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
    frame-ancestors 'none'";

/// The headers of every admin answer, page and API alike: [`CONTENT_SECURITY_POLICY`], no MIME sniffing, no
/// referrer, no framing, and `Cache-Control: no-store`, since an answer may carry a new key.
async fn security_headers(mut res: Response) -> Response {
    let headers = res.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    res
}

/// An admin API error, answered as problem details.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    detail: String,
}

impl Problem {
    fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        Self { status, detail: detail.into() }
    }

    fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, detail)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "type": "about:blank",
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        let mut res = (self.status, Json(body)).into_response();
        res.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/problem+json"));
        res
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "no key with this id"),
            StoreError::Conflict(what) => Problem::new(StatusCode::CONFLICT, what),
            StoreError::Invalid(what) => Problem::bad_request(what),
            StoreError::Unsupported(what) => {
                Problem::new(StatusCode::NOT_IMPLEMENTED, format!("the key store does not support {what}"))
            }
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, "key store failed in admin API");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the key store is unavailable")
            }
        }
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Problem::bad_request(e.body_text())
    }
}

/// A JSON object body: `content-type: application/json` (415 otherwise), at most [`MAX_BODY_BYTES`] (413), and an
/// object: serde reads a struct from an array too (`[1]` as `{"grace_seconds": 1}`), which would get around
/// `deny_unknown_fields`, so anything but `{…}` is refused before parsing (400).
struct JsonObject<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonObject<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        if !is_json(req.headers()) {
            return Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "the body must be application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|e: BytesRejection| {
            let status = e.status();
            Problem::new(
                status,
                if status == StatusCode::PAYLOAD_TOO_LARGE { "the body is too large".into() } else { e.body_text() },
            )
        })?;
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(Problem::bad_request("the body must be a JSON object"));
        }
        serde_json::from_slice(&bytes).map(JsonObject).map_err(|e| Problem::bad_request(format!("invalid body: {e}")))
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else { return false };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json")
            || subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case("+json"))
}

fn parse_id(id: &str) -> Result<KeyId, Problem> {
    id.parse().map_err(|_| Problem::new(StatusCode::NOT_FOUND, "no key with this id"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    #[serde(default)]
    name: String,
    kind: KeyKind,
    owner: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_seconds: Option<u64>,
    #[serde(default)]
    rate_limit: Option<LimitBody>,
    #[serde(default)]
    metadata: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitBody {
    requests: u32,
    period_seconds: u64,
}

impl LimitBody {
    fn limit(self) -> Result<RateLimit, Problem> {
        RateLimit::new(self.requests, Duration::from_secs(self.period_seconds)).ok_or_else(|| {
            Problem::bad_request(
                "rate_limit: requests must be at least 1 and period_seconds from 1 to 31536000 (365 days)",
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateKey {
    grace_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    owner: Option<String>,
    kind: Option<KeyKind>,
    status: Option<KeyStatus>,
    after: Option<String>,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UsageParams {
    hours: Option<u32>,
}

#[derive(Serialize)]
struct WithKey<'a> {
    #[serde(flatten)]
    info: KeyInfo,
    key: &'a str,
}

fn created(keys: &KeyManager, issued: &IssuedKey) -> Response {
    let body = WithKey { info: KeyInfo::new(&issued.record, keys.now()), key: issued.key.expose_secret() };
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn create(State(keys): State<KeyManager>, JsonObject(body): JsonObject<CreateKey>) -> Result<Response, Problem> {
    if body.scopes.len() > crate::key::MAX_SCOPES {
        return Err(Problem::bad_request("at most 64 scopes per key"));
    }
    let mut spec = NewKey::new(body.kind, body.owner)
        .name(body.name)
        .scopes(&body.scopes)
        .map_err(|e| Problem::bad_request(e.to_string()))?;
    if let Some(secs) = body.expires_in_seconds {
        spec = spec.expires_in(Duration::from_secs(secs));
    }
    if let Some(limit) = body.rate_limit {
        spec = spec.rate_limit(limit.limit()?);
    }
    for (k, v) in body.metadata {
        spec = spec.metadata(k, v);
    }
    let issued = keys.issue(spec).await?;
    tracing::info!(key_id = %issued.record.id, kind = issued.record.kind.as_str(), "admin API issued a key");
    Ok(created(&keys, &issued))
}

async fn list(
    State(keys): State<KeyManager>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = params?;
    let mut q = ListQuery::new();
    q.owner = p.owner;
    q.kind = p.kind;
    q.status = p.status;
    q.after =
        p.after.as_deref().map(|a| a.parse().map_err(|_| Problem::bad_request("after: not a key id"))).transpose()?;
    q.limit = p.limit.unwrap_or(0);
    let page = keys.list(&q).await?;
    let now = keys.now();
    let items: Vec<KeyInfo> = page.items.iter().map(|r| KeyInfo::new(r, now)).collect();
    Ok(Json(serde_json::json!({ "items": items, "next": page.next })).into_response())
}

async fn show(State(keys): State<KeyManager>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let record = keys.get(&id).await?.ok_or(StoreError::NotFound(id))?;
    Ok(Json(KeyInfo::new(&record, keys.now())).into_response())
}

async fn revoke(State(keys): State<KeyManager>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let record = keys.revoke(&id).await?;
    tracing::info!(key_id = %id, "admin API revoked a key");
    Ok(Json(KeyInfo::new(&record, keys.now())).into_response())
}

async fn rotate(
    State(keys): State<KeyManager>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject<RotateKey>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let issued = keys.rotate(&id, Duration::from_secs(body.grace_seconds)).await?;
    tracing::info!(old = %id, new = %issued.record.id, grace_seconds = body.grace_seconds, "admin API rotated a key");
    Ok(created(&keys, &issued))
}

async fn usage(
    State(keys): State<KeyManager>,
    Path(id): Path<String>,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let Query(p) = params?;
    let hours = p.hours.unwrap_or(DEFAULT_USAGE_HOURS);
    if !(1..=USAGE_HOURS_KEPT).contains(&hours) {
        return Err(Problem::bad_request(format!("hours: from 1 to {USAGE_HOURS_KEPT}")));
    }
    keys.get(&id).await?.ok_or(StoreError::NotFound(id))?;
    let now = keys.now();
    let counts = keys.store().hourly_usage(&id, HourlyUsage::first_hour(now, hours)).await?;
    let hours = HourlyUsage::fill(&counts, now, hours);
    Ok(Json(serde_json::json!({ "id": id, "hours": hours })).into_response())
}

/// Reads a PATCH body field by field: every field optional, `null` clears the expiry or the rate limit, an
/// unknown field is refused.
fn parse_update(body: Map<String, Value>, now: std::time::SystemTime) -> Result<KeyUpdate, Problem> {
    fn field<T: DeserializeOwned>(name: &str, v: Value) -> Result<T, Problem> {
        serde_json::from_value(v).map_err(|e| Problem::bad_request(format!("{name}: {e}")))
    }
    let mut update = KeyUpdate::default();
    if body.contains_key("expires_at") && body.contains_key("expires_in_seconds") {
        return Err(Problem::bad_request("give expires_at or expires_in_seconds, not both"));
    }
    for (name, value) in body {
        match name.as_str() {
            "name" => update.name = Some(field(&name, value)?),
            "enabled" => update.enabled = Some(field(&name, value)?),
            "scopes" => {
                let scopes: Vec<String> = field(&name, value)?;
                if scopes.len() > crate::key::MAX_SCOPES {
                    return Err(Problem::bad_request("at most 64 scopes per key"));
                }
                update.scopes = Some(Scopes::new(&scopes).map_err(|e| Problem::bad_request(e.to_string()))?);
            }
            "metadata" => update.metadata = Some(field(&name, value)?),
            "rate_limit" => {
                let limit: Option<LimitBody> = field(&name, value)?;
                update.rate_limit = Some(limit.map(LimitBody::limit).transpose()?);
            }
            "expires_in_seconds" => {
                let secs: Option<u64> = field(&name, value)?;
                let at = secs
                    .map(|s| {
                        now.checked_add(Duration::from_secs(s))
                            .ok_or_else(|| Problem::bad_request("expiry out of range"))
                    })
                    .transpose()?;
                update.expires_at = Some(at);
            }
            "expires_at" => {
                let text: Option<String> = field(&name, value)?;
                let at = text
                    .map(|t| {
                        humantime::parse_rfc3339_weak(&t).map_err(|e| Problem::bad_request(format!("expires_at: {e}")))
                    })
                    .transpose()?;
                update.expires_at = Some(at);
            }
            other => return Err(Problem::bad_request(format!("unknown field `{other}`"))),
        }
    }
    Ok(update)
}

async fn patch(
    State(keys): State<KeyManager>,
    Path(id): Path<String>,
    JsonObject(body): JsonObject<Map<String, Value>>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let update = parse_update(body, keys.now())?;
    let record = keys.update(&id, &update).await?;
    tracing::info!(key_id = %id, "admin API updated a key");
    Ok(Json(KeyInfo::new(&record, keys.now())).into_response())
}
