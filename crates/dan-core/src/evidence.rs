//! Evidence: self-contained, verifiable proof that an instance broke the
//! rules. Any instance checks evidence on its own, with no vote
//! ([`Evidence::check`]); verified evidence deprecates the offender from a
//! cutoff in its op chain on (invariant 4).

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use std::collections::BTreeMap;

use crate::conformance::{Hello, SignedHello};
use crate::hash::Hash32;
use crate::identity::{Keypair, PeerKey};
use crate::op::{Op, Payload, verify_ops};
use crate::replica::Replica;

/// Largest encoded signed evidence, in bytes.
pub const MAX_EVIDENCE_BYTES: usize = 512 * 1024;
/// How deeply false accusations may nest.
const MAX_NESTING: usize = 4;

/// What an instance is accused of, with the signed material that proves it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Evidence {
    /// Two different ops signed by the same origin with the same seq.
    Equivocation {
        /// One op (canonical bytes).
        first: Vec<u8>,
        /// The other.
        second: Vec<u8>,
    },
    /// A signed op that breaks the network's rules.
    InvalidOp {
        /// The op (canonical bytes).
        op: Vec<u8>,
    },
    /// A signed checkpoint whose state root is wrong for its op set.
    WrongStateRoot {
        /// The checkpoint (canonical bytes of a signed hello).
        checkpoint: Vec<u8>,
    },
    /// A signed checkpoint announcing a code hash the charter never
    /// approved.
    UnapprovedCode {
        /// The checkpoint (canonical bytes of a signed hello).
        checkpoint: Vec<u8>,
    },
    /// Evidence that does not hold: proof against its accuser.
    FalseAccusation {
        /// The accusation (canonical bytes of signed evidence).
        accusation: Vec<u8>,
    },
}

/// Evidence signed by the instance that reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedEvidence {
    /// The proof.
    pub evidence: Evidence,
    /// Who reports it.
    pub accuser: PeerKey,
    /// The accuser's own chain length when reporting (the cutoff if the
    /// accusation is false).
    pub accuser_seq: u64,
    /// When (ms since the Unix epoch).
    pub time_ms: u64,
    /// The accuser's signature.
    pub signature: Signature,
}

/// What verified evidence establishes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The instance that broke the rules.
    pub offender: PeerKey,
    /// Its ops from this seq on are not accepted.
    pub cutoff: u64,
    /// In plain words.
    pub reason: String,
}

/// The result of checking evidence against a replica.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EvidenceCheck {
    /// The evidence holds.
    Proven(Finding),
    /// The evidence does not hold (the accusation is false), and why.
    Unfounded(String),
    /// This replica cannot decide yet (e.g. it holds another op set).
    Undecidable(String),
}

fn signing_bytes(
    evidence: &Evidence,
    accuser: &PeerKey,
    accuser_seq: u64,
    time_ms: u64,
) -> Vec<u8> {
    let mut bytes = b"dan evidence v1\0".to_vec();
    bytes.extend(codec::encode(&(evidence, accuser, accuser_seq, time_ms)));
    bytes
}

impl SignedEvidence {
    /// Signs `evidence` as `accuser`, whose own chain is at `accuser_seq`.
    pub fn sign(evidence: Evidence, accuser: &Keypair, accuser_seq: u64, time_ms: u64) -> Self {
        let public = accuser.public();
        let signature = accuser.sign(&signing_bytes(&evidence, &public, accuser_seq, time_ms));
        SignedEvidence {
            evidence,
            accuser: public,
            accuser_seq,
            time_ms,
            signature,
        }
    }

    /// Whether the accuser really signed it.
    pub fn verify_signature(&self) -> bool {
        let bytes = signing_bytes(
            &self.evidence,
            &self.accuser,
            self.accuser_seq,
            self.time_ms,
        );
        self.accuser.verify(&bytes, &self.signature)
    }

