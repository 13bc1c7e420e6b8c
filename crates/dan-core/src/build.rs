//! Builds as versions, not hashes: the words a person reads for a code hash
//! ("DAN 0.1.0 · desktop · Linux x86-64").
//!
//! A release ships a manifest naming each of its executables' code hash with
//! a [`BuildLabel`]. The charter keeps the labels of the builds it approves,
//! an upgrade proposal carries the labels of the builds it approves, and an
//! invite carries the approved builds so that a joiner learns, before
//! joining, whether its own build is one of them. A label is a claim of
//! whoever wrote it: the code hash is what is approved and checked.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::hash::CodeHash;

/// Most build labels a charter, a proposal or an invite may carry.
pub const MAX_BUILDS: usize = 16;
/// Longest version or platform text, in bytes.
pub const MAX_LABEL_TEXT: usize = 32;

/// Which executable of a release a build is.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildKind {
    /// The desktop app (window and built-in instance).
    Desktop,
    /// The headless `dan` command for servers.
    Headless,
}

impl BuildKind {
    /// The kind in words.
    pub fn as_str(self) -> &'static str {
        match self {
            BuildKind::Desktop => "desktop",
            BuildKind::Headless => "headless",
        }
    }
}

/// A build's version, platform and kind.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct BuildLabel {
    /// The release version, e.g. `0.1.0`.
    pub version: String,
    /// Operating system and processor, e.g. `linux-x86_64`.
    pub platform: String,
    /// Desktop app or headless.
    pub kind: BuildKind,
}

/// Why a build label is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// A version or platform text is empty, too long or has other
    /// characters than letters, digits, `.`, `_`, `+` and `-`.
    #[error("a build's {0} must be 1 to {MAX_LABEL_TEXT} letters, digits, `.`, `_`, `+` or `-`")]
    BadText(&'static str),
    /// More labels than [`MAX_BUILDS`].
    #[error("at most {MAX_BUILDS} builds can be named at once")]
    TooMany,
    /// Two builds of one set carry the same label.
    #[error("two builds are labelled {0}: each label must name one build")]
    DuplicateLabel(String),
    /// A label names a build that is not approved alongside it.
    #[error("a build label names code hash {0}, which is not among the approved hashes")]
    NotApproved(String),
}

fn check_text(what: &'static str, text: &str) -> Result<(), BuildError> {
    let ok = !text.is_empty()
        && text.len() <= MAX_LABEL_TEXT
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'));
    if ok {
        Ok(())
    } else {
        Err(BuildError::BadText(what))
    }
}

impl BuildLabel {
    /// Checks the label's texts.
    pub fn check(&self) -> Result<(), BuildError> {
        check_text("version", &self.version)?;
        check_text("platform", &self.platform)
    }

    /// The platform in words: `linux-x86_64` → `Linux x86-64`.
    pub fn platform_words(&self) -> String {
        let (os, arch) = self
            .platform
            .split_once('-')
            .unwrap_or((self.platform.as_str(), ""));
        let os = match os {
            "linux" => "Linux".to_owned(),
            "macos" => "macOS".to_owned(),
            "windows" => "Windows".to_owned(),
            other => other.to_owned(),
        };
        let arch = match arch {
            "x86_64" => "x86-64",
            "aarch64" => "ARM64",
            other => other,
        };
        if arch.is_empty() {
            os
        } else {
            format!("{os} {arch}")
        }
    }

    /// The label as a person reads it: `DAN 0.1.0 · desktop · Linux x86-64`.
    pub fn describe(&self) -> String {
        format!(
            "DAN {} · {} · {}",
            self.version,
            self.kind.as_str(),
            self.platform_words()
        )
    }
}

/// Checks a set of labels: each well formed, at most [`MAX_BUILDS`], and
/// each naming a hash that `approved` accepts.
pub fn check_labels(
    labels: &BTreeMap<CodeHash, BuildLabel>,
    approved: impl Fn(&CodeHash) -> bool,
) -> Result<(), BuildError> {
    if labels.len() > MAX_BUILDS {
        return Err(BuildError::TooMany);
    }
    let mut seen = std::collections::BTreeSet::new();
    for (hash, label) in labels {
        label.check()?;
        if !approved(hash) {
            return Err(BuildError::NotApproved(hash.short()));
        }
        if !seen.insert(label) {
            return Err(BuildError::DuplicateLabel(label.describe()));
        }
    }
    Ok(())
}

/// Takes `labels` into `known`, never relabelling a build it already names
/// and never giving a second build a label another one has: once a label
/// names a build, a later proposal cannot pass another program off under
/// it, nor rename the approved one.
pub fn adopt_labels(
    known: &mut BTreeMap<CodeHash, BuildLabel>,
    labels: &BTreeMap<CodeHash, BuildLabel>,
) {
    for (hash, label) in labels {
        if !known.contains_key(hash) && !known.values().any(|l| l == label) {
            known.insert(*hash, label.clone());
        }
    }
}

/// A build as an invite names it: the code hash, and its label where the
/// charter has one.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct ApprovedBuild {
    /// What is approved.
    pub code_hash: CodeHash,
    /// What it is, if the charter says.
    pub label: Option<BuildLabel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(version: &str, platform: &str) -> BuildLabel {
        BuildLabel {
            version: version.into(),
            platform: platform.into(),
            kind: BuildKind::Desktop,
        }
    }

    #[test]
    fn labels_read_as_words_and_refuse_odd_text() {
        assert_eq!(
            label("0.1.0", "linux-x86_64").describe(),
            "DAN 0.1.0 · desktop · Linux x86-64"
        );
        assert_eq!(
            label("0.2.0", "macos-aarch64").platform_words(),
            "macOS ARM64"
        );
        assert!(label("0.1.0", "linux-x86_64").check().is_ok());
        for bad in ["", "0.1.0 ", "0.1.0\u{202e}", "a/b", &"9".repeat(33)] {
            assert!(label(bad, "linux").check().is_err(), "{bad:?}");
            assert!(label("0.1.0", bad).check().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_must_name_approved_hashes_and_stay_few() {
        let approved = crate::Hash32([1; 32]);
        let other = crate::Hash32([2; 32]);
        let one = BTreeMap::from([(approved, label("0.1.0", "linux-x86_64"))]);
        assert!(check_labels(&one, |h| *h == approved).is_ok());
        let wrong = BTreeMap::from([(other, label("0.1.0", "linux-x86_64"))]);
        assert_eq!(
            check_labels(&wrong, |h| *h == approved),
            Err(BuildError::NotApproved(other.short()))
        );
        let many: BTreeMap<_, _> = (0..=MAX_BUILDS as u8)
            .map(|i| (crate::Hash32([i; 32]), label("0.1.0", "linux")))
            .collect();
        assert_eq!(check_labels(&many, |_| true), Err(BuildError::TooMany));
    }
}
