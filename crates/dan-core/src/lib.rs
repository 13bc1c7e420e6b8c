//! # dan-core
//!
//! The protocol core of DAN (Distributed Administration Network): instance
//! identities, canonical encoding, signed and chained ops, records with
//! per-field last-writer-wins merging, the charter and genesis, and the two
//! digests (`ops_root`, `state_root`).
//!
//! This crate does no I/O and reads no clock: time and randomness come in as
//! arguments, so every function is deterministic and property-tested.
//! `dan-store` persists what it produces, `dan-node` wires it to the network.

pub mod build;
pub mod charter;
pub mod codec;
pub mod conformance;
pub mod digest;
pub mod evidence;
pub mod governance;
pub mod hash;
pub mod hlc;
pub mod identity;
pub mod invite;
pub mod look_alike;
pub mod op;
pub mod record;
pub mod replica;
pub mod snapshot;

pub use build::{ApprovedBuild, BuildKind, BuildLabel};
pub use charter::{Charter, Genesis, PROTOCOL_VERSION, SignedGenesis};
pub use evidence::{Evidence, EvidenceCheck, Finding, SignedEvidence};
pub use governance::{
    GovernanceAction, Member, MemberStatus, Proposal, ProposalState, ProposalStatus,
};
pub use hash::{CodeHash, Hash32, NetworkId, OpId};
pub use hlc::Hlc;
pub use identity::{Keypair, PeerKey};
pub use invite::{Invite, JoinRequest, SignedInvite, SignedJoinRequest, Succession};
pub use look_alike::{LookAlike, LookAlikeKind};
pub use op::{Op, OpBody, Payload, VerifiedOp};
pub use record::{FieldValue, RecordAction, RecordId, RecordView};
pub use replica::{Applied, OpRejection, Replica};
pub use snapshot::ReplicaSnapshot;
