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
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::{Pid, geteuid};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

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

/// Where to unpack: `$XDG_RUNTIME_DIR` when it is ours and private (a
/// tmpfs only this user can enter), else the temporary directory.
fn unpack_base() -> PathBuf {
    std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| is_private_to_us(dir))
        .unwrap_or_else(std::env::temp_dir)
}

/// Whether `dir` is a real directory owned by this user that nobody else
/// may enter.
fn is_private_to_us(dir: &Path) -> bool {
    std::fs::symlink_metadata(dir).is_ok_and(|meta| {
        meta.is_dir() && meta.uid() == geteuid().as_raw() && meta.mode() & 0o077 == 0
    })
}

/// A new directory of our own under `base`: a random name, created (never
/// reused: an existing directory or link there is refused), mode 0700, and
/// checked to be ours before anything is written into it.
fn fresh_dir(base: &Path, kind: &str) -> Result<PathBuf, String> {
    for _ in 0..8 {
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| format!("no randomness: {e}"))?;
        let name: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
        let dir = base.join(format!(".{kind}_dan_{name}"));
        match create_private(&dir) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("cannot create {}: {e}", dir.display())),
            Ok(()) if is_private_to_us(&dir) => return Ok(dir),
            Ok(()) => return Err(format!("{} is not private to this user", dir.display())),
        }
    }
    Err(format!("cannot find a free name under {}", base.display()))
}

