//! Governance and history between instances in one process: removal of a
//! member by vote, and an instance restored from an old backup that
//! recovers its own ops from peers instead of signing a seq twice.

use std::time::Duration;

use dan_core::MemberStatus;
use dan_core::governance::ProposalStatus;
use dan_tests::PASSWORD;
use dan_tests::nodes::{TestNode, converged, eventually, spawn_network};

const SYNC: Duration = Duration::from_millis(300);

async fn status_of(node: &TestNode, peer: &dan_core::PeerKey) -> Option<MemberStatus> {
    node.node
        .members()
        .await
        .ok()?
        .into_iter()
        .find(|m| m.peer_id == *peer)
        .map(|m| m.status)
}

/// That `node` holds no evidence (nobody equivocated) and still counts
/// `restored` as a member.
async fn no_equivocation_and_still_a_member(
    node: &TestNode,
    restored: &dan_core::PeerKey,
) -> anyhow::Result<()> {
    let evidence = node.node.evidence().await?;
    assert!(
        evidence.is_empty(),
        "{}: no equivocation, no evidence: {evidence:?}",
        node.name
    );
    assert_eq!(status_of(node, restored).await, Some(MemberStatus::Member));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_single_admin_a_member_is_removed_only_by_a_quorum_of_votes() -> anyhow::Result<()> {
    let nodes = spawn_network(&["alice", "bob", "carol", "dave", "erin"], 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(60)).await?;
    let erin = nodes[4].peer();
    let proposal = nodes[0].node.propose_remove(&erin, PASSWORD).await?;
    assert_eq!(
        proposal.status,
        ProposalStatus::Open,
        "one admin alone cannot remove a member"
    );
    assert_eq!(proposal.needed, 3);
    for voter in &nodes[1..3] {
        eventually(
            Duration::from_secs(30),
            "the proposal to reach the voter",
            || async {
                voter
                    .node
                    .proposals()
                    .await
                    .is_ok_and(|p| p.iter().any(|p| p.id == proposal.id))
            },
        )
        .await?;
        let result = voter.node.vote(&proposal.id, true, PASSWORD).await;
        if let Err(e) = result {
            assert!(e.to_string().contains("already decided"), "{e}");
        }
    }
    for node in &nodes[..4] {
        eventually(
            Duration::from_secs(30),
            "every member to see erin removed",
            || async { status_of(node, &erin).await == Some(MemberStatus::Removed) },
        )
        .await?;
    }
    eventually(
        Duration::from_secs(30),
        "erin to see its own removal",
        || async { status_of(&nodes[4], &erin).await == Some(MemberStatus::Removed) },
    )
    .await?;
    let refused = nodes[4].put("notes", "written after being removed").await;
    assert!(refused.is_err_and(|e| e.to_string().contains("removed")));
    // Nothing written after the removal reaches erin, by pull or gossip.
    let judged = |node: &TestNode| {
        let c = node.net().gossip_counts();
        c.forwarded + c.dropped + c.refused
    };
    let before: Vec<u64> = nodes[1..4].iter().map(judged).collect();
    let after = nodes[0]
        .put("notes", "written after erin's removal")
        .await?;
    for (node, before) in nodes[1..4].iter().zip(before) {
        eventually(
            Duration::from_secs(30),
            "the members to be sent the record by gossip",
            || async { node.node.get_record(&after).await.is_ok() && judged(node) > before },
        )
        .await?;
    }
    converged(&nodes[..4], Duration::from_secs(30)).await?;
    assert!(
        nodes[4].node.get_record(&after).await.is_err(),
        "a removed member was sent a record written after its removal"
    );
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_writes_an_instance_restored_from_backup_recovers_its_ops_and_never_equivocates()
-> anyhow::Result<()> {
    let mut nodes = spawn_network(&["alice", "bob", "carol"], 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(60)).await?;
    let backup = nodes[2].backup().await?;
    let mut lost = Vec::new();
    for n in 0..3 {
        lost.push(
            nodes[2]
                .put("notes", &format!("carol write {n}, lost by the restore"))
                .await?,
        );
    }
    converged(&nodes, Duration::from_secs(30)).await?;
    let before = nodes[2].status().await.own_seq;

    // Restored offline first: online, carol may fetch her ops back before
    // the check below could see that the restore lost them.
    nodes[2].go_offline().await?;
    nodes[2].restore(&backup).await?;
    assert!(
        nodes[2].status().await.own_seq < before,
        "the restore lost carol's last ops"
    );
    nodes[2].go_online().await?;
    let after_restore = nodes[2]
        .put("notes", "carol writes after the restore")
        .await?;
    assert!(
        nodes[2].status().await.own_seq > before,
        "the new op follows the recovered ones"
    );
    converged(&nodes, Duration::from_secs(60)).await?;
    for node in &nodes {
        for id in lost.iter().chain([&after_restore]) {
            node.node.get_record(id).await?;
        }
        no_equivocation_and_still_a_member(node, &nodes[2].peer()).await?;
    }
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

/// Before 2026-12-03 approvals (and rejections, and the approval an inviter
/// signs when a joiner asks) skipped the lost-write guard: an instance
/// restored from a backup signed an approval at a seq it had already used
/// for a lost write, which is an equivocation, and got itself deprecated.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_writes_a_restored_instance_approves_a_joiner_only_after_recovering_its_ops()
-> anyhow::Result<()> {
    let mut nodes = spawn_network(&["alice", "bob", "carol"], 3, SYNC).await?;
    let dave = TestNode::start("dave", SYNC).await?;
    let invite = nodes[0]
        .node
        .create_invite(
            dan_node::membership::InviteRequest {
                uses: Some(1),
                expires_secs: Some(600),
                label: None,
            },
            PASSWORD,
        )
        .await?;
    dave.node
        .join(&invite.invite.link, None, PASSWORD, false)
        .await?;
    eventually(
        Duration::from_secs(30),
        "dave's request to reach carol",
        || async { status_of(&nodes[2], &dave.peer()).await == Some(MemberStatus::Pending) },
    )
    .await?;
    let backup = nodes[2].backup().await?;
    for n in 0..3 {
        nodes[2]
            .put("notes", &format!("carol write {n}, lost by the restore"))
            .await?;
    }
    converged(&nodes, Duration::from_secs(30)).await?;
    let before = nodes[2].status().await.own_seq;
    nodes[2].go_offline().await?;
    nodes[2].restore(&backup).await?;
    assert!(nodes[2].status().await.own_seq < before);

    // Approving at once, before any peer said how far carol's chain goes.
    nodes[2].go_online().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match nodes[2].node.approve(&dave.peer(), PASSWORD).await {
            Ok(_) => break,
            Err(dan_node::NodeError::Recovering { .. })
                if tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    assert!(
        nodes[2].status().await.own_seq > before,
        "the approval follows the recovered ops"
    );
    eventually(
        Duration::from_secs(60),
        "dave to be admitted by alice's invite and carol's approval",
        || async { dave.status().await.state != dan_node::api::NetworkState::Pending },
    )
    .await?;
    nodes.push(dave);
    converged(&nodes, Duration::from_secs(60)).await?;
    for node in &nodes {
        no_equivocation_and_still_a_member(node, &nodes[2].peer()).await?;
    }
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}
