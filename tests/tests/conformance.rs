//! Conformance between separate `dan run` processes (invariant 4 and the
//! upgrade path): a member on a build the network has not approved waits,
//! refused but not deprecated, until the members approve it; tampered rows
//! are caught by their hashes and deprecated everywhere while the offender
//! keeps running as a fork; a rolling upgrade moves every instance to a new build without
//! breaking the network; a deliberate fork takes the data along; a
//! repaired instance comes back only under a new key and a fresh quorum.

use std::time::Duration;

use dan_tests::{Instance, cli_converged, cli_network, modified_dan_bin, wait_until};
use serde_json::Value;

fn write(instance: &Instance, title: &str) -> anyhow::Result<String> {
    instance.ok(&["record", "put", "--collection", "notes", "--title", title])
}

/// Every honest instance shows `offender` deprecated, the offender says so
/// itself, keeps answering, and nothing it writes afterwards reaches the
/// network.
fn assert_deprecated_everywhere(instances: &[Instance], words: &str) -> anyhow::Result<()> {
    let (honest, offender) = instances.split_at(instances.len() - 1);
    let offender = &offender[0];
    let peer = offender.peer_id()?;
    for instance in honest {
        wait_until(
            Duration::from_secs(45),
            "every honest instance to deprecate the offender",
            || instance.member_status(&peer).as_deref() == Some("deprecated"),
        )?;
    }
    wait_until(
        Duration::from_secs(45),
        "the offender to know it was deprecated",
        || {
            offender.json(&["status"]).is_ok_and(|s| {
                s["state"] == "deprecated"
                    && s["deprecation"].as_str().is_some_and(|r| r.contains(words))
            })
        },
    )?;
    let late = write(offender, "written by the deprecated instance")?;
    assert!(
        offender.ok(&["record", "get", &late]).is_ok(),
        "the fork keeps working locally"
    );
    cli_converged(honest, Duration::from_secs(60))?;
    let probe = write(&honest[0], "a later honest write")?;
    cli_converged(honest, Duration::from_secs(60))?;
    for instance in honest {
        instance.ok(&["record", "get", &probe])?;
        assert!(
            instance.ok(&["record", "get", &late]).is_err(),
            "{} accepted a record of the deprecated instance",
            instance.name
        );
        let evidence = instance.json(&["evidence"])?;
        assert!(
            evidence.as_array().is_some_and(|e| e
                .iter()
                .any(|e| e["status"] == "proven" && e["offender"] == peer.as_str())),
            "{} holds no proven evidence: {evidence}",
            instance.name
        );
    }
    Ok(())
}

