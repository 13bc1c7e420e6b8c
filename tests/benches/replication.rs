//! Benchmark of replication between in-process instances on real sockets
//! (127.0.0.1, TCP + Noise + Yamux):
//!
//! 1. a new member fetching N records from one peer (records per second);
//! 2. the time until a record written on one of 10 instances is on all 10
//!    (median and p99 over 50 writes);
//! 3. the sync-protocol bytes exchanged when two instances holding the same
//!    N ops plus 10 differing ones reconcile.
//!
//! Run: `cargo bench -p dan-tests --bench replication` (`DAN_BENCH_RECORDS`
//! sets N, default 100000).

use std::time::{Duration, Instant};

use dan_node::NodeEvent;
use dan_node::api::PutRecord;
use dan_tests::nodes::{TestNode, admit, converged, eventually, spawn_network};

const SYNC: Duration = Duration::from_millis(500);

fn record(n: usize) -> PutRecord {
    PutRecord {
        collection: Some("bench".into()),
        title: format!("Benchmark record number {n}").into(),
        fields: [(
            "body".to_owned(),
            Some(dan_core::FieldValue::Text("x".repeat(100))),
        )]
        .into(),
        ..PutRecord::default()
    }
}

async fn fill(node: &TestNode, count: usize) -> anyhow::Result<()> {
    for start in (0..count).step_by(10_000) {
        let batch = (start..count.min(start + 10_000)).map(record).collect();
        node.node.import_records(batch).await?;
    }
    Ok(())
}

async fn fetch_and_reconcile(count: usize) -> anyhow::Result<()> {
    let mut nodes = spawn_network(&["alice"], 1, SYNC).await?;
    let started = Instant::now();
    fill(&nodes[0], count).await?;
    println!(
        "imported {count} records on alice in {:.2?}",
        started.elapsed()
    );

    nodes.push(TestNode::start("bob", SYNC).await?);
    let target = nodes[0].status().await.op_count + 1;
    let started = Instant::now();
    admit(&nodes[0], &[], &nodes[1]).await?;
    eventually(
        Duration::from_secs(600),
        "bob to fetch everything",
        || async { nodes[1].status().await.op_count >= target },
    )
    .await?;
    let elapsed = started.elapsed();
    println!(
        "new member fetched {target} ops ({count} records) from one peer in {elapsed:.2?}: {:.0} records/s",
        count as f64 / elapsed.as_secs_f64()
    );

    converged(&nodes, Duration::from_secs(60)).await?;
    nodes[1].go_offline().await?;
    for n in 0..5 {
        nodes[0].put("bench", &format!("alice only {n}")).await?;
        nodes[1].put("bench", &format!("bob only {n}")).await?;
    }
    let (sent, received) = nodes[0].net().sync_traffic();
    nodes[1].go_online().await?;
    converged(&nodes, Duration::from_secs(60)).await?;
    let (sent_after, received_after) = nodes[0].net().sync_traffic();
    let bytes = (sent_after - sent) + (received_after - received);
    println!(
        "reconciling {} shared ops + 10 differing: {bytes} bytes of sync messages in both directions ({:.1} KiB)",
        target,
        bytes as f64 / 1024.0
    );
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

async fn latency() -> anyhow::Result<()> {
    let names = ["n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7", "n8", "n9"];
    let nodes = spawn_network(&names, 3, SYNC).await?;
    converged(&nodes, Duration::from_secs(120)).await?;
    let mut samples = Vec::new();
    for round in 0..50 {
        let mut listeners: Vec<_> = nodes.iter().map(|n| n.node.subscribe()).collect();
        let writer = &nodes[round % nodes.len()];
        let started = Instant::now();
        let id = writer.put("latency", &format!("round {round}")).await?;
        let mut slowest = Duration::ZERO;
        for (i, events) in listeners.iter_mut().enumerate() {
            if i == round % nodes.len() {
                continue;
            }
            let arrived = tokio::time::timeout(Duration::from_secs(30), async {
                loop {
                    match events.recv().await {
                        Ok(NodeEvent::RecordsChanged { ids }) if ids.contains(&id) => {
                            return Ok(started.elapsed());
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(e) => return Err(anyhow::anyhow!("{e}")),
                    }
                }
            })
            .await??;
            slowest = slowest.max(arrived);
        }
        samples.push(slowest);
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "record written on one of 10 instances is on all 10 after: median {:.1?}, p99 {:.1?} (50 writes)",
        pick(0.5),
        pick(0.99)
    );
    for node in nodes {
        node.stop().await;
    }
    Ok(())
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let count = std::env::var("DAN_BENCH_RECORDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    fetch_and_reconcile(count).await?;
    latency().await
}