    /// The canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes canonical bytes (the signature is checked by [`check`](Self::check)).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        codec::decode(bytes, MAX_EVIDENCE_BYTES)
    }

    /// Identifies the evidence (BLAKE3 of its canonical bytes).
    pub fn id(&self) -> Hash32 {
        Hash32::of(&self.to_bytes())
    }

    /// Checks the accuser's signature and the evidence.
    pub fn check(&self, replica: &Replica) -> EvidenceCheck {
        self.check_nested(replica, 0)
    }

    fn check_nested(&self, replica: &Replica, depth: usize) -> EvidenceCheck {
        if !self.verify_signature() {
            return EvidenceCheck::Unfounded("the evidence is not signed by its accuser".into());
        }
        if depth == 0 {
            return self.evidence.check(replica);
        }
        self.evidence.check_nested(replica, depth)
    }
}

fn verified_op(bytes: &[u8], replica: &Replica) -> Result<Op, String> {
    let op = Op::decode(bytes).map_err(|e| format!("malformed op: {e}"))?;
    if op.body().network != replica.network_id() {
        return Err("the op belongs to another network".into());
    }
    let (good, _) = verify_ops(vec![op]);
    good.into_iter()
        .next()
        .map(|v| v.op().clone())
        .ok_or_else(|| "the op's signature does not verify".into())
}

fn checkpoint(bytes: &[u8], replica: &Replica) -> Result<SignedHello, String> {
    let signed =
        SignedHello::from_bytes(bytes).map_err(|e| format!("malformed checkpoint: {e}"))?;
    if !signed.verify() {
        return Err("the checkpoint's signature does not verify".into());
    }
    if signed.hello.network != Some(replica.network_id()) {
        return Err("the checkpoint belongs to another network".into());
    }
    Ok(signed)
}

impl Evidence {
    /// Checks the evidence against `replica` (without an accuser). Evidence
    /// against an instance that is not an admitted member here is not
    /// decided: anyone can sign with throwaway keys, and deprecating them
    /// would only grow (and split) every instance's deprecations.
    pub fn check(&self, replica: &Replica) -> EvidenceCheck {
        if let Some(claim) = self.claim()
            && !replica.answers_for_its_ops(&claim.offender)
        {
            return EvidenceCheck::Undecidable(format!(
                "{} is not an admitted member here",
                claim.offender
            ));
        }
        self.check_nested(replica, 0)
    }

