//! Which direct connection to a peer is one too many. Hole punches,
//! AutoNAT dial-backs and both sides dialling each other each open another
//! direct connection to a peer already connected; kept, they fill the
//! per-peer connection limit within a minute, and then every further
//! dial-back is refused and a reachable instance is judged private. Each
//! side closes only a new connection it dialled itself, by one rule both
//! sides apply the same way, so that of any two connections at least one
//! is kept: at most one direct connection per side and peer remains.

use libp2p::PeerId;

/// Which side of a connection dialled it (hole punches included: exactly
/// one side of one acts as its dialler).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Dialler {
    /// This instance.
    Local,
    /// The peer at the other end.
    Remote,
}

/// Whether this instance closes a direct connection it just saw open to
/// `remote`, dialled by `new`, while `others` (who dialled each) were open
/// already: its own second one, or its first where the peer dialled one
/// too and the peer's id is the lower (the lower id's connection is kept).
pub(super) fn is_redundant(
    local: &PeerId,
    remote: &PeerId,
    new: Dialler,
    others: impl IntoIterator<Item = Dialler>,
) -> bool {
    new == Dialler::Local
        && others
            .into_iter()
            .any(|other| other == Dialler::Local || remote < local)
}

#[cfg(test)]
mod tests {
    use libp2p::PeerId;

    use super::{Dialler, is_redundant};

    /// Two peers, the lower id first.
    fn ordered() -> (PeerId, PeerId) {
        let (a, b) = (PeerId::random(), PeerId::random());
        if a < b { (a, b) } else { (b, a) }
    }

    #[test]
    fn a_second_connection_an_instance_dials_to_a_peer_is_closed_by_it() {
        let (low, high) = ordered();
        for (local, remote) in [(low, high), (high, low)] {
            assert!(is_redundant(
                &local,
                &remote,
                Dialler::Local,
                [Dialler::Local]
            ));
            assert!(!is_redundant(&local, &remote, Dialler::Local, []));
            assert!(
                !is_redundant(&local, &remote, Dialler::Remote, [Dialler::Local]),
                "only the side that dialled a connection closes it"
            );
        }
    }

    #[test]
    fn when_both_sides_dial_each_other_in_any_order_one_connection_is_kept() {
        let (low, high) = ordered();
        // Each side decides on its own connection when it opens after the
        // peer's; a connection survives unless the side that dialled it
        // closes it.
        for low_saw_first in [Dialler::Local, Dialler::Remote] {
            for high_saw_first in [Dialler::Local, Dialler::Remote] {
                let low_closes = low_saw_first == Dialler::Remote
                    && is_redundant(&low, &high, Dialler::Local, [Dialler::Remote]);
                let high_closes = high_saw_first == Dialler::Remote
                    && is_redundant(&high, &low, Dialler::Local, [Dialler::Remote]);
                assert!(!low_closes, "the lower id's connection is kept");
                assert_eq!(high_closes, high_saw_first == Dialler::Remote);
            }
        }
    }
}
