//! The release manifest (`dan-release.json`): which executables make up one
//! release of DAN, by code hash, version, platform and kind.
//!
//! Packaging writes it next to the executables (`dan release-manifest`). A
//! network founded from a build listed in the manifest shipped with it
//! approves the whole release, so the desktop app and the headless `dan` of
//! one release can join each other's networks; members and proposals are
//! then shown as "DAN 0.1.0 · desktop · Linux x86-64" instead of a hash.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use dan_core::CodeHash;
use dan_core::build::{self, BuildKind, BuildLabel};
use dan_core::charter::{BuildApproval, Charter};
use serde::{Deserialize, Serialize};

use crate::code::hash_file;
use crate::error::NodeError;

/// The manifest's file name, next to the executables.
pub const MANIFEST_FILE: &str = "dan-release.json";
/// Largest manifest read, in bytes.
pub const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// Largest file hashed as a DAN executable, in bytes.
pub const MAX_EXECUTABLE_BYTES: u64 = 1 << 30;
/// Environment variable naming a manifest to use instead of the shipped one.
pub const MANIFEST_ENV: &str = "DAN_RELEASE_MANIFEST";

/// A build as people see it: what it is and whether the network approves
/// it (for members, the instance itself, proposals and invite previews).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildView {
    /// What is approved or not.
    pub code_hash: CodeHash,
    /// Version, platform and kind, where a charter or manifest says.
    pub label: Option<BuildLabel>,
    /// In words: "DAN 0.1.0 · desktop · Linux x86-64", or "an unknown build
    /// (code hash 0f7e6f79601a)".
    pub description: String,
    /// `approved`, `withdrawing` (until `approval_ends_ms`), `withdrawn`
    /// (upgrade required) or `not_approved`; none without a network.
    pub approval: Option<String>,
    /// When its approval ends, for `withdrawing`.
    pub approval_ends_ms: Option<u64>,
}

impl BuildView {
    /// `code_hash` described with `label`, judged by `charter` at `now_ms`.
    pub fn of(
        code_hash: CodeHash,
        label: Option<BuildLabel>,
        charter: Option<&Charter>,
        now_ms: u64,
    ) -> Self {
        let label = label.or_else(|| charter.and_then(|c| c.builds.get(&code_hash).cloned()));
        let approval = charter.map(|c| c.build_approval(&code_hash, now_ms));
        BuildView {
            code_hash,
            description: label.as_ref().map_or_else(
                || format!("an unknown build (code hash {})", code_hash.short()),
                BuildLabel::describe,
            ),
            label,
            approval: approval.map(|a| {
                match a {
                    BuildApproval::Approved => "approved",
                    BuildApproval::Withdrawing { .. } => "withdrawing",
                    BuildApproval::Withdrawn => "withdrawn",
                    BuildApproval::NotApproved => "not_approved",
                }
                .to_owned()
            }),
            approval_ends_ms: match approval {
                Some(BuildApproval::Withdrawing { at_ms }) => Some(at_ms),
                _ => None,
            },
        }
    }
}

/// One executable of a release.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestBuild {
    /// BLAKE3 of the executable.
    pub code_hash: CodeHash,
    /// Its version.
    pub version: String,
    /// Its platform (`linux-x86_64`).
    pub platform: String,
    /// `desktop` or `headless`.
    pub kind: BuildKind,
    /// Its file name in the release.
    pub file: String,
}

impl ManifestBuild {
    /// The label the charter keeps for it.
    pub fn label(&self) -> BuildLabel {
        BuildLabel {
            version: self.version.clone(),
            platform: self.platform.clone(),
            kind: self.kind,
        }
    }
}

/// A release: its version and its executables.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseManifest {
    /// Always `DAN`.
    pub product: String,
    /// The release version.
    pub version: String,
    /// Its executables.
    pub builds: Vec<ManifestBuild>,
}

/// The platform this program was built for, as manifests name it.
pub fn this_platform() -> String {
    format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH)
}

