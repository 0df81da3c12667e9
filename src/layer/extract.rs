//! Reading the credential from the request headers, in priority order.
//!
//! | priority | source | example | switch |
//! |---|---|---|---|
//! | 1 | `Authorization: Bearer <key>` | `Authorization: Bearer tak_user_…` | [`ApiKeyLayer::bearer`](crate::ApiKeyLayer::bearer) |
//! | 2 | `Authorization: <custom scheme> <key>` | `Authorization: Api-Key tak_user_…` | [`ApiKeyLayer::scheme`](crate::ApiKeyLayer::scheme) |
//! | 3 | `API-Key: <key>` | `API-Key: tak_user_…` | [`ApiKeyLayer::api_key_header`](crate::ApiKeyLayer::api_key_header) |
//! | 4 | `X-API-Key: <key>` (deprecated, RFC 6648) | `X-API-Key: tak_user_…` | [`ApiKeyLayer::x_api_key_header`](crate::ApiKeyLayer::x_api_key_header) |
//!
//! The first source present wins. Scheme names match case-insensitively (RFC 9110 §11.1); one or more spaces or
//! tabs may separate scheme and key; surrounding whitespace is trimmed. The same source twice with different values
//! is ambiguous (400 `invalid_request`); so is a source present but empty (including an empty `Authorization`
//! header), or a key with bytes outside visible ASCII. Keys longer than the maximum length are rejected (401 `invalid_token`) before any hashing or store call.
//! `Authorization` values with other schemes (`Basic …`) are ignored.

use http::HeaderValue;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderName};
use subtle::ConstantTimeEq;

use crate::error::ConfigError;
use crate::principal::CredentialSource;
use crate::reject::RejectReason;

/// The `API-Key` header.
pub static API_KEY: HeaderName = HeaderName::from_static("api-key");
/// The deprecated `X-API-Key` header.
pub static X_API_KEY: HeaderName = HeaderName::from_static("x-api-key");

/// Default maximum key length, in bytes.
pub const DEFAULT_MAX_KEY_LEN: usize = 256;

/// A credential found in the headers: where from, and its bytes (borrowed; never copied, never logged).
#[derive(Clone, Copy)]
pub(crate) struct Credential<'a> {
    pub(crate) source: CredentialSource,
    pub(crate) value: &'a [u8],
}

impl Credential<'_> {
    /// `Err(BadHeaderBytes)` unless every byte is visible ASCII. Not part of extraction: a key that passes the
    /// format check is made of base62, `_` and prefix characters only, so the pipeline asks this of every other
    /// credential, right after the format check and before anything else is done with it.
    pub(crate) fn check_bytes(&self) -> Result<(), RejectReason> {
        if all_visible_ascii(self.value) { Ok(()) } else { Err(RejectReason::BadHeaderBytes) }
    }
}

impl std::fmt::Debug for Credential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential").field("source", &self.source).field("value", &"<redacted>").finish()
    }
}

/// Which sources are on, the custom schemes, and the length bound.
#[derive(Debug, Clone)]
pub(crate) struct Extractor {
    pub(crate) bearer: bool,
    pub(crate) schemes: Vec<Box<str>>,
    pub(crate) api_key: bool,
    pub(crate) x_api_key: bool,
    pub(crate) max_len: usize,
}

impl Default for Extractor {
    fn default() -> Self {
        Self { bearer: true, schemes: Vec::new(), api_key: true, x_api_key: true, max_len: DEFAULT_MAX_KEY_LEN }
    }
}