/// The offender (last instance), repaired and running, asks to come back
/// with `dan join`: it takes a new key, a quorum approves it, it syncs the
/// network's records (not its fork's), takes over the deprecation of its
/// old key, and what it writes reaches everyone again.
fn assert_readmitted(instances: &[Instance], deprecated_key: &str) -> anyhow::Result<()> {
    let (honest, offender) = instances.split_at(instances.len() - 1);
    let offender = &offender[0];
    wait_until(
        Duration::from_secs(30),
        "the restarted offender to learn it is still deprecated",
        || {
            offender
                .json(&["status"])
                .is_ok_and(|s| s["state"] == "deprecated")
        },
    )?;
    let link = honest[0].invite(&[])?;
    offender.ok(&["join", &link, "--no-wait"])?;
    let new_key = offender.peer_id()?;
    assert_ne!(new_key, deprecated_key, "readmission must use a new key");
    let archived = std::fs::read_dir(offender.data_dir())?
        .filter_map(Result::ok)
        .any(|e| e.file_name().to_string_lossy().starts_with("network-"));
    assert!(archived, "the fork's data is archived, not thrown away");
    for approver in &honest[1..3] {
        wait_until(
            Duration::from_secs(30),
            "the readmission request to reach the approver",
            || approver.member_status(&new_key).is_some(),
        )?;
        let output = approver.run(&["approve", &new_key])?;
        assert!(
            output.status.success()
                || String::from_utf8_lossy(&output.stderr).contains("already a member"),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    wait_until(
        Duration::from_secs(60),
        "the repaired instance to be a member again",
        || {
            offender
                .json(&["status"])
                .is_ok_and(|s| s["state"] == "active")
        },
    )?;
    let back = write(offender, "written after readmission")?;
    cli_converged(instances, Duration::from_secs(90))?;
    for instance in honest {
        instance.ok(&["record", "get", &back])?;
        assert_eq!(
            instance.member_status(deprecated_key).as_deref(),
            Some("deprecated"),
            "the old key stays deprecated on {}",
            instance.name
        );
        assert_eq!(instance.member_status(&new_key).as_deref(), Some("member"));
        let members = instance.json(&["members"])?;
        let rows = members.as_array().cloned().unwrap_or_default();
        let row = |key: &str| rows.iter().find(|r| r["peer_id"] == key).cloned();
        assert_eq!(
            row(deprecated_key).map(|r| r["succeeded_by"].clone()),
            Some(serde_json::json!(new_key)),
            "the readmitted key holds the old seat on {} (no second one)",
            instance.name
        );
        assert_eq!(
            row(&new_key).map(|r| r["succeeds"].clone()),
            Some(serde_json::json!(deprecated_key))
        );
    }
    assert_eq!(
        offender.member_status(deprecated_key).as_deref(),
        Some("deprecated"),
        "the newcomer takes over the deprecation of its old key from the network"
    );
    let listed = offender.ok(&["record", "list"])?;
    assert!(
        !listed.contains("written by the deprecated instance"),
        "a record written as a fork came back with the readmitted instance: {listed}"
    );
    Ok(())
}

#[test]
fn conformance_a_member_restarted_on_a_build_one_byte_off_waits_unapproved_is_not_deprecated_and_is_let_back_in_when_the_members_approve_it()
-> anyhow::Result<()> {
    let (_keep, modified) = modified_dan_bin()?;
    let mut instances = cli_network(&["alice", "bob", "carol", "dave", "erin"], &[])?;
    cli_converged(&instances, Duration::from_secs(60))?;
    let erin_peer = instances[4].peer_id()?;
    let erin = &mut instances[4];
    erin.stop()?;
    erin.use_bin(modified.clone());
    erin.start_networked(&[])?;
    // It says so, and its peers refuse it without calling it a tamperer:
    // its own charter told it that its build is not approved.
    wait_until(Duration::from_secs(30), "erin to say it waits", || {
        instances[4]
            .json(&["status"])
            .is_ok_and(|s| s["state"] == "unapproved" && s["build"]["approval"] == "not_approved")
    })?;
    // Every honest instance must have judged erin's new hello first: until
    // then an old gossip path could still carry an op to it.
    for honest in &instances[..4] {
        wait_until(
            Duration::from_secs(30),
            "every honest instance to refuse erin's build",
            || {
                honest
                    .peer_refusal(&erin_peer)
                    .is_some_and(|why| why.contains("has not approved yet"))
            },
        )?;
    }
    let waiting = write(&instances[0], "written while erin waits")?;
    cli_converged(&instances[..4], Duration::from_secs(60))?;
    assert!(
        instances[4].ok(&["record", "get", &waiting]).is_err(),
        "nothing flows to an instance on an unapproved build"
    );

    // The members approve the build (from its executable); erin comes back
    // by itself, under the same key, with nothing deprecated anywhere.
    let proposal = instances[0].json(&["upgrade", "add", &modified.to_string_lossy()])?;
    let id = proposal["id"].as_str().unwrap_or_default().to_owned();
    for voter in &instances[1..3] {
        wait_until(Duration::from_secs(30), "the vote to be cast", || {
            voter.run(&["vote", &id, "yes"]).is_ok_and(|o| {
                o.status.success() || String::from_utf8_lossy(&o.stderr).contains("already decided")
            })
        })?;
    }
    wait_until(Duration::from_secs(60), "erin to be let back in", || {
        instances[4]
            .json(&["status"])
            .is_ok_and(|s| s["state"] == "active")
    })?;
    cli_converged(&instances, Duration::from_secs(60))?;
    instances[4].ok(&["record", "get", &waiting])?;
    for instance in &instances {
        assert_eq!(
            instance.member_status(&erin_peer).as_deref(),
            Some("member")
        );
        assert_eq!(instance.json(&["evidence"])?, serde_json::json!([]));
    }
    for instance in &mut instances {
        instance.stop()?;
    }
    Ok(())
}

#[test]
fn deprecation_an_instance_serving_rows_edited_behind_its_back_is_deprecated_everywhere_and_readmitted_after_repair()
-> anyhow::Result<()> {
    let mut instances = cli_network(&["alice", "bob", "carol", "dave", "mallory"], &[])?;
    let edited = write(&instances[4], "original title")?;
    cli_converged(&instances, Duration::from_secs(60))?;
    let mallory = &mut instances[4];
    mallory.stop()?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let pool =
            sqlx::SqlitePool::connect(&format!("sqlite://{}", mallory.db_path().display())).await?;
        sqlx::query("UPDATE records SET title = 'forged title' WHERE id = ?1")
            .bind(&edited)
            .execute(&pool)
            .await?;
        pool.close().await;
        anyhow::Ok(())
    })?;
    mallory.start_networked(&["--serve-damaged"])?;
    let status: Value = mallory.json(&["status"])?;
    assert!(
        status["damaged_records"]
            .as_array()
            .is_some_and(|r| r.iter().any(|id| id == edited.as_str())),
        "{status}"
    );
    assert_deprecated_everywhere(&instances, "state root")?;
    for instance in &instances[..4] {
        let record = instance.json(&["record", "get", &edited])?;
        assert_eq!(record["title"], "original title");
    }

    let deprecated_key = instances[4].peer_id()?;
    let mallory = &mut instances[4];
    mallory.stop()?;
    mallory.ok(&["repair"])?;
    mallory.start_networked(&[])?;
    assert_readmitted(&instances, &deprecated_key)?;
    let record = instances[4].json(&["record", "get", &edited])?;
    assert_eq!(record["title"], "original title");
    for instance in &mut instances {
        instance.stop()?;
    }
    Ok(())
}

