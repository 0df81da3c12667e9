//! The store timeout: a lookup that takes longer than the layer's `store_timeout` fails closed (503).
//!
//! On a Tokio runtime with its time driver (what axum, hyper-util and tonic servers run on) the runtime's own
//! timer is used. A runtime built without `enable_time`, or no runtime at all, has no timer to use: there the
//! lookup is raced against a timer on a small background Tokio runtime that the crate starts once, on first need,
//! so the bound holds everywhere and nothing panics.

use std::collections::HashMap;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use tokio::runtime::{Handle, Id};

use crate::store::StoreError;

/// Runs `lookup`, answering [`StoreError::Timeout`] once `timeout` has passed.
pub(crate) async fn bounded<T>(
    lookup: impl Future<Output = Result<T, StoreError>>,
    timeout: Duration,
) -> Result<T, StoreError> {
    let expired = || Err(StoreError::Timeout(timeout));
    if Handle::try_current().is_ok_and(|handle| has_timer(&handle)) {
        return tokio::time::timeout(timeout, lookup).await.unwrap_or_else(|_| expired());
    }
    let Some(timer) = fallback_timer() else {
        // The background timer could not be started (no thread could be spawned): no bound to enforce.
        return lookup.await;
    };
    let deadline = timer.spawn(async move { tokio::time::sleep(timeout).await });
    let abort = deadline.abort_handle();
    tokio::select! {
        biased;
        result = lookup => {
            abort.abort();
            result
        }
        _ = deadline => expired(),
    }
}

/// Whether this runtime has a time driver. Tokio has no way to ask, and making a timer on a runtime without one
/// panics; so the first lookup on each runtime makes one inside `catch_unwind` (Tokio's panic message is then
/// printed once) and the answer is kept per runtime.
fn has_timer(handle: &Handle) -> bool {
    static SEEN: OnceLock<Mutex<HashMap<Id, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    let id = handle.id();
    if let Some(known) = seen.lock().unwrap_or_else(PoisonError::into_inner).get(&id) {
        return *known;
    }
    let _enter = handle.enter();
    let ok = catch_unwind(AssertUnwindSafe(|| drop(tokio::time::sleep(Duration::ZERO)))).is_ok();
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    if seen.len() < 1024 {
        seen.insert(id, ok);
    }
    ok
}

/// The background timer runtime, started on first need.
fn fallback_timer() -> Option<&'static Handle> {
    static TIMER: OnceLock<Option<Handle>> = OnceLock::new();
    TIMER
        .get_or_init(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().ok()?;
            let handle = runtime.handle().clone();
            std::thread::Builder::new()
                .name("tower-api-key-timer".into())
                .spawn(move || runtime.block_on(std::future::pending::<()>()))
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::LookupResult;

    async fn slow() -> LookupResult {
        std::future::pending::<()>().await;
        Ok(None)
    }

    #[test]
    fn a_runtime_without_timers_still_times_out() {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let result = rt.block_on(bounded(slow(), Duration::from_millis(50)));
        assert!(matches!(result, Err(StoreError::Timeout(_))));
        // And a fast lookup answers.
        assert!(matches!(rt.block_on(bounded(async { LookupResult::Ok(None) }, Duration::from_secs(5))), Ok(None)));
    }

    #[test]
    fn outside_any_runtime_too() {
        let waker = std::task::Waker::noop();
        let mut cx = std::task::Context::from_waker(waker);
        let mut fast = std::pin::pin!(bounded(async { LookupResult::Ok(None) }, Duration::from_secs(5)));
        assert!(matches!(fast.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(None))));
        let started = std::time::Instant::now();
        let result = futures_lite_block_on(bounded(slow(), Duration::from_millis(50)));
        assert!(matches!(result, Err(StoreError::Timeout(_))));
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    /// A minimal executor with no Tokio context (std only): parks the thread until woken.
    fn futures_lite_block_on<F: Future>(future: F) -> F::Output {
        use std::sync::Arc;
        use std::task::{Context, Poll, Wake};
        struct Unpark(std::thread::Thread);
        impl Wake for Unpark {
            fn wake(self: Arc<Self>) {
                self.0.unpark();
            }
        }
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
                return out;
            }
            std::thread::park();
        }
    }

    #[test]
    fn a_runtime_with_timers_uses_its_own() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        assert!(has_timer(rt.handle()));
        let plain = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert!(!has_timer(plain.handle()));
    }
}
