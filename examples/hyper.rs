//! A plain hyper 1 server (no framework) behind [`ApiKeyLayer`], answering `GET /whoami` with JSON.
//!
//! ```text
//! cargo run --example hyper
//! curl -H "Authorization: Bearer $KEY" http://127.0.0.1:3001/whoami
//! ```
//!
//! It listens on `127.0.0.1:3001` (or `$ADDR`), over HTTP/1.1 and HTTP/2. `$DEMO_USER_KEY` is registered as an
//! opaque user-level key of `demo-user` and `$DEMO_SERVICE_KEY` as a system-level key of `demo-service` (scope
//! `keys:admin`); when they are not set, one key of each kind is minted and printed once. The key may come in
//! `Authorization: Bearer`, `API-Key` or `X-API-Key`. Without a valid key the answer is `401` with
//! `WWW-Authenticate: Bearer realm="api"` and an `application/problem+json` body.

#[path = "common/mod.rs"]
mod common;

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower_api_key::{ApiKeyLayer, MemoryStore, Principal};

/// `GET /whoami`: the principal the layer put into the request extensions, as JSON. Anything else is 404.
pub(crate) async fn whoami<B>(req: Request<B>) -> Result<Response<Full<Bytes>>, Infallible> {
    let json = |status: StatusCode, value: serde_json::Value| {
        let mut res = Response::new(Full::new(Bytes::from(value.to_string())));
        *res.status_mut() = status;
        res.headers_mut().insert(header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
        res
    };
    if req.method() != Method::GET || req.uri().path() != "/whoami" {
        return Ok(json(StatusCode::NOT_FOUND, serde_json::json!({ "error": "not found" })));
    }
    let Some(principal) = req.extensions().get::<Principal>() else {
        // Only reachable when the service runs without `ApiKeyLayer`: a server bug, not a client error.
        let error = "no principal: is ApiKeyLayer installed?";
        return Ok(json(StatusCode::INTERNAL_SERVER_ERROR, serde_json::json!({ "error": error })));
    };
    Ok(json(
        StatusCode::OK,
        serde_json::json!({
            "kind": principal.kind().as_str(),
            "id": principal.id(),
            "key_id": principal.key_id().as_str(),
        }),
    ))
}

/// Serves [`whoami`] behind `layer` on every connection `listener` accepts, over HTTP/1.1 or HTTP/2.
pub(crate) async fn serve(listener: TcpListener, layer: ApiKeyLayer) -> std::io::Result<()> {
    // The layer wraps a tower service; its rejections use the same body type (`Full<Bytes>`) as the handler.
    let service = tower::ServiceBuilder::new().layer(layer).service_fn(whoami);
    loop {
        let (stream, peer) = listener.accept().await?;
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            if let Err(error) =
                auto::Builder::new(TokioExecutor::new()).serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    common::init_tracing();
    let addr: SocketAddr = common::addr("127.0.0.1:3001")?;
    let store = MemoryStore::new();
    common::register_demo_keys_in(&store)?;

    let listener = TcpListener::bind(addr).await?;
    tracing::info!(addr = %listener.local_addr()?, "hyper server listening; try GET /whoami");
    serve(listener, ApiKeyLayer::new(store)).await?;
    Ok(())
}
