//! Outcome counters through the `metrics` crate (feature `metrics`).
#![cfg(feature = "metrics")]
#![allow(clippy::unwrap_used)]

use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use tower::ServiceExt;
use tower_api_key::{ApiKeyLayer, MemoryStore, NewKey};

fn counters(
    snapshot: Vec<(metrics_util::CompositeKey, Option<metrics::Unit>, Option<metrics::SharedString>, DebugValue)>,
) -> Vec<(String, u64)> {
    snapshot
        .into_iter()
        .filter_map(|(key, _, _, value)| match value {
            DebugValue::Counter(n) => {
                let k = key.key();
                let labels: Vec<String> = k.labels().map(|l| format!("{}={}", l.key(), l.value())).collect();
                Some((format!("{}{{{}}}", k.name(), labels.join(",")), n))
            }
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "current_thread")]
async fn outcomes_are_counted_by_reason() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let store = MemoryStore::new();
    let key = store.add(NewKey::user("alice")).unwrap().key.expose_secret().to_owned();
    let svc = tower::ServiceBuilder::new().layer(ApiKeyLayer::new(store)).service_fn(|_req: http::Request<()>| async {
        Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    });

    let requests = [
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("Bearer {key}")),
        ("x-api-key", key.clone()),
        // Refused for its bytes before anything else: not counted as a use of the deprecated header.
        ("x-api-key", "two words".to_owned()),
        ("authorization", "Bearer unknown-key".to_owned()),
        ("accept", "*/*".to_owned()),
    ];
    for (name, value) in requests {
        let req = http::Request::get("/").header(name, value).body(()).unwrap();
        let fut = svc.clone().oneshot(req);
        // The memory store answers synchronously, so the whole call runs inside the local recorder.
        let res = metrics::with_local_recorder(&recorder, || futures_now(fut));
        assert!(res.status().is_success() || res.status().is_client_error());
    }
    let got = counters(snapshotter.snapshot().into_vec());
    let find = |name: &str| got.iter().find(|(k, _)| k == name).map(|(_, n)| *n);
    assert_eq!(find("tower_api_key_requests_total{outcome=accepted,reason=ok}"), Some(3), "{got:?}");
    assert_eq!(find("tower_api_key_requests_total{outcome=rejected,reason=unknown}"), Some(1), "{got:?}");
    assert_eq!(find("tower_api_key_requests_total{outcome=rejected,reason=no_credential}"), Some(1), "{got:?}");
    assert_eq!(find("tower_api_key_requests_total{outcome=rejected,reason=bad_header_bytes}"), Some(1), "{got:?}");
    assert_eq!(find("tower_api_key_deprecated_header_total{header=x-api-key}"), Some(1), "{got:?}");
}

/// Polls a future that is ready at once.
fn futures_now<T, E: std::fmt::Debug, F: std::future::Future<Output = Result<T, E>>>(fut: F) -> T {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v.unwrap(),
        std::task::Poll::Pending => panic!("the memory store answers synchronously"),
    }
}
