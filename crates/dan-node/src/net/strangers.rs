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
    /// Through a relay, at its address.
    Relayed(Box<Source>),
}

/// The source of a connection opened from `addr` (the address the other
/// side connected from), if it names one.
pub(crate) fn source_of(addr: &Multiaddr) -> Option<Source> {
    let ip = addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(Source::V4(ip)),
        Protocol::Ip6(ip) => Some(Source::V6(prefix_64(ip))),
        _ => None,
    });
    if addr.iter().any(|p| p == Protocol::P2pCircuit) {
        return ip.map(|ip| Source::Relayed(Box::new(ip)));
    }
    ip
}

fn prefix_64(ip: Ipv6Addr) -> [u16; 4] {
    let s = ip.segments();
    [s[0], s[1], s[2], s[3]]
}

/// Whether one more stranger, from `from`, fits beside the strangers
/// connected now (`others`: each one's source, `None` for those this
/// instance dialled itself).
pub(crate) fn room_for_one_more(others: &[Option<Source>], from: Option<&Source>) -> bool {
    others.len() < MAX_STRANGERS_CONNECTED
        && from.is_none_or(|from| {
            others.iter().filter(|o| o.as_ref() == Some(from)).count() < MAX_STRANGERS_PER_ADDRESS
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(text: &str) -> Multiaddr {
        text.parse().expect("multiaddr")
    }

    #[test]
    fn bad_input_strangers_get_a_bounded_share_per_address_and_in_all() {
        let one = source_of(&addr("/ip4/203.0.113.7/tcp/4001"));
        let same_site = source_of(&addr("/ip6/2001:db8:1:2::5/tcp/4001"));
        assert_eq!(
            same_site,
            source_of(&addr("/ip6/2001:db8:1:2:ffff::9/tcp/9"))
        );
        assert_ne!(same_site, source_of(&addr("/ip6/2001:db8:1:3::5/tcp/4001")));
        let relayed = source_of(&addr("/ip4/198.51.100.1/tcp/4001/p2p-circuit"));
        assert_ne!(relayed, source_of(&addr("/ip4/198.51.100.1/tcp/4001")));

        let mut others = vec![one.clone(); MAX_STRANGERS_PER_ADDRESS - 1];
        assert!(room_for_one_more(&others, one.as_ref()));
        others.push(one.clone());
        assert!(
            !room_for_one_more(&others, one.as_ref()),
            "that address has its share"
        );
        assert!(
            room_for_one_more(&others, same_site.as_ref()),
            "another one has room"
        );
        others.extend(
            (0..MAX_STRANGERS_CONNECTED - others.len())
                .map(|n| source_of(&addr(&format!("/ip4/192.0.2.{n}/tcp/1")))),
        );
        assert!(
            !room_for_one_more(&others, same_site.as_ref()),
            "all places taken"
        );
        assert!(!room_for_one_more(&others, None));
    }
}
