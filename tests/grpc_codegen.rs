//! The gRPC code of the examples and tests (`examples/proto/whoami.rs`) is generated from
//! `examples/proto/whoami.proto` by `tonic-prost-build` and committed, so that nobody needs `protoc` or a build
//! script to run `cargo run --example grpc`. This test regenerates it (with the `protoc` of `protoc-bin-vendored`)
//! into a temporary directory and fails if the committed file differs.
//!
//! After changing the `.proto` file or upgrading tonic / prost, refresh the committed file with:
//!
//! ```text
//! UPDATE_GENERATED=1 cargo test --test grpc_codegen
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

/// Put in front of the generated text, so that readers of the committed file know where it comes from.
const HEADER: &str = "\
// Generated from whoami.proto by tonic-prost-build (client and server). Do not edit.
// Checked by tests/grpc_codegen.rs; refresh with `UPDATE_GENERATED=1 cargo test --test grpc_codegen`.
";

fn proto_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join("proto")
}

/// Runs tonic-prost-build into a fresh directory and returns the generated text, with [`HEADER`] in front.
fn generate() -> String {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("grpc-codegen-{}", std::process::id()));
    if out_dir.exists() {
        std::fs::remove_dir_all(&out_dir).unwrap();
    }
    std::fs::create_dir_all(&out_dir).unwrap();

    // The vendored protoc, passed through the prost config: no PROTOC environment variable, nothing to install.
    let protoc = protoc_bin_vendored::protoc_bin_path().expect("protoc-bin-vendored has a protoc for this platform");
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);

    let dir = proto_dir();
    let proto = dir.join("whoami.proto");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(&out_dir)
        .compile_with_config(config, &[proto], &[dir])
        .expect("tonic-prost-build compiles examples/proto/whoami.proto");

    let generated = std::fs::read_to_string(out_dir.join("whoami.rs")).expect("generated whoami.rs (package whoami)");
    std::fs::remove_dir_all(&out_dir).unwrap();
    format!("{HEADER}{generated}")
}

/// Line endings differ on Windows checkouts (`core.autocrlf`); trailing blank lines do not matter.
fn normalise(text: &str) -> String {
    let text = text.replace("\r\n", "\n");
    format!("{}\n", text.trim_end())
}

#[test]
fn committed_grpc_code_matches_the_proto() {
    let expected = normalise(&generate());
    assert!(expected.contains("pub mod who_am_i_server"), "server code generated");
    assert!(expected.contains("pub mod who_am_i_client"), "client code generated");

    let committed_path = proto_dir().join("whoami.rs");
    if std::env::var_os("UPDATE_GENERATED").is_some() {
        std::fs::write(&committed_path, &expected).unwrap();
        return;
    }
    let committed = match std::fs::read_to_string(&committed_path) {
        Ok(text) => normalise(&text),
        Err(err) => panic!(
            "cannot read {} ({err}); create it with `UPDATE_GENERATED=1 cargo test --test grpc_codegen`",
            committed_path.display()
        ),
    };
    if committed != expected {
        let line = committed
            .lines()
            .zip(expected.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| committed.lines().count().min(expected.lines().count()) + 1, |i| i + 1);
        panic!(
            "{} is out of date with whoami.proto / tonic-prost-build (first difference at line {line}); \
             refresh it with `UPDATE_GENERATED=1 cargo test --test grpc_codegen` and commit the result",
            committed_path.display()
        );
    }
}
