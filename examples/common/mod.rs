//! Shared by the examples: the demo keys contract (`DEMO_USER_KEY`, `DEMO_SERVICE_KEY`), logging, the address.
#![allow(dead_code)]

use tower_api_key::{ApiKey, KeyManager, MemoryStore, NewKey, StoreError};

fn demo_specs() -> Result<[(&'static str, NewKey, &'static str); 2], tower_api_key::ConfigError> {
    let user = NewKey::user("demo-user").name("demo user key").scopes(["whoami"])?;
    let service = NewKey::system("demo-service").name("demo service key").scopes(["whoami", "keys:admin"])?;
    Ok([("DEMO_USER_KEY", user, "user"), ("DEMO_SERVICE_KEY", service, "service")])
}

/// Registers `DEMO_USER_KEY` (user `demo-user`, scope `whoami`) and `DEMO_SERVICE_KEY` (service `demo-service`,
/// scopes `whoami` and `keys:admin`) when they are set; otherwise mints one of each and prints it once.
/// Idempotent: a key already in the store (registered by another instance, or an earlier run) is left as it is.
pub(crate) async fn register_demo_keys(keys: &KeyManager) -> Result<(), Box<dyn std::error::Error>> {
    for (var, spec, label) in demo_specs()? {
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => match keys.import_key(spec, &ApiKey::new(key)).await {
                Ok(record) => tracing::info!(key_id = %record.id, "registered {var}"),
                Err(StoreError::Conflict(_)) => tracing::info!("{var} is already registered"),
                Err(e) => return Err(e.into()),
            },
            _ => {
                let issued = keys.issue(spec).await?;
                #[allow(clippy::print_stdout)]
                {
                    println!("demo {label} key (shown once): {}", issued.key.expose_secret());
                }
            }
        }
    }
    Ok(())
}

/// [`register_demo_keys`] on an in-memory store, without a runtime (the hyper and gRPC examples).
pub(crate) fn register_demo_keys_in(store: &MemoryStore) -> Result<(), Box<dyn std::error::Error>> {
    for (var, spec, label) in demo_specs()? {
        match std::env::var(var) {
            Ok(key) if !key.is_empty() => {
                let record = store.import(&key, spec)?;
                tracing::info!(key_id = %record.id, "registered {var}");
            }
            _ => {
                let issued = store.add(spec)?;
                #[allow(clippy::print_stdout)]
                {
                    println!("demo {label} key (shown once): {}", issued.key.expose_secret());
                }
            }
        }
    }
    Ok(())
}

/// Logs to stderr (standard output carries only the demo keys); `RUST_LOG` overrides the default filter.
pub(crate) fn init_tracing() {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,tower_api_key=info".into()),
        )
        .init();
}

/// The listening address: `$ADDR`, or `default`.
pub(crate) fn addr(default: &str) -> Result<std::net::SocketAddr, std::net::AddrParseError> {
    std::env::var("ADDR").as_deref().unwrap_or(default).parse()
}
