//! Invite links and join requests.
//!
//! An invite is signed by the inviting member and travels as
//! `dan://join/<base32 payload>` (also shown as a QR code). A joining
//! instance answers it with a join request signed by its own key; members
//! approve join requests with governance ops.

use data_encoding::BASE32_NOPAD;
use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::build::{self, ApprovedBuild};
use crate::codec::{self, CodecError};
use crate::hash::{CodeHash, NetworkId};
use crate::identity::{Keypair, PeerKey};

/// The scheme and path every invite link starts with.
pub const LINK_PREFIX: &str = "dan://join/";
/// Longest invite link accepted, in characters.
pub const MAX_LINK_LEN: usize = 4096;
/// Largest encoded join request, in bytes.
pub const MAX_JOIN_REQUEST_BYTES: usize = 8 * 1024;
/// Most addresses an invite may carry.
pub const MAX_INVITE_ADDRS: usize = 16;

/// Why an invite link or join request is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InviteError {
    /// The text is not a `dan://join/` link.
    #[error("this is not a DAN invite link (it should start with {LINK_PREFIX})")]
    NotALink,
    /// The link is longer than any real invite.
    #[error("the invite link is too long ({0} characters)")]
    TooLong(usize),
    /// The payload is not valid base32 or not a valid invite.
    #[error("the invite link is damaged or incomplete: {0}")]
    Damaged(String),
    /// The signature does not match (the link was altered).
    #[error("the invite link has been tampered with (its signature does not match)")]
    BadSignature,
    /// The invite has expired.
    #[error("the invite link expired; ask for a new one")]
    Expired,
    /// The invite is for another network than expected.
    #[error("the invite is for another network")]
    WrongNetwork,
    /// A field is out of range (name, addresses).
    #[error("the invite link is invalid: {0}")]
    Invalid(String),
}

impl From<CodecError> for InviteError {
    fn from(e: CodecError) -> Self {
        InviteError::Damaged(e.to_string())
    }
}

/// What an invite says.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invite {
    /// The network to join.
    pub network: NetworkId,
    /// Its name, shown before joining.
    pub network_name: String,
    /// The member who invites.
    pub inviter: PeerKey,
    /// The inviter's instance name.
    pub inviter_name: String,
    /// Where to reach the inviter (multiaddrs).
    pub addrs: Vec<String>,
    /// Identifies the invite (for use counting and revocation).
    pub id: [u8; 16],
    /// When it stops working (ms since the Unix epoch).
    pub expires_ms: u64,
    /// How many instances may join with it.
    pub uses: u32,
    /// The builds the network approved when the invite was made, so a
    /// joiner can tell before joining whether its own build is one of them.
    pub approved: Vec<ApprovedBuild>,
    /// Whether `approved` lists every approved build (it is cut at
    /// [`build::MAX_BUILDS`]); a joiner refuses itself only on a full list.
    pub approved_complete: bool,
}

impl Invite {
    /// Whether, as the inviter says, the network approved `code` when the
    /// invite was made: `None` when the list was cut and does not name it.
    pub fn approves(&self, code: &CodeHash) -> Option<bool> {
        if self.approved.iter().any(|b| b.code_hash == *code) {
            Some(true)
        } else if self.approved_complete {
            Some(false)
        } else {
            None
        }
    }
}

/// Whether `text` is fit to show people as a name: no control characters
/// (terminal escapes), no bidirectional marks, overrides or isolates, and no
/// invisible format characters (text that reads differently from what it
/// is, or looks like another name).
pub fn is_plain_text(text: &str) -> bool {
    text.chars().all(is_plain_char)
}

/// Whether `c` may stand in text shown to people (see [`is_plain_text`]).
pub fn is_plain_char(c: char) -> bool {
    !(c.is_control()
        || matches!(c, '\u{00ad}' | '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}'))
}

