//! The key-management console (feature `console`): a web page over the [admin API](crate::admin), served by
//! [`admin::router`](crate::admin::router) at its root.
//!
//! Plain HTML, CSS and a little JavaScript, embedded in the crate: no build step, nothing fetched from elsewhere.
//! The operator signs in by pasting a key with the scope `keys:admin`; the page keeps it in a JavaScript variable
//! only (never in `localStorage`, `sessionStorage`, a cookie or the URL) and sends it as `Authorization: Bearer`
//! on each API call, so the page is safe from cross-site request forgery by construction. "Sign out" forgets it.
//!
//! | path (under the admin router) | what |
//! |---|---|
//! | `GET /` | the page (also when mounted without a trailing slash, as `Router::nest` does) |
//! | `GET /console.js`, `GET /console.css` | its script and style |
//!
//! These three answer without a key: a browser cannot send one when it loads a page. Every API route still needs
//! one. So mount the admin router behind an [`ApiKeyLayer`](crate::ApiKeyLayer) in
//! [`optional`](crate::ApiKeyLayer::optional) mode: a request with no key reaches the page, and the API answers it
//! 401; a bad key is still refused by the layer.
//!
//! Every answer of the admin router, page and API alike, carries
//! [`admin::CONTENT_SECURITY_POLICY`](crate::admin::CONTENT_SECURITY_POLICY) (no inline script, no inline event
//! handler, nothing from another origin, no framing), `X-Content-Type-Options: nosniff`,
//! `Referrer-Policy: no-referrer` and `Cache-Control: no-store`. The page's script inserts text from the API as
//! text, never as HTML.
//!
//! ```
//! use axum::Router;
//! use tower_api_key::{admin, ApiKeyLayer, KeyManager, MemoryStore};
//!
//! let store = MemoryStore::new();
//! let app: Router = Router::new()
//!     // `nest_service` routes both `/admin` and `/admin/` to the page.
//!     .nest_service("/admin", admin::router(KeyManager::new(store.clone())).layer(ApiKeyLayer::new(store).optional()));
//! ```

use axum::Router;
use axum::extract::OriginalUri;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::manage::KeyManager;

const PAGE: &str = include_str!("console/index.html");
const SCRIPT: &str = include_str!("console/console.js");
const STYLE: &str = include_str!("console/console.css");

/// The page's routes, with no scope check: the admin router merges them beside its guarded API.
pub(crate) fn routes() -> Router<KeyManager> {
    Router::new()
        .route("/", get(page))
        .route("/console.js", get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }))
        .route("/console.css", get(|| async { asset("text/css; charset=utf-8", STYLE) }))
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// The page, with its script, style and API addressed from where it was mounted: `/admin` and `/admin/` both
/// give `/admin/`, so the page works whether or not the URL ends in a slash.
async fn page(OriginalUri(uri): OriginalUri) -> Response {
    let base = format!("{}/", uri.path().trim_end_matches('/'));
    let html = PAGE.replace("{{BASE}}", &escape_attribute(&base));
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}

/// `text` made safe inside a double-quoted HTML attribute.
fn escape_attribute(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_base_is_escaped_for_an_attribute() {
        assert_eq!(escape_attribute(r#"/a"b'<c>&/"#), "/a&quot;b&#39;&lt;c&gt;&amp;/");
    }

    #[test]
    fn the_page_has_no_inline_script_or_handler_and_fetches_nothing_from_elsewhere() {
        let lower = PAGE.to_ascii_lowercase();
        // Every <script> has a src; no on*= attribute; no absolute URL.
        for (i, _) in lower.match_indices("<script") {
            let tag_end = lower[i..].find('>').map(|e| i + e).unwrap_or(lower.len());
            assert!(lower[i..tag_end].contains(" src="), "inline script at {i}");
        }
        assert!(!regex_like_handler(&lower), "an inline event handler");
        for text in [PAGE, SCRIPT.replace("\"http://www.w3.org/2000/svg\"", "").as_str(), STYLE] {
            assert!(!text.contains("http://") && !text.contains("https://") && !text.contains("//cdn"));
        }
        // The script never writes HTML, and never keeps anything in the browser's storage.
        for banned in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "localStorage",
            "sessionStorage",
            "document.cookie",
            "eval(",
            "new Function",
        ] {
            assert!(!SCRIPT.contains(banned), "console.js uses {banned}");
        }
    }

    /// Whether an HTML text has an attribute named `on…=` (an inline event handler).
    fn regex_like_handler(lower: &str) -> bool {
        lower.match_indices(" on").any(|(i, _)| {
            let rest = &lower[i + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            name_len > 0 && rest[name_len..].trim_start().starts_with('=')
        })
    }
}
