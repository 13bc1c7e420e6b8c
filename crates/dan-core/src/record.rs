//! Records: the data users browse and edit. A record changes only through
//! signed ops (create, per-field update, delete); concurrent edits merge per
//! field, last writer wins by hybrid logical clock with the op id breaking
//! ties, so every instance holding the same ops shows the same record.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::hash::{Hash32, OpId};
use crate::hlc::Hlc;
use crate::identity::PeerKey;

/// Largest record id, in bytes; collection names, field names and tags
/// have at most this many characters.
pub const MAX_NAME_LEN: usize = 64;
/// Largest collection name, field name or tag, in bytes (64 characters of
/// any script).
pub const MAX_LABEL_BYTES: usize = 256;
/// Largest title, in bytes.
pub const MAX_TITLE_LEN: usize = 512;
/// Largest text value of one field, in bytes.
pub const MAX_FIELD_TEXT_LEN: usize = 16 * 1024;
/// Most fields set by one op.
pub const MAX_FIELDS: usize = 256;
/// Largest encoded size of all fields of one op, in bytes.
pub const MAX_FIELDS_BYTES: usize = 64 * 1024;
/// Most tags on a record.
pub const MAX_TAGS: usize = 32;
/// Largest whole number a field holds (2^53 - 1), and the negative of the
/// smallest: a window (JavaScript) shows every number in this range
/// exactly, so all members read the same value.
pub const MAX_FIELD_INT: i64 = (1 << 53) - 1;

/// Why a record change is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A record id, collection, field name or tag is empty, too long or uses
    /// characters outside the allowed set.
    #[error("{what} `{value}` is invalid: {rule}")]
    BadName {
        /// Which kind of name.
        what: &'static str,
        /// The offending text (shortened).
        value: String,
        /// What a valid one looks like.
        rule: &'static str,
    },
    /// The title is empty or too long.
    #[error("a title must be 1 to {MAX_TITLE_LEN} bytes, got {0}")]
    BadTitle(usize),
    /// A text field is longer than allowed.
    #[error("field `{field}` is {len} bytes; the limit is {MAX_FIELD_TEXT_LEN}")]
    FieldTooLong {
        /// The field name.
        field: String,
        /// Its size.
        len: usize,
    },
    /// A whole number outside the range every client shows exactly.
    #[error(
        "field `{field}` is {value}; whole numbers must lie between -{MAX_FIELD_INT} and {MAX_FIELD_INT}"
    )]
    IntOutOfRange {
        /// The field name.
        field: String,
        /// Its value.
        value: i64,
    },
    /// Too many fields or tags, or the fields are too large together.
    #[error("{0}")]
    TooMuch(String),
    /// The charter's schema for the collection does not allow this change.
    #[error("{0}")]
    Schema(String),
}

/// A record's identifier: 1 to 64 letters, digits, `-` or `_`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(String);

impl RecordId {
    /// Checks and wraps `text`.
    pub fn new(text: &str) -> Result<Self, RecordError> {
        check_name("record id", text)?;
        Ok(RecordId(text.to_owned()))
    }

