//! Instance identities: an Ed25519 key pair per instance. The public key is
//! also the instance's libp2p identity, so it is shown as a libp2p peer id.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// Errors about keys and peer ids.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The text is not a libp2p Ed25519 peer id (`12D3KooW…`).
    #[error("`{0}` is not a DAN peer id (expected an Ed25519 libp2p peer id such as 12D3KooW…)")]
    BadPeerId(String),
    /// The bytes are not a usable Ed25519 public key.
    #[error("not a valid Ed25519 public key")]
    BadPublicKey,
}

/// The public key of an instance. Displayed and parsed as a libp2p peer id.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerKey(pub [u8; 32]);

/// libp2p's identity multihash prefix for a protobuf-encoded Ed25519 key:
/// multihash code 0x00 (identity), length 36, then the protobuf
/// `{ Type: Ed25519 (1), Data: 32 bytes }`.
const PEER_ID_PREFIX: [u8; 6] = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20];

impl PeerKey {
    /// The join code people compare before an admin approves this instance
    /// (like Signal's safety numbers): 12 digits derived from the key, read
    /// out from the joiner's screen and checked against the approver's.
    /// Making another key with the same code takes about 10^12 tries.
    pub fn join_code(&self) -> String {
        let digest = crate::hash::Hash32::tagged("dan join code v1", &[&self.0]);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest.0[..8]);
        let n = u64::from_le_bytes(first) % 1_000_000_000_000;
        format!(
            "{:04} {:04} {:04}",
            n / 100_000_000,
            n / 10_000 % 10_000,
            n % 10_000
        )
    }

    /// The libp2p peer id bytes (identity multihash of the protobuf key).
    pub fn to_peer_id_bytes(&self) -> Vec<u8> {
        let mut bytes = PEER_ID_PREFIX.to_vec();
        bytes.extend_from_slice(&self.0);
        bytes
    }

    /// Recovers the key from libp2p peer id bytes.
    pub fn from_peer_id_bytes(bytes: &[u8]) -> Option<Self> {
        let key = bytes.strip_prefix(&PEER_ID_PREFIX)?;
        Some(PeerKey(key.try_into().ok()?))
    }

    /// The unpacked key for signature checks; fails on bytes that are not a
    /// curve point or on weak (small-order) keys, which could sign anything.
    pub fn verifying_key(&self) -> Result<VerifyingKey, IdentityError> {
        let key = VerifyingKey::from_bytes(&self.0).map_err(|_| IdentityError::BadPublicKey)?;
        if key.is_weak() {
            return Err(IdentityError::BadPublicKey);
        }
        Ok(key)
    }

    /// Checks `signature` over `message` under this key (strict rules).
    pub fn verify(&self, message: &[u8], signature: &Signature) -> bool {
        self.verifying_key()
            .is_ok_and(|key| key.verify_strict(message, signature).is_ok())
    }

    /// A short form of the peer id for tables and logs.
    pub fn short(&self) -> String {
        let full = self.to_string();
        let tail = &full[full.len().saturating_sub(8)..];
        format!("…{tail}")
    }
}

impl fmt::Display for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&bs58::encode(self.to_peer_id_bytes()).into_string())
    }
}

impl fmt::Debug for PeerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PeerKey({self})")
    }
}

impl FromStr for PeerKey {
    type Err = IdentityError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || IdentityError::BadPeerId(text.to_owned());
        let bytes = bs58::decode(text.trim()).into_vec().map_err(|_| bad())?;
        let key = PeerKey::from_peer_id_bytes(&bytes).ok_or_else(bad)?;
        key.verifying_key().map_err(|_| bad())?;
        Ok(key)
    }
}

impl Serialize for PeerKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            serializer.collect_str(self)
        } else {
            self.0.serialize(serializer)
        }
    }
}

impl<'de> Deserialize<'de> for PeerKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            text.parse().map_err(serde::de::Error::custom)
        } else {
            Ok(PeerKey(<[u8; 32]>::deserialize(deserializer)?))
        }
    }
}

/// An instance's secret signing key. Never serialized; the node stores it
/// encrypted under the admin password.
#[derive(Clone)]
pub struct Keypair {
    signing: SigningKey,
}

impl Keypair {
    /// Builds the key pair from 32 secret bytes (from the OS random source,
    /// or decrypted from disk).
    pub fn from_secret(secret: [u8; 32]) -> Self {
        Keypair {
            signing: SigningKey::from_bytes(&secret),
        }
    }

    /// The 32 secret bytes, for encrypting at rest.
    pub fn secret(&self) -> [u8; 32] {
        self.signing.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PeerKey {
        PeerKey(self.signing.verifying_key().to_bytes())
    }

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_codes_are_twelve_digits_stable_and_differ_between_keys() {
        let a = Keypair::from_secret([7; 32]).public();
        let b = Keypair::from_secret([8; 32]).public();
        let code = a.join_code();
        assert_eq!(code.len(), 14, "{code}");
        assert!(
            code.chars().all(|c| c.is_ascii_digit() || c == ' '),
            "{code}"
        );
        assert_eq!(code, a.join_code());
        assert_ne!(code, b.join_code());
    }

    #[test]
    fn peer_id_text_round_trips_and_looks_like_libp2p() {
        let key = Keypair::from_secret([7; 32]).public();
        let text = key.to_string();
        assert!(text.starts_with("12D3KooW"), "{text}");
        assert_eq!(text.parse::<PeerKey>(), Ok(key));
    }

    #[test]
    fn garbage_peer_ids_are_rejected() {
        for bad in [
            "",
            "hello",
            "12D3KooWxyz",
            "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N",
        ] {
            assert!(bad.parse::<PeerKey>().is_err(), "{bad}");
        }
    }

    #[test]
    fn signatures_verify_only_for_the_signed_message() {
        let pair = Keypair::from_secret([1; 32]);
        let sig = pair.sign(b"hello");
        assert!(pair.public().verify(b"hello", &sig));
        assert!(!pair.public().verify(b"hellO", &sig));
        assert!(
            !Keypair::from_secret([2; 32])
                .public()
                .verify(b"hello", &sig)
        );
    }
}
