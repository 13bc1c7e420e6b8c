//! The OS keyring cache of the unlock key, against a real Secret Service
//! (GNOME Keyring on a private D-Bus session started by the test).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dan_tests::{Instance, wait_until};

/// A private D-Bus session bus with an unlocked GNOME Keyring on it.
struct SecretService {
    bus: Child,
    keyring: Child,
    address: String,
    home: tempfile::TempDir,
}

impl SecretService {
    fn start() -> anyhow::Result<SecretService> {
        let home = tempfile::tempdir()?;
        let mut bus = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()?;
        let mut address = String::new();
        if let Some(stdout) = bus.stdout.take() {
            BufReader::new(stdout).read_line(&mut address)?;
        }
        let address = address.trim().to_owned();
        anyhow::ensure!(!address.is_empty(), "dbus-daemon printed no address");
        let mut keyring = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .env("HOME", home.path())
            .env("XDG_DATA_HOME", home.path())
            .env("XDG_RUNTIME_DIR", home.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        if let Some(mut stdin) = keyring.stdin.take() {
            stdin.write_all(b"test keyring password")?;
        }
        let service = SecretService {
            bus,
            keyring,
            address,
            home,
        };
        wait_until(
            Duration::from_secs(20),
            "the Secret Service on the bus",
            || service.is_up(),
        )?;
        Ok(service)
    }

    fn is_up(&self) -> bool {
        Command::new("dbus-send")
            .args([
                "--session",
                "--dest=org.freedesktop.DBus",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
                "string:org.freedesktop.secrets",
            ])
            .env("DBUS_SESSION_BUS_ADDRESS", &self.address)
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("boolean true"))
    }

    fn attach(&self, instance: &mut Instance) {
        instance.set_env("DBUS_SESSION_BUS_ADDRESS", &self.address);
        instance.set_env("HOME", &self.home.path().to_string_lossy());
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.keyring, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn keyring_caches_the_unlock_key_so_a_restart_needs_no_password() -> anyhow::Result<()> {
    let service = SecretService::start()?;
    let mut instance = Instance::init("laptop")?;
    service.attach(&mut instance);

    instance.start_with(instance.command(&[
        "run",
        "--no-mdns",
        "--no-upnp",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]))?;
    instance.stop()?;
    assert!(
        instance
            .log()
            .contains("cached the unlock key in the OS keyring"),
        "{}",
        instance.log()
    );

    let mut without_password = instance.command(&[
        "run",
        "--no-mdns",
        "--no-upnp",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
    ]);
    without_password.env_remove("DAN_ADMIN_PASSWORD");
    instance.start_with(without_password)?;
    assert!(
        instance
            .log()
            .contains("unlocked with the key cached in the OS keyring"),
        "{}",
        instance.log()
    );
    assert_eq!(instance.json(&["status"])?["name"], "laptop");
    instance.stop()?;

    let mut no_keyring = instance.command(&["run", "--no-keyring", "--no-upnp"]);
    no_keyring.env_remove("DAN_ADMIN_PASSWORD");
    let output = no_keyring.output()?;
    assert!(
        !output.status.success(),
        "without keyring and password the instance must not start"
    );
    assert!(String::from_utf8_lossy(&output.stderr).contains("admin password is needed"));
    Ok(())
}
