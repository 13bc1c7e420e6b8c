//! Real `dan` processes in temporary data directories, driven through the
//! CLI exactly as an admin or a script would.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::Value;

/// The admin password every test instance uses.
pub const PASSWORD: &str = "test-admin-password";

/// The `dan` executable built alongside these tests (or `$DAN_BIN`).
pub fn dan_bin() -> PathBuf {
    if let Some(path) = std::env::var_os("DAN_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    // target/<profile>/deps/<test binary> → target/<profile>/dan
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new("."));
    profile_dir.join(format!("dan{}", std::env::consts::EXE_SUFFIX))
}

/// Polls `condition` every 50 ms until it holds or `timeout` passes.
pub fn wait_until(
    timeout: Duration,
    what: &str,
    mut condition: impl FnMut() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One `dan` instance: a data directory and, while running, its process.
pub struct Instance {
    /// The instance's name.
    pub name: String,
    dir: tempfile::TempDir,
    bin: PathBuf,
    child: Option<Child>,
    env: Vec<(String, String)>,
}

impl Instance {
    /// `dan init` in a fresh temporary directory.
    pub fn init(name: &str) -> anyhow::Result<Instance> {
        let instance = Instance {
            name: name.to_owned(),
            dir: tempfile::Builder::new().prefix("dan-test-").tempdir()?,
            bin: dan_bin(),
            child: None,
            env: Vec::new(),
        };
        instance.ok(&["init", "--name", name])?;
        Ok(instance)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.dir.path()
    }

    /// The SQLite file.
    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("dan.db")
    }

    /// Sets an environment variable for every later command of this
    /// instance (e.g. a test's own D-Bus session).
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// A `dan` command for this instance, with the admin password set.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.bin);
        command
            .arg("--data-dir")
            .arg(self.dir.path())
            .args(args)
            .env("DAN_ADMIN_PASSWORD", PASSWORD)
            .env_remove("DAN_DATA_DIR")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null());
        command
    }

    /// Runs a command to completion.
    pub fn run(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command(args)
            .output()
            .with_context(|| format!("running {} {args:?}", self.bin.display()))
    }

    /// Runs a command that must succeed; returns its stdout.
    pub fn ok(&self, args: &[&str]) -> anyhow::Result<String> {
        let output = self.run(args)?;
        if !output.status.success() {
            bail!(
                "`dan {}` failed ({}): {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(String::from_utf8(output.stdout)?.trim().to_owned())
    }

    /// Runs a command with `--json` that must succeed; returns its JSON.
    pub fn json(&self, args: &[&str]) -> anyhow::Result<Value> {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let text = self.ok(&all)?;
        serde_json::from_str(&text).with_context(|| format!("parsing {text}"))
    }

    /// Where `dan run` writes its log in tests.
    fn log_path(&self) -> PathBuf {
        self.dir.path().join("run.log")
    }

    fn log_file(&self) -> anyhow::Result<std::fs::File> {
        Ok(std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())?)
    }

    /// Everything `dan run` logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Starts `dan run` and waits until it answers `dan status`.
    pub fn start(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["run", "--no-keyring"];
        args.extend_from_slice(extra);
        self.start_with(self.command(&args))
    }

    /// Starts a prepared `dan run` command and waits until it answers.
    pub fn start_with(&mut self, mut command: Command) -> anyhow::Result<()> {
        let child = command
            .stdout(Stdio::null())
            .stderr(self.log_file()?)
            .spawn()?;
        self.child = Some(child);
        let mut exited = None;
        let result = wait_until(Duration::from_secs(60), "the instance to answer", || {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                exited = Some(status);
                return true;
            }
            self.run(&["status"]).is_ok_and(|o| o.status.success())
        });
        if let Some(status) = exited {
            self.child = None;
            bail!("`dan run` exited with {status}: {}", self.log());
        }
        result
    }

    /// Starts `dan run` expecting it to fail; returns its stderr.
    pub fn start_expecting_failure(&self, extra: &[&str]) -> anyhow::Result<String> {
        let mut args = vec!["run", "--no-keyring"];
        args.extend_from_slice(extra);
        let mut child = self
            .command(&args)
            .stdout(Stdio::null())
            .stderr(self.log_file()?)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait()? {
                if status.success() {
                    bail!("`dan run` succeeded but was expected to fail");
                }
                return Ok(self.log());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                bail!("`dan run` kept running but was expected to fail");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the running process with SIGKILL (a crash).
    pub fn kill(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Stops the running process with SIGTERM and waits for a clean exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&child)?;
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        bail!("`dan run` exited with {status}: {}", self.log());
                    }
                    return Ok(());
                }
                if Instant::now() > deadline {
                    child.kill()?;
                    bail!("`dan run` did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        Ok(())
    }
}

fn terminate(child: &Child) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()?;
    if !status.success() {
        bail!("could not send SIGTERM to {}", child.id());
    }
    Ok(())
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
