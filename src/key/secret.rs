//! Secret material: the full key as issued ([`ApiKey`]), and the SHA-256 digest stored in its place ([`KeyDigest`]).
//!
//! The plaintext key exists only in an [`ApiKey`], which has a redacted `Debug`, no `Display`, no `Clone`, and is
//! zeroized on drop. What stores keep is a [`KeyDigest`], compared in constant time with [`KeyDigest::ct_eq`].

use std::fmt;
use std::hash::{Hash, Hasher};

use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroizing;

/// A full API key in plaintext, as it is handed to its owner exactly once.
///
/// It cannot be cloned, formatted with `{}`, or printed with `{:?}` (which shows `ApiKey(<redacted>)`); its memory
/// is zeroized when it is dropped. Read it with [`ApiKey::expose_secret`] at the one place that must show it.
///
/// ```
/// use tower_api_key::ApiKey;
///
/// let key = ApiKey::new("my-existing-key".to_owned());
/// assert_eq!(format!("{key:?}"), "ApiKey(<redacted>)");
/// assert_eq!(key.expose_secret(), "my-existing-key");
/// ```
pub struct ApiKey(Zeroizing<String>);

impl ApiKey {
    /// Wraps a key string; the string is zeroized when the `ApiKey` drops.
    ///
    /// ```
    /// let key = tower_api_key::ApiKey::new(String::from("k"));
    /// assert_eq!(key.expose_secret(), "k");
    /// ```
    #[must_use]
    pub fn new(key: String) -> Self {
        Self(Zeroizing::new(key))
    }

    /// The plaintext key. Call it only where the key must be shown or sent.
    ///
    /// ```
    /// let key = tower_api_key::ApiKey::new(String::from("k"));
    /// let header = format!("Bearer {}", key.expose_secret());
    /// # assert_eq!(header, "Bearer k");
    /// ```
    #[must_use]
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The SHA-256 digest of the whole key: what a store keeps for an opaque key.
    ///
    /// ```
    /// use tower_api_key::{ApiKey, KeyDigest};
    /// let key = ApiKey::new(String::from("k"));
    /// assert_eq!(key.digest(), KeyDigest::of(b"k"));
    /// ```
    #[must_use]
    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(self.0.as_bytes())
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const SHA256_IV: [u32; 8] =
    [0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19];

/// The longest message that fits one padded SHA-256 block (64 bytes less the 0x80 byte and the 8-byte length).
const SINGLE_BLOCK_MAX: usize = 55;

/// SHA-256 of a message of at most 55 bytes, with one call to `sha2`'s compression function.
///
/// Every key this crate issues (its 24-character secret) and most opaque keys fit one block; `Sha256::digest`
/// spends about a third of its time on its generic buffering for such inputs. The padding is FIPS 180-4 5.1.1;
/// the unit tests check this against `Sha256::digest` for every length from 0 to 55.
fn sha256_single_block(bytes: &[u8]) -> [u8; 32] {
    debug_assert!(bytes.len() <= SINGLE_BLOCK_MAX);
    let mut block = [0u8; 64];
    block[..bytes.len()].copy_from_slice(bytes);
    block[bytes.len()] = 0x80;
    // Length in bits, big-endian, in the last 8 bytes (at most 440, so this cannot overflow).
    block[56..].copy_from_slice(&((bytes.len() as u64) * 8).to_be_bytes());
    let mut state = SHA256_IV;
    sha2::compress256(&mut state, &[block.into()]);
    let mut out = [0u8; 32];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The SHA-256 digest of a key's secret: what stores keep instead of the key.
///
/// Equality (`==` and [`KeyDigest::ct_eq`]) runs in constant time: the digest is compared as four 64-bit words with
/// [`subtle`], with no early return. `Hash` uses the first eight bytes, which is enough because the digest is
/// already uniform. `Debug` shows only the first four bytes.
///
/// ```
/// use tower_api_key::KeyDigest;
///
/// let d = KeyDigest::of(b"secret");
/// assert!(bool::from(d.ct_eq(&KeyDigest::of(b"secret"))));
/// assert_eq!(KeyDigest::from_hex(&d.to_hex()).unwrap(), d);
/// ```
#[derive(Clone, Copy)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// SHA-256 of `bytes`.
    ///
    /// ```
    /// let d = tower_api_key::KeyDigest::of(b"abc");
    /// assert!(d.to_hex().starts_with("ba7816bf"));
    /// ```
    #[must_use]
    pub fn of(bytes: &[u8]) -> Self {
        if bytes.len() <= SINGLE_BLOCK_MAX {
            return Self(sha256_single_block(bytes));
        }
        Self(Sha256::digest(bytes).into())
    }

    /// Wraps 32 raw digest bytes, for example read back from a database.
    ///
    /// ```
    /// let d = tower_api_key::KeyDigest::from_bytes([7; 32]);
    /// assert_eq!(d.as_bytes(), &[7; 32]);
    /// ```
    #[must_use]
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    ///
    /// ```
    /// assert_eq!(tower_api_key::KeyDigest::of(b"").as_bytes().len(), 32);
    /// ```
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex, 64 characters: the form used in configuration files and by the key generator.
    ///
    /// ```
    /// assert_eq!(tower_api_key::KeyDigest::of(b"").to_hex().len(), 64);
    /// ```
    #[must_use]
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters (either case).
    ///
    /// # Errors
    /// [`InvalidDigest`] when the text is not exactly 32 hex-encoded bytes.
    ///
    /// ```
    /// use tower_api_key::KeyDigest;
    /// assert!(KeyDigest::from_hex("zz").is_err());
    /// let hex = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    /// assert_eq!(KeyDigest::from_hex(hex).unwrap(), KeyDigest::of(b"abc"));
    /// ```
    pub fn from_hex(text: &str) -> Result<Self, InvalidDigest> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut out).map_err(|_| InvalidDigest)?;
        Ok(Self(out))
    }

    /// Constant-time equality: the time taken does not depend on where the digests differ.
    ///
    /// ```
    /// use tower_api_key::KeyDigest;
    /// assert!(!bool::from(KeyDigest::of(b"a").ct_eq(&KeyDigest::of(b"b"))));
    /// ```
    #[must_use]
    pub fn ct_eq(&self, other: &Self) -> Choice {
        let a = self.words();
        let b = other.words();
        // OR of the XORs of the four words: zero exactly when all 32 bytes match. One constant-time comparison at
        // the end, no branch or early return on any byte.
        let diff = (a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3]);
        diff.ct_eq(&0)
    }

    #[inline]
    fn words(&self) -> [u64; 4] {
        let mut w = [0u64; 4];
        for (word, chunk) in w.iter_mut().zip(self.0.chunks_exact(8)) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(chunk);
            *word = u64::from_le_bytes(bytes);
        }
        w
    }
}

