//! Bad-input catalog over a real server: `axum::serve` on loopback with `ApiKeyLayer::new(store).scheme("Api-Key")`,
//! and raw HTTP/1.1 written byte by byte over a `TcpStream`, so that control bytes, obs-text, huge values and
//! duplicate headers reach the server exactly as written (client libraries refuse most of them).
//!
//! Each row is: name, raw header lines, expected answer. Every row asserts no 5xx, the exact status and
//! `WWW-Authenticate` challenge, that no presented key is echoed, and that the server still answers a valid
//! request with 200 afterwards.
//!
//! | answer | status | `WWW-Authenticate` | when |
//! |---|---|---|---|
//! | `Ok` | 200 | – | a valid key from the winning source |
//! | `Missing` | 401 | `Bearer realm="api"` | no credential in any enabled source (other schemes only) |
//! | `InvalidRequest` | 400 | `…, error="invalid_request"` | empty key or empty `Authorization`, bytes outside visible ASCII (obs-text, tab or space inside the key), ambiguous duplicates |
//! | `InvalidToken` | 401 | `…, error="invalid_token"` | unknown, malformed (checksum, trailing junk) or over-long key |
//! | `Hyper(400)` | 400 | – | hyper's HTTP/1 parser refuses the message before the layer runs: control bytes (NUL, 0x01, DEL, bare CR), obs-fold, a space before the colon |
//! | `Hyper(431)` | 431 | – | hyper refuses the header section: more than 100 header fields, or more than ~400 KiB of head |
//! | `Grpc(16)` | 200 | – (`grpc-status: 16`) | `content-type: application/grpc` with a bad credential: trailers-only gRPC answer |
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::net::SocketAddr;
use std::time::Duration;

use axum::{Router, routing::get};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tower_api_key::{ApiKeyLayer, KeyFormat, MemoryStore, NewKey, Principal};

const OPAQUE: &str = "legacy-opaque-key-0123456789";
const REALM: &str = "Bearer realm=\"api\"";
const INVALID_REQUEST: &str = "Bearer realm=\"api\", error=\"invalid_request\"";
const INVALID_TOKEN: &str = "Bearer realm=\"api\", error=\"invalid_token\"";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    /// 200 from the handler, as this principal.
    Ok(&'static str),
    /// 401, `Bearer realm="api"`.
    Missing,
    /// 400 `invalid_request`.
    InvalidRequest,
    /// 401 `invalid_token`.
    InvalidToken,
    /// Answered by hyper before the layer runs (no challenge).
    Hyper(u16),
    /// gRPC trailers-only answer: HTTP 200 with this `grpc-status`.
    Grpc(&'static str),
}

struct Server {
    addr: SocketAddr,
    user: String,
    system: String,
}

async fn start() -> Server {
    let store = MemoryStore::new();
    let user = store.add(NewKey::user("alice")).unwrap().key.expose_secret().to_owned();
    let system = store.add(NewKey::system("billing")).unwrap().key.expose_secret().to_owned();
    store.import(OPAQUE, NewKey::user("carol")).unwrap();
    let app = Router::new()
        .route("/whoami", get(|p: Principal| async move { p.id().to_owned() }))
        .layer(ApiKeyLayer::new(store).scheme("Api-Key").unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Server { addr, user, system }
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    raw: Vec<u8>,
}

impl std::fmt::Debug for RawResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = |b: &[u8]| String::from_utf8_lossy(&b[..b.len().min(300)]).into_owned();
        f.debug_struct("RawResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.iter().map(|(n, v)| format!("{n}: {}", text(v))).collect::<Vec<_>>())
            .field("body", &text(&self.body))
            .finish_non_exhaustive()
    }
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_slice())
    }

    fn header_str(&self, name: &str) -> Option<String> {
        self.header(name).map(|v| String::from_utf8_lossy(v).into_owned())
    }
}