    /// The id a new record gets from the op that creates it: derived from
    /// the writer, its sequence number and a random `nonce`, so it is
    /// unique, needs no coordination, and other members cannot predict it
    /// (and create a record under it first).
    pub fn derive(origin: &PeerKey, seq: u64, nonce: &[u8; 16]) -> Self {
        let digest = Hash32::tagged("dan record id v2", &[&origin.0, &seq.to_le_bytes(), nonce]);
        RecordId(hex::encode(&digest.0[..12]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecordId({})", self.0)
    }
}

/// Checks a record id: 1 to 64 ASCII letters, digits, `-` or `_` (ids
/// are typed in commands and links).
pub fn check_name(what: &'static str, text: &str) -> Result<(), RecordError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_NAME_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(())
        .ok_or_else(|| bad_name(what, text, "use 1 to 64 letters, digits, `-` or `_`"))
}

/// Checks a collection name, field name or tag: 1 to 64 characters of any
/// script ("Année de publication"), words separated by single spaces, no
/// control, invisible, bidirectional or non-ASCII space characters, and no
/// `=` or `:` (they separate names from values on the command line) or `,`
/// (it separates tags in the window).
///
/// Every build must agree on what is valid, whatever Unicode version its
/// standard library knows: so the rule lists what is refused (fixed
/// ranges) rather than asking which characters are letters.
pub fn check_label(what: &'static str, text: &str) -> Result<(), RecordError> {
    let chars = text.chars().count();
    let ok = (1..=MAX_NAME_LEN).contains(&chars)
        && text.len() <= MAX_LABEL_BYTES
        && !text.starts_with(' ')
        && !text.ends_with(' ')
        && !text.contains("  ")
        && crate::invite::is_plain_text(text)
        && !text.chars().any(is_refused_in_label);
    ok.then_some(()).ok_or_else(|| {
        bad_name(
            what,
            text,
            "use 1 to 64 letters, digits, `-`, `_` or single spaces (no `=`, `:` or `,`)",
        )
    })
}

/// The characters the command line and the window give a meaning (`=`,
/// `:` and the tag separator `,`), and the ones of [`is_invisible`].
fn is_refused_in_label(c: char) -> bool {
    matches!(c, '=' | ':' | ',') || is_invisible(c)
}

/// Spaces other than U+0020, invisible fillers, joiners, variation
/// selectors and tags (a name that looks like another, or blank), and
/// noncharacters.
pub(crate) fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{00a0}' | '\u{034f}' | '\u{0600}'..='\u{0605}' | '\u{06dd}' | '\u{070f}'
            | '\u{08e2}' | '\u{115f}' | '\u{1160}' | '\u{1680}' | '\u{17b4}' | '\u{17b5}'
            | '\u{180b}'..='\u{180f}' | '\u{2000}'..='\u{200a}' | '\u{202f}' | '\u{205f}'
            | '\u{206a}'..='\u{206f}' | '\u{2800}' | '\u{3000}' | '\u{3164}' | '\u{fdd0}'..='\u{fdef}'
            | '\u{fe00}'..='\u{fe0f}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}' | '\u{110bd}'
            | '\u{110cd}' | '\u{13430}'..='\u{1345f}' | '\u{1bca0}'..='\u{1bca3}'
            | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}' | '\u{e0100}'..='\u{e01ef}'
    ) || (u32::from(c) & 0xfffe) == 0xfffe
}

fn bad_name(what: &'static str, text: &str, rule: &'static str) -> RecordError {
    RecordError::BadName {
        what,
        value: text.chars().take(80).collect(),
        rule,
    }
}

/// The value of one field: text, a whole number or yes/no. In JSON it is a
/// plain string, number or boolean.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum FieldValue {
    /// UTF-8 text.
    Text(String),
    /// A signed 64-bit integer.
    Int(i64),
    /// True or false.
    Bool(bool),
}

/// The canonical binary form of [`FieldValue`].
#[derive(Serialize, Deserialize)]
enum FieldWire {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Serialize for FieldValue {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match (serializer.is_human_readable(), self) {
            (true, FieldValue::Text(text)) => serializer.serialize_str(text),
            (true, FieldValue::Int(int)) => serializer.serialize_i64(*int),
            (true, FieldValue::Bool(flag)) => serializer.serialize_bool(*flag),
            (false, FieldValue::Text(text)) => FieldWire::Text(text.clone()).serialize(serializer),
            (false, FieldValue::Int(int)) => FieldWire::Int(*int).serialize(serializer),
            (false, FieldValue::Bool(flag)) => FieldWire::Bool(*flag).serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if !deserializer.is_human_readable() {
            return Ok(match FieldWire::deserialize(deserializer)? {
                FieldWire::Text(text) => FieldValue::Text(text),
                FieldWire::Int(int) => FieldValue::Int(int),
                FieldWire::Bool(flag) => FieldValue::Bool(flag),
            });
        }
        struct JsonVisitor;
        impl serde::de::Visitor<'_> for JsonVisitor {
            type Value = FieldValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an integer or a boolean")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v.to_owned()))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Int(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<FieldValue, E> {
                i64::try_from(v)
                    .map(FieldValue::Int)
                    .map_err(|_| E::custom("integer out of range"))
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Bool(v))
            }
        }
        deserializer.deserialize_any(JsonVisitor)
    }
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(text) => f.write_str(text),
            FieldValue::Int(int) => write!(f, "{int}"),
            FieldValue::Bool(flag) => write!(f, "{flag}"),
        }
    }
}

