//! Replication between separate instances in one process, on real sockets:
//! invite → join → approvals, concurrent writes, identical roots.

use std::time::Duration;

use dan_node::api::NetworkState;
use dan_tests::nodes::{converged, eventually, spawn_network};

const SYNC: Duration = Duration::from_millis(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_single_admin_five_instances_form_a_network_and_converge_after_concurrent_writes()
-> anyhow::Result<()> {
    let nodes = spawn_network(&["alice", "bob", "carol", "dave", "erin"], 3, SYNC).await?;
    for node in &nodes {
        let status = node.status().await;
        assert_eq!(
            status.state,
            NetworkState::Active,
            "{} is {:?}",
            node.name,
            status.state
        );
        assert_eq!(status.members, 5);
    }
    let writers: Vec<_> = nodes
        .iter()
        .map(|node| {
            let (node, name) = (node.node.clone(), node.name.clone());
            tokio::spawn(async move {
                let mut ids = Vec::new();
                for n in 0..20 {
                    ids.push(put(&node, &format!("{name} note {n}")).await?);
                }
                anyhow::Ok(ids)
            })
        })
        .collect();
    let mut written = Vec::new();
    for writer in writers {
        written.extend(writer.await??);
    }
    assert_eq!(written.len(), 100);
    let (ops_root, state_root) = converged(&nodes, Duration::from_secs(60)).await?;
    for node in &nodes {
        let status = node.status().await;
        assert_eq!(status.ops_root, Some(ops_root));
        assert_eq!(status.state_root, Some(state_root));
        for id in &written {
            node.node.get_record(id).await?;
        }
    }
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_acknowledged_is_lost_writes_made_offline_reach_the_network_after_reconnecting()
-> anyhow::Result<()> {
    let mut nodes = spawn_network(&["alice", "bob", "carol"], 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(30)).await?;
    nodes[2].go_offline().await?;
    let offline_ids = [
        nodes[2].put("notes", "written offline 1").await?,
        nodes[2].put("notes", "written offline 2").await?,
    ];
    let online_id = nodes[0]
        .put("notes", "written while carol was offline")
        .await?;
    let carol = nodes[2].peer();
    eventually(
        Duration::from_secs(30),
        "alice to see carol offline",
        || async { nodes[0].net().peer_info(&carol).is_some_and(|p| !p.online) },
    )
    .await?;
    nodes[2].go_online().await?;
    converged(&nodes, Duration::from_secs(60)).await?;
    for node in &nodes {
        for id in offline_ids.iter().chain([&online_id]) {
            node.node.get_record(id).await?;
        }
    }
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

async fn put(node: &dan_node::Node, title: &str) -> anyhow::Result<String> {
    let put = dan_node::api::PutRecord {
        collection: Some("notes".into()),
        title: Some(title.into()),
        ..Default::default()
    };
    Ok(node.put_record(put).await?.id.to_string())
}
