//! Byzantine instances caught by evidence (invariant 4), in one process on
//! real sockets: an instance that equivocates, and one that gossips a false
//! accusation. Honest instances deprecate the offender on their own, end
//! with identical roots, and accept nothing it signs after the evidence
//! point.

use std::time::Duration;

use dan_core::{Evidence, SignedEvidence};
use dan_node::api::NetworkState;
use dan_tests::nodes::{TestNode, converged, eventually, signed_create, spawn_network};

const SYNC: Duration = Duration::from_millis(300);

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

async fn deprecated_on(node: &TestNode, offender: &dan_core::PeerKey) -> bool {
    node.node.members().await.is_ok_and(|members| {
        members
            .iter()
            .any(|m| m.peer_id == *offender && m.status == dan_core::MemberStatus::Deprecated)
    })
}

/// The offender writes a record after its deprecation; no honest instance
/// may accept it.
async fn assert_later_writes_stay_out(
    honest: &[TestNode],
    offender: &TestNode,
) -> anyhow::Result<()> {
    eventually(
        Duration::from_secs(30),
        "the offender to learn it was deprecated",
        || async { offender.status().await.state == NetworkState::Deprecated },
    )
    .await?;
    let late = offender
        .put("notes", "written by the offender after the evidence")
        .await?;
    converged(honest, Duration::from_secs(30)).await?;
    // Give replication several rounds to (wrongly) carry it.
    tokio::time::sleep(SYNC * 10).await;
    for node in honest {
        assert!(
            node.node.get_record(&late).await.is_err(),
            "{} accepted a record of the deprecated instance",
            node.name
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deprecation_an_instance_that_equivocates_is_deprecated_by_every_honest_instance()
-> anyhow::Result<()> {
    let nodes = spawn_network(&["alice", "bob", "carol", "dave", "mallory"], 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(60)).await?;
    let (honest, mallory) = nodes.split_at(4);
    let mallory = &mallory[0];
    let key = mallory.unsealed_keypair().await?;
    let tip = mallory
        .node
        .chain_tip(&mallory.peer())
        .await
        .ok_or_else(|| anyhow::anyhow!("no chain"))?;
    let sign = |title: &str| signed_create(&key, tip, title);
    let (first, second) = (sign("version one"), sign("version two"));
    honest[0]
        .node
        .ingest_remote(vec![first.bytes().to_vec()])
        .await?;
    honest[1]
        .node
        .ingest_remote(vec![second.bytes().to_vec()])
        .await?;

    for node in honest {
        eventually(
            Duration::from_secs(30),
            "every honest instance to deprecate mallory",
            || async { deprecated_on(node, &mallory.peer()).await },
        )
        .await?;
    }
    converged(honest, Duration::from_secs(30)).await?;
    for node in honest {
        for id in ["version-one", "version-two"] {
            assert!(
                node.node.get_record(id).await.is_err(),
                "{} kept an equivocating op",
                node.name
            );
        }
        let evidence = node.node.evidence().await?;
        assert!(
            evidence
                .iter()
                .any(|e| e.status == "proven" && e.reason.contains("two different ops"))
        );
    }
    assert_later_writes_stay_out(honest, mallory).await?;
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn deprecation_a_false_accusation_deprecates_the_accuser_not_the_accused()
-> anyhow::Result<()> {
    let nodes = spawn_network(&["alice", "bob", "carol", "dave", "mallory"], 3, SYNC).await?;
    let (_, state_root) = converged(&nodes, Duration::from_secs(60)).await?;
    let (honest, mallory) = nodes.split_at(4);
    let mallory = &mallory[0];
    let key = mallory.unsealed_keypair().await?;
    let alice_checkpoint = honest[0].node.signed_hello().await;
    assert_eq!(
        alice_checkpoint.hello.state_root,
        Some(state_root),
        "alice's checkpoint is right"
    );
    let seq = mallory.status().await.own_seq;
    let accusation = SignedEvidence::sign(
        Evidence::WrongStateRoot {
            checkpoint: alice_checkpoint.to_bytes(),
        },
        &key,
        seq,
        now_ms(),
    );
    let outcome = honest[1].node.accept_evidence(accusation).await?;
    assert!(
        matches!(
            outcome,
            dan_node::deprecation::EvidenceOutcome::Unfounded { .. }
        ),
        "{outcome:?}"
    );

    for node in honest {
        eventually(
            Duration::from_secs(30),
            "every honest instance to deprecate the accuser",
            || async { deprecated_on(node, &mallory.peer()).await },
        )
        .await?;
        assert!(
            !deprecated_on(node, &honest[0].peer()).await,
            "the accused must not be deprecated"
        );
        let status = node.status().await;
        assert_eq!(
            status.state,
            NetworkState::Active,
            "{}: {:?}",
            node.name,
            status.deprecation
        );
    }
    converged(honest, Duration::from_secs(30)).await?;
    assert_later_writes_stay_out(honest, mallory).await?;
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}