impl ReleaseManifest {
    /// The manifest of `executables` (kind and path), hashing each file, for
    /// this platform and `version`.
    pub fn make(version: &str, executables: &[(BuildKind, PathBuf)]) -> Result<Self, NodeError> {
        let builds = executables
            .iter()
            .map(|(kind, path)| {
                Ok(ManifestBuild {
                    code_hash: hash_file(path)?,
                    version: version.to_owned(),
                    platform: this_platform(),
                    kind: *kind,
                    file: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, NodeError>>()?;
        let manifest = ReleaseManifest {
            product: "DAN".into(),
            version: version.to_owned(),
            builds,
        };
        manifest.check()?;
        Ok(manifest)
    }

    /// Parses and checks a manifest.
    pub fn parse(text: &str) -> Result<Self, NodeError> {
        let manifest: ReleaseManifest = serde_json::from_str(text)
            .map_err(|e| NodeError::Invalid(format!("this is not a DAN release manifest: {e}")))?;
        manifest.check()?;
        Ok(manifest)
    }

    /// Reads and checks the manifest at `path`.
    pub fn read(path: &Path) -> Result<Self, NodeError> {
        use std::io::Read;
        let context = || format!("reading {}", path.display());
        let file = std::fs::File::open(path).map_err(NodeError::io(context()))?;
        let mut text = String::new();
        file.take(MAX_MANIFEST_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(NodeError::io(context()))?;
        if text.len() as u64 > MAX_MANIFEST_BYTES {
            return Err(NodeError::Invalid(format!(
                "{} is too large for a release manifest",
                path.display()
            )));
        }
        Self::parse(&text)
    }

    fn check(&self) -> Result<(), NodeError> {
        let bad = |e: build::BuildError| NodeError::Invalid(e.to_string());
        if self.product != "DAN" {
            return Err(NodeError::Invalid(
                "this is not a DAN release manifest".into(),
            ));
        }
        // Every text of a manifest is plain: it is pasted into shells and
        // shown to people.
        let plain = |text: &str| {
            !text.is_empty()
                && text.len() <= 64
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
        };
        if !plain(&self.version) || self.builds.iter().any(|b| !plain(&b.file)) {
            return Err(NodeError::Invalid(
                "a release manifest's version and file names must be plain letters, digits, `.`, `_`, `+` or `-`".into(),
            ));
        }
        let labels = self.labels();
        if labels.len() != self.builds.len() {
            return Err(NodeError::Invalid(
                "the release manifest names one executable twice".into(),
            ));
        }
        build::check_labels(&labels, |_| true).map_err(bad)
    }

    /// The builds' labels by code hash.
    pub fn labels(&self) -> BTreeMap<CodeHash, BuildLabel> {
        self.builds
            .iter()
            .map(|b| (b.code_hash, b.label()))
            .collect()
    }

    /// Writes the manifest to `path` (whole or not at all).
    pub fn write(&self, path: &Path) -> Result<(), NodeError> {
        let context = || format!("writing {}", path.display());
        let text =
            serde_json::to_string_pretty(self).map_err(|e| NodeError::Invalid(e.to_string()))?;
        // Written like a private file (never through a planted link), then
        // made readable: a manifest is published with the release.
        dan_store::private::write_replacing(path, (text + "\n").as_bytes())?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))
                .map_err(NodeError::io(context()))?;
        }
        Ok(())
    }
}

/// Builds an admin asks the network to approve: from a pasted approval
/// request or release manifest, or from a manifest or executable on disk.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuildsToApprove {
    /// The code hashes to approve.
    pub hashes: BTreeSet<CodeHash>,
    /// What they are, where the source says.
    pub labels: BTreeMap<CodeHash, BuildLabel>,
}

impl BuildsToApprove {
    /// Exactly the builds an admin was shown (by `describe_builds`), so
    /// that what is proposed is what was checked, whatever changed on disk.
    pub fn from_views(views: &[BuildView]) -> Self {
        BuildsToApprove {
            hashes: views.iter().map(|v| v.code_hash).collect(),
            labels: views
                .iter()
                .filter_map(|v| Some((v.code_hash, v.label.clone()?)))
                .collect(),
        }
    }

    /// Every build of `manifest`.
    pub fn from_manifest(manifest: &ReleaseManifest) -> Self {
        let labels = manifest.labels();
        BuildsToApprove {
            hashes: labels.keys().copied().collect(),
            labels,
        }
    }

    /// Reads `source`: the text of an approval request or manifest (it
    /// starts with `{`), or the path of a manifest or of an executable
    /// (hashed; described if `release` lists it).
    pub fn from_source(source: &str, release: Option<&ReleaseManifest>) -> Result<Self, NodeError> {
        let source = source.trim();
        if source.starts_with('{') {
            return Ok(Self::from_manifest(&ReleaseManifest::parse(source)?));
        }
        if source.is_empty() {
            return Err(NodeError::Invalid(
                "paste an approval request, or give the path of a release manifest or of a DAN executable".into(),
            ));
        }
        let path = Path::new(source);
        let meta = std::fs::symlink_metadata(path)
            .map_err(NodeError::io(format!("reading {}", path.display())))?;
        if !meta.file_type().is_file() {
            return Err(NodeError::Invalid(format!(
                "{} is not a plain file (links, folders and devices are not read)",
                path.display()
            )));
        }
        let size = meta.len();
        if size > MAX_EXECUTABLE_BYTES {
            return Err(NodeError::Invalid(format!(
                "{} is larger than any DAN program",
                path.display()
            )));
        }
        if size <= MAX_MANIFEST_BYTES
            && let Ok(manifest) = ReleaseManifest::read(path)
        {
            return Ok(Self::from_manifest(&manifest));
        }
        let hash = hash_file(path)?;
        let labels = release
            .and_then(|r| r.labels().remove(&hash))
            .map(|label| BTreeMap::from([(hash, label)]))
            .unwrap_or_default();
        Ok(BuildsToApprove {
            hashes: BTreeSet::from([hash]),
            labels,
        })
    }
}

impl ReleaseManifest {
    /// A one-build manifest: what a joiner on an unapproved build sends an
    /// admin of the network as its approval request.
    pub fn approval_request(code_hash: CodeHash, label: &BuildLabel, file: &str) -> Self {
        ReleaseManifest {
            product: "DAN".into(),
            version: label.version.clone(),
            builds: vec![ManifestBuild {
                code_hash,
                version: label.version.clone(),
                platform: label.platform.clone(),
                kind: label.kind,
                file: file.to_owned(),
            }],
        }
    }

