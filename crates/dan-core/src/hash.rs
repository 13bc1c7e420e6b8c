//! 32-byte BLAKE3 digests and the names the protocol gives them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A 32-byte BLAKE3 digest. Shown as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero digest, used as the root of an empty tree.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// BLAKE3 of `bytes` with no domain separation (op ids, code hashes).
    pub fn of(bytes: &[u8]) -> Self {
        Hash32(*blake3::hash(bytes).as_bytes())
    }

    /// BLAKE3 of `parts` under a domain tag, so that digests made for one
    /// purpose can never be replayed as digests for another.
    pub fn tagged(domain: &str, parts: &[&[u8]]) -> Self {
        let mut hasher = blake3::Hasher::new_derive_key(domain);
        for part in parts {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
        Hash32(*hasher.finalize().as_bytes())
    }

    /// The 64-character lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex characters, for short displays.
    pub fn short(&self) -> String {
        let mut hex = self.to_hex();
        hex.truncate(12);
        hex
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash32({})", self.short())
    }
}

/// A string that is not a 64-character hex digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a 64-character hex hash")]
pub struct BadHash(pub String);

impl FromStr for Hash32 {
    type Err = BadHash;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| BadHash(text.to_owned()))?;
        Ok(Hash32(bytes))
    }
}

impl Serialize for Hash32 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.serialize_str(&self.to_hex())
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(Hash32(<[u8; 32]>::deserialize(deserializer)?))
        }
    }
}

/// Identifies an op: BLAKE3 of its canonical signed bytes.
pub type OpId = Hash32;
/// Identifies a network: BLAKE3 of its canonical signed genesis.
pub type NetworkId = Hash32;
/// BLAKE3 of a running executable; the charter lists the approved ones.
pub type CodeHash = Hash32;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_rejects_garbage() {
        let hash = Hash32::of(b"dan");
        assert_eq!(hash.to_hex().parse::<Hash32>(), Ok(hash));
        assert!("zz".parse::<Hash32>().is_err());
        assert!(hash.to_hex()[..10].parse::<Hash32>().is_err());
    }

    #[test]
    fn tagged_hashes_differ_by_domain_and_by_split() {
        let a = Hash32::tagged("dan test a", &[b"xy"]);
        let b = Hash32::tagged("dan test b", &[b"xy"]);
        let split = Hash32::tagged("dan test a", &[b"x", b"y"]);
        assert_ne!(a, b);
        assert_ne!(a, split);
    }
}