/// A change to one record, as carried by a signed op.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RecordAction {
    /// Creates the record (or, if another instance created the same id
    /// concurrently, merges field by field with it).
    Create {
        /// The collection the record belongs to.
        collection: String,
        /// The record's title.
        title: String,
        /// Initial fields.
        fields: BTreeMap<String, FieldValue>,
        /// Initial tags.
        tags: BTreeSet<String>,
    },
    /// Changes some fields; untouched fields keep their values.
    Update {
        /// A new title, if it changes.
        title: Option<String>,
        /// Fields to set (`Some`) or remove (`None`).
        fields: BTreeMap<String, Option<FieldValue>>,
        /// The new tag set, if it changes.
        tags: Option<BTreeSet<String>>,
    },
    /// Marks the record deleted. Its history is kept.
    Delete,
    /// Brings a deleted record back (the latest of deletes and restores
    /// wins, like any field).
    Restore,
}

impl RecordAction {
    /// Checks sizes and names. Schema rules come from the charter.
    pub fn check_limits(&self) -> Result<(), RecordError> {
        match self {
            RecordAction::Create {
                collection,
                title,
                fields,
                tags,
            } => {
                check_label("collection", collection)?;
                check_title(title)?;
                check_fields(
                    fields.iter().map(|(k, v)| (k, Some(v))),
                    codec::encode(fields).len(),
                )?;
                check_tags(tags)
            }
            RecordAction::Update {
                title,
                fields,
                tags,
            } => {
                if let Some(title) = title {
                    check_title(title)?;
                }
                check_fields(
                    fields.iter().map(|(k, v)| (k, v.as_ref())),
                    codec::encode(fields).len(),
                )?;
                tags.as_ref().map_or(Ok(()), check_tags)
            }
            RecordAction::Delete | RecordAction::Restore => Ok(()),
        }
    }
}

fn check_title(title: &str) -> Result<(), RecordError> {
    if title.trim().is_empty() || title.len() > MAX_TITLE_LEN {
        return Err(RecordError::BadTitle(title.len()));
    }
    Ok(())
}

fn check_fields<'a>(
    fields: impl ExactSizeIterator<Item = (&'a String, Option<&'a FieldValue>)>,
    encoded_len: usize,
) -> Result<(), RecordError> {
    if fields.len() > MAX_FIELDS {
        return Err(RecordError::TooMuch(format!(
            "{} fields in one change; the limit is {MAX_FIELDS}",
            fields.len()
        )));
    }
    if encoded_len > MAX_FIELDS_BYTES {
        return Err(RecordError::TooMuch(format!(
            "fields total {encoded_len} bytes; the limit is {MAX_FIELDS_BYTES}"
        )));
    }
    for (name, value) in fields {
        check_label("field name", name)?;
        match value {
            Some(FieldValue::Text(text)) if text.len() > MAX_FIELD_TEXT_LEN => {
                return Err(RecordError::FieldTooLong {
                    field: name.clone(),
                    len: text.len(),
                });
            }
            Some(FieldValue::Int(n)) if n.unsigned_abs() > MAX_FIELD_INT as u64 => {
                return Err(RecordError::IntOutOfRange {
                    field: name.clone(),
                    value: *n,
                });
            }
            _ => {}
        }
    }
    Ok(())
}

fn check_tags(tags: &BTreeSet<String>) -> Result<(), RecordError> {
    if tags.len() > MAX_TAGS {
        return Err(RecordError::TooMuch(format!(
            "{} tags; the limit is {MAX_TAGS}",
            tags.len()
        )));
    }
    tags.iter().try_for_each(|tag| check_label("tag", tag))
}

/// When and by which op a register was last written; the greater stamp wins.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub struct Stamp {
    /// The op's hybrid logical clock.
    pub hlc: Hlc,
    /// The op's id, breaking ties between equal clocks.
    pub op: OpId,
}

/// A last-writer-wins register.
#[derive(Clone, PartialEq, Eq, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
struct Register<T> {
    value: T,
    stamp: Stamp,
}

impl<T> Register<T> {
    fn merge(slot: &mut Option<Register<T>>, value: T, stamp: Stamp) {
        if slot.as_ref().is_none_or(|reg| stamp > reg.stamp) {
            *slot = Some(Register { value, stamp });
        }
    }
}