#[test]
fn upgrade_five_instances_move_to_a_new_build_one_by_one_without_breaking_the_network()
-> anyhow::Result<()> {
    let (_keep, build_b) = modified_dan_bin()?;
    let mut instances = cli_network(&["alice", "bob", "carol", "dave", "erin"], &[])?;
    let hash_b = instances[0].ok(&["code-hash", &build_b.to_string_lossy()])?;
    let proposal = instances[0].json(&[
        "upgrade",
        "propose",
        "--code-hash",
        &hash_b,
        "--grace",
        "25s",
    ])?;
    let id = proposal["id"].as_str().unwrap_or_default().to_owned();
    for voter in &instances[1..3] {
        wait_until(
            Duration::from_secs(30),
            "the proposal to reach the voter",
            || {
                voter.json(&["proposals"]).is_ok_and(|p| {
                    p.as_array()
                        .is_some_and(|rows| rows.iter().any(|r| r["id"] == id.as_str()))
                })
            },
        )?;
        let output = voter.run(&["vote", &id, "yes"])?;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() || stderr.contains("already decided"),
            "{stderr}"
        );
    }
    for instance in &instances {
        wait_until(
            Duration::from_secs(30),
            "every instance to see the upgrade approved",
            || {
                instance.json(&["proposals"]).is_ok_and(|p| {
                    p.as_array().is_some_and(|rows| {
                        rows.iter()
                            .any(|r| r["id"] == id.as_str() && r["status"] == "passed")
                    })
                })
            },
        )?;
    }
    let mut written = Vec::new();
    for i in 0..4 {
        written.push(write(
            &instances[(i + 1) % 5],
            &format!("before moving instance {i}"),
        )?);
        let instance = &mut instances[i];
        instance.stop()?;
        instance.use_bin(build_b.clone());
        instance.start_networked(&[])?;
        written.push(write(
            &instances[i],
            &format!("written on build B by instance {i}"),
        )?);
        cli_converged(&instances, Duration::from_secs(60))?;
    }
    let erin = instances[4].peer_id()?;
    let withdraws_at = instances[0].json(&["proposals"])?[0]["withdraws_at"]
        .as_u64()
        .unwrap_or(0);
    wait_until(
        Duration::from_secs(60),
        "the grace period to end and erin to be suspended",
        || {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            now > withdraws_at
                && instances[4]
                    .json(&["status"])
                    .is_ok_and(|s| s["state"] == "suspended")
        },
    )?;
    wait_until(
        Duration::from_secs(30),
        "the others to refuse erin as suspended",
        || instances[0].peer_verdict(&erin).as_deref() == Some("suspended"),
    )?;
    for instance in &instances {
        let members = instance.json(&["members"])?;
        assert!(
            members
                .as_array()
                .is_some_and(|m| m.iter().all(|r| r["status"] == "member")),
            "nobody is deprecated: {members}"
        );
    }
    let erin_instance = &mut instances[4];
    erin_instance.stop()?;
    erin_instance.use_bin(build_b);
    erin_instance.start_networked(&[])?;
    written.push(write(&instances[4], "erin back on build B")?);
    cli_converged(&instances, Duration::from_secs(60))?;
    for instance in &instances {
        assert_eq!(
            instance.json(&["status"])?["state"],
            "active",
            "{}",
            instance.name
        );
        for id in &written {
            instance.ok(&["record", "get", id])?;
        }
    }
    for instance in &mut instances {
        instance.stop()?;
    }
    Ok(())
}

