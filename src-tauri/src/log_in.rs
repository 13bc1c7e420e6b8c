//! "Start DAN when I log in": the arguments the desktop's log-in entry
//! starts DAN with, and which data folder an existing entry opens. There is
//! one entry per user; a person with two data folders sees which one starts.

use std::path::{Path, PathBuf};

use serde::Serialize;

/// The argument DAN is started with at log-in: the instance runs and the
/// window stays hidden.
pub const BACKGROUND_ARG: &str = "--background";

/// The arguments the log-in entry starts this DAN with: in the background,
/// on the data folder it runs on now (named only when it was chosen, so the
/// default folder stays the default).
pub fn args(data_dir: &Path) -> Vec<String> {
    let mut args = vec![BACKGROUND_ARG.to_owned()];
    if std::env::args_os().any(|a| a == "--data-dir") || std::env::var_os("DAN_DATA_DIR").is_some()
    {
        args.push("--data-dir".into());
        args.push(data_dir.to_string_lossy().into_owned());
    }
    args
}

/// The program the log-in entry starts: the AppImage file when DAN runs
/// from one (`appimage`, as Tauri found it: what the entry names, not the
/// copy mounted from it), this executable otherwise.
pub fn program(appimage: Option<PathBuf>) -> std::io::Result<PathBuf> {
    let exe = tauri::utils::platform::current_exe()?;
    let exe = std::fs::canonicalize(&exe).unwrap_or(exe);
    let mounted_at = std::env::var_os("APPDIR")
        .map(PathBuf::from)
        .map(|dir| std::fs::canonicalize(&dir).unwrap_or(dir));
    Ok(program_of(exe, appimage, mounted_at.as_deref()))
}

/// [`program`] from what it is told: `APPIMAGE` is believed only when this
/// executable runs from inside the AppImage's mount (`APPDIR`) and names a
/// file. A DAN from a package started by another AppImage (a terminal, a
/// file manager) inherits that one's `APPIMAGE`, and would otherwise write
/// that program into the log-in entry.
fn program_of(exe: PathBuf, appimage: Option<PathBuf>, mounted_at: Option<&Path>) -> PathBuf {
    match (appimage, mounted_at) {
        (Some(appimage), Some(mounted_at))
            if cfg!(target_os = "linux") && exe.starts_with(mounted_at) && appimage.is_file() =>
        {
            appimage
        }
        _ => exe,
    }
}

/// Whether DAN starts at log-in, and with which program and data folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StartAtLogIn {
    /// The entry starts this program on this data folder.
    pub on: bool,
    /// The entry starts DAN on another data folder (its path, or "the
    /// default data folder"): ticking the box moves it to this one.
    pub other_folder: Option<String>,
    /// The entry starts another copy of DAN (its path): ticking the box
    /// moves it to this one.
    pub other_app: Option<String>,
}

/// Reads the text of the log-in entry there is against the program and
/// arguments this DAN would write.
pub fn setting(entry: &str, program: &Path, expected: &[String]) -> StartAtLogIn {
    let folder_of = |args: &[&str]| {
        args.iter()
            .position(|a| *a == "--data-dir")
            .and_then(|at| args.get(at + 1))
            .map(|dir| (*dir).to_owned())
    };
    let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
    let written: Vec<&str> = entry
        .lines()
        .find_map(|line| line.strip_prefix("Exec="))
        .map(|exec| exec.split_whitespace().collect())
        .unwrap_or_default();
    let (started, written) = written
        .split_first()
        .map_or(("", &[][..]), |(p, a)| (*p, a));
    let (mine, theirs) = (folder_of(&expected), folder_of(written));
    let other_folder =
        (mine != theirs).then(|| theirs.unwrap_or_else(|| "the default data folder".into()));
    let other_app = (Path::new(started) != program).then(|| started.to_owned());
    StartAtLogIn {
        on: other_folder.is_none() && other_app.is_none(),
        other_folder,
        other_app,
    }
}