/// Most fields a record shows: fields set by many changes merge, and a
/// record that would show more is refused when written here; merged from
/// peers, only the first ones (by name) are shown.
pub const MAX_RECORD_FIELDS: usize = 256;
/// Largest size of the fields a record shows (names and values), in bytes;
/// as [`MAX_RECORD_FIELDS`], a bound on the merged record, not on one change.
pub const MAX_RECORD_FIELDS_BYTES: usize = 256 * 1024;

/// The size one field takes in a record, for [`MAX_RECORD_FIELDS_BYTES`].
fn field_size(name: &str, value: &FieldValue) -> usize {
    name.len()
        + match value {
            FieldValue::Text(text) => text.len(),
            FieldValue::Int(_) | FieldValue::Bool(_) => 8,
        }
}

/// A record's full merge state. Two creates of one id may name different
/// collections (ids chosen by the writer, created concurrently): the record
/// keeps one merge state per collection, an edit changes the one of the
/// create it names, so every field shown was checked against the schema of
/// the collection shown. The collection of the newest create is shown.
/// Applying ops in any order gives the same state.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
pub struct RecordState {
    id: RecordId,
    by_collection: Few<String, Merged>,
    /// The create ops applied, by chain position (origin, seq), with the
    /// collection each named: updates and deletes name the create they
    /// build on.
    creates: Few<(PeerKey, u64), String>,
    /// The collection of the newest create (see [`RecordState::shown`]),
    /// kept so that a change does not look through every collection.
    shown: Option<String>,
}

/// Most entries a [`Few`] keeps in a vector.
const FEW: usize = 8;

/// A sorted map that stays a vector while it holds a few entries and
/// becomes a `BTreeMap` beyond: a record almost always has one collection
/// and one create, and a map's smallest node holds eleven (a replica keeps
/// every record in memory), but a member that gives one record thousands
/// must not make each change shift all of them.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Ord + Deserialize<'de>, V: Deserialize<'de>"
))]
enum Few<K, V> {
    Small(Vec<(K, V)>),
    Large(BTreeMap<K, V>),
}

impl<K: Ord, V> Few<K, V> {
    fn new() -> Self {
        Few::Small(Vec::new())
    }

    fn get<Q: Ord + ?Sized>(&self, key: &Q) -> Option<&V>
    where
        K: std::borrow::Borrow<Q>,
    {
        match self {
            Few::Small(entries) => entries
                .binary_search_by(|(k, _)| k.borrow().cmp(key))
                .ok()
                .map(|found| &entries[found].1),
            Few::Large(map) => map.get(key),
        }
    }

    /// The value at `key`, made by `make` (with the key from `owned`) if
    /// there is none yet.
    fn get_or_insert_with<Q: Ord + ?Sized>(
        &mut self,
        key: &Q,
        owned: impl FnOnce() -> K,
        make: impl FnOnce() -> V,
    ) -> &mut V
    where
        K: std::borrow::Borrow<Q>,
    {
        if let Few::Small(entries) = self
            && entries.len() >= FEW
            && entries
                .binary_search_by(|(k, _)| k.borrow().cmp(key))
                .is_err()
        {
            *self = Few::Large(std::mem::take(entries).into_iter().collect());
        }
        match self {
            Few::Small(entries) => {
                let slot = match entries.binary_search_by(|(k, _)| k.borrow().cmp(key)) {
                    Ok(found) => found,
                    Err(slot) => {
                        entries.insert(slot, (owned(), make()));
                        slot
                    }
                };
                &mut entries[slot].1
            }
            Few::Large(map) => map.entry(owned()).or_insert_with(make),
        }
    }

    fn iter(&self) -> Box<dyn Iterator<Item = (&K, &V)> + '_> {
        match self {
            Few::Small(entries) => Box::new(entries.iter().map(|(k, v)| (k, v))),
            Few::Large(map) => Box::new(map.iter()),
        }
    }
}

/// One collection's merge state of a record: one register per field, plus
/// the bookkeeping that the view needs.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(feature = "sealed-log", derive(Deserialize))]
struct Merged {
    title: Option<Register<String>>,
    tags: Option<Register<BTreeSet<String>>>,
    fields: BTreeMap<String, Register<Option<FieldValue>>>,
    /// The names of the fields that hold a value (not removed).
    live: BTreeSet<String>,
    /// The oldest and the newest create op applied.
    created: Option<(Stamp, Stamp)>,
    deleted: Option<Register<bool>>,
    latest: Option<(Stamp, PeerKey)>,
}