fn parse_response(raw: Vec<u8>) -> RawResponse {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| {
        panic!("no complete response head in {:?}", String::from_utf8_lossy(&raw));
    });
    let head = std::str::from_utf8(&raw[..end]).expect("response head is ASCII");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let mut parts = status_line.splitn(3, ' ');
    assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {status_line:?}");
    let status: u16 =
        parts.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("status line {status_line:?}"));
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(':').unwrap_or_else(|| panic!("header line {l:?}"));
            (n.trim().to_owned(), v.trim().as_bytes().to_vec())
        })
        .collect();
    let body = raw[end + 4..].to_vec();
    RawResponse { status, headers, body, raw }
}

/// Sends `GET /whoami` with `lines` (each without its CRLF) as extra header lines, and reads the whole answer.
async fn send(addr: SocketAddr, lines: &[Vec<u8>]) -> RawResponse {
    let mut req = b"GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".to_vec();
    for line in lines {
        req.extend_from_slice(line);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"\r\n");
    let mut stream = TcpStream::connect(addr).await.unwrap();
    // A server that refuses an over-large head may answer and close before reading it all: a failed write is fine
    // as long as the answer arrives.
    let _ = stream.write_all(&req).await;
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                // A reset after the answer was sent (unread request bytes) ends the stream too.
                Err(e) if !raw.is_empty() => {
                    println!("read ended with {e} after {} bytes", raw.len());
                    break;
                }
                Err(e) => panic!("no answer: {e}"),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server did not answer within 10 s");
    parse_response(raw)
}

fn line(name: &str, value: impl AsRef<[u8]>) -> Vec<u8> {
    [name.as_bytes(), b": ", value.as_ref()].concat()
}

