//! A 3/2 network partition between five separate hosts (Linux network
//! namespaces made by the test): both sides keep writing, and after the
//! partition heals every instance converges with no acknowledged record
//! lost.

use std::time::Duration;

use dan_tests::netns::Lab;
use dan_tests::{Instance, cli_converged, cli_network_with};

fn start_in(lab: &Lab, host: usize, instance: &mut Instance) -> anyhow::Result<()> {
    let listen = format!("/ip4/{}/tcp/0", lab.address(host));
    instance.start_in_namespace(&lab.namespace(host), &listen, &[])
}

fn write(instance: &Instance, title: &str) -> anyhow::Result<String> {
    instance.ok(&["record", "put", "--collection", "notes", "--title", title])
}

#[test]
fn nothing_acknowledged_is_lost_when_five_hosts_split_three_two_write_on_both_sides_and_heal()
-> anyhow::Result<()> {
    if let Err(reason) = Lab::available() {
        eprintln!("SKIPPED: partition test needs network namespaces: {reason}");
        return Ok(());
    }
    let lab = Lab::new(5)?;
    let mut instances = cli_network_with(&["h1", "h2", "h3", "h4", "h5"], &[], |i, instance| {
        start_in(&lab, i, instance)
    })?;
    cli_converged(&instances, Duration::from_secs(60))?;

    lab.partition(&[3, 4])?;
    let mut written = Vec::new();
    for round in 0..3 {
        for (i, instance) in instances.iter().enumerate() {
            written.push(write(
                instance,
                &format!("{} during the partition, round {round}", i + 1),
            )?);
        }
    }
    cli_converged(&instances[..3], Duration::from_secs(60))?;
    cli_converged(&instances[3..], Duration::from_secs(60))?;
    let majority = instances[0].json(&["status"])?;
    let minority = instances[3].json(&["status"])?;
    assert_ne!(
        majority["ops_root"], minority["ops_root"],
        "the sides must really have been apart"
    );

    lab.heal()?;
    cli_converged(&instances, Duration::from_secs(120))?;
    for instance in &instances {
        for id in &written {
            instance.ok(&["record", "get", id]).map_err(|e| {
                anyhow::anyhow!("{} lost acknowledged record {id}: {e}", instance.name)
            })?;
        }
    }
    for instance in &mut instances {
        instance.stop()?;
    }
    Ok(())
}
