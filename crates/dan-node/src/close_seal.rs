//! The seal of a clean shutdown: what lets a start read the replica back
//! from a checkpoint instead of replaying the op log and comparing every
//! row.
//!
//! Before a clean close seals, it checks the database as it is at that
//! moment (`clean_close`): every row of the op log is one the store
//! appended itself (the digest of the log it follows, [`dan_store::LogDigest`],
//! started from a log this instance checked and extended by each row the
//! store appends) with an id that matches its bytes, and every record row
//! matches the replica. Edits made by anything else while the instance ran
//! (a local user's `sqlite3`) are found there, and nothing is sealed. Then
//! it writes the replica as a checkpoint and seals the hash of the closed
//! database file (taken before and after the check: a write meanwhile
//! makes them differ), the checkpoint's hash and the log's digest with a
//! tag keyed by a key derived from its own secret key, naming the build (a
//! new build, whose rules may be stricter, checks everything once).
//!
//! The next start takes the seal and the checkpoint away at once (a crash
//! after it can never leave one behind), hashes the database file before
//! opening it, and reads the checkpoint back only if the tag holds for the
//! file and the checkpoint as they are; it then checks a random sample of
//! ops and rows again. Anything else checks everything. A write to the
//! file after the start hashed it is a write while the instance runs,
//! found by the next clean close.
//!
//! What the seal does not stop: putting back an older database together
//! with the seal and checkpoint written for it (as restoring a backup
//! would, with the same effect), and a local user who can read the OS
//! keyring, where the key is cached, making a tag (they can then sign as
//! this instance anyway).

use std::path::Path;

use dan_core::{CodeHash, Keypair};

/// The seal's file in the data directory.
const SEAL_FILE: &str = "clean-close.seal";

/// The replica's checkpoint file in the data directory.
const CHECKPOINT_FILE: &str = "replica.checkpoint";

/// Largest checkpoint read back (a replica of millions of records).
const MAX_CHECKPOINT_BYTES: u64 = 16 << 30;

/// What a seal names: the database file, the replica's checkpoint and the
/// log as written, each by its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// BLAKE3 of the closed database file.
    pub(crate) file: [u8; 32],
    /// BLAKE3 of the checkpoint.
    pub(crate) checkpoint: [u8; 32],
    /// The log's digest and row count ([`dan_store::LogDigest::value`]).
    pub(crate) log: ([u8; 32], u64),
}

/// Bytes of a seal file: what it names and its tag.
const SEAL_BYTES: usize = 32 * 4 + 8;

impl Sealed {
    /// The tag of this seal for `build` under `keypair`.
    fn tag(&self, build: &CodeHash, keypair: &Keypair) -> blake3::Hash {
        let key = blake3::derive_key("dan clean-close seal v3", &keypair.secret());
        let mut keyed = blake3::Hasher::new_keyed(&key);
        keyed.update(&self.file);
        keyed.update(&self.checkpoint);
        keyed.update(&self.log.0);
        keyed.update(&self.log.1.to_le_bytes());
        keyed.update(&build.0);
        keyed.finalize()
    }
}

/// A seal found at start: what it names and its tag, not yet checked.
pub(crate) struct Seal {
    sealed: Sealed,
    tag: [u8; 32],
}

impl Seal {
    /// What the seal names, if `keypair` made it for `build`.
    pub(crate) fn holds(&self, build: &CodeHash, keypair: &Keypair) -> Option<Sealed> {
        // `blake3::Hash` compares in constant time.
        (blake3::Hash::from(self.tag) == self.sealed.tag(build, keypair)).then_some(self.sealed)
    }

    fn from_bytes(bytes: &[u8]) -> Option<Seal> {
        let bytes: &[u8; SEAL_BYTES] = bytes.try_into().ok()?;
        let part = |at: usize| -> [u8; 32] {
            let mut part = [0; 32];
            part.copy_from_slice(&bytes[at..at + 32]);
            part
        };
        let mut rows = [0; 8];
        rows.copy_from_slice(&bytes[96..104]);
        Some(Seal {
            sealed: Sealed {
                file: part(0),
                checkpoint: part(32),
                log: (part(64), u64::from_le_bytes(rows)),
            },
            tag: part(104),
        })
    }
}