#[test]
fn fork_three_admins_fork_with_the_data_and_the_parent_network_goes_on() -> anyhow::Result<()> {
    let mut instances = cli_network(&["alice", "bob", "carol", "dave", "erin"], &[])?;
    let shared = write(&instances[3], "written before the fork")?;
    cli_converged(&instances, Duration::from_secs(60))?;
    let parent_id = instances[0].json(&["status"])?["network_id"].clone();

    let fork = instances[0].json(&["fork", "--name", "Fork"])?;
    let link = fork["invite"].as_str().unwrap_or_default().to_owned();
    assert_eq!(fork["parent"], parent_id);
    instances[1].ok(&["join", &link, "--no-wait", "--leave-current-network"])?;
    wait_until(
        Duration::from_secs(30),
        "bob to be admitted to the fork",
        || {
            instances[1]
                .json(&["status"])
                .is_ok_and(|s| s["state"] != "pending")
        },
    )?;
    instances[2].ok(&["join", &link, "--no-wait", "--leave-current-network"])?;
    let carol = instances[2].peer_id()?;
    wait_until(
        Duration::from_secs(30),
        "carol's request to reach bob",
        || instances[1].member_status(&carol).is_some(),
    )?;
    let output = instances[1].run(&["approve", &carol])?;
    assert!(
        output.status.success()
            || String::from_utf8_lossy(&output.stderr).contains("already a member")
    );
    let fork_side = &instances[..3];
    for instance in fork_side {
        wait_until(
            Duration::from_secs(60),
            "the fork to be active everywhere",
            || {
                instance
                    .json(&["status"])
                    .is_ok_and(|s| s["state"] == "active" && s["network_id"] == fork["network_id"])
            },
        )?;
    }
    let in_fork = write(&instances[1], "written in the fork")?;
    let in_parent = write(&instances[3], "written in the parent after the fork")?;
    cli_converged(fork_side, Duration::from_secs(60))?;
    cli_converged(&instances[3..], Duration::from_secs(60))?;
    for instance in fork_side {
        instance.ok(&["record", "get", &shared])?;
        instance.ok(&["record", "get", &in_fork])?;
        assert!(instance.ok(&["record", "get", &in_parent]).is_err());
    }
    for instance in &instances[3..] {
        assert_eq!(instance.json(&["status"])?["network_id"], parent_id);
        instance.ok(&["record", "get", &in_parent])?;
        assert!(instance.ok(&["record", "get", &in_fork]).is_err());
    }
    for instance in &mut instances {
        instance.stop()?;
    }
    Ok(())
}
