//! [`RedisStore`]: keys in Redis or Redis Cluster (feature `redis`). Being written.

/// A [`crate::KeyStore`] over Redis.
#[derive(Debug)]
pub struct RedisStore;
