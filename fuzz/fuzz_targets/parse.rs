//! Fuzz target `parse`: `KeyFormat::classify` / `parse` on arbitrary bytes and on near-misses of valid keys,
//! against an independent implementation of the documented format; see `common.rs`.
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = check_parse(data) {
        panic!("parse: {failure}");
    }
});
