//! Asks the home router to forward this instance's own listening ports
//! (UPnP IGD, libp2p `upnp`). Relayed listen addresses are the relay's
//! choice (it names them in its reservation), so they are never passed
//! on: a relay could otherwise make the router forward a port to any host
//! of the home network.

use std::task::{Context, Poll};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::swarm::{
    ConnectionDenied, ConnectionId, ExpiredListenAddr, FromSwarm, NetworkBehaviour, NewListenAddr,
    THandler, THandlerInEvent, THandlerOutEvent, ToSwarm,
};
use libp2p::{Multiaddr, PeerId, upnp};

use super::is_circuit;

/// UPnP port mapping of the instance's own (not relayed) listen addresses.
#[derive(Default)]
pub(crate) struct PortMapping(upnp::tokio::Behaviour);

/// Whether the router may be asked to forward `address` (an address this
/// instance listens on itself).
fn is_own(address: &Multiaddr) -> bool {
    !is_circuit(address)
}

impl NetworkBehaviour for PortMapping {
    type ConnectionHandler = <upnp::tokio::Behaviour as NetworkBehaviour>::ConnectionHandler;
    type ToSwarm = upnp::Event;

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
    fn bad_input_a_relayed_address_naming_a_host_of_the_home_network_is_never_forwarded() {
        let own: libp2p::Multiaddr = "/ip4/192.168.1.2/tcp/4001".parse().expect("address");
        let chosen_by_relay: libp2p::Multiaddr =
            "/ip4/192.168.1.10/tcp/22/p2p/12D3KooWB37ZW7cMZPedE7HuAYoHkMewt5TfPtqHgqs19yQ9cAa4/p2p-circuit"
                .parse()
                .expect("address");
        assert!(is_own(&own));
        assert!(!is_own(&chosen_by_relay));
    }
}