    /// The manifest as one line of JSON (to paste).
    pub fn to_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Where the manifest shipped with `executable` may be: beside it (a release
/// folder, the AppImage), or in the package's shared folder
/// (`/usr/share/dan/` for `/usr/bin/…`).
fn shipped_paths(executable: &Path) -> Vec<PathBuf> {
    let Some(dir) = executable.parent() else {
        return Vec::new();
    };
    let mut paths = vec![dir.join(MANIFEST_FILE)];
    if let Some(prefix) = dir.parent() {
        paths.push(prefix.join("share/dan").join(MANIFEST_FILE));
        paths.push(prefix.join("lib/dan").join(MANIFEST_FILE));
    }
    paths
}

/// The manifest of the release this process belongs to: the one named by
/// `DAN_RELEASE_MANIFEST`, or the one shipped with the running executable.
/// A manifest that does not list `own` (the running build) belongs to
/// another release and is ignored.
pub fn own_release(own: &CodeHash) -> Option<ReleaseManifest> {
    let candidates = match std::env::var_os(MANIFEST_ENV) {
        Some(path) => vec![PathBuf::from(path)],
        None => std::env::current_exe()
            .map(|exe| shipped_paths(&exe))
            .unwrap_or_default(),
    };
    for path in candidates.iter().filter(|p| p.exists()) {
        match ReleaseManifest::read(path) {
            Ok(manifest) if manifest.builds.iter().any(|b| b.code_hash == *own) => {
                return Some(manifest);
            }
            Ok(_) => tracing::warn!(
                "{} does not list this executable (code hash {}); ignored",
                path.display(),
                own.short()
            ),
            Err(e) => tracing::warn!("ignoring {}: {e}", path.display()),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_hashes_its_executables_and_reads_back() -> Result<(), NodeError> {
        let dir = tempfile::tempdir().map_err(NodeError::io("tempdir"))?;
        let desktop = dir.path().join("dan-desktop");
        let headless = dir.path().join("dan");
        std::fs::write(&desktop, b"desktop build").map_err(NodeError::io("write"))?;
        std::fs::write(&headless, b"headless build").map_err(NodeError::io("write"))?;
        let manifest = ReleaseManifest::make(
            "0.1.0",
            &[
                (BuildKind::Desktop, desktop.clone()),
                (BuildKind::Headless, headless),
            ],
        )?;
        assert_eq!(manifest.builds[0].code_hash, hash_file(&desktop)?);
        assert_eq!(manifest.builds[0].file, "dan-desktop");
        let path = dir.path().join(MANIFEST_FILE);
        manifest.write(&path)?;
        assert_eq!(ReleaseManifest::read(&path)?, manifest);
        assert_eq!(manifest.labels().len(), 2);
        Ok(())
    }

    #[test]
    fn a_bad_manifest_is_refused_with_a_reason() {
        assert!(ReleaseManifest::parse("{}").is_err());
        let build = |hash: u8, version: &str| ManifestBuild {
            code_hash: dan_core::Hash32([hash; 32]),
            version: version.into(),
            platform: "linux-x86_64".into(),
            kind: BuildKind::Headless,
            file: "dan".into(),
        };
        let manifest = |builds| ReleaseManifest {
            product: "DAN".into(),
            version: "0.1.0".into(),
            builds,
        };
        let text = |m: &ReleaseManifest| serde_json::to_string(m).unwrap_or_default();
        assert!(ReleaseManifest::parse(&text(&manifest(vec![build(1, "0.1.0")]))).is_ok());
        let twice = manifest(vec![build(1, "0.1.0"), build(1, "0.1.0")]);
        assert!(ReleaseManifest::parse(&text(&twice)).is_err());
        let odd = manifest(vec![build(1, "0.1.0\u{1b}[2J")]);
        assert!(ReleaseManifest::parse(&text(&odd)).is_err());
    }
}
