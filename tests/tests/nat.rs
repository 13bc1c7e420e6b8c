//! Three laptops behind three home routers (Linux network namespaces made
//! by the test, NAT by nftables: masquerade, no inbound connections) and
//! one relay host on the "internet" segment. Through the CLI only, the
//! laptop at home 1 founds a network and invites the other two by link;
//! they join, are approved, and records written on each laptop reach the
//! other two, first through the relay; hole punching (DCUtR) then connects
//! laptops directly through their routers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use dan_tests::netns::{HomeLab, Lab, Nat};
use dan_tests::{Instance, cli_converged, cli_network_with, dan_bin, wait_until};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(90);

/// `dan relay` on the relay host; killed on drop.
struct Relay {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Relay {
    fn start(lab: &HomeLab) -> anyhow::Result<Relay> {
        let dir = tempfile::Builder::new().prefix("dan-relay-").tempdir()?;
        Relay::start_in(lab, dir)
    }

    /// Stops the relay; returns a copy of its data directory (its key),
    /// to start it again with the same address.
    fn stop(mut self) -> anyhow::Result<tempfile::TempDir> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::Builder::new().prefix("dan-relay-").tempdir()?;
        std::fs::copy(
            self._dir.path().join("relay.key"),
            dir.path().join("relay.key"),
        )?;
        Ok(dir)
    }

    fn start_in(lab: &HomeLab, dir: tempfile::TempDir) -> anyhow::Result<Relay> {
        let listen = format!("/ip4/{}/tcp/4001", lab.relay_address());
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.relay_host()])
            .arg(dan_bin())
            .arg("--data-dir")
            .arg(dir.path())
            .args(["relay", "--listen", &listen])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting `dan relay`")?;
        let stdout = child.stdout.take().context("relay stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let Some(line) = lines.next().transpose()? else {
                bail!("`dan relay` exited before printing its address");
            };
            if let Some(addr) = line.strip_prefix("relay reachable at ") {
                break addr.trim().to_owned();
            }
        };
        Ok(Relay {
            child,
            addr,
            _dir: dir,
        })
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `dan run` on the laptop of `home`, reserving a slot on the
/// relay (given with `--relay`, or for the last home set with
/// `dan relays set` once running), and waits until the relay holds it.
fn start_at_home(
    lab: &HomeLab,
    home: usize,
    relay: &str,
    instance: &mut Instance,
) -> anyhow::Result<()> {
    let set_later = home == 2;
    let extra: &[&str] = if set_later { &[] } else { &["--relay", relay] };
    instance.start_in_namespace(&lab.laptop(home), "/ip4/0.0.0.0/tcp/0", extra)?;
    if set_later {
        instance.ok(&["relays", "set", relay])?;
    }
    wait_until(WAIT, "the relay to hold a slot for the laptop", || {
        instance.json(&["status"]).is_ok_and(|s| {
            s["relays"]
                .as_array()
                .is_some_and(|r| r.len() == 1 && r[0]["reserved"] == true)
        })
    })
}

fn record_count(instance: &Instance) -> usize {
    instance
        .json(&["record", "list"])
        .ok()
        .and_then(|v| v.as_array().map(Vec::len))
        .unwrap_or(0)
}

/// Writes a record titled `title` in the collection `notes`.
fn put_note(instance: &Instance, title: &str) -> anyhow::Result<()> {
    instance.ok(&["record", "put", "--collection", "notes", "--title", title])?;
    Ok(())
}

/// How `instance` is connected to `peer` (`direct`, `relayed`, `none`).
fn connection(instance: &Instance, peer: &str) -> Option<String> {
    let rows: Value = instance.json(&["peers"]).ok()?;
    let row = rows.as_array()?.iter().find(|r| r["peer_id"] == peer)?;
    row["connection"].as_str().map(str::to_owned)
}