/// What a clean close left for the next start.
pub(crate) struct Left {
    /// The seal.
    pub(crate) seal: Seal,
    /// The replica's checkpoint, as read.
    pub(crate) checkpoint: Vec<u8>,
    /// BLAKE3 of the database file as it is, before it is opened.
    pub(crate) file: [u8; 32],
}

impl Left {
    /// What the seal names, if `keypair` made it for `build` and for the
    /// database file and the checkpoint as they are.
    pub(crate) fn holds(&self, build: &CodeHash, keypair: &Keypair) -> Option<Sealed> {
        self.seal.holds(build, keypair).filter(|sealed| {
            sealed.file == self.file
                && sealed.checkpoint == *blake3::hash(&self.checkpoint).as_bytes()
        })
    }
}

/// Removes the seal and the checkpoint (the database they were for was
/// replaced).
pub(crate) fn forget(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SEAL_FILE));
    let _ = std::fs::remove_file(data_dir.join(CHECKPOINT_FILE));
}

/// At start, before the database is opened: takes the seal and the
/// checkpoint away (whatever they say) and hashes the database file `db`,
/// for [`Left::holds`] to check once the key is unlocked. `None` when
/// something is missing.
pub(crate) fn take(data_dir: &Path, db: &Path) -> Option<Left> {
    let read = |name: &str, limit: u64| {
        let path = data_dir.join(name);
        let bytes = dan_store::private::read_bounded(&path, limit).ok();
        let _ = std::fs::remove_file(&path);
        bytes
    };
    let seal = read(SEAL_FILE, SEAL_BYTES as u64);
    let checkpoint = read(CHECKPOINT_FILE, MAX_CHECKPOINT_BYTES);
    let seal = Seal::from_bytes(&seal?)?;
    let file = whole_file_digest(db)?;
    Some(Left {
        seal,
        checkpoint: checkpoint?,
        file,
    })
}