    fn check_nested(&self, replica: &Replica, depth: usize) -> EvidenceCheck {
        use EvidenceCheck::{Proven, Unfounded};
        match self {
            Evidence::Equivocation { first, second } => {
                let (a, b) = match (verified_op(first, replica), verified_op(second, replica)) {
                    (Ok(a), Ok(b)) => (a, b),
                    (Err(e), _) | (_, Err(e)) => return Unfounded(e),
                };
                if a.id() == b.id()
                    || a.body().origin != b.body().origin
                    || a.body().seq != b.body().seq
                {
                    return Unfounded("the two ops are not two versions of the same seq".into());
                }
                Proven(equivocation(&a))
            }
            Evidence::InvalidOp { op } => {
                let op = match verified_op(op, replica) {
                    Ok(op) => op,
                    Err(e) => return Unfounded(e),
                };
                match rule_violation(&op, replica) {
                    Ok(Some(broken)) => {
                        let finding = invalid_op(&op);
                        Proven(Finding {
                            reason: format!("{}: {broken}", finding.reason),
                            ..finding
                        })
                    }
                    Ok(None) => Unfounded("the op is valid".into()),
                    Err(undecidable) => EvidenceCheck::Undecidable(undecidable),
                }
            }
            Evidence::WrongStateRoot { checkpoint: bytes } => {
                let signed = match checkpoint(bytes, replica) {
                    Ok(signed) => signed,
                    Err(e) => return Unfounded(e),
                };
                let h = &signed.hello;
                if h.ops_root != Some(replica.ops_root())
                    || h.deprecations_root != Some(replica.deprecations_root())
                {
                    return EvidenceCheck::Undecidable("this instance holds another op set".into());
                }
                if h.state_root == Some(replica.state_root()) {
                    return Unfounded("the checkpoint's state root is right for its op set".into());
                }
                Proven(wrong_state_root(h))
            }
            Evidence::UnapprovedCode { checkpoint: bytes } => {
                let signed = match checkpoint(bytes, replica) {
                    Ok(signed) => signed,
                    Err(e) => return Unfounded(e),
                };
                let h = &signed.hello;
                if replica.ever_approved(&h.code_hash) {
                    return Unfounded("the code hash is or was approved by the charter".into());
                }
                if h.awaiting_approval {
                    return Unfounded(
                        "the checkpoint says its build waits for approval; it claims no conformance"
                            .into(),
                    );
                }
                if h.ops_root != Some(replica.ops_root()) {
                    // The sender may know of an upgrade this replica has
                    // not seen yet: decide only on the same op set.
                    return EvidenceCheck::Undecidable("this instance holds another op set".into());
                }
                Proven(unapproved_code(h))
            }
            Evidence::FalseAccusation { accusation } => {
                if depth >= MAX_NESTING {
                    return Unfounded("accusations nested too deeply".into());
                }
                let accusation = match SignedEvidence::from_bytes(accusation) {
                    Ok(accusation) => accusation,
                    Err(e) => return Unfounded(format!("malformed accusation: {e}")),
                };
                if !accusation.verify_signature() {
                    return Unfounded("the accusation is not signed by its accuser".into());
                }
                match accusation.evidence.check_nested(replica, depth + 1) {
                    EvidenceCheck::Unfounded(why) => {
                        let finding = false_accusation(&accusation);
                        Proven(Finding {
                            reason: format!("{} ({why})", finding.reason),
                            ..finding
                        })
                    }
                    EvidenceCheck::Proven(_) => Unfounded("the accusation holds".into()),
                    undecidable @ EvidenceCheck::Undecidable(_) => undecidable,
                }
            }
        }
    }
}

impl Evidence {
    /// What the evidence claims (offender, cutoff and a plain reason),
    /// read without checking it. Only for adopting a deprecation that this
    /// replica can no longer check on its own (see [`adoptable`]).
    pub fn claim(&self) -> Option<Finding> {
        self.claim_nested(0)
    }

    fn claim_nested(&self, depth: usize) -> Option<Finding> {
        let hello = |bytes: &[u8]| SignedHello::from_bytes(bytes).ok().map(|s| s.hello);
        match self {
            Evidence::Equivocation { first, .. } => Some(equivocation(&Op::decode(first).ok()?)),
            Evidence::InvalidOp { op } => Some(invalid_op(&Op::decode(op).ok()?)),
            Evidence::WrongStateRoot { checkpoint } => Some(wrong_state_root(&hello(checkpoint)?)),
            Evidence::UnapprovedCode { checkpoint } => Some(unapproved_code(&hello(checkpoint)?)),
            Evidence::FalseAccusation { accusation } if depth < MAX_NESTING => Some(
                false_accusation(&SignedEvidence::from_bytes(accusation).ok()?),
            ),
            Evidence::FalseAccusation { .. } => None,
        }
    }
}

fn equivocation(op: &Op) -> Finding {
    Finding {
        offender: op.body().origin,
        cutoff: op.body().seq,
        reason: format!("signed two different ops with seq {}", op.body().seq),
    }
}

fn invalid_op(op: &Op) -> Finding {
    Finding {
        offender: op.body().origin,
        cutoff: op.body().seq,
        reason: "signed an op that breaks the rules".into(),
    }
}

fn wrong_state_root(h: &Hello) -> Finding {
    Finding {
        offender: h.peer,
        cutoff: h.origin_seq.saturating_add(1),
        reason: format!(
            "its state root is wrong for its op set ({} ops, ops root {})",
            h.op_count,
            h.ops_root.map(|r| r.short()).unwrap_or_default()
        ),
    }
}

