//! The seal of a clean shutdown: what lets a start skip re-checking every
//! signature and every row when nothing changed since.
//!
//! When an instance closes cleanly, with a clean integrity report, it
//! hashes its database file (the write-ahead log is folded in and gone by
//! then) and writes the hash with a tag keyed by its own secret key. At
//! the next start the seal is taken (read and deleted at once, so a crash
//! after the start can never leave one behind) and checked against the
//! file before SQLite opens it: a file that is byte for byte the one
//! sealed holds only ops this instance verified and rows it wrote from
//! them, so the start replays the log without checking signatures again
//! and compares only a sample of rows. Any change to the file (a row
//! edited behind DAN's back, a restored or copied database, a write-ahead
//! log left over) fails the check, and the start does the full check.
//! A local user who does not know the admin password cannot make a tag for
//! an edited file: the key is sealed under that password.

use std::io::Read;
use std::path::Path;

use dan_core::Keypair;

use crate::node::DB_FILE;

/// The seal's file in the data directory.
const SEAL_FILE: &str = "clean-close.seal";

/// What the seal says: the database file's length and BLAKE3 hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FileState {
    len: u64,
    hash: [u8; 32],
}

impl FileState {
    /// The state of `data_dir`'s database as it is now, if it has no
    /// write-ahead log with content (whose transactions the file alone
    /// would not show).
    fn of(data_dir: &Path) -> Option<FileState> {
        let wal = data_dir.join(format!("{DB_FILE}-wal"));
        if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
            return None;
        }
        let mut file = std::fs::File::open(data_dir.join(DB_FILE)).ok()?;
        let mut hasher = blake3::Hasher::new();
        let mut buffer = vec![0; 1 << 20];
        let mut len = 0u64;
        loop {
            let read = file.read(&mut buffer).ok()?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            len += read as u64;
        }
        Some(FileState {
            len,
            hash: *hasher.finalize().as_bytes(),
        })
    }

    fn tag(&self, keypair: &Keypair) -> blake3::Hash {
        let key = blake3::derive_key("dan clean-close seal v1", &keypair.secret());
        let mut keyed = blake3::Hasher::new_keyed(&key);
        keyed.update(&self.len.to_le_bytes());
        keyed.update(&self.hash);
        keyed.finalize()
    }
}

/// At start, before the database is opened: takes the seal away (whatever
/// it says) and returns the file's state now if a seal was there, for
/// [`holds`] to check once the key is unlocked.
pub(crate) fn take(data_dir: &Path) -> Option<(Vec<u8>, FileState)> {
    let path = data_dir.join(SEAL_FILE);
    let seal = dan_store::private::read_bounded(&path, 64).ok();
    let _ = std::fs::remove_file(&path);
    let seal = seal?;
    Some((seal, FileState::of(data_dir)?))
}

/// Whether `seal` was made by `keypair` for exactly the file `state`.
pub(crate) fn holds(seal: &[u8], state: &FileState, keypair: &Keypair) -> bool {
    // `blake3::Hash` compares in constant time.
    <[u8; 32]>::try_from(seal).is_ok_and(|seal| blake3::Hash::from(seal) == state.tag(keypair))
}

/// After a clean close (the store closed, its log folded in): seals the
/// database file as it is. Nothing is sealed if the file cannot be read
/// whole or a write-ahead log is left.
pub(crate) fn seal(data_dir: &Path, keypair: &Keypair) {
    let Some(state) = FileState::of(data_dir) else {
        tracing::debug!("the database was not sealed: a write-ahead log is left");
        return;
    };
    if let Err(e) = dan_store::private::write_replacing(
        &data_dir.join(SEAL_FILE),
        state.tag(keypair).as_bytes(),
    ) {
        tracing::warn!("could not seal the clean shutdown (the next start checks everything): {e}");
    }
}

#[cfg(test)]
mod tests {
    use dan_core::Keypair;

    use super::{SEAL_FILE, holds, take};
    use crate::api::PutRecord;
    use crate::error::NodeError;
    use crate::node::{Credentials, DB_FILE, Node, NodeConfig};
    use crate::test_instance::{PASSWORD, founded};

    async fn reopen(dir: &std::path::Path) -> Result<Node, NodeError> {
        let credentials = Credentials {
            password: Some(PASSWORD.into()),
            use_keyring: false,
        };
        Node::open(NodeConfig::new(dir), credentials).await
    }

    fn put(title: &str) -> PutRecord {
        PutRecord {
            collection: Some("books".into()),
            title: Some(title.into()),
            ..PutRecord::default()
        }
    }

    #[tokio::test]
    async fn a_clean_close_lets_the_next_start_check_a_sample_and_anything_else_checks_all() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let titles: Vec<PutRecord> = (0..20).map(|n| put(&format!("Book {n}"))).collect();
        node.import_records(titles).await.expect("import");
        let root = node.status().await.state_root;
        assert!(
            !node.integrity().sampled,
            "the first start checked everything"
        );
        node.close().await;
        assert!(dir.path().join(SEAL_FILE).exists(), "a clean close seals");

        let node = reopen(dir.path()).await.expect("reopen");
        assert!(node.integrity().sampled, "unchanged since the clean close");
        assert_eq!(node.status().await.state_root, root);
        assert!(
            !dir.path().join(SEAL_FILE).exists(),
            "the seal is taken at start, so a crash leaves none"
        );
        // A crash: the instance goes away without closing.
        drop(node);
        let node = reopen(dir.path()).await.expect("reopen after a crash");
        assert!(!node.integrity().sampled, "no seal: everything is checked");
        assert_eq!(node.status().await.state_root, root);
        node.close().await;

        // A title edited in the file behind DAN's back (same length).
        let path = dir.path().join(DB_FILE);
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes
            .windows(7)
            .rposition(|w| w == b"Book 13")
            .expect("the title is in the file");
        bytes[at..at + 7].copy_from_slice(b"Book 99");
        std::fs::write(&path, &bytes).expect("write");
        match reopen(dir.path()).await {
            Err(NodeError::Integrity(report)) => {
                assert!(!report.sampled, "the whole report: {report}");
                assert!(!report.is_clean());
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("an edited file passed"),
        }
    }

    #[test]
    fn the_seal_holds_only_for_the_same_file_the_same_key_and_no_log_left() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, b"the database as it was closed").expect("write");
        let key = Keypair::from_secret([3; 32]);
        super::seal(dir.path(), &key);
        let (seal, state) = take(dir.path()).expect("sealed");
        assert!(holds(&seal, &state, &key));
        assert!(
            !holds(&seal, &state, &Keypair::from_secret([4; 32])),
            "another key"
        );
        assert!(!holds(&seal[..31], &state, &key), "a cut seal");
        assert!(take(dir.path()).is_none(), "taken once");

        super::seal(dir.path(), &key);
        std::fs::write(&path, b"the database as it was closed!").expect("write");
        let (seal, state) = take(dir.path()).expect("sealed");
        assert!(!holds(&seal, &state, &key), "a changed file");

        std::fs::write(&path, b"the database as it was closed").expect("write");
        super::seal(dir.path(), &key);
        std::fs::write(dir.path().join(format!("{DB_FILE}-wal")), b"a transaction").expect("write");
        assert!(
            take(dir.path()).is_none(),
            "a log left over: no seal counts"
        );
    }
}