fn rows(s: &Server) -> Vec<(&'static str, Vec<Vec<u8>>, Want)> {
    use Want::*;
    let user = s.user.as_str();
    let system = s.system.as_str();
    let unknown = KeyFormat::new().issue(NewKey::user("nobody"), std::time::SystemTime::now());
    let unknown = unknown.key.expose_secret().to_owned();
    let mut bad_sum = user.as_bytes().to_vec();
    let last = bad_sum.len() - 1;
    bad_sum[last] = if bad_sum[last] == b'A' { b'B' } else { b'A' };
    let replaced = |at: usize, byte: u8| {
        let mut key = user.as_bytes().to_vec();
        key[at] = byte;
        key
    };
    let obs_inside = replaced(30, 0xE9);
    let space_inside = replaced(30, b' ');
    let kib8 = "k".repeat(8 * 1024);
    let kib64 = "k".repeat(64 * 1024);
    let kib512 = "k".repeat(512 * 1024);
    let same50: Vec<Vec<u8>> = (0..50).map(|_| line("API-Key", user)).collect();
    let same50_bad: Vec<Vec<u8>> = (0..50).map(|_| line("API-Key", "not-a-key-but-the-same")).collect();
    let differ50: Vec<Vec<u8>> = (0..50).map(|i| line("API-Key", format!("{user}{i}"))).collect();
    let differ50_auth: Vec<Vec<u8>> =
        (0..50).map(|i| line("Authorization", format!("Bearer key-number-{i:04}"))).collect();
    let too_many: Vec<Vec<u8>> = (0..120).map(|_| line("API-Key", user)).collect();
    let mut first_valid_then_differ = vec![line("Authorization", format!("Bearer {user}"))];
    first_valid_then_differ.extend((0..49).map(|i| line("Authorization", format!("Bearer other-{i}"))));

    vec![
        // baseline
        ("valid bearer", vec![line("Authorization", format!("Bearer {user}"))], Ok("alice")),
        ("valid custom scheme", vec![line("Authorization", format!("Api-Key {system}"))], Ok("billing")),
        ("valid api-key header", vec![line("API-Key", OPAQUE)], Ok("carol")),
        ("valid x-api-key header", vec![line("X-API-Key", user)], Ok("alice")),
        ("no credential", vec![], Missing),
        // empty
        ("empty api-key", vec![b"API-Key:".to_vec()], InvalidRequest),
        ("empty x-api-key", vec![b"X-API-Key:".to_vec()], InvalidRequest),
        ("empty authorization", vec![b"Authorization:".to_vec()], InvalidRequest),
        // whitespace only
        ("whitespace-only api-key", vec![b"API-Key:      ".to_vec()], InvalidRequest),
        ("tabs-only api-key", vec![b"API-Key:\t\t\t".to_vec()], InvalidRequest),
        ("whitespace-only authorization", vec![b"Authorization:    \t ".to_vec()], InvalidRequest),
        // tabs
        ("tab separator", vec![line("Authorization", format!("Bearer\t{user}"))], Ok("alice")),
        ("tabs around api-key", vec![line("API-Key", format!("\t\t{user}\t"))], Ok("alice")),
        ("tab inside key", vec![line("API-Key", "abcd\tefgh")], InvalidRequest),
        // control bytes: refused by hyper's parser before the layer runs
        ("NUL in key", vec![line("API-Key", b"abcd\x00efgh")], Hyper(400)),
        ("0x01 in key", vec![line("API-Key", b"abcd\x01efgh")], Hyper(400)),
        ("ESC in bearer", vec![line("Authorization", b"Bearer abcd\x1befgh")], Hyper(400)),
        ("DEL in key", vec![line("API-Key", b"abcd\x7fefgh")], Hyper(400)),
        ("bare CR in key", vec![line("API-Key", b"abcd\refgh")], Hyper(400)),
        ("obs-fold continuation", vec![line("API-Key", "abcd"), b" efgh".to_vec()], Hyper(400)),
        ("space before colon", vec![b"API-Key : abcdefgh".to_vec()], Hyper(400)),
        // obs-text (0x80-0xFF): passes hyper, refused by the layer
        ("obs-text api-key", vec![line("API-Key", b"caf\xc3\xa9-key-\xff")], InvalidRequest),
        (
            "obs-text bearer",
            vec![line("Authorization", [b"Bearer ".as_slice(), user.as_bytes(), b"\x80"].concat())],
            InvalidRequest,
        ),
        ("obs-text x-api-key", vec![line("X-API-Key", (0x80..=0xFFu8).collect::<Vec<u8>>())], InvalidRequest),
        // a key of the crate's format, same length, one byte replaced: the byte check still answers first
        ("obs-text inside a crate-format key", vec![line("API-Key", &obs_inside)], InvalidRequest),
        (
            "space inside a crate-format key",
            vec![line("Authorization", [b"Bearer ".as_slice(), &space_inside].concat())],
            InvalidRequest,
        ),
        ("obs-text scheme is another scheme", vec![line("Authorization", b"B\xe9arer abcdefgh")], Missing),
        // size
        ("8 KiB api-key", vec![line("API-Key", &kib8)], InvalidToken),
        ("64 KiB bearer", vec![line("Authorization", format!("Bearer {kib64}"))], InvalidToken),
        ("64 KiB x-api-key", vec![line("X-API-Key", &kib64)], InvalidToken),
        ("512 KiB head", vec![line("API-Key", &kib512)], Hyper(431)),
        // duplicates
        ("50 identical valid", same50, Ok("alice")),
        ("50 identical invalid", same50_bad, InvalidToken),
        ("50 differing api-key", differ50, InvalidRequest),
        ("50 differing bearer", differ50_auth, InvalidRequest),
        ("valid first, 49 differing", first_valid_then_differ, InvalidRequest),
        ("120 headers", too_many, Hyper(431)),
        // mixed sources (priority: Bearer > custom scheme > API-Key > X-API-Key)
        (
            "bearer valid, api-key junk",
            vec![line("API-Key", "junk-junk-junk"), line("Authorization", format!("Bearer {user}"))],
            Ok("alice"),
        ),
        (
            "bearer junk, api-key valid",
            vec![line("Authorization", "Bearer junk-junk-junk"), line("API-Key", user)],
            InvalidToken,
        ),
        (
            "scheme valid, x-api-key junk",
            vec![line("Authorization", format!("Api-Key {system}")), line("X-API-Key", "junk-junk-junk")],
            Ok("billing"),
        ),
        (
            "api-key junk, x-api-key valid",
            vec![line("X-API-Key", user), line("API-Key", "junk-junk-junk")],
            InvalidToken,
        ),
        ("api-key empty, x-api-key valid", vec![line("API-Key", ""), line("X-API-Key", user)], InvalidRequest),
        (
            "bearer and scheme, both valid",
            vec![line("Authorization", format!("Api-Key {system}")), line("Authorization", format!("Bearer {user}"))],
            Ok("alice"),
        ),
        // schemes
        ("basic scheme", vec![line("Authorization", "Basic dXNlcjpwYXNzd29yZA==")], Missing),
        ("unconfigured scheme", vec![line("Authorization", format!("Token {user}"))], Missing),
        ("basic, then api-key", vec![line("Authorization", "Basic dXNlcjpwYXNz"), line("API-Key", user)], Ok("alice")),
        ("scheme glued to key", vec![line("Authorization", format!("Bearer{user}"))], Missing),
        ("bearer only", vec![line("Authorization", "Bearer")], InvalidRequest),
        ("bearer and spaces", vec![line("Authorization", "Bearer     ")], InvalidRequest),
        ("custom scheme only", vec![line("Authorization", "Api-Key")], InvalidRequest),
        ("lower-case bearer", vec![line("Authorization", format!("bearer {user}"))], Ok("alice")),
        ("upper-case bearer", vec![line("Authorization", format!("BEARER {user}"))], Ok("alice")),
        ("lower-case custom scheme", vec![line("Authorization", format!("api-key {system}"))], Ok("billing")),
        ("upper-case custom scheme", vec![line("Authorization", format!("API-KEY {system}"))], Ok("billing")),
        ("header name case", vec![line("x-API-kEY", user)], Ok("alice")),
        // keys
        ("trailing junk", vec![line("Authorization", format!("Bearer {user}junk"))], InvalidToken),
        ("trailing comma", vec![line("API-Key", format!("{user},"))], InvalidToken),
        ("trailing word", vec![line("Authorization", format!("Bearer {user} junk"))], InvalidRequest),
        ("two keys in one value", vec![line("API-Key", format!("{user}, {system}"))], InvalidRequest),
        ("wrong checksum", vec![line("Authorization", [b"Bearer ".as_slice(), &bad_sum].concat())], InvalidToken),
        ("prefix only", vec![line("API-Key", "tak_user_")], InvalidToken),
        ("system key with user prefix", vec![line("API-Key", system.replacen("tak_sys", "tak_user", 1))], InvalidToken),
        ("well-formed unknown key", vec![line("Authorization", format!("Bearer {unknown}"))], InvalidToken),
        ("unknown opaque key", vec![line("API-Key", "some-other-opaque-key")], InvalidToken),
        ("key in lower case", vec![line("API-Key", user.to_ascii_lowercase())], InvalidToken),
        ("1-byte key", vec![line("API-Key", "k")], InvalidToken),
        // gRPC content type: trailers-only answer
        ("grpc, no key", vec![line("Content-Type", "application/grpc")], Grpc("16")),
        (
            "grpc, bad key",
            vec![line("Content-Type", "application/grpc+proto"), line("API-Key", "junk-junk-junk")],
            Grpc("16"),
        ),
    ]
}

