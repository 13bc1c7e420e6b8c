//! Signed ops: every change to a network is an op, signed by the instance
//! that made it and chained to that instance's previous op (`seq`, `prev`).
//! An op's id is the BLAKE3 digest of its canonical signed bytes.

use std::collections::HashMap;

use ed25519_dalek::{Signature, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::governance::GovernanceAction;
use crate::hash::{Hash32, NetworkId, OpId};
use crate::hlc::Hlc;
use crate::identity::{Keypair, PeerKey};
use crate::record::{RecordAction, RecordId};

/// Largest encoded op, in bytes.
pub const MAX_OP_BYTES: usize = 128 * 1024;

/// What an op changes.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum Payload {
    /// A change to one record.
    Record {
        /// The record changed.
        id: RecordId,
        /// The change.
        action: RecordAction,
    },
    /// A governance decision (membership).
    Governance(GovernanceAction),
}

/// The signed content of an op.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct OpBody {
    /// The network the op belongs to (an op cannot be replayed elsewhere).
    pub network: NetworkId,
    /// The instance that wrote it.
    pub origin: PeerKey,
    /// Position in the origin's chain, from 1.
    pub seq: u64,
    /// Id of the origin's op at `seq - 1`, or zero for `seq == 1`.
    pub prev: OpId,
    /// When it was written (hybrid logical clock); later than the origin's
    /// previous op.
    pub hlc: Hlc,
    /// For a governance op, what its signer had applied when it signed
    /// (see [`Context`]). For a record update or delete, the chain position
    /// of the create it builds on (one entry), so that it stays valid when
    /// that create is cut off. `None` for a record create.
    pub context: Option<Context>,
    /// The change.
    pub payload: Payload,
}

/// A governance op's causal context: for every other origin, how many of
/// its ops the signer had applied. A replica applies the op only once it
/// holds that much of each chain; the signer's contexts only move forward
/// along its own chain; a removal cuts the removed member off at the
/// highest position of it that the deciding votes had seen.
pub type Context = std::collections::BTreeMap<PeerKey, u64>;

/// Most origins a context may name.
pub const MAX_CONTEXT_ORIGINS: usize = 1024;

impl OpBody {
    fn signing_bytes(&self) -> Vec<u8> {
        let mut bytes = b"dan op v1\0".to_vec();
        bytes.extend(codec::encode(self));
        bytes
    }
}

/// The wire form of an op: body and signature.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
struct SignedOp {
    body: OpBody,
    signature: Signature,
}

/// A decoded op with its canonical bytes and id. Its signature has not been
/// checked yet: see [`verify_ops`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Op {
    signed: SignedOp,
    bytes: Vec<u8>,
    id: OpId,
}

impl Op {
    /// Decodes canonical op bytes (at most [`MAX_OP_BYTES`]).
    pub fn decode(bytes: &[u8]) -> Result<Op, CodecError> {
        let signed: SignedOp = codec::decode(bytes, MAX_OP_BYTES)?;
        Ok(Op {
            signed,
            bytes: bytes.to_vec(),
            id: Hash32::of(bytes),
        })
    }

    /// The op id.
    pub fn id(&self) -> OpId {
        self.id
    }

    /// The signed content.
    pub fn body(&self) -> &OpBody {
        &self.signed.body
    }

    /// The canonical bytes (what is stored and sent).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The signature, for evidence.
    pub fn signature(&self) -> &Signature {
        &self.signed.signature
    }
}

/// An op whose signature has been checked against its origin's key. Only
/// verified ops can be applied to a replica.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedOp(Op);

impl VerifiedOp {
    /// Signs `body` with the origin's key. The body's origin must be the
    /// key's public half.
    pub fn sign(body: OpBody, keypair: &Keypair) -> Result<VerifiedOp, SignError> {
        if body.origin != keypair.public() {
            return Err(SignError::WrongKey);
        }
        let signature = keypair.sign(&body.signing_bytes());
        let signed = SignedOp { body, signature };
        let bytes = codec::encode(&signed);
        if bytes.len() > MAX_OP_BYTES {
            return Err(SignError::TooLarge(bytes.len()));
        }
        let id = Hash32::of(&bytes);
        Ok(VerifiedOp(Op { signed, bytes, id }))
    }

    /// The op.
    pub fn op(&self) -> &Op {
        &self.0
    }

    /// The op id.
    pub fn id(&self) -> OpId {
        self.0.id
    }

    /// The signed content.
    pub fn body(&self) -> &OpBody {
        self.0.body()
    }

    /// The canonical bytes.
    pub fn bytes(&self) -> &[u8] {
        self.0.bytes()
    }
}

/// Why an op could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The body names another origin than the signing key.
    #[error("the op's origin is not the signing key")]
    WrongKey,
    /// The signed op would exceed [`MAX_OP_BYTES`].
    #[error("the change is {0} bytes encoded; the limit is {MAX_OP_BYTES}")]
    TooLarge(usize),
}

