//! How many peers that are neither members nor relays this instance uses
//! (joiners, instances of other networks, strangers) may hold a connection
//! they opened: a bound in all, and a share per address, so that throwaway
//! keys from one host cannot take every place and keep joiners out.

use std::net::{Ipv4Addr, Ipv6Addr};

use libp2p::Multiaddr;
use libp2p::multiaddr::Protocol;

/// Most peers connected at once, by connections they opened, that are
/// neither members nor relays this instance uses, so that throwaway keys
/// cannot take every connection and keep members out.
pub const MAX_STRANGERS_CONNECTED: usize = 64;

/// Most of them from one address (an IPv4 address, an IPv6 /64, or one
/// relay for relayed connections): one host cannot hold all the places.
pub const MAX_STRANGERS_PER_ADDRESS: usize = 8;

/// Where a connection someone opened comes from, for the share per address.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Source {
    /// An IPv4 address.
    V4(Ipv4Addr),
    /// An IPv6 /64 (one site's prefix).
    V6([u16; 4]),
    /// Through a relay: the relay's peer id, or its address where the
    /// circuit names no peer id.
    Relayed(String),
}

/// The source of a connection the other side opened: `local_addr` is the
/// address it reached this instance at, `send_back_addr` the one it came
/// from. A connection through a relay counts against that relay: libp2p
/// gives such a connection only the other side's peer id as
/// `send_back_addr`, and the relay in `local_addr` (this instance's
/// listening address through it).
pub(crate) fn source_of(local_addr: &Multiaddr, send_back_addr: &Multiaddr) -> Option<Source> {
    let relayed = |addr: &Multiaddr| addr.iter().any(|p| p == Protocol::P2pCircuit);
    if let Some(circuit) = [local_addr, send_back_addr]
        .into_iter()
        .find(|a| relayed(a))
    {
        let relay: Vec<Protocol> = circuit
            .iter()
            .take_while(|p| *p != Protocol::P2pCircuit)
            .collect();
        let named = relay.iter().rev().find_map(|p| match p {
            Protocol::P2p(peer) => Some(peer.to_string()),
            _ => None,
        });
        let address = || relay.iter().cloned().collect::<Multiaddr>().to_string();
        return Some(Source::Relayed(named.unwrap_or_else(address)));
    }
    send_back_addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(Source::V4(ip)),
        Protocol::Ip6(ip) => Some(Source::V6(prefix_64(ip))),
        _ => None,
    })
}

fn prefix_64(ip: Ipv6Addr) -> [u16; 4] {
    let s = ip.segments();
    [s[0], s[1], s[2], s[3]]
}

/// What to do with one more stranger that just connected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Room<T> {
    /// It stays.
    Yes,
    /// No room: it is let go.
    No,
    /// It stays and this one, connected earlier from the address that
    /// holds the most places, is let go.
    Evict(T),
}