fn check(name: &str, res: &RawResponse, want: Want, presented: &[&[u8]]) {
    let ctx = || format!("row {name:?}: {res:?}");
    assert!(res.status < 500, "5xx: {}", ctx());
    let challenge = res.header_str("www-authenticate");
    match want {
        Want::Ok(owner) => {
            assert_eq!(res.status, 200, "{}", ctx());
            assert_eq!(res.body, owner.as_bytes(), "{}", ctx());
        }
        Want::Missing | Want::InvalidRequest | Want::InvalidToken => {
            let (status, value) = match want {
                Want::Missing => (401, REALM),
                Want::InvalidRequest => (400, INVALID_REQUEST),
                _ => (401, INVALID_TOKEN),
            };
            assert_eq!(res.status, status, "{}", ctx());
            assert_eq!(challenge.as_deref(), Some(value), "{}", ctx());
            assert_eq!(res.header_str("content-type").as_deref(), Some("application/problem+json"), "{}", ctx());
        }
        Want::Hyper(status) => {
            assert_eq!(res.status, status, "{}", ctx());
            assert_eq!(challenge, None, "answered by hyper, not the layer: {}", ctx());
        }
        Want::Grpc(code) => {
            assert_eq!(res.status, 200, "{}", ctx());
            assert_eq!(res.header_str("grpc-status").as_deref(), Some(code), "{}", ctx());
            assert_eq!(challenge, None, "{}", ctx());
        }
    }
    for key in presented {
        if key.len() >= 8 {
            assert!(!res.raw.windows(key.len()).any(|w| w == *key), "the response echoes a presented key: {}", ctx());
        }
    }
}