/// Whether `name` is fit as an instance or admin name: 1 to 64 characters
/// of plain text (see [`is_plain_text`]), with no space at either end and
/// no invisible filler (a name that is blank, or padded far past what the
/// count shows).
pub fn is_plain_name(name: &str) -> bool {
    name == name.trim()
        && (1..=64).contains(&name.chars().count())
        && is_plain_text(name)
        && !name.chars().any(crate::record::is_invisible)
}

pub use crate::look_alike::names_look_alike;

/// An invite signed by its inviter.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInvite {
    /// The content.
    pub invite: Invite,
    /// The inviter's signature.
    pub signature: Signature,
}

fn signing_bytes(domain: &[u8], encoded: Vec<u8>) -> Vec<u8> {
    let mut bytes = domain.to_vec();
    bytes.extend(encoded);
    bytes
}

impl SignedInvite {
    /// Signs `invite` with the inviter's key.
    pub fn sign(invite: Invite, inviter: &Keypair) -> Result<Self, InviteError> {
        check_invite(&invite)?;
        let signature = inviter.sign(&signing_bytes(b"dan invite v1\0", codec::encode(&invite)));
        Ok(SignedInvite { invite, signature })
    }

    /// Checks the signature and the fields.
    pub fn verify(&self) -> Result<(), InviteError> {
        check_invite(&self.invite)?;
        let bytes = signing_bytes(b"dan invite v1\0", codec::encode(&self.invite));
        if !self.invite.inviter.verify(&bytes, &self.signature) {
            return Err(InviteError::BadSignature);
        }
        Ok(())
    }

    /// Checks signature, fields and expiry at `now_ms`.
    pub fn check(&self, now_ms: u64) -> Result<(), InviteError> {
        self.verify()?;
        if now_ms >= self.invite.expires_ms {
            return Err(InviteError::Expired);
        }
        Ok(())
    }

    /// The `dan://join/…` link.
    pub fn to_link(&self) -> String {
        format!(
            "{LINK_PREFIX}{}",
            BASE32_NOPAD.encode(&codec::encode(self)).to_lowercase()
        )
    }

    /// Parses and verifies a link (signature and fields; expiry is checked
    /// by [`check`](Self::check)).
    pub fn from_link(text: &str) -> Result<Self, InviteError> {
        let text = text.trim();
        if text.len() > MAX_LINK_LEN {
            return Err(InviteError::TooLong(text.len()));
        }
        let payload = text
            .strip_prefix(LINK_PREFIX)
            .ok_or(InviteError::NotALink)?;
        let bytes = BASE32_NOPAD
            .decode(payload.to_uppercase().as_bytes())
            .map_err(|e| InviteError::Damaged(e.to_string()))?;
        let invite: SignedInvite = codec::decode(&bytes, MAX_LINK_LEN)?;
        invite.verify()?;
        Ok(invite)
    }
}

fn check_invite(invite: &Invite) -> Result<(), InviteError> {
    if invite.network_name.is_empty()
        || invite.network_name.chars().count() > 80
        || !is_plain_text(&invite.network_name)
    {
        return Err(InviteError::Invalid("bad network name".into()));
    }
    if invite.inviter_name.chars().count() > 64 || !is_plain_text(&invite.inviter_name) {
        return Err(InviteError::Invalid("bad inviter name".into()));
    }
    if invite.addrs.len() > MAX_INVITE_ADDRS
        || invite.addrs.iter().any(|a| a.len() > 256 || a.is_empty())
    {
        return Err(InviteError::Invalid("bad addresses".into()));
    }
    if invite.uses == 0 {
        return Err(InviteError::Invalid(
            "an invite must allow at least one use".into(),
        ));
    }
    if invite.approved.len() > build::MAX_BUILDS {
        return Err(InviteError::Invalid("too many approved builds".into()));
    }
    for label in invite.approved.iter().filter_map(|b| b.label.as_ref()) {
        label
            .check()
            .map_err(|e| InviteError::Invalid(e.to_string()))?;
    }
    Ok(())
}