/// Whether one more stranger, from `from`, fits beside the strangers
/// connected now (`others`, oldest first: each one's source, `None` for
/// those this instance dialled itself). When all places are taken, the
/// newcomer takes the place of the oldest stranger from the address that
/// holds the most, if that address holds at least two more than the
/// newcomer's: so throwaway keys from a few addresses holding every place
/// make room for joiners from elsewhere, and once in, a joiner is never
/// the one let go unless its own address holds the most.
pub(crate) fn room_for_one_more<T: Clone>(
    others: &[(T, Option<Source>)],
    from: Option<&Source>,
) -> Room<T> {
    let share = |source: &Source| {
        others
            .iter()
            .filter(|(_, o)| o.as_ref() == Some(source))
            .count()
    };
    let own = from.map_or(0, share);
    if own >= MAX_STRANGERS_PER_ADDRESS {
        return Room::No;
    }
    if others.len() < MAX_STRANGERS_CONNECTED {
        return Room::Yes;
    }
    let Some(from) = from else {
        return Room::No;
    };
    // The first address to reach the highest share, for one choice
    // whatever the order of equal shares.
    let mut busiest: Option<(&Source, usize)> = None;
    for source in others.iter().filter_map(|(_, o)| o.as_ref()) {
        let count = share(source);
        if busiest.is_none_or(|(_, most)| count > most) {
            busiest = Some((source, count));
        }
    }
    match busiest {
        Some((source, most)) if source != from && most >= own + 2 => others
            .iter()
            .find(|(_, o)| o.as_ref() == Some(source))
            .map_or(Room::No, |(victim, _)| Room::Evict(victim.clone())),
        _ => Room::No,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    /// The source of a direct connection from `from`.
    fn direct(from: &str) -> Option<Source> {
        source_of(&addr("/ip4/127.0.0.1/tcp/4001"), &addr(from))
    }

    const RELAY: &str = "12D3KooWK99VoVxNE7XzyBwXEzW7xhK7Gpv85r9F3V3fyKSUKPH5";
    const SOMEONE: &str = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo";

    // Second attacker review: a connection through a relay, as libp2p
    // gives it (the other side's peer id only as `send_back_addr`, the
    // relay in `local_addr`), named no source, so throwaway keys through
    // one relay could take every place.
    #[test]
    fn bad_input_strangers_through_one_relay_share_one_address() {
        let through = |relay: &str| {
            source_of(
                &addr(&format!(
                    "/ip4/198.51.100.1/tcp/4001/p2p/{relay}/p2p-circuit"
                )),
                &addr(&format!("/p2p/{SOMEONE}")),
            )
        };
        let relayed = through(RELAY);
        assert_eq!(relayed, Some(Source::Relayed(RELAY.into())));
        assert_ne!(relayed, through(SOMEONE), "another relay");
        assert_ne!(relayed, direct("/ip4/198.51.100.1/tcp/4001"));
        let others = vec![(0, relayed.clone()); MAX_STRANGERS_PER_ADDRESS];
        assert_eq!(room_for_one_more(&others, relayed.as_ref()), Room::No);
        let unnamed = source_of(
            &addr("/ip4/198.51.100.1/tcp/4001/p2p-circuit"),
            &addr(&format!("/p2p/{SOMEONE}")),
        );
        assert_eq!(
            unnamed,
            Some(Source::Relayed("/ip4/198.51.100.1/tcp/4001".into()))
        );
    }

    #[test]
    fn bad_input_strangers_get_a_bounded_share_per_address_and_in_all() {
        let one = direct("/ip4/203.0.113.7/tcp/4001");
        let same_site = direct("/ip6/2001:db8:1:2::5/tcp/4001");
        assert_eq!(same_site, direct("/ip6/2001:db8:1:2:ffff::9/tcp/9"));
        assert_ne!(same_site, direct("/ip6/2001:db8:1:3::5/tcp/4001"));

        let mut others = vec![(0, one.clone()); MAX_STRANGERS_PER_ADDRESS - 1];
        assert_eq!(room_for_one_more(&others, one.as_ref()), Room::Yes);
        others.push((0, one.clone()));
        assert_eq!(
            room_for_one_more(&others, one.as_ref()),
            Room::No,
            "that address has its share"
        );
        assert_eq!(
            room_for_one_more(&others, same_site.as_ref()),
            Room::Yes,
            "another one has room"
        );
        others.extend(
            (0..MAX_STRANGERS_CONNECTED - others.len())
                .map(|n| (0, direct(&format!("/ip4/192.0.2.{n}/tcp/1")))),
        );
        others[0].0 = 1;
        assert_eq!(
            room_for_one_more(&others, same_site.as_ref()),
            Room::Evict(1),
            "all places taken: the oldest from the address holding eight makes room"
        );
        assert_eq!(
            room_for_one_more(&others, None),
            Room::No,
            "all places taken, and a newcomer of no known address takes none"
        );
    }

    // Issue 10: the places were first come, first served, so throwaway keys
    // from a few addresses holding all of them kept every joiner out.
    #[test]
    fn bad_input_strangers_holding_every_place_make_room_for_a_joiner_from_elsewhere() {
        let source = |n: usize| direct(&format!("/ip4/203.0.113.{n}/tcp/1"));
        // Eight addresses, eight throwaway keys each: every place taken,
        // numbered in the order they connected.
        let mut others: Vec<(usize, Option<Source>)> = (0..MAX_STRANGERS_CONNECTED)
            .map(|n| (n, source(n % 8)))
            .collect();
        let joiner = direct("/ip4/198.51.100.9/tcp/1");
        assert_eq!(
            room_for_one_more(&others, joiner.as_ref()),
            Room::Evict(0),
            "the oldest from the busiest address makes room"
        );
        others.remove(0);
        others.push((100, joiner.clone()));
        // The attacker comes back from the address it lost a place at, or
        // from another of its own: it never pushes the joiner out.
        assert_eq!(room_for_one_more(&others, source(0).as_ref()), Room::No);
        assert_eq!(
            room_for_one_more(&others, source(9).as_ref()),
            Room::Evict(1),
            "from a fresh address it only pushes out one of its own"
        );
        let spread: Vec<(usize, Option<Source>)> = (0..MAX_STRANGERS_CONNECTED)
            .map(|n| (n, source(n)))
            .collect();
        assert_eq!(
            room_for_one_more(&spread, joiner.as_ref()),
            Room::No,
            "one place per address: nobody is pushed out (an attacker needs 64 addresses)"
        );
    }
}