impl RecordState {
    /// An empty state for `id` (no op applied yet).
    pub fn new(id: RecordId) -> Self {
        RecordState {
            id,
            by_collection: Few::new(),
            creates: Few::new(),
            shown: None,
        }
    }

    /// Notes that the create op at `at` (origin, seq) named `collection`.
    pub fn note_create(&mut self, at: (PeerKey, u64), collection: &str) {
        *self.creates.get_or_insert_with(&at, || at, String::new) = collection.to_owned();
    }

    /// The collection the create op at `at` named, if that op is a create
    /// of this record.
    pub fn created_in(&self, at: &(PeerKey, u64)) -> Option<&str> {
        self.creates.get(at).map(String::as_str)
    }

    /// The first create op applied (by chain position) of the collection
    /// shown, which a new update or delete names.
    pub fn first_create(&self) -> Option<(PeerKey, u64)> {
        let shown = self.shown()?.0;
        self.creates
            .iter()
            .find(|(_, collection)| collection.as_str() == shown)
            .map(|(at, _)| *at)
    }

    /// Merges one op's change into the state of `collection`: the one the
    /// change's create named (for a create, its own).
    pub fn apply(
        &mut self,
        collection: &str,
        action: &RecordAction,
        stamp: Stamp,
        origin: PeerKey,
    ) {
        let merged = self.by_collection.get_or_insert_with(
            collection,
            || collection.to_owned(),
            Merged::default,
        );
        merged.apply(action, stamp, origin);
        let Some((_, newest)) = merged.created else {
            return;
        };
        // A create only makes its collection's newest create newer, so
        // the collection shown changes only to this one.
        let shown_newest = self
            .shown
            .as_deref()
            .and_then(|shown| self.by_collection.get(shown)?.created)
            .map(|(_, newest)| newest);
        if shown_newest.is_none_or(|shown| newest > shown) {
            self.shown = Some(collection.to_owned());
        }
    }

    /// Whether writing `action` here (as the newest change, so it wins
    /// every register) keeps the record shown within [`MAX_RECORD_FIELDS`]
    /// and [`MAX_RECORD_FIELDS_BYTES`], or at least does not make it bigger:
    /// a record merged past the limits from others' changes still takes a
    /// change that does not grow it (a title, a tag, a removed field).
    pub fn check_growth(&self, action: &RecordAction) -> Result<(), RecordError> {
        let RecordAction::Update { fields, .. } = action else {
            return Ok(());
        };
        let Some((_, merged)) = self.shown() else {
            return Ok(());
        };
        let mut shown: BTreeMap<&str, &FieldValue> = merged
            .live
            .iter()
            .filter_map(|name| Some((name.as_str(), merged.value(name)?)))
            .collect();
        let size = |shown: &BTreeMap<&str, &FieldValue>| -> usize {
            shown
                .iter()
                .map(|(name, value)| field_size(name, value))
                .sum()
        };
        let (count_before, bytes_before) = (shown.len(), size(&shown));
        for (name, value) in fields {
            match value {
                Some(value) => shown.insert(name, value),
                None => shown.remove(name.as_str()),
            };
        }
        let bytes = size(&shown);
        let too_many = shown.len() > MAX_RECORD_FIELDS && shown.len() > count_before;
        let too_big = bytes > MAX_RECORD_FIELDS_BYTES && bytes > bytes_before;
        if too_many || too_big {
            return Err(RecordError::TooMuch(format!(
                "the record would hold {} fields of {bytes} bytes; the limit is \
                 {MAX_RECORD_FIELDS} fields and {MAX_RECORD_FIELDS_BYTES} bytes",
                shown.len()
            )));
        }
        Ok(())
    }

    /// The collection shown and its state: the one of the newest create.
    fn shown(&self) -> Option<(&str, &Merged)> {
        let name = self.shown.as_deref()?;
        Some((name, self.by_collection.get(name)?))
    }

    /// What users see, or `None` while no create op has been seen (updates
    /// can arrive before the create they follow).
    pub fn view(&self) -> Option<RecordView> {
        let (collection, merged) = self.shown()?;
        merged.view(&self.id, collection)
    }
}

