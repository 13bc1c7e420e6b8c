//! The types of the instance API, shared by the CLI (as JSON), the control
//! channel and the desktop app. Field names are part of the public contract.

use std::collections::{BTreeMap, BTreeSet};

use dan_core::{FieldValue, Hash32, Op, Payload, PeerKey, RecordAction};
use serde::{Deserialize, Serialize};

/// Where the instance stands in its network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NetworkState {
    /// No network created or joined yet.
    None,
    /// Asked to join; waiting for the members' approval.
    Pending,
    /// Fewer members than the charter needs; records are refused.
    Forming,
    /// Enough members; records are accepted.
    Active,
    /// Runs a build whose approval ended with a software upgrade: nothing
    /// flows until it runs an approved build.
    Suspended,
    /// Runs a build the network has not approved (yet), e.g. a new version
    /// installed before the vote: it says so to its peers, nothing flows,
    /// and it reconnects by itself once the members approve the build.
    Unapproved,
    /// Caught breaking the rules: it keeps working locally (a fork), but
    /// nothing flows between it and the network any more.
    Deprecated,
}

/// A record as shown to a reader: its current version and the names in it
/// a person could mistake for each other (`look_alikes`: field names, then
/// tags, that read the same or mix alphabets; empty almost always).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordShown {
    /// The record.
    #[serde(flatten)]
    pub record: dan_core::RecordView,
    /// Look-alike field names and tags.
    pub look_alikes: Vec<LookAlikeLabels>,
}

/// Labels of one record that read alike, and whether they are fields or tags.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LookAlikeLabels {
    /// Whether they are field names or tags.
    pub of: LabelKind,
    /// The labels and what is odd about them.
    #[serde(flatten)]
    pub look_alike: dan_core::LookAlike,
}

/// What a record's label is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelKind {
    /// A field name.
    Field,
    /// A tag.
    Tag,
}

impl RecordShown {
    /// `record` with its look-alike labels found.
    pub fn of(record: dan_core::RecordView) -> Self {
        let fields = dan_core::look_alike::look_alikes(record.fields.keys().map(String::as_str));
        let tags = dan_core::look_alike::look_alikes(record.tags.iter().map(String::as_str));
        let look_alikes = fields
            .into_iter()
            .map(|look_alike| LookAlikeLabels {
                of: LabelKind::Field,
                look_alike,
            })
            .chain(tags.into_iter().map(|look_alike| LookAlikeLabels {
                of: LabelKind::Tag,
                look_alike,
            }))
            .collect();
        RecordShown {
            record,
            look_alikes,
        }
    }
}

/// `dan status`: the instance at a glance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This instance's peer id.
    pub peer_id: PeerKey,
    /// This instance's name.
    pub name: String,
    /// The network id, once there is a network.
    pub network_id: Option<Hash32>,
    /// The network's name.
    pub network_name: Option<String>,
    /// Where the instance stands.
    pub state: NetworkState,
    /// Members in good standing.
    pub members: u64,
    /// Members the charter needs before records are accepted.
    pub min_members: Option<u64>,
    /// Ops in the log.
    pub op_count: u64,
    /// Digest of the set of op ids.
    pub ops_root: Option<Hash32>,
    /// Digest of the materialized state.
    pub state_root: Option<Hash32>,
    /// BLAKE3 of this executable.
    pub code_hash: Hash32,
    /// Digest of the current charter.
    pub charter_hash: Option<Hash32>,
    /// Whether this executable is approved by the charter.
    pub code_approved: Option<bool>,
    /// What this build is (version, platform, kind) and where the charter
    /// stands on it.
    pub build: crate::release::BuildView,
    /// Peers connected and replicating now.
    pub online_peers: u64,
    /// How far this instance's clock is ahead of its members' (negative:
    /// behind), in ms, from their signed hellos (median); null without
    /// members online. Beyond a few minutes, ops it signs are held back by
    /// the others, or theirs by it.
    pub clock_skew_ms: Option<i64>,
    /// Ops known to exist on peers but not fetched yet.
    pub missing_ops: u64,
    /// When a reconciliation last completed (ms since the Unix epoch).
    pub last_sync: Option<u64>,
    /// Addresses this instance listens on (relayed ones included).
    pub listen_addrs: Vec<String>,
    /// Whether other instances can reach this one without a relay:
    /// `public`, `private` or `unknown` (probed with AutoNAT).
    pub reachability: crate::net::Reachability,
    /// Addresses peers confirmed they can dial this instance at.
    pub external_addrs: Vec<String>,
    /// The relays given with `dan run --relay`, and whether each holds a
    /// slot for this instance.
    pub relays: Vec<crate::net::RelayStatus>,
    /// The join in progress (state `pending`).
    pub join: Option<crate::membership::JoinProgress>,
    /// Why the network deprecated this instance (state `deprecated`).
    pub deprecation: Option<String>,
    /// Records whose stored rows differ from the signed op log (first 20),
    /// when the instance serves damaged data.
    pub damaged_records: Vec<String>,
    /// Length of this instance's own op chain here.
    pub own_seq: u64,
    /// The longest this instance's chain is known to be on peers; above
    /// `own_seq` while lost writes are being recovered.
    pub own_seq_on_peers: u64,
}

