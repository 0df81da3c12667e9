//! The key types: plain values that the layer, the stores and key management all name.
//!
//! Nothing here imports the crate's machinery: [`KeyId`] and [`KeyKind`] (a key's public identity), [`KeyFormat`]
//! (the crate's key format: minting and the offline check), [`ApiKey`] and [`KeyDigest`] (the secret and what is
//! stored in its place), [`KeyRecord`] and [`KeyStatus`] (what a store keeps), [`Scopes`], [`RateLimit`],
//! [`NewKey`] and [`IssuedKey`] (what to issue, and what issuing gives), [`KeyInfo`] (what a listing shows).

mod format;
mod id;
mod info;
mod new_key;
mod rate_limit;
mod record;
mod scopes;
mod secret;
#[cfg(feature = "serde")]
pub(crate) mod serde_util;

pub use format::{Classified, KeyFormat, MAX_PREFIX_LEN, ParsedKey};
pub use id::{CHECKSUM_LEN, ID_LEN, InvalidKeyId, KeyId, KeyKind, ParseKeyKindError, SECRET_LEN};
pub use info::KeyInfo;
pub use new_key::{
    IssuedKey, MAX_EXPIRY_SINCE_EPOCH, MAX_METADATA_ENTRIES, MAX_METADATA_LEN, MAX_NAME_LEN, MAX_OWNER_LEN,
    MAX_SCOPE_LEN, MAX_SCOPES, NewKey,
};
pub(crate) use new_key::{check_metadata, check_name, check_scopes, max_expiry};
pub use rate_limit::RateLimit;
pub use record::{KeyRecord, KeyStatus};
pub use scopes::Scopes;
pub(crate) use scopes::validate_scope;
pub(crate) use secret::RandomKeyHasher;
pub use secret::{ApiKey, InvalidDigest, KeyDigest};
