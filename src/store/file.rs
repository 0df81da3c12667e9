//! [`FileStore`]: key records loaded from a TOML or JSON file or an environment variable (feature `serde`).

use std::path::Path;
use std::time::SystemTime;

use async_trait::async_trait;

use super::change::{HourlyUsage, KeyUpdate, Usage};
use super::contract::{KeyStore, Lookup, LookupResult, StoreError};
use super::list::{ListQuery, Page};
use super::memory::MemoryStore;
use crate::key::{KeyId, KeyRecord};

/// Why a key file could not be loaded. Messages name the file or variable and the parse error's position; they
/// never contain a key (the files hold digests only).
///
/// ```
/// use tower_api_key::{FileStore, FileStoreError};
/// let err = FileStore::load("keys.yaml").unwrap_err();
/// assert!(matches!(err, FileStoreError::Io { .. } | FileStoreError::UnknownFormat(_)));
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileStoreError {
    /// The file could not be read.
    #[error("cannot read key file {path}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The environment variable is not set or not valid UTF-8.
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    /// TOML syntax or schema error.
    #[error("invalid TOML key file")]
    Toml(#[source] toml::de::Error),
    /// JSON syntax or schema error.
    #[error("invalid JSON key file")]
    Json(#[source] serde_json::Error),
    /// The file extension is neither `.toml` nor `.json`.
    #[error("key file {0} must end in .toml or .json")]
    UnknownFormat(String),
    /// Two entries share an id or (opaque keys) a digest.
    #[error("duplicate key entry")]
    Duplicate(#[source] StoreError),
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    keys: Vec<KeyRecord>,
}

/// A [`KeyStore`] over records loaded from configuration (feature `serde`).
///
/// For small deployments that keep keys in configuration: the file holds public ids and SHA-256 digests, never a
/// key, so it can live in a repository or a secret manager without handing out usable keys. Mint entries with the
/// key generator (`cargo run --example keygen -- --kind user --owner alice`).
///
/// ```toml
/// # keys.toml
/// [[keys]]
/// id = "Wm3tQ8cLx0aB"                 # public id: the middle part of the key
/// prefix = "tak_user"                  # keys of the crate's format; omit for opaque keys (looked up by digest)
/// digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
/// kind = "user"
/// owner = "alice"
/// name = "laptop"
/// scopes = ["read", "write"]
/// expires_at = "2027-01-01T00:00:00Z"
/// ```
///
/// ```
/// use tower_api_key::{ApiKeyLayer, FileStore};
///
/// let store = FileStore::from_toml_str(r#"
///     [[keys]]
///     id = "Wm3tQ8cLx0aB"
///     digest = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
///     kind = "system"
///     owner = "billing"
/// "#)?;
/// assert_eq!(store.len(), 1);
/// let layer = ApiKeyLayer::new(store);
/// # Ok::<(), tower_api_key::FileStoreError>(())
/// ```
///
/// The file is read once. Changes made at run time through [`crate::KeyManager`] (issue, revoke, rotate, usage)
/// are kept in memory, with the same atomicity as [`MemoryStore`], and are not written back to the file: to make
/// a revocation last, remove the entry from the file too.
///
/// ```
/// let store = tower_api_key::FileStore::from_json_str(r#"{"keys": []}"#)?;
/// assert!(store.is_empty());
/// # Ok::<(), tower_api_key::FileStoreError>(())
/// ```
#[derive(Debug, Clone)]
pub struct FileStore {
    inner: MemoryStore,
}

impl FileStore {
    fn from_records(records: Vec<KeyRecord>) -> Result<Self, FileStoreError> {
        let inner = MemoryStore::new();
        for r in records {
            inner.put(r).map_err(FileStoreError::Duplicate)?;
        }
        Ok(Self { inner })
    }

    /// Parses TOML: an array of tables `[[keys]]`.
    ///
    /// # Errors
    /// [`FileStoreError::Toml`] for syntax or unknown fields; [`FileStoreError::Duplicate`].
    ///
    /// ```
    /// assert!(tower_api_key::FileStore::from_toml_str("[[keys]]\nid = 1").is_err());
    /// ```
    pub fn from_toml_str(text: &str) -> Result<Self, FileStoreError> {
        let file: KeyFile = toml::from_str(text).map_err(FileStoreError::Toml)?;
        Self::from_records(file.keys)
    }

    /// Parses JSON: `{"keys": [...]}` or a bare array of records.
    ///
    /// # Errors
    /// [`FileStoreError::Json`] for syntax or unknown fields; [`FileStoreError::Duplicate`].
    ///
    /// ```
    /// let s = tower_api_key::FileStore::from_json_str("[]")?;
    /// # Ok::<(), tower_api_key::FileStoreError>(())
    /// ```
    pub fn from_json_str(text: &str) -> Result<Self, FileStoreError> {
        let records = if text.trim_start().starts_with('[') {
            serde_json::from_str::<Vec<KeyRecord>>(text).map_err(FileStoreError::Json)?
        } else {
            serde_json::from_str::<KeyFile>(text).map_err(FileStoreError::Json)?.keys
        };
        Self::from_records(records)
    }

    /// Loads a `.toml` or `.json` file.
    ///
    /// # Errors
    /// [`FileStoreError::Io`], [`FileStoreError::UnknownFormat`], or a parse error.
    ///
    /// ```no_run
    /// let store = tower_api_key::FileStore::load("/etc/myapp/keys.toml")?;
    /// # Ok::<(), tower_api_key::FileStoreError>(())
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FileStoreError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| FileStoreError::Io { path: shown.clone(), source })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("toml") => Self::from_toml_str(&text),
            Some(e) if e.eq_ignore_ascii_case("json") => Self::from_json_str(&text),
            _ => Err(FileStoreError::UnknownFormat(shown)),
        }
    }

    /// Loads records from the environment variable `var`: JSON if it holds a JSON object or array (`{…}`,
    /// `[{…}]`, `[]`), TOML otherwise (including TOML's `[[keys]]` tables).
    ///
    /// # Errors
    /// [`FileStoreError::MissingEnv`], or a parse error.
    ///
    /// ```
    /// assert!(tower_api_key::FileStore::from_env("SURELY_NOT_SET_12345").is_err());
    /// ```
    pub fn from_env(var: &str) -> Result<Self, FileStoreError> {
        let text = std::env::var(var).map_err(|_| FileStoreError::MissingEnv(var.to_owned()))?;
        if looks_like_json(&text) { Self::from_json_str(&text) } else { Self::from_toml_str(&text) }
    }

    /// Number of records.
    ///
    /// ```
    /// assert_eq!(tower_api_key::FileStore::from_json_str("[]")?.len(), 0);
    /// # Ok::<(), tower_api_key::FileStoreError>(())
    /// ```
    #[must_use]
    pub fn len(&self) -> usize {
        self.inner.len()
    }

    /// Whether there is no record.
    ///
    /// ```
    /// assert!(tower_api_key::FileStore::from_json_str("[]")?.is_empty());
    /// # Ok::<(), tower_api_key::FileStoreError>(())
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }
}

