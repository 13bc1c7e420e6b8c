//! A small AppImage (type 2) runtime, built here because the usual one (and
//! `linuxdeploy`) can only be downloaded from GitHub.
//!
//! An AppImage is this executable with a SquashFS image of the app directory
//! appended; the image starts where the ELF file ends (after its section
//! header table). At start the runtime mounts the image with the host's
//! `squashfuse` (or, without FUSE, extracts it with `unsquashfs`), runs its
//! `AppRun` with the arguments, and cleans up when it exits.
//!
//! Also understands `--appimage-offset` and `--appimage-extract`.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// Where the payload starts: the end of the ELF section header table.
fn payload_offset(exe: &Path) -> Result<u64, String> {
    let mut header = [0u8; 64];
    File::open(exe)
        .and_then(|mut f| f.read_exact(&mut header))
        .map_err(|e| format!("cannot read {}: {e}", exe.display()))?;
    if &header[..4] != b"\x7fELF" || header[4] != 2 || header[5] != 1 {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let u64_at = |at: usize| {
        let mut bytes = [0u8; 8];
        bytes.copy_from_slice(&header[at..at + 8]);
        u64::from_le_bytes(bytes)
    };
    let u16_at = |at: usize| u64::from(u16::from_le_bytes([header[at], header[at + 1]]));
    let section_headers = u64_at(0x28);
    let entry_size = u16_at(0x3A);
    let entries = u16_at(0x3C);
    Ok(section_headers + entry_size * entries)
}

/// A directory of our own under the temporary directory.
fn fresh_dir(kind: &str) -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!(".{kind}_dan_{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

fn extract(exe: &Path, offset: u64, into: &Path) -> Result<(), String> {
    let status = Command::new("unsquashfs")
        .args(["-q", "-n", "-f", "-o"])
        .arg(offset.to_string())
        .arg("-d")
        .arg(into)
        .arg(exe)
        .stdout(Stdio::null())
        .status()
        .map_err(|e| format!("unsquashfs: {e} (install squashfs-tools or squashfuse)"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("unsquashfs failed ({status})"))
    }
}

fn mount(exe: &Path, offset: u64, at: &Path) -> bool {
    Command::new("squashfuse")
        .arg("-o")
        .arg(format!("ro,offset={offset}"))
        .arg(exe)
        .arg(at)
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn unmount(at: &Path) {
    let done = ["fusermount3", "fusermount"].iter().any(|tool| {
        Command::new(tool)
            .arg("-u")
            .arg(at)
            .status()
            .is_ok_and(|s| s.success())
    });
    if !done {
        eprintln!("appimage: could not unmount {}", at.display());
    }
}

fn run_app(exe: &Path, app_dir: &Path, args: &[OsString]) -> Result<u8, String> {
    let status = Command::new(app_dir.join("AppRun"))
        .args(args)
        .env("APPIMAGE", exe)
        .env("APPDIR", app_dir)
        .env("ARGV0", std::env::args_os().next().unwrap_or_default())
        .status()
        .map_err(|e| format!("cannot start AppRun: {e}"))?;
    Ok(status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1))
}

fn run() -> Result<u8, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find myself: {e}"))?;
    let offset = payload_offset(&exe)?;
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    match args.first().and_then(|a| a.to_str()) {
        Some("--appimage-offset") => {
            println!("{offset}");
            return Ok(0);
        }
        Some("--appimage-extract") => {
            extract(&exe, offset, Path::new("squashfs-root"))?;
            println!("squashfs-root");
            return Ok(0);
        }
        _ => {}
    }
    let mount_point = fresh_dir("mount")?;
    if mount(&exe, offset, &mount_point) {
        let code = run_app(&exe, &mount_point, &args);
        unmount(&mount_point);
        let _ = std::fs::remove_dir(&mount_point);
        return code;
    }
    let _ = std::fs::remove_dir(&mount_point);
    let extracted = fresh_dir("extract")?;
    let code = extract(&exe, offset, &extracted).and_then(|()| run_app(&exe, &extracted, &args));
    let _ = std::fs::remove_dir_all(&extracted);
    code
}

fn main() -> ExitCode {
    match run() {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("appimage: {e}");
            ExitCode::FAILURE
        }
    }
}