/// Checks the signatures of `ops`, one by one under the strict rules of
/// [`PeerKey::verify`]: the verified ops and the ones whose signature is
/// invalid, each in their order.
///
/// Not batch verification: ed25519-dalek's batch equation is not multiplied
/// by the cofactor, so a signature whose `R` carries a small-order part
/// passes a batch or fails it depending on the random weights, that is on
/// which other ops share the batch, while strict single verification
/// always refuses it. An op's fate must not depend on its neighbours: two
/// instances would split on one member's chain with nothing to prove it.
pub fn verify_ops(ops: Vec<Op>) -> (Vec<VerifiedOp>, Vec<Op>) {
    let mut keys: HashMap<PeerKey, Option<VerifyingKey>> = HashMap::new();
    let (good, bad): (Vec<Op>, Vec<Op>) = ops.into_iter().partition(|op| {
        let origin = op.body().origin;
        let key = keys
            .entry(origin)
            .or_insert_with(|| origin.verifying_key().ok());
        key.as_ref().is_some_and(|key| {
            key.verify_strict(&op.body().signing_bytes(), op.signature())
                .is_ok()
        })
    });
    (good.into_iter().map(VerifiedOp).collect(), bad)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    fn body(origin: PeerKey, seq: u64) -> OpBody {
        OpBody {
            network: Hash32::of(b"net"),
            origin,
            seq,
            prev: Hash32::ZERO,
            hlc: Hlc {
                wall_ms: seq,
                counter: 0,
            },
            context: None,
            payload: Payload::Record {
                id: RecordId::derive(&origin, seq, &[0; 16]),
                action: RecordAction::Create {
                    collection: "notes".into(),
                    title: "t".into(),
                    fields: BTreeMap::new(),
                    tags: BTreeSet::new(),
                },
            },
        }
    }

    #[test]
    fn decode_of_signed_bytes_gives_the_same_op() {
        let pair = Keypair::from_secret([5; 32]);
        let op = VerifiedOp::sign(body(pair.public(), 1), &pair).unwrap_or_else(|e| panic!("{e}"));
        let decoded = Op::decode(op.bytes()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(&decoded, op.op());
        assert_eq!(decoded.id(), Hash32::of(op.bytes()));
    }

    #[test]
    fn verify_ops_separates_forged_signatures() {
        let pair = Keypair::from_secret([5; 32]);
        let mallory = Keypair::from_secret([6; 32]);
        let good =
            VerifiedOp::sign(body(pair.public(), 1), &pair).unwrap_or_else(|e| panic!("{e}"));
        let mut forged = VerifiedOp::sign(body(mallory.public(), 2), &mallory)
            .unwrap_or_else(|e| panic!("{e}"))
            .0;
        forged.signed.body.origin = pair.public();
        let (ok, bad) = verify_ops(vec![good.op().clone(), forged.clone()]);
        assert_eq!(ok, vec![good]);
        assert_eq!(bad, vec![forged]);
    }

    /// `body` signed by the key of `seed` with a signature whose `R` has
    /// the order-2 point added: `s` is computed over that `R`, so only the
    /// small-order part is off.
    fn signed_with_a_small_order_part(seed: [u8; 32], body: OpBody) -> Op {
        use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
        use curve25519_dalek::scalar::Scalar;
        use sha2::{Digest, Sha512};
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let mut order_two = [0xff; 32];
        order_two[0] = 0xec;
        order_two[31] = 0x7f;
        let order_two = CompressedEdwardsY(order_two)
            .decompress()
            .unwrap_or_else(|| panic!("(0, -1) is a point"));
        let nonce = Scalar::from_bytes_mod_order([9; 32]);
        let r = (EdwardsPoint::mul_base(&nonce) + order_two)
            .compress()
            .to_bytes();
        let challenge = Scalar::from_bytes_mod_order_wide(
            &Sha512::new()
                .chain_update(r)
                .chain_update(signing.verifying_key().as_bytes())
                .chain_update(body.signing_bytes())
                .finalize()
                .into(),
        );
        let s = nonce + challenge * signing.to_scalar();
        let key = Keypair::from_secret(seed);
        let op = VerifiedOp::sign(body, &key).unwrap_or_else(|e| panic!("{e}"));
        let mut bytes = op.bytes().to_vec();
        let len = bytes.len();
        bytes[len - 64..len - 32].copy_from_slice(&r);
        bytes[len - 32..].copy_from_slice(s.as_bytes());
        Op::decode(&bytes).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Failed before: ed25519-dalek's batch accepted such a signature for
    /// about half of its random weights, so whether a member's op was
    /// accepted depended on the ops sharing its batch.
    #[test]
    fn bad_input_a_signature_with_a_small_order_part_is_refused_whatever_shares_its_check() {
        let seed = [5; 32];
        let pair = Keypair::from_secret(seed);
        let bent = signed_with_a_small_order_part(seed, body(pair.public(), 1));
        assert!(
            !pair
                .public()
                .verify(&bent.body().signing_bytes(), bent.signature())
        );
        let honest: Vec<Op> = (2..50)
            .map(|seq| {
                VerifiedOp::sign(body(pair.public(), seq), &pair)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .0
            })
            .collect();
        for shared in 0..honest.len() {
            let mut ops = honest[..shared].to_vec();
            ops.insert(shared / 2, bent.clone());
            let (good, bad) = verify_ops(ops);
            assert_eq!(bad, vec![bent.clone()], "sharing its check with {shared}");
            assert_eq!(good.len(), shared);
        }
    }

    #[test]
    fn signing_with_the_wrong_key_is_refused() {
        let pair = Keypair::from_secret([5; 32]);
        let other = Keypair::from_secret([6; 32]);
        assert_eq!(
            VerifiedOp::sign(body(other.public(), 1), &pair),
            Err(SignError::WrongKey)
        );
    }
}