/// A joining instance's request to become a member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    /// The network.
    pub network: NetworkId,
    /// The joining instance.
    pub joiner: PeerKey,
    /// Its instance name.
    pub instance_name: String,
    /// Its admin's display name.
    pub admin_name: String,
    /// BLAKE3 of the executable it runs.
    pub code_hash: CodeHash,
    /// The invite it answers, if any.
    pub invite: Option<SignedInvite>,
    /// When it was made (ms since the Unix epoch).
    pub requested_ms: u64,
    /// For a readmission: the deprecated key whose seat this joiner takes
    /// over, signed by that key. Admitted, the joiner holds that one seat
    /// (it votes once where the old key voted) instead of a second one.
    pub succeeds: Option<Succession>,
}

/// A member key's hand-over of its seat to the key its instance comes back
/// under (a deprecated instance asking to be readmitted): signed by the old
/// key, for one network and one new key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Succession {
    /// The key handing over its seat.
    pub predecessor: PeerKey,
    /// Its signature over the network and the new key.
    pub signature: Signature,
}

impl Succession {
    fn signing_bytes(network: &NetworkId, successor: &PeerKey) -> Vec<u8> {
        signing_bytes(b"dan succession v1\0", codec::encode(&(network, successor)))
    }

    /// `predecessor` hands its seat in `network` over to `successor`.
    pub fn sign(network: &NetworkId, successor: &PeerKey, predecessor: &Keypair) -> Self {
        Succession {
            predecessor: predecessor.public(),
            signature: predecessor.sign(&Self::signing_bytes(network, successor)),
        }
    }

    /// Whether the predecessor signed this hand-over to `successor` in
    /// `network` (and is another key).
    pub fn verify(&self, network: &NetworkId, successor: &PeerKey) -> Result<(), InviteError> {
        if self.predecessor == *successor {
            return Err(InviteError::Invalid(
                "a key cannot take over its own seat".into(),
            ));
        }
        if !self
            .predecessor
            .verify(&Self::signing_bytes(network, successor), &self.signature)
        {
            return Err(InviteError::BadSignature);
        }
        Ok(())
    }
}

/// A join request signed by the joining instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedJoinRequest {
    /// The content.
    pub request: JoinRequest,
    /// The joiner's signature.
    pub signature: Signature,
}

impl SignedJoinRequest {
    /// Signs `request` with the joiner's key.
    pub fn sign(request: JoinRequest, joiner: &Keypair) -> Result<Self, InviteError> {
        check_request(&request)?;
        if request.joiner != joiner.public() {
            return Err(InviteError::Invalid(
                "the request must be signed by the joining instance".into(),
            ));
        }
        let signature = joiner.sign(&signing_bytes(b"dan join v1\0", codec::encode(&request)));
        Ok(SignedJoinRequest { request, signature })
    }

    /// Checks the joiner's signature, the fields and the embedded invite's
    /// signature (not its expiry, which only the inviter judges, once).
    pub fn verify(&self) -> Result<(), InviteError> {
        check_request(&self.request)?;
        let bytes = signing_bytes(b"dan join v1\0", codec::encode(&self.request));
        if !self.request.joiner.verify(&bytes, &self.signature) {
            return Err(InviteError::BadSignature);
        }
        if let Some(succession) = &self.request.succeeds {
            succession.verify(&self.request.network, &self.request.joiner)?;
        }
        if let Some(invite) = &self.request.invite {
            invite.verify()?;
            if invite.invite.network != self.request.network {
                return Err(InviteError::WrongNetwork);
            }
        }
        Ok(())
    }