impl Merged {
    fn apply(&mut self, action: &RecordAction, stamp: Stamp, origin: PeerKey) {
        match action {
            RecordAction::Create {
                title,
                fields,
                tags,
                ..
            } => {
                Register::merge(&mut self.title, title.clone(), stamp);
                Register::merge(&mut self.tags, tags.clone(), stamp);
                for (name, value) in fields {
                    self.merge_field(name, Some(value.clone()), stamp);
                }
                self.created = Some(self.created.map_or((stamp, stamp), |(oldest, newest)| {
                    (oldest.min(stamp), newest.max(stamp))
                }));
            }
            RecordAction::Update {
                title,
                fields,
                tags,
            } => {
                if let Some(title) = title {
                    Register::merge(&mut self.title, title.clone(), stamp);
                }
                if let Some(tags) = tags {
                    Register::merge(&mut self.tags, tags.clone(), stamp);
                }
                for (name, value) in fields {
                    self.merge_field(name, value.clone(), stamp);
                }
            }
            RecordAction::Delete => Register::merge(&mut self.deleted, true, stamp),
            RecordAction::Restore => Register::merge(&mut self.deleted, false, stamp),
        }
        if self.latest.is_none_or(|(latest, _)| stamp > latest) {
            self.latest = Some((stamp, origin));
        }
    }

    fn merge_field(&mut self, name: &str, value: Option<FieldValue>, stamp: Stamp) {
        let live = value.is_some();
        match self.fields.get_mut(name) {
            Some(reg) if stamp > reg.stamp => *reg = Register { value, stamp },
            Some(_) => return,
            None => {
                self.fields
                    .insert(name.to_owned(), Register { value, stamp });
            }
        }
        if live {
            self.live.insert(name.to_owned());
        } else {
            self.live.remove(name);
        }
    }

    fn value(&self, name: &str) -> Option<&FieldValue> {
        self.fields.get(name)?.value.as_ref()
    }

    /// The fields shown: those holding a value, by name, as many as fit.
    fn shown_fields(&self) -> BTreeMap<String, FieldValue> {
        let mut bytes = 0;
        let mut shown = BTreeMap::new();
        for name in &self.live {
            let Some(value) = self.value(name) else {
                continue;
            };
            bytes += field_size(name, value);
            if shown.len() == MAX_RECORD_FIELDS || bytes > MAX_RECORD_FIELDS_BYTES {
                break;
            }
            shown.insert(name.clone(), value.clone());
        }
        shown
    }

    fn view(&self, id: &RecordId, collection: &str) -> Option<RecordView> {
        let (created, _) = self.created?;
        let (latest, origin) = self.latest?;
        Some(RecordView {
            id: id.clone(),
            collection: collection.to_owned(),
            title: self.title.as_ref()?.value.clone(),
            fields: self.shown_fields(),
            tags: self
                .tags
                .as_ref()
                .map(|reg| reg.value.clone())
                .unwrap_or_default(),
            deleted: self.deleted.as_ref().is_some_and(|reg| reg.value),
            created_at: created.hlc.wall_ms,
            updated_at: latest.hlc.wall_ms,
            origin,
            version: latest.op,
        })
    }
}

/// The current version of a record, as shown to users and stored in the
/// materialized table.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct RecordView {
    /// The record id.
    pub id: RecordId,
    /// Its collection.
    pub collection: String,
    /// Its title.
    pub title: String,
    /// Its fields.
    pub fields: BTreeMap<String, FieldValue>,
    /// Its tags.
    pub tags: BTreeSet<String>,
    /// Whether it was deleted (deletion keeps the history).
    pub deleted: bool,
    /// When it was created (ms since the Unix epoch, writer's clock).
    pub created_at: u64,
    /// When it last changed (ms since the Unix epoch, writer's clock).
    pub updated_at: u64,
    /// The instance that wrote the last change.
    pub origin: PeerKey,
    /// The op id of the last change.
    pub version: OpId,
}

