//! Fuzz target `extract`: arbitrary credential headers through `ApiKeyLayer`; see `common.rs` for the input format
//! and the checks (status never 5xx, no auth bypass, only static rejections, no key echoed).
#![no_main]
#![allow(dead_code)]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    if let Err(failure) = check_extract(data) {
        panic!("extract: {failure}");
    }
});