/// Whether every byte is visible ASCII (0x21..=0x7E). Branch-free over the bytes, so it vectorizes; the length is
/// already bounded.
fn all_visible_ascii(value: &[u8]) -> bool {
    value.iter().fold(true, |ok, &b| ok & (b.wrapping_sub(0x21) < 0x5E))
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn validate_scheme(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() || !name.bytes().all(is_token_char) || name.eq_ignore_ascii_case("bearer") {
        return Err(ConfigError::InvalidScheme(name.to_owned()));
    }
    Ok(())
}

/// `bearer` in any case, compared as one word: setting bit 0x20 lowercases an ASCII letter, and each letter of
/// `bearer` has exactly two bytes that map to it, its two cases.
fn is_bearer(scheme: [u8; 6]) -> bool {
    let [a, b, c, d, e, f] = scheme;
    u64::from_le_bytes([a, b, c, d, e, f, 0, 0]) | 0x2020_2020_2020 == u64::from_le_bytes(*b"bearer\0\0")
}

fn trim_start(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    v
}

fn trim(v: &[u8]) -> &[u8] {
    let mut v = trim_start(v);
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// One candidate at one priority level, merged across duplicate headers.
#[derive(Default)]
struct Slot<'a> {
    value: Option<&'a [u8]>,
    ambiguous: bool,
}

impl<'a> Slot<'a> {
    fn offer(&mut self, v: &'a [u8]) {
        match self.value {
            None => self.value = Some(v),
            Some(prev) => {
                if !bool::from(prev.ct_eq(v)) {
                    self.ambiguous = true;
                }
            }
        }
    }
}

impl Extractor {
    pub(crate) fn any_enabled(&self) -> bool {
        self.bearer || !self.schemes.is_empty() || self.api_key || self.x_api_key
    }

    /// `Bearer <rest>` (scheme case-insensitive, then at least one space or tab) when `Bearer` is on.
    fn strip_bearer<'a>(&self, value: &'a [u8]) -> Option<&'a [u8]> {
        match trim(value) {
            [a, b, c, d, e, f, b' ' | b'\t', rest @ ..] if self.bearer && is_bearer([*a, *b, *c, *d, *e, *f]) => {
                Some(rest)
            }
            _ => None,
        }
    }

    fn scheme_of<'a>(&self, value: &'a [u8]) -> Option<(CredentialSource, &'a [u8])> {
        let v = trim(value);
        let split = v.iter().position(|&b| b == b' ' || b == b'\t').unwrap_or(v.len());
        let (scheme, rest) = v.split_at(split);
        if self.bearer && scheme.eq_ignore_ascii_case(b"bearer") {
            return Some((CredentialSource::Bearer, trim(rest)));
        }
        if self.schemes.iter().any(|s| scheme.eq_ignore_ascii_case(s.as_bytes())) {
            return Some((CredentialSource::Scheme, trim(rest)));
        }
        None
    }

    /// Finds the credential in what [`scan`] found (no header repeated). `Ok(None)`: no enabled source is present.
    #[inline(always)]
    pub(crate) fn extract_scanned<'a>(&self, found: &Scanned<'a>) -> Result<Option<Credential<'a>>, RejectReason> {
        // The common case first: an `Authorization` header with the `Bearer` scheme. Same result as the general
        // path (a property test checks it), without its bookkeeping.
        if let Some(only) = found.authorization
            && let Some(rest) = self.strip_bearer(only.as_bytes())
        {
            // `strip_bearer` trimmed the end already.
            return self.finish(Slot { value: Some(trim_start(rest)), ambiguous: false }, CredentialSource::Bearer);
        }
        self.extract_values(found.authorization, found.api_key, found.x_api_key)
    }

    /// Finds the credential by looking each source up in the map: for requests where [`scan`] saw a credential
    /// header more than once. `Ok(None)`: no enabled source is present.
    pub(crate) fn extract_general<'a>(&self, headers: &'a HeaderMap) -> Result<Option<Credential<'a>>, RejectReason> {
        self.extract_values(headers.get_all(AUTHORIZATION), headers.get_all(&API_KEY), headers.get_all(&X_API_KEY))
    }

    /// Every source in priority order, duplicates merged.
    fn extract_values<'a, I: IntoIterator<Item = &'a HeaderValue>>(
        &self,
        authorization: I,
        api_key: I,
        x_api_key: I,
    ) -> Result<Option<Credential<'a>>, RejectReason> {
        if self.bearer || !self.schemes.is_empty() {
            let mut bearer = Slot::default();
            let mut scheme = Slot::default();
            let mut blank = false;
            for value in authorization {
                match self.scheme_of(value.as_bytes()) {
                    Some((CredentialSource::Bearer, v)) => bearer.offer(v),
                    Some((_, v)) => scheme.offer(v),
                    None => blank |= trim(value.as_bytes()).is_empty(),
                }
            }
            if blank && bearer.value.is_none() && scheme.value.is_none() {
                // `Authorization:` with nothing in it is malformed (RFC 9110 §11.6.2), not "no credential".
                return Err(RejectReason::EmptyCredential);
            }
            if let Some(c) = self.finish(bearer, CredentialSource::Bearer)? {
                return Ok(Some(c));
            }
            if let Some(c) = self.finish(scheme, CredentialSource::Scheme)? {
                return Ok(Some(c));
            }
        }
        for (on, values, source) in [
            (self.api_key, api_key, CredentialSource::ApiKeyHeader),
            (self.x_api_key, x_api_key, CredentialSource::XApiKeyHeader),
        ] {
            if !on {
                continue;
            }
            let mut slot = Slot::default();
            for value in values {
                slot.offer(trim(value.as_bytes()));
            }
            if let Some(c) = self.finish(slot, source)? {
                return Ok(Some(c));
            }
        }
        Ok(None)
    }

    fn finish<'a>(&self, slot: Slot<'a>, source: CredentialSource) -> Result<Option<Credential<'a>>, RejectReason> {
        let Some(value) = slot.value else { return Ok(None) };
        if slot.ambiguous {
            return Err(RejectReason::Ambiguous);
        }
        if value.is_empty() {
            return Err(RejectReason::EmptyCredential);
        }
        if value.len() > self.max_len {
            return Err(RejectReason::TooLong);
        }
        Ok(Some(Credential { source, value }))
    }
}

