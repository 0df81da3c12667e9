//! Requiring HTTPS: API keys are bearer secrets and must only travel over TLS.
//!
//! Every API key guideline states the rule: a key sent over plain HTTP is a leaked key. With
//! [`crate::ApiKeyLayer::require_https`] the layer rejects requests that did not arrive over HTTPS (403, gRPC 7)
//! before looking at any credential.
//!
//! How the layer knows a request came over TLS, from what the server knows and never from what the client says:
//! * the request carries the [`Secure`] extension, which your TLS acceptor inserts on every request of a TLS
//!   connection (for example with `tower_http::add_extension::AddExtensionLayer::new(Secure)` on the service you
//!   hand to the TLS accept loop);
//! * or, only with [`HttpsPolicy::behind_proxy`], the nearest proxy said so: the last `X-Forwarded-Proto` value is
//!   `https`, or the last `Forwarded` element has `proto=https`. Trust these headers only when a proxy you run
//!   sets them, since a client can send them too.
//!
//! The request URI's scheme does **not** count: on a cleartext connection the client chooses it (an HTTP/2
//! `:scheme: https` pseudo-header, an HTTP/1.1 absolute-form `https://…` target).

use http::Request;
use http::header::HeaderName;

static X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
static FORWARDED: HeaderName = HeaderName::from_static("forwarded");

/// Marks a request as received over TLS. Insert it in your TLS accept loop (for example with
/// `tower_http::add_extension::AddExtensionLayer`): it is the only proof of TLS that [`HttpsPolicy::direct`]
/// accepts.
///
/// ```
/// let mut req = http::Request::new(());
/// req.extensions_mut().insert(tower_api_key::Secure);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Secure;

/// When a request counts as HTTPS. See the [module docs](self).
///
/// ```
/// use tower_api_key::HttpsPolicy;
/// let direct = HttpsPolicy::direct();
/// let proxied = HttpsPolicy::behind_proxy();
/// assert_ne!(direct, proxied);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpsPolicy {
    trust_proxy: bool,
}

impl HttpsPolicy {
    /// Only the [`Secure`] extension counts; proxy headers and the URI scheme are ignored.
    ///
    /// ```
    /// let p = tower_api_key::HttpsPolicy::direct();
    /// ```
    #[must_use]
    pub fn direct() -> Self {
        Self { trust_proxy: false }
    }

    /// Also trusts `X-Forwarded-Proto` and `Forwarded: proto=` as set by the nearest proxy.
    ///
    /// ```
    /// let p = tower_api_key::HttpsPolicy::behind_proxy();
    /// ```
    #[must_use]
    pub fn behind_proxy() -> Self {
        Self { trust_proxy: true }
    }

    /// Whether `req` counts as having arrived over HTTPS.
    ///
    /// ```
    /// use tower_api_key::{HttpsPolicy, Secure};
    /// // The client picks the URI scheme, even on a cleartext connection: it proves nothing.
    /// let req = http::Request::get("https://api.example/x").body(()).unwrap();
    /// assert!(!HttpsPolicy::direct().is_secure(&req));
    /// let mut req = http::Request::get("/x").body(()).unwrap();
    /// req.extensions_mut().insert(Secure); // inserted by the TLS acceptor
    /// assert!(HttpsPolicy::direct().is_secure(&req));
    /// let req = http::Request::get("/x").header("x-forwarded-proto", "https").body(()).unwrap();
    /// assert!(!HttpsPolicy::direct().is_secure(&req));
    /// assert!(HttpsPolicy::behind_proxy().is_secure(&req));
    /// ```
    #[must_use]
    pub fn is_secure<B>(&self, req: &Request<B>) -> bool {
        if req.extensions().get::<Secure>().is_some() {
            return true;
        }
        if !self.trust_proxy {
            return false;
        }
        let headers = req.headers();
        if let Some(last) = headers.get_all(&X_FORWARDED_PROTO).iter().next_back() {
            let last_proto = last.to_str().ok().and_then(|v| v.rsplit(',').next()).map(str::trim);
            return last_proto.is_some_and(|p| p.eq_ignore_ascii_case("https"));
        }
        if let Some(last) = headers.get_all(&FORWARDED).iter().next_back() {
            let element = last.to_str().ok().and_then(|v| v.rsplit(',').next()).unwrap_or("");
            return element.split(';').any(|pair| {
                let mut kv = pair.splitn(2, '=');
                let k = kv.next().unwrap_or("").trim();
                let v = kv.next().unwrap_or("").trim().trim_matches('"');
                k.eq_ignore_ascii_case("proto") && v.eq_ignore_ascii_case("https")
            });
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get("/x");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    #[test]
    fn proxy_headers_table() {
        let rows: &[(&[(&str, &str)], bool)] = &[
            (&[], false),
            (&[("x-forwarded-proto", "https")], true),
            (&[("x-forwarded-proto", "HTTPS")], true),
            (&[("x-forwarded-proto", "http")], false),
            (&[("x-forwarded-proto", "https, http")], false),
            (&[("x-forwarded-proto", "http, https")], true),
            (&[("forwarded", "for=1.2.3.4;proto=https")], true),
            (&[("forwarded", "proto=https, for=5.6.7.8;proto=http")], false),
            (&[("forwarded", "for=\"[::1]\";proto=\"https\"")], true),
            (&[("forwarded", "for=1.2.3.4")], false),
        ];
        for (headers, want) in rows {
            assert_eq!(HttpsPolicy::behind_proxy().is_secure(&req(headers)), *want, "{headers:?}");
            assert!(!HttpsPolicy::direct().is_secure(&req(headers)), "{headers:?}");
        }
    }

    #[test]
    fn the_uri_scheme_proves_nothing() {
        for uri in ["https://api.example/x", "HTTPS://api.example/x"] {
            let r = Request::get(uri).body(()).unwrap();
            assert!(!HttpsPolicy::direct().is_secure(&r), "{uri}");
            assert!(!HttpsPolicy::behind_proxy().is_secure(&r), "{uri}");
        }
    }

    #[test]
    fn secure_extension_counts() {
        let mut r = req(&[]);
        r.extensions_mut().insert(Secure);
        assert!(HttpsPolicy::direct().is_secure(&r));
    }
}