impl PartialEq for KeyDigest {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for KeyDigest {}

impl Hash for KeyDigest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.words()[0]);
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyDigest({}…)", hex::encode(&self.0[..4]))
    }
}

/// Text that is not a hex-encoded SHA-256 digest.
///
/// ```
/// assert!(tower_api_key::KeyDigest::from_hex("nope").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a hex-encoded SHA-256 digest (64 hex characters)")]
pub struct InvalidDigest;

/// A `BuildHasher` for maps keyed by [`KeyDigest`] or [`crate::KeyId`]: both are already random, so hashing is a
/// fold of the first bytes written and one multiply. Not flood-resistant; only use it for keys the server chose.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RandomKeyHasher;

impl std::hash::BuildHasher for RandomKeyHasher {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(0)
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = self.0.rotate_left(5) ^ n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::new("tak_user_supersecretvalue".into());
        let dbg = format!("{key:?} {:?}", Some(&key));
        assert!(!dbg.contains("supersecret"), "{dbg}");
    }

    #[test]
    fn single_block_path_matches_sha2() {
        let input: Vec<u8> = (0..=200u8).map(|i| i.wrapping_mul(37)).collect();
        for len in 0..=input.len() {
            let want: [u8; 32] = Sha256::digest(&input[..len]).into();
            assert_eq!(KeyDigest::of(&input[..len]).as_bytes(), &want, "length {len}");
        }
        // The FIPS 180-2 test vector "abc".
        assert_eq!(KeyDigest::of(b"abc").to_hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn digest_equality_matches_bytes() {
        let a = KeyDigest::of(b"one");
        let mut flipped = *a.as_bytes();
        for i in 0..32 {
            flipped[i] ^= 1;
            assert_ne!(KeyDigest::from_bytes(flipped), a, "byte {i}");
            flipped[i] ^= 1;
        }
        assert_eq!(KeyDigest::from_bytes(flipped), a);
    }

    #[test]
    fn digest_debug_is_short() {
        let d = KeyDigest::of(b"x");
        let s = format!("{d:?}");
        assert!(!s.contains(&d.to_hex()));
    }
}