    /// The canonical bytes (for the wire).
    pub fn to_bytes(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes and verifies canonical bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InviteError> {
        let request: SignedJoinRequest = codec::decode(bytes, MAX_JOIN_REQUEST_BYTES)?;
        request.verify()?;
        Ok(request)
    }
}

fn check_request(request: &JoinRequest) -> Result<(), InviteError> {
    if !is_plain_name(&request.instance_name) || !is_plain_name(&request.admin_name) {
        return Err(InviteError::Invalid(
            "instance and admin names must be 1 to 64 characters".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::Hash32;

    #[test]
    fn look_alike_names_are_told_apart_from_different_ones() {
        // Cyrillic "С" and "о", a digit one for an "l", case and spacing.
        assert!(names_look_alike("Commons", "\u{0421}\u{043e}mmons"));
        assert!(names_look_alike("Willow Street", "Wi1low  street"));
        assert!(names_look_alike("Commons", "commons"));
        assert!(names_look_alike("Commons", "Commons\u{2800}"));
        assert!(names_look_alike("Willow Street", "WillowStreet."));
        assert!(!names_look_alike("Commons", "Common"));
        assert!(!names_look_alike("Library", "Garden club"));
    }

    fn invite() -> SignedInvite {
        let inviter = Keypair::from_secret([1; 32]);
        SignedInvite::sign(
            Invite {
                network: Hash32::of(b"net"),
                network_name: "Commons".into(),
                inviter: inviter.public(),
                inviter_name: "alice".into(),
                addrs: vec!["/ip4/127.0.0.1/tcp/4001".into()],
                id: [7; 16],
                expires_ms: 1_000,
                uses: 1,
                approved: Vec::new(),
                approved_complete: true,
            },
            &inviter,
        )
        .expect("sign")
    }

    #[test]
    fn links_round_trip_and_expire() {
        let signed = invite();
        let link = signed.to_link();
        assert!(link.starts_with("dan://join/"));
        assert_eq!(SignedInvite::from_link(&link).as_ref(), Ok(&signed));
        assert_eq!(
            SignedInvite::from_link(&link.to_uppercase().replace("DAN://JOIN/", LINK_PREFIX))
                .as_ref(),
            Ok(&signed)
        );
        assert_eq!(signed.check(999), Ok(()));
        assert_eq!(signed.check(1_000), Err(InviteError::Expired));
    }

    #[test]
    fn tampered_truncated_and_foreign_links_are_rejected() {
        let link = invite().to_link();
        let payload = &link[LINK_PREFIX.len()..];
        let mut chars: Vec<char> = payload.chars().collect();
        let i = chars.len() / 2;
        chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
        let tampered = format!("{LINK_PREFIX}{}", chars.iter().collect::<String>());
        assert!(SignedInvite::from_link(&tampered).is_err());
        assert!(SignedInvite::from_link(&link[..link.len() - 10]).is_err());
        assert_eq!(
            SignedInvite::from_link("https://example.com/join/abc"),
            Err(InviteError::NotALink)
        );
        assert!(matches!(
            SignedInvite::from_link(&"x".repeat(5000)),
            Err(InviteError::TooLong(_))
        ));
    }

    #[test]
    fn join_requests_verify_with_their_invite() {
        let joiner = Keypair::from_secret([2; 32]);
        let request = JoinRequest {
            network: Hash32::of(b"net"),
            joiner: joiner.public(),
            instance_name: "bob's laptop".into(),
            admin_name: "Bob".into(),
            code_hash: Hash32::of(b"code"),
            invite: Some(invite()),
            requested_ms: 5,
            succeeds: None,
        };
        let signed = SignedJoinRequest::sign(request.clone(), &joiner).expect("sign");
        assert_eq!(
            SignedJoinRequest::from_bytes(&signed.to_bytes()).as_ref(),
            Ok(&signed)
        );
        let mut wrong_net = request;
        wrong_net.network = Hash32::of(b"other");
        let signed = SignedJoinRequest::sign(wrong_net, &joiner).expect("sign");
        assert_eq!(signed.verify(), Err(InviteError::WrongNetwork));
    }
}
