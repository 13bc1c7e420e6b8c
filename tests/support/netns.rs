//! A small network lab made of Linux network namespaces: one namespace per
//! host, each with a veth link into a switch namespace that holds two
//! bridges. Moving a host's link to the second bridge partitions it from
//! the hosts on the first. Everything is removed on drop. Needs the
//! privilege to create namespaces (root or CAP_NET_ADMIN).

use std::process::Command;

use anyhow::{Context, bail};

/// The lab.
pub struct Lab {
    prefix: String,
    subnet: u8,
    hosts: usize,
}

fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip`")?;
    if !output.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

impl Lab {
    /// Whether this process may create network namespaces; the reason if
    /// not.
    pub fn available() -> Result<(), String> {
        let probe = format!("danprobe{}", std::process::id());
        match ip(&["netns", "add", &probe]) {
            Ok(()) => {
                let _ = ip(&["netns", "del", &probe]);
                Ok(())
            }
            Err(e) => Err(format!("cannot create network namespaces here ({e})")),
        }
    }

    /// Creates `hosts` hosts, all on the first bridge.
    pub fn new(hosts: usize) -> anyhow::Result<Lab> {
        let id = std::process::id() % 10_000;
        let lab = Lab {
            prefix: format!("dn{id}"),
            subnet: (id % 200) as u8 + 20,
            hosts,
        };
        let sw = lab.switch();
        ip(&["netns", "add", &sw])?;
        for bridge in ["br0", "br1"] {
            ip(&["-n", &sw, "link", "add", bridge, "type", "bridge"])?;
            ip(&["-n", &sw, "link", "set", bridge, "up"])?;
        }
        for host in 0..hosts {
            let ns = lab.namespace(host);
            let (inner, outer) = (
                format!("{}v{host}", lab.prefix),
                format!("{}p{host}", lab.prefix),
            );
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &outer, "netns", &sw])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{}/24", lab.address(host)),
                "dev",
                &inner,
            ])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &sw, "link", "set", &outer, "master", "br0"])?;
            ip(&["-n", &sw, "link", "set", &outer, "up"])?;
        }
        Ok(lab)
    }

    fn switch(&self) -> String {
        format!("{}sw", self.prefix)
    }

    /// The namespace of host `host`.
    pub fn namespace(&self, host: usize) -> String {
        format!("{}h{host}", self.prefix)
    }

    /// The IPv4 address of host `host`.
    pub fn address(&self, host: usize) -> String {
        format!("10.{}.0.{}", self.subnet, host + 1)
    }

    /// Cuts `hosts` off from the others (they still reach each other).
    pub fn partition(&self, hosts: &[usize]) -> anyhow::Result<()> {
        for host in hosts {
            ip(&[
                "-n",
                &self.switch(),
                "link",
                "set",
                &format!("{}p{host}", self.prefix),
                "master",
                "br1",
            ])?;
        }
        Ok(())
    }

    /// Puts every host back on one bridge.
    pub fn heal(&self) -> anyhow::Result<()> {
        for host in 0..self.hosts {
            ip(&[
                "-n",
                &self.switch(),
                "link",
                "set",
                &format!("{}p{host}", self.prefix),
                "master",
                "br0",
            ])?;
        }
        Ok(())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for host in 0..self.hosts {
            let _ = ip(&["netns", "del", &self.namespace(host)]);
        }
        let _ = ip(&["netns", "del", &self.switch()]);
    }
}

/// How a home router maps a laptop's connections to its own address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nat {
    /// Keeps the laptop's port where it can (most home routers): hole
    /// punching can connect two laptops directly.
    KeepsPorts,
    /// A new random port for every connection (like a carrier-grade NAT):
    /// nobody can predict the port, so only a relay connects laptops.
    RandomPorts,
}

/// Homes on an internet: a relay host on an "internet" segment, and per
/// home a router doing NAT (nftables masquerade, no inbound connections)
/// with one laptop behind it, and on request a UPnP service (miniupnpd)
/// that forwards the ports its laptop asks for. Everything is removed on
/// drop.
///
/// The internet segment uses addresses of a public range (11.0.0.0/8),
/// because routers and UPnP clients refuse to map ports behind a private
/// one; the segment is a bridge inside the lab's own namespaces, with no
/// link to this machine's network, so nothing sent to them leaves it.
pub struct HomeLab {
    prefix: String,
    subnet: u8,
    homes: usize,
    upnp: Vec<std::process::Child>,
    _upnp_dir: Option<tempfile::TempDir>,
}

fn netns_exec(namespace: &str, program: &str, args: &[&str], stdin: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut child = Command::new("ip")
        .args(["netns", "exec", namespace, program])
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("running `{program}` in {namespace}"))?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{program} {} in {namespace}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

/// Creates a veth pair and puts each end, renamed, in its namespace.
fn link(
    prefix: &str,
    tag: &str,
    (a_ns, a_name): (&str, &str),
    (b_ns, b_name): (&str, &str),
) -> anyhow::Result<()> {
    let (a, b) = (format!("{prefix}{tag}a"), format!("{prefix}{tag}b"));
    ip(&["link", "add", &a, "type", "veth", "peer", "name", &b])?;
    for (end, ns, name) in [(&a, a_ns, a_name), (&b, b_ns, b_name)] {
        ip(&["link", "set", end, "netns", ns])?;
        ip(&["-n", ns, "link", "set", end, "name", name])?;
        ip(&["-n", ns, "link", "set", name, "up"])?;
    }
    Ok(())
}

/// NAT like a home router: masquerade out of `wan` (`MASQUERADE` is
/// replaced by how ports are mapped), and let in from `wan` only what
/// answers a connection made from inside, or what a port forwarded by UPnP
/// lets in (miniupnpd fills the `miniupnpd` chains). Anything else from
/// outside is dropped without an answer, as home routers do (a reset would
/// end a hole-punching attempt that a silent drop only delays).
const HOME_ROUTER_RULES: &str = r#"
table inet filter {
  chain prerouting { type nat hook prerouting priority -100; jump prerouting_miniupnpd; }
  chain postrouting {
    type nat hook postrouting priority 100;
    jump postrouting_miniupnpd
    oifname "wan" MASQUERADE
  }
  chain forward {
    type filter hook forward priority 0; policy drop;
    ct state established,related accept
    iifname "lan" accept
    jump miniupnpd
  }
  chain input {
    type filter hook input priority 0; policy accept;
    iifname "wan" ct state new drop
  }
  chain miniupnpd { }
  chain prerouting_miniupnpd { }
  chain postrouting_miniupnpd { }
}
"#;

/// miniupnpd on a home router: UPnP IGD and NAT-PMP for the laptops on
/// `lan`, forwarding ports of `wan`.
const UPNP_CONFIG: &str = "ext_ifname=wan
listening_ip=lan
http_port=0
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
uuid=UUID
allow 1024-65535 192.168.0.0/16 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
";

impl HomeLab {
    /// Creates the internet segment, the relay host and `homes` homes
    /// whose routers map ports as `nat` says.
    pub fn new(homes: usize, nat: Nat) -> anyhow::Result<HomeLab> {
        HomeLab::build(homes, nat, false)
    }

    /// Whether the UPnP service of the routers can run here; why not if it
    /// cannot.
    pub fn upnp_available() -> Result<(), String> {
        match Command::new("miniupnpd").arg("--version").output() {
            Ok(_) => Ok(()),
            Err(e) => Err(format!(
                "miniupnpd is not installed ({e}); scripts/setup.sh installs it"
            )),
        }
    }

    /// Like [`HomeLab::new`], with routers that forward the ports their
    /// laptop asks for (UPnP IGD, NAT-PMP).
    pub fn with_upnp(homes: usize, nat: Nat) -> anyhow::Result<HomeLab> {
        HomeLab::build(homes, nat, true)
    }

    fn build(homes: usize, nat: Nat, upnp: bool) -> anyhow::Result<HomeLab> {
        // Tests of one process run in parallel under `cargo test`: each
        // lab gets its own names.
        static LABS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let lab_no = LABS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % 10;
        let rules = HOME_ROUTER_RULES.replace(
            "MASQUERADE",
            match nat {
                Nat::KeepsPorts => "masquerade",
                Nat::RandomPorts => "masquerade random",
            },
        );
        let id = std::process::id() % 10_000;
        let mut lab = HomeLab {
            prefix: format!("dh{id}{lab_no}"),
            subnet: ((id * 10 + lab_no) % 200) as u8 + 20,
            homes,
            upnp: Vec::new(),
            _upnp_dir: None,
        };
        let internet = lab.internet();
        ip(&["netns", "add", &internet])?;
        ip(&["-n", &internet, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &internet, "link", "set", "br0", "up"])?;
        let relay = lab.relay_host();
        ip(&["netns", "add", &relay])?;
        ip(&["-n", &relay, "link", "set", "lo", "up"])?;
        link(&lab.prefix, "x", (&relay, "eth0"), (&internet, "relay"))?;
        ip(&["-n", &internet, "link", "set", "relay", "master", "br0"])?;
        ip(&[
            "-n",
            &relay,
            "addr",
            "add",
            &format!("{}/24", lab.relay_address()),
            "dev",
            "eth0",
        ])?;
        for home in 0..homes {
            let (router, laptop) = (lab.router(home), lab.laptop(home));
            for ns in [&router, &laptop] {
                ip(&["netns", "add", ns])?;
                ip(&["-n", ns, "link", "set", "lo", "up"])?;
            }
            let port = format!("home{home}");
            link(
                &lab.prefix,
                &format!("w{home}"),
                (&router, "wan"),
                (&internet, &port),
            )?;
            ip(&["-n", &internet, "link", "set", &port, "master", "br0"])?;
            link(
                &lab.prefix,
                &format!("l{home}"),
                (&router, "lan"),
                (&laptop, "eth0"),
            )?;
            let wan = format!("{}/24", lab.router_address(home));
            ip(&["-n", &router, "addr", "add", &wan, "dev", "wan"])?;
            ip(&[
                "-n",
                &router,
                "addr",
                "add",
                &format!("192.168.{}.1/24", home + 1),
                "dev",
                "lan",
            ])?;
            ip(&[
                "-n",
                &laptop,
                "addr",
                "add",
                &format!("{}/24", lab.laptop_address(home)),
                "dev",
                "eth0",
            ])?;
            ip(&[
                "-n",
                &laptop,
                "route",
                "add",
                "default",
                "via",
                &format!("192.168.{}.1", home + 1),
            ])?;
            netns_exec(
                &router,
                "sysctl",
                &["-q", "-w", "net.ipv4.ip_forward=1"],
                "",
            )?;
            netns_exec(&router, "nft", &["-f", "-"], &rules)?;
        }
        if upnp {
            lab.start_upnp()?;
        }
        Ok(lab)
    }

    /// Runs miniupnpd on every router.
    fn start_upnp(&mut self) -> anyhow::Result<()> {
        let dir = tempfile::Builder::new().prefix("dan-upnp-").tempdir()?;
        for home in 0..self.homes {
            let config = dir.path().join(format!("router{home}.conf"));
            std::fs::write(
                &config,
                UPNP_CONFIG.replace(
                    "UUID",
                    &format!("3d3cec3a-8cf0-11e0-98ee-00000000000{home}"),
                ),
            )?;
            let pid = dir.path().join(format!("router{home}.pid"));
            let log = std::fs::File::create(dir.path().join(format!("router{home}.log")))?;
            let child = Command::new("ip")
                .args(["netns", "exec", &self.router(home), "miniupnpd", "-d", "-f"])
                .arg(&config)
                .arg("-P")
                .arg(&pid)
                .stdout(std::process::Stdio::null())
                .stderr(log)
                .spawn()
                .context("starting miniupnpd")?;
            self.upnp.push(child);
        }
        self._upnp_dir = Some(dir);
        Ok(())
    }

    /// The public address of the router of home `home`.
    pub fn router_address(&self, home: usize) -> String {
        format!("11.{}.0.{}", self.subnet, home + 11)
    }

    fn internet(&self) -> String {
        format!("{}net", self.prefix)
    }

    /// The namespace of the relay host on the internet segment.
    pub fn relay_host(&self) -> String {
        format!("{}rel", self.prefix)
    }

    /// The relay host's address.
    pub fn relay_address(&self) -> String {
        format!("11.{}.0.100", self.subnet)
    }

    fn router(&self, home: usize) -> String {
        format!("{}r{home}", self.prefix)
    }

    /// The namespace of the laptop in home `home`.
    pub fn laptop(&self, home: usize) -> String {
        format!("{}l{home}", self.prefix)
    }

    /// The laptop's address on its home network.
    pub fn laptop_address(&self, home: usize) -> String {
        format!("192.168.{}.2", home + 1)
    }
}

impl Drop for HomeLab {
    fn drop(&mut self) {
        for mut upnp in self.upnp.drain(..) {
            let _ = upnp.kill();
            let _ = upnp.wait();
        }
        for home in 0..self.homes {
            let _ = ip(&["netns", "del", &self.laptop(home)]);
            let _ = ip(&["netns", "del", &self.router(home)]);
        }
        let _ = ip(&["netns", "del", &self.relay_host()]);
        let _ = ip(&["netns", "del", &self.internet()]);
    }
}