/// `{…}`, or `[` followed by `{` or `]`: JSON. TOML documents start with a key, a `[table]` or a `[[table]]`.
fn looks_like_json(text: &str) -> bool {
    let mut chars = text.trim_start().chars();
    match chars.next() {
        Some('{') => true,
        Some('[') => matches!(chars.find(|c| !c.is_whitespace()), Some('{' | ']')),
        _ => false,
    }
}

#[async_trait]
impl KeyStore for FileStore {
    async fn lookup(&self, by: Lookup<'_>) -> LookupResult {
        self.inner.lookup(by).await
    }
    fn lookup_now(&self, by: Lookup<'_>) -> Option<LookupResult> {
        self.inner.lookup_now(by)
    }
    async fn get(&self, id: &KeyId) -> Result<Option<KeyRecord>, StoreError> {
        self.inner.get(id).await
    }
    async fn insert(&self, record: &KeyRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn list(&self, query: &ListQuery, now: SystemTime) -> Result<Page, StoreError> {
        self.inner.list(query, now).await
    }
    async fn update(&self, id: &KeyId, update: &KeyUpdate) -> Result<KeyRecord, StoreError> {
        self.inner.update(id, update).await
    }
    async fn revoke(&self, id: &KeyId, at: SystemTime) -> Result<KeyRecord, StoreError> {
        self.inner.revoke(id, at).await
    }
    async fn rotate(&self, id: &KeyId, successor: &KeyRecord, grace_end: SystemTime) -> Result<KeyRecord, StoreError> {
        self.inner.rotate(id, successor, grace_end).await
    }
    async fn record_usage(&self, usage: &[Usage]) -> Result<(), StoreError> {
        self.inner.record_usage(usage).await
    }
    async fn hourly_usage(&self, id: &KeyId, since: SystemTime) -> Result<Vec<HourlyUsage>, StoreError> {
        self.inner.hourly_usage(id, since).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{KeyDigest, KeyFormat, NewKey};

    #[test]
    fn toml_and_json_round_trip_a_generated_key() {
        let f = KeyFormat::new();
        let issued = f.issue(NewKey::user("alice"), SystemTime::now());
        let g = &issued.record;
        let toml_text = format!(
            "[[keys]]\nid = \"{}\"\nprefix = \"tak_user\"\ndigest = \"{}\"\nkind = \"user\"\nowner = \"alice\"\nscopes = [\"read\"]\nexpires_at = \"2999-01-01T00:00:00Z\"\n",
            g.id,
            g.digest.to_hex()
        );
        let store = FileStore::from_toml_str(&toml_text).unwrap();
        let found = store.lookup_now(Lookup::Id(&g.id)).unwrap().unwrap().unwrap();
        assert_eq!(found.owner, "alice");
        assert!(found.scopes.allows("read"));
        assert!(found.expires_at.is_some());

        let json = serde_json::to_string(&serde_json::json!({"keys": [found.as_ref()]})).unwrap();
        assert!(!json.contains(issued.key.expose_secret()));
        let again = FileStore::from_json_str(&json).unwrap();
        assert_eq!(*again.lookup_now(Lookup::Id(&g.id)).unwrap().unwrap().unwrap(), *found);
    }

    #[test]
    fn opaque_entries_are_found_by_digest() {
        let d = KeyDigest::of(b"legacy");
        let json =
            format!(r#"[{{"id": "AAAAAAAAAAAA", "digest": "{}", "kind": "system", "owner": "svc"}}]"#, d.to_hex());
        let store = FileStore::from_json_str(&json).unwrap();
        assert!(store.lookup_now(Lookup::Digest(&d)).unwrap().unwrap().is_some());
    }

    #[test]
    fn environment_text_is_told_apart_by_its_first_token() {
        for json in ["{}", " [ ]", "[{\"id\": 1}]", "\n[\n  {"] {
            assert!(looks_like_json(json), "{json:?}");
        }
        for toml in ["[[keys]]\nid = 1", "  [keys]", "keys = []", ""] {
            assert!(!looks_like_json(toml), "{toml:?}");
        }
    }

    #[test]
    fn bad_files_are_typed_errors() {
        assert!(matches!(FileStore::from_toml_str("[[keys]]\nid = \"short\""), Err(FileStoreError::Toml(_))));
        assert!(matches!(
            FileStore::from_json_str(r#"[{"id":"AAAAAAAAAAAA","digest":"00","kind":"user","owner":"a"}]"#),
            Err(FileStoreError::Json(_))
        ));
        let unknown_field = format!(
            r#"[{{"id":"AAAAAAAAAAAA","digest":"{}","kind":"user","owner":"a","secret":"x"}}]"#,
            KeyDigest::of(b"x").to_hex()
        );
        assert!(matches!(FileStore::from_json_str(&unknown_field), Err(FileStoreError::Json(_))));
        let dup = format!(
            r#"[{{"id":"AAAAAAAAAAAA","digest":"{0}","kind":"user","owner":"a"}},{{"id":"AAAAAAAAAAAA","digest":"{0}","kind":"user","owner":"b"}}]"#,
            KeyDigest::of(b"x").to_hex()
        );
        assert!(matches!(FileStore::from_json_str(&dup), Err(FileStoreError::Duplicate(_))));
        assert!(matches!(FileStore::load("/nonexistent/keys.toml"), Err(FileStoreError::Io { .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn keeps_the_store_contract() {
        crate::conformance::run(|| async { FileStore::from_json_str("[]").expect("an empty file") }).await;
    }
}
