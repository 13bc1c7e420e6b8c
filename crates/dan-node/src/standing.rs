//! This instance's standing in its network, in one place: whether it is
//! deprecated, and why.
//!
//! Two things can say so: evidence against this instance that it checked
//! itself (kept in the store, and here from the moment it is proven), and
//! members refusing it as deprecated in their answers to its hello. One
//! peer's word is not enough: any peer can answer `Deprecated`, and
//! believing it switches the lost-write guard off and offers to throw the
//! instance's key away. So refusals count only from members in good
//! standing that are a quorum of the replica's voters (see
//! [`Standing::deprecation`]). Status, the lost-write guard, joining and
//! readmission all ask here.

use std::collections::BTreeMap;
use std::sync::Mutex;

use dan_core::charter::Charter;
use dan_core::{NetworkId, PeerKey, ReplicaSnapshot};

/// What says this instance is deprecated (see the module doc).
#[derive(Debug, Default)]
pub(crate) struct Standing {
    said: Mutex<Said>,
}

#[derive(Debug, Default)]
struct Said {
    /// Why evidence this instance checked itself proves it deprecated.
    proven: Option<String>,
    /// Peers that refused this instance as deprecated: in which network,
    /// and why.
    refusals: BTreeMap<PeerKey, (NetworkId, String)>,
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

    /// `by` answered this instance's hello: deprecated, for `reason`, or
    /// (`None`) accepted it, which takes back what it said before. A
    /// refusal is kept only from a voter of `replica`, with its network
    /// (so the table holds at most one entry per seat, strangers cannot
    /// fill it, and what was said in a network this instance has left
    /// never counts in the next).
    pub(crate) fn heard_from(
        &self,
        by: PeerKey,
        deprecated: Option<&str>,
        replica: Option<&ReplicaSnapshot>,
    ) {
        self.with(|s| match (deprecated, replica) {
            (Some(reason), Some(r)) if r.voters().contains(&by) => {
                s.refusals.insert(by, (r.network_id(), reason.to_owned()));
            }
            (None, _) => {
                s.refusals.remove(&by);
            }
            _ => {}
        });
    }

    /// Forgets everything said (the instance moved to another network, or
    /// to a new key: there it stands afresh).
    pub(crate) fn forget(&self) {
        self.with(|s| *s = Said::default());
    }

    /// Why this instance (`me`) is deprecated in the network `replica`
    /// describes: evidence it checked itself, or refusals from members in
    /// good standing that are a quorum of the replica's voters (deprecated
    /// voters count in the bar but not as voices: keys already proven bad
    /// cannot make one liar a majority). Refusals count only while `me` is
    /// a member in the replica: an instance that is not (a joiner, or one
    /// that started afresh) holds a view of the network in which the
    /// founder alone may be a quorum. `None` while it stands.
    pub(crate) fn deprecation(
        &self,
        replica: Option<&ReplicaSnapshot>,
        me: &PeerKey,
    ) -> Option<String> {
        self.with(|s| {
            let replica = replica.filter(|r| r.is_member(me));
            s.proven
                .clone()
                .or_else(|| believed_refusal(&s.refusals, replica?))
        })
    }
}

