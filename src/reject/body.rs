//! [`RejectionBody`]: the response body types a rejection can be built into.

use bytes::Bytes;

/// A response body the default rejection can build: from static bytes (problem details) or empty (gRPC).
///
/// Implemented for axum's body (feature `axum`), tonic's body (feature `tonic`), `http_body_util::Full<Bytes>`,
/// `Empty<Bytes>`, `BoxBody` / `UnsyncBoxBody` over `Bytes`, `String`, `Bytes` and `Vec<u8>`. Implement it for your
/// own body type in two lines.
///
/// ```
/// use tower_api_key::RejectionBody;
/// let body = <String as RejectionBody>::from_static(b"{}");
/// assert_eq!(body, "{}");
/// ```
pub trait RejectionBody: Sized {
    /// A body holding `bytes`.
    ///
    /// ```
    /// use tower_api_key::RejectionBody;
    /// assert_eq!(<Vec<u8> as RejectionBody>::from_static(b"x"), b"x");
    /// ```
    fn from_static(bytes: &'static [u8]) -> Self;
    /// An empty body.
    ///
    /// ```
    /// use tower_api_key::RejectionBody;
    /// assert!(<bytes::Bytes as RejectionBody>::empty().is_empty());
    /// ```
    fn empty() -> Self;
}

impl RejectionBody for Bytes {
    fn from_static(bytes: &'static [u8]) -> Self {
        Bytes::from_static(bytes)
    }
    fn empty() -> Self {
        Bytes::new()
    }
}

impl RejectionBody for String {
    fn from_static(bytes: &'static [u8]) -> Self {
        String::from_utf8_lossy(bytes).into_owned()
    }
    fn empty() -> Self {
        String::new()
    }
}

impl RejectionBody for Vec<u8> {
    fn from_static(bytes: &'static [u8]) -> Self {
        bytes.to_vec()
    }
    fn empty() -> Self {
        Vec::new()
    }
}

impl RejectionBody for http_body_util::Full<Bytes> {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::new(Bytes::from_static(bytes))
    }
    fn empty() -> Self {
        Self::default()
    }
}

impl RejectionBody for http_body_util::Empty<Bytes> {
    fn from_static(_: &'static [u8]) -> Self {
        Self::new()
    }
    fn empty() -> Self {
        Self::new()
    }
}

impl<E: 'static> RejectionBody for http_body_util::combinators::BoxBody<Bytes, E> {
    fn from_static(bytes: &'static [u8]) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from_static(bytes)).map_err(|never| match never {}).boxed()
    }
    fn empty() -> Self {
        use http_body_util::BodyExt;
        http_body_util::Empty::new().map_err(|never| match never {}).boxed()
    }
}

impl<E: 'static> RejectionBody for http_body_util::combinators::UnsyncBoxBody<Bytes, E> {
    fn from_static(bytes: &'static [u8]) -> Self {
        use http_body_util::BodyExt;
        http_body_util::Full::new(Bytes::from_static(bytes)).map_err(|never| match never {}).boxed_unsync()
    }
    fn empty() -> Self {
        use http_body_util::BodyExt;
        http_body_util::Empty::new().map_err(|never| match never {}).boxed_unsync()
    }
}

#[cfg(feature = "axum")]
impl RejectionBody for axum_core::body::Body {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::from(Bytes::from_static(bytes))
    }
    fn empty() -> Self {
        Self::empty()
    }
}

#[cfg(feature = "tonic")]
impl RejectionBody for tonic::body::Body {
    fn from_static(bytes: &'static [u8]) -> Self {
        Self::new(http_body_util::Full::new(Bytes::from_static(bytes)))
    }
    fn empty() -> Self {
        Self::default()
    }
}
