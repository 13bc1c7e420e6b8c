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