/// `dan record put`: create a record, or change the given parts of one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PutRecord {
    /// The record to change; a new id is made when absent.
    pub id: Option<String>,
    /// The collection (required for a new record; cannot change).
    pub collection: Option<String>,
    /// The title (required for a new record).
    pub title: Option<String>,
    /// Fields to set (`Some`) or remove (`None`).
    #[serde(default)]
    pub fields: BTreeMap<String, Option<FieldValue>>,
    /// The new tag set, if it changes.
    pub tags: Option<BTreeSet<String>>,
}

/// `dan network create`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CreateNetwork {
    /// The network's name.
    pub name: String,
    /// Members needed before records are accepted (default 3).
    pub min_members: Option<u32>,
    /// Code hashes approved besides this executable's own (e.g. the desktop
    /// app's and the headless CLI's builds of the same release).
    #[serde(default)]
    pub approve_code: Vec<Hash32>,
}

/// One entry of a record's history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// The op that made the change.
    pub op_id: Hash32,
    /// The instance that made it.
    pub origin: PeerKey,
    /// Its position in that instance's chain.
    pub seq: u64,
    /// When (ms since the Unix epoch, writer's clock).
    pub at: u64,
    /// `create`, `update` or `delete`.
    pub kind: String,
    /// The collection set by a create.
    pub collection: Option<String>,
    /// The title set, if any.
    pub title: Option<String>,
    /// Fields set (or removed, as null).
    pub fields: BTreeMap<String, Option<FieldValue>>,
    /// The tag set, if set.
    pub tags: Option<BTreeSet<String>>,
}

impl HistoryEntry {
    /// The history entry for a record op (`None` for other ops).
    pub fn from_op(op: &Op) -> Option<Self> {
        let body = op.body();
        let Payload::Record { action, .. } = &body.payload else {
            return None;
        };
        let (kind, collection, title, fields, tags) = match action {
            RecordAction::Create {
                collection,
                title,
                fields,
                tags,
            } => (
                "create",
                Some(collection.clone()),
                Some(title.clone()),
                fields
                    .iter()
                    .map(|(k, v)| (k.clone(), Some(v.clone())))
                    .collect(),
                Some(tags.clone()),
            ),
            RecordAction::Update {
                title,
                fields,
                tags,
            } => ("update", None, title.clone(), fields.clone(), tags.clone()),
            RecordAction::Delete => ("delete", None, None, BTreeMap::new(), None),
            RecordAction::Restore => ("restore", None, None, BTreeMap::new(), None),
        };
        Some(HistoryEntry {
            op_id: op.id(),
            origin: body.origin,
            seq: body.seq,
            at: body.hlc.wall_ms,
            kind: kind.into(),
            collection,
            title,
            fields,
            tags,
        })
    }
}

