//! [`PostgresStore`]: keys in PostgreSQL (feature `postgres`). Being written.

/// A [`crate::KeyStore`] over PostgreSQL.
#[derive(Debug)]
pub struct PostgresStore;