#[test]
fn nat_three_laptops_behind_three_home_routers_form_a_network_through_a_relay() -> anyhow::Result<()>
{
    if let Err(reason) = Lab::available() {
        eprintln!("SKIPPED: the NAT test needs network namespaces: {reason}");
        return Ok(());
    }
    let lab = HomeLab::new(3, Nat::KeepsPorts)?;
    let relay = Relay::start(&lab)?;
    assert!(
        relay.addr.contains(&lab.relay_address()) && relay.addr.contains("/p2p/"),
        "the relay prints an address to give to `dan run --relay`: {}",
        relay.addr
    );
    let started = Instant::now();
    let instances = cli_network_with(&["home1", "home2", "home3"], &[], |i, instance| {
        start_at_home(&lab, i, &relay.addr, instance)
    })?;
    cli_converged(&instances, WAIT)?;
    let formed = started.elapsed();
    for instance in &instances {
        let status = instance.json(&["status"])?;
        assert_eq!(status["state"], "active", "{status}");
        assert_ne!(
            status["reachability"], "public",
            "a laptop behind NAT that nobody can dial is not public: {status}"
        );
        assert_eq!(
            status["external_addrs"],
            serde_json::json!([]),
            "nobody can dial a laptop behind NAT straight: {status}"
        );
        let shared = status["listen_addrs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert!(
            shared
                .iter()
                .any(|a| a.as_str().is_some_and(|a| a.contains("/p2p-circuit"))),
            "the laptop listens through the relay: {status}"
        );
    }

    let written_at = Instant::now();
    for (i, instance) in instances.iter().enumerate() {
        put_note(instance, &format!("written at home {}", i + 1))?;
    }
    wait_until(WAIT, "every laptop to hold the three records", || {
        instances.iter().all(|i| record_count(i) == 3)
    })?;
    let visible = written_at.elapsed();
    cli_converged(&instances, WAIT)?;

    let peers: Vec<String> = instances
        .iter()
        .map(Instance::peer_id)
        .collect::<anyhow::Result<_>>()?;
    wait_until(
        WAIT,
        "hole punching to connect a pair of laptops directly",
        || {
            instances.iter().enumerate().any(|(i, instance)| {
                peers.iter().enumerate().any(|(j, peer)| {
                    i != j && connection(instance, peer).as_deref() == Some("direct")
                })
            })
        },
    )?;
    wait_until(WAIT, "the laptops to find out nobody can dial them", || {
        instances.iter().all(|i| {
            i.json(&["status"])
                .is_ok_and(|s| s["reachability"] == "private")
        })
    })?;
    let mut pairs = Vec::new();
    for (i, instance) in instances.iter().enumerate() {
        for (j, peer) in peers.iter().enumerate() {
            if i == j {
                continue;
            }
            let how = connection(instance, peer).unwrap_or_else(|| "unknown".into());
            assert!(
                how == "direct" || how == "relayed",
                "home {} is connected to home {}: {how}",
                i + 1,
                j + 1
            );
            pairs.push(format!("home {} → home {}: {how}", i + 1, j + 1));
        }
    }
    let reachability: Vec<String> = instances
        .iter()
        .map(|i| {
            i.json(&["status"])
                .map(|s| s["reachability"].to_string())
                .unwrap_or_default()
        })
        .collect();
    println!(
        "NAT lab: invite to active network {formed:.1?}; write to visible on all three {visible:.1?}; reachability {}; {}",
        reachability.join(" "),
        pairs.join(", ")
    );

    // The relay restarts: every laptop sees its slot lost, then held again.
    let reserved = |i: &Instance| {
        i.json(&["status"])
            .is_ok_and(|s| s["relays"][0]["reserved"] == true)
    };
    let addr = relay.addr.clone();
    let kept = relay.stop()?;
    wait_until(WAIT, "the laptops to notice the relay went away", || {
        instances.iter().all(|i| !reserved(i))
    })?;
    let relay = Relay::start_in(&lab, kept)?;
    assert_eq!(relay.addr, addr, "the same key and address");
    wait_until(
        WAIT,
        "the laptops to hold a slot on the relay again",
        || instances.iter().all(reserved),
    )?;
    drop(instances);
    drop(relay);
    drop(lab);
    Ok(())
}