impl RecordView {
    /// The digest of this version that goes into the state root.
    pub fn digest(&self) -> Hash32 {
        Hash32::tagged("dan record view v1", &[&codec::encode(self)])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        // Attacker review: finding the collection shown looked through
        // every collection of the record at each change (quadratic in the
        // creates of one id); it is kept now, and must stay the one of the
        // newest create whatever the order the creates arrive in.
        #[test]
        fn the_collection_shown_is_the_newest_creates_in_any_order(
            changes in proptest::collection::vec(
                (0u8..12, 0u64..50, proptest::num::u8::ANY, proptest::bool::ANY),
                1..40,
            )
        ) {
            let id = RecordId::new("r1").expect("an id");
            let mut state = RecordState::new(id);
            let origin = crate::Keypair::from_secret([1; 32]).public();
            let mut newest: Option<(Stamp, String)> = None;
            let mut used = BTreeSet::new();
            for (collection, ms, tie, is_create) in changes {
                let collection = format!("c{collection}");
                let stamp = Stamp {
                    hlc: Hlc { wall_ms: ms, counter: 0 },
                    op: Hash32([tie; 32]),
                };
                // A stamp names one op, and an op changes one collection.
                if !used.insert(stamp) {
                    continue;
                }
                let action = if is_create {
                    RecordAction::Create {
                        collection: collection.clone(),
                        title: format!("in {collection}"),
                        fields: BTreeMap::new(),
                        tags: BTreeSet::new(),
                    }
                } else {
                    RecordAction::Update {
                        title: Some(format!("edited in {collection}")),
                        fields: BTreeMap::new(),
                        tags: None,
                    }
                };
                state.apply(&collection, &action, stamp, origin);
                if is_create && newest.as_ref().is_none_or(|(at, _)| stamp > *at) {
                    newest = Some((stamp, collection));
                }
                // The scan the kept collection replaced gives the same.
                let scanned = state
                    .by_collection
                    .iter()
                    .filter_map(|(name, merged)| Some((merged.created?.1, name.clone())))
                    .max_by_key(|(newest, _)| *newest)
                    .map(|(_, name)| name);
                proptest::prop_assert_eq!(state.shown().map(|(name, _)| name.to_owned()), scanned);
            }
            proptest::prop_assert_eq!(
                state.view().map(|view| view.collection),
                newest.map(|(_, c)| c)
            );
        }
    }

    // Attacker review: a member giving one record thousands of collections
    // (names in falling order) made every create shift all the others; past
    // a few entries the state is a map. Either way it reads as one.
    #[test]
    fn few_keeps_its_entries_sorted_across_the_switch_to_a_map() {
        let mut few: Few<String, usize> = Few::new();
        for n in (0..40).rev() {
            *few.get_or_insert_with(&format!("c{n:02}"), || format!("c{n:02}"), || 0) += n;
        }
        *few.get_or_insert_with("c07", || "c07".into(), || 99) += 1;
        assert!(matches!(few, Few::Large(_)));
        let keys: Vec<&String> = few.iter().map(|(k, _)| k).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys.len(), 40);
        assert_eq!(few.get("c07"), Some(&8));
        assert_eq!(few.get("c99"), None);
        let mut small: Few<String, usize> = Few::new();
        small.get_or_insert_with("b", || "b".into(), || 2);
        small.get_or_insert_with("a", || "a".into(), || 1);
        assert!(matches!(small, Few::Small(_)));
        assert_eq!(
            small.iter().map(|(_, v)| *v).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn labels_take_any_script_and_refuse_what_misleads_or_breaks_the_command_line() {
        for good in [
            "Année de publication",
            "名前",
            "Ёлка",
            "ISBN-13",
            "a_b",
            "x",
        ] {
            assert_eq!(check_label("field name", good), Ok(()), "{good}");
        }
        let sixty_four = "é".repeat(64);
        assert_eq!(check_label("field name", &sixty_four), Ok(()));
        for bad in [
            "",
            " lead",
            "trail ",
            "two  spaces",
            "a=b",
            "a:b",
            "tab\there",
            "no\u{00a0}break",
            "right\u{202e}left",
            "zero\u{200b}width",
            "non\u{fffe}char",
            "a,b",
            "Price\u{fe0f}",
            "\u{3164}",
            "tag\u{e0041}",
            "\u{1fffe}",
            &"é".repeat(65),
        ] {
            assert!(check_label("field name", bad).is_err(), "{bad:?}");
        }
        assert!(
            check_name("record id", "Année").is_err(),
            "record ids stay ASCII"
        );
    }

    fn stamp(ms: u64, tie: u8) -> Stamp {
        Stamp {
            hlc: Hlc {
                wall_ms: ms,
                counter: 0,
            },
            op: Hash32([tie; 32]),
        }
    }

    fn create() -> RecordAction {
        RecordAction::Create {
            collection: "notes".into(),
            title: "t".into(),
            fields: BTreeMap::new(),
            tags: BTreeSet::new(),
        }
    }

    fn update(field: &str, value: &str) -> RecordAction {
        RecordAction::Update {
            title: None,
            fields: BTreeMap::from([(field.to_owned(), Some(FieldValue::Text(value.to_owned())))]),
            tags: None,
        }
    }

    #[test]
    fn field_json_is_plain_and_binary_is_tagged() {
        let value = FieldValue::Int(5);
        assert_eq!(serde_json::to_string(&value).ok().as_deref(), Some("5"));
        let text: FieldValue = serde_json::from_str("\"x\"").unwrap_or(FieldValue::Bool(false));
        assert_eq!(text, FieldValue::Text("x".into()));
        let bytes = codec::encode(&value);
        assert_eq!(codec::decode::<FieldValue>(&bytes, 64), Ok(value));
    }

    #[test]
    fn the_latest_of_deletes_and_restores_wins_in_any_order() {
        let id = RecordId::new("r1").unwrap_or_else(|e| panic!("{e}"));
        let origin = PeerKey([9; 32]);
        let ops = [
            (create(), stamp(1, 0)),
            (RecordAction::Delete, stamp(2, 0)),
            (RecordAction::Restore, stamp(3, 0)),
            (update("a", "kept"), stamp(4, 0)),
        ];
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let mut state = RecordState::new(id.clone());
            for i in order {
                state.apply("notes", &ops[i].0, ops[i].1, origin);
            }
            let view = state.view().unwrap_or_else(|| panic!("visible"));
            assert!(!view.deleted, "restored after the delete");
            assert_eq!(view.fields.get("a"), Some(&FieldValue::Text("kept".into())));
        }
        let mut deleted_last = RecordState::new(id);
        for (action, s) in &ops[..3] {
            deleted_last.apply("notes", action, *s, origin);
        }
        deleted_last.apply("notes", &RecordAction::Delete, stamp(5, 0), origin);
        assert!(deleted_last.view().is_some_and(|v| v.deleted));
    }