/// The credential part of a raw header line, for the leak check (content types are echoed by gRPC answers).
fn presented(line: &[u8]) -> Option<&[u8]> {
    let colon = line.iter().position(|&b| b == b':')?;
    let (name, value) = line.split_at(colon);
    if name.eq_ignore_ascii_case(b"content-type") {
        return None;
    }
    let value = value[1..].trim_ascii();
    Some(match value.iter().position(|&b| b == b' ') {
        Some(sp) if value[..sp].iter().all(|&b| b.is_ascii_alphabetic() || b == b'-') => value[sp..].trim_ascii(),
        _ => value,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_its_documented_4xx() {
    let server = start().await;
    let healthy = vec![line("Authorization", format!("Bearer {}", server.user))];
    let mut failures = Vec::new();
    let rows = rows(&server);
    assert!(rows.len() > 50);
    for (name, lines, want) in &rows {
        let res = send(server.addr, lines).await;
        let keys: Vec<&[u8]> = lines.iter().filter_map(|l| presented(l)).collect();
        // Collect row failures so that one run reports them all.
        if let Err(panic) = std::panic::catch_unwind(|| check(name, &res, *want, &keys)) {
            let msg = panic.downcast_ref::<String>().cloned().unwrap_or_else(|| "panic".to_owned());
            failures.push(msg.chars().take(600).collect::<String>());
        }
        let after = send(server.addr, &healthy).await;
        assert_eq!(after.status, 200, "after row {name:?} the server no longer answers a valid request: {after:?}");
        assert_eq!(after.body, b"alice");
    }
    assert!(failures.is_empty(), "{} of {} rows fail:\n{}", failures.len(), rows.len(), failures.join("\n"));
}

/// The same bad inputs sent back to back on one keep-alive connection: a rejection never poisons the connection
/// for the next request (only rows answered by the layer; hyper closes the connection after a parse error).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_keep_the_connection_usable() {
    let server = start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let rows: Vec<_> = rows(&server).into_iter().filter(|(_, _, w)| !matches!(w, Want::Hyper(_))).collect();
    for (name, lines, want) in rows {
        let mut req = b"GET /whoami HTTP/1.1\r\nHost: 127.0.0.1\r\n".to_vec();
        for l in &lines {
            req.extend_from_slice(l);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"\r\n");
        stream.write_all(&req).await.unwrap();
        let res = read_one(&mut stream).await;
        let keys: Vec<&[u8]> = lines.iter().filter_map(|l| presented(l)).collect();
        check(name, &res, want, &keys);
    }
}

/// Reads one response with a `content-length` body from a keep-alive connection.
async fn read_one(stream: &mut TcpStream) -> RawResponse {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(p) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&raw));
        raw.extend_from_slice(&buf[..n]);
    };
    let head = parse_response(raw[..head_end].to_vec());
    let len: usize = head.header_str("content-length").map_or(0, |v| v.parse().unwrap());
    while raw.len() < head_end + len {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await.unwrap().unwrap();
        assert!(n > 0, "connection closed mid-body");
        raw.extend_from_slice(&buf[..n]);
    }
    assert_eq!(raw.len(), head_end + len, "pipelined bytes after the body");
    parse_response(raw)
}
