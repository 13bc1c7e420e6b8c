//! The admin password and the instance's secret key at rest.
//!
//! The secret key is sealed (XChaCha20-Poly1305) under a key derived from the
//! admin password with Argon2id (OWASP parameters: 19 MiB, 2 passes, 1 lane).
//! The derived key can be cached in the OS keyring so the desktop app starts
//! without asking; headless instances use the password directly.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use dan_core::{Keypair, PeerKey};
use serde::{Deserialize, Serialize};

/// Shortest admin password accepted.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Longest admin password accepted (bytes), to bound hashing work.
pub const MAX_PASSWORD_LEN: usize = 1024;

/// Problems with passwords and sealed keys.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// The password does not open the sealed key.
    #[error("wrong admin password")]
    WrongPassword,
    /// The password is too short or too long.
    #[error("the admin password must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long")]
    WeakPassword,
    /// The sealed key on disk is malformed.
    #[error("the sealed instance key is damaged: {0}")]
    Damaged(String),
    /// The OS random source failed.
    #[error("the system random number generator failed: {0}")]
    Random(String),
}

/// Argon2id cost parameters, stored with the sealed key so they can be raised
/// later without locking anyone out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Passes.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// OWASP's recommended Argon2id setting (m=19 MiB, t=2, p=1).
    pub const OWASP: KdfParams = KdfParams {
        memory_kib: 19 * 1024,
        iterations: 2,
        parallelism: 1,
    };
}

/// A key derived from the admin password; opens the sealed secret key.
#[derive(Clone, PartialEq, Eq)]
pub struct UnlockKey([u8; 32]);

impl UnlockKey {
    /// The hex form, for the OS keyring.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).ok()?;
        Some(UnlockKey(bytes))
    }
}

impl std::fmt::Debug for UnlockKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UnlockKey(…)")
    }
}

/// The instance's secret key, encrypted under the admin password.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedKey {
    /// The public key it belongs to (bound into the encryption).
    pub public: PeerKey,
    /// Argon2id parameters.
    pub kdf: KdfParams,
    /// Argon2id salt (hex).
    pub salt: String,
    /// XChaCha20 nonce (hex).
    pub nonce: String,
    /// Encrypted secret key with its tag (hex).
    pub ciphertext: String,
}

fn random<const N: usize>() -> Result<[u8; N], SecretError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| SecretError::Random(e.to_string()))?;
    Ok(bytes)
}

/// 32 fresh random bytes (keys, tokens).
pub fn random_bytes() -> Result<[u8; 32], SecretError> {
    random()
}

/// Checks a new admin password against the policy.
pub fn check_new_password(password: &str) -> Result<(), SecretError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_LEN || password.len() > MAX_PASSWORD_LEN {
        return Err(SecretError::WeakPassword);
    }
    Ok(())
}

impl SealedKey {
    /// Seals `keypair` under `password`.
    pub fn seal(keypair: &Keypair, password: &str) -> Result<(SealedKey, UnlockKey), SecretError> {
        check_new_password(password)?;
        let salt: [u8; 16] = random()?;
        let nonce: [u8; 24] = random()?;
        let kdf = KdfParams::OWASP;
        let unlock = derive(password, &salt, kdf)?;
        let public = keypair.public();
        let cipher = XChaCha20Poly1305::new((&unlock.0).into());
        let ciphertext = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &keypair.secret(),
                    aad: &aad(&public),
                },
            )
            .map_err(|_| SecretError::Damaged("encryption failed".into()))?;
        let sealed = SealedKey {
            public,
            kdf,
            salt: hex::encode(salt),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        };
        Ok((sealed, unlock))
    }

    /// Derives the unlock key for `password` (slow on purpose).
    pub fn unlock_key(&self, password: &str) -> Result<UnlockKey, SecretError> {
        if password.len() > MAX_PASSWORD_LEN {
            return Err(SecretError::WrongPassword);
        }
        let salt = hex::decode(&self.salt).map_err(|e| SecretError::Damaged(e.to_string()))?;
        derive(password, &salt, self.kdf)
    }

    /// Opens the sealed key; fails with [`SecretError::WrongPassword`] if
    /// `unlock` was not derived from the right password.
    pub fn open(&self, unlock: &UnlockKey) -> Result<Keypair, SecretError> {
        let damaged = |e: hex::FromHexError| SecretError::Damaged(e.to_string());
        let nonce = hex::decode(&self.nonce).map_err(damaged)?;
        let ciphertext = hex::decode(&self.ciphertext).map_err(damaged)?;
        if nonce.len() != 24 {
            return Err(SecretError::Damaged("bad nonce length".into()));
        }
        let cipher = XChaCha20Poly1305::new((&unlock.0).into());
        let secret = cipher
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad(&self.public),
                },
            )
            .map_err(|_| SecretError::WrongPassword)?;
        let secret: [u8; 32] = secret
            .try_into()
            .map_err(|_| SecretError::Damaged("bad key length".into()))?;
        let keypair = Keypair::from_secret(secret);
        if keypair.public() != self.public {
            return Err(SecretError::Damaged(
                "key does not match its public half".into(),
            ));
        }
        Ok(keypair)
    }
}