    #[test]
    fn concurrent_updates_merge_per_field_last_writer_wins() {
        let id = RecordId::new("r1").unwrap_or_else(|e| panic!("{e}"));
        let origin = PeerKey([9; 32]);
        let ops = [
            (create(), stamp(1, 0)),
            (update("a", "old"), stamp(2, 1)),
            (update("a", "new"), stamp(3, 1)),
            (update("b", "tie-low"), stamp(4, 1)),
            (update("b", "tie-high"), stamp(4, 2)),
        ];
        let mut forward = RecordState::new(id.clone());
        let mut backward = RecordState::new(id);
        for (action, s) in &ops {
            forward.apply("notes", action, *s, origin);
        }
        for (action, s) in ops.iter().rev() {
            backward.apply("notes", action, *s, origin);
        }
        let view = forward.view();
        assert_eq!(view, backward.view());
        let fields = view.map(|v| v.fields).unwrap_or_default();
        assert_eq!(fields.get("a"), Some(&FieldValue::Text("new".into())));
        assert_eq!(fields.get("b"), Some(&FieldValue::Text("tie-high".into())));
    }

    // Attacker review of the desktop (sixth session): a member stored
    // 2^53 + 1, which every window showed (and wrote back) as 2^53.
    #[test]
    fn bad_input_whole_numbers_beyond_what_every_client_shows_exactly_are_refused() {
        let set = |n: i64| RecordAction::Update {
            title: None,
            fields: BTreeMap::from([("n".to_owned(), Some(FieldValue::Int(n)))]),
            tags: None,
        };
        for n in [0, MAX_FIELD_INT, -MAX_FIELD_INT] {
            assert_eq!(set(n).check_limits(), Ok(()), "{n}");
        }
        for n in [MAX_FIELD_INT + 2, -MAX_FIELD_INT - 1, i64::MIN, i64::MAX] {
            assert!(
                matches!(set(n).check_limits(), Err(RecordError::IntOutOfRange { value, .. }) if value == n),
                "{n}"
            );
        }
    }

    #[test]
    fn limits_reject_bad_names_and_oversized_fields() {
        assert!(RecordId::new("").is_err());
        assert!(RecordId::new("a b").is_err());
        assert!(RecordId::new(&"x".repeat(65)).is_err());
        let big = update("a", &"x".repeat(MAX_FIELD_TEXT_LEN + 1));
        assert!(matches!(
            big.check_limits(),
            Err(RecordError::FieldTooLong { .. })
        ));
        assert!(update("bad=name", "v").check_limits().is_err());
    }
}
