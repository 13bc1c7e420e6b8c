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
        let mut file = MAGIC.to_vec();
        file.extend_from_slice(&salt);
        file.extend_from_slice(&nonce);
        file.extend_from_slice(&sealed);
        let temp = path.with_extension("partial");
        std::fs::write(&temp, &file).map_err(io(format!("writing {}", temp.display())))?;
        std::fs::rename(&temp, path).map_err(io(format!("writing {}", path.display())))?;
        Ok(file.len() as u64)
    }

    /// Restores a backup into `data_dir` (the instance must not be
    /// running). The current database is kept next to it as
    /// `dan.db.before-restore`.
    pub async fn restore_backup(
        data_dir: &Path,
        backup: &Path,
        password: &str,
    ) -> Result<(), NodeError> {
        let file = std::fs::read(backup).map_err(io(format!("reading {}", backup.display())))?;
        let body = file
            .strip_prefix(MAGIC.as_slice())
            .filter(|rest| rest.len() > 40)
            .ok_or_else(|| {
                NodeError::Invalid(format!("{} is not a DAN backup", backup.display()))
            })?;
        let (salt, rest) = body.split_at(16);
        let (nonce, sealed) = rest.split_at(24);
        let (salt, nonce, sealed, password) = (
            salt.to_vec(),
            nonce.to_vec(),
            sealed.to_vec(),
            password.to_owned(),
        );
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
        std::fs::create_dir_all(data_dir)
            .map_err(io(format!("creating {}", data_dir.display())))?;
        let _lock = lock_data_dir(data_dir)?;
        let db = data_dir.join(DB_FILE);
        if db.exists() {
            std::fs::rename(&db, data_dir.join("dan.db.before-restore"))
                .map_err(io(format!("moving {}", db.display())))?;
        }
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(data_dir.join(format!("{DB_FILE}{suffix}")));
        }
        std::fs::write(&db, plain).map_err(io(format!("writing {}", db.display())))?;
        Ok(())
    }
}
