//! Backups of an instance: a consistent copy of its database (records, op
//! log, sealed key), encrypted under the admin password. A restored
//! instance recovers any ops it signed after the backup from its peers
//! before writing again (see the lost-write guard), so it never equivocates.

use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

use crate::error::NodeError;
use crate::node::{DB_FILE, Node, lock_data_dir};
use crate::secrets::{KdfParams, SecretError, random_bytes};

const MAGIC: &[u8; 10] = b"DANBACKUP1";
const AAD: &[u8] = b"dan backup v1";
/// Largest backup file read (it is decrypted in memory: a database of
/// several million records).
pub const MAX_BACKUP_BYTES: u64 = 4 * 1024 * 1024 * 1024;

fn backup_key(password: &str, salt: &[u8]) -> Result<[u8; 32], SecretError> {
    let kdf = KdfParams::OWASP;
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.parallelism, Some(32))
        .map_err(|e| SecretError::Damaged(e.to_string()))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(password.as_bytes(), salt, &mut key)
        .map_err(|e| SecretError::Damaged(e.to_string()))?;
    Ok(key)
}

/// A backup file's parts: KDF salt, nonce and the sealed database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BackupFile {
    /// Salt of the Argon2id key derivation.
    pub salt: [u8; 16],
    /// XChaCha20-Poly1305 nonce.
    pub nonce: [u8; 24],
    /// The encrypted database, with its tag.
    pub sealed: Vec<u8>,
}

impl BackupFile {
    /// Splits a backup file into its parts (nothing is decrypted yet).
    pub fn parse(bytes: &[u8]) -> Result<Self, NodeError> {
        let not_a_backup = || NodeError::Invalid("this file is not a DAN backup".into());
        let body = bytes
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(not_a_backup)?;
        // The tag alone is 16 bytes: anything shorter holds no database.
        if body.len() <= 16 + 24 + 16 {
            return Err(not_a_backup());
        }
        let (salt, rest) = body.split_at(16);
        let (nonce, sealed) = rest.split_at(24);
        Ok(BackupFile {
            salt: salt.try_into().map_err(|_| not_a_backup())?,
            nonce: nonce.try_into().map_err(|_| not_a_backup())?,
            sealed: sealed.to_vec(),
        })
    }

    /// The file's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&self.salt);
        file.extend_from_slice(&self.nonce);
        file.extend_from_slice(&self.sealed);
        file
    }
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> NodeError {
    NodeError::io(what)
}

impl Node {
    /// Writes an encrypted backup of this instance to `path` (admin only;
    /// encrypted under the admin password).
    pub async fn export_backup(&self, path: &Path, password: &str) -> Result<u64, NodeError> {
        self.verify_admin(password).await?;
        let snapshot = self
            .data_dir()
            .join(format!("backup-{}.tmp", crate::replication::now_ms()));
        self.inner().store.snapshot(&snapshot).await?;
        let plain = std::fs::read(&snapshot).map_err(io(format!("reading {}", snapshot.display())));
        let _ = std::fs::remove_file(&snapshot);
        let plain = plain?;
        let salt: [u8; 16] = random_bytes()?[..16].try_into().unwrap_or_default();
        let nonce: [u8; 24] = random_bytes()?[..24].try_into().unwrap_or_default();
        let password = password.to_owned();
        let sealed = tokio::task::spawn_blocking(move || {
            let key = backup_key(&password, &salt)?;
            XChaCha20Poly1305::new((&key).into())
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &plain,
                        aad: AAD,
                    },
                )
                .map_err(|_| SecretError::Damaged("encryption failed".into()))
        })
        .await
        .map_err(|e| SecretError::Damaged(format!("backup crashed: {e}")))??;
        let file = BackupFile {
            salt,
            nonce,
            sealed,
        }
        .to_bytes();
        dan_store::private::write_replacing(path, &file)?;
        Ok(file.len() as u64)
    }

    /// Restores a backup into `data_dir` (the instance must not be
    /// running). The current database is kept next to it as
    /// `dan.db.before-restore-<ms>` (with its write-ahead log).
    pub async fn restore_backup(
        data_dir: &Path,
        backup: &Path,
        password: &str,
    ) -> Result<(), NodeError> {
        let file = dan_store::private::read_bounded(backup, MAX_BACKUP_BYTES)?;
        let BackupFile {
            salt,
            nonce,
            sealed,
        } = BackupFile::parse(&file)
            .map_err(|_| NodeError::Invalid(format!("{} is not a DAN backup", backup.display())))?;
        let password = password.to_owned();
        let plain = tokio::task::spawn_blocking(move || {
            let key = backup_key(&password, &salt)?;
            XChaCha20Poly1305::new((&key).into())
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &sealed,
                        aad: AAD,
                    },
                )
                .map_err(|_| SecretError::WrongPassword)
        })
        .await
        .map_err(|e| SecretError::Damaged(format!("restore crashed: {e}")))??;
        dan_store::private::create_dir(data_dir)?;
        let _lock = lock_data_dir(data_dir)?;
        let db = data_dir.join(DB_FILE);
        if std::fs::symlink_metadata(&db).is_ok() {
            // The database moves with its write-ahead log (which may hold
            // its latest transactions), under a name no restore reuses.
            let kept = format!("{DB_FILE}.before-restore-{}", crate::replication::now_ms());
            for suffix in ["", "-wal", "-shm"] {
                let from = data_dir.join(format!("{DB_FILE}{suffix}"));
                if std::fs::symlink_metadata(&from).is_ok() {
                    std::fs::rename(&from, data_dir.join(format!("{kept}{suffix}")))
                        .map_err(io(format!("moving {}", from.display())))?;
                }
            }
        }
        dan_store::private::write_replacing(&db, &plain)?;
        // The seal was for the log moved aside.
        crate::close_seal::forget(data_dir);
        Ok(())
    }
}
