//! A key-management HTTP API (feature `admin`): an axum [`Router`] over any [`KeyManager`].
//!
//! Every route requires the scope `keys:admin` ([`ADMIN_SCOPE`]). Mount it behind [`crate::ApiKeyLayer`]; without
//! a principal it answers 401, without the scope 403 `insufficient_scope`.
//!
//! | method and path | body | answer |
//! |---|---|---|
//! | `POST /keys` | `{"name", "kind": "user"\|"system", "owner", "scopes": [...], "expires_in_seconds"?}` | 201, the record and, in `key`, the full key (shown this once) |
//! | `GET /keys?owner=&kind=&status=&after=&limit=` | | 200 `{"items": [...], "next"}` (never a key) |
//! | `GET /keys/{id}` | | 200, one record |
//! | `POST /keys/{id}/revoke` | | 200, the record; the key fails from the next request |
//! | `POST /keys/{id}/rotate` | `{"grace_seconds": N}` | 201, the new record and key; the old key works for N more seconds |
//!
//! `{id}` is the key's public id (the middle part of the key). Bad JSON and unknown fields get 400, unknown ids 404,
//! with an RFC 9457 problem-details body.
//!
//! ```
//! use axum::Router;
//! use tower_api_key::{admin, ApiKeyLayer, MemoryStore};
//!
//! let store = MemoryStore::new();
//! let app: Router = Router::new()
//!     .nest("/admin", admin::router(store.clone()))
//!     .layer(ApiKeyLayer::new(store));
//! ```

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::format::{KeyId, KeyKind};
use crate::manage::{IssuedKey, KeyInfo, KeyManager, ListQuery, NewKey};
use crate::record::{KeyStatus, Scopes};
use crate::scope::RequireScopesLayer;
use crate::store::StoreError;

/// The scope every admin route requires.
pub const ADMIN_SCOPE: &str = "keys:admin";

/// The admin router over `store`. See the [module docs](self).
///
/// # Panics
/// Never: the admin scope is a valid constant.
///
/// ```
/// let router: axum::Router = tower_api_key::admin::router(tower_api_key::MemoryStore::new());
/// ```
pub fn router<M: KeyManager + Clone>(store: M) -> Router {
    #[allow(clippy::expect_used)]
    let guard = RequireScopesLayer::all([ADMIN_SCOPE]).expect("the admin scope is valid");
    Router::new()
        .route("/keys", post(create::<M>).get(list::<M>))
        .route("/keys/{id}", get(show::<M>))
        .route("/keys/{id}/revoke", post(revoke::<M>))
        .route("/keys/{id}/rotate", post(rotate::<M>))
        .layer(guard)
        .with_state(store)
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
        res.headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, axum::http::HeaderValue::from_static("application/problem+json"));
        res
    }
}

impl From<StoreError> for Problem {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "no key with this id"),
            StoreError::Conflict(what) => Problem::new(StatusCode::CONFLICT, what),
            StoreError::Invalid(what) => Problem::new(StatusCode::BAD_REQUEST, what),
            other => {
                tracing::error!(error = &other as &dyn std::error::Error, "key store failed in admin API");
                Problem::new(StatusCode::SERVICE_UNAVAILABLE, "the key store is unavailable")
            }
        }
    }
}

impl From<JsonRejection> for Problem {
    fn from(e: JsonRejection) -> Self {
        // axum's text names the field or syntax error; it cannot contain a key (requests carry none).
        Problem::new(StatusCode::BAD_REQUEST, e.body_text())
    }
}

impl From<QueryRejection> for Problem {
    fn from(e: QueryRejection) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, e.body_text())
    }
}

fn parse_id(id: &str) -> Result<KeyId, Problem> {
    id.parse().map_err(|_| Problem::new(StatusCode::NOT_FOUND, "no key with this id"))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateKey {
    name: String,
    kind: KeyKind,
    owner: String,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    expires_in_seconds: Option<u64>,
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

#[derive(Serialize)]
struct WithKey<'a> {
    #[serde(flatten)]
    info: KeyInfo,
    key: &'a str,
}

fn created<M: KeyManager>(store: &M, issued: &IssuedKey) -> Response {
    let body = WithKey { info: KeyInfo::new(&issued.record, store.now()), key: issued.key.expose_secret() };
    (StatusCode::CREATED, Json(body)).into_response()
}

async fn create<M: KeyManager + Clone>(
    State(store): State<M>,
    body: Result<Json<CreateKey>, JsonRejection>,
) -> Result<Response, Problem> {
    let Json(body) = body?;
    let scopes = Scopes::new(&body.scopes).map_err(|e| Problem::new(StatusCode::BAD_REQUEST, e.to_string()))?;
    if body.owner.is_empty() {
        return Err(Problem::new(StatusCode::BAD_REQUEST, "owner must not be empty"));
    }
    let mut spec = NewKey::new(body.kind, body.owner).name(body.name);
    spec.scopes = scopes;
    if let Some(secs) = body.expires_in_seconds {
        spec = spec.expires_in(Duration::from_secs(secs));
    }
    let issued = store.issue(spec).await?;
    tracing::info!(key_id = %issued.record.id, kind = issued.record.kind.as_str(), "admin API issued a key");
    Ok(created(&store, &issued))
}

async fn list<M: KeyManager + Clone>(
    State(store): State<M>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, Problem> {
    let Query(p) = params?;
    let mut q = ListQuery::new();
    q.owner = p.owner;
    q.kind = p.kind;
    q.status = p.status;
    q.after = p.after.as_deref().map(parse_id).transpose()?;
    q.limit = p.limit.unwrap_or(0);
    let page = store.list(&q).await?;
    let now = store.now();
    let items: Vec<KeyInfo> = page.items.iter().map(|r| KeyInfo::new(r, now)).collect();
    Ok(Json(serde_json::json!({ "items": items, "next": page.next })).into_response())
}

async fn show<M: KeyManager + Clone>(State(store): State<M>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let record = store.get(&id).await?.ok_or(StoreError::NotFound(id))?;
    Ok(Json(KeyInfo::new(&record, store.now())).into_response())
}

async fn revoke<M: KeyManager + Clone>(State(store): State<M>, Path(id): Path<String>) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let record = store.revoke(&id).await?;
    tracing::info!(key_id = %id, "admin API revoked a key");
    Ok(Json(KeyInfo::new(&record, store.now())).into_response())
}

async fn rotate<M: KeyManager + Clone>(
    State(store): State<M>,
    Path(id): Path<String>,
    body: Result<Json<RotateKey>, JsonRejection>,
) -> Result<Response, Problem> {
    let id = parse_id(&id)?;
    let Json(body) = body?;
    let issued = store.rotate(&id, Duration::from_secs(body.grace_seconds)).await?;
    tracing::info!(old = %id, new = %issued.record.id, grace_seconds = body.grace_seconds, "admin API rotated a key");
    Ok(created(&store, &issued))
}
