//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/*`) through the same checks as the cargo-fuzz targets, so
//! every input the fuzzers kept (and every crash turned into a seed) stays a regression test in `cargo test`.
//! The checks live in `fuzz/fuzz_targets/common.rs`, shared with the targets through `include!`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

#[allow(dead_code)]
mod common {
    include!("../fuzz/fuzz_targets/common.rs");
}

use std::path::PathBuf;

use common::{Snapshot, check_extract, check_parse, harness, reference_classify};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderName, HeaderValue};
use tower_api_key::{Classified, KeyFormat, KeyKind};

type Check = fn(&[u8]) -> Result<(), String>;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, check: Check) {
    let files = corpus(target);
    assert!(files.len() >= 10, "fuzz/corpus/{target} holds only {} files", files.len());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(path, bytes)| check(bytes).err().map(|e| format!("{}: {e}", path.display())))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} {target} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

#[test]
fn extract_corpus_replays_clean() {
    replay("extract", check_extract);
}

#[test]
fn parse_corpus_replays_clean() {
    replay("parse", check_parse);
}

/// The seed corpus reaches every outcome the `extract` checks care about; otherwise the replay proves little.
#[test]
fn extract_corpus_reaches_every_outcome() {
    let h = harness();
    let mut seen = std::collections::BTreeSet::new();
    for (_, bytes) in corpus("extract") {
        let res = Snapshot::of(&h.run(&common::decode_extract_input(&bytes)).unwrap());
        let label = match (res.status, res.header("grpc-status"), res.header("www-authenticate")) {
            (200, Some(_), _) => "grpc rejection".to_owned(),
            (200, None, _) => "accepted".to_owned(),
            (s, _, Some(c)) => format!("{s} {}", String::from_utf8_lossy(c)),
            (s, _, None) => s.to_string(),
        };
        seen.insert(label);
    }
    for want in [
        "accepted",
        "grpc rejection",
        "401 Bearer realm=\"api\"",
        "400 Bearer realm=\"api\", error=\"invalid_request\"",
        "401 Bearer realm=\"api\", error=\"invalid_token\"",
    ] {
        assert!(seen.contains(want), "no seed gives {want:?}; seen {seen:?}");
    }
}

/// The harness accepts each valid key from each source, and the placeholders expand to them.
#[test]
fn harness_accepts_valid_keys_from_every_source() {
    for (input, owner) in [
        (&b"aBearer {U}"[..], "fuzz-alice"),
        (b"aapi-key {S}", "fuzz-billing"),
        (b"k {O} ", "fuzz-carol"),
        (b"x{U}", "fuzz-alice"),
    ] {
        let res = harness().run(&common::decode_extract_input(input)).unwrap();
        assert_eq!(res.status(), 200, "{}", String::from_utf8_lossy(input));
        assert_eq!(res.body(), &format!("principal:{owner}"));
        check_extract(input).unwrap();
    }
}

/// The leak check fires on a response that echoes the key, and only on keys long enough to mean something.
#[test]
fn leak_check_catches_an_echo() {
    let h = harness();
    let key = b"secret-key-material-123";
    let mut echo = h.rejections[4].clone();
    echo.body = [&b"{\"detail\":\"bad key "[..], key, b"\"}"].concat();
    assert!(h.check_no_leak(&[key], &echo).is_err());
    let mut in_header = h.rejections[4].clone();
    in_header.headers.push(("x-debug".to_owned(), key.to_vec()));
    assert!(h.check_no_leak(&[key], &in_header).is_err());
    assert!(h.check_no_leak(&[key], &h.rejections[4]).is_ok());
    // A "key" that is itself part of the static rejection text is not a leak.
    assert!(h.check_no_leak(&[b"invalid_token"], &h.rejections[4]).is_ok());
}

/// A response outside the static set is refused by `check_extract`'s rules: exercised through the snapshot set.
#[test]
fn rejections_are_static_and_distinct() {
    let h = harness();
    assert_eq!(h.rejections.len(), 6);
    for (i, a) in h.rejections.iter().enumerate() {
        for b in &h.rejections[i + 1..] {
            assert_ne!(a, b);
        }
    }
    // Unknown keys of different shapes get byte-identical answers.
    let a = Snapshot::of(&h.run(&[(AUTHORIZATION, HeaderValue::from_static("Bearer abcdefghijklmnop"))]).unwrap());
    let b = Snapshot::of(
        &h.run(&[(HeaderName::from_static("x-api-key"), HeaderValue::from_static("tak_user_x"))]).unwrap(),
    );
    assert_eq!(a, b);
    let grpc = Snapshot::of(
        &h.run(&[
            (CONTENT_TYPE, HeaderValue::from_static("application/grpc")),
            (AUTHORIZATION, HeaderValue::from_static("Bearer abcdefghijklmnop")),
        ])
        .unwrap(),
    );
    assert!(h.rejections.contains(&grpc));
}

/// The oracle of the `parse` checks agrees with freshly generated keys and catches corrupted ones.
#[test]
fn parse_oracle_agrees_with_generated_keys() {
    let nested = KeyFormat::new().user_prefix("sk").unwrap().system_prefix("sk_live").unwrap();
    for (format, user, system) in [(KeyFormat::new(), "tak_user", "tak_sys"), (nested, "sk", "sk_live")] {
        for kind in [KeyKind::User, KeyKind::System] {
            let key = format.issue(tower_api_key::NewKey::new(kind, "o"), std::time::SystemTime::now());
            let bytes = key.key.expose_secret().as_bytes();
            match reference_classify(user, system, bytes) {
                common::RefClass::Ours { kind: k, .. } => assert_eq!(k, kind),
                other => panic!("oracle says {other:?} for a generated {kind:?} key"),
            }
            assert!(matches!(format.classify(bytes), Classified::Ours(_)));
            let mut bad = bytes.to_vec();
            let last = bad.len() - 1;
            bad[last] = if bad[last] == b'0' { b'1' } else { b'0' };
            assert_eq!(reference_classify(user, system, &bad), common::RefClass::Malformed);
        }
    }
    assert_eq!(reference_classify("tak_user", "tak_sys", b"tak_usr_x"), common::RefClass::Foreign);
    assert_eq!(reference_classify("tak_user", "tak_sys", b"tak_user_"), common::RefClass::Malformed);
}
