//! The seal of a clean shutdown: what lets a start read the replica back
//! from a checkpoint instead of replaying the op log and comparing every
//! row.
//!
//! Before a clean close seals, it closes the pool, hashes the database
//! file, and checks that file through a fresh connection (`clean_close`):
//! every row of the op log is one the store appended itself (the digest of
//! the log it follows, [`dan_store::LogDigest`], started from a log this
//! instance checked and extended by each row the store appends) with an id
//! that matches its bytes, every op of the replica is in the log, and every
//! record row matches the replica. An edit made to the log or the records
//! while the instance ran (a local user's `sqlite3`) is found there, and
//! nothing is sealed. Then it hashes the file again (a write meanwhile
//! makes the hashes differ), writes the replica as a checkpoint, and seals
//! the file's hash, the checkpoint's and the log's digest with a tag keyed
//! by a key derived from its own secret key, naming the build (a new
//! build, whose rules may be stricter, checks everything once).
//!
//! The next start reads the seal, opens the database (SQLite plays any
//! journal or write-ahead log left beside it into the file), moves the
//! write-ahead log into the file and hashes it before this instance writes
//! anything (opening an up-to-date database writes nothing);
//! once the key is unlocked it takes the seal and the checkpoint away (a
//! crash from then on leaves none behind) and reads the checkpoint back
//! only if the tag holds for the file and the checkpoint as they are; it
//! then checks a random sample of ops and rows again. Anything else checks
//! everything. A write to the log or the records after the start hashed
//! the file is a write while the instance runs, found by the next clean
//! close (the other tables are sealed as they are, never compared).
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

/// Largest checkpoint read back (a replica of a few million records; read
/// only once the seal naming its hash holds).
const MAX_CHECKPOINT_BYTES: u64 = 4 << 30;

/// What a seal names: the database file, the replica's checkpoint and the
/// log as written, each by its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sealed {
    /// BLAKE3 of the closed database file.
    pub(crate) file: [u8; 32],
    /// BLAKE3 of the checkpoint and its length.
    pub(crate) checkpoint: ([u8; 32], u64),
    /// The log's digest and row count ([`dan_store::LogDigest::value`]).
    pub(crate) log: ([u8; 32], u64),
    /// Starts in a row that read the replica back from a checkpoint
    /// ([`IntegrityReport::checkpoint_starts`](crate::integrity::IntegrityReport::checkpoint_starts)).
    pub(crate) starts: u32,
}

/// Bytes of a seal file: what it names and its tag.
const SEAL_BYTES: usize = 32 * 4 + 8 + 8 + 4;

impl Sealed {
    /// The tag of this seal for `build` under `keypair`.
    fn tag(&self, build: &CodeHash, keypair: &Keypair) -> blake3::Hash {
        let key = blake3::derive_key("dan clean-close seal v3", &keypair.secret());
        let mut keyed = blake3::Hasher::new_keyed(&key);
        keyed.update(&self.file);
        keyed.update(&self.checkpoint.0);
        keyed.update(&self.checkpoint.1.to_le_bytes());
        keyed.update(&self.log.0);
        keyed.update(&self.log.1.to_le_bytes());
        keyed.update(&self.starts.to_le_bytes());
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
        let number = |at: usize| -> u64 {
            let mut number = [0; 8];
            number.copy_from_slice(&bytes[at..at + 8]);
            u64::from_le_bytes(number)
        };
        let mut starts = [0; 4];
        starts.copy_from_slice(&bytes[112..116]);
        Some(Seal {
            sealed: Sealed {
                file: part(0),
                checkpoint: (part(32), number(96)),
                log: (part(64), number(104)),
                starts: u32::from_le_bytes(starts),
            },
            tag: part(116),
        })
    }
}