impl PutRecord {
    /// The change with its new names (collection, fields, tags) in Unicode
    /// NFC, so "Année" typed on any keyboard names one field, not two.
    /// Names the record already holds are kept exactly as stored (another
    /// member may have written them in another form): an edit then
    /// changes or removes that field rather than adding a twin.
    pub fn normalized(self, existing: Option<&dan_core::RecordView>) -> Self {
        let keep_or_nfc = |name: String, held: bool| if held { name } else { nfc(&name) };
        let fields = self
            .fields
            .into_iter()
            .map(|(k, v)| {
                let held = existing.is_some_and(|r| r.fields.contains_key(&k));
                (keep_or_nfc(k, held), v)
            })
            .collect();
        let tags = self.tags.map(|tags| {
            tags.into_iter()
                .map(|t| {
                    let held = existing.is_some_and(|r| r.tags.contains(&t));
                    keep_or_nfc(t, held)
                })
                .collect()
        });
        PutRecord {
            collection: self.collection.as_deref().map(nfc),
            fields,
            tags,
            ..self
        }
    }
}

/// `text` in Unicode NFC.
pub fn nfc(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfc().collect()
}

/// Parses one `--field` argument: `KEY=TEXT` (the text as it is) or
/// `KEY:=JSON` (a number, `true`/`false` or a quoted string).
pub fn parse_field_arg(text: &str) -> Result<(String, FieldValue), crate::NodeError> {
    if let Some((key, json)) = text.split_once(":=") {
        let value: FieldValue = serde_json::from_str(json).map_err(|_| {
            crate::NodeError::Invalid(format!(
                "`{json}` is not a number, true/false or a quoted string"
            ))
        })?;
        return Ok((key.to_owned(), value));
    }
    let Some((key, value)) = text.split_once('=') else {
        return Err(crate::NodeError::Invalid(format!(
            "`{text}` is not KEY=VALUE"
        )));
    };
    Ok((key.to_owned(), FieldValue::Text(value.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_as_text_or_typed_json() {
        assert_eq!(
            parse_field_arg("a=b=c").ok(),
            Some(("a".into(), FieldValue::Text("b=c".into())))
        );
        assert_eq!(
            parse_field_arg("n:=5").ok(),
            Some(("n".into(), FieldValue::Int(5)))
        );
        assert_eq!(
            parse_field_arg("ok:=true").ok(),
            Some(("ok".into(), FieldValue::Bool(true)))
        );
        assert!(parse_field_arg("n:=[1]").is_err());
        assert!(parse_field_arg("novalue").is_err());
    }

    #[test]
    fn names_are_put_in_one_unicode_form() {
        let decomposed = "Anne\u{301}e";
        let typed = PutRecord {
            id: None,
            collection: Some(decomposed.into()),
            title: Some("t".into()),
            fields: BTreeMap::from([(decomposed.to_owned(), None)]),
            tags: Some(BTreeSet::from([decomposed.to_owned()])),
        };
        let put = typed.clone().normalized(None);
        assert_eq!(put.collection.as_deref(), Some("Ann\u{e9}e"));
        assert!(put.fields.contains_key("Ann\u{e9}e"));
        assert!(put.tags.is_some_and(|t| t.contains("Ann\u{e9}e")));
        // A field another member stored decomposed is edited as it is.
        let stored = dan_core::RecordView {
            id: dan_core::RecordId::new("r1").expect("id"),
            collection: decomposed.into(),
            title: "t".into(),
            fields: BTreeMap::from([(decomposed.to_owned(), FieldValue::Int(1))]),
            tags: BTreeSet::from([decomposed.to_owned()]),
            deleted: false,
            created_at: 1,
            updated_at: 1,
            origin: dan_core::Keypair::from_secret([1; 32]).public(),
            version: Hash32([0; 32]),
        };
        let edit = typed.normalized(Some(&stored));
        assert!(edit.fields.contains_key(decomposed));
        assert!(edit.tags.is_some_and(|t| t.contains(decomposed)));
    }
}
