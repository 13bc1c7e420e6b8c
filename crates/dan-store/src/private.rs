//! Files and folders only this user may read: the data directory, its
//! database, backups and archives. Another local user must not read an
//! instance's sealed key or records, nor plant a file or a link where one is
//! about to be written.
//!
//! New files are created with `O_CREAT | O_EXCL` (which never follows a
//! link) and mode 0600; a file that replaces another is written under a
//! fresh random name beside it and renamed over it (a rename replaces a
//! link, it does not write through it).

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Why a private file or folder could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PrivateFileError {
    /// The file system refused.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, with the path.
        what: String,
        /// The system's answer.
        source: std::io::Error,
    },
    /// Something other than a plain file or folder is in the way.
    #[error("{0} is a link or a special file; it is not used (remove it, or choose another path)")]
    NotPlain(PathBuf),
    /// The file is larger than anything that may be read from it.
    #[error("{path} is too large ({size} bytes; at most {limit})")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

fn io(what: &str, path: &Path) -> impl FnOnce(std::io::Error) -> PrivateFileError {
    let what = format!("{what} {}", path.display());
    move |source| PrivateFileError::Io { what, source }
}

/// Creates `dir` (and its parents) if needed and makes it 0700. A link in
/// its place is refused.
pub fn create_dir(dir: &Path) -> Result<(), PrivateFileError> {
    if std::fs::symlink_metadata(dir).is_ok_and(|m| !m.is_dir()) {
        return Err(PrivateFileError::NotPlain(dir.to_owned()));
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir).map_err(io("creating", dir))?;
    set_mode(dir, 0o700)
}

/// Creates `path`, which must not exist yet (not even as a link), as a
/// 0600 file holding `bytes`, flushed to disk.
pub fn write_new(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let mut file = create_new(path)?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io("writing", path))
}

/// Writes `bytes` to `path` as a 0600 file, whole or not at all, replacing
/// what is there (a link at `path` is replaced, not followed).
pub fn write_replacing(path: &Path, bytes: &[u8]) -> Result<(), PrivateFileError> {
    let temp = temp_beside(path)?;
    if let Err(e) = write_new(&temp, bytes) {
        let _ = std::fs::remove_file(&temp);
        return Err(e);
    }
    std::fs::rename(&temp, path).map_err(|e| {
        let _ = std::fs::remove_file(&temp);
        io("writing", path)(e)
    })
}

/// Creates `path` as a new, empty 0600 file (for SQLite to write into).
pub fn create_empty(path: &Path) -> Result<(), PrivateFileError> {
    create_new(path).map(drop)
}

/// Makes an existing plain file (or folder) private; links are refused.
pub fn protect(path: &Path) -> Result<(), PrivateFileError> {
    let meta = std::fs::symlink_metadata(path).map_err(io("reading", path))?;
    if meta.file_type().is_symlink() {
        return Err(PrivateFileError::NotPlain(path.to_owned()));
    }
    set_mode(path, if meta.is_dir() { 0o700 } else { 0o600 })
}

/// Makes `dir` private and everything directly in it that is a plain
/// file (older versions left archives and leftovers with the umask's mode).
pub fn protect_dir_and_files(dir: &Path) -> Result<(), PrivateFileError> {
    create_dir(dir)?;
    for entry in std::fs::read_dir(dir).map_err(io("reading", dir))? {
        let entry = entry.map_err(io("reading", dir))?;
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            protect(&entry.path())?;
        }
    }
    Ok(())
}

/// Reads a plain file of at most `limit` bytes (a link, a pipe or a
/// device is refused, not read).
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, PrivateFileError> {
    let mut options = OpenOptions::new();
    options.read(true);
    // Not through a link, and without blocking on a pipe.
    #[cfg(unix)]
    options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    let file = options.open(path).map_err(io("reading", path))?;
    let meta = file.metadata().map_err(io("reading", path))?;
    if !meta.is_file() {
        return Err(PrivateFileError::NotPlain(path.to_owned()));
    }
    let size = meta.len();
    if size > limit {
        return Err(PrivateFileError::TooLarge {
            path: path.to_owned(),
            size,
            limit,
        });
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io("reading", path))?;
    Ok(bytes)
}

fn create_new(path: &Path) -> Result<File, PrivateFileError> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    options.open(path).map_err(io("creating", path))
}

fn temp_beside(path: &Path) -> Result<PathBuf, PrivateFileError> {
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| PrivateFileError::Io {
        what: "drawing a temporary name".into(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    Ok(path.with_file_name(format!(".{name}.{nonce}.partial")))
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<(), PrivateFileError> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io("protecting", path))
}

#[cfg(not(unix))]
fn set_mode(_: &Path, _: u32) -> Result<(), PrivateFileError> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn new_files_and_folders_are_private() {
        let dir = tempfile::tempdir().expect("temp dir");
        let folder = dir.path().join("a/b");
        create_dir(&folder).expect("folder");
        assert_eq!(mode(&folder), 0o700);
        let file = folder.join("f");
        write_new(&file, b"x").expect("file");
        assert_eq!(mode(&file), 0o600);
        write_replacing(&file, b"y").expect("replace");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(std::fs::read(&file).expect("read"), b"y");
    }

    #[test]
    fn a_planted_link_is_never_written_through() {
        let dir = tempfile::tempdir().expect("temp dir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").expect("victim");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&victim, &link).expect("link");
        assert!(write_new(&link, b"evil").is_err());
        assert!(create_empty(&link).is_err());
        assert!(matches!(protect(&link), Err(PrivateFileError::NotPlain(_))));
        assert!(read_bounded(&link, 100).is_err());
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 100),
            Err(PrivateFileError::NotPlain(_))
        ));
        write_replacing(&link, b"new").expect("replace the link");
        assert_eq!(std::fs::read(&victim).expect("victim"), b"keep");
        assert!(
            !std::fs::symlink_metadata(&link)
                .expect("meta")
                .file_type()
                .is_symlink()
        );
        let folder_link = dir.path().join("folder-link");
        std::os::unix::fs::symlink(dir.path(), &folder_link).expect("link");
        assert!(matches!(
            create_dir(&folder_link),
            Err(PrivateFileError::NotPlain(_))
        ));
    }

    #[test]
    fn reads_are_bounded() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("f");
        write_new(&file, &[0; 10]).expect("file");
        assert_eq!(read_bounded(&file, 10).expect("read").len(), 10);
        assert!(matches!(
            read_bounded(&file, 9),
            Err(PrivateFileError::TooLarge { size: 10, .. })
        ));
    }
}
