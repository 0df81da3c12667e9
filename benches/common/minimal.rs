//! The least any implementation of the valid path could do, as a hand-written middleware ([`MinimalAuth`]), and
//! the response future the hand-written middlewares of the benches share. Generic over the body types, so that
//! `benches/serve.rs` can put it in front of an axum route as well. No dependency on the rest of `common`.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::AUTHORIZATION;
use http::{Request, Response, StatusCode};
use tower::Service;
use tower_api_key::{Classified, KeyFormat, KeyRecord, KeyStore, Lookup, MemoryStore};

type BoxFut<RB> = Pin<Box<dyn Future<Output = Result<Response<RB>, Infallible>> + Send>>;

pin_project_lite::pin_project! {
    /// A hand-written middleware's future: a ready rejection, the inner future as it is, or a boxed one.
    #[project = HandFutProj]
    pub enum HandFut<F, RB> {
        Ready { res: Option<Response<RB>> },
        Inner { #[pin] fut: F },
        Boxed { fut: BoxFut<RB> },
    }
}

impl<F: Future<Output = Result<Response<RB>, Infallible>>, RB> Future for HandFut<F, RB> {
    type Output = Result<Response<RB>, Infallible>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            HandFutProj::Ready { res } => Poll::Ready(Ok(res.take().expect("polled after completion"))),
            HandFutProj::Inner { fut } => fut.poll(cx),
            HandFutProj::Boxed { fut } => fut.as_mut().poll(cx),
        }
    }
}

/// A bare 401.
pub fn unauthorized<RB: Default>() -> Response<RB> {
    let mut res = Response::new(RB::default());
    *res.status_mut() = StatusCode::UNAUTHORIZED;
    res
}

/// The least any implementation of the valid path could do, as a hand-written middleware over the crate's public
/// parts: one `Authorization` lookup, `Bearer ` stripped, the format check, the memory store's `lookup_now` (called
/// directly, no `dyn`), SHA-256 of the secret and the constant-time compare, the revoked check, and the record's
/// `Arc` inserted as the extension; the inner future returned as it is. No sensitive marking, no duplicate-header
/// check, no kind, expiry, rate-limit or tracing checks. A reference, not a peer: in process
/// (`valid/minimal_pipeline`) and end to end (`benches/serve.rs --serve <addr> minimal`).
#[derive(Clone)]
pub struct MinimalAuth<S> {
    inner: S,
    format: KeyFormat,
    store: MemoryStore,
}

impl<S> MinimalAuth<S> {
    pub fn new(inner: S, store: MemoryStore) -> Self {
        Self { inner, format: KeyFormat::new(), store }
    }

    fn verify<B>(&self, req: &Request<B>) -> Option<Arc<KeyRecord>> {
        let value = req.headers().get(AUTHORIZATION)?.as_bytes();
        if value.len() < 8 || !value[..7].eq_ignore_ascii_case(b"bearer ") {
            return None;
        }
        let Classified::Ours(parsed) = self.format.classify(&value[7..]) else { return None };
        let record = self.store.lookup_now(Lookup::Id(parsed.id()))?.ok()??;
        let ok = bool::from(record.digest.ct_eq(&parsed.secret_digest())) && record.revoked_at.is_none();
        ok.then_some(record)
    }
}

impl<S, B, RB> Service<Request<B>> for MinimalAuth<S>
where
    S: Service<Request<B>, Response = Response<RB>, Error = Infallible>,
    RB: Default,
{
    type Response = Response<RB>;
    type Error = Infallible;
    type Future = HandFut<S::Future, RB>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let Some(record) = self.verify(&req) else { return HandFut::Ready { res: Some(unauthorized()) } };
        req.extensions_mut().insert(record);
        HandFut::Inner { fut: self.inner.call(req) }
    }
}