/// What one pass over the request headers found: the first value of each credential header and of
/// `content-type` (what a rejection's form depends on), and whether a credential header came more than once.
#[derive(Default)]
pub(crate) struct Scanned<'a> {
    authorization: Option<&'a HeaderValue>,
    api_key: Option<&'a HeaderValue>,
    x_api_key: Option<&'a HeaderValue>,
    /// The first `content-type` value.
    pub(crate) content_type: Option<&'a HeaderValue>,
    /// A credential header came twice: [`Extractor::extract_general`] merges the duplicates.
    pub(crate) repeated: bool,
}

/// One pass over the headers: marks every credential header value sensitive (HPACK never-index, redacted `Debug`)
/// and notes where the credential headers are, in place of a hashed lookup per name. No allocation.
// Inlined, as `extract_scanned` and `Config::admit` are: on the valid path each call boundary cost more than its
// instructions (BENCHMARKS.md 1.4).
#[inline(always)]
pub(crate) fn scan(headers: &mut HeaderMap) -> Scanned<'_> {
    let mut found = Scanned::default();
    for (name, value) in headers.iter_mut() {
        let slot = if *name == AUTHORIZATION {
            &mut found.authorization
        } else if *name == API_KEY {
            &mut found.api_key
        } else if *name == X_API_KEY {
            &mut found.x_api_key
        } else {
            if found.content_type.is_none() && *name == CONTENT_TYPE {
                found.content_type = Some(value);
            }
            continue;
        };
        value.set_sensitive(true);
        if slot.is_some() {
            found.repeated = true;
        } else {
            *slot = Some(value);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    type Want = Result<Option<(CredentialSource, &'static str)>, RejectReason>;
    type Row = (&'static str, Vec<(&'static str, &'static [u8])>, Want);

    /// What the layer does: one scan, the general path when a credential header repeats. Checks on the way that
    /// every credential header came out sensitive.
    fn extract<'a>(ex: &Extractor, map: &'a mut HeaderMap) -> Result<Option<Credential<'a>>, RejectReason> {
        let repeated = scan(map).repeated;
        for name in [&AUTHORIZATION, &API_KEY, &X_API_KEY] {
            assert!(map.get_all(name).iter().all(HeaderValue::is_sensitive), "{name} not marked sensitive");
        }
        if repeated { ex.extract_general(map) } else { ex.extract_scanned(&scan(map)) }
    }

    fn run(ex: &Extractor, headers: &[(&str, &[u8])]) -> Result<Option<(CredentialSource, String)>, RejectReason> {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            map.append(HeaderName::from_bytes(name.as_bytes()).unwrap(), HeaderValue::from_bytes(value).unwrap());
        }
        // As the pipeline does for every key not of the crate's format (none of these is).
        let found = extract(ex, &mut map)?;
        if let Some(c) = &found {
            c.check_bytes()?;
        }
        Ok(found.map(|c| (c.source, String::from_utf8_lossy(c.value).into_owned())))
    }

    fn with_scheme() -> Extractor {
        Extractor { schemes: vec!["Api-Key".into(), "Token".into()], ..Extractor::default() }
    }

    #[test]
    fn visible_ascii_is_checked_in_every_block_and_in_the_tail() {
        for len in 0..=50 {
            let good: Vec<u8> = (0..len).map(|i| 0x21 + u8::try_from(i % 94).unwrap()).collect();
            assert!(all_visible_ascii(&good), "len {len}");
            for at in 0..len {
                for bad in [0x00, 0x20, 0x7F, 0x80, 0xFF] {
                    let mut v = good.clone();
                    v[at] = bad;
                    assert!(!all_visible_ascii(&v), "len {len}, {bad:#x} at {at}");
                }
            }
        }
        assert!(all_visible_ascii(b"!~"), "both ends of the range");
    }

    #[test]
    fn table() {
        use CredentialSource::*;
        use RejectReason::*;
        let long = "k".repeat(DEFAULT_MAX_KEY_LEN + 1);
        let max = "k".repeat(DEFAULT_MAX_KEY_LEN);
        let long: &'static str = Box::leak(long.into_boxed_str());
        let max: &'static str = Box::leak(max.into_boxed_str());
        let rows: Vec<Row> = vec![
            // each source alone
            ("bearer", vec![("authorization", b"Bearer abc")], Ok(Some((Bearer, "abc")))),
            ("custom scheme", vec![("authorization", b"Api-Key abc")], Ok(Some((Scheme, "abc")))),
            ("second custom scheme", vec![("authorization", b"Token abc")], Ok(Some((Scheme, "abc")))),
            ("api-key header", vec![("api-key", b"abc")], Ok(Some((ApiKeyHeader, "abc")))),
            ("x-api-key header", vec![("x-api-key", b"abc")], Ok(Some((XApiKeyHeader, "abc")))),
            ("nothing", vec![], Ok(None)),
            ("unrelated header", vec![("accept", b"*/*")], Ok(None)),
            ("other scheme ignored", vec![("authorization", b"Basic dXNlcjpwYXNz")], Ok(None)),
            (
                "other scheme falls through",
                vec![("authorization", b"Basic x"), ("api-key", b"k")],
                Ok(Some((ApiKeyHeader, "k"))),
            ),
            // priority between every pair
            (
                "bearer > scheme",
                vec![("authorization", b"Api-Key s"), ("authorization", b"Bearer b")],
                Ok(Some((Bearer, "b"))),
            ),
            ("bearer > api-key", vec![("api-key", b"a"), ("authorization", b"Bearer b")], Ok(Some((Bearer, "b")))),
            ("bearer > x-api-key", vec![("x-api-key", b"x"), ("authorization", b"Bearer b")], Ok(Some((Bearer, "b")))),
            ("scheme > api-key", vec![("api-key", b"a"), ("authorization", b"Api-Key s")], Ok(Some((Scheme, "s")))),
            ("scheme > x-api-key", vec![("x-api-key", b"x"), ("authorization", b"Token s")], Ok(Some((Scheme, "s")))),
            ("api-key > x-api-key", vec![("x-api-key", b"x"), ("api-key", b"a")], Ok(Some((ApiKeyHeader, "a")))),
            // case
            ("bearer lower", vec![("authorization", b"bearer abc")], Ok(Some((Bearer, "abc")))),
            ("bearer upper", vec![("authorization", b"BEARER abc")], Ok(Some((Bearer, "abc")))),
            ("scheme mixed case", vec![("authorization", b"aPi-KeY abc")], Ok(Some((Scheme, "abc")))),
            ("key case kept", vec![("authorization", b"Bearer AbC")], Ok(Some((Bearer, "AbC")))),
            // whitespace
            ("many spaces", vec![("authorization", b"Bearer    abc")], Ok(Some((Bearer, "abc")))),
            ("tab separator", vec![("authorization", b"Bearer\tabc")], Ok(Some((Bearer, "abc")))),
            ("surrounding whitespace", vec![("authorization", b"  Bearer abc \t")], Ok(Some((Bearer, "abc")))),
            ("header whitespace", vec![("api-key", b" \tabc  ")], Ok(Some((ApiKeyHeader, "abc")))),
            ("space inside key", vec![("authorization", b"Bearer ab cd")], Err(BadHeaderBytes)),
            ("no separator is another scheme", vec![("authorization", b"Bearerabc")], Ok(None)),
            // empty values
            ("scheme only", vec![("authorization", b"Bearer")], Err(EmptyCredential)),
            ("scheme and spaces", vec![("authorization", b"Bearer   ")], Err(EmptyCredential)),
            ("empty api-key", vec![("api-key", b"")], Err(EmptyCredential)),
            ("whitespace api-key", vec![("api-key", b"   ")], Err(EmptyCredential)),
            ("empty authorization", vec![("authorization", b"")], Err(EmptyCredential)),
            ("whitespace-only authorization", vec![("authorization", b" \t ")], Err(EmptyCredential)),
            (
                "empty authorization beside bearer",
                vec![("authorization", b""), ("authorization", b"Bearer a")],
                Ok(Some((Bearer, "a"))),
            ),
            ("empty winner is not skipped", vec![("api-key", b""), ("x-api-key", b"x")], Err(EmptyCredential)),
            // duplicates
            (
                "same bearer twice",
                vec![("authorization", b"Bearer a"), ("authorization", b"bearer a")],
                Ok(Some((Bearer, "a"))),
            ),
            (
                "two bearers differ",
                vec![("authorization", b"Bearer a"), ("authorization", b"Bearer b")],
                Err(Ambiguous),
            ),
            ("two api-keys differ", vec![("api-key", b"a"), ("api-key", b"b")], Err(Ambiguous)),
            ("two x-api-keys differ", vec![("x-api-key", b"a"), ("x-api-key", b"b")], Err(Ambiguous)),
            (
                "two schemes differ",
                vec![("authorization", b"Api-Key a"), ("authorization", b"Token b")],
                Err(Ambiguous),
            ),
            (
                "dup lower source ignored",
                vec![("authorization", b"Bearer a"), ("api-key", b"x"), ("api-key", b"y")],
                Ok(Some((Bearer, "a"))),
            ),
            // non-ASCII / control bytes
            ("obs-text in key", vec![("authorization", b"Bearer ab\xffc")], Err(BadHeaderBytes)),
            ("obs-text api-key", vec![("api-key", b"\xc3\xa9t\xc3\xa9")], Err(BadHeaderBytes)),
            ("tab inside key", vec![("api-key", b"ab\tcd")], Err(BadHeaderBytes)),
            ("obs-text scheme is not ours", vec![("authorization", b"B\xe9arer abc")], Ok(None)),
            // length
            ("max length ok", vec![("api-key", max.as_bytes())], Ok(Some((ApiKeyHeader, max)))),
            ("over-long", vec![("authorization", format!("Bearer {long}").leak().as_bytes())], Err(TooLong)),
        ];
        let ex = with_scheme();
        for (name, headers, want) in rows {
            let got = run(&ex, &headers);
            let want = want.map(|o| o.map(|(s, v)| (s, v.to_owned())));
            assert_eq!(got, want, "row {name:?}");
        }
    }

    #[test]
    fn disabled_sources_are_skipped() {
        let ex = Extractor { bearer: false, api_key: false, ..Extractor::default() };
        assert_eq!(run(&ex, &[("authorization", b"Bearer a")]), Ok(None));
        assert_eq!(run(&ex, &[("api-key", b"a")]), Ok(None));
        assert_eq!(
            run(&ex, &[("api-key", b"a"), ("x-api-key", b"x")]),
            Ok(Some((CredentialSource::XApiKeyHeader, "x".into())))
        );
    }

    #[test]
    fn scheme_validation() {
        for bad in ["", "Bearer", "bearer", "has space", "semi;colon", "é"] {
            assert!(validate_scheme(bad).is_err(), "{bad:?}");
        }
        for good in ["Api-Key", "Token", "X.Custom_1"] {
            assert!(validate_scheme(good).is_ok(), "{good:?}");
        }
    }

    proptest::proptest! {
        /// The single-`Authorization` fast path agrees with the general path on any value, with or without other
        /// sources and custom schemes.
        #[test]
        fn fast_path_matches_general_path(
            head in proptest::sample::select(vec![
                "", " ", "Bearer", "Bearer ", "bearer\t", "BEARER   ", " bEaReR \t ", "Bearerx ", "Beare ",
                "Api-Key ", "token\t", "Basic ",
            ]),
            body in proptest::collection::vec(proptest::sample::select(b" \tBbEeRrKk-_\x7f\x80x0".to_vec()), 0..12),
            tail in proptest::sample::select(vec!["", " ", "\t ", "x"]),
            api_key in proptest::option::of("[a-z]{0,6}"),
            schemes in proptest::bool::ANY,
            bearer in proptest::bool::ANY,
        ) {
            let value = [head.as_bytes(), &body, tail.as_bytes()].concat();
            let Ok(header) = HeaderValue::from_bytes(&value) else { return Ok(()) };
            let mut map = HeaderMap::new();
            map.insert(AUTHORIZATION, header);
            if let Some(k) = api_key {
                map.insert(&API_KEY, HeaderValue::from_str(&k).unwrap());
            }
            let ex = Extractor { bearer, ..if schemes { with_scheme() } else { Extractor::default() } };
            let general = ex.extract_general(&map).map(|o| o.map(|c| (c.source, c.value.to_vec())));
            let fast = extract(&ex, &mut map).map(|o| o.map(|c| (c.source, c.value.to_vec())));
            proptest::prop_assert_eq!(fast, general);
        }
    }

    /// The word compare agrees with `eq_ignore_ascii_case` for every byte in every position of the scheme.
    #[test]
    fn bearer_word_compare_is_exact() {
        for at in 0..6 {
            for byte in 0..=u8::MAX {
                for base in [*b"bearer", *b"BEARER", *b"BeArEr"] {
                    let mut scheme = base;
                    scheme[at] = byte;
                    assert_eq!(is_bearer(scheme), scheme.eq_ignore_ascii_case(b"bearer"), "{scheme:?}");
                }
            }
        }
    }

    #[test]
    fn credential_debug_is_redacted() {
        let c = Credential { source: CredentialSource::Bearer, value: b"topsecretvalue" };
        assert!(!format!("{c:?}").contains("topsecret"));
    }
}