#[test]
fn nat_a_first_sync_of_10k_records_through_a_relay_only_completes() -> anyhow::Result<()> {
    if let Err(reason) = Lab::available() {
        eprintln!("SKIPPED: the NAT test needs network namespaces: {reason}");
        return Ok(());
    }
    let lab = HomeLab::new(2, Nat::RandomPorts)?;
    let relay = Relay::start(&lab)?;
    let mut founder = Instance::init("home1")?;
    start_at_home(&lab, 0, &relay.addr, &mut founder)?;
    founder.ok(&[
        "network",
        "create",
        "--name",
        "Big library",
        "--min-members",
        "1",
    ])?;
    let lines: String = (0..10_000)
        .map(|n| {
            format!(
                "{{\"collection\":\"books\",\"title\":\"Book number {n:05}\",\"fields\":{{\"shelf\":\"{}\",\"pages\":{n}}}}}\n",
                n % 97
            )
        })
        .collect();
    let file = founder.data_dir().join("books.jsonl");
    std::fs::write(&file, lines)?;
    let imported = founder.json(&["record", "import", file.to_str().unwrap_or_default()])?;
    assert_eq!(imported["imported"], 10_000);

    let mut joiner = Instance::init("home2")?;
    start_at_home(&lab, 1, &relay.addr, &mut joiner)?;
    let link = founder.invite(&[])?;
    let started = Instant::now();
    joiner.ok(&["join", &link, "--no-wait"])?;
    wait_until(
        Duration::from_secs(300),
        "the new member to hold the 10k records",
        || {
            let held = founder.json(&["status"]).map(|s| s["op_count"].clone());
            joiner.json(&["status"]).is_ok_and(|s| {
                s["state"] == "active"
                    && held.as_ref().is_ok_and(|held| s["op_count"] == *held)
                    && s["op_count"].as_u64() > Some(10_000)
            })
        },
    )?;
    let synced = started.elapsed();
    let founder_peer = founder.peer_id()?;
    assert_eq!(
        connection(&joiner, &founder_peer).as_deref(),
        Some("relayed"),
        "routers that pick a new port for every connection leave only the relay"
    );
    let instances = [founder, joiner];
    cli_converged(&instances, WAIT)?;
    println!(
        "NAT lab (random ports): join and first sync of 10k records through the relay only: {synced:.1?}"
    );
    drop(instances);
    drop(relay);
    drop(lab);
    Ok(())
}

/// Whether every pair of `instances` is connected directly.
fn all_pairs(instances: &[Instance], peers: &[String], how: &str) -> bool {
    instances.iter().enumerate().all(|(i, instance)| {
        peers
            .iter()
            .enumerate()
            .all(|(j, peer)| i == j || connection(instance, peer).as_deref() == Some(how))
    })
}