/// Why a log-in entry would not start this DAN, if it would not: the
/// desktop entry's command line is written unquoted, so the app's path and
/// its data directory must be plain.
pub fn unstartable(exe: &Path, data_dir: &Path) -> Option<String> {
    let plain = |path: &Path| {
        path.to_str().is_some_and(|p| {
            !p.chars()
                .any(|c| c.is_whitespace() || c.is_control() || "\"'`$\\%;&|<>()".contains(c))
        })
    };
    [("DAN", exe), ("its data folder", data_dir)]
        .into_iter()
        .find(|(_, path)| !plain(path))
        .map(|(what, path)| {
            format!(
                "{what} is at {}, a path with spaces or special characters that the desktop's log-in list cannot hold; move it to a plain path to start DAN at log-in",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(exec: &str) -> String {
        format!("[Desktop Entry]\nType=Application\nName=DAN\nExec={exec}\nTerminal=false")
    }

    fn args_for(dir: Option<&str>) -> Vec<String> {
        let mut args = vec![BACKGROUND_ARG.to_owned()];
        if let Some(dir) = dir {
            args.extend(["--data-dir".to_owned(), dir.to_owned()]);
        }
        args
    }

    const APP: &str = "/usr/bin/dan-desktop";

    fn read(entry: &str, dir: Option<&str>) -> StartAtLogIn {
        setting(entry, Path::new(APP), &args_for(dir))
    }

    #[test]
    fn the_entry_counts_as_on_only_for_the_program_and_data_folder_it_starts() {
        let ada = entry("/usr/bin/dan-desktop --background --data-dir /home/u/ada");
        assert_eq!(
            read(&ada, Some("/home/u/ada")),
            StartAtLogIn {
                on: true,
                other_folder: None,
                other_app: None,
            }
        );
        assert_eq!(
            read(&ada, Some("/home/u/bea")),
            StartAtLogIn {
                on: false,
                other_folder: Some("/home/u/ada".into()),
                other_app: None,
            }
        );
        assert_eq!(
            read(&ada, None).other_folder.as_deref(),
            Some("/home/u/ada")
        );
        let default = entry("/usr/bin/dan-desktop --background");
        assert!(read(&default, None).on);
        assert_eq!(
            read(&default, Some("/home/u/bea")).other_folder.as_deref(),
            Some("the default data folder")
        );
        let old_copy = entry("/home/u/Downloads/DAN-0.1.0.AppImage --background");
        assert_eq!(
            read(&old_copy, None),
            StartAtLogIn {
                on: false,
                other_folder: None,
                other_app: Some("/home/u/Downloads/DAN-0.1.0.AppImage".into()),
            }
        );
    }

    #[test]
    fn bad_input_paths_the_entry_cannot_hold_are_refused_in_words() {
        let plain = Path::new("/usr/bin/dan-desktop");
        assert_eq!(unstartable(plain, Path::new("/home/u/ada")), None);
        let spaced = unstartable(plain, Path::new("/home/u/my data"));
        assert!(spaced.is_some_and(|why| why.contains("its data folder is at /home/u/my data")));
        assert!(unstartable(Path::new("/opt/$x/dan"), Path::new("/d")).is_some());
        // An AppImage saved a second time by a browser.
        let appimage = Path::new("/home/u/Downloads/DAN (1).AppImage");
        assert!(
            unstartable(appimage, Path::new("/d"))
                .is_some_and(|why| why.starts_with("DAN is at /home/u/Downloads/DAN (1).AppImage"))
        );
    }

    // Second attacker review: a DAN from a package, started by another
    // AppImage, inherits that one's `APPIMAGE`; it must not write that
    // program into the log-in entry.
    #[test]
    fn bad_input_an_appimage_named_by_the_environment_counts_only_when_dan_runs_from_it() {
        let folder = tempfile::tempdir().expect("tempdir");
        let appimage = folder.path().join("DAN.AppImage");
        std::fs::write(&appimage, b"an AppImage").expect("write");
        let mounted = Path::new("/tmp/.mount_DANx1");
        let inside = mounted.join("usr/bin/dan-desktop");
        assert_eq!(
            program_of(inside.clone(), Some(appimage.clone()), Some(mounted)),
            appimage
        );
        let packaged = PathBuf::from("/usr/bin/dan-desktop");
        let terminal = Path::new("/tmp/.mount_Termy2");
        assert_eq!(
            program_of(packaged.clone(), Some(appimage.clone()), Some(terminal)),
            packaged
        );
        assert_eq!(program_of(packaged.clone(), Some(appimage), None), packaged);
        assert_eq!(
            program_of(
                inside.clone(),
                Some(folder.path().join("gone")),
                Some(mounted)
            ),
            inside
        );
    }
}
