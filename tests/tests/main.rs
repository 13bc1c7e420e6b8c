//! Every multi-instance integration test of DAN, in one binary: real `dan`
//! processes, real SQLite files, real sockets, real network namespaces.
//! Each module is one area (`nat`, `governance`, ...).

mod byzantine;
mod cli_network;
mod conformance;
mod durability;
mod governance;
mod keyring;
mod nat;
mod network;
mod partition;
mod wire_adversary;
