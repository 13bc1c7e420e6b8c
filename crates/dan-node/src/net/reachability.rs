//! Whether other instances can dial this one, from AutoNAT probes (peers
//! dialling back the address they see), judged so that no single peer's
//! word decides: an address counts as external only once two peers whose
//! word counts (members, relays this instance was given; the one other
//! member where there is only one) dialled it back, and an instance is private once AutoNAT says so or two peers'
//! dial-backs went unanswered (behind a home router that drops what it did
//! not ask for, a dial-back times out rather than fails, and AutoNAT alone
//! never decides).

use std::collections::{BTreeSet, HashSet};

use libp2p::{Multiaddr, PeerId};

use super::Reachability;

/// Peers that must dial an address back before it is announced.
const CONFIRMATIONS: usize = 2;
/// Peers whose dial-back must go unanswered before this instance calls
/// itself private.
const UNANSWERED_FOR_PRIVATE: usize = 2;
/// Most external addresses announced (invites keep room for relayed and
/// local ones).
pub(super) const MAX_EXTERNAL: usize = 2;
/// Most addresses waiting for a second confirmation.
const MAX_CANDIDATES: usize = 16;

/// What the probes so far say.
#[derive(Debug, Default)]
pub(super) struct Probes {
    autonat_private: bool,
    unanswered: HashSet<PeerId>,
    candidates: Vec<(Multiaddr, BTreeSet<PeerId>)>,
    external: Vec<Multiaddr>,
}

impl Probes {
    /// `peer` dialled this instance back at `address`, out of `confirmers`
    /// peers whose word counts (fewer than [`CONFIRMATIONS`] of them: all
    /// must confirm, at least one).
    pub(super) fn dialled_back(&mut self, peer: PeerId, address: Multiaddr, confirmers: usize) {
        let needed = confirmers.clamp(1, CONFIRMATIONS);
        self.unanswered.clear();
        if self.external.contains(&address) {
            return;
        }
        let confirmed = match self.candidates.iter_mut().find(|(a, _)| *a == address) {
            Some((_, by)) => {
                by.insert(peer);
                by.len() >= needed
            }
            None if needed == 1 => true,
            None => {
                if self.candidates.len() == MAX_CANDIDATES {
                    self.candidates.remove(0);
                }
                self.candidates
                    .push((address.clone(), BTreeSet::from([peer])));
                false
            }
        };
        if confirmed {
            self.candidates.retain(|(a, _)| *a != address);
            if self.external.len() == MAX_EXTERNAL {
                self.external.remove(0);
            }
            self.external.push(address);
        }
    }

    /// `peer` could not dial this instance back (the dial failed or never
    /// finished).
    pub(super) fn unanswered(&mut self, peer: PeerId) {
        self.unanswered.insert(peer);
    }

    /// AutoNAT's own verdict changed.
    pub(super) fn autonat_private(&mut self, private: bool) {
        self.autonat_private = private;
    }

    /// An external address stopped working.
    pub(super) fn expired(&mut self, address: &Multiaddr) {
        self.external.retain(|a| a != address);
    }

    /// The addresses at least two peers dialled this instance back at.
    pub(super) fn external(&self) -> &[Multiaddr] {
        &self.external
    }

    /// The verdict.
    pub(super) fn reachability(&self) -> Reachability {
        if !self.external.is_empty() {
            Reachability::Public
        } else if self.autonat_private || self.unanswered.len() >= UNANSWERED_FOR_PRIVATE {
            Reachability::Private
        } else {
            Reachability::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use libp2p::PeerId;

    use super::{MAX_EXTERNAL, Probes};
    use crate::net::Reachability;

    fn addr(n: u8) -> libp2p::Multiaddr {
        format!("/ip4/203.0.113.{n}/tcp/4001")
            .parse()
            .expect("address")
    }

    #[test]
    fn one_lying_peer_cannot_make_an_instance_public_or_fill_its_invites() {
        let liar = PeerId::random();
        let mut probes = Probes::default();
        for n in 0..40 {
            probes.dialled_back(liar, addr(n), 5);
        }
        assert!(
            probes.external().is_empty(),
            "one peer's word is not enough"
        );
        assert_eq!(probes.reachability(), Reachability::Unknown);
        probes.dialled_back(PeerId::random(), addr(39), 5);
        assert_eq!(probes.external(), &[addr(39)]);
        assert_eq!(probes.reachability(), Reachability::Public);
        for n in 50..60 {
            probes.dialled_back(PeerId::random(), addr(n), 5);
            probes.dialled_back(PeerId::random(), addr(n), 5);
        }
        assert_eq!(probes.external().len(), MAX_EXTERNAL, "a bounded list");
        probes.expired(&addr(59));
        probes.expired(&addr(58));
        assert_eq!(probes.reachability(), Reachability::Unknown);
    }

    #[test]
    fn in_a_network_of_two_the_other_member_alone_confirms_an_address() {
        let mut probes = Probes::default();
        probes.dialled_back(PeerId::random(), addr(7), 1);
        assert_eq!(probes.external(), &[addr(7)]);
        assert_eq!(probes.reachability(), Reachability::Public);
    }

    #[test]
    fn two_unanswered_dial_backs_make_an_instance_private_until_one_gets_through() {
        let mut probes = Probes::default();
        let relay = PeerId::random();
        probes.unanswered(relay);
        probes.unanswered(relay);
        assert_eq!(probes.reachability(), Reachability::Unknown, "one peer");
        probes.unanswered(PeerId::random());
        assert_eq!(probes.reachability(), Reachability::Private);
        probes.dialled_back(relay, addr(1), 5);
        assert_eq!(probes.reachability(), Reachability::Unknown);
        probes.autonat_private(true);
        assert_eq!(probes.reachability(), Reachability::Private);
    }
}
