//! [`ResponseFuture`]: the future returned by [`crate::ApiKeyAuth`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use http::Response;
use pin_project_lite::pin_project;

use super::deprecation::Deprecation;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

pin_project! {
    /// Response future of [`crate::ApiKeyAuth`]: a rejection ready at once, the inner service's future (keys
    /// verified without waiting), or a boxed future that waits for the store and then runs the inner service.
    pub struct ResponseFuture<F, B, E> {
        #[pin]
        kind: Kind<F, B, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B, E> {
        Ready { response: Option<Response<B>> },
        Inner { #[pin] future: F },
        Deprecated { #[pin] future: F, headers: Arc<Deprecation> },
        Boxed { future: BoxFuture<Result<Response<B>, E>> },
    }
}

impl<F, B, E> ResponseFuture<F, B, E> {
    pub(crate) fn ready(response: Response<B>) -> Self {
        Self { kind: Kind::Ready { response: Some(response) } }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self { kind: Kind::Inner { future } }
    }

    /// The inner service's future, whose response gets the deprecation headers.
    pub(crate) fn deprecated(future: F, headers: Arc<Deprecation>) -> Self {
        Self { kind: Kind::Deprecated { future, headers } }
    }

    pub(crate) fn boxed(future: impl Future<Output = Result<Response<B>, E>> + Send + 'static) -> Self {
        Self { kind: Kind::Boxed { future: Box::pin(future) } }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B, E>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Ready { response } => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                None => Poll::Pending, // polled after completion: never resolves again
            },
            KindProj::Inner { future } => future.poll(cx),
            KindProj::Deprecated { future, headers } => future.poll(cx).map_ok(|mut res| {
                headers.apply(res.headers_mut());
                res
            }),
            KindProj::Boxed { future } => future.as_mut().poll(cx),
        }
    }
}

impl<F, B, E> fmt::Debug for ResponseFuture<F, B, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.kind {
            Kind::Ready { .. } => "ready",
            Kind::Inner { .. } | Kind::Deprecated { .. } => "inner",
            Kind::Boxed { .. } => "waiting for store",
        };
        f.debug_struct("ResponseFuture").field("state", &state).finish()
    }
}
