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

/// A copy of the `dan` executable with one byte appended: another build,
/// with another code hash. Lives as long as the returned directory.
pub fn modified_dan_bin() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    modified_copy(&dan_bin())
}

/// A copy of the executable `original` with one byte appended (another
/// build, another code hash). Lives as long as the returned directory.
pub fn modified_copy(original: &Path) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    modified_copy_with(original, &[0])
}

/// A copy of `original` with `suffix` appended: another build of it (each
/// suffix gives another code hash).
pub fn modified_copy_with(
    original: &Path,
    suffix: &[u8],
) -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let name = original
        .file_name()
        .map_or_else(|| "program".into(), |n| n.to_string_lossy().into_owned());
    let path = dir.path().join(format!("{name}-modified"));
    let mut bytes = std::fs::read(original)?;
    bytes.extend_from_slice(suffix);
    std::fs::write(&path, bytes)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok((dir, path))
}

/// Forms a network of `names.len()` running instances through the CLI:
/// the first creates it (with `create_args`), each next one joins with an
/// invite from the first and is approved by the other members.
pub fn cli_network(names: &[&str], create_args: &[&str]) -> anyhow::Result<Vec<Instance>> {
    cli_network_with(names, create_args, |_, instance| {
        instance.start_networked(&[])
    })
}

/// Like [`cli_network`], with each instance started by `start` (given its
/// index), e.g. inside its own network namespace.
pub fn cli_network_with(
    names: &[&str],
    create_args: &[&str],
    mut start: impl FnMut(usize, &mut Instance) -> anyhow::Result<()>,
) -> anyhow::Result<Vec<Instance>> {
    let mut instances = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut instance = Instance::init(name)?;
        start(i, &mut instance)?;
        instances.push(instance);
    }
    let mut create = vec!["network", "create", "--name", "Test network"];
    create.extend_from_slice(create_args);
    instances[0].ok(&create)?;
    for i in 1..instances.len() {
        let link = instances[0].invite(&[])?;
        instances[i].ok(&["join", &link, "--no-wait"])?;
        let peer = instances[i].peer_id()?;
        for member in &instances[1..i] {
            wait_until(
                Duration::from_secs(30),
                "the join request to reach every member",
                || {
                    member.json(&["members"]).is_ok_and(|m| {
                        m.as_array()
                            .is_some_and(|rows| rows.iter().any(|r| r["peer_id"] == peer.as_str()))
                    })
                },
            )?;
            let output = member.run(&["approve", &peer])?;
            let stderr = String::from_utf8_lossy(&output.stderr);
            if !output.status.success() && !stderr.contains("already a member") {
                bail!("approve failed: {stderr}");
            }
        }
        wait_until(Duration::from_secs(60), "the joiner to be admitted", || {
            instances[i]
                .json(&["status"])
                .is_ok_and(|s| s["state"] != "pending")
        })?;
    }
    Ok(instances)
}

