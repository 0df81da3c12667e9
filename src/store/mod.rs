//! Where keys are kept: the [`KeyStore`] contract, and the stores that implement it: [`MemoryStore`], and with
//! their features `FileStore` (`serde`), `PostgresStore` (`postgres`), `RedisStore` (`redis`) and `CachedStore`
//! (`cache`).
//!
//! # Implementing a custom store
//!
#![doc = include_str!("custom_store.md")]

#[cfg(feature = "cache")]
mod bus;
#[cfg(all(feature = "cache", feature = "postgres"))]
mod bus_postgres;
#[cfg(all(feature = "cache", feature = "redis"))]
mod bus_redis;
#[cfg(feature = "cache")]
mod cache;
mod change;
mod contract;
#[cfg(feature = "serde")]
mod file;
#[cfg(feature = "cache")]
mod filter;
#[cfg(feature = "cache")]
mod invalidate;
mod list;
mod memory;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use bus::Subscription;
#[cfg(all(feature = "cache", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "cache", feature = "postgres"))))]
pub use bus_postgres::PostgresBus;
#[cfg(all(feature = "cache", feature = "redis"))]
#[cfg_attr(docsrs, doc(cfg(all(feature = "cache", feature = "redis"))))]
pub use bus_redis::RedisBus;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use cache::{CacheConfig, CachedStore, Invalidator};
pub use change::{HourlyUsage, KeyUpdate, USAGE_HOURS_KEPT, Usage};
pub use contract::{BoxError, KeyStore, Lookup, LookupResult, StoreError};
#[cfg(feature = "serde")]
#[cfg_attr(docsrs, doc(cfg(feature = "serde")))]
pub use file::{FileStore, FileStoreError};
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use filter::IdFilter;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use invalidate::{Invalidation, InvalidationBus};
pub use list::{ListQuery, MAX_PAGE, Page};
pub use memory::MemoryStore;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::*;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use redis::*;
