//! The seal of a clean shutdown: what lets a start skip re-checking every
//! signature when the op log is the one this instance verified and wrote.
//!
//! The store keeps the digest of the log as it is written
//! ([`dan_store::LogDigest`]: position and id of every row, started from
//! the log the start-up check read, extended by each row the store appends
//! itself). When an instance closes cleanly, with a clean integrity report,
//! it writes that digest's tag, keyed by a key derived from its own secret
//! key. The next start takes the seal (reads and deletes it at once, so a
//! crash after the start can never leave one behind), replays the log
//! checking only a sample of signatures (every row is still compared), and
//! then checks that the digest of the log it read is the sealed one; if
//! not, it checks everything. A row put into the log by anything else (a
//! local user's `sqlite3`, even while the instance runs) is not in the
//! digest, and an op's id is checked against its bytes in every case, so
//! the ops replayed unverified are exactly those this instance verified.
//! What the seal does not stop: putting back an older database together
//! with the seal written for it (as restoring a backup would, with the same
//! effect), and a local user who can read the OS keyring, where the key is
//! cached, making a tag (they can then sign as this instance anyway).

use std::path::Path;

use dan_core::{CodeHash, Keypair};

/// The seal's file in the data directory.
const SEAL_FILE: &str = "clean-close.seal";

/// What a seal names: the digest of the log as written (its hash and row
/// count), and the build that checked it (a new build, whose rules may be
/// stricter, checks everything once).
pub(crate) struct Sealed<'a> {
    /// The log's digest and row count.
    pub(crate) log: ([u8; 32], u64),
    /// The code hash of the build.
    pub(crate) build: &'a CodeHash,
}

/// The tag of `sealed` under `keypair`.
fn tag(sealed: &Sealed<'_>, keypair: &Keypair) -> blake3::Hash {
    let key = blake3::derive_key("dan clean-close seal v2", &keypair.secret());
    let mut keyed = blake3::Hasher::new_keyed(&key);
    keyed.update(&sealed.log.0);
    keyed.update(&sealed.log.1.to_le_bytes());
    keyed.update(&sealed.build.0);
    keyed.finalize()
}

/// Removes the seal (the database it was for was replaced).
pub(crate) fn forget(data_dir: &Path) {
    let _ = std::fs::remove_file(data_dir.join(SEAL_FILE));
}

/// At start: takes the seal away (whatever it says), for [`holds`] to
/// check once the log has been read.
pub(crate) fn take(data_dir: &Path) -> Option<Vec<u8>> {
    let path = data_dir.join(SEAL_FILE);
    let seal = dan_store::private::read_bounded(&path, 64).ok();
    let _ = std::fs::remove_file(&path);
    seal
}

/// Whether `seal` was made by `keypair` for `sealed`.
pub(crate) fn holds(seal: &[u8], sealed: &Sealed<'_>, keypair: &Keypair) -> bool {
    // `blake3::Hash` compares in constant time.
    <[u8; 32]>::try_from(seal).is_ok_and(|seal| blake3::Hash::from(seal) == tag(sealed, keypair))
}

/// After a clean close: seals the digest of the log as written.
pub(crate) fn seal(data_dir: &Path, sealed: &Sealed<'_>, keypair: &Keypair) {
    if let Err(e) = dan_store::private::write_replacing(
        &data_dir.join(SEAL_FILE),
        tag(sealed, keypair).as_bytes(),
    ) {
        tracing::warn!("could not seal the clean shutdown (the next start checks everything): {e}");
    }
}

#[cfg(test)]
mod tests {
    use dan_core::{Applied, Hash32, Keypair, Op, Payload, RecordAction, RecordId, VerifiedOp};

    use super::{SEAL_FILE, Sealed, holds, take};
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
    async fn a_clean_close_lets_the_next_start_check_a_sample_of_signatures_and_anything_else_checks_all()
     {
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
        assert!(node.integrity().sampled, "the log is the one sealed");
        assert_eq!(node.status().await.state_root, root);
        assert!(
            !dir.path().join(SEAL_FILE).exists(),
            "the seal is taken at start, so a crash leaves none"
        );
        // What a sampled start writes is sealed in turn.
        node.put_record(put("Written after a sealed start"))
            .await
            .expect("write");
        let root = node.status().await.state_root;
        node.close().await;
        let node = reopen(dir.path()).await.expect("reopen");
        assert!(node.integrity().sampled, "the seal follows the writes");
        assert_eq!(node.status().await.state_root, root);
        node.put_record(put("Written after the start"))
            .await
            .expect("write");
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
        let behind_its_back = dan_store::Store::open(&dir.path().join(DB_FILE))
            .await
            .expect("open the file");
        behind_its_back
            .commit(&[forged.0], &[forged.1])
            .await
            .expect("insert");
        behind_its_back.close().await;
        node.close().await;
        assert!(dir.path().join(SEAL_FILE).exists());
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
    fn the_seal_holds_only_for_the_same_log_the_same_build_and_the_same_key() {
        let dir = tempfile::tempdir().expect("temp dir");
        let key = Keypair::from_secret([3; 32]);
        let (build, other_build) = (Hash32([1; 32]), Hash32([2; 32]));
        let sealed = |log, build| Sealed { log, build };
        let log = ([7; 32], 12);
        super::seal(dir.path(), &sealed(log, &build), &key);
        let seal = take(dir.path()).expect("sealed");
        assert!(holds(&seal, &sealed(log, &build), &key));
        let stranger = Keypair::from_secret([4; 32]);
        assert!(
            !holds(&seal, &sealed(log, &build), &stranger),
            "another key"
        );
        assert!(
            !holds(&seal, &sealed(([7; 32], 13), &build), &key),
            "another count"
        );
        assert!(
            !holds(&seal, &sealed(([8; 32], 12), &build), &key),
            "another log"
        );
        assert!(
            !holds(&seal, &sealed(log, &other_build), &key),
            "another build"
        );
        assert!(
            !holds(&seal[..31], &sealed(log, &build), &key),
            "a cut seal"
        );
        assert!(take(dir.path()).is_none(), "taken once");
    }
}
