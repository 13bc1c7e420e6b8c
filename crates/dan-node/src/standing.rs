//! This instance's standing in its network, in one place: whether it is
//! deprecated, and why.
//!
//! Two things can say so: evidence against this instance that it checked
//! itself (kept in the store, and here from the moment it is proven), and
//! members refusing it as deprecated in their answers to its hello. One
//! peer's word is not enough: any peer can answer `Deprecated`, and
//! believing it switches the lost-write guard off and offers to throw the
//! instance's key away. So refusals count only from a quorum of the
//! replica's voters. Status, the lost-write guard and readmission all ask
//! here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dan_core::charter::Charter;
use dan_core::{PeerKey, ReplicaSnapshot};

/// What says this instance is deprecated (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Standing {
    said: Mutex<Said>,
}

#[derive(Debug, Default)]
struct Said {
    /// Why evidence this instance checked itself proves it deprecated.
    proven: Option<String>,
    /// Peers that refused this instance as deprecated, and why.
    refusals: BTreeMap<PeerKey, String>,
}

impl Standing {
    /// The standing of an instance whose store holds, or not, proven
    /// evidence against it.
    pub(crate) fn new(proven: Option<String>) -> Self {
        Standing {
            said: Mutex::new(Said {
                proven,
                refusals: BTreeMap::new(),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Said) -> T) -> T {
        let mut said = self
            .said
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut said)
    }

    /// Evidence against this instance, checked here, proves it deprecated.
    pub(crate) fn proven(&self, reason: &str) {
        self.with(|s| s.proven = Some(reason.to_owned()));
    }

    /// `by` answered this instance's hello: deprecated, for `reason`. Kept
    /// only from a voter of `replica` (so the table holds at most one
    /// entry per seat, and strangers cannot fill it); one that stops being
    /// a voter no longer counts.
    pub(crate) fn refused_by(&self, by: PeerKey, reason: &str, replica: Option<&ReplicaSnapshot>) {
        if replica.is_some_and(|r| r.voters().contains(&by)) {
            self.with(|s| s.refusals.insert(by, reason.to_owned()));
        }
    }

    /// Forgets everything said (the instance moved to another network, or
    /// to a new key: there it stands afresh).
    pub(crate) fn forget(&self) {
        self.with(|s| *s = Said::default());
    }

    /// Why this instance is deprecated in the network `replica` describes:
    /// evidence it checked itself, or a quorum of the replica's voters
    /// refusing it. `None` while it stands.
    pub(crate) fn deprecation(&self, replica: Option<&ReplicaSnapshot>) -> Option<String> {
        self.with(|s| {
            s.proven
                .clone()
                .or_else(|| believed_refusal(&s.refusals, replica?))
        })
    }
}

/// The reason to believe, if a quorum of `replica`'s voters said this
/// instance is deprecated.
fn believed_refusal(
    refusals: &BTreeMap<PeerKey, String>,
    replica: &ReplicaSnapshot,
) -> Option<String> {
    let voters = replica.voters();
    let said: Vec<&String> = refusals
        .iter()
        .filter(|(peer, _)| voters.contains(peer))
        .map(|(_, reason)| reason)
        .collect();
    is_quorum(replica.charter(), voters.len(), said.len()).then(|| said[0].clone())
}

/// Whether `said` of `voters` voters (at least one) are a quorum under
/// `charter`: the rule for believing what members say about this
/// instance (deprecated, clock ahead) rather than one peer's word.
pub(crate) fn is_quorum(charter: &Charter, voters: usize, said: usize) -> bool {
    said > 0 && said >= charter.quorum.needed(voters)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use dan_core::charter::Charter;
    use dan_core::{Genesis, Hash32, Keypair, Replica, SignedGenesis};

    use super::Standing;

    #[test]
    fn a_deprecated_answer_is_believed_only_from_a_quorum_of_members() {
        let founder = Keypair::from_secret([1; 32]);
        let genesis = Genesis {
            charter: Charter::new("Test", BTreeSet::from([Hash32::of(b"build")])),
            founder: founder.public(),
            founder_name: "alice".into(),
            created_ms: 1,
            fork_of: None,
        };
        let genesis = SignedGenesis::sign(genesis, &founder).expect("genesis");
        let replica = Replica::new(genesis).expect("replica").snapshot();
        let standing = Standing::default();
        assert_eq!(standing.deprecation(Some(&replica)), None);
        for n in 0..2000u32 {
            let mut secret = [9; 32];
            secret[..4].copy_from_slice(&n.to_le_bytes());
            let stranger = Keypair::from_secret(secret).public();
            standing.refused_by(stranger, "you were deprecated", Some(&replica));
        }
        assert_eq!(
            standing.deprecation(Some(&replica)),
            None,
            "no member said so"
        );
        assert!(
            standing.with(|s| s.refusals.is_empty()),
            "strangers are not kept"
        );
        standing.refused_by(founder.public(), "it equivocated", None);
        assert_eq!(
            standing.deprecation(Some(&replica)),
            None,
            "not known a member then"
        );
        standing.refused_by(founder.public(), "it equivocated", Some(&replica));
        assert_eq!(
            standing.deprecation(Some(&replica)).as_deref(),
            Some("it equivocated"),
            "the one member is a quorum"
        );
        assert_eq!(
            standing.deprecation(None),
            None,
            "no network: nobody to believe"
        );
        standing.forget();
        assert_eq!(standing.deprecation(Some(&replica)), None);
        standing.proven("it signed two ops at one seq");
        assert_eq!(
            standing.deprecation(None).as_deref(),
            Some("it signed two ops at one seq"),
            "evidence checked here needs nobody's word"
        );
    }
}