fn aad(public: &PeerKey) -> Vec<u8> {
    let mut aad = b"dan sealed key v1\0".to_vec();
    aad.extend_from_slice(&public.0);
    aad
}

fn derive(password: &str, salt: &[u8], kdf: KdfParams) -> Result<UnlockKey, SecretError> {
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| SecretError::Damaged(format!("key derivation parameters: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut out)
        .map_err(|e| SecretError::Damaged(format!("key derivation: {e}")))?;
    Ok(UnlockKey(out))
}

/// How long to wait before checking a password after `failures` wrong ones
/// in a row: nothing at first, then 1 s doubling up to 60 s.
pub fn unlock_delay(failures: u32) -> std::time::Duration {
    if failures == 0 {
        return std::time::Duration::ZERO;
    }
    let seconds = 1u64 << failures.saturating_sub(1).min(6);
    std::time::Duration::from_secs(seconds.min(60))
}

/// How long one keyring call may take: on a desktop whose keyring service
/// does not answer, the instance goes on without it.
const KEYRING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

async fn with_keyring<T: Send + 'static>(
    public: PeerKey,
    call: impl FnOnce(&KeyringCache) -> T + Send + 'static,
) -> Option<T> {
    let task = tokio::task::spawn_blocking(move || call(&KeyringCache::new(&public)));
    match tokio::time::timeout(KEYRING_TIMEOUT, task).await {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::debug!("keyring call failed: {e}");
            None
        }
        Err(_) => {
            tracing::info!(
                "the OS keyring did not answer within {KEYRING_TIMEOUT:?}; going on without it"
            );
            None
        }
    }
}

/// The cached unlock key of `public`, if the keyring has one (bounded in time).
pub async fn keyring_load(public: PeerKey) -> Option<UnlockKey> {
    with_keyring(public, KeyringCache::load).await.flatten()
}

/// Caches `unlock` for `public`; whether the keyring took it (bounded in time).
pub async fn keyring_store(public: PeerKey, unlock: UnlockKey) -> bool {
    with_keyring(public, move |k| k.store(&unlock))
        .await
        .unwrap_or(false)
}

/// Drops the cached unlock key of `public` (bounded in time).
pub async fn keyring_forget(public: PeerKey) {
    with_keyring(public, KeyringCache::forget).await;
}

/// The OS keyring entry that caches an instance's unlock key.
pub struct KeyringCache {
    entry: Option<keyring::Entry>,
}

impl KeyringCache {
    /// The entry for the instance `public`. Unavailable keyrings (headless
    /// servers) make every call a no-op.
    pub fn new(public: &PeerKey) -> Self {
        let entry = keyring::Entry::new("org.dan.instance", &public.to_string())
            .map_err(|e| tracing::debug!("no OS keyring: {e}"))
            .ok();
        KeyringCache { entry }
    }

    /// The cached unlock key, if any.
    pub fn load(&self) -> Option<UnlockKey> {
        let secret = self.entry.as_ref()?.get_password();
        match secret {
            Ok(text) => UnlockKey::from_hex(&text),
            Err(keyring::Error::NoEntry) => None,
            Err(e) => {
                tracing::debug!("OS keyring unavailable: {e}");
                None
            }
        }
    }

    /// Caches `unlock`. Returns whether the keyring took it.
    pub fn store(&self, unlock: &UnlockKey) -> bool {
        match self
            .entry
            .as_ref()
            .map(|e| e.set_password(&unlock.to_hex()))
        {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::info!("could not cache the unlock key in the OS keyring: {e}");
                false
            }
            None => false,
        }
    }

    /// Removes the cached key (after a password change).
    pub fn forget(&self) {
        if let Some(Err(e)) = self.entry.as_ref().map(keyring::Entry::delete_credential) {
            tracing::debug!("keyring: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_key_opens_only_with_the_right_password() {
        let pair = Keypair::from_secret([8; 32]);
        let (sealed, unlock) = SealedKey::seal(&pair, "correct horse battery").expect("seal");
        assert_eq!(sealed.open(&unlock).map(|k| k.public()), Ok(pair.public()));
        let again = sealed.unlock_key("correct horse battery").expect("derive");
        assert_eq!(again, unlock);
        let wrong = sealed.unlock_key("wrong horse battery").expect("derive");
        assert_eq!(
            sealed.open(&wrong).map(|k| k.public()),
            Err(SecretError::WrongPassword)
        );
    }

    #[test]
    fn short_passwords_are_refused() {
        let pair = Keypair::from_secret([8; 32]);
        assert_eq!(
            SealedKey::seal(&pair, "short").map(|_| ()),
            Err(SecretError::WeakPassword)
        );
    }

    #[test]
    fn the_delay_grows_and_is_capped() {
        let delays: Vec<u64> = [0, 1, 2, 3, 7, 30]
            .map(|n| unlock_delay(n).as_secs())
            .to_vec();
        assert_eq!(delays, [0, 1, 2, 4, 60, 60]);
    }
}