fn unapproved_code(h: &Hello) -> Finding {
    Finding {
        offender: h.peer,
        cutoff: h.origin_seq.saturating_add(1),
        reason: format!(
            "it runs software the charter never approved (code hash {})",
            h.code_hash.short()
        ),
    }
}

fn false_accusation(accusation: &SignedEvidence) -> Finding {
    Finding {
        offender: accusation.accuser,
        cutoff: accusation.accuser_seq.saturating_add(1),
        reason: "it made a false accusation".into(),
    }
}

/// Most undecidable claims searched for a quorum-backed subset (2^n sets).
const MAX_ADOPTION_SEARCH: usize = 8;

/// Which of `claims` (deprecations this replica cannot check on its own any
/// more: the op set the evidence refers to is in the past) to adopt: the
/// largest set whose deprecations root a quorum of the members that stay
/// conforming announce in their signed checkpoints (`announced`: member →
/// deprecations root). Returns indices into `claims`; empty if none.
///
/// This is how an instance that joined after a deprecation, or came back
/// from a long absence, takes over what the network proved before it.
pub fn adoptable(
    replica: &Replica,
    claims: &[Finding],
    announced: &BTreeMap<PeerKey, Hash32>,
) -> Vec<usize> {
    let n = claims.len();
    let mut subsets: Vec<Vec<usize>> = if n <= MAX_ADOPTION_SEARCH {
        (1u32..1 << n)
            .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
            .collect()
    } else {
        vec![(0..n).collect()]
    };
    subsets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    for subset in subsets {
        let findings: Vec<&Finding> = subset.iter().map(|&i| &claims[i]).collect();
        let root = replica.deprecations_root_with(&findings);
        // The bar is a quorum of every voter, the accused included: an
        // accusation must not lower it by taking its targets out of the
        // denominator. Only voters neither accused nor deprecated back it.
        let voters = replica.voters();
        let needed = replica.charter().quorum.needed(voters.len());
        let backing = voters
            .iter()
            .filter(|p| replica.deprecation(p).is_none())
            .filter(|p| findings.iter().all(|f| f.offender != **p))
            .filter(|p| announced.get(p) == Some(&root))
            .count();
        if needed > 0 && backing >= needed {
            return subset;
        }
    }
    Vec::new()
}

/// Which rule a signed op breaks (`Ok(None)`: none; `Err`: cannot tell yet).
fn rule_violation(op: &Op, replica: &Replica) -> Result<Option<String>, String> {
    if let Err(e) = crate::replica::check_clock(&op.body().hlc) {
        return Ok(Some(e.to_string()));
    }
    match &op.body().payload {
        Payload::Record { id, action } => {
            if let Err(e) = crate::replica::check_record_fields(id, action) {
                return Ok(Some(e.to_string()));
            }
            match replica.check_record(id, action, op.body()) {
                Ok(crate::replica::RecordEffect::Change { .. }) => chain_violation(op, replica),
                Ok(crate::replica::RecordEffect::Nothing) => {
                    Err(format!("the creation of record {id} is cut off here"))
                }
                Err(e) if e.is_transient() => Err(e.to_string()),
                Err(e) => Ok(Some(e.to_string())),
            }
        }
        Payload::Governance(action) => {
            if let Err(e) = replica.check_governance(action) {
                return Ok(Some(e.to_string()));
            }
            chain_violation(op, replica)
        }
    }
}

/// The rules that compare an op with its origin's earlier ops, checked
/// only where this replica holds that chain exactly up to the op.
fn chain_violation(op: &Op, replica: &Replica) -> Result<Option<String>, String> {
    if replica.contains(&op.id()) {
        // Applied here, so it passed these rules.
        return Ok(None);
    }
    replica
        .chain_rule_violation(op.body())
        .map(|broken| broken.map(|e| e.to_string()))
        .map_err(|()| {
            format!(
                "this instance does not hold {}'s chain up to op {}",
                op.body().origin,
                op.body().seq
            )
        })
}