/// BLAKE3 of the database file `db`, when it holds the whole database (no
/// write-ahead log beside it with frames not yet moved into it).
pub(crate) fn whole_file_digest(db: &Path) -> Option<[u8; 32]> {
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    if std::fs::metadata(&wal).is_ok_and(|meta| meta.len() > 0) {
        return None;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(std::fs::File::open(db).ok()?).ok()?;
    Some(*hasher.finalize().as_bytes())
}

/// After a clean close checked the database: writes `checkpoint` and seals
/// it with `file` and `log` for `build`. A failure is only logged (the next
/// start checks everything).
pub(crate) fn seal(
    data_dir: &Path,
    file: [u8; 32],
    log: ([u8; 32], u64),
    checkpoint: &[u8],
    build: &CodeHash,
    keypair: &Keypair,
) {
    let sealed = Sealed {
        file,
        checkpoint: *blake3::hash(checkpoint).as_bytes(),
        log,
    };
    let mut bytes = Vec::with_capacity(SEAL_BYTES);
    for part in [&sealed.file, &sealed.checkpoint, &sealed.log.0] {
        bytes.extend_from_slice(part);
    }
    bytes.extend_from_slice(&sealed.log.1.to_le_bytes());
    bytes.extend_from_slice(sealed.tag(build, keypair).as_bytes());
    let written = dan_store::private::write_replacing(&data_dir.join(CHECKPOINT_FILE), checkpoint)
        .and_then(|()| dan_store::private::write_replacing(&data_dir.join(SEAL_FILE), &bytes));
    if let Err(e) = written {
        forget(data_dir);
        tracing::warn!("could not seal the clean shutdown (the next start checks everything): {e}");
    }
}

#[cfg(test)]
mod tests {
    use dan_core::{Applied, Hash32, Keypair, Op, Payload, RecordAction, RecordId, VerifiedOp};

    use super::{CHECKPOINT_FILE, SEAL_FILE, take};
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

    fn sealed(dir: &std::path::Path) -> bool {
        dir.join(SEAL_FILE).exists() && dir.join(CHECKPOINT_FILE).exists()
    }

    /// The database file opened behind DAN's back, as a local user's
    /// `sqlite3` could.
    async fn behind_its_back(dir: &std::path::Path) -> dan_store::Store {
        dan_store::Store::open(&dir.join(DB_FILE))
            .await
            .expect("open the file")
    }

    #[tokio::test]
    async fn a_clean_close_lets_the_next_start_read_the_replica_back_and_check_a_sample() {
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
        assert!(sealed(dir.path()), "a clean close seals");

        let node = reopen(dir.path()).await.expect("reopen");
        let report = node.integrity();
        assert!(report.sampled, "read back from the checkpoint: {report}");
        assert!(report.ops_checked > 0 && report.records_checked > 0);
        assert_eq!(node.status().await.state_root, root);
        assert!(
            !dir.path().join(SEAL_FILE).exists() && !dir.path().join(CHECKPOINT_FILE).exists(),
            "the seal and the checkpoint are taken at start, so a crash leaves none"
        );
        // What a start from the checkpoint writes is sealed in turn: the
        // log's digest goes on from the sealed one.
        node.put_record(put("Written after a sealed start"))
            .await
            .expect("write");
        let root = node.status().await.state_root;
        node.close().await;
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(node.integrity().sampled, "the seal follows the writes");
        assert_eq!(node.status().await.state_root, root);
        let books = node
            .list_records(&dan_store::RecordQuery::default())
            .await
            .expect("records");
        assert_eq!(books.len(), 21, "every record read back");
        node.close().await;
    }

    #[tokio::test]
    async fn an_op_put_into_the_log_while_the_instance_runs_is_found_at_close_and_nothing_is_sealed()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        // An op with a broken signature put into the log behind DAN's back,
        // as a local user's sqlite3 could while the instance runs.
        let (me, keypair) = (node.peer_id(), node.keypair());
        let forged = node
            .read_replica(move |replica| {
                let payload = Payload::Record {
                    id: RecordId::new("forged").expect("id"),
                    action: RecordAction::Create {
                        collection: "books".into(),
                        title: "Forged".into(),
                        fields: Default::default(),
                        tags: Default::default(),
                    },
                };
                let body = replica.next_body(me, 1_900_000_000_000, payload);
                let mut bytes = VerifiedOp::sign(body, &keypair)
                    .expect("sign")
                    .bytes()
                    .to_vec();
                let last = bytes.len() - 1;
                bytes[last] ^= 1;
                let forged =
                    VerifiedOp::reread_from_sealed_log(Op::decode(&bytes).expect("decode"));
                // With the row it would make, so that comparing rows finds
                // nothing: only the log's digest tells.
                let view = match replica.clone().apply(&forged) {
                    Ok(Applied::New(Some(view))) => *view,
                    other => panic!("{other:?}"),
                };
                (forged, view)
            })
            .await
            .expect("network");
        let store = behind_its_back(dir.path()).await;
        store
            .commit(&[forged.0], &[forged.1])
            .await
            .expect("insert");
        store.close().await;
        node.close().await;
        assert!(
            !sealed(dir.path()),
            "the close found a row it did not write"
        );
        match reopen(dir.path()).await {
            Err(NodeError::Integrity(report)) => {
                assert!(!report.sampled, "everything was checked: {report}");
                assert!(
                    report
                        .damaged_ops
                        .iter()
                        .any(|d| d.problem.contains("signature")),
                    "{report}"
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a log with an op DAN did not write passed"),
        }
    }

    #[tokio::test]
    async fn a_row_edited_while_the_instance_runs_is_found_at_close_and_named_at_the_next_start() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        let dune = node.put_record(put("Dune")).await.expect("write");
        let mut edited = dune.clone();
        edited.title = "Forged title".into();
        let store = behind_its_back(dir.path()).await;
        store.rematerialize(&[edited]).await.expect("edit");
        store.close().await;
        node.close().await;
        assert!(!sealed(dir.path()), "the close compared the rows");
        match reopen(dir.path()).await {
            Err(NodeError::Integrity(report)) => {
                assert!(!report.sampled);
                assert!(
                    report
                        .mismatched_records
                        .iter()
                        .any(|m| m.id == dune.id.to_string() && m.problem.contains("title")),
                    "{report}"
                );
            }
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("an edited row passed"),
        }
    }

    #[tokio::test]
    async fn a_database_changed_after_a_clean_close_is_checked_whole() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        let root = node.status().await.state_root;
        node.close().await;
        assert!(sealed(dir.path()));
        let store = behind_its_back(dir.path()).await;
        store
            .set_meta(&[("left-by-someone", b"else")])
            .await
            .expect("write");
        store.close().await;
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(!node.integrity().sampled, "the file is not the one sealed");
        assert_eq!(node.status().await.state_root, root);
        node.close().await;
    }

    #[tokio::test]
    async fn a_start_after_a_crash_checks_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        let root = node.status().await.state_root;
        node.close().await;
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(node.integrity().sampled);
        // The instance goes away without closing.
        drop(node);
        let node = reopen(dir.path()).await.expect("reopen after a crash");
        assert!(!node.integrity().sampled, "no seal: everything is checked");
        assert_eq!(node.status().await.state_root, root);
        node.close().await;
    }

    #[test]
    fn the_seal_holds_only_for_the_same_file_checkpoint_log_build_and_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("db");
        let key = Keypair::from_secret([3; 32]);
        let (build, other_build) = (Hash32([1; 32]), Hash32([2; 32]));
        let log = ([7; 32], 12);
        let write = |content: &[u8], checkpoint: &[u8]| {
            std::fs::write(&db, content).expect("db");
            let file = super::whole_file_digest(&db).expect("digest");
            super::seal(dir.path(), file, log, checkpoint, &build, &key);
        };
        write(b"database", b"replica");
        let left = take(dir.path(), &db).expect("sealed");
        let sealed = left.holds(&build, &key).expect("holds");
        assert_eq!(sealed.log, log);
        assert!(left.holds(&other_build, &key).is_none(), "another build");
        let stranger = Keypair::from_secret([4; 32]);
        assert!(left.holds(&build, &stranger).is_none(), "another key");
        assert!(take(dir.path(), &db).is_none(), "taken once");

        write(b"database", b"replica");
        std::fs::write(&db, b"database, edited").expect("edit");
        let left = take(dir.path(), &db).expect("sealed");
        assert!(left.holds(&build, &key).is_none(), "another file");

        write(b"database", b"replica");
        std::fs::write(dir.path().join(super::CHECKPOINT_FILE), b"replicas").expect("edit");
        let left = take(dir.path(), &db).expect("sealed");
        assert!(left.holds(&build, &key).is_none(), "another checkpoint");

        write(b"database", b"replica");
        let seal = dir.path().join(SEAL_FILE);
        let mut bytes = std::fs::read(&seal).expect("seal");
        bytes[100] ^= 1;
        std::fs::write(&seal, &bytes).expect("edit");
        let left = take(dir.path(), &db).expect("sealed");
        assert!(left.holds(&build, &key).is_none(), "another log count");
        write(b"database", b"replica");
        std::fs::write(&seal, &bytes[..bytes.len() - 1]).expect("cut");
        assert!(take(dir.path(), &db).is_none(), "a cut seal");

        write(b"database", b"replica");
        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::write(&wal, b"frames").expect("wal");
        assert!(
            take(dir.path(), &db).is_none(),
            "a write-ahead log beside the file"
        );
    }
}