/// Creates `dir`, which must not exist yet, with mode 0700.
fn create_private(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new().mode(0o700).create(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
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

/// Signals that would end this runtime before it cleaned up. It catches
/// them for its whole life (a handler, which `exec` resets, so AppRun gets
/// them as usual) and passes termination and hang-up on to the app.
/// Interrupt is not passed on: a terminal sends it to the app directly.
struct Signals {
    /// The app while it runs and is not yet reaped (so its pid cannot
    /// have been reused).
    app: Arc<Mutex<Option<Pid>>>,
    /// Whether a termination or hang-up came before the app started.
    ended: Arc<AtomicBool>,
}

impl Signals {
    fn catch() -> Result<Self, String> {
        let mut caught = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| format!("cannot catch signals: {e}"))?;
        let app: Arc<Mutex<Option<Pid>>> = Arc::default();
        let ended: Arc<AtomicBool> = Arc::default();
        let (to_app, to_flag) = (app.clone(), ended.clone());
        std::thread::spawn(move || {
            for number in caught.forever().filter(|n| *n != SIGINT) {
                let running = to_app.lock().map(|pid| *pid).unwrap_or_default();
                match (running, Signal::try_from(number)) {
                    (Some(pid), Ok(signal)) => {
                        let _ = kill(pid, signal);
                    }
                    _ => to_flag.store(true, Ordering::SeqCst),
                }
            }
        });
        Ok(Signals { app, ended })
    }

    /// Runs `AppRun` and waits for it to exit.
    fn run_app(&self, exe: &Path, app_dir: &Path, args: &[OsString]) -> Result<u8, String> {
        if self.ended.load(Ordering::SeqCst) {
            return Err("stopped before the app started".into());
        }
        let mut child = Command::new(app_dir.join("AppRun"))
            .args(args)
            .env("APPIMAGE", exe)
            .env("APPDIR", app_dir)
            .env("ARGV0", std::env::args_os().next().unwrap_or_default())
            .spawn()
            .map_err(|e| format!("cannot start AppRun: {e}"))?;
        let pid = i32::try_from(child.id())
            .map(Pid::from_raw)
            .map_err(|e| format!("odd process id: {e}"))?;
        self.set_app(Some(pid));
        // Wait for the exit without reaping, so no signal can reach a
        // process that took the pid over; then forget the app and reap it.
        while let Err(nix::errno::Errno::EINTR) =
            waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT)
        {}
        self.set_app(None);
        let status = child.wait().map_err(|e| format!("lost AppRun: {e}"))?;
        Ok(status
            .code()
            .and_then(|c| u8::try_from(c).ok())
            .unwrap_or(1))
    }

    fn set_app(&self, pid: Option<Pid>) {
        if let Ok(mut app) = self.app.lock() {
            *app = pid;
        }
    }
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
            let into = Path::new("squashfs-root");
            if std::fs::symlink_metadata(into).is_ok() {
                return Err(
                    "squashfs-root already exists here: remove it, or extract elsewhere".into(),
                );
            }
            extract(&exe, offset, into)?;
            println!("squashfs-root");
            return Ok(0);
        }
        _ => {}
    }
    let signals = Signals::catch()?;
    let base = unpack_base();
    let mount_point = fresh_dir(&base, "mount")?;
    if mount(&exe, offset, &mount_point) {
        let code = signals.run_app(&exe, &mount_point, &args);
        unmount(&mount_point);
        let _ = std::fs::remove_dir(&mount_point);
        return code;
    }
    let _ = std::fs::remove_dir(&mount_point);
    let extracted = fresh_dir(&base, "extract")?;
    let code =
        extract(&exe, offset, &extracted).and_then(|()| signals.run_app(&exe, &extracted, &args));
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path).expect("metadata").mode() & 0o777
    }

    #[test]
    fn unpack_directories_are_new_random_and_private() {
        let base = tempfile::tempdir().expect("temp dir");
        let one = fresh_dir(base.path(), "extract").expect("first");
        let two = fresh_dir(base.path(), "extract").expect("second");
        assert_ne!(one, two, "names must not be predictable");
        assert_eq!(mode(&one), 0o700);
        assert_eq!(
            std::fs::symlink_metadata(&one).expect("meta").uid(),
            geteuid().as_raw()
        );
    }

    #[test]
    fn a_directory_or_link_made_beforehand_is_refused() {
        // Fails on e0617a0: `create_dir_all` accepted a directory another
        // user had made at the (predictable) name, and AppRun ran from it.
        let base = tempfile::tempdir().expect("temp dir");
        let planted = base.path().join(".extract_dan_1234");
        std::fs::create_dir(&planted).expect("planted dir");
        std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        let error = create_private(&planted).expect_err("a planted directory is refused");
        assert_eq!(error.kind(), std::io::ErrorKind::AlreadyExists);
        let link = base.path().join(".mount_dan_1234");
        std::os::unix::fs::symlink(base.path(), &link).expect("planted link");
        assert!(create_private(&link).is_err(), "a planted link is refused");
    }

    #[test]
    fn termination_reaches_the_app_and_the_runtime_outlives_it_to_clean_up() {
        // Fails with signals blocked in the runtime (they were inherited by
        // AppRun, which then never got them).
        let app_dir = tempfile::tempdir().expect("temp dir");
        let app_run = app_dir.path().join("AppRun");
        std::fs::write(
            &app_run,
            "#!/bin/sh\ntrap 'exit 7' TERM\necho $$ > \"$APPDIR/pid\"\nwhile true; do sleep 0.05; done\n",
        )
        .expect("AppRun");
        std::fs::set_permissions(&app_run, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let signals = Signals::catch().expect("signals");
        let dir = app_dir.path().to_owned();
        let (done, finished) = std::sync::mpsc::sync_channel(1);
        std::thread::spawn(move || {
            let _ = done.send(signals.run_app(Path::new("/bin/true"), &dir, &[]));
        });
        let pid_file = app_dir.path().join("pid");
        let started = std::time::Instant::now();
        while !pid_file.exists() {
            assert!(started.elapsed().as_secs() < 20, "AppRun did not start");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        kill(Pid::this(), Signal::SIGTERM).expect("terminate the runtime");
        let code = finished
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("the app got the termination and exited");
        assert_eq!(code, Ok(7), "the app's own exit code is returned");
    }

    #[test]
    fn a_runtime_dir_others_can_enter_is_not_used() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700))
            .expect("chmod");
        assert!(is_private_to_us(dir.path()));
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        assert!(
            !is_private_to_us(dir.path()),
            "a directory others may enter is not private"
        );
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(std::env::temp_dir(), &link).expect("link");
        assert!(!is_private_to_us(&link), "a link is not followed");
    }
}