/// Waits until every instance reports the same ops root and state root.
pub fn cli_converged(instances: &[Instance], timeout: Duration) -> anyhow::Result<Value> {
    let mut last = Vec::new();
    let result = wait_until(timeout, "every instance to reach the same roots", || {
        last = instances
            .iter()
            .map(|i| {
                i.json(&["status"])
                    .map(|s| {
                        (
                            s["ops_root"].clone(),
                            s["state_root"].clone(),
                            s["op_count"].clone(),
                        )
                    })
                    .unwrap_or_default()
            })
            .collect();
        !last[0].0.is_null() && last.windows(2).all(|w| w[0] == w[1])
    });
    match result {
        Ok(()) => Ok(last[0].1.clone()),
        Err(e) => bail!("{e}: {last:?}"),
    }
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
        Self::init_with_bin(name, dan_bin())
    }

    /// `dan init` with another build of `dan` (e.g. a modified copy).
    pub fn init_with_bin(name: &str, bin: PathBuf) -> anyhow::Result<Instance> {
        let instance = Instance {
            name: name.to_owned(),
            dir: tempfile::Builder::new().prefix("dan-test-").tempdir()?,
            bin,
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

    /// `dan run` with mDNS and UPnP off and loopback only (tests never
    /// send traffic beyond this machine), then `extra`.
    fn run_command(&self, extra: &[&str]) -> Command {
        let mut args = vec![
            "run",
            "--no-keyring",
            "--no-mdns",
            "--no-upnp",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
        ];
        args.extend_from_slice(extra);
        self.command(&args)
    }

    /// Starts `dan run` inside the network namespace `namespace`,
    /// listening on `listen`, reconciling every second, with `extra`
    /// arguments, and waits until it answers. UPnP stays on: inside the
    /// lab it asks only the lab's own routers.
    pub fn start_in_namespace(
        &mut self,
        namespace: &str,
        listen: &str,
        extra: &[&str],
    ) -> anyhow::Result<()> {
        let mut command = Command::new("ip");
        command
            .args(["netns", "exec", namespace])
            .arg(&self.bin)
            .arg("--data-dir")
            .arg(self.dir.path())
            .args([
                "run",
                "--no-keyring",
                "--no-mdns",
                "--sync-interval",
                "1",
                "--listen",
                listen,
            ])
            .args(extra)
            .env("DAN_ADMIN_PASSWORD", PASSWORD);
        self.start_with(command)
    }

    /// Starts `dan run` and waits until it answers `dan status`.
    pub fn start(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        self.start_with(self.run_command(extra))
    }

    /// `dan init`, `dan run`, then `dan network create` with `min_members`.
    pub fn with_network(name: &str, network: &str, min_members: &str) -> anyhow::Result<Instance> {
        let mut instance = Instance::init(name)?;
        instance.start(&[])?;
        instance.ok(&[
            "network",
            "create",
            "--name",
            network,
            "--min-members",
            min_members,
        ])?;
        Ok(instance)
    }

    /// Starts `dan run` on 127.0.0.1 with a random port, no mDNS, and a
    /// one-second reconciliation interval.
    pub fn start_networked(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        let mut args = vec!["--sync-interval", "1"];
        args.extend_from_slice(extra);
        self.start(&args)
    }

    /// The process id of the running `dan run`, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The `dan` executable this instance runs.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Switches to another build of `dan` for the next commands.
    pub fn use_bin(&mut self, bin: PathBuf) {
        self.bin = bin;
    }

    /// This instance's peer id.
    pub fn peer_id(&self) -> anyhow::Result<String> {
        let status = self.json(&["status"])?;
        status["peer_id"]
            .as_str()
            .map(str::to_owned)
            .context("status has no peer_id")
    }

    /// `peer`'s status in this instance's member table (`member`,
    /// `pending`, `deprecated`, …), if it is listed.
    pub fn member_status(&self, peer: &str) -> Option<String> {
        self.row_field("members", peer, "status")
    }

    /// Why this instance (or `peer`) refused their connection, if it did.
    pub fn peer_refusal(&self, peer: &str) -> Option<String> {
        self.row_field("peers", peer, "refused")
    }

    /// What this instance's handshake decided about `peer`, if it met it.
    pub fn peer_verdict(&self, peer: &str) -> Option<String> {
        self.row_field("peers", peer, "verdict")
    }

    fn row_field(&self, table: &str, peer: &str, field: &str) -> Option<String> {
        let rows = self.json(&[table]).ok()?;
        let row = rows.as_array()?.iter().find(|r| r["peer_id"] == peer)?;
        row[field].as_str().map(str::to_owned)
    }

    /// A `dan invite` link from this instance.
    pub fn invite(&self, extra: &[&str]) -> anyhow::Result<String> {
        let mut args = vec!["invite"];
        args.extend_from_slice(extra);
        self.ok(&args)
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
        let mut child = self
            .run_command(extra)
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
        self.stop_within(Duration::from_secs(30))
    }

    /// [`stop`](Self::stop), waiting up to `wait` (a clean stop checks the
    /// database, which takes longer the more it holds).
    pub fn stop_within(&mut self, wait: Duration) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            terminate(&child)?;
            let deadline = Instant::now() + wait;
            loop {
                if let Some(status) = child.try_wait()? {
                    if !status.success() {
                        bail!("`dan run` exited with {status}: {}", self.log());
                    }
                    return Ok(());
                }
                if Instant::now() > deadline {
                    child.kill()?;
                    bail!("`dan run` did not stop within {wait:?} of SIGTERM");
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
    /// Stops `dan run`; with `$DAN_TEST_LOG_DIR` set, keeps its log there
    /// (as `<name>-<directory>.log`) to read after a failed run.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(keep) = std::env::var_os("DAN_TEST_LOG_DIR").filter(|d| !d.is_empty()) {
            let dir = self.dir.path().file_name().unwrap_or_default();
            let kept = PathBuf::from(keep).join(format!("{}-{}.log", self.name, dir.display()));
            let _ = std::fs::copy(self.log_path(), kept);
        }
    }
}