#[test]
fn nat_laptops_whose_routers_forward_a_port_by_upnp_are_public_and_connect_directly()
-> anyhow::Result<()> {
    if let Err(reason) = Lab::available().and_then(|()| HomeLab::upnp_available()) {
        eprintln!("SKIPPED: the UPnP test needs network namespaces and miniupnpd: {reason}");
        return Ok(());
    }
    // Routers that pick a new port for every connection: hole punching
    // cannot connect two laptops, only a forwarded port can.
    let lab = HomeLab::with_upnp(3, Nat::RandomPorts)?;
    let relay = Relay::start(&lab)?;
    let started = Instant::now();
    let instances = cli_network_with(&["home1", "home2", "home3"], &[], |i, instance| {
        start_at_home(&lab, i, &relay.addr, instance)
    })?;
    cli_converged(&instances, WAIT)?;
    let formed = started.elapsed();
    for (home, instance) in instances.iter().enumerate() {
        let router = lab.router_address(home);
        wait_until(
            WAIT,
            "peers to confirm the port the router forwards",
            || {
                instance.json(&["status"]).is_ok_and(|s| {
                    s["reachability"] == "public"
                        && s["external_addrs"].as_array().is_some_and(|a| {
                            a.iter().any(|a| {
                                a.as_str()
                                    .is_some_and(|a| a.starts_with(&format!("/ip4/{router}/tcp/")))
                            })
                        })
                })
            },
        )?;
    }
    let public = started.elapsed();
    let peers: Vec<String> = instances
        .iter()
        .map(Instance::peer_id)
        .collect::<anyhow::Result<_>>()?;
    wait_until(WAIT, "every pair of laptops to connect directly", || {
        all_pairs(&instances, &peers, "direct")
    })?;

    // Without the relay, the laptops still reach each other.
    drop(relay);
    let written_at = Instant::now();
    for (i, instance) in instances.iter().enumerate() {
        put_note(
            instance,
            &format!("written at home {} with the relay gone", i + 1),
        )?;
    }
    wait_until(WAIT, "every laptop to hold the three records", || {
        instances.iter().all(|i| record_count(i) == 3)
    })?;
    let visible = written_at.elapsed();
    cli_converged(&instances, WAIT)?;
    assert!(
        all_pairs(&instances, &peers, "direct"),
        "the laptops stay connected directly"
    );
    println!(
        "NAT lab (UPnP, random ports): invite to active network {formed:.1?}; public at the forwarded port after {public:.1?}; write to visible on all three without the relay {visible:.1?}"
    );
    drop(instances);
    drop(lab);
    Ok(())
}

