//! The code hash: BLAKE3 of the running executable, announced to peers and
//! checked against the charter's approved hashes.

use std::sync::OnceLock;

use dan_core::CodeHash;

use crate::error::NodeError;

static CODE_HASH: OnceLock<CodeHash> = OnceLock::new();

/// BLAKE3 of the executable this process runs (computed once).
pub fn code_hash() -> Result<CodeHash, NodeError> {
    if let Some(hash) = CODE_HASH.get() {
        return Ok(*hash);
    }
    let path = std::env::current_exe().map_err(NodeError::io("finding the running executable"))?;
    let hash = hash_file(&path)?;
    Ok(*CODE_HASH.get_or_init(|| hash))
}

/// BLAKE3 of a file (e.g. another build, to approve it in the charter).
pub fn hash_file(path: &std::path::Path) -> Result<CodeHash, NodeError> {
    let context = || format!("reading {}", path.display());
    let file = std::fs::File::open(path).map_err(NodeError::io(context()))?;
    let mut hasher = blake3::Hasher::new();
    hasher
        .update_reader(file)
        .map_err(NodeError::io(context()))?;
    Ok(dan_core::Hash32(*hasher.finalize().as_bytes()))
}
