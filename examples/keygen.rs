//! Key generator: mints a key, prints it once, and prints the record to store (public id + SHA-256 digest).
//!
//! ```sh
//! cargo run --example keygen -- --kind user --owner alice --name laptop --scopes read,write
//! cargo run --example keygen -- --kind system --owner billing --prefix sk-svcacct --json
//! ```
//!
//! The record goes to standard output, ready to append to a `keys.toml` (or `--json`) read by `FileStore`; the key
//! goes to standard error, so `keygen ... >> keys.toml` keeps the key off the file.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use tower_api_key::{ApiKey, KeyFormat, KeyKind, KeyRecord, NewKey};

const USAGE: &str = "usage: keygen --owner NAME [--kind user|system] [--name TEXT] [--scopes a,b] \
                     [--prefix PREFIX] [--expires-in-days N] [--json]";

fn main() -> ExitCode {
    match generate(std::env::args().skip(1).collect()) {
        Ok(None) => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Ok(Some((key, record))) => {
            eprintln!("API key (shown once, store it safely): {}", key.expose_secret());
            println!("{record}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("keygen: {message}\n{USAGE}");
            ExitCode::from(2)
        }
    }
}

/// Parses the arguments and mints a key: the key, and the record as TOML (or JSON). `None` for `--help`.
pub fn generate(args: Vec<String>) -> Result<Option<(ApiKey, String)>, String> {
    let mut kind = KeyKind::User;
    let (mut owner, mut name, mut scopes, mut prefix, mut days, mut json) =
        (None, String::new(), Vec::new(), None, None, false);
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--kind" => kind = value()?.parse().map_err(|e| format!("{e}"))?,
            "--owner" => owner = Some(value()?),
            "--name" => name = value()?,
            "--scopes" => scopes = value()?.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
            "--prefix" => prefix = Some(value()?),
            "--expires-in-days" => days = Some(value()?.parse::<u64>().map_err(|e| format!("--expires-in-days: {e}"))?),
            "--json" => json = true,
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    let owner = owner.ok_or("--owner is required")?;
    let mut format = KeyFormat::new();
    if let Some(p) = prefix {
        format = match kind {
            KeyKind::User => format.user_prefix(&p),
            KeyKind::System => format.system_prefix(&p),
        }
        .map_err(|e| e.to_string())?;
    }
    let mut spec = NewKey::new(kind, owner).name(name).scopes(&scopes).map_err(|e| e.to_string())?;
    if let Some(d) = days {
        let ttl = d.checked_mul(86_400).ok_or("--expires-in-days: too many days")?;
        spec = spec.expires_in(Duration::from_secs(ttl));
    }
    let now = SystemTime::now();
    spec.validate(now).map_err(|e| e.to_string())?;
    let issued = format.issue(spec, now);
    let record = issued.record;

    #[derive(serde::Serialize)]
    struct KeyFile<'a> {
        keys: [&'a KeyRecord; 1],
    }
    let text = if json {
        serde_json::to_string_pretty(&KeyFile { keys: [&record] }).map_err(|e| e.to_string())?
    } else {
        toml::to_string(&KeyFile { keys: [&record] }).map_err(|e| e.to_string())?
    };
    Ok(Some((issued.key, text)))
}
