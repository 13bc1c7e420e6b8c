//! "Start DAN when I log in": the arguments the desktop's log-in entry
//! starts DAN with, and which data folder an existing entry opens. There is
//! one entry per user; a person with two data folders sees which one starts.

use std::path::Path;

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

/// Whether DAN starts at log-in, and with which data folder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StartAtLogIn {
    /// The entry starts this data folder.
    pub on: bool,
    /// The entry starts DAN on another data folder (its path, or "the
    /// default data folder"): ticking the box moves it to this one.
    pub other_folder: Option<String>,
}

/// Reads the text of the log-in entry there is against the arguments this
/// DAN would write.
pub fn setting(entry: &str, expected: &[String]) -> StartAtLogIn {
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
        .map(|exec| exec.split_whitespace().skip(1).collect())
        .unwrap_or_default();
    let (mine, theirs) = (folder_of(&expected), folder_of(&written));
    if mine == theirs {
        return StartAtLogIn {
            on: true,
            other_folder: None,
        };
    }
    StartAtLogIn {
        on: false,
        other_folder: Some(theirs.unwrap_or_else(|| "the default data folder".into())),
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

    #[test]
    fn the_entry_counts_as_on_only_for_the_data_folder_it_starts() {
        let ada = entry("/usr/bin/dan-desktop --background --data-dir /home/u/ada");
        assert_eq!(
            setting(&ada, &args_for(Some("/home/u/ada"))),
            StartAtLogIn {
                on: true,
                other_folder: None
            }
        );
        assert_eq!(
            setting(&ada, &args_for(Some("/home/u/bea"))),
            StartAtLogIn {
                on: false,
                other_folder: Some("/home/u/ada".into())
            }
        );
        assert_eq!(
            setting(&ada, &args_for(None)).other_folder.as_deref(),
            Some("/home/u/ada")
        );
        let default = entry("/usr/bin/dan-desktop --background");
        assert!(setting(&default, &args_for(None)).on);
        assert_eq!(
            setting(&default, &args_for(Some("/home/u/bea")))
                .other_folder
                .as_deref(),
            Some("the default data folder")
        );
    }

    #[test]
    fn bad_input_paths_the_entry_cannot_hold_are_refused_in_words() {
        let plain = Path::new("/usr/bin/dan-desktop");
        assert_eq!(unstartable(plain, Path::new("/home/u/ada")), None);
        let spaced = unstartable(plain, Path::new("/home/u/my data"));
        assert!(spaced.is_some_and(|why| why.contains("its data folder is at /home/u/my data")));
        assert!(unstartable(Path::new("/opt/$x/dan"), Path::new("/d")).is_some());
    }
}