/// Removes the seal and the checkpoint (the database they were for was
/// replaced, or a start took them), and what a close cut off while it
/// wrote them left.
pub(crate) fn forget(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SEAL_FILE));
    let _ = std::fs::remove_file(data_dir.join(CHECKPOINT_FILE));
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let left_over = [SEAL_FILE, CHECKPOINT_FILE]
            .iter()
            .any(|file| name.starts_with(&format!(".{file}.")) && name.ends_with(".partial"));
        if left_over {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// At start, before the database is opened: the seal, if there is one (not
/// yet checked, and left in place until [`take`]: a start that stops to
/// ask for the password keeps it for the next try).
pub(crate) fn read(data_dir: &Path) -> Option<Seal> {
    let bytes = dan_store::private::read_bounded(&data_dir.join(SEAL_FILE), SEAL_BYTES as u64);
    Seal::from_bytes(&bytes.ok()?)
}

/// Once the key is unlocked, before anything is written: what `seal`
/// names and the checkpoint, if `keypair` sealed them for `build`, for the
/// database file as it is now (`file`, hashed as SQLite opened it) and for
/// the checkpoint as it is. Takes the seal and the checkpoint away in any
/// case, so that a crash from here on leaves none behind.
pub(crate) fn take(
    data_dir: &Path,
    seal: Option<Seal>,
    file: Option<[u8; 32]>,
    build: &CodeHash,
    keypair: &Keypair,
) -> Option<(Sealed, Vec<u8>)> {
    let sealed = seal
        .and_then(|seal| seal.holds(build, keypair))
        .filter(|sealed| file == Some(sealed.file));
    let checkpoint = sealed.and_then(|sealed| {
        // Read only at the length sealed, so a file put in its place costs
        // nothing.
        let limit = sealed.checkpoint.1.min(MAX_CHECKPOINT_BYTES);
        let bytes =
            dan_store::private::read_bounded(&data_dir.join(CHECKPOINT_FILE), limit).ok()?;
        (*blake3::hash(&bytes).as_bytes() == sealed.checkpoint.0).then_some((sealed, bytes))
    });
    forget(data_dir);
    checkpoint
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

/// Which file `path` names (device and inode): a rename that swaps another
/// file in changes it.
pub(crate) fn file_identity(path: &Path) -> Option<(u64, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Some((meta.dev(), meta.ino()))
    }
    #[cfg(not(unix))]
    {
        Some((0, meta.len()))
    }
}

/// After a clean close checked the database: writes `checkpoint` and seals
/// it with `file`, `log` and `starts` for `build`. A failure is only logged
/// (the next start checks everything).
pub(crate) fn seal(
    data_dir: &Path,
    (file, log, starts): ([u8; 32], ([u8; 32], u64), u32),
    checkpoint: &[u8],
    build: &CodeHash,
    keypair: &Keypair,
) {
    if checkpoint.len() as u64 > MAX_CHECKPOINT_BYTES {
        tracing::warn!(
            "not sealing the shutdown: the checkpoint is larger than a start reads back ({} MiB)",
            checkpoint.len() >> 20
        );
        return;
    }
    let sealed = Sealed {
        file,
        checkpoint: (
            *blake3::hash(checkpoint).as_bytes(),
            checkpoint.len() as u64,
        ),
        log,
        starts,
    };
    let mut bytes = Vec::with_capacity(SEAL_BYTES);
    for part in [&sealed.file, &sealed.checkpoint.0, &sealed.log.0] {
        bytes.extend_from_slice(part);
    }
    bytes.extend_from_slice(&sealed.checkpoint.1.to_le_bytes());
    bytes.extend_from_slice(&sealed.log.1.to_le_bytes());
    bytes.extend_from_slice(&sealed.starts.to_le_bytes());
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
    use dan_core::{Hash32, Keypair, Payload, RecordAction, RecordId, VerifiedOp};

    use super::{CHECKPOINT_FILE, SEAL_FILE, read, take};
    use crate::api::PutRecord;
    use crate::error::NodeError;
    use crate::node::{Credentials, DB_FILE, Node, NodeConfig, OnDamage};
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

    /// What the integrity check found when it refused to open `dir`
    /// (which holds `what`).
    async fn refused(dir: &std::path::Path, what: &str) -> crate::integrity::IntegrityReport {
        match reopen(dir).await {
            Err(NodeError::Integrity(report)) => *report,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("{what} passed"),
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
        // A signed op of a key that is no member, put into the log behind
        // DAN's back (as a local user's sqlite3 could while the instance
        // runs), without a row: only the log's digest tells.
        let stranger = Keypair::from_secret([9; 32]);
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
                let body = replica.next_body(stranger.public(), 1_900_000_000_000, payload);
                VerifiedOp::sign(body, &stranger).expect("sign")
            })
            .await
            .expect("network");
        let store = behind_its_back(dir.path()).await;
        store.commit(&[forged], &[]).await.expect("insert");
        store.close().await;
        node.close().await;
        assert!(
            !sealed(dir.path()),
            "the close found a row it did not write"
        );
        let report = refused(dir.path(), "a log with an op DAN did not write").await;
        assert!(!report.sampled, "everything was checked: {report}");
        assert!(
            report
                .damaged_ops
                .iter()
                .any(|d| d.problem.contains("not a member")),
            "{report}"
        );
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
        let report = refused(dir.path(), "an edited row").await;
        assert!(!report.sampled);
        assert!(
            report
                .mismatched_records
                .iter()
                .any(|m| m.id == dune.id.to_string() && m.problem.contains("title")),
            "{report}"
        );
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
    async fn a_checkpoint_that_does_not_match_the_database_is_found_by_the_sample_and_everything_is_checked()
     {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        node.close().await;
        let older = std::fs::read(dir.path().join(CHECKPOINT_FILE)).expect("checkpoint");
        let node = reopen(dir.path()).await.expect("reopen");
        node.put_record(put("Written after")).await.expect("write");
        let root = node.status().await.state_root;
        let keypair = node.keypair();
        node.close().await;
        // The older checkpoint sealed for the database as it is now, as
        // only a bug (or the key's holder) could.
        let log = read(dir.path()).expect("sealed").sealed.log;
        let file = super::whole_file_digest(&dir.path().join(DB_FILE)).expect("digest");
        let build = crate::code::code_hash().expect("code hash");
        super::seal(dir.path(), (file, log, 1), &older, &build, &keypair);
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(
            !node.integrity().sampled,
            "the sample found the op and the row the checkpoint lacks"
        );
        assert_eq!(node.status().await.state_root, root);
        node.close().await;
    }

    #[tokio::test]
    async fn after_eight_starts_in_a_row_from_a_checkpoint_the_next_replays_the_whole_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        node.close().await;
        let every = crate::integrity::MAX_CHECKPOINT_STARTS;
        let mut sampled = Vec::new();
        for _ in 0..every + 2 {
            let node = reopen(dir.path()).await.expect("reopen");
            sampled.push(node.integrity().sampled);
            node.close().await;
        }
        let mut expected = vec![true; every as usize];
        expected.extend([false, true]);
        assert_eq!(sampled, expected);
    }

    #[tokio::test]
    async fn a_start_that_stops_to_ask_for_the_password_keeps_the_seal_for_the_next_try() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        node.close().await;
        let without_password = Credentials {
            password: None,
            use_keyring: false,
        };
        match Node::open(NodeConfig::new(dir.path()), without_password).await {
            Err(NodeError::PasswordNeeded) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("opened without the password"),
        }
        assert!(sealed(dir.path()), "the seal waits for the next try");
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(node.integrity().sampled);
        node.close().await;
    }

    #[tokio::test]
    async fn a_start_asked_to_repair_or_serve_damaged_rows_checks_everything() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        node.close().await;
        for on_damage in [OnDamage::Repair, OnDamage::ServeDamaged] {
            let credentials = Credentials {
                password: Some(PASSWORD.into()),
                use_keyring: false,
            };
            let config = NodeConfig {
                on_damage,
                ..NodeConfig::new(dir.path())
            };
            let node = Node::open(config, credentials).await.expect("open");
            assert!(!node.integrity().sampled, "{on_damage:?}");
            node.close().await;
        }
    }

    #[tokio::test]
    async fn two_closes_at_once_both_wait_for_the_one_close_and_it_seals_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let node = founded(dir.path()).await;
        node.put_record(put("Dune")).await.expect("write");
        let other = node.clone();
        let first = tokio::spawn(async move { other.close().await });
        for _ in 0..10_000 {
            if node.is_closing() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(node.is_closing(), "the first close began");
        node.close().await;
        assert!(
            sealed(dir.path()),
            "the second close returned only once the first had ended"
        );
        first.await.expect("first close");
        let node = reopen(dir.path())
            .await
            .expect("both returned once the data folder was released");
        assert!(node.integrity().sampled);
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
        std::fs::write(&db, b"database").expect("db");
        let file = super::whole_file_digest(&db).expect("digest");
        let write = || super::seal(dir.path(), (file, log, 3), b"replica", &build, &key);
        let take_with = |file, build, key| take(dir.path(), read(dir.path()), file, build, key);

        write();
        let (sealed, checkpoint) = take_with(Some(file), &build, &key).expect("holds");
        assert_eq!(
            (sealed.log, sealed.starts, &checkpoint[..]),
            (log, 3, &b"replica"[..])
        );
        assert!(!sealed_files_left(dir.path()), "taken away");
        assert!(take_with(Some(file), &build, &key).is_none(), "taken once");

        write();
        assert!(
            take_with(Some(file), &other_build, &key).is_none(),
            "another build"
        );
        assert!(
            !sealed_files_left(dir.path()),
            "taken away whatever they say"
        );
        write();
        let stranger = Keypair::from_secret([4; 32]);
        assert!(
            take_with(Some(file), &build, &stranger).is_none(),
            "another key"
        );
        write();
        assert!(
            take_with(Some([0; 32]), &build, &key).is_none(),
            "another file"
        );
        write();
        assert!(take_with(None, &build, &key).is_none(), "a file not hashed");
        write();
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"replicA").expect("edit");
        assert!(
            take_with(Some(file), &build, &key).is_none(),
            "another checkpoint"
        );
        write();
        std::fs::write(dir.path().join(CHECKPOINT_FILE), b"replica, longer").expect("edit");
        assert!(
            take_with(Some(file), &build, &key).is_none(),
            "a longer checkpoint"
        );
        // What a close cut off while writing left goes too.
        write();
        std::fs::write(dir.path().join(".replica.checkpoint.0011.partial"), b"rep").expect("left");
        assert!(take_with(Some(file), &build, &key).is_some());
        assert!(!sealed_files_left(dir.path()), "left-overs swept");

        // Every byte of the seal counts: what it names and its tag.
        for at in [0, 40, 70, 100, 108, 113, 130] {
            write();
            let seal = dir.path().join(SEAL_FILE);
            let mut bytes = std::fs::read(&seal).expect("seal");
            bytes[at] ^= 1;
            std::fs::write(&seal, &bytes).expect("edit");
            assert!(take_with(Some(file), &build, &key).is_none(), "byte {at}");
            write();
            std::fs::write(&seal, &bytes[..bytes.len() - 1]).expect("cut");
            assert!(read(dir.path()).is_none(), "a cut seal");
        }

        let mut wal = db.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::write(&wal, b"frames").expect("wal");
        assert!(
            super::whole_file_digest(&db).is_none(),
            "a write-ahead log beside the file: not the whole database"
        );
    }

    fn sealed_files_left(dir: &std::path::Path) -> bool {
        std::fs::read_dir(dir)
            .expect("dir")
            .flatten()
            .any(|entry| entry.file_name().to_string_lossy().contains("checkpoint"))
            || dir.join(SEAL_FILE).exists()
    }
}
