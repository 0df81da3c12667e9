//! Per-request rejections and the responses they become.
//!
//! Every rejection has a [`RejectReason`] (for logs, events and metrics) and an [`ErrorCode`] (what the client is
//! told). A malformed, unknown, revoked, disabled or expired key all give the same `invalid_token` answer; only the
//! log says which.
//!
//! | code | HTTP | `WWW-Authenticate` | gRPC `grpc-status` |
//! |---|---|---|---|
//! | [`ErrorCode::MissingCredential`] | 401 | `Bearer realm="…"` | 16 UNAUTHENTICATED |
//! | [`ErrorCode::InvalidRequest`] | 400 | `Bearer realm="…", error="invalid_request"` | 16 |
//! | [`ErrorCode::InvalidToken`] | 401 | `Bearer realm="…", error="invalid_token"` | 16 |
//! | [`ErrorCode::InsufficientScope`] | 403 | `Bearer realm="…", error="insufficient_scope", scope="…"` | 7 PERMISSION_DENIED |
//! | [`ErrorCode::HttpsRequired`] | 403 | – | 7 |
//! | [`ErrorCode::RateLimited`] | 429 + `Retry-After`, `RateLimit-Policy`, `RateLimit` | – | 8 RESOURCE_EXHAUSTED |
//! | [`ErrorCode::Unavailable`] | 503 | – | 14 UNAVAILABLE |
//!
//! HTTP bodies are RFC 9457 problem details (`application/problem+json`), static text that never echoes the key.
//! gRPC requests (`content-type: application/grpc…`) get a trailers-only response: HTTP 200, `grpc-status`,
//! percent-encoded `grpc-message`, empty body. grpc-web requests (`application/grpc-web…`) get the same, with the
//! request's own content type, so the layer works outside `tonic_web::GrpcWebLayer` as well as inside it.
//!
//! The response is replaceable: pass any [`OnRejection`] (a closure `Fn(&Rejection) -> Response<B>` works) to
//! [`crate::ApiKeyLayer::on_rejection`].

mod body;
mod reason;
mod rejection;

pub use body::RejectionBody;
pub use reason::{ErrorCode, RateLimitInfo, RejectReason};
pub(crate) use rejection::{Challenges, GrpcKind};
pub use rejection::{DEFAULT_REALM, DefaultRejection, OnRejection, Rejection};