/// The reason to believe, if members in good standing that are a quorum of
/// `replica`'s voters said, in its network, that this instance is
/// deprecated.
fn believed_refusal(
    refusals: &BTreeMap<PeerKey, (NetworkId, String)>,
    replica: &ReplicaSnapshot,
) -> Option<String> {
    let said: Vec<&String> = refusals
        .iter()
        .filter(|(peer, (network, _))| {
            *network == replica.network_id()
                && replica.is_member(peer)
                && replica.voters().contains(peer)
        })
        .map(|(_, (_, reason))| reason)
        .collect();
    is_quorum(replica.charter(), replica.voters().len(), said.len()).then(|| said[0].clone())
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
    use dan_core::governance::GovernanceAction;
    use dan_core::{
        Finding, Genesis, Hash32, JoinRequest, Keypair, Payload, Replica, SignedGenesis,
        SignedJoinRequest, VerifiedOp,
    };

    use super::Standing;

    const NOW_MS: u64 = 1_700_000_000_000;

    /// A network of five: Ada founded it and the others were admitted in
    /// turn by a majority of the members before them.
    fn five_members() -> (Vec<Keypair>, Replica) {
        let keys: Vec<Keypair> = (1..=5u8).map(|n| Keypair::from_secret([n; 32])).collect();
        let genesis = Genesis {
            charter: Charter::new("Test", BTreeSet::from([Hash32::of(b"build")])),
            founder: keys[0].public(),
            founder_name: "ada".into(),
            created_ms: NOW_MS,
            fork_of: None,
        };
        let genesis = SignedGenesis::sign(genesis, &keys[0]).expect("genesis");
        let mut replica = Replica::new(genesis).expect("replica");
        let mut clock = NOW_MS;
        for joiner in 1..keys.len() {
            let request = SignedJoinRequest::sign(
                JoinRequest {
                    network: replica.network_id(),
                    joiner: keys[joiner].public(),
                    instance_name: format!("member {joiner}"),
                    admin_name: format!("admin {joiner}"),
                    code_hash: Hash32::of(b"build"),
                    invite: None,
                    requested_ms: clock,
                    succeeds: None,
                },
                &keys[joiner],
            )
            .expect("request");
            let needed = joiner / 2 + 1;
            for approver in &keys[..needed] {
                clock += 1;
                let payload = Payload::Governance(GovernanceAction::Approve {
                    request: Box::new(request.clone()),
                });
                let body = replica.next_body(approver.public(), clock, payload);
                let op = VerifiedOp::sign(body, approver).expect("sign");
                replica.apply(&op).expect("approval");
            }
            assert!(replica.is_member(&keys[joiner].public()), "admitted");
        }
        (keys, replica)
    }

    #[test]
    fn a_deprecated_answer_is_believed_only_from_members_in_good_standing_that_are_a_quorum() {
        let (keys, mut replica) = five_members();
        let [ada, bea, cleo, dan, eve] = [0, 1, 2, 3, 4].map(|n| keys[n].public());
        let me = cleo;
        let standing = Standing::default();
        let snapshot = replica.snapshot();
        assert_eq!(standing.deprecation(Some(&snapshot), &me), None);

        // Throwaway keys are not even kept.
        for n in 0..2000u32 {
            let mut secret = [9; 32];
            secret[..4].copy_from_slice(&n.to_le_bytes());
            let stranger = Keypair::from_secret(secret).public();
            standing.heard_from(stranger, Some("you were deprecated"), Some(&snapshot));
        }
        assert!(
            standing.with(|s| s.refusals.is_empty()),
            "strangers are not kept"
        );

        // Three members are a quorum of five; once one of them accepts a
        // later hello, two are not.
        for member in [ada, bea, dan] {
            standing.heard_from(member, Some("it served edited rows"), Some(&snapshot));
        }
        assert_eq!(
            standing.deprecation(Some(&snapshot), &me).as_deref(),
            Some("it served edited rows"),
        );
        standing.heard_from(ada, None, Some(&snapshot));
        assert_eq!(standing.deprecation(Some(&snapshot), &me), None);

        // Two members already proven bad and one liar: three of five
        // voters, but only one voice in good standing.
        for (n, offender) in [dan, eve].into_iter().enumerate() {
            let finding = Finding {
                offender,
                cutoff: 1,
                reason: "it signed two ops at one seq".into(),
            };
            replica.deprecate(&finding, Hash32::of(&[n as u8]));
        }
        let snapshot = replica.snapshot();
        assert_eq!(
            snapshot.voters().len(),
            5,
            "the deprecated still count in the bar"
        );
        for liar in [dan, eve, bea] {
            standing.heard_from(liar, Some("you were deprecated"), Some(&snapshot));
        }
        assert_eq!(
            standing.deprecation(Some(&snapshot), &me),
            None,
            "keys already proven bad make no liar a majority"
        );
        standing.heard_from(ada, Some("you were deprecated"), Some(&snapshot));
        assert_eq!(
            standing.deprecation(Some(&snapshot), &me),
            None,
            "two voices in good standing are no quorum of five"
        );

        // Not a member of that network: nobody's word counts (a joiner's
        // view may make the founder alone a quorum).
        let outsider = Keypair::from_secret([77; 32]).public();
        assert_eq!(standing.deprecation(Some(&snapshot), &outsider), None);
        assert_eq!(standing.deprecation(None, &me), None, "no network");

        standing.forget();
        assert_eq!(standing.deprecation(Some(&snapshot), &me), None);
        standing.proven("it signed two ops at one seq");
        assert_eq!(
            standing.deprecation(None, &me).as_deref(),
            Some("it signed two ops at one seq"),
            "evidence checked here needs nobody's word"
        );
    }

    #[test]
    fn refusals_heard_in_a_network_left_behind_do_not_count_in_the_next() {
        let (keys, replica) = five_members();
        let old = replica.snapshot();
        let standing = Standing::default();
        for key in &keys[..3] {
            standing.heard_from(key.public(), Some("you were deprecated"), Some(&old));
        }
        let me = keys[3].public();
        assert!(standing.deprecation(Some(&old), &me).is_some());
        // The same keys found another network (a fork): what they said
        // about this instance in the old one is not about the new.
        let genesis = Genesis {
            charter: Charter::new("Fork", BTreeSet::from([Hash32::of(b"build")])),
            founder: keys[0].public(),
            founder_name: "ada".into(),
            created_ms: NOW_MS + 1,
            fork_of: None,
        };
        let fork = Replica::new(SignedGenesis::sign(genesis, &keys[0]).expect("genesis"))
            .expect("replica")
            .snapshot();
        let founder = keys[0].public();
        assert_eq!(standing.deprecation(Some(&fork), &founder), None);
    }
}
