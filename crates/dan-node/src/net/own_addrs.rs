//! Keeps the addresses a relay names out of the behaviours that tell
//! others where this instance is, or that act on its addresses.
//!
//! A relay's reservation names the addresses this instance is reachable
//! at through it, and the swarm reports each as a listen address; the
//! relay chooses them freely. Passed on, identify and mDNS would announce
//! them to every peer (any host, any port), and UPnP would ask the home
//! router to forward ports to whatever home-network host they name. The
//! instance announces instead the address it reaches the relay at itself
//! (libp2p's relay client confirms it as an external address once the
//! relay holds a slot).

use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, ExpiredListenAddr, FromSwarm, NetworkBehaviour, NewListenAddr,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId};

use super::is_circuit;

/// `B`, told only of the instance's own (not relayed) listen addresses.
pub(crate) struct OwnListenAddrs<B>(B);

impl<B> OwnListenAddrs<B> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: B) -> Self {
        OwnListenAddrs(inner)
    }

    /// The wrapped behaviour.
    pub(crate) fn inner_mut(&mut self) -> &mut B {
        &mut self.0
    }
}

/// Whether `address` is one this instance listens on itself (not one a
/// relay named).
fn is_own(address: &Multiaddr) -> bool {
    !is_circuit(address)
}

impl<B: NetworkBehaviour> NetworkBehaviour for OwnListenAddrs<B> {
    type ConnectionHandler = B::ConnectionHandler;
    type ToSwarm = B::ToSwarm;

    fn handle_pending_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.0
            .handle_pending_inbound_connection(connection_id, local_addr, remote_addr)
    }

    fn handle_established_inbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        local_addr: &Multiaddr,
        remote_addr: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0
            .handle_established_inbound_connection(connection_id, peer, local_addr, remote_addr)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        maybe_peer: Option<PeerId>,
        addresses: &[Multiaddr],
        effective_role: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        self.0.handle_pending_outbound_connection(
            connection_id,
            maybe_peer,
            addresses,
            effective_role,
        )
    }

    fn handle_established_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        peer: PeerId,
        addr: &Multiaddr,
        role_override: Endpoint,
        port_use: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        self.0.handle_established_outbound_connection(
            connection_id,
            peer,
            addr,
            role_override,
            port_use,
        )
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match &event {
            FromSwarm::NewListenAddr(NewListenAddr { addr, .. })
            | FromSwarm::ExpiredListenAddr(ExpiredListenAddr { addr, .. })
                if !is_own(addr) => {}
            _ => self.0.on_swarm_event(event),
        }
    }

    fn on_connection_handler_event(
        &mut self,
        peer: PeerId,
        connection_id: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        self.0
            .on_connection_handler_event(peer, connection_id, event);
    }

    fn poll(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        self.0.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::is_own;

    #[test]
    fn bad_input_an_address_a_relay_named_is_never_passed_on() {
        let own: libp2p::Multiaddr = "/ip4/192.168.1.2/tcp/4001".parse().expect("address");
        let chosen_by_relay: libp2p::Multiaddr =
            "/ip4/192.168.1.10/tcp/22/p2p/12D3KooWB37ZW7cMZPedE7HuAYoHkMewt5TfPtqHgqs19yQ9cAa4/p2p-circuit"
                .parse()
                .expect("address");
        assert!(is_own(&own));
        assert!(!is_own(&chosen_by_relay));
    }
}