#[test]
fn nat_a_member_at_a_public_address_relays_for_the_other_members_and_for_no_one_else()
-> anyhow::Result<()> {
    if let Err(reason) = Lab::available() {
        eprintln!("SKIPPED: the NAT test needs network namespaces: {reason}");
        return Ok(());
    }
    let lab = HomeLab::new(3, Nat::RandomPorts)?;
    let server_listen = format!("/ip4/{}/tcp/4001", lab.relay_address());
    let started = Instant::now();
    // A member on the internet segment (no `dan relay` anywhere), and two
    // laptops at home that know only its invite links.
    // Two members suffice, so that one laptop can be removed at the end.
    let mut instances = cli_network_with(
        &["server", "home1", "home2"],
        &["--min-members", "2"],
        |i, instance| {
            if i == 0 {
                instance.start_in_namespace(&lab.relay_host(), &server_listen, &[])
            } else {
                instance.start_in_namespace(&lab.laptop(i - 1), "/ip4/0.0.0.0/tcp/0", &[])
            }
        },
    )?;
    cli_converged(&instances, WAIT)?;
    let formed = started.elapsed();
    let server_peer = instances[0].peer_id()?;
    let server_relay = format!("{server_listen}/p2p/{server_peer}");
    for laptop in &instances[1..] {
        wait_until(
            WAIT,
            "the member on the internet to relay for the laptop",
            || {
                laptop.json(&["status"]).is_ok_and(|s| {
                    s["relays"].as_array().is_some_and(|r| {
                        r.iter().any(|r| {
                            r["addr"] == server_relay.as_str()
                                && r["learnt"] == true
                                && r["reserved"] == true
                        })
                    })
                })
            },
        )?;
    }
    let written_at = Instant::now();
    for (i, instance) in instances.iter().enumerate() {
        put_note(instance, &format!("written by member {}", i + 1))?;
    }
    wait_until(WAIT, "every member to hold the three records", || {
        instances.iter().all(|i| record_count(i) == 3)
    })?;
    let visible = written_at.elapsed();
    let home2 = instances[2].peer_id()?;
    wait_until(
        WAIT,
        "the two laptops to connect through the member",
        || connection(&instances[1], &home2).as_deref() == Some("relayed"),
    )?;

    // A laptop restarted at home finds the network again by the addresses
    // it kept, and the member relays for it again.
    instances[1].stop()?;
    put_note(&instances[2], "written while home 1 was off")?;
    instances[1].start_in_namespace(&lab.laptop(0), "/ip4/0.0.0.0/tcp/0", &[])?;
    let restarted = Instant::now();
    wait_until(WAIT, "the restarted laptop to catch up", || {
        record_count(&instances[1]) == 4
    })?;
    wait_until(WAIT, "the restarted laptop to hold a slot again", || {
        instances[1].json(&["status"]).is_ok_and(|s| {
            s["relays"].as_array().is_some_and(|r| {
                r.iter()
                    .any(|r| r["learnt"] == true && r["reserved"] == true)
            })
        })
    })?;
    let home1 = instances[1].peer_id()?;
    wait_until(
        WAIT,
        "the other laptop to reach it through the member again",
        || connection(&instances[2], &home1).as_deref() == Some("relayed"),
    )?;
    let caught_up = restarted.elapsed();

    // A laptop that is not a member asks the same member for a slot.
    let mut stranger = Instance::init("stranger")?;
    stranger.start_in_namespace(
        &lab.laptop(2),
        "/ip4/0.0.0.0/tcp/0",
        &["--relay", &server_relay],
    )?;
    let refused = wait_until(WAIT, "the member to refuse the stranger a slot", || {
        stranger.json(&["status"]).is_ok_and(|s| {
            s["relays"][0]["error"]
                .as_str()
                .is_some_and(|e| e.contains("refused"))
        })
    });
    if let Err(e) = refused {
        bail!("{e}: {}\n{}", stranger.json(&["status"])?, stranger.log());
    }
    let status = stranger.json(&["status"])?;
    assert_eq!(status["relays"][0]["reserved"], false, "{status}");
    let told = stranger.ok(&["relays"])?;
    assert!(
        told.contains("refused a slot"),
        "`dan relays` says why: {told}"
    );
    assert!(
        !status["listen_addrs"].to_string().contains("p2p-circuit"),
        "nobody reaches the stranger through the member: {status}"
    );
    // A laptop removed by vote loses its slot on the member soon (once it
    // had the time to learn of its removal), not at its next renewal (up to
    // an hour later), and it learns of its removal.
    let proposal = instances[0].json(&["propose", "remove", &home2])?;
    let id = proposal["id"].as_str().unwrap_or_default().to_owned();
    wait_until(WAIT, "the proposal to reach the other laptop", || {
        instances[1].json(&["proposals"]).is_ok_and(|p| {
            p.as_array()
                .is_some_and(|rows| rows.iter().any(|r| r["id"] == id.as_str()))
        })
    })?;
    let voted = Instant::now();
    instances[1].ok(&["vote", &id, "yes"])?;
    let lost = wait_until(
        WAIT,
        "the removed laptop to lose its slot on the member",
        || {
            instances[2].json(&["status"]).is_ok_and(|s| {
                s["relays"]
                    .as_array()
                    .is_some_and(|r| !r.iter().any(|r| r["reserved"] == true))
            })
        },
    );
    if let Err(e) = lost {
        bail!(
            "{e}: {}\n{}\n{}\n{}",
            instances[2].json(&["status"])?["relays"],
            instances[0].json(&["proposals"])?,
            instances[0]
                .json(&["members"])?
                .as_array()
                .map(|m| m
                    .iter()
                    .map(|m| format!("{} {}", m["name"], m["status"]))
                    .collect::<Vec<_>>())
                .unwrap_or_default()
                .join(", "),
            instances[0]
                .log()
                .lines()
                .filter(|l| !l.contains("libp2p"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
    let slot_lost = voted.elapsed();
    wait_until(WAIT, "the removed laptop to learn of its removal", || {
        instances[2].json(&["members"]).is_ok_and(|m| {
            m.as_array().is_some_and(|rows| {
                rows.iter()
                    .any(|r| r["is_self"] == true && r["status"] == "removed")
            })
        })
    })?;
    println!(
        "NAT lab (a member relays): invite to active network {formed:.1?}; write to visible on all three {visible:.1?}; a restarted laptop caught up in {caught_up:.1?}; a removed laptop lost its slot {slot_lost:.1?} after the deciding vote"
    );
    drop(stranger);
    drop(instances);
    drop(lab);
    Ok(())
}
